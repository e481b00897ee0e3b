"""eddsa-jcs-2022 Data Integrity proofs, multibase/Multikey/did:key, against the W3C vectors.

The vectors (w3c/vc-di-eddsa ``TestVectors/``) give every intermediate value; each is
reproduced byte for byte.  The ``.txt`` files and ``canonDocJCS.txt``/``proofCanonJCS.txt`` end
without a newline, and ``signedJCS.json`` is exactly ``json.dumps(…, indent=2)`` with no
trailing newline; the tests assert that before comparing, so a re-formatted vector fails loudly
instead of being stripped into agreement.  ``keyPair.json`` names the secret key
``privateKeyMultibase`` (the spec text says ``secretKeyMultibase``).
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from tests.paths import VECTORS
from verification.dataintegrity import (
    CRYPTOSUITE,
    PROOF_TYPE,
    ProofInfo,
    build_proof_options,
    create_proof,
    hash_data,
    key_set_resolver,
    proof_configuration,
    resolve_did_key,
    serialize_proof,
    transform,
    verify_proof,
    verify_signature,
)
from verification.errors import (
    CredentialError,
    EncodingError,
    KeyResolutionError,
    ProofValueError,
    VerificationError,
)
from verification.multibase import (
    b58decode,
    b58encode,
    decode_did_key,
    decode_ed25519_multikey,
    decode_ed25519_private_multikey,
    did_key,
    did_key_verification_method,
    encode_ed25519_multikey,
    encode_ed25519_private_multikey,
    multibase_decode,
    multibase_encode,
)

DI = VECTORS / "vc-di-eddsa"
JCS = DI / "eddsa-jcs-2022"
CREATED = "2023-02-24T23:36:38Z"


def _exact_text(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    assert text == text.strip(), f"{path.name}: unexpected surrounding whitespace"
    return text


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@pytest.fixture(scope="module")
def key_pair() -> dict[str, str]:
    data: dict[str, str] = json.loads((DI / "keyPair.json").read_text())
    return data


@pytest.fixture(scope="module")
def private_key(key_pair: dict[str, str]) -> Ed25519PrivateKey:
    return decode_ed25519_private_multikey(key_pair["privateKeyMultibase"])


@pytest.fixture(scope="module")
def public_key(key_pair: dict[str, str]) -> Ed25519PublicKey:
    return decode_ed25519_multikey(key_pair["publicKeyMultibase"])


@pytest.fixture(scope="module")
def vm(public_key: Ed25519PublicKey) -> str:
    return did_key_verification_method(public_key)


@pytest.fixture
def unsigned() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DI / "unsigned.json").read_text())
    return data


@pytest.fixture
def signed() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((JCS / "signedJCS.json").read_text())
    return data


# --- keys ------------------------------------------------------------------------------------


def test_key_pair_multikeys(
    key_pair: dict[str, str], private_key: Ed25519PrivateKey, public_key: Ed25519PublicKey
) -> None:
    # The secret Multikey is 0x8026 ‖ seed; the seed must derive the published public key.
    assert multibase_decode(key_pair["privateKeyMultibase"])[:2] == b"\x80\x26"
    assert multibase_decode(key_pair["publicKeyMultibase"])[:2] == b"\xed\x01"
    assert _raw(private_key.public_key()) == _raw(public_key)
    assert encode_ed25519_multikey(public_key) == key_pair["publicKeyMultibase"]
    assert encode_ed25519_private_multikey(private_key) == key_pair["privateKeyMultibase"]
    assert key_pair["publicKeyMultibase"].startswith("z6Mk")


def test_did_key_forms(public_key: Ed25519PublicKey, key_pair: dict[str, str]) -> None:
    mk = key_pair["publicKeyMultibase"]
    assert did_key(public_key) == f"did:key:{mk}"
    assert did_key_verification_method(public_key) == f"did:key:{mk}#{mk}"
    assert _raw(decode_did_key(f"did:key:{mk}")) == _raw(public_key)
    assert _raw(resolve_did_key(f"did:key:{mk}#{mk}")) == _raw(public_key)


@pytest.mark.parametrize(
    ("vm_text", "pattern"),
    [
        ("did:web:example.com#key-1", "expected a did:key verification method"),
        ("did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2", "fragment repeats the key"),
        (
            "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2#key-1",
            "fragment repeats the key",
        ),
        ("did:key:z6Mk0#z6Mk0", "invalid base58btc character '0'"),
        ("did:key:zabc#zabc", "expected multicodec ed25519-pub"),
        # A secret-key Multikey where a public key belongs: refused with a loud message.
        (
            "did:key:z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq"
            "#z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq",
            "found a SECRET key",
        ),
    ],
)
def test_resolve_did_key_rejects(vm_text: str, pattern: str) -> None:
    with pytest.raises(KeyResolutionError, match=pattern):
        resolve_did_key(vm_text)


def test_multikey_length_checked() -> None:
    short = multibase_encode(b"\xed\x01" + bytes(31))
    with pytest.raises(EncodingError, match=r"expected 34 bytes .* found 33"):
        decode_ed25519_multikey(short)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("", "empty multibase value"),
        ("u4pZ", r"expected 'z' \(base58-btc\), found 'u'"),
        ("z3I", "invalid base58btc character 'I' at position 1"),
        ("zO", "invalid base58btc character 'O' at position 0"),
        ("zl", "invalid base58btc character 'l'"),
        ("z" + "2" * 5000, "too long"),
    ],
)
def test_multibase_decode_rejects(text: str, pattern: str) -> None:
    with pytest.raises(EncodingError, match=pattern):
        multibase_decode(text)


def test_base58_known_values() -> None:
    # Leading zero bytes are leading '1's; "Hello World!" is the common published example.
    assert b58encode(b"") == ""
    assert b58encode(b"\x00\x00\x01") == "112"
    assert b58encode(b"Hello World!") == "2NEpo7TZRRrLZSi2U"
    assert b58decode("2NEpo7TZRRrLZSi2U") == b"Hello World!"
    assert b58decode("111") == b"\x00\x00\x00"


@given(st.binary(max_size=100))
def test_base58_round_trip(data: bytes) -> None:
    assert b58decode(b58encode(data)) == data
    assert multibase_decode(multibase_encode(data)) == data


# --- every intermediate value of the eddsa-jcs-2022 vector -----------------------------------


def test_proof_options_match_vector(unsigned: dict[str, Any], vm: str) -> None:
    expected = json.loads((JCS / "proofConfigJCS.json").read_text())
    options = build_proof_options(unsigned, vm, CREATED)
    assert options == expected
    assert list(options) == list(expected)  # same member order as the vector prints


def test_canonical_proof_config(unsigned: dict[str, Any], vm: str) -> None:
    expected = _exact_text(JCS / "proofCanonJCS.txt").encode()
    assert proof_configuration(build_proof_options(unsigned, vm, CREATED)) == expected


def test_canonical_document(unsigned: dict[str, Any], vm: str) -> None:
    expected = _exact_text(JCS / "canonDocJCS.txt").encode()
    assert transform(unsigned, build_proof_options(unsigned, vm, CREATED)) == expected


def test_hashes(unsigned: dict[str, Any], vm: str) -> None:
    options = build_proof_options(unsigned, vm, CREATED)
    canonical_config = proof_configuration(options)
    transformed = transform(unsigned, options)
    assert hashlib.sha256(transformed).hexdigest() == _exact_text(JCS / "docHashJCS.txt")
    assert hashlib.sha256(canonical_config).hexdigest() == _exact_text(JCS / "proofHashJCS.txt")
    combined = hash_data(transformed, canonical_config)
    assert len(combined) == 64
    assert combined.hex() == _exact_text(JCS / "combinedHashJCS.txt")


def test_signature_and_proof_value(
    unsigned: dict[str, Any], vm: str, private_key: Ed25519PrivateKey, public_key: Ed25519PublicKey
) -> None:
    options = build_proof_options(unsigned, vm, CREATED)
    combined = hash_data(transform(unsigned, options), proof_configuration(options))
    signature = serialize_proof(combined, private_key)
    # Ed25519 is deterministic, so the signature must match the vector exactly.
    assert signature.hex() == _exact_text(JCS / "sigHexJCS.txt")
    assert multibase_encode(signature) == _exact_text(JCS / "sigBTC58JCS.txt")
    verify_signature(combined, signature, public_key)


def test_create_proof_reproduces_signed_document(
    unsigned: dict[str, Any], vm: str, private_key: Ed25519PrivateKey
) -> None:
    before = copy.deepcopy(unsigned)
    secured = create_proof(unsigned, private_key, vm, CREATED)
    assert unsigned == before  # input untouched
    expected_text = (JCS / "signedJCS.json").read_text(encoding="utf-8")
    assert not expected_text.endswith("\n")
    assert secured == json.loads(expected_text)
    # Same members in the same order too: the vector file is json.dumps(indent=2) of it.
    assert json.dumps(secured, indent=2) == expected_text


def test_verify_signed_vector(signed: dict[str, Any], vm: str) -> None:
    info = verify_proof(signed, resolve_did_key)
    assert info == ProofInfo(
        verification_method=vm,
        proof_purpose="assertionMethod",
        created=CREATED,
        expires=None,
    )


def test_verify_with_key_set(signed: dict[str, Any], vm: str, public_key: Ed25519PublicKey) -> None:
    assert verify_proof(signed, key_set_resolver({vm: public_key})).verification_method == vm
    # A plain dict lookup works as a resolver too: KeyError becomes KeyResolutionError.
    assert verify_proof(signed, {vm: public_key}.__getitem__).created == CREATED


# --- rejections ------------------------------------------------------------------------------


def test_tampered_document_rejected(signed: dict[str, Any]) -> None:
    signed["credentialSubject"]["alumniOf"] = "The School of Forgeries"
    with pytest.raises(ProofValueError, match="signature does not verify"):
        verify_proof(signed, resolve_did_key)


def test_tampered_proof_option_rejected(signed: dict[str, Any]) -> None:
    signed["proof"]["created"] = "2023-02-24T23:36:39Z"
    with pytest.raises(ProofValueError, match="signature does not verify"):
        verify_proof(signed, resolve_did_key)


def test_tampered_proof_value_rejected(signed: dict[str, Any]) -> None:
    value: str = signed["proof"]["proofValue"]
    i = 40
    replacement = "2" if value[i] != "2" else "3"
    signed["proof"]["proofValue"] = value[:i] + replacement + value[i + 1 :]
    with pytest.raises(ProofValueError, match="signature does not verify"):
        verify_proof(signed, resolve_did_key)


@pytest.mark.parametrize(
    ("proof_value", "pattern"),
    [
        ("z2HnFSSPPBzR36zdDgK8PbEHe0bR56YF24", "invalid base58btc character '0'"),
        ("u2HnFSSPPBzR36zdDgK8PbEHeXbR56YF24", "expected 'z'"),
        ("z2HnFSSPP", "expected a 64-byte Ed25519 signature, found 6 bytes"),
        ("z" + "2" * 500, "expected at most 128 characters"),
        (12345, "expected a string, found int"),
    ],
)
def test_malformed_proof_value_rejected(
    signed: dict[str, Any], proof_value: object, pattern: str
) -> None:
    signed["proof"]["proofValue"] = proof_value
    with pytest.raises(ProofValueError, match=pattern):
        verify_proof(signed, resolve_did_key)


def test_wrong_key_rejected(signed: dict[str, Any], vm: str) -> None:
    other = Ed25519PrivateKey.from_private_bytes(bytes(range(32))).public_key()
    with pytest.raises(ProofValueError, match="signature does not verify"):
        verify_proof(signed, key_set_resolver({vm: other}))


def test_unknown_verification_method_rejected(signed: dict[str, Any]) -> None:
    with pytest.raises(KeyResolutionError, match="unknown verificationMethod"):
        verify_proof(signed, key_set_resolver({}))
    no_keys: dict[str, Ed25519PublicKey] = {}
    with pytest.raises(KeyResolutionError, match="expected a known key"):
        verify_proof(signed, no_keys.__getitem__)


@pytest.mark.parametrize(
    ("field", "value", "error", "pattern"),
    [
        ("cryptosuite", "eddsa-rdfc-2022", CredentialError, "expected 'eddsa-jcs-2022'"),
        ("type", "Ed25519Signature2020", CredentialError, "expected 'DataIntegrityProof'"),
        ("proofPurpose", "authentication", CredentialError, "expected 'assertionMethod'"),
        ("verificationMethod", 7, CredentialError, "expected a non-empty string"),
        ("created", "2023-02-24 23:36:38", CredentialError, "dateTimeStamp"),
        ("created", "2023-02-24T23:36:38", CredentialError, "dateTimeStamp"),  # no time zone
        ("created", "2023-02-30T23:36:38Z", CredentialError, "real calendar date"),
        ("expires", "soon", CredentialError, "proof expires"),
    ],
)
def test_bad_proof_fields_rejected(
    signed: dict[str, Any], field: str, value: object, error: type[Exception], pattern: str
) -> None:
    signed["proof"][field] = value
    with pytest.raises(error, match=pattern):
        verify_proof(signed, resolve_did_key)


@pytest.mark.parametrize(
    "field", ["type", "cryptosuite", "verificationMethod", "proofPurpose", "proofValue"]
)
def test_missing_proof_fields_rejected(signed: dict[str, Any], field: str) -> None:
    del signed["proof"][field]
    with pytest.raises(VerificationError, match=r"found None|found none"):
        verify_proof(signed, resolve_did_key)


def test_expected_purpose_is_checked(signed: dict[str, Any]) -> None:
    with pytest.raises(CredentialError, match="expected 'authentication', found 'assertionMethod'"):
        verify_proof(signed, resolve_did_key, expected_purpose="authentication")


def test_missing_or_multiple_proofs_rejected(signed: dict[str, Any]) -> None:
    proof = signed.pop("proof")
    with pytest.raises(CredentialError, match="expected a 'proof' member"):
        verify_proof(signed, resolve_did_key)
    signed["proof"] = [proof, proof]
    with pytest.raises(CredentialError, match="found a list of 2"):
        verify_proof(signed, resolve_did_key)
    signed["proof"] = "z…"
    with pytest.raises(CredentialError, match="proof to be a JSON object, found str"):
        verify_proof(signed, resolve_did_key)


def test_context_mismatch_rejected(signed: dict[str, Any]) -> None:
    signed["@context"] = ["https://www.w3.org/ns/credentials/v2"]
    with pytest.raises(CredentialError, match=r"@context mismatch: expected .* to equal"):
        verify_proof(signed, resolve_did_key)
    del signed["@context"]
    with pytest.raises(CredentialError, match=r"@context mismatch: .* found none"):
        verify_proof(signed, resolve_did_key)


def test_context_extension_policy(signed: dict[str, Any]) -> None:
    signed["@context"] = [*signed["@context"], "https://example.org/extra/v1"]
    # Default: fail closed, the appended context is not covered by the signature.
    with pytest.raises(CredentialError, match="@context mismatch"):
        verify_proof(signed, resolve_did_key)
    # Opt-in spec rule (vc-di-eddsa §3.3.2 step 4): a prefix match verifies.
    verify_proof(signed, resolve_did_key, allow_context_extension=True)
    # ... but not when the proof's contexts are not a prefix.
    signed["@context"] = list(reversed(signed["@context"]))
    with pytest.raises(CredentialError, match="to start with the proof's"):
        verify_proof(signed, resolve_did_key, allow_context_extension=True)


def test_unrepresentable_document_is_credential_error(signed: dict[str, Any]) -> None:
    signed["credentialSubject"]["credits"] = 2**60
    with pytest.raises(CredentialError, match="document cannot be canonicalized"):
        verify_proof(signed, resolve_did_key)


# --- create/verify round trip with fresh keys ------------------------------------------------


def test_round_trip_fresh_key(unsigned: dict[str, Any]) -> None:
    key = Ed25519PrivateKey.generate()
    vm = did_key_verification_method(key.public_key())
    secured = create_proof(unsigned, key, vm, "2025-06-01T08:00:00+08:00", "authentication")
    assert secured["proof"]["@context"] == unsigned["@context"]
    assert secured["proof"]["@context"] is not unsigned["@context"]  # a copy, not an alias
    info = verify_proof(secured, resolve_did_key, expected_purpose="authentication")
    assert info.verification_method == vm
    assert info.created == "2025-06-01T08:00:00+08:00"


def test_round_trip_without_context() -> None:
    key = Ed25519PrivateKey.generate()
    vm = did_key_verification_method(key.public_key())
    secured = create_proof({"hello": "世界"}, key, vm, CREATED)
    assert "@context" not in secured["proof"]
    verify_proof(secured, resolve_did_key)


def test_create_proof_refusals(unsigned: dict[str, Any], private_key: Ed25519PrivateKey) -> None:
    vm = "did:example:issuer#key-1"
    with pytest.raises(CredentialError, match="dateTimeStamp"):
        create_proof(unsigned, private_key, vm, "yesterday")
    with pytest.raises(CredentialError, match="verificationMethod: expected a non-empty string"):
        create_proof(unsigned, private_key, "", CREATED)
    secured = create_proof(unsigned, private_key, vm, CREATED)
    with pytest.raises(CredentialError, match="already has a proof"):
        create_proof(secured, private_key, vm, CREATED)
    unsigned["n"] = float("nan")
    with pytest.raises(CredentialError, match="cannot be canonicalized"):
        create_proof(unsigned, private_key, vm, CREATED)


def test_intermediate_steps_check_suite(unsigned: dict[str, Any], vm: str) -> None:
    options = build_proof_options(unsigned, vm, CREATED)
    options["cryptosuite"] = "ecdsa-jcs-2019"
    with pytest.raises(CredentialError, match="cryptosuite: expected 'eddsa-jcs-2022'"):
        proof_configuration(options)
    with pytest.raises(CredentialError, match="cryptosuite: expected 'eddsa-jcs-2022'"):
        transform(unsigned, options)
    assert (PROOF_TYPE, CRYPTOSUITE) == ("DataIntegrityProof", "eddsa-jcs-2022")


def test_verify_signature_rejects_wrong_length(public_key: Ed25519PublicKey) -> None:
    with pytest.raises(ProofValueError, match="expected a 64-byte Ed25519 signature, found 63"):
        verify_signature(bytes(64), bytes(63), public_key)
