"""Failed-attempt counters in the database (so every worker process sees the same counts).

Keys: ``id:<keyed hash of the typed ID number>`` — whether or not a person has that number, so a
lock says nothing about existence — and ``client:<keyed hash of the client address>``.  The
keyed hashes use the personal-data key (`PersonalDataVault.lookup`, with a ``client-v1:``
prefix for addresses: an ID number never starts with it), so the table holds no address and no
ID number a database reader could test guesses against.

`begin_attempt` counts the attempt (see `ledger.accounts.rules.throttle_step`) and commits with
the caller's transaction *before* anything is checked; `attempt_succeeded` gives it back.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ledger.accounts.errors import Throttled
from ledger.accounts.models import SignInThrottle
from ledger.accounts.rules import AccountRules, ThrottleState, give_back, throttle_step
from ledger.completions.pii import PersonalDataVault
from ledger.registry.services import aware

__all__ = [
    "Keys",
    "attempt_succeeded",
    "begin_attempt",
    "client_key",
    "client_tag",
    "forget",
    "id_key",
]

Keys = Sequence[tuple[str, int]]


def id_key(lookup: bytes) -> str:
    return "id:" + lookup.hex()


def _ascii(address: str) -> str:
    return address.encode("ascii", "replace").decode("ascii")


def client_key(vault: PersonalDataVault, address: str) -> str:
    return "client:" + vault.lookup("client-v1:" + _ascii(address)).hex()[:40]


def client_tag(vault: PersonalDataVault, address: str) -> str:
    """A short keyed hash of the client's network (IPv4 /24, IPv6 /48) for an access log: the
    holder can tell one verifier from another, nobody can recover the address."""
    try:
        ip = ipaddress.ip_address(address)
        prefix = 24 if ip.version == 4 else 48
        network = str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))
    except ValueError:
        network = _ascii(address)[:64]
    return vault.lookup("client-net-v1:" + network).hex()[:12]


def _row(session: Session, key: str, now: datetime) -> SignInThrottle:
    # Insert-if-absent, then lock the row: two first attempts at once cannot both insert, and
    # on PostgreSQL concurrent attempts on one key queue on the row lock.
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(SignInThrottle)
        .values(key=key, failures=0, window_started_at=now, locked_until=None)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    return session.execute(
        select(SignInThrottle)
        .where(SignInThrottle.key == key)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def _state(row: SignInThrottle) -> ThrottleState | None:
    if row.failures == 0 and row.locked_until is None:
        return None
    return ThrottleState(
        row.failures,
        aware(row.window_started_at),
        None if row.locked_until is None else aware(row.locked_until),
    )


def begin_attempt(session: Session, keys: Keys, rules: AccountRules, now: datetime) -> None:
    """Count one attempt on every key, or raise `Throttled` (and count nothing) when any key
    is locked."""
    rows = [(_row(session, key, now), limit) for key, limit in keys]
    steps = [throttle_step(_state(row), now, limit, rules.lock) for row, limit in rows]
    waits = [wait for _, wait in steps if wait is not None]
    if waits:
        wait = max(waits)
        minutes = (wait + 59) // 60
        raise Throttled(
            "auth.throttled",
            f"尝试次数过多，请{minutes}分钟后再试 / too many failed attempts: try again in "
            f"{minutes} minute(s)",
            wait,
        )
    for (row, _), (state, _) in zip(rows, steps, strict=True):
        row.failures = state.failures
        row.window_started_at = state.window_started_at
        row.locked_until = state.locked_until
    session.flush()


def attempt_succeeded(session: Session, keys: Keys) -> None:
    """The attempt was right: the ID number's counter is cleared, the client's gets its one
    count back (an office behind one address must not lock itself out by signing in)."""
    for key, limit in keys:
        row = session.get(SignInThrottle, key, populate_existing=True)
        if row is None:
            continue
        if key.startswith("id:"):
            session.delete(row)
            continue
        state = _state(row)
        if state is not None:
            back = give_back(state, limit)
            row.failures = back.failures
            row.locked_until = back.locked_until
    session.flush()


def forget(session: Session, lookup: bytes) -> None:
    """Drop the counter of an ID number (erasure: its keyed hash must not outlive the data)."""
    session.execute(delete(SignInThrottle).where(SignInThrottle.key == id_key(lookup)))
