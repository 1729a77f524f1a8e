"""rv40d: review probes of ofix40 (order ownership scoped to the sender's institution, HD-1 in the namespace
shortcuts, RU/RQ judged as the filler's, ``placed_numbers`` through ``_order_numbers``).

Real HL7 v2 over ``POST /hl7v2`` into the real store on each backend (``tests.module_store``), read back over
``/fhir`` and the message store. Each test uses order numbers of its own. A probe showing a defect is a strict
xfail naming its severity."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.module_store import module_eng
from tests.test_code37_ris_change import CHEST, HEAD
from tests.test_codedoc38_order_owner import _codes
from tests.test_probepay26_windows import msh, pid
from tests.test_rv40c_probes import _fillers, _held_at_obr4, _one, _order, _report
from tests.test_srfix35_order_code import ORDERED, B, http, send

__all__ = ["http", "module_eng"]

REASONS = "urn:huren:recognition-reason"
R01 = f"R01^病情变化^{REASONS}"
R07 = f"R07^患者或家属要求^{REASONS}"


def _stated(app: str, placer: str, control: str, item: str, filler: str, orc16: str, inst: str = B) -> str:
    """An order message from MSH-3 ``app``: ORC-1 ``control`` under ``<placer>^HIS`` and ``filler``, ORC-16
    ``orc16`` (empty: not sent; ``""``: delete), the test ``item``."""
    return (msh(inst, app, "ORM^O01^ORM_O01", ORDERED) + pid(inst)
            + f"ORC|{control}|{placer}^HIS|{filler}||IP||||{ORDERED}|||D7^张^医生||||{orc16}\n"
            + f"OBR|1|{placer}^HIS|{filler}|{item}|||{ORDERED}\n")


def _reasons(order: dict[str, Any]) -> list[str]:
    return [c["code"] for r in order.get("reasonCode") or () for c in r.get("coding") or ()
            if c.get("system") == REASONS]


def _control(ack: str) -> str:
    return next(s for s in ack.replace("\n", "\r").split("\r") if s.startswith("MSA|")).split("|")[2]


# --- RU/RQ from a third application: the test held, the doctor's re-test reason? ---------------------------------


def test_a_third_apps_rq_deleting_orc16_leaves_the_doctors_reason(http: TestClient) -> None:
    """The HIS orders head CT with R01 (ORC-16); the RIS reports under ``F<n>^RIS``; the LIS sends RQ (replaced as
    requested, the filler's -- not the LIS's to send) under the RIS's numbers with ORC-16 ``""``: its test is held
    (W 204) -- and the doctor's R01 must stand too (it decides payment)."""
    placer = "RV40D-RQDEL"
    assert "MSA|AA" in send(http, _stated("HIS", placer, "NW", HEAD, "", R01))
    assert "MSA|AA" in send(http, _report("RIS", placer, "HIS", f"F{placer}^RIS"))
    assert _reasons(_one(http, "urn:huren:id:HIS", placer)) == ["R01"]
    ack = send(http, _stated("LIS", placer, "RQ", CHEST, f"F{placer}^RIS", '""'))
    assert len(_held_at_obr4(ack)) == 1, ack
    assert _reasons(_one(http, "urn:huren:id:HIS", placer)) == ["R01"], ack


def test_a_third_apps_ru_stating_another_reason_leaves_the_doctors_reason(http: TestClient) -> None:
    """As above, the LIS's RU with ORC-16 R07 (self-pay at the family's wish): held -- R01 stays the reason."""
    placer = "RV40D-RUR07"
    assert "MSA|AA" in send(http, _stated("HIS", placer, "NW", HEAD, "", R01))
    assert "MSA|AA" in send(http, _report("RIS", placer, "HIS", f"F{placer}^RIS"))
    ack = send(http, _stated("LIS", placer, "RU", CHEST, f"F{placer}^RIS", R07))
    assert len(_held_at_obr4(ack)) == 1, ack
    assert _reasons(_one(http, "urn:huren:id:HIS", placer)) == ["R01"], ack


def test_the_fillers_own_ru_does_not_withdraw_the_doctors_reason(http: TestClient) -> None:
    """The RIS's own RU to chest CT with ORC-16 ``""``: its test taken -- the doctor's R01 is no filler's to
    withdraw (moneymend20: only the placer's own statement withdraws it)."""
    placer = "RV40D-RUDEL"
    assert "MSA|AA" in send(http, _stated("HIS", placer, "NW", HEAD, "", R01))
    assert "MSA|AA" in send(http, _report("RIS", placer, "HIS", f"F{placer}^RIS"))
    ack = send(http, _stated("RIS", placer, "RU", CHEST, f"F{placer}^RIS", '""'))
    assert "MSA|AA" in ack and not _held_at_obr4(ack), ack
    order = _one(http, "urn:huren:id:HIS", placer)
    assert "3001" in _codes(order) and _reasons(order) == ["R01"], order


def test_the_fillers_own_ru_keeps_the_reason_when_orc16_is_empty(http: TestClient) -> None:
    """Guard: the RIS's own RU (ORC-16 empty, not sent) to chest CT: taken, and R01 stays."""
    placer = "RV40D-RUOWN"
    assert "MSA|AA" in send(http, _stated("HIS", placer, "NW", HEAD, "", R01))
    assert "MSA|AA" in send(http, _report("RIS", placer, "HIS", f"F{placer}^RIS"))
    ack = send(http, _stated("RIS", placer, "RU", CHEST, f"F{placer}^RIS", ""))
    assert "MSA|AA" in ack and not _held_at_obr4(ack), ack
    order = _one(http, "urn:huren:id:HIS", placer)
    assert "3001" in _codes(order) and _reasons(order) == ["R01"], order


def test_a_third_apps_xo_with_another_reason_leaves_the_doctors_reason(http: TestClient) -> None:
    """HISAPP places head CT with R01, the RIS reports; the EMR's XO (held as a third application's: W 204) to chest
    CT with ORC-16 R07: the held statement must not restate the reason either -- R01 stays."""
    placer = "RV40D-XOR07"
    assert "MSA|AA" in send(http, _stated("HISAPP", placer, "NW", HEAD, "", R01))
    assert "MSA|AA" in send(http, _report("RIS", placer, "HIS", f"F{placer}^RIS"))
    ack = send(http, _stated("EMR", placer, "XO", CHEST, f"F{placer}^RIS", R07))
    assert len(_held_at_obr4(ack)) == 1, ack
    assert _reasons(_one(http, "urn:huren:id:HIS", placer)) == ["R01"], ack


# --- the hospital's OID in every HD: the lab's status before its report ------------------------------------------


def _lab_report(app: str, placer: str, filler: str, item: str) -> str:
    """The lab's final report of ``item`` under ``<placer>^HIS`` and ``filler``."""
    return (msh(B, app, "ORU^R01^ORU_R01", ORDERED.replace("08", "11", 1)) + pid(B)
            + f"ORC|RE|{placer}^HIS|{filler}||CM\n"
            + f"OBR|1|{placer}^HIS|{filler}|{item}|||{ORDERED}||||||||||||||{ORDERED}|||F\n"
            + f"OBX|1|TX|{item}||未见异常||||||F\n")


# (test_a_lab_numbering_under_its_oid_changes_its_own_order_before_its_report: since xofix41 the lab's numbers under
# another HD-1 than its MSH-3's are its own by the site's alias alone -- tests/test_xofix41_orders.py, both OIDs)


# --- the placer's own replacement under the filler's accession --------------------------------------------------


def test_the_placers_replacement_keeps_the_fillers_accession(http: TestClient) -> None:
    """The HIS orders head CT under ``<n>^HIS``; the RIS accepts it under ``F<n>^RIS`` (SC). The HIS replaces the
    order (ch. 4 4.3.2: ORC-1 RP for the order replaced, RO for its replacement ``<n>R^HIS``, both under the one
    accession the RIS keeps). The replacement is the HIS's own order and the old one is replaced: the new order
    carries ``F<n>^RIS`` and the ACK holds nothing at OBR-4."""
    placer = "RV40D-REPL"
    assert "MSA|AA" in send(http, _order("HIS", placer, "HIS"))
    assert "MSA|AA" in send(http, _order("RIS", placer, "HIS", "SC", HEAD, f"F{placer}^RIS"))
    message = (msh(B, "HIS", "ORM^O01^ORM_O01", ORDERED) + pid(B)
               + f"ORC|RP|{placer}^HIS|F{placer}^RIS||CA\n" + f"OBR|1|{placer}^HIS|F{placer}^RIS|{HEAD}|||{ORDERED}\n"
               + f"ORC|RO|{placer}R^HIS|F{placer}^RIS||IP\n"
               + f"OBR|2|{placer}R^HIS|F{placer}^RIS|{CHEST}|||{ORDERED}\n")
    ack = send(http, message)
    assert "MSA|AA" in ack, ack
    new = _one(http, "urn:huren:id:HIS", placer + "R")
    assert _fillers(new) == [f"urn:huren:id:RIS|F{placer}"], new
    assert not _held_at_obr4(ack), ack


# --- one hospital, two records of one person ---------------------------------------------------------------------


def test_the_same_hospitals_order_under_the_persons_other_record_still_holds_the_number(http: TestClient) -> None:
    """Guard (ofix40's institution is the order's patient record's ``managingOrganization``): FNZYY's HISAPP orders
    head CT for WANG under ``MRN-A``, its RIS reports under ``ACC-<n>^RIS``; FNZYY's EMR then places a new order for
    WANG under another record of his at FNZYY (``MRN-B``, a second registration) naming that accession: the
    other record's order is FNZYY's -- held (W 204 naming it and FNZYY's RIS), the EMR's order made without it."""
    placer, accession = "RV40D-TWOREC", "ACC-RV40D-TWOREC"
    first = _order("HISAPP", placer, "HIS").replace("MRN-FNZYY", "MRN-A-RV40D")
    assert "MSA|AA" in send(http, first)
    assert "MSA|AA" in send(http, _report("RIS", placer, "HIS", f"{accession}^RIS").replace("MRN-FNZYY", "MRN-A-RV40D"))
    ours = _one(http, "urn:huren:id:HIS", placer)
    ack = send(http, _order("EMR", placer + "E", "EMR", "NW", CHEST, f"{accession}^RIS")
               .replace("MRN-FNZYY", "MRN-B-RV40D"))
    assert "MSA|AA" in ack, ack
    theirs = _one(http, "urn:huren:id:EMR", placer + "E")
    assert theirs["subject"] != ours["subject"], (theirs["subject"], ours["subject"])
    (held,) = _held_at_obr4(ack)
    assert f"ServiceRequest/{ours['id']} holds FILL {accession}" in held[8] and f"RIS of {B}" in held[8], held
    assert _fillers(theirs) == [], theirs


# --- the refused page: the resident's advice to every caller who is not staff ------------------------------------


def test_a_programs_refusal_is_not_given_the_residents_advice(module_eng: Any, http: TestClient) -> None:
    """A system client's token with ``system/Observation.rs`` only, at /ui/quarantine as HTML: 403 in Chinese,
    and no pointer to a resident's own health records."""
    token = module_eng.auth.issue_system_token("rv40d-narrow", "system/Observation.rs")
    r = http.get("/ui/quarantine", headers={"Authorization": f"Bearer {token}", "Accept": "text/html"})
    assert r.status_code == 403 and "您无权查看" in r.text, r.text
    assert 'href="/ui/me/"' not in r.text and "您本人的健康档案" not in r.text, r.text


def test_a_held_xo_changes_nothing_else_of_the_order_either(http: TestClient) -> None:
    """HISAPP orders head CT (ORC-9 the 12th, Dr Zhang D7), the RIS reports; the EMR's XO -- held as a third
    application's (W 204) -- to chest CT, ORC-9 the 20th, requester D9: the order's time and requester are the
    placer's and stay."""
    placer = "RV40D-XOELSE"
    assert "MSA|AA" in send(http, _stated("HISAPP", placer, "NW", HEAD, "", ""))
    assert "MSA|AA" in send(http, _report("RIS", placer, "HIS", f"F{placer}^RIS"))
    before = _one(http, "urn:huren:id:HIS", placer)
    xo = (_stated("EMR", placer, "XO", CHEST, f"F{placer}^RIS", "")
          .replace(f"||||{ORDERED}|||D7^张^医生", "||||20260320080000+0800|||D9^李^医生"))
    ack = send(http, xo)
    assert len(_held_at_obr4(ack)) == 1, ack
    after = _one(http, "urn:huren:id:HIS", placer)
    assert after.get("authoredOn") == before.get("authoredOn"), (before.get("authoredOn"), after.get("authoredOn"))
    assert after.get("requester") == before.get("requester"), (before.get("requester"), after.get("requester"))
