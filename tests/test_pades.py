"""PAdES signatures on transcripts: poppler's pdfsig and pyHanko both verify them, a changed
byte breaks them, and signing keeps the embedded files.

``pdfsig`` (Debian ``poppler-utils``) checks the signature cryptographically; it does not trust
the development root, so its certificate line says so — the signature line is what counts:

    - Signature Type: ETSI.CAdES.detached
    - Signature Validation: Signature is Valid.
    - Certificate Validation: Certificate issuer isn't Trusted.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from certificates.model import Attachment, SigningError, example_transcript
from certificates.pades import DevelopmentPKI, load_signer_from_pkcs12, sign_pdf
from certificates.pdf import extract_attachments, render_transcript

ATTACHMENTS = (
    Attachment("credential.json", b'{"type":["VerifiableCredential"]}', "application/json", "VC"),
    Attachment("ledger-proof.txt", b"c2sp.org/tlog-proof@v1\nindex 7\n", "text/plain", "proof"),
)


def pdfsig(path: Path) -> str:
    if shutil.which("pdfsig") is None:
        pytest.fail("pdfsig is required (Debian package poppler-utils)", pytrace=False)
    done = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, check=False)
    # pdfsig exits non-zero for an invalid signature; the report on stdout is what we check.
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevelopmentPKI:
    return DevelopmentPKI.load_or_create(tmp_path_factory.mktemp("pki") / "dev")


@pytest.fixture(scope="module")
def signed(pki: DevelopmentPKI) -> bytes:
    pdf = render_transcript(example_transcript(25, holder_name="𠮷䶮"), ATTACHMENTS)
    return sign_pdf(pdf, pki.signer(), location="攀枝花")


def test_pdfsig_reports_a_valid_pades_signature(signed, tmp_path):
    path = tmp_path / "signed.pdf"
    path.write_bytes(signed)
    report = pdfsig(path)
    assert "Signature Validation: Signature is Valid." in report, report
    assert "Signature Type: ETSI.CAdES.detached" in report, report
    assert "Signing Hash Algorithm: SHA-256" in report, report
    assert "Total document signed" in report, report
    assert "CE Ledger Development Document Signing" in report, report


def test_one_changed_byte_is_a_digest_mismatch(signed, tmp_path):
    # A byte inside the first signed range that keeps the file parseable: a letter of the
    # /Creator string in the document information dictionary.
    at = signed.index(b"/Creator (CE Ledger") + len(b"/Creator (")
    byte_range = [
        int(v) for v in re.search(rb"/ByteRange\s*\[([\d\s]+)\]", signed).group(1).split()
    ]
    assert byte_range[0] <= at < byte_range[0] + byte_range[1]
    flipped = bytearray(signed)
    flipped[at] ^= 0x01  # "C" → "B"
    path = tmp_path / "flipped.pdf"
    path.write_bytes(bytes(flipped))
    report = pdfsig(path)
    assert "Signature is Valid." not in report, report
    assert "Signature Validation: Digest Mismatch." in report, report


def test_pyhanko_validates_with_the_development_root_as_trust_anchor(signed, pki):
    sig = PdfFileReader(io.BytesIO(signed)).embedded_signatures[0]
    status = validate_pdf_signature(sig, ValidationContext(trust_roots=[pki.trust_root()]))
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    assert status.bottom_line
    assert status.md_algorithm == "sha256"
    assert "ENTIRE_FILE" in str(status.coverage)
    # Without the trust anchor the signature is still intact and valid, but not trusted.
    untrusted = validate_pdf_signature(sig, ValidationContext(trust_roots=[]))
    assert untrusted.intact and untrusted.valid and not untrusted.trusted


def test_pyhanko_detects_a_changed_byte(signed, pki):
    at = signed.index(b"/Creator (CE Ledger") + len(b"/Creator (")
    flipped = bytearray(signed)
    flipped[at] ^= 0x01
    sig = PdfFileReader(io.BytesIO(bytes(flipped))).embedded_signatures[0]
    status = validate_pdf_signature(sig, ValidationContext(trust_roots=[pki.trust_root()]))
    assert not status.intact
    assert not status.bottom_line


def test_signing_keeps_the_embedded_files(signed, tmp_path):
    assert extract_attachments(signed) == {a.name: a.data for a in ATTACHMENTS}
    path = tmp_path / "signed.pdf"
    path.write_bytes(signed)
    listing = subprocess.run(
        ["pdfdetach", "-list", str(path)], capture_output=True, text=True, check=True
    )
    assert "2 embedded files" in listing.stdout


def test_development_pki_files_and_reload(tmp_path):
    directory = tmp_path / "pki"
    first = DevelopmentPKI.load_or_create(directory)
    for name in ("dev-root-ca.key", "dev-signing.key"):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600
    assert first.root_cert_path.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    again = DevelopmentPKI.load_or_create(directory)
    assert again.signing_cert == first.signing_cert  # loaded, not regenerated
    assert again.signing_cert.issuer == first.root_cert.subject


def test_development_pki_refuses_readable_keys_and_partial_directories(tmp_path):
    directory = tmp_path / "pki"
    DevelopmentPKI.load_or_create(directory)
    os.chmod(directory / "dev-signing.key", 0o644)
    with pytest.raises(SigningError, match=r"expected permissions 0600.*found 0644"):
        DevelopmentPKI.load_or_create(directory)
    os.chmod(directory / "dev-signing.key", 0o600)
    (directory / "dev-root-ca.key").unlink()
    with pytest.raises(SigningError, match=r"dev-root-ca\.key missing"):
        DevelopmentPKI.load_or_create(directory)


def test_pkcs12_signer(pki, tmp_path):
    bundle = pkcs12.serialize_key_and_certificates(
        b"prod",
        pki.signing_key,
        pki.signing_cert,
        [pki.root_cert],
        serialization.BestAvailableEncryption(b"s3cret"),
    )
    p12 = tmp_path / "signer.p12"
    p12.write_bytes(bundle)
    signer = load_signer_from_pkcs12(p12, "s3cret")
    signed = sign_pdf(render_transcript(example_transcript(2)), signer)
    sig = PdfFileReader(io.BytesIO(signed)).embedded_signatures[0]
    status = validate_pdf_signature(sig, ValidationContext(trust_roots=[pki.trust_root()]))
    assert status.bottom_line
    with pytest.raises(SigningError, match="readable with the given password"):
        load_signer_from_pkcs12(p12, "wrong")
    with pytest.raises(SigningError, match="expected a readable file"):
        load_signer_from_pkcs12(tmp_path / "missing.p12", "x")


def test_signing_garbage_is_refused(pki):
    with pytest.raises(SigningError, match="expected a PDF pyHanko can sign"):
        sign_pdf(b"%PDF-1.4\nnot really a pdf", pki.signer())
