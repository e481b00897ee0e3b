"""Completion batches, records, corrections, revocations, batch-signing keys, templates.

A batch arrives in the form the base's clerk has at hand:

* ``application/json`` — ``{"batch_key": …, "records": [{…}, …]}`` (English field names, see
  ``GET /api/v1/completions/template``);
* ``text/csv`` — the template's Chinese headers, UTF-8 (with or without BOM) or Excel's GBK;
* ``application/vnd.openxmlformats-officedocument.spreadsheetml.sheet`` — the XLSX template;
* ``multipart/form-data`` — a browser upload: a ``file`` part (CSV or XLSX, told apart by its
  content) and a ``batch_key`` part.

The batch key comes from the ``Idempotency-Key`` header (or ``batch_key`` in JSON / form).  A
base that signs its batches sends ``Batch-Signature: kid=<kid>; sig=<base64>`` over
``"celedger batch v1\\n" + digest`` (the digest is answered by a ``?dry_run=true`` post).
"""

from __future__ import annotations

import base64
from typing import Annotated, Any, Final, Literal

import anyio
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from pydantic import BaseModel, ConfigDict, Field

from api.auth import PRINCIPAL_DEPENDENCY
from api.context import Context
from api.ops import count_batch_accepted
from api.problems import Problem
from certificates.summary_pdf import summary_pdf
from ledger.completions import intake
from ledger.completions import services as cs
from ledger.errors import FormatError
from ledger.registry import services as rs
from ledger.registry.auth import Principal, Scope, require
from ledger.registry.summary import to_csv

__all__ = ["CompletionController", "TemplateController"]

XLSX: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _bad(code: str, detail: str, status: int = 400) -> Problem:
    return Problem(status, code, detail)


def _signature(header: str | None) -> cs.BatchSignature | None:
    if header is None:
        return None
    parts = dict(p.strip().partition("=")[::2] for p in header.split(";") if p.strip())
    kid, sig = parts.get("kid", "").strip(), parts.get("sig", "").strip()
    if not kid or not sig:
        raise _bad(
            "batch.signature-header",
            f"Batch-Signature: expected 'kid=<kid>; sig=<base64>', found {header[:100]!r}",
        )
    try:
        # Standard or URL-safe alphabet, padding optional: whatever the base's tool wrote.
        value = base64.b64decode(
            sig.replace("-", "+").replace("_", "/") + "=" * (-len(sig) % 4), validate=True
        )
    except ValueError:  # binascii.Error, and non-ASCII text (fuzzing found it: was a 500)
        raise _bad("batch.signature-header", "Batch-Signature: sig is not base64") from None
    if len(value) != 64:
        raise _bad(
            "batch.signature-header",
            f"Batch-Signature: expected a 64-byte Ed25519 signature, found {len(value)} bytes",
        )
    return cs.BatchSignature(kid, value)


def _key(header: str | None, body_key: object) -> str:
    if body_key is not None and not isinstance(body_key, str):
        raise _bad("batch.key", f"batch_key: expected a string, found {type(body_key).__name__}")
    if header is not None and body_key is not None and header != body_key:
        raise _bad(
            "batch.key",
            f"Idempotency-Key {header!r} and batch_key {body_key!r} differ: give one, or equal",
        )
    key = header if header is not None else body_key
    if not key:
        raise _bad(
            "batch.key",
            "a batch needs a key that makes retries safe: send an 'Idempotency-Key' header "
            "(or batch_key in a JSON body), e.g. the file name and date",
        )
    key = key.strip()
    if not 1 <= len(key) <= 128 or not key.isprintable():
        raise _bad("batch.key", "batch key: expected 1–128 printable characters")
    return key


def _looks_like_xlsx(data: bytes) -> bool:
    return data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0"))


async def _read_batch(
    request: Request[Any, Any, Any], max_rows: int
) -> tuple[intake.RawBatch, str | None, str | None]:
    """The raw batch, the key from the body (if any) and the signature header."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body_key: str | None = None
    if content_type == "multipart/form-data":
        form = await request.form()
        upload = form.get("file")
        if upload is None or not hasattr(upload, "read"):
            raise _bad("batch.malformed", "multipart upload: expected a 'file' part")
        data = await upload.read()
        value = form.get("batch_key")
        body_key = value if isinstance(value, str) and value else None
        if not data:
            raise _bad("batch.empty", "the uploaded file is empty")
        if _looks_like_xlsx(data):
            return intake.parse_xlsx(data, max_rows=max_rows), body_key, None
        return intake.parse_csv(data, max_rows=max_rows), body_key, None
    data = await request.body()
    if not data:
        raise _bad("batch.empty", "the request body is empty: expected a batch")
    if content_type == "application/json":
        try:
            doc = intake.parse_json_body(data)  # parse_json's rules, a cheaper key check
        except FormatError as exc:
            raise _bad("batch.malformed", f"the body is not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise _bad("batch.malformed", "expected a JSON object {batch_key, records}")
        unknown = sorted(set(doc) - {"batch_key", "records"})
        if unknown:
            raise _bad(
                "batch.malformed",
                f"unknown members {unknown}: a JSON batch has batch_key and records",
            )
        if "records" not in doc:
            raise _bad("batch.malformed", "records: required (an array of records)")
        return (
            intake.parse_json_records(doc["records"], max_rows=max_rows),
            doc.get("batch_key"),
            None,
        )
    if content_type in ("text/csv", "application/csv", "text/plain"):
        return intake.parse_csv(data, max_rows=max_rows), None, None
    if content_type in (XLSX, "application/octet-stream"):
        return intake.parse_xlsx(data, max_rows=max_rows), None, None
    raise _bad(
        "batch.content-type",
        f"Content-Type: expected application/json, text/csv, {XLSX} or multipart/form-data; "
        f"found {content_type or 'none'}",
        415,
    )


class CorrectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: Annotated[str, Field(min_length=1, max_length=2000)]
    changes: dict[str, str | int | float] = Field(
        description="fields to change (English names as in a JSON batch): "
        + ", ".join(sorted(cs.CORRECTABLE))
    )


class RevocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reason_code: Literal["fraud", "error", "duplicate", "base-revoked", "other"]
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


class SigningKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    public_key: Annotated[
        str, Field(description="raw 32-byte Ed25519 public key, base64", max_length=100)
    ]


def _json(data: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(data, status_code=status, media_type="application/json", headers=headers)


class CompletionController(Controller):
    path = "/api/v1"
    tags = ("completions",)
    dependencies = {"actor": PRINCIPAL_DEPENDENCY}  # noqa: RUF012 - Litestar reads it off the class

    @post("/bases/{base:int}/batches", status_code=201)
    async def post_batch(
        self,
        request: Request[Any, Any, Any],
        ctx: NamedDependency[Context],
        actor: NamedDependency[Principal],
        base: FromPath[int],
        dry_run: FromQuery[bool] = False,
    ) -> Response[bytes]:
        """Post a batch of completions (JSON, CSV, XLSX or a multipart upload).

        All or nothing: 422 with every bad row (row, field, column, rule, message) and nothing
        written, or 201 with the receipt (batch id, record ids, ledger index range, signed
        checkpoint).  A retried ``Idempotency-Key`` answers 200 with the original receipt and
        ``Idempotent-Replayed: true``.  ``?dry_run=true`` validates only and answers the digest
        a base signs.
        """
        raw, body_key, _ = await _read_batch(request, ctx.settings.max_batch_rows)
        key = _key(request.headers.get("idempotency-key"), body_key)
        signature = _signature(request.headers.get("batch-signature"))

        def work() -> cs.PostedBatch:
            # Reading, judging and encoding take no lock (a reader session), so concurrent
            # batches — on other workers — overlap there; only the write phase serialises.
            with ctx.db.reader() as s:
                prepared = cs.prepare_batch(
                    s, ctx.vault, actor, base, raw, batch_key=key, signature=signature
                )
            if dry_run:
                return cs.dry_run_receipt(prepared)
            if isinstance(prepared, cs.PostedBatch):
                return prepared  # the key was used before for this content: its receipt
            with ctx.db.writer() as s:
                return cs.commit_batch(s, ctx.log, ctx.vault, prepared)

        posted = await anyio.to_thread.run_sync(work)
        if dry_run:
            return _json(posted.receipt, 200)
        if posted.replayed:
            return _json(posted.receipt, 200, {"Idempotent-Replayed": "true"})
        count_batch_accepted(posted.receipt)
        return _json(
            posted.receipt,
            201,
            {"Location": f"/api/v1/bases/{base}/batches/{posted.batch_id}"},
        )

    @get("/bases/{base:int}/batches/{batch:str}", sync_to_thread=True)
    def get_batch(
        self,
        ctx: NamedDependency[Context],
        actor: NamedDependency[Principal],
        base: FromPath[int],
        batch: FromPath[str],
    ) -> Response[bytes]:
        """The receipt of an accepted batch."""
        with ctx.db.reader() as s:
            return _json(cs.batch_receipt(s, actor, base, batch))

    @get("/completions/{record:str}", sync_to_thread=True)
    def get_record(
        self,
        ctx: NamedDependency[Context],
        actor: NamedDependency[Principal],
        record: FromPath[str],
    ) -> dict[str, Any]:
        """A record with every version (corrections) and any revocation; personal data masked."""
        with ctx.db.reader() as s:
            return cs.record_view(s, ctx.vault, actor, record)

    @post("/completions/{record:str}/corrections", sync_to_thread=True, status_code=201)
    def correct(
        self,
        ctx: NamedDependency[Context],
        actor: NamedDependency[Principal],
        record: FromPath[str],
        data: JSONBody[CorrectionIn],
    ) -> dict[str, Any]:
        """The base corrects its record within the policy's window; a new version supersedes it."""
        with ctx.db.writer() as s:
            receipt = cs.correct(s, ctx.log, ctx.vault, actor, record, data.changes, data.reason)
        return receipt.to_json()

    @post("/completions/{record:str}/revocation", sync_to_thread=True, status_code=201)
    def revoke(
        self,
        ctx: NamedDependency[Context],
        actor: NamedDependency[Principal],
        record: FromPath[str],
        data: JSONBody[RevocationIn],
    ) -> dict[str, Any]:
        """An authority over the base revokes a record (e.g. found fraudulent)."""
        with ctx.db.writer() as s:
            receipt = cs.revoke(s, ctx.log, actor, record, data.reason_code, data.reason)
        return receipt.to_json()

    @post("/bases/{base:int}/signing-keys", sync_to_thread=True, status_code=201)
    def add_signing_key(
        self,
        ctx: NamedDependency[Context],
        actor: NamedDependency[Principal],
        base: FromPath[int],
        data: JSONBody[SigningKeyIn],
    ) -> dict[str, Any]:
        """Register an Ed25519 public key the base signs its batches with (entry key.added)."""
        try:
            raw = base64.b64decode(data.public_key, validate=True)
        except ValueError:  # binascii.Error, and non-ASCII text (fuzzing found it: was a 500)
            raise _bad("base.signing-key.format", "public_key: not base64") from None
        with ctx.db.writer() as s:
            key = cs.register_signing_key(s, ctx.log, actor, base, raw)
            return {"kid": key.kid, "base": f"base:{base}", "log_index": key.log_index}

    @get("/bases/{base:int}/execution-summary", sync_to_thread=True)
    def execution_summary(
        self,
        ctx: NamedDependency[Context],
        actor: NamedDependency[Principal],
        base: FromPath[int],
        year: Annotated[int, QueryParameter(ge=2000, le=2100)],
        fmt: Annotated[Literal["json", "csv", "pdf"], QueryParameter(name="format")] = "json",
    ) -> Response[Any]:
        """The base's annual execution summary (年度计划执行情况) from its posted records."""
        with ctx.db.reader() as s:
            record = rs.base_record(s, base)
            require(
                actor,
                "completion.read",
                Scope(record.jurisdiction_code, record.management_unit_id, record.id),
            )
            summary = rs.execution_summary(s, base, year, cs.summary_rows(s, base, year))
        name = f"execution-summary-base{base}-{year}"
        if fmt == "csv":
            return Response(
                to_csv(summary).encode("utf-8"),  # to_csv writes the BOM itself: once
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
            )
        if fmt == "pdf":
            return Response(
                summary_pdf(summary, ctx.settings.cjk_font),
                media_type="application/pdf",
                headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'},
            )
        return Response(summary.to_json(), media_type="application/json")


class TemplateController(Controller):
    path = "/api/v1/completions/template"
    tags = ("completions",)

    @get("/", sync_to_thread=False)
    def columns(self) -> dict[str, Any]:
        """The batch columns: Chinese header, JSON field, required, example, notes."""
        return {
            "columns": [
                {
                    "header": c.header,
                    "field": c.key,
                    "required": c.required,
                    "example": c.example,
                    "notes": c.note,
                    "aliases": list(c.aliases),
                }
                for c in intake.COLUMNS
            ],
            "downloads": {
                "xlsx": "/api/v1/completions/template/xlsx",
                "csv": "/api/v1/completions/template/csv",
            },
        }

    @get("/xlsx", sync_to_thread=True, media_type=XLSX)
    def xlsx(self) -> Response[bytes]:
        """The XLSX template (学时记录 sheet + 填写说明)."""
        return Response(
            intake.template_xlsx(),
            media_type=XLSX,
            headers={"Content-Disposition": 'attachment; filename="celedger-batch-template.xlsx"'},
        )

    @get("/csv", sync_to_thread=False, media_type="text/csv")
    def csv(self) -> Response[bytes]:
        """The CSV template (UTF-8 with BOM, so Excel shows the Chinese headers)."""
        return Response(
            intake.template_csv(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="celedger-batch-template.csv"'},
        )
