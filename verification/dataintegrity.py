"""W3C Data Integrity proofs with the ``eddsa-jcs-2022`` cryptosuite (vc-di-eddsa §3.3).

What is signed
--------------
``proofValue`` = multibase base58-btc of Ed25519 over

    SHA-256(JCS(proof configuration)) ‖ SHA-256(JCS(document without ``proof``))

where the proof configuration is the proof without ``proofValue``: ``type``
``"DataIntegrityProof"``, ``cryptosuite`` ``"eddsa-jcs-2022"``, ``created``,
``verificationMethod``, ``proofPurpose`` and, when the document has one, the document's
``@context`` (Create Proof step 2, which the spec strongly advises for interoperability).
The proof-configuration hash comes *first*.

The steps are exposed under the spec's names so tests can check each intermediate value:
:func:`build_proof_options`, :func:`proof_configuration` (§3.3.5), :func:`transform` (§3.3.3),
:func:`hash_data` (§3.3.4), :func:`serialize_proof` (§3.3.6), :func:`verify_signature` (§3.3.7).

Rules and invariants
--------------------
* :func:`create_proof` never mutates its input; it returns a deep copy with ``proof`` added,
  and refuses a document that already has a proof (proof sets and chains are not supported).
* :func:`verify_proof` raises a :class:`~verification.errors.VerificationError` subclass or
  returns :class:`ProofInfo`; it never returns a bool.  Shape problems (wrong ``type`` or
  ``cryptosuite``, missing or mistyped fields, unexpected ``proofPurpose``, ``@context``
  mismatch, a document JCS cannot represent) are :class:`CredentialError`; an undecodable
  ``proofValue`` or a signature that does not verify is :class:`ProofValueError`; an
  unresolvable ``verificationMethod`` is :class:`KeyResolutionError`.
* ``@context`` policy.  When the proof carries ``@context``, the spec (§3.3.2 step 4) lets the
  document's ``@context`` *start with* the proof's and then hashes the document with the proof's
  ``@context`` substituted, so contexts appended after signing are not covered by the
  signature.  By default this module is stricter and fails closed: the two must be the same
  JSON value (compared as JCS bytes).  ``allow_context_extension=True`` gives the spec's
  prefix rule for documents from other issuers that rely on it.
* ``created`` and ``expires`` (when present) must be XML Schema ``dateTimeStamp`` values
  (a date, a time and a mandatory time zone) with a four-digit year, as Data Integrity
  requires.  This module does not read a clock: time checks (``expires`` in the past,
  ``created`` in the future) belong to the caller, who gets both values in ``ProofInfo``.
* Key lookup is the caller's: ``resolve_key`` maps a ``verificationMethod`` id to an Ed25519
  public key and raises :class:`KeyResolutionError` (a ``LookupError`` such as ``KeyError`` is
  accepted too, so ``keys.__getitem__`` works) for ids it does not trust.  Use
  :func:`resolve_did_key` for did:key, or :func:`key_set_resolver` for a fixed key set.
  Whether that key may speak for the credential's ``issuer`` is the caller's check, too.

Pure code: no I/O.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.canonical import canonicalize
from ledger.errors import FormatError
from verification.errors import (
    CredentialError,
    EncodingError,
    KeyResolutionError,
    ProofValueError,
)
from verification.multibase import (
    DID_KEY_PREFIX,
    decode_ed25519_multikey,
    multibase_decode,
    multibase_encode,
)

__all__ = [
    "CRYPTOSUITE",
    "PROOF_TYPE",
    "ProofInfo",
    "build_proof_options",
    "create_proof",
    "hash_data",
    "key_set_resolver",
    "proof_configuration",
    "resolve_did_key",
    "serialize_proof",
    "transform",
    "verify_proof",
    "verify_signature",
]

PROOF_TYPE = "DataIntegrityProof"
CRYPTOSUITE = "eddsa-jcs-2022"

_SIGNATURE_BYTES = 64
# 'z' + base58 of 64 bytes is at most 89 characters; refuse far longer input before decoding.
_MAX_PROOF_VALUE_CHARS = 128

# XML Schema 1.1 dateTimeStamp, restricted to four-digit years so the calendar can be checked
# with the standard library.  The time zone is mandatory (that is what makes it a *Stamp*).
_DATE_TIME_STAMP = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"
    r"T(?:(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?|24:00:00(?:\.0+)?)"
    r"(?:Z|[+-](?:(?:0\d|1[0-3]):[0-5]\d|14:00))",
    re.ASCII,
)

JSONObject = dict[str, Any]
KeyResolver = Callable[[str], Ed25519PublicKey]


@dataclass(frozen=True, slots=True)
class ProofInfo:
    """What a verified proof asserts (returned only when the signature verified)."""

    verification_method: str
    proof_purpose: str
    created: str | None
    expires: str | None


# --- the spec's steps ------------------------------------------------------------------------


def build_proof_options(
    document: Mapping[str, Any],
    verification_method: str,
    created: str,
    proof_purpose: str = "assertionMethod",
) -> JSONObject:
    """Return the proof options for ``document`` (the proof without ``proofValue``).

    Keys are in the order the spec's test vectors print them, so ``json.dumps`` of a created
    proof matches them textually, not only as JCS.
    """
    options: JSONObject = {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "created": created,
        "verificationMethod": verification_method,
        "proofPurpose": proof_purpose,
    }
    if "@context" in document:
        # Create Proof step 2: the proof carries the document's @context (a copy, not an alias).
        options["@context"] = copy.deepcopy(document["@context"])
    return options


def proof_configuration(options: Mapping[str, Any]) -> bytes:
    """§3.3.5: check the proof options and return their JCS form (``canonicalProofConfig``)."""
    _check_suite(options, "proof options")
    for name in ("created", "expires"):
        if name in options:
            _check_date_time_stamp(options[name], f"proof {name}")
    return _canonical(options, "proof configuration")


def transform(unsecured_document: Mapping[str, Any], options: Mapping[str, Any]) -> bytes:
    """§3.3.3: return the JCS form of the unsecured document (the ``transformedData``)."""
    _check_suite(options, "transformation options")
    if "proof" in unsecured_document:
        raise CredentialError(
            "expected an unsecured document (no 'proof' member), found one with 'proof'"
        )
    return _canonical(unsecured_document, "document")


def hash_data(transformed_document: bytes, canonical_proof_config: bytes) -> bytes:
    """§3.3.4: SHA-256(canonical proof config) ‖ SHA-256(transformed document), 64 bytes."""
    return (
        hashlib.sha256(canonical_proof_config).digest()
        + hashlib.sha256(transformed_document).digest()
    )


def serialize_proof(hash_data: bytes, private_key: Ed25519PrivateKey) -> bytes:
    """§3.3.6: the 64-byte Ed25519 (pure EdDSA) signature over ``hash_data``."""
    return private_key.sign(hash_data)


def verify_signature(hash_data: bytes, proof_bytes: bytes, public_key: Ed25519PublicKey) -> None:
    """§3.3.7: raise ``ProofValueError`` unless ``proof_bytes`` signs ``hash_data``."""
    if len(proof_bytes) != _SIGNATURE_BYTES:
        raise ProofValueError(
            f"expected a {_SIGNATURE_BYTES}-byte Ed25519 signature, found {len(proof_bytes)} bytes"
        )
    try:
        public_key.verify(proof_bytes, hash_data)
    except InvalidSignature:
        raise ProofValueError(
            "Ed25519 signature does not verify: expected a signature by the verification "
            "method's key over this document and proof configuration; the document or proof "
            "was changed after signing, or the key is not the signer's"
        ) from None


# --- create and verify -----------------------------------------------------------------------


def create_proof(
    document: Mapping[str, Any],
    private_key: Ed25519PrivateKey,
    verification_method: str,
    created: str,
    proof_purpose: str = "assertionMethod",
) -> JSONObject:
    """Return a new document: a deep copy of ``document`` with an eddsa-jcs-2022 ``proof``.

    ``created`` is an XML Schema dateTimeStamp such as ``"2023-02-24T23:36:38Z"``.  The key is
    not checked against ``verification_method``: that binding is the issuer's configuration.
    """
    if not isinstance(document, Mapping):
        raise CredentialError(f"expected a JSON object document, found {type(document).__name__}")
    if "proof" in document:
        raise CredentialError(
            "expected a document without 'proof' (proof sets and chains are not supported), "
            "found one that already has a proof"
        )
    _nonempty_str(verification_method, "verificationMethod")
    _nonempty_str(proof_purpose, "proofPurpose")
    _check_date_time_stamp(created, "proof created")

    proof = build_proof_options(document, verification_method, created, proof_purpose)
    canonical_proof_config = proof_configuration(proof)
    transformed = transform(document, proof)
    proof_bytes = serialize_proof(hash_data(transformed, canonical_proof_config), private_key)
    proof["proofValue"] = multibase_encode(proof_bytes)

    secured: JSONObject = copy.deepcopy(dict(document))
    secured["proof"] = proof
    return secured


def verify_proof(
    document: Mapping[str, Any],
    resolve_key: KeyResolver,
    expected_purpose: str = "assertionMethod",
    *,
    allow_context_extension: bool = False,
) -> ProofInfo:
    """Verify the single eddsa-jcs-2022 proof on ``document`` (vc-di-eddsa §3.3.2).

    Raises ``CredentialError``, ``ProofValueError`` or ``KeyResolutionError`` (all
    ``VerificationError``); returns what the proof asserts when the signature verifies.
    See the module docstring for the ``@context`` policy and ``allow_context_extension``.
    """
    if not isinstance(document, Mapping):
        raise CredentialError(f"expected a JSON object document, found {type(document).__name__}")
    proof = _single_proof(document)

    # Step 2: the proof options are the proof minus proofValue.
    proof_options: JSONObject = {k: v for k, v in proof.items() if k != "proofValue"}
    _check_suite(proof_options, "proof")
    verification_method = _nonempty_str(
        proof_options.get("verificationMethod"), "proof verificationMethod"
    )
    purpose = proof_options.get("proofPurpose")
    if purpose != expected_purpose:
        raise CredentialError(
            f"proof proofPurpose: expected {expected_purpose!r}, found {purpose!r}"
            if "proofPurpose" in proof_options
            else f"proof proofPurpose: expected {expected_purpose!r}, found none"
        )
    created = _optional_date_time_stamp(proof_options, "created")
    expires = _optional_date_time_stamp(proof_options, "expires")

    # Step 3: decode the signature before any hashing, so garbage fails fast and precisely.
    proof_bytes = _decode_proof_value(proof)

    # Step 1 and 4: the unsecured document, with the @context policy applied.
    unsecured: JSONObject = {k: v for k, v in document.items() if k != "proof"}
    if "@context" in proof_options:
        _check_context(document, proof_options["@context"], allow_context_extension)
        unsecured["@context"] = proof_options["@context"]

    # Steps 5-7.
    transformed = transform(unsecured, proof_options)
    canonical_proof_config = proof_configuration(proof_options)
    data = hash_data(transformed, canonical_proof_config)

    # Step 8.
    try:
        public_key = resolve_key(verification_method)
    except LookupError as exc:
        raise KeyResolutionError(
            f"verificationMethod {verification_method!r}: expected a known key, found none "
            f"({exc!r})"
        ) from exc
    verify_signature(data, proof_bytes, public_key)
    return ProofInfo(
        verification_method=verification_method,
        proof_purpose=expected_purpose,
        created=created,
        expires=expires,
    )


# --- key resolution --------------------------------------------------------------------------


def resolve_did_key(verification_method: str) -> Ed25519PublicKey:
    """Resolve an Ed25519 did:key verification method ``did:key:z6Mk…#z6Mk…`` to its key.

    The fragment must repeat the method-specific id, as the did:key method defines the one
    verification method of such a DID; a bare DID (no fragment) is not a verification method.
    """
    if not isinstance(verification_method, str) or not verification_method.startswith(
        DID_KEY_PREFIX
    ):
        raise KeyResolutionError(
            f"expected a did:key verification method 'did:key:z6Mk…#z6Mk…', "
            f"found {verification_method!r}"
        )
    did, sep, fragment = verification_method.partition("#")
    multikey = did[len(DID_KEY_PREFIX) :]
    if not sep or fragment != multikey:
        raise KeyResolutionError(
            f"expected a did:key verification method whose fragment repeats the key "
            f"('{did}#{multikey}'), found {verification_method!r}"
        )
    try:
        return decode_ed25519_multikey(multikey)
    except EncodingError as exc:
        raise KeyResolutionError(
            f"did:key {did!r} does not hold an Ed25519 public Multikey: {exc}"
        ) from exc


def key_set_resolver(keys: Mapping[str, Ed25519PublicKey]) -> KeyResolver:
    """Return a resolver that accepts exactly the verification method ids in ``keys``."""
    known = dict(keys)  # a snapshot: later changes to the caller's mapping do not leak in

    def resolve(verification_method: str) -> Ed25519PublicKey:
        try:
            return known[verification_method]
        except KeyError:
            raise KeyResolutionError(
                f"unknown verificationMethod {verification_method!r}: expected one of "
                f"{sorted(known)}"
            ) from None

    return resolve


# --- helpers ---------------------------------------------------------------------------------


def _single_proof(document: Mapping[str, Any]) -> Mapping[str, Any]:
    if "proof" not in document:
        raise CredentialError("expected a 'proof' member in the document, found none")
    proof = document["proof"]
    if isinstance(proof, list):
        raise CredentialError(
            f"expected a single proof object, found a list of {len(proof)} "
            "(proof sets and chains are not supported)"
        )
    if not isinstance(proof, Mapping):
        raise CredentialError(
            f"expected the proof to be a JSON object, found {type(proof).__name__}"
        )
    return proof


def _check_suite(options: Mapping[str, Any], what: str) -> None:
    found_type = options.get("type")
    if found_type != PROOF_TYPE:
        raise CredentialError(f"{what} type: expected {PROOF_TYPE!r}, found {found_type!r}")
    found_suite = options.get("cryptosuite")
    if found_suite != CRYPTOSUITE:
        raise CredentialError(
            f"{what} cryptosuite: expected {CRYPTOSUITE!r}, found {found_suite!r}"
        )


def _decode_proof_value(proof: Mapping[str, Any]) -> bytes:
    if "proofValue" not in proof:
        raise ProofValueError("expected a 'proofValue' in the proof, found none")
    value = proof["proofValue"]
    if not isinstance(value, str):
        raise ProofValueError(f"proofValue: expected a string, found {type(value).__name__}")
    if len(value) > _MAX_PROOF_VALUE_CHARS:
        raise ProofValueError(
            f"proofValue: expected at most {_MAX_PROOF_VALUE_CHARS} characters "
            f"(a multibase Ed25519 signature), found {len(value)}"
        )
    try:
        proof_bytes = multibase_decode(value)
    except EncodingError as exc:
        raise ProofValueError(f"proofValue is not multibase base58-btc: {exc}") from exc
    if len(proof_bytes) != _SIGNATURE_BYTES:
        raise ProofValueError(
            f"proofValue: expected a {_SIGNATURE_BYTES}-byte Ed25519 signature, "
            f"found {len(proof_bytes)} bytes"
        )
    return proof_bytes


def _check_context(document: Mapping[str, Any], proof_context: Any, allow_extension: bool) -> None:
    if "@context" not in document:
        raise CredentialError(
            f"@context mismatch: expected the document @context to be "
            f"{_show(proof_context)} (from the proof), found none"
        )
    doc_context = document["@context"]
    if allow_extension:
        # Spec rule: the document's contexts start with the proof's, in the same order.
        doc_items, proof_items = _as_list(doc_context), _as_list(proof_context)
        prefix = [_canonical(x, "@context") for x in doc_items[: len(proof_items)]]
        if len(doc_items) >= len(proof_items) and prefix == [
            _canonical(x, "proof @context") for x in proof_items
        ]:
            return
        raise CredentialError(
            f"@context mismatch: expected the document @context to start with the proof's "
            f"{_show(proof_context)}, found {_show(doc_context)}"
        )
    if _canonical(doc_context, "@context") != _canonical(proof_context, "proof @context"):
        raise CredentialError(
            f"@context mismatch: expected the document @context to equal the proof's "
            f"{_show(proof_context)}, found {_show(doc_context)}"
        )


def _as_list(context: Any) -> list[Any]:
    return list(context) if isinstance(context, list) else [context]


def _show(value: Any) -> str:
    try:
        return canonicalize(value).decode("utf-8")
    except FormatError:
        return repr(value)


def _canonical(value: Any, what: str) -> bytes:
    try:
        return canonicalize(value)
    except FormatError as exc:
        raise CredentialError(f"{what} cannot be canonicalized: {exc}") from exc


def _nonempty_str(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise CredentialError(f"{what}: expected a non-empty string, found {value!r}")
    return value


def _optional_date_time_stamp(options: Mapping[str, Any], name: str) -> str | None:
    if name not in options:
        return None
    return _check_date_time_stamp(options[name], f"proof {name}")


def _check_date_time_stamp(value: Any, what: str) -> str:
    expected = "an XML Schema dateTimeStamp such as '2023-02-24T23:36:38Z'"
    if not isinstance(value, str):
        raise CredentialError(f"{what}: expected {expected}, found {type(value).__name__}")
    match = _DATE_TIME_STAMP.fullmatch(value)
    if match is None:
        raise CredentialError(f"{what}: expected {expected}, found {value!r}")
    try:
        datetime.date(int(match["year"]), int(match["month"]), int(match["day"]))
    except ValueError:
        raise CredentialError(f"{what}: expected a real calendar date, found {value!r}") from None
    return value
