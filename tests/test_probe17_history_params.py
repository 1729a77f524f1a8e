"""An instance ``_history`` answers ``_since`` and ``_count`` as R4 says, and refuses what it does not do.

``GET Patient/p1/_history?_since=T`` answered every version, the ones before ``T`` too, and
``_count=1`` every version on one page: a client syncing changes "since" its last look was handed
the whole history as if it were new. Now ``_since`` keeps the versions made at or after its
instant, ``_count``/``_offset`` page them (``total`` is all that match, with ``next``/``previous``
links), and ``_at``, ``_list`` or an unknown parameter is a 400 OperationOutcome naming it, as
search answers. Real HTTP through FastAPI with a system client's token.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi.testclient import TestClient


def _versions(bundle: dict[str, Any]) -> list[str]:
    return [e["response"]["etag"] for e in bundle.get("entry", [])]


def test_history_since_count_and_refusals(http: TestClient, engine: Any, client_token: Any) -> None:
    http.headers["Authorization"] = "Bearer " + client_token(engine)
    stamps = []
    for family in ("张", "章", "彰"):
        r = http.put("/fhir/Patient/p1", json={"resourceType": "Patient", "id": "p1", "name": [{"family": family}]})
        assert r.status_code in (200, 201), r.text
        stamps.append(r.json()["meta"]["lastUpdated"])
    everything = http.get("/fhir/Patient/p1/_history").json()
    assert _versions(everything) == ['W/"3"', 'W/"2"', 'W/"1"'] and everything["total"] == 3
    # created by PUT (update as create): listed as the PUT it was (txmend25; it was told as a POST)
    assert [e["request"]["method"] for e in everything["entry"]] == ["PUT", "PUT", "PUT"]

    since = http.get("/fhir/Patient/p1/_history", params={"_since": stamps[1]}).json()
    assert _versions(since) == ['W/"3"', 'W/"2"'] and since["total"] == 2
    later = http.get("/fhir/Patient/p1/_history", params={"_since": "2999-01-01T00:00:00Z"}).json()
    assert later["total"] == 0 and "entry" not in later

    first = http.get("/fhir/Patient/p1/_history", params={"_count": "1"}).json()
    assert _versions(first) == ['W/"3"'] and first["total"] == 3
    pages, url = [], "/fhir/Patient/p1/_history?_count=2"
    while url:
        page = http.get(url).json()
        pages.append(_versions(page))
        nxt = [lk["url"] for lk in page["link"] if lk["relation"] == "next"]
        url = urlsplit(nxt[0])._replace(scheme="", netloc="").geturl() if nxt else ""
    assert pages == [['W/"3"', 'W/"2"'], ['W/"1"']]
    # the creating version, on the last page (a PUT that created: 201; txmend25)
    assert (page["entry"][0]["request"]["method"], page["entry"][0]["response"]["status"]) == ("PUT", "201")

    for bad in ({"_at": stamps[0]}, {"_list": "x"}, {"foo": "1"}, {"_since": "yesterday"}, {"_count": "-1"}):
        r = http.get("/fhir/Patient/p1/_history", params=bad)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["resourceType"] == "OperationOutcome"
