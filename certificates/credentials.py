"""Build the verifiable credentials a certificate embeds: OB 3.0 and CLR 2.0, eddsa-jcs-2022.

* :func:`completion_credential` — one completion record as an Open Badges 3.0
  ``OpenBadgeCredential`` (W3C VC 2.0): the class is the ``Achievement``, the professional is
  the ``AchievementSubject``.
* :func:`transcript_credential` — a CLR 2.0 ``ClrCredential`` (an aggregate transcript) whose
  ``ClrSubject.verifiableCredential`` holds completion credentials, each keeping its own proof,
  as CLR 2.0 prescribes (``achievement`` and ``association`` are optional there and unused).

Both are signed with the issuer's active key (``ledger.keyset.IssuingSigner``) as an
eddsa-jcs-2022 Data Integrity proof whose ``verificationMethod`` is ``did:web:<host>#<kid>``,
and the credential's ``issuer.id`` is that same ``did:web:<host>`` (common verifiers reject a
credential whose issuer does not control the method).  ``verification.credentials`` verifies
them.

Privacy (PIPL, domain.md): the holder appears **only** as an OB3 ``IdentityObject`` with
``hashed: true``, a per-credential random ``salt`` and ``identityHash`` =
``sha256$hex(SHA-256(identifier ‖ salt))`` — never a name or an ID number.  The builder never
sees the identifier: the caller hashes it with :func:`hashed_identity` and passes the object.
Note what this does and does not give: a verifier who knows the holder's ID number can confirm
it matches (``verification.credentials.verify_holder``); but a citizen ID number has only about
10^11 plausible values, so whoever holds the credential (and thus the salt) can recover the
number by brute force.  The credential is therefore the holder's personal data, to be shared by
the holder as they share the certificate PDF that shows their name — it must never be published
(it never enters the QR code, a URL or the ledger).

Ledger evidence: every completion credential carries one ``evidence`` item of type
``["Evidence", "LedgerRecord"]`` with the record id, its 128-bit record token (base32, the QR
alphabet), the ledger index, the ledger entry itself (JSON, whose RFC 8785 bytes are the leaf)
and the c2sp.org/tlog-proof@v1 text proving that entry is in the log under a signed checkpoint —
so the credential alone can be checked against the log's checkpoint key, offline.

Hours (学时): OB3 has no such field.  ``Achievement.creditsAvailable`` and
``AchievementSubject.creditsEarned`` carry the number (OB3's "credit hours"; here the unit is
学时, as the achievement's description says), and the namespaced ``ceHours`` carries it as an
exact decimal string, with ``ceCategory`` (公需/专业/选修) and ``ceMode`` (面授/网络/…).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

from ledger.entries import decode_entry
from ledger.errors import FormatError
from ledger.keyset import IssuingSigner, did_web_url, format_time
from ledger.tlogproof import TlogProof
from verification.credentials import (
    CLR_TYPE,
    EVIDENCE_TYPE,
    OB_TYPE,
    clr_contexts,
    encode_record_token,
    identity_hash,
    ob_contexts,
)
from verification.dataintegrity import create_proof
from verification.errors import CredentialError

__all__ = [
    "CompletionFacts",
    "completion_credential",
    "hashed_identity",
    "transcript_credential",
]

#: Beijing time: a record's dates are calendar days in China.
_CHINA_OFFSET: Final = "+08:00"


@dataclass(frozen=True, slots=True)
class CompletionFacts:
    """The public facts of one completion record (no personal data: see the module docstring)."""

    record_id: str
    record_token: bytes
    ledger_index: int
    base_id: int
    base_name: str
    class_code: str
    class_title: str
    category: str
    mode: str
    hours_tenths: int
    year: int
    start_date: date
    end_date: date
    result: str

    def __post_init__(self) -> None:
        for name in (
            "record_id",
            "base_name",
            "class_code",
            "class_title",
            "category",
            "mode",
            "result",
        ):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise CredentialError(
                    f"completion {name}: expected a non-empty text, found {value!r}"
                )
        if (
            isinstance(self.hours_tenths, bool)
            or not isinstance(self.hours_tenths, int)
            or self.hours_tenths < 0
        ):
            raise CredentialError(
                f"completion hours: expected non-negative tenths of a 学时, found {self.hours_tenths!r}"
            )
        if self.end_date < self.start_date:
            raise CredentialError(
                f"completion dates: expected end >= start ({self.start_date}), found {self.end_date}"
            )
        if not isinstance(self.record_token, bytes) or len(self.record_token) != 16:
            found = len(self.record_token) if isinstance(self.record_token, bytes) else "none"
            raise CredentialError(f"completion record token: expected 16 bytes, found {found}")

    @property
    def hours(self) -> Decimal:
        return Decimal(self.hours_tenths) / 10


def hashed_identity(
    identifier: str, *, salt: str | None = None, identity_type: str = "nationalIdentityNumber"
) -> dict[str, Any]:
    """An OB3 ``IdentityObject`` naming the holder by a salted hash of ``identifier``.

    A fresh random salt per credential (the default) keeps two credentials of one person
    unlinkable by their hashes.  ``identity_type`` is from the OB3 identifier vocabulary.
    """
    if not isinstance(identifier, str) or not identifier:
        raise CredentialError("holder identifier: expected a non-empty text, found none")
    salt = secrets.token_hex(16) if salt is None else salt
    return {
        "type": "IdentityObject",
        "identityHash": identity_hash(identifier, salt),
        "identityType": identity_type,
        "hashed": True,
        "salt": salt,
    }


def completion_credential(
    facts: CompletionFacts,
    *,
    holder: Mapping[str, Any],
    issuer_did: str,
    issuer_name: str,
    signer: IssuingSigner,
    tlog_proof: str,
    ledger_entry: bytes,
    issued_at: datetime,
    credential_id: str | None = None,
    verification_url: str | None = None,
) -> dict[str, Any]:
    """Build and sign the OpenBadgeCredential for one completion record.

    ``ledger_entry`` is the canonical bytes of the record's entry at ``facts.ledger_index``;
    ``tlog_proof`` proves it (its ``index`` must be that index).  ``verification_url`` (the QR
    code's URL) becomes the evidence's ``id`` when given.
    """
    base_url = _base_url(issuer_did)
    _check_holder(holder)
    entry_obj = _ledger_entry(ledger_entry)
    proof = _tlog_proof(tlog_proof, facts.ledger_index)

    achievement_id = _urn(
        f"{base_url}/bases/{facts.base_id}/classes/{facts.year}/{facts.class_code}"
    )
    result_id = f"{achievement_id}#result"
    hours = facts.hours
    achievement: dict[str, Any] = {
        "id": achievement_id,
        "type": ["Achievement"],
        "achievementType": "Course",
        "name": facts.class_title,
        "description": (
            f"继续教育 {facts.category} · {facts.mode} · {hours} 学时 ({facts.year}); "
            f"creditsAvailable is in 学时 (continuing-education class hours)"
        ),
        "criteria": {
            "narrative": (
                "Attended the class in the base's approved annual plan and passed its "
                "assessment, as posted by the recognised continuing-education base and "
                "entered in the CE Ledger."
            )
        },
        "humanCode": facts.class_code,
        "creditsAvailable": float(hours),
        "tag": [facts.category, facts.mode],
        "creator": {
            "id": _urn(f"{base_url}/bases/{facts.base_id}"),
            "type": ["Profile"],
            "name": facts.base_name,
        },
        "resultDescription": [
            {
                "id": result_id,
                "type": ["ResultDescription"],
                "name": "考核结果 (assessment result)",
                "resultType": "Result",
            }
        ],
        "ceCategory": facts.category,
        "ceMode": facts.mode,
        "ceHours": str(hours),
    }
    evidence: dict[str, Any] = {
        "type": list(EVIDENCE_TYPE),
        "name": f"CE Ledger entry {facts.ledger_index}",
        "description": (
            "This record is an entry of the CE Ledger transparency log. ledgerEntry is the "
            "entry (its RFC 8785 bytes are the Merkle leaf) and tlogProof its "
            "c2sp.org/tlog-proof@v1 inclusion proof under a signed checkpoint."
        ),
        "genre": "c2sp.org/tlog-proof@v1",
        "recordId": facts.record_id,
        "recordToken": encode_record_token(facts.record_token),
        "ledgerIndex": facts.ledger_index,
        "ledgerEntry": entry_obj,
        "tlogProof": proof,
    }
    if verification_url is not None:
        evidence = {"id": verification_url, **evidence}
    document: dict[str, Any] = {
        "@context": ob_contexts(issuer_did),
        "id": credential_id or _random_urn(),
        "type": list(OB_TYPE),
        "name": f"{facts.class_title}（{hours} 学时）",
        "issuer": _issuer(issuer_did, issuer_name),
        "validFrom": format_time(issued_at),
        "credentialSubject": {
            "type": ["AchievementSubject"],
            "identifier": [dict(holder)],
            "achievement": achievement,
            "creditsEarned": float(hours),
            "activityStartDate": f"{facts.start_date.isoformat()}T00:00:00{_CHINA_OFFSET}",
            "activityEndDate": f"{facts.end_date.isoformat()}T00:00:00{_CHINA_OFFSET}",
            "term": str(facts.year),
            "result": [{"type": ["Result"], "resultDescription": result_id, "value": facts.result}],
        },
        "evidence": [evidence],
    }
    return _sign(document, issuer_did, signer, issued_at)


def transcript_credential(
    completions: Sequence[Mapping[str, Any]],
    *,
    holder: Mapping[str, Any],
    issuer_did: str,
    issuer_name: str,
    signer: IssuingSigner,
    issued_at: datetime,
    name: str,
    description: str | None = None,
    credential_id: str | None = None,
) -> dict[str, Any]:
    """Build and sign a CLR 2.0 ClrCredential holding ``completions`` (signed OB credentials
    of the same issuer, each kept whole with its own proof)."""
    _base_url(issuer_did)
    _check_holder(holder)
    if not completions:
        raise CredentialError("transcript: expected at least one completion credential, found none")
    for n, credential in enumerate(completions):
        if not isinstance(credential, Mapping) or credential.get("type") != list(OB_TYPE):
            raise CredentialError(f"transcript completion {n}: expected an OpenBadgeCredential")
        issuer = credential.get("issuer")
        issuer_id = issuer.get("id") if isinstance(issuer, Mapping) else issuer
        if issuer_id != issuer_did or "proof" not in credential:
            raise CredentialError(
                f"transcript completion {n}: expected a signed credential of {issuer_did!r}, "
                f"found issuer {issuer_id!r}{'' if 'proof' in credential else ' without a proof'}"
            )
    document: dict[str, Any] = {
        "@context": clr_contexts(issuer_did),
        "id": credential_id or _random_urn(),
        "type": list(CLR_TYPE),
        "name": name,
        "issuer": _issuer(issuer_did, issuer_name),
        "validFrom": format_time(issued_at),
        "credentialSubject": {
            "type": ["ClrSubject"],
            "identifier": [dict(holder)],
            "verifiableCredential": [dict(c) for c in completions],
        },
    }
    if description is not None:
        document["description"] = description
    return _sign(document, issuer_did, signer, issued_at)


# --- helpers ---------------------------------------------------------------------------------


def _sign(
    document: dict[str, Any], did: str, signer: IssuingSigner, at: datetime
) -> dict[str, Any]:
    # created == validFrom, whole seconds: the key rules compare it with the key's times.
    return create_proof(document, signer.private_key, f"{did}#{signer.kid}", format_time(at))


def _issuer(did: str, name: str) -> dict[str, Any]:
    return {"id": did, "type": ["Profile"], "name": name}


def _base_url(did: str) -> str:
    try:
        return did_web_url(did)
    except FormatError as exc:
        raise CredentialError(str(exc)) from exc


def _urn(name: str) -> str:
    # Stable ids for the class and the base: the same class always has the same Achievement id.
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}"


def _random_urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _check_holder(holder: Mapping[str, Any]) -> None:
    if (
        not isinstance(holder, Mapping)
        or holder.get("type") != "IdentityObject"
        or holder.get("hashed") is not True
        or not str(holder.get("identityHash", "")).startswith("sha256$")
        or not holder.get("salt")
    ):
        raise CredentialError(
            "holder: expected a hashed IdentityObject from hashed_identity() (hashed true, salt, "
            "identityHash 'sha256$…'), found something else; never pass a name or ID number"
        )


def _ledger_entry(data: bytes) -> dict[str, Any]:
    try:
        entry = decode_entry(data)
    except FormatError as exc:
        raise CredentialError(f"ledger entry: expected a canonical ledger entry: {exc}") from exc
    return {"v": entry.v, "kind": entry.kind, **entry.payload}


def _tlog_proof(text: str, index: int) -> str:
    try:
        proof = TlogProof.parse(text)
    except FormatError as exc:
        raise CredentialError(f"tlog-proof: {exc}") from exc
    if proof.index != index:
        raise CredentialError(
            f"tlog-proof index: expected the record's ledger index {index}, found {proof.index}"
        )
    return text
