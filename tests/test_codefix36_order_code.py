"""codefix36: gfix13's refusal of another test under the filler's number holds after an unmapped code,
and a code no map knows is the operator's mapping gap, not a warning to the sender (follow-ups of mixfix36).

- mixfix36 keeps on the order only codings the code maps show are its test, so the LIS's unmapped PTX
  never reached the order, and gfix13's check (a coding system in common with the stored ORDER's code)
  no longer saw PTY under the same filler number as another test: AA, and its report filed under the PT
  order, recoding the PTX report. What the number already filed is compared now: the stored report's
  code (``merge.yaml`` DiagnosticReport ``code: another``, only when its order holds the filler's FILL
  number, read through ``basedOn``) -- AE, ERR at OBR^1^4 naming both codes, nothing written, kept.
- A result coded in a code no map knows is not added to the order and is no longer warned (W at OBR-4
  on every result of an unmapped LIS); it is counted on ``GET /admin/fidelity`` as every unmapped code
  is. A coding the maps show is another test is still warned.

Real HL7 v2 over ``POST /hl7v2`` into the real store on each backend (``tests.module_store``), read back
over ``/fhir`` and ``/admin/fidelity``. Each test uses order numbers and codes of its own.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.messages import message_id
from tests.module_store import module_eng
from tests.test_srfix35_order_code import LOINC, B, http, orm, oru, send, the_order

__all__ = ["http", "module_eng"]


def _errs(ack: str) -> list[list[str]]:
    return [s.split("|") for s in ack.replace("\n", "\r").split("\r") if s.startswith("ERR|")]


def _control(ack: str) -> str:
    (msa,) = [s.split("|") for s in ack.replace("\n", "\r").split("\r") if s.startswith("MSA|")]
    return msa[2]


def _reports(http: TestClient, order: dict) -> list[dict]:
    found = http.get("/fhir/DiagnosticReport", params={"based-on": f"ServiceRequest/{order['id']}"}).json()
    return [e["resource"] for e in found.get("entry") or ()]


def _codes(resource: dict) -> list[str]:
    return [c["code"] for c in resource["code"].get("coding") or ()]


def test_another_unmapped_test_under_the_fillers_number_is_refused_and_kept(module_eng: Engine,
                                                                             http: TestClient) -> None:
    """PT ordered, CF36A reported (no map: not on the order, on its report), then CF36B under the same
    filler number: AE, ERR at OBR^1^4 (205) naming both codes; the message kept (quarantined, nothing
    written); the order and the report as they were; CF36A's result said again is still taken."""
    placer = "CF36-REFUSED"
    send(http, orm(placer))
    assert "MSA|AA" in send(http, oru(placer, item="CF36A^凝血^L"))
    order = the_order(http, placer)
    (report,) = _reports(http, order)
    ack = send(http, oru(placer, item="CF36B^凝血酶时间^L", status="C"))
    (err,) = _errs(ack)
    assert "MSA|AE" in ack and err[2] == "OBR^1^4" and err[3].startswith("205^") and err[4] == "E", ack
    assert "another test" in err[8] and "CF36A" in err[8] and "CF36B" in err[8], err
    doc = module_eng.ingestor.messages.get(message_id(B, _control(ack)))
    assert doc is not None and doc["status"] == "quarantined" and not doc.get("resources"), doc
    assert the_order(http, placer)["meta"]["versionId"] == order["meta"]["versionId"]
    (after,) = _reports(http, order)
    assert after["meta"]["versionId"] == report["meta"]["versionId"] and _codes(after) == ["CF36A"], after
    assert after["status"] == report["status"] == "final"
    # the filed test said again (its display left out) is the same test: taken
    assert "MSA|AA" in send(http, oru(placer, item="CF36A^^L", status="C"))
    (again,) = _reports(http, order)
    assert again["status"] == "corrected" and _codes(again) == ["CF36A"], again


def test_a_mapped_filed_test_then_an_unmapped_one_is_refused_at_the_report(http: TestClient) -> None:
    """The same from the report's side with a mapped first code: LFT ordered, 1020 (FNZYY's LFT) reported,
    then CF36C alone -- AE at OBR^1^4, nothing written (gfix13's order check or the report's: one answer)."""
    placer = "CF36-MAPPED"
    send(http, orm(placer).replace("|5902-2^PT^LN|", "|24325-3^肝功能^LN|"))
    send(http, oru(placer, item="1020^肝功能八项^L"))
    order = the_order(http, placer)
    ack = send(http, oru(placer, item="CF36C^凝血^L"))
    assert "MSA|AE" in ack and [e[2] for e in _errs(ack) if e[4] == "E"] == ["OBR^1^4"], ack
    assert the_order(http, placer)["meta"]["versionId"] == order["meta"]["versionId"]
    (report,) = _reports(http, order)
    assert "1020" in _codes(report) and "CF36C" not in _codes(report), report["code"]


def test_under_a_placer_number_alone_another_code_is_not_refused(http: TestClient) -> None:
    """No filler number (OBR-3 and ORC-3 empty): one HIS number may carry several tests, and gfix13 never
    refused an LIS coding under it -- CF36D then CF36E are both AA."""
    placer = "CF36-PLACER"
    send(http, orm(placer))

    def no_filler(item: str) -> str:
        return oru(placer, item=item).replace(f"|F{placer}^LIS|", "||")

    assert "MSA|AA" in send(http, no_filler("CF36D^凝血^L"))
    ack = send(http, no_filler("CF36E^凝血酶时间^L"))
    assert "MSA|AA" in ack and not [e for e in _errs(ack) if e[4] == "E"], ack


def test_an_unmapped_lis_code_is_the_operators_gap_not_the_senders_warning(module_eng: Engine,
                                                                          http: TestClient) -> None:
    """PT ordered, the result coded CF36U (no map): AA with no ERR at OBR-4 (mixfix36 warned 'not known'
    on every such result), not added to the order; ``/admin/fidelity`` counts CF36U at OBR-4 for FNZYY,
    once per message."""
    placer = "CF36-GAP"
    send(http, orm(placer))
    acks = [send(http, oru(placer, item="CF36U^凝血^L", status=s)) for s in ("P", "F")]
    for ack in acks:
        assert "MSA|AA" in ack and not [e for e in _errs(ack) if e[2] == "OBR^1^4"], ack
    assert the_order(http, placer)["code"] == {"coding": [LOINC], "text": "PT"}
    ops = module_eng.auth.issue_system_token("ops", "system/MessageHeader.cr")
    r = http.get("/admin/fidelity", params={"institution": B}, headers={"Authorization": f"Bearer {ops}"})
    assert r.status_code == 200, r.text
    inst = r.json()["institutions"][B]
    rows = [i for i in inst["items"] if i["kind"] == "code" and i["value"] == "CF36U"]
    assert [(i["where"], i["count"]) for i in rows] == [("OBR-4", 2)], rows
    assert inst["codes"]["code"]["CF36U"] == 2


def test_a_coding_the_maps_show_is_another_test_is_still_warned(http: TestClient) -> None:
    """PT ordered, the result coded 1020 (FNZYY's map: LFT): not added, and the W at OBR^1^4 names it."""
    placer = "CF36-OTHER"
    send(http, orm(placer))
    ack = send(http, oru(placer, item="1020^肝功能八项^L"))
    warned = [e for e in _errs(ack) if e[2] == "OBR^1^4"]
    assert "MSA|AA" in ack and len(warned) == 1 and warned[0][4] == "W", ack
    assert "1020" in warned[0][8] and "another test" in warned[0][8], warned
    assert the_order(http, placer)["code"] == {"coding": [LOINC], "text": "PT"}


def test_a_report_whose_groups_name_no_test_is_not_refused(http: TestClient) -> None:
    """OBR-4 empty under the filler's number: the report's code is a stand-in (its first result's, not a
    test's), located at no field -- PT's result, then APTT's alone (LOINC both: a system in common, no
    coding) are both AA, and the report lists both results."""
    placer = "CF36-NOTEST"
    send(http, orm(placer))
    assert "MSA|AA" in send(http, oru(placer, item=""))
    aptt = oru(placer, item="").replace("OBX|1|NM|5902-2^PT^LN|", "OBX|1|NM|3173-2^APTT^LN|")
    ack = send(http, aptt)
    assert "MSA|AA" in ack and not [e for e in _errs(ack) if e[4] == "E"], ack
    (report,) = _reports(http, the_order(http, placer))
    assert len(report["result"]) == 2, report
