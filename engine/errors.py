"""Errors that carry their FHIR meaning: HTTP status, OperationOutcome issue code and severity.

Every layer raises these; the API turns any of them into an ``OperationOutcome`` with the right
status (see ``engine.api.outcomes``), so a bad request never leaks a stack trace or another
patient's data.
"""

from __future__ import annotations

from typing import Any


class FhirError(Exception):
    status: int = 400
    code: str = "invalid"  # http://hl7.org/fhir/issue-type

    def __init__(
        self,
        diagnostics: str,
        *,
        expression: list[str] | None = None,
        status: int | None = None,
        code: str | None = None,
        issues: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(diagnostics)
        self.diagnostics = diagnostics
        self.expression = expression
        self.headers = headers or {}
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.extra_issues = issues or []

    def outcome(self) -> dict[str, Any]:
        issue: dict[str, Any] = {"severity": "error", "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            issue["expression"] = self.expression
        return {"resourceType": "OperationOutcome", "issue": [issue, *self.extra_issues]}


class BadRequest(FhirError):
    status, code = 400, "invalid"


class Unauthorized(FhirError):
    status, code = 401, "login"


class Forbidden(FhirError):
    status, code = 403, "forbidden"


class NotFound(FhirError):
    status, code = 404, "not-found"


class MethodNotAllowed(FhirError):
    status, code = 405, "not-supported"


class Conflict(FhirError):
    status, code = 409, "conflict"


class WrittenMeanwhile(Conflict):
    """A version clash: the stored version moved between read and write (MongoDB's compare-and-set,
    ``MongoFhir._replace_current``). Only this Conflict becomes an If-Match update's 412; a business
    rule's 409 (a workflow state refused) stays 409 (txfix25)."""


class ClaimRaced(Conflict):
    """Another conditional create of the same condition claimed it at the same moment (MongoDB:
    the claim's insert or compare-and-set refused -- a duplicate key, a write conflict). On a
    replica set such an error has aborted the transaction on the server, so nothing more may run
    in it: the block ends, and the interaction runs once more in a new one, where it finds the
    winner's resource (or the claim under way: 409) (``Writes._claimed``; claimfix29)."""


class Gone(FhirError):
    status, code = 410, "deleted"


class PreconditionFailed(FhirError):
    status, code = 412, "conflict"


class Unprocessable(FhirError):
    """Validation failure: 422 with one issue per offending element path."""

    status, code = 422, "processing"


class WithheldMatch(PreconditionFailed):
    """A conditional create's or update's one-identifier search matches a record labelled beyond
    the caller (``ScopedRepository.conditional_matches``): nothing is written. A conditional
    reference answers it as "matches no X", the same text as a search that matches nothing."""
