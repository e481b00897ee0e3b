"""Registry and governance services: every act is one transaction, one ledger entry.

Each write function takes the caller's write session, the `Log`, the acting `Principal` and its
arguments, and, in this order:

1. takes the log's append lock *first* — so that two concurrent acts on the same base (two
   recognitions, two plan approvals) are serialised and the second sees the first's result
   instead of both passing the same state check;
2. loads what it acts on (`NotFound`);
3. checks the actor's permission (`PermissionDenied`) — before any state check, so that a
   principal without the right learns nothing about the state;
4. checks the state (`StateConflict`) and the rules of the regulations and of the jurisdiction's
   policy (`RuleViolation`, `InstitutionBarred`);
5. writes the projection rows and appends the entry, so both commit together or neither does.

Ledger entries carry no personal data: institutions are named (they are public bodies), a
principal is referenced by its id (``unit:3``), and a base's contact block, which could name a
member of staff, enters the log only as a SHA-256 digest of its canonical JSON.  Reasons and
inspection notes are entered verbatim: the regulations require the *why* to be on record, and
they must not name people (the entry tripwire refuses anything shaped like an ID number).

Base lifecycle (``TRANSITIONS``)::

    applied ──recognised──▶ recognised ──rectification──▶ rectification ──reinstated──▶ recognised
       │                        │                              │
       └──rejected──▶ rejected  └──────────revoked─────────────┴──▶ revoked

Revocation, and a rejection that finds the application was falsified (``fraud``), bar the
institution (by 统一社会信用代码) from ever applying again (national Art. 29; Panzhihua Art. 20).
A plain rejection does not: the regulations bar only cheating and revocation.
"""

from __future__ import annotations

import calendar
import hashlib
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from functools import cache
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum.cn import uscc as _uscc
from stdnum.exceptions import ValidationError as _StdnumError

from ledger.canonical import canonicalize
from ledger.entries import encode_entry
from ledger.policy import EffectivePolicy, PolicyRegistry, parse_policy
from ledger.registry.auth import (
    Principal,
    Scope,
    authority_id,
    base_id,
    generate_key,
    hash_key,
    in_subtree,
    require,
    unit_id,
)
from ledger.registry.errors import (
    InstitutionBarred,
    NotFound,
    PermissionDenied,
    RuleViolation,
    StateConflict,
)
from ledger.registry.models import (
    ApiKey,
    BarredInstitution,
    BaseRecord,
    BaseStatusEvent,
    Inspection,
    Jurisdiction,
    ManagementUnit,
    Plan,
    PlanClass,
    PolicyVersion,
    PrincipalRecord,
)
from ledger.registry.summary import CompletionRow, ExecutionSummary, PlannedClass, summarise
from ledger.storage.log import Log

__all__ = [
    "ACTIVE_STATUSES",
    "APPROVED_PLAN_STATUSES",
    "CHINA_TZ",
    "INSPECTION_RESULTS",
    "MAX_CLASSES_PER_PLAN",
    "OPERATING_STATUSES",
    "TRANSITIONS",
    "ApprovedClass",
    "BaseApplication",
    "ClassSpec",
    "Contact",
    "IssuedKey",
    "add_months",
    "apply_base",
    "approve_plan",
    "approved_class",
    "approved_plan",
    "aware",
    "bootstrap_authority_key",
    "change_base",
    "check_uscc",
    "contact_digest",
    "create_jurisdiction",
    "create_key",
    "effective_policy",
    "execution_summary",
    "file_plan",
    "local_date",
    "order_rectification",
    "plan_document",
    "policy_registry",
    "principal_for_key",
    "recognise",
    "record_inspection",
    "register_unit",
    "reinstate",
    "reject",
    "return_plan",
    "revoke",
    "revoke_key",
    "submit_plan",
    "upload_policy",
]

#: China has one time zone and no daylight saving: deadlines are Beijing calendar days.
CHINA_TZ: Final = timezone(timedelta(hours=8), "Asia/Shanghai")

#: States in which a base exists and may act (file changes; plans once recognised).
ACTIVE_STATUSES: Final = frozenset({"applied", "recognised", "rectification"})
OPERATING_STATUSES: Final = frozenset({"recognised", "rectification"})

#: Entry kind → (states it may leave from, state it leads to).
TRANSITIONS: Final[dict[str, tuple[frozenset[str], str]]] = {
    "base.recognised": (frozenset({"applied"}), "recognised"),
    "base.rejected": (frozenset({"applied"}), "rejected"),
    "base.rectification": (frozenset({"recognised"}), "rectification"),
    "base.reinstated": (frozenset({"rectification"}), "recognised"),
    "base.revoked": (frozenset({"recognised", "rectification"}), "revoked"),
}

#: 检查考核 results, best first.
INSPECTION_RESULTS: Final = ("优秀", "合格", "基本合格", "不合格")

APPROVED_PLAN_STATUSES: Final = frozenset({"approved", "filed"})
MAX_CLASSES_PER_PLAN: Final = 1000
_JURISDICTION_CODE: Final = "^[A-Z]{2}(-[A-Z0-9]{1,8}){0,2}$"
_LEVELS: Final = ("national", "province", "city")
OPERATOR: Final = "operator"
# A row whose id goes into its own entry is flushed before the entry exists; its log index is
# filled in right after the append, in the same transaction, so no one ever reads this value.
_PENDING: Final = -1


# --------------------------------------------------------------------------------------------
# Small helpers


def _now(now: datetime | None) -> datetime:
    return datetime.now(UTC) if now is None else now.astimezone(UTC)


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def aware(at: datetime) -> datetime:
    """A stored instant as an aware UTC datetime (SQLite returns them naive, in UTC)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def local_date(at: datetime) -> date:
    """The Beijing calendar day of an instant (what a deadline is compared with)."""
    return aware(at).astimezone(CHINA_TZ).date()


def _append(session: Session, log: Log, kind: str, payload: dict[str, Any]) -> int:
    return log.append(session, [(kind, encode_entry(kind, payload))]).first_index


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def add_months(day: date, months: int) -> date:
    """``day`` plus whole calendar months, clamped to the month's end (31 Jan + 1 → 28/29 Feb)."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def check_uscc(value: str) -> str:
    """The compact form of a valid 统一社会信用代码 (GB 32100-2015); `RuleViolation` if invalid."""
    try:
        return str(_uscc.validate(value))
    except _StdnumError as exc:
        raise RuleViolation(
            "base.uscc",
            f"统一社会信用代码 {value!r} is not valid ({exc}): expected 18 characters "
            "whose last is the GB 32100-2015 check character",
        ) from None


def _parent_code(code: str) -> str | None:
    return code.rsplit("-", 1)[0] if "-" in code else None


def _level_of(code: str) -> str:
    return _LEVELS[code.count("-")]


# --------------------------------------------------------------------------------------------
# Policies


@cache
def _builtin_registry() -> PolicyRegistry:
    # The shipped files never change while the process runs; parsing them once is enough.
    return PolicyRegistry.load_builtin()


def policy_registry(session: Session) -> PolicyRegistry:
    """The shipped policies plus every version an authority uploaded, in upload order."""
    registry = _builtin_registry()
    rows = session.execute(
        select(PolicyVersion.document).order_by(PolicyVersion.log_index)
    ).scalars()
    for document in rows:
        registry = registry.from_json(bytes(document))
    return registry


def effective_policy(
    session: Session, jurisdiction: str, at: date | None = None
) -> EffectivePolicy:
    """The policy that governs ``jurisdiction`` on ``at`` (default: today in Beijing).

    A jurisdiction without a policy of its own is governed by its nearest ancestor's.
    """
    registry = policy_registry(session)
    code: str | None = jurisdiction
    while code is not None and code not in registry:
        code = _parent_code(code)
    if code is None:
        raise RuleViolation(
            "policy.missing",
            f"no policy governs {jurisdiction}: neither it nor any ancestor has one "
            f"(loaded: {', '.join(registry.codes())})",
        )
    return registry.effective(code, at or local_date(_now(None)))


# --------------------------------------------------------------------------------------------
# Loading


def _jurisdiction(session: Session, code: str) -> Jurisdiction:
    row = session.get(Jurisdiction, code)
    if row is None:
        raise NotFound("jurisdiction.exists", f"no jurisdiction {code!r}")
    return row


def _unit(session: Session, unit: int) -> ManagementUnit:
    row = session.get(ManagementUnit, unit)
    if row is None:
        raise NotFound("unit.exists", f"no management unit {unit_id(unit)}")
    return row


def _base(session: Session, base: int) -> BaseRecord:
    row = session.get(BaseRecord, base)
    if row is None:
        raise NotFound("base.exists", f"no base {base_id(base)}")
    return row


def base_record(session: Session, base: int) -> BaseRecord:
    """The base with id ``base``; `NotFound` otherwise."""
    return _base(session, base)


def _plan(session: Session, plan: int) -> Plan:
    row = session.get(Plan, plan)
    if row is None:
        raise NotFound("plan.exists", f"no plan {plan}")
    return row


def _scope(base: BaseRecord) -> Scope:
    return Scope(base.jurisdiction_code, base.management_unit_id, base.id)


def _add_principal(
    session: Session,
    pid: str,
    role: str,
    jurisdiction: str,
    at: datetime,
    *,
    unit: int | None = None,
    base: int | None = None,
) -> None:
    session.add(
        PrincipalRecord(
            id=pid,
            role=role,
            jurisdiction_code=jurisdiction,
            management_unit_id=unit,
            base_id=base,
            created_at=at,
        )
    )


# --------------------------------------------------------------------------------------------
# Principals and API keys


@dataclass(frozen=True)
class IssuedKey:
    """A new API key.  ``key`` is shown once to its holder and never stored."""

    key_id: str
    key: str
    principal: str
    log_index: int | None


def _issue(
    session: Session, principal: str, label: str, by: str, at: datetime
) -> tuple[str, str, ApiKey]:
    key = generate_key()
    row = ApiKey(
        id=secrets.token_hex(8),
        principal_id=principal,
        label=label,
        sha256=hash_key(key),
        created_at=at,
        created_by=by,
    )
    session.add(row)
    return row.id, key, row


def bootstrap_authority_key(
    session: Session,
    jurisdiction_code: str,
    label: str,
    *,
    log: Log | None = None,
    now: datetime | None = None,
) -> str:
    """Create an authority key for ``jurisdiction_code`` on the operator's say-so (the CLI).

    This is the trust root: it needs no other key.  The national jurisdiction is created on
    first use, named by its shipped policy; any other jurisdiction must already exist (an
    authority above it creates it).  With ``log`` the acts are appended to the ledger (kinds
    ``jurisdiction`` and ``principal.key``, by ``operator``) — pass it whenever there is one.
    """
    at = _now(now)
    if log is not None:
        log.lock(session)
    row = session.get(Jurisdiction, jurisdiction_code)
    if row is None:
        if _parent_code(jurisdiction_code) is not None:
            raise RuleViolation(
                "bootstrap.national-only",
                f"the operator bootstraps only the national jurisdiction; {jurisdiction_code} "
                "is created by an authority above it",
            )
        registry = _builtin_registry()
        if jurisdiction_code not in registry:
            raise RuleViolation(
                "bootstrap.policy",
                f"no shipped policy for {jurisdiction_code}; known: {', '.join(registry.codes())}",
            )
        title = registry.get(jurisdiction_code).name
        row = Jurisdiction(
            code=jurisdiction_code, title=title, level="national", parent_code=None, created_at=at
        )
        session.add(row)
        _add_principal(session, authority_id(jurisdiction_code), "authority", jurisdiction_code, at)
        session.flush()
        if log is not None:
            row.log_index = _append(
                session,
                log,
                "jurisdiction",
                {
                    "event": "jurisdiction.created",
                    "jurisdiction": jurisdiction_code,
                    "jurisdiction_name": title,
                    "level": "national",
                    "parent": None,
                    "by": OPERATOR,
                    "at": _stamp(at),
                },
            )
    pid = authority_id(jurisdiction_code)
    if session.get(PrincipalRecord, pid) is None:
        _add_principal(session, pid, "authority", jurisdiction_code, at)
    key_id, key, key_row = _issue(session, pid, label, OPERATOR, at)
    session.flush()
    if log is not None:
        key_row.log_index = _append(
            session,
            log,
            "principal.key",
            {
                "event": "key.created",
                "key": key_id,
                "principal": pid,
                "by": OPERATOR,
                "at": _stamp(at),
            },
        )
    return key


def principal_for_key(session: Session, key: str) -> Principal | None:
    """The principal an unrevoked key belongs to, or None."""
    row = session.execute(
        select(PrincipalRecord)
        .join(ApiKey, ApiKey.principal_id == PrincipalRecord.id)
        .where(ApiKey.sha256 == hash_key(key), ApiKey.revoked_at.is_(None))
    ).scalar_one_or_none()
    if row is None:
        return None
    return _principal(row)


def _principal(row: PrincipalRecord) -> Principal:
    if row.role == "authority":
        return Principal(row.id, "authority", row.jurisdiction_code)
    if row.role == "management_unit":
        return Principal(
            row.id, "management_unit", row.jurisdiction_code, unit=row.management_unit_id
        )
    return Principal(row.id, "base", row.jurisdiction_code, base=row.base_id)


def _check_key_target(actor: Principal, rule: str, target: PrincipalRecord) -> None:
    require(actor, rule, Scope(target.jurisdiction_code))
    if target.role == "authority" and target.jurisdiction_code == actor.jurisdiction:
        raise PermissionDenied(
            rule,
            f"an authority manages keys only for principals subordinate to it; {target.id} is "
            "its own jurisdiction's authority (an authority above it, or the operator's "
            "bootstrap, issues those)",
        )


def create_key(
    session: Session,
    log: Log,
    actor: Principal,
    principal: str,
    label: str,
    *,
    now: datetime | None = None,
) -> IssuedKey:
    """Issue an API key for a subordinate principal (entry ``principal.key``)."""
    at = _now(now)
    log.lock(session)
    target = session.get(PrincipalRecord, principal)
    if target is None:
        raise NotFound("principal.exists", f"no principal {principal!r}")
    _check_key_target(actor, "key.create", target)
    key_id, key, row = _issue(session, target.id, label, actor.id, at)
    session.flush()
    row.log_index = _append(
        session,
        log,
        "principal.key",
        {
            "event": "key.created",
            "key": key_id,
            "principal": target.id,
            "by": actor.id,
            "at": _stamp(at),
        },
    )
    return IssuedKey(key_id, key, target.id, row.log_index)


def revoke_key(
    session: Session, log: Log, actor: Principal, key_id: str, *, now: datetime | None = None
) -> int:
    """Revoke a key of a subordinate principal; returns the entry's log index."""
    at = _now(now)
    log.lock(session)
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound("key.exists", f"no API key {key_id!r}")
    target = session.get(PrincipalRecord, row.principal_id)
    assert target is not None  # a foreign key guarantees it
    _check_key_target(actor, "key.revoke", target)
    if row.revoked_at is not None:
        raise StateConflict("key.revoke", f"API key {key_id} is already revoked")
    row.revoked_at = at
    return _append(
        session,
        log,
        "principal.key",
        {
            "event": "key.revoked",
            "key": key_id,
            "principal": target.id,
            "by": actor.id,
            "at": _stamp(at),
        },
    )


# --------------------------------------------------------------------------------------------
# Jurisdictions, policies, management units


def create_jurisdiction(
    session: Session,
    log: Log,
    actor: Principal,
    code: str,
    title: str | None = None,
    *,
    now: datetime | None = None,
) -> Jurisdiction:
    """Create a province or city jurisdiction (and its authority principal) below an existing one.

    The title defaults to the name in the jurisdiction's shipped policy.
    """
    at = _now(now)
    log.lock(session)
    if not re.fullmatch(_JURISDICTION_CODE, code):
        raise RuleViolation(
            "jurisdiction.code",
            f"expected a code CN / CN-XX / CN-XX-YYY (upper case letters and digits); found {code!r}",
        )
    parent = _parent_code(code)
    if parent is None:
        raise RuleViolation(
            "jurisdiction.national",
            "the national jurisdiction is created by the operator's bootstrap, not through the API",
        )
    _jurisdiction(session, parent)
    require(actor, "jurisdiction.create", Scope(parent))
    if session.get(Jurisdiction, code) is not None:
        raise StateConflict("jurisdiction.unique", f"jurisdiction {code} already exists")
    if title is None:
        registry = policy_registry(session)
        if code not in registry:
            raise RuleViolation(
                "jurisdiction.title",
                f"no policy names {code}: give its title (e.g. 攀枝花市)",
            )
        title = registry.get(code).name
    level = _level_of(code)
    row = Jurisdiction(code=code, title=title, level=level, parent_code=parent, created_at=at)
    session.add(row)
    _add_principal(session, authority_id(code), "authority", code, at)
    session.flush()
    row.log_index = _append(
        session,
        log,
        "jurisdiction",
        {
            "event": "jurisdiction.created",
            "jurisdiction": code,
            "jurisdiction_name": title,
            "level": level,
            "parent": parent,
            "by": actor.id,
            "at": _stamp(at),
        },
    )
    return row


def upload_policy(
    session: Session, log: Log, actor: Principal, document: bytes, *, now: datetime | None = None
) -> PolicyVersion:
    """Store a new version of a jurisdiction's policy (entry ``policy``); used from then on.

    The document is validated (`PolicyError` names the field) and must fit the registry: a
    higher version, not earlier in effect, and nothing that inherits from it may break.
    """
    at = _now(now)
    log.lock(session)
    policy = parse_policy(document)
    require(actor, "policy.upload", Scope(policy.code))
    _jurisdiction(session, policy.code)
    policy_registry(session).add(policy)
    digest = _sha256_hex(document)
    row = PolicyVersion(
        code=policy.code,
        version=policy.version,
        effective_from=policy.effective_from,
        document=document,
        sha256=digest,
        uploaded_by=actor.id,
        uploaded_at=at,
        log_index=_PENDING,
    )
    session.add(row)
    session.flush()
    row.log_index = _append(
        session,
        log,
        "policy",
        {
            "jurisdiction": policy.code,
            "version": policy.version,
            "effective_from": policy.effective_from.isoformat(),
            "sha256": digest,
            "by": actor.id,
            "at": _stamp(at),
        },
    )
    return row


def register_unit(
    session: Session,
    log: Log,
    actor: Principal,
    jurisdiction: str,
    title: str,
    *,
    now: datetime | None = None,
) -> ManagementUnit:
    """Register a management unit (管理单位) under a jurisdiction, with its principal.

    Entered as kind ``jurisdiction`` (event ``management_unit.registered``): a unit is part of
    the jurisdiction's governance structure.
    """
    at = _now(now)
    log.lock(session)
    _jurisdiction(session, jurisdiction)
    require(actor, "unit.register", Scope(jurisdiction))
    row = ManagementUnit(
        title=title, jurisdiction_code=jurisdiction, created_at=at, log_index=_PENDING
    )
    session.add(row)
    session.flush()
    _add_principal(session, unit_id(row.id), "management_unit", jurisdiction, at, unit=row.id)
    session.flush()
    row.log_index = _append(
        session,
        log,
        "jurisdiction",
        {
            "event": "management_unit.registered",
            "jurisdiction": jurisdiction,
            "unit": unit_id(row.id),
            "unit_name": title,
            "by": actor.id,
            "at": _stamp(at),
        },
    )
    return row


# --------------------------------------------------------------------------------------------
# Bases


@dataclass(frozen=True)
class Contact:
    """A base's public contact block (office address, phone, e-mail)."""

    address: str
    phone: str
    email: str


def contact_digest(contact: Contact) -> str:
    """SHA-256 (hex) of the contact block's canonical JSON — what the ledger records."""
    doc = {"address": contact.address, "phone": contact.phone, "email": contact.email}
    return _sha256_hex(canonicalize(doc))


@dataclass(frozen=True)
class BaseApplication:
    uscc: str
    title: str
    construction_unit: str
    jurisdiction: str
    management_unit: int
    contact: Contact
    reason: str


def _history(
    session: Session,
    base: BaseRecord,
    kind: str,
    from_status: str | None,
    actor: Principal,
    reason: str,
    at: datetime,
    log_index: int,
    *,
    deadline: date | None = None,
    fraud: bool = False,
) -> BaseStatusEvent:
    event = BaseStatusEvent(
        base_id=base.id,
        log_index=log_index,
        kind=kind,
        from_status=from_status,
        to_status=base.status,
        at=at,
        actor=actor.id,
        reason=reason,
        deadline=deadline,
        fraud=fraud,
    )
    session.add(event)
    session.flush()
    return event


def _check_not_barred(session: Session, uscc: str) -> None:
    bar = session.get(BarredInstitution, uscc)
    if bar is not None:
        barred_on = local_date(aware(bar.barred_at))
        raise InstitutionBarred(
            "base.apply.barred",
            f"institution {uscc} may never apply again (national Art. 29; Panzhihua Art. 20): "
            f"barred on {barred_on} when {base_id(bar.base_id)} was revoked or found to have "
            f"falsified its application (ledger entry {bar.log_index})",
        )


def apply_base(
    session: Session,
    log: Log,
    actor: Principal,
    application: BaseApplication,
    *,
    now: datetime | None = None,
) -> BaseStatusEvent:
    """File an application (entry ``base.applied``); creates the base and its principal.

    Rules: the 统一社会信用代码 is valid; the management unit is registered within the
    recognising jurisdiction's subtree; the institution is not barred; it has no other open
    application or base at the same jurisdiction.
    """
    at = _now(now)
    log.lock(session)
    uscc = check_uscc(application.uscc)
    jurisdiction = _jurisdiction(session, application.jurisdiction)
    unit = _unit(session, application.management_unit)
    require(actor, "base.apply", Scope(jurisdiction.code, unit.id))
    if not in_subtree(unit.jurisdiction_code, jurisdiction.code):
        raise RuleViolation(
            "base.apply.unit",
            f"management unit {unit_id(unit.id)} is registered under {unit.jurisdiction_code}, "
            f"outside {jurisdiction.code}: a base is recommended by a unit within the "
            "recognising jurisdiction",
        )
    _check_not_barred(session, uscc)
    open_base = session.execute(
        select(BaseRecord.id).where(
            BaseRecord.uscc == uscc,
            BaseRecord.jurisdiction_code == jurisdiction.code,
            BaseRecord.status.in_(ACTIVE_STATUSES),
        )
    ).scalar_one_or_none()
    if open_base is not None:
        raise StateConflict(
            "base.apply.duplicate",
            f"institution {uscc} already has {base_id(open_base)} at {jurisdiction.code}",
        )
    c = application.contact
    base = BaseRecord(
        uscc=uscc,
        title=application.title,
        construction_unit=application.construction_unit,
        jurisdiction_code=jurisdiction.code,
        management_unit_id=unit.id,
        status="applied",
        contact_address=c.address,
        contact_phone=c.phone,
        contact_email=c.email,
        applied_at=at,
        status_since=at,
    )
    session.add(base)
    session.flush()
    _add_principal(session, base_id(base.id), "base", jurisdiction.code, at, base=base.id)
    session.flush()
    index = _append(
        session,
        log,
        "base.applied",
        {
            "base": base_id(base.id),
            "uscc": uscc,
            "base_name": base.title,
            "construction_unit": base.construction_unit,
            "jurisdiction": jurisdiction.code,
            "management_unit": unit_id(unit.id),
            "contact_sha256": contact_digest(c),
            "reason": application.reason,
            "by": actor.id,
            "at": _stamp(at),
        },
    )
    return _history(session, base, "base.applied", None, actor, application.reason, at, index)


def _transition(
    session: Session,
    log: Log,
    actor: Principal,
    base_ref: int,
    kind: str,
    reason: str,
    at: datetime,
    *,
    deadline: date | None = None,
    fraud: bool = False,
    rectification_deadline: Callable[[BaseRecord], date] | None = None,
) -> BaseStatusEvent:
    log.lock(session)
    base = _base(session, base_ref)
    require(actor, "base.decide", _scope(base))
    sources, target = TRANSITIONS[kind]
    if base.status not in sources:
        raise StateConflict(
            "base.lifecycle",
            f"{base_id(base.id)} is {base.status}; {kind} is allowed only from "
            f"{' or '.join(sorted(sources))}",
        )
    if rectification_deadline is not None:
        deadline = rectification_deadline(base)
    previous = base.status
    base.status = target
    base.status_since = at
    if target == "rectification":
        base.rectification_deadline = deadline
        base.rectification_reason = reason
    else:
        base.rectification_deadline = None
        base.rectification_reason = None
    payload: dict[str, Any] = {
        "base": base_id(base.id),
        "from": previous,
        "to": target,
        "reason": reason,
        "by": actor.id,
        "at": _stamp(at),
    }
    if deadline is not None:
        payload["deadline"] = deadline.isoformat()
    # national Art. 29 / Panzhihua Art. 20: revoked, or caught cheating → never again.
    barred = kind == "base.revoked" or (kind == "base.rejected" and fraud)
    if kind in ("base.revoked", "base.rejected"):
        payload["fraud"] = fraud
        payload["bars_institution"] = barred
    index = _append(session, log, kind, payload)
    if barred and session.get(BarredInstitution, base.uscc) is None:
        session.add(
            BarredInstitution(
                uscc=base.uscc, base_id=base.id, reason=reason, barred_at=at, log_index=index
            )
        )
    return _history(
        session, base, kind, previous, actor, reason, at, index, deadline=deadline, fraud=fraud
    )


def recognise(
    session: Session,
    log: Log,
    actor: Principal,
    base: int,
    reason: str,
    *,
    now: datetime | None = None,
) -> BaseStatusEvent:
    """认定: an applied base is recognised and published (entry ``base.recognised``)."""
    return _transition(session, log, actor, base, "base.recognised", reason, _now(now))


def reject(
    session: Session,
    log: Log,
    actor: Principal,
    base: int,
    reason: str,
    *,
    fraud: bool = False,
    now: datetime | None = None,
) -> BaseStatusEvent:
    """An application is rejected (``base.rejected``); ``fraud`` bars the institution."""
    return _transition(session, log, actor, base, "base.rejected", reason, _now(now), fraud=fraud)


def order_rectification(
    session: Session,
    log: Log,
    actor: Principal,
    base: int,
    reason: str,
    *,
    deadline: date | None = None,
    now: datetime | None = None,
) -> BaseStatusEvent:
    """责令限期整改 (``base.rectification``).  The deadline defaults to today plus the policy's
    ``rectification_months``; where the policy fixes none (national) it must be given.  It
    must lie in the future."""
    at = _now(now)
    today = local_date(at)

    def pick(record: BaseRecord) -> date:
        chosen = deadline
        if chosen is None:
            policy = effective_policy(session, record.jurisdiction_code, today)
            if policy.rectification_months is None:
                raise RuleViolation(
                    "base.rectification.deadline",
                    f"policy {policy.code} v{policy.version} fixes no rectification period "
                    "(rectification_months is null): give the deadline",
                )
            chosen = add_months(today, policy.rectification_months)
        if chosen <= today:
            raise RuleViolation(
                "base.rectification.deadline",
                f"the rectification deadline must be after today ({today}); found {chosen}",
            )
        return chosen

    return _transition(
        session, log, actor, base, "base.rectification", reason, at, rectification_deadline=pick
    )


def reinstate(
    session: Session,
    log: Log,
    actor: Principal,
    base: int,
    reason: str,
    *,
    now: datetime | None = None,
) -> BaseStatusEvent:
    """Rectification accepted: the base is recognised again (``base.reinstated``)."""
    return _transition(session, log, actor, base, "base.reinstated", reason, _now(now))


def revoke(
    session: Session,
    log: Log,
    actor: Principal,
    base: int,
    reason: str,
    *,
    fraud: bool = False,
    now: datetime | None = None,
) -> BaseStatusEvent:
    """取消资格 (``base.revoked``): the institution is barred from applying again."""
    return _transition(session, log, actor, base, "base.revoked", reason, _now(now), fraud=fraud)


def change_base(
    session: Session,
    log: Log,
    actor: Principal,
    base_ref: int,
    reason: str,
    *,
    title: str | None = None,
    contact: Contact | None = None,
    now: datetime | None = None,
) -> BaseStatusEvent:
    """File and publish a name and/or contact change (``base.changed``; national Art. 39)."""
    at = _now(now)
    log.lock(session)
    base = _base(session, base_ref)
    require(actor, "base.change", _scope(base))
    if base.status not in ACTIVE_STATUSES:
        raise StateConflict(
            "base.change",
            f"{base_id(base.id)} is {base.status}: only an applied or recognised base files changes",
        )
    current = Contact(base.contact_address, base.contact_phone, base.contact_email)
    new_title = title if title is not None and title != base.title else None
    new_contact = contact if contact is not None and contact != current else None
    if new_title is None and new_contact is None:
        raise RuleViolation(
            "base.change.empty", "the change alters neither the name nor the contact"
        )
    payload: dict[str, Any] = {
        "base": base_id(base.id),
        "reason": reason,
        "by": actor.id,
        "at": _stamp(at),
    }
    if new_title is not None:
        payload["base_name"] = new_title
        payload["previous_base_name"] = base.title
        base.title = new_title
    if new_contact is not None:
        payload["contact_sha256"] = contact_digest(new_contact)
        base.contact_address = new_contact.address
        base.contact_phone = new_contact.phone
        base.contact_email = new_contact.email
    index = _append(session, log, "base.changed", payload)
    return _history(session, base, "base.changed", base.status, actor, reason, at, index)


# --------------------------------------------------------------------------------------------
# Annual plans


@dataclass(frozen=True)
class ClassSpec:
    """One class of a plan, as the base drafts it."""

    code: str
    title: str
    category: str
    mode: str
    hours: Decimal
    start: date
    end: date
    capacity: int
    fee_yuan: Decimal


def _class_doc(c: ClassSpec | PlanClass) -> dict[str, Any]:
    if isinstance(c, PlanClass):
        hours, fee, start, end = (
            Decimal(c.hours_tenths) / 10,
            Decimal(c.fee_fen) / 100,
            c.start_date,
            c.end_date,
        )
    else:
        hours, fee, start, end = c.hours, c.fee_yuan, c.start, c.end
    # Decimals as fixed-point strings: JSON numbers are doubles, and fees must stay exact.
    return {
        "code": c.code,
        "title": c.title,
        "category": c.category,
        "mode": c.mode,
        "hours": str(hours.quantize(Decimal("0.1"))),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "capacity": c.capacity,
        "fee_yuan": str(fee.quantize(Decimal("0.01"))),
    }


def _plan_doc(
    base: int, year: int, revision: int, classes: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    return {"base": base_id(base), "year": year, "revision": revision, "classes": list(classes)}


def plan_document(session: Session, plan: Plan) -> dict[str, Any]:
    """The plan as submitted; ``sha256`` of its canonical JSON is what the ledger records."""
    rows = session.execute(
        select(PlanClass).where(PlanClass.plan_id == plan.id).order_by(PlanClass.code)
    ).scalars()
    return _plan_doc(plan.base_id, plan.year, plan.revision, [_class_doc(c) for c in rows])


def _check_classes(policy: EffectivePolicy, year: int, classes: Sequence[ClassSpec]) -> None:
    def bad(i: int, c: ClassSpec, rule: str, why: str) -> RuleViolation:
        return RuleViolation(rule, f"classes[{i}] ({c.code}): {why}")

    if not classes:
        raise RuleViolation("plan.classes", "a plan lists at least one class")
    if len(classes) > MAX_CLASSES_PER_PLAN:
        raise RuleViolation(
            "plan.classes",
            f"a plan lists at most {MAX_CLASSES_PER_PLAN} classes; found {len(classes)}",
        )
    seen: set[str] = set()
    hours = policy.hours
    for i, c in enumerate(classes):
        if c.code in seen:
            raise bad(i, c, "plan.class.code", "class code listed twice")
        seen.add(c.code)
        if c.category not in hours.categories:
            raise bad(
                i,
                c,
                "plan.class.category",
                f"unknown category {c.category!r}; policy {policy.code} knows "
                f"{', '.join(hours.categories)}",
            )
        if c.mode not in hours.modes:
            raise bad(
                i,
                c,
                "plan.class.mode",
                f"unknown mode {c.mode!r}; policy {policy.code} knows {', '.join(hours.modes)}",
            )
        if c.end < c.start:
            raise bad(i, c, "plan.class.dates", f"ends ({c.end}) before it starts ({c.start})")
        if c.start.year != year:
            raise bad(
                i, c, "plan.class.dates", f"starts in {c.start.year}, outside the plan year {year}"
            )
        if not hours.cross_year_records_allowed and c.end.year != year:
            raise bad(
                i,
                c,
                "plan.class.cross-year",
                f"ends in {c.end.year}: policy {policy.code} allows no cross-year records "
                "(不跨年记录)",
            )
        if c.hours <= 0 or c.hours != c.hours.quantize(Decimal("0.1")):
            raise bad(
                i,
                c,
                "plan.class.hours",
                f"hours must be positive, in steps of 0.1; found {c.hours}",
            )
        if hours.daily_cap_hours is not None:
            days = (c.end - c.start).days + 1
            cap = hours.daily_cap_hours * days
            if c.hours > cap:
                raise bad(
                    i,
                    c,
                    "plan.class.daily-cap",
                    f"{c.hours} 学时 over {days} day(s) exceeds the cap of {hours.daily_cap_hours} "
                    f"学时 a day (policy {policy.provenance.get('hours.daily_cap_hours')})",
                )
        if c.capacity < 1:
            raise bad(
                i, c, "plan.class.capacity", f"capacity must be at least 1; found {c.capacity}"
            )
        if c.fee_yuan < 0 or c.fee_yuan != c.fee_yuan.quantize(Decimal("0.01")):
            raise bad(i, c, "plan.class.fee", f"fee must be ≥ 0 yuan, in fen; found {c.fee_yuan}")


def submit_plan(
    session: Session,
    log: Log,
    actor: Principal,
    base_ref: int,
    year: int,
    classes: Sequence[ClassSpec],
    *,
    completions: Callable[[Session, int, int], Sequence[CompletionRow]] | None = None,
    now: datetime | None = None,
) -> Plan:
    """A base submits its annual plan to its management unit (``plan.submitted``).

    Where the policy requires it (national Art. 22, Panzhihua Art. 16) and the base had an
    approved plan for the previous year, that year's execution summary goes with the plan: it
    is computed from the base's records (``completions`` gives them: base, year → rows) and its
    key figures and digest enter the ``plan.submitted`` entry.  Without a way to compute it the
    submission is refused (rule ``plan.execution-summary``).

    Rules: the base is recognised (or under rectification); it has no plan for the year under
    review or approved; every class fits the policy (known category and mode, dates in the
    plan year, no cross-year class where the policy forbids it, daily cap).  A submission after
    the policy's deadline (the management unit's, or the authority's where there is none) is
    flagged late, not refused.
    """
    at = _now(now)
    today = local_date(at)
    log.lock(session)
    base = _base(session, base_ref)
    require(actor, "plan.submit", _scope(base))
    if base.status not in OPERATING_STATUSES:
        raise StateConflict(
            "plan.submit",
            f"{base_id(base.id)} is {base.status}: only a recognised base submits annual plans",
        )
    previous = (
        session.execute(
            select(Plan)
            .where(Plan.base_id == base.id, Plan.year == year)
            .order_by(Plan.revision.desc())
        )
        .scalars()
        .first()
    )
    if previous is not None and previous.status != "returned":
        raise StateConflict(
            "plan.submit",
            f"{base_id(base.id)} already has plan {previous.id} for {year} ({previous.status}); "
            "a new revision may follow only a returned plan",
        )
    policy = effective_policy(session, base.jurisdiction_code, today)
    _check_classes(policy, year, classes)
    summary: dict[str, Any] | None = None
    if policy.plan_filing.execution_summary_required and approved_plan(session, base.id, year - 1):
        if completions is None:
            raise RuleViolation(
                "plan.execution-summary",
                f"{policy.name} requires the execution summary of {year - 1} with the plan for "
                f"{year} (年度计划执行情况与下一年度计划一并报送), and it cannot be computed here",
            )
        done = execution_summary(
            session, base.id, year - 1, completions(session, base.id, year - 1)
        )
        figures = done.to_json()
        summary = {
            "year": year - 1,
            "sha256": _sha256_hex(canonicalize(figures)),
            "trainees": figures["trainees"],
            "classes_run": figures["classes_run"],
            "classes_planned": figures["classes_planned"],
            "minimum_met": figures["minimum_met"],
        }
    revision = 1 if previous is None else previous.revision + 1
    ordered = sorted(classes, key=lambda c: c.code)
    doc = _plan_doc(base.id, year, revision, [_class_doc(c) for c in ordered])
    digest = _sha256_hex(canonicalize(doc))
    mu_due = policy.plan_filing.management_unit_due(year)
    authority_due = policy.plan_filing.authority_due(year)
    due = mu_due or authority_due
    late = today > due
    plan = Plan(
        base_id=base.id,
        year=year,
        revision=revision,
        status="submitted",
        sha256=digest,
        policy_code=policy.code,
        policy_version=policy.version,
        management_unit_due=mu_due,
        authority_due=authority_due,
        submitted_at=at,
        submitted_by=actor.id,
        submitted_log_index=_PENDING,
        late_submission=late,
    )
    session.add(plan)
    session.flush()
    for c in ordered:
        session.add(
            PlanClass(
                plan_id=plan.id,
                code=c.code,
                title=c.title,
                category=c.category,
                mode=c.mode,
                hours_tenths=int(c.hours * 10),
                start_date=c.start,
                end_date=c.end,
                capacity=c.capacity,
                fee_fen=int(c.fee_yuan * 100),
            )
        )
    session.flush()
    plan.submitted_log_index = _append(
        session,
        log,
        "plan.submitted",
        {
            "plan": plan.id,
            "base": base_id(base.id),
            "year": year,
            "revision": revision,
            "sha256": digest,
            "classes": len(ordered),
            "due": due.isoformat(),
            "late": late,
            "policy": f"{policy.code}@{policy.version}",
            "by": actor.id,
            "at": _stamp(at),
            **({} if summary is None else {"execution_summary": summary}),
        },
    )
    return plan


def _decide(
    session: Session,
    log: Log,
    actor: Principal,
    plan_ref: int,
    kind: str,
    reason: str,
    at: datetime,
) -> Plan:
    log.lock(session)
    plan = _plan(session, plan_ref)
    base = _base(session, plan.base_id)
    require(actor, "plan.decide", _scope(base))
    if plan.status != "submitted":
        raise StateConflict(
            "plan.decide",
            f"plan {plan.id} is {plan.status}: only a submitted plan is approved or returned",
        )
    if base.status not in OPERATING_STATUSES:
        raise StateConflict(
            "plan.decide", f"{base_id(base.id)} is {base.status}: its plan can no longer be decided"
        )
    plan.status = "approved" if kind == "plan.approved" else "returned"
    plan.decided_at = at
    plan.decided_by = actor.id
    plan.decision_reason = reason
    plan.decided_log_index = _append(
        session,
        log,
        kind,
        {
            "plan": plan.id,
            "base": base_id(base.id),
            "year": plan.year,
            "revision": plan.revision,
            "sha256": plan.sha256,
            "reason": reason,
            "by": actor.id,
            "at": _stamp(at),
        },
    )
    return plan


def approve_plan(
    session: Session,
    log: Log,
    actor: Principal,
    plan: int,
    reason: str,
    *,
    now: datetime | None = None,
) -> Plan:
    """The base's management unit approves its submitted plan (``plan.approved``)."""
    return _decide(session, log, actor, plan, "plan.approved", reason, _now(now))


def return_plan(
    session: Session,
    log: Log,
    actor: Principal,
    plan: int,
    reason: str,
    *,
    now: datetime | None = None,
) -> Plan:
    """The base's management unit returns its plan for revision, saying why (``plan.returned``)."""
    if not reason.strip():
        raise RuleViolation("plan.return.reason", "a returned plan states the reason")
    return _decide(session, log, actor, plan, "plan.returned", reason, _now(now))


def file_plan(
    session: Session, log: Log, actor: Principal, plan_ref: int, *, now: datetime | None = None
) -> Plan:
    """File an approved plan with the authority (``plan.filed``); late filing is flagged."""
    at = _now(now)
    log.lock(session)
    plan = _plan(session, plan_ref)
    base = _base(session, plan.base_id)
    require(actor, "plan.file", _scope(base))
    if plan.status != "approved":
        raise StateConflict(
            "plan.file", f"plan {plan.id} is {plan.status}: only an approved, unfiled plan is filed"
        )
    plan.status = "filed"
    plan.filed_at = at
    plan.filed_by = actor.id
    plan.late_filing = local_date(at) > plan.authority_due
    plan.filed_log_index = _append(
        session,
        log,
        "plan.filed",
        {
            "plan": plan.id,
            "base": base_id(base.id),
            "year": plan.year,
            "revision": plan.revision,
            "sha256": plan.sha256,
            "authority": base.jurisdiction_code,
            "due": plan.authority_due.isoformat(),
            "late": plan.late_filing,
            "by": actor.id,
            "at": _stamp(at),
        },
    )
    return plan


def approved_plan(session: Session, base: int, year: int) -> Plan | None:
    """The base's plan for ``year`` that its management unit approved (filed or not)."""
    return (
        session.execute(
            select(Plan)
            .where(Plan.base_id == base, Plan.year == year, Plan.status.in_(APPROVED_PLAN_STATUSES))
            .order_by(Plan.revision.desc())
        )
        .scalars()
        .first()
    )


@dataclass(frozen=True)
class ApprovedClass:
    """A class of an approved plan: what a completion record must match.

    ``base_status`` is the base's current status, for the caller to decide whether the base
    may still post (a revoked base's approved plan stays on record).
    """

    base_id: int
    base_status: str
    jurisdiction: str
    plan_id: int
    plan_revision: int
    year: int
    code: str
    title: str
    category: str
    mode: str
    hours: Decimal
    start: date
    end: date
    capacity: int
    fee_yuan: Decimal


def approved_class(session: Session, base_ref: int, class_code: str, year: int) -> ApprovedClass:
    """The class ``class_code`` of the base's approved plan for ``year``.

    Raises `NotFound` for an unknown base, `RuleViolation` (rule ``completion.approved-plan``)
    when the base has no approved plan for the year, and (``completion.class-in-plan``) when the
    class is not in it: a base trains only under the plan its management unit approved
    (national Art. 23-24).
    """
    base = _base(session, base_ref)
    plan = approved_plan(session, base.id, year)
    if plan is None:
        raise RuleViolation(
            "completion.approved-plan",
            f"{base_id(base.id)} has no approved plan for {year}: a base may train only under "
            "the annual plan its management unit approved (national Art. 23-24)",
        )
    row = session.execute(
        select(PlanClass).where(PlanClass.plan_id == plan.id, PlanClass.code == class_code)
    ).scalar_one_or_none()
    if row is None:
        raise RuleViolation(
            "completion.class-in-plan",
            f"class {class_code!r} is not in the approved plan {plan.id} of {base_id(base.id)} "
            f"for {year} (revision {plan.revision}): a base may train only under the annual plan "
            "its management unit approved (national Art. 23-24)",
        )
    return ApprovedClass(
        base_id=base.id,
        base_status=base.status,
        jurisdiction=base.jurisdiction_code,
        plan_id=plan.id,
        plan_revision=plan.revision,
        year=year,
        code=row.code,
        title=row.title,
        category=row.category,
        mode=row.mode,
        hours=(Decimal(row.hours_tenths) / 10).quantize(Decimal("0.1")),
        start=row.start_date,
        end=row.end_date,
        capacity=row.capacity,
        fee_yuan=(Decimal(row.fee_fen) / 100).quantize(Decimal("0.01")),
    )


def execution_summary(
    session: Session, base_ref: int, year: int, rows: Sequence[CompletionRow]
) -> ExecutionSummary:
    """The annual execution summary of a base (年度计划执行情况) from completion ``rows``.

    Planned classes come from the approved plan for ``year`` (none if there is none); the
    minimum and how trainees are counted from the policy governing the base.
    """
    base = _base(session, base_ref)
    plan = approved_plan(session, base.id, year)
    planned: list[PlannedClass] = []
    if plan is not None:
        for c in session.execute(
            select(PlanClass).where(PlanClass.plan_id == plan.id).order_by(PlanClass.code)
        ).scalars():
            planned.append(
                PlannedClass(
                    code=c.code,
                    title=c.title,
                    category=c.category,
                    mode=c.mode,
                    hours=Decimal(c.hours_tenths) / 10,
                    capacity=c.capacity,
                )
            )
    policy = effective_policy(session, base.jurisdiction_code, date(year, 12, 31))
    return summarise(
        base=base_id(base.id),
        base_name=base.title,
        year=year,
        policy=policy,
        planned=planned,
        rows=rows,
    )


# --------------------------------------------------------------------------------------------
# Inspections


def record_inspection(
    session: Session,
    log: Log,
    actor: Principal,
    base_ref: int,
    year: int,
    result: str,
    notes: str,
    *,
    now: datetime | None = None,
) -> Inspection:
    """Record and publish an inspection result (检查考核) for a base and year (``inspection``)."""
    at = _now(now)
    log.lock(session)
    base = _base(session, base_ref)
    require(actor, "inspection.record", _scope(base))
    if result not in INSPECTION_RESULTS:
        raise RuleViolation(
            "inspection.result",
            f"result must be one of {', '.join(INSPECTION_RESULTS)}; found {result!r}",
        )
    if year > local_date(at).year:
        raise RuleViolation("inspection.year", f"cannot inspect a year that has not begun: {year}")
    if base.status not in OPERATING_STATUSES:
        raise StateConflict(
            "inspection.base",
            f"{base_id(base.id)} is {base.status}: only a recognised base is inspected",
        )
    row = Inspection(
        base_id=base.id,
        year=year,
        result=result,
        notes=notes,
        at=at,
        actor=actor.id,
        log_index=_PENDING,
    )
    session.add(row)
    session.flush()
    row.log_index = _append(
        session,
        log,
        "inspection",
        {
            "base": base_id(base.id),
            "year": year,
            "result": result,
            "notes": notes,
            "by": actor.id,
            "at": _stamp(at),
        },
    )
    return row
