"""c2sp.org/tlog-tiles layout: tile paths, entry bundles and reading a remote tiled log — pure.

Rules (c2sp.org/tlog-tiles):

* A tile is 8 levels of the Merkle tree.  A level-L tile stores, left to right, up to 256
  hashes of the perfect subtrees of height 8·L (level 0: leaf hashes), i.e. of 256^L leaves;
  tile N of level L holds those subtrees' positions [256·N, 256·N + W).
* A tree of size n has ``n >> 8L`` complete height-8·L subtrees, hence at level L
  ``(n >> 8L) // 256`` full tiles and, if ``(n >> 8L) % 256`` is not 0, one partial tile of
  that width.  A level exists only while ``n >> 8L`` > 0.
* Path: ``tile/<L>/<N>[.p/<W>]`` and ``tile/entries/<N>[.p/<W>]``.  L is decimal 0–63
  without leading zeros; N is written in 3-digit groups with ``x`` before all but the last
  (1234067 → ``x001/x234/067``); W is decimal 1–255 without leading zeros, present only for a
  partial tile.  Every tile has exactly one spelling: ``parse_tile_path`` accepts only that
  canonical spelling (so a path that reaches storage through an HTTP route can never carry
  ``..``, extra segments or an alias of another tile).
* An entry bundle is the concatenation, for each entry, of uint16 big-endian length ‖ bytes;
  decoding is strict (no truncated entry, no trailing bytes).

``TileHashReader`` turns tile fetches into a ``ledger.merkle.HashReader``: a perfect node of
height h lives in level h // 8 and is hashed up h % 8 sublevels from 2^(h % 8) of that
tile's hashes, so any proof over a remote log needs only a handful of tiles.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ledger.errors import FormatError, ProofError
from ledger.merkle import HASH_SIZE, Node, perfect_root

__all__ = [
    "MAX_ENTRY_SIZE",
    "MAX_INDEX_GROUPS",
    "MAX_LEVEL",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "TileFetch",
    "TileHashReader",
    "TilePath",
    "decode_entry_bundle",
    "encode_entry_bundle",
    "entries_path",
    "parse_tile_path",
    "tile_nodes",
    "tile_path",
    "tile_width",
    "tile_widths",
    "tiles_for_size",
]

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_LEVEL = 63
MAX_ENTRY_SIZE = 0xFFFF  # a uint16 length prefix
# Tile indexes are below 2^56 (a level-0 tile index times 256 fits a 64-bit tree size), which
# is at most 17 decimal digits: 6 groups.  More groups can only be an attack or a bug.
MAX_INDEX_GROUPS = 6
_MAX_INDEX = 1 << 56

TileFetch = Callable[[int, int, int], bytes]
"""(level, index, width) → the tile's raw bytes: width concatenated 32-byte hashes."""


@dataclass(frozen=True)
class TilePath:
    """A parsed tile path; ``level`` is None for an entry bundle, ``width`` 256 when full."""

    level: int | None
    index: int
    width: int = TILE_WIDTH

    @property
    def is_entries(self) -> bool:
        return self.level is None

    @property
    def is_partial(self) -> bool:
        return self.width < TILE_WIDTH

    def path(self) -> str:
        """The canonical path of this tile."""
        if self.level is None:
            return entries_path(self.index, self.width)
        return tile_path(self.level, self.index, self.width)


# -- paths -------------------------------------------------------------------------------------


def _check_index_width(index: int, width: int) -> None:
    if not 0 <= index < _MAX_INDEX:
        raise FormatError(f"tile index must be in [0, 2^56), found {index}")
    if not 1 <= width <= TILE_WIDTH:
        raise FormatError(f"tile width must be in [1, {TILE_WIDTH}], found {width}")


def _encode_index(index: int) -> str:
    groups = [f"{index % 1000:03d}"]
    index //= 1000
    while index > 0:
        groups.append(f"x{index % 1000:03d}")
        index //= 1000
    return "/".join(reversed(groups))


def _suffix(width: int) -> str:
    return "" if width == TILE_WIDTH else f".p/{width}"


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """``tile/<L>/<N>[.p/<W>]``, e.g. ``tile_path(0, 1234067) == "tile/0/x001/x234/067"``."""
    if not 0 <= level <= MAX_LEVEL:
        raise FormatError(f"tile level must be in [0, {MAX_LEVEL}], found {level}")
    _check_index_width(index, width)
    return f"tile/{level}/{_encode_index(index)}{_suffix(width)}"


def entries_path(index: int, width: int = TILE_WIDTH) -> str:
    """``tile/entries/<N>[.p/<W>]``: the entry bundle of leaves [256·N, 256·N + W)."""
    _check_index_width(index, width)
    return f"tile/entries/{_encode_index(index)}{_suffix(width)}"


# ASCII digits only: str.isdigit() and int() also accept other scripts' digits.
_LEVEL_RE = re.compile(r"0|[1-9][0-9]?")
_X_GROUP_RE = re.compile(r"x[0-9]{3}")
_LAST_GROUP_RE = re.compile(r"([0-9]{3})(\.p)?")
_WIDTH_RE = re.compile(r"[1-9][0-9]{0,2}")


def parse_tile_path(path: str) -> TilePath:
    """Parse a canonical tile or entry-bundle path; anything else raises ``FormatError``."""
    segments = path.split("/")
    if len(segments) < 3 or segments[0] != "tile":
        raise FormatError(
            f"expected a tile path 'tile/<L>/<N>[.p/<W>]' or 'tile/entries/<N>[.p/<W>]', "
            f"found {path!r}"
        )
    kind = segments[1]
    level: int | None
    if kind == "entries":
        level = None
    elif _LEVEL_RE.fullmatch(kind):
        level = int(kind)
        if level > MAX_LEVEL:
            raise FormatError(f"tile level must be in [0, {MAX_LEVEL}], found {level}")
    else:
        raise FormatError(
            f"expected a tile level (decimal 0-{MAX_LEVEL}, no leading zeros) or 'entries', "
            f"found {kind!r} in {path!r}"
        )

    rest = segments[2:]
    width = TILE_WIDTH
    # A partial tile ends in '<NNN>.p/<W>': peel off the width segment first.
    if len(rest) >= 2 and rest[-2].endswith(".p"):
        width_text = rest[-1]
        if not _WIDTH_RE.fullmatch(width_text) or int(width_text) >= TILE_WIDTH:
            raise FormatError(
                f"expected a partial tile width 1-{TILE_WIDTH - 1} without leading zeros, "
                f"found {width_text!r} in {path!r}"
            )
        width = int(width_text)
        rest = rest[:-1]
    if len(rest) > MAX_INDEX_GROUPS:
        raise FormatError(
            f"tile index has too many groups: expected at most {MAX_INDEX_GROUPS}, "
            f"found {len(rest)} in {path!r}"
        )
    index = 0
    for n, group in enumerate(rest):
        last = n == len(rest) - 1
        m = _LAST_GROUP_RE.fullmatch(group) if last else _X_GROUP_RE.fullmatch(group)
        if m is None or (last and m.group(2) is not None and width == TILE_WIDTH):
            expected = "'NNN' or 'NNN.p/<W>'" if last else "'xNNN'"
            raise FormatError(
                f"expected tile index group {n} to be {expected}, found {group!r} in {path!r}"
            )
        index = index * 1000 + int(group[1:] if not last else group[:3])
    parsed = TilePath(level, index, width)
    # Leading zero groups ('x000/005') parse but are an alias of a shorter path; one
    # spelling per tile keeps caches and routes from serving the same tile under two names.
    canonical = parsed.path()
    if canonical != path:
        raise FormatError(f"expected the canonical tile path {canonical!r}, found {path!r}")
    return parsed


# -- entry bundles -----------------------------------------------------------------------------


def encode_entry_bundle(entries: Sequence[bytes]) -> bytes:
    """Each entry as uint16 big-endian length ‖ bytes, concatenated."""
    out = bytearray()
    for n, entry in enumerate(entries):
        if len(entry) > MAX_ENTRY_SIZE:
            raise FormatError(
                f"entry {n} is too large for an entry bundle: expected at most "
                f"{MAX_ENTRY_SIZE} bytes, found {len(entry)}"
            )
        out += len(entry).to_bytes(2, "big")
        out += entry
    return bytes(out)


def decode_entry_bundle(data: bytes) -> list[bytes]:
    """The entries of a bundle; a truncated length, truncated entry or trailing byte raises."""
    entries: list[bytes] = []
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise FormatError(
                f"entry bundle truncated at byte {pos}: expected a 2-byte length, "
                f"found {len(data) - pos} byte"
            )
        length = int.from_bytes(data[pos : pos + 2], "big")
        pos += 2
        if pos + length > len(data):
            raise FormatError(
                f"entry {len(entries)} of the bundle is truncated: expected {length} bytes, "
                f"found {len(data) - pos}"
            )
        entries.append(bytes(data[pos : pos + length]))
        pos += length
    return entries


# -- tiles of a tree ---------------------------------------------------------------------------


def tile_widths(size: int, level: int) -> tuple[int, int]:
    """(number of full tiles, width of the partial tile or 0) at ``level`` for tree ``size``."""
    if size < 0:
        raise ProofError(f"tree size must be >= 0, found {size}")
    if not 0 <= level <= MAX_LEVEL:
        raise FormatError(f"tile level must be in [0, {MAX_LEVEL}], found {level}")
    count = size >> (TILE_HEIGHT * level)
    return count // TILE_WIDTH, count % TILE_WIDTH


def tile_width(size: int, level: int, index: int) -> int:
    """The width tile ``index`` of ``level`` has in the tree of ``size``; raises if absent."""
    full, partial = tile_widths(size, level)
    if 0 <= index < full:
        return TILE_WIDTH
    if index == full and partial:
        return partial
    count = full + (1 if partial else 0)
    raise ProofError(
        f"tile {level}/{index} is not in the tree of size {size}: expected an index below "
        f"{count} (the number of level-{level} tiles), found {index}"
    )


def tiles_for_size(size: int) -> list[tuple[int, int, int]]:
    """(level, index, width) of every tile of the tree of ``size``: full ones then the
    partial rightmost one, level by level from 0."""
    out: list[tuple[int, int, int]] = []
    level = 0
    while level <= MAX_LEVEL and size >> (TILE_HEIGHT * level) > 0:
        full, partial = tile_widths(size, level)
        out.extend((level, t, TILE_WIDTH) for t in range(full))
        if partial:
            out.append((level, full, partial))
        level += 1
    return out


def tile_nodes(level: int, index: int, width: int) -> list[Node]:
    """The perfect nodes whose hashes, concatenated, are the content of a tile."""
    _check_index_width(index, width)
    height = TILE_HEIGHT * level
    return [(height, index * TILE_WIDTH + k) for k in range(width)]


class TileHashReader:
    """A ``HashReader`` for the tree of ``size`` leaves of a remote tiled log.

    Each tile is fetched at most once per instance, at the width it has in this tree size
    (a partial tile of another width would be a tile of another tree).  The reader checks
    each tile's length; the hashes' *correctness* is established by the caller comparing the
    resulting root with a signed checkpoint.
    """

    def __init__(self, size: int, fetch: TileFetch) -> None:
        if size < 0:
            raise ProofError(f"tree size must be >= 0, found {size}")
        self.size = size
        self._fetch = fetch
        self._tiles: dict[tuple[int, int, int], bytes] = {}

    def tile(self, level: int, index: int) -> bytes:
        """The raw bytes of a tile of this tree, fetched once and cached."""
        width = tile_width(self.size, level, index)
        key = (level, index, width)
        data = self._tiles.get(key)
        if data is None:
            data = self._fetch(level, index, width)
            if len(data) != width * HASH_SIZE:
                raise FormatError(
                    f"tile {tile_path(level, index, width)} has wrong length: expected "
                    f"{width * HASH_SIZE} bytes, found {len(data)}"
                )
            self._tiles[key] = data
        return data

    def read(self, nodes: Sequence[Node]) -> list[bytes]:
        out: list[bytes] = []
        for height, index in nodes:
            if height < 0 or index < 0 or (index + 1) << height > self.size:
                raise ProofError(
                    f"node ({height}, {index}) is not a perfect subtree of the tree of size "
                    f"{self.size}: expected leaves [{index} << {height}, ({index} + 1) << "
                    f"{height}) within [0, {self.size})"
                )
            level, sub = divmod(height, TILE_HEIGHT)
            # The node's base hashes are positions [index << sub, (index + 1) << sub) of
            # level `level`; they never straddle two tiles because 2^sub divides 256.
            first = index << sub
            tile_index, offset = divmod(first, TILE_WIDTH)
            data = self.tile(level, tile_index)
            hashes = [
                data[(offset + k) * HASH_SIZE : (offset + k + 1) * HASH_SIZE]
                for k in range(1 << sub)
            ]
            out.append(perfect_root(hashes))
        return out
