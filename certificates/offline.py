"""Offline verification: a certificate PDF or a token, checked with a saved bundle, no network.

The bundle (``GET /api/v1/verify/bundle``, or ``celedger keys bundle``) is one JSON file: the
issuer's DID and key set (JWKS), the log's origin and verifier key, the latest signed checkpoint
and the PDF-signing root certificate.  Offline, everything signed can be checked — the token,
the credential, the PDF signature, each record's inclusion proof against a checkpoint signed by
the log's key — but not what happened since the bundle was saved: a revocation needs the
online service, so ``record-status`` is reported as not checked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from certificates.model import CertificateError
from certificates.pdf import extract_attachments
from certificates.verifier import check_pdf_signature, read_qr
from ledger.checkpoint import open_checkpoint
from ledger.errors import LedgerError
from ledger.keyset import KeySet
from ledger.note import NoteVerifier
from verification.credentials import verify_credential
from verification.errors import (
    KeyCompromisedError,
    KeyResolutionError,
    TokenFormatError,
    VerificationError,
)
from verification.report import Check, Report, decide
from verification.token import token_from_url, verify_token

__all__ = ["Bundle", "verify_pdf_offline", "verify_token_offline"]

_NOT_CHECKED = Check(
    "record-status",
    None,
    "离线核验无法得知撤销或更正，请联网核验最新状态",
    "offline: revocations and corrections since the bundle was saved are not known",
    "not-checked",
)


@dataclass(frozen=True)
class Bundle:
    did: str
    keys: KeySet
    origin: str
    log_verifier: NoteVerifier
    checkpoint: str
    pdf_roots: tuple[Any, ...]

    @classmethod
    def from_json(cls, data: bytes | str) -> Bundle:
        from pyhanko.keys import load_certs_from_pemder_data

        doc = json.loads(data)
        for member in ("did", "jwks", "origin", "log_key", "checkpoint", "pdf_root_pem"):
            if member not in doc:
                raise ValueError(f"bundle: expected member {member!r}, found none")
        verifier = NoteVerifier.from_vkey(doc["log_key"])
        open_checkpoint(doc["checkpoint"], doc["origin"], [verifier])  # signed by that log
        roots = tuple(load_certs_from_pemder_data(doc["pdf_root_pem"].encode()))
        return cls(
            did=doc["did"],
            keys=KeySet.from_jwks(json.dumps(doc["jwks"])),
            origin=doc["origin"],
            log_verifier=verifier,
            checkpoint=doc["checkpoint"],
            pdf_roots=roots,
        )


def _token_checks(text: str, keys: KeySet) -> tuple[bytes | None, list[Check]]:
    try:
        claims = verify_token(token_from_url(text) if "/" in text else text, keys)
    except TokenFormatError:
        return None, [Check("token", False, "不是本系统签发的二维码内容", "not a token")]
    except KeyCompromisedError as exc:
        return None, [Check("key-status", False, "签发密钥已泄露", str(exc), "compromised")]
    except (KeyResolutionError, VerificationError) as exc:
        return None, [Check("signature", False, "签名不符", f"signature fails: {exc}")]
    return claims.record_token, [
        Check("signature", True, "二维码签名有效", f"signed by issuing key {claims.kid}"),
        Check("key-status", True, "签发时密钥有效", "the key was valid when it signed", "active"),
    ]


def verify_token_offline(text: str, bundle: Bundle) -> Report:
    _, checks = _token_checks(text.strip(), bundle.keys)
    if all(c.ok for c in checks):
        checks.append(_NOT_CHECKED)
    return Report(decide(checks), tuple(checks), {"offline": True})


def verify_pdf_offline(pdf: bytes, bundle: Bundle) -> Report:
    signature = check_pdf_signature(pdf, bundle.pdf_roots)
    tokens: set[bytes] = set()
    try:
        doc = json.loads(extract_attachments(pdf)["credential.json"])
        verified = verify_credential(
            doc,
            bundle.keys,
            bundle.did,
            log_origin=bundle.origin,
            log_verifiers=[bundle.log_verifier],
        )
        tokens = set(verified.record_tokens)
        transcript = verified.kind == "ClrCredential"
        credential = Check(
            "credential", True, "内嵌凭证签名有效", f"the embedded {verified.kind} verifies"
        )
        inclusion = Check(
            "ledger-inclusion",
            True,
            "每条记录的账本包含证明均由账本密钥签名的检查点证实",
            "every record's inclusion proof checks against a checkpoint signed by the log key",
        )
    except (CertificateError, KeyError, ValueError, VerificationError, LedgerError) as exc:
        credential = Check("credential", False, "内嵌凭证缺失或无效", f"missing or invalid: {exc}")
        inclusion = Check("ledger-inclusion", None, "未检查", "not checked")
        transcript = False
    qr = read_qr(pdf)
    token, token_checks = (
        None,
        [Check("token", False, "没有可识别的二维码", "no readable QR code")],
    )
    if qr is not None:
        token, token_checks = _token_checks(qr, bundle.keys)
    agree = token is not None and token in tokens
    if transcript and token is not None:
        # A transcript's QR names the transcript, which only the service can resolve.
        consistency = Check(
            "consistency",
            None,
            "学时证明的二维码需联网对照",
            "a transcript's QR is matched to its records online only",
        )
    else:
        consistency = Check(
            "consistency",
            agree,
            "二维码与内嵌凭证一致" if agree else "二维码与内嵌凭证不一致",
            "the QR code and the credential name the same record"
            if agree
            else "the QR code and the credential do not name the same record",
        )
    checks = [signature, credential, consistency, *token_checks, inclusion, _NOT_CHECKED]
    return Report(decide(checks), tuple(checks), {"offline": True})
