"""``celedger certificates`` (bulk, over a process pool) and ``celedger keys issuing``."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from certificates.pdf import extract_attachments
from ledger import issuing
from ledger.completions import services as cs
from ledger.completions.intake import parse_json_records
from ledger.keyset import kid_for
from ledger.registry.auth import Principal
from tests.completions_support import record, world


def _argv(settings: Any) -> list[str]:
    return ["--data-dir", str(settings.data_dir), "--database-url", settings.database_url]


def _kid(key: Ed25519PrivateKey) -> str:
    return kid_for(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


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
    # Keys: list, rotate (the old key is retired), compromise needs a key name.  One kid in 64
    # begins with "-", which argparse would take for an option; the new key here is such a one,
    # so the operator's paste-the-kid command is shown to work for it.
    dash_key = next(k for k in iter(Ed25519PrivateKey.generate, None) if _kid(k).startswith("-"))
    monkeypatch.setattr(
        issuing,
        "Ed25519PrivateKey",
        SimpleNamespace(
            generate=lambda: dash_key, from_private_bytes=Ed25519PrivateKey.from_private_bytes
        ),
    )
    assert main([*_argv(settings), "keys", "issuing", "rotate"]) == 0
    listing = capsys.readouterr().out
    assert "retired" in listing and "active" in listing
    assert main([*_argv(settings), "keys", "issuing", "compromise"]) == 2
    kid = listing.split("new active issuing key ")[1].split()[0]
    assert kid == _kid(dash_key)
    assert main([*_argv(settings), "keys", "issuing", "compromise", kid, "--reason", "leak"]) == 0
    out = capsys.readouterr().out
    assert f"{kid} marked compromised" in out and f"{kid}  compromised" in out


def test_a_kid_beginning_with_a_dash_is_the_key_not_an_option() -> None:
    from api.cli import _dash_kid_as_option, build_parser

    def kid_of(*argv: str) -> str | None:
        args = build_parser().parse_args(_dash_kid_as_option(argv))
        return args.kid or args.dash_kid  # type: ignore[no-any-return]

    assert kid_of("keys", "issuing", "compromise", "-MT1PVXF") == "-MT1PVXF"
    assert kid_of("keys", "issuing", "compromise", "-hABCDEF", "--at", "x") == "-hABCDEF"
    assert kid_of("keys", "issuing", "compromise", "--reason", "leak", "-MT1PVXF") == "-MT1PVXF"
    assert kid_of("keys", "issuing", "compromise", "AbCdEfGh", "--reason", "x") == "AbCdEfGh"
    # Only the compromise command is touched; elsewhere an unknown option stays an error.
    with pytest.raises(SystemExit):
        build_parser().parse_args(_dash_kid_as_option(["keys", "issuing", "list", "-MT1PVXF"]))


def test_demo_seeds_registry_and_a_batch_once(ctx: Any) -> None:
    from api.cli import seed_demo_lines
    from tests.completions_support import record_count

    lines = seed_demo_lines(ctx)
    assert any(line.startswith("demo batch") and "18 records" in line for line in lines), lines
    assert record_count(ctx) == 18
    assert "already has data" in seed_demo_lines(ctx)[0]
    assert record_count(ctx) == 18
