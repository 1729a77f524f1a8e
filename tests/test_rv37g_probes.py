"""rv37g: probes of dept37 (another facility's ward as a department) and fidfix37 (AuditEvent traffic events
hidden from institution-bound callers). Real HL7 through the ingest handler / ``POST /hl7v2``, ``/fhir`` and
``/reports`` through TestClient, the real store on each backend."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_count36_refusals import _probe, _registered
from tests.test_dept37_departments import _ingest, _rows
from tests.test_fid37_refusal_view import _post_as
from tests.test_fidfix37_refusals import _codes, _named, _site
from tests.test_priv36_refusals import world  # noqa: F401  (the fixture)
from tests.test_rvlast34_probes import _feed, _rates, _zhao_order
from tests.test_rvprivprobe27_admin import _bound_system

TRAFFIC = {"hl7v2-receive", "replay", "member-number-refused"}


def _refused_by_fnzyy(engine: Engine, http: TestClient, n: str) -> tuple[dict[str, str], set[str]]:
    """FNZYY's bound HIS is refused for naming FNXRMYY's number ``n``: (FNXRMYY's bound client's headers, the ids of
    the traffic events naming ``his-fnzyy`` as the site's own client finds them)."""
    _registered(http, n)
    his = _bound_system(engine, "FNZYY")
    assert ack_code_of(_post_as(http, his, _probe(n))) == "AE"
    found = http.get("/fhir/AuditEvent", params={"agent:identifier": "his-fnzyy", "_count": "200"},
                     headers=_site(engine)).json()
    traffic = {e["id"] for e in _named(found, "his-fnzyy") if _codes(e) & TRAFFIC}
    assert traffic
    return _bound_system(engine, "FNXRMYY"), traffic


def test_a_bound_client_finds_no_other_clients_traffic_by_post_search_or_a_batch(
        world: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """``POST /fhir/AuditEvent/_search`` and a batch Bundle's GET entries (a search, its count, a read by id) go
    through the same gate as a GET search: none of them shows FNXRMYY's bound client an event of FNZYY's client's
    traffic."""
    engine, http = world
    mine, traffic = _refused_by_fnzyy(engine, http, "RVG1")
    r = http.post("/fhir/AuditEvent/_search", data={"agent:identifier": "his-fnzyy", "_count": "200"}, headers=mine)
    assert r.status_code == 200, r.text[:300]
    assert not traffic & {e["resource"]["id"] for e in r.json().get("entry") or ()}
    some = sorted(traffic)[0]
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "AuditEvent?agent:identifier=his-fnzyy&_count=200"}},
        {"request": {"method": "GET", "url": f"AuditEvent/{some}"}},
        {"request": {"method": "GET", "url": f"AuditEvent?_id={some}&_summary=count"}}]}
    r = http.post("/fhir", json=batch, headers={**mine, "Content-Type": "application/fhir+json"})
    assert r.status_code == 200, r.text[:300]
    search, read, count = r.json()["entry"]
    assert not traffic & {e["resource"]["id"] for e in (search.get("resource") or {}).get("entry") or ()}
    assert read["response"]["status"].startswith("404"), read
    assert count["resource"]["total"] == 0, count


def test_no_traffic_event_a_bound_client_reads_names_another_client_anywhere_in_it(
        world: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """Of the traffic events FNXRMYY's bound client is shown (the refusal's record naming FNZYY the institution,
    MLLP senders), none carries the other hospital's client id in any field (detail, entity, source, outcome
    text): the event is kept because its agents name institutions only, so nothing else in it may name the
    client."""
    engine, http = world
    mine, _ = _refused_by_fnzyy(engine, http, "RVG2")
    every = http.get("/fhir/AuditEvent", params={"_count": "500"}, headers=mine).json()
    shown = [e["resource"] for e in every.get("entry") or () if _codes(e["resource"]) & TRAFFIC]
    assert shown, "the refusal's record naming the institution stays readable"
    leaked = [e for e in shown if "his-fnzyy" in json.dumps(e, ensure_ascii=False)]
    assert not leaked, leaked


def _wards_like(rates: dict[str, Any], word: str) -> dict[str, int]:
    return {k: v["recognisable"] for k, v in rates.items() if word in k}


def test_two_outside_facilities_wards_of_one_code_are_two_departments(backend_settings: Any) -> None:
    """The county hospital orders on visits at two facilities no member's code names, both keying their ward NEI
    (PL-4 WAIYUAN with PL-9 外院心内科, PL-4 SHIYIYUAN with PL-9 市一院肾内科). Two wards of two hospitals: the rate
    by department must not count the first one's order under the second one's name."""
    with Engine(backend_settings) as eng:
        _feed(eng)
        _ingest(eng, _zhao_order(1, "NEI^7^1^WAIYUAN^^^^^外院心内科", "20250324"),
                _zhao_order(2, "NEI^8^1^SHIYIYUAN^^^^^市一院肾内科", "20250325"))
        assert len({r["dept"].partition("|")[0] for r in _rows(eng, "dept@~") if "|NEI|" in r["dept"]}) == 2  # (wardlink38)
        named = {**_wards_like(_rates(eng), "外院"), **_wards_like(_rates(eng), "市一院")}
        assert named == {"阜宁县人民医院 外院心内科（外部）": 1, "阜宁县人民医院 市一院肾内科（外部）": 1}, named


def test_a_community_operators_corrected_copy_is_not_the_sending_hospitals_count(
        world: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """FNZYY's HIS is refused for naming FNXRMYY's RVG4. An operator of the county medical community (remit
    ``funing``: every member, FNXRMYY the member whose numbers they are among them) replays a corrected copy naming
    RVG5. That operator is not FNZYY's: like the site's operator, their question is their own (fid37), and FNZYY's
    count -- which alerts FNXRMYY's operator that FNZYY is probing its numbers -- must not rise by it."""
    from engine.messages import message_id
    from tests.test_fid37_refusal_view import _by
    from tests.test_rvrvops26_quarantine_access import _session

    engine, http = world
    for n in ("RVG4", "RVG5"):
        _registered(http, n)
    assert ack_code_of(_post_as(http, _bound_system(engine, "FNZYY"), _probe("RVG4"))) == "AE"
    fnzyy = _by(engine, http, "institution", "FNZYY")
    cookies, csrf = _session(engine, "operator", remit="funing", name="it.funing37g")
    corrected = _probe("RVG5").replace("RVG5B|", "RVG4B|", 1)
    r = TestClient(http.app, cookies=cookies).post(f"/admin/quarantine/{message_id('FNZYY', 'RVG4B')}/replay",
                                                   content=corrected.encode(), headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["ack_code"] == "AE", r.text
    assert _by(engine, http, "client", "replay:it.funing37g") == 1
    assert _by(engine, http, "institution", "FNZYY") == fnzyy, "the community's operator is not FNZYY asking"
