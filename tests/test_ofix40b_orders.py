"""ofix40b: rv40d's order findings mended, beside rv40d's own probes (tests/test_rv40d_probes.py, whose marks
were dropped). Real HL7 v2 over ``POST /hl7v2`` (and MLLP for the payment) into the real store on each backend,
read back over ``/fhir`` -- the MLLP test in the policy community once a module and backend
(``shared_worlds44.community_eng``, suite44c), each parameter as a person of its own:

- HIGH 1: whose statement an ORC is has one owner (``results._whose``): the filler's RU/RQ neither state nor
  withdraw the doctor's re-test reason, before its result too -- the repeat stays paid (R01 justified);
- HIGH 2: a held statement holds every part the placer states (merge.yaml ``placer``): the re-test reason's
  withdrawal and its mark, the requester on a third application's SC; the W names what it held; the placer's
  own XO still changes them (guard);
- MED 3: the placer's cancel then a new order of the exam under the accession the filler keeps: the new order
  carries it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.recognition.facts import REASON_WITHDRAWN_EXT
from tests.module_store import module_eng
from tests.shared_worlds44 import OwnSender, community_eng, community_mllp, own, theirs
from tests.test_code37_ris_change import CHEST, HEAD
from tests.test_money20_reason_change import prior
from tests.test_recognition_policy_e2e import CBC, msh, order, pid, ts
from tests.test_recognition_policy_e2e import result as oru
from tests.test_rv40c_probes import _fillers, _held_at_obr4, _one, _order, _report
from tests.test_rv40d_probes import R01, R07, _reasons, _stated
from tests.test_srfix35_order_code import http, send

__all__ = ["community_eng", "community_mllp", "http", "module_eng"]


def _withdrawn(order: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in order.get("extension") or () if e.get("url") == REASON_WITHDRAWN_EXT]


# --- HIGH 1: the filler's replacement before its result: the repeat is still paid --------------------------------


@pytest.mark.parametrize(("app", "control"), [("LIS", "RU"), ("LIS", "RQ"), ("EMR", "RQ")],
                         ids=["the-fillers-RU", "the-fillers-RQ", "a-third-apps-RQ"])
def test_a_fillers_replacement_deleting_orc16_leaves_the_repeat_paid(community_eng: Engine, community_mllp: int,
                                                                      app: str, control: str,
                                                                      request: pytest.FixtureRequest) -> None:
    """HOSPB orders a blood count with R01 (a prior one five days ago at HOSPA); the LIS accepts it (SC, its
    number ``FB1^LIS``); then ``app``'s ``control`` under those numbers with ORC-16 ``""`` -- the filler's
    statement (table 0119; ORC-16 its event's reason), or a third application's, held; then the result. The
    doctor's R01 decides: justified. (RU/RQ withdrew it as "the placer's statement" and the repeat was flagged,
    not payable: review rv40d HIGH 1.) The module's policy community, as a person of the test's own."""
    run = own(request, "OF40B")
    hl7 = OwnSender(community_mllp, run)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    when = ts(1, 9)
    hl7.send(msh("HOSPB", "LIS", "ORM^O01^ORM_O01", when, "HOSPB-SC-B1") + pid("HOSPB")
             + f"ORC|SC|B1^HIS|FB1^LIS||IP||||{when}|||D7^张^医生\n" + f"OBR|1|B1^HIS|FB1^LIS|{CBC}|||{when}\n")
    ack = hl7.send(msh("HOSPB", app, "ORM^O01^ORM_O01", when, f"HOSPB-{control}-B1") + pid("HOSPB")
                   + f"ORC|{control}|B1^HIS|FB1^LIS||IP||||{when}|||D7^张^医生||||\"\"\n"
                   + f"OBR|1|B1^HIS|FB1^LIS|{CBC}|||{when}\n")
    assert "MSA|AA" in ack, ack
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    flags = theirs(community_eng, run)[2]
    assert flags == [("justified", "R01")], (flags, ack)


# --- HIGH 2: a held statement holds the placer's parts whole ---------------------------------------------------


def test_a_held_xo_withdrawing_the_reason_withdraws_nothing_and_says_so(http: TestClient) -> None:
    """HISAPP orders head CT with R01 (Dr Zhang D7), the RIS reports; the EMR's XO -- a third application's,
    held (W 204) -- to chest CT, requester D9, ORC-16 ``""``: R01 stays, no withdrawal mark, the requester is
    D7; the W names what it held with the test (requester, reasonCode, extension)."""
    placer = "OF40B-XODEL"
    assert "MSA|AA" in send(http, _stated("HISAPP", placer, "NW", HEAD, "", R01))
    assert "MSA|AA" in send(http, _report("RIS", placer, "HIS", f"F{placer}^RIS"))
    before = _one(http, "urn:huren:id:HIS", placer)
    ack = send(http, _stated("EMR", placer, "XO", CHEST, f"F{placer}^RIS", '""').replace("D7^张^医生", "D9^李^医生"))
    (held,) = _held_at_obr4(ack)
    after = _one(http, "urn:huren:id:HIS", placer)
    assert _reasons(after) == ["R01"] and not _withdrawn(after), after
    assert after.get("requester") == before.get("requester"), (before.get("requester"), after.get("requester"))
    assert "held with it" in held[8] and "requester" in held[8] and "reasonCode" in held[8], held
    assert "extension" in held[8], held  # (the mark of the withdrawal it would have made)


def test_a_held_xo_after_the_placers_withdrawal_states_no_reason_again(http: TestClient) -> None:
    """HISAPP orders head CT with R01 and withdraws it itself (XO, ORC-16 ``""``: the mark of the withdrawal); the
    RIS reports; the EMR's held XO states R07: no reason comes back, the placer's withdrawal mark stays (a held
    statement neither states the reason nor deletes the mark)."""
    placer = "OF40B-XOAFTER"
    assert "MSA|AA" in send(http, _stated("HISAPP", placer, "NW", HEAD, "", R01))
    assert "MSA|AA" in send(http, _stated("HISAPP", placer, "XO", HEAD, "", '""'))
    assert "MSA|AA" in send(http, _report("RIS", placer, "HIS", f"F{placer}^RIS"))
    withdrawn = _one(http, "urn:huren:id:HIS", placer)
    assert _reasons(withdrawn) == [] and _withdrawn(withdrawn), withdrawn
    ack = send(http, _stated("EMR", placer, "XO", HEAD, f"F{placer}^RIS", R07))
    assert len(_held_at_obr4(ack)) == 1, ack
    after = _one(http, "urn:huren:id:HIS", placer)
    assert _reasons(after) == [] and _withdrawn(after) == _withdrawn(withdrawn), after


def test_a_third_apps_sc_does_not_rewrite_the_order_time_or_requester(http: TestClient) -> None:
    """The filler's statement held (the LIS's SC under the RIS's numbers, W 204): its ORC-9 and ORC-12 are not the
    order's time and doctor either."""
    placer = "OF40B-SC"
    assert "MSA|AA" in send(http, _stated("HIS", placer, "NW", HEAD, "", R01))
    assert "MSA|AA" in send(http, _report("RIS", placer, "HIS", f"F{placer}^RIS"))
    before = _one(http, "urn:huren:id:HIS", placer)
    sc = (_stated("LIS", placer, "SC", HEAD, f"F{placer}^RIS", "")
          .replace("||||20260312080000+0800|||D7^张^医生", "||||20260320080000+0800|||D9^李^医生"))
    assert "D9^李^医生" in sc
    ack = send(http, sc)
    assert len(_held_at_obr4(ack)) == 1, ack
    after = _one(http, "urn:huren:id:HIS", placer)
    assert (after.get("authoredOn"), after.get("requester")) == (before.get("authoredOn"), before.get("requester"))


def test_the_placers_own_xo_still_changes_its_time_requester_and_reason(http: TestClient) -> None:
    """Guard: the hold is a held statement's only -- HISAPP's own XO (after the RIS's report) to chest CT, ORC-9
    the 20th, Dr Li D9, R07: taken whole, no W at OBR-4."""
    placer = "OF40B-XOOWN"
    assert "MSA|AA" in send(http, _stated("HISAPP", placer, "NW", HEAD, "", R01))
    assert "MSA|AA" in send(http, _report("RIS", placer, "HIS", f"F{placer}^RIS"))
    before = _one(http, "urn:huren:id:HIS", placer)
    xo = (_stated("HISAPP", placer, "XO", CHEST, f"F{placer}^RIS", R07)
          .replace("||||20260312080000+0800|||D7^张^医生", "||||20260320080000+0800|||D9^李^医生"))
    assert "D9^李^医生" in xo
    ack = send(http, xo)
    assert "MSA|AA" in ack and not _held_at_obr4(ack), ack
    after = _one(http, "urn:huren:id:HIS", placer)
    assert _reasons(after) == ["R07"], after
    assert after.get("authoredOn") != before.get("authoredOn") and after.get("requester") != before.get("requester")


# --- MED 3: the placer's cancel and new order under the accession the filler keeps --------------------------------


def test_the_placers_new_order_after_its_cancel_keeps_the_fillers_accession(http: TestClient) -> None:
    """退费重开: the HIS orders head CT under ``<n>^HIS``, the RIS accepts it under ``F<n>^RIS`` (SC); the HIS
    cancels it (CA) and orders the exam again under ``<n>N^HIS``, naming the accession the RIS keeps: the cancelled
    order holds it no longer -- the new order carries it, no W 204 at OBR-4."""
    placer = "OF40B-CANEW"
    assert "MSA|AA" in send(http, _order("HIS", placer, "HIS"))
    assert "MSA|AA" in send(http, _order("RIS", placer, "HIS", "SC", HEAD, f"F{placer}^RIS"))
    cancel = _order("HIS", placer, "HIS", "CA", HEAD, f"F{placer}^RIS").replace("||IP\n", "||CA\n")  # (ORC-5 CA)
    assert "MSA|AA" in send(http, cancel)
    assert _one(http, "urn:huren:id:HIS", placer)["status"] == "revoked"
    ack = send(http, _order("HIS", placer + "N", "HIS", "NW", HEAD, f"F{placer}^RIS"))
    assert "MSA|AA" in ack and not _held_at_obr4(ack), ack
    assert _fillers(_one(http, "urn:huren:id:HIS", placer + "N")) == [f"urn:huren:id:RIS|F{placer}"]


def test_an_active_order_of_the_placer_still_holds_the_accession(http: TestClient) -> None:
    """Guard: the same without the cancel -- the first order active, the HIS's second order naming its accession
    is made without it (W 204 naming the order that holds it)."""
    placer = "OF40B-NOCA"
    assert "MSA|AA" in send(http, _order("HIS", placer, "HIS"))
    assert "MSA|AA" in send(http, _order("RIS", placer, "HIS", "SC", HEAD, f"F{placer}^RIS"))
    ack = send(http, _order("HIS", placer + "N", "HIS", "NW", HEAD, f"F{placer}^RIS"))
    (held,) = _held_at_obr4(ack)
    assert "holds FILL" in held[8], held
    assert _fillers(_one(http, "urn:huren:id:HIS", placer + "N")) == []
