"""Public, cacheable log endpoints: checkpoint, tiles and entry bundles (c2sp.org/tlog-tiles),
inclusion and consistency proofs.

Full tiles and bundles are immutable and cached forever; the checkpoint and partial tiles
change as the log grows and are cached for a few seconds only.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, Parameter

from api.context import Context
from api.problems import Problem
from ledger import merkle, tiles
from ledger.errors import FormatError, ProofError
from ledger.storage.log import Log
from ledger.storage.models import LogCheckpoint
from ledger.tiles import TILE_WIDTH
from ledger.witness_models import with_cosignatures

IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=5"
_TILE_CHARS = re.compile(r"(?:[0-9xp./]|entries)*")
# Tree sizes beyond this are absurd for any real log and would only cost CPU to refuse later.
MAX_SIZE = 2**53


def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


def _decode_hash(value: str) -> bytes:
    try:
        raw = bytes.fromhex(value) if len(value) == 64 else base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        raw = b""
    if len(raw) != 32:
        raise Problem(
            400, "bad-leaf-hash", "leaf_hash: expected 64 hex digits or base64 of 32 bytes"
        )
    return raw


def _latest(ctx: Context, session: Any) -> tuple[int, str]:
    cp = Log.latest_checkpoint(session)
    if cp is None:
        raise Problem(404, "empty-log", "the log has no checkpoint yet")
    return int(cp.size), cp.note


class LogController(Controller):
    path = "/"
    tags = ["log"]  # noqa: RUF012 - Litestar declares this as a plain attribute

    # Litestar appends "; charset=utf-8" to a text/* type itself (naming it here doubled it).
    @get("/log/checkpoint", media_type="text/plain", sync_to_thread=True)
    def checkpoint(self, ctx: NamedDependency[Context]) -> Response[str]:
        """The latest signed checkpoint (c2sp.org/tlog-checkpoint)."""
        with ctx.db.reader() as s:
            size, note = _latest(ctx, s)
            # Witnesses' cosignatures, if any were gathered yet (api/routes/witness.py).
            note = with_cosignatures(s, size, note)
        return Response(note, headers={"Cache-Control": SHORT})

    @get("/log/tile/{path:path}", media_type="application/octet-stream", sync_to_thread=True)
    def tile(self, ctx: NamedDependency[Context], path: FromPath[str]) -> Response[bytes]:
        """A hash tile or entry bundle in c2sp.org/tlog-tiles layout."""
        try:
            tp = tiles.parse_tile_path("tile/" + path.removeprefix("/"))
        except FormatError as exc:
            if not _TILE_CHARS.fullmatch(path):
                # The parser quotes the path; one with characters no tile path has is free
                # text (a name typed into a URL …), and a problem never repeats that.
                raise Problem(
                    404,
                    "no-such-tile",
                    "expected a tile path '<L>/<N>[.p/<W>]' or 'entries/<N>[.p/<W>]' "
                    "(digits, 'x', 'p', '.', '/' and 'entries'); found other characters",
                ) from None
            raise Problem(404, "no-such-tile", str(exc)) from exc
        with ctx.db.reader() as s:
            size, _ = _latest(ctx, s)
            try:
                if tp.level is None:
                    bundle = ctx.log.entry_bundle(s, tp.index, tp.width, size)
                    body = tiles.encode_entry_bundle(bundle)
                else:
                    body = ctx.log.tile_hashes(s, tp.level, tp.index, tp.width, size)
            except ProofError as exc:
                raise Problem(404, "no-such-tile", str(exc)) from exc
        return Response(
            body, headers={"Cache-Control": IMMUTABLE if tp.width == TILE_WIDTH else SHORT}
        )

    @get("/api/v1/log/proof/inclusion", sync_to_thread=True)
    def inclusion(
        self,
        ctx: NamedDependency[Context],
        index: Annotated[int | None, Parameter(ge=0, le=MAX_SIZE, description="leaf index")] = None,
        leaf_hash: Annotated[
            str | None, Parameter(description="leaf hash, hex or base64", max_length=100)
        ] = None,
        size: Annotated[
            int | None,
            Parameter(ge=1, le=MAX_SIZE, description="tree size; default: latest checkpoint"),
        ] = None,
    ) -> dict[str, Any]:
        """Inclusion proof of one leaf (by index or by leaf hash) in a signed tree size."""
        if (index is None) == (leaf_hash is None):
            raise Problem(400, "bad-proof-request", "give exactly one of index or leaf_hash")
        with ctx.db.reader() as s:
            latest, note = _latest(ctx, s)
            tree_size = latest if size is None else size
            if tree_size > latest:
                raise Problem(
                    400,
                    "bad-proof-request",
                    f"size: expected at most {latest} (latest checkpoint), found {tree_size}",
                )
            if leaf_hash is not None:
                found = Log.index_of(s, _decode_hash(leaf_hash))
                if found is None or found >= tree_size:
                    raise Problem(
                        404,
                        "no-such-leaf",
                        f"no leaf with that hash in the tree of size {tree_size}",
                    )
                index = found
            assert index is not None
            if index >= tree_size:
                raise Problem(
                    400,
                    "bad-proof-request",
                    f"index: expected < {tree_size} (tree size), found {index}",
                )
            # tree_size <= the latest stored checkpoint's, so the tree has it.
            proof = ctx.log.inclusion_proof(s, index, tree_size, stored=True)
            body = Log.entry(s, index) or b""
            cp_note = note if tree_size == latest else _checkpoint_note(s, tree_size)
        return {
            "index": index,
            "tree_size": tree_size,
            "leaf_hash": _b64(merkle.leaf_hash(body)),
            "proof": [_b64(p) for p in proof],
            "checkpoint": cp_note,
        }

    @get("/api/v1/log/proof/consistency", sync_to_thread=True)
    def consistency(
        self,
        ctx: NamedDependency[Context],
        old: Annotated[int, Parameter(ge=0, le=MAX_SIZE, description="older tree size")],
        new: Annotated[
            int | None, Parameter(ge=0, le=MAX_SIZE, description="newer tree size; default latest")
        ] = None,
    ) -> dict[str, Any]:
        """Consistency proof between two tree sizes."""
        with ctx.db.reader() as s:
            latest, _ = _latest(ctx, s)
            new_size = latest if new is None else new
            if new_size > latest:
                raise Problem(
                    400,
                    "bad-proof-request",
                    f"new: expected at most {latest} (latest checkpoint), found {new_size}",
                )
            if old > new_size:
                raise Problem(
                    400, "bad-proof-request", f"old: expected at most new ({new_size}), found {old}"
                )
            proof = ctx.log.consistency_proof(s, old, new_size, stored=True)
        return {"old": old, "new": new_size, "proof": [_b64(p) for p in proof]}

    @get("/api/v1/log/entries/{index:int}", sync_to_thread=True)
    def entry(self, ctx: NamedDependency[Context], index: FromPath[int]) -> Response[bytes]:
        """One entry's canonical JSON bytes, exactly as hashed into the tree."""
        with ctx.db.reader() as s:
            body = Log.entry(s, index) if 0 <= index <= MAX_SIZE else None
        if body is None:
            raise Problem(404, "no-such-entry", f"no entry at index {index}")
        return Response(body, media_type="application/json", headers={"Cache-Control": IMMUTABLE})


def _checkpoint_note(session: Any, size: int) -> str | None:
    cp = session.get(LogCheckpoint, size)
    return None if cp is None else str(cp.note)
