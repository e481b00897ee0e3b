"""Assess a professional's credited 学时 against the effective policy of their jurisdiction.

For each period — a calendar year, or a cycle of years when the policy counts per cycle — the
assessment applies these rules, in order:

1. **Items are checked**: each `CreditedHours` names a category and a mode the policy knows and
   carries a non-negative number of hours with at most one decimal place; otherwise
   `ComplianceError` names the item and the field.  Nothing is guessed or rounded here.
2. **Online caps** (``hours.online_caps``), per calendar year even inside a cycle: hours of a
   capped category and mode above the yearly cap are **not counted**; every cut is reported
   (`CapApplied`) and said in the summary.
3. **Counted totals** per category, after caps.
4. **Checks**: the counted total reaches the required total; each category minimum is reached
   (the larger of ``min_hours`` and ``min_fraction`` × the *required* total, rounded up to 0.1).
5. **Verdict**: met only if every check is met.  The result carries a one-line summary in Chinese
   and in English, e.g. ``2026年：96/90 学时 ✓；专业 70 ≥ 60 ✓；达标``.

Not assessed here, because a credited item has no dates: the daily cap (``daily_cap_hours``) and
the no-cross-year rule are enforced when a base's records are taken in; by then each item carries
the one year it counts for, and hours are never moved to another year (no make-up, no
carry-over).

Why ``Decimal`` with one decimal place: 学时 are converted from minutes (45 min = 1 学时), so
fractional values are normal; a tenth of a 学时 (4.5 minutes) is finer than any conversion rule in
use and is what certificates print, whereas quanta of 0.5 would force rounding of legitimate
credits; and decimal arithmetic keeps a sum of hundreds of records exact, which floats do not.
Conversions round *down* (`hours_from_minutes`) and minimums round *up*, so the ledger never
credits a fraction nobody earned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from types import MappingProxyType
from typing import Final, Literal, get_args

from ledger.errors import LedgerError
from ledger.policy import (
    HOURS_QUANTUM,
    CycleRequirement,
    EffectivePolicy,
    Level,
    YearRequirement,
)

__all__ = [
    "CapApplied",
    "CategoryCheck",
    "ComplianceError",
    "ComplianceResult",
    "CreditedHours",
    "assess",
    "assess_cycle",
    "hours_from_minutes",
]

_ZERO: Final = Decimal(0).quantize(HOURS_QUANTUM)
_LEVELS: Final[tuple[str, ...]] = get_args(Level)
# English glosses for the summaries; codes a policy adds later are shown as they are.
_CATEGORY_EN: Final[Mapping[str, str]] = MappingProxyType(
    {"公需": "general", "专业": "professional", "选修": "elective"}
)
_MODE_EN: Final[Mapping[str, str]] = MappingProxyType(
    {
        "面授": "in person",
        "网络": "online",
        "会议": "conference",
        "实践": "practice",
        "其他": "other",
    }
)


class ComplianceError(LedgerError):
    """The input to an assessment is unusable (unknown category, bad hours, wrong period kind)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"field '{field}' is invalid (字段 {field} 无效): {reason}")


@dataclass(frozen=True, slots=True)
class CreditedHours:
    """Hours credited to one professional in one year, one category and one mode.

    ``base_level`` is the level of the base that posted the record, when known; it matters only
    for caps scoped to some levels (an unknown level is capped, see `OnlineCap`).
    ``hours`` is normalised to one decimal place.
    """

    year: int
    category: str
    mode: str
    hours: Decimal
    base_level: Level | None = None

    def __post_init__(self) -> None:
        if isinstance(self.year, bool) or not isinstance(self.year, int):
            raise ComplianceError("year", f"expected an integer year; found {self.year!r}")
        if not isinstance(self.hours, Decimal) or not self.hours.is_finite():
            raise ComplianceError(
                "hours", f"expected a finite Decimal (never a float); found {self.hours!r}"
            )
        if self.hours < 0:
            raise ComplianceError("hours", f"must not be negative; found {self.hours}")
        if self.hours % HOURS_QUANTUM != 0:
            raise ComplianceError(
                "hours",
                f"at most one decimal place (学时 are recorded to 0.1); found {self.hours} — "
                "convert with hours_from_minutes, which rounds down",
            )
        if self.base_level is not None and self.base_level not in _LEVELS:
            raise ComplianceError(
                "base_level",
                f"expected one of {', '.join(_LEVELS)} or None; found {self.base_level!r}",
            )
        object.__setattr__(self, "hours", self.hours.quantize(HOURS_QUANTUM))


@dataclass(frozen=True, slots=True)
class CategoryCheck:
    """One category minimum: counted hours against the hours required."""

    category: str
    counted: Decimal
    required: Decimal
    met: bool
    #: Hours still missing (0 when met).
    shortfall: Decimal


@dataclass(frozen=True, slots=True)
class CapApplied:
    """Hours cut by a yearly cap: ``claimed`` were credited, only ``counted`` count."""

    year: int
    category: str
    mode: str
    cap: Decimal
    claimed: Decimal
    counted: Decimal
    not_counted: Decimal


@dataclass(frozen=True, slots=True)
class ComplianceResult:
    """The verdict for one year, or one cycle, under one policy version."""

    policy_code: str
    policy_version: int
    period: Literal["year", "cycle"]
    #: The calendar years assessed (one for a yearly policy).
    years: tuple[int, ...]
    required: Decimal
    #: Hours credited, before caps.
    claimed: Decimal
    #: Hours counted, after caps.
    total: Decimal
    total_met: bool
    #: Hours still missing from the total (0 when met).
    shortfall: Decimal
    #: Counted hours per category, every category of the policy, in the policy's order.
    by_category: Mapping[str, Decimal]
    category_checks: tuple[CategoryCheck, ...]
    caps_applied: tuple[CapApplied, ...]
    met: bool
    summary_zh: str
    summary_en: str

    @property
    def first_year(self) -> int:
        return self.years[0]

    @property
    def last_year(self) -> int:
        return self.years[-1]


def hours_from_minutes(minutes: int, minutes_per_hour: int) -> Decimal:
    """学时 for ``minutes`` of activity, rounded *down* to 0.1 (100 min at 45 → 2.2)."""
    if minutes < 0 or minutes_per_hour <= 0:
        raise ComplianceError(
            "minutes",
            f"expected minutes ≥ 0 and minutes_per_hour > 0; found {minutes}, {minutes_per_hour}",
        )
    return (Decimal(minutes) / Decimal(minutes_per_hour)).quantize(
        HOURS_QUANTUM, rounding=ROUND_FLOOR
    )


def assess(
    policy: EffectivePolicy, items: Iterable[CreditedHours], years: range | Sequence[int]
) -> list[ComplianceResult]:
    """One result per year in ``years`` (sorted, each once), or per fixed cycle touching them.

    For a cycle policy the cycles come from its ``anchor_year``; a policy whose cycles are per
    person (no anchor) must be assessed with `assess_cycle`.
    """
    credited = _checked(policy, items)
    wanted = sorted(set(years))
    requirement = policy.hours.requirement
    if isinstance(requirement, YearRequirement):
        return [_assess_period(policy, credited, (year,)) for year in wanted]
    starts: set[int] = set()
    for year in wanted:
        start = requirement.cycle_start(year)
        if start is None:
            raise ComplianceError(
                "years",
                f"policy {policy.code} counts hours per {requirement.years}-year cycle starting "
                "with each person (no anchor_year): use assess_cycle with the first year of "
                "their cycle",
            )
        starts.add(start)
    return [
        _assess_period(policy, credited, tuple(range(start, start + requirement.years)))
        for start in sorted(starts)
    ]


def assess_cycle(
    policy: EffectivePolicy, items: Iterable[CreditedHours], first_year: int
) -> ComplianceResult:
    """The result for the cycle of a cycle policy that begins in ``first_year``."""
    requirement = policy.hours.requirement
    if not isinstance(requirement, CycleRequirement):
        raise ComplianceError(
            "policy",
            f"policy {policy.code} requires {requirement.total} 学时 every year, not per cycle: "
            "use assess",
        )
    start = requirement.cycle_start(first_year)
    if start is not None and start != first_year:
        raise ComplianceError(
            "first_year",
            f"cycles of policy {policy.code} start in {requirement.anchor_year} and every "
            f"{requirement.years} years after; {first_year} falls in the cycle starting {start}",
        )
    years = tuple(range(first_year, first_year + requirement.years))
    return _assess_period(policy, _checked(policy, items), years)


def _checked(policy: EffectivePolicy, items: Iterable[CreditedHours]) -> tuple[CreditedHours, ...]:
    credited = tuple(items)
    categories, modes = set(policy.hours.categories), set(policy.hours.modes)
    for i, item in enumerate(credited):
        if item.category not in categories:
            raise ComplianceError(
                f"items[{i}].category",
                f"category {item.category!r} is unknown to policy {policy.code}; known: "
                f"{', '.join(policy.hours.categories)}",
            )
        if item.mode not in modes:
            raise ComplianceError(
                f"items[{i}].mode",
                f"mode {item.mode!r} is unknown to policy {policy.code}; known: "
                f"{', '.join(policy.hours.modes)}",
            )
    return credited


def _assess_period(
    policy: EffectivePolicy, items: tuple[CreditedHours, ...], years: tuple[int, ...]
) -> ComplianceResult:
    hours = policy.hours
    claimed = dict.fromkeys(hours.categories, _ZERO)
    cuts: list[CapApplied] = []
    for year in years:
        in_year = [item for item in items if item.year == year]
        for item in in_year:
            claimed[item.category] += item.hours
        for cap in hours.online_caps:
            capped = sum(
                (i.hours for i in in_year if cap.applies_to(i.category, i.mode, i.base_level)),
                _ZERO,
            )
            limit = cap.max_hours_per_year.quantize(HOURS_QUANTUM)
            if capped > limit:
                cuts.append(
                    CapApplied(
                        year=year,
                        category=cap.category,
                        mode=cap.mode,
                        cap=limit,
                        claimed=capped,
                        counted=limit,
                        not_counted=capped - limit,
                    )
                )
    counted = dict(claimed)
    for cut in cuts:
        counted[cut.category] -= cut.not_counted

    required = hours.requirement.total.quantize(HOURS_QUANTUM)
    total = sum(counted.values(), _ZERO)
    checks = tuple(
        _category_check(m.category, counted[m.category], m.required_of(required))
        for m in hours.category_minimums
    )
    total_met = total >= required
    met = total_met and all(check.met for check in checks)
    period: Literal["year", "cycle"] = (
        "cycle" if isinstance(hours.requirement, CycleRequirement) else "year"
    )
    zh, en = _summaries(period, years, total, required, checks, cuts, met)
    return ComplianceResult(
        policy_code=policy.code,
        policy_version=policy.version,
        period=period,
        years=years,
        required=required,
        claimed=sum(claimed.values(), _ZERO),
        total=total,
        total_met=total_met,
        shortfall=max(required - total, _ZERO),
        by_category=MappingProxyType(counted),
        category_checks=checks,
        caps_applied=tuple(cuts),
        met=met,
        summary_zh=zh,
        summary_en=en,
    )


def _category_check(category: str, counted: Decimal, required: Decimal) -> CategoryCheck:
    return CategoryCheck(
        category=category,
        counted=counted,
        required=required,
        met=counted >= required,
        shortfall=max(required - counted, _ZERO),
    )


def _fmt(value: Decimal) -> str:
    value = value.quantize(HOURS_QUANTUM)
    whole = value.to_integral_value()
    return str(whole) if value == whole else str(value)


def _summaries(
    period: Literal["year", "cycle"],
    years: tuple[int, ...],
    total: Decimal,
    required: Decimal,
    checks: tuple[CategoryCheck, ...],
    cuts: Sequence[CapApplied],
    met: bool,
) -> tuple[str, str]:
    if period == "year":
        label_zh, label_en = f"{years[0]}年", f"{years[0]}"
    else:
        label_zh = f"{years[0]}–{years[-1]}年（{len(years)}年周期）"
        label_en = f"{years[0]}–{years[-1]} ({len(years)}-year cycle)"

    total_met = total >= required
    gap = _fmt(required - total)
    zh = [
        f"{label_zh}：{_fmt(total)}/{_fmt(required)} 学时 "
        + ("✓" if total_met else f"✗（差 {gap}）")
    ]
    en = [
        f"{label_en}: {_fmt(total)}/{_fmt(required)} hours "
        + ("✓" if total_met else f"✗ (short by {gap})")
    ]
    for check in checks:
        name_en = f"{check.category} ({_CATEGORY_EN.get(check.category, check.category)})"
        if check.met:
            zh.append(f"{check.category} {_fmt(check.counted)} ≥ {_fmt(check.required)} ✓")
            en.append(f"{name_en} {_fmt(check.counted)} ≥ {_fmt(check.required)} ✓")
        else:
            short = _fmt(check.shortfall)
            zh.append(
                f"{check.category} {_fmt(check.counted)} < {_fmt(check.required)} ✗（差 {short}）"
            )
            en.append(
                f"{name_en} {_fmt(check.counted)} < {_fmt(check.required)} ✗ (short by {short})"
            )
    for cut in cuts:
        when_zh = f"{cut.year}年" if period == "cycle" else ""
        when_en = f" in {cut.year}" if period == "cycle" else ""
        mode_en = _MODE_EN.get(cut.mode, cut.mode)
        zh.append(
            f"{when_zh}{cut.mode}{cut.category}超出年度上限 {_fmt(cut.cap)} 学时的 "
            f"{_fmt(cut.not_counted)} 学时不计入"
        )
        en.append(
            f"{_fmt(cut.not_counted)} {mode_en} ({cut.mode}) {cut.category} hours{when_en} above "
            f"the yearly cap of {_fmt(cut.cap)} not counted"
        )
    zh.append("达标" if met else "未达标")
    en.append("requirement met" if met else "requirement NOT met")
    return "；".join(zh), "; ".join(en)
