"""`celedger audit`, local and remote, through the real command line entry point."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from api.cli import main
from ledger.errors import LedgerError
from ledger.storage.models import drop_append_only_ddl
from ledger.tileaudit import audit_remote


def _append(ctx, n: int) -> None:  # type: ignore[no-untyped-def]
    with ctx.db.writer() as s:
        size = ctx.log.size(s)
        ctx.log.append(
            s, [("policy", b'{"kind":"policy","n":%d,"v":1}' % (size + i)) for i in range(n)]
        )


@pytest.fixture
def cli_env(settings, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CELEDGER_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CELEDGER_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CELEDGER_ORIGIN", settings.origin)
    return settings


def test_local_audit_exit_codes(ctx, cli_env, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    _append(ctx, 700)
    _append(ctx, 3)
    assert main(["audit"]) == 0
    assert "audit clean" in capsys.readouterr().out
    with ctx.db.writer() as s:
        for stmt in drop_append_only_ddl(ctx.db.dialect):
            s.execute(text(stmt))
        s.execute(text("UPDATE log_entries SET body = :b WHERE idx = 512"), {"b": b"{}"})
    assert main(["audit"]) == 1
    out = capsys.readouterr().out
    assert "FIRST DIVERGENCE: index 512" in out and "expected" in out and "found" in out


def test_remote_audit_from_tiles(client, ctx) -> None:  # type: ignore[no-untyped-def]
    _append(ctx, 256 * 256 + 300)

    def fetch(path: str) -> bytes:
        r = client.get("/log/" + path)
        if r.status_code != 200:
            raise LedgerError(f"GET {path}: {r.status_code}")
        return r.content

    report = audit_remote(fetch, ctx.settings.origin, [ctx.log_verifier])
    assert report.ok, report.problems
    assert report.entries == 256 * 256 + 300 and report.tiles > 257

    def lying_fetch(path: str) -> bytes:
        data = fetch(path)
        if path == "tile/0/256":  # hashes 65536..65791
            data = data[:64] + bytes([data[64] ^ 1]) + data[65:]
        return data

    bad = audit_remote(lying_fetch, ctx.settings.origin, [ctx.log_verifier])
    assert bad.first is not None and bad.first.index == 256 * 256 + 2

    from ledger.note import NoteSigner

    other = NoteSigner.generate(ctx.settings.origin).verifier()
    assert not audit_remote(fetch, ctx.settings.origin, [other]).ok
