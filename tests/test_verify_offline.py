"""``celedger verify``: offline with a saved bundle (no network), and online; exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.completions_support import BATCHES, batch, record, world

CITY = "authority:CN-SC-PZH"


def test_offline_and_online_verification_exit_codes(
    client: Any, ctx: Any, tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    from api.cli import main

    keys = world(ctx)
    r = client.post(BATCHES, json=batch("o", record(1)), headers=keys["base:1"])
    rid = r.json()["records"][0]["record"]
    pdf = client.post(f"/api/v1/completions/{rid}/certificate", headers=keys["base:1"]).content
    (tmp_path / "c.pdf").write_bytes(pdf)
    bundle = client.get("/api/v1/verify/bundle")
    assert bundle.status_code == 200
    (tmp_path / "bundle.json").write_bytes(bundle.content)
    # No network from here on: any attempt to open a connection fails the test.
    import socket

    def no_network(*_: Any, **__: Any) -> None:
        raise AssertionError("the offline verifier opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    offline = ["verify", "--offline", "--bundle", str(tmp_path / "bundle.json")]
    assert main([*offline, str(tmp_path / "c.pdf")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("valid") and "record-status" in out and "not known" in out
    # The token alone (from the certificate's credential evidence URL) verifies offline too.
    from certificates.pdf import extract_attachments

    cred = json.loads(extract_attachments(pdf)["credential.json"])
    url = next(e["id"] for e in cred["evidence"] if str(e.get("id", "")).upper().startswith("HTTP"))
    assert main([*offline, url]) == 0
    capsys.readouterr()
    # One changed byte: not valid (exit 1); a token with one character changed: not valid.
    flipped = bytearray(pdf)
    flipped[len(pdf) // 2] ^= 0x01
    (tmp_path / "bad.pdf").write_bytes(bytes(flipped))
    assert main([*offline, str(tmp_path / "bad.pdf"), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["verdict"] == "forged"
    token = url.rsplit("/", 1)[1]
    changed = token[:40] + ("A" if token[40] != "A" else "B") + token[41:]
    assert main([*offline, changed]) == 1
    # Usage and unreadable files.
    assert main(["verify", "--offline", str(tmp_path / "c.pdf")]) == 2
    assert main([*offline[:-1], str(tmp_path / "nope.json"), str(tmp_path / "c.pdf")]) == 3
    (tmp_path / "junk.json").write_text("{}")
    assert main([*offline[:-1], str(tmp_path / "junk.json"), str(tmp_path / "c.pdf")]) == 2
    assert main([*offline, str(tmp_path / "missing.pdf")]) == 3
