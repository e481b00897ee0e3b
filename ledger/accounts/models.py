"""Professionals' accounts: activation codes, sign-in sessions, share links and their access log.

Personal data: none of these tables holds a name or an ID number.  An account points at the
existing ``persons`` row (found by the keyed hash of the ID number, ``persons.lookup``; the
number itself stays sealed in ``persons.sealed``).  Every secret handed to a person — an
activation code, a session token, a share token — is stored only as its SHA-256, so a database
reader learns no usable secret; a share token is additionally kept sealed (AES-GCM, like the
personal data) so that its holder can show the link and QR code again.

Throttling state (``signin_throttle``) is keyed by the keyed hash of the ID number that was
typed (whether or not such a person exists, so a lock-out says nothing about existence) and by a
keyed hash of the client address; raw addresses are never stored.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from ledger.storage.models import Base

__all__ = [
    "Account",
    "ActivationCode",
    "HolderSession",
    "ShareAccess",
    "ShareLink",
    "SignInThrottle",
]

TZ = DateTime(timezone=True)


class Account(Base):
    """A professional's account: one per person, made by the first activation."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), unique=True)
    #: Which `IdentityProvider` signs this account in ("password"; an OIDC provider later).
    provider: Mapped[str] = mapped_column(String(16))
    #: argon2id PHC string; null for an account that signs in only through another provider.
    password_hash: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(TZ)
    password_changed_at: Mapped[datetime] = mapped_column(TZ)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(TZ)


class ActivationCode(Base):
    """A one-time code a base or an authority issued for a person (shown once, hash kept)."""

    __tablename__ = "activation_codes"

    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    issued_by: Mapped[str] = mapped_column(ForeignKey("principals.id"))
    issued_at: Mapped[datetime] = mapped_column(TZ)
    expires_at: Mapped[datetime] = mapped_column(TZ)
    used_at: Mapped[datetime | None] = mapped_column(TZ)


class HolderSession(Base):
    """A signed-in session: the bearer token's SHA-256, its idle and absolute expiry."""

    __tablename__ = "holder_sessions"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(TZ)
    last_seen_at: Mapped[datetime] = mapped_column(TZ)
    #: Absolute end, whatever the activity.
    expires_at: Mapped[datetime] = mapped_column(TZ)


class ShareLink(Base):
    """A link a holder made for a verifier: one record, one year, the transcript or a
    title-application check of some years, valid until ``expires_at`` unless closed."""

    __tablename__ = "share_links"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    #: The token sealed under the personal-data key (context: the share id); null once erased.
    sealed_token: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: Null once the person's data was erased: nothing then links the link to anyone.
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"), index=True)
    scope: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[str | None] = mapped_column(ForeignKey("completions.id"))
    first_year: Mapped[int | None] = mapped_column(Integer)
    last_year: Mapped[int | None] = mapped_column(Integer)
    label: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(TZ)
    expires_at: Mapped[datetime] = mapped_column(TZ)
    closed_at: Mapped[datetime | None] = mapped_column(TZ)
    #: "holder" (closed by its holder) or "erased" (the holder's data was erased).
    closed_reason: Mapped[str | None] = mapped_column(String(16))


class ShareAccess(Base):
    """One verification of a share link: when, through which door, what it answered, and a
    short keyed hash of the client's network (never the address itself)."""

    __tablename__ = "share_accesses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    share_id: Mapped[str] = mapped_column(ForeignKey("share_links.id"), index=True)
    at: Mapped[datetime] = mapped_column(TZ)
    client: Mapped[str] = mapped_column(String(16))
    via: Mapped[str] = mapped_column(String(8))
    outcome: Mapped[str] = mapped_column(String(16))


class SignInThrottle(Base):
    """Failed-attempt counter and lock of one key ("id:<keyed hash>" or "client:<keyed hash>")."""

    __tablename__ = "signin_throttle"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_started_at: Mapped[datetime] = mapped_column(TZ)
    locked_until: Mapped[datetime | None] = mapped_column(TZ)
