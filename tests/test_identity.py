"""Citizen ID numbers (GB 11643-1999) and masking for public display."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cn import ric

from ledger.errors import LedgerError
from ledger.identity import (
    EARLIEST_BIRTH_DATE,
    ID_BIRTHDATE,
    ID_CHARSET,
    ID_CHECKSUM,
    ID_LEGACY15,
    ID_LENGTH,
    IdentityError,
    birth_date,
    check_character,
    mask_id,
    mask_name,
    sex,
    validate_id_number,
)

TODAY = date(2026, 6, 1)

# Computed here from the standard, independently of the code under test.
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def gb_check(first17: str) -> str:
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]


def with_check(first17: str) -> str:
    return first17 + gb_check(first17)


def reason(value: str, today: date = TODAY) -> str:
    with pytest.raises(IdentityError) as info:
        validate_id_number(value, today=today)
    assert info.value.field == "id_number"
    return info.value.code


def test_error_family() -> None:
    assert issubclass(IdentityError, LedgerError)
    assert {ID_LENGTH, ID_LEGACY15, ID_CHARSET, ID_CHECKSUM, ID_BIRTHDATE} == {
        "id.length",
        "id.legacy15",
        "id.charset",
        "id.checksum",
        "id.birthdate",
    }


@pytest.mark.parametrize("number", ["11010519491231002X", "440524188001010014"])
def test_domain_examples_are_valid(number: str) -> None:
    assert validate_id_number(number, today=TODAY) == number


def test_example_details() -> None:
    assert birth_date("11010519491231002X") == date(1949, 12, 31)
    assert sex("11010519491231002X") == "F"
    assert birth_date("440524188001010014") == date(1880, 1, 1)
    assert sex("440524188001010014") == "M"


def test_normalisation() -> None:
    assert validate_id_number(" 11010519491231002x\n") == "11010519491231002X"
    # Full-width characters, as typed with a Chinese input method.
    assert validate_id_number("１１０１０５１９４９１２３１００２ｘ") == "11010519491231002X"


def test_bad_checksum_says_expected_and_found() -> None:
    with pytest.raises(IdentityError) as info:
        validate_id_number("360426199101010072")
    assert info.value.code == ID_CHECKSUM
    assert "should be 1; found 2" in str(info.value)
    assert "校验码应为 1，实为 2" in str(info.value)


def test_messages_never_repeat_the_number() -> None:
    for bad in ["360426199101010072", "11010519491231002", with_check("11010520991231002")]:
        with pytest.raises(IdentityError) as info:
            validate_id_number(bad, today=TODAY)
        assert bad[:12] not in str(info.value)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("", ID_LENGTH),
        ("11010519491231002", ID_LENGTH),
        ("11010519491231002XX", ID_LENGTH),
        ("110105491231002", ID_LEGACY15),
        ("11010519491231O02X", ID_CHARSET),
        ("110105 19491231002X", ID_CHARSET),
        ("1101051949123100X2", ID_CHARSET),
        ("X10105194912310021", ID_CHARSET),
        ("360426199101010072", ID_CHECKSUM),
        ("11010519491231002Y", ID_CHARSET),
    ],
)
def test_refusals(value: str, code: str) -> None:
    assert reason(value) == code


def test_legacy_number_asks_for_18_digits() -> None:
    with pytest.raises(IdentityError, match="18-digit") as info:
        validate_id_number("110105491231002")
    assert "18位" in str(info.value)


def test_stray_space_is_named() -> None:
    with pytest.raises(IdentityError, match="character 7 should be a digit") as info:
        validate_id_number("110105 19491231002X")
    assert "found ' '" in str(info.value)


@pytest.mark.parametrize("birth", ["19990230", "19991301", "19990001", "20230229", "19990100"])
def test_impossible_birth_dates(birth: str) -> None:
    number = with_check("110105" + birth + "002")
    assert reason(number) == ID_BIRTHDATE
    with pytest.raises(IdentityError, match=f"birth date {birth} is not a calendar date"):
        validate_id_number(number)


def test_leap_day_is_fine() -> None:
    assert validate_id_number(with_check("11010520000229002"), today=TODAY)


def test_future_birth_date() -> None:
    number = with_check("11010520260602002")
    assert reason(number, today=TODAY) == ID_BIRTHDATE
    assert validate_id_number(number, today=date(2026, 6, 2)) == number
    with pytest.raises(IdentityError, match="in the future"):
        validate_id_number(number, today=TODAY)


def test_too_early_birth_date() -> None:
    assert date(1800, 1, 1) == EARLIEST_BIRTH_DATE
    assert reason(with_check("11010517991231002")) == ID_BIRTHDATE
    assert validate_id_number(with_check("11010518000101002"))


def test_region_is_not_checked_against_a_table() -> None:
    # 000000 is no region; residence permits (81…, 83…) and new permanent-residence cards (9…)
    # share the format.  Only the check character guards the region digits.
    for region in ("000000", "810000", "830000", "911234"):
        assert validate_id_number(with_check(region + "19900101123"), today=TODAY)


def test_check_character_matches_stdnum() -> None:
    assert check_character("11010519491231002") == "X"
    assert check_character("36042619910101007") == "1"
    with pytest.raises(IdentityError):
        check_character("123")


numbers = st.builds(
    lambda region, born, seq: region + born.strftime("%Y%m%d") + seq,
    st.text("0123456789", min_size=6, max_size=6),
    st.dates(min_value=date(1900, 1, 1), max_value=TODAY),
    st.text("0123456789", min_size=3, max_size=3),
).map(with_check)


@given(numbers)
def test_generated_numbers_validate(number: str) -> None:
    assert validate_id_number(number, today=TODAY) == number
    assert validate_id_number(number.lower(), today=TODAY) == number
    assert birth_date(number, today=TODAY) == date(
        int(number[6:10]), int(number[10:12]), int(number[12:14])
    )
    assert sex(number, today=TODAY) == ("M" if int(number[16]) % 2 else "F")
    assert ric.calc_check_digit(number) == number[-1]


@given(numbers, st.integers(0, 17), st.sampled_from("0123456789X"))
def test_any_single_change_fails(number: str, position: int, char: str) -> None:
    if position < 17 and char == "X":
        char = "0"
    if number[position] == char:
        return
    changed = number[:position] + char + number[position + 1 :]
    with pytest.raises(IdentityError) as info:
        validate_id_number(changed, today=TODAY)
    # Every weight is non-zero modulo 11 (and 11 is prime), so one changed digit always moves
    # the sum; the check character is verified before the birth date.
    assert info.value.code == ID_CHECKSUM


# --- masking ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张三", "张*"),
        ("张小三", "张*三"),
        ("欧阳小明", "欧**明"),
        ("司马相如如", "司***如"),
        ("张", "*"),
        ("  李四 ", "李*"),
        ("阿依古丽·买买提", "阿***·**提"),
        ("John Smith", "J*** ****h"),
        ("Li", "L*"),
        ("", ""),
    ],
)
def test_mask_name(name: str, masked: str) -> None:
    assert mask_name(name) == masked


def test_mask_id() -> None:
    assert mask_id("11010519491231002X") == "1****************X"
    assert mask_id("11010519491231002x") == "1****************X"
    assert mask_id("440524188001010014") == "4****************4"
    assert mask_id("12") == "**"
    assert mask_id("") == ""


@given(numbers)
def test_masked_id_keeps_two_characters(number: str) -> None:
    masked = mask_id(number)
    assert len(masked) == 18
    assert masked.count("*") == 16
    assert number[1:17] not in masked
