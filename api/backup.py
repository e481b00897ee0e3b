"""``celedger backup DIR`` / ``celedger restore DIR``: the database and the keys, together.

A backup directory holds:

* ``database.pgdump`` (PostgreSQL: ``pg_dump --format=custom`` of an exported snapshot) or
  ``database.sqlite`` (SQLite: the online-backup API) — a consistent copy taken while the
  service runs;
* ``keys/`` and ``data/``: the key files the service reads (log signing key, personal-data
  key, key-encryption key, witness key, the development PDF-signing CA) — **secret**: the
  directory is created mode 0700 and should be encrypted before it leaves the host;
* ``manifest.json`` (written last, so a directory without it is an unfinished backup): the
  SHA-256 of every file, the log's size, root and signed checkpoint *in the dumped snapshot*,
  and fingerprints of the keys given as settings (``CELEDGER_PII_KEY``,
  ``CELEDGER_KEY_ENCRYPTION_KEY``), which live in the operator's secret store, not here.

Restore refuses, before writing anything, when a file's hash differs, when the backup is of
another origin or database kind, when a configured key's fingerprint differs from the
backup's (sealed personal data and issuing keys would be unreadable), when a key file already
at the target differs, or when the target database is not empty.  After loading, it checks
that the restored log's latest checkpoint is exactly the manifest's and verifies with the
restored log key.  Then ``celedger audit`` re-derives the whole tree.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from api.settings import Settings
from ledger.errors import LedgerError
from ledger.keystore import read_secret, write_secret
from ledger.storage.db import is_sqlite, normalise_url
from ledger.storage.models import LogCheckpoint

__all__ = ["FORMAT", "BackupError", "Manifest", "backup", "restore"]

FORMAT: Final = "celedger-backup/1"
_PG_FILE: Final = "database.pgdump"
_SQLITE_FILE: Final = "database.sqlite"


class BackupError(LedgerError):
    """A backup or restore was refused; ``exit_code`` follows ``api.cli``'s table."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Manifest:
    data: dict[str, Any]

    @property
    def size(self) -> int:
        return int(self.data["log"]["size"])

    @property
    def root(self) -> str:
        return str(self.data["log"]["root"])


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fingerprint(key: bytes) -> str:
    """A key's fingerprint: identifies it without revealing it (domain-separated SHA-256)."""
    return hashlib.sha256(b"celedger key fingerprint\x00" + key).hexdigest()[:32]


def _decode_key(text_value: str, source: str) -> bytes:
    try:
        return base64.b64decode(text_value.strip(), validate=True)
    except binascii.Error:
        raise BackupError(f"{source}: expected base64, found something else", 2) from None


# (setting, field, key file under <data_dir>/keys) — as api.context.load_or_create_key reads them.
_SYMMETRIC: Final = [
    ("CELEDGER_PII_KEY", "pii_key", "pii.key"),
    ("CELEDGER_KEY_ENCRYPTION_KEY", "key_encryption_key", "kek.key"),
]


def _witness_key_file(settings: Settings) -> Path:
    given = getattr(settings, "witness_key_file", None)
    return Path(given) if given else settings.data_dir / "keys" / "witness.key"


def _key_files(settings: Settings) -> list[tuple[Path, str, str]]:
    """(source file, path in the backup, where it goes back) for every key file present."""
    roles = {
        settings.effective_log_key_file.resolve(): ("keys/log.key", "log_key_file"),
        _witness_key_file(settings).resolve(): ("keys/witness.key", "witness_key_file"),
    }
    found: dict[Path, tuple[str, str]] = {}
    for sub in ("keys", "pki"):
        folder = settings.data_dir / sub
        if folder.is_dir():
            for f in sorted(folder.iterdir()):
                if f.is_file() and not f.name.endswith(".tmp"):
                    rel = f"{sub}/{f.name}"
                    found[f.resolve()] = roles.get(f.resolve(), (f"data/{rel}", f"data:{rel}"))
    for path, role in roles.items():
        if path not in found and path.is_file():
            found[path] = role
    return [(p, rel, to) for p, (rel, to) in sorted(found.items(), key=lambda kv: kv[1][0])]


def _target(settings: Settings, restore_to: str) -> Path:
    if restore_to == "log_key_file":
        return settings.effective_log_key_file
    if restore_to == "witness_key_file":
        return _witness_key_file(settings)
    if restore_to.startswith("data:"):
        rel = Path(restore_to.removeprefix("data:"))
        if rel.is_absolute() or ".." in rel.parts or rel.parts[0] not in ("keys", "pki"):
            raise BackupError(f"manifest: refusing to restore a file to {restore_to!r}")
        return settings.data_dir / rel
    raise BackupError(f"manifest: unknown file destination {restore_to!r}")


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URL without the password (it would show in ``ps``) and the environment that
    carries it instead."""
    u = make_url(normalise_url(url))
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    plain = u.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run(cmd: list[str], env: dict[str, str]) -> None:
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)  # noqa: S603 - fixed program, our arguments
    except FileNotFoundError:
        raise BackupError(
            f"{cmd[0]} not found: install the PostgreSQL client (Debian: postgresql-client)", 3
        ) from None
    if done.returncode != 0:
        raise BackupError(f"{cmd[0]} failed ({done.returncode}): {done.stderr.strip()[:2000]}", 3)


def _checkpoint_json(cp: LogCheckpoint | None) -> dict[str, Any]:
    if cp is None:
        return {"size": 0, "root": "", "checkpoint": None}
    return {"size": int(cp.size), "root": bytes(cp.root_hash).hex(), "checkpoint": cp.note}


def _latest(conn: Any) -> LogCheckpoint | None:
    row = conn.execute(
        select(LogCheckpoint.size, LogCheckpoint.root_hash, LogCheckpoint.note)
        .order_by(LogCheckpoint.size.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return LogCheckpoint(size=row[0], root_hash=row[1], note=row[2])


def _dump_postgres(url: str, out: Path) -> tuple[dict[str, Any], str]:
    engine = create_engine(normalise_url(url))
    libpq, env = _libpq(url)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                # pg_dump reads the snapshot this transaction exported, so the manifest's
                # checkpoint is exactly the dump's latest one.
                snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
                log = _checkpoint_json(_latest(conn))
                revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
                _run(
                    [
                        "pg_dump",
                        "--format=custom",
                        "--no-owner",
                        "--no-privileges",
                        f"--snapshot={snapshot}",
                        f"--file={out / _PG_FILE}",
                        f"--dbname={libpq}",
                    ],
                    env,
                )
    finally:
        engine.dispose()
    return log, str(revision)


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database:
        raise BackupError("CELEDGER_DATABASE_URL: expected a SQLite file, found none", 2)
    return Path(database)


def _dump_sqlite(url: str, out: Path) -> tuple[dict[str, Any], str]:
    src = sqlite3.connect(f"file:{_sqlite_path(url)}?mode=ro", uri=True)
    dst = sqlite3.connect(out / _SQLITE_FILE)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    engine = create_engine(f"sqlite:///{out / _SQLITE_FILE}")
    try:
        with engine.connect() as conn:
            log = _checkpoint_json(_latest(conn))
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()
    return log, str(revision)


def _settings_keys(settings: Settings) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    for name, field, file_name in _SYMMETRIC:
        value = getattr(settings, field)
        if value is not None:
            key = _decode_key(value.get_secret_value(), name)
            keys[name] = {"source": "setting", "fingerprint": fingerprint(key)}
        elif (settings.data_dir / "keys" / file_name).is_file():
            path = settings.data_dir / "keys" / file_name
            key = _decode_key(read_secret(path), str(path))
            keys[name] = {"source": f"data/keys/{file_name}", "fingerprint": fingerprint(key)}
    if settings.pdf_signer_p12 is not None and settings.pdf_signer_p12.is_file():
        keys["CELEDGER_PDF_SIGNER_P12"] = {
            "source": "setting",
            "sha256": _sha256(settings.pdf_signer_p12),
        }
    return keys


def backup(settings: Settings, out: Path) -> Manifest:
    """Write a backup of the database and the keys into ``out`` (new or empty)."""
    if out.exists() and any(out.iterdir()):
        raise BackupError(f"{out}: expected a new or empty directory, found files in it", 2)
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    out.chmod(0o700)
    url = settings.effective_database_url
    dialect = "sqlite" if is_sqlite(url) else "postgresql"
    log, revision = _dump_sqlite(url, out) if dialect == "sqlite" else _dump_postgres(url, out)
    files = [_SQLITE_FILE if dialect == "sqlite" else _PG_FILE]
    entries: list[dict[str, Any]] = []
    for source, rel, restore_to in _key_files(settings):
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copyfile(source, dest)
        dest.chmod(0o600)
        entries.append({"path": rel, "restore_to": restore_to})
    for name in files:
        (out / name).chmod(0o600)
        entries.insert(0, {"path": name, "restore_to": "database"})
    for e in entries:
        e["sha256"] = _sha256(out / e["path"])
        e["bytes"] = (out / e["path"]).stat().st_size
    manifest = {
        "format": FORMAT,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "origin": settings.origin,
        "dialect": dialect,
        "schema_revision": revision,
        "log": log,
        "settings_keys": _settings_keys(settings),
        "files": entries,
    }
    tmp = out / ".manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    tmp.chmod(0o600)
    tmp.replace(out / "manifest.json")
    return Manifest(manifest)


def read_manifest(src: Path) -> Manifest:
    """The backup's manifest, after checking every file's hash."""
    path = src / "manifest.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise BackupError(
            f"{path} does not exist: not a backup, or an unfinished one (the manifest is "
            "written last)",
            2,
        ) from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"{path}: expected a JSON manifest, found: {exc}", 2) from None
    if data.get("format") != FORMAT:
        raise BackupError(f"{path}: expected format {FORMAT!r}, found {data.get('format')!r}", 2)
    for e in data["files"]:
        rel = Path(e["path"])
        if rel.is_absolute() or ".." in rel.parts:
            raise BackupError(f"manifest: refusing a file outside the backup: {e['path']!r}")
        f = src / rel
        if not f.is_file():
            raise BackupError(f"backup file {e['path']} is missing")
        found = _sha256(f)
        if found != e["sha256"]:
            raise BackupError(
                f"backup file {e['path']} is damaged: expected SHA-256 {e['sha256']}, found {found}"
            )
    return Manifest(data)


def _check_settings_keys(settings: Settings, manifest: Manifest, src: Path) -> None:
    """Every key the backup was made with is the key this configuration will use."""
    for name, field, file_name in _SYMMETRIC:
        was = manifest.data["settings_keys"].get(name)
        if was is None:
            continue
        value = getattr(settings, field)
        if value is not None:
            key, where = _decode_key(value.get_secret_value(), name), name
        elif (src / "data" / "keys" / file_name).is_file():
            path = src / "data" / "keys" / file_name
            key, where = _decode_key(read_secret(path), str(path)), f"the backup's {file_name}"
        else:
            raise BackupError(
                f"{name} is not set: the backup was made with a key of fingerprint "
                f"{was['fingerprint']} (kept as a setting, not in the backup); set it",
                2,
            )
        if fingerprint(key) != was["fingerprint"]:
            raise BackupError(
                f"{name}: expected the key of fingerprint {was['fingerprint']} the backup was "
                f"made with, found {fingerprint(key)} ({where}); its sealed data would be "
                "unreadable",
                2,
            )


def _pg_is_empty(url: str) -> bool:
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            count = conn.execute(
                text(
                    "SELECT count(*) FROM pg_catalog.pg_tables "
                    "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    return int(count) == 0


def _restore_files(settings: Settings, manifest: Manifest, src: Path) -> None:
    planned: list[tuple[Path, Path]] = []
    for e in manifest.data["files"]:
        if e["restore_to"] == "database":
            continue
        dest = _target(settings, e["restore_to"])
        if dest.exists():
            if _sha256(dest) != e["sha256"]:
                raise BackupError(
                    f"{dest} exists and differs from the backup's {e['path']}: restore into a "
                    "fresh data directory (or move that file away)",
                    2,
                )
            continue
        planned.append((src / e["path"], dest))
    for source, dest in planned:
        if dest.suffix in (".key",) or dest.parent.name == "keys":
            write_secret(dest, source.read_text())
        else:
            dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            shutil.copyfile(source, dest)
            dest.chmod(0o600)


def restore(settings: Settings, src: Path) -> Manifest:
    """Restore ``src`` into the configured (empty) database and data directory."""
    manifest = read_manifest(src)
    data = manifest.data
    if data["origin"] != settings.origin:
        raise BackupError(
            f"CELEDGER_ORIGIN: the backup is of {data['origin']!r}, this configuration is "
            f"{settings.origin!r}",
            2,
        )
    url = settings.effective_database_url
    dialect = "sqlite" if is_sqlite(url) else "postgresql"
    if dialect != data["dialect"]:
        raise BackupError(
            f"CELEDGER_DATABASE_URL: the backup is of a {data['dialect']} database, this "
            f"configuration uses {dialect}; restore into the same kind",
            2,
        )
    _check_settings_keys(settings, manifest, src)
    # The database first: an occupied target must stop the restore before any key is written.
    if dialect == "postgresql":
        if not _pg_is_empty(url):
            raise BackupError(
                "CELEDGER_DATABASE_URL: the target database is not empty; restore needs a "
                "fresh one (createdb, never migrated)",
                2,
            )
    else:
        target = _sqlite_path(url)
        if target.exists() and target.stat().st_size > 0:
            raise BackupError(
                f"CELEDGER_DATABASE_URL: {target} exists; restore needs a fresh database file",
                2,
            )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Key files next, all checked before any is written (a conflicting file stops it all).
    _restore_files(settings, manifest, src)
    if dialect == "postgresql":
        libpq, env = _libpq(url)
        _run(
            [
                "pg_restore",
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
                f"--dbname={libpq}",
                str(src / _PG_FILE),
            ],
            env,
        )
    else:
        target = _sqlite_path(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        source = sqlite3.connect(f"file:{src / _SQLITE_FILE}?mode=ro", uri=True)
        dest = sqlite3.connect(target)
        try:
            source.backup(dest)
        finally:
            source.close()
            dest.close()
    _check_restored(settings, manifest)
    return manifest


def _check_restored(settings: Settings, manifest: Manifest) -> None:
    """The restored log ends at the manifest's checkpoint, signed by the restored key."""
    from api.context import load_or_create_log_signer
    from ledger.checkpoint import open_checkpoint

    engine = create_engine(normalise_url(settings.effective_database_url))
    try:
        with engine.connect() as conn:
            latest = _checkpoint_json(_latest(conn))
    finally:
        engine.dispose()
    want = manifest.data["log"]
    if (latest["size"], latest["root"]) != (want["size"], want["root"]):
        raise BackupError(
            f"restored log: expected latest checkpoint size {want['size']} root {want['root']}, "
            f"found size {latest['size']} root {latest['root']}"
        )
    if latest["checkpoint"] is not None:
        verifier = load_or_create_log_signer(settings).verifier()
        try:
            open_checkpoint(latest["checkpoint"], settings.origin, [verifier])
        except LedgerError as exc:
            raise BackupError(
                f"restored log: the latest checkpoint does not verify with the restored log "
                f"key: {exc}"
            ) from exc
