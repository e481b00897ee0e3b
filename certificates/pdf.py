"""Transcript and completion-certificate PDFs (A4, Chinese typesetting, QR, embedded files).

`render_transcript` and `render_completion` turn the dataclasses of `certificates.model` into
PDF bytes; `extract_attachments` reads the embedded files back (also after signing);
`render_many` renders in a process pool.  The PDF is unsigned: `certificates.pades` signs it.

Layout rules, in order:

1. **Page**: A4 portrait, 15 mm side margins; every page carries a footer with the certificate
   number, the holder's name and ``第 i 页 / 共 n 页`` (the page count is known before drawing,
   because the layout is computed first and drawn second).
2. **Text**: every string goes through `FontSet.runs`: one font per character (primary, then
   fallbacks), and `MissingGlyphError` for a character no font has — never a blank or tofu.
   Lines break between any two CJK characters but not inside Latin words or numbers, and
   follow the basic 禁则 (kinsoku) rules: no line starts with closing punctuation (，。）》 …)
   and none ends with an opening one (（《 …).  Whitespace in the data collapses to one space.
3. **Transcript**: title 《register》, holder block (name, masked ID, employer, jurisdiction,
   period, certificate number, issue date) with the QR code beside it, the verification URL in
   small type; the records table (long class titles and base names wrap; a page break repeats
   the header row; the total row stays with the last record); totals per category; the
   verdict; the issue block.  The verdict never stands alone on a page: if it does not fit
   under the table, the last record moves over with it.  A single row or a closing block
   taller than a page raises `CertificateInputError` naming it.
4. **Completion certificate**: one page; title, holder and record as a two-column table, the
   QR code, the issue block.  Data too long for one page raises `CertificateInputError`.
5. **Attachments**: each `Attachment` becomes an embedded file stream (with /Subtype = MIME
   type, /Params /Size and /CheckSum), a file specification (/F, /UF, /Desc,
   /AFRelationship /Data), an entry of the catalog's /Names /EmbeddedFiles name tree (sorted
   by name, as name trees must be) and an element of the catalog's /AF array (PDF 2.0 and
   PDF/A-3 "associated files").  Names must be unique.
6. **Metadata**: /Title and /Subject name the kind of document and the register, /Author the
   issuer; no personal data goes into metadata (a document's properties travel further than
   its pages).

Speed (see ``bench/bench_certificates.py``; ~5.5 ms CPU for a 20-record transcript, against
~30 ms for the same text drawn the plain reportlab way with a PIL QR image): fonts are parsed
once per process and each face used becomes one Type 0 font subset per document
(`certificates.fonts.DocumentFonts`); text is written as raw content operators in one text
object per page, font and colour set only when they change; line breaks, text runs and widths
are cached across documents; the QR code is one vector path (`certificates.qr`); reportlab
only assembles the document objects.
"""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
import os
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, Literal

from reportlab import rl_config
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase.pdfdoc import (
    PDFArray,
    PDFCatalog,
    PDFDictionary,
    PDFName,
    PDFStream,
    PDFString,
    PDFText,
    PDFZCompress,
)
from reportlab.pdfgen.canvas import Canvas

from certificates.fonts import DocumentFonts, FontSet, FontSpec, load_fonts
from certificates.model import (
    Attachment,
    AttachmentError,
    CertificateInputError,
    CompletionData,
    RecordLine,
    TranscriptData,
)
from certificates.qr import QUIET_ZONE, QrMatrix, qr_matrix, qr_pdf_ops

__all__ = [
    "Attachment",
    "RenderJob",
    "extract_attachments",
    "render_completion",
    "render_many",
    "render_transcript",
]

# --- page geometry (points) -------------------------------------------------------------------

PAGE_W, PAGE_H = A4
MARGIN_X: Final = 42.5  # 15 mm
CONTENT_W: Final = PAGE_W - 2 * MARGIN_X
BODY_TOP: Final = PAGE_H - 46.0
BODY_BOTTOM: Final = 52.0  # the footer sits below this
FOOTER_Y: Final = 30.0
QR_MODULE: Final = 2.0  # 4.2 px per module at 150 dpi (see certificates.qr)

Align = Literal["left", "center", "right"]

# Colours as PDF operators (fill, stroke).
_BLACK: Final = "0 g 0 G"
_GREY: Final = "0.35 g 0.35 G"
_OK_COLOUR: Final = "0.07 0.45 0.2 rg 0.07 0.45 0.2 RG"
_FAIL_COLOUR: Final = "0.72 0.1 0.1 rg 0.72 0.1 0.1 RG"

_CREATOR: Final = "CE Ledger (celedger)"

# --- text helpers -----------------------------------------------------------------------------

# Kinsoku: characters that may not start a line, and ones that may not end a line.
_NO_LINE_START: Final = frozenset("，。、；：？！）》」』】〕〉〗”’…‥—–·・%‰℃,.;:?!)]}>／")
_NO_LINE_END: Final = frozenset("（《「『【〔〈〖“‘([{<")
# Latin words, numbers, URLs and codes stay together; everything else breaks per character.
_TOKEN_RE: Final = re.compile(r"[A-Za-z0-9@#&_\-./:%+=~*$]+|.", re.S)


def _clean(text: str) -> str:
    """Collapse all whitespace (newlines and tabs included) to single spaces."""
    return " ".join(text.split())


def _hours(value: Decimal, what: str) -> str:
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        raise CertificateInputError(
            f"{what}: expected a non-negative Decimal, found {value!r} ({type(value).__name__})"
        )
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -1 and value != value.quantize(Decimal("0.1")):
        raise CertificateInputError(
            f"{what}: expected at most one decimal place (the 学时 quantum), found {value}"
        )
    return f"{value.normalize():f}"


def _balanced(fonts: FontSet, text: str, width: float, size: float) -> list[str]:
    """``text`` (one long token, e.g. a URL) in as few lines as fit ``width``, of equal length,
    so that no line is a stub of three characters."""
    lines = wrap(fonts, text, width, size)
    if len(lines) < 2:
        return lines
    per = -(-len(text) // len(lines))
    even = [text[i : i + per] for i in range(0, len(text), per)]
    return even if all(fonts.width(line, size) <= width for line in even) else lines


def _cn_date(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def wrap(fonts: FontSet, text: str, width: float, size: float) -> list[str]:
    """``text`` broken into lines no wider than ``width`` at ``size`` (see rule 2)."""
    if not text:
        return [""]
    if fonts.width(text, size) <= width:
        return [text]
    # Class titles, base names and notes recur across documents: break each once.
    return list(_wrap_long(fonts, text, width, size))


@functools.lru_cache(maxsize=8192)
def _wrap_long(fonts: FontSet, text: str, width: float, size: float) -> tuple[str, ...]:
    tokens: list[str] = []
    for tok in _TOKEN_RE.findall(text):
        if len(tok) > 1 and fonts.width(tok, size) > width:
            tokens.extend(tok)  # a word longer than a line breaks anywhere (URLs, codes)
        else:
            tokens.append(tok)
    lines: list[str] = []
    cur: list[str] = []
    cur_w = 0.0
    for tok in tokens:
        w = fonts.width(tok, size)
        if cur and cur_w + w > width:
            if tok == " ":
                lines.append("".join(cur))
                cur, cur_w = [], 0.0
                continue
            carry: list[str] = []
            if tok[0] in _NO_LINE_START and len(cur) > 1:
                carry.append(cur.pop())  # 避头点: the previous character moves down with it
            while len(cur) > 1 and cur[-1][-1] in _NO_LINE_END:
                carry.insert(0, cur.pop())
            lines.append("".join(cur).rstrip())
            cur = carry
            cur_w = sum(fonts.width(t, size) for t in cur)
        if not cur and tok == " ":
            continue
        cur.append(tok)
        cur_w += w
    if cur:
        lines.append("".join(cur).rstrip())
    return tuple(lines)


# --- drawing ----------------------------------------------------------------------------------


class _Painter:
    """Writes one page's content as raw PDF operators (fast), through reportlab's document.

    Graphics (rules, boxes, the QR code) are written in call order; all text goes into one
    text object drawn after them (so shading never covers text), with the font, colour and
    render mode set only when they change.  Text is encoded by `DocumentFonts` (one Type 0
    font per face per document), which also embeds the fonts when reportlab saves.
    """

    def __init__(self, canvas: Any, fonts: FontSet) -> None:
        self.canvas = canvas
        self.fonts = fonts
        self.embedded = DocumentFonts(fonts, canvas._doc)
        self.ops: list[str] = []
        self._reset_text()

    def _reset_text(self) -> None:
        self.text_ops: list[str] = []
        self._font: tuple[int, float] | None = None
        self._colour = ""
        self._bold_width = 0.0  # 0: plain fill; otherwise the stroke width of fake bold

    def text(
        self,
        x: float,
        y: float,
        text: str,
        size: float,
        *,
        align: Align = "left",
        bold: bool = False,
        colour: str = _BLACK,
    ) -> float:
        """Draw one line; returns its width."""
        if not text:
            return 0.0
        fonts = self.fonts
        width = fonts.width(text, size)
        if align == "center":
            x -= width / 2
        elif align == "right":
            x -= width
        ops = self.text_ops
        if colour != self._colour:
            ops.append(colour)
            self._colour = colour
        # CJK fonts ship one weight; fill plus a thin stroke of the outline is the usual way
        # to embolden them (render mode 2).
        bold_width = size * 0.035 if bold else 0.0
        if bold_width != self._bold_width:
            ops.append(f"2 Tr {bold_width:.3f} w" if bold else "0 Tr")
            self._bold_width = bold_width
        ops.append(f"1 0 0 1 {x:.2f} {y:.2f} Tm")
        embedded = self.embedded
        for index, run in fonts.runs(text):
            if self._font != (index, size):
                ops.append(f"{embedded.resource(index)} {size:g} Tf")
                self._font = (index, size)
            ops.append(f"<{embedded.encode(index, run)}> Tj")
        return width

    def lines(
        self, x: float, y: float, lines: Sequence[str], size: float, leading: float, **kw: Any
    ) -> None:
        for i, line in enumerate(lines):
            self.text(x, y - i * leading, line, size, **kw)

    def rule(
        self, x1: float, y1: float, x2: float, y2: float, width: float = 0.5, grey: float = 0
    ) -> None:
        self.ops.append(f"q {grey:g} G {width:g} w {x1:.2f} {y1:.2f} m {x2:.2f} {y2:.2f} l S Q")

    def box(
        self,
        x: float,
        y: float,
        w: float,
        h: float,
        *,
        fill: str | None = None,
        stroke: str | None = None,
        width: float = 0.5,
    ) -> None:
        rect = f"{x:.2f} {y:.2f} {w:.2f} {h:.2f} re"
        if fill and stroke:
            self.ops.append(f"q {fill} {stroke} {width:g} w {rect} B Q")
        elif fill:
            self.ops.append(f"q {fill} {rect} f Q")
        elif stroke:
            self.ops.append(f"q {stroke} {width:g} w {rect} S Q")

    def qr(self, matrix: QrMatrix, x: float, y: float) -> float:
        """Draw the QR (with quiet zone) with its lower-left corner at (x, y); returns its size."""
        self.ops.append(qr_pdf_ops(matrix, x, y, QR_MODULE))
        side = (matrix.size + 2 * QUIET_ZONE) * QR_MODULE
        self.canvas.linkURL(matrix.payload, (x, y, x + side, y + side), relative=0, thickness=0)
        return side

    def link(self, url: str, rect: tuple[float, float, float, float]) -> None:
        self.canvas.linkURL(url, rect, relative=0, thickness=0)

    def finish_page(self) -> None:
        if self.text_ops:
            self.ops += ["BT", *self.text_ops, "ET"]
        self.canvas.addLiteral("\n".join(self.ops))
        self.ops = []
        self._reset_text()
        self.canvas.showPage()


def _new_canvas(buffer: io.BytesIO, title: str, subject: str, author: str) -> Any:
    # PDF 1.7 (ISO 32000-1): what PAdES signatures and embedded files are specified against.
    canvas = Canvas(buffer, pagesize=A4, pageCompression=1, pdfVersion=(1, 7))
    canvas.setTitle(title)
    canvas.setSubject(subject)
    canvas.setAuthor(author)
    canvas.setCreator(_CREATOR)
    canvas.setProducer(_CREATOR)
    canvas.setKeywords("继续教育; 学时; CE Ledger")
    return canvas


def _save(canvas: Any) -> None:
    """``canvas.save()`` without ASCII85 on page streams.

    reportlab wraps compressed page streams in ASCII85 by default (``rl_config.useA85``), a
    7-bit-transport relic that makes them 25 % larger and, without the optional C accelerator,
    costs ~2 ms per page in pure Python.  The setting is read while saving, so it is switched
    off only for this call.  (Two threads saving at once may see each other's value: that
    changes how a page stream is encoded, never what it says, so the PDF stays right.)
    """
    previous = rl_config.useA85
    rl_config.useA85 = 0
    try:
        canvas.save()
    finally:
        rl_config.useA85 = previous


def _embed(canvas: Any, attachments: Sequence[Attachment]) -> None:
    """Attach files as embedded file streams: /Names /EmbeddedFiles and the catalog's /AF."""
    if not attachments:
        return
    seen: set[str] = set()
    for att in attachments:
        if not att.name or "/" in att.name or "\\" in att.name:
            raise AttachmentError(
                f"attachment name: expected a plain file name, found {att.name!r}"
            )
        if att.name in seen:
            raise AttachmentError(
                f"attachment names: expected unique names, found {att.name!r} twice"
            )
        if not re.fullmatch(r"[a-z]+/[A-Za-z0-9.+\-]+", att.mime):
            raise AttachmentError(
                f"attachment {att.name!r}: expected a MIME type like application/json, found "
                f"{att.mime!r}"
            )
        seen.add(att.name)
    doc = canvas._doc
    tree: list[Any] = []
    specs: list[Any] = []
    # Name-tree keys must be sorted (PDF 32000-1 §7.9.6); byte order of the UTF-16 keys is
    # what readers compare, and it agrees with code-point order for BMP names.
    for att in sorted(attachments, key=lambda a: a.name):
        stream = PDFStream(
            PDFDictionary(
                {
                    "Type": PDFName("EmbeddedFile"),
                    # A name: the "/" of the MIME type must be written #2F (PDFName keeps it).
                    "Subtype": "/" + att.mime.replace("/", "#2F"),
                    "Params": PDFDictionary(
                        {
                            "Size": len(att.data),
                            "CheckSum": PDFText(hashlib.md5(att.data).digest(), enc="raw"),  # noqa: S324 - PDF's /CheckSum is defined as MD5
                        }
                    ),
                }
            ),
            content=att.data,
            filters=[PDFZCompress],
        )
        stream_ref = doc.Reference(stream)
        spec = PDFDictionary(
            {
                "Type": PDFName("Filespec"),
                "F": PDFString(att.name),
                "UF": PDFString(att.name),
                "EF": PDFDictionary({"F": stream_ref, "UF": stream_ref}),
                "Desc": PDFString(att.description or att.name),
                "AFRelationship": PDFName("Data"),
            }
        )
        spec_ref = doc.Reference(spec)
        tree += [PDFString(att.name), spec_ref]
        specs.append(spec_ref)
    catalog = doc.Catalog
    catalog.Names = PDFDictionary({"EmbeddedFiles": PDFDictionary({"Names": PDFArray(tree)})})
    # reportlab's catalog writes only the keys it lists; /AF is added for this instance.
    catalog.__NoDefault__ = [*PDFCatalog.__NoDefault__, "AF"]
    catalog.AF = PDFArray(specs)


# --- transcript -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Column:
    title: str
    width: float
    align: Align


_COLUMNS: Final = (
    _Column("序号", 24.0, "center"),
    _Column("起止日期", 60.0, "left"),
    _Column("项目（课程）", 152.0, "left"),
    _Column("继续教育基地", 116.0, "left"),
    _Column("科目类别", 44.0, "center"),
    _Column("形式", 32.0, "center"),
    _Column("学时", 34.0, "right"),
    _Column("考核结果", CONTENT_W - 462.0, "center"),
)
_CELL_PAD_X: Final = 4.0
_CELL_PAD_Y: Final = 4.5
_TABLE_SIZE: Final = 8.0
_TABLE_LEADING: Final = 10.5
_SUB_SIZE: Final = 6.5
_SUB_LEADING: Final = 8.5
_HEADER_H: Final = 18.0


@dataclass(slots=True)
class _Cell:
    lines: list[str]
    align: Align
    sub: list[str] = field(default_factory=list)  # small grey lines under the main ones


@dataclass(slots=True)
class _Row:
    cells: list[_Cell]
    height: float
    bold: bool = False
    shade: bool = False


def _cell_height(cell: _Cell) -> float:
    return len(cell.lines) * _TABLE_LEADING + len(cell.sub) * _SUB_LEADING


def _record_row(fonts: FontSet, n: int, rec: RecordLine) -> _Row:
    def fit(text: str, col: _Column) -> list[str]:
        return wrap(fonts, _clean(text), col.width - 2 * _CELL_PAD_X, _TABLE_SIZE)

    if rec.end < rec.start:
        raise CertificateInputError(
            f"record {rec.record_id}: expected end date on or after start {rec.start}, found "
            f"{rec.end}"
        )
    dates = (
        [rec.start.isoformat()]
        if rec.end == rec.start
        else [
            rec.start.isoformat(),
            f"至{rec.end.isoformat()}",
        ]
    )
    c = _COLUMNS
    sub_text = f"{_clean(rec.class_code)}　记录 {_clean(rec.record_id)}"
    sub = wrap(fonts, sub_text, c[2].width - 2 * _CELL_PAD_X, _SUB_SIZE)
    if rec.note:
        sub += wrap(fonts, _clean(rec.note), c[2].width - 2 * _CELL_PAD_X, _SUB_SIZE)
    cells = [
        _Cell([str(n)], c[0].align),
        _Cell(dates, c[1].align),
        _Cell(fit(rec.class_title, c[2]), c[2].align, sub),
        _Cell(fit(rec.base_name, c[3]), c[3].align),
        _Cell(fit(rec.category, c[4]), c[4].align),
        _Cell(fit(rec.mode, c[5]), c[5].align),
        _Cell([_hours(rec.hours, f"record {rec.record_id} hours")], c[6].align),
        _Cell(fit(rec.result, c[7]), c[7].align),
    ]
    # The last line's leading below its baseline is mostly empty: trim it so that the space
    # above the first line and below the last look equal.
    height = max(_cell_height(cell) for cell in cells) + 2 * _CELL_PAD_Y - 1.5
    return _Row(cells, height, shade=n % 2 == 0)


def _draw_row(p: _Painter, row: _Row, top: float) -> None:
    x = MARGIN_X
    if row.shade:
        p.box(MARGIN_X, top - row.height, CONTENT_W, row.height, fill="0.965 g")
    for col, cell in zip(_COLUMNS, row.cells, strict=True):
        baseline = top - _CELL_PAD_Y - _TABLE_SIZE * 0.88
        if cell.align == "center":
            tx = x + col.width / 2
        elif cell.align == "right":
            tx = x + col.width - _CELL_PAD_X
        else:
            tx = x + _CELL_PAD_X
        for i, line in enumerate(cell.lines):
            p.text(
                tx,
                baseline - i * _TABLE_LEADING,
                line,
                _TABLE_SIZE,
                align=cell.align,
                bold=row.bold,
            )
        sub_base = baseline - len(cell.lines) * _TABLE_LEADING + (_TABLE_LEADING - _SUB_LEADING)
        for i, line in enumerate(cell.sub):
            p.text(tx, sub_base - i * _SUB_LEADING, line, _SUB_SIZE, align=cell.align, colour=_GREY)
        x += col.width
    p.rule(MARGIN_X, top - row.height, MARGIN_X + CONTENT_W, top - row.height, 0.35, 0.7)


def _draw_table_header(p: _Painter, top: float) -> float:
    p.box(MARGIN_X, top - _HEADER_H, CONTENT_W, _HEADER_H, fill="0.88 g")
    p.rule(MARGIN_X, top, MARGIN_X + CONTENT_W, top, 1.0)
    x = MARGIN_X
    for col in _COLUMNS:
        p.text(x + col.width / 2, top - 12.0, col.title, _TABLE_SIZE, align="center", bold=True)
        x += col.width
    p.rule(MARGIN_X, top - _HEADER_H, MARGIN_X + CONTENT_W, top - _HEADER_H, 0.6)
    return top - _HEADER_H


def _footer(
    p: _Painter, page: int, pages: int, number: str, holder: str, *, rule: bool = True
) -> None:
    if rule:
        p.rule(MARGIN_X, FOOTER_Y + 12, MARGIN_X + CONTENT_W, FOOTER_Y + 12, 0.4, 0.6)
    p.text(MARGIN_X, FOOTER_Y, f"证书编号 {number}", 7.0, colour=_GREY)
    p.text(PAGE_W / 2, FOOTER_Y, f"第 {page} 页 / 共 {pages} 页", 8.0, align="center")
    p.text(MARGIN_X + CONTENT_W, FOOTER_Y, holder, 7.0, align="right", colour=_GREY)


def _title_size(
    fonts: FontSet, title: str, size: float, width: float, smallest: float = 9.0
) -> float:
    """``size``, or smaller (down to ``smallest``) so that ``title`` fits ``width``."""
    w = fonts.width(title, size)
    return size if w <= width else max(smallest, size * width / w)


_LABEL_SIZE: Final = 9.5
_LABEL_LEADING: Final = 15.5
_LABEL_W: Final = 50.0


def _holder_lines(
    fonts: FontSet, pairs: Sequence[tuple[str, str]], width: float
) -> list[tuple[str, list[str]]]:
    return [
        (label, wrap(fonts, _clean(value), width - _LABEL_W, _LABEL_SIZE)) for label, value in pairs
    ]


def _draw_holder_lines(
    p: _Painter, lines: list[tuple[str, list[str]]], x: float, top: float
) -> float:
    y = top
    for label, values in lines:
        p.text(x, y, label, _LABEL_SIZE, colour=_GREY)
        for i, value in enumerate(values):
            p.text(
                x + _LABEL_W,
                y - i * _LABEL_LEADING,
                value,
                _LABEL_SIZE,
                bold=label.startswith("姓"),
            )
        y -= _LABEL_LEADING * max(1, len(values))
    return y


def _attachment_note(attachments: Sequence[Attachment]) -> str:
    if not attachments:
        return ""
    parts = [f"{a.name}：{_clean(a.description)}" if a.description else a.name for a in attachments]
    return "内嵌文件（PDF 阅读器的附件栏，供离线核验）：" + "；".join(parts) + "。"


def render_transcript(
    data: TranscriptData,
    attachments: Sequence[Attachment] = (),
    *,
    fonts: FontSet | None = None,
) -> bytes:
    """The transcript PDF (unsigned) for ``data``, with ``attachments`` embedded."""
    fonts = fonts or load_fonts()
    for name in ("register_name", "holder_name", "masked_id", "certificate_number", "verify_url"):
        if not _clean(getattr(data, name)):
            raise CertificateInputError(
                f"transcript {name}: expected text, found {getattr(data, name)!r}"
            )
    matrix = qr_matrix(data.verify_url)
    number = _clean(data.certificate_number)
    holder = _clean(data.holder_name)
    register = _clean(data.register_name)
    period = _clean(data.period_label)

    # ---- layout: everything measured before anything is drawn ----
    qr_side = (matrix.size + 2 * QUIET_ZONE) * QR_MODULE
    holder_w = CONTENT_W - qr_side - 12
    holder_block = _holder_lines(
        fonts,
        [
            ("姓　　名", holder),
            ("身份证号", data.masked_id),
            ("工作单位", data.employer),
            ("所属地区", data.jurisdiction_name),
            ("统计期间", period),
            ("证书编号", number),
            ("签发日期", _cn_date(data.issued_on)),
        ],
        holder_w,
    )
    url_lines = wrap(fonts, "核验网址：" + data.verify_url, CONTENT_W, 6.0)
    title = f"《{register}》"
    title_size = _title_size(fonts, title, 17.0, CONTENT_W)
    subtitle = f"继续教育学时证明（摘录）· {period}"

    rows = [_record_row(fonts, i, rec) for i, rec in enumerate(data.records, start=1)]
    total_text = _hours(data.total_hours, "total_hours")
    empty = _Cell([], "left")
    total_row = _Row(
        [
            _Cell(["合计"], "center"),
            empty,
            _Cell([f"共 {len(rows)} 条记录"], "left"),
            empty,
            empty,
            empty,
            _Cell([total_text], "right"),
            empty,
        ],
        _TABLE_LEADING + 2 * _CELL_PAD_Y,
        bold=True,
    )
    if not rows:
        rows = [
            _Row(
                [
                    _Cell([], "center"),
                    empty,
                    _Cell(["本统计期间无学时记录"], "left"),
                    empty,
                    empty,
                    empty,
                    empty,
                    empty,
                ],
                _TABLE_LEADING + 2 * _CELL_PAD_Y,
            )
        ]

    # Closing block: totals (left) and verdict (right), then the issue block.
    totals_w = 250.0
    verdict_w = CONTENT_W - totals_w - 14
    totals_rows: list[tuple[str, str, str]] = [
        (
            _clean(t.category),
            _hours(t.hours, f"total {t.category}"),
            _hours(t.required, f"required {t.category}") if t.required is not None else "—",
        )
        for t in data.totals
    ]
    totals_rows.append(("合计", total_text, _hours(data.required_hours, "required_hours")))
    totals_h = 16.0 + 15.0 * len(totals_rows)
    verdict_head = "核验结论：符合要求" if data.verdict_ok else "核验结论：未达到要求"
    verdict_lines: list[str] = []
    for line in data.verdict_lines:
        verdict_lines += wrap(fonts, _clean(line), verdict_w - 20, 9.0)
    verdict_h = 14 + 20 + 14.0 * len(verdict_lines) + 8
    note_lines = wrap(fonts, _attachment_note(attachments), CONTENT_W, 7.0)
    explain = wrap(
        fonts,
        "说明：本证明根据继续教育基地报送并记入公开账本（透明日志）的记录生成，所列学时按"
        f"{_clean(data.jurisdiction_name)}继续教育规定统计；真伪与最新状态以扫码或访问核验网址所得结果为准。",
        CONTENT_W,
        7.0,
    )
    # As drawn by _draw_closing from 22 pt below the table: heading, tables, issue block, notes.
    closing_h = (
        22 + 10 + max(totals_h, verdict_h) + 22 + 52 + 10.0 * (len(note_lines) + len(explain)) + 4
    )

    # Page 1 header height.
    holder_h = sum(_LABEL_LEADING * max(1, len(v)) for _, v in holder_block)
    head_top = BODY_TOP - 10
    block_top = head_top - 22 - 26 - 20
    block_h = max(holder_h, qr_side + 2)  # the QR's quiet zone starts 12 pt above block_top
    table_top_first = block_top - block_h - 8.0 * len(url_lines) - 8
    table_top_next = BODY_TOP - 26

    # A row or the closing block taller than a whole page cannot be laid out: say which.
    room = table_top_next - _HEADER_H - total_row.height - BODY_BOTTOM
    for rec, row in zip(data.records, rows, strict=False):
        if row.height > room:
            raise CertificateInputError(
                f"record {rec.record_id}: expected its row to fit on one page ({room:.0f} pt), "
                f"found {row.height:.0f} pt (class title or note too long)"
            )
    if closing_h > table_top_next + 10 - BODY_BOTTOM:
        raise CertificateInputError(
            f"transcript {number}: expected the totals and verdict to fit on one page, found "
            f"{len(data.verdict_lines)} verdict lines and {len(data.totals)} categories too many"
        )

    # Paginate: pages = list of (rows on page); the closing block goes after the last row.
    pages: list[list[_Row]] = [[]]
    y = table_top_first - _HEADER_H
    for i, row in enumerate(rows):
        need = row.height + (total_row.height if i == len(rows) - 1 else 0)
        if y - need < BODY_BOTTOM and pages[-1]:
            pages.append([])
            y = table_top_next - _HEADER_H
        pages[-1].append(row)
        y -= row.height
    y -= total_row.height
    closing_on_new_page = y - closing_h < BODY_BOTTOM
    if closing_on_new_page and len(pages[-1]) > 1:
        # Rather than a page holding only the verdict, the last record moves over with it,
        # so the totals and the verdict stay attached to the table they sum up.
        last = pages[-1][-1]
        y = table_top_next - _HEADER_H - last.height - total_row.height
        if y - closing_h >= BODY_BOTTOM:
            pages.append([pages[-1].pop()])
            closing_on_new_page = False
    page_count = len(pages) + (1 if closing_on_new_page else 0)

    # ---- drawing ----
    buffer = io.BytesIO()
    canvas = _new_canvas(
        buffer,
        title=f"继续教育学时证明（摘录）{period}",
        subject=f"《{register}》摘录，证书编号 {number}",
        author=_clean(data.issuer_name),
    )
    p = _Painter(canvas, fonts)

    head_left = f"{title}继续教育学时证明（续）"
    head_right = f"姓名：{holder}　证书编号：{number}"
    head_size = _title_size(fonts, head_left, 9.0, CONTENT_W, smallest=6.0)
    # One line when both fit side by side; otherwise the name and number go on a second line.
    head_one_line = (
        fonts.width(head_left, head_size) + fonts.width(head_right, 8.0) + 16 <= CONTENT_W
    )

    def continuation_header() -> None:
        left_y, right_y = (BODY_TOP, BODY_TOP) if head_one_line else (BODY_TOP + 5, BODY_TOP - 6)
        p.text(MARGIN_X, left_y, head_left, head_size, bold=True)
        p.text(MARGIN_X + CONTENT_W, right_y, head_right, 8.0, align="right", colour=_GREY)
        rule_y = BODY_TOP - 8 if head_one_line else BODY_TOP - 11
        p.rule(MARGIN_X, rule_y, MARGIN_X + CONTENT_W, rule_y, 0.6)

    for page_no, page_rows in enumerate(pages, start=1):
        if page_no == 1:
            p.text(PAGE_W / 2, head_top - title_size, title, title_size, align="center", bold=True)
            p.text(PAGE_W / 2, head_top - 22 - 18, subtitle, 11.5, align="center")
            rule_y = head_top - 22 - 28
            p.rule(MARGIN_X, rule_y, MARGIN_X + CONTENT_W, rule_y, 1.2)
            p.rule(MARGIN_X, rule_y - 2.5, MARGIN_X + CONTENT_W, rule_y - 2.5, 0.4)
            _draw_holder_lines(p, holder_block, MARGIN_X, block_top - 4)
            qx = MARGIN_X + CONTENT_W - qr_side
            qy = block_top + QUIET_ZONE * QR_MODULE - qr_side + 4
            p.qr(matrix, qx, qy)
            # The caption sits below the quiet zone: nothing may be drawn inside it.
            p.text(qx + qr_side / 2, qy - 9, "扫码核验", 9.0, align="center", bold=True)
            url_top = block_top - block_h - 6
            p.lines(MARGIN_X, url_top, url_lines, 6.0, 8.0, colour=_GREY)
            p.link(
                data.verify_url,
                (MARGIN_X, url_top - 8.0 * len(url_lines) + 6, MARGIN_X + CONTENT_W, url_top + 7),
            )
            top = table_top_first
        else:
            continuation_header()
            top = table_top_next
        top = _draw_table_header(p, top)
        for row in page_rows:
            _draw_row(p, row, top)
            top -= row.height
        if page_no == len(pages):
            _draw_row(p, total_row, top)
            top -= total_row.height
            p.rule(MARGIN_X, top, MARGIN_X + CONTENT_W, top, 1.0)
            if closing_on_new_page:
                _footer(p, page_no, page_count, number, holder)
                p.finish_page()
                continuation_header()
                top = table_top_next + 10
            _draw_closing(
                p,
                top - 22,
                totals_rows,
                totals_w,
                verdict_head,
                verdict_lines,
                verdict_w,
                data,
                note_lines,
                explain,
                ok=data.verdict_ok,
            )
            _footer(p, page_count, page_count, number, holder)
        else:
            _footer(p, page_no, page_count, number, holder)
        p.finish_page()
    _embed(canvas, attachments)
    _save(canvas)
    return buffer.getvalue()


def _draw_closing(
    p: _Painter,
    top: float,
    totals_rows: list[tuple[str, str, str]],
    totals_w: float,
    verdict_head: str,
    verdict_lines: list[str],
    verdict_w: float,
    data: TranscriptData,
    note_lines: list[str],
    explain: list[str],
    *,
    ok: bool,
) -> None:
    p.text(MARGIN_X, top, "分类统计", 10.5, bold=True)
    y = top - 10
    # Totals table: category | counted | required.
    cols = (MARGIN_X, MARGIN_X + totals_w * 0.45, MARGIN_X + totals_w * 0.75, MARGIN_X + totals_w)
    p.box(MARGIN_X, y - 16, totals_w, 16, fill="0.88 g")
    for label, (x0, x1) in zip(
        ("科目类别", "计入学时", "最低要求"), itertools.pairwise(cols), strict=True
    ):
        p.text((x0 + x1) / 2, y - 11.5, label, 8.5, align="center", bold=True)
    y -= 16
    for i, (category, hours, required) in enumerate(totals_rows):
        last = i == len(totals_rows) - 1
        p.text(cols[0] + 6, y - 11, category, 9.0, bold=last)
        p.text(cols[2] - 8, y - 11, hours, 9.0, align="right", bold=last)
        p.text(cols[3] - 8, y - 11, required, 9.0, align="right", bold=last)
        y -= 15
        p.rule(
            MARGIN_X, y, MARGIN_X + totals_w, y, 0.35 if not last else 0.8, 0.6 if not last else 0
        )
    totals_bottom = y
    # Verdict box.
    vx = MARGIN_X + totals_w + 14
    vtop = top - 10
    vh = 14 + 20 + 14.0 * len(verdict_lines) + 8
    colour = _OK_COLOUR if ok else _FAIL_COLOUR
    p.box(vx, vtop - vh, verdict_w, vh, stroke=colour, width=1.2)
    p.text(vx + 10, vtop - 22, verdict_head, 11.5, bold=True, colour=colour)
    p.lines(vx + 10, vtop - 22 - 20, verdict_lines, 9.0, 14.0)
    y = min(totals_bottom, vtop - vh) - 22
    # Issue block: issuer and date on the right, key id on the left.
    right = MARGIN_X + CONTENT_W
    p.text(right, y, f"签发机构：{_clean(data.issuer_name)}", 10.0, align="right", bold=True)
    p.text(right, y - 17, f"签发日期：{_cn_date(data.issued_on)}", 10.0, align="right")
    p.text(MARGIN_X, y, f"证书编号：{_clean(data.certificate_number)}", 8.0, colour=_GREY)
    p.text(MARGIN_X, y - 12, f"签名密钥：{_clean(data.key_id)}", 8.0, colour=_GREY)
    y -= 52
    p.lines(MARGIN_X, y, [*note_lines, *explain], 7.0, 10.0, colour=_GREY)


# --- completion certificate -------------------------------------------------------------------


def render_completion(
    data: CompletionData,
    attachments: Sequence[Attachment] = (),
    *,
    fonts: FontSet | None = None,
) -> bytes:
    """The one-page completion certificate (结业证明) PDF (unsigned) for ``data``."""
    fonts = fonts or load_fonts()
    for name in ("register_name", "holder_name", "masked_id", "certificate_number", "verify_url"):
        if not _clean(getattr(data, name)):
            raise CertificateInputError(
                f"completion {name}: expected text, found {getattr(data, name)!r}"
            )
    rec = data.record
    if rec.end < rec.start:
        raise CertificateInputError(
            f"record {rec.record_id}: expected end date on or after start {rec.start}, found {rec.end}"
        )
    matrix = qr_matrix(data.verify_url)
    number = _clean(data.certificate_number)
    holder = _clean(data.holder_name)
    register = _clean(data.register_name)
    hours = _hours(rec.hours, f"record {rec.record_id} hours")
    dates = (
        _cn_date(rec.start)
        if rec.start == rec.end
        else f"{_cn_date(rec.start)} 至 {_cn_date(rec.end)}"
    )

    frame = 26.0
    inner_x = MARGIN_X + 14
    inner_w = CONTENT_W - 28
    label_w = 92.0
    value_w = inner_w - label_w - 16
    size, leading = 10.5, 15.0
    pairs = [
        ("姓名", holder),
        ("身份证号", data.masked_id),
        ("工作单位", data.employer),
        ("项目（课程）", rec.class_title),
        ("课程编号", rec.class_code),
        ("继续教育基地", rec.base_name),
        ("起止日期", dates),
        ("科目类别", rec.category),
        ("培训形式", rec.mode),
        ("学时", f"{hours} 学时"),
        ("考核结果", rec.result),
        ("记录编号", rec.record_id),
    ]
    if rec.note:
        pairs.append(("备注", rec.note))
    table = [(label, wrap(fonts, _clean(value), value_w, size)) for label, value in pairs]
    statement = wrap(
        fonts,
        f"　　兹证明 {holder} 参加下列继续教育项目，考核结果为{_clean(rec.result)}，"
        f"计 {hours} 学时，记入《{register}》。特此证明。",
        inner_w,
        12.0,
    )
    url_w = 230.0
    url_lines = _balanced(fonts, data.verify_url, url_w, 6.0)

    buffer = io.BytesIO()
    canvas = _new_canvas(
        buffer,
        title="继续教育结业证明",
        subject=f"结业证明，记入《{register}》，证书编号 {number}",
        author=_clean(data.issuer_name),
    )
    p = _Painter(canvas, fonts)
    # Frame: a heavy outer and a light inner rule.
    p.box(
        frame,
        frame + 22,
        PAGE_W - 2 * frame,
        PAGE_H - 2 * frame - 22,
        stroke="0.55 0.12 0.1 RG",
        width=2.0,
    )
    p.box(
        frame + 5,
        frame + 27,
        PAGE_W - 2 * frame - 10,
        PAGE_H - 2 * frame - 32,
        stroke="0.55 0.12 0.1 RG",
        width=0.6,
    )

    y = PAGE_H - 64
    p.text(PAGE_W - MARGIN_X - 8, y, f"证书编号：{number}", 8.5, align="right", colour=_GREY)
    y -= 52
    p.text(PAGE_W / 2, y, "结　业　证　明", 28.0, align="center", bold=True)
    y -= 26
    reg_size = _title_size(fonts, f"《{register}》", 11.0, inner_w)
    p.text(PAGE_W / 2, y, f"《{register}》", reg_size, align="center", colour=_GREY)
    y -= 36
    p.lines(inner_x, y, statement, 12.0, 22.0)
    y -= 22.0 * len(statement) + 4

    # Details table.
    p.rule(inner_x, y, inner_x + inner_w, y, 1.0)
    for label, values in table:
        h = leading * len(values) + 10
        p.box(inner_x, y - h, label_w, h, fill="0.94 g")
        baseline = y - 6.5 - size * 0.88
        p.text(inner_x + 8, baseline, label, size, colour=_GREY)
        p.lines(inner_x + label_w + 8, baseline, values, size, leading, bold=label == "姓名")
        y -= h
        p.rule(inner_x, y, inner_x + inner_w, y, 0.35, 0.6)
    p.rule(inner_x, y, inner_x + inner_w, y, 1.0)

    # QR (left) and issue block (right), anchored above the footer.
    qr_side = (matrix.size + 2 * QUIET_ZONE) * QR_MODULE
    url_h = 7.5 * len(url_lines)
    qy = BODY_BOTTOM + 24 + url_h
    if y - 24 < qy + qr_side:
        raise CertificateInputError(
            f"completion certificate {number}: expected the record to fit one page, found the "
            f"details table too long ({len(pairs)} fields, {sum(len(v) for _, v in table)} lines)"
        )
    qx = inner_x - QUIET_ZONE * QR_MODULE
    p.qr(matrix, qx, qy)
    p.text(qx + qr_side / 2, qy - 9, "扫码核验", 9.0, align="center", bold=True)
    p.lines(inner_x, qy - 20, url_lines, 6.0, 7.5, colour=_GREY)
    p.link(data.verify_url, (inner_x, qy - 20 - url_h + 6, inner_x + url_w, qy - 13))
    right = inner_x + inner_w
    iy = qy + qr_side - 30
    p.text(right, iy, f"签发机构：{_clean(data.issuer_name)}", 11.0, align="right", bold=True)
    p.text(right, iy - 20, f"签发日期：{_cn_date(data.issued_on)}", 11.0, align="right")
    p.text(right, iy - 38, f"签名密钥：{_clean(data.key_id)}", 7.5, align="right", colour=_GREY)
    note = _attachment_note(attachments)
    if note:
        p.lines(
            right,
            iy - 52,
            wrap(fonts, note, inner_w - url_w - 30, 7.0),
            7.0,
            9.5,
            align="right",
            colour=_GREY,
        )
    _footer(p, 1, 1, number, holder, rule=False)  # the frame already closes the page
    p.finish_page()
    _embed(canvas, attachments)
    _save(canvas)
    return buffer.getvalue()


# --- attachments back out ---------------------------------------------------------------------


def extract_attachments(pdf: bytes) -> dict[str, bytes]:
    """The embedded files of ``pdf`` (latest revision, so also after signing), by name.

    Reads the catalog's /Names /EmbeddedFiles name tree (with /Kids) using pyHanko's reader;
    checks each file's /Params /Size and MD5 /CheckSum when present.  Raises
    `AttachmentError` for an unreadable PDF, a malformed tree, a duplicated name or a file that
    does not match its size or checksum.
    """
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        root = reader.root
        names = _get(root, "/Names")
        if names is None or "/EmbeddedFiles" not in names:
            return {}
        out: dict[str, bytes] = {}
        _walk_name_tree(names["/EmbeddedFiles"], out, depth=0)
        return out
    except AttachmentError:
        raise
    except Exception as exc:  # a damaged PDF makes pyHanko (and zlib) raise many kinds
        raise AttachmentError(f"embedded files: expected a readable PDF, found: {exc}") from exc


def _get(d: Any, key: str) -> Any:
    """``d[key]`` dereferenced (pyHanko's ``get`` would return the raw indirect reference)."""
    return d[key] if key in d else None  # noqa: SIM401 - d.get does not dereference


def _walk_name_tree(node: Any, out: dict[str, bytes], depth: int) -> None:
    if depth > 32:
        raise AttachmentError("embedded files: expected a name tree, found one nested > 32 deep")
    for kid in _get(node, "/Kids") or ():
        _walk_name_tree(kid.get_object(), out, depth + 1)
    entries = _get(node, "/Names") or ()
    if len(entries) % 2:
        raise AttachmentError(
            f"embedded files: expected key/value pairs in /Names, found {len(entries)} items"
        )
    for i in range(0, len(entries), 2):
        key = str(entries[i])
        spec = entries[i + 1].get_object()
        name = str(_get(spec, "/UF") or _get(spec, "/F") or key)
        ef = _get(spec, "/EF")
        if ef is None:
            raise AttachmentError(f"embedded file {name!r}: expected an /EF dictionary, found none")
        stream = _get(ef, "/UF") or _get(ef, "/F")
        if stream is None:
            raise AttachmentError(f"embedded file {name!r}: expected a file stream, found none")
        body = stream.data
        params = _get(stream, "/Params")
        if params is not None:
            size = _get(params, "/Size")
            if size is not None and int(size) != len(body):
                raise AttachmentError(
                    f"embedded file {name!r}: expected {int(size)} bytes (/Size), found {len(body)}"
                )
            checksum = _get(params, "/CheckSum")
            if checksum is not None:
                expected = bytes(checksum.original_bytes)
                found = hashlib.md5(body).digest()  # noqa: S324 - PDF's /CheckSum is MD5
                if expected != found:
                    raise AttachmentError(
                        f"embedded file {name!r}: expected MD5 {expected.hex()} (/CheckSum), "
                        f"found {found.hex()}"
                    )
        if name in out:
            raise AttachmentError(f"embedded files: expected unique names, found {name!r} twice")
        out[name] = body


# --- many at once -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RenderJob:
    """One document for `render_many`."""

    data: TranscriptData | CompletionData
    attachments: tuple[Attachment, ...] = ()


_worker_fonts: FontSet | None = None


def _init_worker(font: str | None) -> None:
    global _worker_fonts
    _worker_fonts = load_fonts(font)


def _render_job(job: RenderJob) -> bytes:
    fonts = _worker_fonts or load_fonts()
    if isinstance(job.data, TranscriptData):
        return render_transcript(job.data, job.attachments, fonts=fonts)
    return render_completion(job.data, job.attachments, fonts=fonts)


def render_many(
    jobs: Iterable[RenderJob],
    workers: int | None = None,
    *,
    font: str | Path | FontSpec | None = None,
    chunksize: int = 8,
) -> list[bytes]:
    """Render ``jobs`` in a pool of ``workers`` processes (default: one per core), in order.

    The fonts (``font`` as for `load_fonts`) are parsed here first, so workers started by
    ``fork`` (the default on Linux up to Python 3.13) inherit them instead of spending ~0.3 s
    each re-parsing; with another start method each worker parses them once.  Jobs travel in
    chunks so the per-task overhead stays small next to a ~5 ms render.  ``workers=1``
    renders in this process.
    """
    jobs = list(jobs)
    workers = min(workers or os.cpu_count() or 1, max(1, len(jobs)))
    _init_worker(str(font) if font is not None else None)
    if workers == 1:
        return [_render_job(job) for job in jobs]
    with ProcessPoolExecutor(
        max_workers=workers,
        initializer=_init_worker,
        initargs=(str(font) if font is not None else None,),
    ) as pool:
        return list(pool.map(_render_job, jobs, chunksize=chunksize))
