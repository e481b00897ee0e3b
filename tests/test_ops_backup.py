"""Backup → restore on a fresh database and data directory → `celedger audit` clean → the
restored service verifies the certificates issued before the backup (token and signed PDF)
and keeps appending.  On SQLite and PostgreSQL; and the refusals that protect a restore."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from api.app import create_app
from api.cli import main
from api.context import Context
from api.settings import Settings
from tests.completions_support import BATCHES, batch, record, world
from tests.conftest import PG_ADMIN


@pytest.fixture
def fresh_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the same kind as ``db_url``: never migrated."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored' / 'celedger.db'}"
        return
    name = f"celedger_r_{secrets.token_hex(6)}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(db_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _use(monkeypatch: Any, settings: Any, url: str, data_dir: Path) -> None:
    monkeypatch.setenv("CELEDGER_DATABASE_URL", url)
    monkeypatch.setenv("CELEDGER_DATA_DIR", str(data_dir))
    monkeypatch.setenv("CELEDGER_ORIGIN", settings.origin)
    monkeypatch.setenv("CELEDGER_PUBLIC_URL", settings.public_url)
    monkeypatch.chdir(data_dir.parent)  # no stray .env


def _issue(client: Any, keys: dict[str, dict[str, str]]) -> tuple[str, bytes]:
    r = client.post(BATCHES, json=batch("before", record(1), record(2)), headers=keys["base:1"])
    assert r.status_code == 201, r.text
    first, second = (x["record"] for x in r.json()["records"])
    j = client.post(f"/api/v1/completions/{first}/certificate?format=json", headers=keys["base:1"])
    assert j.status_code == 201, j.text
    pdf = client.post(f"/api/v1/completions/{second}/certificate", headers=keys["base:1"])
    assert pdf.status_code == 201 and pdf.content.startswith(b"%PDF-")
    return j.json()["verify_url"].rsplit("/", 1)[1], pdf.content


def test_backup_restore_audit_verify(
    settings: Any,
    ctx: Any,
    client: Any,
    fresh_url: str,
    tmp_path: Path,
    monkeypatch: Any,
    capsys: Any,
) -> None:
    keys = world(ctx)
    token, pdf = _issue(client, keys)
    _use(monkeypatch, settings, settings.database_url, settings.data_dir)
    backup = tmp_path / "backup"
    assert main(["backup", str(backup)]) == 0
    assert "encrypt it" in capsys.readouterr().out
    manifest = json.loads((backup / "manifest.json").read_text())
    assert (backup.stat().st_mode & 0o777) == 0o700
    stored = {f["path"] for f in manifest["files"]}
    assert {"keys/log.key", "data/keys/pii.key", "data/keys/kek.key"} <= stored
    assert any(p.startswith("data/pki/") for p in stored)

    # The service goes on after the backup; the restore must bring back the backup's tree.
    more = client.post(BATCHES, json=batch("after", record(3)), headers=keys["base:1"])
    assert more.status_code == 201

    restored_dir = tmp_path / "restored-data"
    restored_dir.mkdir()
    _use(monkeypatch, settings, fresh_url, restored_dir)
    assert main(["restore", str(backup)]) == 0, capsys.readouterr().err
    assert "checkpoint verified" in capsys.readouterr().out
    assert main(["audit"]) == 0
    out = capsys.readouterr().out
    assert "audit clean" in out and f"audited {manifest['log']['size']} entries" in out

    restored = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=fresh_url,
        data_dir=restored_dir,
        origin=settings.origin,
        public_url=settings.public_url,
    )
    rctx = Context.from_settings(restored)
    try:
        assert rctx.log_verifier.to_vkey() == ctx.log_verifier.to_vkey()
        with TestClient(app=create_app(restored, context=rctx)) as tc:
            report = tc.get(f"/api/v1/verify/{token}").json()
            assert report["verdict"] == "valid", report
            up = tc.post(
                "/api/v1/verify/pdf", content=pdf, headers={"Content-Type": "application/pdf"}
            )
            assert up.status_code == 200 and up.json()["verdict"] == "valid", up.text
            # The record posted after the backup is not there; the restored log keeps growing.
            again = tc.post(BATCHES, json=batch("after", record(3)), headers=keys["base:1"])
            assert again.status_code == 201, again.text
            assert again.json()["ledger"]["first_index"] == manifest["log"]["size"]
    finally:
        rctx.close()
    assert main(["audit"]) == 0


def test_restore_refuses_what_it_cannot_trust(
    settings: Any, ctx: Any, fresh_url: str, tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    world(ctx)
    _use(monkeypatch, settings, settings.database_url, settings.data_dir)
    backup = tmp_path / "backup"
    assert main(["backup", str(backup)]) == 0
    assert main(["backup", str(backup)]) == 2  # never into a used directory
    capsys.readouterr()

    # Into the database it came from (not empty): refused before anything is written.
    other_dir = tmp_path / "other-data"
    other_dir.mkdir()
    _use(monkeypatch, settings, settings.database_url, other_dir)
    assert main(["restore", str(backup)]) == 2
    err = capsys.readouterr().err
    assert "not empty" in err or "exists" in err, err
    assert not (other_dir / "keys").exists()

    restored_dir = tmp_path / "restored-data"
    restored_dir.mkdir()
    _use(monkeypatch, settings, fresh_url, restored_dir)
    # A configured personal-data key other than the backup's.
    monkeypatch.setenv("CELEDGER_PII_KEY", base64.b64encode(secrets.token_bytes(32)).decode())
    assert main(["restore", str(backup)]) == 2
    assert "CELEDGER_PII_KEY" in capsys.readouterr().err
    monkeypatch.delenv("CELEDGER_PII_KEY")
    # Another origin.
    monkeypatch.setenv("CELEDGER_ORIGIN", "other.example/log")
    assert main(["restore", str(backup)]) == 2
    assert "CELEDGER_ORIGIN" in capsys.readouterr().err
    monkeypatch.setenv("CELEDGER_ORIGIN", settings.origin)
    # A damaged file.
    dump = next(
        backup / f["path"]
        for f in json.loads((backup / "manifest.json").read_text())["files"]
        if f["restore_to"] == "database"
    )
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0x01
    dump.write_bytes(bytes(data))
    assert main(["restore", str(backup)]) == 1
    assert "damaged" in capsys.readouterr().err
    # Nothing was restored by any refused attempt.
    assert not (restored_dir / "keys").exists()
    assert not (tmp_path / "restored").exists()
