"""Bearer API keys → the acting principal.

``provide_principal`` is the dependency every registry write declares (as ``actor``): it reads
``Authorization: Bearer <key>``, looks up the key's SHA-256, and answers 401 (with
``WWW-Authenticate: Bearer``) when the header is missing, malformed, or names no live key.
What the principal may then do is decided by the domain (``ledger.registry.auth.RULES``),
not here.
"""

from __future__ import annotations

from typing import Any, Final

from litestar import Request
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException

from api.context import Context
from ledger.registry.auth import KEY_PREFIX, Principal
from ledger.registry.services import principal_for_key

__all__ = ["PRINCIPAL_DEPENDENCY", "provide_principal"]

_CHALLENGE: Final = {"WWW-Authenticate": 'Bearer realm="celedger"'}
# Longer than any key we issue; refuses absurd headers before hashing them.
_MAX_KEY_LENGTH: Final = 200


def _unauthorised(detail: str) -> NotAuthorizedException:
    return NotAuthorizedException(detail=detail, headers=_CHALLENGE)


def provide_principal(request: Request[Any, Any, Any], ctx: NamedDependency[Context]) -> Principal:
    """The principal whose API key the request carries; 401 otherwise."""
    header = request.headers.get("authorization")
    if header is None:
        raise _unauthorised("this write needs an API key: send 'Authorization: Bearer <key>'")
    scheme, _, key = header.strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key.startswith(KEY_PREFIX) or len(key) > _MAX_KEY_LENGTH:
        raise _unauthorised(
            f"Authorization: expected 'Bearer {KEY_PREFIX}…' (an API key issued by an authority)"
        )
    with ctx.db.reader() as s:
        principal = principal_for_key(s, key)
    if principal is None:
        raise _unauthorised("the API key is unknown or revoked")
    return principal


PRINCIPAL_DEPENDENCY: Final = Provide(provide_principal, sync_to_thread=True)
