"""ofix39: the fixes of review rv39g's findings on ord39's order history.

- MED 3: the placer is the first application whose order message states the placer number as the placer's
  (``Stamp.placed``: ORC-1 NW, XO, RO, RP ... under it), not the first order message to write a version -- a report
  arriving before the order, and the filler's own XX after it, place nothing;
- MED 1: a message whose MSH-3 is an OID alone (``^<OID>^ISO``) is judged as any other;
- MED 2: every placer's statement is judged as XO is (a third application's NW under the placer's number held,
  the placer's own NW re-sent taken);
- MED 4: a placer's statement under a placer number no order holds, naming another order's filler number, makes
  its order without that number (W 204 naming the application the other order's history names);
- LOW 5: two MSH-3s with one OID and two HD-1s are two applications (HD-1 agrees too: table 0361).

Real HL7 v2 over ``POST /hl7v2`` into the real store on each backend (``tests.module_store``), read back over
``/fhir``. Each test uses order numbers of its own.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.convert.datatypes import same_hd
from adapters.convert.results import placed_numbers
from tests.module_store import module_eng
from tests.test_cdfix38_fixes import OID
from tests.test_code37_ris_change import CHEST, HEAD, _changed, _ordered, _ris
from tests.test_codedoc38_order_owner import _codes
from tests.test_codefix36_order_code import _errs
from tests.test_ord39_order_history import _fillers, _from, _held, _placed_by, _taken, _xo
from tests.test_srfix35_order_code import B, http, oru, send, the_order

__all__ = ["http", "module_eng"]


def test_a_result_first_then_the_order_makes_the_order_message_the_placer(http: TestClient) -> None:
    """The RIS's report creates the order (it repeats ORC-2: the placer number stored first by a result); HISAPP's
    order follows; the EMR's XO under the HIS's number is held, naming HISAPP -- under ord39's first cut (the
    version that first held the number, a result's: no placer) it would have been taken; HISAPP's own is taken."""
    placer = "OF39-ORUFIRST"
    assert "MSA|AA" in send(http, _ris(oru(placer, item=HEAD)))
    assert "MSA|AA" in send(http, _placed_by("HISAPP", placer))
    _held(http, placer, send(http, _xo("EMR", placer, CHEST)), "ORC-1 XO", f"history names HISAPP of {B}")
    _taken(http, placer, send(http, _xo("HISAPP", placer, CHEST)))


def test_the_placers_own_nw_resent_is_taken_and_a_third_apps_held(http: TestClient) -> None:
    """HISAPP places head CT, the RIS reports; the EMR's NW (chest CT) under the HIS's number: held as its XO is
    (W 204 at OBR-4 naming ORC-1 NW and HISAPP); HISAPP's own NW re-sent with chest CT: taken."""
    placer = "OF39-NW"
    assert "MSA|AA" in send(http, _placed_by("HISAPP", placer))
    assert "MSA|AA" in send(http, _ris(oru(placer, item=HEAD)))
    _held(http, placer, send(http, _xo("EMR", placer, CHEST).replace("ORC|XO|", "ORC|NW|")), "ORC-1 NW",
          "application EMR", f"history names HISAPP of {B}")
    _taken(http, placer, send(http, _xo("HISAPP", placer, CHEST).replace("ORC|XO|", "ORC|NW|")))


def test_an_oid_only_third_app_is_held_naming_the_ris(http: TestClient) -> None:
    """The RIS reports under ``F<n>^RIS``; an application of the institution whose MSH-3 is ``^<OID>^ISO`` sends
    XX (chest CT) under it: held, W 204 whose text names the sender by its OID and the RIS by the history."""
    placer = "OF39-OID"
    send(http, _ordered(placer))
    assert "MSA|AA" in send(http, _ris(oru(placer, item=HEAD)))
    _held(http, placer, send(http, _from(f"^{OID}^ISO", _changed(placer, CHEST))), f"application {OID}",
          f"history names RIS of {B}")


def test_a_new_order_does_not_take_another_orders_filler_number(http: TestClient) -> None:
    """HISAPP places head CT; the RIS reports under ``F<n>^RIS``. The EMR's XO under ``<n>^OTHER`` (no order holds
    it) naming the RIS's filler number: AA, W 204 at OBR-4 naming the order that holds the number and the RIS; the
    EMR's order is made (its own placer number) without the RIS's number, so the RIS's number finds one order,
    head CT. HISAPP's own XO under both numbers still recodes its order (the number is on that very order)."""
    placer = "OF39-XONEW"
    assert "MSA|AA" in send(http, _placed_by("HISAPP", placer))
    assert "MSA|AA" in send(http, _ris(oru(placer, item=HEAD)))
    ours = the_order(http, placer)
    ack = send(http, _xo("EMR", placer, CHEST).replace(f"|{placer}^HIS|", f"|{placer}^OTHER|"))
    assert "MSA|AA" in ack, ack
    (warned,) = [e for e in _errs(ack) if e[2] == "OBR^1^4" and e[4] == "W"]
    assert warned[3].split("^")[0] == "204", warned
    assert f"ServiceRequest/{ours['id']} holds FILL F{placer}" in warned[8] and f"names RIS of {B}" in warned[8]
    found = http.get("/fhir/ServiceRequest", params={"identifier": f"urn:huren:id:RIS|F{placer}"}).json()
    assert [e["resource"]["id"] for e in found.get("entry") or ()] == [ours["id"]], found
    theirs = http.get("/fhir/ServiceRequest", params={"identifier": f"urn:huren:id:OTHER|{placer}"}).json()
    (made,) = [e["resource"] for e in theirs.get("entry") or ()]
    assert "3001" in _codes(made) and _fillers(made) == [], made
    _taken(http, placer, send(http, _xo("HISAPP", placer, CHEST)))
    assert _fillers(the_order(http, placer)) == [f"urn:huren:id:RIS|F{placer}"]


def test_same_hd_of_two_msh3s_asks_hd1_where_both_carry_one() -> None:
    """HL7 v2.5.1 2.A.33: HD-2 is the application's universal id. Two MSH-3s (table 0361) with one OID and two
    HD-1s are two applications; an EI's authority (table 0363) against MSH-3 is not one table: the OID decides;
    one side without HD-1 is decided by the OID."""
    ris, emr = ("RIS", OID, "ISO"), ("EMR", OID, "ISO")
    assert not same_hd(ris, emr, one_table=True) and same_hd(ris, emr)
    assert same_hd(ris, ("ris", OID, "ISO"), one_table=True) and same_hd(ris, ("", OID, "ISO"), one_table=True)
    assert same_hd(("LAB", OID, "ISO"), ris)


def test_placed_numbers_are_the_placers_statements_of_an_order_message() -> None:
    """``placed_numbers``: ORC-1 NW/XO/RO/RP under ORC-2 (or OBR-2 when ORC-2 is empty) of an order message; the
    filler's XX, its replacement (RU) and any result message place nothing."""
    assert placed_numbers("ORM", _placed_by("HISAPP", "P1").replace("\n", "\r")) == {"P1"}
    assert placed_numbers("ORM", _xo("EMR", "P2", CHEST).replace("\n", "\r")) == {"P2"}
    assert placed_numbers("ORM", _changed("P3", CHEST).replace("\n", "\r")) == frozenset()
    assert placed_numbers("ORU", oru("P4").replace("\n", "\r")) == frozenset()
    assert placed_numbers("ORM", _xo("LIS", "P6", CHEST).replace("ORC|XO|", "ORC|RU|").replace("\n", "\r")) == set()
    bare = _xo("EMR", "P5", CHEST).replace("ORC|XO|P5^HIS|", "ORC|XO||").replace("\n", "\r")
    assert placed_numbers("ORM", bare) == {"P5"}


def test_a_held_xx_naming_the_reports_version_does_not_hold_the_fillers_own(http: TestClient) -> None:
    """Guard (the filler's side of "the first message of a version is its storer"): the RIS reports (the version
    that stores its number); the ESB's XX under it is held; the RIS's own XX then: taken. (Here the held message
    writes a version of its own; where it names the storer's version again -- the placer's side, the first test
    -- counting all of a version's messages held the placer's own change.)"""
    placer = "OF39-HELDNAMES"
    send(http, _ordered(placer))
    assert "MSA|AA" in send(http, _ris(oru(placer, item=HEAD)))
    _held(http, placer, send(http, _from("ESB", _changed(placer, CHEST))), "application ESB")
    _taken(http, placer, send(http, _changed(placer, CHEST)))
