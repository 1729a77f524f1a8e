"""The hot read's answer is built without Starlette's header comprehensions (forty-first round, perfa41): its
headers must be exactly, in order, what ``Response(body, media_type=FHIR_JSON, headers={"ETag": ...,
"Last-Modified": ...})`` sends, then ``Cache-Control: no-store`` -- and its body the stored bytes -- through the
real app over HTTP, for a fresh record and one updated since (its version and date move)."""

from __future__ import annotations

from starlette.responses import Response

from engine.api.fhir import _http_date
from engine.api.no_store import NO_STORE
from engine.api.outcomes import FHIR_JSON


def _observation(value: str) -> dict:
    return {"resourceType": "Observation", "id": "hdr1", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "718-7", "display": "血红蛋白"}]},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-12-05",
            "performer": [{"reference": "Organization/org1"}], "valueString": value}


def test_the_fast_reads_headers_are_the_dict_built_responses_in_order(engine, http, client_token) -> None:  # noqa: ANN001
    token = client_token(engine, "system/*.rs")
    engine.repository.update({"resourceType": "Organization", "id": "org1", "name": "阜宁县人民医院"})
    for value in ("一", "二"):  # the second read sees version 2 and its own date
        engine.repository.update(_observation(value))
        rec = engine.repository.backend.current_many([("Observation", "hdr1")])[("Observation", "hdr1")]
        answer = http.get("/fhir/Observation/hdr1", headers={"Authorization": f"Bearer {token}",
                                                             "Accept": "application/fhir+json"})
        assert answer.status_code == 200, answer.text
        assert answer.content == rec.body  # the stored bytes themselves
        expected = Response(rec.body, media_type=FHIR_JSON, headers={
            "ETag": f'W/"{rec.version}"', "Last-Modified": _http_date(rec.updated)}).raw_headers + [NO_STORE]
        sent = [(k.lower(), v) for k, v in answer.headers.raw]
        assert sent[:len(expected)] == expected, sent
        assert answer.headers["etag"] == f'W/"{rec.version}"' and rec.version == (1 if value == "一" else 2)
