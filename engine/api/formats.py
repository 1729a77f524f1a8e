"""The one representation huren answers in: FHIR JSON.

A client names the representation it wants with ``_format`` (R4 http.html: it overrides the
``Accept`` header). huren has no XML or Turtle writer, so a ``_format`` that is not JSON is refused
with 406 Not Acceptable and an OperationOutcome, on the data routes as on ``metadata``: answering
JSON under a 200 to a client that asked for XML hands it a body it did not ask for and cannot parse.
"""

from __future__ import annotations

from fastapi import Request

from engine.errors import FhirError

JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json", "application/json+fhir"})


def require_json(value: str | None) -> None:
    """Raise 406 unless ``value`` (a ``_format``; None: not given) names FHIR JSON."""
    if value is not None and value.split(";")[0].strip().lower() not in JSON_FORMATS:
        raise FhirError(f"_format {value!r} is not supported; huren speaks application/fhir+json",
                        status=406, code="not-supported")


async def json_only(request: Request) -> None:
    """Router dependency: every ``_format`` of the request names JSON."""
    for value in request.query_params.getlist("_format"):
        require_json(value)
