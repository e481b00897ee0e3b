"""Helpers for the tests that put a real server in front of a real headless Chromium (no tests
here): ``test_holder_web.py`` (the /me pages on a phone) and ``test_verify_browser.py`` (the
/V/ page opened from a certificate's QR code).

The server is ``python -m api.cli serve`` in a process group of its own, on the test's database
and data directory; Chromium is the Debian package's.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

CHROMIUM: Final = "/usr/bin/chromium"
ROOT: Final = Path(__file__).resolve().parent.parent
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(settings: Any, port: int, **env: str) -> subprocess.Popen[bytes]:
    """The server on ``port`` with the test's settings (and ``env`` besides), once it answers
    ``/healthz``."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CELEDGER_")}
    environ.update(
        CELEDGER_DATA_DIR=str(settings.data_dir),
        CELEDGER_DATABASE_URL=settings.database_url,
        CELEDGER_ORIGIN=settings.origin,
        # Links the server makes (QR codes, redirects) lead back to this very server.
        CELEDGER_PUBLIC_URL=f"http://127.0.0.1:{port}",
        CELEDGER_LOG_LEVEL="WARNING",
        **env,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--no-migrate"],
        env=environ,
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited at start with code {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    stop(proc)
    raise AssertionError("the server did not answer /healthz within 30 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group, SIGKILL if it is still there after 30 s."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
