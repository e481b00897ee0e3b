"""Ledger entries: typed, versioned records serialised to canonical bytes.

Every entry is a JSON object ``{"v": 1, "kind": <kind>, ...}`` canonicalised with RFC 8785
(JCS), so that anyone can re-derive its leaf hash from its content.  Rules:

1. ``v`` is the entry-format version; readers refuse versions they do not know.
2. ``kind`` is one of ``KINDS``; the payload's own keys may not shadow ``v`` or ``kind``.
3. No personal data, ever: a person appears only as a salted commitment (``subject``),
   never as a name, ID number or employer.  ``check_no_personal_data`` is a tripwire for
   the shapes of a citizen ID number and of a raw name field.
4. An entry is at most 65,535 bytes (the c2sp entry-bundle limit).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ledger.canonical import canonicalize, parse_json
from ledger.errors import FormatError

VERSION = 1

KINDS = frozenset(
    {
        # completions and their life
        "completion",
        "correction",
        "revocation",
        # registry and governance
        "jurisdiction",
        "policy",
        "base.applied",
        "base.recognised",
        "base.rectification",
        "base.reinstated",
        "base.revoked",
        "base.changed",
        "base.rejected",
        "base.key",
        "plan.submitted",
        "plan.approved",
        "plan.returned",
        "plan.filed",
        "inspection",
        "principal.key",
        # issuing keys
        "key.added",
        "key.retired",
        "key.compromised",
        # holder-requested erasure (a random erasure id, the record count and the time: nothing
        # derived from the person)
        "erasure",
    }
)

FORBIDDEN_KEYS = frozenset(
    {"name", "id_number", "idNumber", "employer", "姓名", "身份证号", "工作单位"}
)
_ID_NUMBER = re.compile(
    r"(?<![0-9])[1-9][0-9]{5}(18|19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx](?![0-9])"
)

# A SHA-256 in hex (commitments, document digests) is random: about one in 70,000 of them
# holds an 18-digit run that parses as an ID number.  Such a value is exempt from the tripwire
# — it is the *output* of the hashing that keeps personal data out.
_DIGEST = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Entry:
    kind: str
    payload: Mapping[str, Any]
    v: int = VERSION

    def to_bytes(self) -> bytes:
        return encode_entry(self.kind, self.payload)


def check_no_personal_data(obj: Any, path: str = "$") -> None:
    # One pass collecting every string, one regex search over them all (NUL-separated, so no
    # match can span two values); only on a hit is the value walked again to name the path.
    strings: list[str] = []
    stack: list[tuple[Any, str]] = [(obj, path)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, Mapping):
            for k, v in value.items():
                if k in FORBIDDEN_KEYS:
                    raise FormatError(
                        f"{where}.{k}: personal data may not enter the ledger (field {k!r})"
                    )
                stack.append((v, f"{where}.{k}") if not isinstance(v, str) else (v, ""))
        elif isinstance(value, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(value))
        elif isinstance(value, str) and not _DIGEST.fullmatch(value):
            strings.append(value)
    if strings and _ID_NUMBER.search("\x00".join(strings)):
        _locate_id_number(obj, path)


def _locate_id_number(obj: Any, path: str) -> None:
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            _locate_id_number(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _locate_id_number(v, f"{path}[{i}]")
    elif isinstance(obj, str) and not _DIGEST.fullmatch(obj) and _ID_NUMBER.search(obj):
        raise FormatError(
            f"{path}: looks like a citizen ID number; personal data may not enter the ledger"
        )


def encode_entry(kind: str, payload: Mapping[str, Any]) -> bytes:
    if kind not in KINDS:
        raise FormatError(f"entry kind: expected one of {sorted(KINDS)}, found {kind!r}")
    clash = {"v", "kind"} & set(payload)
    if clash:
        raise FormatError(f"entry payload may not set {sorted(clash)}")
    check_no_personal_data(payload)
    data = canonicalize({"v": VERSION, "kind": kind, **payload})
    if len(data) > 0xFFFF:
        raise FormatError(f"entry is {len(data)} bytes: expected at most 65535")
    return data


def encode_entries(kind: str, payloads: Sequence[Mapping[str, Any]]) -> list[bytes]:
    """`encode_entry` for many payloads of one kind at once (a completion batch).

    Same checks, made once for the whole batch: the personal-data tripwire runs one regex
    search over every string of every payload, and flat payloads of strings and safe integers
    (what a batch holds) are serialised directly — the fast path of `canonicalize`.
    """
    if kind not in KINDS:
        raise FormatError(f"entry kind: expected one of {sorted(KINDS)}, found {kind!r}")
    for payload in payloads:
        if "v" in payload or "kind" in payload:
            raise FormatError("entry payload may not set ['kind', 'v']")
    check_no_personal_data(list(payloads))
    out = []
    for payload in payloads:
        data = canonicalize({"v": VERSION, "kind": kind, **payload})
        if len(data) > 0xFFFF:
            raise FormatError(f"entry is {len(data)} bytes: expected at most 65535")
        out.append(data)
    return out


def decode_entry(data: bytes) -> Entry:
    obj = parse_json(data)
    if not isinstance(obj, dict):
        raise FormatError(f"entry: expected a JSON object, found {type(obj).__name__}")
    v = obj.pop("v", None)
    if v != VERSION:
        raise FormatError(f"entry version: expected {VERSION}, found {v!r}")
    kind = obj.pop("kind", None)
    if kind not in KINDS:
        raise FormatError(f"entry kind: expected one of the known kinds, found {kind!r}")
    if canonicalize({"v": v, "kind": kind, **obj}) != data:
        raise FormatError("entry bytes are not in canonical (RFC 8785) form")
    return Entry(kind=str(kind), payload=obj, v=VERSION)
