"""What a running service holds: settings, database handle, the log and its keys.

Built once by ``create_app`` (or the CLI) from explicit settings; never at import time.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.settings import Settings
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


@dataclass
class Context:
    settings: Settings
    db: Database
    log: Log

    @property
    def log_verifier(self) -> NoteVerifier:
        return self.log.signer.verifier()

    @classmethod
    def from_settings(cls, settings: Settings) -> Context:
        db = Database(settings.effective_database_url, settings.read_database_url)
        signer = load_or_create_log_signer(settings)
        return cls(settings=settings, db=db, log=Log(settings.origin, signer))

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
