"""rv40h: review probes of ofix40b (whose statement an ORC is: ``results.statement_of``; RU/RQ no longer touching
ORC-16; merge.yaml ``placer`` marks held whole, ``MergeRules._placers_held``; ``_held_elsewhere`` passing over
replaced and cancelled orders) and of its merge with ord40's operator decision.

Money first: a repeat blood count whose only valid reason (ORC-16 R01) came on the placer's NW, then another
message of the order from the filler or a third application, then the result -- the recognition row
(``engine.recognition`` flags) must stay "justified R01" unless the placer itself withdrew the reason. Real HL7 v2
over MLLP (money) or ``POST /hl7v2`` (order state), the real store on each backend, read back over ``/fhir`` and
``/admin``. A probe showing a defect is a strict xfail naming its severity. The MLLP probes share one community a
module and backend (``module_store.module_community``), each under names of its own (``module_store.Names``: its
resident, record, order and control numbers) reading its own rows (suite44b: each had opened a community and an MLLP
listener of its own)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.messages import message_id
from engine.recognition.facts import REASON_WITHDRAWN_EXT
from tests import test_money19_cds_orders
from tests.module_store import NamedSender, Names, module_eng, names
from tests.module_store import engine_mllp as mllp
from tests.module_store import module_community as engine
from tests.test_code37_ris_change import CHEST, HEAD
from tests.test_codedoc38_order_owner import _codes
from tests.test_codefix36_order_code import _errs
from tests.test_money20_reason_change import prior
from tests.test_order35_as_later import _operator
from tests.test_recognition_policy_e2e import CBC, msh, order, pid, ts
from tests.test_recognition_policy_e2e import result as oru
from tests.test_rv40c_probes import _held_at_obr4, _one, _report
from tests.test_rv40d_probes import R01, R07, _reasons, _stated
from tests.test_srfix35_order_code import B, http, send

__all__ = ["engine", "http", "mllp", "module_eng", "names"]


def _accepted(hl7: NamedSender) -> None:
    """The LIS accepts HOSPB's order B1 (SC, IP) under its number ``FB1^LIS``: the order's filler."""
    when = ts(1, 9)
    ack = hl7.send(msh("HOSPB", "LIS", "ORM^O01^ORM_O01", when, "HOSPB-SC-B1") + pid("HOSPB")
                   + f"ORC|SC|B1^HIS|FB1^LIS||IP||||{when}|||D7^张^医生\n" + f"OBR|1|B1^HIS|FB1^LIS|{CBC}|||{when}\n")
    assert "MSA|AA" in ack, ack


def _hospb_flags(engine: Engine, names: Names) -> list[tuple[str, Any]]:
    """The (status, reason) of this test's rows at HOSPB that are not void."""
    return [(f["status"], f.get("reason")) for f in names.rows(engine, test_money19_cds_orders.flags(engine))
            if f["inst"] == "HOSPB"]


# --- money: the doctor's R01 after another application's statement -------------------------------------------


@pytest.mark.parametrize("obr4", ["", '""'], ids=["obr4-empty", "obr4-null"])
def test_a_third_apps_xo_naming_no_test_does_not_withdraw_the_doctors_reason(engine: Engine, mllp: int, names: Names,
                                                                             obr4: str) -> None:
    """The EMR's XO under B1^HIS / FB1^LIS with ORC-16 ``""`` and OBR-4 not valued: no test to judge, but still a
    third application's statement of the order -- R01 must stand (the repeat justified)."""
    hl7 = names.sender(mllp)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    _accepted(hl7)
    when = ts(1, 9)
    ack = hl7.send(msh("HOSPB", "EMR", "ORM^O01^ORM_O01", when, "HOSPB-EMRXO-B1") + pid("HOSPB")
                   + f"ORC|XO|B1^HIS|FB1^LIS||IP||||{when}|||D7^张^医生||||\"\"\n"
                   + f"OBR|1|B1^HIS|FB1^LIS|{obr4}|||{when}\n")
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    assert _hospb_flags(engine, names) == [("justified", "R01")], ack


def test_a_third_apps_xo_under_the_fillers_number_alone_does_not_withdraw_the_reason(engine: Engine, names: Names,
                                                                                      mllp: int) -> None:
    """The EMR knows the lab's accession only: XO with ORC-2/OBR-2 empty, ORC-3 FB1^LIS, ORC-16 ``""``. Not the
    placer (the HIS placed B1), so R01 must stand."""
    hl7 = names.sender(mllp)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    _accepted(hl7)
    when = ts(1, 9)
    ack = hl7.send(msh("HOSPB", "EMR", "ORM^O01^ORM_O01", when, "HOSPB-EMRXO-B1") + pid("HOSPB")
                   + f"ORC|XO||FB1^LIS||IP||||{when}|||D7^张^医生||||\"\"\n"
                   + f"OBR|1||FB1^LIS|{CBC}|||{when}\n")
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    assert _hospb_flags(engine, names) == [("justified", "R01")], ack


@pytest.mark.parametrize(("orc16", "placer"), [("", "B1^HIS"), ('""', "B1^HIS"), ("", ""), ('""', "")],
                         ids=["orc16-empty", "orc16-null", "ro-unplaced-orc16-empty", "ro-unplaced-orc16-null"])
def test_the_fillers_ru_ro_keeps_the_doctors_reason_on_the_replacement(engine: Engine, mllp: int, names: Names,
                                                                       orc16: str, placer: str) -> None:
    """The LIS replaces B1 on its own (table 0119: RU for the old order, RO -- P *or* F -- for its replacement
    under its new number FB1R^LIS); the result comes for FB1R. ORC-16 on the RO is the filler's order control code
    reason, never the doctor's: the replacement inherits R01 (merge.yaml ``inherits``) either way."""
    hl7 = names.sender(mllp)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    _accepted(hl7)
    when = ts(1, 9)
    ack = hl7.send(msh("HOSPB", "LIS", "ORM^O01^ORM_O01", when, "HOSPB-RU-B1") + pid("HOSPB")
                   + f"ORC|RU|B1^HIS|FB1^LIS||CA||||{when}|||D7^张^医生||||{orc16}\n"
                   + f"OBR|1|B1^HIS|FB1^LIS|{CBC}|||{when}\n"
                   + f"ORC|RO|{placer}|FB1R^LIS||IP||||{when}|||D7^张^医生||||{orc16}\n"
                   + f"OBR|2|{placer}|FB1R^LIS|{CBC}|||{when}\n")
    assert "MSA|AA" in ack, ack
    res = ts(1, 10)
    hl7.send(msh("HOSPB", "LIS", "ORU^R01^ORU_R01", res, "HOSPB-ORU-B1R") + pid("HOSPB")
             + f"OBR|1|{placer}|FB1R^LIS|{CBC}|||{res}|||||||||D7^张^医生||||||{res}|||F\n"
             + f"OBX|1|NM|WBC^白细胞^L||6.1|10*9/L|||||F|||{res}\n")
    assert ("justified", "R01") in _hospb_flags(engine, names) and not [f for f in _hospb_flags(engine, names)
                                                                 if f[0] == "flagged"], (_hospb_flags(engine, names), ack)


@pytest.mark.parametrize(("app", "control", "orc16"), [
    ("LIS", "XX", '""'), ("LIS", "XX", R07), ("EMR", "XX", '""'), ("EMR", "SC", R07), ("EMR", "XO", R07),
    ("LIS", "XO", '""'), ("EMR", "RQ", R07)],
    ids=["fillers-XX-null", "fillers-XX-R07", "emr-XX-null", "emr-SC-R07", "emr-XO-R07", "fillers-XO-null",
         "emr-RQ-R07"])
def test_the_doctors_reason_survives_another_applications_statement(engine: Engine, mllp: int, names: Names, app: str,
                                                                    control: str, orc16: str) -> None:
    """After the LIS's SC, ``app``'s ``control`` under B1^HIS / FB1^LIS with ORC-16 ``orc16``: none is the
    placer's (the HIS's) own statement, so the repeat stays justified by R01."""
    hl7 = names.sender(mllp)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    _accepted(hl7)
    when = ts(1, 9)
    ack = hl7.send(msh("HOSPB", app, "ORM^O01^ORM_O01", when, f"HOSPB-{app}{control}-B1") + pid("HOSPB")
                   + f"ORC|{control}|B1^HIS|FB1^LIS||IP||||{when}|||D7^张^医生||||{orc16}\n"
                   + f"OBR|1|B1^HIS|FB1^LIS|{CBC}|||{when}\n")
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    assert _hospb_flags(engine, names) == [("justified", "R01")], ack


def test_the_placers_rp_ro_passes_its_reason_to_the_replacement(
        engine: Engine, mllp: int, names: Names) -> None:
    """Guard: the HIS's own RP B1 + RO B1R in one message, ORC-16 empty on both: B1R inherits R01."""
    hl7 = names.sender(mllp)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    when = ts(1, 9)
    ack = hl7.send(msh("HOSPB", "HIS", "ORM^O01^ORM_O01", when, "HOSPB-RP-B1") + pid("HOSPB")
                   + f"ORC|RP|B1^HIS|||||||{when}|||D7^张^医生\n" + f"OBR|1|B1^HIS||{CBC}|||{when}\n"
                   + f"ORC|RO|B1R^HIS|||||||{when}|||D7^张^医生\n" + f"OBR|2|B1R^HIS||{CBC}|||{when}\n")
    assert "MSA|AA" in ack, ack
    hl7.send(oru("HOSPB", "B1R", CBC, ts(1, 10)))
    assert _hospb_flags(engine, names) == [("justified", "R01")], ack


@pytest.mark.parametrize("again", ["B2", "B1"], ids=["new-number", "same-number"])
def test_cancel_then_a_new_order_of_the_repeat(engine: Engine, mllp: int, names: Names, again: str) -> None:
    """退费重开: the HIS orders B1 (R01), cancels it (CA), orders the blood count again (``again``, R01): the
    result of the new order is the one repeat, justified by R01; the cancelled order leaves no row that is not."""
    hl7 = names.sender(mllp)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    assert "MSA|AA" in hl7.send(order("HOSPB", "B1", CBC, ts(1, 8), control="CA").replace("-CA", "-CA1"))
    assert _hospb_flags(engine, names) in ([], [("void", None)]), _hospb_flags(engine, names)
    hl7.send(order("HOSPB", again, CBC, ts(1, 9), reason=R01).replace("-NW", "-NW2"))
    hl7.send(oru("HOSPB", again, CBC, ts(1, 10)))
    assert _hospb_flags(engine, names) == [("justified", "R01")]


# --- the operator's decision on a held XO: the placer parts with the test ---------------------------------------


def test_the_operators_decision_takes_the_held_xos_reason_and_requester_too(module_eng: Engine,
                                                                            http: TestClient) -> None:
    """HISAPP orders head CT with R01 (Dr Zhang D7); the RIS reports; the EMR's XO to chest CT, R07, Dr Li D9 is
    held whole (W 204 naming requester and reasonCode). The operator decides it is the owner's (POST
    /admin/quarantine/{id}/owner): the change is taken as the placer's -- the test AND the reason and requester."""
    placer = "RV40H-OWN"
    assert "MSA|AA" in send(http, _stated("HISAPP", placer, "NW", HEAD, "", R01))
    assert "MSA|AA" in send(http, _report("RIS", placer, "HIS", f"F{placer}^RIS"))
    xo = _stated("EMR", placer, "XO", CHEST, f"F{placer}^RIS", R07).replace("D7^张^医生", "D9^李^医生")
    ack = send(http, xo)
    (held,) = _held_at_obr4(ack)
    assert "requester" in held[8] and "reasonCode" in held[8], held
    before = _one(http, "urn:huren:id:HIS", placer)
    assert _reasons(before) == ["R01"]
    msg = message_id(B, xo.split("\n", 1)[0].split("|")[9])
    r = http.post(f"/admin/quarantine/{msg}/owner", json={"reason": "EMR 为医生工作站新接口，与 HISAPP 同一系统"},
                  headers=_operator(module_eng))
    assert r.status_code == 200 and r.json()["decided"]["used"] is True, r.text
    after = _one(http, "urn:huren:id:HIS", placer)
    assert "3001" in _codes(after), after["code"]
    assert _reasons(after) == ["R07"], after.get("reasonCode")
    assert (after.get("requester") or {}).get("reference") != (before.get("requester") or {}).get("reference"), after


def test_the_placers_rp_ro_withdrawing_the_reason_on_the_ro_leaves_none(
        engine: Engine, mllp: int, names: Names) -> None:
    """The HIS's own RP B1 + RO B1R, the RO's ORC-16 ``""``: the placer states the replacement has no re-test
    reason -- it must not inherit R01 through ``replaces`` (moneymend20's RO-before-RU case, in ch. 4's order)."""
    hl7 = names.sender(mllp)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    when = ts(1, 9)
    ack = hl7.send(msh("HOSPB", "HIS", "ORM^O01^ORM_O01", when, "HOSPB-RP-B1") + pid("HOSPB")
                   + f"ORC|RP|B1^HIS|||||||{when}|||D7^张^医生\n" + f"OBR|1|B1^HIS||{CBC}|||{when}\n"
                   + f"ORC|RO|B1R^HIS|||||||{when}|||D7^张^医生||||\"\"\n" + f"OBR|2|B1R^HIS||{CBC}|||{when}\n")
    assert "MSA|AA" in ack, ack
    hl7.send(oru("HOSPB", "B1R", CBC, ts(1, 10)))
    assert _hospb_flags(engine, names) == [("flagged", None)], ack


def _fill_only(engine: Engine, value: str) -> list[dict[str, Any]]:
    """The orders holding the number ``value`` (of any system)."""
    return [sr for sr in engine.repository.search("ServiceRequest", [("identifier", value)]).resources
            if any(i.get("value") == value for i in sr.get("identifier") or ())]


def test_the_fillers_unplaced_ro_writes_no_withdrawal_of_the_doctors_reason(
        engine: Engine, mllp: int, names: Names) -> None:
    """The LIS's RU B1 + RO under its new number FB1R alone (no placer number: the filler has none for it), ORC-16
    ``""`` on both (an LIS that sends ``""`` for every empty field). The replacement inherits R01 -- and must not
    also carry the mark that the re-test reason was withdrawn (the filler's ORC-16 is its own event's reason)."""
    hl7 = names.sender(mllp)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    _accepted(hl7)
    when = ts(1, 9)
    ack = hl7.send(msh("HOSPB", "LIS", "ORM^O01^ORM_O01", when, "HOSPB-RU-B1") + pid("HOSPB")
                   + f"ORC|RU|B1^HIS|FB1^LIS||CA||||{when}|||D7^张^医生||||\"\"\n"
                   + f"OBR|1|B1^HIS|FB1^LIS|{CBC}|||{when}\n"
                   + f"ORC|RO||FB1R^LIS||IP||||{when}|||D7^张^医生||||\"\"\n"
                   + f"OBR|2||FB1R^LIS|{CBC}|||{when}\n")
    assert "MSA|AA" in ack, ack
    (replacement,) = _fill_only(engine, names.number("FB1R"))
    marks = [e for e in replacement.get("extension") or () if e.get("url") == REASON_WITHDRAWN_EXT]
    assert not marks, replacement


def test_a_third_apps_xo_under_the_accession_alone_makes_no_second_order(
        engine: Engine, mllp: int, names: Names) -> None:
    """The EMR's XO naming the LIS's accession FB1^LIS alone (ORC-2/OBR-2 empty): a change of the order that holds
    it -- it must not make a second active order holding the same accession (nor mark a reason withdrawn on it)."""
    hl7 = names.sender(mllp)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    _accepted(hl7)
    when = ts(1, 9)
    ack = hl7.send(msh("HOSPB", "EMR", "ORM^O01^ORM_O01", when, "HOSPB-EMRXO-B1") + pid("HOSPB")
                   + f"ORC|XO||FB1^LIS||IP||||{when}|||D7^张^医生||||\"\"\n" + f"OBR|1||FB1^LIS|{CBC}|||{when}\n")
    assert "MSA|AA" in ack, ack
    holding = _fill_only(engine, names.number("FB1"))
    assert len(holding) == 1, [(sr.get("identifier"), sr.get("status"), sr.get("extension")) for sr in holding]


def test_the_fillers_unplaced_ro_stating_a_reason_does_not_replace_the_doctors(
        engine: Engine, mllp: int, names: Names) -> None:
    """The LIS's RU B1 + RO under FB1R alone, the RO's ORC-16 R07 (the filler's reason for its replacement, in
    huren's system): table 0119 gives RO to the filler too, and only the placer states the re-test reason -- the
    repeat performed under FB1R stays justified by the doctor's R01."""
    hl7 = names.sender(mllp)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    _accepted(hl7)
    when = ts(1, 9)
    ack = hl7.send(msh("HOSPB", "LIS", "ORM^O01^ORM_O01", when, "HOSPB-RU-B1") + pid("HOSPB")
                   + f"ORC|RU|B1^HIS|FB1^LIS||CA||||{when}|||D7^张^医生\n" + f"OBR|1|B1^HIS|FB1^LIS|{CBC}|||{when}\n"
                   + f"ORC|RO||FB1R^LIS||IP||||{when}|||D7^张^医生||||{R07}\n" + f"OBR|2||FB1R^LIS|{CBC}|||{when}\n")
    assert "MSA|AA" in ack, ack
    res = ts(1, 10)
    hl7.send(msh("HOSPB", "LIS", "ORU^R01^ORU_R01", res, "HOSPB-ORU-B1R") + pid("HOSPB")
             + f"OBR|1||FB1R^LIS|{CBC}|||{res}|||||||||D7^张^医生||||||{res}|||F\n"
             + f"OBX|1|NM|WBC^白细胞^L||6.1|10*9/L|||||F|||{res}\n")
    assert _hospb_flags(engine, names) == [("justified", "R01")], ack


def test_a_third_apps_held_status_change_does_not_cancel_the_order(http: TestClient) -> None:
    """The HIS orders head CT, the RIS accepts it (SC, ``F<n>^RIS``); the EMR's OC ("order cancelled", the
    filler's code) under those numbers, ORC-5 CA: held as not the filler's (W 204) -- and, held, it must not
    revoke the order either (a revoked order no longer holds the RIS's accession, ``_held_elsewhere``)."""
    placer = "RV40H-OC"
    assert "MSA|AA" in send(http, _stated("HIS", placer, "NW", HEAD, "", R01))
    assert "MSA|AA" in send(http, _stated("RIS", placer, "SC", HEAD, f"F{placer}^RIS", ""))
    ack = send(http, _stated("EMR", placer, "OC", HEAD, f"F{placer}^RIS", "").replace("||IP||", "||CA||"))
    assert len(_held_at_obr4(ack)) == 1, ack
    assert _one(http, "urn:huren:id:HIS", placer)["status"] == "active", ack


def test_a_result_messages_orc16_does_not_change_the_doctors_reason(
        engine: Engine, mllp: int, names: Names) -> None:
    """The LIS's ORU repeating the order (ORC-1 RE) with ORC-16 R07 -- a result message states nothing of the
    order's reason (``_whose``: ``""``): the repeat stays justified by R01."""
    hl7 = names.sender(mllp)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    res = ts(1, 10)
    ack = hl7.send(msh("HOSPB", "LIS", "ORU^R01^ORU_R01", res, "HOSPB-ORU-B1") + pid("HOSPB")
                   + f"ORC|RE|B1^HIS|FB1^LIS||CM||||{res}|||D7^张^医生||||{R07}\n"
                   + f"OBR|1|B1^HIS|FB1^LIS|{CBC}|||{res}|||||||||D7^张^医生||||||{res}|||F\n"
                   + f"OBX|1|NM|WBC^白细胞^L||6.1|10*9/L|||||F|||{res}\n")
    assert _hospb_flags(engine, names) == [("justified", "R01")], ack


@pytest.mark.parametrize("control", ["CA", "DC"])
def test_a_third_apps_cancel_request_does_not_cancel_the_placers_order(
        http: TestClient, control: str) -> None:
    """The HIS orders head CT, the RIS accepts it; the EMR's CA / DC (the placer's requests, table 0119) under the
    HIS's and the RIS's numbers: the EMR is not the placer -- the order stays active (and keeps holding the
    accession against the HIS's next order, ``_held_elsewhere``)."""
    placer = f"RV40H-3{control}"
    assert "MSA|AA" in send(http, _stated("HIS", placer, "NW", HEAD, "", R01))
    assert "MSA|AA" in send(http, _stated("RIS", placer, "SC", HEAD, f"F{placer}^RIS", ""))
    ack = send(http, _stated("EMR", placer, control, HEAD, f"F{placer}^RIS", "").replace("||IP||", "||CA||"))
    assert _one(http, "urn:huren:id:HIS", placer)["status"] == "active", ack


def test_the_operators_decision_takes_the_held_xos_withdrawal_too(
        module_eng: Engine, http: TestClient) -> None:
    """The EMR's held XO to chest CT withdrawing the reason (ORC-16 ``""``) held whole; the operator decides it is
    the owner's: the withdrawal is applied with the test (R01 gone, the mark written)."""
    placer = "RV40H-OWNDEL"
    assert "MSA|AA" in send(http, _stated("HISAPP", placer, "NW", HEAD, "", R01))
    assert "MSA|AA" in send(http, _report("RIS", placer, "HIS", f"F{placer}^RIS"))
    xo = _stated("EMR", placer, "XO", CHEST, f"F{placer}^RIS", '""')
    (held,) = _held_at_obr4(send(http, xo))
    assert _reasons(_one(http, "urn:huren:id:HIS", placer)) == ["R01"], held
    msg = message_id(B, xo.split("\n", 1)[0].split("|")[9])
    r = http.post(f"/admin/quarantine/{msg}/owner", json={"reason": "EMR 与 HISAPP 为同一医生工作站"},
                  headers=_operator(module_eng))
    assert r.status_code == 200 and r.json()["decided"]["used"] is True, r.text
    after = _one(http, "urn:huren:id:HIS", placer)
    assert "3001" in _codes(after) and _reasons(after) == [], after
    assert [e for e in after.get("extension") or () if e.get("url") == REASON_WITHDRAWN_EXT], after


def test_the_fillers_own_ru_ro_is_not_warned_as_a_third_applications(http: TestClient) -> None:
    """The HIS orders head CT, the RIS accepts it (SC ``F<n>^RIS``), then replaces it on its own: RU for the old
    filler number, RO for its new one under the same placer number -- the filler's statement, no W 204."""
    placer = "RV40H-RURO"
    assert "MSA|AA" in send(http, _stated("HIS", placer, "NW", HEAD, "", R01))
    assert "MSA|AA" in send(http, _stated("RIS", placer, "SC", HEAD, f"F{placer}^RIS", ""))
    ru = _stated("RIS", placer, "RU", HEAD, f"F{placer}^RIS", "")
    ro = _stated("RIS", placer, "RO", HEAD, f"F{placer}R^RIS", "").split("\n", 2)[2].replace("OBR|1|", "OBR|2|")
    ack = send(http, ru + ro)
    assert "MSA|AA" in ack and not [e for e in _errs(ack) if e[3].split("^")[0] == "204"], ack
