"""The verification page as a person meets it: a real server, a certificate PDF, its QR code read
from a raster of the printed page, and the URL in that code opened in a real (headless)
Chromium, first while the record is valid, then after an authority revoked it.

Nothing is short-circuited: the URL the browser loads is the one decoded from the PDF's pixels
(so the QR's host, case and path are what a phone camera would open), and the verdict is read
from the DOM Chromium rendered.  A phone-sized screenshot of each page is kept under the test's
tmp dir for a person to look at.  Needs the Debian packages ``chromium``, ``poppler-utils``
(pdftoppm) and ``zbar-tools`` (zbarimg): a missing one fails the test, it never skips.
"""

from __future__ import annotations

import html
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import httpx

from tests.browser_support import CHROMIUM, CHROMIUM_FLAGS, require
from tests.completions_support import BATCHES, batch, id_number, record, world
from tests.reliability_support import Server
from verification.report import VERDICTS

CITY = "authority:CN-SC-PZH"
#: What a mid-size phone shows (CSS pixels), portrait.
PHONE = "412,915"
_VERDICT_DIV = re.compile(
    r'<div class="verdict [^"]*" id="verdict" data-verdict="([^"]+)">(.*?)</div>', re.S
)


def _qr_of_pdf(pdf: bytes, where: Path) -> str:
    """The text of the QR code on page 1, read from a 150 dpi raster as a phone would."""
    src = where / "certificate.pdf"
    src.write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1", str(src), str(where / "page")],
        check=True,
        timeout=120,
    )
    (png,) = sorted(where.glob("page*.png"))
    out = subprocess.run(
        ["zbarimg", "--raw", "-q", str(png)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, f"zbarimg found no code on page 1: {out.stderr}"
    codes = out.stdout.split()
    assert len(codes) == 1, f"expected one QR code on page 1, found {codes}"
    return codes[0]


def _chromium(url: str, *extra: str) -> str:
    """Run headless Chromium on url with a fresh profile (nothing cached between loads)."""
    with tempfile.TemporaryDirectory(prefix="celedger-chromium-") as profile:
        out = subprocess.run(
            [
                CHROMIUM,
                *CHROMIUM_FLAGS,
                "--disable-quic",
                f"--user-data-dir={profile}",
                *extra,
                url,
            ],
            capture_output=True,
            timeout=120,
        )
    assert out.returncode == 0, (
        f"chromium exited with {out.returncode}: {out.stderr.decode(errors='replace')[-2000:]}"
    )
    return out.stdout.decode("utf-8")


def _open(url: str, shot: Path) -> tuple[str, str, str]:
    """Load url as a phone would: (verdict, headline, rendered DOM); screenshot to shot."""
    dom = _chromium(url, "--dump-dom")
    _chromium(url, f"--screenshot={shot}", f"--window-size={PHONE}", "--hide-scrollbars")
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", (
        f"expected a PNG screenshot at {shot}"
    )
    found = _VERDICT_DIV.findall(dom)
    assert len(found) == 1, f"expected one verdict element in the rendered DOM, found: {dom[:3000]}"
    verdict, headline = found[0]
    return verdict, html.unescape(headline).strip(), dom


def test_qr_of_a_certificate_opens_the_verdict_in_a_browser(
    settings: Any, ctx: Any, tmp_path: Path
) -> None:
    require(CHROMIUM, "chromium")
    require("/usr/bin/pdftoppm", "poppler-utils")
    require("/usr/bin/zbarimg", "zbar-tools")
    keys = world(ctx)
    server = Server(settings)
    port, base = server.port, server.url
    try:
        with httpx.Client(base_url=base, timeout=120) as http:
            r = http.post(BATCHES, json=batch("browser", record(1)), headers=keys["base:1"])
            assert r.status_code == 201, r.text
            (rid,) = [x["record"] for x in r.json()["records"]]
            r = http.post(f"/api/v1/completions/{rid}/certificate", headers=keys["base:1"])
            assert r.status_code == 201, r.text
            assert r.headers["content-type"] == "application/pdf"
            url = _qr_of_pdf(r.content, tmp_path)
            # The QR is upper case (alphanumeric mode): scheme and host as a camera hands them on.
            assert url.startswith(f"HTTP://127.0.0.1:{port}/V/"), url

            verdict, headline, dom = _open(url, tmp_path / "valid.png")
            assert verdict == "valid", headline
            assert headline == VERDICTS["valid"][0] and "有效" in headline
            # Masked holder on the page; the full name and ID number never.
            assert "张*甲" in dom and "张二甲" not in dom and id_number(1) not in dom
            assert "<script" not in dom
            # One copy for a person to look at (the brief's reviewer), besides the tmp dir's.
            Path("/tmp/verify-page.png").write_bytes((tmp_path / "valid.png").read_bytes())

            r = http.post(
                f"/api/v1/completions/{rid}/revocation",
                json={"reason_code": "fraud", "reason": "x"},
                headers=keys[CITY],
            )
            assert r.status_code == 201, r.text
            verdict, headline, dom = _open(url, tmp_path / "revoked.png")
            assert verdict == "revoked", headline
            assert headline == VERDICTS["revoked"][0] and "有效" not in headline
            assert 'class="verdict bad"' in dom
    finally:
        server.stop()
