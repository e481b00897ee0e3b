"""``celedger publish``: the log's checkpoint, tiles and entry bundles as static files.

The directory it writes is the c2sp.org/tlog-tiles layout the HTTP routes serve
(``checkpoint``, ``tile/<L>/<N>[.p/<W>]``, ``tile/entries/<N>[.p/<W>]``), so any static web
server, object store or CDN that serves it is a read-only mirror of the log: clients, monitors
and ``celedger audit --remote`` need nothing else.

Rules:

1. Only what a signed checkpoint covers is published, and only after that checkpoint verifies
   with the log's key: the publisher never publishes a tree the log did not sign.
2. The new checkpoint must extend the one already published (a consistency proof from the
   database, checked against both signed roots); otherwise nothing is written — a restored
   or forked database never silently replaces a published tree.
3. Incremental: at each level only tiles at or right of the previously published right edge
   are looked at, and a tile (or bundle) already there is never rewritten: its path names its
   width, and the tree it came from is a prefix of this one.
4. Order: bundles and tiles first, the checkpoint last (atomically replaced), so a reader who
   fetches the new checkpoint finds every tile it needs.
5. A partial tile is removed once its full tile is published (c2sp.org/tlog-tiles lets
   clients fall back to the full tile), which keeps the directory to O(tiles) files.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from api.context import Context
from ledger import merkle, tiles
from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.errors import LedgerError, ProofError
from ledger.storage.log import Log
from ledger.tiles import TILE_HEIGHT, TILE_WIDTH

__all__ = ["PublishError", "Published", "publish"]


class PublishError(LedgerError):
    """Publishing was refused; nothing of the new tree was made visible."""


@dataclass(frozen=True)
class Published:
    size: int
    root: bytes
    previous_size: int
    written: int  # tiles and bundles written
    skipped: int  # full tiles and bundles already there
    pruned: int  # partial tiles removed
    checkpoint_changed: bool


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _published(out: Path, ctx: Context) -> Checkpoint | None:
    path = out / "checkpoint"
    if not path.exists():
        return None
    try:
        cp, _ = open_checkpoint(path.read_bytes(), ctx.settings.origin, [ctx.log_verifier])
    except LedgerError as exc:
        raise PublishError(
            f"{path}: expected a checkpoint of {ctx.settings.origin} signed by this log's key, "
            f"found one that does not verify ({exc}); publish into an empty directory"
        ) from exc
    return cp


def _level_count(size: int, level: int | None) -> int:
    return size if level is None else size >> (TILE_HEIGHT * level)


def publish(ctx: Context, out: Path) -> Published:
    """Bring ``out`` up to the log's latest signed checkpoint (see the module's rules)."""
    from ledger.witness_models import with_cosignatures

    out.mkdir(parents=True, exist_ok=True)
    old = _published(out, ctx)
    old_size = 0 if old is None else old.size
    written = skipped = pruned = 0
    with ctx.db.reader() as s:
        latest = Log.latest_checkpoint(s)
        if latest is None:
            return Published(0, merkle.EMPTY_ROOT, 0, 0, 0, 0, False)
        size = int(latest.size)
        # Witness cosignatures gathered so far travel with the checkpoint, as on /log/checkpoint.
        note = with_cosignatures(s, size, latest.note)
        cp, _ = open_checkpoint(note, ctx.settings.origin, [ctx.log_verifier])
        if old is not None:
            if old.size > size:
                raise PublishError(
                    f"published tree has {old.size} entries but the database's latest "
                    f"checkpoint has {size}: expected the database to be at or ahead of what "
                    "was published (was an older backup restored?)"
                )
            proof = ctx.log.consistency_proof(s, old.size, size)
            try:
                merkle.verify_consistency(old.size, size, proof, old.root_hash, cp.root_hash)
            except ProofError as exc:
                raise PublishError(
                    f"the database's tree of size {size} does not extend the published tree of "
                    f"size {old.size}: {exc}"
                ) from exc
        levels: list[int | None] = [None]
        level = 0
        while _level_count(size, level) > 0:
            levels.append(level)
            level += 1
        for lv in levels:
            count = _level_count(size, lv)
            first = _level_count(old_size, lv) // TILE_WIDTH
            for index in range(first, (count + TILE_WIDTH - 1) // TILE_WIDTH):
                width = min(TILE_WIDTH, count - index * TILE_WIDTH)
                rel = (
                    tiles.entries_path(index, width)
                    if lv is None
                    else tiles.tile_path(lv, index, width)
                )
                path = out / rel
                # A tile's path names its width, so an existing file of a tree this one
                # extends (checked above) already has these bytes; without a published
                # checkpoint only full tiles are trusted as they are.
                if path.exists() and (width == TILE_WIDTH or old is not None):
                    skipped += 1
                    continue
                if lv is None:
                    data = tiles.encode_entry_bundle(ctx.log.entry_bundle(s, index, width, size))
                else:
                    data = ctx.log.tile_hashes(s, lv, index, width, size)
                _write(path, data)
                written += 1
    changed = not (out / "checkpoint").exists() or (out / "checkpoint").read_text() != note
    if changed:
        _write(out / "checkpoint", note.encode())
    for lv in levels:
        count = _level_count(size, lv)
        first = _level_count(old_size, lv) // TILE_WIDTH
        for index in range(first, count // TILE_WIDTH):
            full = tiles.entries_path(index) if lv is None else tiles.tile_path(lv, index)
            partials = out / (full + ".p")
            if partials.is_dir():
                pruned += sum(1 for p in partials.iterdir() if p.is_file())
                shutil.rmtree(partials)
    return Published(size, cp.root_hash, old_size, written, skipped, pruned, changed)
