"""Jurisdiction policies: the rules a CE base and its learners are held to, kept as versioned data.

Every rule that differs between the national level, a province and a city (where records are
entered, plan-filing deadlines, how trainees are counted, how many 学时 a year and of which
category, caps, …) lives in a policy document, never in code.  An authority may publish a new
version; the service loads it from JSON bytes.  Three versions ship with the package
(``ledger/policies/{national,sichuan,panzhihua}.json``).

Rules this module enforces, in order:

1. **Schema** (`JurisdictionPolicy`, pydantic, strict, ``extra="forbid"``): types are not coerced
   (``"version": "2"`` is refused) and an unknown field is refused, so a misspelt rule can never be
   silently ignored.  Hours are decimals with at most one decimal place; shares are fractions
   written ``"2/3"`` (or a decimal) between 0 and 1.
2. **Identity**: ``code`` is ``CN`` / ``CN-XX`` / ``CN-XX-YYY``; the number of segments gives the
   level (national / province / city); ``parent`` is the code without its last segment and is
   null exactly for the national policy.
3. **Inheritance** (`resolve`): a rule a policy omits is inherited from its parent, up to the
   national policy.  The sections ``plan_filing`` and ``hours`` merge field by field; every other
   value (scalars, lists, the ``requirement`` object) is replaced whole, so a province that states
   ``category_minimums`` states all of them.  An explicit ``null`` means "no such rule at this
   level" and is accepted only where the effective policy may be null
   (``plan_filing.management_unit_deadline``, ``rectification_months``,
   ``hours.daily_cap_hours``); elsewhere null is refused ("omit the field to inherit").
4. **Effective policy** (`EffectivePolicy`): fully populated, every value traced to the policy
   that supplied it (``provenance``); categories and modes named by minimums and caps are known,
   and the category minimums fit inside the required total.
5. **Registry** (`PolicyRegistry`, immutable): versions of a code only grow, their
   ``effective_from`` never goes back, a code never changes level, a parent must be loaded
   before its children, and a new version is refused if it breaks a policy that inherits from it.

Every refusal is a `PolicyError` naming the policy, the field (dotted path, e.g.
``hours.category_minimums[0].min_fraction``) and the reason.  No I/O apart from reading the
shipped JSON files through ``importlib.resources``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from fractions import Fraction
from importlib import resources
from types import MappingProxyType
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ledger.errors import LedgerError

__all__ = [
    "BUILTIN_POLICY_FILES",
    "HOURS_QUANTUM",
    "INHERITABLE_FIELDS",
    "CategoryMinimum",
    "CycleRequirement",
    "EffectivePolicy",
    "HoursPolicy",
    "HoursSpec",
    "JurisdictionPolicy",
    "Level",
    "MonthDay",
    "OnlineCap",
    "PlanFiling",
    "PlanFilingSpec",
    "PolicyError",
    "PolicyRef",
    "PolicyRegistry",
    "TraineeCountMode",
    "YearRequirement",
    "ceil_hours",
    "parse_policy",
    "resolve",
]

Level = Literal["national", "province", "city"]
TraineeCountMode = Literal["distinct_people", "person_times"]

#: The smallest unit of 学时 the ledger records (see ``ledger.compliance`` for why 0.1).
HOURS_QUANTUM: Final = Decimal("0.1")

#: The policies shipped with the package, parents first.
BUILTIN_POLICY_FILES: Final = ("national.json", "sichuan.json", "panzhihua.json")

_LEVEL_RANK: Final[Mapping[str, int]] = MappingProxyType({"national": 0, "province": 1, "city": 2})
_CODE_RE: Final = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,8}){0,2}$")
_NULL_REFUSED: Final = (
    "null is not allowed here: omit the field to inherit it from the parent policy "
    "(不可为 null：如需沿用上级规定，请省略该字段)"
)


class PolicyError(LedgerError):
    """A policy document, or the effective policy it leads to, is invalid (or a lookup failed)."""

    def __init__(self, field: str, reason: str, *, policy: str | None = None) -> None:
        self.field = field
        self.reason = reason
        self.policy = policy
        where = f"policy {policy}: " if policy else ""
        super().__init__(f"{where}field '{field}' is invalid (策略字段 {field} 无效): {reason}")


# --------------------------------------------------------------------------------------------
# Value types shared by the file models and the effective policy


def _to_fraction(value: object) -> object:
    # Shares such as "two thirds" have no exact decimal, so the file writes "2/3"; a JSON float
    # is read through its shortest repr so that 0.5 stays exactly 1/2.
    if isinstance(value, bool):
        return value  # left for strict validation to refuse
    if isinstance(value, float):
        return Fraction(Decimal(repr(value)))
    if isinstance(value, str):
        try:
            return Fraction(value.strip())
        except (ValueError, ZeroDivisionError) as exc:
            raise ValueError(
                f'expected a fraction such as "2/3" or a decimal such as "0.5"; found {value!r}'
            ) from exc
    return value


def _check_share(value: Fraction) -> Fraction:
    if not 0 <= value <= 1:
        raise ValueError(f"a share must be between 0 and 1; found {value}")
    return value


Share = Annotated[Fraction, BeforeValidator(_to_fraction), AfterValidator(_check_share)]
Hours = Annotated[Decimal, Field(ge=0, allow_inf_nan=False, decimal_places=1)]
PositiveHours = Annotated[Decimal, Field(gt=0, allow_inf_nan=False, decimal_places=1)]
Code = Annotated[str, Field(pattern=_CODE_RE.pattern)]
Label = Annotated[str, Field(min_length=1, max_length=64)]

_STRICT: Final = ConfigDict(frozen=True, extra="forbid", strict=True)


def ceil_hours(value: Fraction) -> Decimal:
    """Round a (possibly non-decimal) number of hours *up* to the 0.1 学时 quantum.

    Up, because a minimum expressed as a share ("at least two thirds") is not met by a value a
    hair below it.
    """
    return (Decimal(math.ceil(value * 10)) / 10).quantize(HOURS_QUANTUM)


class MonthDay(BaseModel):
    """A day that recurs every year (a filing deadline), e.g. ``{"month": 12, "day": 10}``."""

    model_config = _STRICT

    month: int = Field(ge=1, le=12)
    day: int = Field(ge=1, le=31)

    @model_validator(mode="after")
    def _exists(self) -> MonthDay:
        # Checked against a common year: a deadline of 29 February would not exist most years.
        try:
            date(2001, self.month, self.day)
        except ValueError:
            raise ValueError(
                f"day {self.day} does not exist in month {self.month} (in a common year)"
            ) from None
        return self

    def in_year(self, year: int) -> date:
        """This month-day in ``year``."""
        return date(year, self.month, self.day)

    def __str__(self) -> str:
        return f"{self.month:02d}-{self.day:02d}"


class CategoryMinimum(BaseModel):
    """At least ``min_hours`` and/or ``min_fraction`` of the required total in one category.

    When both are given the larger applies.  The share is of the *required* total (60 of 90),
    not of the hours a person earned: otherwise extra 公需 hours would raise the 专业 bar.
    """

    model_config = _STRICT

    category: Label
    min_hours: Hours | None = None
    min_fraction: Share | None = None

    @model_validator(mode="after")
    def _something_set(self) -> CategoryMinimum:
        if self.min_hours is None and self.min_fraction is None:
            raise ValueError(
                f"minimum for {self.category!r} sets neither min_hours nor min_fraction"
            )
        return self

    def required_of(self, total: Decimal) -> Decimal:
        """The hours this minimum asks for when the requirement is ``total``."""
        needed = Decimal(0)
        if self.min_hours is not None:
            needed = self.min_hours
        if self.min_fraction is not None:
            needed = max(needed, ceil_hours(Fraction(total) * self.min_fraction))
        return needed.quantize(HOURS_QUANTUM)


class OnlineCap(BaseModel):
    """At most ``max_hours_per_year`` of one category earned in one mode count per person per year.

    ``base_levels`` narrows the cap to records from bases of those levels (Sichuan: municipal
    network bases); null means records from any base.  A record whose base level is unknown is
    capped, because a compliance check must not credit hours it cannot justify.
    """

    model_config = _STRICT

    category: Label
    mode: Label
    max_hours_per_year: Hours
    base_levels: tuple[Level, ...] | None = None

    def applies_to(self, category: str, mode: str, base_level: str | None) -> bool:
        """Whether a record of this category, mode and base level falls under the cap."""
        if category != self.category or mode != self.mode:
            return False
        return self.base_levels is None or base_level is None or base_level in self.base_levels


class YearRequirement(BaseModel):
    """``total`` 学时 every calendar year."""

    model_config = _STRICT

    period: Literal["year"]
    total: PositiveHours


class CycleRequirement(BaseModel):
    """``total`` 学时 per cycle of ``years`` calendar years.

    ``anchor_year`` fixes the cycles for everyone (cycles start at ``anchor_year + k·years``);
    null means cycles are per person (e.g. counted from registration) and must be given
    explicitly when assessing.
    """

    model_config = _STRICT

    period: Literal["cycle"]
    years: int = Field(ge=2, le=10)
    total: PositiveHours
    anchor_year: int | None = Field(default=None, ge=1900, le=2200)

    def cycle_start(self, year: int) -> int | None:
        """First year of the fixed cycle containing ``year`` (None without an anchor)."""
        if self.anchor_year is None:
            return None
        return year - (year - self.anchor_year) % self.years


Requirement = Annotated[YearRequirement | CycleRequirement, Field(discriminator="period")]


# --------------------------------------------------------------------------------------------
# The file boundary: what an authority publishes.  Rules are optional (inherited when omitted).


def _refuse_null(value: object) -> object:
    if value is None:
        raise ValueError(_NULL_REFUSED)
    return value


class PlanFilingSpec(BaseModel):
    """Annual-plan filing as written in a policy file (any field may be omitted to inherit).

    Deadlines are month-days in the year *before* the plan year, inclusive ("12月10日前" is read
    as "on or before 10 December").
    """

    model_config = _STRICT

    management_unit_deadline: MonthDay | None = None
    authority_deadline: MonthDay | None = None
    execution_summary_required: bool | None = None

    _not_null = field_validator("authority_deadline", "execution_summary_required")(_refuse_null)


class HoursSpec(BaseModel):
    """The 学时 rules as written in a policy file (any field may be omitted to inherit)."""

    model_config = _STRICT

    requirement: Requirement | None = None
    category_minimums: tuple[CategoryMinimum, ...] | None = None
    categories: tuple[Label, ...] | None = Field(default=None, min_length=1)
    modes: tuple[Label, ...] | None = Field(default=None, min_length=1)
    minutes_per_hour: int | None = Field(default=None, ge=1, le=60)
    daily_cap_hours: PositiveHours | None = None
    online_caps: tuple[OnlineCap, ...] | None = None
    cross_year_records_allowed: bool | None = None
    correction_window_days: int | None = Field(default=None, ge=0, le=3660)

    _not_null = field_validator(
        "requirement",
        "category_minimums",
        "categories",
        "modes",
        "minutes_per_hour",
        "online_caps",
        "cross_year_records_allowed",
        "correction_window_days",
    )(_refuse_null)


_SECTIONS: Final[Mapping[str, type[BaseModel]]] = MappingProxyType(
    {"plan_filing": PlanFilingSpec, "hours": HoursSpec}
)
_IDENTITY_FIELDS: Final = (
    "code",
    "name",
    "level",
    "parent",
    "version",
    "effective_from",
    "source",
    "notes",
)


class JurisdictionPolicy(BaseModel):
    """One version of one jurisdiction's policy, exactly as published (the JSON file).

    Identity fields are required (``parent`` explicitly null for the national policy).  Every
    rule may be omitted to inherit it; see the module docstring for how values merge.  ``notes``
    maps a field path (``"hours.daily_cap_hours"``) or ``"general"`` to where the value comes
    from: values from secondary sources are data, and say so.
    """

    model_config = _STRICT

    code: Code
    name: Label
    level: Level
    parent: Code | None
    version: int = Field(ge=1)
    effective_from: date
    source: str = Field(min_length=1)
    notes: dict[str, str] = Field(default_factory=dict)

    register_name: Label | None = None
    plan_filing: PlanFilingSpec | None = None
    rectification_months: int | None = Field(default=None, ge=1, le=60)
    min_trainees_per_year: int | None = Field(default=None, ge=0)
    trainee_count_mode: TraineeCountMode | None = None
    hours: HoursSpec | None = None

    _not_null = field_validator(
        "register_name", "plan_filing", "min_trainees_per_year", "trainee_count_mode", "hours"
    )(_refuse_null)

    @model_validator(mode="after")
    def _identity(self) -> JurisdictionPolicy:
        # Raised as PolicyError directly (pydantic lets non-ValueError exceptions through) so the
        # message can name the field; a model-level ValueError would carry no field.
        segments = self.code.count("-") + 1
        if segments != _LEVEL_RANK[self.level] + 1:
            raise PolicyError(
                "level",
                f"a {self.level} policy has a code of {_LEVEL_RANK[self.level] + 1} segment(s) "
                f"(CN / CN-XX / CN-XX-YYY); found {self.code!r}",
                policy=self.code,
            )
        expected_parent = self.code.rsplit("-", 1)[0] if segments > 1 else None
        if self.parent != expected_parent:
            raise PolicyError(
                "parent",
                f"expected {expected_parent!r} (the code without its last segment); "
                f"found {self.parent!r}",
                policy=self.code,
            )
        unknown = sorted(set(self.notes) - _NOTE_KEYS)
        if unknown:
            raise PolicyError(
                f"notes.{unknown[0]}",
                "a note must be keyed by a policy field path (e.g. 'hours.daily_cap_hours') "
                f"or 'general'; unknown key(s): {', '.join(unknown)}",
                policy=self.code,
            )
        return self


#: Field paths a policy can inherit, e.g. ``register_name``, ``hours.daily_cap_hours``.
INHERITABLE_FIELDS: Final = tuple(
    path
    for name in JurisdictionPolicy.model_fields
    if name not in _IDENTITY_FIELDS
    for path in (
        [f"{name}.{sub}" for sub in _SECTIONS[name].model_fields] if name in _SECTIONS else [name]
    )
)
_NOTE_KEYS: Final = frozenset(
    {"general", *_IDENTITY_FIELDS, *_SECTIONS, *INHERITABLE_FIELDS} - {"notes"}
)


def _set_rules(policy: JurisdictionPolicy) -> dict[str, object]:
    """The rules this document states explicitly (null included), keyed by field path."""
    out: dict[str, object] = {}
    for name in sorted(policy.model_fields_set - set(_IDENTITY_FIELDS)):
        value = getattr(policy, name)
        if name in _SECTIONS and isinstance(value, BaseModel):
            for sub in sorted(value.model_fields_set):
                out[f"{name}.{sub}"] = getattr(value, sub)
        else:
            out[name] = value
    return out


# --------------------------------------------------------------------------------------------
# The effective policy: the merged chain, fully populated.


class PolicyRef(BaseModel):
    """One link of the chain an effective policy was merged from."""

    model_config = _STRICT

    code: Code
    version: int
    effective_from: date
    source: str


class PlanFiling(BaseModel):
    """Effective annual-plan filing rules."""

    model_config = _STRICT

    #: Null where the base files directly with the authority (Panzhihua).
    management_unit_deadline: MonthDay | None
    authority_deadline: MonthDay
    execution_summary_required: bool

    def management_unit_due(self, plan_year: int) -> date | None:
        """Last day (inclusive) to send the plan for ``plan_year`` to the management unit."""
        if self.management_unit_deadline is None:
            return None
        return self.management_unit_deadline.in_year(plan_year - 1)

    def authority_due(self, plan_year: int) -> date:
        """Last day (inclusive) to file the plan for ``plan_year`` with the authority."""
        return self.authority_deadline.in_year(plan_year - 1)


class HoursPolicy(BaseModel):
    """Effective 学时 rules."""

    model_config = _STRICT

    requirement: Requirement
    category_minimums: tuple[CategoryMinimum, ...]
    categories: tuple[str, ...]
    modes: tuple[str, ...]
    #: Minutes of activity that make one 学时 (used when converting at intake).
    minutes_per_hour: int
    #: Null: no daily cap at this level.  Enforced at record intake (needs dates), not here.
    daily_cap_hours: Decimal | None
    online_caps: tuple[OnlineCap, ...]
    #: False: a record may not span two calendar years and hours never count towards another
    #: year (no make-up, no carry-over).  True only means "no such prohibition at this level".
    cross_year_records_allowed: bool
    #: Days after posting during which a base may correct its own record (a service setting).
    correction_window_days: int

    def category_required(self, category: str) -> Decimal:
        """Hours required in ``category`` per period (0 when the policy sets no minimum)."""
        for minimum in self.category_minimums:
            if minimum.category == category:
                return minimum.required_of(self.requirement.total)
        return Decimal(0).quantize(HOURS_QUANTUM)


class EffectivePolicy(BaseModel):
    """A jurisdiction's policy with every inherited value filled in.

    Identity fields are the leaf policy's; ``chain`` lists the merged versions, national first;
    ``provenance`` maps each rule's field path to the code of the policy that supplied it;
    ``notes`` holds, per field path, the note of the policy that supplied the value (a parent's
    citation is dropped when a child overrides the value without citing anything).
    """

    model_config = _STRICT

    code: Code
    name: str
    level: Level
    parent: Code | None
    version: int
    effective_from: date
    source: str
    chain: tuple[PolicyRef, ...]

    register_name: str
    plan_filing: PlanFiling
    #: Null: the regulation orders rectification "within a deadline" without fixing it.
    rectification_months: int | None
    min_trainees_per_year: int
    trainee_count_mode: TraineeCountMode
    hours: HoursPolicy

    notes: dict[str, str]
    provenance: dict[str, str]


def _field_path(loc: Sequence[int | str]) -> str:
    path = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            path += f"[{part}]"
            continue
        # A tagged union puts the tag in the location ("requirement.year.total"); the tag is
        # not a field the author wrote, so it is left out.
        if i > 0 and loc[i - 1] == "requirement" and part in ("year", "cycle"):
            continue
        path += f".{part}" if path else part
    return path or "(document)"


def _describe(error: Mapping[str, Any], missing: str | None) -> str:
    kind = error["type"]
    if kind == "missing":
        return missing or "required field is missing (必填字段缺失)"
    if kind == "extra_forbidden":
        return (
            "unknown field (未知字段): the schema refuses fields it does not know, so that a "
            "misspelt rule is refused instead of silently ignored"
        )
    if kind == "json_invalid":
        return f"not valid JSON: {error.get('ctx', {}).get('error', error['msg'])}"
    message = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    if isinstance(value, str | int | float | bool | Decimal) or value is None:
        text = repr(value)
        if len(text) <= 60:
            message += f"; found {text}"
    return message


def _from_validation_error(
    exc: ValidationError, *, policy: str | None, missing: str | None = None
) -> PolicyError:
    problems = [
        (_field_path(err["loc"]), _describe(err, missing)) for err in exc.errors(include_url=False)
    ]
    field, reason = problems[0]
    if len(problems) > 1:
        reason += "; also " + "; ".join(f"'{f}': {r}" for f, r in problems[1:])
    return PolicyError(field, reason, policy=policy)


def _code_of(data: bytes | str) -> str | None:
    # Only to name the policy in an error message; the document is already known to be invalid.
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    code = doc.get("code") if isinstance(doc, dict) else None
    return code if isinstance(code, str) and len(code) <= 32 else None


def parse_policy(data: bytes | str) -> JurisdictionPolicy:
    """Validate one policy document (JSON) and return it; `PolicyError` names what is wrong."""
    try:
        return JurisdictionPolicy.model_validate_json(data)
    except ValidationError as exc:
        raise _from_validation_error(exc, policy=_code_of(data)) from None


def resolve(chain: Sequence[JurisdictionPolicy]) -> EffectivePolicy:
    """Merge ``chain`` (national first, each the parent of the next) into an effective policy."""
    if not chain:
        raise PolicyError("code", "cannot resolve an empty chain of policies")
    for parent, child in zip((None, *chain), chain, strict=False):
        expected = parent.code if parent is not None else None
        if child.parent != expected:
            raise PolicyError(
                "parent",
                f"chain is broken: expected parent {expected!r}; found {child.parent!r}",
                policy=child.code,
            )
    leaf = chain[-1]
    values: dict[str, object] = {}
    provenance: dict[str, str] = {}
    supplier: dict[str, JurisdictionPolicy] = {}
    for policy in chain:
        for path, value in _set_rules(policy).items():
            values[path] = value
            provenance[path] = policy.code
            supplier[path] = policy

    notes = {k: v for k, v in leaf.notes.items() if k not in INHERITABLE_FIELDS}
    for path, policy in supplier.items():
        if path in policy.notes:
            notes[path] = policy.notes[path]

    data: dict[str, Any] = {
        "code": leaf.code,
        "name": leaf.name,
        "level": leaf.level,
        "parent": leaf.parent,
        "version": leaf.version,
        "effective_from": leaf.effective_from,
        "source": leaf.source,
        "chain": tuple(
            PolicyRef(
                code=p.code, version=p.version, effective_from=p.effective_from, source=p.source
            )
            for p in chain
        ),
        "notes": notes,
        "provenance": provenance,
    }
    for path, value in values.items():
        section, _, sub = path.partition(".")
        if sub:
            data.setdefault(section, {})[sub] = value
        else:
            data[section] = value
    codes = ", ".join(p.code for p in chain)
    try:
        effective = EffectivePolicy.model_validate(data)
    except ValidationError as exc:
        raise _from_validation_error(
            exc,
            policy=leaf.code,
            missing=(
                f"no value: not set by any policy in the chain ({codes}); the national policy "
                "must state every rule (null where there is none)"
            ),
        ) from None
    _check_effective(effective)
    return effective


def _check_effective(policy: EffectivePolicy) -> None:
    """Cross-field rules that only make sense once inheritance has filled everything in."""
    hours = policy.hours
    origin = policy.provenance

    def fail(field: str, reason: str) -> PolicyError:
        return PolicyError(field, reason, policy=policy.code)

    for name in ("categories", "modes"):
        items: tuple[str, ...] = getattr(hours, name)
        if len(set(items)) != len(items):
            raise fail(f"hours.{name}", f"listed twice: {_duplicates(items)}")
    categories, modes = set(hours.categories), set(hours.modes)
    known_categories = (
        f"known categories: {', '.join(hours.categories)} "
        f"(hours.categories, set by {origin.get('hours.categories')})"
    )

    seen: set[str] = set()
    for i, minimum in enumerate(hours.category_minimums):
        field = f"hours.category_minimums[{i}].category"
        if minimum.category not in categories:
            raise fail(field, f"unknown category {minimum.category!r}; {known_categories}")
        if minimum.category in seen:
            raise fail(field, f"a second minimum for {minimum.category!r}")
        seen.add(minimum.category)

    pairs: set[tuple[str, str]] = set()
    for i, cap in enumerate(hours.online_caps):
        if cap.category not in categories:
            raise fail(
                f"hours.online_caps[{i}].category",
                f"unknown category {cap.category!r}; {known_categories}",
            )
        if cap.mode not in modes:
            raise fail(
                f"hours.online_caps[{i}].mode",
                f"unknown mode {cap.mode!r}; known modes: {', '.join(hours.modes)}",
            )
        if (cap.category, cap.mode) in pairs:
            raise fail(
                f"hours.online_caps[{i}]",
                f"a second cap for {cap.category!r} in mode {cap.mode!r}",
            )
        pairs.add((cap.category, cap.mode))

    total = hours.requirement.total
    required = Decimal(0)
    for i, minimum in enumerate(hours.category_minimums):
        needed = minimum.required_of(total)
        if needed > total:
            raise fail(
                f"hours.category_minimums[{i}]",
                f"minimum of {needed} 学时 for {minimum.category!r} exceeds the required total "
                f"of {total} (hours.requirement.total, set by {origin.get('hours.requirement')})",
            )
        required += needed
    if required > total:
        raise fail(
            "hours.category_minimums",
            f"the category minimums add up to {required} 学时, more than the required total of "
            f"{total} (hours.requirement.total, set by {origin.get('hours.requirement')})",
        )


def _duplicates(items: Iterable[str]) -> str:
    seen: set[str] = set()
    twice: list[str] = []
    for item in items:
        if item in seen and item not in twice:
            twice.append(item)
        seen.add(item)
    return ", ".join(twice)


# --------------------------------------------------------------------------------------------
# The registry of loaded versions


class PolicyRegistry:
    """All loaded versions of all jurisdictions' policies.  Immutable: adding returns a new one.

    Lookups take an optional ``at`` date: the version of each policy in force on that day (the
    highest version whose ``effective_from`` is not after it).  Without ``at`` the latest loaded
    version is used, even one that takes effect later (this module does not read the clock).
    """

    __slots__ = ("_versions",)

    def __init__(self) -> None:
        self._versions: Mapping[str, tuple[JurisdictionPolicy, ...]] = MappingProxyType({})

    @classmethod
    def of(cls, policies: Iterable[JurisdictionPolicy]) -> PolicyRegistry:
        """A registry holding ``policies`` (added parents first, then by version)."""
        ordered = sorted(policies, key=lambda p: (_LEVEL_RANK[p.level], p.code, p.version))
        registry = cls()
        for policy in ordered:
            registry = registry.add(policy)
        return registry

    @classmethod
    def load_builtin(cls) -> PolicyRegistry:
        """The policies shipped in ``ledger/policies`` (national, Sichuan, Panzhihua)."""
        folder = resources.files("ledger.policies")
        return cls.of(
            parse_policy(folder.joinpath(name).read_bytes()) for name in BUILTIN_POLICY_FILES
        )

    def from_json(self, data: bytes | str) -> PolicyRegistry:
        """A new registry with the policy version in ``data`` (an authority's upload) added."""
        return self.add(parse_policy(data))

    def add(self, policy: JurisdictionPolicy) -> PolicyRegistry:
        """A new registry with ``policy`` added; `PolicyError` if it may not be."""
        current = self._versions.get(policy.code, ())
        if current:
            latest = current[-1]
            if policy.version <= latest.version:
                raise PolicyError(
                    "version",
                    f"must be greater than {latest.version}, the current version of "
                    f"{policy.code}; found {policy.version}",
                    policy=policy.code,
                )
            if policy.effective_from < latest.effective_from:
                raise PolicyError(
                    "effective_from",
                    f"must not be before {latest.effective_from}, when version {latest.version} "
                    f"took effect; found {policy.effective_from}",
                    policy=policy.code,
                )
            if policy.level != latest.level:
                raise PolicyError(
                    "level",
                    f"{policy.code} is a {latest.level} policy; found {policy.level!r}",
                    policy=policy.code,
                )
        if policy.parent is not None and policy.parent not in self._versions:
            raise PolicyError(
                "parent",
                f"unknown parent {policy.parent!r}: load its policy first "
                f"(loaded: {', '.join(sorted(self._versions)) or 'none'})",
                policy=policy.code,
            )
        versions = dict(self._versions)
        versions[policy.code] = (*current, policy)
        candidate = PolicyRegistry()
        candidate._versions = MappingProxyType(versions)
        # The new version and everything inheriting from it must still resolve: a province
        # that drops a category would otherwise break a city's cap silently.
        for code in sorted(candidate._versions):
            if code == policy.code or code.startswith(policy.code + "-"):
                try:
                    candidate.effective(code)
                except PolicyError as exc:
                    if code == policy.code:
                        raise
                    raise PolicyError(
                        exc.field,
                        f"{exc.reason} (after loading {policy.code} version {policy.version}, "
                        f"which {code} inherits from)",
                        policy=code,
                    ) from None
        return candidate

    def codes(self) -> tuple[str, ...]:
        """The jurisdiction codes loaded, sorted."""
        return tuple(sorted(self._versions))

    def __contains__(self, code: object) -> bool:
        return code in self._versions

    def versions(self, code: str) -> tuple[JurisdictionPolicy, ...]:
        """Every loaded version of ``code``, oldest first."""
        return self._lookup(code)

    def get(self, code: str, at: date | None = None) -> JurisdictionPolicy:
        """The version of ``code`` in force on ``at`` (latest loaded without ``at``)."""
        versions = self._lookup(code)
        if at is None:
            return versions[-1]
        in_force = [p for p in versions if p.effective_from <= at]
        if not in_force:
            raise PolicyError(
                "effective_from",
                f"no version of {code} is in force on {at}; the first takes effect on "
                f"{versions[0].effective_from}",
                policy=code,
            )
        return in_force[-1]

    def chain(self, code: str, at: date | None = None) -> tuple[JurisdictionPolicy, ...]:
        """``code``'s policy and its ancestors, national first."""
        links = [self.get(code, at)]
        while links[0].parent is not None:
            links.insert(0, self.get(links[0].parent, at))
        return tuple(links)

    def effective(self, code: str, at: date | None = None) -> EffectivePolicy:
        """The effective (fully inherited) policy of ``code``."""
        return resolve(self.chain(code, at))

    def _lookup(self, code: str) -> tuple[JurisdictionPolicy, ...]:
        versions = self._versions.get(code)
        if not versions:
            raise PolicyError(
                "code",
                f"unknown jurisdiction {code!r}; loaded: {', '.join(self.codes()) or 'none'}",
            )
        return versions
