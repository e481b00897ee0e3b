"""Verify the issuer's Open Badges 3.0 and CLR 2.0 credentials (eddsa-jcs-2022).

A certificate embeds a W3C VC 2.0 credential: an ``OpenBadgeCredential`` for one completion
record, or a ``ClrCredential`` (CLR 2.0 transcript) whose ``credentialSubject`` is a
``ClrSubject`` holding such credentials in ``verifiableCredential``.  ``certificates.credentials``
builds them; this module checks them and says what they cover.

Rules :func:`verify_credential` enforces, in order (any failure raises a
:class:`~verification.errors.VerificationError` subclass; nothing returns ``False``):

1. The document is a JSON object whose ``type`` is exactly ``["VerifiableCredential",
   "OpenBadgeCredential"]`` or ``["VerifiableCredential", "ClrCredential"]`` and whose
   ``@context`` is exactly :func:`ob_contexts` / :func:`clr_contexts` for the expected issuer
   DID (``CredentialError``).
2. ``issuer`` is the expected did:web DID (a Profile object with that ``id``): the issuer must
   be the DID that controls the verification method, or common verifiers reject it.
3. The proof's ``verificationMethod`` is ``<did>#<kid>`` and the key is valid **at the proof's
   ``created`` time** under the :class:`~ledger.keyset.KeySet` rules: unknown, retired (signed at
   or after retirement), compromised (signed at or after the compromise time) and not-yet-created
   keys are refused (the ``KeyResolutionError`` subclasses); a proof without ``created`` is
   refused, since the key rules need it.
4. The eddsa-jcs-2022 proof verifies (:func:`verification.dataintegrity.verify_proof`, which
   also requires the proof's ``@context`` to equal the document's).
5. Shape: an ``AchievementSubject`` / ``ClrSubject`` identified only by hashed
   ``IdentityObject``s (``hashed: true``, ``salt``, ``identityHash`` = ``sha256$<hex>``); every
   OpenBadgeCredential carries exactly one ``LedgerRecord`` evidence item whose record token,
   ledger index, ledger entry and tlog-proof agree with each other (``LedgerEvidenceError``).
   Each credential inside a ``ClrCredential`` passes rules 1–5 itself (its own proof, possibly
   by an older key), and no record appears twice.
6. Only when the caller passes the log's ``origin`` and note verifiers: each record's
   tlog-proof opens against the log key and proves the embedded ledger entry's leaf hash is
   included under the signed checkpoint (``LedgerEvidenceError``).  Without them the result
   says ``inclusion_checked=False``: the proof text is returned for the caller to check against
   a checkpoint it trusts.

Extension terms (the ``LedgerRecord`` evidence, and the 学时 details OB3 has no field for) are
defined by an inline JSON-LD context, the third ``@context`` item, whose vocabulary lives under
the issuer's own host (:func:`extension_namespace`): VC 2.0 allows context objects after its
base context, and terms defined there expand under JSON-LD processing, where undefined terms
would be dropped or refused.

Pure code: no I/O, no clock (``validFrom`` and ``created`` in the future are the caller's
check; both are returned).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from ledger.canonical import canonicalize
from ledger.entries import decode_entry
from ledger.errors import FormatError, LedgerError
from ledger.keyset import KeySet, did_web_url
from ledger.merkle import leaf_hash
from ledger.note import Verifier
from ledger.tlogproof import TlogProof
from verification.dataintegrity import verify_proof
from verification.errors import (
    CredentialError,
    HolderMismatchError,
    KeyResolutionError,
    LedgerEvidenceError,
    VerificationError,
)
from verification.token import RECORD_TOKEN_BYTES, issuing_key

__all__ = [
    "CLR_CONTEXT",
    "CLR_TYPE",
    "EVIDENCE_TYPE",
    "OB_CONTEXT",
    "OB_TYPE",
    "VC_CONTEXT",
    "LedgerRecordClaim",
    "VerifiedCredential",
    "clr_contexts",
    "decode_record_token",
    "encode_record_token",
    "extension_context",
    "extension_namespace",
    "identity_hash",
    "ob_contexts",
    "verify_credential",
    "verify_holder",
]

VC_CONTEXT: Final = "https://www.w3.org/ns/credentials/v2"
OB_CONTEXT: Final = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
CLR_CONTEXT: Final = "https://purl.imsglobal.org/spec/clr/v2p0/context-2.0.1.json"
OB_TYPE: Final = ("VerifiableCredential", "OpenBadgeCredential")
CLR_TYPE: Final = ("VerifiableCredential", "ClrCredential")
EVIDENCE_TYPE: Final = ("Evidence", "LedgerRecord")
_XSD = "http://www.w3.org/2001/XMLSchema#"
_IDENTITY_HASH = re.compile(r"sha256\$[0-9a-fA-F]{64}")
_RECORD_TOKEN = re.compile(r"[A-Z2-7]{26}")


# --- contexts and encodings shared with the builder ------------------------------------------


def extension_namespace(did: str) -> str:
    """Our extension vocabulary, under the issuer's own host (which it controls)."""
    return f"{did_web_url(did)}/ns/celedger/v1#"


def extension_context(did: str) -> dict[str, Any]:
    """The inline JSON-LD context defining the extension terms (the third ``@context`` item)."""
    return {
        "celedger": extension_namespace(did),
        "LedgerRecord": "celedger:LedgerRecord",
        "recordId": "celedger:recordId",
        "recordToken": "celedger:recordToken",
        "ledgerIndex": {"@id": "celedger:ledgerIndex", "@type": f"{_XSD}integer"},
        # The entry is JSON whose exact (RFC 8785) bytes are hashed into the log: @json keeps
        # it a literal under JSON-LD processing instead of turning it into triples.
        "ledgerEntry": {"@id": "celedger:ledgerEntry", "@type": "@json"},
        "tlogProof": "celedger:tlogProof",
        "ceCategory": "celedger:category",
        "ceMode": "celedger:mode",
        "ceHours": {"@id": "celedger:hours", "@type": f"{_XSD}decimal"},
    }


def ob_contexts(did: str) -> list[Any]:
    return [VC_CONTEXT, OB_CONTEXT, extension_context(did)]


def clr_contexts(did: str) -> list[Any]:
    return [VC_CONTEXT, CLR_CONTEXT, OB_CONTEXT, extension_context(did)]


def identity_hash(identifier: str, salt: str) -> str:
    """OB3 ``IdentityHash``: ``sha256$`` + hex SHA-256 of the UTF-8 identifier with the salt
    appended (the Open Badges rule)."""
    return "sha256$" + hashlib.sha256((identifier + salt).encode("utf-8")).hexdigest()


def encode_record_token(token: bytes) -> str:
    """The record token as 26 upper-case base32 characters (no padding), as in the QR alphabet."""
    if not isinstance(token, bytes) or len(token) != RECORD_TOKEN_BYTES:
        raise LedgerEvidenceError(
            f"record token: expected {RECORD_TOKEN_BYTES} bytes, found {token!r:.40}"
        )
    return base64.b32encode(token).decode("ascii").rstrip("=")


def decode_record_token(text: Any) -> bytes:
    if not isinstance(text, str) or not _RECORD_TOKEN.fullmatch(text):
        raise LedgerEvidenceError(
            f"recordToken: expected 26 upper-case base32 characters, found {text!r:.60}"
        )
    try:
        raw = base64.b32decode(text + "======")
    except (binascii.Error, ValueError) as exc:
        raise LedgerEvidenceError(f"recordToken: expected base32, found {text!r}") from exc
    if encode_record_token(raw) != text:
        raise LedgerEvidenceError(
            f"recordToken: expected the canonical base32 spelling, found {text!r}"
        )
    return raw


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LedgerRecordClaim:
    """One ledger record a verified credential covers."""

    credential_id: str
    record_id: str
    record_token: bytes
    ledger_index: int
    ledger_entry: bytes  #: the entry's canonical bytes (what the log hashes)
    leaf_hash: bytes
    tlog_proof: str


@dataclass(frozen=True, slots=True)
class VerifiedCredential:
    """What a verified credential asserts and covers (returned only when every check passed)."""

    kind: str  #: "OpenBadgeCredential" or "ClrCredential"
    credential_id: str
    issuer: str
    kid: str
    created: str
    valid_from: str
    holder: tuple[Mapping[str, Any], ...]  #: the hashed IdentityObjects naming the holder
    records: tuple[LedgerRecordClaim, ...]
    inclusion_checked: bool

    @property
    def record_tokens(self) -> tuple[bytes, ...]:
        return tuple(r.record_token for r in self.records)

    @property
    def ledger_indexes(self) -> tuple[int, ...]:
        return tuple(r.ledger_index for r in self.records)


# --- verification ----------------------------------------------------------------------------


def verify_credential(
    doc: Mapping[str, Any],
    keyset: KeySet,
    did: str,
    *,
    log_origin: str | None = None,
    log_verifiers: Sequence[Verifier] = (),
) -> VerifiedCredential:
    """Verify an OpenBadgeCredential or ClrCredential of issuer ``did`` (rules 1–6)."""
    if (log_origin is None) != (not log_verifiers):
        raise ValueError("pass log_origin and log_verifiers together, or neither")
    try:
        did_web_url(did)
    except FormatError as exc:
        raise CredentialError(str(exc)) from exc
    if not isinstance(doc, Mapping):
        raise CredentialError(f"expected a JSON object credential, found {type(doc).__name__}")
    found_type = doc.get("type")
    if found_type == list(CLR_TYPE):
        verified = _verify_clr(doc, keyset, did)
    elif found_type == list(OB_TYPE):
        verified = _verify_ob(doc, keyset, did)
    else:
        raise CredentialError(
            f"credential type: expected {list(OB_TYPE)} or {list(CLR_TYPE)}, found {found_type!r}"
        )
    if log_origin is None:
        return verified
    for record in verified.records:
        try:
            TlogProof.parse(record.tlog_proof).verify(record.leaf_hash, log_origin, log_verifiers)
        except LedgerError as exc:
            raise LedgerEvidenceError(
                f"record {record.record_id!r} (ledger index {record.ledger_index}): the "
                f"tlog-proof does not prove the entry is in the log: {exc}"
            ) from exc
    return _replace_checked(verified)


def verify_holder(verified: VerifiedCredential, identifier: str) -> None:
    """Raise unless ``identifier`` (e.g. the ID number a verifier typed) is the holder's.

    The message never repeats the identifier: it is personal data and must not reach a log.
    """
    for identity in verified.holder:
        expected = identity_hash(identifier, str(identity["salt"]))
        if hmac.compare_digest(expected.lower(), str(identity["identityHash"]).lower()):
            return
    raise HolderMismatchError(
        f"holder: expected the typed identifier to hash to the credential's identityHash "
        f"({len(verified.holder)} hashed identities), found no match"
    )


def _verify_ob(doc: Mapping[str, Any], keyset: KeySet, did: str) -> VerifiedCredential:
    credential_id, created, kid = _verify_envelope(doc, keyset, did, ob_contexts(did), "OB")
    subject = _object(doc.get("credentialSubject"), "credentialSubject")
    _exact(subject.get("type"), ["AchievementSubject"], "credentialSubject type")
    if "id" in subject:
        raise CredentialError(
            "credentialSubject: expected the holder named only by hashed identifiers, "
            f"found an id {subject['id']!r:.60}"
        )
    holder = _identities(subject.get("identifier"), "credentialSubject identifier")
    _object(subject.get("achievement"), "credentialSubject achievement")
    evidence = doc.get("evidence")
    items = [e for e in evidence if isinstance(e, Mapping)] if isinstance(evidence, list) else []
    records = [e for e in items if e.get("type") == list(EVIDENCE_TYPE)]
    if not isinstance(evidence, list) or len(records) != 1:
        raise LedgerEvidenceError(
            f"evidence: expected exactly one {list(EVIDENCE_TYPE)} item, found "
            f"{len(records) if isinstance(evidence, list) else 'no evidence list'}"
        )
    return VerifiedCredential(
        kind="OpenBadgeCredential",
        credential_id=credential_id,
        issuer=did,
        kid=kid,
        created=created,
        valid_from=str(doc["validFrom"]),
        holder=holder,
        records=(_ledger_record(records[0], credential_id),),
        inclusion_checked=False,
    )


def _verify_clr(doc: Mapping[str, Any], keyset: KeySet, did: str) -> VerifiedCredential:
    credential_id, created, kid = _verify_envelope(doc, keyset, did, clr_contexts(did), "CLR")
    subject = _object(doc.get("credentialSubject"), "credentialSubject")
    _exact(subject.get("type"), ["ClrSubject"], "credentialSubject type")
    if "id" in subject:
        raise CredentialError(
            "credentialSubject: expected the holder named only by hashed identifiers, "
            f"found an id {subject['id']!r:.60}"
        )
    holder = _identities(subject.get("identifier"), "credentialSubject identifier")
    inner = subject.get("verifiableCredential")
    if not isinstance(inner, list) or not inner:
        raise CredentialError(
            "credentialSubject verifiableCredential: expected a non-empty list of "
            f"OpenBadgeCredentials, found {inner!r:.60}"
        )
    records: list[LedgerRecordClaim] = []
    seen: set[str] = set()
    for n, item in enumerate(inner):
        if not isinstance(item, Mapping) or item.get("type") != list(OB_TYPE):
            raise CredentialError(
                f"verifiableCredential[{n}]: expected an OpenBadgeCredential, found "
                f"{(item.get('type') if isinstance(item, Mapping) else type(item).__name__)!r}"
            )
        try:
            verified = _verify_ob(item, keyset, did)
        except VerificationError as exc:
            # Same class (callers dispatch on it), with the position in the transcript.
            raise type(exc)(f"verifiableCredential[{n}]: {exc}") from exc
        for record in verified.records:
            if record.record_id in seen:
                raise LedgerEvidenceError(
                    f"verifiableCredential[{n}]: expected each record once, found "
                    f"{record.record_id!r} again"
                )
            seen.add(record.record_id)
            records.append(record)
    return VerifiedCredential(
        kind="ClrCredential",
        credential_id=credential_id,
        issuer=did,
        kid=kid,
        created=created,
        valid_from=str(doc["validFrom"]),
        holder=holder,
        records=tuple(records),
        inclusion_checked=False,
    )


def _verify_envelope(
    doc: Mapping[str, Any], keyset: KeySet, did: str, contexts: list[Any], what: str
) -> tuple[str, str, str]:
    """Rules 1–4 for one credential; returns (id, proof created, kid)."""
    found_context = doc.get("@context")
    if not _jcs_ok(found_context) or canonicalize(found_context) != canonicalize(contexts):
        raise CredentialError(
            f"{what} credential @context: expected {contexts!r:.200}, "
            f"found {doc.get('@context')!r:.200}"
        )
    credential_id = doc.get("id")
    if not isinstance(credential_id, str) or not credential_id:
        raise CredentialError(f"credential id: expected a URI, found {credential_id!r}")
    issuer = doc.get("issuer")
    issuer_id = issuer.get("id") if isinstance(issuer, Mapping) else issuer
    if issuer_id != did:
        raise CredentialError(
            f"credential issuer: expected {did!r} (the DID controlling the verification "
            f"method), found {issuer_id!r}"
        )
    valid_from = doc.get("validFrom")
    _parse_stamp(valid_from, "credential validFrom")

    proof = doc.get("proof")
    if not isinstance(proof, Mapping):
        raise CredentialError(f"expected a single proof object, found {type(proof).__name__}")
    created = proof.get("created")
    if created is None:
        raise CredentialError(
            "proof created: expected the signing time (the key rules need it), found none"
        )
    signed_at = _parse_stamp(created, "proof created")
    method = proof.get("verificationMethod")
    prefix = f"{did}#"
    if not isinstance(method, str) or not method.startswith(prefix) or len(method) == len(prefix):
        raise KeyResolutionError(
            f"proof verificationMethod: expected '{did}#<kid>', found {method!r:.100}"
        )
    kid = method[len(prefix) :]
    key = issuing_key(keyset, kid, signed_at)

    def resolve(verification_method: str) -> Any:
        if verification_method != method:  # verify_proof passes the same value back
            raise KeyResolutionError(
                f"verificationMethod: expected {method!r}, found {verification_method!r}"
            )
        return key.verifier()

    verify_proof(doc, resolve)
    return credential_id, str(created), kid


def _ledger_record(item: Mapping[str, Any], credential_id: str) -> LedgerRecordClaim:
    record_id = item.get("recordId")
    if not isinstance(record_id, str) or not record_id:
        raise LedgerEvidenceError(
            f"evidence recordId: expected a non-empty id, found {record_id!r}"
        )
    token = decode_record_token(item.get("recordToken"))
    index = item.get("ledgerIndex")
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise LedgerEvidenceError(
            f"evidence ledgerIndex: expected a non-negative integer, found {index!r}"
        )
    entry_obj = item.get("ledgerEntry")
    if not isinstance(entry_obj, Mapping):
        raise LedgerEvidenceError(
            f"evidence ledgerEntry: expected the ledger entry as a JSON object, found "
            f"{type(entry_obj).__name__}"
        )
    try:
        entry = canonicalize(entry_obj)
        decode_entry(entry)
    except FormatError as exc:
        raise LedgerEvidenceError(f"evidence ledgerEntry: not a ledger entry: {exc}") from exc
    text = item.get("tlogProof")
    if not isinstance(text, str):
        raise LedgerEvidenceError(
            f"evidence tlogProof: expected c2sp.org/tlog-proof@v1 text, found {type(text).__name__}"
        )
    try:
        proof = TlogProof.parse(text)
    except FormatError as exc:
        raise LedgerEvidenceError(f"evidence tlogProof: {exc}") from exc
    if proof.index != index:
        raise LedgerEvidenceError(
            f"evidence: expected the tlog-proof index to equal ledgerIndex {index}, "
            f"found {proof.index}"
        )
    return LedgerRecordClaim(
        credential_id=credential_id,
        record_id=record_id,
        record_token=token,
        ledger_index=index,
        ledger_entry=entry,
        leaf_hash=leaf_hash(entry),
        tlog_proof=text,
    )


# --- helpers ---------------------------------------------------------------------------------


def _identities(value: Any, what: str) -> tuple[Mapping[str, Any], ...]:
    if not isinstance(value, list) or not value:
        raise CredentialError(
            f"{what}: expected a non-empty list of IdentityObjects, found {value!r:.60}"
        )
    for n, identity in enumerate(value):
        if not isinstance(identity, Mapping):
            raise CredentialError(
                f"{what}[{n}]: expected an IdentityObject, found {identity!r:.60}"
            )
        if identity.get("type") != "IdentityObject" or identity.get("hashed") is not True:
            raise CredentialError(
                f"{what}[{n}]: expected a hashed IdentityObject (type 'IdentityObject', "
                f"hashed true), found type {identity.get('type')!r}, hashed {identity.get('hashed')!r}"
            )
        found = identity.get("identityHash")
        if not isinstance(found, str) or not _IDENTITY_HASH.fullmatch(found):
            raise CredentialError(
                f"{what}[{n}] identityHash: expected 'sha256$' and 64 hex digits, found "
                f"{found!r:.80}"
            )
        if not isinstance(identity.get("salt"), str) or not identity["salt"]:
            raise CredentialError(f"{what}[{n}] salt: expected a non-empty salt, found none")
        if not isinstance(identity.get("identityType"), str):
            raise CredentialError(f"{what}[{n}] identityType: expected a string, found none")
    return tuple(value)


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise CredentialError(f"{what}: expected a JSON object, found {type(value).__name__}")
    return value


def _exact(value: Any, expected: list[str], what: str) -> None:
    if value != expected:
        raise CredentialError(f"{what}: expected {expected!r}, found {value!r:.100}")


def _jcs_ok(value: Any) -> bool:
    try:
        canonicalize(value)
    except FormatError:
        return False
    return True


def _parse_stamp(value: Any, what: str) -> datetime:
    if isinstance(value, str):
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            at = None
        if at is not None and at.tzinfo is not None and "T" in value:
            return at
    raise CredentialError(
        f"{what}: expected a date-time with a time zone such as '2026-01-02T03:04:05Z', "
        f"found {value!r:.60}"
    )


def _replace_checked(verified: VerifiedCredential) -> VerifiedCredential:
    return replace(verified, inclusion_checked=True)
