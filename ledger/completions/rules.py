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

import json
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final, NamedTuple

from ledger.completions.intake import COLUMNS, Cell, RawRow, header_of
from ledger.identity import EARLIEST_BIRTH_DATE, IdentityError, validate_id_number
from ledger.policy import EffectivePolicy

__all__ = [
    "PASSING_RESULTS",
    "OperatingDays",
    "RowError",
    "RowIn",
    "check_against_class",
    "normalise_row",
    "normalise_rows",
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


#: A JSON string literal as the standard library writes it with ``ensure_ascii=False`` (the C
#: encoder): quote, backslash and C0 controls escaped, everything else as is.
_json_text: Final[Callable[[str], str]] = json.encoder.encode_basestring


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


class RowIn(NamedTuple):
    """One valid row, typed.  ``canonical()`` is what the batch digest (and a base's signature)
    covers: every value as a string, optional empty values left out.

    A named tuple rather than a frozen dataclass: as immutable, and ten times cheaper to
    build (a frozen dataclass sets each of its 18 fields through ``object.__setattr__``),
    which counts at 10,000 rows a batch."""

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

    def details_json(self) -> bytes:
        """`sealed_plaintext` of `details` (the bytes sealed with the record)."""
        e = _json_text
        return (
            f'{{"employer":{e(self.employer)},"title_field":{e(self.title_field)},'
            f'"place":{e(self.place)},"certificate_number":{e(self.certificate_number)},'
            f'"evaluation":{e(self.evaluation)}}}'
        ).encode()

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
        try:
            exact = number.quantize(quantum, rounding="ROUND_DOWN")
        except InvalidOperation:
            # More digits than the decimal context holds (e.g. 1e27): no count of 学时 or yuan.
            self.fail(
                field, "field.number", f"数值过大：“{text}” / the number is too large; found {text}"
            )
            return None
        if number != exact:
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


def _score_text(score: Decimal) -> str:
    """A score as written: 90, 87.5 (``Decimal.normalize`` alone would give 9E+1)."""
    return format(score.normalize(), "f")


def _formula_like(text: str) -> bool:
    # What a spreadsheet would evaluate when the file is opened again (CSV injection).  A
    # leading '-' is a formula unless a number follows: "-1" is a number the rules refuse.
    first = text[0]
    if first in "=+@\t\r":
        return True
    return first == "-" and len(text) > 1 and not (text[1].isdigit() or text[1] == ".")


# -- the fast path ------------------------------------------------------------------------
#
# Nearly every row of a real batch is plain: text cells that need no folding beyond NFKC,
# ISO dates, whole or one-decimal hours, a fee in yuan.  `_plain_row` reads such a row with a
# few C-level string operations per cell and *no* error reporting: whenever a cell is not
# obviously valid it answers None and `normalise_row` reads the row again with the full rules
# above, which decide and word every error.  So the fast path can only ever accept rows the
# full rules accept, with the same values (``tests/test_batch_speedups.py`` checks both on
# generated and tricky rows).

#: First characters that make the full rules look closer (formula-like, or "-…").
_FORMULA_FIRST: Final = frozenset("=+@\t\r-")
_HOURS = re.compile(r"([0-9]{1,8})(?:\.([0-9]))?")
_FEE = re.compile(r"([0-9]{1,12})(?:\.([0-9]{1,2}))?")
_EVALUATION = re.compile(r"[0-9]{1,3}(?:\.[0-9])?")
_ASCII_DIGIT = re.compile(r"[0-9]")
_NORMALISE = unicodedata.normalize
_PASSING: Final = frozenset(PASSING_RESULTS)
_SPECIAL_KEYS: Final = ("__unknown__", "__extra__")


def _plain_text(value: Cell, limit: int) -> str | None:
    """The folded text of a cell that passes every text rule ("" when empty), or None."""
    if value is None:
        return ""
    if type(value) is not str:
        return None
    text = value.strip()
    if not text:
        return text
    if not text.isascii():
        text = _NORMALISE("NFKC", text)
    if not text or text[0] in _FORMULA_FIRST or len(text) > limit or not text.isprintable():
        return None
    return text


def _plain_day(value: Cell) -> date | None:
    if type(value) is str:
        text = value.strip()
        if not text or not text.isascii() or not text[0].isdigit() or not text.isprintable():
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            return None
    if type(value) is date:
        return value
    if type(value) is datetime:
        return value.date()
    return None


#: Check character for each value of (1 - 2·Σ) mod 11 (0-9, then 10 → X).
_ID_CHECK: Final = "0123456789X"
_ID_LAST: Final = frozenset("0123456789X")


def _plain_id(text: str, today: date) -> str | None:
    """``text`` when it is, as it stands, a valid 18-character ID number (GB 11643: check
    character, real birth date not after ``today`` nor before the earliest accepted) — what
    `validate_id_number` would return for it; None for anything else, which that function
    then judges (lower-case x, full-width digits and every error included)."""
    if len(text) != 18 or not text.isascii() or text[17] not in _ID_LAST:
        return None
    head = text[:17]
    if not head.isdigit():
        return None
    # python-stdnum's formula (cn.ric): weights 2^(17-i) mod 11 are powers of 13 mod 11, so
    # the weighted sum is the digits read in base 13.
    if _ID_CHECK[(1 - 2 * int(head, 13)) % 11] != text[17]:
        return None
    try:
        born = date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        return None
    if born > today or born < EARLIEST_BIRTH_DATE:
        return None
    return text


_CLASS_FIELDS: Final = (
    "year",
    "category",
    "class_code",
    "class_title",
    "mode",
    "start",
    "end",
    "hours",
    "result",
    "fee_yuan",
)
_ClassCells = tuple[int, str, str, str, str, date, date, int, str, int]


def _plain_class(cells: tuple[Cell, ...]) -> _ClassCells | None:
    """The cells of `_CLASS_FIELDS` typed when all are plainly valid, or None."""
    value, category, class_code, class_title, mode, start_cell, end_cell, hours, result, fee = cells
    if type(value) is int:
        year = value
    elif type(value) is str:
        text = value.strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 9):
            return None
        year = int(text)
    else:
        return None
    if not 2000 <= year <= 2100:
        return None
    category = _plain_text(category, _MAX_TEXT["category"])
    class_code = _plain_text(class_code, _MAX_TEXT["class_code"])
    class_title = _plain_text(class_title, _MAX_TEXT["class_title"])
    mode = _plain_text(mode, _MAX_TEXT["mode"])
    if not category or not class_code or not mode or class_title is None:
        return None
    start = _plain_day(start_cell)
    end = _plain_day(end_cell)
    if start is None or end is None or start > end:
        return None
    if type(hours) is int:
        if not 0 < hours < 10**8:
            return None
        hours_tenths = hours * 10
    elif type(hours) is str:
        match = _HOURS.fullmatch(hours.strip())
        if match is None:
            return None
        whole, tenth = match.groups()
        hours_tenths = int(whole) * 10 + (int(tenth) if tenth else 0)
        if hours_tenths <= 0:
            return None
    else:
        return None
    if type(result) is not str:
        return None
    result = result.strip()
    if result not in _PASSING:
        return None
    if fee is None:
        fee_fen = 0
    elif type(fee) is int:
        if not 0 <= fee < 10**12:
            return None
        fee_fen = fee * 100
    elif type(fee) is str:
        text = fee.strip()
        if text:
            match = _FEE.fullmatch(text)
            if match is None:
                return None
            yuan, fen = match.groups()
            fee_fen = int(yuan) * 100 + (int(fen.ljust(2, "0")) if fen else 0)
        else:
            fee_fen = 0
    else:
        return None
    return (
        year,
        category,
        class_code,
        class_title,
        mode,
        start,
        end,
        hours_tenths,
        result,
        fee_fen,
    )


def _plain_row(
    raw: RawRow, today: date, memo: dict[Any, _ClassCells] | None = None
) -> RowIn | None:
    """``raw`` typed when every cell is plainly valid; None when any cell needs the full rules."""
    cells = raw.cells
    if _SPECIAL_KEYS[0] in cells or _SPECIAL_KEYS[1] in cells:
        return None
    get = cells.get
    # The name keeps its characters (no NFKC), has no digit, and is stored NFC.
    value = get("name")
    if type(value) is not str:
        return None
    name = value.strip()
    if (
        not name
        or name[0] in _FORMULA_FIRST
        or len(name) > _MAX_TEXT["name"]
        or not name.isprintable()
    ):
        return None
    if name.isascii():
        if _ASCII_DIGIT.search(name):
            return None
    elif any(map(str.isdigit, name)):
        return None
    value = get("id_number")
    if type(value) is not str:
        return None
    id_number = _plain_id(value.strip(), today)
    if id_number is None:
        return None
    employer = _plain_text(get("employer"), _MAX_TEXT["employer"])
    title_field = _plain_text(get("title_field"), _MAX_TEXT["title_field"])
    place = _plain_text(get("place"), _MAX_TEXT["place"])
    certificate_number = _plain_text(get("certificate_number"), _MAX_TEXT["certificate_number"])
    if not employer or title_field is None or place is None or certificate_number is None:
        return None
    value = get("evaluation")
    if value is None:
        evaluation = ""
    elif type(value) is str:
        text = value.strip()
        if text:
            if _EVALUATION.fullmatch(text) is None:
                return None
            score = Decimal(text)
            if score > 100:
                return None
            evaluation = _score_text(score)
        else:
            evaluation = ""
    else:
        return None
    # The class's cells are the same on most rows of a batch: read once per distinct set of
    # values (and of their types: 1, 1.0 and True are equal keys but not equal cells).
    shared = tuple(map(get, _CLASS_FIELDS))
    key = (shared, tuple(map(type, shared)))
    facts = memo.get(key) if memo is not None else None
    if facts is None:
        facts = _plain_class(shared)
        if facts is None:
            return None
        if memo is not None:
            memo[key] = facts
    year, category, class_code, class_title, mode, start, end, hours_tenths, result, fee = facts
    return RowIn(
        raw.number,
        _NORMALISE("NFC", name),
        id_number,
        employer,
        title_field,
        year,
        category,
        class_code,
        class_title,
        mode,
        start,
        end,
        place,
        hours_tenths,
        result,
        certificate_number,
        fee,
        evaluation,
    )


def normalise_row(raw: RawRow, *, today: date) -> RowIn | list[RowError]:
    """Typed values of ``raw``, or every error found in it."""
    plain = _plain_row(raw, today)
    if plain is not None:
        return plain
    return _normalise_row(raw, today=today)


def normalise_rows(raws: Sequence[RawRow], *, today: date) -> tuple[list[RowIn], list[RowError]]:
    """`normalise_row` of every row (the valid rows, and every error of the others), reading
    the class cells that rows share once."""
    memo: dict[Any, _ClassCells] = {}
    rows: list[RowIn] = []
    errors: list[RowError] = []
    for raw in raws:
        row = _plain_row(raw, today, memo)
        if row is not None:
            rows.append(row)
            continue
        result = _normalise_row(raw, today=today)
        if isinstance(result, list):
            errors.extend(result)
        else:
            rows.append(result)
    return rows, errors


def _normalise_row(raw: RawRow, *, today: date) -> RowIn | list[RowError]:
    """The full rules: typed values of ``raw``, or every error found in it."""
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
        evaluation="" if evaluation is None else _score_text(evaluation),
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
