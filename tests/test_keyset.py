"""Issuing key sets: kid derivation (RFC 7638/8037 vector), the rotation and compromise rules,
JWKS and did:web export/import, checked against the verification package's own encoders."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import FormatError
from ledger.keyset import (
    IssuingKeyInfo,
    IssuingSigner,
    KeyCompromisedError,
    KeyNotYetValidError,
    KeyRetiredError,
    KeySet,
    KeySetError,
    UnknownKidError,
    did_web,
    did_web_url,
    jwk_thumbprint,
    kid_for,
    public_multikey,
)
from verification.multibase import decode_ed25519_multikey, encode_ed25519_multikey

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 6, 1, tzinfo=UTC)
T2 = datetime(2026, 9, 1, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def raw(seed: int) -> bytes:
    key = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def info(seed: int, status: str = "active", **times: datetime) -> IssuingKeyInfo:
    pub = raw(seed)
    return IssuingKeyInfo(kid_for(pub), pub, status, times.pop("created_at", T0), **times)  # type: ignore[arg-type]


# --- kid -------------------------------------------------------------------------------------


def test_thumbprint_matches_rfc8037_appendix_a3() -> None:
    # RFC 8037 §A.3: the JWK thumbprint of the Appendix A.2 Ed25519 public key.
    x = base64.urlsafe_b64decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
    thumbprint = base64.urlsafe_b64encode(jwk_thumbprint(x)).rstrip(b"=").decode()
    assert thumbprint == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    assert kid_for(x) == thumbprint[:8]  # 6 bytes = 8 base64url characters


@given(st.binary(min_size=32, max_size=32))
def test_multikey_agrees_with_verification_encoder(seed: bytes) -> None:
    key = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    pub = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert public_multikey(pub) == encode_ed25519_multikey(key)


def test_kid_must_be_derived_from_the_key() -> None:
    with pytest.raises(
        FormatError, match=r"kid: expected '.{8}' \(derived from its public key\), found 'AAAAAAAA'"
    ):
        IssuingKeyInfo("AAAAAAAA", raw(1), "active", T0)
    with pytest.raises(FormatError, match="expected 32 raw bytes, found 31"):
        IssuingKeyInfo(kid_for(raw(1)), raw(1)[:31], "active", T0)
    key = Ed25519PrivateKey.from_private_bytes(b"\x01" * 32)
    with pytest.raises(FormatError, match="issuing signer kid"):
        IssuingSigner(kid_for(raw(2)), key)
    signer = IssuingSigner(kid_for(raw(1)), key)
    assert signer.public_key_bytes == raw(1)
    assert "private" not in repr(signer).lower() and signer.kid in repr(signer)


# --- the rules -------------------------------------------------------------------------------


def test_active_key_verifies_from_its_creation() -> None:
    ks = KeySet((info(1),))
    assert ks.key_for(ks.keys[0].kid, T0).public_key == raw(1)
    assert ks.key_for(ks.keys[0].kid, T2).status == "active"
    assert ks.active == ks.keys[0]


def test_unknown_kid_names_expected_and_found() -> None:
    ks = KeySet((info(1),))
    with pytest.raises(
        UnknownKidError,
        match=rf"unknown issuing key 'nope1234': expected one of \['{ks.keys[0].kid}'\]",
    ):
        ks.key_for("nope1234", T1)


def test_retired_key_verifies_before_rotation_only() -> None:
    old = info(1, "retired", retired_at=T1)
    new = info(2, created_at=T1)
    ks = KeySet((old, new))
    assert ks.key_for(old.kid, T1 - SECOND) == old  # signed before the rotation: still valid
    with pytest.raises(
        KeyRetiredError,
        match="retired at 2026-06-01T00:00:00Z: expected a signature made before then, found one made at 2026-06-01T00:00:00Z",
    ):
        ks.key_for(old.kid, T1)  # at the rotation instant the new key signs
    with pytest.raises(KeyRetiredError):
        ks.key_for(old.kid, T2)
    assert ks.key_for(new.kid, T1) == new and ks.active == new


def test_compromised_key_verifies_before_compromise_only() -> None:
    bad = info(1, "compromised", compromised_at=T1)
    ks = KeySet((bad,))
    assert ks.key_for(bad.kid, T1 - SECOND) == bad
    with pytest.raises(
        KeyCompromisedError,
        match="compromised from 2026-06-01T00:00:00Z: expected a signature made before then, found one made at 2026-06-01T00:00:00Z",
    ):
        ks.key_for(bad.kid, T1)
    with pytest.raises(KeyCompromisedError):
        ks.key_for(bad.kid, T2)
    assert ks.active is None


def test_retired_then_compromised_reports_the_compromise() -> None:
    key = info(1, "compromised", retired_at=T2, compromised_at=T1)
    ks = KeySet((key,))
    assert ks.key_for(key.kid, T1 - SECOND) == key
    with pytest.raises(KeyCompromisedError):
        ks.key_for(key.kid, T2 + SECOND)  # both apply: the compromise is the one to report


def test_no_signature_before_the_key_existed() -> None:
    ks = KeySet((info(1, created_at=T1),))
    with pytest.raises(
        KeyNotYetValidError,
        match="created at 2026-06-01T00:00:00Z: expected a signature made since then, found one claiming 2026-05-31T23:59:59Z",
    ):
        ks.key_for(ks.keys[0].kid, T1 - SECOND)


def test_signing_time_must_be_aware() -> None:
    ks = KeySet((info(1),))
    with pytest.raises(FormatError, match="timezone-aware"):
        ks.key_for(ks.keys[0].kid, datetime(2026, 7, 1))


def test_key_set_errors_are_one_family() -> None:
    for cls in (UnknownKidError, KeyRetiredError, KeyCompromisedError, KeyNotYetValidError):
        assert issubclass(cls, KeySetError)


@pytest.mark.parametrize(
    ("status", "times", "message"),
    [
        ("active", {"retired_at": T1}, "no retired_at/compromised_at on an active key"),
        ("retired", {}, "retired key to have retired_at"),
        (
            "retired",
            {"retired_at": T1, "compromised_at": T1},
            "retired key to have retired_at and no compromised_at",
        ),
        ("compromised", {}, "compromised key to have compromised_at"),
        ("retired", {"retired_at": T0 - SECOND}, "retired_at >= created_at"),
        ("active", {"created_at": T0.replace(microsecond=5)}, "whole seconds"),
        ("active", {"created_at": datetime(2026, 1, 1)}, "timezone-aware"),
        ("expired", {}, "status: expected one of"),
    ],
)
def test_status_must_agree_with_times(
    status: str, times: dict[str, datetime], message: str
) -> None:
    with pytest.raises(FormatError, match=message):
        info(1, status, **times)


def test_set_has_unique_kids_and_at_most_one_active() -> None:
    with pytest.raises(FormatError, match="unique kids"):
        KeySet((info(1), info(1, "retired", retired_at=T1)))
    with pytest.raises(FormatError, match="at most one active key"):
        KeySet((info(1), info(2)))


# --- JWKS ------------------------------------------------------------------------------------


def sample() -> KeySet:
    return KeySet(
        (
            info(1, "retired", retired_at=T1),
            info(2, "compromised", created_at=T1, retired_at=T2, compromised_at=T1 + SECOND),
            info(3, created_at=T2),
        )
    )


def test_jwks_round_trip_with_status_and_times() -> None:
    ks = sample()
    jwks = ks.to_jwks()
    first = jwks["keys"][0]
    assert first == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": base64.urlsafe_b64encode(raw(1)).rstrip(b"=").decode(),
        "kid": kid_for(raw(1)),
        "use": "sig",
        "alg": "EdDSA",
        "status": "retired",
        "created_at": "2026-01-01T00:00:00Z",
        "retired_at": "2026-06-01T00:00:00Z",
    }
    assert jwks["keys"][1]["compromised_at"] == "2026-06-01T00:00:01Z"
    assert KeySet.from_jwks(jwks) == ks
    assert KeySet.from_jwks(json.dumps(jwks)) == ks
    assert KeySet.from_jwks(json.dumps(jwks).encode()) == ks


def jwk(**changes: object) -> dict[str, object]:
    out: dict[str, object] = sample().to_jwks()["keys"][2]
    out.update(changes)
    return {"keys": [{k: v for k, v in out.items() if v is not None}]}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"d": "secret"}, "PRIVATE key material"),
        ({"kty": "EC"}, "kty: expected 'OKP', found 'EC'"),
        ({"crv": "X25519"}, "crv: expected 'Ed25519'"),
        ({"use": "enc"}, "use: expected 'sig'"),
        ({"use": None}, "use: expected 'sig', found None"),
        ({"alg": "ES256"}, "alg: expected 'EdDSA'"),
        ({"kid": "short"}, "kid: expected 8 base64url characters"),
        ({"kid": kid_for(raw(4))}, "derived from its public key"),
        ({"x": base64.b64encode(raw(3)).decode()}, "unpadded base64url"),
        ({"status": "revoked"}, "status: expected one of"),
        ({"created_at": "2026-01-01"}, "created_at: expected a UTC time"),
        ({"created_at": "2026-02-30T00:00:00Z"}, "real calendar time"),
    ],
)
def test_jwks_import_is_strict(changes: dict[str, object], message: str) -> None:
    with pytest.raises(FormatError, match=message):
        KeySet.from_jwks(jwk(**changes))


def test_jwks_x_must_be_canonical() -> None:
    x = base64.urlsafe_b64encode(raw(3)).rstrip(b"=").decode()
    # 32 bytes leave 4 unused bits in the last character; setting one is another spelling.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    other = x[:-1] + alphabet[alphabet.index(x[-1]) + 1]
    assert base64.urlsafe_b64decode(other + "=") == raw(3)
    with pytest.raises(FormatError, match="canonical base64url"):
        KeySet.from_jwks(jwk(x=other))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "invalid JSON"),
        ("[]", "JWKS: expected an object"),
        ('{"keys": {}}', "JWKS: expected an object with a 'keys' list"),
        ('{"keys": [], "keys": []}', "unique object keys"),
    ],
)
def test_jwks_must_be_an_object_with_keys(text: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        KeySet.from_jwks(text)


# --- did:web ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "did", "back"),
    [
        (
            "https://celedger.example.cn",
            "did:web:celedger.example.cn",
            "https://celedger.example.cn",
        ),
        (
            "https://Celedger.Example.CN/",
            "did:web:celedger.example.cn",
            "https://celedger.example.cn",
        ),
        ("celedger.example.cn", "did:web:celedger.example.cn", "https://celedger.example.cn"),
        # the did:web spec's examples: a port is percent-encoded, path segments become ':'
        ("https://example.com:3000", "did:web:example.com%3A3000", "https://example.com:3000"),
        (
            "https://w3c-ccg.github.io/user/alice",
            "did:web:w3c-ccg.github.io:user:alice",
            "https://w3c-ccg.github.io/user/alice",
        ),
        ("http://testserver", "did:web:testserver", "https://testserver"),
    ],
)
def test_did_web(url: str, did: str, back: str) -> None:
    assert did_web(url) == did
    assert did_web_url(did) == back


@pytest.mark.parametrize("bad", ["did:key:z6Mk", "did:web:", "did:web:a.cn#k", "did:web:a.cn::x"])
def test_did_web_url_refuses_other_dids(bad: str) -> None:
    with pytest.raises(FormatError, match="did:web"):
        did_web_url(bad)


@pytest.mark.parametrize("bad", ["https://", "https://a.cn/?q=1", "https://u:p@a.cn"])
def test_did_web_refuses_odd_urls(bad: str) -> None:
    with pytest.raises(FormatError, match="public URL"):
        did_web(bad)


def test_did_document() -> None:
    ks = sample()
    did = "did:web:celedger.example.cn"
    doc = ks.did_document(did)
    assert doc["@context"] == [
        "https://www.w3.org/ns/did/v1",
        "https://w3id.org/security/multikey/v1",
    ]
    assert doc["id"] == did
    methods = doc["verificationMethod"]
    assert [m["id"] for m in methods] == [f"{did}#{k.kid}" for k in ks.keys]
    for method, key in zip(methods, ks.keys, strict=True):
        assert method["type"] == "Multikey" and method["controller"] == did
        pub = decode_ed25519_multikey(method["publicKeyMultibase"])
        assert pub.public_bytes(Encoding.Raw, PublicFormat.Raw) == key.public_key
    retired, compromised, active = methods
    # Retired keys still assert (old credentials keep verifying); the compromised one does not,
    # and carries the Controlled Identifiers 'revoked' time.
    assert doc["assertionMethod"] == [retired["id"], active["id"]]
    assert compromised["revoked"] == "2026-06-01T00:00:01Z" and "revoked" not in retired
    with pytest.raises(FormatError):
        ks.did_document("did:key:z6Mkabc")
