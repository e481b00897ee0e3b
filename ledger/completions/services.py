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

Speed (10,000-row batches): as much as possible happens before the lock, so that concurrent
batches overlap there — `prepare_batch` (any session, no lock) types and judges the rows,
encodes the entries, seals, reads the people who already exist and writes every row of the
bulk inserts but for the numbers only known later; `commit_batch` adds the new people (before
the lock: the unique lookup arbitrates, see `_add_people`), then under the lock re-checks what
may have moved (the people read before it, recognition, duplicates), appends, and inserts the
records.  The fast paths (`ledger.completions.rules._plain_row`, `_digest`,
`_completion_entries`) give exactly what the general code gives;
``tests/test_batch_speedups.py`` compares them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Table, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
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
from ledger.completions.pii import (
    PersonalDataVault,
    commitment,
    new_salt,
    new_salts,
    person_plaintext,
)
from ledger.completions.rules import (
    ClassFacts,
    OperatingDays,
    RowError,
    RowIn,
    check_against_class,
    normalise_row,
    normalise_rows,
)
from ledger.entries import check_no_personal_data, encode_entries, encode_entry
from ledger.errors import FormatError
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
from ledger.storage.db import (
    copy_data,
    copy_text,
    driver,
    driver_values,
    executemany_rows,
    is_unique_violation,
    reserve_ids,
)
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


_RECORD_TAG: Final = b"celedger-record-v1\x00"


def record_id_of_token(token: bytes) -> str:
    """The public record id that belongs to a secret token (the token cannot be recovered)."""
    digest = hashlib.sha256(_RECORD_TAG + token).digest()
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


def operating_days(session: Session, base: int) -> OperatingDays:
    """The days on which ``base`` was recognised, from its status history."""
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
            operating_days(session, base.id),
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


@dataclass
class _People:
    """The people of a batch as read before the lock (`prepare_batch`).

    ``ids``/``names``: the persons that already exist (names unsealed; none for an erased
    person); ``new``: (lookup, ID number) of everyone else, sorted by lookup, with their
    sealed name and number and their ``persons`` rows encoded for the bulk insert (all but
    the id, which is reserved when they are written).
    """

    ids: dict[str, int]
    names: dict[str, str]
    new: list[tuple[bytes, str]]
    sealed: list[bytes]
    rows: list[Any]


def _people_by_lookup(
    session: Session, vault: PersonalDataVault, lookups: Sequence[bytes], *, unseal: bool = True
) -> dict[bytes, tuple[int, str | None]]:
    """Lookup → (person id, unsealed name — None once erased, or when not ``unseal``), for
    those that exist."""
    found: dict[bytes, tuple[int, str | None]] = {}
    if not lookups:
        return found
    db = driver(session)
    if _is_postgres(session):
        # One statement with an array (an IN list of thousands of parameters costs more to
        # send and plan than the index probes), sent as the text of a bytea[] literal:
        # psycopg adapts a list element by element in Python, ten times slower than this.
        literal = "{" + ",".join([f'"\\\\x{lookup.hex()}"' for lookup in lookups]) + "}"
        hits = db.execute(
            "SELECT id, lookup, sealed FROM persons WHERE lookup = ANY(%s::bytea[])", [literal]
        ).fetchall()
    else:
        hits = []
        for chunk in _chunks(lookups):
            marks = ", ".join("?" * len(chunk))
            sql = f"SELECT id, lookup, sealed FROM persons WHERE lookup IN ({marks})"  # noqa: S608
            hits.extend(db.execute(sql, list(chunk)).fetchall())
    for pid, lookup, sealed in hits:
        key = bytes(lookup)
        name = None if sealed is None or not unseal else vault.open(bytes(sealed), key)["name"]
        found[key] = (int(pid), name)
    return found


def _read_people(
    session: Session,
    vault: PersonalDataVault,
    rows: Sequence[RowIn],
    at: datetime,
    postgres: bool,
) -> _People:
    first_name: dict[str, str] = {}
    for r in rows:
        first_name.setdefault(r.id_number, r.name)
    numbers = list(first_name)
    lookups = vault.lookups(numbers)
    found = _people_by_lookup(session, vault, lookups)
    ids: dict[str, int] = {}
    names: dict[str, str] = {}
    new: list[tuple[bytes, str]] = []
    for number, lookup in zip(numbers, lookups, strict=True):
        hit = found.get(lookup)
        if hit is None:
            new.append((lookup, number))
            continue
        ids[number] = hit[0]
        if hit[1] is not None:
            names[number] = hit[1]
    # Every batch adds its people in lookup order: two batches adding some of the same people
    # at once then wait for each other in one order only, never in a cycle (no deadlock).
    new.sort()
    sealed = vault.seal_many(
        [person_plaintext(first_name[n], n) for _, n in new],
        [lookup for lookup, _ in new],
    )
    if postgres:
        created = copy_text(at)
        encoded: list[Any] = [
            f"\\\\x{lookup.hex()}\t\\\\x{blob.hex()}\t{created}".encode()
            for (lookup, _), blob in zip(new, sealed, strict=True)
        ]
    else:
        created_value = driver_values(session, Person.__table__, "created_at")(at)
        encoded = [
            (lookup, blob, created_value) for (lookup, _), blob in zip(new, sealed, strict=True)
        ]
    return _People(ids, names, new, sealed, encoded)


_PERSON_COLUMNS: Final = ("id", "lookup", "sealed", "created_at")


def _add_people(
    session: Session, vault: PersonalDataVault, p: PreparedBatch
) -> tuple[dict[str, int], dict[str, str], dict[str, int]]:
    """Write the batch's new people; answer (every person id, the known names, the ids of
    the people who existed before this batch).

    Runs before the append lock: people are identities, not ledger acts, and the unique
    lookup decides who adds a person first.  Normally nobody has added any of them since
    `prepare_batch` read them, and they go in as one bulk insert; if someone has (the insert
    meets the unique lookup), the insert is undone and the people are added one by one,
    skipping and reading whoever now exists.
    """
    people = p.people
    ids = dict(people.ids)
    names = dict(people.names)
    existing = dict(people.ids)
    if not people.new:
        return ids, names, existing
    pids = reserve_ids(session, Person.__table__, len(people.new))
    try:
        with session.begin_nested():
            if p.postgres:
                data = b"".join(
                    [b"%d\t%b\n" % (pid, line) for pid, line in zip(pids, people.rows, strict=True)]
                )
                copy_data(session, Person.__table__, _PERSON_COLUMNS, data)
            else:
                executemany_rows(
                    session,
                    Person.__table__,
                    _PERSON_COLUMNS,
                    [(pid, *row) for pid, row in zip(pids, people.rows, strict=True)],
                )
    except Exception as exc:
        if not is_unique_violation(exc):
            raise
    else:
        for (_, number), pid in zip(people.new, pids, strict=True):
            ids[number] = pid
        return ids, names, existing
    # Someone added some of these people meanwhile.
    number_of = dict(people.new)
    for lookup, (pid, name) in _people_by_lookup(session, vault, list(number_of)).items():
        number = number_of.pop(lookup)
        ids[number] = existing[number] = pid
        if name is not None:
            names[number] = name
    missing = [
        (pid, lookup, blob)
        for pid, (lookup, _), blob in zip(pids, people.new, people.sealed, strict=True)
        if lookup in number_of
    ]
    if missing:
        table = cast("Table", Person.__table__)
        insert_person = (
            pg_insert(table) if p.postgres else sqlite_insert(table)
        ).on_conflict_do_nothing(index_elements=["lookup"])
        session.execute(
            insert_person,
            [
                {"id": pid, "lookup": lookup, "sealed": blob, "created_at": p.at}
                for pid, lookup, blob in missing
            ],
        )
        found = _people_by_lookup(session, vault, [lookup for _, lookup, _ in missing])
        for ours, lookup, _ in missing:
            pid, name = found[lookup]
            number = number_of[lookup]
            ids[number] = pid
            if pid != ours:  # added by another batch between our two statements
                existing[number] = pid
                if name is not None:
                    names[number] = name
    return ids, names, existing


def _name_errors(rows: Sequence[RowIn], names: Mapping[str, str]) -> list[RowError]:
    """Rows whose name differs from the name the ID number is registered under (or, for a
    new person, from the batch's first row of that ID number)."""
    errors = []
    first_name: dict[str, str] = {}
    for r in rows:
        known = names.get(r.id_number) or first_name.setdefault(r.id_number, r.name)
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
    rows, errors = normalise_rows(raw.rows, today=today)
    if errors:
        raise BatchRejected(errors)
    return rows


@dataclass
class PreparedBatch:
    """A validated batch with everything computed that needs no lock: record ids, salts,
    commitments, sealed details, the ledger entries' bytes, the people already known and the
    new people's sealed data, and the rows encoded for the bulk inserts (all but the person
    ids of new people and the log indexes).  `commit_batch` writes it."""

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
    records: list[str]
    entries: list[bytes]
    people: _People
    #: ``completions`` rows (see `_RECORD_COLUMNS`), without the last two columns.
    record_rows: list[Any]
    #: The receipt's record objects up to the log index: ``{"row":…,"record":"…","log_index":``.
    receipt_items: list[str]
    postgres: bool


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
    # A row is judged on its class's facts only (not on who the person is), and the rows of
    # a batch share a handful of classes: a verdict without errors is reused for every row
    # with the same facts.  Rows with errors are judged one by one (errors name their row).
    passed: dict[tuple[Any, ...], int] = {}
    for row in rows:
        facts = (
            row.class_code,
            row.year,
            row.category,
            row.mode,
            row.class_title,
            row.start,
            row.end,
            row.hours_tenths,
            row.fee_fen,
        )
        plan = passed.get(facts)
        if plan is None:
            row_errors, found = judge.judge(row)
            if row_errors:
                errors.extend(row_errors)
            elif found is not None:
                passed[facts] = plan = found
        if plan is not None:
            plans[row.row] = plan
        key = (row.id_number, row.class_code, row.year)
        if key in seen:
            errors.append(_duplicate_error(row, str(seen[key])))
        else:
            seen[key] = row.row
    return errors, plans


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _digest(base: int, batch_key: str, rows: Sequence[RowIn]) -> str:
    """`batch_digest`, written out directly: every key is ASCII and every value a string, so
    compact JSON with sorted keys, as the standard library writes it, *is* JCS here (see
    ``ledger.canonical._plain_json``) — unless a string holds a lone surrogate, which UTF-8
    refuses; then `batch_digest` itself answers (and refuses it).

    The class's values are the same on most rows: their parts of the text are written once
    per class, and each row adds its person's values between them (keys in sorted order)."""
    if type(batch_key) is not str:
        return batch_digest(base, batch_key, rows)
    e = _json_text
    classes: dict[tuple[Any, ...], tuple[str, str, str, str, str, str, str]] = {}
    parts = []
    for r in rows:
        key: tuple[Any, ...] = (r.category, r.class_code, r.class_title, r.end, r.fee_fen)
        key += (r.hours_tenths, r.mode, r.result, r.start, r.year)
        found = classes.get(key)
        if found is None:
            found = classes[key] = (
                f',"category":{e(r.category)}' if r.category else "",
                (f',"class_code":{e(r.class_code)}' if r.class_code else "")
                + (f',"class_title":{e(r.class_title)}' if r.class_title else ""),
                f',"end":"{r.end.isoformat()}"',
                f',"fee_yuan":"{r.fee_yuan}","hours":"{r.hours}"',
                f',"mode":{e(r.mode)}' if r.mode else "",
                (f',"result":{e(r.result)}' if r.result else "")
                + f',"start":"{r.start.isoformat()}"',
                f',"year":"{r.year}"',
            )
        category, code_title, end, fee_hours, mode, result_start, year = found
        cert = f',"certificate_number":{e(r.certificate_number)}' if r.certificate_number else ""
        employer = f',"employer":{e(r.employer)}' if r.employer else ""
        evaluation = f',"evaluation":{e(r.evaluation)}' if r.evaluation else ""
        number = f',"id_number":{e(r.id_number)}' if r.id_number else ""
        name = f',"name":{e(r.name)}' if r.name else ""
        place = f',"place":{e(r.place)}' if r.place else ""
        title = f',"title_field":{e(r.title_field)}' if r.title_field else ""
        # Every part starts with a comma: the first one's becomes the object's brace.
        text = (
            f"{category}{cert}{code_title}{employer}{end}{evaluation}{fee_hours}{number}{mode}"
            f"{name}{place}{result_start}{title}{year}"
        )
        parts.append("{" + text[1:] + "}")
    records = ",".join(parts)
    text = f'{{"base":{e(base_id(base))},"batch_key":{e(batch_key)},"records":[{records}]}}'
    try:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
    except UnicodeEncodeError:
        return batch_digest(base, batch_key, rows)


def _record_ids(tokens: Sequence[bytes]) -> list[str]:
    """`record_id_of_token` of every token: 15 digest bytes are exactly 24 base32 characters,
    so one encoding of all of them, cut every 24 characters, gives the same ids."""
    sha = hashlib.sha256
    tag = _RECORD_TAG
    text = base64.b32encode(b"".join([sha(tag + t).digest()[:15] for t in tokens]))
    ids = text.decode("ascii").lower()
    return ["r_" + ids[i : i + 24] for i in range(0, len(ids), 24)]


#: A JSON string literal as ``json.dumps(…, ensure_ascii=False)`` writes it (C encoder).
_json_text: Final[Callable[[str], str]] = json.encoder.encode_basestring
_RECORD_MARK: Final = "celedger-record-placeholder"
_SUBJECT_MARK: Final = "celedger-subject-placeholder"
#: Any number of record ids / hex SHA-256 digests, back to back (checked in one call each).
_GENERATED = re.compile(r"(?:r_[a-z2-7]{24})*")
_HEX_DIGEST = re.compile(r"(?:[0-9a-f]{64})*")


def _completion_entries(
    base: int,
    batch: str,
    plans: Mapping[int, int],
    rows: Sequence[RowIn],
    records: Sequence[str],
    subjects: Sequence[str],
) -> list[bytes]:
    """The ``completion`` entries of a batch, byte for byte what `encode_entries` gives.

    The rows of a batch share a few classes: for each distinct (plan, class, …) one entry is
    encoded by `encode_entry` itself — kind, reserved keys, the personal-data tripwire and
    RFC 8785 — with placeholders for the record id and the subject, and every row's entry is
    that text with its own record id and subject put in.  Both are generated here in
    alphabets JSON never escapes (``r_`` + base32; hex SHA-256), and the tripwire still sees
    every record id; subjects are digests, which it exempts.
    """
    # Every element of the right length, and the concatenation a run of such tokens: then
    # every element is one.
    if (
        not set(map(len, records)) <= {26}
        or not set(map(len, subjects)) <= {64}
        or _GENERATED.fullmatch("".join(records)) is None
        or _HEX_DIGEST.fullmatch("".join(subjects)) is None
    ):
        raise ValueError("record ids and subjects must be the generated ones")
    check_no_personal_data("\x00".join(records))
    templates: dict[tuple[Any, ...], tuple[str, str, str]] = {}
    out: list[bytes] = []
    for r, record, subject in zip(rows, records, subjects, strict=True):
        plan = plans[r.row]
        key: tuple[Any, ...] = (plan, r.class_code, r.year, r.category, r.mode, r.hours_tenths)
        key += (r.start, r.end, r.result)
        parts = templates.get(key)
        if parts is None:
            payload = _entry_payload(_RECORD_MARK, batch, base, plan, r, _SUBJECT_MARK)
            text = encode_entry("completion", payload).decode("utf-8")
            if text.count(_RECORD_MARK) != 1 or text.count(_SUBJECT_MARK) != 1:
                # A placeholder inside a row's own values (never in practice): the general way.
                return encode_entries(
                    "completion",
                    [
                        _entry_payload(rid, batch, base, plans[x.row], x, subj)
                        for rid, x, subj in zip(records, rows, subjects, strict=True)
                    ],
                )
            head, _, rest = text.partition(_RECORD_MARK)
            middle, _, tail = rest.partition(_SUBJECT_MARK)
            parts = templates[key] = (head, middle, tail)
        out.append(f"{parts[0]}{record}{parts[1]}{subject}{parts[2]}".encode())
    if out and max(map(len, out)) > 0xFFFF:
        raise FormatError("entry is longer than 65535 bytes")
    return out


#: ``completions`` columns in the order `PreparedBatch.record_rows` encodes them: per row,
#: per class, per batch, and last the two only known under the lock.
_RECORD_COLUMNS: Final = (
    "id",
    "token",
    "row_number",
    "salt",
    "subject",
    "sealed",
    "plan_id",
    "class_code",
    "year",
    "category",
    "mode",
    "hours_tenths",
    "start_date",
    "end_date",
    "result",
    "fee_fen",
    "kind",
    "batch_id",
    "supersedes",
    "correction_reason",
    "base_id",
    "posted_by",
    "posted_at",
    "person_id",
    "log_index",
)


def _encode_records(
    session: Session,
    postgres: bool,
    base: int,
    at: datetime,
    batch: str,
    plans: Mapping[int, int],
    rows: Sequence[RowIn],
    columns: tuple[Sequence[str], Sequence[bytes], Sequence[bytes], Sequence[str], Sequence[bytes]],
) -> list[Any]:
    """The batch's ``completions`` rows encoded for the bulk insert, but for person id and
    log index: COPY text (UTF-8 bytes, no newline) on PostgreSQL, driver tuples on SQLite (values as SQLAlchemy would
    bind them).  Done before the lock, so that under it only two numbers are added per row."""
    records, tokens, salts, subjects, sealed = columns
    table = CompletionRecord.__table__
    # A batch's records leave ``posted_by`` null: the batch names its poster (see the model).
    per_batch: tuple[Any, ...] = ("completion", batch, None, None, base, None, at)
    groups: dict[tuple[Any, ...], Any] = {}

    def group_values(r: RowIn) -> tuple[Any, ...]:
        plan = plans[r.row]
        return (plan, r.class_code, r.year, r.category, r.mode, r.hours_tenths, r.start, r.end)

    if postgres:
        tail = "\t".join([copy_text(v) for v in per_batch])
        lines: list[Any] = []
        for rid, token, salt, subject, blob, r in zip(
            records, tokens, salts, subjects, sealed, rows, strict=True
        ):
            key = (*group_values(r), r.result, r.fee_fen)
            group = groups.get(key)
            if group is None:
                group = groups[key] = "\t".join([copy_text(v) for v in key])
            # Record ids and subjects are generated ([a-z2-7_], hex): nothing to escape.
            lines.append(
                f"{rid}\t\\\\x{token.hex()}\t{r.row}\t\\\\x{salt.hex()}\t{subject}\t"
                f"\\\\x{blob.hex()}\t{group}\t{tail}".encode()
            )
        return lines
    day = driver_values(session, table, "start_date")
    instant = driver_values(session, table, "posted_at")
    batch_values = (*per_batch[:-1], instant(at))
    tuples: list[Any] = []
    for rid, token, salt, subject, blob, r in zip(
        records, tokens, salts, subjects, sealed, rows, strict=True
    ):
        key = (*group_values(r), r.result, r.fee_fen)
        group = groups.get(key)
        if group is None:
            plan, code, year, category, mode, tenths, start, end, result, fee = key
            group = groups[key] = (
                plan,
                code,
                year,
                category,
                mode,
                tenths,
                day(start),
                day(end),
                result,
                fee,
                *batch_values,
            )
        tuples.append((rid, token, r.row, salt, subject, blob, *group))
    return tuples


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
    digest = _digest(base.id, batch_key, rows)
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
    postgres = _is_postgres(session)
    batch = _new_id("b_")
    count = len(rows)
    pool = secrets.token_bytes(16 * count)
    tokens = [pool[i : i + 16] for i in range(0, 16 * count, 16)]
    records = _record_ids(tokens)
    salts = new_salts(count)
    subjects = [commitment(salt, r.id_number) for salt, r in zip(salts, rows, strict=True)]
    entries = _completion_entries(base.id, batch, plans, rows, records, subjects)
    sealed = vault.seal_many(
        [r.details_json() for r in rows], [rid.encode("ascii") for rid in records]
    )
    people = _read_people(session, vault, rows, at, postgres)
    record_rows = _encode_records(
        session,
        postgres,
        base.id,
        at,
        batch,
        plans,
        rows,
        (records, tokens, salts, subjects, sealed),
    )
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
        records=records,
        entries=entries,
        people=people,
        record_rows=record_rows,
        receipt_items=[
            f'{{"row":{r.row},"record":"{rid}","log_index":'
            for r, rid in zip(rows, records, strict=True)
        ],
        postgres=postgres,
    )


class _PeopleMoved(Exception):
    """A person `prepare_batch` found no longer has that ID number's lookup (erased)."""


class _Replayed(Exception):
    """Raised inside `commit_batch`'s savepoint to undo it and answer a stored receipt."""

    def __init__(self, posted: PostedBatch) -> None:
        super().__init__(posted.batch_id)
        self.posted = posted


def commit_batch(
    session: Session, log: Log, vault: PersonalDataVault, prepared: PreparedBatch
) -> PostedBatch:
    """Write a prepared batch in ``session`` (a writer): new people, then under the lock the
    re-checks, the append and the records.

    Everything happens inside one savepoint so that a batch found already posted (a retry
    that raced this one) leaves nothing behind, not even the people added before the lock.
    """
    if prepared.postgres != _is_postgres(session):
        raise ValueError("commit_batch: the batch was prepared for another kind of database")
    for _ in range(3):
        try:
            with session.begin_nested():
                return _commit(session, log, vault, prepared)
        except _Replayed as replayed:
            return replayed.posted
        except _PeopleMoved:
            # A person read before the lock was erased meanwhile (the ID number now makes a
            # new person).  Undoing the savepoint also let go of the lock: read them again
            # here, before taking it again.
            prepared.people = _read_people(
                session, vault, prepared.rows, prepared.at, prepared.postgres
            )
    raise StateConflict(
        "batch.people-changed",
        "people of this batch were erased while it was being posted, three times in a row; "
        "post it again",
    )


def _commit(session: Session, log: Log, vault: PersonalDataVault, p: PreparedBatch) -> PostedBatch:
    ids, names, existing = _add_people(session, vault, p)
    log.lock(session)  # from here on no other batch can post the same person and class
    if existing:
        # Only erasure changes an existing person (it replaces the lookup, under this lock):
        # the people found before the lock must still be found by their ID numbers.
        lookups = vault.lookups(existing)
        now = _people_by_lookup(session, vault, lookups, unseal=False)
        if any(
            now.get(lookup, (None,))[0] != existing[number]
            for number, lookup in zip(existing, lookups, strict=True)
        ):
            raise _PeopleMoved
    found = _existing_batch(session, p.base, p.batch_key)
    if found is not None:
        raise _Replayed(_replay(found, p.digest))
    base = _base(session, p.base)
    _require_operating(base)
    if _status_mark(session, p.base) != p.status_mark:
        errors, _ = _judge_rows(session, base, p.rows)  # recognition changed meanwhile
        if errors:
            raise BatchRejected(errors)
    errors = _name_errors(p.rows, names)
    known = {
        (existing[r.id_number], r.class_code, r.year): r for r in p.rows if r.id_number in existing
    }
    for dup in _ledger_duplicates(session, p.base, set(known)):
        errors.append(_duplicate_error(known[dup], "ledger"))
    if errors:
        raise BatchRejected(errors)
    result = log.append(session, [("completion", e) for e in p.entries])
    first = result.first_index
    head: dict[str, Any] = {
        "batch": p.batch,
        "batch_key": p.batch_key,
        "base": base_id(p.base),
        "source": p.source,
        "digest": p.digest,
        "received_at": _stamp(p.at),
        "count": len(p.rows),
        "signature": None if p.signature is None else {"kid": p.signature.kid, "verified": True},
        "ledger": _ledger_json(result),
        "records": [],
    }
    # The receipt is compact JSON of `head` with its records filled in; each record object
    # was written out by `prepare_batch` up to its log index.
    text = json.dumps(head, ensure_ascii=False, separators=(",", ":"))
    records = ",".join([f"{item}{first + i}}}" for i, item in enumerate(p.receipt_items)])
    receipt_bytes = (text.removesuffix("]}") + records + "]}").encode()
    session.add(
        CompletionBatch(
            id=p.batch,
            base_id=p.base,
            batch_key=p.batch_key,
            digest=p.digest,
            source=p.source,
            record_count=len(p.rows),
            first_index=first,
            tree_size=result.tree_size,
            signature_kid=None if p.signature is None else p.signature.kid,
            signature=None if p.signature is None else p.signature.value,
            posted_by=p.actor.id,
            received_at=p.at,
            receipt=receipt_bytes,
        )
    )
    session.flush()
    table = CompletionRecord.__table__
    if p.postgres:
        data = b"".join(
            [
                b"%b\t%d\t%d\n" % (line, ids[r.id_number], first + i)
                for i, (line, r) in enumerate(zip(p.record_rows, p.rows, strict=True))
            ]
        )
        copy_data(session, table, _RECORD_COLUMNS, data)
    else:
        executemany_rows(
            session,
            table,
            _RECORD_COLUMNS,
            [
                (*values, ids[r.id_number], first + i)
                for i, (values, r) in enumerate(zip(p.record_rows, p.rows, strict=True))
            ],
        )
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


def version_json(v: CompletionRecord, status: str, revocation: Revocation | None) -> dict[str, Any]:
    """One version of a record as the API shows it (record view, the holder's records)."""
    return {
        "record": v.id,
        "kind": v.kind,
        "status": status,
        "log_index": v.log_index,
        "posted_at": _stamp(aware(v.posted_at)),
        "posted_by": v.poster,
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
        versions.append(version_json(v, status, revocation))
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
