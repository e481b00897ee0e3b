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
import re
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
        from api.ops import settings_error_lines

        lines = settings_error_lines(exc)
        print("invalid configuration:\n" + "\n".join(lines), file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def _out(msg: str) -> None:
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from api.ops import migrate

    s = _settings(args)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    # One process at a time (replicas may start together): see api.ops.migrate.
    migrate(s.effective_database_url)
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


class _Progress:
    """A one-line progress bar on stderr (only when it is a terminal, so logs stay clean)."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, max(total, 1), 0
        self.live = sys.stderr.isatty()

    def __call__(self, n: int) -> None:
        self.done += n
        if self.live:
            width = 30
            filled = width * self.done // self.total
            sys.stderr.write(
                f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}"
            )
            sys.stderr.flush()

    def close(self) -> None:
        if self.live:
            sys.stderr.write("\n")


def cmd_certificates(args: argparse.Namespace) -> int:
    """Completion certificates for every current record of a base's year, into a directory."""
    import time

    from sqlalchemy import select

    from api.context import Context
    from certificates.issue import completion_certificates
    from ledger.completions.models import CompletionRecord, Revocation
    from ledger.errors import LedgerError

    ctx = Context.from_settings(_settings(args))
    out_dir = Path(args.out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"cannot create {out_dir}: {exc}", file=sys.stderr)
        return EXIT_IO
    try:
        issuer = ctx.issuer()
        with ctx.db.writer() as s:
            superseded = select(CompletionRecord.supersedes).where(
                CompletionRecord.supersedes.is_not(None)
            )
            ids = list(
                s.execute(
                    select(CompletionRecord.id)
                    .where(
                        CompletionRecord.base_id == args.base,
                        CompletionRecord.year == args.year,
                        CompletionRecord.id.not_in(superseded),
                        CompletionRecord.id.not_in(select(Revocation.record_id)),
                    )
                    .order_by(CompletionRecord.log_index)
                ).scalars()
            )
            if not ids:
                _out(f"base {args.base} has no current records for {args.year}")
                return EXIT_OK
            # Each record is counted twice: once prepared, once rendered, signed and written.
            bar = _Progress("certificates", 2 * len(ids))
            t0 = time.perf_counter()
            issued = completion_certificates(
                s, issuer, "operator", ids, workers=args.workers, progress=bar
            )
            for doc, rid in zip(issued, ids, strict=True):
                (out_dir / f"{rid}-{doc.certificate_number}.pdf").write_bytes(doc.pdf)
            bar.close()
    except LedgerError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return EXIT_FAIL
    finally:
        ctx.close()
    elapsed = time.perf_counter() - t0
    _out(
        f"{len(issued)} certificates in {elapsed:.1f} s ({len(issued) / elapsed:.1f}/s) → {out_dir}"
    )
    return EXIT_OK


def cmd_issuing_keys(args: argparse.Namespace) -> int:
    """List, rotate or mark compromised the credential-issuing keys."""
    from datetime import UTC, datetime

    from api.context import Context
    from ledger import issuing
    from ledger.errors import LedgerError

    ctx = Context.from_settings(_settings(args))
    now = datetime.now(UTC)
    try:
        with ctx.db.writer() as s:
            if args.action == "rotate":
                event = issuing.rotate(s, ctx.log, ctx.kek, now)
                _out(f"new active issuing key {event.key.kid} (ledger entry {event.log_index})")
            elif args.action == "compromise":
                args.kid = args.kid or args.dash_kid
                if not args.kid:
                    print("compromise: name the key (see `keys issuing list`)", file=sys.stderr)
                    return EXIT_USAGE
                at = datetime.fromisoformat(args.at) if args.at else now
                if at.tzinfo is None:
                    print("--at: give a time zone, e.g. 2026-11-24T09:00:00+08:00", file=sys.stderr)
                    return EXIT_USAGE
                event = issuing.mark_compromised(s, ctx.log, args.kid, at, args.reason, now)
                _out(f"{args.kid} marked compromised from {at.isoformat()} — rotate now")
            for key in issuing.keyset(s).keys:
                _out(f"{key.kid}  {key.status:<11}  created {key.created_at.isoformat()}")
    except (LedgerError, ValueError) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return EXIT_FAIL
    finally:
        ctx.close()
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    """Verify a certificate PDF or a token (or its URL): online against the service, or
    ``--offline`` with a saved bundle.  Exit 0 valid, 1 not valid, 2 usage, 3 unreadable."""
    import json

    target = Path(args.target)
    is_pdf = target.suffix.lower() == ".pdf" or target.is_file()
    data = b""
    if is_pdf:
        try:
            data = target.read_bytes()
        except OSError as exc:
            print(f"cannot read {target}: {exc}", file=sys.stderr)
            return EXIT_IO
    if args.offline:
        from certificates.offline import Bundle, verify_pdf_offline, verify_token_offline

        if not args.bundle:
            print(
                "--offline needs --bundle FILE (save it from /api/v1/verify/bundle)",
                file=sys.stderr,
            )
            return EXIT_USAGE
        try:
            bundle = Bundle.from_json(Path(args.bundle).read_bytes())
        except OSError as exc:
            print(f"cannot read the bundle {args.bundle}: {exc}", file=sys.stderr)
            return EXIT_IO
        except Exception as exc:  # noqa: BLE001 - a bad bundle is a usage error, said plainly
            print(f"the bundle {args.bundle} is not valid: {exc}", file=sys.stderr)
            return EXIT_USAGE
        report = (
            verify_pdf_offline(data, bundle)
            if is_pdf
            else verify_token_offline(args.target, bundle)
        )
    else:
        import httpx

        base = args.server.rstrip("/")
        try:
            if is_pdf:
                r = httpx.post(
                    f"{base}/api/v1/verify/pdf",
                    content=data,
                    headers={"Content-Type": "application/pdf"},
                    timeout=60,
                )
            else:
                token = args.target.rstrip("/").rsplit("/", 1)[-1]
                r = httpx.get(f"{base}/api/v1/verify/{token}", timeout=30)
        except httpx.HTTPError as exc:
            print(f"cannot reach {base}: {exc}", file=sys.stderr)
            return EXIT_IO
        if r.status_code != 200:
            print(f"{base} answered {r.status_code}: {r.text[:300]}", file=sys.stderr)
            return EXIT_IO
        body = r.json()
        if args.json:
            _out(json.dumps(body, ensure_ascii=False, indent=2))
        else:
            _out(f"{body['verdict']}: {body['headline']['zh']} / {body['headline']['en']}")
            for c in body["checks"]:
                mark = "✓" if c["ok"] else ("–" if c["ok"] is None else "✗")
                _out(f"  {mark} {c['id']}: {c['reason']['en']}")
        return EXIT_OK if body["valid"] else EXIT_FAIL
    if args.json:
        _out(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        _out(f"{report.verdict}: {report.headline('zh')} / {report.headline('en')}")
        for c in report.checks:
            mark = "✓" if c.ok else ("–" if c.ok is None else "✗")
            _out(f"  {mark} {c.id}: {c.en}")
    return EXIT_OK if report.ok else EXIT_FAIL


def cmd_bundle(args: argparse.Namespace) -> int:
    """Write the offline-verification bundle (keys, checkpoint, PDF root) to a file."""
    import json

    from api.context import Context
    from api.routes.verify import offline_bundle

    ctx = Context.from_settings(_settings(args))
    try:
        doc = offline_bundle(ctx)
    finally:
        ctx.close()
    Path(args.out).write_text(json.dumps(doc, ensure_ascii=False, indent=2))
    _out(f"offline bundle written to {args.out}")
    return EXIT_OK


def cmd_backup(args: argparse.Namespace) -> int:
    """Back up the database (consistent snapshot) and the key files into a new directory."""
    from api.backup import BackupError, backup

    s = _settings(args)
    try:
        m = backup(s, Path(args.dir))
    except BackupError as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return exc.exit_code
    _out(
        f"backed up {m.data['dialect']} database (schema {m.data['schema_revision']}) and "
        f"{len(m.data['files']) - 1} key files to {args.dir}"
    )
    _out(f"log at the backup: size {m.size}, root {m.root or '(empty)'}")
    missing = [k for k, v in m.data["settings_keys"].items() if v["source"] == "setting"]
    if missing:
        _out("NOT in the backup (keep them in your secret store): " + ", ".join(missing))
    _out("the directory holds private keys: encrypt it before it leaves this host")
    return EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    """Restore a backup into an empty database and data directory; then run `celedger audit`."""
    from api.backup import BackupError, restore

    s = _settings(args)
    try:
        m = restore(s, Path(args.dir))
    except BackupError as exc:
        print(f"restore refused: {exc}", file=sys.stderr)
        return exc.exit_code
    _out(f"restored {m.data['dialect']} database and key files from {args.dir}")
    _out(f"log restored at size {m.size}, root {m.root or '(empty)'}; checkpoint verified")
    _out("next: `celedger audit` (re-derives the whole tree), then `celedger serve`")
    return EXIT_OK


def cmd_publish(args: argparse.Namespace) -> int:
    """Publish the checkpoint, tiles and entry bundles into a directory or S3 (once or every N s)."""
    import signal
    import threading

    from sqlalchemy.exc import SQLAlchemyError

    from api.context import Context
    from api.publish import PublishError, PublishUsageError, TargetError, open_target, publish

    s = _settings(args)
    try:
        target = open_target(args.to, s)
    except PublishUsageError as exc:
        print(f"publish: {exc}", file=sys.stderr)
        return EXIT_USAGE
    ctx = Context.from_settings(s)
    stop = threading.Event()
    if args.every:
        # docker stop: finish the pass in progress, then exit 0.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    try:
        while True:
            try:
                r = publish(ctx, target)
            except PublishError as exc:
                print(f"publish refused: {exc}", file=sys.stderr)
                return EXIT_FAIL
            except SQLAlchemyError as exc:
                print(f"publish: database error: {type(exc).__name__}", file=sys.stderr)
                if not args.every:
                    return EXIT_IO
            except (TargetError, OSError) as exc:
                # An unreachable bucket is retried on the next pass, like the database.
                print(f"publish: cannot write {target.name}: {exc}", file=sys.stderr)
                if not args.every:
                    return EXIT_IO
            else:
                if r.written or r.checkpoint_changed or not args.every:
                    _out(
                        f"published size {r.size} (was {r.previous_size}): {r.written} tiles "
                        f"and bundles written, {r.skipped} already there, {r.pruned} partial "
                        f"tiles pruned{'' if r.checkpoint_changed else ', checkpoint unchanged'}"
                    )
            if not args.every or stop.wait(args.every):
                return EXIT_OK
    finally:
        ctx.close()


def _listen(host: str, port: int) -> Any:
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _serve(settings: Settings, host: str, port: int, workers: int) -> int:
    import os

    import uvicorn

    # Workers re-create the app from the environment, so hand them the effective settings.
    os.environ["CELEDGER_DATA_DIR"] = str(settings.data_dir.resolve())
    if settings.database_url:
        os.environ["CELEDGER_DATABASE_URL"] = settings.database_url
    from api.ops import logging_config, prepare_metrics_dir, remove_metrics_dir

    # Several workers are several processes: their metrics meet in one directory.
    metrics_dir = prepare_metrics_dir(workers)
    try:
        # SIGTERM (docker stop) stops accepting, lets requests in flight finish for up to 20 s
        # (a batch's transaction commits or rolls back whole), then exits 0.
        config = uvicorn.Config(
            "api.asgi:app_factory",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=logging_config(settings),
            log_level=settings.log_level.lower(),
            timeout_graceful_shutdown=20,
            access_log=False,
            # Workers import the whole app (~1 s of CPU each) at once: on a busy 2-core host
            # the default 5 s health ping replaced healthy workers still starting.
            timeout_worker_healthcheck=30,
        )
        if workers == 1:
            uvicorn.Server(config).run()
        else:
            from uvicorn.supervisors import Multiprocess

            # uvicorn binds the shared socket with proto 0 when it forks workers; connections
            # inherit it and asyncio then never sets TCP_NODELAY, so every keep-alive response
            # waited ~40 ms for the client's delayed ACK (uvicorn issue #3149).  Bind it here.
            Multiprocess(config, sockets=[_listen(host, port)]).run()
    finally:
        remove_metrics_dir(metrics_dir)
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from api.ops import StartupError, preflight

    s = _settings(args)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    if args.workers < 1:
        print(f"--workers: expected at least 1, found {args.workers}", file=sys.stderr)
        return EXIT_USAGE
    try:
        # Keys, certificate, database, migrations and the log key, checked before any worker
        # starts: a bad setting stops here with one message naming it.
        preflight(s, run_migrations=not args.no_migrate)
    except StartupError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return exc.exit_code
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
    from datetime import datetime

    from api.context import Context
    from ledger.completions.demo import seed_completions
    from ledger.registry.demo import DEMO_YEAR, seed_demo
    from ledger.registry.services import CHINA_TZ

    assert isinstance(ctx, Context)
    # The demo registry is dated 1 December of the year before its plans, so the plan year's
    # classes fall inside the bases' recognition and the demo batch can be posted.
    info = seed_demo(ctx.db, ctx.log, now=datetime(DEMO_YEAR - 1, 12, 1, 9, tzinfo=CHINA_TZ))
    lines = [str(line) for line in info.lines()]
    if info.seeded:
        lines += seed_completions(ctx.db, ctx.log, ctx.vault)
    return lines + demo_holder_lines(ctx)


def demo_holder_lines(ctx: object) -> list[str]:
    """A fresh activation code for the first demo professional (every run: a code is shown
    once and only its hash is kept), so a newcomer can try the pages at /me."""
    from api.context import Context
    from api.routes.holder import account_rules
    from ledger.accounts.services import issue_activation_code
    from ledger.completions.demo import DEMO_PEOPLE, demo_id_number
    from ledger.registry.auth import Principal
    from ledger.registry.errors import NotFound

    assert isinstance(ctx, Context)
    name, birth = DEMO_PEOPLE[0]
    number = demo_id_number(0, birth)
    base = Principal("base:1", "base", "CN-SC-PZH", base=1)  # the demo batch's base
    try:
        with ctx.db.writer() as s:
            issued = issue_activation_code(s, ctx.vault, base, number, account_rules(ctx.settings))
    except NotFound:  # a database with other data: no demo professional to offer
        return []
    return [
        f"professional    {name}: /me/activate with 身份证号 {number} and activation code "
        f"{issued.code}, then /me/sign-in",
    ]


def cmd_keys_witness(args: argparse.Namespace) -> int:
    """Create the witness cosigning key if missing; print its verifier key."""
    from api.routes.witness import load_or_create_witness_signer, witness_key_file
    from ledger.errors import LedgerError

    s = _settings(args)
    existed = witness_key_file(s).exists()
    try:
        signer = load_or_create_witness_signer(s.model_copy(update={"environment": "development"}))
    except LedgerError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    _out(
        ("witness key already exists: " if existed else "created witness key: ")
        + str(witness_key_file(s))
    )
    _out("witness verifier key (give it to the logs you witness): " + signer.verifier().to_vkey())
    return EXIT_OK


def cmd_witness_sync(args: argparse.Namespace) -> int:
    """Ask the configured witnesses to cosign the latest checkpoint (once, or every N s).
    Exit 0 all cosigned or up to date, 1 a witness refused, 3 a witness unreachable."""
    import time

    from api.context import Context
    from api.routes.witness import request_cosignatures

    s = _settings(args)
    if not s.witnesses:
        print("no witnesses configured (CELEDGER_WITNESSES)", file=sys.stderr)
        return EXIT_USAGE
    ctx = Context.from_settings(s)
    try:
        while True:
            results = request_cosignatures(ctx)
            for r in results:
                _out(
                    f"{r.witness}: {r.outcome} (log size {r.size}, witness size {r.witness_size})"
                    + (f": {r.detail}" if r.detail else "")
                )
            if not args.every:
                break
            time.sleep(args.every)
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        ctx.close()
    outcomes = {r.outcome for r in results}
    if "refused" in outcomes:
        return EXIT_FAIL
    return EXIT_IO if "unreachable" in outcomes else EXIT_OK


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

    sp = sub.add_parser(
        "certificates", help="issue the completion certificates of a base's year into a folder"
    )
    sp.add_argument("--base", type=int, required=True, help="base id")
    sp.add_argument("--year", type=int, required=True, help="plan year")
    sp.add_argument("--out", required=True, help="output folder for the PDFs")
    sp.add_argument("--workers", type=int, default=None, help="render processes (default: cores)")
    sp.set_defaults(func=cmd_certificates)

    sp = keys.add_parser("issuing", help="credential-issuing keys: list, rotate, compromise")
    sp.add_argument("action", choices=["list", "rotate", "compromise"])
    sp.add_argument("kid", nargs="?", help="the key (compromise)")
    sp.add_argument("--kid", dest="dash_kid", help=argparse.SUPPRESS)  # see _dash_kid_as_option
    sp.add_argument("--at", help="compromised from (ISO time with zone; default now)")
    sp.add_argument("--reason", default="compromise reported by the operator")
    sp.set_defaults(func=cmd_issuing_keys)

    sp = sub.add_parser(
        "verify",
        help="verify a certificate PDF or a token/URL (online, or --offline with a bundle)",
        description="Exit codes: 0 valid, 1 not valid (forged, revoked, …), 2 usage, 3 unreadable "
        "file or unreachable service.",
    )
    sp.add_argument("target", help="certificate PDF file, token, or the QR's URL")
    sp.add_argument("--offline", action="store_true", help="no network: use --bundle")
    sp.add_argument("--bundle", help="saved offline bundle (from /api/v1/verify/bundle)")
    sp.add_argument("--server", default="http://127.0.0.1:8000", help="online: the service URL")
    sp.add_argument("--json", action="store_true", help="print the full report as JSON")
    sp.set_defaults(func=cmd_verify)

    sp = keys.add_parser("bundle", help="write the offline-verification bundle to a file")
    sp.add_argument("out", help="output file (JSON)")
    sp.set_defaults(func=cmd_bundle)

    sp = sub.add_parser("audit", help="re-derive the log and check every hash and checkpoint")
    sp.add_argument(
        "--remote", help="audit a remote log from its tiles: URL of its prefix (…/log/)"
    )
    sp.add_argument("--vkey", help="the remote log's verifier key")
    sp.add_argument("--origin", help="the remote log's origin")
    sp.set_defaults(func=cmd_audit)

    sp = sub.add_parser(
        "backup",
        help="back up the database and the key files into a new directory",
        description="A consistent copy while the service runs (pg_dump of an exported snapshot "
        "/ SQLite online backup), the key files, and a manifest with every file's SHA-256 and "
        "the log's checkpoint. Exit codes: 0 done, 2 usage, 3 pg_dump or database failed.",
    )
    sp.add_argument("dir", help="new or empty directory (it will hold private keys: mode 0700)")
    sp.set_defaults(func=cmd_backup)
    sp = sub.add_parser(
        "restore",
        help="restore a backup into an empty database and data directory",
        description="Checks every file's hash, the origin and the configured keys' fingerprints "
        "first; after loading, checks the restored checkpoint. Run `celedger audit` next. Exit "
        "codes: 0 restored, 1 the backup is damaged or does not check, 2 usage (target not "
        "empty, wrong key or origin), 3 pg_restore or database failed.",
    )
    sp.add_argument("dir", help="the backup directory")
    sp.set_defaults(func=cmd_restore)
    sp = sub.add_parser(
        "publish",
        help="write the checkpoint, tiles and entry bundles (c2sp tlog-tiles) into a directory "
        "or S3",
        description="Incremental: only new tiles are written; the checkpoint last. Serve the "
        "directory statically, or publish straight to S3-compatible object storage for a CDN "
        "(CELEDGER_S3_ENDPOINT_URL, CELEDGER_S3_REGION; credentials from the AWS_* variables). "
        "Exit codes: 0 done, 1 refused (the database does not extend what was published), 2 "
        "usage (a malformed s3:// URL, boto3 missing), 3 database or target unreachable.",
    )
    sp.add_argument(
        "--to",
        required=True,
        help="output directory or s3://BUCKET[/PREFIX] (the log's URL prefix)",
    )
    sp.add_argument(
        "--every", type=float, default=0, help="repeat every N seconds (default: run once)"
    )
    sp.set_defaults(func=cmd_publish)

    keys.add_parser(
        "witness", help="create the witness cosigning key if missing; print its verifier key"
    ).set_defaults(func=cmd_keys_witness)
    sp = sub.add_parser(
        "witness-sync",
        help="ask the configured witnesses (CELEDGER_WITNESSES) to cosign the latest checkpoint",
        description="Exit codes: 0 every witness cosigned or was up to date, 1 a witness "
        "refused (e.g. a fork), 2 usage, 3 a witness was unreachable.",
    )
    sp.add_argument(
        "--every", type=float, default=0, help="repeat every N seconds (default: run once)"
    )
    sp.set_defaults(func=cmd_witness_sync)
    return p


# A kid is 8 base64url characters, so one in 64 begins with "-" (e.g. "-MT1PVXF") and argparse
# would take it for an unknown option.  The operator pastes it from `keys issuing list`; it
# must work as typed, so such a word is rewritten as the hidden ``--kid=-MT1PVXF``.  (Asking
# for ``-- -MT1PVXF`` would not do: Python 3.11's argparse leaves "--" to a subcommand unparsed.)
_DASH_KID = re.compile(r"-[A-Za-z0-9_-]{7}")
_ISSUING_OPTIONS = frozenset({"-h", "--help", "--at", "--reason"})


def _dash_kid_as_option(argv: Sequence[str]) -> list[str]:
    """``keys issuing compromise -MT1PVXF …`` → ``keys issuing compromise --kid=-MT1PVXF …``."""
    args = list(argv)
    try:
        at = args.index("compromise")
    except ValueError:
        return args
    if "issuing" not in args[:at]:
        return args
    for i in range(at + 1, len(args)):
        word = args[i]
        if _DASH_KID.fullmatch(word) and word not in _ISSUING_OPTIONS:
            args[i] = f"--kid={word}"
            break
    return args


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(_dash_kid_as_option(sys.argv[1:] if argv is None else argv))
    try:
        return int(args.func(args))
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            return EXIT_USAGE
        raise


if __name__ == "__main__":
    raise SystemExit(main())
