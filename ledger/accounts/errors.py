"""Errors of the holder's access.  Each carries its HTTP ``status`` and a stable ``code``
(``api.problems`` answers with them), and says what was expected — never whether an ID number
is known: an unknown ID number and a wrong password or code get the same answer."""

from __future__ import annotations

from ledger.errors import LedgerError

__all__ = ["AccountError", "AuthenticationFailed", "SessionInvalid", "Throttled"]


class AccountError(LedgerError):
    status = 400
    code = "account.error"

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class AuthenticationFailed(AccountError):
    """Wrong ID number, password or activation code (deliberately not saying which)."""

    status = 401


class SessionInvalid(AccountError):
    """No session, an unknown or revoked one, or one past its idle or absolute expiry."""

    status = 401


class Throttled(AccountError):
    """Too many failed attempts for this ID number or from this client: locked for a while."""

    status = 429

    def __init__(self, code: str, message: str, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(code, message)
