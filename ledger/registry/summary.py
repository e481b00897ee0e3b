"""A base's annual execution summary (年度计划执行情况总结): computed, then rendered as JSON,
CSV or PDF.  Pure: rows in, summary out; rendering does no I/O either.

The summary is computed from completion *rows* (one per person per class, as the completions
feature records them) and the classes of the approved plan.  Definitions:

* **trainees (distinct people, 名)**: distinct ``subject`` commitments over all rows;
* **person-times (人次)**: distinct (subject, class) pairs — one person in three classes counts
  three times; two rows of the same person in the same class count once;
* **person-hours (培训学时)**: the sum of the rows' hours, split by category and by mode;
* **classes run**: planned classes with at least one row; rows for a class not in the plan are
  listed as ``unplanned_classes`` (they should never exist, and are shown if they do);
* **minimum met**: the count the policy names (``trainee_count_mode``: distinct people
  nationally, person-times in Panzhihua) reaches ``min_trainees_per_year``.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from ledger.policy import EffectivePolicy

__all__ = [
    "ClassLine",
    "CompletionRow",
    "ExecutionSummary",
    "PlannedClass",
    "summarise",
    "to_csv",
]

_TENTH: Final = Decimal("0.1")


@dataclass(frozen=True)
class CompletionRow:
    """One completion as the summary needs it: no personal data, only the subject commitment."""

    subject: str
    class_code: str
    category: str
    mode: str
    hours: Decimal


@dataclass(frozen=True)
class PlannedClass:
    code: str
    title: str
    category: str
    mode: str
    hours: Decimal
    capacity: int


@dataclass(frozen=True)
class ClassLine:
    code: str
    title: str
    category: str
    mode: str
    planned: bool
    planned_hours: Decimal | None
    capacity: int | None
    trainees: int
    person_hours: Decimal


@dataclass(frozen=True)
class ExecutionSummary:
    base: str
    base_name: str
    year: int
    policy: str
    trainee_count_mode: str
    min_trainees_per_year: int
    trainees: int
    person_times: int
    counted_trainees: int
    minimum_met: bool
    person_hours: Decimal
    person_hours_by_category: dict[str, Decimal]
    person_hours_by_mode: dict[str, Decimal]
    classes_planned: int
    classes_run: int
    classes_not_run: tuple[str, ...]
    unplanned_classes: tuple[str, ...]
    classes: tuple[ClassLine, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: hours as fixed-point strings (exact), counts as integers."""
        return {
            "base": self.base,
            "base_name": self.base_name,
            "year": self.year,
            "policy": self.policy,
            "trainee_count_mode": self.trainee_count_mode,
            "min_trainees_per_year": self.min_trainees_per_year,
            "trainees": self.trainees,
            "person_times": self.person_times,
            "counted_trainees": self.counted_trainees,
            "minimum_met": self.minimum_met,
            "person_hours": str(self.person_hours),
            "person_hours_by_category": {
                k: str(v) for k, v in self.person_hours_by_category.items()
            },
            "person_hours_by_mode": {k: str(v) for k, v in self.person_hours_by_mode.items()},
            "classes_planned": self.classes_planned,
            "classes_run": self.classes_run,
            "classes_not_run": list(self.classes_not_run),
            "unplanned_classes": list(self.unplanned_classes),
            "classes": [
                {
                    "code": c.code,
                    "title": c.title,
                    "category": c.category,
                    "mode": c.mode,
                    "planned": c.planned,
                    "planned_hours": None if c.planned_hours is None else str(c.planned_hours),
                    "capacity": c.capacity,
                    "trainees": c.trainees,
                    "person_hours": str(c.person_hours),
                }
                for c in self.classes
            ],
        }


def _q(value: Decimal) -> Decimal:
    return value.quantize(_TENTH)


def summarise(
    *,
    base: str,
    base_name: str,
    year: int,
    policy: EffectivePolicy,
    planned: Sequence[PlannedClass],
    rows: Iterable[CompletionRow],
) -> ExecutionSummary:
    """Compute the summary (see the module docstring for the definitions)."""
    people: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    by_category: dict[str, Decimal] = {c: Decimal(0) for c in policy.hours.categories}
    by_mode: dict[str, Decimal] = {m: Decimal(0) for m in policy.hours.modes}
    per_class_people: dict[str, set[str]] = defaultdict(set)
    per_class_hours: dict[str, Decimal] = defaultdict(Decimal)
    seen_meta: dict[str, tuple[str, str]] = {}
    total = Decimal(0)
    for row in rows:
        people.add(row.subject)
        pairs.add((row.subject, row.class_code))
        by_category[row.category] = by_category.get(row.category, Decimal(0)) + row.hours
        by_mode[row.mode] = by_mode.get(row.mode, Decimal(0)) + row.hours
        per_class_people[row.class_code].add(row.subject)
        per_class_hours[row.class_code] += row.hours
        seen_meta.setdefault(row.class_code, (row.category, row.mode))
        total += row.hours

    planned_codes = {c.code for c in planned}
    lines = [
        ClassLine(
            code=c.code,
            title=c.title,
            category=c.category,
            mode=c.mode,
            planned=True,
            planned_hours=_q(c.hours),
            capacity=c.capacity,
            trainees=len(per_class_people.get(c.code, ())),
            person_hours=_q(per_class_hours.get(c.code, Decimal(0))),
        )
        for c in planned
    ]
    unplanned = tuple(sorted(set(per_class_people) - planned_codes))
    for code in unplanned:
        category, mode = seen_meta[code]
        lines.append(
            ClassLine(
                code=code,
                title="",
                category=category,
                mode=mode,
                planned=False,
                planned_hours=None,
                capacity=None,
                trainees=len(per_class_people[code]),
                person_hours=_q(per_class_hours[code]),
            )
        )
    run = [c.code for c in planned if c.code in per_class_people]
    counted = len(people) if policy.trainee_count_mode == "distinct_people" else len(pairs)
    return ExecutionSummary(
        base=base,
        base_name=base_name,
        year=year,
        policy=f"{policy.code}@{policy.version}",
        trainee_count_mode=policy.trainee_count_mode,
        min_trainees_per_year=policy.min_trainees_per_year,
        trainees=len(people),
        person_times=len(pairs),
        counted_trainees=counted,
        minimum_met=counted >= policy.min_trainees_per_year,
        person_hours=_q(total),
        person_hours_by_category={k: _q(v) for k, v in by_category.items()},
        person_hours_by_mode={k: _q(v) for k, v in by_mode.items()},
        classes_planned=len(planned),
        classes_run=len(run),
        classes_not_run=tuple(c.code for c in planned if c.code not in per_class_people),
        unplanned_classes=unplanned,
        classes=tuple(lines),
    )


_COUNT_MODE_LABEL: Final = {"distinct_people": "名（不重复人数）", "person_times": "人次"}


def key_figures(s: ExecutionSummary) -> list[tuple[str, str]]:
    figures = [
        ("基地 base", f"{s.base_name} ({s.base})"),
        ("年度 year", str(s.year)),
        ("适用政策 policy", s.policy),
        ("培训人数（名） trainees", str(s.trainees)),
        ("培训人次 person-times", str(s.person_times)),
        (
            "年度最低培训量 minimum",
            f"{s.min_trainees_per_year} {_COUNT_MODE_LABEL.get(s.trainee_count_mode, s.trainee_count_mode)}",
        ),
        ("是否达标 minimum met", "是 yes" if s.minimum_met else "否 no"),
        ("培训总学时 person-hours", str(s.person_hours)),
        ("计划班次 classes planned", str(s.classes_planned)),
        ("已举办班次 classes run", str(s.classes_run)),
        ("未举办 not run", "、".join(s.classes_not_run) or "—"),
        ("计划外班次 unplanned", "、".join(s.unplanned_classes) or "—"),
    ]
    figures += [(f"科目学时 {k}", str(v)) for k, v in s.person_hours_by_category.items()]
    figures += [(f"形式学时 {k}", str(v)) for k, v in s.person_hours_by_mode.items()]
    return figures


CLASS_HEADER: Final = (
    "code 班次编号",
    "title 名称",
    "category 科目",
    "mode 形式",
    "planned 计划内",
    "planned_hours 计划学时",
    "capacity 计划人数",
    "trainees 人数",
    "person_hours 培训学时",
)


def class_cells(c: ClassLine) -> list[str]:
    return [
        c.code,
        c.title,
        c.category,
        c.mode,
        "是" if c.planned else "否",
        "" if c.planned_hours is None else str(c.planned_hours),
        "" if c.capacity is None else str(c.capacity),
        str(c.trainees),
        str(c.person_hours),
    ]


#: First characters that make a spreadsheet read a cell as a formula (OWASP "CSV injection").
_FORMULA_FIRST: Final = ("=", "+", "-", "@", "\t", "\r")


def _inert(cell: str) -> str:
    # A base names itself and its classes: "=HYPERLINK(…)" is its data, stored as given, but
    # must never run when the summary is opened in Excel.  A leading apostrophe makes it text.
    return "'" + cell if cell.startswith(_FORMULA_FIRST) else cell


def to_csv(summary: ExecutionSummary) -> str:
    """The summary as CSV: the key figures (two columns), a blank line, then one row per class.

    Starts with a UTF-8 byte-order mark so that spreadsheet programs read the Chinese text.
    Every cell that would start a formula is prefixed with ``'`` (:func:`_inert`).
    """
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["item 项目", "value 数值"])
    writer.writerows([_inert(k), _inert(v)] for k, v in key_figures(summary))
    writer.writerow([])
    writer.writerow(CLASS_HEADER)
    writer.writerows([_inert(x) for x in class_cells(c)] for c in summary.classes)
    return out.getvalue()
