"""One table from domain errors to RFC 9457 problem details.

A client's mistake is a 4xx that names the field and the reason; only a bug is a 500, and
its body says nothing about internals.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from sqlalchemy.exc import DataError

from api.ops import ID_NUMBER, count_batch_refused
from ledger.errors import AppendError, FormatError, LedgerError, ProofError
from ledger.identity import mask_id
from ledger.registry.errors import (
    InstitutionBarred,
    NotFound,
    PermissionDenied,
    RuleViolation,
    StateConflict,
)

log = logging.getLogger("celedger.api")

PROBLEM_BASE = "https://celedger.example.cn/problems/"

# Order matters: the first matching class wins.
STATUS_FOR: list[tuple[type[Exception], int, str]] = [
    (PermissionDenied, 403, "permission-denied"),
    (NotFound, 404, "not-found"),
    (StateConflict, 409, "state-conflict"),
    (InstitutionBarred, 422, "institution-barred"),
    (RuleViolation, 422, "rule-violation"),
    (ProofError, 400, "bad-proof-request"),
    (FormatError, 400, "malformed"),
    (AppendError, 409, "append-refused"),
    (LedgerError, 422, "refused"),
]


class Problem(Exception):
    """Raise from a handler to answer with a specific problem."""

    def __init__(
        self, status: int, code: str, detail: str, *, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra or {}


# Mainland mobile numbers (11 digits, 13x–19x).
_MOBILE: Final = re.compile(r"(?<![0-9])(1[3-9][0-9])[0-9]{4}([0-9]{4})(?![0-9])")


def _masked(value: Any) -> Any:
    # Problems say what they found, and a client may send personal data where it does not
    # belong (an ID number pasted as a token or a query value, a phone number as an index).
    # Whatever a problem quotes is masked as the public pages mask it: an error body ends up
    # in proxies' caches, tickets and screenshots.
    if isinstance(value, str):
        return _MOBILE.sub(r"\1****\2", ID_NUMBER.sub(lambda m: mask_id(m.group()), value))
    if isinstance(value, list):
        return [_masked(v) for v in value]
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    return value


def problem_response(
    status: int, code: str, title: str, detail: str, extra: dict[str, Any] | None = None
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": title,
        "status": status,
        "detail": _masked(detail),
        "code": code,
    }
    if extra:
        body.update(_masked(extra))
    return Response(body, status_code=status, media_type="application/problem+json")


def handle_problem(request: Request[Any, Any, Any], exc: Problem) -> Response[dict[str, Any]]:
    count_batch_refused(request, exc)
    return problem_response(exc.status, exc.code, exc.code, exc.detail, exc.extra)


def _details(exc: LedgerError) -> dict[str, Any]:
    """Machine-readable members a client can act on: the rule's stable id, per-row errors."""
    extra: dict[str, Any] = {}
    rule = getattr(exc, "rule", None)
    if isinstance(rule, str):
        extra["rule"] = rule
    more = getattr(exc, "problem_extra", None)
    if callable(more):
        extra.update(more())
    return extra


def handle_ledger_error(
    request: Request[Any, Any, Any], exc: LedgerError
) -> Response[dict[str, Any]]:
    count_batch_refused(request, exc)
    # Errors that know their own HTTP status and stable code (e.g. an unreadable upload: 400,
    # an oversized batch: 413) answer with them; the rest by class, in STATUS_FOR order.
    own_status, own_code = getattr(exc, "status", None), getattr(exc, "code", None)
    if isinstance(own_status, int) and isinstance(own_code, str):
        return problem_response(own_status, own_code, type(exc).__name__, str(exc), _details(exc))
    for cls, status, code in STATUS_FOR:
        if isinstance(exc, cls):
            return problem_response(status, code, type(exc).__name__, str(exc), _details(exc))
    return problem_response(422, "refused", type(exc).__name__, str(exc), _details(exc))


def handle_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    extra: dict[str, Any] = {}
    detail = exc.detail
    if isinstance(exc, ValidationException):
        if exc.extra:
            extra["errors"] = exc.extra
        # Litestar's detail quotes the whole URL, query string and path values included (any
        # text a client put there); the route template says where without repeating them.
        route = request.scope.get("path_template") or "(unmatched)"
        detail = f"Validation failed for {request.method} {route}"
    code = {
        400: "bad-request",
        401: "unauthenticated",
        403: "forbidden",
        404: "not-found",
        405: "method-not-allowed",
        413: "too-large",
        429: "rate-limited",
    }.get(exc.status_code, "http-error")
    return (
        problem_response(
            exc.status_code,
            code,
            code,
            detail,
            extra,
        )
        if exc.headers is None
        else _with_headers(
            problem_response(exc.status_code, code, code, detail, extra), exc.headers
        )
    )


def _with_headers(
    resp: Response[dict[str, Any]], headers: dict[str, str]
) -> Response[dict[str, Any]]:
    for k, v in headers.items():
        resp.headers[k] = v
    return resp


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    # No personal data in logs: the route template (a raw path can hold an ID number, a name
    # or a token typed into it) and the exception, never the body.
    route = request.scope.get("path_template") or "unmatched"
    log.exception("unhandled error on %s %s", request.method, route)
    return problem_response(
        500, "internal", "Internal Server Error", "internal error; it has been logged"
    )


def handle_out_of_range(
    request: Request[Any, Any, Any], exc: Exception
) -> Response[dict[str, Any]]:
    # A number beyond what the database stores (an id of 2^40 in a URL: PostgreSQL's integer
    # is 32 bits, SQLite's 64) names nothing; it is the client's mistake, not a 500.
    if isinstance(exc, OverflowError) and "SQLite INTEGER" not in str(exc):
        return handle_unexpected(request, exc)
    return problem_response(
        400,
        "out-of-range",
        "out-of-range",
        "a value in the request is out of range for what it names (e.g. a number larger "
        "than any id, year or index stored here)",
    )


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    DataError: handle_out_of_range,
    OverflowError: handle_out_of_range,
    Problem: handle_problem,
    LedgerError: handle_ledger_error,
    HTTPException: handle_http,
    Exception: handle_unexpected,
}
