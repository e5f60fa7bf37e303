"""``pbl``: the command line of API.md ("Command line"). Configuration is by environment."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from ledger.config import Settings
from ledger.db import Database, make_engine
from ledger.errors import LedgerError


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except LedgerError as exc:
        raise click.ClickException(exc.message) from exc


@click.group()
def main() -> None:
    """Portable benefits ledger."""


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema of PBL_DATABASE_URL."""
    from ledger.migrate import upgrade

    settings = _settings()
    upgrade(make_engine(settings.database_url))
    click.echo(f"schema is at the latest revision ({settings.database_url.split('@')[-1]})", err=True)


@main.group()
def keys() -> None:
    """API keys."""


@keys.command("create")
@click.option("--role", type=click.Choice(["admin", "platform", "member"]), required=True)
@click.option("--name", required=True)
@click.option("--contributor-id", default=None, help="for a platform key")
@click.option("--member-id", default=None, help="for a member key")
def keys_create(role: str, name: str, contributor_id: str | None, member_id: str | None) -> None:
    """Print a new key, alone on stdout (shown once)."""
    from ledger.services.keys import create_key

    database = Database(make_engine(_settings().database_url))
    try:
        _, secret = create_key(database, role, name, datetime.now(UTC), contributor_id, member_id)
    except LedgerError as exc:
        raise click.ClickException(f"{exc.message} {exc.errors or ''}".strip()) from exc
    click.echo(secret)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64))
def serve(host: str, port: int, threads: int) -> None:
    """Serve the API with waitress (a production WSGI server)."""
    from waitress import serve as waitress_serve

    from api.app import create_app
    from ledger.migrate import is_current

    settings = _settings()
    if not is_current(make_engine(settings.database_url)):
        raise click.ClickException("the database schema is missing or old: run `pbl db upgrade` first")
    app = create_app(settings)
    click.echo(f"serving on http://{host}:{port}", err=True)
    # Bodies up to the API's 16 MiB limit stay in memory instead of a temporary file. The
    # app answers a larger body with the contract's 413; waitress itself (plain text) only
    # past 64 MiB, which it will not buffer.
    waitress_serve(app, host=host, port=port, threads=threads, max_request_body_size=64 * 1024 * 1024,
                   inbuf_overflow=17 * 1024 * 1024, ident="pbl")


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--plan", "plan_id", required=True, help="the plan every line reports under")
@click.option("--url", required=True, help="the API's base URL, e.g. http://127.0.0.1:8000")
@click.option("--key", required=True, help="a platform API key")
@click.option("--external-id", default=None, help="the remittance's external_id (default: the file's name)")
@click.option("--currency", default="USD", show_default=True)
def import_csv(file: Path, plan_id: str, url: str, key: str, external_id: str | None, currency: str) -> None:
    """Post a remittance CSV through the API; prints the remittance."""
    from pbl.importer import import_file

    try:
        remittance = import_file(file, plan_id, url.rstrip("/"), key, external_id, currency)
    except LedgerError as exc:
        details = "\n".join(f"  line {line}: {'; '.join(msgs)}" for line, msgs in exc.errors.get("lines", {}).items())
        raise click.ClickException(f"{file}: {exc.message}\n{details}".rstrip()) from exc
    click.echo(f"{remittance['id']} {remittance['status']} lines={remittance['line_count']} "
               f"due={remittance['amount_due_minor']} {remittance['currency']}")


@main.command()
def verify() -> None:
    """Check the ledger's invariants; exit status 0 only when all hold."""
    from ledger.services.reports import verify as run_checks

    checks = run_checks(Database(make_engine(_settings().database_url)))
    for check in checks:
        click.echo(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    sys.exit(0 if all(c.ok for c in checks) else 1)


@main.command()
@click.option("--once", is_flag=True, help="run what is due now, then exit (for cron or a check)")
def scheduler(once: bool) -> None:
    """Run the job scheduler (accrual, closing, reconciliation), one leader across processes."""
    import logging

    from jobs.scheduler import run_scheduler
    from ledger.migrate import is_current

    settings = _settings()
    if not is_current(make_engine(settings.database_url)):
        raise click.ClickException("the database schema is missing or old: run `pbl db upgrade` first")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_scheduler(settings, once=once)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="print the whole report as JSON")
def reconcile(as_json: bool) -> None:
    """Run reconciliation (Stripe too when PBL_STRIPE_API_KEY is set) and print its report.

    Exit status 0 when the report reconciles (``ok``), 1 when it shows differences."""
    import json

    from jobs.reconciliation import run_reconciliation
    from ledger.services.reconciliation import present
    from ledger.stripe_gateway import gateway_from_settings
    from pbl.report import report_lines

    settings = _settings()
    database = Database(make_engine(settings.database_url))
    try:
        row = run_reconciliation(database, lambda: datetime.now(UTC), gateway_from_settings(settings),
                                 datetime.now(settings.timezone).date())
    except LedgerError as exc:
        raise click.ClickException(exc.message) from exc
    report = present(row)
    click.echo(json.dumps(report, indent=2, default=str) if as_json else "\n".join(report_lines(report)))
    sys.exit(0 if report["ok"] else 1)


@main.command()
@click.option("--workers", default=2000, show_default=True, type=click.IntRange(10, 100_000))
@click.option("--seed", default=2026, show_default=True)
@click.option("--dir", "directory", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="where to leave the data file and CSVs (default: a new folder here)")
def demo(workers: int, seed: int, directory: Path | None) -> None:
    """A realistic quarter end to end against a live server, then a summary."""
    from pbl.demo import run_demo

    run_demo(workers=workers, seed=seed, directory=directory)


if __name__ == "__main__":
    main()
