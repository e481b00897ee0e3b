"""Transcript and completion-certificate PDFs, checked with the tools a verifier uses.

The PDFs are read back with poppler (``pdftoppm``, ``pdftotext``, ``pdffonts``, ``pdfdetach``,
Debian ``poppler-utils``) and the QR code with ``zbarimg`` (Debian ``zbar-tools``) from a
150 dpi raster, as formats.md asks.  Missing tools fail the tests (they never skip).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
import qrcode
from qrcode import constants as qr_constants
from qrcode import util as qr_util

from certificates.fonts import FontSpec, load_fonts
from certificates.model import (
    Attachment,
    AttachmentError,
    CertificateInputError,
    FontError,
    MissingGlyphError,
    QrError,
    RecordLine,
    TranscriptData,
    example_completion,
    example_transcript,
)
from certificates.pdf import (
    MARGIN_X,
    PAGE_W,
    RenderJob,
    extract_attachments,
    render_completion,
    render_many,
    render_transcript,
    wrap,
)
from certificates.qr import qr_matrix

RARE = "䶮喆堃赟玥龑昇𠮷"  # 𠮷 is U+20BB7, outside the BMP
TOOLS = {
    "pdftoppm": "poppler-utils",
    "pdftotext": "poppler-utils",
    "pdffonts": "poppler-utils",
    "pdfdetach": "poppler-utils",
    "pdfinfo": "poppler-utils",
    "zbarimg": "zbar-tools",
}


def run(*cmd: str | Path) -> str:
    tool = str(cmd[0])
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is required (Debian package {TOOLS.get(tool, '?')})", pytrace=False)
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{cmd} exited {done.returncode}: {done.stderr}")
    return done.stdout


def qr_from_page(pdf: Path, page: int, tmp: Path) -> str:
    """The QR payload decoded by zbarimg from a 150 dpi raster of ``page``."""
    prefix = tmp / f"{pdf.stem}-p{page}"
    run(
        "pdftoppm",
        "-r",
        "150",
        "-png",
        "-f",
        str(page),
        "-l",
        str(page),
        "-singlefile",
        pdf,
        prefix,
    )
    out = run("zbarimg", "--raw", "-q", "-Sdisable", "-Sqrcode.enable", f"{prefix}.png")
    return out.strip()


def token_url(seed: str) -> str:
    """A payload shaped like the real token URL: ~100 upper-case base32 characters."""
    token = base64.b32encode(hashlib.sha512(seed.encode()).digest()).decode().rstrip("=")
    return "HTTPS://CE-LEDGER.EXAMPLE/V/" + token[:100]


ATTACHMENTS = (
    Attachment(
        "credential.json",
        b'{"@context":["https://www.w3.org/ns/credentials/v2"],"type":["VerifiableCredential"]}',
        "application/json",
        "可验证凭证（W3C VC）",
    ),
    Attachment(
        "ledger-proof.txt",
        b"c2sp.org/tlog-proof@v1\nindex 41\nAAAA\n\nceledger.example.cn/log\n42\nBBBB\n",
        "text/plain",
        "账本包含证明",
    ),
)


@pytest.fixture(scope="module")
def transcript() -> TranscriptData:
    data = example_transcript(25, holder_name="𠮷䶮")
    records = list(data.records)
    # Rare surname characters in the other printed fields as well.
    records[1] = dataclasses.replace(records[1], base_name="喆堃赟玥龑昇继续教育基地")
    return dataclasses.replace(data, records=tuple(records), verify_url=token_url("transcript"))


@pytest.fixture(scope="module")
def transcript_pdf(transcript: TranscriptData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pdf") / "transcript.pdf"
    path.write_bytes(render_transcript(transcript, ATTACHMENTS))
    return path


def page_texts(pdf: Path) -> list[str]:
    return run("pdftotext", "-layout", pdf, "-").split("\f")[:-1]


def squash(text: str) -> str:
    """Without whitespace: pdftotext drops the spaces between CJK and digits inconsistently."""
    return "".join(text.split())


# --- the transcript ---------------------------------------------------------------------------


def test_transcript_qr_decodes_to_the_exact_payload(transcript, transcript_pdf, tmp_path):
    assert len(transcript.verify_url) == 128
    assert qr_from_page(transcript_pdf, 1, tmp_path) == transcript.verify_url


def test_transcript_text_holder_hours_verdict(transcript, transcript_pdf):
    pages = page_texts(transcript_pdf)
    assert len(pages) == 2, "25 records continue onto a second page"
    text = "\n".join(pages)
    assert "《四川省专业技术人员继续教育登记证书》" in text
    assert "𠮷䶮" in text  # non-BMP and Extension A, extracted as the real characters
    assert "喆堃赟玥龑昇继续教育基地" in text
    assert transcript.masked_id in text
    total = f"{transcript.total_hours.normalize():f}"
    assert re.search(rf"合计\s+共 25 条记录\s+{re.escape(total)}", text)
    assert "核验结论：符合要求" in text
    for line in transcript.verdict_lines:
        assert squash(line) in squash(text)
    assert "第1页/共2页" in squash(pages[0])
    assert "第2页/共2页" in squash(pages[1])
    # The header row is repeated on the continuation page, and the rows carry on in order.
    assert re.search(r"序号\s+起止日期\s+项目（课程）\s+继续教育基地", pages[1])
    numbers = [int(m) for m in re.findall(r"^\s{0,4}(\d{1,2})\s+2026-", text, re.M)]
    assert numbers == list(range(1, 26))
    # The verification URL is printed in full (it may wrap), next to the QR.
    assert transcript.verify_url in "".join(pages[0].split())


def test_transcript_hours_of_every_record_are_printed(transcript, transcript_pdf):
    text = "\n".join(page_texts(transcript_pdf))
    for rec in transcript.records:
        assert rec.record_id in text
        row = re.search(rf"^.*{re.escape(rec.class_code)}.*$", text, re.M)
        assert row is not None
    assert "12.5" in text and "24.5" in text  # fractional 学时 printed as given


def test_transcript_nothing_outside_the_margins(transcript_pdf):
    """Every word lies inside the page's side margins (nothing clipped or overflowing)."""
    html = run("pdftotext", "-bbox", transcript_pdf, "-")
    boxes = re.findall(
        r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>',
        html,
    )
    assert len(boxes) > 300
    for x0, y0, x1, y1, word in boxes:
        assert float(x0) >= MARGIN_X - 1.0, word
        assert float(x1) <= PAGE_W - MARGIN_X + 1.0, word
        assert float(y0) >= 20.0 and float(y1) <= 842.0 - 20.0, word


def word_boxes(pdf: Path) -> list[list[tuple[float, float, float, float, str]]]:
    """Per page, the word boxes pdftotext reports (x0, y0, x1, y1, text)."""
    html = run("pdftotext", "-bbox", pdf, "-")
    word = r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>'
    return [
        [(float(a), float(b), float(c), float(d), w) for a, b, c, d, w in re.findall(word, page)]
        for page in html.split("<page ")[1:]
    ]


def overlapping_words(pdf: Path) -> list[tuple[int, str, str]]:
    """Pairs of words whose boxes overlap (boxes shrunk by a quarter of their height at top
    and bottom, since pdftotext's boxes span the font's full ascent and descent)."""
    found = []
    for number, boxes in enumerate(word_boxes(pdf), start=1):
        for i, (x0, y0, x1, y1, w) in enumerate(boxes):
            h = (y1 - y0) / 4
            for a0, b0, a1, b1, v in boxes[i + 1 :]:
                k = (b1 - b0) / 4
                if x0 < a1 - 0.5 and a0 < x1 - 0.5 and y0 + h < b1 - k and b0 + k < y1 - h:
                    found.append((number, w, v))
    return found


def test_no_text_overlaps_even_with_long_names(transcript_pdf, tmp_path):
    assert overlapping_words(transcript_pdf) == []
    data = dataclasses.replace(
        example_transcript(18, holder_name="欧阳𠮷䶮龑"),
        register_name="新疆生产建设兵团第十三师专业技术人员继续教育登记证书（专业技术人员继续教育学时登记）",
        employer="中国科学院成都山地灾害与环境研究所西南山地生态修复与可持续发展重点实验室（攀枝花野外观测站）",
    )
    pdf = tmp_path / "long.pdf"
    pdf.write_bytes(render_transcript(data))
    assert len(page_texts(pdf)) == 2
    assert overlapping_words(pdf) == []
    completion = tmp_path / "completion.pdf"
    completion.write_bytes(render_completion(example_completion()))
    assert overlapping_words(completion) == []


def test_transcript_fonts_are_embedded_subsets_with_unicode_maps(transcript_pdf):
    out = run("pdffonts", transcript_pdf)
    cid = [line for line in out.splitlines() if "CID TrueType" in line]
    # One Type 0 font per face used: Zen Hei, BabelStone Han (for 𠮷), DejaVu Sans (for ✓).
    assert len(cid) == 3, out
    for line in cid:
        assert re.search(r"Identity-H\s+yes\s+yes\s+yes", line), line
        assert re.match(r"[A-Z]{6}\+", line), line


def test_transcript_attachments_round_trip(transcript_pdf):
    found = extract_attachments(transcript_pdf.read_bytes())
    assert found == {a.name: a.data for a in ATTACHMENTS}
    # An independent reader sees the same EmbeddedFiles name tree.
    listing = run("pdfdetach", "-list", transcript_pdf)
    assert "2 embedded files" in listing
    assert "credential.json" in listing and "ledger-proof.txt" in listing
    raw = transcript_pdf.read_bytes()
    assert b"/AFRelationship /Data" in raw and b"/AF [" in raw
    assert b"/Subtype /application#2Fjson" in raw


def test_transcript_metadata_has_no_personal_data(transcript, transcript_pdf):
    info = run("pdfinfo", transcript_pdf)
    assert "继续教育学时证明" in info
    for personal in (transcript.holder_name, transcript.masked_id, transcript.employer):
        assert personal not in info


def test_transcript_without_records_or_attachments(tmp_path):
    data = dataclasses.replace(
        example_transcript(0),
        verdict_ok=False,
        verdict_lines=("2026年度：0/90 学时 ✗",),
    )
    pdf = tmp_path / "empty.pdf"
    pdf.write_bytes(render_transcript(data))
    text = "\n".join(page_texts(pdf))
    assert "本统计期间无学时记录" in text
    assert "核验结论：未达到要求" in text
    assert "第1页/共1页" in squash(text)
    assert extract_attachments(pdf.read_bytes()) == {}


def test_long_transcript_paginates_with_page_numbers(tmp_path):
    pdf = tmp_path / "long.pdf"
    pdf.write_bytes(render_transcript(example_transcript(90)))
    pages = page_texts(pdf)
    assert len(pages) >= 5
    for i, page in enumerate(pages, start=1):
        assert f"第{i}页/共{len(pages)}页" in squash(page)
        assert "项目（课程）" in page or i == len(pages)


def test_the_verdict_never_stands_alone_on_a_page(tmp_path):
    """Whatever the number of records, the last page carries table rows with the totals."""
    pdf = tmp_path / "n.pdf"
    for n in range(6, 40):
        pdf.write_bytes(render_transcript(example_transcript(n)))
        last = page_texts(pdf)[-1]
        assert "序号" in last and "核验结论" in last, n


# --- the completion certificate ---------------------------------------------------------------


def test_completion_certificate(tmp_path):
    data = dataclasses.replace(
        example_completion(holder_name="龑昇"), verify_url=token_url("completion")
    )
    pdf = tmp_path / "completion.pdf"
    pdf.write_bytes(render_completion(data, ATTACHMENTS))
    pages = page_texts(pdf)
    assert len(pages) == 1
    text = pages[0]
    assert "龑昇" in text and data.masked_id in text
    assert data.record.record_id in text and data.record.class_code in text
    assert f"{data.record.hours.normalize():f}学时" in squash(text)
    assert "第1页/共1页" in squash(text)
    assert qr_from_page(pdf, 1, tmp_path) == data.verify_url
    assert extract_attachments(pdf.read_bytes()) == {a.name: a.data for a in ATTACHMENTS}


def test_completion_too_long_for_one_page_is_refused():
    data = example_completion()
    long_record = dataclasses.replace(data.record, note="很长的备注。" * 400)
    with pytest.raises(CertificateInputError, match="expected the record to fit one page"):
        render_completion(dataclasses.replace(data, record=long_record))


# --- input checks -----------------------------------------------------------------------------


def test_hours_with_two_decimals_are_refused():
    data = example_transcript(2)
    bad = dataclasses.replace(data.records[0], hours=Decimal("1.25"))
    with pytest.raises(CertificateInputError, match=r"at most one decimal place.*1\.25"):
        render_transcript(dataclasses.replace(data, records=(bad, data.records[1])))


def test_a_row_taller_than_a_page_is_refused():
    data = example_transcript(2)
    huge = dataclasses.replace(data.records[0], note="备注内容" * 900)
    with pytest.raises(CertificateInputError, match=r"record R2026-00001-001: expected its row"):
        render_transcript(dataclasses.replace(data, records=(huge, data.records[1])))


def test_end_before_start_is_refused():
    data = example_transcript(1)
    rec = data.records[0]
    bad = dataclasses.replace(rec, start=rec.end.replace(day=28), end=rec.end.replace(day=1))
    with pytest.raises(CertificateInputError, match="end date on or after start"):
        render_transcript(dataclasses.replace(data, records=(bad,)))


def test_attachment_names_and_types_are_checked():
    data = example_transcript(1)
    twice = (ATTACHMENTS[0], ATTACHMENTS[0])
    with pytest.raises(AttachmentError, match="unique names"):
        render_transcript(data, twice)
    with pytest.raises(AttachmentError, match="MIME type"):
        render_transcript(data, (Attachment("a.json", b"{}", "json"),))
    with pytest.raises(AttachmentError, match="plain file name"):
        render_transcript(data, (Attachment("../a.json", b"{}", "application/json"),))


def test_extract_attachments_detects_a_changed_file():
    pdf = render_transcript(example_transcript(1), ATTACHMENTS)
    # The stored stream is compressed, so change the recorded /Size: a file that does not
    # match its own parameters must be refused, not returned.
    size = len(ATTACHMENTS[0].data)
    tampered = pdf.replace(b"/Size %d" % size, b"/Size %d" % (size + 1), 1)
    assert tampered != pdf
    with pytest.raises(AttachmentError, match=f"expected {size + 1} bytes"):
        extract_attachments(tampered)


# --- fonts ------------------------------------------------------------------------------------


def test_rare_characters_are_covered_and_non_bmp_comes_from_a_fallback():
    fonts = load_fonts()
    runs = fonts.runs("张" + RARE)
    faces = {ch: fonts.faces[i].spec.path.name for i, run in runs for ch in run}
    assert faces["䶮"] == "wqy-zenhei.ttc"  # Extension A is in the primary
    assert faces["𠮷"] == "BabelStoneHan.ttf"  # Extension B only in the fallback


def test_a_character_no_font_has_raises_naming_it():
    only_primary = load_fonts(fallbacks=())
    with pytest.raises(MissingGlyphError, match=r"'𠮷' \(U\+20BB7\)") as caught:
        only_primary.check("𠮷田")
    assert caught.value.char == "𠮷"
    with pytest.raises(MissingGlyphError):
        render_transcript(
            dataclasses.replace(example_transcript(1), holder_name="𠮷田"), fonts=only_primary
        )


def test_font_path_override_and_errors(tmp_path):
    zenhei = load_fonts().faces[0].spec
    assert load_fonts(f"{zenhei.path}#0").faces[0].spec == FontSpec(zenhei.path, 0)
    with pytest.raises(FontError, match="found no file"):
        load_fonts(tmp_path / "missing.ttf")
    junk = tmp_path / "junk.ttf"
    junk.write_bytes(b"OTTO" + bytes(200))
    with pytest.raises(FontError, match=str(junk)):
        load_fonts(junk)


# --- line breaking ----------------------------------------------------------------------------


def test_wrap_follows_kinsoku_and_keeps_words():
    fonts = load_fonts()
    text = "建筑信息模型（BIM）技术在大型公共建筑设计与施工协同中的应用，研修班。" * 3
    for width in (60.0, 95.0, 140.0, 200.0):
        lines = wrap(fonts, text, width, 8.0)
        assert "".join(lines) == text
        for line in lines:
            assert fonts.width(line, 8.0) <= width + 8.0  # at most one pushed-in character
            assert line[0] not in "，。）", lines
            assert line[-1] not in "（", lines
        assert all("BIM" in line or "B" not in line for line in lines)  # BIM never split


# --- QR codes ---------------------------------------------------------------------------------


def _qrcode_reference(payload: str, alphanumeric: bool) -> tuple[int, list[list[bool]]]:
    q = qrcode.QRCode(error_correction=qr_constants.ERROR_CORRECT_M, border=0)
    if alphanumeric:
        q.add_data(qr_util.QRData(payload.encode(), mode=qr_util.MODE_ALPHA_NUM))
    else:
        q.add_data(payload)
    q.make(fit=True)
    return q.version, q.modules


@pytest.mark.parametrize("n", range(0, 160, 7))
def test_qr_matrix_equals_qrcode_output(n):
    """The fast mask choice gives exactly the matrix qrcode itself makes (same mask too)."""
    upper = token_url(f"u{n}")[: 29 + n]
    lower = upper.lower() + "?x=1"
    for payload, alnum in ((upper, True), (lower, False)):
        matrix = qr_matrix(payload)
        assert matrix.alphanumeric is alnum
        version, modules = _qrcode_reference(payload, alnum)
        assert matrix.version == version
        assert matrix.as_lists() == modules


def test_qr_token_url_uses_alphanumeric_mode_and_a_low_version():
    matrix = qr_matrix(token_url("v"))
    assert matrix.alphanumeric and matrix.version == 6  # byte mode would need version 8
    assert qr_matrix(token_url("v").lower()).version == 8


def test_qr_limits():
    with pytest.raises(QrError, match="expected at most version 10"):
        qr_matrix("HTTPS://X/" + "A" * 400)
    with pytest.raises(QrError, match="found 'ab'"):
        qr_matrix("HTTPS://ab", require_alphanumeric=True)
    with pytest.raises(QrError, match="empty"):
        qr_matrix("")


# --- many at once -----------------------------------------------------------------------------


def test_render_many_in_a_pool_matches_single_rendering(tmp_path):
    jobs = [RenderJob(example_transcript(3, serial=i)) for i in range(4)]
    jobs.append(RenderJob(example_completion(serial=9), ATTACHMENTS))
    pdfs = render_many(jobs, workers=2, chunksize=2)
    assert len(pdfs) == 5
    for job, pdf in zip(jobs, pdfs, strict=True):
        path = tmp_path / "m.pdf"
        path.write_bytes(pdf)
        text = "\n".join(page_texts(path))
        assert job.data.certificate_number in text
    assert extract_attachments(pdfs[-1]).keys() == {"credential.json", "ledger-proof.txt"}


def test_record_line_is_the_rows_whole_input():
    rec = example_transcript(1).records[0]
    assert isinstance(rec, RecordLine)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.hours = Decimal(1)  # type: ignore[misc]
