"""Issuing-key services: create, rotate, mark compromised, sign, publish.

Every key event is one transaction that takes the log's append lock *first* (so two rotations
cannot both see the same active key), changes ``issuing_keys`` and appends its ledger entry:

* ``key.added``       — ``{"kid", "public_key" (Ed25519 Multikey z6Mk…), "alg", "use", "at"}``
* ``key.retired``     — ``{"kid", "at", "successor"}`` (rotation: the successor is active from
  the same instant, in the same append)
* ``key.compromised`` — ``{"kid", "compromised_at", "reason", "recorded_at"}``

No entry and no column other than ``sealed_private_key`` holds private material.  Private keys
are sealed with AES-256-GCM under the key-encryption key (``kek``, 32 bytes) that the caller
passes from its settings; the associated data is the kid, so a sealed key copied onto another
row does not open.  :func:`active_signer` re-derives the public key from the opened private key
and compares it with the row's, so a wrong KEK or a swapped row is refused, never used.

Times are truncated to whole seconds (see ``ledger.keyset``: QR tokens carry Unix seconds).
A compromise time may lie in the past — it must be the *earliest* moment the key could have
leaked — and may later be moved earlier, never later.  Marking the active key compromised
leaves no active key: issuing stops until :func:`rotate` makes a new one, which is the safe
default (the service cannot sign with a key it knows is stolen).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.entries import encode_entry
from ledger.errors import LedgerError
from ledger.issuing_models import IssuingKey
from ledger.keyset import (
    IssuingKeyInfo,
    IssuingSigner,
    KeySet,
    KeyStatus,
    format_time,
    kid_for,
    public_multikey,
)
from ledger.storage.log import Log

__all__ = [
    "KEK_BYTES",
    "IssuingKeyError",
    "KeyEvent",
    "active_signer",
    "create_issuing_key",
    "keyset",
    "mark_compromised",
    "rotate",
]

KEK_BYTES: Final = 32
_NONCE_BYTES: Final = 12


class IssuingKeyError(LedgerError):
    """An issuing-key act was refused (state conflict, unknown kid, wrong KEK, …)."""


@dataclass(frozen=True, slots=True)
class KeyEvent:
    """What a key act did: the key as it now stands and the ledger index of its entry."""

    key: IssuingKeyInfo
    log_index: int


# --- helpers ---------------------------------------------------------------------------------


def _second(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise IssuingKeyError(f"time: expected a timezone-aware datetime, found {at!r}")
    return at.astimezone(UTC).replace(microsecond=0)


def _aware(at: datetime | None) -> datetime | None:
    # SQLite hands stored instants back naive (they were written in UTC).
    if at is None:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _check_kek(kek: bytes) -> AESGCM:
    if not isinstance(kek, bytes) or len(kek) != KEK_BYTES:
        found = f"{len(kek)} bytes" if isinstance(kek, bytes) else type(kek).__name__
        raise IssuingKeyError(
            f"key-encryption key: expected {KEK_BYTES} bytes (AES-256), found {found}"
        )
    return AESGCM(kek)


def _seal(kek: bytes, kid: str, key: Ed25519PrivateKey) -> bytes:
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + _check_kek(kek).encrypt(nonce, key.private_bytes_raw(), kid.encode("ascii"))


def _open(kek: bytes, row: IssuingKey) -> Ed25519PrivateKey:
    sealed = bytes(row.sealed_private_key)
    try:
        seed = _check_kek(kek).decrypt(
            sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], row.kid.encode("ascii")
        )
    except InvalidTag:
        raise IssuingKeyError(
            f"issuing key {row.kid!r}: cannot open the sealed private key: expected it sealed "
            "under this key-encryption key for this kid, found otherwise (wrong KEK setting, "
            "or the row was tampered with)"
        ) from None
    key = Ed25519PrivateKey.from_private_bytes(seed)
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    if public != bytes(row.public_key):
        raise IssuingKeyError(
            f"issuing key {row.kid!r}: the opened private key's public key "
            f"{public_multikey(public)} differs from the stored "
            f"{public_multikey(bytes(row.public_key))}"
        )
    return key


def _info(row: IssuingKey) -> IssuingKeyInfo:
    created = _aware(row.created_at)
    assert created is not None  # a NOT NULL column
    status: KeyStatus = row.status  # type: ignore[assignment]  # the CHECK constraint holds it
    return IssuingKeyInfo(
        kid=row.kid,
        public_key=bytes(row.public_key),
        status=status,
        created_at=created,
        retired_at=_aware(row.retired_at),
        compromised_at=_aware(row.compromised_at),
    )


def _append(session: Session, log: Log, items: list[tuple[str, dict[str, Any]]]) -> int:
    encoded = [(kind, encode_entry(kind, payload)) for kind, payload in items]
    return log.append(session, encoded).first_index


def _active_row(session: Session) -> IssuingKey | None:
    return session.execute(
        select(IssuingKey).where(IssuingKey.status == "active")
    ).scalar_one_or_none()


def _new_row(kek: bytes, at: datetime) -> tuple[IssuingKey, dict[str, Any]]:
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    kid = kid_for(public)
    row = IssuingKey(
        kid=kid,
        public_key=public,
        sealed_private_key=_seal(kek, kid, private),
        status="active",
        created_at=at,
    )
    payload = {
        "kid": kid,
        "public_key": public_multikey(public),
        "alg": "Ed25519",
        "use": "issuing",
        "at": format_time(at),
    }
    return row, payload


# --- services --------------------------------------------------------------------------------


def create_issuing_key(session: Session, log: Log, kek: bytes, now: datetime) -> KeyEvent:
    """Create the first active issuing key (entry ``key.added``).

    Refused while another key is active: replacing it is :func:`rotate`, which also retires it.
    """
    at = _second(now)
    _check_kek(kek)
    log.lock(session)
    current = _active_row(session)
    if current is not None:
        raise IssuingKeyError(
            f"create issuing key: expected no active key, found {current.kid!r}; "
            "rotate to replace it"
        )
    row, payload = _new_row(kek, at)
    row.log_index = _append(session, log, [("key.added", payload)])
    session.add(row)
    session.flush()
    return KeyEvent(_info(row), row.log_index)


def rotate(session: Session, log: Log, kek: bytes, now: datetime) -> KeyEvent:
    """Make a new active key; the previous active key (if any) is retired at the same instant.

    One append holds both entries (``key.added`` for the new key, then ``key.retired`` naming
    it as successor), so no checkpoint ever shows the issuer with two active keys or none.
    """
    at = _second(now)
    _check_kek(kek)
    log.lock(session)
    previous = _active_row(session)
    if previous is not None and at < _aware_required(previous.created_at):
        raise IssuingKeyError(
            f"rotate: expected a time at or after the active key's creation "
            f"({format_time(_aware_required(previous.created_at))}), found {format_time(at)}"
        )
    row, payload = _new_row(kek, at)
    items: list[tuple[str, dict[str, Any]]] = [("key.added", payload)]
    if previous is not None:
        items.append(
            ("key.retired", {"kid": previous.kid, "at": format_time(at), "successor": row.kid})
        )
    first = _append(session, log, items)
    if previous is not None:
        previous.status = "retired"
        previous.retired_at = at
        previous.retired_log_index = first + 1
        # The old row must leave 'active' before the new one arrives: the partial unique
        # index allows one active row at every statement, not only at commit.
        session.flush()
    row.log_index = first
    session.add(row)
    session.flush()
    return KeyEvent(_info(row), first)


def mark_compromised(
    session: Session,
    log: Log,
    kid: str,
    compromised_at: datetime,
    reason: str,
    now: datetime | None = None,
) -> KeyEvent:
    """Record that key ``kid`` may have leaked from ``compromised_at`` on (``key.compromised``).

    Signatures claiming a time at or after ``compromised_at`` stop verifying (``KeySet``).  A
    key already marked may be marked again only with an *earlier* time.  ``reason`` goes into
    the public ledger verbatim: it must not name people.
    """
    recorded = _second(now if now is not None else datetime.now(UTC))
    at = _second(compromised_at)
    if at > recorded:
        raise IssuingKeyError(
            f"compromised_at: expected a time not after now ({format_time(recorded)}), "
            f"found {format_time(at)}"
        )
    if not isinstance(reason, str) or not reason.strip():
        raise IssuingKeyError("compromise reason: expected a non-empty text, found none")
    log.lock(session)
    row = session.get(IssuingKey, kid)
    if row is None:
        known = session.execute(select(IssuingKey.kid)).scalars().all()
        raise IssuingKeyError(f"issuing key {kid!r}: expected one of {sorted(known)}, found none")
    earlier = _aware(row.compromised_at)
    if earlier is not None and at >= earlier:
        raise IssuingKeyError(
            f"issuing key {kid!r} is already compromised from {format_time(earlier)}: expected "
            f"an earlier time to move it back, found {format_time(at)}"
        )
    index = _append(
        session,
        log,
        [
            (
                "key.compromised",
                {
                    "kid": kid,
                    "compromised_at": format_time(at),
                    "reason": reason.strip(),
                    "recorded_at": format_time(recorded),
                },
            )
        ],
    )
    row.status = "compromised"
    row.compromised_at = at
    row.compromise_reason = reason.strip()
    row.compromised_log_index = index
    session.flush()
    return KeyEvent(_info(row), index)


def active_signer(session: Session, kek: bytes) -> IssuingSigner:
    """The active key's private half, opened with ``kek``; refused when there is none."""
    row = _active_row(session)
    if row is None:
        raise IssuingKeyError(
            "no active issuing key: expected one, found none (create one, or rotate after a "
            "compromise)"
        )
    return IssuingSigner(row.kid, _open(kek, row))


def keyset(session: Session) -> KeySet:
    """Every issuing key, oldest first, as the pure ``KeySet`` (what JWKS and DID publish)."""
    rows = session.execute(
        select(IssuingKey).order_by(IssuingKey.created_at, IssuingKey.log_index)
    ).scalars()
    return KeySet(tuple(_info(r) for r in rows))


def _aware_required(at: datetime) -> datetime:
    aware = _aware(at)
    assert aware is not None
    return aware
