"""ofix40c: rv40h's order findings mended, beside rv40h's own probes (tests/test_rv40h_probes.py, whose marks were
dropped). Real HL7 v2 over MLLP (the payment: the recognition row of the repeat blood count) or ``POST /hl7v2``
(order state) into the real store on each backend, read back over ``/fhir`` -- the MLLP tests in the policy community
once a module and backend (``shared_worlds44.community_eng``, suite44c), each as a person of its own:

- a replacement inherits the doctor's reason once, by the write that links it: the placer's later XO withdrawing
  the reason on the replacement is not undone by the inheritance (HIGH 2's second path);
- the placer's own XO naming no test still withdraws its reason (guard of HIGH 1: every statement is judged, the
  placer's own taken);
- a third application's CA / HD is held at ORC-1 (W 204 naming the status), the placer's own CA still revokes
  (MED 6);
- whose an RO is, by the replaced order before it (table 0119: RO is P or F), as ``placed_numbers`` counts it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.convert.results import placed_numbers
from engine.engine import Engine
from engine.recognition.facts import REASON_WITHDRAWN_EXT
from tests.module_store import module_eng
from tests.shared_worlds44 import OwnSender, community_eng, community_mllp, own, theirs
from tests.test_code37_ris_change import HEAD
from tests.test_codefix36_order_code import _errs
from tests.test_money20_reason_change import prior
from tests.test_recognition_policy_e2e import CBC, msh, order, pid, ts
from tests.test_recognition_policy_e2e import result as oru
from tests.test_rv40c_probes import _one
from tests.test_rv40d_probes import R01, _reasons, _stated
from tests.test_srfix35_order_code import http, send

__all__ = ["community_eng", "community_mllp", "http", "module_eng"]


def _withdrawn(order: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in order.get("extension") or () if e.get("url") == REASON_WITHDRAWN_EXT]


# --- money: the doctor's withdrawal stands ------------------------------------------------------------------------


def test_the_placers_xo_withdrawing_the_replacements_inherited_reason_stays_withdrawn(
        community_eng: Engine, community_mllp: int, request: pytest.FixtureRequest) -> None:
    """The HIS orders B1 with R01, replaces it (RP B1 + RO B1R, ORC-16 empty: B1R inherits R01), then withdraws the
    reason on B1R (XO, ORC-16 ``""``): the repeat performed under B1R has no reason -- flagged, not payable. (The
    inheritance ran again on every write of B1R and took R01 back within the XO's own write.)"""
    run = own(request, "OF40C-1")
    hl7 = OwnSender(community_mllp, run)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    when = ts(1, 9)
    ack = hl7.send(msh("HOSPB", "HIS", "ORM^O01^ORM_O01", when, "HOSPB-RP-B1") + pid("HOSPB")
                   + f"ORC|RP|B1^HIS|||||||{when}|||D7^张^医生\n" + f"OBR|1|B1^HIS||{CBC}|||{when}\n"
                   + f"ORC|RO|B1R^HIS|||||||{when}|||D7^张^医生\n" + f"OBR|2|B1R^HIS||{CBC}|||{when}\n")
    assert "MSA|AA" in ack, ack
    ack = hl7.send(order("HOSPB", "B1R", CBC, ts(1, 9), reason='""', control="XO"))
    assert "MSA|AA" in ack, ack
    hl7.send(oru("HOSPB", "B1R", CBC, ts(1, 10)))
    b1r, _, flags = theirs(community_eng, run, "B1R")
    assert flags == [("flagged", None)], ack
    # (and the replacement states no reason beside the mark of its withdrawal: two contradicting statements)
    assert _reasons(b1r) == [] and _withdrawn(b1r), b1r


@pytest.mark.parametrize("obr4", ["", '""'], ids=["obr4-empty", "obr4-null"])
def test_the_placers_own_xo_naming_no_test_still_withdraws_its_reason(community_eng: Engine, community_mllp: int,
                                                                     obr4: str, request: pytest.FixtureRequest) -> None:
    """Guard: every statement is judged now whatever OBR-4 holds -- the HIS's own XO under its number B1^HIS,
    naming no test, ORC-16 ``""``, is the placer's: the reason is withdrawn and the repeat is flagged."""
    run = own(request, "OF40C-2")
    hl7 = OwnSender(community_mllp, run)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    when = ts(1, 9)
    ack = hl7.send(msh("HOSPB", "HIS", "ORM^O01^ORM_O01", when, "HOSPB-XO-B1") + pid("HOSPB")
                   + f"ORC|XO|B1^HIS|||||||{when}|||D7^张^医生||||\"\"\n" + f"OBR|1|B1^HIS||{obr4}|||{when}\n")
    assert "MSA|AA" in ack, ack
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    assert theirs(community_eng, run)[2] == [("flagged", None)], ack


# --- the placer's requests: judged by the placer number's owner ----------------------------------------------------


@pytest.mark.parametrize(("control", "status"), [("CA", "CA"), ("HD", "HD")], ids=["cancel", "hold"])
def test_a_third_apps_request_is_held_at_orc1_and_the_placers_own_is_taken(http: TestClient, control: str,
                                                                          status: str) -> None:
    """The HIS orders head CT with R01, the RIS accepts it; the EMR's ``control`` (the placer's request, table
    0119) under those numbers is held: W 204 at ORC-1 naming the status, the order active and its reason kept.
    The HIS's own request is the placer's: taken."""
    placer = f"OFIX40C-{control}"
    assert "MSA|AA" in send(http, _stated("HIS", placer, "NW", HEAD, "", R01))
    assert "MSA|AA" in send(http, _stated("RIS", placer, "SC", HEAD, f"F{placer}^RIS", ""))
    ack = send(http, _stated("EMR", placer, control, HEAD, f"F{placer}^RIS", "").replace("||IP||", f"||{status}||"))
    held = [e for e in _errs(ack) if e[2] == "ORC^1^1" and e[4] == "W" and e[3].split("^")[0] == "204"]
    assert "MSA|AA" in ack and len(held) == 1, ack
    assert "placer's request" in held[0][8] and "EMR" in held[0][8], held
    stored = _one(http, "urn:huren:id:HIS", placer)
    assert stored["status"] == "active" and _reasons(stored) == ["R01"], stored
    ack = send(http, _stated("HIS", placer, control, HEAD, f"F{placer}^RIS", "").replace("||IP||", f"||{status}||")
               .replace(f"{placer}-{control}", f"{placer}-{control}-own"))
    assert not [e for e in _errs(ack) if e[3].split("^")[0] == "204"], ack
    assert _one(http, "urn:huren:id:HIS", placer)["status"] == ("revoked" if control == "CA" else "on-hold"), ack


# --- whose an RO is -----------------------------------------------------------------------------------------------


def _message(*groups: tuple[str, str, str]) -> str:
    text = msh("HOSPB", "LIS", "ORM^O01^ORM_O01", ts(1), "HOSPB-RO") + pid("HOSPB")
    for i, (control, placer, filler) in enumerate(groups, 1):
        text += f"ORC|{control}|{placer}|{filler}\nOBR|{i}|{placer}|{filler}|{CBC}\n"
    return text.replace("\n", "\r")


def test_an_ro_is_the_placers_after_rp_and_the_fillers_after_ru_or_rq() -> None:
    """Table 0119 gives RO to either side: after the placer's RP it places its number, after the filler's RU/RQ
    it places none (the filler's replacement), and alone it is the placer's when it names a placer number."""
    assert placed_numbers("ORM", _message(("RP", "B1^HIS", ""), ("RO", "B1R^HIS", ""))) == {"B1", "B1R"}
    assert placed_numbers("ORM", _message(("RU", "B1^HIS", "F1^LIS"), ("RO", "B1R^HIS", "F1R^LIS"))) == set()
    assert placed_numbers("ORM", _message(("RQ", "B1^HIS", "F1^LIS"), ("RO", "B1R^HIS", "F1R^LIS"))) == set()
    assert placed_numbers("ORM", _message(("RO", "B1R^HIS", ""))) == {"B1R"}
    # (an RO after another RO is alone again: the replaced orders were taken by the first)
    assert placed_numbers("ORM", _message(("RU", "B1^HIS", "F1^LIS"), ("RO", "B1R^HIS", "F1R^LIS"),
                                          ("RO", "B2^HIS", ""))) == {"B2"}
