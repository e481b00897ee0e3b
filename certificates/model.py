"""What a transcript or a completion certificate says: the renderer's whole input.

The renderer (`certificates.pdf`) never reads a database, a policy or a clock: whoever builds
these objects has already decided every word, number and verdict, so a PDF is a pure function
of its input (the same data gives the same page layout, and a test needs no fixtures beyond
these dataclasses).

Rules the renderer relies on and checks (`CertificateInputError` otherwise):

* Personal data is only what is printed: the holder's name, the **masked** ID number (masking
  happens upstream, server-side), the employer.  Nothing personal goes into the document
  metadata, the QR code or the attachment names.
* Hours are `Decimal` with at most one decimal place (the ledger's quantum); they are printed
  as given (``24``, ``1.5``), never rounded here.
* ``verify_url`` is the exact QR payload.  When it is upper case and URL-safe it is encoded in
  the QR's alphanumeric mode (denser, so a lower QR version).

This module also holds the package's error family: every error the certificate code raises on
purpose is a `CertificateError`, and every message says what was expected and what was found.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

__all__ = [
    "Attachment",
    "AttachmentError",
    "CategoryTotal",
    "CertificateError",
    "CertificateInputError",
    "CompletionData",
    "FontError",
    "MissingGlyphError",
    "QrError",
    "RecordLine",
    "SigningError",
    "TranscriptData",
    "example_completion",
    "example_transcript",
]


# --- errors -----------------------------------------------------------------------------------


class CertificateError(Exception):
    """Base of every error the certificates package raises on purpose."""


class CertificateInputError(CertificateError):
    """The data handed to a renderer is not what a document can be made of."""


class FontError(CertificateError):
    """No usable font: the file is missing, unreadable, or not a TrueType font reportlab embeds."""


class MissingGlyphError(FontError):
    """A character to be printed is in none of the configured fonts (it would print as tofu)."""

    def __init__(self, char: str, text: str, fonts: tuple[str, ...]) -> None:
        self.char = char
        self.text = text
        self.fonts = fonts
        super().__init__(
            f"character {char!r} (U+{ord(char):04X}) in {text!r} has no glyph in any configured "
            f"font: expected one of {', '.join(fonts)} to cover it, found none does; "
            f"configure a fallback font that covers it (e.g. Debian fonts-babelstone-han for "
            f"rare CJK ideographs)"
        )


class QrError(CertificateError):
    """A QR payload cannot be encoded as asked (too long, wrong mode)."""


class AttachmentError(CertificateError):
    """An embedded file is malformed, duplicated or missing."""


class SigningError(CertificateError):
    """A PDF cannot be signed, or signing material (keys, certificates) is unusable."""


# --- document content -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordLine:
    """One completion record as printed: one row of a transcript's table.

    ``record_id`` is the ledger's identifier of the record (printed small, so a verifier can
    look the line up); ``class_code`` and ``class_title`` name the class in the base's approved
    plan; ``category`` is 公需科目 / 专业科目 / 选修科目 (the policy's wording); ``mode`` is 面授 /
    网络 / 会议 / 实践 …; ``result`` is the assessment result (合格 …); ``note`` is an optional
    remark (e.g. "超出网络学时上限 6 学时不计入"), printed under the class title.
    """

    record_id: str
    start: date
    end: date
    class_code: str
    class_title: str
    base_name: str
    category: str
    mode: str
    hours: Decimal
    result: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class CategoryTotal:
    """Counted hours of one category in the period, and the minimum the policy requires.

    ``required`` is ``None`` when the policy sets no minimum for the category (e.g. 选修).
    """

    category: str
    hours: Decimal
    required: Decimal | None


@dataclass(frozen=True, slots=True)
class TranscriptData:
    """A transcript: an extract of the professional's register for one period.

    * ``register_name`` — the register the jurisdiction's records go into, printed as the title
      (e.g. ``四川省专业技术人员继续教育登记证书``; the renderer adds the 《》).
    * ``jurisdiction_name`` — e.g. ``四川省攀枝花市``.
    * ``holder_name`` — printed in full (the document is the holder's own); may contain rare
      characters, including ones outside the BMP (𠮷).
    * ``masked_id`` — the ID number as masked upstream (``5104**********123X``); never the full
      number.
    * ``period_label`` — e.g. ``2026年度`` or ``2024—2026年度``.
    * ``records`` — the table rows, in print order; ``totals`` — one line per category.
    * ``total_hours`` / ``required_hours`` — the period's counted total and requirement.
    * ``verdict_ok`` and ``verdict_lines`` — the compliance verdict as decided by
      `ledger.compliance` and phrased upstream (e.g. ``2026年度：96/90 学时 ✓``).
    * ``issued_on``, ``certificate_number``, ``issuer_name`` — the issue block.
    * ``verify_url`` — the QR payload (the signed token URL); printed small under the QR.
    * ``key_id`` — identifies the key that signed the QR token / credential, printed so a
      verifier can tell which published key to check against.
    """

    register_name: str
    jurisdiction_name: str
    holder_name: str
    masked_id: str
    employer: str
    period_label: str
    records: tuple[RecordLine, ...]
    totals: tuple[CategoryTotal, ...]
    total_hours: Decimal
    required_hours: Decimal
    verdict_ok: bool
    verdict_lines: tuple[str, ...]
    issued_on: date
    certificate_number: str
    issuer_name: str
    verify_url: str
    key_id: str


@dataclass(frozen=True, slots=True)
class CompletionData:
    """A completion certificate (结业证明) for one record.

    Fields as in `TranscriptData`; ``record`` is the one completion the certificate attests.
    """

    register_name: str
    holder_name: str
    masked_id: str
    employer: str
    record: RecordLine
    issued_on: date
    certificate_number: str
    issuer_name: str
    verify_url: str
    key_id: str


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file embedded in the PDF (EmbeddedFiles name tree + the catalog's /AF, /Data).

    ``name`` is the file name a PDF reader shows (e.g. ``credential.json``); ``mime`` its media
    type (``application/json``, ``text/plain``); ``description`` a short human text (shown by
    readers in the attachments pane).
    """

    name: str
    data: bytes
    mime: str
    description: str = ""


# --- example data (demo pages, tests, benchmarks) ----------------------------------------------

_EXAMPLE_CLASSES: tuple[tuple[str, str, str, str], ...] = (
    # (title, base, category, mode)
    (
        "建筑信息模型（BIM）技术在大型公共建筑设计与施工协同中的应用研修班",
        "四川大学继续教育基地",
        "专业科目",
        "面授",
    ),
    (
        "专业技术人员职业道德与诚信建设",
        "四川省人力资源和社会保障厅继续教育网络学院",
        "公需科目",
        "网络",
    ),
    ("钒钛磁铁矿综合利用新工艺", "攀枝花学院专业技术人员继续教育基地", "专业科目", "面授"),
    ("数字经济与人工智能发展前沿讲座", "攀枝花市专业技术人员继续教育网络平台", "公需科目", "网络"),
    ("装配式混凝土结构施工质量控制", "攀钢集团有限公司继续教育基地", "专业科目", "实践"),
    (
        "《中华人民共和国个人信息保护法》解读",
        "四川省人力资源和社会保障厅继续教育网络学院",
        "公需科目",
        "网络",
    ),
    (
        "西南地区生态修复学术年会（第十二届）",
        "中国科学院成都山地灾害与环境研究所",
        "选修科目",
        "会议",
    ),
    (
        "岩土工程勘察新规范宣贯培训班",
        "西南交通大学国家级专业技术人员继续教育基地",
        "专业科目",
        "面授",
    ),
)


def example_transcript(
    records: int = 20,
    *,
    holder_name: str = "张䶮",
    year: int = 2026,
    serial: int = 1,
) -> TranscriptData:
    """A realistic transcript with ``records`` rows (for demo pages, tests and benchmarks).

    Every field is synthetic; the masked ID is masked in the same way the service masks one.
    The verify URL has the shape of the real token URL (about 100 upper-case base32
    characters after ``HTTPS://CE-LEDGER.EXAMPLE/V/``) and differs per ``serial``.
    """
    import base64
    import hashlib

    rows = []
    hours_by_cat: dict[str, Decimal] = {}
    for i in range(records):
        title, base, category, mode = _EXAMPLE_CLASSES[i % len(_EXAMPLE_CLASSES)]
        month = 1 + (i * 11 // max(records, 1)) % 12
        day = 1 + (i * 7) % 25
        start = date(year, month, day)
        length = (0, 1, 2, 4)[i % 4]
        end = date(year, month, min(28, day + length))
        hours = Decimal((4, 6, 8, 12, 16, 24)[i % 6]) + (Decimal("0.5") if i % 5 == 3 else 0)
        rows.append(
            RecordLine(
                record_id=f"R{year}-{serial:05d}-{i + 1:03d}",
                start=start,
                end=end,
                class_code=f"PZH-{year}-{(i * 37) % 900 + 100:03d}",
                class_title=title,
                base_name=base,
                category=category,
                mode=mode,
                hours=hours,
                result="合格" if i % 9 else "优秀",
                note="网络学时超出年度上限部分不计入" if i == 3 else "",
            )
        )
        hours_by_cat[category] = hours_by_cat.get(category, Decimal(0)) + hours
    required = {"公需科目": Decimal(30), "专业科目": Decimal(60), "选修科目": None}
    totals = tuple(
        CategoryTotal(cat, hours_by_cat.get(cat, Decimal(0)), req) for cat, req in required.items()
    )
    total = sum(hours_by_cat.values(), Decimal(0))
    ok = total >= 90 and all(t.required is None or t.hours >= t.required for t in totals)

    def fmt(value: Decimal) -> str:
        return f"{value.normalize():f}"

    def mark(met: bool) -> str:
        return "✓" if met else "✗"

    public = hours_by_cat.get("公需科目", Decimal(0))
    professional = hours_by_cat.get("专业科目", Decimal(0))
    verdict = (
        f"{year}年度：{fmt(total)}/90 学时 {mark(total >= 90)}",
        f"公需科目 {fmt(public)} ≥ 30 {mark(public >= 30)}",
        f"专业科目 {fmt(professional)} ≥ 60（⅔）{mark(professional >= 60)}",
    )
    token = base64.b32encode(hashlib.sha256(f"{serial}".encode()).digest() * 2)
    url = "HTTPS://CE-LEDGER.EXAMPLE/V/" + token.decode().rstrip("=")[:100]
    return TranscriptData(
        register_name="四川省专业技术人员继续教育登记证书",
        jurisdiction_name="四川省攀枝花市",
        holder_name=holder_name,
        masked_id="5104**********123X",
        employer="攀枝花市第一建筑勘察设计研究院有限责任公司",
        period_label=f"{year}年度",
        records=tuple(rows),
        totals=totals,
        total_hours=total,
        required_hours=Decimal(90),
        verdict_ok=ok,
        verdict_lines=verdict,
        issued_on=date(year, 12, 20),
        certificate_number=f"CEL-{year}-{serial:06d}",
        issuer_name="攀枝花市人力资源和社会保障局",
        verify_url=url,
        key_id="celedger.example.cn/log+8f1c2a9e",
    )


def example_completion(*, holder_name: str = "张䶮", serial: int = 1) -> CompletionData:
    """A completion certificate for the first record of `example_transcript`."""
    t = example_transcript(1, holder_name=holder_name, serial=serial)
    return CompletionData(
        register_name=t.register_name,
        holder_name=t.holder_name,
        masked_id=t.masked_id,
        employer=t.employer,
        record=t.records[0],
        issued_on=t.records[0].end,
        certificate_number=f"JY-{t.certificate_number}",
        issuer_name=t.records[0].base_name,
        verify_url=t.verify_url,
        key_id=t.key_id,
    )
