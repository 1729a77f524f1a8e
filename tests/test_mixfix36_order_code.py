"""mixfix36: an order's code takes a result's coding only where the code maps show the same test, each
coding judged alone; an order message's code not known as the same test is stated whole (review rv36a
MED 2-4, LOW).

- A result message's codings are judged one by one (``MergeRules._concept_union``): the order's own is
  merged, one the recognition rules' code maps show is the ordered test is added (FNZYY's ``1020``
  肝功能八项 is LFT, as LOINC 24325-3 is), one of another test or one no map knows (the LIS's ``PTX``:
  not evidence of the same test) adds nothing -- the result's report keeps it; the ACK warns at OBR-4 of
  another test only (codefix36: a code no map knows is counted on ``/admin/fidelity``, not warned).
- The order message (NW, XO) ``states`` the code: the same test (a coding in common, or the maps' one
  item) keeps the stored codings after its own; anything else -- a code no map knows, a test named by
  text alone -- is a change of test, stated whole (as before codefix35).

Real HL7 v2 over ``POST /hl7v2`` into the real store on each backend (``tests.module_store``), read back
over ``/fhir``. Each test uses order numbers of its own.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.recognition.coding import item_for
from tests.module_store import module_eng
from tests.test_srfix35_order_code import LOINC, history, http, orm, oru, send, the_order

__all__ = ["http", "module_eng"]

LFT_ORDER = "24325-3^肝功能^LN"  # the HIS's LOINC of the liver panel (item LFT)
LFT_LOCAL = "1020^肝功能八项^L"  # FNZYY's LIS code of it, mapped to LFT (mappings/codes/FNZYY.yaml)


def _errs(ack: str) -> list[list[str]]:
    return [s.split("|") for s in ack.replace("\n", "\r").split("\r") if s.startswith("ERR|")]


def _lft(placer: str, control: str = "NW") -> str:
    return orm(placer).replace("ORC|NW|", f"ORC|{control}|").replace("|5902-2^PT^LN|", f"|{LFT_ORDER}|")


def _codes(order: dict) -> list[str]:
    return [c["code"] for c in order["code"].get("coding") or ()]


def _not_added(ack: str) -> list[list[str]]:
    return [e for e in _errs(ack) if e[4] == "W" and "not added to the order" in e[8]]


def test_a_mapped_lis_code_of_the_same_test_is_added_beside_the_orders(module_eng: Engine, http: TestClient) -> None:
    """LFT ordered by LOINC, the result coded 1020 (FNZYY's map: LFT): added after the order's coding, no
    W; the order's first coding and text stay, its item LFT."""
    placer = "MF36-LFT"
    send(http, _lft(placer))
    ack = send(http, oru(placer, item=LFT_LOCAL))
    assert "MSA|AA" in ack and not _not_added(ack), ack
    order = the_order(http, placer)
    assert _codes(order)[:2] == ["24325-3", "1020"] and order["code"]["text"] == "肝功能", order["code"]
    assert item_for(order, module_eng.recognition.rules) == "LFT"


def test_a_mapped_lis_code_comes_out_the_same_in_either_arrival_order(http: TestClient) -> None:
    """ORM then ORU, ORU then ORM: the same codings, the order's first, the order's text."""
    send(http, _lft("MF36-EARLY"))
    send(http, oru("MF36-EARLY", item=LFT_LOCAL))
    send(http, oru("MF36-LATE", item=LFT_LOCAL))
    ack = send(http, _lft("MF36-LATE"))
    assert "MSA|AA" in ack and not _not_added(ack), ack
    early, late = the_order(http, "MF36-EARLY")["code"], the_order(http, "MF36-LATE")["code"]
    assert sorted(_codes({"code": early})) == sorted(_codes({"code": late})) and "1020" in _codes({"code": late})
    assert early["coding"][0]["code"] == late["coding"][0]["code"] == "24325-3" and late["text"] == "肝功能"


def test_an_order_change_of_the_same_test_keeps_the_mapped_lis_code(http: TestClient) -> None:
    """ORM, ORU (1020 added), XO restating the LOINC: the LIS's coding stays after it, in every later version."""
    placer = "MF36-XO-SAME"
    send(http, _lft(placer))
    send(http, oru(placer, item=LFT_LOCAL))
    assert "MSA|AA" in send(http, _lft(placer, "XO"))
    order = the_order(http, placer)
    assert _codes(order)[:2] == ["24325-3", "1020"], order["code"]
    assert all("1020" in _codes(v) for v in history(http, order)[1:])


def test_a_lis_code_no_map_knows_is_not_added_nor_warned(module_eng: Engine, http: TestClient) -> None:
    """PT ordered, the result coded PTX (in no code map): not evidence of the same test -- not added; the
    order stays [5902-2] 'PT', item COAG; the report keeps PTX. (codefix36: no W to the sender any more --
    a code no map knows is the deployment's mapping gap, counted on ``/admin/fidelity``:
    tests/test_codefix36_order_code.py. mixfix36 had a W 'not known' at OBR^1^4 on every such result.)"""
    placer = "MF36-UNMAPPED"
    send(http, orm(placer))
    ack = send(http, oru(placer))
    assert "MSA|AA" in ack and not [e for e in _errs(ack) if e[2] == "OBR^1^4"], ack
    order = the_order(http, placer)
    assert order["code"] == {"coding": [LOINC], "text": "PT"}
    assert item_for(order, module_eng.recognition.rules) == "COAG"
    found = http.get("/fhir/DiagnosticReport", params={"based-on": f"ServiceRequest/{order['id']}"}).json()
    (report,) = [e["resource"] for e in found.get("entry") or ()]
    assert "PTX" in _codes(report)


def test_each_result_coding_is_judged_alone(module_eng: Engine, http: TestClient) -> None:
    """The result's OBR-4 carries the order's LOINC and an alternate: the coding in common says nothing of
    the alternate -- PTX (no map) not added, no W (codefix36: a mapping gap, not the sender's error; it
    was W 'not known'); 1020 (LFT) not added, W 'another test' at OBR^1^4; the order [5902-2], item COAG."""
    for placer, alternate, why in (("MF36-EACH1", "PTX^凝血^L", None),
                                   ("MF36-EACH2", "1020^肝功能八项^L", "another test")):
        send(http, orm(placer))
        ack = send(http, oru(placer, item=f"5902-2^PT^LN^{alternate}"))
        warned = _not_added(ack)
        assert "MSA|AA" in ack and [e[2] for e in warned] == (["OBR^1^4"] if why else []), ack
        if why:
            assert alternate.split("^")[0] in warned[0][8] and why in warned[0][8], warned
        order = the_order(http, placer)
        assert _codes(order) == ["5902-2"] and item_for(order, module_eng.recognition.rules) == "COAG"


def test_an_order_change_to_a_code_no_map_knows_after_a_result_states_it_whole(http: TestClient) -> None:
    """LFT ordered, 1020 added by its result, then an XO to the HIS's unmapped ZZ01: a change of test --
    [ZZ01] alone, neither LFT coding kept beside it."""
    placer = "MF36-XO-ZZ"
    send(http, _lft(placer))
    send(http, oru(placer, item=LFT_LOCAL))
    xo = _lft(placer, "XO").replace(f"|{LFT_ORDER}|", "|ZZ01^血型鉴定^L|")
    assert "MSA|AA" in send(http, xo)
    order = the_order(http, placer)
    assert _codes(order) == ["ZZ01"] and order["code"]["text"] == "血型鉴定", order["code"]


def test_an_order_stated_by_text_alone_then_coded_states_the_code(http: TestClient) -> None:
    """NW naming the test by text alone (^血常规), then an XO coding it (LOINC 58410-2 CBC): the order message
    states the code -- its coding and its own text, not the stored text kept over it."""
    placer = "MF36-TEXT"
    assert "MSA|AA" in send(http, orm(placer).replace("|5902-2^PT^LN|", "|^血常规|"))
    assert the_order(http, placer)["code"] == {"text": "血常规"}
    send(http, orm(placer).replace("ORC|NW|", "ORC|XO|").replace("|5902-2^PT^LN|", "|58410-2^血常规五分类^LN|"))
    code = the_order(http, placer)["code"]
    assert _codes({"code": code}) == ["58410-2"] and code.get("text") == "血常规五分类", code


def test_another_unmapped_code_under_the_fillers_number_after_an_unmapped_one_is_refused(http: TestClient) -> None:
    """gfix13's refusal kept (codefix36; mixfix36 pinned AA + W here, the PTY report filed under the PT
    order): PT ordered, PTX reported (not on the order: no map, but on its report), then PTY under the same
    filler number -- the report filed under that number holds PTX, a coding system in common, no coding:
    AE, ERR at OBR^1^4 naming both codes, nothing written."""
    placer = "MF36-PTY"
    send(http, orm(placer))
    send(http, oru(placer))
    order = the_order(http, placer)
    found = http.get("/fhir/DiagnosticReport", params={"based-on": f"ServiceRequest/{order['id']}"}).json()
    (report,) = [e["resource"] for e in found.get("entry") or ()]
    ack = send(http, oru(placer, item="PTY^凝血酶时间^L"))
    (err,) = [e for e in _errs(ack) if e[4] == "E"]
    assert "MSA|AE" in ack and err[2] == "OBR^1^4" and "PTX" in err[8] and "PTY" in err[8], ack
    assert the_order(http, placer)["meta"] == order["meta"] and the_order(http, placer)["code"] == order["code"]
    after = http.get(f"/fhir/DiagnosticReport/{report['id']}").json()
    assert after["meta"]["versionId"] == report["meta"]["versionId"] and _codes(after) == ["PTX"], after
