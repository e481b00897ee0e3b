"""Activation codes, activation, sessions, password change and erasure (database services).

Flow of a first sign-in: a base (for a person it has records for) or an authority (for a person
with records in its jurisdiction) issues an **activation code** — shown once, only its hash
kept, valid `AccountRules.activation_validity`, single use, and a new code replaces any unused
one.  The person then **activates** with ID number + code + a new password, which creates the
account (or, for an existing account, resets the password and ends every session: a lost
password is recovered the same way) and starts a session.

Every check of a secret (activation code, password) is an *attempt* counted by
`ledger.accounts.throttle` before it is checked; the answer to an unknown ID number, a wrong
code and a wrong password is the same, and each costs the same work (an argon2 verification,
see `ledger.accounts.passwords`, or none at all for codes, whose hash is looked up directly).

Erasure (PIPL Art. 47) crypto-shreds the person: ``persons.sealed`` and every one of their
records' ``salt`` and ``sealed`` are set to NULL — the ledger leaves keep their commitments, which
nobody can now open — ``persons.lookup`` becomes random bytes (the ID number no longer finds the
row), the account, sessions, codes, throttle counter and access logs are deleted and every share
link is closed and unlinked.  One ``erasure`` entry is appended, naming only a random erasure id,
the number of records and the time: never anything derived from the ID number (a hash of an
18-digit number with a known structure is brute-forced in minutes).
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from ledger.accounts.errors import AccountError, AuthenticationFailed, SessionInvalid
from ledger.accounts.models import (
    Account,
    ActivationCode,
    HolderSession,
    ShareAccess,
    ShareLink,
)
from ledger.accounts.passwords import Passwords
from ledger.accounts.rules import (
    SESSION_PREFIX,
    AccountRules,
    check_new_password,
    new_activation_code,
    new_session_token,
    normalise_code,
    secret_hash,
)
from ledger.accounts.throttle import attempt_succeeded, begin_attempt, client_key, forget, id_key
from ledger.completions.models import CompletionRecord, Person
from ledger.completions.pii import PersonalDataVault
from ledger.entries import encode_entry
from ledger.registry.auth import RULES, Principal, Scope, require
from ledger.registry.errors import NotFound, PermissionDenied, StateConflict
from ledger.registry.models import BaseRecord
from ledger.registry.services import aware
from ledger.storage.db import Database
from ledger.storage.log import Log

__all__ = [
    "ErasureReceipt",
    "Holder",
    "IssuedCode",
    "IssuedSession",
    "activate",
    "authenticate_session",
    "change_password",
    "erase",
    "issue_activation_code",
    "list_sessions",
    "sign_out",
    "sign_out_everywhere",
    "start_session",
    "throttle_keys",
]

_CODE_FAILED = (
    "身份证号或激活码错误 / the ID number or the activation code is wrong (ask the base or "
    "the authority for a new code if it keeps failing)"
)


class CodeSpent(AccountError):
    """The right code, but used already or expired (only its holder can learn this)."""

    status = 410


def _utc(now: datetime | None) -> datetime:
    return datetime.now(UTC) if now is None else now.astimezone(UTC)


def _stamp(at: datetime) -> str:
    return aware(at).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class IssuedCode:
    code: str
    expires_at: datetime


@dataclass(frozen=True)
class IssuedSession:
    token: str
    expires_at: datetime
    idle_timeout_seconds: int

    def to_json(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "token_type": "Bearer",
            "expires_at": _stamp(self.expires_at),
            "idle_timeout_seconds": self.idle_timeout_seconds,
        }


@dataclass(frozen=True)
class Holder:
    """The signed-in professional, as the session dependency hands it to a route."""

    account_id: int
    person_id: int
    session_hash: bytes
    provider: str


def _person(session: Session, lookup: bytes) -> Person | None:
    return session.scalar(select(Person).where(Person.lookup == lookup))


# --------------------------------------------------------------------------------------------
# Activation codes


def issue_activation_code(
    session: Session,
    vault: PersonalDataVault,
    actor: Principal,
    id_number: str,
    rules: AccountRules,
    *,
    now: datetime | None = None,
) -> IssuedCode:
    """A fresh code for the person with ``id_number`` (normalised), replacing any unused one.

    A base may issue codes only for people it has records for, an authority for people with
    records at a base in its subtree; anyone else — and an unknown ID number — gets the same
    `NotFound`, so the answer never tells whether the number is known elsewhere.
    """
    at = _utc(now)
    if actor.role not in RULES["activation.issue"].roles:
        require(actor, "activation.issue", Scope(actor.jurisdiction))  # raises: wrong role
    person = _person(session, vault.lookup(id_number))
    allowed = False
    if person is not None:
        bases = session.scalars(
            select(BaseRecord)
            .where(
                BaseRecord.id.in_(
                    select(CompletionRecord.base_id).where(CompletionRecord.person_id == person.id)
                )
            )
            .order_by(BaseRecord.id)
        )
        for base in bases:
            try:
                require(
                    actor,
                    "activation.issue",
                    Scope(base.jurisdiction_code, base.management_unit_id, base.id),
                )
            except PermissionDenied:
                continue
            allowed = True
            break
    if person is None or not allowed:
        raise NotFound(
            "person.unknown",
            "没有此身份证号在本单位（或辖区）的学时记录 / no records of this ID number at your "
            "base (or in your jurisdiction)",
        )
    session.execute(
        delete(ActivationCode).where(
            ActivationCode.person_id == person.id, ActivationCode.used_at.is_(None)
        )
    )
    code = new_activation_code()
    expires = at + rules.activation_validity
    session.add(
        ActivationCode(
            code_hash=secret_hash("activation", code),
            person_id=person.id,
            issued_by=actor.id,
            issued_at=at,
            expires_at=expires,
            used_at=None,
        )
    )
    session.flush()
    return IssuedCode(code, expires)


def throttle_keys(
    vault: PersonalDataVault, lookup: bytes, client: str, rules: AccountRules
) -> list[tuple[str, int]]:
    """The counters an attempt on this ID number (keyed hash) from this client counts on."""
    return [
        (id_key(lookup), rules.max_failures),
        (client_key(vault, client), rules.max_failures_per_client),
    ]


def _redeem(
    session: Session, lookup: bytes, code: str, password_hash: str, at: datetime
) -> int | AccountError:
    """The account id the code activates (created or reset), or why not."""
    row = session.get(ActivationCode, secret_hash("activation", code))
    person = _person(session, lookup)
    if row is None or person is None or row.person_id != person.id:
        return AuthenticationFailed("activation.failed", _CODE_FAILED)
    if row.used_at is not None:
        return CodeSpent(
            "activation.used",
            "此激活码已使用过，请重新申请 / this activation code was already used: ask for a new one",
        )
    if at >= aware(row.expires_at):
        return CodeSpent(
            "activation.expired",
            f"此激活码已于 {_stamp(row.expires_at)} 过期，请重新申请 / this activation code "
            f"expired at {_stamp(row.expires_at)}: ask for a new one",
        )
    row.used_at = at
    account = session.scalar(select(Account).where(Account.person_id == person.id))
    if account is None:
        account = Account(
            person_id=person.id,
            provider="password",
            password_hash=password_hash,
            created_at=at,
            password_changed_at=at,
            last_sign_in_at=at,
        )
        session.add(account)
        session.flush()
    else:
        # A code for an existing account is a password reset: every old session ends.
        account.password_hash = password_hash
        account.password_changed_at = at
        account.last_sign_in_at = at
        session.execute(delete(HolderSession).where(HolderSession.account_id == account.id))
    return account.id


def activate(
    db: Database,
    vault: PersonalDataVault,
    passwords: Passwords,
    rules: AccountRules,
    id_number: str,
    code: str,
    password: str,
    client: str,
    *,
    now: datetime | None = None,
) -> IssuedSession:
    """First sign-in (or password reset) with an activation code; ``id_number`` normalised."""
    at = _utc(now)
    canonical = normalise_code(code)
    check_new_password(password, id_number)
    # Hashed before the transaction, on every path: no lock held during argon2, and a wrong
    # code costs what a right one does.
    password_hash = passwords.hash(password)
    lookup = vault.lookup(id_number)
    keys = throttle_keys(vault, lookup, client, rules)
    issued: IssuedSession | None = None
    with db.writer() as s:
        begin_attempt(s, keys, rules, at)
        outcome = _redeem(s, lookup, canonical, password_hash, at)
        if not isinstance(outcome, AccountError):
            attempt_succeeded(s, keys)
            issued = start_session(s, outcome, "password", rules, at)
    # Raised after the commit: the counted attempt must stay counted.
    if isinstance(outcome, AccountError):
        raise outcome
    assert issued is not None
    return issued


# --------------------------------------------------------------------------------------------
# Sessions


def start_session(
    session: Session, account_id: int, provider: str, rules: AccountRules, at: datetime
) -> IssuedSession:
    """A new session for an authenticated account (any `IdentityProvider` ends here)."""
    # Expired sessions of this account are dropped as a new one starts.
    session.execute(
        delete(HolderSession).where(
            HolderSession.account_id == account_id,
            (HolderSession.expires_at <= at)
            | (HolderSession.last_seen_at <= at - rules.session_idle),
        )
    )
    token = new_session_token()
    expires = at + rules.session_absolute
    session.add(
        HolderSession(
            token_hash=secret_hash("session", token),
            account_id=account_id,
            provider=provider,
            created_at=at,
            last_seen_at=at,
            expires_at=expires,
        )
    )
    session.flush()
    return IssuedSession(token, expires, int(rules.session_idle.total_seconds()))


def authenticate_session(
    db: Database, token: str, rules: AccountRules, *, now: datetime | None = None
) -> Holder:
    """The holder of a live session token, or `SessionInvalid` (unknown, revoked, expired)."""
    at = _utc(now)
    if not token.startswith(SESSION_PREFIX) or len(token) > 100:
        raise SessionInvalid(
            "session.format",
            f"Authorization: expected 'Bearer {SESSION_PREFIX}…' (a session from sign-in)",
        )
    digest = secret_hash("session", token)
    with db.reader() as s:
        row = s.execute(
            select(HolderSession, Account.person_id)
            .join(Account, Account.id == HolderSession.account_id)
            .where(HolderSession.token_hash == digest)
        ).first()
    if row is None:
        raise SessionInvalid(
            "session.unknown",
            "会话无效或已退出，请重新登录 / unknown or signed-out session: sign in again",
        )
    live, person_id = row
    seen, ends = aware(live.last_seen_at), aware(live.expires_at)
    if at >= ends or at - seen >= rules.session_idle:
        with db.writer() as s:
            s.execute(delete(HolderSession).where(HolderSession.token_hash == digest))
        why = "absolute" if at >= ends else "idle"
        raise SessionInvalid(
            "session.expired",
            f"会话已过期，请重新登录 / the session expired ({why} limit): sign in again",
        )
    if at - seen >= rules.touch_every:
        with db.writer() as s:
            s.execute(
                update(HolderSession)
                .where(HolderSession.token_hash == digest)
                .values(last_seen_at=at)
            )
    return Holder(live.account_id, int(person_id), digest, live.provider)


def sign_out(session: Session, holder: Holder) -> None:
    session.execute(delete(HolderSession).where(HolderSession.token_hash == holder.session_hash))


def sign_out_everywhere(session: Session, holder: Holder) -> int:
    """End every session of the account (this one too); answers how many ended."""
    count = session.scalar(
        select(func.count())
        .select_from(HolderSession)
        .where(HolderSession.account_id == holder.account_id)
    )
    session.execute(delete(HolderSession).where(HolderSession.account_id == holder.account_id))
    return int(count or 0)


def list_sessions(
    session: Session, holder: Holder, rules: AccountRules, *, now: datetime | None = None
) -> list[dict[str, Any]]:
    at = _utc(now)
    out = []
    for row in session.scalars(
        select(HolderSession)
        .where(HolderSession.account_id == holder.account_id)
        .order_by(HolderSession.created_at)
    ):
        seen, ends = aware(row.last_seen_at), aware(row.expires_at)
        if at >= ends or at - seen >= rules.session_idle:
            continue
        out.append(
            {
                "created_at": _stamp(row.created_at),
                "last_seen_at": _stamp(seen),
                "expires_at": _stamp(min(ends, seen + rules.session_idle)),
                "provider": row.provider,
                "current": bytes(row.token_hash) == holder.session_hash,
            }
        )
    return out


# --------------------------------------------------------------------------------------------
# Re-entering the password (password change, erasure)


def _reauthenticate(
    db: Database,
    vault: PersonalDataVault,
    passwords: Passwords,
    rules: AccountRules,
    holder: Holder,
    password: str,
    client: str,
    at: datetime,
) -> list[tuple[str, int]]:
    """Check the holder's password again, counted like a sign-in; the throttle keys back."""
    with db.writer() as s:
        person = s.get(Person, holder.person_id)
        account = s.get(Account, holder.account_id)
        if person is None or account is None:
            raise SessionInvalid("session.unknown", "the account no longer exists")
        keys = throttle_keys(vault, bytes(person.lookup), client, rules)
        begin_attempt(s, keys, rules, at)
        stored = account.password_hash
    try:
        passwords.verify(stored, password)
    except AuthenticationFailed:
        raise AuthenticationFailed("password.wrong", "密码错误 / the password is wrong") from None
    return keys


def change_password(
    db: Database,
    vault: PersonalDataVault,
    passwords: Passwords,
    rules: AccountRules,
    holder: Holder,
    old: str,
    new: str,
    client: str,
    *,
    now: datetime | None = None,
) -> None:
    """Set a new password; every other session ends."""
    at = _utc(now)
    with db.reader() as s:
        person = s.get(Person, holder.person_id)
        sealed = None if person is None else person.sealed
        lookup = b"" if person is None else bytes(person.lookup)
    if sealed is None:
        raise SessionInvalid("session.unknown", "the account no longer exists")
    check_new_password(new, vault.open(sealed, lookup)["id_number"])
    keys = _reauthenticate(db, vault, passwords, rules, holder, old, client, at)
    new_hash = passwords.hash(new)
    with db.writer() as s:
        attempt_succeeded(s, keys)
        account = s.get(Account, holder.account_id)
        if account is None:
            raise SessionInvalid("session.unknown", "the account no longer exists")
        account.password_hash = new_hash
        account.password_changed_at = at
        s.execute(
            delete(HolderSession).where(
                HolderSession.account_id == holder.account_id,
                HolderSession.token_hash != holder.session_hash,
            )
        )


# --------------------------------------------------------------------------------------------
# Erasure


@dataclass(frozen=True)
class ErasureReceipt:
    erasure: str
    records: int
    log_index: int
    tree_size: int
    checkpoint: str

    def to_json(self) -> dict[str, Any]:
        return {
            "erasure": self.erasure,
            "records": self.records,
            "log_index": self.log_index,
            "tree_size": self.tree_size,
            "checkpoint": self.checkpoint,
            "proof": f"/api/v1/log/proof/inclusion?index={self.log_index}&size={self.tree_size}",
        }


def erase(
    db: Database,
    log: Log,
    vault: PersonalDataVault,
    passwords: Passwords,
    rules: AccountRules,
    holder: Holder,
    password: str,
    client: str,
    *,
    now: datetime | None = None,
) -> ErasureReceipt:
    """Crypto-shred the holder's personal data (password re-entered); see the module text."""
    at = _utc(now)
    keys = _reauthenticate(db, vault, passwords, rules, holder, password, client, at)
    with db.writer() as s:
        log.lock(s)
        person = s.get(Person, holder.person_id)
        if person is None or person.sealed is None:
            raise StateConflict("person.erased", "the personal data was already erased")
        attempt_succeeded(s, keys)
        forget(s, bytes(person.lookup))
        count = s.scalar(
            select(func.count())
            .select_from(CompletionRecord)
            .where(CompletionRecord.person_id == person.id)
        )
        s.execute(
            update(CompletionRecord)
            .where(CompletionRecord.person_id == person.id)
            .values(salt=None, sealed=None)
        )
        person.sealed = None
        # Random, never derived from the number: a later batch with the same ID number makes
        # a new person, and nothing finds this row again.
        person.lookup = secrets.token_bytes(32)
        person.erased_at = at
        shares = select(ShareLink.id).where(ShareLink.person_id == person.id)
        s.execute(delete(ShareAccess).where(ShareAccess.share_id.in_(shares)))
        s.execute(
            update(ShareLink)
            .where(ShareLink.person_id == person.id, ShareLink.closed_at.is_(None))
            .values(closed_at=at)
        )
        s.execute(
            update(ShareLink)
            .where(ShareLink.person_id == person.id)
            .values(
                closed_reason="erased",
                sealed_token=None,
                label=None,
                record_id=None,
                first_year=None,
                last_year=None,
                person_id=None,
            )
        )
        s.execute(delete(HolderSession).where(HolderSession.account_id == holder.account_id))
        s.execute(delete(ActivationCode).where(ActivationCode.person_id == person.id))
        s.execute(delete(Account).where(Account.id == holder.account_id))
        erasure = "er_" + base64.b32encode(secrets.token_bytes(15)).decode("ascii").lower()
        payload = {"erasure": erasure, "records": int(count or 0), "at": _stamp(at)}
        result = log.append(s, [("erasure", encode_entry("erasure", payload))])
    return ErasureReceipt(
        erasure, int(count or 0), result.first_index, result.tree_size, result.checkpoint
    )
