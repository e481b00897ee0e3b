"""Issuing certificates and transcripts from the ledger: data → credential → PDF → signature.

One function per document.  Each gathers the record(s) from the database, proves them against
the latest signed checkpoint (c2sp tlog-proof), signs a QR token and a W3C credential with the
active issuing key, renders the PDF with both embedded, signs it (PAdES) and records the
issuance (certificate number, token) so that a scan or an upload can be resolved later.

Personal data: the PDF carries the holder's name (it is the holder's own document) and the
**masked** ID number; the QR, the URL, the credential and the issuance row carry none.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from certificates.credentials import (
    CompletionFacts,
    completion_credential,
    hashed_identity,
    transcript_credential,
)
from certificates.fonts import FontSet, load_fonts
from certificates.model import (
    Attachment,
    CategoryTotal,
    CompletionData,
    RecordLine,
    TranscriptData,
)
from certificates.pdf import RenderJob, render_completion, render_many, render_transcript
from ledger.completions.models import CompletionRecord, IssuedDocument, Person, Revocation
from ledger.completions.pii import PersonalDataVault
from ledger.compliance import CreditedHours, assess
from ledger.identity import mask_id
from ledger.issuing import active_signer, create_issuing_key, keyset
from ledger.keyset import IssuingSigner, did_web
from ledger.policy import EffectivePolicy
from ledger.registry.errors import NotFound, StateConflict
from ledger.registry.models import BaseRecord, Jurisdiction, PlanClass
from ledger.registry.services import CHINA_TZ, effective_policy, local_date
from ledger.storage.log import Log
from ledger.tlogproof import TlogProof
from verification.token import TokenClaims, issue_token, token_url

__all__ = ["IssuedPdf", "Issuer", "completion_certificate", "person_by_id_number", "transcript"]

PdfSigner = Callable[[bytes], bytes]


@dataclass(frozen=True)
class Issuer:
    """What issuing needs from the running service (built once by the API or the CLI)."""

    log: Log
    vault: PersonalDataVault
    kek: bytes
    public_url: str
    sign_pdf: PdfSigner | None = None
    issuer_name: str = "CE Ledger 专业技术人员继续教育学时账本"
    #: The CJK font (``CELEDGER_CJK_FONT``: ``/path/f.ttf`` or ``/path/f.ttc#N``); None: default.
    font: str | None = None

    def fonts(self) -> FontSet:
        return load_fonts(self.font)  # parsed once per process per font

    @property
    def did(self) -> str:
        return did_web(self.public_url)


@dataclass(frozen=True)
class IssuedPdf:
    pdf: bytes
    credential: dict[str, Any]
    certificate_number: str
    verify_url: str
    kid: str


def _now(now: datetime | None) -> datetime:
    at = datetime.now(UTC) if now is None else now.astimezone(UTC)
    return at.replace(microsecond=0)  # credentials and key rules work in whole seconds


def signer_for(session: Session, issuer: Issuer, now: datetime) -> IssuingSigner:
    """The active issuing key.  The very first one is made on first use (a ``key.added``
    entry); after a compromise there is none until the operator rotates — issuing is then
    refused rather than silently signing with a fresh, unannounced key."""
    if not keyset(session).keys:
        # Concurrent first certificates all find no key, and all but one were refused (422) by
        # create_issuing_key: look again under the append lock, which its creator holds until
        # it commits (re-taking it there is harmless: the lock is per transaction).
        issuer.log.lock(session)
        if not keyset(session).keys:
            create_issuing_key(session, issuer.log, issuer.kek, now)
    return active_signer(session, issuer.kek)


def _certificate_number(at: datetime) -> str:
    # Date for the reader, 40 random bits so numbers cannot be guessed or enumerated.
    return f"CE{local_date(at):%Y%m%d}{base64.b32encode(secrets.token_bytes(5)).decode()}"


def _checkpoint(session: Session, log: Log) -> tuple[int, str]:
    cp = log.latest_checkpoint(session)
    if cp is None:
        raise StateConflict("ledger.empty", "the ledger has no signed checkpoint yet")
    return cp.size, cp.note


def _proof(session: Session, log: Log, index: int, size: int, note: str) -> str:
    path = log.inclusion_proof(session, index, size)
    return TlogProof(index=index, inclusion=tuple(path), checkpoint=note).to_text()


def _holder(session: Session, vault: PersonalDataVault, person_id: int) -> tuple[str, str]:
    person = session.get(Person, person_id)
    if person is None or person.sealed is None:
        raise StateConflict("person.erased", "the holder's personal data was erased")
    data = vault.open(person.sealed, person.lookup)
    return data["name"], data["id_number"]


def _is_current(session: Session, record: CompletionRecord) -> str | None:
    if session.get(Revocation, record.id) is not None:
        return "revoked"
    successor = session.scalar(
        select(CompletionRecord.id).where(CompletionRecord.supersedes == record.id)
    )
    return None if successor is None else f"superseded by {successor}"


@dataclass(frozen=True)
class _Line:
    record: CompletionRecord
    base: BaseRecord
    title: str
    base_level: str | None


def _line(session: Session, record: CompletionRecord) -> _Line:
    base = session.get(BaseRecord, record.base_id)
    assert base is not None
    title = session.scalar(
        select(PlanClass.title).where(
            PlanClass.plan_id == record.plan_id, PlanClass.code == record.class_code
        )
    )
    jurisdiction = session.get(Jurisdiction, base.jurisdiction_code)
    return _Line(
        record, base, title or record.class_code, jurisdiction.level if jurisdiction else None
    )


def _record_line(line: _Line) -> RecordLine:
    r = line.record
    return RecordLine(
        record_id=r.id,
        start=r.start_date,
        end=r.end_date,
        class_code=r.class_code,
        class_title=line.title,
        base_name=line.base.title,
        category=r.category,
        mode=r.mode,
        hours=Decimal(r.hours_tenths) / 10,
        result=r.result,
    )


def _facts(line: _Line) -> CompletionFacts:
    r = line.record
    return CompletionFacts(
        record_id=r.id,
        record_token=bytes(r.token),
        ledger_index=r.log_index,
        base_id=line.base.id,
        base_name=line.base.title,
        class_code=r.class_code,
        class_title=line.title,
        category=r.category,
        mode=r.mode,
        hours_tenths=r.hours_tenths,
        year=r.year,
        start_date=r.start_date,
        end_date=r.end_date,
        result=r.result,
    )


def _credential(
    session: Session,
    issuer: Issuer,
    signer: IssuingSigner,
    line: _Line,
    id_number: str,
    size: int,
    note: str,
    at: datetime,
    url: str | None,
) -> tuple[dict[str, Any], str]:
    proof = _proof(session, issuer.log, line.record.log_index, size, note)
    entry = Log.entry(session, line.record.log_index)
    assert entry is not None
    credential = completion_credential(
        _facts(line),
        holder=hashed_identity(id_number),
        issuer_did=issuer.did,
        issuer_name=issuer.issuer_name,
        signer=signer,
        tlog_proof=proof,
        ledger_entry=entry,
        issued_at=at,
        verification_url=url,
    )
    return credential, proof


def _finish(
    session: Session,
    issuer: Issuer,
    pdf: bytes,
    *,
    number: str,
    token: bytes,
    kind: str,
    person: int,
    records: Sequence[str],
    period: str,
    kid: str,
    size: int,
    at: datetime,
    actor: str,
) -> bytes:
    signed = issuer.sign_pdf(pdf) if issuer.sign_pdf is not None else pdf
    session.add(
        IssuedDocument(
            certificate_number=number,
            token=token,
            kind=kind,
            person_id=person,
            records=" ".join(records),
            period=period,
            kid=kid,
            tree_size=size,
            issued_at=at,
            issued_by=actor,
            pdf_sha256=hashlib.sha256(signed).hexdigest(),
        )
    )
    session.flush()
    return signed


def _json_attachment(name: str, doc: dict[str, Any], description: str) -> Attachment:
    data = json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8")
    return Attachment(name, data, "application/json", description)


@dataclass(frozen=True)
class _Prepared:
    job: RenderJob
    credential: dict[str, Any]
    number: str
    url: str
    kid: str
    record: CompletionRecord
    size: int
    at: datetime


def _prepare_completion(
    session: Session, issuer: Issuer, record_id: str, at: datetime
) -> _Prepared:
    record = session.get(CompletionRecord, record_id)
    if record is None:
        raise NotFound("record.unknown", f"no completion record {record_id!r}")
    stale = _is_current(session, record)
    if stale is not None:
        raise StateConflict(
            "certificate.not-current", f"record {record_id} is {stale}: no certificate for it"
        )
    signer = signer_for(session, issuer, at)
    size, note = _checkpoint(session, issuer.log)
    line = _line(session, record)
    name, id_number = _holder(session, issuer.vault, record.person_id)
    claims = TokenClaims(bytes(record.token), record.log_index, int(at.timestamp()), signer.kid)
    url = token_url(issuer.public_url, issue_token(claims, signer))
    credential, proof = _credential(session, issuer, signer, line, id_number, size, note, at, url)
    policy = effective_policy(session, line.base.jurisdiction_code, date(record.year, 12, 31))
    details = issuer.vault.open(record.sealed, record.id.encode("ascii")) if record.sealed else {}
    number = _certificate_number(at)
    data = CompletionData(
        register_name=policy.register_name.strip("《》"),  # the renderer adds the brackets
        holder_name=name,
        masked_id=mask_id(id_number),
        employer=details.get("employer", ""),
        record=_record_line(line),
        issued_on=local_date(at),
        certificate_number=number,
        issuer_name=issuer.issuer_name,
        verify_url=url,
        key_id=signer.kid,
    )
    attachments = (
        _json_attachment("credential.json", credential, "Open Badges 3.0 credential"),
        Attachment("ledger-proof.txt", proof.encode(), "text/plain", "c2sp.org/tlog-proof"),
    )
    return _Prepared(
        RenderJob(data, attachments), credential, number, url, signer.kid, record, size, at
    )


def _finish_completion(
    session: Session, issuer: Issuer, actor: str, p: _Prepared, pdf: bytes
) -> IssuedPdf:
    signed = _finish(
        session,
        issuer,
        pdf,
        number=p.number,
        token=bytes(p.record.token),
        kind="completion",
        person=p.record.person_id,
        records=[p.record.id],
        period=str(p.record.year),
        kid=p.kid,
        size=p.size,
        at=p.at,
        actor=actor,
    )
    return IssuedPdf(signed, p.credential, p.number, p.url, p.kid)


def completion_certificate(
    session: Session, issuer: Issuer, actor: str, record_id: str, *, now: datetime | None = None
) -> IssuedPdf:
    """The 结业证明 of one current record (writer session: may create the first issuing key)."""
    p = _prepare_completion(session, issuer, record_id, _now(now))
    assert isinstance(p.job.data, CompletionData)
    return _finish_completion(
        session,
        issuer,
        actor,
        p,
        render_completion(p.job.data, p.job.attachments, fonts=issuer.fonts()),
    )


def completion_certificates(
    session: Session,
    issuer: Issuer,
    actor: str,
    record_ids: Sequence[str],
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> list[IssuedPdf]:
    """Many certificates at once: data and credentials here, rendering in a process pool over
    every core (`render_many`), then PAdES signing and the issuance rows here."""
    at = _now(now)
    prepared = []
    for rid in record_ids:
        prepared.append(_prepare_completion(session, issuer, rid, at))
        if progress is not None:
            progress(1)
    pdfs = render_many([p.job for p in prepared], workers, font=issuer.font)
    out = []
    for p, pdf in zip(prepared, pdfs, strict=True):
        out.append(_finish_completion(session, issuer, actor, p, pdf))
        if progress is not None:
            progress(1)
    return out


def person_by_id_number(session: Session, vault: PersonalDataVault, id_number: str) -> int:
    person = session.scalar(select(Person.id).where(Person.lookup == vault.lookup(id_number)))
    if person is None:
        raise NotFound("person.unknown", "no records for this ID number")
    return int(person)


def _hours(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _verdict(
    policy: EffectivePolicy, lines: Sequence[_Line], years: Sequence[int]
) -> tuple[tuple[CategoryTotal, ...], Decimal, Decimal, bool, tuple[str, ...]]:
    credited = [
        CreditedHours(
            year=ln.record.year,
            category=ln.record.category,
            mode=ln.record.mode,
            hours=Decimal(ln.record.hours_tenths) / 10,
            base_level=ln.base_level,  # type: ignore[arg-type]
        )
        for ln in lines
    ]
    results = assess(policy, credited, list(years))
    by_category: dict[str, Decimal] = defaultdict(Decimal)
    required: dict[str, Decimal] = defaultdict(Decimal)
    for result in results:
        for category, hours in result.by_category.items():
            by_category[category] += hours
        for check in result.category_checks:
            required[check.category] += check.required
    totals = tuple(
        CategoryTotal(category, by_category.get(category, Decimal(0)), required.get(category))
        for category in policy.hours.categories
    )
    total = sum((r.total for r in results), Decimal(0))
    need = sum((r.required for r in results), Decimal(0))
    ok = all(r.met for r in results)
    verdict = tuple(r.summary_zh for r in results)
    return totals, total, need, ok, verdict


def transcript(
    session: Session,
    issuer: Issuer,
    actor: str,
    person_id: int,
    years: Sequence[int],
    *,
    jurisdiction: str | None = None,
    now: datetime | None = None,
) -> IssuedPdf:
    """The holder's transcript for ``years`` (current, unrevoked records), with the verdict of
    the jurisdiction's policy (default: the jurisdiction of the holder's most recent base)."""
    at = _now(now)
    wanted = sorted(set(years))
    records = [
        r
        for r in session.execute(
            select(CompletionRecord)
            .where(CompletionRecord.person_id == person_id, CompletionRecord.year.in_(wanted))
            .order_by(CompletionRecord.start_date, CompletionRecord.log_index)
        ).scalars()
        if _is_current(session, r) is None
    ]
    lines = [_line(session, r) for r in records]
    code = jurisdiction or (lines[-1].base.jurisdiction_code if lines else "CN")
    policy = effective_policy(session, code, date(wanted[-1], 12, 31))
    signer = signer_for(session, issuer, at)
    size, note = _checkpoint(session, issuer.log)
    name, id_number = _holder(session, issuer.vault, person_id)
    token = secrets.token_bytes(16)
    claims = TokenClaims(token, size, int(at.timestamp()), signer.kid)
    url = token_url(issuer.public_url, issue_token(claims, signer))
    credentials: list[dict[str, Any]] = []
    attachments: list[Attachment] = []
    for line in lines:
        credential, proof = _credential(
            session, issuer, signer, line, id_number, size, note, at, None
        )
        credentials.append(credential)
        attachments.append(
            Attachment(
                f"ledger-proof-{line.record.id}.txt",
                proof.encode(),
                "text/plain",
                "c2sp.org/tlog-proof",
            )
        )
    period = f"{wanted[0]}年度" if len(wanted) == 1 else f"{wanted[0]}—{wanted[-1]}年度"
    if credentials:
        clr = transcript_credential(
            credentials,
            holder=hashed_identity(id_number),
            issuer_did=issuer.did,
            issuer_name=issuer.issuer_name,
            signer=signer,
            issued_at=at,
            name=f"{policy.register_name} {period}",
        )
    else:
        clr = {}
    totals, total, need, ok, verdict = _verdict(policy, lines, wanted)
    details = {}
    if records and records[-1].sealed:
        details = issuer.vault.open(records[-1].sealed, records[-1].id.encode("ascii"))
    number = _certificate_number(at)
    data = TranscriptData(
        register_name=policy.register_name.strip("《》"),  # the renderer adds the brackets
        jurisdiction_name=policy.name,
        holder_name=name,
        masked_id=mask_id(id_number),
        employer=details.get("employer", ""),
        period_label=period,
        records=tuple(_record_line(ln) for ln in lines),
        totals=totals,
        total_hours=total,
        required_hours=need,
        verdict_ok=ok,
        verdict_lines=verdict,
        issued_on=at.astimezone(CHINA_TZ).date(),
        certificate_number=number,
        issuer_name=issuer.issuer_name,
        verify_url=url,
        key_id=signer.kid,
    )
    if clr:
        attachments.insert(0, _json_attachment("credential.json", clr, "CLR 2.0 transcript"))
    pdf = render_transcript(data, attachments, fonts=issuer.fonts())
    signed = _finish(
        session,
        issuer,
        pdf,
        number=number,
        token=token,
        kind="transcript",
        person=person_id,
        records=[r.id for r in records],
        period=period,
        kid=signer.kid,
        size=size,
        at=at,
        actor=actor,
    )
    return IssuedPdf(signed, clr, number, url, signer.kid)
