"""The result of verifying a certificate: a verdict and the named checks behind it.  Pure.

Every check has a stable id (what a client keys on) and a reason a person can read, in Chinese
and English.  The verdict is derived from the checks by one precedence rule (`decide`), the same
online (``GET /api/v1/verify/{token}``), on the landing page, and offline (``celedger verify``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = [
    "CHECK_IDS",
    "VERDICTS",
    "Check",
    "Report",
    "decide",
]

CheckId = Literal[
    "token",
    "signature",
    "key-status",
    "ledger-inclusion",
    "record-status",
    "base-recognised",
    "pdf-signature",
    "credential",
    "consistency",
]
#: The checks of a scanned token, in the order they run.
CHECK_IDS: Final = (
    "signature",
    "key-status",
    "ledger-inclusion",
    "record-status",
    "base-recognised",
)

Verdict = Literal[
    "valid",
    "valid-base-revoked-later",
    "revoked",
    "superseded",
    "key-compromised",
    "unknown",
    "forged",
]

#: Verdict → (Chinese, English) headline.
VERDICTS: Final[Mapping[str, tuple[str, str]]] = {
    "valid": ("有效：记录真实，已登记在账本中", "Valid: the record is genuine and in the ledger"),
    "valid-base-revoked-later": (
        "有效：培训时基地资格有效（基地资格已于其后被撤销）",
        "Valid: the base was recognised when it trained (its recognition was revoked later)",
    ),
    "revoked": ("已撤销：该记录已被主管部门撤销", "Revoked: an authority revoked this record"),
    "superseded": (
        "已更正：该记录已被更正，请以最新记录为准",
        "Superseded: the record was corrected; the current version is linked",
    ),
    "key-compromised": (
        "无效：签发密钥已泄露，此证明签发于泄露之后",
        "Invalid: signed after the signing key was compromised",
    ),
    "unknown": ("未找到：没有与此二维码对应的记录", "Unknown: no record answers to this code"),
    "forged": ("伪造：签名或内容不符", "Forged: the signature or the content does not match"),
}


@dataclass(frozen=True)
class Check:
    """One named check: ``ok`` is None when it could not run (an earlier check failed)."""

    id: CheckId
    ok: bool | None
    zh: str
    en: str
    #: A machine-readable outcome where one check has several (record-status: current /
    #: revoked / superseded / unknown; key-status: active / retired / compromised / unknown;
    #: pdf-signature: valid / unsigned / unreadable / broken / untrusted / appended).
    outcome: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "ok": self.ok,
            "reason": {"zh": self.zh, "en": self.en},
        }
        if self.outcome:
            out["outcome"] = self.outcome
        return out


@dataclass(frozen=True)
class Report:
    verdict: Verdict
    checks: tuple[Check, ...]
    #: What was verified, masked: kind, certificate number, records (see the API docs).
    document: Mapping[str, Any] = field(default_factory=dict)
    records: tuple[Mapping[str, Any], ...] = ()
    notes: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        return self.verdict in ("valid", "valid-base-revoked-later")

    def headline(self, lang: str = "zh") -> str:
        zh, en = VERDICTS[self.verdict]
        return zh if lang == "zh" else en

    def check(self, id_: str) -> Check | None:
        return next((c for c in self.checks if c.id == id_), None)

    def to_json(self) -> dict[str, Any]:
        zh, en = VERDICTS[self.verdict]
        return {
            "verdict": self.verdict,
            "valid": self.ok,
            "headline": {"zh": zh, "en": en},
            "checks": [c.to_json() for c in self.checks],
            "document": dict(self.document),
            "records": [dict(r) for r in self.records],
            "notes": [{"zh": z, "en": e} for z, e in self.notes],
        }


def decide(checks: Sequence[Check], *, base_revoked_later: bool = False) -> Verdict:
    """The verdict of a set of checks.  Precedence: a PDF changed after signing is forged;
    what cannot be read is unknown; a failed signature, credential or cross-check is a forgery
    (nothing else can be trusted then); a compromised key next; then the record's own status."""
    by_id = {c.id: c for c in checks}

    def failed(id_: str) -> bool:
        c = by_id.get(id_)  # type: ignore[call-overload]
        return c is not None and c.ok is False

    # A file whose own signature is broken, or that had content added after signing, was
    # changed by someone: forged, even when that change also left its QR code unreadable.
    pdf = by_id.get("pdf-signature")
    if pdf is not None and pdf.outcome in ("broken", "appended"):
        return "forged"
    if failed("token"):
        return "unknown"
    key = by_id.get("key-status")
    if key is not None and key.ok is False and key.outcome == "compromised":
        return "key-compromised"
    if any(
        failed(i) for i in ("signature", "key-status", "pdf-signature", "credential", "consistency")
    ):
        return "forged"
    record = by_id.get("record-status")
    if record is None or record.outcome == "unknown":
        return "unknown"
    # Offline there is no way to learn of a revocation: what was checked is valid, and the
    # report says what was not (record.ok is None, outcome "not-checked").
    if failed("ledger-inclusion") or failed("base-recognised"):
        return "forged"
    if record.ok is None and record.outcome != "not-checked":
        return "unknown"
    if record.outcome in ("revoked", "superseded"):
        return record.outcome  # type: ignore[return-value]
    return "valid-base-revoked-later" if base_revoked_later else "valid"
