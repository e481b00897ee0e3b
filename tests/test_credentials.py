"""OB 3.0 completion credentials and CLR 2.0 transcripts: build → verify, any tampering
rejected, the key rotation and compromise rules at the proof's ``created`` time, the ledger
evidence (checked against a signed checkpoint), and no personal data in the credential."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from certificates.credentials import (
    CompletionFacts,
    completion_credential,
    hashed_identity,
    transcript_credential,
)
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.entries import encode_entry
from ledger.keyset import IssuingKeyInfo, IssuingSigner, KeySet
from ledger.merkle import MemoryTree, inclusion_proof
from ledger.note import NoteSigner
from ledger.tlogproof import TlogProof
from verification.credentials import (
    CLR_CONTEXT,
    OB_CONTEXT,
    VC_CONTEXT,
    identity_hash,
    verify_credential,
    verify_holder,
)
from verification.dataintegrity import verify_proof
from verification.errors import (
    CredentialError,
    HolderMismatchError,
    KeyCompromisedError,
    KeyNotYetValidError,
    KeyResolutionError,
    KeyRetiredError,
    LedgerEvidenceError,
    ProofValueError,
    UnknownKeyError,
    VerificationError,
)
from verification.multibase import decode_ed25519_multikey

ORIGIN = "test.celedger.example/log"
LOG = NoteSigner.from_seed(ORIGIN, b"\x07" * 32)
DID = "did:web:celedger.example.cn"
ISSUER = "CE Ledger 继续教育学时登记"
T0 = datetime(2026, 1, 1, tzinfo=UTC)  # key A created
T1 = datetime(2026, 3, 15, 10, 30, tzinfo=UTC)  # signed with A
T_ROT = datetime(2026, 6, 1, tzinfo=UTC)  # A retired, B created
T2 = datetime(2026, 7, 1, tzinfo=UTC)  # signed with B
A = IssuingSigner.generate()
B = IssuingSigner.generate()
ID_NUMBER = "11010519491231002X"
PERSON_NAME = "张三丰"


def info(
    signer: IssuingSigner, status: str, created: datetime, **times: datetime
) -> IssuingKeyInfo:
    return IssuingKeyInfo(signer.kid, signer.public_key_bytes, status, created, **times)  # type: ignore[arg-type]


BEFORE_ROTATION = KeySet((info(A, "active", T0),))
AFTER_ROTATION = KeySet((info(A, "retired", T0, retired_at=T_ROT), info(B, "active", T_ROT)))


# --- a small log holding three completion entries -------------------------------------------


def _entry(n: int) -> bytes:
    return encode_entry(
        "completion",
        {
            "record": f"r{n}",
            "base": 7,
            "class": f"GX-{n:02d}",
            "year": 2026,
            "hours_tenths": 30 + n,
            "subject": f"{n:02x}" * 32,
        },
    )


TREE = MemoryTree()
for i in range(5):
    TREE.append(encode_entry("inspection", {"n": i}))
INDEXES = [TREE.append(_entry(n)) for n in range(3)]
for i in range(4):
    TREE.append(encode_entry("inspection", {"n": 100 + i}))
CHECKPOINT = sign_checkpoint(Checkpoint(ORIGIN, TREE.size, TREE.root()), LOG)


def tlog_proof(index: int) -> str:
    return TlogProof(
        index, tuple(inclusion_proof(index, TREE.size, TREE.read)), CHECKPOINT
    ).to_text()


def facts(n: int) -> CompletionFacts:
    return CompletionFacts(
        record_id=f"r{n}",
        record_token=bytes([n]) * 16,
        ledger_index=INDEXES[n],
        base_id=7,
        base_name="攀枝花学院继续教育基地",
        class_code=f"GX-{n:02d}",
        class_title=f"专业技术人员职业道德与诚信建设（{n}）",
        category="公需科目" if n == 0 else "专业科目",
        mode="面授",
        hours_tenths=30 + n,
        year=2026,
        start_date=date(2026, 3, 10),
        end_date=date(2026, 3, 12),
        result="合格",
    )


def holder(salt: str = "5a1t") -> dict[str, Any]:
    return hashed_identity(ID_NUMBER, salt=salt)


def completion(
    n: int = 0, signer: IssuingSigner = A, at: datetime = T1, **kw: Any
) -> dict[str, Any]:
    return completion_credential(
        facts(n),
        holder=holder(f"salt{n}"),
        issuer_did=DID,
        issuer_name=ISSUER,
        signer=signer,
        tlog_proof=tlog_proof(INDEXES[n]),
        ledger_entry=_entry(n),
        issued_at=at,
        credential_id=f"urn:uuid:00000000-0000-4000-8000-00000000000{n}",
        **kw,
    )


def transcript(
    creds: list[dict[str, Any]], signer: IssuingSigner = B, at: datetime = T2
) -> dict[str, Any]:
    return transcript_credential(
        creds,
        holder=holder("clr-salt"),
        issuer_did=DID,
        issuer_name=ISSUER,
        signer=signer,
        issued_at=at,
        name="2026 年度继续教育学时证明",
        description="三条记录，共 9.3 学时",
        credential_id="urn:uuid:00000000-0000-4000-8000-0000000000ff",
    )


# --- build → verify --------------------------------------------------------------------------


def test_completion_credential_shape() -> None:
    doc = completion(verification_url="HTTPS://CELEDGER.EXAMPLE.CN/V/ABC")
    assert doc["@context"][:2] == [VC_CONTEXT, OB_CONTEXT]
    assert doc["@context"][2]["celedger"] == "https://celedger.example.cn/ns/celedger/v1#"
    assert doc["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    assert doc["issuer"] == {"id": DID, "type": ["Profile"], "name": ISSUER}
    assert doc["validFrom"] == "2026-03-15T10:30:00Z"
    proof = doc["proof"]
    assert proof["cryptosuite"] == "eddsa-jcs-2022" and proof["type"] == "DataIntegrityProof"
    assert proof["verificationMethod"] == f"{DID}#{A.kid}" and proof["created"] == doc["validFrom"]
    subject = doc["credentialSubject"]
    assert "id" not in subject and subject["type"] == ["AchievementSubject"]
    assert subject["identifier"] == [holder("salt0")]
    assert subject["identifier"][0]["identityHash"] == identity_hash(ID_NUMBER, "salt0")
    assert subject["creditsEarned"] == 3.0 and subject["term"] == "2026"
    assert subject["activityStartDate"] == "2026-03-10T00:00:00+08:00"
    achievement = subject["achievement"]
    assert achievement["name"] == facts(0).class_title and achievement["creditsAvailable"] == 3.0
    assert achievement["ceHours"] == "3" and achievement["ceCategory"] == "公需科目"
    assert achievement["criteria"]["narrative"] and achievement["description"]
    assert (
        achievement["id"].startswith("urn:uuid:")
        and achievement["id"] == completion(0)["credentialSubject"]["achievement"]["id"]
    )
    assert subject["result"] == [
        {"type": ["Result"], "resultDescription": f"{achievement['id']}#result", "value": "合格"}
    ]
    (evidence,) = doc["evidence"]
    assert evidence["type"] == ["Evidence", "LedgerRecord"]
    assert evidence["id"] == "HTTPS://CELEDGER.EXAMPLE.CN/V/ABC"
    assert evidence["ledgerIndex"] == INDEXES[0] and evidence["tlogProof"] == tlog_proof(INDEXES[0])
    assert evidence["recordToken"] == "AAAAAAAAAAAAAAAAAAAAAAAAAA"
    assert evidence["ledgerEntry"]["kind"] == "completion"


def test_credentials_carry_no_personal_data() -> None:
    text = json.dumps(transcript([completion(0), completion(1)]), ensure_ascii=False)
    assert ID_NUMBER not in text and ID_NUMBER.lower() not in text and PERSON_NAME not in text
    with pytest.raises(CredentialError, match="never pass a name or ID number"):
        completion_credential(
            facts(0), holder={"name": PERSON_NAME, "id": ID_NUMBER}, issuer_did=DID, issuer_name=ISSUER,
            signer=A, tlog_proof=tlog_proof(INDEXES[0]), ledger_entry=_entry(0), issued_at=T1,
        )  # fmt: skip
    with pytest.raises(CredentialError, match="never pass"):
        completion_credential(
            facts(0), holder={**holder(), "hashed": False, "identityHash": ID_NUMBER}, issuer_did=DID,
            issuer_name=ISSUER, signer=A, tlog_proof=tlog_proof(INDEXES[0]), ledger_entry=_entry(0),
            issued_at=T1,
        )  # fmt: skip


def test_fresh_salt_per_credential() -> None:
    a, b = hashed_identity(ID_NUMBER), hashed_identity(ID_NUMBER)
    assert a["salt"] != b["salt"] and a["identityHash"] != b["identityHash"]
    assert a["identityType"] == "nationalIdentityNumber" and a["hashed"] is True


def test_completion_verifies_and_says_what_it_covers() -> None:
    doc = completion(1)
    got = verify_credential(doc, BEFORE_ROTATION, DID)
    assert got.kind == "OpenBadgeCredential" and got.issuer == DID and got.kid == A.kid
    assert got.credential_id == doc["id"] and got.created == "2026-03-15T10:30:00Z"
    assert got.ledger_indexes == (INDEXES[1],) and got.record_tokens == (b"\x01" * 16,)
    (record,) = got.records
    assert record.record_id == "r1" and record.ledger_entry == _entry(1)
    assert record.tlog_proof == tlog_proof(INDEXES[1]) and not got.inclusion_checked
    verify_holder(got, ID_NUMBER)
    with pytest.raises(HolderMismatchError, match="found no match") as err:
        verify_holder(got, "440524188001010014")
    assert "440524188001010014" not in str(err.value)


def test_inclusion_is_checked_against_the_log_key() -> None:
    got = verify_credential(
        completion(2), BEFORE_ROTATION, DID, log_origin=ORIGIN, log_verifiers=[LOG.verifier()]
    )
    assert got.inclusion_checked
    other = NoteSigner.generate(ORIGIN).verifier()
    with pytest.raises(LedgerEvidenceError, match="tlog-proof does not prove"):
        verify_credential(
            completion(2), BEFORE_ROTATION, DID, log_origin=ORIGIN, log_verifiers=[other]
        )
    with pytest.raises(ValueError, match="together"):
        verify_credential(completion(2), BEFORE_ROTATION, DID, log_origin=ORIGIN)


def test_a_credential_whose_entry_is_not_the_proven_leaf_fails_inclusion() -> None:
    # Issued (and signed) with the wrong entry for the index: the signature is fine, the
    # ledger says otherwise.
    doc = completion_credential(
        facts(0), holder=holder(), issuer_did=DID, issuer_name=ISSUER, signer=A,
        tlog_proof=tlog_proof(INDEXES[0]), ledger_entry=_entry(1), issued_at=T1,
    )  # fmt: skip
    assert verify_credential(doc, BEFORE_ROTATION, DID).records[0].ledger_index == INDEXES[0]
    with pytest.raises(LedgerEvidenceError, match="ledger index 5"):
        verify_credential(
            doc, BEFORE_ROTATION, DID, log_origin=ORIGIN, log_verifiers=[LOG.verifier()]
        )


def test_a_generic_verifier_resolving_the_did_document_accepts_it() -> None:
    # What an ordinary VC verifier does: resolve did:web → DID document → Multikey.
    did_doc = AFTER_ROTATION.did_document(DID)
    methods = {m["id"]: m for m in did_doc["verificationMethod"]}

    def resolve(method: str) -> Ed25519PublicKey:
        assert method in did_doc["assertionMethod"]
        return decode_ed25519_multikey(methods[method]["publicKeyMultibase"])

    for doc in (completion(0), transcript([completion(0), completion(1, B, T2)])):
        info_ = verify_proof(doc, resolve)
        assert info_.verification_method.startswith(doc["issuer"]["id"] + "#")


# --- tampering -------------------------------------------------------------------------------


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*path, k))
    elif isinstance(value, list):
        for n, v in enumerate(value):
            yield from _paths(v, (*path, n))


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value[:-1] + chr(ord(value[-1]) ^ 1) if value else "x"
    if isinstance(value, list):
        return [*value, "x"]
    if isinstance(value, dict):
        return {**value, "extra": "x"}
    return "x"


def _tamperings(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path in _paths(doc):
        if not path:
            continue
        changed = copy.deepcopy(doc)
        parent = _get(changed, path[:-1])
        parent[path[-1]] = _changed(parent[path[-1]])
        yield f"change {path}", changed
        if isinstance(parent, dict):
            removed = copy.deepcopy(doc)
            del _get(removed, path[:-1])[path[-1]]
            yield f"remove {path}", removed


def test_any_change_to_a_completion_is_rejected() -> None:
    doc = completion(0)
    verify_credential(doc, BEFORE_ROTATION, DID)
    count = 0
    for what, changed in _tamperings(doc):
        with pytest.raises(VerificationError):
            verify_credential(changed, BEFORE_ROTATION, DID)
            pytest.fail(f"accepted after {what}")
        count += 1
    assert count > 100


def test_any_change_to_a_transcript_is_rejected() -> None:
    doc = transcript([completion(0), completion(1, B, T2)])
    verify_credential(doc, AFTER_ROTATION, DID)
    count = 0
    for what, changed in _tamperings(doc):
        with pytest.raises(VerificationError):
            verify_credential(changed, AFTER_ROTATION, DID)
            pytest.fail(f"accepted after {what}")
        count += 1
    assert count > 250


def test_signature_failure_is_a_proof_value_error() -> None:
    doc = completion(0)
    doc["credentialSubject"]["creditsEarned"] = 90.0
    with pytest.raises(ProofValueError, match="signature does not verify"):
        verify_credential(doc, BEFORE_ROTATION, DID)


# --- key rules at the proof's created time ---------------------------------------------------


def test_signed_before_rotation_still_verifies_after_rotation() -> None:
    doc = completion(0, A, T1)
    assert verify_credential(doc, AFTER_ROTATION, DID).kid == A.kid
    assert verify_credential(completion(1, B, T2), AFTER_ROTATION, DID).kid == B.kid


def test_retired_key_cannot_sign_after_rotation() -> None:
    with pytest.raises(KeyRetiredError, match="retired at 2026-06-01T00:00:00Z"):
        verify_credential(completion(0, A, T_ROT), AFTER_ROTATION, DID)


def test_compromise_rejects_only_what_was_signed_at_or_after_it() -> None:
    compromised_at = T1 + timedelta(days=1)
    keys = KeySet((info(A, "compromised", T0, compromised_at=compromised_at),))
    assert verify_credential(completion(0, A, T1), keys, DID).kid == A.kid
    with pytest.raises(KeyCompromisedError, match="compromised from 2026-03-16T10:30:00Z"):
        verify_credential(completion(0, A, compromised_at), keys, DID)
    with pytest.raises(KeyCompromisedError):
        verify_credential(completion(0, A, T2), keys, DID)


def test_a_transcript_fails_when_one_inner_credential_fails() -> None:
    compromised = KeySet(
        (
            info(A, "compromised", T0, retired_at=T_ROT, compromised_at=T1 + timedelta(days=1)),
            info(B, "active", T_ROT),
        )
    )
    ok = transcript([completion(0, A, T1), completion(1, B, T2)])
    assert verify_credential(ok, compromised, DID).ledger_indexes == (INDEXES[0], INDEXES[1])
    bad = transcript([completion(1, B, T2), completion(0, A, T1 + timedelta(days=2))])
    with pytest.raises(KeyCompromisedError, match=r"^verifiableCredential\[1\]: issuing key"):
        verify_credential(bad, compromised, DID)


def test_transcript_covers_every_record_once() -> None:
    creds = [completion(0), completion(1), completion(2, B, T2)]
    got = verify_credential(
        transcript(creds), AFTER_ROTATION, DID, log_origin=ORIGIN, log_verifiers=[LOG.verifier()]
    )
    assert got.kind == "ClrCredential" and got.kid == B.kid and got.inclusion_checked
    assert [r.record_id for r in got.records] == ["r0", "r1", "r2"]
    assert got.ledger_indexes == tuple(INDEXES)
    assert [r.credential_id for r in got.records] == [c["id"] for c in creds]
    verify_holder(got, ID_NUMBER)
    doc = transcript(creds)
    assert doc["@context"][:3] == [VC_CONTEXT, CLR_CONTEXT, OB_CONTEXT]
    assert doc["type"] == ["VerifiableCredential", "ClrCredential"]
    assert doc["credentialSubject"]["type"] == ["ClrSubject"]
    assert doc["credentialSubject"]["verifiableCredential"] == creds
    with pytest.raises(LedgerEvidenceError, match="expected each record once, found 'r0' again"):
        verify_credential(transcript([completion(0), completion(0, B, T2)]), AFTER_ROTATION, DID)


def test_transcript_builder_refuses_foreign_or_unsigned_credentials() -> None:
    foreign = completion_credential(
        facts(0), holder=holder(), issuer_did="did:web:other.example", issuer_name="x", signer=A,
        tlog_proof=tlog_proof(INDEXES[0]), ledger_entry=_entry(0), issued_at=T1,
    )  # fmt: skip
    with pytest.raises(
        CredentialError,
        match=re.escape(
            "expected a signed credential of 'did:web:celedger.example.cn', "
            "found issuer 'did:web:other.example'"
        ),
    ):
        transcript([foreign])
    unsigned = {k: v for k, v in completion(0).items() if k != "proof"}
    with pytest.raises(CredentialError, match="without a proof"):
        transcript([unsigned])
    with pytest.raises(CredentialError, match="at least one"):
        transcript([])


# --- issuer, key and evidence refusals -------------------------------------------------------


def test_other_issuer_or_unknown_key_is_refused() -> None:
    doc = completion(0)
    with pytest.raises(CredentialError, match="@context"):
        verify_credential(doc, BEFORE_ROTATION, "did:web:evil.example")
    with pytest.raises(UnknownKeyError, match=f"unknown issuing key '{A.kid}'"):
        verify_credential(doc, KeySet((info(B, "active", T0),)), DID)
    with pytest.raises(KeyNotYetValidError):
        verify_credential(doc, KeySet((info(A, "active", T_ROT),)), DID)
    with pytest.raises(CredentialError, match="did:web"):
        verify_credential(doc, BEFORE_ROTATION, "did:key:z6Mk")


def test_issuer_must_be_the_did_controlling_the_key() -> None:
    other = "did:web:evil.example"
    doc = completion_credential(
        facts(0), holder=holder(), issuer_did=other, issuer_name="evil", signer=A,
        tlog_proof=tlog_proof(INDEXES[0]), ledger_entry=_entry(0), issued_at=T1,
    )  # fmt: skip
    with pytest.raises(VerificationError):
        verify_credential(doc, BEFORE_ROTATION, DID)
    # Same contexts and method, only the issuer swapped (and re-signed): still refused.
    doc = completion(0)
    del doc["proof"]
    doc["issuer"]["id"] = other
    from verification.dataintegrity import create_proof

    resigned = create_proof(doc, A.private_key, f"{DID}#{A.kid}", "2026-03-15T10:30:00Z")
    with pytest.raises(
        CredentialError, match=re.escape("issuer: expected 'did:web:celedger.example.cn'")
    ):
        verify_credential(resigned, BEFORE_ROTATION, DID)


def _resigned(doc: dict[str, Any], created: str | None = "2026-03-15T10:30:00Z") -> dict[str, Any]:
    from verification.dataintegrity import create_proof

    doc = {k: v for k, v in doc.items() if k != "proof"}
    signed = create_proof(doc, A.private_key, f"{DID}#{A.kid}", created or "2026-03-15T10:30:00Z")
    if created is None:
        del signed["proof"]["created"]
    return signed


@pytest.mark.parametrize(
    ("edit", "error", "message"),
    [
        (lambda d: d["evidence"].clear(), LedgerEvidenceError, "exactly one"),
        (
            lambda d: d["evidence"].append(copy.deepcopy(d["evidence"][0])),
            LedgerEvidenceError,
            "exactly one",
        ),
        (
            lambda d: d["evidence"][0].update(ledgerIndex=INDEXES[1]),
            LedgerEvidenceError,
            "tlog-proof index to equal ledgerIndex 6, found 5",
        ),
        (lambda d: d["evidence"][0].update(recordToken="aaaa"), LedgerEvidenceError, "recordToken"),
        (
            lambda d: d["evidence"][0].update(ledgerEntry={"kind": "completion"}),
            LedgerEvidenceError,
            "not a ledger entry",
        ),
        (
            lambda d: d["evidence"][0].update(tlogProof="c2sp.org/tlog-proof@v1\n"),
            LedgerEvidenceError,
            "tlogProof",
        ),
        (
            lambda d: d["credentialSubject"].update(id="did:example:holder"),
            CredentialError,
            "only by hashed identifiers",
        ),
        (
            lambda d: d["credentialSubject"]["identifier"][0].update(hashed=False),
            CredentialError,
            "hashed IdentityObject",
        ),
        (
            lambda d: d["credentialSubject"]["identifier"][0].update(identityHash=ID_NUMBER),
            CredentialError,
            "identityHash",
        ),
        (lambda d: d.update(validFrom="2026-03-15"), CredentialError, "validFrom"),
        (
            lambda d: d.update(type=["VerifiableCredential", "AchievementCredential"]),
            CredentialError,
            "credential type",
        ),
    ],
)
def test_shape_rules_hold_even_for_a_validly_signed_document(
    edit: Any, error: type[Exception], message: str
) -> None:
    doc = completion(0)
    edit(doc)
    with pytest.raises(error, match=message):
        verify_credential(_resigned(doc), BEFORE_ROTATION, DID)


def test_proof_without_created_is_refused() -> None:
    with pytest.raises(CredentialError, match="proof created: expected the signing time"):
        verify_credential(_resigned(completion(0), created=None), BEFORE_ROTATION, DID)


def test_verification_method_must_be_the_issuers() -> None:
    from verification.dataintegrity import create_proof

    doc = {k: v for k, v in completion(0).items() if k != "proof"}
    signed = create_proof(
        doc, A.private_key, f"did:web:evil.example#{A.kid}", "2026-03-15T10:30:00Z"
    )
    with pytest.raises(
        KeyResolutionError, match=re.escape("expected 'did:web:celedger.example.cn#<kid>'")
    ):
        verify_credential(signed, BEFORE_ROTATION, DID)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"tlog_proof": tlog_proof(INDEXES[1])},
            "tlog-proof index: expected the record's ledger index 5, found 6",
        ),
        ({"ledger_entry": b'{"kind":"completion","v":1, "x":1}'}, "ledger entry"),
        ({"issuer_did": "https://celedger.example.cn"}, "did:web"),
    ],
)
def test_builder_refusals(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {
        "holder": holder(), "issuer_did": DID, "issuer_name": ISSUER, "signer": A,
        "tlog_proof": tlog_proof(INDEXES[0]), "ledger_entry": _entry(0), "issued_at": T1,
    }  # fmt: skip
    args.update(kwargs)
    with pytest.raises(CredentialError, match=message):
        completion_credential(facts(0), **args)


def test_facts_are_checked() -> None:
    with pytest.raises(CredentialError, match="hours"):
        CompletionFacts(
            "r",
            b"\x00" * 16,
            0,
            7,
            "b",
            "c",
            "t",
            "公需科目",
            "面授",
            -1,
            2026,
            date(2026, 1, 1),
            date(2026, 1, 2),
            "合格",
        )
    with pytest.raises(CredentialError, match="dates"):
        CompletionFacts(
            "r",
            b"\x00" * 16,
            0,
            7,
            "b",
            "c",
            "t",
            "公需科目",
            "面授",
            1,
            2026,
            date(2026, 1, 2),
            date(2026, 1, 1),
            "合格",
        )
    with pytest.raises(CredentialError, match="record token: expected 16 bytes, found 15"):
        CompletionFacts(
            "r",
            b"\x00" * 15,
            0,
            7,
            "b",
            "c",
            "t",
            "公需科目",
            "面授",
            1,
            2026,
            date(2026, 1, 1),
            date(2026, 1, 1),
            "合格",
        )
    with pytest.raises(CredentialError, match="class_title"):
        CompletionFacts(
            "r",
            b"\x00" * 16,
            0,
            7,
            "b",
            "c",
            " ",
            "公需科目",
            "面授",
            1,
            2026,
            date(2026, 1, 1),
            date(2026, 1, 1),
            "合格",
        )
