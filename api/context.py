"""What a running service holds: settings, database handle, the log and its keys.

Built once by ``create_app`` (or the CLI) from explicit settings; never at import time.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass, field
from typing import Any

import anyio
from pydantic import SecretStr

from api.settings import Settings
from certificates.issue import Issuer
from certificates.verifier import OnlineVerifier
from ledger.completions.pii import KEY_BYTES, PersonalDataVault
from ledger.keystore import read_secret, write_secret
from ledger.note import NoteSigner, NoteVerifier
from ledger.storage.db import Database
from ledger.storage.log import Log, index_leaves


def load_or_create_log_signer(settings: Settings) -> NoteSigner:
    path = settings.effective_log_key_file
    if not path.exists():
        if settings.environment == "production":
            raise SystemExit(
                f"CELEDGER_LOG_KEY_FILE: {path} does not exist; create it with "
                "`celedger keys init` before starting in production"
            )
        write_secret(path, NoteSigner.generate(settings.origin).to_skey())
    signer = NoteSigner.from_skey(read_secret(path))
    if signer.name != settings.origin:
        raise SystemExit(
            f"log key {path} is for origin {signer.name!r} but CELEDGER_ORIGIN is "
            f"{settings.origin!r}: they must be equal"
        )
    return signer


def load_or_create_key(
    settings: Settings, value: SecretStr | None, name: str, file_name: str
) -> bytes:
    """A 32-byte symmetric key from a setting (base64), or — in development only — from a key
    file under <data_dir>/keys created on first use.  Production refuses to invent one: a lost
    or silently regenerated key makes every sealed value unreadable."""
    if value is not None:
        text = value.get_secret_value()
        source = f"CELEDGER_{name}"
    else:
        path = settings.data_dir / "keys" / file_name
        if not path.exists():
            if settings.environment == "production":
                raise SystemExit(
                    f"CELEDGER_{name} is not set: production needs it "
                    f"(32 random bytes, base64: `python -c 'import os,base64;"
                    f"print(base64.b64encode(os.urandom(32)).decode())'`)"
                )
            write_secret(path, base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode())
        text = read_secret(path)
        source = str(path)
    try:
        key = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise SystemExit(f"{source}: expected base64 of {KEY_BYTES} bytes") from None
    if len(key) != KEY_BYTES:
        raise SystemExit(f"{source}: expected {KEY_BYTES} bytes, found {len(key)}")
    return key


@dataclass
class Context:
    settings: Settings
    db: Database
    log: Log
    vault: PersonalDataVault
    kek: bytes
    _issuer: Issuer | None = field(default=None, repr=False)
    _verifier: OnlineVerifier | None = field(default=None, repr=False)
    # An anyio.Event while `renew_verifier_snapshot` reads (typed loosely: the dependency
    # injector inspects this dataclass's field types).
    _renewing: Any = field(default=None, repr=False)
    _pdf_signer: Any = field(default=None, repr=False)

    def pdf_trust_roots(self) -> list[Any]:
        """The certificates an uploaded PDF's signature must chain to: our signing chain."""
        self.issuer()
        return [*self._pdf_signer.cert_registry, self._pdf_signer.signing_cert]

    def verifier(self) -> OnlineVerifier:
        """Online verification of scanned tokens (see ``certificates.verifier``)."""
        if self._verifier is None:
            self._verifier = OnlineVerifier(
                log=self.log,
                log_verifier=self.log_verifier,
                origin=self.settings.origin,
                vault=self.vault,
                public_url=self.settings.public_url,
                kek=self.kek,
                report_cache=self.settings.verify_report_cache,
                freshness=self.settings.verify_freshness_seconds,
            )
        return self._verifier

    async def renew_verifier_snapshot(self) -> None:
        """Read the verifier's snapshot again, once at a time in this process.

        Once a second (``verify_freshness_seconds``) the kept snapshot goes stale and every
        request in flight finds no kept report: under 64 connections all of them went to worker
        threads to read the same checkpoint row, and the event loop stalled for 50–70 ms (p99 of
        bench/bench_verify.py).  The first caller reads it; the others wait for that one read.
        """
        if self._renewing is not None:
            await self._renewing.wait()
            return
        done = self._renewing = anyio.Event()
        try:
            await anyio.to_thread.run_sync(self._read_verifier_snapshot)
        finally:
            self._renewing = None
            done.set()

    def _read_verifier_snapshot(self) -> None:
        with self.db.reader() as s:
            self.verifier().snapshot(s)

    @property
    def log_verifier(self) -> NoteVerifier:
        return self.log.signer.verifier()

    @classmethod
    def from_settings(cls, settings: Settings) -> Context:
        db = Database(settings.effective_database_url, settings.read_database_url)
        signer = load_or_create_log_signer(settings)
        vault = PersonalDataVault(
            load_or_create_key(settings, settings.pii_key, "PII_KEY", "pii.key")
        )
        kek = load_or_create_key(
            settings, settings.key_encryption_key, "KEY_ENCRYPTION_KEY", "kek.key"
        )
        return cls(settings=settings, db=db, log=Log(settings.origin, signer), vault=vault, kek=kek)

    def issuer(self) -> Issuer:
        """Certificate issuing (built on first use: it loads the PDF-signing certificate)."""
        if self._issuer is None:
            from certificates.pades import DevelopmentPKI, load_signer_from_pkcs12, sign_pdf

            s = self.settings
            if s.pdf_signer_p12 is not None:
                password = s.pdf_signer_password
                pdf_signer = load_signer_from_pkcs12(
                    s.pdf_signer_p12, None if password is None else password.get_secret_value()
                )
            elif s.environment == "production":
                raise SystemExit(
                    "CELEDGER_PDF_SIGNER_P12 is not set: production signs certificates with a "
                    "real certificate, not the development CA"
                )
            else:
                pdf_signer = DevelopmentPKI.load_or_create(s.data_dir / "pki").signer()
            self._pdf_signer = pdf_signer
            self._issuer = Issuer(
                log=self.log,
                vault=self.vault,
                kek=self.kek,
                public_url=s.public_url,
                sign_pdf=lambda pdf: sign_pdf(pdf, pdf_signer),
                font=None if s.cjk_font is None else str(s.cjk_font),
            )
        return self._issuer

    def index_leaves(self) -> int:
        """Bring the leaf-hash lookup index up to date (cheap when there is nothing new)."""
        total = 0
        while True:
            with self.db.writer() as s:
                n = index_leaves(s)
            total += n
            if n == 0:
                return total

    def close(self) -> None:
        self.db.dispose()
