"""How a professional proves who they are: the `IdentityProvider` seam.

A provider turns what the person presents into an **account id**, or raises
`AuthenticationFailed` / `Throttled`.  Everything after that — the session, its expiry,
sign-out — is the same for every provider (`ledger.accounts.services.start_session`), and the
session remembers which provider opened it.

`PasswordProvider` (built): ID number + password, argon2id, throttled per ID number and per
client address, with the same answer and the same work for an unknown ID number.

**A government OIDC provider** (e.g. a province's 政务服务 unified identity platform, or the
national 网络身份认证公共服务) plugs in as a second implementation; nothing else changes:

1. *Configuration*: the issuer URL, client id and secret (or ``private_key_jwt``), redirect URI;
   the provider's metadata and JWKS come from ``/.well-known/openid-configuration``.
2. *Routes* (api): ``GET /api/v1/me/oidc/{provider}/start`` answers a redirect to the
   authorization endpoint with ``state``, ``nonce`` and PKCE (S256) kept in a short-lived,
   HttpOnly, SameSite=Lax cookie; ``GET …/callback`` exchanges the code for tokens.
3. *authenticate* (this interface): verify the ID token (signature against the JWKS, ``iss``,
   ``aud``, ``exp``, ``nonce``; ``acr`` at the required real-name level).  If the platform
   releases the verified 身份证号 as a claim, the account is found exactly as here:
   ``vault.lookup(validate_id_number(claim))`` → ``persons`` → ``accounts`` (created on first
   sign-in: the government has verified the person, so no activation code is needed; a person
   with no records still has no account).  If it releases only a pairwise subject (as 网号
   does), a table ``account_links(provider, sha256(sub) → account_id)`` is filled once, after
   the person activated with a code or a password sign-in while signed in to the platform.
4. The account's ``provider`` column records which providers it may use; an account with no
   password (``password_hash`` NULL) re-authenticates for erasure through the OIDC provider
   with ``prompt=login`` and ``max_age=0`` instead of re-entering a password.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import select

from ledger.accounts.errors import AuthenticationFailed
from ledger.accounts.models import Account
from ledger.accounts.passwords import Passwords
from ledger.accounts.rules import AccountRules
from ledger.accounts.services import IssuedSession, start_session, throttle_keys
from ledger.accounts.throttle import attempt_succeeded, begin_attempt
from ledger.completions.models import Person
from ledger.completions.pii import PersonalDataVault
from ledger.identity import validate_id_number
from ledger.storage.db import Database

__all__ = ["IdentityProvider", "PasswordProvider", "sign_in"]

_FAILED = "身份证号或密码错误 / the ID number or the password is wrong"


class IdentityProvider(Protocol):
    """Proves a person's identity; answers the account id (see the module text)."""

    #: Stored with each session (``holder_sessions.provider``) and each account.
    name: str

    def authenticate(
        self, db: Database, credentials: Mapping[str, str], client: str, now: datetime
    ) -> int: ...


class PasswordProvider:
    """ID number + password (argon2id), throttled, timing-equal for unknown ID numbers."""

    name = "password"

    def __init__(self, vault: PersonalDataVault, passwords: Passwords, rules: AccountRules) -> None:
        self.vault = vault
        self.passwords = passwords
        self.rules = rules

    def authenticate(
        self, db: Database, credentials: Mapping[str, str], client: str, now: datetime
    ) -> int:
        # A malformed number is refused as such (IdentityError): that says nothing about
        # any person.
        id_number = validate_id_number(credentials["id_number"])
        password = credentials["password"]
        lookup = self.vault.lookup(id_number)
        keys = throttle_keys(self.vault, lookup, client, self.rules)
        with db.writer() as s:
            begin_attempt(s, keys, self.rules, now)
            row = s.execute(
                select(Account.id, Account.password_hash)
                .join(Person, Person.id == Account.person_id)
                .where(Person.lookup == lookup)
            ).first()
        stored = None if row is None else row.password_hash
        # One argon2 verification whatever happened above (the dummy hash when no account).
        self.passwords.verify(stored, password)
        assert row is not None and stored is not None
        rehash = self.passwords.hash(password) if self.passwords.needs_rehash(stored) else None
        with db.writer() as s:
            account = s.get(Account, row.id)
            if account is None:  # erased between the two transactions
                raise AuthenticationFailed("auth.failed", _FAILED)
            attempt_succeeded(s, keys)
            account.last_sign_in_at = now
            if rehash is not None:
                account.password_hash = rehash
        return int(row.id)


def sign_in(
    db: Database,
    provider: IdentityProvider,
    rules: AccountRules,
    credentials: Mapping[str, str],
    client: str,
    *,
    now: datetime | None = None,
) -> IssuedSession:
    """Authenticate with ``provider`` and start a session."""
    at = datetime.now(UTC) if now is None else now.astimezone(UTC)
    account = provider.authenticate(db, credentials, client, at)
    with db.writer() as s:
        return start_session(s, account, provider.name, rules, at)
