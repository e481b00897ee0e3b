"""Audit a log from its public tiles and checkpoint alone — what a mirror or monitor runs.

Given only ``fetch(path) -> bytes`` (paths relative to the log's prefix: ``checkpoint``,
``tile/0/000``, ``tile/entries/000`` …) and the log's verifier key, it:

1. opens the checkpoint (signature by the log's key, the expected origin);
2. downloads every entry bundle of the tree, hashes each entry, and rebuilds every tile
   level by level, comparing each served tile (full or partial) with the rebuilt one;
3. checks that the root re-derived from the entries equals the checkpoint's root.

It needs no database and trusts nothing the server says beyond the bytes it checks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from ledger.checkpoint import open_checkpoint
from ledger.errors import LedgerError
from ledger.merkle import perfect_root
from ledger.note import Verifier
from ledger.storage.audit import AuditReport, CompactRange, Divergence
from ledger.tiles import TILE_WIDTH, decode_entry_bundle, entries_path, tile_path

Fetch = Callable[[str], bytes]
_SHA = hashlib.sha256


def audit_remote(fetch: Fetch, origin: str, verifiers: Sequence[Verifier]) -> AuditReport:
    report = AuditReport()
    try:
        cp, _ = open_checkpoint(fetch("checkpoint"), origin, verifiers)
    except LedgerError as exc:
        report.problems.append(
            Divergence(None, "checkpoint", "a checkpoint signed by the log", str(exc))
        )
        return report
    report.checkpoints = 1
    size = cp.size
    crange = CompactRange()
    level_hashes: list[bytes] = []
    for t in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
        width = min(TILE_WIDTH, size - t * TILE_WIDTH)
        first = t * TILE_WIDTH
        try:
            entries = decode_entry_bundle(fetch(entries_path(t, width)))
        except LedgerError as exc:
            report.problems.append(
                Divergence(first, f"entry bundle {t}", f"{width} entries", str(exc))
            )
            return report
        if len(entries) != width:
            report.problems.append(
                Divergence(first, f"entry bundle {t}", f"{width} entries", f"{len(entries)}")
            )
            return report
        hashes = [_SHA(b"\x00" + e).digest() for e in entries]
        for h in hashes:
            crange.push(h)
        report.entries += width
        _compare_tile(fetch, report, 0, t, hashes, first, 1)
        if width == TILE_WIDTH:
            level_hashes.append(perfect_root(hashes))
    # Higher levels: each level's base hashes are the roots of the full tiles below it.
    level, unit = 1, TILE_WIDTH
    while level_hashes:
        nxt: list[bytes] = []
        for t in range((len(level_hashes) + TILE_WIDTH - 1) // TILE_WIDTH):
            chunk = level_hashes[t * TILE_WIDTH : (t + 1) * TILE_WIDTH]
            _compare_tile(fetch, report, level, t, chunk, t * TILE_WIDTH * unit, unit)
            if len(chunk) == TILE_WIDTH:
                nxt.append(perfect_root(chunk))
        level_hashes, level, unit = nxt, level + 1, unit * TILE_WIDTH
    report.root_hash = crange.root()
    if report.root_hash != cp.root_hash:
        report.problems.append(
            Divergence(
                size - 1 if size else None,
                "checkpoint root differs from the entries",
                report.root_hash.hex(),
                cp.root_hash.hex(),
            )
        )
    return report


def _compare_tile(
    fetch: Fetch,
    report: AuditReport,
    level: int,
    index: int,
    derived: list[bytes],
    first_leaf: int,
    unit: int,
) -> None:
    path = tile_path(level, index, len(derived))
    try:
        served = fetch(path)
    except LedgerError as exc:
        report.problems.append(Divergence(first_leaf, f"tile {path}", "served", str(exc)))
        return
    report.tiles += 1
    want = b"".join(derived)
    if served != want:
        k = next(
            (i for i in range(len(derived)) if served[i * 32 : i * 32 + 32] != derived[i]),
            len(derived),
        )
        report.problems.append(
            Divergence(
                first_leaf + k * unit,
                f"tile {path} hash {k} differs from the entries",
                derived[k].hex() if k < len(derived) else f"{len(want)} bytes",
                served[k * 32 : k * 32 + 32].hex()
                if len(served) > k * 32
                else f"{len(served)} bytes",
            )
        )
