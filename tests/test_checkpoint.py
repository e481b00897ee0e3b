"""Checkpoints (c2sp.org/tlog-checkpoint): strict parsing, signing, opening, real vectors."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.checkpoint import MAX_TREE_SIZE, Checkpoint, open_checkpoint, sign_checkpoint
from ledger.cosignature import CosignatureVerifier
from ledger.errors import FormatError, SignatureError
from ledger.note import NoteSigner, sign_note
from tests.paths import VECTORS

SPEC_TEXT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
ROOT = base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
ORIGIN = "celedger.example.cn/log"
LOG = NoteSigner.from_seed(ORIGIN, b"\x11" * 32)

SUNLIGHT = VECTORS / "tlog-tiles-sunlight"
ROME = "000de184301123b9278c086a7d9f68c9577e83872224c197058fd90784ea9706"


def test_spec_example_parses_and_round_trips() -> None:
    cp = Checkpoint.parse(SPEC_TEXT)
    assert cp == Checkpoint("example.com/behind-the-sofa", 20852163, ROOT)
    assert cp.to_text() == SPEC_TEXT


def test_extensions_round_trip() -> None:
    text = SPEC_TEXT + "ext one\n— looks like a signature but is an extension\n"
    cp = Checkpoint.parse(text)
    assert cp.extensions == ("ext one", "— looks like a signature but is an extension")
    assert cp.to_text() == text


def test_size_zero_and_max() -> None:
    zero = f"o\n0\n{base64.b64encode(bytes(32)).decode()}\n"
    assert Checkpoint.parse(zero).size == 0
    top = zero.replace("\n0\n", f"\n{MAX_TREE_SIZE}\n")
    assert Checkpoint.parse(top).size == MAX_TREE_SIZE


R = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param(SPEC_TEXT[:-1], id="no final newline"),
        pytest.param("o\n1\n", id="two lines"),
        pytest.param(f"\n1\n{R}\n", id="empty origin"),
        pytest.param(f"o\tx\n1\n{R}\n", id="tab in origin"),
        pytest.param(f"o\x7f\n1\n{R}\n", id="DEL in origin"),
        pytest.param(f"o\n01\n{R}\n", id="leading zero"),
        pytest.param(f"o\n00\n{R}\n", id="double zero"),
        pytest.param(f"o\n+1\n{R}\n", id="plus sign"),
        pytest.param(f"o\n-1\n{R}\n", id="negative"),
        pytest.param(f"o\n 1\n{R}\n", id="leading space"),
        pytest.param(f"o\n1 \n{R}\n", id="trailing space"),
        pytest.param(f"o\n1_000\n{R}\n", id="underscore"),
        pytest.param(f"o\n1e3\n{R}\n", id="exponent"),
        pytest.param(f"o\n0x10\n{R}\n", id="hex"),
        pytest.param(f"o\n\uff11\n{R}\n", id="fullwidth digit"),
        pytest.param(f"o\n\u0661\n{R}\n", id="arabic-indic digit"),
        pytest.param(f"o\n\n{R}\n", id="empty size"),
        pytest.param(f"o\n{MAX_TREE_SIZE + 1}\n{R}\n", id="size too large"),
        pytest.param(f"o\n{'9' * 40}\n{R}\n", id="size huge"),
        pytest.param(f"o\n1\n{R[:-1]}\n", id="root bad padding"),
        pytest.param(f"o\n1\n{R[:-2]}J=\n", id="root non-canonical"),
        pytest.param(f"o\n1\n{base64.b64encode(bytes(31)).decode()}\n", id="root 31 bytes"),
        pytest.param(f"o\n1\n{base64.b64encode(bytes(33)).decode()}\n", id="root 33 bytes"),
        pytest.param(f"o\n1\n{R}\n\n", id="empty extension line"),
        pytest.param(f"o\n1\n{R}\nok\n\nx\n", id="blank line among extensions"),
        pytest.param(f"o\n1\n{R}\nbad\rext\n", id="control char in extension"),
        pytest.param(f"o\r\n1\r\n{R}\r\n", id="CRLF"),
    ],
)
def test_strict_parse_rejects(text: str) -> None:
    with pytest.raises(FormatError):
        Checkpoint.parse(text)


def test_parse_error_says_expected_and_found() -> None:
    with pytest.raises(FormatError, match=r"expected ASCII decimal .* found '01'"):
        Checkpoint.parse(f"o\n01\n{R}\n")
    with pytest.raises(FormatError, match="expected 32 bytes, found 31"):
        Checkpoint.parse(f"o\n1\n{base64.b64encode(bytes(31)).decode()}\n")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"origin": ""}, "origin"),
        ({"origin": "a\nb"}, "origin"),
        ({"size": -1}, "size"),
        ({"size": MAX_TREE_SIZE + 1}, "size"),
        ({"size": True}, "size"),
        ({"root_hash": bytes(31)}, "root hash"),
        ({"extensions": ("",)}, "extension"),
        ({"extensions": ("a\nb",)}, "extension"),
        ({"extensions": ["a"]}, "extensions"),
    ],
)
def test_constructor_validates(kwargs: dict[str, object], match: str) -> None:
    fields: dict[str, object] = {"origin": "o", "size": 1, "root_hash": ROOT}
    fields.update(kwargs)
    with pytest.raises(FormatError, match=match):
        Checkpoint(**fields)  # type: ignore[arg-type]


def test_sign_and_open() -> None:
    cp = Checkpoint(ORIGIN, 42, ROOT)
    signed = sign_checkpoint(cp, LOG)
    assert signed.startswith(cp.to_text() + "\n— " + ORIGIN + " ")
    opened, note = open_checkpoint(signed, ORIGIN, [LOG.verifier()])
    assert opened == cp
    assert [s.name for s in note.verified] == [ORIGIN]


def test_wrong_origin_is_rejected_with_expected_and_found() -> None:
    signed = sign_checkpoint(Checkpoint(ORIGIN, 1, ROOT), LOG)
    with pytest.raises(FormatError, match=r"origin: expected 'other.example', found '"):
        open_checkpoint(signed, "other.example", [LOG.verifier()])


def test_unknown_key_is_rejected() -> None:
    signed = sign_checkpoint(Checkpoint(ORIGIN, 1, ROOT), LOG)
    with pytest.raises(SignatureError):
        open_checkpoint(signed, ORIGIN, [NoteSigner.generate(ORIGIN).verifier()])


@pytest.mark.parametrize(
    ("old", "new"),
    [("\n42\n", "\n43\n"), (ORIGIN + "\n", ORIGIN + "x\n"), ("Po4d", "Po4e")],
)
def test_tampered_body_is_rejected(old: str, new: str) -> None:
    signed = sign_checkpoint(Checkpoint(ORIGIN, 42, ROOT), LOG)
    assert old in signed
    with pytest.raises(SignatureError):
        open_checkpoint(signed.replace(old, new, 1), ORIGIN, [LOG.verifier()])


def test_signed_non_checkpoint_is_a_format_error() -> None:
    signed = sign_note("just some text\n", LOG)
    with pytest.raises(FormatError, match="at least 3 lines"):
        open_checkpoint(signed, ORIGIN, [LOG.verifier()])


def test_signature_is_checked_before_the_body_is_parsed() -> None:
    # An unsigned (unknown-key) note with a malformed body reports the signature problem.
    signed = sign_note("garbage\n", NoteSigner.generate("x"))
    with pytest.raises(SignatureError):
        open_checkpoint(signed, ORIGIN, [LOG.verifier()])


def test_real_cosigned_checkpoint_opens() -> None:
    text = (SUNLIGHT / "witness" / ROME / "checkpoint").read_text("utf-8")
    keys = json.loads((SUNLIGHT / "witness" / "witness.v0.json").read_text("utf-8"))
    v = CosignatureVerifier.from_vkey(keys["verifier_keys"][0])
    cp, note = open_checkpoint(text, "rome2026h1.example.org", [v])
    assert cp.size == 300
    assert cp.root_hash == base64.b64decode("lCkHUpkmVBEms2r2T1K6Og69+wUuuN3MIEW1/ezu2v0=")
    assert cp.extensions == ()
    assert [s.name for s in note.verified] == ["witness.example.org"]
    with pytest.raises(FormatError, match="origin"):
        open_checkpoint(text, "milan2026h1.example.org", [v])


_ORIGINS = st.text(
    st.characters(exclude_categories=["Cs"], min_codepoint=0x20).filter(lambda c: c != "\x7f"),
    min_size=1,
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(
    origin=_ORIGINS,
    size=st.integers(0, MAX_TREE_SIZE),
    root=st.binary(min_size=32, max_size=32),
    exts=st.lists(_ORIGINS, max_size=3),
)
def test_round_trip_property(origin: str, size: int, root: bytes, exts: list[str]) -> None:
    cp = Checkpoint(origin, size, root, tuple(exts))
    assert Checkpoint.parse(cp.to_text()) == cp
    opened, _ = open_checkpoint(sign_checkpoint(cp, LOG), origin, [LOG.verifier()])
    assert opened == cp
