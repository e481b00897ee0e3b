"""The public directory: read-only views of the registry, as JSON-ready dicts.

Everything here is public by regulation (recognised bases are published, fee items and
standards are public, inspection results are published, name and contact changes are
published), so no view needs a key.  Every act shown carries the ``log_index`` of its ledger
entry, so a reader can fetch an inclusion proof for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from importlib import resources
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.canonical import canonicalize
from ledger.policy import BUILTIN_POLICY_FILES, parse_policy
from ledger.registry.auth import base_id, unit_id
from ledger.registry.errors import NotFound
from ledger.registry.models import (
    BaseRecord,
    BaseStatusEvent,
    Inspection,
    Jurisdiction,
    ManagementUnit,
    Plan,
    PlanClass,
    PolicyVersion,
)
from ledger.registry.services import (
    APPROVED_PLAN_STATUSES,
    aware,
    effective_policy,
    local_date,
    plan_document,
    policy_registry,
)

__all__ = [
    "base_detail",
    "list_bases",
    "list_jurisdictions",
    "list_units",
    "plans_for_year",
    "policy_document",
    "policy_view",
]


def _ts(at: datetime | None) -> str | None:
    return None if at is None else aware(at).strftime("%Y-%m-%dT%H:%M:%SZ")


def _day(d: date | None) -> str | None:
    return None if d is None else d.isoformat()


def list_jurisdictions(session: Session) -> list[dict[str, Any]]:
    """Every jurisdiction, parents first, with the policy version that governs it today."""
    rows = session.execute(select(Jurisdiction).order_by(Jurisdiction.code)).scalars().all()
    out = []
    for j in sorted(rows, key=lambda r: (r.code.count("-"), r.code)):
        policy = effective_policy(session, j.code)
        out.append(
            {
                "code": j.code,
                "title": j.title,
                "level": j.level,
                "parent": j.parent_code,
                "policy": {"code": policy.code, "version": policy.version},
                "log_index": j.log_index,
            }
        )
    return out


def list_units(session: Session, jurisdiction: str | None = None) -> list[dict[str, Any]]:
    query = select(ManagementUnit).order_by(ManagementUnit.id)
    if jurisdiction is not None:
        query = query.where(ManagementUnit.jurisdiction_code == jurisdiction)
    return [
        {
            "id": u.id,
            "principal": unit_id(u.id),
            "title": u.title,
            "jurisdiction": u.jurisdiction_code,
            "log_index": u.log_index,
        }
        for u in session.execute(query).scalars()
    ]


def _inspection(i: Inspection) -> dict[str, Any]:
    return {
        "year": i.year,
        "result": i.result,
        "notes": i.notes,
        "at": _ts(i.at),
        "by": i.actor,
        "log_index": i.log_index,
    }


def _latest_inspections(session: Session, bases: Sequence[int]) -> dict[int, Inspection]:
    latest: dict[int, Inspection] = {}
    if not bases:
        return latest
    rows = session.execute(
        select(Inspection)
        .where(Inspection.base_id.in_(bases))
        .order_by(Inspection.year, Inspection.log_index)
    ).scalars()
    for row in rows:
        latest[row.base_id] = row
    return latest


def _base_summary(
    b: BaseRecord, unit: ManagementUnit, latest: Inspection | None, today: date
) -> dict[str, Any]:
    return {
        "id": b.id,
        "principal": base_id(b.id),
        "uscc": b.uscc,
        "title": b.title,
        "status": b.status,
        "status_since": _ts(b.status_since),
        "jurisdiction": b.jurisdiction_code,
        "construction_unit": b.construction_unit,
        "management_unit": {"id": unit.id, "title": unit.title},
        "rectification": None
        if b.status != "rectification"
        else {
            "deadline": _day(b.rectification_deadline),
            "reason": b.rectification_reason,
            "overdue": b.rectification_deadline is not None and today > b.rectification_deadline,
        },
        "latest_inspection": None if latest is None else _inspection(latest),
    }


def list_bases(
    session: Session,
    *,
    jurisdiction: str | None = None,
    status: str | None = None,
    unit: int | None = None,
) -> list[dict[str, Any]]:
    """Bases, optionally filtered; ``jurisdiction`` includes the whole subtree."""
    query = (
        select(BaseRecord, ManagementUnit)
        .join(ManagementUnit, ManagementUnit.id == BaseRecord.management_unit_id)
        .order_by(BaseRecord.id)
    )
    if jurisdiction is not None:
        query = query.where(
            (BaseRecord.jurisdiction_code == jurisdiction)
            | BaseRecord.jurisdiction_code.startswith(jurisdiction + "-", autoescape=True)
        )
    if status is not None:
        query = query.where(BaseRecord.status == status)
    if unit is not None:
        query = query.where(BaseRecord.management_unit_id == unit)
    rows = session.execute(query).all()
    latest = _latest_inspections(session, [b.id for b, _ in rows])
    today = local_date(datetime.now().astimezone())
    return [_base_summary(b, u, latest.get(b.id), today) for b, u in rows]


def _class_json(c: PlanClass) -> dict[str, Any]:
    return {
        "code": c.code,
        "title": c.title,
        "category": c.category,
        "mode": c.mode,
        "hours": str((Decimal(c.hours_tenths) / 10).quantize(Decimal("0.1"))),
        "start": c.start_date.isoformat(),
        "end": c.end_date.isoformat(),
        "capacity": c.capacity,
        "fee_yuan": str((Decimal(c.fee_fen) / 100).quantize(Decimal("0.01"))),
    }


def _plan_json(p: Plan) -> dict[str, Any]:
    return {
        "id": p.id,
        "year": p.year,
        "revision": p.revision,
        "status": p.status,
        "sha256": p.sha256,
        "policy": f"{p.policy_code}@{p.policy_version}",
        "management_unit_due": _day(p.management_unit_due),
        "authority_due": _day(p.authority_due),
        "submitted": {
            "at": _ts(p.submitted_at),
            "by": p.submitted_by,
            "log_index": p.submitted_log_index,
        },
        "late_submission": p.late_submission,
        "decision": None
        if p.decided_at is None
        else {
            "at": _ts(p.decided_at),
            "by": p.decided_by,
            "reason": p.decision_reason,
            "log_index": p.decided_log_index,
        },
        "filed": None
        if p.filed_at is None
        else {"at": _ts(p.filed_at), "by": p.filed_by, "log_index": p.filed_log_index},
        "late_filing": p.late_filing,
    }


def base_detail(session: Session, base: int) -> dict[str, Any]:
    """Everything public about one base: status, units, contact, fee standards of its approved
    plans, plans with their late flags, inspections (latest first) and status history."""
    b = session.get(BaseRecord, base)
    if b is None:
        raise NotFound("base.exists", f"no base {base_id(base)}")
    unit = session.get(ManagementUnit, b.management_unit_id)
    assert unit is not None  # a foreign key guarantees it
    inspections = (
        session.execute(
            select(Inspection)
            .where(Inspection.base_id == b.id)
            .order_by(Inspection.year.desc(), Inspection.log_index.desc())
        )
        .scalars()
        .all()
    )
    today = local_date(datetime.now().astimezone())
    out = _base_summary(b, unit, inspections[0] if inspections else None, today)
    out["contact"] = {
        "address": b.contact_address,
        "phone": b.contact_phone,
        "email": b.contact_email,
    }
    plans = (
        session.execute(select(Plan).where(Plan.base_id == b.id).order_by(Plan.year, Plan.revision))
        .scalars()
        .all()
    )
    out["plans"] = [_plan_json(p) for p in plans]
    fees = []
    for p in plans:
        if p.status in APPROVED_PLAN_STATUSES:
            classes = session.execute(
                select(PlanClass).where(PlanClass.plan_id == p.id).order_by(PlanClass.code)
            ).scalars()
            fees.append(
                {
                    "year": p.year,
                    "plan": p.id,
                    "classes": [
                        {
                            k: v
                            for k, v in _class_json(c).items()
                            if k in ("code", "title", "fee_yuan")
                        }
                        for c in classes
                    ],
                }
            )
    out["fee_standards"] = fees
    out["inspections"] = [_inspection(i) for i in inspections]
    history = session.execute(
        select(BaseStatusEvent)
        .where(BaseStatusEvent.base_id == b.id)
        .order_by(BaseStatusEvent.log_index)
    ).scalars()
    out["status_history"] = [
        {
            "kind": h.kind,
            "from": h.from_status,
            "to": h.to_status,
            "at": _ts(h.at),
            "by": h.actor,
            "reason": h.reason,
            "deadline": _day(h.deadline),
            "fraud": h.fraud,
            "log_index": h.log_index,
        }
        for h in history
    ]
    return out


def plans_for_year(session: Session, base: int, year: int) -> list[dict[str, Any]]:
    """Every revision of a base's plan for ``year``, with its classes and the document whose
    canonical JSON (RFC 8785) hashes to the ``sha256`` in the ledger."""
    if session.get(BaseRecord, base) is None:
        raise NotFound("base.exists", f"no base {base_id(base)}")
    plans = (
        session.execute(
            select(Plan).where(Plan.base_id == base, Plan.year == year).order_by(Plan.revision)
        )
        .scalars()
        .all()
    )
    if not plans:
        raise NotFound("plan.exists", f"{base_id(base)} has no plan for {year}")
    out = []
    for p in plans:
        doc = plan_document(session, p)
        view = _plan_json(p)
        view["document"] = doc
        view["document_canonical"] = canonicalize(doc).decode("utf-8")
        out.append(view)
    return out


def policy_view(session: Session, code: str) -> dict[str, Any]:
    """The effective policy governing ``code`` today and every version known for ``code``."""
    if session.get(Jurisdiction, code) is None and code not in policy_registry(session):
        raise NotFound("jurisdiction.exists", f"no jurisdiction {code!r}")
    effective = effective_policy(session, code)
    registry = policy_registry(session)
    uploaded = {
        v.version: v
        for v in session.execute(select(PolicyVersion).where(PolicyVersion.code == code)).scalars()
    }
    versions = []
    if code in registry:
        for p in registry.versions(code):
            row = uploaded.get(p.version)
            versions.append(
                {
                    "version": p.version,
                    "effective_from": p.effective_from.isoformat(),
                    "source": "shipped" if row is None else "uploaded",
                    "sha256": None if row is None else row.sha256,
                    "uploaded_by": None if row is None else row.uploaded_by,
                    "log_index": None if row is None else row.log_index,
                }
            )
    return {"code": code, "effective": effective.model_dump(mode="json"), "versions": versions}


def policy_document(session: Session, code: str, version: int) -> bytes:
    """The exact bytes of one policy version (an upload's SHA-256 is in its ``policy`` entry)."""
    row = session.get(PolicyVersion, (code, version))
    if row is not None:
        return bytes(row.document)
    folder = resources.files("ledger.policies")
    for name in BUILTIN_POLICY_FILES:
        data = folder.joinpath(name).read_bytes()
        shipped = parse_policy(data)
        if shipped.code == code and shipped.version == version:
            return data
    raise NotFound("policy.exists", f"no version {version} of the policy of {code}")
