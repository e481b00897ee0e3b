"""The QR token: layout, strict parsing, every one-character change rejected, key rules,
URL round trip in either case, and the QR version it needs."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime, timedelta

import pytest
import qrcode
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.keyset import IssuingKeyInfo, IssuingSigner, KeySet
from verification.errors import (
    EncodingError,
    KeyCompromisedError,
    KeyNotYetValidError,
    KeyResolutionError,
    KeyRetiredError,
    SignatureError,
    TokenFormatError,
    UnknownKeyError,
    VerificationError,
)
from verification.token import (
    DOMAIN,
    TOKEN_BYTES,
    TOKEN_CHARS,
    TokenClaims,
    issue_token,
    parse_token,
    token_from_url,
    token_url,
    verify_token,
)

B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 6, 1, tzinfo=UTC)
SIGNER = IssuingSigner.generate()
OTHER = IssuingSigner.generate()


def key(signer: IssuingSigner, status: str = "active", **times: datetime) -> IssuingKeyInfo:
    created = times.pop("created_at", T0)
    return IssuingKeyInfo(signer.kid, signer.public_key_bytes, status, created, **times)  # type: ignore[arg-type]


KEYS = KeySet((key(SIGNER),))


def claims(at: datetime = T1, signer: IssuingSigner = SIGNER, index: int = 1234) -> TokenClaims:
    return TokenClaims(
        record_token=bytes(range(16)),
        ledger_index=index,
        issued_at=int(at.timestamp()),
        kid=signer.kid,
    )


TOKEN = issue_token(claims(), SIGNER)


def test_round_trip_and_layout() -> None:
    assert len(TOKEN) == TOKEN_CHARS == 159 and TOKEN_BYTES == 99
    assert set(TOKEN) <= set(B32)
    got = verify_token(TOKEN, KEYS)
    assert got == claims()
    assert got.issued_at_datetime == T1
    data = base64.b32decode(TOKEN + "=")
    assert data[0] == 1 and data[1:17] == bytes(range(16))
    assert int.from_bytes(data[17:25], "big") == 1234
    assert int.from_bytes(data[25:29], "big") == int(T1.timestamp())
    assert base64.urlsafe_b64encode(data[29:35]).decode() == SIGNER.kid
    parsed, signature = parse_token(TOKEN)
    assert parsed == got and len(signature) == 64


def test_signature_is_domain_separated() -> None:
    body = claims().to_bytes()
    assert (
        SIGNER.private_key.public_key().verify(base64.b32decode(TOKEN + "=")[35:], DOMAIN + body)
        is None
    )
    # The same claims signed without the prefix (as some other protocol might) do not verify.
    bare = base64.b32encode(body + SIGNER.sign(body)).decode().rstrip("=")
    with pytest.raises(SignatureError, match="token signature does not verify"):
        verify_token(bare, KEYS)


def test_every_one_character_change_of_a_token_is_rejected() -> None:
    # Exhaustive for one token: each of 159 positions, each of the other 31 base32 characters.
    for i, original in enumerate(TOKEN):
        for c in B32:
            if c != original:
                with pytest.raises(VerificationError):
                    verify_token(TOKEN[:i] + c + TOKEN[i + 1 :], KEYS)


@settings(max_examples=300, deadline=None)
@given(
    record=st.binary(min_size=16, max_size=16),
    index=st.integers(0, 2**64 - 1),
    seconds=st.integers(int(T0.timestamp()), 2**32 - 1),
    position=st.integers(0, TOKEN_CHARS - 1),
    replacement=st.characters(codec="utf-8"),
)
def test_any_one_character_change_is_rejected(
    record: bytes, index: int, seconds: int, position: int, replacement: str
) -> None:
    token = issue_token(TokenClaims(record, index, seconds, SIGNER.kid), SIGNER)
    assert verify_token(token, KEYS).ledger_index == index
    changed = token[:position] + replacement + token[position + 1 :]
    if changed != token:
        with pytest.raises(VerificationError):
            verify_token(changed, KEYS)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (TOKEN.lower(), "only upper-case base32 characters A-Z and 2-7, found 'a' at position 0"),
        (TOKEN + "=", r"found '=' at position 159"),
        (TOKEN[:-1], "expected 159 characters, found 158"),
        (TOKEN + "A", "expected 159 characters, found 160"),
        ("", "expected 159 characters, found 0"),
        (" " + TOKEN[1:], r"found ' ' at position 0"),
    ],
)
def test_malformed_tokens(text: str, message: str) -> None:
    with pytest.raises(TokenFormatError, match=message):
        verify_token(text, KEYS)


def test_unknown_version_is_named() -> None:
    data = bytearray(base64.b32decode(TOKEN + "="))
    data[0] = 2
    text = base64.b32encode(bytes(data)).decode().rstrip("=")
    with pytest.raises(TokenFormatError, match="token version: expected 1, found 2"):
        parse_token(text)


def test_non_canonical_last_character_is_rejected() -> None:
    # 99 bytes fill 792 of the 795 bits of 159 characters: the last character has 3 spare
    # bits.  Setting one decodes to the same bytes, so without this rule a token would have
    # eight spellings and a changed character could still verify.
    last = B32.index(TOKEN[-1])
    other = TOKEN[:-1] + B32[last ^ 1]
    assert base64.b32decode(other + "=") == base64.b32decode(TOKEN + "=")
    with pytest.raises(TokenFormatError, match="canonical base32"):
        parse_token(other)
    assert isinstance(TokenFormatError("x"), EncodingError)


def test_not_text() -> None:
    with pytest.raises(TokenFormatError, match="expected text, found bytes"):
        parse_token(TOKEN.encode())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"record_token": b"\x00" * 15}, "record token: expected 16 bytes, found 15 bytes"),
        ({"ledger_index": -1}, r"ledger index: expected an integer in \[0, 2\*\*64\)"),
        ({"ledger_index": 2**64}, "ledger index"),
        ({"issued_at": 2**32}, r"issued-at: expected an integer in \[0, 2\*\*32\)"),
        ({"issued_at": True}, "issued-at"),
        ({"kid": "abc"}, "kid: expected 6 bytes as 8 base64url characters"),
        ({"version": 2}, "version: expected 1, found 2"),
    ],
)
def test_claims_are_checked(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "record_token": b"\x00" * 16,
        "ledger_index": 0,
        "issued_at": 0,
        "kid": SIGNER.kid,
    }
    fields.update(kwargs)
    with pytest.raises(TokenFormatError, match=message):
        TokenClaims(**fields)  # type: ignore[arg-type]


def test_signer_must_match_the_claimed_kid() -> None:
    with pytest.raises(ValueError, match="token kid: expected the signer's kid"):
        issue_token(claims(signer=OTHER), SIGNER)


def test_unknown_key() -> None:
    token = issue_token(claims(signer=OTHER), OTHER)
    with pytest.raises(UnknownKeyError, match=f"unknown issuing key '{OTHER.kid}'"):
        verify_token(token, KEYS)
    assert issubclass(UnknownKeyError, KeyResolutionError)


def test_a_key_signing_under_another_keys_kid_is_caught() -> None:
    body = claims().to_bytes()  # claims SIGNER's kid
    forged = base64.b32encode(body + OTHER.sign(DOMAIN + body)).decode().rstrip("=")
    with pytest.raises(SignatureError, match=f"issuing key '{SIGNER.kid}'"):
        verify_token(forged, KEYS)


def test_rotation_keeps_old_tokens_valid() -> None:
    old = issue_token(claims(at=T1 - timedelta(seconds=1)), SIGNER)
    rotated = KeySet((key(SIGNER, "retired", retired_at=T1), key(OTHER, created_at=T1)))
    assert verify_token(old, rotated).kid == SIGNER.kid
    # The retired key cannot sign at or after the rotation instant...
    with pytest.raises(KeyRetiredError, match="retired at 2026-06-01T00:00:00Z"):
        verify_token(issue_token(claims(at=T1), SIGNER), rotated)
    # ...and its successor verifies from then on.
    assert verify_token(issue_token(claims(at=T1, signer=OTHER), OTHER), rotated).kid == OTHER.kid


def test_compromise_cuts_off_at_the_compromise_time() -> None:
    compromised = KeySet((key(SIGNER, "compromised", compromised_at=T1),))
    assert verify_token(issue_token(claims(at=T1 - timedelta(seconds=1)), SIGNER), compromised)
    with pytest.raises(KeyCompromisedError, match="compromised from 2026-06-01T00:00:00Z"):
        verify_token(issue_token(claims(at=T1), SIGNER), compromised)


def test_no_token_before_the_key_existed() -> None:
    with pytest.raises(KeyNotYetValidError, match="created at 2026-01-01T00:00:00Z"):
        verify_token(issue_token(claims(at=T0 - timedelta(days=1)), SIGNER), KEYS)


# --- URLs and QR -----------------------------------------------------------------------------


def test_url_is_upper_case_and_round_trips_in_either_case() -> None:
    url = token_url("https://celedger.example.cn/", TOKEN)
    assert url == f"HTTPS://CELEDGER.EXAMPLE.CN/V/{TOKEN}"
    assert token_from_url(url) == TOKEN
    assert token_from_url(url.lower()) == TOKEN  # a scanner or browser may lower-case it
    assert token_from_url(f"https://celedger.example.cn/v/{TOKEN.lower()}") == TOKEN
    assert verify_token(token_from_url(url.lower()), KEYS) == claims()


@pytest.mark.parametrize(
    "url",
    [
        f"https://celedger.example.cn/X/{TOKEN}",
        f"https://celedger.example.cn/{TOKEN}",
        "https://celedger.example.cn/V/",
        f"https://celedger.example.cn/V/{TOKEN[:-1]}",
    ],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(TokenFormatError):
        token_from_url(url)


def test_token_url_refuses_a_bad_token() -> None:
    with pytest.raises(TokenFormatError):
        token_url("https://celedger.example.cn", TOKEN.lower())


def test_qr_code_uses_alphanumeric_mode_and_a_low_version() -> None:
    url = token_url("https://celedger.example.cn", TOKEN)
    assert len(url) == 189
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(url)
    qr.make(fit=True)
    assert [chunk.mode for chunk in qr.data_list] == [qrcode.util.MODE_ALPHA_NUM]
    assert qr.version == 8  # 49×49 modules at level M; lower-case would need version 10
    lower = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M)
    lower.add_data(url.lower())
    lower.make(fit=True)
    assert lower.version > qr.version


def test_same_claims_same_token_and_record_tokens_differ() -> None:
    # Ed25519 is deterministic: re-printing a certificate gives the same QR code.
    assert issue_token(claims(), SIGNER) == TOKEN
    a = issue_token(
        TokenClaims(secrets.token_bytes(16), 1, int(T1.timestamp()), SIGNER.kid), SIGNER
    )
    b = issue_token(
        TokenClaims(secrets.token_bytes(16), 1, int(T1.timestamp()), SIGNER.kid), SIGNER
    )
    assert a != b and a[0] == b[0] == "A"  # the version byte's first five bits
