"""Helpers for the tests that put a real server (``tests.reliability_support.Server``) in front
of a real headless Chromium (no tests here): ``test_holder_web.py`` (the /me pages on a phone)
and ``test_verify_browser.py`` (the /V/ page opened from a certificate's QR code).  Chromium is
the Debian package's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest

CHROMIUM: Final = "/usr/bin/chromium"
#: Headless, and quiet: no sandbox (tests may run as root), no first-run pages, no proxy, no
#: traffic of Chromium's own.  Each caller adds its profile directory and what it needs.
CHROMIUM_FLAGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-proxy-server",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def require(path: str, package: str) -> None:
    """Fail (never skip) when a program the test drives is not installed."""
    if not Path(path).exists():
        pytest.fail(
            f"{path} is missing: expected the Debian package {package} "
            f"(apt-get install -y {package})",
            pytrace=False,
        )
