"""``celedger``: the command line.

Exit codes (stable, for scripts and monitors):
  0  success / audit clean / verification valid
  1  audit found a divergence / verification failed
  2  usage or configuration error
  3  could not reach or read what was asked for (file, URL, database)
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from api.settings import Settings

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_IO = 0, 1, 2, 3


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    if getattr(args, "database_url", None):
        overrides["database_url"] = args.database_url
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = [
            f"  CELEDGER_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        ]
        print("invalid configuration:\n" + "\n".join(lines), file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def _out(msg: str) -> None:
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from ledger.storage.migrate import upgrade

    s = _settings(args)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(s.effective_database_url)
    _out("database is at the latest schema")
    return EXIT_OK


def cmd_keys_init(args: argparse.Namespace) -> int:
    from api.context import load_or_create_log_signer

    s = _settings(args)
    existed = s.effective_log_key_file.exists()
    signer = load_or_create_log_signer(s.model_copy(update={"environment": "development"}))
    _out(
        ("log key already exists: " if existed else "created log key: ")
        + str(s.effective_log_key_file)
    )
    _out("verifier key (publish this): " + signer.verifier().to_vkey())
    return EXIT_OK


def cmd_keys_show(args: argparse.Namespace) -> int:
    from api.context import load_or_create_log_signer

    _out(load_or_create_log_signer(_settings(args)).verifier().to_vkey())
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    from ledger.note import NoteVerifier

    if args.remote:
        import httpx

        from ledger.tileaudit import audit_remote

        if not args.vkey or not args.origin:
            print(
                "--remote needs --vkey and --origin (the log's published verifier key)",
                file=sys.stderr,
            )
            return EXIT_USAGE
        base = args.remote.rstrip("/") + "/"
        with httpx.Client(timeout=30) as http:

            def fetch(path: str) -> bytes:
                r = http.get(base + path)
                if r.status_code != 200:
                    from ledger.errors import LedgerError

                    raise LedgerError(f"GET {path}: expected 200, found {r.status_code}")
                return r.content

            try:
                report = audit_remote(fetch, args.origin, [NoteVerifier.from_vkey(args.vkey)])
            except httpx.HTTPError as exc:
                print(f"cannot reach {base}: {exc}", file=sys.stderr)
                return EXIT_IO
    else:
        from api.context import Context
        from ledger.storage.audit import audit_local

        ctx = Context.from_settings(_settings(args))
        try:
            with ctx.db.reader() as s:
                report = audit_local(s, ctx.settings.origin, [ctx.log_verifier])
        finally:
            ctx.close()
    _out(
        f"audited {report.entries} entries, {report.tiles} tiles, {report.checkpoints} checkpoints; "
        f"root {report.root_hash.hex()}"
    )
    if report.ok:
        _out("audit clean")
        return EXIT_OK
    first = report.first
    _out(f"FIRST DIVERGENCE: {first}")
    for p in report.problems[1:20]:
        _out(f"  also: {p}")
    return EXIT_FAIL


def cmd_authority_key(args: argparse.Namespace) -> int:
    from api.context import Context
    from ledger.errors import LedgerError
    from ledger.registry.services import bootstrap_authority_key
    from ledger.storage.migrate import upgrade

    s = _settings(args)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(s.effective_database_url)
    ctx = Context.from_settings(s)
    try:
        with ctx.db.writer() as session:
            key = bootstrap_authority_key(session, args.jurisdiction, args.label, log=ctx.log)
    except LedgerError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return EXIT_FAIL
    finally:
        ctx.close()
    _out(f"authority key for {args.jurisdiction} (shown once; store it now):")
    _out(key)
    return EXIT_OK


def _serve(settings: Settings, host: str, port: int, workers: int) -> int:
    import os

    import uvicorn

    # Workers re-create the app from the environment, so hand them the effective settings.
    os.environ["CELEDGER_DATA_DIR"] = str(settings.data_dir.resolve())
    if settings.database_url:
        os.environ["CELEDGER_DATABASE_URL"] = settings.database_url
    uvicorn.run(
        "api.asgi:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=20,
        access_log=False,
    )
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from ledger.storage.migrate import upgrade

    s = _settings(args)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    if not args.no_migrate:
        upgrade(s.effective_database_url)
    return _serve(s, args.host, args.port, args.workers)


def cmd_demo(args: argparse.Namespace) -> int:
    from api.context import Context
    from ledger.storage.migrate import upgrade

    s = _settings(args)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(s.effective_database_url)
    ctx = Context.from_settings(s)
    try:
        lines = seed_demo_lines(ctx)
    finally:
        ctx.close()
    url = f"http://{args.host}:{args.port}"
    _out("")
    _out("CE Ledger is starting on the embedded SQLite database " + s.effective_database_url)
    _out(f"  home            {url}/")
    _out(f"  API reference   {url}/schema   (OpenAPI: {url}/schema/openapi.json)")
    _out(f"  log checkpoint  {url}/log/checkpoint")
    for line in lines:
        _out("  " + line)
    _out("Stop with Ctrl-C.")
    _out("")
    return _serve(s, args.host, args.port, 1)


def seed_demo_lines(ctx: object) -> list[str]:
    """Seed the demo data (once); return the lines to print."""
    from api.context import Context
    from ledger.registry.demo import seed_demo

    assert isinstance(ctx, Context)
    return [str(line) for line in seed_demo(ctx.db, ctx.log).lines()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="celedger", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data-dir", help="data directory (default: $CELEDGER_DATA_DIR or ./var)")
    p.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite in the data directory)")
    sub = p.add_subparsers(dest="cmd", required=True)

    sp = sub.add_parser("serve", help="run the HTTP service")
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=8000)
    sp.add_argument("--workers", type=int, default=1)
    sp.add_argument("--no-migrate", action="store_true", help="do not apply migrations first")
    sp.set_defaults(func=cmd_serve)

    sp = sub.add_parser("demo", help="migrate, load demo data and serve on the embedded default")
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=8000)
    sp.set_defaults(func=cmd_demo)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="dbcmd", required=True)
    db.add_parser("upgrade", help="apply all migrations").set_defaults(func=cmd_db_upgrade)

    keys = sub.add_parser("keys", help="signing keys").add_subparsers(dest="keyscmd", required=True)
    keys.add_parser("init", help="create the log key if missing").set_defaults(func=cmd_keys_init)
    keys.add_parser("show", help="print the log's verifier key").set_defaults(func=cmd_keys_show)

    auth = sub.add_parser("authority", help="trust root").add_subparsers(
        dest="authcmd", required=True
    )
    sp = auth.add_parser("create-key", help="create the first authority API key (operator only)")
    sp.add_argument(
        "--jurisdiction", default="CN", help="jurisdiction code (default: CN, national)"
    )
    sp.add_argument("--label", default="operator bootstrap", help="what the key is for")
    sp.set_defaults(func=cmd_authority_key)

    sp = sub.add_parser("audit", help="re-derive the log and check every hash and checkpoint")
    sp.add_argument(
        "--remote", help="audit a remote log from its tiles: URL of its prefix (…/log/)"
    )
    sp.add_argument("--vkey", help="the remote log's verifier key")
    sp.add_argument("--origin", help="the remote log's origin")
    sp.set_defaults(func=cmd_audit)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            return EXIT_USAGE
        raise


if __name__ == "__main__":
    raise SystemExit(main())
