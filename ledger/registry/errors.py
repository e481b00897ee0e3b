"""The registry's error family.

Every refusal names the rule it applies (a stable id such as ``plan.decide``) and says what was
expected and what was found, in words a base's clerk understands.  The HTTP layer maps the
classes once (``api.problems.STATUS_FOR``): `PermissionDenied` → 403, `NotFound` → 404,
`StateConflict` → 409, `InstitutionBarred` and `RuleViolation` → 422.
"""

from __future__ import annotations

from ledger.errors import LedgerError

__all__ = [
    "InstitutionBarred",
    "NotFound",
    "PermissionDenied",
    "RegistryError",
    "RuleViolation",
    "StateConflict",
]


class RegistryError(LedgerError):
    """A registry or governance act was refused; ``rule`` is the stable id of the rule."""

    def __init__(self, rule: str, message: str) -> None:
        self.rule = rule
        super().__init__(f"rule {rule}: {message}")


class PermissionDenied(RegistryError):
    """The acting principal's role or scope does not allow the act."""


class NotFound(RegistryError):
    """The act names a jurisdiction, unit, base, plan or key that does not exist."""


class StateConflict(RegistryError):
    """The act is not allowed from the current state (of a base, a plan, an application)."""


class RuleViolation(RegistryError):
    """The act breaks a rule of the regulations or of the jurisdiction's policy."""


class InstitutionBarred(RuleViolation):
    """The institution may never apply again (revoked, or found to have cheated)."""
