"""Posting, correcting and revoking completion records.

A batch is **all or nothing**: every row is read and judged first (`BatchRejected` carries every
bad row), then — in the caller's one write transaction — the people are found or added, the
ledger entries appended and the projection rows written.  A failure anywhere rolls the whole
transaction back, entries included: an acknowledged batch is entirely in the ledger, an
unacknowledged one entirely absent.

**Idempotent**: ``(base, batch_key)`` is unique and the receipt is stored with the batch, in the
same transaction as its entries.  A retried post — also after a crash between commit and
response — finds the batch and gets the original receipt back; the same key with different
content is a conflict.

Appenders are serialised by the log's lock, taken before any check that reads what another
batch could be writing (duplicates), so two batches cannot both pass the same duplicate check.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ledger.canonical import canonicalize
from ledger.completions.intake import Cell, RawBatch, RawRow
from ledger.completions.models import (
    BaseSigningKey,
    CompletionBatch,
    CompletionRecord,
    Person,
    Revocation,
)
from ledger.completions.pii import PersonalDataVault, commitment, new_salt
from ledger.completions.rules import (
    ClassFacts,
    OperatingDays,
    RowError,
    RowIn,
    check_against_class,
    normalise_row,
)
from ledger.entries import encode_entries, encode_entry
from ledger.identity import mask_id, mask_name
from ledger.policy import EffectivePolicy
from ledger.registry.auth import Principal, Scope, base_id, require
from ledger.registry.errors import NotFound, RuleViolation, StateConflict
from ledger.registry.models import BaseRecord, BaseStatusEvent, Jurisdiction
from ledger.registry.services import (
    OPERATING_STATUSES,
    approved_class,
    aware,
    effective_policy,
    local_date,
)
from ledger.registry.summary import CompletionRow
from ledger.storage.db import bulk_insert, reserve_ids
from ledger.storage.log import AppendResult, Log

__all__ = [
    "BATCH_SIGNATURE_CONTEXT",
    "CORRECTABLE",
    "REVOCATION_REASONS",
    "BatchRejected",
    "BatchSignature",
    "CorrectionReceipt",
    "PostedBatch",
    "batch_digest",
    "correct",
    "post_batch",
    "record_view",
    "register_signing_key",
    "revoke",
    "summary_rows",
]

#: Prefix of the message a base signs: the batch's canonical digest, in hex, after this line.
BATCH_SIGNATURE_CONTEXT: Final = "celedger batch v1\n"
#: Fields a base may correct.  The person (name, ID number) is not among them: a record made
#: out for the wrong person is revoked by the authority and posted again.
CORRECTABLE: Final = frozenset(
    {
        "employer",
        "title_field",
        "class_code",
        "class_title",
        "category",
        "mode",
        "start",
        "end",
        "place",
        "hours",
        "result",
        "certificate_number",
        "fee_yuan",
        "evaluation",
    }
)
REVOCATION_REASONS: Final = {
    "fraud": "弄虚作假 / falsified",
    "error": "登记错误 / recorded in error",
    "duplicate": "重复登记 / duplicate",
    "base-revoked": "基地资格问题 / the base was not entitled to train",
    "other": "其他 / other",
}
_CHUNK: Final = 500


class BatchRejected(RuleViolation):
    """A batch with bad rows: nothing was written.  ``errors`` lists every bad row."""

    def __init__(self, errors: Sequence[RowError]) -> None:
        self.errors = sorted(errors, key=lambda e: e.row)
        rows = len({e.row for e in self.errors})
        super().__init__(
            "batch.invalid",
            f"批次有{rows}行不符合要求，未写入任何记录 / {rows} row(s) failed; nothing was written",
        )

    def problem_extra(self) -> dict[str, Any]:
        return {"errors": [e.to_json() for e in self.errors]}


@dataclass(frozen=True)
class BatchSignature:
    kid: str
    value: bytes


@dataclass(frozen=True)
class PostedBatch:
    """The receipt, as stored; ``replayed`` is true when a retried key found it."""

    receipt: bytes
    replayed: bool
    batch_id: str

    def as_json(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.receipt)
        return value


def _utc(now: datetime | None) -> datetime:
    return datetime.now(UTC) if now is None else now.astimezone(UTC)


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _new_id(prefix: str) -> str:
    return prefix + base64.b32encode(secrets.token_bytes(15)).decode("ascii").lower()


def record_id_of_token(token: bytes) -> str:
    """The public record id that belongs to a secret token (the token cannot be recovered)."""
    digest = hashlib.sha256(b"celedger-record-v1\x00" + token).digest()
    return "r_" + base64.b32encode(digest[:15]).decode("ascii").lower()


def _chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def batch_digest(base: int, batch_key: str, rows: Sequence[RowIn]) -> str:
    """SHA-256 (hex) of JCS({"base", "batch_key", "records": [row.canonical()…]}).

    The same records give the same digest whether they came as JSON, CSV or XLSX: it is what a
    base signs, and what tells a retried batch from a different one under the same key.
    """
    doc = {
        "base": base_id(base),
        "batch_key": batch_key,
        "records": [r.canonical() for r in rows],
    }
    return hashlib.sha256(canonicalize(doc)).hexdigest()


def _base(session: Session, base_ref: int) -> BaseRecord:
    base = session.get(BaseRecord, base_ref)
    if base is None:
        raise NotFound("base.unknown", f"no base with id {base_ref}")
    return base


def _scope(base: BaseRecord) -> Scope:
    return Scope(base.jurisdiction_code, base.management_unit_id, base.id)


def _operating_days(session: Session, base: int) -> OperatingDays:
    events = session.execute(
        select(BaseStatusEvent.at, BaseStatusEvent.to_status)
        .where(BaseStatusEvent.base_id == base)
        .order_by(BaseStatusEvent.log_index)
    ).all()
    return OperatingDays.from_events(
        [(local_date(aware(at)), status) for at, status in events], OPERATING_STATUSES
    )


@dataclass
class _Judge:
    """Everything a row is judged against, looked up once per batch."""

    session: Session
    base: BaseRecord
    operating: OperatingDays
    base_level: str | None
    classes: dict[tuple[str, int], tuple[ClassFacts, int] | RuleViolation] = field(
        default_factory=dict
    )
    policies: dict[int, EffectivePolicy] = field(default_factory=dict)

    @classmethod
    def of(cls, session: Session, base: BaseRecord) -> _Judge:
        jurisdiction = session.get(Jurisdiction, base.jurisdiction_code)
        return cls(
            session,
            base,
            _operating_days(session, base.id),
            jurisdiction.level if jurisdiction else None,
        )

    def class_of(self, code: str, year: int) -> tuple[ClassFacts, int] | RuleViolation:
        key = (code, year)
        if key not in self.classes:
            try:
                c = approved_class(self.session, self.base.id, code, year)
                self.classes[key] = (
                    ClassFacts(
                        code=c.code,
                        title=c.title,
                        category=c.category,
                        mode=c.mode,
                        hours_tenths=int(c.hours * 10),
                        start=c.start,
                        end=c.end,
                        fee_fen=int(c.fee_yuan * 100),
                    ),
                    c.plan_id,
                )
            except RuleViolation as exc:
                self.classes[key] = exc
        return self.classes[key]

    def policy(self, year: int) -> EffectivePolicy:
        if year not in self.policies:
            self.policies[year] = effective_policy(
                self.session, self.base.jurisdiction_code, date(year, 12, 31)
            )
        return self.policies[year]

    def judge(self, row: RowIn) -> tuple[list[RowError], int | None]:
        found = self.class_of(row.class_code, row.year)
        if isinstance(found, RuleViolation):
            message = (
                f"项目编号“{row.class_code}”不在本基地{row.year}年度已批准的计划中 / "
                if found.rule == "completion.class-in-plan"
                else f"本基地没有{row.year}年度已批准的计划 / "
            ) + str(found)
            return [RowError(row.row, "class_code", found.rule, message)], None
        facts, plan = found
        return (
            check_against_class(row, facts, self.policy(row.year), self.operating, self.base_level),
            plan,
        )


def _require_operating(base: BaseRecord) -> None:
    if base.status not in OPERATING_STATUSES:
        raise RuleViolation(
            "completion.base-status",
            f"{base_id(base.id)} is {base.status}: only a recognised base (status recognised or "
            f"rectification) may post or correct records; 基地当前状态为 {base.status}，不能报送学时",
        )


def _existing_batch(session: Session, base: int, batch_key: str) -> CompletionBatch | None:
    return session.execute(
        select(CompletionBatch).where(
            CompletionBatch.base_id == base, CompletionBatch.batch_key == batch_key
        )
    ).scalar_one_or_none()


def _replay(found: CompletionBatch, digest: str | None) -> PostedBatch:
    if digest is not None and found.digest != digest:
        raise StateConflict(
            "batch.key-reused",
            f"batch key {found.batch_key!r} was already used for batch {found.id} with other "
            f"content (digest {found.digest}, this request {digest}): a new batch needs a new key",
        )
    return PostedBatch(found.receipt, True, found.id)


def _check_signature(session: Session, base: int, digest: str, signature: BatchSignature) -> None:
    key = session.get(BaseSigningKey, signature.kid)
    if key is None or key.base_id != base:
        raise RuleViolation(
            "batch.signature",
            f"Batch-Signature: key {signature.kid!r} is not a signing key of {base_id(base)}",
        )
    if key.retired_at is not None:
        raise RuleViolation("batch.signature", f"Batch-Signature: key {key.kid} is retired")
    try:
        Ed25519PublicKey.from_public_bytes(key.public_key).verify(
            signature.value, (BATCH_SIGNATURE_CONTEXT + digest).encode("ascii")
        )
    except InvalidSignature:
        raise RuleViolation(
            "batch.signature",
            f"Batch-Signature: the signature does not verify with key {key.kid} over "
            f"{BATCH_SIGNATURE_CONTEXT!r} + the batch digest {digest}",
        ) from None


class _People:
    """Finds (or prepares) the person of each ID number, once per batch."""

    def __init__(self, session: Session, vault: PersonalDataVault, now: datetime) -> None:
        self.session = session
        self.vault = vault
        self.now = now
        self.ids: dict[str, int] = {}
        self.names: dict[str, str] = {}
        self.new: dict[str, tuple[bytes, str]] = {}

    def load(self, rows: Sequence[RowIn]) -> None:
        lookups = {self.vault.lookup(r.id_number): r.id_number for r in rows}
        keys = list(lookups)
        for chunk in _chunks(keys):
            for pid, lookup, sealed in self.session.execute(
                select(Person.id, Person.lookup, Person.sealed).where(Person.lookup.in_(chunk))
            ):
                number = lookups[bytes(lookup)]
                self.ids[number] = pid
                if sealed is not None:
                    self.names[number] = self.vault.open(bytes(sealed), bytes(lookup))["name"]
        for lookup, number in lookups.items():
            if number not in self.ids:
                self.new[number] = (lookup, "")

    def check_names(self, rows: Sequence[RowIn]) -> list[RowError]:
        errors = []
        first_name: dict[str, str] = {}
        for r in rows:
            known = self.names.get(r.id_number) or first_name.setdefault(r.id_number, r.name)
            if known != r.name:
                errors.append(
                    RowError(
                        r.row,
                        "name",
                        "name.id-mismatch",
                        f"该身份证号已登记的姓名为“{mask_name(known)}”，与本行“{r.name}”不一致 / "
                        "this ID number is registered under another name",
                    )
                )
        return errors

    def insert_new(self, rows: Sequence[RowIn]) -> None:
        if not self.new:
            return
        names = {r.id_number: r.name for r in rows}
        params = [
            {
                "lookup": lookup,
                "sealed": self.vault.seal({"name": names[n], "id_number": n}, lookup),
                "created_at": self.now,
            }
            for n, (lookup, _) in self.new.items()
        ]
        # Ids reserved up front (under the append lock) so all people go in one COPY.
        ids = reserve_ids(self.session, Person.__table__, len(params))
        for pid, p, number in zip(ids, params, self.new, strict=True):
            p["id"] = pid
            self.ids[number] = pid
        bulk_insert(self.session, Person.__table__, params)


def _current_filter() -> Any:
    superseded = select(CompletionRecord.supersedes).where(CompletionRecord.supersedes.is_not(None))
    revoked = select(Revocation.record_id)
    return CompletionRecord.id.not_in(superseded) & CompletionRecord.id.not_in(revoked)


def _ledger_duplicates(
    session: Session,
    base: int,
    keys: set[tuple[int, str, int]],
    exclude: str | None = None,
) -> set[tuple[int, str, int]]:
    """Which (person, class, year) already have a current record at this base."""
    if not keys:
        return set()
    found: set[tuple[int, str, int]] = set()
    by_year: dict[int, set[str]] = {}
    for _, code, year in keys:
        by_year.setdefault(year, set()).add(code)
    for year, codes in by_year.items():
        query = select(CompletionRecord.person_id, CompletionRecord.class_code).where(
            CompletionRecord.base_id == base,
            CompletionRecord.year == year,
            CompletionRecord.class_code.in_(sorted(codes)),
            _current_filter(),
        )
        if exclude is not None:
            query = query.where(CompletionRecord.id != exclude)
        for pid, code in session.execute(query):
            if (pid, code, year) in keys:
                found.add((pid, code, year))
    return found


def _duplicate_error(row: RowIn, where: str) -> RowError:
    text = (
        f"与第{where}行重复（同一人、同一项目）/ duplicates row {where} (same person, same class)"
        if where.isdigit()
        else "该人员在本项目已有学时记录 / this person already has a record for this class"
    )
    return RowError(
        row.row, "id_number", "duplicate.batch" if where.isdigit() else "duplicate.ledger", text
    )


def _entry_payload(
    record: str, batch: str | None, base: int, plan: int, row: RowIn, subject: str
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "record": record,
        "base": base_id(base),
        "plan": plan,
        "class": row.class_code,
        "year": row.year,
        "category": row.category,
        "mode": row.mode,
        "hours": row.hours,
        "start": row.start.isoformat(),
        "end": row.end.isoformat(),
        "result": row.result,
        "subject": subject,
    }
    if batch is not None:
        payload["batch"] = batch
    return payload


def _record_params(
    *,
    record: str,
    token: bytes,
    kind: str,
    batch: str | None,
    row: RowIn,
    base: int,
    plan: int,
    person: int,
    salt: bytes,
    subject: str,
    vault: PersonalDataVault,
    actor: Principal,
    now: datetime,
    log_index: int,
    supersedes: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    return {
        "id": record,
        "token": token,
        "kind": kind,
        "batch_id": batch,
        "row_number": row.row if batch is not None else None,
        "supersedes": supersedes,
        "correction_reason": reason,
        "base_id": base,
        "plan_id": plan,
        "class_code": row.class_code,
        "year": row.year,
        "person_id": person,
        "salt": salt,
        "subject": subject,
        "sealed": vault.seal(row.details(), record.encode("ascii")),
        "category": row.category,
        "mode": row.mode,
        "hours_tenths": row.hours_tenths,
        "start_date": row.start,
        "end_date": row.end,
        "result": row.result,
        "fee_fen": row.fee_fen,
        "posted_by": actor.id,
        "posted_at": now,
        "log_index": log_index,
    }


def _ledger_json(result: AppendResult) -> dict[str, Any]:
    return {
        "first_index": result.first_index,
        "last_index": result.first_index + result.count - 1,
        "tree_size": result.tree_size,
        "root_hash": base64.b64encode(result.root_hash).decode("ascii"),
        "checkpoint": result.checkpoint,
        "proof": f"/api/v1/log/proof/inclusion?index={result.first_index}&size={result.tree_size}",
    }


def normalise_batch(raw: RawBatch, *, today: date) -> list[RowIn]:
    """Typed rows, or `BatchRejected` with every row error (nothing looked up yet)."""
    rows: list[RowIn] = []
    errors: list[RowError] = []
    for raw_row in raw.rows:
        result = normalise_row(raw_row, today=today)
        if isinstance(result, list):
            errors.extend(result)
        else:
            rows.append(result)
    if errors:
        raise BatchRejected(errors)
    return rows


@dataclass
class PreparedBatch:
    """A validated batch with everything computed that needs no lock: record ids, salts,
    commitments, sealed details and the ledger entries' bytes.  `commit_batch` writes it."""

    base: int
    actor: Principal
    batch_key: str
    digest: str
    source: str
    at: datetime
    signature: BatchSignature | None
    rows: list[RowIn]
    plans: dict[int, int]
    status_mark: int | None
    batch: str
    tokens: list[bytes]
    records: list[str]
    salts: list[bytes]
    subjects: list[str]
    entries: list[bytes]
    sealed: list[bytes]


def _status_mark(session: Session, base: int) -> int | None:
    """The latest recognition event of the base: if it moved, the rows are judged again."""
    return session.scalar(
        select(BaseStatusEvent.log_index)
        .where(BaseStatusEvent.base_id == base)
        .order_by(BaseStatusEvent.log_index.desc())
        .limit(1)
    )


def _judge_rows(
    session: Session, base: BaseRecord, rows: Sequence[RowIn]
) -> tuple[list[RowError], dict[int, int]]:
    judge = _Judge.of(session, base)
    errors: list[RowError] = []
    plans: dict[int, int] = {}
    seen: dict[tuple[str, str, int], int] = {}
    for row in rows:
        row_errors, plan = judge.judge(row)
        errors.extend(row_errors)
        if plan is not None:
            plans[row.row] = plan
        key = (row.id_number, row.class_code, row.year)
        if key in seen:
            errors.append(_duplicate_error(row, str(seen[key])))
        else:
            seen[key] = row.row
    return errors, plans


def prepare_batch(
    session: Session,
    vault: PersonalDataVault,
    actor: Principal,
    base_ref: int,
    raw: RawBatch,
    *,
    batch_key: str,
    signature: BatchSignature | None = None,
    now: datetime | None = None,
) -> PreparedBatch | PostedBatch:
    """Read, judge and encode a batch without taking the append lock (any session will do).

    Answers the stored receipt at once when the key was already used for the same content.
    What another batch could change meanwhile — duplicates, people, the base's status — is
    checked again by `commit_batch` under the lock.
    """
    at = _utc(now)
    base = _base(session, base_ref)
    require(actor, "completion.post", _scope(base))
    if not batch_key or len(batch_key) > 128:
        raise RuleViolation(
            "batch.key", f"batch key: expected 1–128 characters, found {len(batch_key)}"
        )
    try:
        rows = normalise_batch(raw, today=local_date(at))
    except BatchRejected:
        found = _existing_batch(session, base.id, batch_key)
        if found is not None:
            _replay(found, "(rows that do not validate)")
        raise
    digest = batch_digest(base.id, batch_key, rows)
    found = _existing_batch(session, base.id, batch_key)
    if found is not None:
        return _replay(found, digest)
    _require_operating(base)
    mark = _status_mark(session, base.id)
    errors, plans = _judge_rows(session, base, rows)
    if errors:
        raise BatchRejected(errors)
    if signature is not None:
        _check_signature(session, base.id, digest, signature)
    batch = _new_id("b_")
    tokens = [secrets.token_bytes(16) for _ in rows]
    records = [record_id_of_token(t) for t in tokens]
    salts = [new_salt() for _ in rows]
    subjects = [commitment(salt, r.id_number) for salt, r in zip(salts, rows, strict=True)]
    entries = encode_entries(
        "completion",
        [
            _entry_payload(rid, batch, base.id, plans[r.row], r, subj)
            for rid, r, subj in zip(records, rows, subjects, strict=True)
        ],
    )
    sealed = [
        vault.seal(r.details(), rid.encode("ascii")) for r, rid in zip(rows, records, strict=True)
    ]
    return PreparedBatch(
        base=base.id,
        actor=actor,
        batch_key=batch_key,
        digest=digest,
        source=raw.source,
        at=at,
        signature=signature,
        rows=rows,
        plans=plans,
        status_mark=mark,
        batch=batch,
        tokens=tokens,
        records=records,
        salts=salts,
        subjects=subjects,
        entries=entries,
        sealed=sealed,
    )


def commit_batch(
    session: Session, log: Log, vault: PersonalDataVault, prepared: PreparedBatch
) -> PostedBatch:
    """Write a prepared batch in ``session`` (a writer): lock, re-check, append, insert."""
    p = prepared
    log.lock(session)  # from here on no other batch can post the same person and class
    found = _existing_batch(session, p.base, p.batch_key)
    if found is not None:
        return _replay(found, p.digest)
    base = _base(session, p.base)
    _require_operating(base)
    if _status_mark(session, p.base) != p.status_mark:
        errors, _ = _judge_rows(session, base, p.rows)  # recognition changed meanwhile
        if errors:
            raise BatchRejected(errors)
    people = _People(session, vault, p.at)
    people.load(p.rows)
    errors = people.check_names(p.rows)
    known = {
        (people.ids[r.id_number], r.class_code, r.year): r
        for r in p.rows
        if r.id_number in people.ids
    }
    for dup in _ledger_duplicates(session, p.base, set(known)):
        errors.append(_duplicate_error(known[dup], "ledger"))
    if errors:
        raise BatchRejected(errors)
    people.insert_new(p.rows)
    result = log.append(session, [("completion", e) for e in p.entries])
    receipt: dict[str, Any] = {
        "batch": p.batch,
        "batch_key": p.batch_key,
        "base": base_id(p.base),
        "source": p.source,
        "digest": p.digest,
        "received_at": _stamp(p.at),
        "count": len(p.rows),
        "signature": None if p.signature is None else {"kid": p.signature.kid, "verified": True},
        "ledger": _ledger_json(result),
        "records": [
            {"row": r.row, "record": rid, "log_index": result.first_index + i}
            for i, (r, rid) in enumerate(zip(p.rows, p.records, strict=True))
        ],
    }
    receipt_bytes = json.dumps(receipt, ensure_ascii=False, separators=(",", ":")).encode()
    session.add(
        CompletionBatch(
            id=p.batch,
            base_id=p.base,
            batch_key=p.batch_key,
            digest=p.digest,
            source=p.source,
            record_count=len(p.rows),
            first_index=result.first_index,
            tree_size=result.tree_size,
            signature_kid=None if p.signature is None else p.signature.kid,
            signature=None if p.signature is None else p.signature.value,
            posted_by=p.actor.id,
            received_at=p.at,
            receipt=receipt_bytes,
        )
    )
    session.flush()
    first = result.first_index
    params = [
        {
            "id": rid,
            "token": tok,
            "kind": "completion",
            "batch_id": p.batch,
            "row_number": r.row,
            "supersedes": None,
            "correction_reason": None,
            "base_id": p.base,
            "plan_id": p.plans[r.row],
            "class_code": r.class_code,
            "year": r.year,
            "person_id": people.ids[r.id_number],
            "salt": salt,
            "subject": subj,
            "sealed": sealed,
            "category": r.category,
            "mode": r.mode,
            "hours_tenths": r.hours_tenths,
            "start_date": r.start,
            "end_date": r.end,
            "result": r.result,
            "fee_fen": r.fee_fen,
            "posted_by": p.actor.id,
            "posted_at": p.at,
            "log_index": first + i,
        }
        for i, (rid, tok, r, salt, subj, sealed) in enumerate(
            zip(p.records, p.tokens, p.rows, p.salts, p.subjects, p.sealed, strict=True)
        )
    ]
    bulk_insert(session, CompletionRecord.__table__, params)
    return PostedBatch(receipt_bytes, False, p.batch)


def dry_run_receipt(prepared: PreparedBatch | PostedBatch) -> PostedBatch:
    """What ``?dry_run=true`` answers: valid (nothing written) and the digest a base signs."""
    if isinstance(prepared, PostedBatch):
        return prepared
    body = {"dry_run": True, "valid": True, "count": len(prepared.rows), "digest": prepared.digest}
    return PostedBatch(json.dumps(body, ensure_ascii=False).encode("utf-8"), False, "")


def post_batch(
    session: Session,
    log: Log,
    vault: PersonalDataVault,
    actor: Principal,
    base_ref: int,
    raw: RawBatch,
    *,
    batch_key: str,
    signature: BatchSignature | None = None,
    now: datetime | None = None,
) -> PostedBatch:
    """`prepare_batch` and `commit_batch` in one writer session (CLI, tests, demo)."""
    prepared = prepare_batch(
        session, vault, actor, base_ref, raw, batch_key=batch_key, signature=signature, now=now
    )
    if isinstance(prepared, PostedBatch):
        return prepared
    return commit_batch(session, log, vault, prepared)


def batch_receipt(session: Session, actor: Principal, base_ref: int, batch: str) -> bytes:
    base = _base(session, base_ref)
    require(actor, "completion.read", _scope(base))
    found = session.get(CompletionBatch, batch)
    if found is None or found.base_id != base.id:
        raise NotFound("batch.unknown", f"{base_id(base.id)} has no batch {batch!r}")
    return found.receipt


# --------------------------------------------------------------------------------------------
# Reading a record and its history


def _record(session: Session, record: str) -> CompletionRecord:
    row = session.get(CompletionRecord, record)
    if row is None:
        raise NotFound("record.unknown", f"no completion record {record!r}")
    return row


def _successor(session: Session, record: str) -> CompletionRecord | None:
    return session.execute(
        select(CompletionRecord).where(CompletionRecord.supersedes == record)
    ).scalar_one_or_none()


def chain(session: Session, record: CompletionRecord) -> list[CompletionRecord]:
    """Every version of the record, oldest first."""
    versions = [record]
    while versions[0].supersedes is not None:
        versions.insert(0, _record(session, versions[0].supersedes))
    while (nxt := _successor(session, versions[-1].id)) is not None:
        versions.append(nxt)
    return versions


def _status(session: Session, record: CompletionRecord) -> tuple[str, Revocation | None]:
    revocation = session.get(Revocation, record.id)
    if revocation is not None:
        return "revoked", revocation
    if _successor(session, record.id) is not None:
        return "superseded", None
    return "current", None


def _hours(tenths: int) -> str:
    return f"{tenths // 10}.{tenths % 10}"


def record_view(
    session: Session, vault: PersonalDataVault, actor: Principal, record_id: str
) -> dict[str, Any]:
    """A record, masked, with every version and any revocation (for its base and authorities)."""
    record = _record(session, record_id)
    base = _base(session, record.base_id)
    require(actor, "completion.read", _scope(base))
    person = session.get(Person, record.person_id)
    holder: dict[str, str] = {"name": "（已删除 / erased）", "id_number": "（已删除 / erased）"}
    if person is not None and person.sealed is not None:
        data = vault.open(person.sealed, person.lookup)
        holder = {"name": mask_name(data["name"]), "id_number": mask_id(data["id_number"])}
    versions = []
    for v in chain(session, record):
        status, revocation = _status(session, v)
        versions.append(
            {
                "record": v.id,
                "kind": v.kind,
                "status": status,
                "log_index": v.log_index,
                "posted_at": _stamp(aware(v.posted_at)),
                "posted_by": v.posted_by,
                "batch": v.batch_id,
                "supersedes": v.supersedes,
                "reason": v.correction_reason,
                "class_code": v.class_code,
                "year": v.year,
                "category": v.category,
                "mode": v.mode,
                "hours": _hours(v.hours_tenths),
                "start": v.start_date.isoformat(),
                "end": v.end_date.isoformat(),
                "result": v.result,
                "revocation": None
                if revocation is None
                else {
                    "reason_code": revocation.reason_code,
                    "reason": revocation.reason,
                    "by": revocation.actor,
                    "at": _stamp(aware(revocation.at)),
                    "log_index": revocation.log_index,
                },
            }
        )
    current = versions[-1]
    return {
        "record": record.id,
        "base": base_id(base.id),
        "holder": holder,
        "status": _status(session, record)[0],
        "current": current["record"],
        "versions": versions,
    }


# --------------------------------------------------------------------------------------------
# Corrections and revocations


@dataclass(frozen=True)
class CorrectionReceipt:
    record: str
    supersedes: str
    log_index: int
    tree_size: int
    checkpoint: str

    def to_json(self) -> dict[str, Any]:
        return {
            "record": self.record,
            "supersedes": self.supersedes,
            "log_index": self.log_index,
            "tree_size": self.tree_size,
            "checkpoint": self.checkpoint,
            "proof": f"/api/v1/log/proof/inclusion?index={self.log_index}&size={self.tree_size}",
        }


def _require_current(session: Session, record: CompletionRecord, act: str) -> None:
    status, revocation = _status(session, record)
    if status == "revoked":
        assert revocation is not None
        raise StateConflict(
            f"completion.{act}.revoked",
            f"record {record.id} was revoked at {_stamp(aware(revocation.at))} "
            f"({revocation.reason_code}); a revoked record cannot be changed",
        )
    if status == "superseded":
        latest = chain(session, record)[-1]
        raise StateConflict(
            f"completion.{act}.superseded",
            f"record {record.id} was superseded by a correction: act on the current version "
            f"{latest.id}",
        )


def _unseal_row(
    session: Session, vault: PersonalDataVault, record: CompletionRecord
) -> dict[str, Cell]:
    person = session.get(Person, record.person_id)
    if person is None or person.sealed is None or record.sealed is None:
        raise StateConflict(
            "completion.erased", f"record {record.id}: the person's data was erased"
        )
    who = vault.open(person.sealed, person.lookup)
    details = vault.open(record.sealed, record.id.encode("ascii"))
    return {
        "name": who["name"],
        "id_number": who["id_number"],
        **{k: v for k, v in details.items() if v},
        "year": record.year,
        "category": record.category,
        "class_code": record.class_code,
        "mode": record.mode,
        "start": record.start_date,
        "end": record.end_date,
        "hours": _hours(record.hours_tenths),
        "result": record.result,
        "fee_yuan": f"{record.fee_fen // 100}.{record.fee_fen % 100:02d}",
    }


def correct(
    session: Session,
    log: Log,
    vault: PersonalDataVault,
    actor: Principal,
    record_id: str,
    changes: Mapping[str, Cell],
    reason: str,
    *,
    now: datetime | None = None,
) -> CorrectionReceipt:
    """A base corrects its own current record within the policy's window (entry ``correction``)."""
    at = _utc(now)
    record = _record(session, record_id)
    base = _base(session, record.base_id)
    require(actor, "completion.correct", _scope(base))
    if not reason.strip():
        raise RuleViolation("completion.correct.reason", "reason: a correction needs a reason")
    refused = sorted(set(changes) - CORRECTABLE)
    if refused:
        raise RuleViolation(
            "completion.correct.field",
            f"{refused}: cannot be corrected (the person is fixed; a record for the wrong person "
            f"is revoked by the authority and posted again); correctable: {sorted(CORRECTABLE)}",
        )
    if not changes:
        raise RuleViolation("completion.correct.empty", "changes: nothing to correct")
    log.lock(session)
    _require_current(session, record, "correct")
    _require_operating(base)
    original = chain(session, record)[0]
    policy = effective_policy(session, base.jurisdiction_code, date(record.year, 12, 31))
    window = policy.hours.correction_window_days
    posted = local_date(aware(original.posted_at))
    if (local_date(at) - posted).days > window:
        raise RuleViolation(
            "completion.correct.window",
            f"record {record.id} was posted on {posted}; {policy.name} allows corrections for "
            f"{window} days (until {posted + timedelta(days=window)}); ask the authority to "
            "revoke it instead",
        )
    cells = _unseal_row(session, vault, record)
    cells.update(changes)
    normalised = normalise_row(RawRow(1, cells), today=local_date(at))
    if isinstance(normalised, list):
        raise BatchRejected(normalised)
    row = normalised
    judge = _Judge.of(session, base)
    errors, plan = judge.judge(row)
    key = (record.person_id, row.class_code, row.year)
    if _ledger_duplicates(session, base.id, {key}, exclude=record.id):
        errors.append(_duplicate_error(row, "ledger"))
    if errors:
        raise BatchRejected(errors)
    assert plan is not None
    token = secrets.token_bytes(16)
    new_id = record_id_of_token(token)
    salt = new_salt()
    subject = commitment(salt, row.id_number)
    payload = _entry_payload(new_id, None, base.id, plan, row, subject)
    payload["supersedes"] = record.id
    payload["reason_sha256"] = hashlib.sha256(reason.strip().encode()).hexdigest()
    result = log.append(session, [("correction", encode_entry("correction", payload))])
    session.execute(
        insert(CompletionRecord),
        [
            _record_params(
                record=new_id,
                token=token,
                kind="correction",
                batch=None,
                row=row,
                base=base.id,
                plan=plan,
                person=record.person_id,
                salt=salt,
                subject=subject,
                vault=vault,
                actor=actor,
                now=at,
                log_index=result.first_index,
                supersedes=record.id,
                reason=reason.strip(),
            )
        ],
    )
    return CorrectionReceipt(
        new_id, record.id, result.first_index, result.tree_size, result.checkpoint
    )


def revoke(
    session: Session,
    log: Log,
    actor: Principal,
    record_id: str,
    reason_code: str,
    reason: str,
    *,
    now: datetime | None = None,
) -> CorrectionReceipt:
    """An authority revokes a current record (entry ``revocation``)."""
    at = _utc(now)
    record = _record(session, record_id)
    base = _base(session, record.base_id)
    require(actor, "completion.revoke", _scope(base))
    if reason_code not in REVOCATION_REASONS:
        raise RuleViolation(
            "completion.revoke.reason-code",
            f"reason_code: expected one of {sorted(REVOCATION_REASONS)}, found {reason_code!r}",
        )
    if not reason.strip():
        raise RuleViolation("completion.revoke.reason", "reason: a revocation needs a reason")
    log.lock(session)
    _require_current(session, record, "revoke")
    payload = {
        "record": record.id,
        "reason_code": reason_code,
        "reason_sha256": hashlib.sha256(reason.strip().encode()).hexdigest(),
        "by": actor.id,
        "at": _stamp(at),
    }
    result = log.append(session, [("revocation", encode_entry("revocation", payload))])
    session.add(
        Revocation(
            record_id=record.id,
            reason_code=reason_code,
            reason=reason.strip(),
            actor=actor.id,
            at=at,
            log_index=result.first_index,
        )
    )
    session.flush()
    return CorrectionReceipt(
        record.id, record.id, result.first_index, result.tree_size, result.checkpoint
    )


# --------------------------------------------------------------------------------------------
# Base signing keys, execution-summary rows


def register_signing_key(
    session: Session,
    log: Log,
    actor: Principal,
    base_ref: int,
    public_key: bytes,
    *,
    now: datetime | None = None,
) -> BaseSigningKey:
    at = _utc(now)
    base = _base(session, base_ref)
    require(actor, "base.signing-key", _scope(base))
    if len(public_key) != 32:
        raise RuleViolation(
            "base.signing-key.format",
            f"public_key: expected a raw Ed25519 public key of 32 bytes, found {len(public_key)}",
        )
    try:
        Ed25519PublicKey.from_public_bytes(public_key)
    except ValueError as exc:
        raise RuleViolation("base.signing-key.format", f"public_key: {exc}") from None
    kid = "bk_" + hashlib.sha256(public_key).hexdigest()[:16]
    if session.get(BaseSigningKey, kid) is not None:
        raise StateConflict("base.signing-key.exists", f"key {kid} is already registered")
    payload = {
        "purpose": "batch-signing",
        "owner": base_id(base.id),
        "kid": kid,
        "public_key": base64.b64encode(public_key).decode("ascii"),
        "at": _stamp(at),
    }
    result = log.append(session, [("key.added", encode_entry("key.added", payload))])
    key = BaseSigningKey(
        kid=kid,
        base_id=base.id,
        public_key=public_key,
        added_at=at,
        added_by=actor.id,
        retired_at=None,
        log_index=result.first_index,
    )
    session.add(key)
    session.flush()
    return key


def summary_rows(session: Session, base: int, year: int) -> list[CompletionRow]:
    """Current, unrevoked records of a base's year, as the execution summary counts them.

    Trainees are counted per person (the service-internal id, never printed), not per public
    commitment: each record has its own salt, so commitments never repeat.
    """
    rows = session.execute(
        select(
            CompletionRecord.person_id,
            CompletionRecord.class_code,
            CompletionRecord.category,
            CompletionRecord.mode,
            CompletionRecord.hours_tenths,
        ).where(
            CompletionRecord.base_id == base,
            CompletionRecord.year == year,
            _current_filter(),
        )
    ).all()
    return [
        CompletionRow(f"person:{pid}", code, category, mode, Decimal(tenths) / 10)
        for pid, code, category, mode, tenths in rows
    ]
