"""One table from domain errors to RFC 9457 problem details.

A client's mistake is a 4xx that names the field and the reason; only a bug is a 500, and
its body says nothing about internals.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from api.ops import count_batch_refused
from ledger.errors import AppendError, FormatError, LedgerError, ProofError
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


def problem_response(
    status: int, code: str, title: str, detail: str, extra: dict[str, Any] | None = None
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if extra:
        body.update(extra)
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


def handle_http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    extra: dict[str, Any] = {}
    if isinstance(exc, ValidationException) and exc.extra:
        extra["errors"] = exc.extra
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
            exc.detail,
            extra,
        )
        if exc.headers is None
        else _with_headers(
            problem_response(exc.status_code, code, code, exc.detail, extra), exc.headers
        )
    )


def _with_headers(
    resp: Response[dict[str, Any]], headers: dict[str, str]
) -> Response[dict[str, Any]]:
    for k, v in headers.items():
        resp.headers[k] = v
    return resp


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    # No personal data in logs: the path and exception type only, never the body.
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(
        500, "internal", "Internal Server Error", "internal error; it has been logged"
    )


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    Problem: handle_problem,
    LedgerError: handle_ledger_error,
    HTTPException: handle_http,
    Exception: handle_unexpected,
}
