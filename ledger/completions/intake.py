"""Reading a batch as a base's clerk sends it: JSON, CSV (UTF-8 or Excel's GBK) or XLSX.

Everything here turns bytes into numbered raw rows keyed by the canonical field names in
`COLUMNS`; the rules (``ledger.completions.rules``) then judge each value.  A file that cannot be
read at all is refused whole with an `IntakeError` naming what was expected and what was found;
problems of single cells are left to the rules, which report every bad row at once.

Row numbers are what the clerk sees: the spreadsheet row (the header is row 1, so the first
record is row 2) for CSV and XLSX, and the 1-based position in ``records`` for JSON.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import json
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, Literal

from ledger.errors import FormatError, LedgerError

__all__ = [
    "COLUMNS",
    "Column",
    "IntakeError",
    "RawBatch",
    "RawRow",
    "parse_csv",
    "parse_json_body",
    "parse_json_records",
    "parse_xlsx",
    "template_csv",
    "template_xlsx",
]

Source = Literal["json", "csv", "xlsx"]
Cell = str | int | float | date | None


class IntakeError(LedgerError):
    """The batch as a whole cannot be read.  ``code`` is stable; ``status`` the HTTP status."""

    def __init__(self, code: str, message: str, *, status: int = 400) -> None:
        self.code = code
        self.status = status
        super().__init__(message)


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    required: bool
    example: str
    note: str
    aliases: tuple[str, ...] = ()


COLUMNS: Final = (
    Column("name", "姓名", True, "张三", "与身份证一致 / as on the ID card"),
    Column(
        "id_number",
        "身份证号",
        True,
        "11010519491231002X",
        "18位，末位可为X；请将此列设为文本格式 / 18 characters; format the column as text",
        ("身份证号码", "公民身份号码"),
    ),
    Column("employer", "工作单位", True, "某市人民医院", "", ("单位",)),
    Column("title_field", "职称/专业", False, "主治医师/内科", "", ("职称", "专业")),
    Column("year", "年度", True, "2026", "计划年度 / plan year"),
    Column("category", "科目类别", True, "专业", "公需 / 专业 / 选修", ("类别",)),
    Column(
        "class_code",
        "项目编号",
        True,
        "2026-ZY-01",
        "年度计划中的班次编号 / class code in the approved plan",
        ("班次编号", "课程编号"),
    ),
    Column(
        "class_title",
        "项目名称",
        False,
        "临床新技术研修班",
        "可选；填写时须与计划一致 / optional; must match the plan",
        ("班次名称", "课程名称"),
    ),
    Column("mode", "形式", True, "面授", "面授 / 网络 / 会议 / 实践", ("培训形式",)),
    Column("start", "开始日期", True, "2026-03-02", "YYYY-MM-DD", ("起始日期",)),
    Column("end", "结束日期", True, "2026-03-03", "YYYY-MM-DD", ("截止日期",)),
    Column("place", "地点", False, "成都", "", ("培训地点",)),
    Column("hours", "学时", True, "16", "大于0，最多一位小数 / > 0, at most one decimal"),
    Column("result", "考核结果", True, "合格", "合格 / 良好 / 优秀 / 通过", ("考核情况",)),
    Column("certificate_number", "证书编号", False, "", "", ("结业证书编号",)),
    Column("fee_yuan", "收费（元）", False, "0", "不得高于公布的收费标准", ("收费", "费用")),
    Column("evaluation", "效果评估", False, "", "0–100，可选", ("评估得分",)),
)
_BY_KEY: Final = {c.key: c for c in COLUMNS}


def _header_key(text: str) -> str:
    # Full-width brackets, stray spaces and a required-marker asterisk are all common in
    # hand-edited templates; none of them changes which column is meant.
    return unicodedata.normalize("NFKC", text).replace(" ", "").rstrip("*").strip().lower()


_HEADERS: Final = {
    _header_key(name): c.key for c in COLUMNS for name in (c.header, c.key, *c.aliases)
}


def header_of(key: str) -> str:
    column = _BY_KEY.get(key)
    return column.header if column else key


@dataclass(frozen=True)
class RawRow:
    number: int
    cells: Mapping[str, Cell]


@dataclass(frozen=True)
class RawBatch:
    source: Source
    rows: Sequence[RawRow]


def _limit(count: int, max_rows: int) -> None:
    if count > max_rows:
        raise IntakeError(
            "batch.too-many-rows",
            f"批次最多 {max_rows} 行，实际超过 / a batch holds at most {max_rows} records; "
            f"found more than {max_rows} — split it into several batches",
            status=413,
        )


def _map_headers(headers: Sequence[object]) -> list[str | None]:
    keys: list[str | None] = []
    unknown: list[str] = []
    seen: dict[str, str] = {}
    for raw in headers:
        text = "" if raw is None else str(raw)
        if not text.strip():
            keys.append(None)  # an empty header cell: the column must stay empty
            continue
        key = _HEADERS.get(_header_key(text))
        if key is None:
            unknown.append(text)
        elif key in seen:
            raise IntakeError(
                "batch.duplicate-column",
                f"列“{text}”与“{seen[key]}”是同一字段 / columns {text!r} and {seen[key]!r} "
                "both give the same field",
            )
        else:
            seen[key] = text
        keys.append(key)
    if unknown:
        accepted = "、".join(c.header for c in COLUMNS)
        raise IntakeError(
            "batch.unknown-columns",
            f"无法识别的列：{'、'.join(unknown)}；可用的列：{accepted} / unknown columns "
            f"{unknown}; the template's columns are: {accepted}",
        )
    missing = [c.header for c in COLUMNS if c.required and c.key not in seen]
    if missing:
        raise IntakeError(
            "batch.missing-columns",
            f"缺少必填列：{'、'.join(missing)} / required columns missing: {missing}",
        )
    return keys


def _rows_from_table(
    table: Iterator[Sequence[Cell]], *, first_row: int, max_rows: int, source: Source
) -> RawBatch:
    header: Sequence[Cell] | None = None
    number = first_row - 1
    for values in table:
        number += 1
        if any(v not in (None, "") for v in values):
            header = values
            break
    if header is None:
        raise IntakeError("batch.empty", "文件是空的：没有表头 / the file is empty: no header row")
    keys = _map_headers(header)
    rows: list[RawRow] = []
    for values in table:
        number += 1
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
            continue  # blank lines are what spreadsheets leave behind; they are not records
        cells: dict[str, Cell] = {}
        for i, value in enumerate(values):
            key = keys[i] if i < len(keys) else None
            if key is None:
                if value not in (None, ""):
                    cells["__extra__"] = f"第{i + 1}列没有表头 / column {i + 1} has no header"
                continue
            cells[key] = value
        rows.append(RawRow(number, cells))
        _limit(len(rows), max_rows)
    if not rows:
        raise IntakeError("batch.empty", "批次没有记录 / the batch has no records")
    return RawBatch(source, rows)


def _decode_csv(data: bytes) -> tuple[str, str]:
    """Text and delimiter.  Excel writes UTF-8 with a BOM ("CSV UTF-8"), GBK ("CSV" on a
    Chinese Windows) or UTF-16 with tabs ("Unicode text"); we read all three."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "\t"
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8-sig"), ","
    except UnicodeDecodeError:
        pass
    try:
        # GB18030 is the superset of GBK that Chinese Excel actually writes.
        return data.decode("gb18030"), ","
    except UnicodeDecodeError as exc:
        raise IntakeError(
            "batch.encoding",
            f"无法识别文件编码（第{exc.start + 1}字节）：请另存为“CSV UTF-8”或使用模板 / cannot "
            f"decode the file at byte {exc.start + 1}: expected UTF-8 or GBK (GB18030); save it "
            "as 'CSV UTF-8' or use the XLSX template",
        ) from None


def parse_csv(data: bytes, *, max_rows: int) -> RawBatch:
    if data.startswith(b"PK\x03\x04") or data.startswith(b"\xd0\xcf\x11\xe0"):
        raise IntakeError(
            "batch.format",
            "这是Excel文件而不是CSV：请以 XLSX 上传 / this is an Excel file, not CSV: send it with "
            "Content-Type application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            status=415,
        )
    text, delimiter = _decode_csv(data)
    if "\x00" in text:
        raise IntakeError("batch.malformed", "CSV contains NUL characters: not a text file")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)

    def table() -> Iterator[Sequence[Cell]]:
        try:
            yield from reader
        except csv.Error as exc:
            raise IntakeError(
                "batch.malformed",
                f"CSV 第{reader.line_num}行格式错误 / malformed CSV at line {reader.line_num}: {exc}",
            ) from None

    return _rows_from_table(table(), first_row=1, max_rows=max_rows, source="csv")


def _xlsx_cell(value: Any) -> Cell:
    if isinstance(value, datetime):
        return value.date()
    if value is None or isinstance(value, str | int | float | date):
        return value
    if isinstance(value, bool):
        return str(value)
    return str(value)


#: What a workbook may inflate to: room for styles, themes and shared strings, plus a generous
#: 8 KiB of XML per row (a template row is about 1 KiB).  A workbook promising more is refused
#: before anything is inflated: a few hundred kilobytes of zip can otherwise expand to
#: gigabytes (tests/test_bad_inputs.py sends one).  zipfile never inflates a member beyond the
#: size its directory declares, so the declared sizes are a bound, not a hint.
_XLSX_BASE_BYTES: Final = 8 * 1024 * 1024
_XLSX_BYTES_PER_ROW: Final = 8 * 1024


def _check_inflated_size(data: bytes, max_rows: int) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # not a zip at all: load_workbook says so below
    limit = _XLSX_BASE_BYTES + max_rows * _XLSX_BYTES_PER_ROW
    if inflated > limit:
        raise IntakeError(
            "batch.too-large",
            f"XLSX文件解压后为 {inflated} 字节，超过上限 {limit} 字节 / the workbook inflates "
            f"to {inflated} bytes uncompressed; expected at most {limit} for {max_rows} rows",
            status=413,
        )


def parse_xlsx(data: bytes, *, max_rows: int) -> RawBatch:
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise IntakeError(
            "batch.format",
            "这是旧版 .xls 文件：请在Excel中另存为 .xlsx / this is a legacy .xls file: save it as "
            ".xlsx",
            status=415,
        )
    _check_inflated_size(data, max_rows)
    from openpyxl import load_workbook  # deferred: a JSON-only service never pays for it

    try:
        # data_only=False: a formula stays a formula ("=…") and is refused by the rules
        # instead of being silently replaced by whatever value Excel last cached.
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise IntakeError(
            "batch.malformed",
            f"无法读取XLSX文件 / cannot read the XLSX file: {exc.__class__.__name__}: {exc}",
        ) from None
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a corrupt file
        raise IntakeError(
            "batch.malformed", f"无法读取XLSX文件 / cannot read the XLSX file: {exc}"
        ) from None
    try:
        sheet = book[TEMPLATE_SHEET] if TEMPLATE_SHEET in book.sheetnames else book.worksheets[0]

        def table() -> Iterator[Sequence[Cell]]:
            for values in sheet.iter_rows(values_only=True):
                yield [_xlsx_cell(v) for v in values]

        try:
            return _rows_from_table(table(), first_row=1, max_rows=max_rows, source="xlsx")
        except (zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise IntakeError(
                "batch.malformed", f"无法读取XLSX文件 / cannot read the XLSX file: {exc}"
            ) from None
    finally:
        book.close()


def parse_json_body(data: str | bytes) -> Any:
    """`ledger.canonical.parse_json` for a batch body: the same values and the same refusals
    (`FormatError` with the same words: duplicate keys, ``NaN``/``Infinity``, bad JSON, too
    deep), with the duplicate-key check done by building each object in C and comparing
    sizes — a batch has ten thousand objects, and a Python loop over every key of each was
    a third of the parse."""
    try:
        return json.loads(data, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FormatError(f"invalid JSON: {exc}") from exc
    except RecursionError as exc:
        raise FormatError("invalid JSON: nesting is deeper than this parser supports") from exc


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:  # the first key seen twice, as parse_json names it
            if key in seen:
                raise FormatError(f"invalid JSON: expected unique object keys, found {key!r} twice")
            seen.add(key)
    return obj


def _no_constant(name: str) -> Any:
    raise FormatError(f"invalid JSON: expected a number, found the non-JSON literal {name}")


def parse_json_records(records: object, *, max_rows: int) -> RawBatch:
    """``records`` is the decoded ``records`` member of a JSON batch."""
    if not isinstance(records, list):
        raise IntakeError(
            "batch.malformed",
            f"records: expected a JSON array of objects, found {type(records).__name__}",
        )
    if not records:
        raise IntakeError("batch.empty", "批次没有记录 / records: the batch has no records")
    _limit(len(records), max_rows)
    rows: list[RawRow] = []
    keys, plain = _JSON_KEYS, _JSON_PLAIN_TYPES
    for i, item in enumerate(records, start=1):
        # The common record: an object of known fields with text, number or null values.
        # Its parsed dict is already the row's cells (nothing to rename or mark), so it is
        # taken as is, checked with two C-level set operations instead of a loop per cell;
        # any other record is read by `_json_row` (``tests/test_batch_speedups.py`` checks
        # that both read a plain record alike).
        if (
            type(item) is dict
            and item.keys() <= keys
            and plain.issuperset(map(type, item.values()))
        ):
            rows.append(RawRow(i, item))
        else:
            rows.append(_json_row(i, item))
    return RawBatch("json", rows)


def _json_row(number: int, item: object) -> RawRow:
    """One record of a JSON batch as a raw row: unknown fields and values of a type no field
    accepts are marked for the rules to report."""
    if not isinstance(item, dict):
        raise IntakeError(
            "batch.malformed",
            f"records[{number - 1}]: expected a JSON object, found {type(item).__name__}",
        )
    cells: dict[str, Cell] = {}
    for key, value in item.items():
        if key not in _BY_KEY:
            cells["__unknown__"] = key
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float | None):
            cells[key] = _Unsupported(type(value).__name__)
            continue
        cells[key] = value
    return RawRow(number, cells)


_JSON_KEYS: Final = frozenset(_BY_KEY)
#: Exact types (``type(True)`` is bool, so booleans are not among them).
_JSON_PLAIN_TYPES: Final = frozenset({str, int, float, type(None)})


class _Unsupported(str):
    """Marks a JSON value of a type no field accepts (the rules report it)."""

    __slots__ = ()


TEMPLATE_SHEET: Final = "学时记录"


# Built once: openpyxl takes ~0.3 s of CPU per workbook, and the template is served to anyone
# without a key (an unauthenticated route must not be a CPU sink).
@functools.cache
def template_xlsx() -> bytes:
    """The XLSX template: a data sheet with the headers (ID column formatted as text, so Excel
    cannot turn an ID number into 1.10105E+17) and a sheet of instructions with an example."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = TEMPLATE_SHEET
    sheet.append([c.header for c in COLUMNS])
    bold = Font(bold=True)
    required = PatternFill("solid", fgColor="FFF2CC")
    for i, column in enumerate(COLUMNS, start=1):
        cell = sheet.cell(row=1, column=i)
        cell.font = bold
        if column.required:
            cell.fill = required
        letter = cell.column_letter
        sheet.column_dimensions[letter].width = max(12, len(column.header) * 3)
        if column.key in ("id_number", "class_code", "certificate_number"):
            for row in range(2, 10_002):
                sheet.cell(row=row, column=i).number_format = "@"
    sheet.freeze_panes = "A2"
    help_sheet = book.create_sheet("填写说明")
    help_sheet.append(["列 / column", "必填 / required", "示例 / example", "说明 / notes"])
    for column in COLUMNS:
        help_sheet.append(
            [column.header, "是" if column.required else "否", column.example, column.note]
        )
    help_sheet.append([])
    help_sheet.append(["黄色表头为必填列。以“=”“+”“@”开头的内容会被拒绝（防止公式注入）。"])
    help_sheet.column_dimensions["A"].width = 16
    help_sheet.column_dimensions["C"].width = 22
    help_sheet.column_dimensions["D"].width = 60
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def template_csv() -> bytes:
    """The CSV template, UTF-8 with a BOM so that Excel opens the Chinese headers correctly."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.header for c in COLUMNS])
    return codecs.BOM_UTF8 + out.getvalue().encode("utf-8")


def rows_as_table(rows: Iterable[Mapping[str, str]]) -> list[list[str]]:
    """Rows (canonical keys) as a table with the template's headers — for tests and exports."""
    table = [[c.header for c in COLUMNS]]
    for row in rows:
        table.append([row.get(c.key, "") for c in COLUMNS])
    return table
