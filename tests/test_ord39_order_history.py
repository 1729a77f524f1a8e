"""ord39: whose order number it is, decided by the order's history (``merge_rules.Owned``, ``MergeRules._numbered``).

An order message's test recodes a stored order only from the application that fills it (ORC-1 XX under its
filler number) or places it (ORC-1 XO). A filler number whose namespace names the sender is the sender's, as
before (codedoc38, cdfix38, rv38i); any other is the sender's when the order's history says so: the
application (MSH-3 by ``same_hd``, at the institution) whose message first stored that FILL identifier on the
order -- a relay (``ESB``) passing on its lab's report and then its change, a lab numbering under another
authority (rv38f). The placer is the application whose order message first stored the PLAC identifier: a third
application's XO is held (AA, W at OBR-4, ERR-3 204), the placer's own XO taken. A held message's claim to a
number is not stored, so sending it twice does not make it the number's owner.

Real HL7 v2 over ``POST /hl7v2`` into the real store on each backend (``tests.module_store``), read back over
``/fhir``. Each test uses order numbers of its own.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.module_store import module_eng
from tests.test_cdfix38_fixes import OID
from tests.test_code37_ris_change import CHEST, HEAD, _changed, _ordered, _ris
from tests.test_codedoc38_order_owner import _codes, _warned_at_obr4
from tests.test_codefix36_order_code import _errs
from tests.test_probepay26_windows import msh, pid
from tests.test_rv38i_probes import OTHER_OID
from tests.test_srfix35_order_code import ORDERED, RESULTED, B, history, http, oru, send, the_order

__all__ = ["http", "module_eng"]


def _from(app: str, message: str, was: str = "RIS") -> str:
    """``message`` as sent by MSH-3 ``app`` (it was ``was``'s)."""
    assert f"|{was}|{B}|" in message
    return message.replace(f"|{was}|{B}|", f"|{app}|{B}|", 1)


def _held(http: TestClient, placer: str, ack: str, *words: str) -> str:
    """AA with one W at OBR-4 whose ERR-3 is 204 and whose text has ``words``; the order still head CT, and no
    version of it ever chest CT. Returns the warning's text."""
    assert "MSA|AA" in ack, ack
    (warned,) = [e for e in _errs(ack) if e[2] == "OBR^1^4" and e[4] == "W"]
    assert warned[3].split("^")[0] == "204", warned
    assert all(w in warned[8] for w in words), warned
    order = the_order(http, placer)
    assert "3002" in _codes(order) and "3001" not in _codes(order), order["code"]
    assert all("3001" not in _codes(v) for v in history(http, order))
    return warned[8]


def _taken(http: TestClient, placer: str, ack: str) -> None:
    assert "MSA|AA" in ack and not _warned_at_obr4(ack), ack
    codes = _codes(the_order(http, placer))
    assert "3001" in codes and "3002" not in codes, codes


def _fillers(order: dict[str, Any]) -> list[str]:
    return [f"{i.get('system')}|{i.get('value')}" for i in order.get("identifier") or ()
            if any(c.get("code") == "FILL" for c in (i.get("type") or {}).get("coding") or ())]


# --- the filler: who stored the FILL identifier ----------------------------------------------------------------


def test_a_relay_passing_on_its_labs_change_recodes_the_order(http: TestClient) -> None:
    """The HIS orders head CT; the integration platform (MSH-3 ``ESB``) passes on the RIS's report under the RIS's
    filler number (``F...^RIS``), then the RIS's XX to chest CT under the same numbers: the platform stored that
    number, so the change is its own -- AA without a W, the order chest CT. (Held before: EI-2 ``RIS`` is not
    ``ESB``.)"""
    placer = "O39-ESB"
    send(http, _ordered(placer))
    assert "MSA|AA" in send(http, _from("ESB", _ris(oru(placer, item=HEAD))))
    _taken(http, placer, send(http, _from("ESB", _changed(placer, CHEST))))


def test_the_relay_is_not_the_filler_of_a_number_another_stored(http: TestClient) -> None:
    """The RIS itself reports under its number; the platform's XX under it is another application's: held, and the
    warning names the application the history names."""
    placer = "O39-ESB2"
    send(http, _ordered(placer))
    assert "MSA|AA" in send(http, _ris(oru(placer, item=HEAD)))
    _held(http, placer, send(http, _from("ESB", _changed(placer, CHEST))), "application ESB",
          f"history names RIS of {B}")


def test_another_hospitals_ris_under_our_ris_number_is_held(http: TestClient) -> None:
    """Our RIS (``RIS^<OID>^ISO``) reports under ``F...^RIS^<OID>^ISO``; another hospital's RIS (``RIS^<another
    OID>^ISO``, the same MSH-3.1 and institution -- one ``Stamp.sender``) sends XX under it: the history's
    application is compared whole (``same_hd``: the universal ids differ) -- held (rv38i HIGH stays closed)."""
    placer = "O39-OID"
    number = f"F{placer}^RIS^{OID}^ISO"
    send(http, _ordered(placer))
    report = _from(f"RIS^{OID}^ISO", _ris(oru(placer, item=HEAD))).replace(f"F{placer}^RIS|", f"{number}|")
    assert "MSA|AA" in send(http, report)
    change = _from(f"RIS^{OTHER_OID}^ISO", _changed(placer, CHEST)).replace(f"F{placer}^RIS|", f"{number}|")
    _held(http, placer, send(http, change), "history names RIS")
    # (our RIS's own XX under it: taken)
    _taken(http, placer, send(http, _from(f"RIS^{OID}^ISO", _changed(placer, CHEST)).replace(
        f"F{placer}^RIS|", f"{number}|")))


def test_a_held_claim_to_a_number_does_not_make_its_sender_the_owner(http: TestClient) -> None:
    """The HIS orders head CT; the LIS sends XX under the RIS's filler number before the RIS has said a word: held
    (no message stored the number), and the number it claimed is not stored on the order. Its second XX is held
    alike -- had its first stored the number, the history would name it the filler. The RIS's report then stores
    it, and the RIS's own XX recodes the order."""
    placer = "O39-CLAIM"
    send(http, _ordered(placer))
    for _ in range(2):
        _held(http, placer, send(http, _from("LIS", _changed(placer, CHEST))), "application LIS",
              f"no message stored FILL F{placer}")
        assert _fillers(the_order(http, placer)) == [], the_order(http, placer)["identifier"]
    assert "MSA|AA" in send(http, _ris(oru(placer, item=HEAD)))
    assert _fillers(the_order(http, placer)) == [f"urn:huren:id:RIS|F{placer}"]
    _taken(http, placer, send(http, _changed(placer, CHEST)))


def test_a_held_first_statement_fills_a_new_order_without_its_claimed_number(http: TestClient) -> None:
    """The LIS's XX under the RIS's numbers for an order not stored yet: its test fills the new order (nothing
    stored to keep), warned at OBR-4 (204), the order found by its placer number but not under the filler number
    the LIS claimed; a second XX of the LIS's is held (it never stored the number)."""
    placer = "O39-NEW"
    ack = send(http, _from("LIS", _changed(placer, CHEST)))
    assert "MSA|AA" in ack and len(_warned_at_obr4(ack)) == 1, ack
    order = the_order(http, placer)
    assert "3001" in _codes(order) and _fillers(order) == [], order
    ack = send(http, _from("LIS", _changed(placer, HEAD)))
    assert "MSA|AA" in ack and len(_warned_at_obr4(ack)) == 1, ack
    assert "3001" in _codes(the_order(http, placer))


# --- the placer: whose order message stored the PLAC identifier --------------------------------------------------


def _placed_by(app: str, placer: str) -> str:
    """The order (head CT) under the placer number ``<placer>^HIS``, sent by MSH-3 ``app`` -- an assigning
    authority that is not the application, as the NIST and nHapi samples send it."""
    return _from(app, _ordered(placer), was="HIS")


def _xo(app: str, placer: str, item: str) -> str:
    return (msh(B, app, "ORM^O01^ORM_O01", RESULTED) + pid(B)
            + f"ORC|XO|{placer}^HIS|F{placer}^RIS||IP\n" + f"OBR|1|{placer}^HIS|F{placer}^RIS|{item}|||{ORDERED}\n")


def test_a_third_applications_xo_is_held_and_the_placers_own_is_taken(http: TestClient) -> None:
    """HISAPP places head CT under ``<n>^HIS``; the RIS reports it. The EMR's XO to chest CT under the same numbers:
    AA, W at OBR-4 (204) naming the EMR and the application that placed it, the order head CT (no version with
    chest CT). HISAPP's own XO then recodes it. (Before: any application's XO recoded the order.)"""
    placer = "O39-XO"
    assert "MSA|AA" in send(http, _placed_by("HISAPP", placer))
    assert "MSA|AA" in send(http, _ris(oru(placer, item=HEAD)))
    _held(http, placer, send(http, _xo("EMR", placer, CHEST)), "ORC-1 XO", "application EMR", "not this order's placer",
          f"history names HISAPP of {B}")
    _taken(http, placer, send(http, _xo("HISAPP", placer, CHEST)))


def test_a_result_before_the_order_does_not_make_the_lab_its_placer(http: TestClient) -> None:
    """The RIS's report arrives first (it stores the placer number too, as ORC-2 repeats it); HISAPP's order, then
    its XO: the placer is the first application whose ORDER message stored the number -- taken, no W."""
    placer = "O39-ORU1"
    assert "MSA|AA" in send(http, _ris(oru(placer, item=HEAD)))
    assert "MSA|AA" in send(http, _placed_by("HISAPP", placer))
    _taken(http, placer, send(http, _xo("HISAPP", placer, CHEST)))


def test_an_xo_under_a_placer_number_naming_its_sender_is_not_asked_of_the_history(http: TestClient) -> None:
    """Guard: the order placed by HISAPP under ``<n>^HIS``; the XO from MSH-3 ``HIS`` -- the number's own
    namespace names it: its own, taken as before (codedoc38: a message whose placer number names the sender is
    the placer's)."""
    placer = "O39-NS"
    assert "MSA|AA" in send(http, _placed_by("HISAPP", placer))
    _taken(http, placer, send(http, _xo("HIS", placer, CHEST)))


def test_in_one_batch_the_relays_report_makes_its_change_its_own(module_eng: Engine, http: TestClient) -> None:
    """One MLLP batch (``Ingestor.process``, the handler's call: one write group): the platform's report under the
    RIS's number, then its XX -- the number stored by the batch's earlier message (its Provenance not written yet:
    ``Dates.pending``) is the platform's: taken."""
    placer = "O39-BATCH"
    send(http, _ordered(placer))
    batch = [_from("ESB", _ris(oru(placer, item=HEAD))), _from("ESB", _changed(placer, CHEST))]
    outcomes = module_eng.ingestor.process([(m.replace("\n", "\r").encode(), "mllp", "p") for m in batch])
    assert [o.code for o in outcomes] == ["AA", "AA"], outcomes
    codes = _codes(the_order(http, placer))
    assert "3001" in codes and "3002" not in codes, codes


# --- left by ord39 (strict xfails then; both pass now: ofix39, ord40) ----------------------------------------


def test_a_held_xx_before_the_order_does_not_make_its_sender_the_placer(http: TestClient) -> None:
    """The LIS's XX under ``<n>^HIS``/``F<n>^RIS`` first (held, it fills the new order), then HISAPP's order (head
    CT), then HISAPP's XO to chest CT: the placer's own change -- taken, no W."""
    placer = "O39-XXFIRST"
    assert "MSA|AA" in send(http, _from("LIS", _changed(placer, CHEST)))
    assert "MSA|AA" in send(http, _placed_by("HISAPP", placer))
    _taken(http, placer, send(http, _xo("HISAPP", placer, CHEST)))


def test_a_held_claim_on_a_filler_number_alone_stays_held(http: TestClient) -> None:
    """The LIS's XX naming chest CT under ``F<n>^RIS`` alone, before anything (held: fills the new order); the RIS's
    own XX to head CT (taken); the LIS's XX to chest CT again: held -- the RIS's number is not the LIS's. (ord39's
    left, LOW: the held XX's write created the order holding the number, so the history named the LIS; a held
    claim is kept with its message and makes no storer since ord40, ``Stamp.claims``.)"""
    placer = "O39-FILLONLY"

    def alone(item: str) -> str:  # (a message of its own each time: a control id of its own)
        message = _changed(placer, item).replace(f"ORC|XX|{placer}^HIS|", "ORC|XX||")
        return message.replace(f"OBR|1|{placer}^HIS|", "OBR|1||")

    assert "MSA|AA" in send(http, _from("LIS", alone(CHEST)))
    assert "MSA|AA" in send(http, alone(HEAD))
    ack = send(http, _from("LIS", alone(CHEST)))
    assert "MSA|AA" in ack and _warned_at_obr4(ack), ack
