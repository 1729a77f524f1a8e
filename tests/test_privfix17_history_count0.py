"""``_history?_count=0`` answers the total and no page links (R4: ``_count=0`` asks for the count).

Review of probe17: an instance history with ``_count=0`` added a ``next`` link whose ``_offset``
was the same as the request's (and, from an offset, a ``previous`` one naming it again), so a
client following ``next`` asked the same page for ever. Real HTTP through FastAPI, a system token.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient


def test_history_count_zero_gives_the_total_and_no_next(http: TestClient, engine: Any, client_token: Any) -> None:
    http.headers["Authorization"] = "Bearer " + client_token(engine)
    for family in ("张", "章", "彰"):
        assert http.put("/fhir/Patient/p0", json={"resourceType": "Patient", "id": "p0",
                                                  "name": [{"family": family}]}).status_code in (200, 201)
    for query in ("_count=0", "_count=0&_offset=1"):
        r = http.get(f"/fhir/Patient/p0/_history?{query}")
        assert r.status_code == 200, r.text
        bundle = r.json()
        assert bundle["total"] == 3 and "entry" not in bundle, (query, bundle)
        assert [lk["relation"] for lk in bundle["link"]] == ["self"], (query, bundle["link"])
    paged = http.get("/fhir/Patient/p0/_history?_count=1&_offset=1").json()  # a real page keeps both links
    assert sorted(lk["relation"] for lk in paged["link"]) == ["next", "previous", "self"]
