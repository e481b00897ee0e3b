"""Benchmark: transcript PDFs per second, against a bare reportlab baseline; PAdES signing cost.

    python bench/bench_certificates.py [--docs 200] [--runs 5] [--records 20] [--bulk N]

Figures printed (medians of ``--runs`` runs):

* **ours**: `certificates.pdf.render_transcript` of ``--docs`` distinct transcripts (each
  ``--records`` records, its own QR payload and number), unsigned, on ONE core (the process
  is pinned to one CPU);
* **baseline**: the same text at the same places drawn the plain reportlab way — the CJK
  TrueType font registered with ``pdfmetrics.registerFont(TTFont(...))``, one
  ``drawString`` per line — plus the QR made the naive way, ``qrcode.make`` → PIL image →
  ``canvas.drawImage``; same pages, default reportlab settings;
* the ratio ours / baseline (target: ours >= 150 transcripts/s);
* PAdES B-B signing with pyHanko and the development PKI, in ms per document;
* with ``--bulk N``: N transcripts through `certificates.pdf.render_many` on every core.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import qrcode
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from bench.common import median, row
from certificates import pdf as cpdf
from certificates.fonts import load_fonts
from certificates.model import TranscriptData, example_transcript
from certificates.pades import DevelopmentPKI, sign_pdf
from certificates.qr import QUIET_ZONE, qr_matrix

TextItem = tuple[int, float, float, str, float, str]  # page, x, y, text, size, align


def capture_text(data: TranscriptData) -> tuple[list[TextItem], tuple[float, float, float]]:
    """The lines our renderer draws for ``data`` (page, position, size, alignment) and where
    its QR goes, recorded from one render, so the baseline draws exactly the same."""
    items: list[TextItem] = []
    qr_at: list[tuple[float, float, float]] = []
    page = [1]
    original_text = cpdf._Painter.text
    original_finish = cpdf._Painter.finish_page
    original_qr = cpdf._Painter.qr

    def text(self: Any, x: float, y: float, s: str, size: float, **kw: Any) -> float:
        items.append((page[0], x, y, s, size, kw.get("align", "left")))
        return float(original_text(self, x, y, s, size, **kw))

    def finish(self: Any) -> None:
        page[0] += 1
        original_finish(self)

    def qr(self: Any, matrix: Any, x: float, y: float) -> float:
        side = float(original_qr(self, matrix, x, y))
        qr_at.append((x, y, side))
        return side

    cpdf._Painter.text = text  # type: ignore[method-assign]
    cpdf._Painter.finish_page = finish  # type: ignore[method-assign]
    cpdf._Painter.qr = qr  # type: ignore[method-assign]
    try:
        cpdf.render_transcript(data)
    finally:
        cpdf._Painter.text = original_text  # type: ignore[method-assign]
        cpdf._Painter.finish_page = original_finish  # type: ignore[method-assign]
        cpdf._Painter.qr = original_qr  # type: ignore[method-assign]
    return items, qr_at[0]


def baseline_render(items: list[TextItem], qr_at: tuple[float, float, float], url: str) -> bytes:
    """Bare reportlab: drawString per line with a registered TTFont; QR via PIL."""
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4)
    image = qrcode.make(url, error_correction=qrcode.constants.ERROR_CORRECT_M, border=QUIET_ZONE)
    qx, qy, side = qr_at
    canvas.drawImage(ImageReader(image.get_image()), qx, qy, side, side)
    page = 1
    for item_page, x, y, text, size, align in items:
        while item_page > page:
            canvas.showPage()
            page += 1
        canvas.setFont("BaselineCJK", size)
        if align == "center":
            canvas.drawCentredString(x, y, text)
        elif align == "right":
            canvas.drawRightString(x, y, text)
        else:
            canvas.drawString(x, y, text)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


@dataclass
class Rate:
    """Medians over runs: items per wall-clock second, and per CPU second (this process and
    its finished children), which other work on the machine disturbs much less."""

    wall: float
    cpu: float
    runs: list[float]


def rate(fn: Callable[[], object], count: int, runs: int) -> Rate:
    walls, cpus = [], []
    for _ in range(runs):
        c0 = time.process_time() + resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
        t0 = time.perf_counter()
        fn()
        walls.append(count / (time.perf_counter() - t0))
        c1 = time.process_time() + resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
        cpus.append(count / max(c1 - c0, 1e-9))
    return Rate(median(walls), median(cpus), walls)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=200, help="transcripts per timed run")
    parser.add_argument("--records", type=int, default=20, help="records per transcript")
    parser.add_argument("--runs", type=int, default=5, help="timed runs (the median is printed)")
    parser.add_argument("--bulk", type=int, default=0, help="also render N in a process pool")
    parser.add_argument("--font", default=None, help="primary CJK font (CELEDGER_CJK_FONT)")
    args = parser.parse_args()

    all_cpus = os.sched_getaffinity(0)
    one_cpu = {min(all_cpus)}
    os.sched_setaffinity(0, one_cpu)  # "on ONE core"
    fonts = load_fonts(args.font)
    primary = fonts.faces[0].spec
    pdfmetrics.registerFont(
        TTFont("BaselineCJK", str(primary.path), subfontIndex=primary.subfont_index)
    )

    docs = [example_transcript(args.records, serial=i) for i in range(args.docs)]
    captured = [capture_text(d) for d in docs]
    # Warm both paths (font parsing, caches) outside the timings.
    cpdf.render_transcript(docs[0], fonts=fonts)
    baseline_render(*captured[0], docs[0].verify_url)
    sizes = [len(cpdf.render_transcript(d, fonts=fonts)) for d in docs[:20]]
    base_sizes = [
        len(baseline_render(*c, d.verify_url))
        for c, d in zip(captured[:20], docs[:20], strict=True)
    ]

    print(
        f"certificates benchmark: {args.docs} transcripts of {args.records} records per run, "
        f"median of {args.runs} runs, pinned to CPU {min(one_cpu)}; primary font {primary}; "
        f"load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    row("", "wall-clock", "per CPU second", "ms/doc (wall)", "size")
    ours = rate(
        lambda: [cpdf.render_transcript(d, fonts=fonts) for d in docs], args.docs, args.runs
    )
    row(
        "ours: render_transcript (unsigned)",
        f"{ours.wall:.1f}/s",
        f"{ours.cpu:.1f}/s",
        f"{1000 / ours.wall:.2f}",
        f"{median(sizes) / 1024:.0f} KiB",
    )
    base = rate(
        lambda: [baseline_render(*c, d.verify_url) for c, d in zip(captured, docs, strict=True)],
        args.docs,
        args.runs,
    )
    row(
        "baseline: reportlab + qrcode/PIL",
        f"{base.wall:.1f}/s",
        f"{base.cpu:.1f}/s",
        f"{1000 / base.wall:.2f}",
        f"{median(base_sizes) / 1024:.0f} KiB",
    )
    row("ratio ours / baseline", f"{ours.wall / base.wall:.2f}x", f"{ours.cpu / base.cpu:.2f}x")
    row(
        "target >= 150 transcripts/s",
        "met" if ours.wall >= 150 else "NOT met",
        "met" if ours.cpu >= 150 else "NOT met",
    )
    print(
        f"  runs/s (wall) ours: {', '.join(f'{r:.0f}' for r in ours.runs)}; "
        f"baseline: {', '.join(f'{r:.0f}' for r in base.runs)}"
    )
    qr = rate(lambda: [qr_matrix.__wrapped__(d.verify_url) for d in docs], args.docs, args.runs)
    row("  of which the QR matrix", f"{1000 / qr.wall:.2f} ms", f"{1000 / qr.cpu:.2f} ms CPU")

    with tempfile.TemporaryDirectory(prefix="celedger-bench-pki-") as tmp:
        signer = DevelopmentPKI.load_or_create(tmp).signer()
        unsigned = [cpdf.render_transcript(d, fonts=fonts) for d in docs[: min(50, len(docs))]]
        sign_pdf(unsigned[0], signer)
        signs = rate(lambda: [sign_pdf(p, signer) for p in unsigned], len(unsigned), args.runs)
        row(
            "PAdES B-B signing (pyHanko, P-256)",
            f"{1000 / signs.wall:.1f} ms/doc",
            f"{1000 / signs.cpu:.1f} ms CPU",
        )

    if args.bulk:
        os.sched_setaffinity(0, all_cpus)  # the pool's workers inherit the affinity
        workers = len(all_cpus)
        jobs = [
            cpdf.RenderJob(example_transcript(args.records, serial=i)) for i in range(args.bulk)
        ]
        bulk = rate(lambda: cpdf.render_many(jobs, workers, font=args.font), args.bulk, args.runs)
        row(
            f"bulk: render_many, {workers} workers",
            f"{bulk.wall:.1f}/s",
            f"{bulk.cpu:.1f}/s",
            f"{bulk.wall / ours.wall:.2f}x one core",
        )
        print(f"  runs/s (wall) bulk: {', '.join(f'{r:.0f}' for r in bulk.runs)}")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
