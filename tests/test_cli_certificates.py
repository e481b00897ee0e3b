"""``celedger certificates`` (bulk, over a process pool) and ``celedger keys issuing``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from certificates.pdf import extract_attachments
from ledger.completions import services as cs
from ledger.completions.intake import parse_json_records
from ledger.registry.auth import Principal
from tests.completions_support import record, world


def _argv(settings: Any) -> list[str]:
    return ["--data-dir", str(settings.data_dir), "--database-url", settings.database_url]


def test_bulk_certificates_and_key_commands(
    settings: Any, ctx: Any, tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    from api.cli import main

    monkeypatch.setenv("CELEDGER_ORIGIN", settings.origin)
    monkeypatch.setenv("CELEDGER_PUBLIC_URL", settings.public_url)
    world(ctx)
    base = Principal("base:1", "base", "CN-SC-PZH", base=1)
    with ctx.db.writer() as s:
        raw = parse_json_records([record(i) for i in range(1, 7)], max_rows=100)
        cs.post_batch(s, ctx.log, ctx.vault, base, 1, raw, batch_key="bulk")
    out = tmp_path / "out"
    code = main([*_argv(settings), "certificates", "--base", "1", "--year", "2026",
                 "--out", str(out), "--workers", "2"])  # fmt: skip
    assert code == 0, capsys.readouterr()
    pdfs = sorted(out.glob("*.pdf"))
    assert len(pdfs) == 6
    for pdf in pdfs:
        data = pdf.read_bytes()
        assert data.startswith(b"%PDF") and b"/ByteRange" in data  # signed
        assert "credential.json" in extract_attachments(data)
    assert "6 certificates" in capsys.readouterr().out
    assert main([*_argv(settings), "certificates", "--base", "1", "--year", "2030",
                 "--out", str(out)]) == 0  # fmt: skip
    assert "no current records" in capsys.readouterr().out
    # Keys: list, rotate (the old key is retired), compromise needs a key name.
    assert main([*_argv(settings), "keys", "issuing", "rotate"]) == 0
    listing = capsys.readouterr().out
    assert "retired" in listing and "active" in listing
    assert main([*_argv(settings), "keys", "issuing", "compromise"]) == 2
    kid = listing.split("new active issuing key ")[1].split()[0]
    assert main([*_argv(settings), "keys", "issuing", "compromise", kid, "--reason", "leak"]) == 0
    assert "compromised" in capsys.readouterr().out


def test_demo_seeds_registry_and_a_batch_once(ctx: Any) -> None:
    from api.cli import seed_demo_lines
    from tests.completions_support import record_count

    lines = seed_demo_lines(ctx)
    assert any(line.startswith("demo batch") and "18 records" in line for line in lines), lines
    assert record_count(ctx) == 18
    assert "already has data" in seed_demo_lines(ctx)[0]
    assert record_count(ctx) == 18
