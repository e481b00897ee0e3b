"""Registry writes: jurisdictions, policies, management units, bases, plans, inspections, keys.

Every route needs an API key (``api.auth``); who may do what is decided by the domain
(``ledger.registry.auth.RULES``) and refused there with a problem that names the rule.  Each
route is one write transaction in which the projection rows and the ledger entry commit
together; the response carries the entry's ``log_index`` for an inclusion proof.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, RawBody
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from api.auth import PRINCIPAL_DEPENDENCY
from api.context import Context
from ledger.canonical import parse_json
from ledger.completions.services import summary_rows
from ledger.registry import services as sv
from ledger.registry.auth import Principal
from ledger.registry.errors import RuleViolation
from ledger.registry.models import BaseStatusEvent, Plan

__all__ = ["RegistryController"]

Text = Annotated[str, Field(min_length=1, max_length=2000)]
Title = Annotated[str, Field(min_length=1, max_length=200)]
JurisdictionCode = Annotated[str, Field(pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,8}){0,2}$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class JurisdictionIn(_Body):
    code: JurisdictionCode
    title: Title | None = None


class UnitIn(_Body):
    jurisdiction: JurisdictionCode
    title: Title


class ContactIn(_Body):
    address: Annotated[str, Field(min_length=1, max_length=300)]
    phone: Annotated[str, Field(pattern=r"^[0-9+()\- ]{5,40}$")]
    email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=200)]

    def domain(self) -> sv.Contact:
        return sv.Contact(self.address, self.phone, self.email)


class ApplicationIn(_Body):
    uscc: Annotated[str, Field(description="统一社会信用代码 (18 characters)")]
    title: Title
    construction_unit: Title
    jurisdiction: JurisdictionCode
    management_unit: Annotated[int, Field(ge=1)]
    contact: ContactIn
    reason: Text

    @field_validator("uscc")
    @classmethod
    def _uscc(cls, value: str) -> str:
        try:
            return sv.check_uscc(value)
        except RuleViolation as exc:
            raise ValueError(str(exc)) from None


class ReasonIn(_Body):
    reason: Text


class SanctionIn(_Body):
    reason: Text
    fraud: bool = Field(default=False, description="the application was falsified (弄虚作假)")


class RectificationIn(_Body):
    reason: Text
    deadline: date | None = Field(
        default=None, description="default: today plus the policy's rectification_months"
    )


class ChangeIn(_Body):
    reason: Text
    title: Title | None = None
    contact: ContactIn | None = None

    @model_validator(mode="after")
    def _something(self) -> ChangeIn:
        if self.title is None and self.contact is None:
            raise ValueError("a change gives a new title, a new contact, or both")
        return self


class ClassIn(_Body):
    code: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,31}$")]
    title: Title
    category: Annotated[str, Field(min_length=1, max_length=64, description="公需 / 专业 / 选修")]
    mode: Annotated[str, Field(min_length=1, max_length=64, description="面授 / 网络 / 会议 / …")]
    hours: Annotated[Decimal, Field(gt=0, le=10000, decimal_places=1, allow_inf_nan=False)]
    start: date
    end: date
    capacity: Annotated[int, Field(ge=1, le=1_000_000)]
    fee_yuan: Annotated[Decimal, Field(ge=0, le=10_000_000, decimal_places=2, allow_inf_nan=False)]

    def domain(self) -> sv.ClassSpec:
        return sv.ClassSpec(
            self.code,
            self.title,
            self.category,
            self.mode,
            self.hours,
            self.start,
            self.end,
            self.capacity,
            self.fee_yuan,
        )


class PlanIn(_Body):
    year: Annotated[int, Field(ge=2000, le=2100)]
    classes: Annotated[list[ClassIn], Field(min_length=1, max_length=sv.MAX_CLASSES_PER_PLAN)]


class ApprovalIn(_Body):
    reason: Annotated[str, Field(max_length=2000)] = ""


class InspectionIn(_Body):
    year: Annotated[int, Field(ge=2000, le=2100)]
    result: Literal["优秀", "合格", "基本合格", "不合格"]
    notes: Annotated[str, Field(max_length=5000)] = ""


class KeyIn(_Body):
    principal: Annotated[
        str,
        Field(
            pattern=r"^(authority:[A-Z]{2}(-[A-Z0-9]{1,8}){0,2}|unit:[1-9][0-9]{0,9}|base:[1-9][0-9]{0,9})$",
            description="authority:CN-SC, unit:3 or base:7",
        ),
    ]
    label: Annotated[str, Field(min_length=1, max_length=100)]


def _event(ev: BaseStatusEvent) -> dict[str, Any]:
    return {
        "base": ev.base_id,
        "kind": ev.kind,
        "from": ev.from_status,
        "status": ev.to_status,
        "deadline": None if ev.deadline is None else ev.deadline.isoformat(),
        "log_index": ev.log_index,
    }


def _plan(p: Plan, log_index: int | None) -> dict[str, Any]:
    return {
        "plan": p.id,
        "base": p.base_id,
        "year": p.year,
        "revision": p.revision,
        "status": p.status,
        "sha256": p.sha256,
        "late_submission": p.late_submission,
        "late_filing": p.late_filing,
        "management_unit_due": None
        if p.management_unit_due is None
        else p.management_unit_due.isoformat(),
        "authority_due": p.authority_due.isoformat(),
        "log_index": log_index,
    }


class RegistryController(Controller):
    path = "/api/v1/registry"
    tags = ("registry",)
    # Every route here needs a key: the dependency is declared once, for the whole controller.
    dependencies = {"actor": PRINCIPAL_DEPENDENCY}  # noqa: RUF012 - Litestar reads it off the class

    @get("/whoami", sync_to_thread=True)
    def whoami(self, actor: NamedDependency[Principal]) -> dict[str, Any]:
        """The principal the presented key belongs to."""
        return {
            "principal": actor.id,
            "role": actor.role,
            "jurisdiction": actor.jurisdiction,
            "unit": actor.unit,
            "base": actor.base,
        }

    @post("/jurisdictions", sync_to_thread=True)
    def create_jurisdiction(
        self,
        ctx: NamedDependency[Context],
        actor: NamedDependency[Principal],
        data: JSONBody[JurisdictionIn],
    ) -> dict[str, Any]:
        """Create a province or city jurisdiction (authority of an ancestor)."""
        with ctx.db.writer() as s:
            j = sv.create_jurisdiction(s, ctx.log, actor, data.code, data.title)
            out = {
                "code": j.code,
                "title": j.title,
                "level": j.level,
                "parent": j.parent_code,
                "log_index": j.log_index,
            }
        return out

    @post("/policies", sync_to_thread=True)
    def upload_policy(
        self, ctx: NamedDependency[Context], actor: NamedDependency[Principal], body: RawBody
    ) -> dict[str, Any]:
        """Publish a new version of a jurisdiction's policy: the policy JSON document is the
        body, stored byte for byte (its SHA-256 goes into the ``policy`` entry)."""
        # Duplicate keys are refused: parsers disagree on which one wins.
        parse_json(body)
        with ctx.db.writer() as s:
            v = sv.upload_policy(s, ctx.log, actor, bytes(body))
            out = {
                "code": v.code,
                "version": v.version,
                "effective_from": v.effective_from.isoformat(),
                "sha256": v.sha256,
                "log_index": v.log_index,
            }
        return out

    @post("/units", sync_to_thread=True)
    def register_unit(
        self,
        ctx: NamedDependency[Context],
        actor: NamedDependency[Principal],
        data: JSONBody[UnitIn],
    ) -> dict[str, Any]:
        """Register a management unit under a jurisdiction (authority over it)."""
        with ctx.db.writer() as s:
            u = sv.register_unit(s, ctx.log, actor, data.jurisdiction, data.title)
            out = {
                "id": u.id,
                "principal": f"unit:{u.id}",
                "title": u.title,
                "jurisdiction": u.jurisdiction_code,
                "log_index": u.log_index,
            }
        return out

    @post("/bases", sync_to_thread=True)
    def apply(
        self,
        ctx: NamedDependency[Context],
        actor: NamedDependency[Principal],
        data: JSONBody[ApplicationIn],
    ) -> dict[str, Any]:
        """File an application for recognition (the institution's management unit, or an
        authority over the recognising jurisdiction)."""
        application = sv.BaseApplication(
            uscc=data.uscc,
            title=data.title,
            construction_unit=data.construction_unit,
            jurisdiction=data.jurisdiction,
            management_unit=data.management_unit,
            contact=data.contact.domain(),
            reason=data.reason,
        )
        with ctx.db.writer() as s:
            return _event(sv.apply_base(s, ctx.log, actor, application))

    @post("/bases/{base_id:int}/recognise", sync_to_thread=True)
    def recognise(
        self,
        ctx: NamedDependency[Context],
        actor: NamedDependency[Principal],
        base_id: FromPath[int],
        data: JSONBody[ReasonIn],
    ) -> dict[str, Any]:
        """认定: recognise and publish an applied base (authority over it)."""
        with ctx.db.writer() as s:
            return _event(sv.recognise(s, ctx.log, actor, base_id, data.reason))

    @post("/bases/{base_id:int}/reject", sync_to_thread=True)
    def reject(
        self,
        ctx: NamedDependency[Context],
        actor: NamedDependency[Principal],
        base_id: FromPath[int],
        data: JSONBody[SanctionIn],
    ) -> dict[str, Any]:
        """Reject an application; ``fraud`` bars the institution (authority over it)."""
        with ctx.db.writer() as s:
            return _event(sv.reject(s, ctx.log, actor, base_id, data.reason, fraud=data.fraud))

    @post("/bases/{base_id:int}/rectification", sync_to_thread=True)
    def rectification(
        self,
        ctx: NamedDependency[Context],
        actor: NamedDependency[Principal],
        base_id: FromPath[int],
        data: JSONBody[RectificationIn],
    ) -> dict[str, Any]:
        """责令限期整改: order rectification by a deadline (authority over the base)."""
        with ctx.db.writer() as s:
            return _event(
                sv.order_rectification(
                    s, ctx.log, actor, base_id, data.reason, deadline=data.deadline
                )
            )

    @post("/bases/{base_id:int}/reinstate", sync_to_thread=True)
    def reinstate(
        self,
        ctx: NamedDependency[Context],
        actor: NamedDependency[Principal],
        base_id: FromPath[int],
        data: JSONBody[ReasonIn],
    ) -> dict[str, Any]:
        """Accept a rectification: the base is recognised again (authority over it)."""
        with ctx.db.writer() as s:
            return _event(sv.reinstate(s, ctx.log, actor, base_id, data.reason))

    @post("/bases/{base_id:int}/revoke", sync_to_thread=True)
    def revoke(
        self,
        ctx: NamedDependency[Context],
        actor: NamedDependency[Principal],
        base_id: FromPath[int],
        data: JSONBody[SanctionIn],
    ) -> dict[str, Any]:
        """取消资格: revoke recognition and bar the institution (authority over the base)."""
        with ctx.db.writer() as s:
            return _event(sv.revoke(s, ctx.log, actor, base_id, data.reason, fraud=data.fraud))

    @post("/bases/{base_id:int}/changes", sync_to_thread=True)
    def change(
        self,
        ctx: NamedDependency[Context],
        actor: NamedDependency[Principal],
        base_id: FromPath[int],
        data: JSONBody[ChangeIn],
    ) -> dict[str, Any]:
        """File and publish a name or contact change (the base, its unit, or an authority)."""
        contact = None if data.contact is None else data.contact.domain()
        with ctx.db.writer() as s:
            return _event(
                sv.change_base(
                    s, ctx.log, actor, base_id, data.reason, title=data.title, contact=contact
                )
            )

    @post("/bases/{base_id:int}/plans", sync_to_thread=True)
    def submit_plan(
        self,
        ctx: NamedDependency[Context],
        actor: NamedDependency[Principal],
        base_id: FromPath[int],
        data: JSONBody[PlanIn],
    ) -> dict[str, Any]:
        """Submit the annual plan to the management unit (the base itself).  Where the policy
        asks for it, the previous year's execution summary is computed from the base's records
        and filed with the plan (its key figures are in the ``plan.submitted`` entry)."""
        with ctx.db.writer() as s:
            p = sv.submit_plan(
                s,
                ctx.log,
                actor,
                base_id,
                data.year,
                [c.domain() for c in data.classes],
                completions=summary_rows,
            )
            return _plan(p, p.submitted_log_index)

    @post("/plans/{plan_id:int}/approve", sync_to_thread=True)
    def approve_plan(
        self,
        ctx: NamedDependency[Context],
        actor: NamedDependency[Principal],
        plan_id: FromPath[int],
        data: JSONBody[ApprovalIn],
    ) -> dict[str, Any]:
        """Approve a submitted plan (the base's own management unit only)."""
        with ctx.db.writer() as s:
            p = sv.approve_plan(s, ctx.log, actor, plan_id, data.reason)
            return _plan(p, p.decided_log_index)

    @post("/plans/{plan_id:int}/return", sync_to_thread=True)
    def return_plan(
        self,
        ctx: NamedDependency[Context],
        actor: NamedDependency[Principal],
        plan_id: FromPath[int],
        data: JSONBody[ReasonIn],
    ) -> dict[str, Any]:
        """Return a submitted plan with the reason (the base's own management unit only)."""
        with ctx.db.writer() as s:
            p = sv.return_plan(s, ctx.log, actor, plan_id, data.reason)
            return _plan(p, p.decided_log_index)

    @post("/plans/{plan_id:int}/file", sync_to_thread=True)
    def file_plan(
        self,
        ctx: NamedDependency[Context],
        actor: NamedDependency[Principal],
        plan_id: FromPath[int],
    ) -> dict[str, Any]:
        """File an approved plan with the authority (the base or its management unit)."""
        with ctx.db.writer() as s:
            p = sv.file_plan(s, ctx.log, actor, plan_id)
            return _plan(p, p.filed_log_index)

    @post("/bases/{base_id:int}/inspections", sync_to_thread=True)
    def inspection(
        self,
        ctx: NamedDependency[Context],
        actor: NamedDependency[Principal],
        base_id: FromPath[int],
        data: JSONBody[InspectionIn],
    ) -> dict[str, Any]:
        """Record and publish an inspection result (the base's unit or an authority over it)."""
        with ctx.db.writer() as s:
            i = sv.record_inspection(s, ctx.log, actor, base_id, data.year, data.result, data.notes)
            return {
                "id": i.id,
                "base": i.base_id,
                "year": i.year,
                "result": i.result,
                "log_index": i.log_index,
            }

    @post("/keys", sync_to_thread=True)
    def create_key(
        self,
        ctx: NamedDependency[Context],
        actor: NamedDependency[Principal],
        data: JSONBody[KeyIn],
    ) -> dict[str, Any]:
        """Issue an API key for a subordinate principal (authorities).  The key is in this
        response only: it is stored as a SHA-256 hash and cannot be shown again."""
        with ctx.db.writer() as s:
            k = sv.create_key(s, ctx.log, actor, data.principal, data.label)
        return {
            "key_id": k.key_id,
            "key": k.key,
            "principal": k.principal,
            "log_index": k.log_index,
        }

    @post("/keys/{key_id:str}/revoke", sync_to_thread=True)
    def revoke_key(
        self,
        ctx: NamedDependency[Context],
        actor: NamedDependency[Principal],
        key_id: FromPath[str],
    ) -> dict[str, Any]:
        """Revoke an API key of a subordinate principal (authorities)."""
        with ctx.db.writer() as s:
            index = sv.revoke_key(s, ctx.log, actor, key_id)
        return {"key_id": key_id, "revoked": True, "log_index": index}
