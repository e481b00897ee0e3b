"""`celedger publish`: the checkpoint, tiles and bundles as static files — byte for byte what
the HTTP routes serve, auditable from the files alone, incremental, and never a tree that does
not extend the published one.  On SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from api.cli import main
from api.publish import PublishError, publish
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.note import NoteSigner
from ledger.tileaudit import audit_remote
from tests.completions_support import world

ROOT = Path(__file__).resolve().parent.parent


def _append(ctx: Any, n: int) -> None:
    with ctx.db.writer() as s:
        ctx.log.append(s, [("ops.test", b'{"kind":"ops.test","n":%d,"v":1}' % i) for i in range(n)])


def _files(out: Path) -> dict[str, Path]:
    return {
        str(p.relative_to(out)): p
        for p in out.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


def _audit(ctx: Any, out: Path) -> Any:
    return audit_remote(
        lambda rel: (out / rel).read_bytes(), ctx.settings.origin, [ctx.log_verifier]
    )


def test_publish_is_what_the_routes_serve_and_audits_clean(
    ctx: Any, client: Any, tmp_path: Path, settings: Any, monkeypatch: Any, capsys: Any
) -> None:
    world(ctx)
    _append(ctx, 300)  # past one full level-0 tile
    out = tmp_path / "pub"
    monkeypatch.setenv("CELEDGER_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CELEDGER_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CELEDGER_ORIGIN", settings.origin)
    monkeypatch.chdir(tmp_path)
    assert main(["publish", "--to", str(out)]) == 0
    assert "published size" in capsys.readouterr().out
    files = _files(out)
    size = int((out / "checkpoint").read_text().split("\n")[1])
    assert "tile/0/000" in files and "tile/entries/000" in files
    assert f"tile/0/001.p/{size - 256}" in files and f"tile/1/000.p/{size // 256}" in files
    for rel, path in files.items():
        served = client.get("/log/checkpoint" if rel == "checkpoint" else f"/log/{rel}")
        assert served.status_code == 200, rel
        assert served.content == path.read_bytes(), rel
    report = _audit(ctx, out)
    assert report.ok, report.first
    assert report.entries == size

    # Incremental: full tiles stay as they were; the new right edge is written; partial
    # tiles whose full tile now exists are pruned.
    full_tile = out / "tile/0/000"
    before = full_tile.stat().st_mtime_ns
    _append(ctx, 250)
    r = publish(ctx, out)
    assert r.previous_size == size and r.size == size + 250
    assert full_tile.stat().st_mtime_ns == before
    assert not (out / "tile/0/001.p").exists() and (out / "tile/0/001").is_file()
    assert r.pruned >= 2  # tile/0/001.p/W and tile/entries/001.p/W
    # Level 0: tiles 1 (now full) and 2 (partial); bundles alike; level 1: the partial tile.
    assert r.written == 5, r
    assert _audit(ctx, out).ok
    # Nothing new: nothing written, the checkpoint left alone.
    again = publish(ctx, out)
    assert again.written == 0 and not again.checkpoint_changed
    assert (out / "checkpoint").read_bytes() == client.get("/log/checkpoint").content


def test_publish_refuses_a_tree_that_does_not_extend_the_published_one(
    ctx: Any, tmp_path: Path
) -> None:
    world(ctx)
    out = tmp_path / "pub"
    published = publish(ctx, out)
    cp_file = out / "checkpoint"
    # A fork: a checkpoint signed by the log's own key for another tree of the same size.
    fork = sign_checkpoint(
        Checkpoint(ctx.settings.origin, published.size, b"\x07" * 32), ctx.log.signer
    )
    cp_file.write_text(fork)
    _append(ctx, 3)
    with pytest.raises(PublishError, match="does not extend the published tree"):
        publish(ctx, out)
    assert cp_file.read_text() == fork  # nothing was made visible
    # A published tree ahead of the database (an old backup restored under it).
    ahead = sign_checkpoint(
        Checkpoint(ctx.settings.origin, published.size + 1000, b"\x07" * 32), ctx.log.signer
    )
    cp_file.write_text(ahead)
    with pytest.raises(PublishError, match="at or ahead of what was published"):
        publish(ctx, out)
    # Someone else's checkpoint in the directory.
    stranger = NoteSigner.generate(ctx.settings.origin)
    cp_file.write_text(sign_checkpoint(Checkpoint(ctx.settings.origin, 1, b"\x07" * 32), stranger))
    with pytest.raises(PublishError, match="signed by this log's key"):
        publish(ctx, out)


def test_periodic_publisher_follows_the_log_and_stops_on_sigterm(
    ctx: Any, settings: Any, tmp_path: Path
) -> None:
    world(ctx)
    out = tmp_path / "pub"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELEDGER_")}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "CELEDGER_DATABASE_URL": settings.database_url,
            "CELEDGER_DATA_DIR": str(settings.data_dir),
            "CELEDGER_ORIGIN": settings.origin,
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "publish", "--to", str(out), "--every", "0.2"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def published_size() -> int:
            try:
                return int((out / "checkpoint").read_text().split("\n")[1])
            except (FileNotFoundError, IndexError):
                return -1

        def wait_for(size: int) -> None:
            deadline = time.monotonic() + 30
            while published_size() != size:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, f"published {published_size()}, want {size}"
                time.sleep(0.1)

        with ctx.db.reader() as s:
            from ledger.storage.log import Log

            size = Log.size(s)
        wait_for(size)
        _append(ctx, 10)
        wait_for(size + 10)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _audit(ctx, out).ok
