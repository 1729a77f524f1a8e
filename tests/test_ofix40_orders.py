"""ofix40: the mends of review rv40c's order findings (its probes, ``tests/test_rv40c_probes.py``, pass now), and
what those probes leave unasserted:

- HIGH 2: a filler number another order holds is judged among the sender's institution's orders only -- another
  member's order (same ``urn:huren:id:RIS|ACC-..``) neither strips this one's number nor is named in the ACK or
  in the message record; the institution's own order holding it still is;
- LOW 8: the warning says what happens -- the order is stored without that number (its test as judged);
- MED 1: the namespace shortcut asks HD-1 too where both HDs carry one (MSH-4's facility as MSH-3); the lab
  numbering under ``LAB^<OID>^ISO`` from ``LIS^<OID>^ISO`` is judged by the history, which names it;
- MED 5: ``placed_numbers`` reads the group's placer number as the order's PLAC is made (OBR-2, else ORC-2);
- MED 7: ORC-1 RU/RQ are the filler's statements: its own taken, a third application's RQ held.

Real HL7 v2 over ``POST /hl7v2`` into the real store on each backend (``tests.module_store``), read back over
``/fhir`` and the message store. Each test uses order numbers of its own."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from adapters.convert.results import placed_numbers
from engine.messages import message_id
from tests.module_store import module_eng
from tests.test_cdfix38_fixes import OID
from tests.test_code37_ris_change import CHEST, HEAD
from tests.test_codedoc38_order_owner import _codes
from tests.test_probepay26_windows import msh, pid
from tests.test_rv40c_probes import OTHER, _fillers, _held_at_obr4, _one, _order, _orders, _report
from tests.test_srfix35_order_code import ORDERED, B, http, send

__all__ = ["http", "module_eng"]


def _control(ack: str) -> str:
    return next(s for s in ack.replace("\n", "\r").split("\r") if s.startswith("MSA|")).split("|")[2]


def test_another_members_order_is_named_nowhere_and_the_members_own_order_still_holds(
        module_eng: Any, http: TestClient) -> None:
    """FNZYY's order holds ``ACC-<n>^RIS``; so does FNXRMYY's (its HISAPP's order, its RIS's report). FNXRMYY's
    EMR then places a new order under ``<n>E^EMR`` naming ``ACC-<n>^RIS``: held against FNXRMYY's own order --
    the W names that order and FNXRMYY's RIS -- and neither the ACK nor the stored message record names FNZYY,
    its order or its report's control id; FNZYY's order keeps its accession and its test."""
    placer, accession = "OF40-MEMBER", "ACC-OF40-MEMBER"
    assert "MSA|AA" in send(http, _order("HISAPP", placer, "HIS"))
    report = send(http, _report("RIS", placer, "HIS", f"{accession}^RIS"))
    fnzyy = _one(http, "urn:huren:id:HIS", placer)
    assert "MSA|AA" in send(http, _order("HISAPP", placer + "B", "HIS", inst=OTHER))
    assert "MSA|AA" in send(http, _report("RIS", placer + "B", "HIS", f"{accession}^RIS", inst=OTHER))
    fnxrmyy = _one(http, "urn:huren:id:HIS", placer + "B")
    ack = send(http, _order("EMR", placer + "E", "EMR", "NW", CHEST, f"{accession}^RIS", inst=OTHER))
    assert "MSA|AA" in ack, ack
    (held,) = _held_at_obr4(ack)
    assert f"ServiceRequest/{fnxrmyy['id']} holds FILL {accession}" in held[8] and f"RIS of {OTHER}" in held[8]
    record = module_eng.ingestor.messages.get(message_id(OTHER, _control(ack)))
    assert record is not None and record["errors"], record
    for text in (ack.split("\r", 1)[1], repr(record["errors"])):
        assert fnzyy["id"] not in text and B not in text and _control(report) not in text, text
    theirs = _one(http, "urn:huren:id:EMR", placer + "E")
    assert _fillers(theirs) == [] and "3001" in _codes(theirs), theirs
    fnzyy_now = _one(http, "urn:huren:id:HIS", placer)
    assert _fillers(fnzyy_now) == [f"urn:huren:id:RIS|{accession}"] and "3002" in _codes(fnzyy_now), fnzyy_now


def test_the_elsewhere_warning_says_the_order_is_stored_without_the_number(http: TestClient) -> None:
    """HISAPP places, the RIS reports under ``F<n>^RIS``; the EMR's NW of a new order under ``<n>E^EMR`` (its own
    namespace) naming it: the EMR's order is made -- chest CT, its own test -- without the RIS's number, and the
    W says so (not "kept only for an order not stored yet": its test was stored)."""
    placer = "OF40-WORDS"
    assert "MSA|AA" in send(http, _order("HISAPP", placer, "HIS"))
    assert "MSA|AA" in send(http, _report("RIS", placer, "HIS", f"F{placer}^RIS"))
    ack = send(http, _order("EMR", placer + "E", "EMR", "NW", CHEST, f"F{placer}^RIS"))
    (held,) = _held_at_obr4(ack)
    assert "this order is stored without that number" in held[8] and "not stored yet" not in held[8], held
    made = _one(http, "urn:huren:id:EMR", placer + "E")
    assert "3001" in _codes(made) and _fillers(made) == [], made


def test_an_esb_whose_facility_carries_the_hospital_oid_does_not_recode_the_ris_order(http: TestClient) -> None:
    """The RIS (``RIS^<OID>^ISO``) reports under ``F<n>^RIS^<OID>^ISO``; an ESB whose MSH-4 is ``FNZYY^<OID>^ISO``
    (the hospital's OID beside its name, as the site puts it in every HD) sends XX to chest CT under that number:
    the facility's OID alone does not make the RIS's number the ESB's -- held, the order head CT."""
    placer = "OF40-FACILITY"
    filler = f"F{placer}^RIS^{OID}^ISO"
    assert "MSA|AA" in send(http, _order("HIS", placer, "HIS"))
    assert "MSA|AA" in send(http, _report(f"RIS^{OID}^ISO", placer, "HIS", filler))
    ack = send(http, _order("ESB", placer, "HIS", "XX", CHEST, filler, msh4=f"{B}^{OID}^ISO"))
    assert "MSA|AA" in ack, ack
    codes = _codes(_one(http, "urn:huren:id:HIS", placer))
    assert "3002" in codes and "3001" not in codes, codes
    assert len(_held_at_obr4(ack)) == 1, ack


def test_a_lab_numbering_under_its_authority_keeps_its_own_change_by_the_history(http: TestClient) -> None:
    """Guard (MED 1's cost): the LIS ``LIS^<OID>^ISO`` reports under ``F<n>^LAB^<OID>^ISO`` (an authority named
    otherwise, the hospital's OID); its XX to chest CT is no longer passed by the OID, but the history names
    the LIS as the number's storer: taken, no W at OBR-4."""
    placer = "OF40-LAB"
    filler = f"F{placer}^LAB^{OID}^ISO"
    assert "MSA|AA" in send(http, _order("HIS", placer, "HIS"))
    assert "MSA|AA" in send(http, _report(f"LIS^{OID}^ISO", placer, "HIS", filler))
    ack = send(http, _order(f"LIS^{OID}^ISO", placer, "HIS", "XX", CHEST, filler))
    assert "MSA|AA" in ack and not _held_at_obr4(ack), ack
    assert "3001" in _codes(_one(http, "urn:huren:id:HIS", placer))


def test_the_fillers_own_ru_is_taken_and_a_third_apps_rq_held(http: TestClient) -> None:
    """The HIS orders head CT, the RIS reports under ``F<n>^RIS``. The LIS's RQ (replaced as requested) naming
    chest CT under the RIS's numbers: held, W 204 at OBR-4 naming ORC-1 RQ as the filler's statement; the RIS's
    own RU: taken (chest CT), no W."""
    placer = "OF40-RQ"
    assert "MSA|AA" in send(http, _order("HIS", placer, "HIS"))
    assert "MSA|AA" in send(http, _report("RIS", placer, "HIS", f"F{placer}^RIS"))
    ack = send(http, _order("LIS", placer, "HIS", "RQ", CHEST, f"F{placer}^RIS"))
    (held,) = _held_at_obr4(ack)
    assert "ORC-1 RQ is the filler's statement" in held[8] and "application LIS" in held[8], held
    codes = _codes(_one(http, "urn:huren:id:HIS", placer))
    assert "3002" in codes and "3001" not in codes, codes
    ack = send(http, _order("RIS", placer, "HIS", "RU", CHEST, f"F{placer}^RIS"))
    assert "MSA|AA" in ack and not _held_at_obr4(ack), ack
    assert "3001" in _codes(_one(http, "urn:huren:id:HIS", placer))


def test_the_placers_own_xo_is_taken_when_orc2_and_obr2_differ(http: TestClient) -> None:
    """Guard beside rv40c's MED 5 probe: HISAPP's NW with ORC-2 ``REQ-<n>^HIS`` and OBR-2 ``<n>^HIS``, the RIS's
    report, then HISAPP's own XO to chest CT with the same numbers: HISAPP placed ``<n>`` -- taken, no W."""
    placer = "OF40-ORC2"

    def message(app: str, control: str, item: str) -> str:
        return (msh(B, app, "ORM^O01^ORM_O01", ORDERED) + pid(B)
                + f"ORC|{control}|REQ-{placer}^HIS|||IP\n" + f"OBR|1|{placer}^HIS||{item}|||{ORDERED}\n")

    assert "MSA|AA" in send(http, message("HISAPP", "NW", HEAD))
    assert "MSA|AA" in send(http, _report("RIS", placer, "HIS", f"F{placer}^RIS"))
    ack = send(http, message("HISAPP", "XO", CHEST))
    assert "MSA|AA" in ack and not _held_at_obr4(ack), ack
    assert "3001" in _codes(_one(http, "urn:huren:id:HIS", placer))
    assert len(_orders(http, "urn:huren:id:HIS", placer)) == 1


def test_placed_numbers_are_read_as_the_orders_placer_identifier() -> None:
    """By value: OBR-2 when valued (the field the order's PLAC is made from), else ORC-2; each order group by its
    own ORC-1; the filler's RU/RQ place nothing."""
    def text(*groups: tuple[str, str, str]) -> str:
        body = "".join(f"ORC|{c}|{orc2}|||IP\rOBR|{n}|{obr2}||{HEAD}|||{ORDERED}\r"
                       for n, (c, orc2, obr2) in enumerate(groups, 1))
        return (msh(B, "HIS", "ORM^O01^ORM_O01", ORDERED) + pid(B)).replace("\n", "\r") + body

    assert placed_numbers("ORM", text(("NW", "REQ-1^HIS", "P1^HIS"))) == {"P1"}
    assert placed_numbers("ORM", text(("XO", "P2^HIS", ""))) == {"P2"}
    assert placed_numbers("ORM", text(("NW", "P3^HIS", "P3^HIS"), ("SC", "P4^HIS", "P4^HIS"),
                                      ("RP", "", "P5^HIS"), ("RQ", "P6^HIS", "P6^HIS"))) == {"P3", "P5"}
