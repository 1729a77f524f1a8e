"""dept37: an order on a visit at another member's ward counts in that member's department.

The county hospital (FNXRMYY) orders a blood count for a patient it registered at the traditional-medicine
hospital's NEI ward (PV1-3 ``NEI^501^01^FNZYY^^^^^中医院脑病科病区``). Its check row stored ``dept|NEI|<name>``
under the ordering institution, and the auditors' rate by department named NEI by the county's table:
"阜宁县人民医院 心内科病区", a wrong answer. The row now stores the facility (``dept@FNZYY|NEI|<name>``,
``facts.DEPT_AT``) and the namer names it by the member's rule (``engine.wards.ward_key_of``'s, wards37);
a facility no member's code names is shown by the record's words (``dept@|NEI|<name>``); the institution's
own wards keep their keys. Real HL7 through the ingest handler into the real store (SQLite and mongomock),
read back through ``GET /reports/duplicates`` (JSON and CSV) and ``$evaluate-measure`` (the MeasureReport's
department stratum)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.recognition.facts import department_at, department_key, department_parts
from tests.test_deptfix34_departments import _wards
from tests.test_mewards36_wards import _visit
from tests.test_resident_record_ui import pid
from tests.test_resident_ui import nid
from tests.test_rvlast34_probes import AUDITOR, _feed, _rates, _zhao_order

COUNTY = "阜宁县人民医院 心内科病区"  # the county hospital's own NEI, by its table (mappings/wards.yaml)
MEMBER_NEI = "NEI^501^01^FNZYY^^^^^中医院脑病科病区"  # the traditional-medicine hospital's NEI, with PL-9
MEMBER = pid(nid("32092319660606037"), "ZZ2026D37001", "FNZYY", "顾^强", "19660606", "M")


def _ingest(eng: Engine, *msgs: bytes) -> None:
    for i, msg in enumerate(msgs):
        ack = eng.ingestor.handle(msg, channel="file", peer=f"file:dept37-{i}-{len(msgs)}")
        assert b"MSA|AA|" in ack, ack


def _rows(eng: Engine, prefix: str) -> list[dict[str, Any]]:
    return sorted((c for c in eng.recognition.checks.find({}) if str(c.get("dept") or "").startswith(prefix)),
                  key=lambda c: str(c["_id"]))


def _client(eng: Engine) -> tuple[TestClient, dict[str, str]]:
    token = eng.auth.issue_system_token("audit", AUDITOR, kind="auditor")
    return TestClient(create_app(eng)), {"Authorization": f"Bearer {token}"}


def _csv_rates(eng: Engine) -> dict[str, int]:
    """The CSV's recognition rate rows (header, institution, name, recognised, recognisable, rate):
    institution -> recognisable."""
    client, auth = _client(eng)
    res = client.get("/reports/duplicates", params={"_format": "csv"}, headers=auth)
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/csv"), res.text
    rows = [r for r in csv.reader(io.StringIO(res.text)) if len(r) == 6 and r[1] in ("FNXRMYY", "FNZYY")]
    return {r[1]: int(r[4]) for r in rows}


def _measure_departments(eng: Engine) -> dict[str, int]:
    client, auth = _client(eng)
    res = client.get("/fhir/Measure/huren-recognition-rate/$evaluate-measure",
                     params={"periodStart": "2025-03-01", "periodEnd": "2025-03-31"}, headers=auth)
    assert res.status_code == 200, res.text
    [dept] = [s for s in res.json()["group"][0]["stratifier"] if s["code"][0]["text"] == "department"]
    return {st["value"]["text"]: next(p["count"] for p in st["population"] if p["code"]["coding"][0]["code"]
                                      == "denominator") for st in dept["stratum"]}


def test_the_stored_forms() -> None:
    """Every key stored before keeps its form; another facility's ward has a prefix of its own, which sorts
    before every ``dept|`` key (the latest-tally range scan of one code never meets it)."""
    assert department_key("NEI", "心内科病区") == "dept|NEI|心内科病区"
    assert department_key("NEI", "中医院脑病科病区", at="FNZYY") == "dept@FNZYY|NEI|中医院脑病科病区"
    assert department_key("NEI", None, at="") == "dept@|NEI|"
    assert department_parts("dept@FNZYY|NEI|中医院脑病科病区") == ("NEI", "中医院脑病科病区")
    assert department_parts("dept@|心内科|") == (None, "心内科")
    assert [department_at(k) for k in ("dept@FNZYY|NEI|x", "dept@|NEI|x", "dept|NEI|x", "NEI 301 02", None)] == [
        "FNZYY", "", None, None, None]
    assert "dept@FNZYY|NEI|~" < "dept|NEI|" and not ("dept|NEI|" < "dept@|NEI|x" < "dept|NEI}")


def test_a_members_ward_is_that_members_department_in_every_report(backend_settings: Any) -> None:
    with Engine(backend_settings) as eng:
        _feed(eng)
        # the demo month's wards are each its sender's own: their keys are as before (no facility)
        assert _rows(eng, "dept|") and not _rows(eng, "dept@")
        before, measured, by_inst = _rates(eng), _measure_departments(eng), _csv_rates(eng)

        _ingest(eng, _zhao_order(1, MEMBER_NEI))
        [row] = _rows(eng, "dept@")
        assert (row["dept"], row["inst"]) == ("dept@FNZYY|NEI|中医院脑病科病区", "FNXRMYY"), row
        after = _rates(eng)
        # the member's feed has stated no name of its NEI and its table lists none: the record's PL-9 name
        assert after.get("阜宁县中医院 中医院脑病科病区", {}).get("recognisable") == 1, after
        assert after[COUNTY]["recognisable"] == before[COUNTY]["recognisable"], after
        # the MeasureReport's department stratum says the same; the rate by institution is the ordering one's
        departments = _measure_departments(eng)
        assert departments["阜宁县中医院 中医院脑病科病区"] == 1 and departments[COUNTY] == measured[COUNTY], departments
        assert _csv_rates(eng) == {**by_inst, "FNXRMYY": by_inst["FNXRMYY"] + 1}

        # the member's own feed names its NEI 脑病科病区: the department is named as the member names it, and a
        # code-only order at that ward (the same Location, under the county's key) counts in the same row
        _ingest(eng, _visit(MEMBER, "D37-A1", "D37-G1", "NEI^1^1^^^^^^脑病科病区", "FNZYY", "20250323080000"),
                _zhao_order(2, "NEI^502^01^FNZYY", "20250325"))
        assert len(_rows(eng, "dept@FNZYY|NEI|")) == 2
        named = _wards(_rates(eng), "脑病科", "NEI", "心内科")
        assert named == {"阜宁县中医院 脑病科病区": 2, COUNTY: before[COUNTY]["recognisable"]}, named


def test_the_members_table_names_its_ward(backend_settings: Any, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "wards.yaml").write_text("FNZYY:\n  NEI: 脑病科\n", encoding="utf-8")
    with Engine(backend_settings.with_(site=site)) as eng:
        _feed(eng, _zhao_order(1, MEMBER_NEI))
        named = _wards(_rates(eng), "脑病科", "NEI", "心内科")
        # (the site's file replaces only the institutions it lists: the county's NEI keeps its name)
        assert named == {"阜宁县中医院 脑病科": 1, COUNTY: named[COUNTY]}, named
        assert "阜宁县人民医院 脑病科" not in named


def test_a_facility_no_member_names_is_shown_by_the_records_words(backend_settings: Any) -> None:
    """PL-4 WAIYUAN is no member's code: which facility it is cannot be read back (the ward's id is a hash of
    it), so the row says only that the ward is not the sender's own (``dept@|``) and is named by what the
    record says -- under the ordering institution, whose record it is -- never by its table for NEI."""
    with Engine(backend_settings) as eng:
        _feed(eng)
        before = _rates(eng)[COUNTY]["recognisable"]
        _ingest(eng, _zhao_order(1, "NEI^7^1^WAIYUAN^^^^^外院心内科"), _zhao_order(2, "NEI^8^1^WAIYUAN", "20250325"),
                _zhao_order(3, "QQW^9^1^WAIYUAN", "20250326"))
        # (wardlink38: the facility part is now "~" and the ward Location's id -- NEI's twice, QQW's another)
        depts = sorted(r["dept"] for r in _rows(eng, "dept@~"))
        assert [d.partition("|")[2] for d in depts] == ["NEI|外院心内科", "NEI|外院心内科", "QQW|"], depts
        assert depts[0].partition("|")[0] == depts[1].partition("|")[0] != depts[2].partition("|")[0]
        named = _wards(_rates(eng), "外院", "心内科", "QQW")
        assert named == {"阜宁县人民医院 外院心内科（外部）": 2, "阜宁县人民医院 QQW（外部代码）": 1, COUNTY: before}, named


def test_one_codes_latest_name_is_its_own_facilitys(backend_settings: Any) -> None:
    """The county's own XYQ, stored by code alone with no Location found, is named by its latest named tally
    (wardfix35): the member's and the outside facility's rows of XYQ, later and named, are not its tallies --
    each of the three wards is its own row. (Tallies written straight into the real store, as link36's.)"""
    with Engine(backend_settings) as eng:
        rows = [("dept|XYQ|", "2025-03-24"), ("dept@FNZYY|XYQ|中医院血液科", "2025-03-26"),
                ("dept@|XYQ|外院血液科", "2025-03-27"), ("dept@|XYQ|", "2025-03-28")]
        eng.recognition.check_days.insert_many([
            {"_id": f"d37-{i}", "dept": d, "inst": "FNXRMYY", "day": day, "item": "CBC", "outcome": "recognised",
             "count": 1} for i, (d, day) in enumerate(rows)])
        # (the outside row stored by code alone is not 外院血液科's: no member names its facility, which may be another
        # hospital than 外院血液科's -- rv37g MED 1; nor the county's own XYQ: its code said as another place's, gfix37)
        assert _wards(_rates(eng), "XYQ", "血液") == {"阜宁县人民医院 XYQ（院内代码）": 1, "阜宁县中医院 中医院血液科": 1,
                                                     "阜宁县人民医院 外院血液科（外部）": 1, "阜宁县人民医院 XYQ（外部代码）": 1}
