"""ledger.tiles: c2sp.org/tlog-tiles paths, entry bundles and TileHashReader, checked against
the sunlight size-300 tree and against MemoryTree."""

from __future__ import annotations

import base64
import functools
import gzip
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import merkle, tiles
from ledger.errors import FormatError, ProofError
from ledger.merkle import MemoryTree
from ledger.tiles import TileHashReader, TilePath
from tests.paths import VECTORS

# Only files under this directory are the size-300 tree; the "checkpoint" files directly
# under witness/ and witness/mirror/ are decoys for other tests.
SUNLIGHT = (
    VECTORS
    / "tlog-tiles-sunlight/witness/mirror"
    / "000de184301123b9278c086a7d9f68c9577e83872224c197058fd90784ea9706"
)
SUNLIGHT_SIZE = 300


# -- paths ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "index", "width", "path"),
    [
        (0, 0, 256, "tile/0/000"),
        (0, 5, 256, "tile/0/005"),
        (0, 1, 44, "tile/0/001.p/44"),
        (1, 0, 1, "tile/1/000.p/1"),
        (0, 1000, 256, "tile/0/x001/000"),
        (0, 1234067, 256, "tile/0/x001/x234/067"),
        (63, 1234067, 255, "tile/63/x001/x234/067.p/255"),
        (2, 999, 256, "tile/2/999"),
        (0, 2**56 - 1, 256, "tile/0/x072/x057/x594/x037/x927/935"),
    ],
)
def test_tile_path_examples(level: int, index: int, width: int, path: str) -> None:
    assert tiles.tile_path(level, index, width) == path
    assert tiles.parse_tile_path(path) == TilePath(level, index, width)


def test_entries_path_examples() -> None:
    assert tiles.entries_path(0) == "tile/entries/000"
    assert tiles.entries_path(1, 44) == "tile/entries/001.p/44"
    assert tiles.entries_path(1234067) == "tile/entries/x001/x234/067"
    parsed = tiles.parse_tile_path("tile/entries/001.p/44")
    assert parsed == TilePath(None, 1, 44)
    assert parsed.is_entries and parsed.is_partial
    assert not tiles.parse_tile_path("tile/0/000").is_entries


@settings(max_examples=300)
@given(
    st.integers(0, tiles.MAX_LEVEL),
    st.integers(0, 2**56 - 1) | st.integers(0, 5000),
    st.integers(1, 256),
)
def test_tile_path_round_trip(level: int, index: int, width: int) -> None:
    path = tiles.tile_path(level, index, width)
    parsed = tiles.parse_tile_path(path)
    assert parsed == TilePath(level, index, width)
    assert parsed.path() == path
    entries = tiles.entries_path(index, width)
    assert tiles.parse_tile_path(entries) == TilePath(None, index, width)


MALFORMED = [
    "tile/0/1234",  # a 4-digit group
    "tile/0/x1/234",  # short x group
    "tile/0/12",  # short last group
    "tile/0/0000",
    "tile/0/001234",
    "tile/0/x001",  # x on the last group
    "tile/0/001/234",  # missing x
    "tile/0/X001/234",  # capital X
    "tile/0/000.p/0",  # width 0
    "tile/0/000.p/256",  # a full tile is never written as partial
    "tile/0/000.p/300",
    "tile/0/000.p/044",  # leading zero in the width
    "tile/0/000.p/",
    "tile/0/000.p",
    "tile/0/000.p/x",
    "tile/0/000.p/1/2",
    "tile/0/x001.p/5",  # .p on an x group
    "tile/0/x000/005",  # leading zero group: an alias of tile/0/005
    "tile/0/x000/x001/005",
    "tile/64/000",  # level > 63
    "tile/100/000",
    "tile/00/000",  # leading zero in the level
    "tile/01/000",
    "tile/-1/000",
    "tile/../etc/passwd",
    "tile/0/../000",
    "tile/0/-01",
    "tile/0/+01",
    "tile/0/ 01",
    "tile/0/000/",
    "tile/0//000",
    "tile/0/000 ",
    "tile/0/000\n",
    "tile/0/٠٠٠",  # Arabic-Indic digits: isdigit() says yes, we say no
    "tile/0/00١",
    "tile/0/000.p/４",  # full-width digit
    "tile/0",
    "tile/0/",
    "tile/",
    "tile",
    "",
    "/tile/0/000",
    "tiles/0/000",
    "TILE/0/000",
    "tile/entries",
    "tile/entries/",
    "tile/entries/1",
    "tile/entries/000.p/x",
    "tile/entries/000.p/256",
    "tile/entries/0/000",
    "tile/entry/000",
    "tile/x/000",
    "tile/0/x001/x002/x003/x004/x005/x006/007",  # too many groups
    "tile/0/x100/x000/x000/x000/x000/000",  # 10^17 >= 2^56
    "tile/0/000?x=1",
    "tile/0/000#",
    "tile\\0\\000",
]


@pytest.mark.parametrize("path", MALFORMED)
def test_malformed_paths_are_rejected(path: str) -> None:
    with pytest.raises(FormatError) as err:
        tiles.parse_tile_path(path)
    message = str(err.value)
    assert "expected" in message or "must be" in message
    assert "found" in message


def test_malformed_path_messages_say_what_was_expected() -> None:
    with pytest.raises(FormatError, match="expected the canonical tile path 'tile/0/005'"):
        tiles.parse_tile_path("tile/0/x000/005")
    with pytest.raises(FormatError, match="at most 6, found 7"):
        tiles.parse_tile_path("tile/0/x001/x002/x003/x004/x005/x006/007")
    with pytest.raises(FormatError, match=r"level must be in \[0, 63\], found 64"):
        tiles.parse_tile_path("tile/64/000")
    with pytest.raises(FormatError, match="width 1-255 without leading zeros, found '256'"):
        tiles.parse_tile_path("tile/0/000.p/256")


@pytest.mark.parametrize(
    ("level", "index", "width"),
    [(64, 0, 256), (-1, 0, 256), (0, -1, 256), (0, 2**56, 256), (0, 0, 0), (0, 0, 257)],
)
def test_tile_path_rejects_bad_arguments(level: int, index: int, width: int) -> None:
    with pytest.raises(FormatError, match="found"):
        tiles.tile_path(level, index, width)


# -- entry bundles -------------------------------------------------------------------------------


@settings(max_examples=200)
@given(st.lists(st.binary(max_size=300), max_size=20))
def test_entry_bundle_round_trip(entries: list[bytes]) -> None:
    data = tiles.encode_entry_bundle(entries)
    assert len(data) == sum(2 + len(e) for e in entries)
    assert tiles.decode_entry_bundle(data) == entries


def test_entry_bundle_format() -> None:
    assert tiles.encode_entry_bundle([b"ab", b"", b"c"]) == b"\x00\x02ab\x00\x00\x00\x01c"
    assert tiles.encode_entry_bundle([]) == b""
    big = b"x" * 0xFFFF
    assert tiles.decode_entry_bundle(tiles.encode_entry_bundle([big])) == [big]
    with pytest.raises(FormatError, match="expected at most 65535 bytes, found 65536"):
        tiles.encode_entry_bundle([b"", big + b"x"])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00", "expected a 2-byte length, found 1 byte"),
        (b"\x00\x02a", "entry 0 of the bundle is truncated: expected 2 bytes, found 1"),
        (b"\x00\x01a\x00", "expected a 2-byte length"),  # trailing garbage
        (b"\x00\x01a\x00\x05abc", "entry 1 of the bundle is truncated: expected 5 bytes, found 3"),
    ],
)
def test_entry_bundle_decode_is_strict(data: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        tiles.decode_entry_bundle(data)


# -- tile counts ---------------------------------------------------------------------------------


def test_tiles_for_size() -> None:
    assert tiles.tiles_for_size(0) == []
    assert tiles.tiles_for_size(1) == [(0, 0, 1)]
    assert tiles.tiles_for_size(256) == [(0, 0, 256), (1, 0, 1)]
    assert tiles.tiles_for_size(300) == [(0, 0, 256), (0, 1, 44), (1, 0, 1)]
    assert tiles.tiles_for_size(512) == [(0, 0, 256), (0, 1, 256), (1, 0, 2)]
    size = 256 * 256 + 3
    got = tiles.tiles_for_size(size)
    assert got[-3:] == [(0, 256, 3), (1, 0, 256), (2, 0, 1)]
    assert len(got) == 256 + 1 + 1 + 1
    assert tiles.tile_widths(300, 0) == (1, 44)
    assert tiles.tile_widths(300, 1) == (0, 1)
    assert tiles.tile_widths(300, 2) == (0, 0)
    assert tiles.tile_width(300, 0, 0) == 256
    assert tiles.tile_width(300, 0, 1) == 44
    with pytest.raises(ProofError, match=r"expected an index below 2 .*found 2"):
        tiles.tile_width(300, 0, 2)


@settings(max_examples=200)
@given(st.integers(0, 2**40))
def test_tiles_for_size_covers_every_complete_subtree(size: int) -> None:
    listed = tiles.tiles_for_size(size) if size < 2**20 else None
    for level in range(6):
        full, partial = tiles.tile_widths(size, level)
        # Width sum at a level = number of complete height-8L subtrees.
        assert full * 256 + partial == size >> (8 * level)
        if listed is not None:
            at_level = [t for t in listed if t[0] == level]
            assert sum(w for _, _, w in at_level) == size >> (8 * level)
            assert [i for _, i, _ in at_level] == list(range(len(at_level)))


# -- the sunlight size-300 tree ------------------------------------------------------------------


def _sunlight_fetch(calls: list[tuple[int, int, int]]) -> tiles.TileFetch:
    def fetch(level: int, index: int, width: int) -> bytes:
        calls.append((level, index, width))
        return (SUNLIGHT / tiles.tile_path(level, index, width)).read_bytes()

    return fetch


def _sunlight_checkpoint_root() -> bytes:
    lines = (SUNLIGHT / "checkpoint").read_text().split("\n")
    assert lines[0] == "rome2026h1.example.org"
    assert int(lines[1]) == SUNLIGHT_SIZE
    return base64.b64decode(lines[2], validate=True)


def _hash_up(hashes: Sequence[bytes]) -> bytes:
    level = list(hashes)
    while len(level) > 1:
        level = [merkle.node_hash(level[k], level[k + 1]) for k in range(0, len(level), 2)]
    return level[0]


def test_sunlight_files_are_exactly_the_tiles_of_size_300() -> None:
    found: set[TilePath] = set()
    for f in (SUNLIGHT / "tile").rglob("*"):
        if f.is_file():
            found.add(tiles.parse_tile_path(f.relative_to(SUNLIGHT).as_posix()))
    want = {TilePath(level, index, width) for level, index, width in tiles.tiles_for_size(300)}
    # Entry bundles sit beside the level-0 tiles, one per level-0 tile.
    want |= {TilePath(None, t.index, t.width) for t in want if t.level == 0}
    assert found == want


def test_sunlight_root_from_tiles_equals_checkpoint() -> None:
    calls: list[tuple[int, int, int]] = []
    reader = TileHashReader(SUNLIGHT_SIZE, _sunlight_fetch(calls))
    assert merkle.tree_root(SUNLIGHT_SIZE, reader.read) == _sunlight_checkpoint_root()
    # 300 = 256 + 32 + 8 + 4: the 256-leaf subtree is the level-1 tile's hash, so the full
    # level-0 tile is not needed; the rest hash up from the partial level-0 tile.
    assert sorted(calls) == [(0, 1, 44), (1, 0, 1)]


def test_sunlight_level1_hash_is_the_hashed_up_level0_tile() -> None:
    level0 = (SUNLIGHT / "tile/0/000").read_bytes()
    level1 = (SUNLIGHT / "tile/1/000.p/1").read_bytes()
    assert len(level0) == 256 * 32
    assert len(level1) == 32
    assert _hash_up([level0[k : k + 32] for k in range(0, len(level0), 32)]) == level1


def test_sunlight_inclusion_of_every_leaf() -> None:
    calls: list[tuple[int, int, int]] = []
    reader = TileHashReader(SUNLIGHT_SIZE, _sunlight_fetch(calls))
    root = _sunlight_checkpoint_root()
    leaves = reader.tile(0, 0) + reader.tile(0, 1)
    for index in range(SUNLIGHT_SIZE):
        proof = merkle.inclusion_proof(index, SUNLIGHT_SIZE, reader.read)
        leaf = leaves[index * 32 : (index + 1) * 32]
        merkle.verify_inclusion(leaf, index, SUNLIGHT_SIZE, proof, root)
    # Three tiles, each fetched once thanks to the per-instance cache.
    assert sorted(calls) == sorted(tiles.tiles_for_size(SUNLIGHT_SIZE))


def test_sunlight_entry_bundles_are_fake_payloads() -> None:
    # What is there: the bundles are gzip'd ASCII placeholders ("fake mirrored entry
    # bundle.\n"), not c2sp entry bundles, so strict decoding must reject them: their
    # first two bytes "fa" read as a 26209-byte length.
    for rel in ("tile/entries/000", "tile/entries/001.p/44"):
        raw = gzip.decompress((SUNLIGHT / rel).read_bytes())
        assert raw.startswith(b"fake mirrored ")
        with pytest.raises(FormatError, match="entry 0 of the bundle is truncated: expected 26209"):
            tiles.decode_entry_bundle(raw)


def test_tile_hash_reader_checks_its_input() -> None:
    reader = TileHashReader(300, lambda level, index, width: b"\x00" * (32 * width - 1))
    with pytest.raises(FormatError, match="tile/0/000 has wrong length: expected 8192 bytes"):
        reader.read([(0, 0)])
    good = TileHashReader(300, lambda level, index, width: b"\x00" * (32 * width))
    with pytest.raises(ProofError, match="not a perfect subtree of the tree of size 300"):
        good.read([(0, 300)])
    with pytest.raises(ProofError, match="not a perfect subtree"):
        good.read([(9, 0)])
    with pytest.raises(ProofError):
        TileHashReader(-1, lambda level, index, width: b"")


# -- TileHashReader over tiles built from a MemoryTree -------------------------------------------

BIG = 256 * 256 + 1000  # reaches level-2 tiles


@functools.cache
def _big_tree() -> MemoryTree:
    tree = MemoryTree()
    for i in range(BIG):
        tree.append(i.to_bytes(4, "big"))
    return tree


def _tile_bytes(tree: MemoryTree, level: int, index: int, width: int) -> bytes:
    """A c2sp tile built directly from its definition: the hashes of the perfect subtrees
    of height 8·level at positions [256·index, 256·index + width)."""
    height = 8 * level
    return b"".join(tree.read([(height, index * 256 + k) for k in range(width)]))


class MemoryTiles:
    """Serves the tiles of the first ``size`` leaves of a MemoryTree; records fetches."""

    def __init__(self, tree: MemoryTree, size: int) -> None:
        self.tree = tree
        self.allowed = set(tiles.tiles_for_size(size))
        self.calls: list[tuple[int, int, int]] = []

    def fetch(self, level: int, index: int, width: int) -> bytes:
        # A reader must only ask for tiles that exist, at the width they have at this size.
        assert (level, index, width) in self.allowed
        self.calls.append((level, index, width))
        return _tile_bytes(self.tree, level, index, width)


@st.composite
def size_index_old(draw: st.DrawFn) -> tuple[int, int, int]:
    size = draw(
        st.integers(1, BIG)
        | st.integers(1, 600)
        | st.sampled_from([256, 257, 511, 512, 65535, 65536, 65537, BIG])
    )
    return size, draw(st.integers(0, size - 1)), draw(st.integers(0, size))


@settings(max_examples=100, deadline=None)
@given(size_index_old())
def test_tile_reader_proofs_equal_memory_tree_proofs(sio: tuple[int, int, int]) -> None:
    size, index, old = sio
    tree = _big_tree()
    served = MemoryTiles(tree, size)
    reader = TileHashReader(size, served.fetch)
    assert merkle.tree_root(size, reader.read) == tree.root(size)
    assert merkle.inclusion_proof(index, size, reader.read) == tree.inclusion_proof(index, size)
    assert merkle.consistency_proof(old, size, reader.read) == tree.consistency_proof(old, size)
    # Cached: no tile fetched twice, and a proof needs only a handful of tiles.
    assert len(served.calls) == len(set(served.calls))
    # Per level, these three need at most the tiles holding the index's path, the old
    # tree's right edge and the new tree's right edge (plus one neighbour at a boundary).
    levels = len({level for level, _, _ in tiles.tiles_for_size(size)})
    assert len(served.calls) <= 4 * levels


def test_tile_reader_hashes_up_within_a_tile() -> None:
    tree = _big_tree()
    size = BIG
    served = MemoryTiles(tree, size)
    reader = TileHashReader(size, served.fetch)
    nodes = [(h, i) for h in range(18) for i in (0, 1, 3) if (i + 1) << h <= size]
    assert reader.read(nodes) == tree.read(nodes)
