"""wardlink38: a ward at a facility no member's code names is keyed by that ward (gfix37's strict xfail).

dept37/gfix37 stored such a ward as ``dept@|<code>|<name>``: one key for every outside facility, so a renamed
ward there (血液科病区, then 血液内科) could not be told from two outside hospitals' wards of one code, and was
shown as two rows. The key now holds the ward Location's own id (``dept@~<id>|<code>|<name>``: the converter
keys the ward by sender, PL-4 and PL-1, so the id is that facility's ward of that code, kept by a rename) and the
row is named as ``engine.wards.ward_name`` names a ward: the Location's name now, else the latest named tally of
that ward's own rows, else the row's words. Rows stored before (``dept@|``) are still read, by their own words.

Real HL7 through the ingest handler (orders) and ``POST /hl7v2`` (a resident's visits) into the real store on
SQLite and mongomock, read back through ``GET /reports/duplicates``, ``$evaluate-measure`` and ``/ui/me/wards``;
the stored-before rows are written straight into the real store's tallies, as dept37's tests write them."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.test_dept37_departments import _ingest, _measure_departments, _rows
from tests.test_deptfix34_departments import _wards
from tests.test_mewards36_wards import _system, _visit
from tests.test_resident_record_ui import pid
from tests.test_resident_ui import nid
from tests.test_rvlast34_probes import _feed, _rates, _zhao_order

ER7 = "x-application/hl7-v2+er7"


def _outside(rates: dict[str, Any]) -> dict[str, int]:
    return _wards(rates, "外院", "市一院", "外部代码")


def test_a_renamed_outside_ward_is_one_row_two_hospitals_wards_of_one_code_two(backend_settings: Any) -> None:
    """WAIYUAN's NEI (外院心内科, renamed 外院心血管科 by a later PL-9, then sent by code alone) and SHIYIYUAN's NEI
    (市一院肾内科): two rows, WAIYUAN's named as its ward is named now, in every period and in the MeasureReport's
    department stratum; WAIYUAN's three rows hold one ward id, SHIYIYUAN's another."""
    with Engine(backend_settings) as eng:
        _feed(eng)
        _ingest(eng, _zhao_order(1, "NEI^7^1^WAIYUAN^^^^^外院心内科", "20250324"),
                _zhao_order(2, "NEI^8^1^SHIYIYUAN^^^^^市一院肾内科", "20250325"),
                _zhao_order(3, "NEI^9^1^WAIYUAN^^^^^外院心血管科", "20250326"),
                _zhao_order(4, "NEI^6^1^WAIYUAN", "20250327"))
        rows = _rows(eng, "dept@~")
        ids = {r["dept"]: r["dept"].partition("|")[0] for r in rows}
        # (the code-only order's row holds the ward's name when it was checked: 外院心血管科)
        assert sorted(d.partition("|")[2] for d in ids) == sorted(["NEI|外院心内科", "NEI|外院心血管科", "NEI|市一院肾内科"])
        waiyuan = {at for d, at in ids.items() if "市一院" not in d}
        assert len(waiyuan) == 1 and ids[next(d for d in ids if "市一院" in d)] not in waiyuan, ids
        assert not _rows(eng, "dept@|"), "no row is stored under the one key of every outside facility any more"
        want = {"阜宁县人民医院 外院心血管科（外部）": 3, "阜宁县人民医院 市一院肾内科（外部）": 1}
        assert _outside(_rates(eng)) == want
        # a report of the first day alone: its one row said 外院心内科; the ward is named as it is now
        assert _outside(_rates(eng, **{"from": "2025-03-24", "to": "2025-03-24"})) == {"阜宁县人民医院 外院心血管科（外部）": 1}
        assert {k: v for k, v in _measure_departments(eng).items() if k in want} == want
        # the county's own NEI (心内科病区 in its table) counts none of them
        assert "阜宁县人民医院 心内科病区" not in _outside(_rates(eng))


def test_rows_stored_before_are_read_by_their_own_words(backend_settings: Any) -> None:
    """Tallies dept37/gfix37 wrote (``dept@|NEI|外院心内科``, ``dept@|NEI|``) beside today's rows of WAIYUAN's NEI:
    each old row is named by its own words, never folded into a ward by its code (which facility it was is not
    in it) -- and never read as the county's own NEI."""
    with Engine(backend_settings) as eng:
        _feed(eng)
        county = _rates(eng)["阜宁县人民医院 心内科病区"]["recognisable"]  # (the demo feeds' own NEI order)
        _ingest(eng, _zhao_order(1, "NEI^7^1^WAIYUAN^^^^^外院心血管科", "20250326"))
        eng.recognition.check_days.insert_many([
            {"_id": f"wl38-old-{i}", "dept": d, "inst": "FNXRMYY", "day": day, "item": "CBC", "outcome": "recognised",
             "count": 1} for i, (d, day) in enumerate((("dept@|NEI|外院心内科", "2025-03-24"),
                                                       ("dept@|NEI|外院心内科", "2025-03-25"), ("dept@|NEI|", "2025-03-25")))])
        named = _wards(_rates(eng), "外院", "外部代码", "心内科")
        assert named == {"阜宁县人民医院 外院心血管科（外部）": 1, "阜宁县人民医院 外院心内科（外部）": 2, "阜宁县人民医院 NEI（外部代码）": 1,
                         "阜宁县人民医院 心内科病区": county}, named


def test_a_ward_whose_location_is_not_found_is_named_by_its_own_rows_latest_name(backend_settings: Any) -> None:
    """Rows of two outside wards of code XYQ whose Locations the store does not hold (deleted, or a FHIR client's
    that were never stored): each named by the latest named tally of its own rows (乙 on 03-26 over 甲 on 03-24;
    the code-only row too), never by the other ward's later name (丙 on 03-28), nor the county's own XYQ's."""
    with Engine(backend_settings) as eng:
        rows = [("dept@~wl38-ward-a|XYQ|甲", "2025-03-24"), ("dept@~wl38-ward-a|XYQ|乙", "2025-03-26"),
                ("dept@~wl38-ward-a|XYQ|", "2025-03-27"), ("dept@~wl38-ward-b|XYQ|丙", "2025-03-28"),
                ("dept@~wl38-ward-c|XYQ|", "2025-03-28"), ("dept|XYQ|县医院血液科", "2025-03-29")]
        eng.recognition.check_days.insert_many([
            {"_id": f"wl38-{i}", "dept": d, "inst": "FNXRMYY", "day": day, "item": "CBC", "outcome": "recognised",
             "count": 1} for i, (d, day) in enumerate(rows)])
        assert _wards(_rates(eng), "XYQ", "甲", "乙", "丙", "血液") == {
            "阜宁县人民医院 乙（外部）": 3, "阜宁县人民医院 丙（外部）": 1, "阜宁县人民医院 XYQ（外部代码）": 1, "阜宁县人民医院 县医院血液科": 1}


def test_her_page_leaves_an_outside_ward_to_the_records_words(backend_settings: Any) -> None:
    """The resident's page (``/ui/me/wards``) over the same wards: a visit at WAIYUAN's NEI is not named by any
    member's rule (the page shows the record's words: no member's name is known for that facility), and the
    key change leaves it so -- while her visit at the traditional-medicine hospital's NEI is that member's ward,
    and her visit at the county's own NEI its table's name. Sent as real ADTs by ``POST /hl7v2``."""
    patient = pid(nid("32092319750505006"), "ZY2026W38001", "FNXRMYY", "孙^兰", "19750505", "F", "13700038W01")
    visits = {"WL38-V1": "NEI^5^1^WAIYUAN^^^^^外院心内科", "WL38-V2": "NEI^5^2^FNZYY^^^^^中医院脑病科病区",
              "WL38-V3": "NEI^302^01^^^^^^心内科一病区", "WL38-V4": "NEI^6^1^WAIYUAN^^^^^外院心血管科"}
    with Engine(backend_settings) as eng, TestClient(create_app(eng)) as http:
        for i, (number, pl) in enumerate(visits.items(), 1):
            r = http.post("/hl7v2", content=_visit(patient, f"WL38-{i}", number, pl, "FNXRMYY", f"202611{20 + i}080000"),
                          headers={"Content-Type": ER7, **_system(eng)})
            assert r.status_code == 200 and b"MSA|AA" in r.content, r.content
        [her] = [e["resource"] for e in http.get("/fhir/Patient", params={"identifier": "ZY2026W38001"},
                                                 headers=_system(eng)).json()["entry"]]
        token, _ = eng.auth.issue_token(subject="person-" + her["id"], kind="patient", client_id="huren-me",
                                        scopes=["patient/*.rs"], patient=her["id"])
        headers = {"Authorization": "Bearer " + token}
        encounters = [e["resource"] for e in http.get("/fhir/Encounter", params={"_count": "50"},
                                                      headers=headers).json().get("entry") or ()]
        places = {next(i["value"] for i in e["identifier"] if i["value"].startswith("WL38-")):
                  e["location"][0]["location"] for e in encounters}
        r = http.get("/ui/me/wards", headers=headers)
        assert r.status_code == 200, r.text
        wards = r.json()["wards"]
        assert wards == {
            places["WL38-V2"]["reference"]: {"name": "中医院脑病科病区", "code": "NEI", "rest": "5房 2床", "at": "阜宁县中医院"},
            places["WL38-V3"]["reference"]: {"name": "心内科病区", "code": "NEI", "rest": "302房 01床"},
        }, wards
        # the record's words, as sent with each visit (the page shows them for the outside ward)
        assert places["WL38-V1"]["display"] == "外院心内科 5房 1床" and places["WL38-V4"]["display"] == "外院心血管科 6房 1床"
