"""Pure rules of the holder's access: secrets, activation codes, throttling, share links.

Secrets (all from `secrets`, stored only as a domain-separated SHA-256):

* **session token** ``ses_`` + 256 random bits (base64url) — sent as ``Authorization: Bearer``;
* **activation code** 16 characters of Crockford base32 (80 bits) in four groups,
  ``K7QM-2XHD-9RTA-PW3E``: short enough to read out or print on a letter, and far beyond reach
  of guessing with five attempts per 15 minutes;  input is forgiving (case, dashes, spaces,
  O→0, I/L→1), as Crockford intends;
* **share token** 160 random bits as 32 upper-case base32 characters, so a share URL is
  upper-case and its QR code uses alphanumeric mode (like the verification URLs).

Throttling (`throttle_step`): failures are counted per key in a window as long as the lock; an
attempt is counted *before* the password is checked (so parallel guesses cannot slip past the
limit) and given back on success.  When a key reaches its limit it is locked for ``lock``;
while locked every attempt is refused (HTTP 429) without checking anything.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final, Literal, get_args

from ledger.registry.errors import RuleViolation

__all__ = [
    "CODE_ALPHABET",
    "SESSION_PREFIX",
    "SHARE_SCOPES",
    "AccountRules",
    "ShareScope",
    "ThrottleState",
    "check_new_password",
    "check_share_days",
    "give_back",
    "new_activation_code",
    "new_session_token",
    "new_share_id",
    "new_share_token",
    "normalise_code",
    "normalise_share_token",
    "secret_hash",
    "throttle_step",
]

SESSION_PREFIX: Final = "ses_"
_SESSION_BYTES: Final = 32
#: Crockford base32: no I, L, O, U (nothing to misread, no accidental words).
CODE_ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CODE_LENGTH: Final = 16
_CODE_TYPOS: Final = str.maketrans({"O": "0", "I": "1", "L": "1"})
_SHARE_BYTES: Final = 20
_SHARE_TOKEN: Final = re.compile(r"[A-Z2-7]{32}")

ShareScope = Literal["record", "year", "transcript", "title-check"]
SHARE_SCOPES: Final[tuple[str, ...]] = get_args(ShareScope)

PASSWORD_MIN: Final = 10
PASSWORD_MAX: Final = 128


@dataclass(frozen=True)
class AccountRules:
    """The numbers of the holder's access (from settings; these defaults are the issue's)."""

    session_idle: timedelta = timedelta(hours=12)
    session_absolute: timedelta = timedelta(days=7)
    #: Failed sign-ins (or activations) per ID number before the lock.
    max_failures: int = 5
    #: Failed attempts per client address before the lock (higher: offices share addresses).
    max_failures_per_client: int = 20
    lock: timedelta = timedelta(minutes=15)
    activation_validity: timedelta = timedelta(days=14)
    share_min_days: int = 7
    share_max_days: int = 180
    #: A session's last activity is written at most this often (a write per request is waste).
    touch_every: timedelta = timedelta(minutes=1)


def secret_hash(domain: str, secret: str) -> bytes:
    """What is stored for a secret: SHA-256 over a domain tag and the secret, so a hash of one
    kind of secret can never be used as another kind."""
    return hashlib.sha256(f"celedger-{domain}-v1\x00{secret}".encode()).digest()


def new_session_token() -> str:
    return SESSION_PREFIX + secrets.token_urlsafe(_SESSION_BYTES)


def new_activation_code() -> str:
    chars = "".join(secrets.choice(CODE_ALPHABET) for _ in range(_CODE_LENGTH))
    return "-".join(chars[i : i + 4] for i in range(0, _CODE_LENGTH, 4))


def normalise_code(text: str) -> str:
    """The canonical form of a typed activation code; `RuleViolation` if it cannot be one."""
    compact = "".join(text.split()).replace("-", "").upper().translate(_CODE_TYPOS)
    bad = sorted({c for c in compact if c not in CODE_ALPHABET})
    if bad or len(compact) != _CODE_LENGTH:
        found = f"characters {''.join(bad)!r}" if bad else f"{len(compact)} characters"
        raise RuleViolation(
            "activation.code-format",
            f"激活码应为16位字母数字（如 K7QM-2XHD-9RTA-PW3E）/ code: expected 16 letters and "
            f"digits (e.g. K7QM-2XHD-9RTA-PW3E), found {found}",
        )
    return "-".join(compact[i : i + 4] for i in range(0, _CODE_LENGTH, 4))


def new_share_token() -> str:
    return base64.b32encode(secrets.token_bytes(_SHARE_BYTES)).decode("ascii")


def normalise_share_token(text: str) -> str | None:
    """The token in canonical (upper) case, or None when the text cannot be a share token."""
    token = text.strip().upper()
    return token if _SHARE_TOKEN.fullmatch(token) else None


def new_share_id() -> str:
    """The public handle the holder manages a link by (not the token: it opens nothing)."""
    return "sh_" + base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()


def check_share_days(days: int, rules: AccountRules) -> timedelta:
    if not rules.share_min_days <= days <= rules.share_max_days:
        raise RuleViolation(
            "share.days",
            f"有效期应为{rules.share_min_days}–{rules.share_max_days}天 / days: expected "
            f"{rules.share_min_days}–{rules.share_max_days}, found {days}",
        )
    return timedelta(days=days)


def check_new_password(password: str, id_number: str) -> None:
    """Length over composition (NIST SP 800-63B): 10–128 characters, not the ID number nor
    built on it, not one character repeated."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise RuleViolation(
            "password.length",
            f"密码应为{PASSWORD_MIN}–{PASSWORD_MAX}个字符 / password: expected "
            f"{PASSWORD_MIN}–{PASSWORD_MAX} characters, found {len(password)}",
        )
    if id_number in password.upper() or id_number[6:14] in password:
        raise RuleViolation(
            "password.guessable",
            "密码不能包含身份证号或出生日期 / password: must not contain the ID number or the "
            "birth date",
        )
    if len(set(password)) < 4:
        raise RuleViolation(
            "password.guessable",
            "密码至少包含4个不同字符 / password: expected at least 4 different characters",
        )


@dataclass(frozen=True)
class ThrottleState:
    failures: int
    window_started_at: datetime
    locked_until: datetime | None = None


def throttle_step(
    state: ThrottleState | None, now: datetime, limit: int, lock: timedelta
) -> tuple[ThrottleState, int | None]:
    """Count one attempt: the new state, and the seconds to wait when the key is locked (the
    attempt is then refused and the state unchanged)."""
    if state is not None and state.locked_until is not None and now < state.locked_until:
        return state, max(1, int((state.locked_until - now).total_seconds() + 0.999))
    if state is None or now - state.window_started_at >= lock or state.locked_until is not None:
        state = ThrottleState(0, now)  # a new window (an expired lock starts afresh)
    failures = state.failures + 1
    locked = now + lock if failures >= limit else None
    return replace(state, failures=failures, locked_until=locked), None


def give_back(state: ThrottleState, limit: int) -> ThrottleState:
    """Undo the count of an attempt that succeeded (for a client key shared by many people)."""
    failures = max(0, state.failures - 1)
    return replace(
        state, failures=failures, locked_until=None if failures < limit else state.locked_until
    )
