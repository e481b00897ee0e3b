"""PAdES signatures on certificate PDFs (pyHanko), and a development PKI to sign with.

A signed transcript can be checked in any PDF reader, with ``pdfsig`` (poppler) or with
pyHanko, without trusting this service's web site: the signature covers every byte of the
document as rendered (pages, fonts, embedded ``credential.json`` and ``ledger-proof.txt``).

Rules:

1. **Profile**: PAdES baseline B-B — a CAdES detached signature (``/SubFilter
   /ETSI.CAdES.detached``) with the signing-certificate-v2 attribute, SHA-256, the signer's
   chain embedded.  No timestamp (B-T needs a trusted time-stamping authority; pass a pyHanko
   ``timestamper`` to `sign_pdf` when one is available).
2. **Incremental update**: the signature is appended as a new revision, so everything in the
   unsigned PDF, embedded files included, is kept byte for byte and covered by the signature.
3. **Keys**: production loads a real certificate from PKCS#12 (`load_signer_from_pkcs12`).
   Development uses `DevelopmentPKI`: a root CA and a signing certificate generated on first
   use (ECDSA P-256) and kept in a directory; private keys are written with mode 0600, and a
   directory whose key files are readable by others is refused.  Nothing trusts the
   development root unless told to, which is the point: a verifier sees "untrusted signer".
4. **Errors**: unusable key material, a wrong PKCS#12 password or a PDF pyHanko cannot sign
   raise `SigningError` saying what was expected and what was found.
"""

from __future__ import annotations

import datetime as dt
import errno
import io
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.keys import load_certs_from_pemder_data
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.sign import fields, signers

from certificates.model import SigningError

__all__ = [
    "DevelopmentPKI",
    "load_signer_from_pkcs12",
    "sign_pdf",
]

_ROOT_CERT: Final = "dev-root-ca.pem"
_ROOT_KEY: Final = "dev-root-ca.key"
_SIGN_CERT: Final = "dev-signing.pem"
_SIGN_KEY: Final = "dev-signing.key"
# id-kp-documentSigning (RFC 9336): what the signing certificate is for.
_DOCUMENT_SIGNING: Final = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")


def _write_private(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Created 0600 from the start (not chmod-ed after writing), so no other user can ever
    # read it, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def _read_private(path: Path) -> ec.EllipticCurvePrivateKey:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SigningError(
            f"private key {path}: expected permissions 0600 (owner only), found {mode:04o}; "
            f"run chmod 600 {path}"
        )
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as exc:
        raise SigningError(f"private key {path}: expected a PEM PKCS#8 key, found: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SigningError(f"private key {path}: expected an EC key, found {type(key).__name__}")
    return key


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CE Ledger (development only)"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


@dataclass(frozen=True)
class DevelopmentPKI:
    """A development root CA and a document-signing certificate it issued.

    Files in ``directory``: ``dev-root-ca.pem`` (the root certificate: give it to a verifier
    as its trust anchor), ``dev-root-ca.key``, ``dev-signing.pem``, ``dev-signing.key``.
    """

    directory: Path
    root_cert: x509.Certificate
    signing_cert: x509.Certificate
    signing_key: ec.EllipticCurvePrivateKey

    @property
    def root_cert_path(self) -> Path:
        return self.directory / _ROOT_CERT

    @classmethod
    def load_or_create(
        cls, directory: str | Path, *, now: dt.datetime | None = None
    ) -> DevelopmentPKI:
        """Load the PKI from ``directory``, generating it (root valid 10 years, signing
        certificate 2 years) when the directory holds none of its files.

        A directory with only some of the files raises `SigningError` rather than silently
        issuing a new chain that earlier signatures do not lead to.
        """
        directory = Path(directory)
        names = (_ROOT_CERT, _ROOT_KEY, _SIGN_CERT, _SIGN_KEY)
        # One listing, not a test per file: the directory appears whole (``_publish``), and
        # tests made file by file could straddle its appearance and see part of it.
        listed = {p.name for p in directory.iterdir()} if directory.is_dir() else set()
        present = [n for n in names if n in listed]
        if not present:
            cls._publish(directory, now or dt.datetime.now(dt.UTC))
        elif len(present) != len(names):
            missing = sorted(set(names) - set(present))
            raise SigningError(
                f"development PKI in {directory}: expected all of {', '.join(names)}, found "
                f"{', '.join(missing)} missing; remove the directory to start a new chain"
            )
        try:
            root = x509.load_pem_x509_certificate((directory / _ROOT_CERT).read_bytes())
            cert = x509.load_pem_x509_certificate((directory / _SIGN_CERT).read_bytes())
        except ValueError as exc:
            raise SigningError(
                f"development PKI in {directory}: expected PEM certificates, found: {exc}"
            ) from exc
        _read_private(directory / _ROOT_KEY)  # checks its permissions too
        key = _read_private(directory / _SIGN_KEY)
        if cert.public_key().public_numbers() != key.public_key().public_numbers():  # type: ignore[union-attr]
            raise SigningError(
                f"development PKI in {directory}: expected {_SIGN_KEY} to be the key of "
                f"{_SIGN_CERT}, found a different key"
            )
        return cls(directory, root, cert, key)

    @classmethod
    def _publish(cls, directory: Path, now: dt.datetime) -> None:
        # Concurrent first uses (threads of a worker, several workers) each build a chain in a
        # private sibling directory and rename it into place: rename is atomic and refuses a
        # non-empty target, so one chain wins and nobody reads half of one (concurrent first
        # certificates found a half-written directory and answered 500).
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
        try:
            cls._create(staging, now)
            try:
                staging.rename(directory)
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    @staticmethod
    def _create(directory: Path, now: dt.datetime) -> None:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        root_key = ec.generate_private_key(ec.SECP256R1())
        root_name = _name("CE Ledger Development Root CA")
        root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
        root = (
            x509.CertificateBuilder()
            .subject_name(root_name)
            .issuer_name(root_name)
            .public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(root_ski, critical=False)
            .sign(root_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name("CE Ledger Development Document Signing"))
            .issuer_name(root_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=730))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=True,  # non-repudiation: what PDF validators ask for
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                # emailProtection too: NSS (behind poppler's pdfsig) checks signer certificates
                # for the S/MIME signing usage, and CMS signatures are that family.
                x509.ExtendedKeyUsage([_DOCUMENT_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                critical=False,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski),
                critical=False,
            )
            .sign(root_key, hashes.SHA256())
        )
        _write_private(directory / _ROOT_KEY, root_key)
        _write_private(directory / _SIGN_KEY, key)
        (directory / _ROOT_CERT).write_bytes(root.public_bytes(serialization.Encoding.PEM))
        (directory / _SIGN_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def signer(self) -> Any:
        """A pyHanko ``SimpleSigner`` with the signing key and the chain up to the root.

        Built through an in-memory PKCS#12 bundle, the same path a production certificate
        takes (`load_signer_from_pkcs12`).
        """
        bundle = pkcs12.serialize_key_and_certificates(
            b"celedger-dev",
            self.signing_key,
            self.signing_cert,
            [self.root_cert],
            serialization.NoEncryption(),
        )
        return _signer_from_pkcs12(bundle, None, self.directory / _SIGN_KEY)

    def trust_root(self) -> Any:
        """The root certificate as pyHanko's validators take it (an asn1crypto certificate)."""
        pem = self.root_cert.public_bytes(serialization.Encoding.PEM)
        return next(iter(load_certs_from_pemder_data(pem)))


def _signer_from_pkcs12(data: bytes, password: bytes | None, source: Path) -> Any:
    try:
        signer: Any = signers.SimpleSigner.load_pkcs12_data(
            data, other_certs=(), passphrase=password
        )
    except ValueError as exc:
        cause = exc.__cause__ or exc
        raise SigningError(
            f"PKCS#12 data from {source}: expected key and certificate readable with the given "
            f"password, found: {cause}"
        ) from exc
    return signer


def load_signer_from_pkcs12(path: str | Path, password: str | bytes | None) -> Any:
    """A pyHanko signer from a PKCS#12 file (``.p12``/``.pfx``) holding key, certificate and
    chain — how a production signing certificate is delivered."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningError(f"PKCS#12 file {path}: expected a readable file, found: {exc}") from exc
    secret = password.encode() if isinstance(password, str) else password
    return _signer_from_pkcs12(data, secret, path)


def sign_pdf(
    pdf: bytes,
    signer: Any,
    *,
    field_name: str = "CELedgerSignature",
    reason: str = "CE Ledger 签发（继续教育学时证明）",
    location: str | None = None,
    timestamper: Any = None,
) -> bytes:
    """``pdf`` with a PAdES B-B signature by ``signer`` appended (B-T with a timestamper)."""
    meta = signers.PdfSignatureMetadata(
        field_name=field_name,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason=reason,
        location=location,
    )
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
        pdf_signer = signers.PdfSigner(meta, signer=signer, timestamper=timestamper)
        out = pdf_signer.sign_pdf(writer)
    except (PdfError, ValueError, TypeError) as exc:
        raise SigningError(f"signing: expected a PDF pyHanko can sign, found: {exc}") from exc
    data: bytes = out.getvalue()
    return data
