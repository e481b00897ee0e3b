"""Online verification of a scanned token: the checks, from the ledger as it stands now.

``verify`` answers a `verification.report.Report` for any text (never raises for bad input:
an unreadable token is the verdict "unknown", a bad signature "forged").  Checks, in order:

* ``signature``   — the token is signed by a published issuing key;
* ``key-status``  — that key was good when the token was issued (not retired, not compromised);
* ``record-status`` — the record (or every record of a transcript) is current: not revoked, not
  superseded by a correction;
* ``ledger-inclusion`` — each record's entry is in the tree of the latest signed checkpoint
  (inclusion proof checked against the checkpoint's signature);
* ``base-recognised`` — the base was recognised on every training day (a base revoked *after*
  the training does not void it: shown as a note).

Only masked personal data leaves this module; ``match`` answers match / no match for a name or
ID number a verifier typed, never the data.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
import unicodedata
from _thread import LockType
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from ledger import merkle
from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.completions.models import CompletionRecord, IssuedDocument, Person, Revocation
from ledger.completions.pii import PersonalDataVault, commitment
from ledger.completions.rules import OperatingDays
from ledger.completions.services import operating_days
from ledger.errors import LedgerError
from ledger.identity import IdentityError, mask_id, mask_name, validate_id_number
from ledger.issuing import active_signer, keyset
from ledger.keyset import KeySet
from ledger.note import NoteVerifier
from ledger.registry.models import BaseRecord, PlanClass
from ledger.registry.services import OPERATING_STATUSES, aware, local_date
from ledger.storage.log import Log
from ledger.storage.models import LogCheckpoint, LogEntry
from verification.errors import (
    KeyCompromisedError,
    KeyResolutionError,
    SignatureError,
    TokenFormatError,
    VerificationError,
)
from verification.report import Check, Report, decide
from verification.token import TokenClaims, issue_token, token_from_url, token_url, verify_token

__all__ = ["OnlineVerifier"]


_REASON_ZH: Final = {
    "fraud": "弄虚作假",
    "error": "登记错误",
    "duplicate": "重复登记",
    "base-revoked": "基地资格问题",
    "other": "其他",
}


def _hours(tenths: int) -> str:
    return f"{tenths // 10}.{tenths % 10}"


@dataclass
class _Snapshot:
    """What verification reads that only a ledger append can change, as of one checkpoint.

    Every change a verdict depends on — a revocation, a correction, a key event, a base's
    status or title, a plan's classes, an erasure — is a ledger entry, and every append signs
    and stores a checkpoint in its own transaction.  So the size of the latest stored
    checkpoint versions all of it: a process keeps one snapshot and starts afresh when that
    size moves.  A request reads the size first, so whatever else it reads is at least as new
    as its label (never older); a report is at worst fresher than its label.
    """

    size: int
    checkpoint: Checkpoint | None
    checkpoint_error: str | None
    keys: KeySet
    checked_at: float  # time.monotonic() when the size was last read from the database
    operating: dict[int, OperatingDays] = field(default_factory=dict)
    bases: dict[int, tuple[str, str] | None] = field(default_factory=dict)
    titles: dict[tuple[int, str], str | None] = field(default_factory=dict)
    reports: OrderedDict[str, Report] = field(default_factory=OrderedDict)
    lock: LockType = field(default_factory=threading.Lock)


class _Stale(Exception):
    """The request met something newer than its snapshot (a record appended, a key added
    since): read the snapshot again rather than call a new record forged."""


@dataclass(frozen=True)
class _Facts:
    """One record and everything its checks read besides the snapshot, fetched in one query:
    its revocation, its successor (a correction), its holder's sealed data, its ledger entry."""

    record: CompletionRecord
    revoked: tuple[str, datetime] | None  # (reason code, when)
    successor: str | None
    sealed: bytes | None  # None: the holder's data was erased
    lookup: bytes | None
    entry: bytes | None


_SUCCESSOR: Final = aliased(CompletionRecord)


def _facts(session: Session, *where: Any) -> list[_Facts]:
    rows = session.execute(
        select(
            CompletionRecord,
            Revocation.reason_code,
            Revocation.at,
            _SUCCESSOR.id,
            Person.sealed,
            Person.lookup,
            LogEntry.body,
        )
        .outerjoin(Revocation, Revocation.record_id == CompletionRecord.id)
        .outerjoin(_SUCCESSOR, _SUCCESSOR.supersedes == CompletionRecord.id)
        .outerjoin(Person, Person.id == CompletionRecord.person_id)
        .outerjoin(LogEntry, LogEntry.idx == CompletionRecord.log_index)
        .where(*where)
    ).all()
    return [
        _Facts(
            r[0],
            None if r[1] is None else (r[1], r[2]),
            r[3],
            None if r[4] is None else bytes(r[4]),
            None if r[5] is None else bytes(r[5]),
            None if r[6] is None else bytes(r[6]),
        )
        for r in rows
    ]


@dataclass
class OnlineVerifier:
    log: Log
    log_verifier: NoteVerifier
    origin: str
    vault: PersonalDataVault
    public_url: str
    kek: bytes
    # Reports kept per process for tokens whose signature verified (forgeries are never
    # kept, so junk cannot crowd out real ones); 0 turns the report cache off.
    report_cache: int = 10_000
    # How long a snapshot is taken as current without asking the database (0: ask on every
    # request).  A verdict is then at most this old — against the 60 s a verification response
    # may be cached by any HTTP cache on the way (Cache-Control: max-age=60, public).
    freshness: float = 0.0
    _snapshot: _Snapshot | None = field(default=None, init=False, repr=False)

    def _fresh(self) -> _Snapshot | None:
        snap = self._snapshot
        if snap is not None and time.monotonic() - snap.checked_at < self.freshness:
            return snap
        return None

    def renewable(self) -> bool:
        """Whether a snapshot is kept but has outlived ``freshness``: one re-read of the latest
        checkpoint (`snapshot`) would make the kept reports answerable again."""
        return self.freshness > 0 and self._snapshot is not None and self._fresh() is None

    def cached(self, text: str) -> Report | None:
        """The kept report for ``text`` if the snapshot is fresh — no database, no waiting:
        what a server can answer without leaving its event loop."""
        snap = self._fresh()
        return None if snap is None else snap.reports.get(text.strip())

    def snapshot(self, session: Session, *, force: bool = False) -> _Snapshot:
        """The snapshot for the latest stored checkpoint (one indexed read, unless the last
        one is fresher than ``freshness`` and ``force`` is not set)."""
        fresh = None if force else self._fresh()
        if fresh is not None:
            return fresh
        row = session.execute(
            select(LogCheckpoint.size, LogCheckpoint.note)
            .order_by(LogCheckpoint.size.desc())
            .limit(1)
        ).first()
        size = -1 if row is None else int(row.size)
        now = time.monotonic()
        snap = self._snapshot
        if snap is not None and snap.size == size:
            snap.checked_at = now
            return snap
        checkpoint: Checkpoint | None = None
        error: str | None = "no signed checkpoint"
        if row is not None:
            try:
                checkpoint, _ = open_checkpoint(row.note, self.origin, [self.log_verifier])
                error = None
            except LedgerError as exc:
                error = str(exc)
        snap = _Snapshot(size, checkpoint, error, keyset(session), now)
        self._snapshot = snap
        return snap

    def _operating(self, session: Session, snap: _Snapshot, base: int) -> OperatingDays:
        days = snap.operating.get(base)
        if days is None:
            days = snap.operating[base] = operating_days(session, base)
        return days

    def _base(self, session: Session, snap: _Snapshot, base_id: int) -> tuple[str, str] | None:
        """(title, status) of a base."""
        if base_id not in snap.bases:
            row = session.execute(
                select(BaseRecord.title, BaseRecord.status).where(BaseRecord.id == base_id)
            ).first()
            snap.bases[base_id] = None if row is None else (row.title, row.status)
        return snap.bases[base_id]

    def _title(self, session: Session, snap: _Snapshot, plan_id: int, code: str) -> str | None:
        key = (plan_id, code)
        if key not in snap.titles:
            snap.titles[key] = session.scalar(
                select(PlanClass.title).where(PlanClass.plan_id == plan_id, PlanClass.code == code)
            )
        return snap.titles[key]

    # -- the token --------------------------------------------------------------------------

    def _token(
        self, text: str, ks: KeySet, *, final: bool = True
    ) -> tuple[TokenClaims | None, list[Check]]:
        try:
            token = token_from_url(text) if "/" in text else text
            claims = verify_token(token, ks)
        except TokenFormatError:
            return None, [
                Check(
                    "token",
                    False,
                    "这不是本系统签发的二维码内容",
                    "not a token this service issues",
                )
            ]
        except KeyCompromisedError as exc:
            return None, [
                Check(
                    "signature", None, "签名未检查：签发密钥已泄露", "not checked: key compromised"
                ),
                Check(
                    "key-status",
                    False,
                    "签发密钥已被标记泄露，此证明签发于泄露时间之后",
                    f"the issuing key was compromised before this was signed ({exc})",
                    "compromised",
                ),
            ]
        except KeyResolutionError as exc:
            if not final:
                raise _Stale from exc
            return None, [
                Check("signature", False, "签名密钥不在已公布的密钥中或已停用", f"{exc}"),
                Check(
                    "key-status",
                    False,
                    "签发密钥无效",
                    "the issuing key is not valid for it",
                    "unknown",
                ),
            ]
        except (SignatureError, VerificationError):
            return None, [
                Check(
                    "signature",
                    False,
                    "签名不符：二维码内容被篡改或并非本系统签发",
                    "the signature does not match: altered, or not issued here",
                ),
            ]
        return claims, [
            Check(
                "signature",
                True,
                "签名有效（已公布的签发密钥）",
                f"signed by published issuing key {claims.kid}",
            ),
            Check(
                "key-status", True, "签发时密钥有效", "the key was valid when it signed", "active"
            ),
        ]

    # -- the records ------------------------------------------------------------------------

    def _inclusion(self, session: Session, snap: _Snapshot, facts: Sequence[_Facts]) -> Check:
        if snap.size < 0:
            return Check(
                "ledger-inclusion", False, "账本尚无已签名的检查点", "no signed checkpoint"
            )
        try:
            cp = snap.checkpoint
            if cp is None:
                raise LedgerError(f"the latest checkpoint does not open: {snap.checkpoint_error}")
            for f in facts:
                r, entry = f.record, f.entry
                if entry is None or f'"record":"{r.id}"'.encode() not in entry:
                    raise LedgerError(f"entry {r.log_index} is not record {r.id}")
                # The size is a stored checkpoint's: the tree has it, no need to ask.
                proof = self.log.inclusion_proof(session, r.log_index, cp.size, stored=True)
                merkle.verify_inclusion(
                    merkle.leaf_hash(entry), r.log_index, cp.size, proof, cp.root_hash
                )
        except LedgerError as exc:
            return Check("ledger-inclusion", False, "账本包含证明不成立", f"inclusion fails: {exc}")
        where = ", ".join(str(f.record.log_index) for f in facts)
        return Check(
            "ledger-inclusion",
            True,
            f"已登记在账本第 {where} 条，包含于最新签名检查点（共 {cp.size} 条）",
            f"entry {where} is in the latest signed checkpoint (size {cp.size})",
        )

    def _status(
        self, session: Session, facts: Sequence[_Facts]
    ) -> tuple[Check, list[tuple[str, str]]]:
        notes: list[tuple[str, str]] = []
        for f in facts:
            r = f.record
            if f.revoked is not None:
                code, at = f.revoked
                day = local_date(aware(at))
                return Check(
                    "record-status",
                    False,
                    f"记录 {r.id} 已于 {day} 被撤销（原因：{_REASON_ZH.get(code, code)}）",
                    f"record {r.id} was revoked on {day} (reason: {code})",
                    "revoked",
                ), notes
            if f.successor is not None:
                successor = session.get_one(CompletionRecord, f.successor)
                while (
                    nxt := session.scalar(
                        select(CompletionRecord).where(CompletionRecord.supersedes == successor.id)
                    )
                ) is not None:
                    successor = nxt
                link = self._link(session, successor)
                notes.append((f"最新记录：{link}", f"current record: {link}"))
                return Check(
                    "record-status",
                    False,
                    f"记录 {r.id} 已被更正，最新记录为 {successor.id}",
                    f"record {r.id} was superseded by a correction: {successor.id}",
                    "superseded",
                ), notes
        return Check(
            "record-status",
            True,
            "记录现行有效（未撤销、未更正）",
            "the record is current (not revoked, not corrected)",
            "current",
        ), notes

    def _link(self, session: Session, record: CompletionRecord) -> str:
        """A verification link for the current version (signed now; no enumeration: only a
        holder of the old token learns it)."""
        try:
            signer = active_signer(session, self.kek)
        except LedgerError:
            return record.id
        claims = TokenClaims(
            bytes(record.token), record.log_index, int(datetime.now(UTC).timestamp()), signer.kid
        )
        return token_url(self.public_url, issue_token(claims, signer))

    def _recognised(
        self, session: Session, snap: _Snapshot, facts: Sequence[_Facts]
    ) -> tuple[Check, bool]:
        later = False
        for r in (f.record for f in facts):
            days = self._operating(session, snap, r.base_id)
            if not days.covers(r.start_date, r.end_date):
                return Check(
                    "base-recognised",
                    False,
                    f"培训日期 {r.start_date}–{r.end_date} 基地不在认定有效期内",
                    "the base was not recognised on every training day",
                ), False
            base = self._base(session, snap, r.base_id)
            if base is not None and base[1] not in OPERATING_STATUSES:
                later = True
        if later:
            return Check(
                "base-recognised",
                True,
                "培训时基地资格有效；基地资格已于培训之后被撤销",
                "recognised on the training days; its recognition was revoked later",
            ), True
        return Check(
            "base-recognised",
            True,
            "培训期间基地为认定的继续教育基地",
            "the base was recognised on every training day",
        ), False

    def _describe(self, session: Session, snap: _Snapshot, f: _Facts) -> dict[str, Any]:
        r = f.record
        base = self._base(session, snap, r.base_id)
        title = self._title(session, snap, r.plan_id, r.class_code)
        holder = {"name": "（已删除）", "id_number": "（已删除）"}
        if f.sealed is not None and f.lookup is not None:
            data = self.vault.open(f.sealed, f.lookup)
            holder = {"name": mask_name(data["name"]), "id_number": mask_id(data["id_number"])}
        return {
            "record": r.id,
            "holder": holder,
            "base": base[0] if base else f"base:{r.base_id}",
            "class_code": r.class_code,
            "class_title": title or r.class_code,
            "year": r.year,
            "category": r.category,
            "mode": r.mode,
            "hours": _hours(r.hours_tenths),
            "start": r.start_date.isoformat(),
            "end": r.end_date.isoformat(),
            "result": r.result,
            "ledger_index": r.log_index,
        }

    def _resolve(
        self, session: Session, claims: TokenClaims
    ) -> tuple[str, list[_Facts], IssuedDocument | None]:
        found = _facts(session, CompletionRecord.token == claims.record_token)
        if found:
            record = found[0].record
            return (
                ("completion" if record.log_index == claims.ledger_index else "mismatch"),
                found,
                None,
            )
        doc = session.scalar(
            select(IssuedDocument).where(
                IssuedDocument.token == claims.record_token, IssuedDocument.kind == "transcript"
            )
        )
        if doc is None:
            return "unknown", [], None
        ids = doc.records.split()
        by_id = {f.record.id: f for f in _facts(session, CompletionRecord.id.in_(ids))}
        return "transcript", [by_id[i] for i in ids if i in by_id], doc

    def verify(self, session: Session, text: str) -> Report:
        text = text.strip()
        snap = self.snapshot(session)
        cached = snap.reports.get(text)
        if cached is not None:
            return cached
        try:
            report, keep = self._verify(session, snap, text, final=False)
        except _Stale:
            snap = self.snapshot(session, force=True)
            report, keep = self._verify(session, snap, text, final=True)
        if keep and self.report_cache > 0:
            with snap.lock:
                snap.reports[text] = report
                if len(snap.reports) > self.report_cache:
                    snap.reports.popitem(last=False)
        return report

    def _verify(
        self, session: Session, snap: _Snapshot, text: str, *, final: bool
    ) -> tuple[Report, bool]:
        """The report, and whether it may be kept: only for a token whose signature verified
        and that names something (a token is issued with its record or document, so a later
        request cannot find one that an earlier did not).  Unless ``final``, raises `_Stale`
        when the token or its records are newer than the snapshot."""
        claims, checks = self._token(text, snap.keys, final=final)
        if claims is None:
            return Report(decide(checks), tuple(checks)), False
        kind, records, doc = self._resolve(session, claims)
        if not final:
            _check_fresh(snap, records)
        if kind == "unknown":
            checks.append(
                Check(
                    "record-status",
                    None,
                    "没有与此二维码对应的记录",
                    "no record answers to this token",
                    "unknown",
                )
            )
            return Report(decide(checks), tuple(checks)), False
        if kind == "mismatch":
            checks.append(
                Check(
                    "ledger-inclusion",
                    False,
                    "二维码中的账本位置与记录不符",
                    "the token's ledger index is not the record's",
                )
            )
            checks.append(Check("record-status", None, "未检查", "not checked", "mismatch"))
            return Report(decide(checks), tuple(checks)), True
        status, notes = self._status(session, records)
        inclusion = self._inclusion(session, snap, records)
        recognised, later = self._recognised(session, snap, records)
        checks += [inclusion, status, recognised]
        document: dict[str, Any] = {
            "kind": kind,
            "issued_at": claims.issued_at_datetime.isoformat(),
        }
        if doc is not None:
            document |= {
                "certificate_number": doc.certificate_number,
                "period": doc.period,
                "records": len(records),
            }
        return Report(
            decide(checks, base_revoked_later=later),
            tuple(checks),
            document,
            tuple(self._describe(session, snap, f) for f in records),
            tuple(notes + erasure_notes(records)),
        ), True

    # -- records a holder shared (a share link: no token) -------------------------------------

    def verify_records(self, session: Session, records: Sequence[CompletionRecord]) -> Report:
        """The ledger checks of records reached through a holder's share link.  The link itself
        is the credential (no token, so no signature check); inclusion, status and recognition
        are checked as for a scanned token."""
        by_id = {
            f.record.id: f
            for f in _facts(session, CompletionRecord.id.in_([r.id for r in records]))
        }
        facts = [by_id[r.id] for r in records]
        snap = self.snapshot(session)
        try:
            _check_fresh(snap, facts)
        except _Stale:
            snap = self.snapshot(session, force=True)
        status, notes = self._status(session, facts)
        recognised, later = self._recognised(session, snap, facts)
        checks = (self._inclusion(session, snap, facts), status, recognised)
        return Report(
            decide(checks, base_revoked_later=later),
            checks,
            {"kind": "share", "records": len(records)},
            tuple(self._describe(session, snap, f) for f in facts),
            tuple(notes + erasure_notes(facts)),
        )

    # -- an uploaded PDF ---------------------------------------------------------------------

    def verify_pdf(self, session: Session, pdf: bytes, trust_roots: Sequence[Any]) -> Report:
        """The PDF signature, the embedded credential, the QR code and the ledger, together —
        and whether they agree (a QR of one record pasted on another certificate is forged)."""
        import json

        from certificates.model import CertificateError
        from certificates.pdf import extract_attachments
        from ledger.keyset import did_web
        from verification.credentials import verify_credential

        signature = check_pdf_signature(pdf, trust_roots)
        ks = self.snapshot(session, force=True).keys  # an upload is rare: read the latest
        credential_tokens: set[bytes] = set()
        try:
            files = extract_attachments(pdf)
            doc = json.loads(files["credential.json"])
            verified = verify_credential(
                doc,
                ks,
                did_web(self.public_url),
                log_origin=self.origin,
                log_verifiers=[self.log_verifier],
            )
            credential_tokens = set(verified.record_tokens)
            credential = Check(
                "credential",
                True,
                "内嵌的可验证凭证签名有效，账本证明成立",
                f"the embedded {verified.kind} verifies, with its ledger proofs",
            )
        except (CertificateError, KeyError, ValueError, VerificationError, LedgerError) as exc:
            credential = Check(
                "credential",
                False,
                "内嵌的可验证凭证缺失或无效",
                f"the embedded credential is missing or invalid: {exc}",
            )
        qr = read_qr(pdf)
        if qr is None:
            online = Report(
                "unknown",
                (
                    Check(
                        "token", False, "页面上没有可识别的二维码", "no readable QR code on page 1"
                    ),
                ),
            )
        else:
            online = self.verify(session, qr)
        agree = True
        if qr is not None and credential.ok:
            try:
                claims = verify_token(token_from_url(qr), ks)
                _, found, _ = self._resolve(session, claims)
                agree = bool(found) and {bytes(f.record.token) for f in found} <= credential_tokens
            except (VerificationError, LedgerError):
                agree = False
        registered = session.scalar(
            select(IssuedDocument.certificate_number).where(
                IssuedDocument.pdf_sha256 == pdf_sha256(pdf)
            )
        )
        consistency = (
            Check(
                "consistency",
                True,
                "二维码、内嵌凭证与账本记录一致",
                "the QR code, the embedded credential and the ledger agree",
            )
            if agree
            else Check(
                "consistency",
                False,
                "二维码与内嵌凭证指向不同的记录（疑似拼接伪造）",
                "the QR code and the embedded credential name different records",
            )
        )
        checks = (signature, credential, consistency, *online.checks)
        notes = list(online.notes)
        if registered:
            notes.append(
                (
                    f"此文件与签发记录 {registered} 完全一致",
                    f"this exact file was issued as {registered}",
                )
            )
        verdict = decide(checks, base_revoked_later=online.verdict == "valid-base-revoked-later")
        return Report(
            verdict, checks, {**online.document, "uploaded": True}, online.records, tuple(notes)
        )

    # -- match / no match -------------------------------------------------------------------

    def match(
        self, session: Session, text: str, name: str | None, id_number: str | None
    ) -> dict[str, str]:
        """Whether the holder is the person a verifier typed: per field "match" / "no-match"
        (an ID number that is not valid is simply "no-match")."""
        claims, _ = self._token(text.strip(), self.snapshot(session, force=True).keys)
        if claims is None:
            raise LookupError("not a valid token")
        _, found, _ = self._resolve(session, claims)
        if not found:
            raise LookupError("no record answers to this token")
        first = found[0]
        if first.sealed is None or first.lookup is None:
            raise LookupError("the holder's data was erased")
        data = self.vault.open(first.sealed, first.lookup)
        out: dict[str, str] = {}
        if name is not None:
            same = unicodedata.normalize("NFC", name.strip()) == data["name"]
            out["name"] = "match" if same else "no-match"
        if id_number is not None:
            try:
                typed = validate_id_number(id_number)
            except IdentityError:
                typed = ""
            r = first.record
            # Compared through the record's public commitment: the same answer anyone holding
            # the salt could compute, and constant-time.
            same = r.salt is not None and hmac.compare_digest(
                commitment(r.salt, typed) if typed else "", r.subject
            )
            out["id_number"] = "match" if same else "no-match"
        return out


def _check_fresh(snap: _Snapshot, facts: Sequence[_Facts]) -> None:
    if any(f.record.log_index >= snap.size for f in facts):
        raise _Stale


def erasure_notes(facts: Sequence[_Facts]) -> list[tuple[str, str]]:
    """A note when the holder of the records had their personal data erased (PIPL Art. 47):
    the records stay in the ledger and verify, but nobody can link them to a person now."""
    if any(f.sealed is None and f.lookup is not None for f in facts):
        return [("持有人已申请删除个人信息", "the holder's personal data was erased")]
    return []


def read_qr(pdf: bytes) -> str | None:
    """The QR payload on page 1, read the way a camera would: rendered at 150 dpi (PDFium) and
    decoded (ZXing); None when there is no readable QR code."""
    import pypdfium2 as pdfium
    import zxingcpp

    try:
        document = pdfium.PdfDocument(pdf)
    except pdfium.PdfiumError:
        return None
    try:
        if len(document) == 0:
            return None
        image = document[0].render(scale=150 / 72).to_pil()
    finally:
        document.close()
    for result in zxingcpp.read_barcodes(image):
        if result.format == zxingcpp.BarcodeFormat.QRCode and result.text:
            return str(result.text)
    return None


def check_pdf_signature(pdf: bytes, trust_roots: Sequence[Any]) -> Check:
    """The PAdES signature: present, intact (covers the whole file) and chaining to our CA."""
    import io

    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    try:
        signatures = PdfFileReader(io.BytesIO(pdf), strict=False).embedded_signatures
    except Exception as exc:  # noqa: BLE001 - any unreadable PDF is simply "not signed by us"
        return Check(
            "pdf-signature", False, "无法读取PDF", f"not a readable PDF: {exc}", "unreadable"
        )
    if not signatures:
        return Check(
            "pdf-signature", False, "PDF没有电子签名", "the PDF carries no signature", "unsigned"
        )
    try:
        status = validate_pdf_signature(
            signatures[-1], ValidationContext(trust_roots=list(trust_roots))
        )
    except Exception as exc:  # noqa: BLE001 - pyHanko raises many kinds for a broken signature
        return Check(
            "pdf-signature", False, "电子签名无法验证", f"the signature fails: {exc}", "broken"
        )
    if not (status.intact and status.valid):
        return Check(
            "pdf-signature",
            False,
            "电子签名无效：文件在签名后被修改",
            "invalid: the file was changed after signing",
            "broken",
        )
    if not status.trusted:
        return Check(
            "pdf-signature",
            False,
            "签名证书不是本系统的签发证书",
            "signed, but not by this service's certificate",
            "untrusted",
        )
    if status.coverage is None or status.coverage.name != "ENTIRE_FILE":
        return Check(
            "pdf-signature",
            False,
            "签名后文件被追加了内容",
            "content was added after the signature",
            "appended",
        )
    return Check(
        "pdf-signature",
        True,
        "PDF电子签名有效，文件未被修改",
        "the PDF signature is valid and covers the whole file",
        "valid",
    )


def pdf_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
