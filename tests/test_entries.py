from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.entries import FORBIDDEN_KEYS, decode_entry, encode_entry
from ledger.errors import FormatError


def test_round_trip_is_canonical() -> None:
    data = encode_entry("completion", {"z": 1, "a": "学时", "subject": "ab" * 16})
    assert data.startswith(b'{"a":"')
    assert decode_entry(data).payload["z"] == 1


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "张三"},
        {"x": {"id_number": "1"}},
        {"note": "id 11010519491231002X"},
        {"姓名": "李四"},
    ],
)
def test_personal_data_refused(payload: dict[str, object]) -> None:
    with pytest.raises(FormatError, match="personal data"):
        encode_entry("completion", payload)


def test_unknown_kind_and_version_refused() -> None:
    with pytest.raises(FormatError, match="kind"):
        encode_entry("nonsense", {})
    with pytest.raises(FormatError, match="version"):
        decode_entry(b'{"kind":"completion","v":2}')
    with pytest.raises(FormatError, match="canonical"):
        decode_entry(b'{"v":1, "kind":"completion"}')
    with pytest.raises(FormatError):
        encode_entry("completion", {"v": 3})


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=5).filter(lambda k: k not in {"v", "kind"} | FORBIDDEN_KEYS),
        st.integers(-1000, 1000),
        max_size=5,
    )
)
def test_any_payload_round_trips(payload: dict[str, int]) -> None:
    assert decode_entry(encode_entry("policy", payload)).payload == payload


def test_digests_are_exempt_from_the_id_tripwire() -> None:
    # A real-looking ID number inside a hex digest: the digest passes, the bare number does not.
    digest = "ab" + "440524188001010014" + "c" * 44
    assert len(digest) == 64
    encode_entry("completion", {"subject": digest})
    with pytest.raises(FormatError, match="citizen ID number"):
        encode_entry("completion", {"note": "x 440524188001010014 y"})
    with pytest.raises(FormatError, match="citizen ID number"):
        encode_entry("completion", {"subject": digest.upper()})
