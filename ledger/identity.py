"""Citizen ID numbers (居民身份证号码, GB 11643-1999) and masking for public display.

An 18-character number is: 6-digit region code, 8-digit birth date ``YYYYMMDD``, 3-digit sequence
(odd for men, even for women) and a check character: with weights
``7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2`` over the first 17 digits, ``Y = Σ mod 11`` and the check
character is ``"10X98765432"[Y]`` (ISO 7064 MOD 11-2).

`validate_id_number` checks, in this order, and stops at the first failure (each failure has a
stable reason code, see `IdentityError`):

1. ``id.legacy15`` — a 15-digit first-generation number is refused: it has no check character, so
   a typo cannot be detected, and its 2-digit year is ambiguous.  Ask for the 18-digit number.
2. ``id.charset``  — a character other than 0-9 and X (reported with its position, before the
   length, so that a stray space is named as such).
3. ``id.length``   — not 18 characters long.
4. ``id.charset``  — X anywhere but the last place.
5. ``id.checksum`` — the check character must match (the message gives expected and found).
6. ``id.birthdate`` — the 8 digits must be a real calendar date, not in the future and not
   before `EARLIEST_BIRTH_DATE`.

Normalisation before checking: NFKC (so full-width ``１１０…Ｘ`` typed in a spreadsheet becomes
ASCII), surrounding whitespace removed, ``x`` upper-cased.  Nothing else is repaired: inner
spaces or dashes are refused, so the stored number is exactly what was meant.

The region code is **not** checked against a table.  GB/T 2260 codes are renumbered and abolished
as counties merge, while a person keeps the number issued under the old code for life, and
residence permits for Hong Kong, Macao and Taiwan residents (81/82/83…) and the 2023 permanent
residence card for foreigners (9…) share this format.  A strict table check would refuse real
people (python-stdnum's table check refuses the standard's own example ``440524188001010014``).
A typo in the region digits is still caught by the check character.

Error messages never repeat the number: they name only the offending character, the lengths,
or the eight birth-date digits of a number that has just been found invalid, so they can be
logged (PIPL: the ID number itself must never reach a log).

Masking (PIPL): the ID number is sensitive personal information and never appears in anything
public; where a masked form must be shown (a verification page), `mask_id` keeps only the first
and last characters and `mask_name` keeps at most two characters of the name.
"""

from __future__ import annotations

import unicodedata
from datetime import date
from typing import Final, Literal

from stdnum.cn import ric

from ledger.errors import LedgerError

__all__ = [
    "EARLIEST_BIRTH_DATE",
    "ID_BIRTHDATE",
    "ID_CHARSET",
    "ID_CHECKSUM",
    "ID_LEGACY15",
    "ID_LENGTH",
    "IdentityError",
    "birth_date",
    "check_character",
    "mask_id",
    "mask_name",
    "sex",
    "validate_id_number",
]

#: Stable reason codes (an API or a spreadsheet import may map them to its own wording).
ID_LENGTH: Final = "id.length"
ID_LEGACY15: Final = "id.legacy15"
ID_CHARSET: Final = "id.charset"
ID_CHECKSUM: Final = "id.checksum"
ID_BIRTHDATE: Final = "id.birthdate"

#: Birth dates before this are refused as typos in the century digits.  Not 1900: the
#: standard's own worked example, ``440524188001010014``, is born in 1880.  Whether a birth date
#: is plausible for a working professional is a separate, softer question for record intake.
EARLIEST_BIRTH_DATE: Final = date(1800, 1, 1)

_DIGITS: Final = frozenset("0123456789")
_FIELD: Final = "id_number"
_MASK: Final = "*"
# Characters that separate the parts of a name ("阿依古丽·买买提", "Mary-Jane Smith"); kept
# visible when masking because they carry no identity and keep the shape readable.
_NAME_SEPARATORS: Final = frozenset(" ·•・‧.-'")


class IdentityError(LedgerError):
    """An ID number is invalid.  ``code`` is one of the ``ID_*`` constants; ``field`` names the
    input field; the message says what was expected and what was found, in Chinese and English.
    """

    def __init__(self, code: str, message: str, *, field: str = _FIELD) -> None:
        self.code = code
        self.field = field
        super().__init__(f"{field}: {message} [{code}]")


def _normalise(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip().upper()


def check_character(first17: str) -> str:
    """The GB 11643-1999 check character for 17 digits (computed by python-stdnum)."""
    if len(first17) != 17 or not set(first17) <= _DIGITS:
        raise IdentityError(
            ID_CHARSET, f"需要17位数字 / expected 17 digits; found {len(first17)} characters"
        )
    # stdnum's function takes the full number and ignores its last character.
    return str(ric.calc_check_digit(first17 + "0"))


def validate_id_number(value: str, *, today: date | None = None) -> str:
    """Return the normalised 18-character number, or raise `IdentityError` saying why not.

    ``today`` is the reference day for "birth date in the future" (default: the system date).
    """
    number = _normalise(value)
    if len(number) == 15 and set(number) <= _DIGITS:
        raise IdentityError(
            ID_LEGACY15,
            "这是15位旧身份证号码，没有校验码，请提供18位身份证号码 / this is an old 15-digit "
            "number, which has no check digit; please give the 18-digit number",
        )
    for position, char in enumerate(number, start=1):
        # Bad characters first: "expected 18, found 19" would hide the stray space that caused it.
        if char not in _DIGITS and char != "X":
            raise IdentityError(
                ID_CHARSET,
                f"第{position}位应为数字（末位可为X），实为 {char!r} / character {position} "
                f"should be a digit (or X in the last place); found {char!r}",
            )
    if len(number) != 18:
        raise IdentityError(
            ID_LENGTH,
            f"身份证号码应为18位，实为{len(number)}位 / "
            f"expected 18 characters; found {len(number)}",
        )
    if "X" in number[:17]:
        position = number.index("X") + 1
        raise IdentityError(
            ID_CHARSET,
            f"X 只能是第18位（校验码），却出现在第{position}位 / X may only be the 18th "
            f"(check) character; found at position {position}",
        )
    expected_check = check_character(number[:17])
    if number[17] != expected_check:
        raise IdentityError(
            ID_CHECKSUM,
            f"校验码应为 {expected_check}，实为 {number[17]}（号码可能输错）/ check character "
            f"should be {expected_check}; found {number[17]} (probably a typo)",
        )
    _birth_date(number, today or date.today())
    return number


def _birth_date(number: str, today: date) -> date:
    text = number[6:14]
    try:
        born = date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise IdentityError(
            ID_BIRTHDATE,
            f"出生日期 {text} 不是有效日期 / birth date {text} is not a calendar date",
        ) from None
    if born > today:
        raise IdentityError(
            ID_BIRTHDATE,
            f"出生日期 {born} 晚于今天 {today} / birth date {born} is in the future "
            f"(today is {today})",
        )
    if born < EARLIEST_BIRTH_DATE:
        raise IdentityError(
            ID_BIRTHDATE,
            f"出生日期 {born} 早于 {EARLIEST_BIRTH_DATE} / birth date {born} is before "
            f"{EARLIEST_BIRTH_DATE} (a typo in the year?)",
        )
    return born


def birth_date(id_number: str, *, today: date | None = None) -> date:
    """The birth date in a (validated) ID number."""
    number = validate_id_number(id_number, today=today)
    return _birth_date(number, today or date.today())


def sex(id_number: str, *, today: date | None = None) -> Literal["M", "F"]:
    """``"M"`` when the 17th digit (the last of the sequence) is odd, else ``"F"``."""
    number = validate_id_number(id_number, today=today)
    return "M" if int(number[16]) % 2 else "F"


def mask_id(id_number: str) -> str:
    """Mask an ID number for public display: first and last characters kept.

    ``"11010519491231002X"`` → ``"1****************X"``.  Does not validate (masking must work on
    whatever was stored) and never shows more than two characters: inputs of two characters or
    fewer are fully masked.
    """
    number = _normalise(id_number)
    if len(number) <= 2:
        return _MASK * len(number)
    return number[0] + _MASK * (len(number) - 2) + number[-1]


def mask_name(name: str) -> str:
    """Mask a personal name for public display.

    One rule for every script: one character → ``*``; two → first kept (``张三`` → ``张*``);
    more → first and last kept (``张小三`` → ``张*三``, ``欧阳小明`` → ``欧**明``).  Separators
    (space, ``·``, hyphen, …) stay visible and do not count as characters, so
    ``阿依古丽·买买提`` → ``阿***·**提`` and ``John Smith`` → ``J*** ****h``.
    """
    text = unicodedata.normalize("NFC", name).strip()
    letters = [i for i, char in enumerate(text) if char not in _NAME_SEPARATORS]
    if not letters:
        return text
    if len(letters) == 1:
        keep: set[int] = set()
    elif len(letters) == 2:
        keep = {letters[0]}
    else:
        keep = {letters[0], letters[-1]}
    return "".join(
        char if i in keep or char in _NAME_SEPARATORS else _MASK for i, char in enumerate(text)
    )
