"""The rules a completion row must satisfy, each with a stable code and a Chinese message.

Two stages, both pure:

* `normalise_row` reads one raw row (whatever the source) into typed values: required cells,
  formula-looking cells, the ID number (GB 11643 check character and birth date), numbers,
  dates, the assessment result;
* `check_against_class` judges the typed row against the approved class, the jurisdiction
  policy and the base's recognition history: category and mode, dates inside the class and the
  plan year, hours within the class and the daily cap, the fee standard, and that the base was
  recognised on every training day.

Every failure is a `RowError` (row, field, column, rule, message); the caller gathers all of
them so the clerk fixes the file once.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from ledger.completions.intake import COLUMNS, Cell, RawRow, header_of
from ledger.identity import IdentityError, validate_id_number
from ledger.policy import EffectivePolicy

__all__ = [
    "PASSING_RESULTS",
    "OperatingDays",
    "RowError",
    "RowIn",
    "check_against_class",
    "normalise_row",
]

#: Results that make a completion; a failed assessment earns no 学时 and is not posted.
PASSING_RESULTS: Final = ("合格", "良好", "优秀", "通过")
_MAX_TEXT: Final = {
    "name": 50,
    "employer": 200,
    "title_field": 100,
    "class_code": 32,
    "class_title": 200,
    "place": 200,
    "certificate_number": 64,
    "category": 64,
    "mode": 64,
}
_DATE_FORMATS: Final = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d", "%Y年%m月%d日")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class RowError:
    row: int
    field: str
    rule: str
    message: str

    @property
    def column(self) -> str:
        return header_of(self.field)

    def to_json(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "field": self.field,
            "column": self.column,
            "rule": self.rule,
            "message": self.message,
        }


@dataclass(frozen=True)
class RowIn:
    """One valid row, typed.  ``canonical()`` is what the batch digest (and a base's signature)
    covers: every value as a string, optional empty values left out."""

    row: int
    name: str
    id_number: str
    employer: str
    title_field: str
    year: int
    category: str
    class_code: str
    class_title: str
    mode: str
    start: date
    end: date
    place: str
    hours_tenths: int
    result: str
    certificate_number: str
    fee_fen: int
    evaluation: str

    @property
    def hours(self) -> str:
        return f"{self.hours_tenths // 10}.{self.hours_tenths % 10}"

    @property
    def fee_yuan(self) -> str:
        return f"{self.fee_fen // 100}.{self.fee_fen % 100:02d}"

    def canonical(self) -> dict[str, str]:
        doc = {
            "name": self.name,
            "id_number": self.id_number,
            "employer": self.employer,
            "title_field": self.title_field,
            "year": str(self.year),
            "category": self.category,
            "class_code": self.class_code,
            "class_title": self.class_title,
            "mode": self.mode,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "place": self.place,
            "hours": self.hours,
            "result": self.result,
            "certificate_number": self.certificate_number,
            "fee_yuan": self.fee_yuan,
            "evaluation": self.evaluation,
        }
        return {k: v for k, v in doc.items() if v != ""}

    def details(self) -> dict[str, str]:
        """Personal details sealed with the record (never in the ledger)."""
        return {
            "employer": self.employer,
            "title_field": self.title_field,
            "place": self.place,
            "certificate_number": self.certificate_number,
            "evaluation": self.evaluation,
        }


class _Row:
    """Collects the errors of one row while its cells are read."""

    def __init__(self, raw: RawRow) -> None:
        self.raw = raw
        self.errors: list[RowError] = []

    def fail(self, field: str, rule: str, message: str) -> None:
        self.errors.append(RowError(self.raw.number, field, rule, message))

    def cell(self, field: str) -> Cell:
        return self.raw.cells.get(field)

    def text(self, field: str, *, required: bool, fold: bool = True) -> str:
        value = self.cell(field)
        if value is None:
            text = ""
        elif isinstance(value, str):
            if type(value) is not str:  # a JSON value of an unsupported type
                self.fail(
                    field, "field.type", f"应为文本，实为 {value} / expected text, found {value}"
                )
                return ""
            text = value.strip()
        elif isinstance(value, float) and value.is_integer():
            text = str(int(value))
        else:
            text = str(value)
        # Full-width digits and letters (common from Chinese input methods) fold to ASCII;
        # names keep their exact characters (fold=False).
        if fold and not text.isascii():
            text = unicodedata.normalize("NFKC", text)
        # After folding: a full-width '＝' is as much a formula to Excel as '='.
        if text and _formula_like(text):
            self.fail(
                field,
                "cell.formula",
                f"内容以“{text[0]}”开头，像是公式，已拒绝 / the cell starts with {text[0]!r} and "
                "looks like a formula; formulas are refused (write the value itself)",
            )
            return ""
        if not text.isprintable() and _CONTROL.search(text):
            self.fail(field, "field.control", "含有控制字符 / contains control characters")
            return ""
        if required and not text:
            self.fail(field, "field.required", f"“{header_of(field)}”为必填项 / required")
        limit = _MAX_TEXT.get(field)
        if limit is not None and len(text) > limit:
            self.fail(
                field,
                "field.too-long",
                f"最多{limit}个字符，实为{len(text)} / at most {limit} characters; found {len(text)}",
            )
        return text

    def decimal(self, field: str, places: int, *, required: bool) -> Decimal | None:
        value = self.cell(field)
        if isinstance(value, float | int) and not isinstance(value, bool):
            text = repr(value) if isinstance(value, float) else str(value)
        else:
            text = self.text(field, required=required)
            if not text:
                return None
        try:
            number = Decimal(text)
        except InvalidOperation:
            self.fail(
                field, "field.number", f"应为数字，实为“{text}” / expected a number; found {text!r}"
            )
            return None
        if not number.is_finite():
            self.fail(
                field, "field.number", f"应为数字，实为“{text}” / expected a number; found {text!r}"
            )
            return None
        quantum = Decimal(1).scaleb(-places)
        if number != number.quantize(quantum, rounding="ROUND_DOWN"):
            self.fail(
                field,
                "field.precision",
                f"最多{places}位小数，实为 {text} / at most {places} decimal places; found {text}",
            )
            return None
        return number

    def day(self, field: str) -> date | None:
        value = self.cell(field)
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            self.fail(
                field,
                "field.date",
                f"应为日期（YYYY-MM-DD），实为数字 {value}：请把该列设为日期或文本 / expected a "
                f"date (YYYY-MM-DD); found the number {value}",
            )
            return None
        text = self.text(field, required=True)
        if not text:
            return None
        try:
            return date.fromisoformat(text)  # the common case, in C
        except ValueError:
            pass
        for fmt in _DATE_FORMATS:
            try:
                return datetime.strptime(text, fmt).date()
            except ValueError:
                continue
        self.fail(
            field,
            "field.date",
            f"应为日期（YYYY-MM-DD），实为“{text}” / expected a date (YYYY-MM-DD); found {text!r}",
        )
        return None


def _formula_like(text: str) -> bool:
    # What a spreadsheet would evaluate when the file is opened again (CSV injection).  A
    # leading '-' is a formula unless a number follows: "-1" is a number the rules refuse.
    first = text[0]
    if first in "=+@\t\r":
        return True
    return first == "-" and len(text) > 1 and not (text[1].isdigit() or text[1] == ".")


def normalise_row(raw: RawRow, *, today: date) -> RowIn | list[RowError]:
    """Typed values of ``raw``, or every error found in it."""
    r = _Row(raw)
    if "__unknown__" in raw.cells:
        accepted = ", ".join(c.key for c in COLUMNS)
        r.fail(
            str(raw.cells["__unknown__"]),
            "field.unknown",
            f"未知字段 / unknown field; accepted fields: {accepted}",
        )
    if "__extra__" in raw.cells:
        r.fail("-", "row.extra-cells", str(raw.cells["__extra__"]))
    name = r.text("name", required=True, fold=False)
    if name and any(ch.isdigit() for ch in name):
        r.fail("name", "name.digits", f"姓名不应含数字：“{name}” / a name has no digits")
    id_cell = r.cell("id_number")
    id_number = ""
    if isinstance(id_cell, int | float) and not isinstance(id_cell, bool):
        r.fail(
            "id_number",
            "id.excel-number",
            "身份证号被存成了数字（Excel只保留15位有效数字，号码已损坏）：请把该列设为文本后重新"
            "输入 / the ID number was stored as a number, which Excel truncates to 15 digits; "
            "format the column as text and type it again",
        )
    else:
        text = r.text("id_number", required=True)
        if text:
            try:
                id_number = validate_id_number(text, today=today)
            except IdentityError as exc:
                r.fail("id_number", exc.code, str(exc).removeprefix(f"{exc.field}: "))
    employer = r.text("employer", required=True)
    title_field = r.text("title_field", required=False)
    year_value = r.decimal("year", 0, required=True)
    year = int(year_value) if year_value is not None else 0
    if year_value is not None and not 2000 <= year <= 2100:
        r.fail("year", "year.range", f"年度应在2000–2100之间，实为{year} / found {year}")
    category = r.text("category", required=True)
    class_code = r.text("class_code", required=True)
    class_title = r.text("class_title", required=False)
    mode = r.text("mode", required=True)
    start = r.day("start")
    end = r.day("end")
    if start and end and start > end:
        r.fail(
            "end",
            "dates.order",
            f"结束日期{end}早于开始日期{start} / the end {end} is before the start {start}",
        )
    place = r.text("place", required=False)
    hours = r.decimal("hours", 1, required=True)
    if hours is not None and hours <= 0:
        r.fail("hours", "hours.positive", f"学时应大于0，实为{hours} / must be > 0; found {hours}")
    result = r.text("result", required=True)
    if result and result not in PASSING_RESULTS:
        r.fail(
            "result",
            "result.unknown" if result != "不合格" else "result.not-passed",
            f"考核结果应为{'、'.join(PASSING_RESULTS)}之一，实为“{result}”（未通过考核的不登记学时）"
            f" / expected one of {PASSING_RESULTS}; found {result!r}",
        )
    certificate_number = r.text("certificate_number", required=False)
    fee = r.decimal("fee_yuan", 2, required=False)
    if fee is not None and fee < 0:
        r.fail("fee_yuan", "fee.negative", f"收费不能为负数，实为{fee} / found {fee}")
    evaluation = r.decimal("evaluation", 1, required=False)
    if evaluation is not None and not 0 <= evaluation <= 100:
        r.fail("evaluation", "evaluation.range", f"效果评估应在0–100之间，实为{evaluation}")
    if r.errors:
        return r.errors
    assert start is not None and end is not None and hours is not None
    return RowIn(
        row=raw.number,
        name=unicodedata.normalize("NFC", name),
        id_number=id_number,
        employer=employer,
        title_field=title_field,
        year=year,
        category=category,
        class_code=class_code,
        class_title=class_title,
        mode=mode,
        start=start,
        end=end,
        place=place,
        hours_tenths=int(hours * 10),
        result=result,
        certificate_number=certificate_number,
        fee_fen=int((fee or Decimal(0)) * 100),
        evaluation="" if evaluation is None else str(evaluation.normalize()),
    )


@dataclass(frozen=True)
class OperatingDays:
    """The days on which a base was recognised (may train): half-open date ranges."""

    ranges: tuple[tuple[date, date | None], ...]

    @classmethod
    def from_events(
        cls, events: Sequence[tuple[date, str]], operating: frozenset[str]
    ) -> OperatingDays:
        """``events``: (local date, status entered) in order.  A status entered on a day
        governs that day (recognised on 3 March: may train on 3 March; revoked on 3 March: may
        not)."""
        ranges: list[tuple[date, date | None]] = []
        begin: date | None = None
        for day, status in events:
            if status in operating and begin is None:
                begin = day
            elif status not in operating and begin is not None:
                if day > begin:
                    ranges.append((begin, day))
                begin = None
        if begin is not None:
            ranges.append((begin, None))
        return cls(tuple(ranges))

    def covers(self, start: date, end: date) -> bool:
        return any(b <= start and (e is None or end < e) for b, e in self.ranges)

    def describe(self) -> str:
        if not self.ranges:
            return "从未被认定 / never recognised"
        return "；".join(
            f"{b}–{'' if e is None else e - timedelta(days=1)}" for b, e in self.ranges
        )


@dataclass(frozen=True)
class ClassFacts:
    """What a row is judged against (from the approved plan)."""

    code: str
    title: str
    category: str
    mode: str
    hours_tenths: int
    start: date
    end: date
    fee_fen: int


def check_against_class(
    row: RowIn,
    cls: ClassFacts,
    policy: EffectivePolicy,
    operating: OperatingDays,
    base_level: str | None,
) -> list[RowError]:
    errors: list[RowError] = []

    def fail(field: str, rule: str, message: str) -> None:
        errors.append(RowError(row.row, field, rule, message))

    hours = policy.hours
    if row.category not in hours.categories:
        fail(
            "category",
            "category.unknown",
            f"科目类别“{row.category}”不在{policy.name}政策中（可选：{'、'.join(hours.categories)}）"
            f" / unknown category; the policy knows {list(hours.categories)}",
        )
    elif row.category != cls.category:
        fail(
            "category",
            "category.mismatch",
            f"项目{cls.code}在计划中的类别为“{cls.category}”，实为“{row.category}” / the class is "
            f"{cls.category!r} in the plan; found {row.category!r}",
        )
    if row.mode not in hours.modes:
        fail(
            "mode",
            "mode.unknown",
            f"形式“{row.mode}”不在政策中（可选：{'、'.join(hours.modes)}） / unknown mode; the "
            f"policy knows {list(hours.modes)}",
        )
    elif row.mode != cls.mode:
        fail(
            "mode",
            "mode.mismatch",
            f"项目{cls.code}在计划中的形式为“{cls.mode}”，实为“{row.mode}”",
        )
    if row.class_title and unicodedata.normalize("NFKC", cls.title) != row.class_title:
        fail(
            "class_title",
            "class.title-mismatch",
            f"项目{cls.code}在计划中的名称为“{cls.title}”，实为“{row.class_title}”（编号是否填错？）",
        )
    if row.start < cls.start or row.end > cls.end:
        fail(
            "start" if row.start < cls.start else "end",
            "dates.outside-class",
            f"培训日期{row.start}–{row.end}超出项目{cls.code}的日期{cls.start}–{cls.end} / the "
            f"dates fall outside the class's {cls.start}–{cls.end}",
        )
    if row.start.year != row.year or row.end.year != row.year:
        rule = "dates.cross-year" if not hours.cross_year_records_allowed else "dates.outside-year"
        if row.start.year != row.end.year and not hours.cross_year_records_allowed:
            message = f"{policy.name}不允许跨年记录（不跨年记录）：{row.start}–{row.end}"
        else:
            message = f"培训日期{row.start}–{row.end}不在{row.year}年度内 / outside the plan year"
        fail("end" if row.start.year == row.year else "start", rule, message)
    if row.hours_tenths > cls.hours_tenths:
        fail(
            "hours",
            "hours.above-class",
            f"学时{row.hours}超过项目{cls.code}的计划学时{cls.hours_tenths / 10} / more than the "
            "class's planned hours",
        )
    days = (row.end - row.start).days + 1
    if hours.daily_cap_hours is not None:
        cap_tenths = int(hours.daily_cap_hours * 10) * days
        if row.hours_tenths > cap_tenths:
            fail(
                "hours",
                "hours.daily-cap",
                f"{days}天最多{cap_tenths / 10}学时（每天不超过{hours.daily_cap_hours}学时），实为"
                f"{row.hours} / at most {hours.daily_cap_hours} per day; {days} day(s) allow "
                f"{cap_tenths / 10}",
            )
    for cap in hours.online_caps:
        if cap.applies_to(row.category, row.mode, base_level):
            limit = int(cap.max_hours_per_year * 10)
            if row.hours_tenths > limit:
                fail(
                    "hours",
                    "hours.online-cap",
                    f"{cap.category}{cap.mode}学时每人每年最多{cap.max_hours_per_year}，本条为{row.hours}",
                )
    if row.fee_fen > cls.fee_fen:
        fail(
            "fee_yuan",
            "fee.above-standard",
            f"收费{row.fee_yuan}元高于公布的收费标准{cls.fee_fen / 100:.2f}元 / above the "
            "published fee standard",
        )
    if not operating.covers(row.start, row.end):
        fail(
            "start",
            "base.not-recognised",
            f"培训日期{row.start}–{row.end}基地不在认定有效期内（有效期：{operating.describe()}）"
            " / the base was not recognised on every training day",
        )
    return errors


def first_error_fields(errors: Sequence[RowError]) -> Mapping[int, str]:
    """Row → first failing field (for summaries)."""
    out: dict[int, str] = {}
    for e in errors:
        out.setdefault(e.row, e.field)
    return out
