"""Witness cosignatures (c2sp.org/tlog-cosignature): real sunlight vectors and mutations."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from ledger.cosignature import (
    MAX_TIMESTAMP,
    CosignatureSigner,
    CosignatureVerifier,
    cosigned_message,
    verified_cosignatures,
    verifier_from_vkey,
)
from ledger.errors import FormatError, SignatureError
from ledger.note import (
    NoteSigner,
    NoteVerifier,
    Verifier,
    add_signature_lines,
    format_signature_line,
    open_note,
    parse_note,
)
from tests.paths import VECTORS

SUNLIGHT = VECTORS / "tlog-tiles-sunlight"
ROME = "000de184301123b9278c086a7d9f68c9577e83872224c197058fd90784ea9706"
MILAN = "88ad7a28caeb0b2aa890fdf0304c2fcaf59fca2ee140134ff8c1300bac493482"
VECTOR_TIME = 1767139200  # 0x69546780, the timestamp in all three cosignatures

# (checkpoint path, witness key file, cosigner name, origin).  Never the decoy files
# witness/checkpoint and witness/mirror/checkpoint.
CASES = [
    (
        f"witness/{ROME}/checkpoint",
        "witness/witness.v0.json",
        "witness.example.org",
        "rome2026h1.example.org",
    ),
    (
        f"witness2/{MILAN}/checkpoint",
        "witness2/witness.v0.json",
        "witness2.example.org",
        "milan2026h1.example.org",
    ),
    (
        f"witness/mirror/{ROME}/checkpoint",
        "witness/mirror/mirror.v0.json",
        "mirror.example.org",
        "rome2026h1.example.org",
    ),
]
IDS = [c[2] for c in CASES]


def _load(case: tuple[str, str, str, str]) -> tuple[str, str, CosignatureVerifier]:
    cp_path, key_path, _, _ = case
    text = (SUNLIGHT / cp_path).read_text("utf-8")
    vkey = json.loads((SUNLIGHT / key_path).read_text("utf-8"))["verifier_keys"][0]
    return text, vkey, CosignatureVerifier.from_vkey(vkey)


def _cosig_line(text: str, name: str) -> str:
    (line,) = [ln for ln in text.split("\n") if ln.startswith(f"— {name} ")]
    return line


def test_vectors_are_not_the_decoys() -> None:
    for cp_path, *_ in CASES:
        assert Path(cp_path).parent.name in (ROME, MILAN)
        assert (SUNLIGHT / cp_path).is_file()


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_real_cosignature_verifies(case: tuple[str, str, str, str]) -> None:
    text, vkey, v = _load(case)
    _, _, name, origin = case
    assert v.name == name
    assert v.to_vkey() == vkey
    assert isinstance(v, Verifier)
    note = open_note(text, [v])
    assert [s.name for s in note.verified] == [name]
    cp, _ = open_checkpoint(text, origin, [v])
    assert cp.size == 300
    assert verified_cosignatures(note, [v]) == [(v, VECTOR_TIME)]
    assert CosignatureVerifier.timestamp_of(note.verified[0].sig) == VECTOR_TIME


def test_log_signature_of_unknown_type_is_ignored() -> None:
    text, _, v = _load(CASES[0])
    note = open_note(text, [v])
    assert [s.name for s in note.sigs] == ["rome2026h1.example.org", "witness.example.org"]
    assert [s.name for s in note.verified] == ["witness.example.org"]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_flipped_signature_character_fails(case: tuple[str, str, str, str]) -> None:
    text, _, v = _load(case)
    b64 = _cosig_line(text, case[2]).split(" ")[2]
    for pos in (0, 5, 12, 20, 40, len(b64) - 4):  # key ID, timestamp, signature
        ch = b64[pos]
        bad = b64[:pos] + ("A" if ch != "A" else "B") + b64[pos + 1 :]
        with pytest.raises((SignatureError, FormatError)):
            open_note(text.replace(b64, bad), [v])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_changed_size_line_fails(case: tuple[str, str, str, str]) -> None:
    text, _, v = _load(case)
    assert "\n300\n" in text
    with pytest.raises(SignatureError):
        open_note(text.replace("\n300\n", "\n301\n", 1), [v])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_changed_timestamp_fails(case: tuple[str, str, str, str]) -> None:
    text, _, v = _load(case)
    b64 = _cosig_line(text, case[2]).split(" ")[2]
    raw = base64.b64decode(b64)
    for ts in (VECTOR_TIME + 1, VECTOR_TIME - 1, 0):
        forged = raw[:4] + ts.to_bytes(8, "big") + raw[12:]
        bad = text.replace(b64, base64.b64encode(forged).decode())
        with pytest.raises(SignatureError):
            open_note(bad, [v])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_wrong_cosigner_key_does_not_verify(case: tuple[str, str, str, str]) -> None:
    text, _, v = _load(case)
    other = CosignatureSigner.generate(v.name).verifier()
    with pytest.raises(SignatureError, match="no signature from a known key"):
        open_note(text, [other])
    # the same public key as a plain Ed25519 (0x01) note key has another key ID: unknown
    as_note_key = NoteVerifier(v.name, v.public_key)
    assert as_note_key.key_id != v.key_id
    with pytest.raises(SignatureError, match="no signature from a known key"):
        open_note(text, [as_note_key])


def test_key_type_confusion_is_rejected() -> None:
    _, vkey, _ = _load(CASES[0])
    with pytest.raises(FormatError, match="expected 0x01"):
        NoteVerifier.from_vkey(vkey)
    peter = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    with pytest.raises(FormatError, match="expected 0x04"):
        CosignatureVerifier.from_vkey(peter)
    assert isinstance(verifier_from_vkey(peter), NoteVerifier)
    assert isinstance(verifier_from_vkey(vkey), CosignatureVerifier)
    ecdsa = "log.example+00000000+" + base64.b64encode(b"\x02" + bytes(32)).decode()
    with pytest.raises(FormatError, match="found 0x02"):
        verifier_from_vkey(ecdsa)


def test_key_id_mismatch_in_vkey_is_rejected() -> None:
    _, vkey, v = _load(CASES[0])
    name, hex_id, key = vkey.split("+", 2)
    wrong = f"{name}+{int(hex_id, 16) ^ 1:08x}+{key}"
    with pytest.raises(FormatError, match=f"expected {hex_id}"):
        CosignatureVerifier.from_vkey(wrong)
    assert v.key_id.hex() == hex_id


def test_cosigned_message_format() -> None:
    assert cosigned_message("o\n1\nroot\n", 1679315147) == (
        b"cosignature/v1\ntime 1679315147\no\n1\nroot\n"
    )
    assert cosigned_message(b"x\n", 0) == b"cosignature/v1\ntime 0\nx\n"


ORIGIN = "celedger.example.cn/log"
LOG = NoteSigner.from_seed(ORIGIN, b"\x01" * 32)
WITNESS = CosignatureSigner.from_seed("witness.example.cn/w1", b"\x02" * 32)
CP = Checkpoint(ORIGIN, 10, bytes(range(32)))


def test_cosign_line_layout() -> None:
    line = WITNESS.cosign(CP.to_text(), 1700000000)
    assert line.startswith("— witness.example.cn/w1 ")
    assert line.endswith("\n")
    raw = base64.b64decode(line.split(" ")[2])
    assert len(raw) == 4 + 8 + 64
    assert raw[:4] == WITNESS.key_id
    assert int.from_bytes(raw[4:12], "big") == 1700000000
    # the Ed25519 part verifies over exactly the cosignature/v1 message
    pub = Ed25519PrivateKey.from_private_bytes(b"\x02" * 32).public_key()
    pub.verify(raw[12:], b"cosignature/v1\ntime 1700000000\n" + CP.to_text().encode())


def test_log_plus_witness_flow() -> None:
    signed = sign_checkpoint(CP, LOG)
    cosig = WITNESS.cosign(parse_note(signed).text, 1700000000)
    both = add_signature_lines(signed, cosig)
    verifiers: list[Verifier] = [LOG.verifier(), WITNESS.verifier()]
    cp, note = open_checkpoint(both, ORIGIN, verifiers)
    assert cp == CP
    assert [s.name for s in note.verified] == [ORIGIN, WITNESS.name]
    assert note.require_signature(LOG.verifier()).name == ORIGIN
    assert verified_cosignatures(note, verifiers) == [(WITNESS.verifier(), 1700000000)]
    # the witness signature alone is enough to open the note, the log's is then absent
    only_witness = open_note(both, [WITNESS.verifier()])
    with pytest.raises(SignatureError):
        only_witness.require_signature(LOG.verifier())


def test_cosignature_over_other_checkpoint_fails() -> None:
    cosig = WITNESS.cosign(CP.to_text(), 5)
    other = Checkpoint(ORIGIN, 11, bytes(range(32)))
    note = sign_checkpoint(other, LOG) + cosig
    with pytest.raises(SignatureError, match="cosignature by"):
        open_note(note, [LOG.verifier(), WITNESS.verifier()])


@pytest.mark.parametrize(
    "text",
    ["not a checkpoint\n", CP.to_text()[:-1], sign_checkpoint(CP, NoteSigner.generate("x"))],
)
def test_cosign_refuses_non_checkpoints(text: str) -> None:
    with pytest.raises(FormatError):
        WITNESS.cosign(text, 1)


@pytest.mark.parametrize("ts", [-1, MAX_TIMESTAMP + 1, True])
def test_cosign_refuses_bad_timestamps(ts: int) -> None:
    with pytest.raises(FormatError, match="timestamp"):
        WITNESS.cosign(CP.to_text(), ts)


def test_timestamp_above_2_63_is_rejected() -> None:
    ts = MAX_TIMESTAMP + 1
    key = Ed25519PrivateKey.from_private_bytes(b"\x02" * 32)
    msg = b"cosignature/v1\ntime %d\n" % ts + CP.to_text().encode()
    sig = ts.to_bytes(8, "big") + key.sign(msg)
    with pytest.raises(FormatError, match="at most"):
        CosignatureVerifier.timestamp_of(sig)
    line = format_signature_line(WITNESS.name, WITNESS.key_id, sig)
    with pytest.raises(SignatureError, match="timestamp"):
        open_note(CP.to_text() + "\n" + line, [WITNESS.verifier()])


@pytest.mark.parametrize("length", [0, 8, 71, 73])
def test_wrong_length_cosignature_is_rejected(length: int) -> None:
    with pytest.raises(SignatureError, match="expected 72 bytes"):
        WITNESS.verifier().verify(CP.to_text().encode(), bytes(length))


def test_skey_round_trip_and_type_check() -> None:
    skey = WITNESS.to_skey()
    assert skey.startswith("PRIVATE+KEY+witness.example.cn/w1+" + WITNESS.key_id.hex() + "+BA")
    again = CosignatureSigner.from_skey(skey)
    assert again.verifier() == WITNESS.verifier()
    assert again.public_key_bytes == WITNESS.public_key_bytes
    assert "PRIVATE" not in repr(again)
    with pytest.raises(FormatError, match="expected 0x04"):
        CosignatureSigner.from_skey(LOG.to_skey())
    with pytest.raises(FormatError, match="expected 0x01"):
        NoteSigner.from_skey(skey)
    assert CosignatureVerifier.from_vkey(WITNESS.verifier().to_vkey()) == WITNESS.verifier()


def test_generated_cosigner_works() -> None:
    w = CosignatureSigner.generate("w.example")
    note = CP.to_text() + "\n" + w.cosign(CP.to_text(), 1)
    assert open_note(note, [w.verifier()]).verified[0].name == "w.example"


@settings(max_examples=100, deadline=None)
@given(ts=st.integers(0, MAX_TIMESTAMP), delta=st.integers(1, 1000))
def test_timestamp_round_trip_and_tamper(ts: int, delta: int) -> None:
    line = WITNESS.cosign(CP.to_text(), ts)
    note = open_note(CP.to_text() + "\n" + line, [WITNESS.verifier()])
    assert verified_cosignatures(note, [WITNESS.verifier()])[0][1] == ts
    raw = base64.b64decode(line.split(" ")[2])
    other = (ts + delta) % (MAX_TIMESTAMP + 1)
    forged = raw[:4] + other.to_bytes(8, "big") + raw[12:]
    bad = format_signature_line(WITNESS.name, forged[:4], forged[4:])
    with pytest.raises(SignatureError):
        open_note(CP.to_text() + "\n" + bad, [WITNESS.verifier()])
