"""Offline proofs (c2sp.org/tlog-proof@v1): exact text, strict parsing, verification."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.cosignature import CosignatureSigner, CosignatureVerifier, verified_cosignatures
from ledger.errors import FormatError, ProofError, SignatureError
from ledger.merkle import MemoryTree, leaf_hash
from ledger.note import NoteSigner, Verifier, add_signature_lines, sign_note
from ledger.tlogproof import HEADER, MAX_PROOF_HASHES, TlogProof
from tests.paths import VECTORS

ORIGIN = "celedger.example.cn/log"
LOG = NoteSigner.from_seed(ORIGIN, b"\x03" * 32)
WITNESS = CosignatureSigner.from_seed("witness.example.cn/w1", b"\x04" * 32)
VERIFIERS: list[Verifier] = [LOG.verifier(), WITNESS.verifier()]


def _entries(n: int) -> list[bytes]:
    return [f"entry {i}".encode() for i in range(n)]


def _tree(n: int) -> MemoryTree:
    t = MemoryTree()
    for e in _entries(n):
        t.append(e)
    return t


def _signed(tree: MemoryTree) -> str:
    cp = Checkpoint(ORIGIN, tree.size, tree.root())
    signed = sign_checkpoint(cp, LOG)
    return add_signature_lines(signed, WITNESS.cosign(cp.to_text(), 1700000000))


TREE = _tree(13)
SIGNED = _signed(TREE)


def _proof(index: int, extra: bytes | None = None) -> TlogProof:
    return TlogProof(index, tuple(TREE.inclusion_proof(index)), SIGNED, extra)


def test_exact_text_layout() -> None:
    p = _proof(5, extra=b"age-v1.2.1")
    lines = p.to_text().split("\n")
    hashes = TREE.inclusion_proof(5)
    assert lines[0] == "c2sp.org/tlog-proof@v1" == HEADER
    assert lines[1] == "extra " + base64.b64encode(b"age-v1.2.1").decode()
    assert lines[2] == "index 5"
    assert lines[3 : 3 + len(hashes)] == [base64.b64encode(h).decode() for h in hashes]
    assert lines[3 + len(hashes)] == ""
    assert "\n".join(lines[4 + len(hashes) :]) == SIGNED
    assert p.to_text().endswith(SIGNED)


def test_no_extra_line_when_absent() -> None:
    text = _proof(0).to_text()
    assert text.startswith(HEADER + "\nindex 0\n")
    assert "extra" not in text


@pytest.mark.parametrize("index", range(13))
@pytest.mark.parametrize("extra", [None, b"\x00", b"some extra data"])
def test_round_trip_and_verify(index: int, extra: bytes | None) -> None:
    p = _proof(index, extra)
    text = p.to_text()
    assert TlogProof.parse(text) == p
    assert TlogProof.parse(text.encode()) == p
    assert TlogProof.parse(text).to_text() == text
    cp, note = p.verify(leaf_hash(_entries(13)[index]), ORIGIN, VERIFIERS)
    assert cp.size == 13
    assert [s.name for s in note.verified] == [ORIGIN, WITNESS.name]
    assert verified_cosignatures(note, VERIFIERS)[0][1] == 1700000000


def test_single_leaf_tree_has_empty_inclusion_proof() -> None:
    tree = _tree(1)
    p = TlogProof(0, (), _signed(tree))
    assert p.to_text().startswith(HEADER + "\nindex 0\n\n")
    assert TlogProof.parse(p.to_text()) == p
    p.verify(leaf_hash(b"entry 0"), ORIGIN, VERIFIERS)


def test_wrong_leaf_fails() -> None:
    with pytest.raises(ProofError):
        _proof(3).verify(leaf_hash(b"entry 4"), ORIGIN, VERIFIERS)


def test_wrong_index_fails() -> None:
    p = _proof(3)
    moved = TlogProof(4, p.inclusion, p.checkpoint)
    with pytest.raises(ProofError):
        moved.verify(leaf_hash(b"entry 3"), ORIGIN, VERIFIERS)


def test_index_beyond_tree_size_fails() -> None:
    p = TlogProof(13, tuple(TREE.inclusion_proof(12)), SIGNED)
    with pytest.raises(ProofError):
        p.verify(leaf_hash(b"entry 12"), ORIGIN, VERIFIERS)


def test_tampered_hash_fails() -> None:
    p = _proof(6)
    h = bytearray(p.inclusion[1])
    h[0] ^= 1
    bad = TlogProof(6, (p.inclusion[0], bytes(h), *p.inclusion[2:]), SIGNED)
    with pytest.raises(ProofError):
        bad.verify(leaf_hash(b"entry 6"), ORIGIN, VERIFIERS)


def test_truncated_or_extended_path_fails() -> None:
    p = _proof(6)
    with pytest.raises(ProofError):
        TlogProof(6, p.inclusion[:-1], SIGNED).verify(leaf_hash(b"entry 6"), ORIGIN, VERIFIERS)
    with pytest.raises(ProofError):
        TlogProof(6, (*p.inclusion, bytes(32)), SIGNED).verify(
            leaf_hash(b"entry 6"), ORIGIN, VERIFIERS
        )


def test_checkpoint_problems_surface() -> None:
    p = _proof(2)
    leaf = leaf_hash(b"entry 2")
    with pytest.raises(FormatError, match="origin"):
        p.verify(leaf, "other.example/log", VERIFIERS)
    with pytest.raises(SignatureError):
        p.verify(leaf, ORIGIN, [NoteSigner.generate(ORIGIN).verifier()])
    tampered = TlogProof(2, p.inclusion, SIGNED.replace("\n13\n", "\n14\n", 1))
    with pytest.raises(SignatureError):
        tampered.verify(leaf, ORIGIN, VERIFIERS)


def test_checkpoint_of_another_tree_fails() -> None:
    other = _signed(_tree(14))
    p = TlogProof(2, tuple(TREE.inclusion_proof(2)), other)
    with pytest.raises(ProofError):
        p.verify(leaf_hash(b"entry 2"), ORIGIN, VERIFIERS)


GOOD = _proof(5, b"xx").to_text()
_H = TREE.inclusion_proof(5)[0]
H0 = base64.b64encode(_H).decode()


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param(GOOD.replace(HEADER, "c2sp.org/tlog-proof@v2"), id="wrong version"),
        pytest.param(GOOD.replace(HEADER + "\n", HEADER + " \n"), id="header trailing space"),
        pytest.param(GOOD.replace(HEADER + "\n", ""), id="no header"),
        pytest.param(GOOD.replace("extra ", "extra"), id="extra without space"),
        pytest.param(GOOD.replace("extra eHg=", "extra "), id="empty extra"),
        pytest.param(GOOD.replace("extra eHg=", "extra eHg"), id="extra bad padding"),
        pytest.param(GOOD.replace("extra eHg=", "extra eHh="), id="extra non-canonical"),
        pytest.param(GOOD.replace("extra eHg=\n", "extra eHg=\nextra eHg=\n"), id="two extras"),
        pytest.param(GOOD.replace("index 5", "index 05"), id="leading zero"),
        pytest.param(GOOD.replace("index 5", "index -5"), id="negative index"),
        pytest.param(GOOD.replace("index 5", "index  5"), id="two spaces"),
        pytest.param(GOOD.replace("index 5", "index 5 "), id="trailing space"),
        pytest.param(GOOD.replace("index 5", "index"), id="no index value"),
        pytest.param(GOOD.replace("index 5", "Index 5"), id="capital"),
        pytest.param(GOOD.replace("index 5", "index 9223372036854775808"), id="index 2^63"),
        pytest.param(GOOD.replace("index 5\n", ""), id="missing index"),
        pytest.param(GOOD.replace(H0, _b64(_H[:31])), id="31-byte hash"),
        pytest.param(GOOD.replace(H0, _b64(_H + b"\x00")), id="33-byte hash"),
        pytest.param(GOOD.replace(H0, H0[:-2] + "x="), id="hash non-canonical or bad"),
        pytest.param(GOOD.replace(H0 + "\n", H0 + " \n"), id="hash trailing space"),
        pytest.param(GOOD.replace(H0 + "\n", H0), id="hash joined to next line"),
        pytest.param(GOOD.replace("\n\n", "\n", 1), id="no blank line before checkpoint"),
        pytest.param(GOOD.replace("\n\n", "\n\n\n", 1), id="two blank lines"),
        pytest.param(GOOD.replace("\n", "\r\n"), id="CRLF"),
        pytest.param(GOOD[: GOOD.rindex("\n\n") + 1], id="checkpoint without signatures"),
        pytest.param(GOOD[:-1], id="checkpoint without final newline"),
        pytest.param(GOOD.split("\n\n")[0] + "\n\n", id="no checkpoint"),
        pytest.param(
            GOOD.split("\n\n")[0] + "\n\n" + sign_note("not a checkpoint\n", LOG),
            id="signed note that is not a checkpoint",
        ),
    ],
)
def test_strict_parse_rejects(text: str) -> None:
    assert text != GOOD
    with pytest.raises(FormatError):
        TlogProof.parse(text)


def test_too_many_hashes_rejected() -> None:
    h = base64.b64encode(bytes(32)).decode() + "\n"
    head = f"{HEADER}\nindex 0\n"
    ok = head + h * MAX_PROOF_HASHES + "\n" + SIGNED
    assert len(TlogProof.parse(ok).inclusion) == MAX_PROOF_HASHES
    with pytest.raises(FormatError, match=f"at most {MAX_PROOF_HASHES}"):
        TlogProof.parse(head + h * (MAX_PROOF_HASHES + 1) + "\n" + SIGNED)


def test_invalid_utf8_rejected() -> None:
    with pytest.raises(FormatError, match="UTF-8"):
        TlogProof.parse(GOOD.encode().replace(b"index", b"\xffndex"))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"index": -1}, "index"),
        ({"index": 1 << 63}, "index"),
        ({"index": True}, "index"),
        ({"inclusion": [bytes(32)]}, "tuple"),
        ({"inclusion": (bytes(31),)}, "expected 32 bytes, found 31"),
        ({"inclusion": (bytes(32),) * 64}, "at most 63"),
        ({"extra": b""}, "extra"),
        ({"checkpoint": "not a note\n"}, "blank line"),
        ({"checkpoint": sign_note("x\n", LOG)}, "checkpoint"),
    ],
)
def test_constructor_validates(kwargs: dict[str, object], match: str) -> None:
    fields: dict[str, object] = {"index": 0, "inclusion": (), "checkpoint": SIGNED}
    fields.update(kwargs)
    with pytest.raises(FormatError, match=match):
        TlogProof(**fields)  # type: ignore[arg-type]


# -- the real size-300 tree cosigned by mirror.example.org -----------------------------------

MIRROR = (
    VECTORS
    / "tlog-tiles-sunlight"
    / "witness"
    / "mirror"
    / "000de184301123b9278c086a7d9f68c9577e83872224c197058fd90784ea9706"
)


def _mirror() -> tuple[MemoryTree, str, CosignatureVerifier]:
    tiles = (MIRROR / "tile" / "0" / "000").read_bytes() + (
        MIRROR / "tile" / "0" / "001.p" / "44"
    ).read_bytes()
    tree = MemoryTree()
    for i in range(0, len(tiles), 32):
        tree.append_leaf_hash(tiles[i : i + 32])
    keys = json.loads((MIRROR.parent / "mirror.v0.json").read_text("utf-8"))
    return (
        tree,
        (MIRROR / "checkpoint").read_text("utf-8"),
        CosignatureVerifier.from_vkey(keys["verifier_keys"][0]),
    )


@pytest.mark.parametrize("index", [0, 1, 127, 255, 256, 298, 299])
def test_real_mirror_checkpoint_inclusion(index: int) -> None:
    tree, checkpoint, mirror = _mirror()
    assert tree.size == 300
    p = TlogProof(index, tuple(tree.inclusion_proof(index)), checkpoint)
    parsed = TlogProof.parse(p.to_text())
    cp, note = parsed.verify(tree.read([(0, index)])[0], "rome2026h1.example.org", [mirror])
    assert cp.size == 300
    assert [s.name for s in note.verified] == ["mirror.example.org"]
    other = tree.read([(0, (index + 1) % 300)])[0]
    with pytest.raises(ProofError):
        parsed.verify(other, "rome2026h1.example.org", [mirror])


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(1, 70),
    data=st.data(),
    extra=st.none() | st.binary(min_size=1, max_size=40),
)
def test_property_round_trip_and_verify(
    size: int, data: st.DataObject, extra: bytes | None
) -> None:
    tree = _tree(size)
    index = data.draw(st.integers(0, size - 1), label="index")
    p = TlogProof(index, tuple(tree.inclusion_proof(index)), _signed(tree), extra)
    parsed = TlogProof.parse(p.to_text())
    assert parsed == p
    parsed.verify(leaf_hash(f"entry {index}".encode()), ORIGIN, VERIFIERS)
    if size > 1:
        wrong = data.draw(st.integers(0, size - 1).filter(lambda i: i != index), label="wrong")
        with pytest.raises(ProofError):
            parsed.verify(leaf_hash(f"entry {wrong}".encode()), ORIGIN, VERIFIERS)
