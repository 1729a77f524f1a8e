"""The one representation huren answers in: FHIR JSON.

A client names the representation it wants with ``_format`` (R4 http.html: it overrides the
``Accept`` header) or, without one, with ``Accept``. huren has no XML or Turtle writer, so a
``_format`` that is not JSON is refused with 406 Not Acceptable and an OperationOutcome, on the data
routes as on ``metadata``: answering JSON under a 200 to a client that asked for XML hands it a body
it did not ask for and cannot parse. On the FHIR routes (``/fhir``, ``metadata``) an ``Accept``
that admits no JSON (``application/fhir+xml`` alone; JSON only at ``q=0``) is refused the same way
(``fhir_negotiation``; twenty-fifth round, txmend25); a missing Accept, ``*/*`` or
``application/*`` take JSON.
"""

from __future__ import annotations

from fastapi import Request

from engine.errors import FhirError

JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json", "application/json+fhir"})
# media ranges of an Accept header that FHIR JSON satisfies
_JSON_RANGES = JSON_FORMATS | {"*/*", "application/*", "*"}


def require_json(value: str | None) -> None:
    """Raise 406 unless ``value`` (a ``_format``; None: not given) names FHIR JSON."""
    if value is not None and value.split(";")[0].strip().lower() not in JSON_FORMATS:
        raise FhirError(f"_format {value!r} is not supported; huren speaks application/fhir+json",
                        status=406, code="not-supported")


def accepts_json(accept: str) -> bool:
    """Whether an ``Accept`` header (RFC 9110 12.5.1) admits FHIR JSON, the most specific range
    deciding: a JSON media type named in it (its highest q) over ``application/*`` over ``*/*``.
    ``application/fhir+json;q=0, application/json;q=0, */*`` refuses JSON: the wildcard speaks for
    the types not named (it admitted JSON until txfix25). A blank header admits anything."""
    ranges = [r for r in accept.split(",") if r.strip()]
    if not ranges:
        return True
    best: dict[int, float] = {}  # specificity (2 a JSON type, 1 application/*, 0 */*) -> highest q
    for item in ranges:
        media, *params = item.split(";")
        media = media.strip().lower()
        if media not in _JSON_RANGES:
            continue
        rank = 2 if media in JSON_FORMATS else (1 if media == "application/*" else 0)
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 1.0  # a malformed weight is not read as a refusal
        best[rank] = max(q, best.get(rank, q))
    return bool(best) and best[max(best)] > 0


def require_json_accept(request: Request) -> None:
    """406 when the request has no ``_format`` (which overrides Accept) and its ``Accept`` admits no JSON."""
    if request.query_params.getlist("_format"):
        return
    accept = ",".join(request.headers.getlist("accept"))
    if not accepts_json(accept):
        raise FhirError(f"Accept {accept[:80]!r} admits no representation huren has; huren speaks "
                        "application/fhir+json", status=406, code="not-supported")


async def json_only(request: Request) -> None:
    """Router dependency: every ``_format`` of the request names JSON."""
    for value in request.query_params.getlist("_format"):
        require_json(value)


async def fhir_negotiation(request: Request) -> None:
    """Router dependency of the FHIR routes: every ``_format`` names JSON, and without one the
    ``Accept`` header admits JSON (R4 http.html#mime-type)."""
    await json_only(request)
    require_json_accept(request)
