"""A missing or invalid setting stops `celedger serve` before it serves, with a message naming
the setting (and never a secret's value).  Each case runs the real command line in a
subprocess with a clean environment, in an empty working directory (no stray .env)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

KEY = base64.b64encode(bytes(range(32))).decode()


def _serve(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CELEDGER_")}
    clean.update({"CELEDGER_DATA_DIR": str(tmp_path / "data"), **env})
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args, "serve", "--port", "1"],
        cwd=tmp_path,
        env={**clean, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CELEDGER_ORIGIN": "not an origin!"}, "CELEDGER_ORIGIN"),
        ({"CELEDGER_VERIFY_RATE_PER_MINUTE": "-1"}, "CELEDGER_VERIFY_RATE_PER_MINUTE"),
        ({"CELEDGER_MAX_BATCH_ROWS": "many"}, "CELEDGER_MAX_BATCH_ROWS"),
        ({"CELEDGER_PUBLIC_URL": "ftp://x"}, "CELEDGER_PUBLIC_URL"),
        ({"CELEDGER_LOG_FORMAT": "xml"}, "CELEDGER_LOG_FORMAT"),
        ({"CELEDGER_ENVIRONMENT": "staging"}, "CELEDGER_ENVIRONMENT"),
        # Production has no embedded-database default.
        ({"CELEDGER_ENVIRONMENT": "production"}, "CELEDGER_DATABASE_URL"),
    ],
)
def test_an_invalid_setting_is_named(tmp_path: Path, env: dict[str, str], named: str) -> None:
    r = _serve(tmp_path, env)
    assert r.returncode == 2, r.stderr
    assert "invalid configuration" in r.stderr and named in r.stderr, r.stderr
    assert not (tmp_path / "data" / "celedger.db").exists()  # stopped before touching anything


def test_an_unknown_key_in_the_env_file_is_named(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("CELEDGER_ORIGN=typo.example/log\n")
    r = _serve(tmp_path, {})
    assert r.returncode == 2 and "CELEDGER_ORIGN" in r.stderr, r.stderr


def _production(tmp_path: Path, **more: str) -> dict[str, str]:
    return {
        "CELEDGER_ENVIRONMENT": "production",
        # Nothing listens on port 1: the start must stop before it tries the database.
        "CELEDGER_DATABASE_URL": "postgresql://celedger@127.0.0.1:1/celedger?connect_timeout=2",
        **more,
    }


def test_production_needs_each_key_and_names_it(tmp_path: Path) -> None:
    r = _serve(tmp_path, _production(tmp_path))
    assert r.returncode == 2 and "CELEDGER_LOG_KEY_FILE" in r.stderr, r.stderr
    assert "keys init" in r.stderr  # and says how to make one
    init = subprocess.run(
        [sys.executable, "-m", "api.cli", "keys", "init"],
        cwd=tmp_path,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("CELEDGER_")},
            "CELEDGER_DATA_DIR": str(tmp_path / "data"),
            "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert init.returncode == 0, init.stderr
    r = _serve(tmp_path, _production(tmp_path))
    assert r.returncode == 2 and "CELEDGER_PII_KEY" in r.stderr, r.stderr
    r = _serve(tmp_path, _production(tmp_path, CELEDGER_PII_KEY="not base64!"))
    assert r.returncode == 2 and "CELEDGER_PII_KEY" in r.stderr, r.stderr
    assert "not base64!" not in r.stderr  # a secret's value is never echoed
    r = _serve(tmp_path, _production(tmp_path, CELEDGER_PII_KEY=KEY))
    assert r.returncode == 2 and "CELEDGER_KEY_ENCRYPTION_KEY" in r.stderr, r.stderr
    r = _serve(
        tmp_path, _production(tmp_path, CELEDGER_PII_KEY=KEY, CELEDGER_KEY_ENCRYPTION_KEY=KEY)
    )
    assert r.returncode == 2 and "CELEDGER_PDF_SIGNER_P12" in r.stderr, r.stderr
    r = _serve(
        tmp_path,
        _production(
            tmp_path,
            CELEDGER_PII_KEY=KEY,
            CELEDGER_KEY_ENCRYPTION_KEY=KEY,
            CELEDGER_PDF_SIGNER_P12=str(tmp_path / "missing.p12"),
        ),
    )
    assert r.returncode == 2 and "CELEDGER_PDF_SIGNER_P12" in r.stderr, r.stderr
    assert KEY not in r.stderr + r.stdout


def test_an_unreachable_database_is_named_without_its_password(tmp_path: Path) -> None:
    r = _serve(
        tmp_path,
        {
            "CELEDGER_DATABASE_URL": "postgresql://celedger@127.0.0.1:1/celedger?connect_timeout=2",
            "CELEDGER_DATABASE_PASSWORD": "hunter2-secret",
        },
    )
    assert r.returncode == 3, r.stderr
    assert "cannot start: CELEDGER_DATABASE_URL" in r.stderr, r.stderr
    assert "hunter2-secret" not in r.stderr + r.stdout


def test_secrets_stay_out_of_the_settings_repr() -> None:
    from api.settings import Settings

    s = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url="postgresql://celedger:inline-secret@db/celedger",
        database_password="hunter2-secret",
        pii_key=KEY,
    )
    shown = repr(s) + str(s)
    assert "inline-secret" not in shown and "hunter2-secret" not in shown and KEY not in shown
    # The password reaches the driver, and only there.
    assert "hunter2-secret" in s.effective_database_url
