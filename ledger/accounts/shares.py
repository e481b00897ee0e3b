"""Share links (like 学信网's verification reports): made, extended and closed by the holder.

A link covers one of four scopes, fixed when it is made:

* ``record`` — one record (its chain: a later correction shows as the current version);
* ``year`` — every record of one year, with that year's compliance;
* ``transcript`` — every record, with the compliance of each year that has records;
* ``title-check`` (周期验证) — the last N years up to a year (default: last year), for a
  title-evaluation committee: per year, whether the requirement was met.

Validity: the holder chooses 7–180 days (`AccountRules`); extending adds days to the current
end (or to now, for an expired link) and never reaches further than 180 days from now.  A closed
link stays closed.  Only the token's SHA-256 finds a link; the token itself is kept sealed so the
holder can show the link and QR code again.

Opening a link (`open_share`) always writes one access-log row — time, door (page or API), what
it answered, and a short keyed hash of the client's network — and answers ``active``,
``expired`` or ``closed`` (never the records unless active), or None for an unknown token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.accounts.models import ShareAccess, ShareLink
from ledger.accounts.records import Chain, chains_of, find_chain
from ledger.accounts.rules import (
    AccountRules,
    ShareScope,
    check_share_days,
    new_share_id,
    new_share_token,
    normalise_share_token,
    secret_hash,
)
from ledger.completions.pii import PersonalDataVault
from ledger.registry.errors import NotFound, RuleViolation, StateConflict
from ledger.registry.services import aware, local_date

__all__ = [
    "OpenedShare",
    "ShareSpec",
    "access_log",
    "close_share",
    "create_share",
    "extend_share",
    "holder_share",
    "list_shares",
    "open_share",
    "scope_chains",
    "share_json",
    "share_status",
    "share_token",
]

_MAX_TITLE_YEARS = 10
# What `new_share_id` makes.  Anything else is unknown without a query: PostgreSQL refuses a
# NUL byte in a text parameter with an error (a 500 for ``/api/v1/me/shares/%00``).
_SHARE_ID = re.compile(r"sh_[a-z2-7]{16}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _utc(now: datetime | None) -> datetime:
    return datetime.now(UTC) if now is None else now.astimezone(UTC)


def _stamp(at: datetime) -> str:
    return aware(at).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ShareSpec:
    scope: ShareScope
    days: int
    record: str | None = None
    year: int | None = None
    #: title-check: how many years, and the last of them (default: last year).
    years: int | None = None
    through: int | None = None
    label: str | None = None


def _unknown_share(share_id: str) -> NotFound:
    return NotFound("share.unknown", f"no share link {share_id!r}")


def create_share(
    session: Session,
    vault: PersonalDataVault,
    person_id: int,
    spec: ShareSpec,
    rules: AccountRules,
    *,
    now: datetime | None = None,
) -> tuple[ShareLink, str]:
    """A new link (and its token, to show once — `share_token` shows it again)."""
    at = _utc(now)
    validity = check_share_days(spec.days, rules)
    if spec.label is not None and _CONTROL.search(spec.label):
        # A NUL byte cannot be stored on PostgreSQL (it was a 500); no label needs one.
        raise RuleViolation(
            "share.label", "备注不能包含控制字符 / label: expected text without control characters"
        )
    record = first = last = None
    if spec.scope == "record":
        if spec.record is None:
            raise RuleViolation("share.record", "record: a record share names the record")
        record = find_chain(session, person_id, spec.record).versions[0].id
    elif spec.scope == "year":
        if spec.year is None:
            raise RuleViolation("share.year", "year: a year share names the year")
        first = last = spec.year
    elif spec.scope == "title-check":
        count = spec.years or 0
        if not 1 <= count <= _MAX_TITLE_YEARS:
            raise RuleViolation(
                "share.years",
                f"years: expected 1–{_MAX_TITLE_YEARS} years to check, found {spec.years}",
            )
        last = spec.through if spec.through is not None else local_date(at).year - 1
        first = last - count + 1
    share_id = new_share_id()
    token = new_share_token()
    share = ShareLink(
        id=share_id,
        token_hash=secret_hash("share", token),
        sealed_token=vault.seal({"token": token}, share_id.encode("ascii")),
        person_id=person_id,
        scope=spec.scope,
        record_id=record,
        first_year=first,
        last_year=last,
        label=spec.label,
        created_at=at,
        expires_at=at + validity,
        closed_at=None,
        closed_reason=None,
    )
    session.add(share)
    session.flush()
    return share, token


def share_token(vault: PersonalDataVault, share: ShareLink) -> str | None:
    if share.sealed_token is None:
        return None
    return vault.open(bytes(share.sealed_token), share.id.encode("ascii"))["token"]


def holder_share(session: Session, person_id: int, share_id: str) -> ShareLink:
    """The holder's own link; another person's is answered like an unknown one."""
    share = session.get(ShareLink, share_id) if _SHARE_ID.fullmatch(share_id) else None
    if share is None or share.person_id != person_id:
        raise _unknown_share(share_id)
    return share


def share_status(share: ShareLink, now: datetime) -> str:
    if share.closed_at is not None:
        return "closed"
    return "active" if now < aware(share.expires_at) else "expired"


def list_shares(session: Session, person_id: int) -> list[ShareLink]:
    return list(
        session.scalars(
            select(ShareLink)
            .where(ShareLink.person_id == person_id)
            .order_by(ShareLink.created_at, ShareLink.id)
        )
    )


def extend_share(
    session: Session,
    person_id: int,
    share_id: str,
    days: int,
    rules: AccountRules,
    *,
    now: datetime | None = None,
) -> ShareLink:
    at = _utc(now)
    share = holder_share(session, person_id, share_id)
    if share.closed_at is not None:
        raise StateConflict(
            "share.closed", f"share link {share_id} was closed: make a new link instead"
        )
    added = check_share_days(days, rules)
    new_end = max(aware(share.expires_at), at) + added
    if new_end - at > timedelta(days=rules.share_max_days):
        left = (aware(share.expires_at) - at).days
        raise RuleViolation(
            "share.days",
            f"有效期最长{rules.share_max_days}天 / days: a link may be valid for at most "
            f"{rules.share_max_days} days from now; this one has {max(left, 0)} day(s) left, "
            f"so at most {rules.share_max_days - max(left, 0)} can be added, found {days}",
        )
    share.expires_at = new_end
    session.flush()
    return share


def close_share(
    session: Session, person_id: int, share_id: str, *, now: datetime | None = None
) -> ShareLink:
    """Close a link for good (closing a closed link changes nothing)."""
    share = holder_share(session, person_id, share_id)
    if share.closed_at is None:
        share.closed_at = _utc(now)
        share.closed_reason = "holder"
        session.flush()
    return share


def access_log(session: Session, share: ShareLink) -> list[dict[str, Any]]:
    return [
        {"at": _stamp(a.at), "via": a.via, "outcome": a.outcome, "client": a.client}
        for a in session.scalars(
            select(ShareAccess)
            .where(ShareAccess.share_id == share.id)
            .order_by(ShareAccess.at, ShareAccess.id)
        )
    ]


def _years(share: ShareLink) -> list[int] | None:
    if share.first_year is None or share.last_year is None:
        return None
    return list(range(share.first_year, share.last_year + 1))


def share_json(
    session: Session, share: ShareLink, url: str | None, *, now: datetime | None = None
) -> dict[str, Any]:
    """The holder's view of a link."""
    at = _utc(now)
    count = session.scalar(
        select(func.count()).select_from(ShareAccess).where(ShareAccess.share_id == share.id)
    )
    return {
        "id": share.id,
        "scope": share.scope,
        "record": share.record_id,
        "years": _years(share),
        "label": share.label,
        "url": url,
        "status": share_status(share, at),
        "created_at": _stamp(share.created_at),
        "expires_at": _stamp(share.expires_at),
        "closed_at": None if share.closed_at is None else _stamp(share.closed_at),
        "closed_reason": share.closed_reason,
        "accesses": int(count or 0),
    }


@dataclass(frozen=True)
class OpenedShare:
    """What a verifier's visit found (the records are read afterwards, see `scope_chains`)."""

    share_id: str
    status: str
    scope: str
    person_id: int | None
    record_id: str | None
    years: list[int] | None
    created_at: datetime
    expires_at: datetime
    closed_reason: str | None

    def meta(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "years": self.years,
            "created_at": _stamp(self.created_at),
            "expires_at": _stamp(self.expires_at),
            "closed_reason": self.closed_reason,
        }


def open_share(
    session: Session, token: str, client: str, via: str, *, now: datetime | None = None
) -> OpenedShare | None:
    """Find a link by its token and log the visit; None when there is no such link."""
    at = _utc(now)
    canonical = normalise_share_token(token)
    if canonical is None:
        return None
    share = session.scalar(
        select(ShareLink).where(ShareLink.token_hash == secret_hash("share", canonical))
    )
    if share is None:
        return None
    status = share_status(share, at)
    session.add(ShareAccess(share_id=share.id, at=at, client=client, via=via, outcome=status))
    session.flush()
    return OpenedShare(
        share.id,
        status,
        share.scope,
        share.person_id,
        share.record_id,
        _years(share),
        aware(share.created_at),
        aware(share.expires_at),
        share.closed_reason,
    )


def scope_chains(session: Session, opened: OpenedShare) -> tuple[list[Chain], list[int]]:
    """The chains an active link shows, and the years whose compliance it shows (none for a
    single record)."""
    if opened.person_id is None or opened.status != "active":
        return [], []
    chains = chains_of(session, opened.person_id)
    if opened.scope == "record":
        return [c for c in chains if opened.record_id in c.ids()], []
    if opened.years is not None:
        wanted = set(opened.years)
        return [c for c in chains if c.latest.year in wanted], sorted(wanted)
    years = sorted({c.latest.year for c in chains if c.revocation is None})
    return chains, years
