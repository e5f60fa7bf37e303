"""Who is calling: the role and the contributor or member an API key is bound to (API.md)."""

from __future__ import annotations

from dataclasses import dataclass

from ledger.errors import NotFoundError

ROLES = ("admin", "platform", "member")


@dataclass(frozen=True)
class Principal:
    """An authenticated API key: ``role`` is admin, platform (with ``contributor_id``) or
    member (with ``member_id``)."""

    role: str
    key_id: str
    contributor_id: str | None = None
    member_id: str | None = None

    @property
    def is_admin(self) -> bool:
        """True for an administrator's key."""
        return self.role == "admin"

    def require_contributor(self, contributor_id: str | None, what: str = "resource") -> None:
        """Raise NotFoundError unless an admin, or the platform owning ``contributor_id``."""
        if self.is_admin:
            return
        if self.role == "platform" and contributor_id is not None and contributor_id == self.contributor_id:
            return
        raise NotFoundError(f"{what} not found")

    def require_member(self, member_id: str, what: str = "member") -> None:
        """Raise NotFoundError unless an admin, or the member ``member_id`` itself."""
        if self.is_admin or (self.role == "member" and self.member_id == member_id):
            return
        raise NotFoundError(f"{what} not found")
