"""codefix37: huren's stand-in mark on a report's code (``STAND_IN_EXT``) is the converter's statement alone.

A FHIR client's write does not set it -- a POST, a transaction Bundle's PUT, a PUT changing the code --
while a client writing the code back exactly as stored (a conclusion added to a stand-in report) leaves
it huren's: the LIS's later message naming its test is still taken, not refused as "another test". And
a report follows an order the filler recoded (its ORC-1 XX) even when another application wrote the
order since without changing its code (the HIS restating it): the change is dated by the version that
made it (rv37c MED 1, 2, 5; thirty-seventh round, codefix37).

Real HL7 v2 over ``POST /hl7v2`` into the real store on each backend (``tests.module_store``), read back
and written over ``/fhir`` (TestClient). Each test uses order numbers and codes of its own.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.merge_rules import STAND_IN_EXT
from tests.module_store import module_eng
from tests.test_codefix36_order_code import _errs, _reports
from tests.test_rv37c_probes import CHEST, HEAD, _changed, _local_result, _ordered, _ris
from tests.test_srfix35_order_code import B, http, orm, oru, send, the_order

__all__ = ["http", "module_eng"]


def _codes(resource: dict) -> list[str]:
    return [c["code"] for c in resource["code"].get("coding") or ()]


def _marked(resource: dict) -> bool:
    return any(e.get("url") == STAND_IN_EXT for e in resource["code"].get("extension") or ())


def _stand_in_report(http: TestClient, placer: str) -> dict:
    send(http, orm(placer))
    assert "MSA|AA" in send(http, _local_result(oru(placer, item="", status="P"), "C37S"))
    (report,) = _reports(http, the_order(http, placer))
    assert _marked(report) and _codes(report) == ["C37S"], report["code"]
    return report


def test_a_stand_in_written_back_as_read_stays_hurens(http: TestClient) -> None:
    """A client adds a conclusion to a stand-in report, its code written back as read (mark and all): the
    mark stays (the code is still huren's stand-in, not the client's), and the LIS's F naming its test
    in the result's own system is then taken: AA, coded C37T, the mark gone."""
    placer = "C37F-BACK"
    report = _stand_in_report(http, placer)
    report["conclusion"] = "凝血功能正常"
    r = http.put(f"/fhir/DiagnosticReport/{report['id']}", json=report)
    assert r.status_code == 200, r.text
    (stored,) = _reports(http, the_order(http, placer))
    assert stored["conclusion"] == "凝血功能正常" and _marked(stored), stored
    ack = send(http, _local_result(oru(placer, item="C37T^凝血^L"), "C37S"))
    assert "MSA|AA" in ack and not [e for e in _errs(ack) if e[4] == "E"], ack
    (after,) = _reports(http, the_order(http, placer))
    assert "C37T" in _codes(after) and not _marked(after), after["code"]


def test_a_clients_post_and_bundle_do_not_set_the_mark(http: TestClient) -> None:
    """A POST of a report whose code carries the mark, and a transaction Bundle's PUT of a stand-in report
    with the client's own coding and the extension it read: both stored without the mark (the rest of the
    code as sent); the client's code is then not replaced by the LIS's another test (AE at OBR^1^4)."""
    placer = "C37F-BUNDLE"
    report = _stand_in_report(http, placer)
    mark = {"url": STAND_IN_EXT, "valueBoolean": True}
    made = {"resourceType": "DiagnosticReport", "status": "final", "subject": report["subject"],
            "code": {"coding": [{"system": f"urn:huren:code:{B}", "code": "C37P"}], "text": "凝血", "extension": [mark]}}
    r = http.post("/fhir/DiagnosticReport", json=made)
    assert r.status_code == 201, r.text
    posted = http.get(f"/fhir/DiagnosticReport/{r.json()['id']}").json()
    assert _codes(posted) == ["C37P"] and posted["code"]["text"] == "凝血" and not _marked(posted), posted["code"]
    report["code"]["coding"] = [{"system": f"urn:huren:code:{B}", "code": "C37Q", "display": "凝血"}]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": report, "request": {"method": "PUT", "url": f"DiagnosticReport/{report['id']}"}}]}
    r = http.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text
    (stored,) = _reports(http, the_order(http, placer))
    assert _codes(stored) == ["C37Q"] and not _marked(stored), stored["code"]
    ack = send(http, _local_result(oru(placer, item="C37Z^凝血酶时间^L"), "C37S"))
    assert "MSA|AE" in ack and [e[2] for e in _errs(ack) if e[4] == "E"] == ["OBR^1^4"], ack
    (after,) = _reports(http, the_order(http, placer))
    assert _codes(after) == ["C37Q"], after["code"]


def test_the_report_follows_the_fillers_xx_after_another_application_restated_the_order(http: TestClient) -> None:
    """Head CT ordered and reported by the RIS; the RIS's XX to chest CT; then the HIS restates the order
    (chest CT, a note of its own: a version of the order the HIS's message wrote, the code unchanged). The
    RIS's C naming chest CT follows the RIS's own change -- dated by the version that recoded the order,
    not the HIS's later one: AA, the report chest CT's. And the LIS's XX back to head CT then does not
    make the RIS's C naming head CT follow: refused at OBR^1^4."""
    placer = "C37F-RESTATE"
    send(http, _ordered(placer))
    assert "MSA|AA" in send(http, _ris(oru(placer, item=HEAD)))
    assert "MSA|AA" in send(http, _changed(placer, CHEST))
    recoded = the_order(http, placer)
    restated = _ordered(placer).replace(f"|{HEAD}|", f"|{CHEST}|").replace("抗凝治疗中", "胸部复查")
    assert "MSA|A" in send(http, restated)
    order = the_order(http, placer)
    assert int(order["meta"]["versionId"]) > int(recoded["meta"]["versionId"]), order
    assert "3001" in _codes(order) and "3002" not in _codes(order), order["code"]
    ack = send(http, _ris(oru(placer, item=CHEST, status="C")))
    assert "MSA|AA" in ack and not [e for e in _errs(ack) if e[4] == "E"], ack
    (report,) = _reports(http, the_order(http, placer))
    assert "3001" in _codes(report) and "3002" not in _codes(report), report["code"]
    send(http, _changed(placer, HEAD).replace("|RIS|FNZYY|", "|LIS|FNZYY|", 1))
    ack = send(http, _ris(oru(placer, item=HEAD, status="C")))
    assert "MSA|AE" in ack and [e[2] for e in _errs(ack) if e[4] == "E"] == ["OBR^1^4"], ack
    (after,) = _reports(http, the_order(http, placer))
    assert "3001" in _codes(after), after["code"]
