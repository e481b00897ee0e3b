"""RFC 8785 (JCS) canonicalization: the cyberphone vectors, the refusal policy, properties.

The vector inputs are parsed with Python's ``json`` module as they are: none needs special
handling (every integer literal is small, and the long/odd float literals in ``values.json``
parse to the same doubles an ECMAScript parser produces).
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from ledger.canonical import MAX_SAFE_INTEGER, canonicalize, digest, parse_json
from ledger.errors import FormatError
from tests.paths import VECTORS

JCS = VECTORS / "jcs-rfc8785"
NAMES = sorted(p.stem for p in (JCS / "input").glob("*.json"))


def test_all_vector_sets_present() -> None:
    # Guards against a silently empty parametrization if the shared folder moves.
    assert NAMES == ["arrays", "french", "structures", "unicode", "values", "weird"]


@pytest.mark.parametrize("name", NAMES)
def test_vector_output_bytes(name: str) -> None:
    data = json.loads((JCS / "input" / f"{name}.json").read_bytes())
    expected = (JCS / "output" / f"{name}.json").read_bytes()
    # The output files carry no trailing newline: they are the canonical bytes exactly.
    assert not expected.endswith(b"\n")
    assert canonicalize(data) == expected


@pytest.mark.parametrize("name", NAMES)
def test_vector_outhex(name: str) -> None:
    data = json.loads((JCS / "input" / f"{name}.json").read_bytes())
    hex_text = (JCS / "outhex" / f"{name}.txt").read_text()
    expected = bytes.fromhex("".join(hex_text.split()))
    assert canonicalize(data) == expected
    assert expected == (JCS / "output" / f"{name}.json").read_bytes()


@pytest.mark.parametrize("name", NAMES)
def test_vector_strict_parser_agrees(name: str) -> None:
    raw = (JCS / "input" / f"{name}.json").read_bytes()
    assert parse_json(raw) == json.loads(raw)


def test_digest_is_sha256_of_canonical_form() -> None:
    value = {"b": [1, 2.5, None], "a": "x"}
    assert digest(value) == hashlib.sha256(b'{"a":"x","b":[1,2.5,null]}').digest()


# ES6 number formatting samples (IEEE-754 bits -> expected), from the vector set's README.
@pytest.mark.parametrize(
    ("bits", "expected"),
    [
        ("4340000000000001", b"9007199254740994"),
        ("4340000000000002", b"9007199254740996"),
        ("444b1ae4d6e2ef50", b"1e+21"),
        ("3eb0c6f7a0b5ed8d", b"0.000001"),
        ("3eb0c6f7a0b5ed8c", b"9.999999999999997e-7"),
        ("8000000000000000", b"0"),
        ("0000000000000000", b"0"),
    ],
)
def test_es6_number_samples(bits: str, expected: bytes) -> None:
    (value,) = struct.unpack(">d", bytes.fromhex(bits))
    if not MAX_SAFE_INTEGER < abs(value) < 1e21:
        assert canonicalize(value) == expected
    else:
        # The library formats it as ES6 does, but the policy refuses an integer literal beyond
        # the safe range (see test_floats_with_unsafe_integer_canonical_form_refused).
        assert rfc8785.dumps(value) == expected
        with pytest.raises(FormatError, match="reads back as an integer"):
            canonicalize(value)


def test_numbers_canonicalize_by_value_not_type() -> None:
    assert canonicalize([56, 56.0, 5.6e1, -0.0]) == b"[56,56,56,0]"


# --- refusal policy -------------------------------------------------------------------------


def test_safe_integer_bounds() -> None:
    assert canonicalize(MAX_SAFE_INTEGER) == b"9007199254740991"
    assert canonicalize(-MAX_SAFE_INTEGER) == b"-9007199254740991"
    for n in (MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1, 10**30):
        with pytest.raises(FormatError, match=r"at \$: expected an integer within"):
            canonicalize(n)


def test_big_integer_error_names_path() -> None:
    with pytest.raises(FormatError, match=r"at \$\['a'\]\[1\]\['n'\].*found 9007199254740993"):
        canonicalize({"a": [0, {"n": 2**53 + 1}]})


def test_big_integer_from_parsed_json_is_refused() -> None:
    # json.loads turns this literal into an exact Python int; JCS would round it, so refuse.
    with pytest.raises(FormatError, match="send larger quantities as strings"):
        canonicalize(json.loads('{"credits": 12345678901234567890}'))


@pytest.mark.parametrize("value", [1e20, -9007199254740992.0, 1.2345678901234568e20])
def test_floats_with_unsafe_integer_canonical_form_refused(value: float) -> None:
    # JCS would write these as integer literals beyond 2**53 - 1, which read back as ints that
    # the policy refuses: accepting them would make canonicalization non-idempotent.
    with pytest.raises(FormatError, match="reads back as an integer beyond the safe range"):
        canonicalize(value)


def test_large_floats_in_exponent_form_accepted() -> None:
    assert canonicalize([1e21, -1e30, 1.7976931348623157e308]) == (
        b"[1e+21,-1e+30,1.7976931348623157e+308]"
    )
    assert canonicalize(float(MAX_SAFE_INTEGER)) == b"9007199254740991"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_refused(value: float) -> None:
    with pytest.raises(FormatError, match=r"at \$\[0\]: expected a finite number"):
        canonicalize([value])


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        ({1: "x"}, r"expected string object keys, found int key 1"),
        ({"k": b"x"}, r"at \$\['k'\]: expected a JSON value .* found bytes"),
        ({"k": {1, 2}}, r"found set"),
        (["\ud800"], r"at \$\[0\]: expected UTF-8 encodable text"),
        ({"\udfff": 1}, r"expected a UTF-8 encodable key"),
    ],
)
def test_unrepresentable_values_refused(value: object, pattern: str) -> None:
    with pytest.raises(FormatError, match=pattern):
        canonicalize(value)


def test_deep_nesting_is_format_error() -> None:
    value: Any = []
    for _ in range(100_000):
        value = [value]
    with pytest.raises(FormatError, match="nesting"):
        canonicalize(value)


def test_parse_json_rejects_duplicate_keys_and_constants() -> None:
    with pytest.raises(FormatError, match="expected unique object keys, found 'a' twice"):
        parse_json('{"a": 1, "a": 2}')
    with pytest.raises(FormatError, match="non-JSON literal NaN"):
        parse_json("[NaN]")
    with pytest.raises(FormatError, match="invalid JSON"):
        parse_json("{")


# --- properties -----------------------------------------------------------------------------

# Accepted floats: everything finite except magnitudes in (2**53 - 1, 1e21), whose canonical
# form is an integer literal beyond the safe range (refused by policy, tested above).
_floats = st.floats(allow_nan=False, allow_infinity=False).filter(
    lambda f: not MAX_SAFE_INTEGER < abs(f) < 1e21
)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | _floats
    | st.text()
)
_json = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


@given(_json)
def test_idempotent_on_json_round_trip(value: object) -> None:
    once = canonicalize(value)
    assert canonicalize(json.loads(once)) == once
    assert canonicalize(parse_json(once)) == once


@given(st.dictionaries(st.text(max_size=8), _json, max_size=8), st.randoms())
def test_key_order_independent(value: dict[str, object], rnd: Any) -> None:
    items = list(value.items())
    rnd.shuffle(items)
    assert canonicalize(dict(items)) == canonicalize(value)


@given(_json)
def test_canonical_form_is_valid_utf8_json(value: object) -> None:
    text = canonicalize(value).decode("utf-8")
    assert json.loads(text) == json.loads(json.dumps(value))


# The fast path (plain values serialised by the standard library) must be byte for byte what
# the rfc8785 package writes: generated plain values — ASCII keys, any text including control
# characters, quotes, backslashes, non-BMP characters and U+2028 — compared on both paths.
_plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | st.text(st.characters(exclude_categories=("Cs",)))
    | st.sampled_from(["\x00\x1f\x7f", '"\\/', "\u2028\u2029", "𠮷䶮", "\b\f\n\r\t"]),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.text(st.characters(max_codepoint=127), max_size=8), children, max_size=5
        )
    ),
    max_leaves=40,
)


@given(_plain)
def test_fast_path_is_rfc8785(value: object) -> None:
    import rfc8785

    from ledger.canonical import _plain_json

    fast = _plain_json(value)
    assert fast is not None
    assert fast == rfc8785.dumps(value)  # type: ignore[arg-type]
    assert canonicalize(value) == fast


def test_fast_path_declines_what_it_cannot_prove() -> None:
    from ledger.canonical import _plain_json

    for value in ({"é": 1}, {"a": 1.5}, [2**53], {1: "x"}, ("t",), "\ud800"):
        assert _plain_json(value) is None, value
