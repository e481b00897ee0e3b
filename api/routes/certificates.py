"""Certificates, transcripts and the published issuing keys.

* ``POST /api/v1/completions/{record}/certificate`` — the 结业证明 PDF of one record (its base,
  management unit or an authority over it); ``?format=json`` answers the credential instead.
* ``POST /api/v1/transcripts`` — a professional's transcript for some years (an authority);
  the ID number travels in the body, never in a URL.
* ``GET /.well-known/did.json`` and ``GET /api/v1/keys/issuing`` — the issuing keys as a did:web
  document and as a JWKS, for verifiers (also offline: save them).

Issuing writes (an issuance row, the first issuing key), so these are POSTs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Response, get, post
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.auth import PRINCIPAL_DEPENDENCY
from api.context import Context
from ledger.completions.models import CompletionRecord
from ledger.identity import IdentityError, validate_id_number
from ledger.issuing import keyset
from ledger.keyset import did_web
from ledger.registry.auth import Principal, Scope, require
from ledger.registry.errors import NotFound
from ledger.registry.services import base_record

__all__ = ["CertificateController", "KeysController"]

Format = Annotated[Literal["pdf", "json"], QueryParameter(name="format")]


class TranscriptIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id_number: Annotated[str, Field(description="身份证号 of the professional", max_length=40)]
    years: Annotated[list[int], Field(min_length=1, max_length=10)]
    jurisdiction: Annotated[
        str | None,
        Field(
            default=None,
            pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,8}){0,2}$",
            description="whose register and policy (default: of the latest record's base)",
        ),
    ] = None

    @field_validator("id_number")
    @classmethod
    def _id(cls, value: str) -> str:
        try:
            return validate_id_number(value)
        except IdentityError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("years")
    @classmethod
    def _years(cls, value: list[int]) -> list[int]:
        if any(not 2000 <= y <= 2100 for y in value):
            raise ValueError("years: expected years between 2000 and 2100")
        return value


def _answer(issued: Any, fmt: str, filename: str) -> Response[Any]:
    if fmt == "json":
        return Response(
            {
                "certificate_number": issued.certificate_number,
                "verify_url": issued.verify_url,
                "kid": issued.kid,
                "credential": issued.credential,
            },
            status_code=201,
        )
    return Response(
        issued.pdf,
        status_code=201,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}-{issued.certificate_number}.pdf"',
            "Cache-Control": "no-store",
        },
    )


class CertificateController(Controller):
    path = "/api/v1"
    tags = ("certificates",)
    dependencies = {"actor": PRINCIPAL_DEPENDENCY}  # noqa: RUF012 - Litestar reads it off the class

    @post("/completions/{record:str}/certificate", sync_to_thread=True)
    def completion(
        self,
        ctx: NamedDependency[Context],
        actor: NamedDependency[Principal],
        record: FromPath[str],
        fmt: Format = "pdf",
    ) -> Response[Any]:
        """Issue the completion certificate (结业证明) of a current record: signed PDF with QR
        code and embedded Open Badges 3.0 credential, or (``?format=json``) the credential."""
        from certificates.issue import completion_certificate

        issuer = ctx.issuer()
        with ctx.db.writer() as s:
            row = s.get(CompletionRecord, record)
            if row is None:
                raise NotFound("record.unknown", f"no completion record {record!r}")
            base = base_record(s, row.base_id)
            require(
                actor,
                "completion.read",
                Scope(base.jurisdiction_code, base.management_unit_id, base.id),
            )
            issued = completion_certificate(s, issuer, actor.id, record)
        return _answer(issued, fmt, "certificate")

    @post("/transcripts", sync_to_thread=True)
    def transcript(
        self,
        ctx: NamedDependency[Context],
        actor: NamedDependency[Principal],
        data: JSONBody[TranscriptIn],
        fmt: Format = "pdf",
    ) -> Response[Any]:
        """Issue a transcript (继续教育证书 extract) for the given years: every current record,
        totals per category and the compliance verdict of the jurisdiction's policy."""
        from certificates.issue import person_by_id_number, transcript

        issuer = ctx.issuer()
        with ctx.db.writer() as s:
            require(actor, "transcript.issue", Scope(data.jurisdiction or actor.jurisdiction))
            person = person_by_id_number(s, ctx.vault, data.id_number)
            issued = transcript(
                s,
                issuer,
                actor.id,
                person,
                data.years,
                jurisdiction=data.jurisdiction or actor.jurisdiction,
            )
        return _answer(issued, fmt, "transcript")


# Short: a compromise must reach verifiers within a minute, and the answer is cheap.
_KEYS_CACHE = CacheControlHeader(max_age=60, public=True)


class KeysController(Controller):
    tags = ("keys",)

    @get("/.well-known/did.json", sync_to_thread=True, cache_control=_KEYS_CACHE)
    def did(self, ctx: NamedDependency[Context]) -> dict[str, Any]:
        """The issuer's did:web document: one Multikey verification method per issuing key."""
        with ctx.db.reader() as s:
            return keyset(s).did_document(did_web(ctx.settings.public_url))

    @get("/api/v1/keys/issuing", sync_to_thread=True, cache_control=_KEYS_CACHE)
    def jwks(self, ctx: NamedDependency[Context]) -> dict[str, Any]:
        """The issuing keys as a JWKS, with each key's status and validity times."""
        with ctx.db.reader() as s:
            return keyset(s).to_jwks()
