"""Certificates and transcripts issued from the ledger, through HTTP, on both databases.

Each document is checked the way a person and a machine would check it: rasterised at 150 dpi
and its QR decoded with zbarimg (the URL carries a token signed by a published key), its text
extracted (name, masked ID, hours, verdict), its PDF signature checked with pdfsig (valid, and
invalid after one byte changes), its embedded credential extracted and verified with the
published keys — including after a key rotation, and refused after a compromise.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from certificates.pdf import extract_attachments
from ledger.identity import mask_id
from ledger.issuing import mark_compromised, rotate
from ledger.keyset import KeySet, did_web
from ledger.registry.demo import DEMO_YEAR
from ledger.tlogproof import TlogProof
from tests.completions_support import (
    BATCHES,
    ETHICS,
    FORUM,
    ONLINE,
    batch,
    id_number,
    record,
    world,
)
from verification.credentials import verify_credential
from verification.token import token_from_url, verify_token

CITY = "authority:CN-SC-PZH"
PERSON = 5  # record(5) is 张六甲


def _records(client: Any, keys: dict[str, dict[str, str]]) -> list[str]:
    rows = [
        record(PERSON, name="欧阳䶮"),
        record(PERSON, name="欧阳䶮", class_code=ETHICS, category="公需", start=f"{DEMO_YEAR}-03-10",
               end=f"{DEMO_YEAR}-03-10", hours="6", fee_yuan="0"),
        record(PERSON, name="欧阳䶮", class_code=ONLINE, mode="网络", start=f"{DEMO_YEAR}-07-10",
               end=f"{DEMO_YEAR}-07-11", hours="12", fee_yuan="300"),
        record(PERSON, name="欧阳䶮", class_code=FORUM, category="选修", mode="会议",
               start=f"{DEMO_YEAR}-09-10", end=f"{DEMO_YEAR}-09-10", hours="6", fee_yuan="200.5"),
    ]  # fmt: skip
    r = client.post(BATCHES, json=batch("cert", *rows), headers=keys["base:1"])
    assert r.status_code == 201, r.text
    return [x["record"] for x in r.json()["records"]]


def _qr(pdf: bytes, tmp: Path) -> str:
    (tmp / "doc.pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1", str(tmp / "doc.pdf"), str(tmp / "page")],
        check=True,
    )  # fmt: skip
    page = next(tmp.glob("page*.png"))
    out = subprocess.run(["zbarimg", "--raw", "-q", str(page)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _text(pdf: bytes, tmp: Path) -> str:
    (tmp / "t.pdf").write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-layout", str(tmp / "t.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _pdfsig(pdf: bytes, tmp: Path) -> str:
    (tmp / "s.pdf").write_bytes(pdf)
    out = subprocess.run(["pdfsig", str(tmp / "s.pdf")], capture_output=True, text=True)
    return out.stdout + out.stderr


def _keys(client: Any) -> KeySet:
    r = client.get("/api/v1/keys/issuing")
    assert r.status_code == 200
    return KeySet.from_jwks(r.content)


def test_completion_certificate_proves_itself(client: Any, ctx: Any, tmp_path: Path) -> None:
    keys = world(ctx)
    rid = _records(client, keys)[0]
    r = client.post(f"/api/v1/completions/{rid}/certificate", headers=keys["base:1"])
    assert r.status_code == 201, r.text
    assert r.headers["content-type"] == "application/pdf"
    pdf = r.content
    # The QR, decoded from a 150 dpi raster, is the verification URL with a signed token.
    url = _qr(pdf, tmp_path)
    assert url.startswith(ctx.settings.public_url.upper() + "/V/")
    claims = verify_token(token_from_url(url), _keys(client))
    # Followed like a phone would: the URL's page and its JSON say valid.
    from urllib.parse import urlsplit

    page = client.get(urlsplit(url).path)
    assert page.status_code == 200 and 'data-verdict="valid"' in page.text
    token = urlsplit(url).path.rsplit("/", 1)[1]
    assert client.get(f"/api/v1/verify/{token}").json()["verdict"] == "valid"
    assert (
        claims.ledger_index
        == client.get(f"/api/v1/completions/{rid}", headers=keys["base:1"]).json()["versions"][0][
            "log_index"
        ]
    )
    assert id_number(PERSON) not in url and "䶮" not in url
    # What a person reads: name, masked ID, class, hours.
    text = _text(pdf, tmp_path)
    assert "欧阳䶮" in text and mask_id(id_number(PERSON)) in text and id_number(PERSON) not in text
    assert "24" in text and "钒钛新材料前沿技术研修班" in text
    # PAdES: valid as issued, digest mismatch after one byte changes.
    assert "Signature is Valid" in _pdfsig(pdf, tmp_path)
    flipped = bytearray(pdf)
    flipped[len(pdf) // 3] ^= 0x01
    assert "Signature is Valid" not in _pdfsig(bytes(flipped), tmp_path)
    # The embedded credential verifies with the published keys, and its ledger proof with the
    # log's checkpoint key.
    files = extract_attachments(pdf)
    import json

    credential = json.loads(files["credential.json"])
    did = did_web(ctx.settings.public_url)
    verified = verify_credential(
        credential, _keys(client), did, log_origin=ctx.settings.origin, log_verifiers=[ctx.log_verifier]
    )  # fmt: skip
    assert verified is not None
    proof = TlogProof.parse(files["ledger-proof.txt"])
    assert proof.index == claims.ledger_index
    assert id_number(PERSON).encode() not in files["credential.json"]
    # The same credential as JSON; and only those over the base may ask.
    j = client.post(f"/api/v1/completions/{rid}/certificate?format=json", headers=keys[CITY])
    assert j.status_code == 201 and j.json()["credential"]["type"][-1] == "OpenBadgeCredential"
    assert (
        client.post(f"/api/v1/completions/{rid}/certificate", headers=keys["base:2"]).status_code
        == 403
    )
    did_doc = client.get("/.well-known/did.json").json()
    assert did_doc["id"] == did


def test_transcript_with_totals_and_verdict(client: Any, ctx: Any, tmp_path: Path) -> None:
    keys = world(ctx)
    records = _records(client, keys)
    body = {"id_number": id_number(PERSON), "years": [DEMO_YEAR]}
    r = client.post("/api/v1/transcripts", json=body, headers=keys[CITY])
    assert r.status_code == 201, r.text
    pdf = r.content
    text = _text(pdf, tmp_path)
    assert "欧阳䶮" in text and mask_id(id_number(PERSON)) in text
    assert "登记证书" in text and "《《" not in text  # Sichuan's register titles the document
    assert "48" in text  # 24 + 6 + 12 + 6 学时
    assert "未达到" in text or "✗" in text or "不合格" in text or "未满足" in text, text
    url = _qr(pdf, tmp_path)
    verify_token(token_from_url(url), _keys(client))
    files = extract_attachments(pdf)
    import json

    clr = json.loads(files["credential.json"])
    assert "ClrCredential" in clr["type"]
    verify_credential(clr, _keys(client), did_web(ctx.settings.public_url))
    assert {f"ledger-proof-{rid}.txt" for rid in records} <= set(files)
    assert "Signature is Valid" in _pdfsig(pdf, tmp_path)
    # Not for a base; an unknown person is 404 and a bad ID number 400.
    assert client.post("/api/v1/transcripts", json=body, headers=keys["base:1"]).status_code == 403
    other = {"id_number": id_number(999), "years": [DEMO_YEAR]}
    assert client.post("/api/v1/transcripts", json=other, headers=keys[CITY]).status_code == 404
    bad = {"id_number": "510402198001010012", "years": [DEMO_YEAR]}
    assert client.post("/api/v1/transcripts", json=bad, headers=keys[CITY]).status_code == 400


def test_rotation_keeps_old_certificates_and_compromise_stops_new_ones(
    client: Any, ctx: Any
) -> None:
    keys = world(ctx)
    rid = _records(client, keys)[0]
    did = did_web(ctx.settings.public_url)
    before = client.post(
        f"/api/v1/completions/{rid}/certificate?format=json", headers=keys["base:1"]
    ).json()
    with ctx.db.writer() as s:
        rotate(s, ctx.log, ctx.kek, datetime.now(UTC) + timedelta(seconds=1))
    # Signed before the rotation: still verifies with the published (now retired) key.
    verify_credential(before["credential"], _keys(client), did)
    verify_token(token_from_url(before["verify_url"]), _keys(client))
    after = client.post(
        f"/api/v1/completions/{rid}/certificate?format=json", headers=keys["base:1"]
    )
    assert after.status_code == 201
    # Whatever the new key signed after its compromise time is refused.
    new_kid = after.json()["kid"]
    assert new_kid != before["kid"]
    with ctx.db.writer() as s:
        mark_compromised(s, ctx.log, new_kid, datetime.now(UTC) - timedelta(hours=1), "key leaked")
    with pytest.raises(Exception, match="compromised"):
        verify_credential(after.json()["credential"], _keys(client), did)
    with pytest.raises(Exception, match="compromised"):
        verify_token(token_from_url(after.json()["verify_url"]), _keys(client))
    # The certificate signed before the rotation is untouched by the other key's compromise.
    verify_credential(before["credential"], _keys(client), did)
