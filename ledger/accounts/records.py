"""A holder's own records, with every version, and how they stand against the policy.

A **chain** is a record and its corrections, oldest first; its status is its latest version's:
``current`` or ``revoked`` (earlier versions are ``superseded``).  The version fields are those
of `ledger.completions.services.record_view`, so a holder and their base read the same thing.

**Compliance** counts the latest version of every chain that is not revoked, per year (or per
cycle, when the policy counts per cycle) against the policy of the holder's jurisdiction — by
default the jurisdiction of the base of their most recent record, as a transcript does — in
force at the end of that year (`ledger.compliance.assess`).

A record id of another person is answered exactly like an unknown id (`NotFound`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.completions.models import CompletionRecord, Revocation
from ledger.completions.services import version_json
from ledger.compliance import ComplianceResult, CreditedHours, assess, assess_cycle
from ledger.policy import HOURS_QUANTUM, CycleRequirement
from ledger.registry.auth import base_id
from ledger.registry.errors import NotFound
from ledger.registry.models import BaseRecord, Jurisdiction, PlanClass
from ledger.registry.services import effective_policy

__all__ = [
    "Chain",
    "chains_of",
    "compliance",
    "compliance_json",
    "find_chain",
    "records_json",
]


def _hours(tenths: int) -> str:
    return f"{tenths // 10}.{tenths % 10}"


@dataclass(frozen=True)
class Chain:
    versions: tuple[CompletionRecord, ...]
    revocation: Revocation | None

    @property
    def latest(self) -> CompletionRecord:
        return self.versions[-1]

    @property
    def status(self) -> str:
        return "revoked" if self.revocation is not None else "current"

    def ids(self) -> set[str]:
        return {v.id for v in self.versions}


def chains_of(session: Session, person_id: int) -> list[Chain]:
    """Every chain of the person, in the order the originals entered the ledger."""
    rows = list(
        session.scalars(
            select(CompletionRecord)
            .where(CompletionRecord.person_id == person_id)
            .order_by(CompletionRecord.log_index)
        )
    )
    ids = [r.id for r in rows]
    revoked = {
        r.record_id: r
        for r in session.scalars(select(Revocation).where(Revocation.record_id.in_(ids)))
    }
    successor = {r.supersedes: r for r in rows if r.supersedes is not None}
    chains = []
    for r in rows:
        if r.supersedes is not None:
            continue
        versions = [r]
        while versions[-1].id in successor:
            versions.append(successor[versions[-1].id])
        chains.append(Chain(tuple(versions), revoked.get(versions[-1].id)))
    return chains


def find_chain(session: Session, person_id: int, record_id: str) -> Chain:
    """The holder's chain that contains ``record_id``; `NotFound` for anyone else's."""
    for chain in chains_of(session, person_id):
        if record_id in chain.ids():
            return chain
    raise NotFound("record.unknown", f"no completion record {record_id!r}")


@dataclass
class _Names:
    session: Session
    bases: dict[int, BaseRecord]
    titles: dict[tuple[int, str], str]

    @classmethod
    def of(cls, session: Session, records: Iterable[CompletionRecord]) -> _Names:
        records = list(records)
        base_ids = {r.base_id for r in records}
        bases = {
            b.id: b for b in session.scalars(select(BaseRecord).where(BaseRecord.id.in_(base_ids)))
        }
        plans = {r.plan_id for r in records}
        titles = {
            (c.plan_id, c.code): c.title
            for c in session.scalars(select(PlanClass).where(PlanClass.plan_id.in_(plans)))
        }
        return cls(session, bases, titles)

    def base(self, r: CompletionRecord) -> str:
        b = self.bases.get(r.base_id)
        return b.title if b is not None else base_id(r.base_id)

    def title(self, r: CompletionRecord) -> str:
        return self.titles.get((r.plan_id, r.class_code), r.class_code)


def records_json(session: Session, chains: Sequence[Chain]) -> list[dict[str, Any]]:
    """Each chain: its latest version's facts, its status and every version (history)."""
    names = _Names.of(session, (v for c in chains for v in c.versions))
    out = []
    for c in chains:
        latest = c.latest
        versions = [version_json(v, "superseded", None) for v in c.versions[:-1]] + [
            version_json(latest, c.status, c.revocation)
        ]
        out.append(
            {
                "record": latest.id,
                "original": c.versions[0].id,
                "status": c.status,
                "base": base_id(latest.base_id),
                "base_name": names.base(latest),
                "class_code": latest.class_code,
                "class_title": names.title(latest),
                "year": latest.year,
                "category": latest.category,
                "mode": latest.mode,
                "hours": _hours(latest.hours_tenths),
                "start": latest.start_date.isoformat(),
                "end": latest.end_date.isoformat(),
                "result": latest.result,
                "log_index": latest.log_index,
                "versions": versions,
            }
        )
    return out


# --------------------------------------------------------------------------------------------
# Compliance


def _credited(session: Session, chains: Sequence[Chain]) -> tuple[list[CreditedHours], str]:
    """Counted items (latest version of unrevoked chains) and the holder's jurisdiction."""
    live = [c.latest for c in chains if c.revocation is None]
    names = _Names.of(session, live)
    codes = {b.jurisdiction_code for b in names.bases.values()}
    levels = {
        j.code: j.level
        for j in session.scalars(select(Jurisdiction).where(Jurisdiction.code.in_(codes)))
    }
    items = []
    for r in live:
        base = names.bases.get(r.base_id)
        level = levels.get(base.jurisdiction_code) if base is not None else None
        items.append(
            CreditedHours(
                year=r.year,
                category=r.category,
                mode=r.mode,
                hours=Decimal(r.hours_tenths) / 10,
                base_level=level,  # type: ignore[arg-type]
            )
        )
    latest = max(live, key=lambda r: (r.start_date, r.log_index), default=None)
    home = "CN"
    if latest is not None and latest.base_id in names.bases:
        home = names.bases[latest.base_id].jurisdiction_code
    return items, home


def compliance(
    session: Session,
    chains: Sequence[Chain],
    years: Sequence[int] | None = None,
    *,
    jurisdiction: str | None = None,
) -> list[ComplianceResult]:
    """One result per year (or per cycle touching ``years``); default: the years with records."""
    items, home = _credited(session, chains)
    code = jurisdiction or home
    wanted = sorted(set(years if years is not None else (i.year for i in items)))
    results: dict[tuple[str, tuple[int, ...]], ComplianceResult] = {}
    for year in wanted:
        policy = effective_policy(session, code, date(year, 12, 31))
        requirement = policy.hours.requirement
        if isinstance(requirement, CycleRequirement) and requirement.cycle_start(year) is None:
            found = [assess_cycle(policy, items, wanted[0])]  # per-person cycle: from the first
        else:
            found = assess(policy, items, [year])
        for result in found:
            results.setdefault((result.policy_code, result.years), result)
    return sorted(results.values(), key=lambda r: (r.last_year, r.first_year))


def _fmt(value: Decimal) -> str:
    value = value.quantize(HOURS_QUANTUM)
    whole = value.to_integral_value()
    return str(whole) if value == whole else str(value)


def compliance_json(result: ComplianceResult) -> dict[str, Any]:
    return {
        "period": result.period,
        "years": list(result.years),
        "policy": {"code": result.policy_code, "version": result.policy_version},
        "required": _fmt(result.required),
        "claimed": _fmt(result.claimed),
        "total": _fmt(result.total),
        "shortfall": _fmt(result.shortfall),
        "met": result.met,
        "by_category": {k: _fmt(v) for k, v in result.by_category.items()},
        "category_checks": [
            {
                "category": c.category,
                "counted": _fmt(c.counted),
                "required": _fmt(c.required),
                "met": c.met,
                "shortfall": _fmt(c.shortfall),
            }
            for c in result.category_checks
        ],
        "caps_applied": [
            {
                "year": c.year,
                "category": c.category,
                "mode": c.mode,
                "cap": _fmt(c.cap),
                "not_counted": _fmt(c.not_counted),
            }
            for c in result.caps_applied
        ],
        "summary": {"zh": result.summary_zh, "en": result.summary_en},
    }
