"""OAuth2 errors (RFC 6749 §5.2, RFC 7009, RFC 7662): the JSON shape OAuth clients expect.

These are distinct from FHIR errors on purpose: the token endpoint answers OAuth clients, which
parse ``{"error": ..., "error_description": ...}``, not OperationOutcomes.
"""

from __future__ import annotations


class OAuthError(Exception):
    def __init__(self, error: str, description: str, *, status: int = 400,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.headers = headers or {}

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}
