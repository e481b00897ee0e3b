"""RFC 6962 / RFC 9162 Merkle tree hashing, proofs and proof verification — pure code.

Rules (RFC 6962 §2.1, RFC 9162 §2.1):

* leaf hash = SHA-256(0x00 ‖ entry), node hash = SHA-256(0x01 ‖ left ‖ right); the root of
  the empty tree is SHA-256("") (``EMPTY_ROOT``).
* MTH(D[n]) for n > 1 splits at k = the largest power of two smaller than n.
* Inclusion proofs are RFC 9162 §2.1.3 PATH, consistency proofs §2.1.4 SUBPROOF, both listed
  from the leaves towards the root; verification is the §2.1.3.2 and §2.1.4.2 algorithms.

Invariants this module relies on and keeps:

* A *perfect node* ``(height, index)`` covers leaves [index·2^height, (index+1)·2^height).
  Storage never has to hold anything else: every MTH that a proof needs is a fold of a short
  left-to-right list of perfect nodes (``subtree_nodes``), and every proof touches O(log n)
  of them.  Proof builders therefore *plan* all nodes first, ask the ``HashReader`` for them
  in a single call, then combine — never a full-tree recompute, never one read per node.
* Every hash given to a verifier must be exactly ``HASH_SIZE`` bytes and every proof must
  have exactly the length the sizes imply; anything else raises ``ProofError`` saying what
  was expected and what was found.  Verifiers raise, they never return a bool, so a caller
  cannot forget to look at the result.
* A root hash does not commit to the tree size (the same proof can verify for two sizes
  whose trees share their shape along the path), so callers must take sizes from a signed
  checkpoint, never from the party that supplied the proof.

Size-0 consistency policy: every tree extends the empty tree, so ``verify_consistency(0, n,
[], EMPTY_ROOT, root)`` ACCEPTS an empty proof from size 0 (c2sp.org/tlog-witness sends
``old 0`` with no proof lines for a witness's first checkpoint of a log).  A *non-empty*
proof from size 0 is REJECTED, as is an old root other than ``EMPTY_ROOT`` (that claim about
the empty tree is simply false); the new root must still be a well-formed 32-byte hash.
``consistency_proof(0, n)`` returns ``[]`` accordingly.  The transparency-dev vectors made
the opposite choice (they reject every consistency check from size 0); see
``tests/test_merkle.py`` for how each of those cases maps onto this policy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from ledger.errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "HashReader",
    "MemoryTree",
    "Node",
    "consistency_proof",
    "consistency_proof_nodes",
    "fold",
    "inclusion_proof",
    "inclusion_proof_nodes",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion_proof",
    "root_nodes",
    "subtree_nodes",
    "tree_root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()

Node = tuple[int, int]
"""A perfect subtree ``(height, index)``: leaves [index·2^height, (index+1)·2^height)."""

HashReader = Callable[[Sequence[Node]], list[bytes]]
"""Returns the stored hashes of the given perfect nodes, in the same order."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 ‖ data): the domain-separated hash of one log entry."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right): the hash of an interior node."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


# -- planning: which perfect nodes a root or proof needs ---------------------------------------


def _largest_power_of_two_below(n: int) -> int:
    """The k of RFC 6962's split: the largest power of two strictly smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_nodes(start: int, end: int) -> list[Node]:
    """The perfect nodes, left to right and largest first, whose fold is MTH(D[start:end]).

    ``start`` must be aligned as in the RFC 6962 recursion: a multiple of the smallest power
    of two that is >= end - start.  Every range that MTH, PATH or SUBPROOF recurses into is,
    and only for such ranges does the greedy decomposition reproduce the RFC's split points.
    The empty range decomposes into no nodes.
    """
    if start < 0 or end < start:
        raise ProofError(f"leaf range must satisfy 0 <= start <= end, found [{start}, {end})")
    length = end - start
    if length == 0:
        return []
    span = 1 << (length - 1).bit_length()
    if start % span:
        raise ProofError(
            f"leaf range [{start}, {end}) is not an RFC 6962 subtree: expected start to be "
            f"a multiple of {span}, found {start}"
        )
    nodes: list[Node] = []
    while start < end:
        # Greedy largest-first is exactly RFC 6962's "split at the largest power of two
        # below n" applied repeatedly to the right part, because start stays aligned.
        height = (end - start).bit_length() - 1
        nodes.append((height, start >> height))
        start += 1 << height
    return nodes


def root_nodes(size: int) -> list[Node]:
    """The perfect nodes whose fold is the root of the tree of ``size`` leaves."""
    return subtree_nodes(0, size)


def parent_level(hashes: Sequence[bytes]) -> list[bytes]:
    """The hashes one level up: each adjacent pair combined; an odd last hash has no parent
    yet (its subtree is not complete) and is dropped."""
    sha = hashlib.sha256  # bound once: this loop is the hot path of appends and audits
    return [sha(b"\x01" + hashes[k] + hashes[k + 1]).digest() for k in range(0, len(hashes) - 1, 2)]


def perfect_root(hashes: Sequence[bytes]) -> bytes:
    """The root of a perfect subtree given its 2**k base hashes (k >= 0)."""
    n = len(hashes)
    if n == 0 or n & (n - 1):
        raise ProofError(f"a perfect subtree has a power-of-two number of hashes, found {n}")
    level = list(hashes)
    while len(level) > 1:
        level = parent_level(level)
    return level[0]


def fold(hashes: Sequence[bytes]) -> bytes:
    """Combine a ``subtree_nodes`` decomposition's hashes right to left into the range's MTH.

    Right to left because MTH nests on the right: MTH(a, b, c) = H(a, H(b, c)) for the
    decreasing perfect subtrees a, b, c.  The empty decomposition folds to ``EMPTY_ROOT``.
    """
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose MTHs make up PATH(index, D[size]), leaf end first."""
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    # The recursion produces the root end first; the proof lists the leaf end first.
    ranges.reverse()
    return ranges


def _consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose MTHs make up SUBPROOF(old_size, D[new_size], true)."""
    ranges: list[tuple[int, int]] = []
    start, end = 0, new_size
    complete = True  # RFC 9162's b: the current subtree is the whole old tree's root
    while True:
        if old_size == end:
            if not complete:
                ranges.append((start, end))
            break
        k = _largest_power_of_two_below(end - start)
        if old_size - start <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            complete = False
    ranges.reverse()
    return ranges


def _check_index(index: int, size: int) -> None:
    if size < 0:
        raise ProofError(f"tree size must be >= 0, found {size}")
    if not 0 <= index < size:
        raise ProofError(f"leaf index must be in [0, {size}), found {index}")


def _check_sizes(old_size: int, new_size: int) -> None:
    if old_size < 0 or new_size < 0:
        raise ProofError(f"tree sizes must be >= 0, found old={old_size}, new={new_size}")
    if old_size > new_size:
        raise ProofError(
            f"consistency needs old size <= new size, found old={old_size} > new={new_size}"
        )


def inclusion_proof_nodes(index: int, size: int) -> list[list[Node]]:
    """For each hash of the inclusion proof, the perfect nodes that fold into it."""
    _check_index(index, size)
    return [subtree_nodes(a, b) for a, b in _inclusion_ranges(index, size)]


def consistency_proof_nodes(old_size: int, new_size: int) -> list[list[Node]]:
    """For each hash of the consistency proof, the perfect nodes that fold into it."""
    _check_sizes(old_size, new_size)
    if old_size == 0 or old_size == new_size:
        return []  # size-0 policy (module docstring) and RFC 9162: equal sizes, empty proof
    return [subtree_nodes(a, b) for a, b in _consistency_ranges(old_size, new_size)]


def _read_groups(groups: Sequence[Sequence[Node]], read: HashReader) -> list[bytes]:
    """Read all groups' nodes in ONE reader call, then fold each group."""
    flat = [node for group in groups for node in group]
    if not flat:
        return [EMPTY_ROOT for _ in groups]
    hashes = read(flat)
    if len(hashes) != len(flat):
        raise ProofError(
            f"hash reader returned the wrong number of hashes: expected {len(flat)}, "
            f"found {len(hashes)}"
        )
    for node, h in zip(flat, hashes, strict=True):
        if len(h) != HASH_SIZE:
            raise ProofError(
                f"hash reader returned a bad hash for node {node}: expected {HASH_SIZE} "
                f"bytes, found {len(h)}"
            )
    out: list[bytes] = []
    pos = 0
    for group in groups:
        out.append(fold(hashes[pos : pos + len(group)]))
        pos += len(group)
    return out


def tree_root(size: int, read: HashReader) -> bytes:
    """MTH of the first ``size`` leaves (``EMPTY_ROOT`` for 0), from O(log n) stored nodes."""
    if size < 0:
        raise ProofError(f"tree size must be >= 0, found {size}")
    return _read_groups([root_nodes(size)], read)[0]


def inclusion_proof(index: int, size: int, read: HashReader) -> list[bytes]:
    """RFC 9162 §2.1.3.1 inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
    return _read_groups(inclusion_proof_nodes(index, size), read)


def consistency_proof(old_size: int, new_size: int, read: HashReader) -> list[bytes]:
    """RFC 9162 §2.1.4.1 consistency proof from ``old_size`` to ``new_size`` ([] from 0)."""
    return _read_groups(consistency_proof_nodes(old_size, new_size), read)


# -- verification ------------------------------------------------------------------------------


def _check_hash(what: str, h: bytes) -> None:
    if len(h) != HASH_SIZE:
        raise ProofError(f"{what} has wrong length: expected {HASH_SIZE} bytes, found {len(h)}")


def _check_proof_hashes(kind: str, proof: Sequence[bytes], expected: int) -> None:
    if len(proof) != expected:
        raise ProofError(
            f"{kind} proof has wrong length: expected {expected} hashes, found {len(proof)}"
        )
    for n, h in enumerate(proof):
        _check_hash(f"{kind} proof hash {n}", h)


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """The root that ``proof`` implies for ``leaf_hash`` at ``index`` (RFC 9162 §2.1.3.2).

    Raises ``ProofError`` if the index is out of range or the proof is malformed; the caller
    still has to compare the result with a trusted root (``verify_inclusion`` does).
    """
    _check_index(index, size)
    _check_hash("leaf hash", leaf_hash)
    _check_proof_hashes("inclusion", proof, len(_inclusion_ranges(index, size)))
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError(f"inclusion proof is too long for leaf {index} of tree size {size}")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # On the right border the path skips levels where the leaf's subtree has no
            # right sibling; the skip stops at a set bit OR at fn == 0 (forgetting the
            # second condition loops forever on the leftmost path).
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"inclusion proof is too short for leaf {index} of tree size {size}")
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise ``ProofError`` unless ``proof`` shows ``leaf_hash`` at ``index`` under ``root``."""
    _check_hash("root hash", root)
    computed = root_from_inclusion_proof(leaf_hash, index, size, proof)
    if computed != root:
        raise ProofError(
            f"inclusion proof does not verify for leaf {index} of tree size {size}: expected "
            f"root {root.hex()}, found {computed.hex()}"
        )


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """Raise ``ProofError`` unless ``proof`` shows the tree ``old_root`` of ``old_size``
    leaves is a prefix of the tree ``new_root`` of ``new_size`` leaves (RFC 9162 §2.1.4.2,
    plus the size-0 consistency policy of the module docstring)."""
    _check_sizes(old_size, new_size)
    if old_size == new_size and old_size > 0:
        # Equal sizes: consistency is root equality and nothing is hashed, so the roots'
        # length is not ours to police (the RFC 6962 vectors use short placeholder roots).
        _check_proof_hashes("consistency", proof, 0)
        if old_root != new_root:
            raise ProofError(
                f"trees of equal size {old_size} must have equal roots: expected "
                f"{old_root.hex()}, found {new_root.hex()}"
            )
        return
    _check_hash("old root hash", old_root)
    _check_hash("new root hash", new_root)
    if old_size == new_size:
        _check_proof_hashes("consistency", proof, 0)
        if old_root != new_root:
            raise ProofError(
                f"trees of equal size {old_size} must have equal roots: expected "
                f"{old_root.hex()}, found {new_root.hex()}"
            )
        if old_size == 0 and old_root != EMPTY_ROOT:
            raise ProofError(
                f"the empty tree's root must be {EMPTY_ROOT.hex()}, found {old_root.hex()}"
            )
        return
    if old_size == 0:
        # Size-0 consistency policy: every tree extends the empty tree.
        _check_proof_hashes("consistency", proof, 0)
        if old_root != EMPTY_ROOT:
            raise ProofError(
                f"the empty tree's root must be {EMPTY_ROOT.hex()}, found {old_root.hex()}"
            )
        return

    _check_proof_hashes("consistency", proof, len(_consistency_ranges(old_size, new_size)))
    path = list(proof)
    # §2.1.4.2 step 2: a power-of-two old tree is itself a node of the new tree, so the
    # proof omits its hash and the verifier supplies it.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof is too long for sizes {old_size} -> {new_size}")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            # Same border skip as in inclusion: stop at a set bit or at fn == 0.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"consistency proof is too short for sizes {old_size} -> {new_size}")
    if fr != old_root:
        raise ProofError(
            f"consistency proof does not verify for sizes {old_size} -> {new_size}: expected "
            f"old root {old_root.hex()}, found {fr.hex()}"
        )
    if sr != new_root:
        raise ProofError(
            f"consistency proof does not verify for sizes {old_size} -> {new_size}: expected "
            f"new root {new_root.hex()}, found {sr.hex()}"
        )


# -- an in-memory tree -------------------------------------------------------------------------


class MemoryTree:
    """A growing in-memory Merkle tree for tests, benchmarks and remote audits.

    ``_levels[h][i]`` is the hash of perfect node (h, i); a node is stored as soon as both
    children exist, so an append costs O(1) amortised hashes (at most O(log n)) and every
    perfect node of every prefix of the tree is available to ``read``.
    """

    def __init__(self) -> None:
        self._levels: list[list[bytes]] = [[]]

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def append(self, data: bytes) -> int:
        """Append an entry; returns its index."""
        return self.append_leaf_hash(leaf_hash(data))

    def append_leaf_hash(self, h: bytes) -> int:
        """Append an already-hashed leaf; returns its index."""
        _check_hash("leaf hash", h)
        index = self.size
        self._levels[0].append(h)
        height = 0
        # A right child just completed its parent while this level has an even count.
        while len(self._levels[height]) % 2 == 0:
            level = self._levels[height]
            if height + 1 == len(self._levels):
                self._levels.append([])
            self._levels[height + 1].append(node_hash(level[-2], level[-1]))
            height += 1
        return index

    def read(self, nodes: Sequence[Node]) -> list[bytes]:
        """The ``HashReader`` over this tree's stored perfect nodes."""
        out: list[bytes] = []
        for height, index in nodes:
            if height < 0 or index < 0 or height >= len(self._levels):
                raise ProofError(
                    f"node ({height}, {index}) is not in the tree: expected height in "
                    f"[0, {len(self._levels)}) and index >= 0"
                )
            level = self._levels[height]
            if index >= len(level):
                raise ProofError(
                    f"node ({height}, {index}) is not in the tree of size {self.size}: "
                    f"expected index < {len(level)} at height {height}"
                )
            out.append(level[index])
        return out

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self.size:
            raise ProofError(f"tree size must be in [0, {self.size}], found {size}")

    def root(self, size: int | None = None) -> bytes:
        """The root of the whole tree, or of its first ``size`` leaves."""
        size = self.size if size is None else size
        self._check_size(size)
        return tree_root(size, self.read)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        size = self.size if size is None else size
        self._check_size(size)
        return inclusion_proof(index, size, self.read)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        new_size = self.size if new_size is None else new_size
        self._check_size(new_size)
        return consistency_proof(old_size, new_size, self.read)
