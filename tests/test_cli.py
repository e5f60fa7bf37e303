"""The command line: schema, keys, verify, and importing a remittance CSV over HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask

from ledger.db import Database
from ledger.errors import ValidationError
from ledger.remittance_csv import read_remittance_csv
from pbl.cli import main
from pbl.importer import import_file
from tests.conftest import BACKEND, Caller
from tests.factories import enroll, make_platform

HEADER = "worker_id,period_start,period_end,gross_pay,tips,hours,jobs\n"


def test_csv_money_and_hours_convert_exactly_with_line_numbered_external_ids() -> None:
    text = HEADER + "w-1,2026-04-01,2026-04-30,1234.56,100.5,37.5,3\n\nw-2,2026-04-01,2026-04-30,0.1,,0.05,\n"
    lines = read_remittance_csv(text, "dash-plan", "USD", "april")
    assert [(r["external_id"], r["gross_earnings_minor"], r["tips_minor"], r["engaged_minutes"], r["jobs"])
            for r in lines] == [("april:2", 123456, 10050, 2250, 3), ("april:4", 10, 0, 3, 0)]


def test_csv_values_finer_than_the_currency_or_the_minute_are_refused_with_their_line() -> None:
    text = HEADER + "w-1,2026-04-01,2026-04-30,12.345,0,1,0\nw-2,2026-04-01,2026-04-30,12,0,1.01,0\n" \
                    "w-3,2026-4-1,2026-04-30,12,0,1,x\n"
    with pytest.raises(ValidationError) as raised:
        read_remittance_csv(text, "dash-plan", "USD", "april")
    assert sorted(raised.value.errors["lines"]) == ["2", "3", "4"]
    assert raised.value.errors["lines"]["2"][0].startswith("gross_pay:")
    assert raised.value.errors["lines"]["3"][0].startswith("hours:")
    assert [m.split(":")[0] for m in raised.value.errors["lines"]["4"]] == ["period_start", "jobs"]


def test_csv_in_yen_takes_whole_units_only() -> None:
    text = HEADER + "w-1,2026-04-01,2026-04-30,1500,0,0,0\n"
    assert read_remittance_csv(text, "p", "JPY", "r")[0]["gross_earnings_minor"] == 1500
    with pytest.raises(ValidationError):
        read_remittance_csv(HEADER + "w-1,2026-04-01,2026-04-30,1500.5,0,0,0\n", "p", "JPY", "r")


def test_import_posts_the_file_as_one_remittance(app: Flask, admin: Caller, live_server: str, tmp_path: Path) -> None:
    platform = make_platform(app, admin)
    enroll(platform, "w-1")
    enroll(platform, "w-2")
    path = tmp_path / "dash-2026-04.csv"
    path.write_text(HEADER + "w-1,2026-04-01,2026-04-30,1234.56,0,0,0\nw-2,2026-04-01,2026-04-30,1000.00,0,0,0\n")
    remittance = import_file(path, "dash-plan", live_server, platform.key)
    assert (remittance["external_id"], remittance["line_count"], remittance["amount_due_minor"]) == \
        ("dash-2026-04.csv", 2, 4938 + 4000)
    listed = admin.get(f"/v1/remittances/{remittance['id']}/contributions").json["data"]
    assert sorted(c["external_id"] for c in listed) == ["dash-2026-04.csv:2", "dash-2026-04.csv:3"]


def test_import_maps_a_refused_line_back_to_its_file_line(app: Flask, admin: Caller, live_server: str,
                                                          tmp_path: Path) -> None:
    platform = make_platform(app, admin)
    enroll(platform, "w-1")
    path = tmp_path / "april.csv"
    path.write_text(HEADER + "w-1,2026-04-01,2026-04-30,10.00,0,0,0\nw-404,2026-04-01,2026-04-30,10.00,0,0,0\n")
    with pytest.raises(ValidationError) as raised:
        import_file(path, "dash-plan", live_server, platform.key)
    assert list(raised.value.errors["lines"]) == ["3"]
    assert admin.get("/v1/remittances").json["data"] == []


def test_keys_create_prints_only_the_key_and_verify_exits_zero(database: Database, monkeypatch: pytest.MonkeyPatch,
                                                              database_url: str) -> None:
    url = database.engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("PBL_DATABASE_URL", url)
    runner = CliRunner()
    created = runner.invoke(main, ["keys", "create", "--role", "admin", "--name", "ops"])
    assert created.exit_code == 0, created.output
    assert created.stdout.strip().startswith("pbl_admin_") and len(created.stdout.strip().splitlines()) == 1
    verified = runner.invoke(main, ["verify"])
    assert verified.exit_code == 0, verified.output
    assert "FAIL" not in verified.output


def test_db_upgrade_creates_the_schema_of_a_new_sqlite_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if BACKEND != "sqlite":
        pytest.skip("this test makes its own SQLite file; the PostgreSQL schema is built by the session fixture")
    monkeypatch.setenv("PBL_DATABASE_URL", f"sqlite:///{tmp_path / 'new.db'}")
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert CliRunner().invoke(main, ["verify"]).exit_code == 0


def test_serve_refuses_to_start_on_a_database_without_the_schema(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PBL_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    result = CliRunner().invoke(main, ["serve", "--port", "0"])
    assert result.exit_code == 1
    assert "run `pbl db upgrade` first" in result.output
