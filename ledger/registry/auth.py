"""Principals, API keys and the role-based permission rules.  Pure: no I/O.

Who may act (the whole authorisation model is in ``RULES``):

* an **authority** acts within its jurisdiction *subtree*: the jurisdiction itself and every
  jurisdiction below it (``CN`` covers ``CN-SC`` and ``CN-SC-PZH``; ``CN-SC`` never covers ``CN``);
* a **management unit** acts only on the bases it manages (and in its own name);
* a **base** acts only on itself.

Principal ids are self-describing strings that the ledger uses to name who did something:
``authority:CN-SC``, ``unit:3``, ``base:7``.

API keys: ``cek_`` followed by 256 random bits (base64url); only the SHA-256 of the whole key is
stored, so a database leak reveals no usable key.  Looking a key up by its hash needs no
constant-time comparison: the lookup reveals nothing about a key the caller does not hold.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Final, Literal

from ledger.registry.errors import PermissionDenied

__all__ = [
    "KEY_PREFIX",
    "RULES",
    "Principal",
    "Role",
    "Rule",
    "Scope",
    "authority_id",
    "base_id",
    "generate_key",
    "hash_key",
    "in_subtree",
    "require",
    "unit_id",
]

Role = Literal["authority", "management_unit", "base"]

KEY_PREFIX: Final = "cek_"
_KEY_BYTES: Final = 32


def generate_key() -> str:
    """A fresh API key (256 random bits): shown to its holder once, never stored."""
    return KEY_PREFIX + secrets.token_urlsafe(_KEY_BYTES)


def hash_key(key: str) -> bytes:
    """What is stored for a key: SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(key.encode("utf-8")).digest()


def authority_id(jurisdiction: str) -> str:
    return f"authority:{jurisdiction}"


def unit_id(unit: int) -> str:
    return f"unit:{unit}"


def base_id(base: int) -> str:
    return f"base:{base}"


def in_subtree(code: str, root: str) -> bool:
    """Whether jurisdiction ``code`` is ``root`` or lies below it (codes are ``CN-XX-YYY``)."""
    return code == root or code.startswith(root + "-")


@dataclass(frozen=True)
class Principal:
    """Who is acting.  ``jurisdiction`` is the authority's own jurisdiction, the jurisdiction a
    management unit is registered under, or the jurisdiction that recognises a base."""

    id: str
    role: Role
    jurisdiction: str
    unit: int | None = None
    base: int | None = None


@dataclass(frozen=True)
class Scope:
    """What an act touches: the jurisdiction it happens in and, where there is one, the
    management unit and the base concerned."""

    jurisdiction: str
    unit: int | None = None
    base: int | None = None


@dataclass(frozen=True)
class Rule:
    id: str
    roles: frozenset[Role]
    text: str


def _rule(id_: str, roles: set[Role], text: str) -> Rule:
    return Rule(id_, frozenset(roles), text)


A: Final[Role] = "authority"
U: Final[Role] = "management_unit"
B: Final[Role] = "base"

#: Every write the registry knows, with the roles that may perform it.
RULES: Final = {
    r.id: r
    for r in (
        _rule(
            "jurisdiction.create",
            {A},
            "a jurisdiction is created by an authority of an ancestor jurisdiction",
        ),
        _rule(
            "policy.upload",
            {A},
            "a jurisdiction's policy is published by an authority whose subtree contains it",
        ),
        _rule(
            "unit.register",
            {A},
            "a management unit is registered by an authority whose subtree contains its jurisdiction",
        ),
        _rule(
            "base.apply",
            {A, U},
            "an application is filed by the institution's management unit (推荐) or by an "
            "authority over the recognising jurisdiction (径报)",
        ),
        _rule(
            "base.decide",
            {A},
            "recognition, rejection, rectification orders, reinstatement and revocation are "
            "decided by an authority over the base's jurisdiction (national Art. 4, 27; "
            "Panzhihua Art. 4, 18)",
        ),
        _rule(
            "base.change",
            {A, U, B},
            "name and contact changes are filed by the base itself, its management unit or an "
            "authority over it (national Art. 39; Panzhihua Art. 22)",
        ),
        _rule(
            "plan.submit",
            {B},
            "a base drafts and submits its own annual plan (national Art. 22)",
        ),
        _rule(
            "plan.decide",
            {U},
            "only the base's own management unit approves or returns its annual plan "
            "(national Art. 22-23)",
        ),
        _rule(
            "plan.file",
            {B, U},
            "an approved plan is filed with the authority by the base or its management unit "
            "(national Art. 22; Panzhihua Art. 16)",
        ),
        _rule(
            "inspection.record",
            {A, U},
            "inspection results are recorded by the base's management unit or an authority "
            "over it (national Art. 25-27; Panzhihua Art. 18)",
        ),
        _rule(
            "completion.post",
            {B},
            "a base posts completion batches for its own classes only (national Art. 24)",
        ),
        _rule(
            "completion.correct",
            {B},
            "a base corrects its own records, within the policy's correction window",
        ),
        _rule(
            "completion.revoke",
            {A},
            "records are revoked by an authority over the base's jurisdiction (e.g. found "
            "fraudulent: national Art. 38)",
        ),
        _rule(
            "completion.read",
            {A, U, B},
            "records and batches are read by their base, its management unit or an authority "
            "over it",
        ),
        _rule(
            "transcript.issue",
            {A},
            "a transcript covering every base is issued by an authority over the jurisdiction "
            "whose register it extracts (the professional's own access comes with accounts)",
        ),
        _rule(
            "activation.issue",
            {A, B},
            "a professional's account activation code is issued by a base that has records of "
            "the person, or by an authority over a base that has",
        ),
        _rule(
            "base.signing-key",
            {B},
            "a base registers the Ed25519 keys it signs its batches with",
        ),
        _rule(
            "key.create",
            {A},
            "API keys are issued by an authority, for principals subordinate to it",
        ),
        _rule(
            "key.revoke",
            {A},
            "API keys are revoked by an authority, for principals subordinate to it",
        ),
    )
}


def require(actor: Principal, rule_id: str, scope: Scope) -> None:
    """Raise `PermissionDenied` unless ``actor`` may perform ``rule_id`` on ``scope``."""
    rule = RULES[rule_id]
    if actor.role not in rule.roles:
        allowed = ", ".join(sorted(rule.roles))
        raise PermissionDenied(
            rule.id,
            f"{rule.text}; allowed roles: {allowed}; you are {actor.id} ({actor.role})",
        )
    if actor.role == "authority" and not in_subtree(scope.jurisdiction, actor.jurisdiction):
        raise PermissionDenied(
            rule.id,
            f"{rule.text}; jurisdiction {scope.jurisdiction} is outside the subtree of {actor.id}",
        )
    if actor.role == "management_unit" and (scope.unit is None or scope.unit != actor.unit):
        if scope.unit is None:
            target = "this act concerns no management unit"
        elif scope.base is not None:
            target = f"{base_id(scope.base)} is managed by {unit_id(scope.unit)}"
        else:
            target = f"this act concerns {unit_id(scope.unit)}"
        raise PermissionDenied(rule.id, f"{rule.text}; {target}, you are {actor.id}")
    if actor.role == "base" and (scope.base is None or scope.base != actor.base):
        target = "no base" if scope.base is None else base_id(scope.base)
        raise PermissionDenied(rule.id, f"{rule.text}; this concerns {target}, you are {actor.id}")
