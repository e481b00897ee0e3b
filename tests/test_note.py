"""Signed notes (c2sp.org/signed-note): published vectors, malformed notes, properties."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.checkpoint import Checkpoint
from ledger.errors import FormatError, LedgerError, SignatureError
from ledger.note import (
    MAX_NOTE_SIZE,
    MAX_SIGNATURES,
    Note,
    NoteSignature,
    NoteSigner,
    NoteVerifier,
    Signer,
    Verifier,
    add_signature_lines,
    compute_key_id,
    decode_base64,
    format_signature_line,
    open_note,
    parse_note,
    sign_note,
    split_vkey,
)
from tests.paths import VECTORS

DATA: dict[str, Any] = json.loads((VECTORS / "signed-note" / "vectors.json").read_text("utf-8"))
KEYS: dict[str, dict[str, str]] = DATA["keys"]
GOOD_NOTES = [n for n in DATA["notes"] if not n.get("must_reject")]
BAD_NOTES = [n for n in DATA["notes"] if n.get("must_reject")]
PETER = NoteVerifier.from_vkey(KEYS["PeterNeumann"]["vkey"])
ENOCH = NoteVerifier.from_vkey(KEYS["EnochRoot"]["vkey"])
ALL = [NoteVerifier.from_vkey(k["vkey"]) for k in KEYS.values()]
QUOTE = GOOD_NOTES[0]["text"]
SIGNED_BY_PETER = GOOD_NOTES[0]["signed"]


def test_vectors_are_present() -> None:
    assert len(KEYS) == 3
    assert len(GOOD_NOTES) == 3
    assert len(BAD_NOTES) == 1
    assert len(DATA["bad_vkeys"]) == 3


# -- keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(KEYS))
def test_vkey_parses_and_round_trips(name: str) -> None:
    vkey = KEYS[name]["vkey"]
    v = NoteVerifier.from_vkey(vkey)
    assert v.name == name
    assert v.to_vkey() == vkey
    assert v.key_id.hex() == vkey.split("+")[1]
    assert v.key_id == hashlib.sha256(name.encode() + b"\n\x01" + v.public_key).digest()[:4]
    assert isinstance(v, Verifier)


@pytest.mark.parametrize("vkey", DATA["bad_vkeys"])
def test_bad_vkeys_are_rejected(vkey: str) -> None:
    with pytest.raises(FormatError):
        NoteVerifier.from_vkey(vkey)


def test_vkey_with_plus_in_base64_splits_on_first_two_plus_only() -> None:
    # The EnochRoot key's base64 has no '+', but example.com/foo's signature does; build one.
    for i in range(200):
        s = NoteSigner.from_seed("k", bytes([i]) * 32)
        vkey = s.verifier().to_vkey()
        if "+" in vkey.split("+", 2)[2]:
            assert NoteVerifier.from_vkey(vkey) == s.verifier()
            return
    pytest.fail("no key with '+' in its base64 found")


@pytest.mark.parametrize(
    "vkey",
    [
        "",
        "PeterNeumann",
        "PeterNeumann+c74f20a3",
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "Peter\tNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a33+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20g3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW=",
        "PeterNeumann+c74f20a3+",
        "PeterNeumann+c74f20a3+AQ==",
        # right key, but algorithm byte 0x04 (a cosignature key) with the 0x01 key ID
        "PeterNeumann+c74f20a3+BBpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
)
def test_malformed_vkeys_are_rejected(vkey: str) -> None:
    with pytest.raises(FormatError):
        NoteVerifier.from_vkey(vkey)


def test_vkey_error_says_expected_and_found() -> None:
    with pytest.raises(FormatError, match=r"expected c74f20a3.*found c74f20a4"):
        NoteVerifier.from_vkey(DATA["bad_vkeys"][2])


def test_split_vkey() -> None:
    name, key_id, alg, pub = split_vkey(KEYS["example.com/foo"]["vkey"])
    assert (name, key_id.hex(), alg, len(pub)) == ("example.com/foo", "530d903a", 1, 32)
    assert compute_key_id(name, alg, pub) == key_id


def test_skey_reproduces_the_published_signature_byte_for_byte() -> None:
    signer = NoteSigner.from_skey(KEYS["PeterNeumann"]["skey"])
    assert signer.name == "PeterNeumann"
    assert signer.key_id.hex() == "c74f20a3"
    assert signer.verifier() == PETER
    assert signer.public_key_bytes == PETER.public_key
    assert signer.to_skey() == KEYS["PeterNeumann"]["skey"]
    assert sign_note(QUOTE, signer) == SIGNED_BY_PETER
    assert isinstance(signer, Signer)
    assert "PRIVATE" not in repr(signer)


@pytest.mark.parametrize(
    "skey",
    [
        KEYS["PeterNeumann"]["vkey"],
        "PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+PeterNeumann+c74f20a3+BIEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDF",
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKA==",
        "PRIVATE+KEY+PeterNeumann+c74f20a3",
    ],
)
def test_bad_skeys_are_rejected(skey: str) -> None:
    with pytest.raises(FormatError):
        NoteSigner.from_skey(skey)


def test_generated_signer_round_trips_through_skey() -> None:
    s = NoteSigner.generate("celedger.example.cn/log")
    again = NoteSigner.from_skey(s.to_skey())
    assert again.verifier() == s.verifier()
    note = sign_note("hello\n", again)
    assert open_note(note, [s.verifier()]).text == "hello\n"


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\u00a0b", "a\nb", "a\x7fb"])
def test_bad_key_names_are_rejected(name: str) -> None:
    with pytest.raises(FormatError):
        NoteSigner.generate(name)
    with pytest.raises(FormatError):
        NoteVerifier(name, PETER.public_key)


def test_verifier_needs_a_32_byte_key() -> None:
    with pytest.raises(FormatError, match="expected 32 bytes, found 31"):
        NoteVerifier("x", b"\x00" * 31)


# -- the published notes ---------------------------------------------------------------------


@pytest.mark.parametrize("case", GOOD_NOTES, ids=[n["desc"] for n in GOOD_NOTES])
def test_published_notes_open(case: dict[str, Any]) -> None:
    listed = [NoteVerifier.from_vkey(KEYS[k]["vkey"]) for k in case["verifies_with"]]
    for verifiers in (listed, ALL):
        note = open_note(case["signed"], verifiers)
        assert note.text == case["text"]
        assert [s.name for s in note.verified] == case["verifies_with"]
        assert note.to_text() == case["signed"]
    # bytes work too
    assert open_note(case["signed"].encode(), listed).text == case["text"]


@pytest.mark.parametrize("case", BAD_NOTES, ids=[n["desc"] for n in BAD_NOTES])
def test_corrupted_published_note_is_rejected(case: dict[str, Any]) -> None:
    with pytest.raises(SignatureError):
        open_note(case["signed"], ALL)
    with pytest.raises(SignatureError):
        open_note(case["signed"], [ENOCH])


def test_corrupted_signature_is_rejected_even_if_another_key_verifies() -> None:
    good = GOOD_NOTES[1]["signed"]
    b64 = good.split("\n")[-2].split(" ")[2]
    raw = bytearray(base64.b64decode(b64))
    raw[10] ^= 1
    bad = good.replace(b64, base64.b64encode(bytes(raw)).decode())
    assert open_note(bad, [PETER]).verified[0].name == "PeterNeumann"  # Enoch unknown here
    with pytest.raises(SignatureError, match="EnochRoot"):
        open_note(bad, [PETER, ENOCH])


def test_unknown_keys_are_ignored() -> None:
    two = GOOD_NOTES[1]["signed"]
    note = open_note(two, [PETER])
    assert [s.name for s in note.sigs] == ["PeterNeumann", "EnochRoot"]
    assert [s.name for s in note.verified] == ["PeterNeumann"]
    note = open_note(two, [ENOCH])
    assert [s.name for s in note.verified] == ["EnochRoot"]


def test_same_name_other_id_and_same_id_other_name_are_unknown() -> None:
    other = NoteSigner.generate("PeterNeumann")  # same name, different key ID
    assert other.key_id != PETER.key_id
    with pytest.raises(SignatureError, match="no signature from a known key"):
        open_note(SIGNED_BY_PETER, [other.verifier()])
    # A line carrying Peter's key ID under another name is ignored, not checked.
    line = format_signature_line("Mallory", PETER.key_id, b"\x00" * 64)
    note = open_note(SIGNED_BY_PETER + line, [PETER])
    assert [s.name for s in note.verified] == ["PeterNeumann"]
    assert note.sigs[1] == NoteSignature("Mallory", PETER.key_id, b"\x00" * 64)


def test_no_known_key_message_says_expected_and_found() -> None:
    with pytest.raises(SignatureError) as err:
        open_note(SIGNED_BY_PETER, [ENOCH])
    msg = str(err.value)
    assert "expected one of [EnochRoot+af0cfe78]" in msg
    assert "found [PeterNeumann+c74f20a3]" in msg


def test_no_verifiers_means_rejected() -> None:
    with pytest.raises(SignatureError):
        open_note(SIGNED_BY_PETER, [])


def test_duplicate_known_signature_is_malformed() -> None:
    line = SIGNED_BY_PETER.split("\n\n")[1]
    with pytest.raises(FormatError, match="at most one signature"):
        open_note(SIGNED_BY_PETER + line, [PETER])
    # but a repeated *unknown* line is merely ignored
    two = GOOD_NOTES[1]["signed"]
    enoch_line = two.split("\n")[-2] + "\n"
    note = open_note(two + enoch_line, [PETER])
    assert [s.name for s in note.verified] == ["PeterNeumann"]
    assert [s.name for s in note.sigs] == ["PeterNeumann", "EnochRoot", "EnochRoot"]


def test_duplicate_verifiers_are_refused() -> None:
    with pytest.raises(LedgerError, match="distinct"):
        open_note(SIGNED_BY_PETER, [PETER, PETER])


def test_tree_note_example_parses_as_a_checkpoint_body() -> None:
    cp = Checkpoint.parse(DATA["tree_note_example"]["text"])
    assert cp.origin == "go.sum database tree"
    assert cp.size == 123456789012
    assert cp.root_hash == base64.b64decode("TszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=")
    assert cp.to_text() == DATA["tree_note_example"]["text"]


def test_spec_example_with_blank_line_inside_text() -> None:
    s = NoteSigner.generate("quasimodo.example/salvatore")
    text = (
        "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n"
        "\ned è subito sera.\n"
    )
    note = open_note(sign_note(text, s), [s.verifier()])
    assert note.text == text


def test_sign_with_two_signers_and_require_signature() -> None:
    a, b = NoteSigner.generate("a.example"), NoteSigner.generate("b.example")
    signed = sign_note("two\n", a, b)
    note = open_note(signed, [a.verifier(), b.verifier()])
    assert [s.name for s in note.verified] == ["a.example", "b.example"]
    assert note.require_signature(b.verifier()).name == "b.example"
    only_a = open_note(signed, [a.verifier()])
    with pytest.raises(SignatureError, match=r"expected a verified one by 'b.example'"):
        only_a.require_signature(b.verifier())


def test_add_signature_lines_skips_repeats() -> None:
    a, b = NoteSigner.generate("a.example"), NoteSigner.generate("b.example")
    signed = sign_note("x\n", a)
    b_line = sign_note("x\n", b).split("\n\n")[1]
    a_line = signed.split("\n\n")[1]
    merged = add_signature_lines(signed, b_line + a_line)
    assert merged == signed + b_line
    note = open_note(merged, [a.verifier(), b.verifier()])
    assert len(note.verified) == 2
    with pytest.raises(FormatError):
        add_signature_lines(signed, "- not a signature line\n")


# -- malformed notes -------------------------------------------------------------------------

SIG_LINE = SIGNED_BY_PETER.split("\n\n")[1]
SIG_B64 = SIG_LINE.split(" ")[2].rstrip("\n")


@pytest.mark.parametrize(
    "note",
    [
        pytest.param(QUOTE + SIG_LINE, id="no blank line"),
        pytest.param(QUOTE.replace("\n", " ") + SIG_LINE, id="no newline at all"),
        pytest.param(SIGNED_BY_PETER[:-1], id="missing final newline"),
        pytest.param(QUOTE + "\n", id="no signature lines"),
        pytest.param(SIGNED_BY_PETER + "\n", id="trailing blank line"),
        pytest.param(SIGNED_BY_PETER.replace("If", "If\r", 1), id="carriage return in text"),
        pytest.param(SIGNED_BY_PETER.replace("If", "If\t", 1), id="tab in text"),
        pytest.param(SIGNED_BY_PETER.replace("If", "If\x00", 1), id="NUL in text"),
        pytest.param(SIGNED_BY_PETER.replace("\n", "\r\n"), id="CRLF"),
        pytest.param(SIGNED_BY_PETER.replace("— ", "- "), id="hyphen instead of em dash"),
        pytest.param(SIGNED_BY_PETER.replace("— ", "\u2013 "), id="en dash"),
        pytest.param(SIGNED_BY_PETER.replace("— ", "—"), id="no space after dash"),
        pytest.param(SIGNED_BY_PETER.replace("— ", " — "), id="leading space"),
        pytest.param(SIGNED_BY_PETER.replace("PeterNeumann ", "PeterNeumann  "), id="two spaces"),
        pytest.param(SIGNED_BY_PETER.replace("PeterNeumann ", "Peter+Neumann "), id="plus in name"),
        pytest.param(SIGNED_BY_PETER.replace("— PeterNeumann ", "—  "), id="empty name"),
        pytest.param(SIGNED_BY_PETER.replace(SIG_B64, ""), id="empty signature"),
        pytest.param(SIGNED_BY_PETER.replace(SIG_B64, SIG_B64 + " "), id="trailing space"),
        pytest.param(SIGNED_BY_PETER.replace(SIG_B64, SIG_B64[:-1]), id="bad padding"),
        pytest.param(SIGNED_BY_PETER.replace(SIG_B64, SIG_B64[:-1] + "*"), id="not base64"),
        pytest.param(SIGNED_BY_PETER.replace(SIG_B64, SIG_B64.rstrip("=")), id="unpadded"),
        pytest.param(SIGNED_BY_PETER.replace(SIG_B64, "!" + SIG_B64[1:]), id="bad character"),
        pytest.param(
            SIGNED_BY_PETER.replace(SIG_B64, SIG_B64.replace("+", "-").replace("/", "_")),
            id="url-safe alphabet",
        ),
        pytest.param(SIGNED_BY_PETER.replace(SIG_B64, "AAAAAA=="), id="shorter than 5 bytes"),
        pytest.param(SIGNED_BY_PETER.replace(SIG_B64, SIG_B64[:-2] + "N="), id="nonzero pad bits"),
    ],
)
def test_malformed_notes_are_format_errors(note: str) -> None:
    with pytest.raises(FormatError):
        open_note(note, ALL)


def test_nonzero_pad_bits_case_really_is_same_bytes() -> None:
    # Guards the test above: "…M=" and "…N=" decode to the same bytes under a lax decoder.
    assert base64.b64decode(SIG_B64[:-2] + "N=") == base64.b64decode(SIG_B64)
    with pytest.raises(FormatError, match="canonical"):
        decode_base64(SIG_B64[:-2] + "N=", "sig")


def test_invalid_utf8_is_a_format_error() -> None:
    with pytest.raises(FormatError, match="UTF-8"):
        open_note(SIGNED_BY_PETER.encode().replace(b"If", b"I\xff", 1), ALL)
    with pytest.raises(FormatError, match="surrogate"):
        open_note(SIGNED_BY_PETER.replace("If", "I\ud800", 1), ALL)


def test_size_and_signature_count_caps() -> None:
    big = "a" * (MAX_NOTE_SIZE) + "\n"
    with pytest.raises(FormatError, match="at most"):
        open_note(big + "\n" + SIG_LINE, ALL)
    with pytest.raises(FormatError, match="at most"):
        sign_note(big, NoteSigner.generate("x"))
    unknown = format_signature_line("other", b"\x00\x00\x00\x01", b"\x00" * 64)
    many = SIGNED_BY_PETER + unknown * (MAX_SIGNATURES - 1)
    assert open_note(many, ALL).verified[0].name == "PeterNeumann"
    with pytest.raises(FormatError, match=f"at most {MAX_SIGNATURES} signature lines"):
        open_note(many + unknown, ALL)


@pytest.mark.parametrize(
    "text",
    ["", "no newline", "tab\there\n", "cr\r\n", "nul\x00\n", "esc\x1b\n", "bad \ud800\n"],
)
def test_sign_note_rejects_invalid_text(text: str) -> None:
    with pytest.raises(FormatError):
        sign_note(text, NoteSigner.generate("x"))


def test_sign_note_needs_signers() -> None:
    with pytest.raises(LedgerError):
        sign_note("x\n")
    s = NoteSigner.generate("x")
    with pytest.raises(LedgerError, match="distinct"):
        sign_note("x\n", s, s)


def test_parse_note_checks_syntax_only() -> None:
    note = parse_note(GOOD_NOTES[1]["signed"])
    assert isinstance(note, Note)
    assert note.verified == []
    assert [s.key_id.hex() for s in note.sigs] == ["c74f20a3", "af0cfe78"]
    assert all(len(s.sig) == 64 for s in note.sigs)


# -- properties ------------------------------------------------------------------------------

_LINE_CHARS = st.characters(exclude_categories=["Cs"], min_codepoint=0x20)
_TEXTS = st.lists(st.text(_LINE_CHARS, max_size=40), min_size=1, max_size=8).map(
    lambda lines: "\n".join(lines) + "\n"
)
_SIGNER = NoteSigner.from_seed("prop.example/key", b"\x07" * 32)


@settings(max_examples=200, deadline=None)
@given(text=_TEXTS)
def test_sign_open_round_trip(text: str) -> None:
    signed = sign_note(text, _SIGNER)
    note = open_note(signed, [_SIGNER.verifier()])
    assert note.text == text
    assert [s.name for s in note.verified] == [_SIGNER.name]
    assert note.to_text() == signed


@settings(max_examples=300, deadline=None)
@given(text=_TEXTS, data=st.data())
def test_flipping_any_byte_breaks_the_note(text: str, data: st.DataObject) -> None:
    signed = sign_note(text, _SIGNER).encode("utf-8")
    i = data.draw(st.integers(0, len(signed) - 1), label="index")
    flip = data.draw(st.integers(1, 255), label="xor")
    mutated = bytearray(signed)
    mutated[i] ^= flip
    with pytest.raises((FormatError, SignatureError)):
        open_note(bytes(mutated), [_SIGNER.verifier()])


@settings(max_examples=100, deadline=None)
@given(text=_TEXTS, other=_TEXTS)
def test_signature_does_not_transfer_to_other_text(text: str, other: str) -> None:
    if text == other:
        return
    sig_block = sign_note(text, _SIGNER).rsplit("\n\n", 1)[1]
    with pytest.raises(SignatureError):
        open_note(other + "\n" + sig_block, [_SIGNER.verifier()])
