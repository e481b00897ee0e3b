"""The execution summary (年度计划执行情况总结) as a PDF, in an embedded CJK font.

The figures come from ``ledger.registry.summary`` (pure); only the typesetting lives here,
next to the certificates, so that every PDF the service makes embeds the same fonts.
"""

from __future__ import annotations

import html
import io
from pathlib import Path

from certificates.fonts import FontSpec, default_primary
from ledger.registry.summary import CLASS_HEADER, ExecutionSummary, class_cells, key_figures

__all__ = ["summary_pdf"]


def summary_pdf(summary: ExecutionSummary, font: str | Path | FontSpec | None = None) -> bytes:
    """The summary as a landscape A4 PDF in an embedded CJK TrueType font (subset by
    reportlab), so that it prints the same on a machine with no Chinese fonts."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    spec = FontSpec.parse(font) if font is not None else default_primary()
    name = f"CELedgerCJK-{abs(hash(str(spec))) % 10**8}"
    if name not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(name, str(spec.path), subfontIndex=spec.subfont_index))
    CJK_FONT = name
    title = ParagraphStyle("title", fontName=CJK_FONT, fontSize=16, leading=22, spaceAfter=6)
    body = ParagraphStyle("body", fontName=CJK_FONT, fontSize=8.5, leading=11)
    grid = TableStyle(
        [
            ("FONTNAME", (0, 0), (-1, -1), CJK_FONT),
            ("FONTSIZE", (0, 0), (-1, -1), 8.5),
            ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ]
    )

    def cell(text: str) -> Paragraph:
        # Paragraph wraps long titles; its mini-markup needs &, < and > escaped.
        return Paragraph(html.escape(text, quote=False), body)

    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=landscape(A4),
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=f"{summary.base_name} {summary.year} 年度计划执行情况总结",
        author="CE Ledger",
    )
    figures = Table(
        [[cell(k), cell(v)] for k, v in key_figures(summary)], colWidths=[70 * mm, 150 * mm]
    )
    figures.setStyle(grid)
    classes = Table(
        [[cell(h) for h in CLASS_HEADER]]
        + [[cell(v) for v in class_cells(c)] for c in summary.classes],
        repeatRows=1,
    )
    classes.setStyle(
        TableStyle([*grid.getCommands(), ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke)])
    )
    doc.build(
        [
            Paragraph(
                html.escape(
                    f"{summary.base_name} {summary.year} 年度计划执行情况总结", quote=False
                ),
                title,
            ),
            figures,
            Spacer(1, 6 * mm),
            classes,
        ]
    )
    return buf.getvalue()
