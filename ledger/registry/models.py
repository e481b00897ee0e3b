"""Registry tables: jurisdictions, policies, management units, bases, plans, inspections, keys.

All of these are *projections* of governance entries in the log (kinds ``jurisdiction``,
``policy``, ``base.*``, ``plan.*``, ``inspection``, ``principal.key``): every row that records an
act carries the ``log_index`` of the entry that made it, and is written in the same transaction
as that entry.  Two exceptions carry no index: the national jurisdiction and its first key, made
by the operator's bootstrap (the trust root), and API-key hashes, which are secrets' digests and
never enter the log.

Hours are stored as integer tenths of a 学时 and fees as integer 分 (fen): exact on both
databases, where SQLite has no exact decimal type.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ledger.storage.models import Base, BigInt

__all__ = [
    "ApiKey",
    "BarredInstitution",
    "BaseRecord",
    "BaseStatusEvent",
    "Inspection",
    "Jurisdiction",
    "ManagementUnit",
    "Plan",
    "PlanClass",
    "PolicyVersion",
    "PrincipalRecord",
]

TZ = DateTime(timezone=True)


class Jurisdiction(Base):
    """A recognising authority's jurisdiction: ``CN`` → ``CN-SC`` → ``CN-SC-PZH``."""

    __tablename__ = "jurisdictions"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    title: Mapped[str] = mapped_column(String(128))
    level: Mapped[str] = mapped_column(String(16))
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("jurisdictions.code"), index=True)
    created_at: Mapped[datetime] = mapped_column(TZ)
    log_index: Mapped[int | None] = mapped_column(BigInt)


class PolicyVersion(Base):
    """A policy version an authority uploaded: the exact bytes, used from then on."""

    __tablename__ = "policy_versions"

    code: Mapped[str] = mapped_column(ForeignKey("jurisdictions.code"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    effective_from: Mapped[date] = mapped_column(Date)
    document: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by: Mapped[str] = mapped_column(ForeignKey("principals.id"))
    uploaded_at: Mapped[datetime] = mapped_column(TZ)
    log_index: Mapped[int] = mapped_column(BigInt)


class ManagementUnit(Base):
    """管理单位: the HRSS office, ministry or enterprise HR department that manages bases."""

    __tablename__ = "management_units"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    jurisdiction_code: Mapped[str] = mapped_column(ForeignKey("jurisdictions.code"), index=True)
    created_at: Mapped[datetime] = mapped_column(TZ)
    log_index: Mapped[int] = mapped_column(BigInt)


class BaseRecord(Base):
    """A CE base (继续教育基地), from application on; ``status`` is its current state."""

    __tablename__ = "bases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18), index=True)
    title: Mapped[str] = mapped_column(String(200))
    construction_unit: Mapped[str] = mapped_column(String(200))
    jurisdiction_code: Mapped[str] = mapped_column(ForeignKey("jurisdictions.code"), index=True)
    management_unit_id: Mapped[int] = mapped_column(ForeignKey("management_units.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    contact_address: Mapped[str] = mapped_column(String(300))
    contact_phone: Mapped[str] = mapped_column(String(40))
    contact_email: Mapped[str] = mapped_column(String(200))
    rectification_deadline: Mapped[date | None] = mapped_column(Date)
    rectification_reason: Mapped[str | None] = mapped_column(Text)
    applied_at: Mapped[datetime] = mapped_column(TZ)
    status_since: Mapped[datetime] = mapped_column(TZ)

    __table_args__ = (
        CheckConstraint(
            "status IN ('applied', 'recognised', 'rectification', 'revoked', 'rejected')",
            name="status",
        ),
    )


class PrincipalRecord(Base):
    """Who can hold API keys: an authority, a management unit or a base (exactly one ref)."""

    __tablename__ = "principals"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    jurisdiction_code: Mapped[str] = mapped_column(ForeignKey("jurisdictions.code"))
    management_unit_id: Mapped[int | None] = mapped_column(ForeignKey("management_units.id"))
    base_id: Mapped[int | None] = mapped_column(ForeignKey("bases.id"))
    created_at: Mapped[datetime] = mapped_column(TZ)

    __table_args__ = (
        CheckConstraint(
            "(role = 'authority' AND management_unit_id IS NULL AND base_id IS NULL)"
            " OR (role = 'management_unit' AND management_unit_id IS NOT NULL AND base_id IS NULL)"
            " OR (role = 'base' AND base_id IS NOT NULL AND management_unit_id IS NULL)",
            name="one_ref",
        ),
    )


class ApiKey(Base):
    """An API key: only its SHA-256 is kept.  ``id`` is a public handle for revocation."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    principal_id: Mapped[str] = mapped_column(ForeignKey("principals.id"), index=True)
    label: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(TZ)
    created_by: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None] = mapped_column(TZ)
    log_index: Mapped[int | None] = mapped_column(BigInt)


class BaseStatusEvent(Base):
    """The status history of a base (the directory shows it): one row per ``base.*`` entry."""

    __tablename__ = "base_status_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    base_id: Mapped[int] = mapped_column(ForeignKey("bases.id"), index=True)
    log_index: Mapped[int] = mapped_column(BigInt, unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(TZ)
    actor: Mapped[str] = mapped_column(ForeignKey("principals.id"))
    reason: Mapped[str] = mapped_column(Text)
    deadline: Mapped[date | None] = mapped_column(Date)
    fraud: Mapped[bool] = mapped_column(Boolean)


class BarredInstitution(Base):
    """An institution that may never apply again (national Art. 29; Panzhihua Art. 20)."""

    __tablename__ = "barred_institutions"

    uscc: Mapped[str] = mapped_column(String(18), primary_key=True)
    base_id: Mapped[int] = mapped_column(ForeignKey("bases.id"))
    reason: Mapped[str] = mapped_column(Text)
    barred_at: Mapped[datetime] = mapped_column(TZ)
    log_index: Mapped[int] = mapped_column(BigInt)


class Plan(Base):
    """One submitted revision of a base's annual plan (年度计划) and its review and filing.

    ``status``: submitted → approved → filed, or submitted → returned (the base then submits a
    new revision).  Late submissions and filings are flagged, never refused.
    """

    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    base_id: Mapped[int] = mapped_column(ForeignKey("bases.id"))
    year: Mapped[int] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64))
    policy_code: Mapped[str] = mapped_column(String(32))
    policy_version: Mapped[int] = mapped_column(Integer)
    management_unit_due: Mapped[date | None] = mapped_column(Date)
    authority_due: Mapped[date] = mapped_column(Date)
    submitted_at: Mapped[datetime] = mapped_column(TZ)
    submitted_by: Mapped[str] = mapped_column(ForeignKey("principals.id"))
    submitted_log_index: Mapped[int] = mapped_column(BigInt)
    late_submission: Mapped[bool] = mapped_column(Boolean)
    decided_at: Mapped[datetime | None] = mapped_column(TZ)
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("principals.id"))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    decided_log_index: Mapped[int | None] = mapped_column(BigInt)
    filed_at: Mapped[datetime | None] = mapped_column(TZ)
    filed_by: Mapped[str | None] = mapped_column(ForeignKey("principals.id"))
    filed_log_index: Mapped[int | None] = mapped_column(BigInt)
    late_filing: Mapped[bool | None] = mapped_column(Boolean)

    __table_args__ = (
        UniqueConstraint("base_id", "year", "revision", name="uq_plans_base_year_revision"),
        # What a completion record's composite key points at: a plan *of that base*.
        UniqueConstraint("id", "base_id", name="uq_plans_id_base"),
        Index("ix_plans_base_id_year", "base_id", "year"),
        CheckConstraint("status IN ('submitted', 'approved', 'returned', 'filed')", name="status"),
    )


class PlanClass(Base):
    """One class (培训班/课程) of a plan.  Fee standards of approved plans are public."""

    __tablename__ = "plan_classes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    code: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(64))
    hours_tenths: Mapped[int] = mapped_column(Integer)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    capacity: Mapped[int] = mapped_column(Integer)
    fee_fen: Mapped[int] = mapped_column(BigInt)

    __table_args__ = (UniqueConstraint("plan_id", "code", name="uq_plan_classes_plan_code"),)


class Inspection(Base):
    """An inspection result (检查考核) for a base and year; published."""

    __tablename__ = "inspections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    base_id: Mapped[int] = mapped_column(ForeignKey("bases.id"), index=True)
    year: Mapped[int] = mapped_column(Integer)
    result: Mapped[str] = mapped_column(String(8))
    notes: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(TZ)
    actor: Mapped[str] = mapped_column(ForeignKey("principals.id"))
    log_index: Mapped[int] = mapped_column(BigInt)
