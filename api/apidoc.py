"""What the OpenAPI document says each operation takes and answers, where Litestar cannot tell.

Litestar infers the document from handler signatures.  Left alone it lies in three ways, each
found by fuzzing the served document (tests/test_fuzz_openapi.py):

* **Errors.**  Every error the service gives is an RFC 9457 problem
  (``application/problem+json``, built in ``api.problems``); Litestar documents only a 400, in
  its own JSON shape.  ``complete_openapi`` declares, per operation, the problems it can answer,
  by what the handler takes:

  - parameters or a body → 400 (validation, malformed input);
  - an API key (``actor``) → 401, 403, and the domain's 404 / 409 / 422;
  - a professional's session (``holder``) → 401, and the domain's 404 / 409 / 422;
  - a path parameter → 404 (nothing there);
  - a body → 413 (larger than the configured limit);
  - a public verification path → 429 (the per-client rate limit);
  - and the few answers only one operation gives (``_EXTRA``).

  A 500 is never declared: it is a bug, and the fuzzing test fails on it whatever the
  document says.
* **Success answers** Litestar cannot infer (``_CONTENT``): JSON served as prepared bytes (a
  ledger entry, a receipt), and operations answering one of several media types (a certificate
  as PDF or, with ``?format=json``, as JSON).
* **Bodies read by hand** (``_BODY``): a batch (JSON, CSV, XLSX or a multipart upload), a policy
  document, an uploaded PDF, a witness request.  Undocumented, no client — and no fuzzer — knows
  they exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from litestar import Litestar
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Reference,
    RequestBody,
)
from litestar.openapi.spec import Schema as JsonSchema
from litestar.openapi.spec.operation import Operation
from litestar.routes import HTTPRoute
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["PROBLEM_MEDIA_TYPE", "ProblemDetails", "complete_openapi"]

PROBLEM_MEDIA_TYPE: Final = "application/problem+json"
XLSX: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class ProblemDetails(BaseModel):
    """RFC 9457 problem details; members beyond these name what to fix (``errors``, ``rule``)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="URI of the problem type")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="what was expected and what was found")
    code: str = Field(description="stable machine-readable code")


_DESCRIPTIONS: Final = {
    400: "malformed request: the problem names the field and the reason",
    401: "no valid credential (API key or session)",
    403: "the credential's principal may not do this here",
    404: "no such resource",
    409: "conflicts with the current state (e.g. a key reused with other content)",
    410: "already used (a one-time code)",
    413: "request body larger than the configured limit",
    415: "unsupported Content-Type",
    422: "refused by a rule of the domain: the problem names the rule",
    429: "too many requests from this client (Retry-After)",
    503: "the service cannot do this now",
}

#: Answers that follow from what one operation does rather than from what it takes.
_EXTRA: Final[dict[tuple[str, str], frozenset[int]]] = {
    ("GET", "/log/checkpoint"): frozenset({404}),  # the log has no checkpoint yet
    ("GET", "/api/v1/log/proof/inclusion"): frozenset({404}),
    ("GET", "/api/v1/log/proof/consistency"): frozenset({404}),
    ("GET", "/log/cosigned-checkpoint"): frozenset({404}),
    ("POST", "/api/v1/bases/{base:int}/batches"): frozenset({415}),
    # c2sp.org/tlog-witness: unknown log, stale size, inconsistent, unconfigured.
    ("POST", "/witness/add-checkpoint"): frozenset({403, 404, 409, 422, 503}),
    # Sign-in lock-outs (ledger.accounts.throttle) answer 429 with Retry-After.
    ("POST", "/api/v1/me/activate"): frozenset({401, 404, 409, 410, 422, 429}),
    ("POST", "/api/v1/me/sign-in"): frozenset({401, 429}),
    ("POST", "/api/v1/me/password"): frozenset({429}),
    ("POST", "/api/v1/me/erasure"): frozenset({429}),
}

_OBJECT: Final = JsonSchema(type=OpenAPIType.OBJECT)
_TEXT: Final = JsonSchema(type=OpenAPIType.STRING)
_BINARY: Final = JsonSchema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
_CERTIFICATE: Final = {201: {"application/pdf": _BINARY, "application/json": _OBJECT}}


def _form(**properties: JsonSchema | Reference) -> JsonSchema:
    return JsonSchema(type=OpenAPIType.OBJECT, properties=properties, required=["file"])


#: Success answers, by status and media type, that replace what Litestar infers.
_CONTENT: Final[dict[tuple[str, str], dict[int, dict[str, JsonSchema]]]] = {
    # Canonical JSON bytes, served exactly as stored or hashed.
    ("GET", "/api/v1/log/entries/{index:int}"): {200: {"application/json": _OBJECT}},
    ("GET", "/api/v1/directory/jurisdictions/{code:str}/policy/{version:int}"): {
        200: {"application/json": _OBJECT}
    },
    ("GET", "/api/v1/bases/{base:int}/batches/{batch:str}"): {200: {"application/json": _OBJECT}},
    # 201 for a new batch; 200 for a replayed Idempotency-Key or a dry run.
    ("POST", "/api/v1/bases/{base:int}/batches"): {
        201: {"application/json": _OBJECT},
        200: {"application/json": _OBJECT},
    },
    ("GET", "/api/v1/bases/{base:int}/execution-summary"): {
        200: {"application/json": _OBJECT, "text/csv": _TEXT, "application/pdf": _BINARY}
    },
    ("POST", "/api/v1/completions/{record:str}/certificate"): _CERTIFICATE,
    ("POST", "/api/v1/transcripts"): _CERTIFICATE,
    ("POST", "/api/v1/me/records/{record:str}/certificate"): _CERTIFICATE,
    ("POST", "/api/v1/me/transcript"): _CERTIFICATE,
    ("GET", "/api/v1/me/shares/{share:str}/qr"): {
        200: {"image/svg+xml": _TEXT, "image/png": _BINARY}
    },
}

#: Request bodies the handler reads itself (``request.body()`` / ``request.form()``).
_BODY: Final[dict[tuple[str, str], dict[str, JsonSchema]]] = {
    ("POST", "/api/v1/bases/{base:int}/batches"): {
        "application/json": JsonSchema(
            type=OpenAPIType.OBJECT,
            properties={
                "batch_key": JsonSchema(type=OpenAPIType.STRING, max_length=128),
                "records": JsonSchema(type=OpenAPIType.ARRAY, items=_OBJECT),
            },
            required=["records"],
            description="English field names: see GET /api/v1/completions/template",
        ),
        "text/csv": JsonSchema(
            type=OpenAPIType.STRING,
            description="the template's Chinese headers; UTF-8, GBK/GB18030 or UTF-16",
        ),
        XLSX: _BINARY,
        "multipart/form-data": _form(
            file=_BINARY, batch_key=JsonSchema(type=OpenAPIType.STRING, max_length=128)
        ),
    },
    ("POST", "/api/v1/registry/policies"): {
        "application/json": JsonSchema(
            type=OpenAPIType.OBJECT, description="a policy document (ledger/policies/*.json)"
        )
    },
    ("POST", "/api/v1/verify/pdf"): {
        "application/pdf": _BINARY,
        "multipart/form-data": _form(file=_BINARY),
    },
    ("POST", "/verify"): {"multipart/form-data": _form(file=_BINARY)},
    ("POST", "/witness/add-checkpoint"): {
        "text/plain": JsonSchema(
            type=OpenAPIType.STRING,
            description="c2sp.org/tlog-witness: old size, consistency proof, checkpoint",
        )
    },
}

_BODY_PARAMETERS: Final = frozenset({"data", "body", "request"})


def _statuses(
    method: str, path: str, parameters: frozenset[str], rate_limited: bool
) -> frozenset[int]:
    found: set[int] = set()
    takes = parameters - {"ctx", "actor", "holder", "request"}
    reads_body = method in ("POST", "PUT", "PATCH") and bool(parameters & _BODY_PARAMETERS)
    if takes or reads_body:
        found.add(400)
    if "{" in path:
        found.add(404)
    if "actor" in parameters:
        found |= {401, 403, 404, 409, 422}
    if "holder" in parameters:
        found |= {401, 404, 409, 422}
    if reads_body:
        found.add(413)
    if rate_limited:
        found.add(429)
    found |= _EXTRA.get((method, path), frozenset())
    return frozenset(found)


def _operation_class(
    content: dict[int, dict[str, JsonSchema]] | None, body: dict[str, JsonSchema] | None
) -> type[Operation]:
    """An ``Operation`` with these success answers and request body (Litestar's hook)."""

    @dataclass
    class _Operation(Operation):
        def __post_init__(self) -> None:
            responses = dict(self.responses or {})
            for status, media in (content or {}).items():
                previous = responses.get(str(status))
                responses[str(status)] = OpenAPIResponse(
                    description=getattr(previous, "description", None) or "OK",
                    headers=getattr(previous, "headers", None),
                    content={m: OpenAPIMediaType(schema=schema) for m, schema in media.items()},
                )
            self.responses = responses
            if body is not None:
                self.request_body = RequestBody(
                    content={m: OpenAPIMediaType(schema=schema) for m, schema in body.items()},
                    required=True,
                )

    return _Operation


def complete_openapi(app: Litestar, rate_limited: Callable[[str], bool]) -> None:
    """Declare the problems, success answers and hand-read bodies of ``app``'s operations.

    Call it once, after the application is built and before the schema is first served (the
    document is generated lazily from the handlers).  ``rate_limited(path)`` says whether a
    path is behind the verification rate limit.
    """
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if not handler.resolve_include_in_schema():
                continue
            parameters = frozenset(handler.parsed_fn_signature.parameters)
            declared = dict(handler.responses or {})
            for method in sorted(handler.http_methods):
                for status in sorted(
                    _statuses(method, route.path, parameters, rate_limited(route.path))
                ):
                    declared.setdefault(
                        status,
                        ResponseSpec(
                            data_container=ProblemDetails,
                            media_type=PROBLEM_MEDIA_TYPE,
                            description=_DESCRIPTIONS[status],
                            generate_examples=False,
                        ),
                    )
                key = (method, route.path)
                if key in _CONTENT or key in _BODY:
                    handler.operation_class = _operation_class(_CONTENT.get(key), _BODY.get(key))
            handler.responses = declared
