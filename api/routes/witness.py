"""Witnessing (c2sp.org/tlog-witness), both directions.

**This service as a witness** of other deployments' logs (a province witnessing the national
log): ``POST /witness/add-checkpoint`` — the witness's *submission prefix* is
``<public URL>/witness``.  The logs it witnesses are ``CELEDGER_WITNESS_LOGS`` (``;``-separated
``<log vkey>`` or ``<origin> <log vkey>``); its cosigning key is ``CELEDGER_WITNESS_KEY_FILE``
(default ``<data_dir>/keys/witness.key``, created on first use in development, required in
production: ``celedger witness-key`` creates it and prints the verifier key to give to the
logs' operators), named ``CELEDGER_WITNESS_NAME`` (default ``<origin host>/witness``).
Answers as the spec prescribes: 200 with the cosignature line (``text/plain``), 409 with the
witness's size (``text/x.tlog.size``: a stale ``old``, or a different root at the same size),
400 malformed, 403 no trusted signature, 404 unknown origin, 422 bad consistency proof (the
other errors as RFC 9457 problem details).  The state check and update are one transaction
(``ledger.witness_models.add_checkpoint``), committed before the cosignature is sent.

**This log asking witnesses**: ``CELEDGER_WITNESSES`` (``;``-separated ``<cosigner vkey> <URL
prefix>``).  :func:`request_cosignatures` — run by ``celedger witness-sync`` (once, or every N
seconds), never on the append path — sends each witness the latest checkpoint with the
consistency proof from the size it last cosigned (stored per witness, corrected from a 409
answer), verifies the returned cosignature and stores it.  ``GET /log/checkpoint`` serves the
latest checkpoint with whatever cosignatures it has; ``GET /log/cosigned-checkpoint`` serves the
newest checkpoint that at least one witness cosigned.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency

from api.context import Context
from api.problems import Problem
from api.settings import Settings
from ledger.cosignature import CosignatureSigner
from ledger.errors import FormatError, LedgerError
from ledger.keystore import read_secret, write_secret
from ledger.note import NoteVerifier
from ledger.storage.log import Log
from ledger.witness import (
    MAX_BODY_BYTES,
    SIZE_CONTENT_TYPE,
    WitnessEndpoint,
    WitnessError,
    accept_cosignatures,
    format_add_checkpoint,
    parse_add_checkpoint,
    parse_size_body,
    parse_witness_endpoint,
    trusted_logs,
)
from ledger.witness_models import (
    add_checkpoint,
    has_cosignature,
    latest_cosigned,
    record_cosignature,
    record_witness_state,
    witness_state,
)

__all__ = [
    "SyncResult",
    "WitnessController",
    "load_or_create_witness_signer",
    "request_cosignatures",
    "witness_key_file",
    "witness_name",
]

log = logging.getLogger("celedger.witness")

SHORT = "public, max-age=5"
# A witness answering more 409s than this in one sync is not converging: give up until the next.
_MAX_ATTEMPTS = 3


# --------------------------------------------------------------------------------------------
# The witness's key
# --------------------------------------------------------------------------------------------


def witness_name(settings: Settings) -> str:
    """The witness's cosigner key name: the setting, or ``<origin host>/witness``."""
    return settings.witness_name or settings.origin.split("/", 1)[0] + "/witness"


def witness_key_file(settings: Settings) -> Path:
    return settings.witness_key_file or settings.data_dir / "keys" / "witness.key"


def load_or_create_witness_signer(settings: Settings) -> CosignatureSigner:
    """The witness's cosigning key: created on first use in development only (like the log
    key: in production a silently new witness key would be a witness nobody trusts)."""
    path = witness_key_file(settings)
    name = witness_name(settings)
    if not path.exists():
        if settings.environment == "production":
            raise LedgerError(
                f"CELEDGER_WITNESS_KEY_FILE: {path} does not exist; create it with "
                "`celedger witness-key` before witnessing in production"
            )
        write_secret(path, CosignatureSigner.generate(name).to_skey())
    signer = CosignatureSigner.from_skey(read_secret(path))
    if signer.name != name:
        raise LedgerError(
            f"witness key {path} is named {signer.name!r} but the witness name is {name!r} "
            "(CELEDGER_WITNESS_NAME, default <origin host>/witness): they must be equal"
        )
    return signer


@dataclass(frozen=True)
class _Witness:
    trusted: dict[str, tuple[NoteVerifier, ...]]
    signer: CosignatureSigner | None  # None: no log is witnessed, so nothing is ever signed


_BUILD_LOCK = threading.Lock()


def _witness(request: Request[Any, Any, Any], settings: Settings) -> _Witness:
    """The witness configuration of this app, built on first use and kept in its state."""
    state = request.app.state
    found = state.get("witness")
    if isinstance(found, _Witness):
        return found
    with _BUILD_LOCK:
        found = state.get("witness")
        if not isinstance(found, _Witness):
            trusted = trusted_logs(settings.witness_logs)
            signer = load_or_create_witness_signer(settings) if trusted else None
            found = _Witness(trusted, signer)
            state["witness"] = found
        return found


# --------------------------------------------------------------------------------------------
# Routes
# --------------------------------------------------------------------------------------------


class WitnessController(Controller):
    path = "/"
    tags = ["witness"]  # noqa: RUF012 - Litestar declares this as a plain attribute

    @post(
        "/witness/add-checkpoint",
        status_code=200,
        media_type="text/plain; charset=utf-8",
        request_max_body_size=MAX_BODY_BYTES,
    )
    async def add_checkpoint(
        self, ctx: NamedDependency[Context], request: Request[Any, Any, Any]
    ) -> Response[bytes]:
        """c2sp.org/tlog-witness ``add-checkpoint``: cosign a checkpoint of a witnessed log if it
        extends the one cosigned before."""
        body = await request.body()
        try:
            witness = _witness(request, ctx.settings)
        except LedgerError as exc:
            log.error("witness is misconfigured: %s", exc)
            raise Problem(503, "witness-unavailable", str(exc)) from None
        try:
            line = await anyio.to_thread.run_sync(_add, ctx, witness, body)
        except WitnessError as exc:
            if exc.status == 409 and exc.known_size is not None:
                log.warning("refused checkpoint (%s): %s", exc.code, exc)
                return Response(
                    f"{exc.known_size}\n".encode("ascii"),
                    status_code=409,
                    headers={"Content-Type": SIZE_CONTENT_TYPE, "Cache-Control": "no-store"},
                )
            if exc.status == 422:
                # Signed by the log yet not consistent with what we cosigned: keep the evidence.
                log.warning(
                    "refused checkpoint (%s): %s; request:\n%s",
                    exc.code,
                    exc,
                    body[:4096].decode("utf-8", "replace"),
                )
            raise Problem(exc.status, exc.code, str(exc)) from None
        return Response(line.encode("utf-8"), headers={"Cache-Control": "no-store"})

    @get("/log/cosigned-checkpoint", media_type="text/plain; charset=utf-8", sync_to_thread=True)
    def cosigned_checkpoint(self, ctx: NamedDependency[Context]) -> Response[str]:
        """The newest checkpoint of this log that a witness cosigned, with its cosignatures."""
        with ctx.db.reader() as s:
            found = latest_cosigned(s)
        if found is None:
            raise Problem(404, "not-cosigned", "no witness has cosigned a checkpoint of this log")
        return Response(found[1], headers={"Cache-Control": SHORT})


def _add(ctx: Context, witness: _Witness, body: bytes) -> str:
    req = parse_add_checkpoint(body)
    if witness.signer is None:
        # No log is witnessed: answer as the spec says for any unknown origin.
        raise WitnessError(
            404,
            "unknown-log",
            f"origin {req.checkpoint.origin!r}: this service witnesses no log",
        )
    with ctx.db.writer() as s:
        line = add_checkpoint(s, req, witness.trusted, witness.signer, datetime.now(UTC))
    # Committed: only now may the cosignature leave (the spec's "persist before responding").
    return line


# --------------------------------------------------------------------------------------------
# The log side: asking witnesses
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncResult:
    """What one witness did with this log's latest checkpoint.

    ``outcome``: ``cosigned`` (a new cosignature stored), ``up-to-date`` (already held),
    ``refused`` (the witness, or our check of its answer, refused: a fork, a bad key, …),
    ``unreachable`` (no HTTP answer)."""

    witness: str
    url: str
    outcome: str
    size: int
    witness_size: int
    detail: str = ""


def request_cosignatures(
    ctx: Context,
    http: httpx.Client | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[SyncResult]:
    """Ask every configured witness to cosign the latest checkpoint; store what they return.

    ``http`` lets a caller (a test) route the requests; by default a client with a 30 s
    timeout is used.  Nothing here runs inside an append, and no database transaction is held
    open across an HTTP request."""
    endpoints = [parse_witness_endpoint(e) for e in ctx.settings.witnesses]
    if not endpoints:
        return []
    with ctx.db.reader() as s:
        cp = Log.latest_checkpoint(s)
        if cp is None:
            return []
        size, note = int(cp.size), str(cp.note)
    client = http or httpx.Client(timeout=30)
    try:
        return [_sync_one(ctx, client, ep, size, note, clock) for ep in endpoints]
    finally:
        if http is None:
            client.close()


def _sync_one(
    ctx: Context,
    client: httpx.Client,
    ep: WitnessEndpoint,
    size: int,
    note: str,
    clock: Callable[[], datetime],
) -> SyncResult:
    with ctx.db.reader() as s:
        known, _last_error = witness_state(s, ep.key)
        if known == size and has_cosignature(s, size, ep.key):
            return SyncResult(ep.key, ep.url, "up-to-date", size, known)

    def fail(outcome: str, detail: str) -> SyncResult:
        with ctx.db.writer() as s:
            record_witness_state(s, ep.key, known, detail, clock())
        log.warning("witness %s (%s): %s: %s", ep.key, ep.url, outcome, detail)
        return SyncResult(ep.key, ep.url, outcome, size, known, detail)

    for _attempt in range(_MAX_ATTEMPTS):
        if known > size:
            return fail(
                "refused",
                f"the witness has cosigned size {known}, more than this log's latest checkpoint "
                f"({size}): this log's database was rolled back, or another log with this "
                "origin and key exists",
            )
        with ctx.db.reader() as s:
            proof = ctx.log.consistency_proof(s, known, size) if 0 < known < size else []
        try:
            r = client.post(
                ep.url + "/add-checkpoint", content=format_add_checkpoint(known, proof, note)
            )
        except httpx.HTTPError as exc:
            return fail("unreachable", f"POST {ep.url}/add-checkpoint: {exc}")
        if r.status_code == 200:
            try:
                cosigs = accept_cosignatures(note, r.text, ep.verifier)
            except LedgerError as exc:
                return fail(
                    "refused", f"the witness answered 200 without a valid cosignature: {exc}"
                )
            now = clock()
            with ctx.db.writer() as s:
                for sig, ts in cosigs:
                    record_cosignature(s, size, ep.key, ts, sig.to_line(), now)
                record_witness_state(s, ep.key, size, None, now)
            return SyncResult(ep.key, ep.url, "cosigned", size, size)
        content_type = r.headers.get("content-type", "").split(";")[0].strip().lower()
        if r.status_code == 409 and content_type == SIZE_CONTENT_TYPE:
            try:
                theirs = parse_size_body(r.content)
            except FormatError as exc:
                return fail("refused", f"the witness answered 409 with a bad size: {exc}")
            if theirs == known:
                # Our old size was right, so the conflict is about the root at that size.
                return fail(
                    "refused",
                    f"the witness cosigned a different tree of size {known}: a fork of this log",
                )
            known = theirs
            with ctx.db.writer() as s:
                record_witness_state(s, ep.key, known, None, clock())
            continue
        return fail("refused", f"the witness answered {r.status_code}: {r.text[:300].strip()!r}")
    return fail("refused", f"the witness answered 409 {_MAX_ATTEMPTS} times in a row")
