"""Uploading a certificate PDF for verification (API and the no-JavaScript form), both databases:
the PDF signature, the embedded credential, the QR code and the ledger are checked together, and
a certificate whose parts disagree is forged."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from typing import Any

from certificates.model import Attachment, CompletionData
from certificates.pdf import extract_attachments, render_completion
from tests.completions_support import BATCHES, batch, record, world

CITY = "authority:CN-SC-PZH"


def _pdf(client: Any, keys: dict[str, dict[str, str]], rid: str) -> bytes:
    r = client.post(f"/api/v1/completions/{rid}/certificate", headers=keys["base:1"])
    assert r.status_code == 201, r.text
    return bytes(r.content)


def _upload(client: Any, pdf: bytes) -> dict[str, Any]:
    r = client.post("/api/v1/verify/pdf", content=pdf, headers={"Content-Type": "application/pdf"})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _check(report: dict[str, Any], id_: str) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["id"] == id_)


def test_uploaded_certificate_verifies_and_tampering_is_caught(client: Any, ctx: Any) -> None:
    keys = world(ctx)
    r = client.post(BATCHES, json=batch("p", record(1), record(2)), headers=keys["base:1"])
    first, second = [x["record"] for x in r.json()["records"]]
    pdf = _pdf(client, keys, first)
    report = _upload(client, pdf)
    assert report["verdict"] == "valid", report
    for id_ in ("pdf-signature", "credential", "consistency", "signature", "ledger-inclusion"):
        assert _check(report, id_)["ok"] is True, id_
    assert any("exact" in n["en"] for n in report["notes"])
    assert report["records"][0]["record"] == first
    # The QR code of the first record on the second record's certificate: the parts disagree.
    # (Even signed with the service's own certificate, as an insider could.)
    other = _pdf(client, keys, second)
    files = extract_attachments(other)
    url_of_first = client.post(
        f"/api/v1/completions/{first}/certificate?format=json", headers=keys["base:1"]
    ).json()["verify_url"]
    from certificates.model import example_completion

    data: CompletionData = replace(example_completion(), verify_url=url_of_first)
    pasted = render_completion(
        data,
        [Attachment("credential.json", files["credential.json"], "application/json"),
         Attachment("ledger-proof.txt", files["ledger-proof.txt"], "text/plain")],
    )  # fmt: skip
    signed = ctx.issuer().sign_pdf(pasted)
    report = _upload(client, signed)
    assert _check(report, "pdf-signature")["ok"] is True
    assert _check(report, "credential")["ok"] is True
    assert _check(report, "consistency")["ok"] is False
    assert report["verdict"] == "forged"
    # An unsigned copy of the real certificate's content is not accepted either.
    unsigned = render_completion(replace(example_completion(), verify_url=url_of_first), [])
    report = _upload(client, unsigned)
    assert report["verdict"] == "forged" and _check(report, "pdf-signature")["ok"] is False
    assert _check(report, "credential")["ok"] is False
    # Revoked after issue: the genuine file now says so.
    client.post(f"/api/v1/completions/{first}/revocation",
                json={"reason_code": "fraud", "reason": "x"}, headers=keys[CITY])  # fmt: skip
    assert _upload(client, pdf)["verdict"] == "revoked"


def test_upload_form_and_bad_files(client: Any, ctx: Any) -> None:
    keys = world(ctx)
    r = client.post(BATCHES, json=batch("f", record(1)), headers=keys["base:1"])
    pdf = _pdf(client, keys, r.json()["records"][0]["record"])
    form = client.get("/verify")
    assert form.status_code == 200 and 'type="file"' in form.text and "<script" not in form.text
    page = client.post("/verify", files={"file": ("c.pdf", pdf, "application/pdf")})
    assert page.status_code == 200 and 'data-verdict="valid"' in page.text
    api = client.post("/api/v1/verify/pdf", files={"file": ("c.pdf", pdf, "application/pdf")})
    assert api.status_code == 200 and api.json()["verdict"] == "valid"
    bad = client.post(
        "/api/v1/verify/pdf", content=b"hello", headers={"Content-Type": "application/pdf"}
    )
    assert bad.status_code == 400 and bad.json()["code"] == "verify.not-pdf"
    junk = _upload(client, b"%PDF-1.7\n garbage")
    assert junk["verdict"] in ("unknown", "forged") and junk["valid"] is False


def test_a_byte_changed_anywhere_the_signature_covers_is_never_valid(client: Any, ctx: Any) -> None:
    """One bit flipped at 48 places spread over the bytes the signature covers (/ByteRange: all
    but the signature's own /Contents): never valid, never a server error; a signature that no
    longer verifies makes the file forged even when the change also left its QR code
    unreadable (it used to be "unknown" then); a file too damaged to parse at all is at most
    unknown."""
    keys = world(ctx)
    r = client.post(BATCHES, json=batch("p", record(1)), headers=keys["base:1"])
    pdf = _pdf(client, keys, r.json()["records"][0]["record"])
    m = re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", pdf)
    assert m is not None
    a, b, c, d = (int(x) for x in m.groups())
    assert (a, c + d) == (0, len(pdf)), m.groups()
    covered = [*range(a, a + b), *range(c, c + d)]
    seen: Counter[tuple[str, str]] = Counter()
    for k in range(48):
        at = covered[len(covered) * k // 48 + 7]  # + 7: not always a line's first byte
        flipped = bytearray(pdf)
        flipped[at] ^= 0x01
        report = _upload(client, bytes(flipped))
        signature = _check(report, "pdf-signature")
        seen[report["verdict"], signature["outcome"]] += 1
        assert signature["ok"] is False, (at, signature)
        if signature["outcome"] in ("broken", "appended"):
            assert report["verdict"] == "forged", (at, report)
        else:
            assert report["verdict"] in ("forged", "unknown"), (at, report)
    assert seen["forged", "broken"] >= 40, seen
