"""Password hashing with argon2id (argon2-cffi), and the dummy hash that keeps timing equal.

Every sign-in attempt runs exactly one argon2 verification: against the account's hash when
the ID number has an account, otherwise against a dummy hash made with the same parameters.
So an unknown ID number and a wrong password cost the same time and get the same answer.

Parameters default to argon2-cffi's (RFC 9106's second recommendation: t=3, m=64 MiB, p=4);
a stored hash made with older parameters is replaced at the next successful sign-in.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass
from functools import cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from ledger.accounts.errors import AuthenticationFailed

__all__ = ["HashParams", "Passwords", "passwords"]

_FAILED = "身份证号或密码错误 / the ID number or the password is wrong"


@dataclass(frozen=True)
class HashParams:
    time_cost: int = 3
    memory_kib: int = 65536
    parallelism: int = 4


class Passwords:
    """argon2id hashing under one set of parameters."""

    def __init__(self, params: HashParams) -> None:
        self.params = params
        self._hasher = PasswordHasher(
            time_cost=params.time_cost,
            memory_cost=params.memory_kib,
            parallelism=params.parallelism,
            type=Type.ID,
        )
        self._dummy = self._hasher.hash(secrets.token_urlsafe(24))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> None:
        """Raise `AuthenticationFailed` unless ``password`` matches ``stored``; with no stored
        hash (unknown ID number, no password set) the dummy is verified, and it fails."""
        if stored is None:
            # The same work as a real check, then the same answer.
            with contextlib.suppress(VerificationError, InvalidHashError):
                self._hasher.verify(self._dummy, password)
            raise AuthenticationFailed("auth.failed", _FAILED)
        try:
            self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            raise AuthenticationFailed("auth.failed", _FAILED) from None

    def needs_rehash(self, stored: str) -> bool:
        return self._hasher.check_needs_rehash(stored)


@cache
def passwords(params: HashParams) -> Passwords:
    """One hasher (and one dummy hash) per parameter set per process."""
    return Passwords(params)
