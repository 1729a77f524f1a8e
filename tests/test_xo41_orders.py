"""xo41: an order named by the filler's number alone, and the filler's first statement under a number the site names its own.

(1) rv40h MED 7: a group with ORC-2/OBR-2 empty and ORC-3/OBR-3 valued is a statement of the patient's order that
holds that filler number (``adapters.convert.adopt_filled``), judged as any statement of it (an XO by the placer
number the order holds: ``MergeRules._its_number``). (2) rv40d MED 2: an LIS whose filler numbers (``F<n>^LAB^<OID>^ISO``)
are named its own by the site (``application_aliases`` ``[LIS^<OID>^ISO, LAB^<OID>^ISO]``) assigns its number with
its first statement: its SC and XX are its own before its report. The OID alone names no application (xofix41:
``Owned.assigns`` by the universal id let the EMR sharing the hospital's OID assign the lab's number, rv41d HIGH 3).

Real HL7 v2 through ``POST /hl7v2`` (one by one) and the ingestor's batch (one transaction, as an MLLP BHS batch),
the real store on each backend, read back over ``/fhir``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.recognition.facts import REASON_WITHDRAWN_EXT
from tests.conftest import _BACKENDS
from tests.module_store import module_eng
from tests.test_cdfix38_fixes import OID
from tests.test_code37_ris_change import CHEST, HEAD
from tests.test_codedoc38_order_owner import _codes
from tests.test_codefix36_order_code import _errs
from tests.test_ord40_owner_decision import _aliased, _client, _engine_on
from tests.test_probepay26_windows import msh, pid
from tests.test_rv40c_probes import OTHER, _fillers, _held_at_obr4, _one, _order, _orders, _report
from tests.test_rv40d_probes import R01, _lab_report, _reasons, _stated
from tests.test_srfix35_order_code import ORDERED, B, http, send

__all__ = ["http", "module_eng"]

RIS = "urn:huren:id:RIS"
LAB_OID = "2.16.156.10011.1.9.41"


def _by_filler(app: str, control: str, item: str, filler: str, orc16: str = "", inst: str = B,
               status: str = "IP") -> str:
    """An order message from MSH-3 ``app`` naming its order by the filler number ``filler`` alone (ORC-2, OBR-2
    empty): ORC-1 ``control``, ORC-5 ``status``, the test ``item``, ORC-16 ``orc16``."""
    return (msh(inst, app, "ORM^O01^ORM_O01", ORDERED) + pid(inst)
            + f"ORC|{control}||{filler}||{status}||||{ORDERED}|||D7^张^医生||||{orc16}\n"
            + f"OBR|1||{filler}|{item}|||{ORDERED}\n")


def _numbered(http: TestClient, placer: str, item: str = HEAD) -> None:
    """The HIS orders ``item`` under ``<placer>^HIS`` with R01; the RIS accepts it under ``F<placer>^RIS`` (SC)."""
    assert "MSA|AA" in send(http, _stated("HIS", placer, "NW", item, "", R01))
    assert "MSA|AA" in send(http, _stated("RIS", placer, "SC", item, f"F{placer}^RIS", ""))


def _marks(order: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in order.get("extension") or () if e.get("url") == REASON_WITHDRAWN_EXT]


# --- (1) an order named by the filler's number alone -------------------------------------------------------------


def test_a_third_apps_xo_by_the_accession_alone_is_held_on_the_order_holding_it(http: TestClient) -> None:
    """The EMR's XO under ``F<n>^RIS`` alone, chest CT, ORC-16 ``""``: the HIS's order is the one it names; the EMR
    is not its placer -- held (W 204 at OBR-4 naming the HIS's placer number by its history), the test head CT, R01
    standing, no mark of a withdrawal, and no second order holding the accession."""
    placer = "XO41-EMR"
    _numbered(http, placer)
    ack = send(http, _by_filler("EMR", "XO", CHEST, f"F{placer}^RIS", '""'))
    assert "MSA|AA" in ack, ack
    (held,) = _held_at_obr4(ack)
    assert f"it names the order by OBR-3 F{placer} alone" in held[8], held
    assert f"history names HIS of {B}" in held[8] and f"stored PLAC {placer}" in held[8], held
    (order,) = _orders(http, RIS, f"F{placer}")
    assert order["id"] == _one(http, "urn:huren:id:HIS", placer)["id"], order
    assert "3002" in _codes(order) and _reasons(order) == ["R01"] and not _marks(order), order


def test_a_third_apps_cancel_by_the_accession_alone_is_held_on_the_order_holding_it(http: TestClient) -> None:
    """The EMR's CA (the placer's request) under ``F<n>^RIS`` alone: held on the HIS's order (W 204 at ORC-1), which
    stays active; the HIS's own CA by the accession alone cancels it."""
    placer = "XO41-CA"
    _numbered(http, placer)
    ack = send(http, _by_filler("EMR", "CA", HEAD, f"F{placer}^RIS", status="CA"))
    (held,) = [e for e in _errs(ack) if e[2] == "ORC^1^1" and e[4] == "W"]
    assert held[3].split("^")[0] == "204" and "is not this order's placer" in held[8], held
    assert _one(http, "urn:huren:id:HIS", placer)["status"] == "active", ack
    ack = send(http, _by_filler("HIS", "CA", HEAD, f"F{placer}^RIS", status="CA"))
    assert "MSA|AA" in ack and not [e for e in _errs(ack) if e[4] == "W"], ack
    (order,) = _orders(http, RIS, f"F{placer}")
    assert order["status"] == "revoked", order


def test_the_placers_own_xo_by_the_accession_alone_changes_its_order(http: TestClient) -> None:
    """Guard: the HIS's own XO under the RIS's accession alone, chest CT: its order -- recoded, no W, one order."""
    placer = "XO41-HIS"
    _numbered(http, placer)
    ack = send(http, _by_filler("HIS", "XO", CHEST, f"F{placer}^RIS"))
    assert "MSA|AA" in ack and not _held_at_obr4(ack), ack
    (order,) = _orders(http, RIS, f"F{placer}")
    assert "3001" in _codes(order) and order["id"] == _one(http, "urn:huren:id:HIS", placer)["id"], order


def test_the_fillers_report_by_its_accession_alone_completes_the_placers_order(http: TestClient) -> None:
    """The RIS's report under its accession alone (ORC-2/OBR-2 empty), after its SC: based on the HIS's order,
    which it completes -- not on a second order of its own."""
    placer = "XO41-ORU"
    _numbered(http, placer)
    assert "MSA|AA" in send(http, _report("RIS", "", "HIS", f"F{placer}^RIS"))
    (order,) = _orders(http, RIS, f"F{placer}")
    assert order["status"] == "completed" and order["id"] == _one(http, "urn:huren:id:HIS", placer)["id"], order
    reports = http.get("/fhir/DiagnosticReport", params={"based-on": f"ServiceRequest/{order['id']}"}).json()
    assert len(reports.get("entry") or ()) == 1, reports


def test_one_accession_for_two_tests_is_told_apart_by_the_test(http: TestClient) -> None:
    """The HIS orders head CT and chest CT, the RIS accepts both under one accession: its report of chest CT under the
    accession alone completes the chest CT order, and the head CT stays as it was; a third order of the same test
    under one accession cannot be told apart -- kept under the number alone, W 205 at OBR-3 saying so."""
    placer, accession = "XO41-TWO", "ACC-XO41-TWO"
    for n, item in ((1, HEAD), (2, CHEST)):
        assert "MSA|AA" in send(http, _stated("HIS", f"{placer}{n}", "NW", item, "", ""))
        assert "MSA|AA" in send(http, _stated("RIS", f"{placer}{n}", "SC", item, f"{accession}^RIS", ""))
    report = _report("RIS", "", "HIS", f"{accession}^RIS").replace(HEAD, CHEST)
    assert "MSA|AA" in send(http, report)
    head, chest = (_one(http, "urn:huren:id:HIS", f"{placer}{n}") for n in (1, 2))
    assert (head["status"], chest["status"]) == ("active", "completed"), (head, chest)
    assert len(_orders(http, RIS, accession)) == 2
    # (a second chest CT under the accession: which one the number means is not said)
    assert "MSA|AA" in send(http, _stated("HIS", f"{placer}3", "NW", CHEST, "", ""))
    assert "MSA|AA" in send(http, _stated("RIS", f"{placer}3", "SC", CHEST, f"{accession}^RIS", ""))
    ack = send(http, _by_filler("RIS", "SC", CHEST, f"{accession}^RIS"))
    assert "MSA|AA" in ack, ack
    (said,) = [e for e in _errs(ack) if e[2] == "OBR^1^3" and e[4] == "W"]
    assert said[3].split("^")[0] == "205" and "names 2 orders of this patient" in said[8], said


def test_the_replacement_not_the_replaced_order_is_the_one_its_accession_names(http: TestClient) -> None:
    """The HIS replaces its order (RP + RO ``<n>R``), both under the accession the RIS keeps: the RIS's report under
    the accession alone completes the replacement; the replaced order stays revoked."""
    placer = "XO41-REPL"
    _numbered(http, placer)
    replace = (msh(B, "HIS", "ORM^O01^ORM_O01", ORDERED) + pid(B)
               + f"ORC|RP|{placer}^HIS|F{placer}^RIS||CA\n" + f"OBR|1|{placer}^HIS|F{placer}^RIS|{HEAD}|||{ORDERED}\n"
               + f"ORC|RO|{placer}R^HIS|F{placer}^RIS||IP\n" + f"OBR|2|{placer}R^HIS|F{placer}^RIS|{HEAD}|||{ORDERED}\n")
    assert "MSA|AA" in send(http, replace)
    assert "MSA|AA" in send(http, _report("RIS", "", "HIS", f"F{placer}^RIS"))
    old, new = _one(http, "urn:huren:id:HIS", placer), _one(http, "urn:huren:id:HIS", placer + "R")
    assert (old["status"], new["status"]) == ("revoked", "completed"), (old, new)
    assert len(_orders(http, RIS, f"F{placer}")) == 2


@pytest.mark.parametrize("whose", ["another-patient", "another-member"])
def test_another_patients_or_members_order_under_the_accession_is_never_found(http: TestClient, whose: str) -> None:
    """The accession held by an order of another patient of the hospital, or of another member: the report under
    it alone for this patient is an order of its own (as before), the other order untouched and not named."""
    placer = f"XO41-{whose.upper()}"
    inst, mrn = (B, "MRN-XO41-OTHER") if whose == "another-patient" else (OTHER, "")
    theirs = _stated("HISAPP", placer, "NW", HEAD, "", "", inst=inst)
    numbered = _stated("RIS", placer, "SC", HEAD, f"F{placer}^RIS", "", inst=inst)
    if mrn:
        theirs, numbered = (m.replace(f"MRN-{B}", mrn).replace("32092319850412001X", "320923198504120036")
                            for m in (theirs, numbered))
    assert "MSA|AA" in send(http, theirs) and "MSA|AA" in send(http, numbered)
    ack = send(http, _report("RIS", "", "HIS", f"F{placer}^RIS"))
    assert "MSA|AA" in ack and "ServiceRequest/" not in ack and OTHER not in ack, ack
    other = _one(http, "urn:huren:id:HIS", placer)
    assert other["status"] == "active", other
    assert len(_orders(http, RIS, f"F{placer}")) == 2


# --- (2) the filler's first statement under a number the site names its own --------------------------------------


def test_the_labs_sc_creating_the_order_stores_its_number_and_its_xx_is_its_own(aliased: TestClient) -> None:
    """No order stored yet: the LIS (``LIS^<lab OID>^ISO``, the site's alias naming ``LAB^<lab OID>^ISO`` its own)
    accepts the HIS's order under ``F<n>^LAB^<lab OID>^ISO`` (SC, the order's first message): the number is stored
    with it, and the LIS's XX to chest CT is then its own."""
    http = aliased
    placer = "XO41-LABNEW"
    filler, lis = f"F{placer}^LAB^{LAB_OID}^ISO", f"LIS^{LAB_OID}^ISO"
    sc = send(http, _order(lis, placer, "HIS", "SC", HEAD, filler))
    assert "MSA|AA" in sc and not _held_at_obr4(sc), sc
    assert _fillers(_one(http, "urn:huren:id:HIS", placer)) == [f"urn:oid:{LAB_OID}|F{placer}"]
    xx = send(http, _order(lis, placer, "HIS", "XX", CHEST, filler))
    assert "MSA|AA" in xx and not _held_at_obr4(xx), xx
    assert "3001" in _codes(_one(http, "urn:huren:id:HIS", placer))


def test_an_order_another_filler_numbered_is_judged_by_its_history(http: TestClient) -> None:
    """Guard: the RIS numbered the order first (``F<n>^RIS``); the LIS's SC under a number of its own OID after it
    is no first assignment -- held (W 204, "no message stored FILL ... on it before"), its number not stored."""
    placer = "XO41-SECOND"
    filler, lis = f"F{placer}^LAB^{LAB_OID}^ISO", f"LIS^{LAB_OID}^ISO"
    _numbered(http, placer)
    ack = send(http, _order(lis, placer, "HIS", "SC", CHEST, filler))
    (held,) = _held_at_obr4(ack)
    assert f"no message stored FILL F{placer} on it before" in held[8], held
    order = _one(http, "urn:huren:id:HIS", placer)
    assert _fillers(order) == [f"{RIS}|F{placer}"] and "3002" in _codes(order), order


def test_a_change_before_the_fillers_first_statement_assigns_nothing(http: TestClient) -> None:
    """Guard: the LIS ``LIS^<OID>^ISO`` (MSH-4 plain) sends XX to chest CT under the RIS's ``F<n>^RIS^<OID>^ISO``
    before the RIS has said a word -- a change of the order, not the filler accepting it (table 0119: OK, NA, SC):
    held, its number not stored; the RIS's own report of head CT is then filed on the order."""
    placer = "XO41-CHANGE"
    filler = f"F{placer}^RIS^{OID}^ISO"
    assert "MSA|AA" in send(http, _order("HIS", placer, "HIS"))
    (held,) = _held_at_obr4(send(http, _order(f"LIS^{OID}^ISO", placer, "HIS", "XX", CHEST, filler)))
    assert "no message stored FILL" in held[8], held
    assert "MSA|AA" in send(http, _report(f"RIS^{OID}^ISO", placer, "HIS", filler))
    order = _one(http, "urn:huren:id:HIS", placer)
    assert _fillers(order) == [f"urn:oid:{OID}|F{placer}"] and "3002" in _codes(order), order


def test_the_hospitals_oid_in_msh4_names_no_application(http: TestClient) -> None:
    """Guard (rv40c MED 1 stays closed): a site putting the hospital's OID in every HD, MSH-4 ``<inst>^<OID>^ISO``
    too -- the OID is the facility's; the LIS ``LIS^<OID>^ISO`` accepting the order (SC) under the RIS's
    ``F<n>^RIS^<OID>^ISO`` before the RIS has said a word assigns nothing: held, its number not stored; the RIS's
    own report then stores it."""
    placer = "XO41-FACILITY"
    filler = f"F{placer}^RIS^{OID}^ISO"
    assert "MSA|AA" in send(http, _order("HIS", placer, "HIS"))
    ack = send(http, _order(f"LIS^{OID}^ISO", placer, "HIS", "SC", CHEST, filler, msh4=f"{B}^{OID}^ISO"))
    (held,) = _held_at_obr4(ack)
    assert "no message stored FILL" in held[8], held
    assert _fillers(_one(http, "urn:huren:id:HIS", placer)) == []
    assert "MSA|AA" in send(http, _report(f"RIS^{OID}^ISO", placer, "HIS", filler))
    order = _one(http, "urn:huren:id:HIS", placer)
    assert _fillers(order) == [f"urn:oid:{OID}|F{placer}"] and "3002" in _codes(order), order


# --- one batch decides as one by one ---------------------------------------------------------------------------


def _plain(acks: list[str], run: str) -> list[list[str]]:
    """The ACKs' MSA codes and ERR lines, the run's numbers and the messages' control ids left out."""
    out = []
    for ack in acks:
        lines = [s for s in ack.replace("\n", "\r").split("\r") if s.startswith(("MSA|", "ERR|"))]
        out.append([re.sub(r"PP26-\d+", "<id>", s.split("|")[1] if s.startswith("MSA|") else s).replace(run, "<run>")
                    for s in lines])
    return out


def _scenario(name: str, run: str) -> list[str]:
    if name == "xo-by-accession":
        return [_stated("HIS", run, "NW", HEAD, "", R01), _stated("RIS", run, "SC", HEAD, f"F{run}^RIS", ""),
                _by_filler("EMR", "XO", CHEST, f"F{run}^RIS", '""'), _report("RIS", "", "HIS", f"F{run}^RIS")]
    filler, lis = f"F{run}^LAB^{LAB_OID}^ISO", f"LIS^{LAB_OID}^ISO"
    return [_order("HIS", run, "HIS"), _order(lis, run, "HIS", "SC", HEAD, filler),
            _order(lis, run, "HIS", "XX", CHEST, filler), _lab_report(lis, run, filler, CHEST)]


def _state(http: TestClient, run: str) -> list[Any]:
    order = _one(http, "urn:huren:id:HIS", run)
    return [sorted(_codes(order)), order["status"], _reasons(order), len(_marks(order)),
            [f.replace(run, "<run>") for f in _fillers(order)],
            len([o for o in http.get("/fhir/ServiceRequest", params={"subject": order["subject"]["reference"]})
                 .json().get("entry") or () if any(run in str(i.get("value")) for i in o["resource"]["identifier"])])]


@pytest.mark.parametrize(("name", "single", "batch"), [("xo-by-accession", "XO41-B1", "XO41-B2"),
                                                        ("lab-oid", "XO41-B3", "XO41-B4")])
def test_one_batch_decides_as_one_by_one(module_eng: Engine, http: TestClient, name: str, single: str,
                                         batch: str) -> None:
    """Each scenario's messages one by one, then as one batch: the same ACKs (MSA codes, ERR lines) and the same
    order -- the EMR's XO by the accession alone held on the HIS's order; the lab's SC, XX and report taken."""
    one = [send(http, m) for m in _scenario(name, single)]
    many = [o.ack.decode() for o in module_eng.ingestor.process(
        [(m.replace("\n", "\r").encode(), "mllp", "t") for m in _scenario(name, batch)])]
    assert _plain(many, batch) == _plain(one, single)
    assert _state(http, batch) == _state(http, single)
    if name == "lab-oid":  # (no alias on this site: the OID alone names no application -- the SC and XX held)
        assert "3002" in _state(http, single)[0]


# --- the site's aliases keep working --------------------------------------------------------------------------


@pytest.fixture(scope="module", params=_BACKENDS)
def aliased(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """An engine whose senders.yaml names ``LIS^<OID>^ISO`` and ``LAB^<OID>^ISO`` one application of FNZYY, and
    ``LIS^<lab OID>^ISO`` and ``LAB^<lab OID>^ISO`` another (a lab with an OID of its own)."""
    site = _aliased(tmp_path_factory.mktemp("xo41site"), {B: [[f"LIS^{OID}^ISO", f"LAB^{OID}^ISO"],
                                                              [f"LIS^{LAB_OID}^ISO", f"LAB^{LAB_OID}^ISO"]]})
    with _engine_on(request.param, tmp_path_factory.mktemp("xo41"), site) as eng, _client(eng, "xo41") as client:
        yield client


def test_an_alias_names_the_lab_where_msh4_carries_the_hospitals_oid(aliased: TestClient) -> None:
    """Where MSH-4 carries the hospital's OID it names no application (above); the site's alias group
    ``[LIS^<OID>^ISO, LAB^<OID>^ISO]`` does: the LIS's SC and XX under ``F<n>^LAB^<OID>^ISO`` are its own."""
    placer = "XO41-ALIAS"
    filler, lis, msh4 = f"F{placer}^LAB^{OID}^ISO", f"LIS^{OID}^ISO", f"{B}^{OID}^ISO"
    assert "MSA|AA" in send(aliased, _order("HIS", placer, "HIS"))
    for control, item in (("SC", HEAD), ("XX", CHEST)):
        ack = send(aliased, _order(lis, placer, "HIS", control, item, filler, msh4=msh4))
        assert "MSA|AA" in ack and not _held_at_obr4(ack), ack
    order = _one(aliased, "urn:huren:id:HIS", placer)
    assert "3001" in _codes(order) and _fillers(order) == [f"urn:oid:{OID}|F{placer}"], order

