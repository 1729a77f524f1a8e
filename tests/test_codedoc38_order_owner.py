"""codedoc38: an order message recodes an order only from the application that placed it or fills it.

``merge.yaml``'s ServiceRequest ``code`` rule (``states: [order]``) took the test of any order message. So a
third application's ORM under the RIS's numbers (the LIS's ORC-1 XX naming chest CT over the RIS's head CT)
recoded the RIS's order; codefix37 only kept the report from following it. The order is its placer's
(ORC-2) and, under its filler number, its filler's (ORC-3). An order message from neither states its test
only as an assumption (it fills an order not stored yet) and the ACK warns at OBR-4: AA, the rest stored,
the message kept as sent.

Real HL7 v2 over ``POST /hl7v2`` into the real store on each backend (``tests.module_store``), read back over
``/fhir``. Each test uses order numbers of its own.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.messages import raw_of
from tests.module_store import module_eng
from tests.test_code37_ris_change import CHEST, HEAD, _changed, _ordered, _ris
from tests.test_codefix36_order_code import _errs, _reports
from tests.test_probepay26_windows import msh, pid
from tests.test_srfix35_order_code import ORDERED, RESULTED, B, history, http, oru, send, the_order

__all__ = ["http", "module_eng"]


def _codes(resource: dict) -> set[str]:
    return {c["code"] for c in resource["code"].get("coding") or ()}


def _warned_at_obr4(ack: str) -> list[str]:
    """The W ERRs at OBR-4 (ERR-2 ``OBR^1^4``) as their texts."""
    return ["|".join(e) for e in _errs(ack) if e[2] == "OBR^1^4" and e[4] == "W"]


def _from(app: str, message: str) -> str:
    return message.replace("|RIS|FNZYY|", f"|{app}|FNZYY|", 1)


def test_another_applications_xx_does_not_recode_the_order(module_eng: Engine, http: TestClient) -> None:
    """The HIS orders head CT, the RIS reports it under its filler number; the LIS (neither placer nor filler)
    sends ORC-1 XX under the HIS's and the RIS's numbers naming chest CT: AA with a W at OBR-4 naming the
    numbers' owners, the order still head CT (no version with chest CT), the message kept as sent. The RIS's
    own XX then recodes it, and its C naming chest CT follows (codefix37)."""
    placer = "D38O-XX"
    send(http, _ordered(placer))
    assert "MSA|AA" in send(http, _ris(oru(placer, item=HEAD)))
    ack = send(http, _from("LIS", _changed(placer, CHEST)))
    assert "MSA|AA" in ack, ack
    (warned,) = _warned_at_obr4(ack)
    assert "ORC-1 XX" in warned and "application LIS" in warned and "OBR-3 names RIS" in warned, warned
    order = the_order(http, placer)
    assert "3002" in _codes(order) and "3001" not in _codes(order), order["code"]
    assert all("3001" not in _codes(v) for v in history(http, order))
    raws = [raw_of(d).decode() for d in module_eng.ingestor.messages.messages.find({})]
    assert any("ORC|XX|D38O-XX^HIS|FD38O-XX^RIS||IP" in r and "|LIS|FNZYY|" in r for r in raws), "kept as sent"
    # the filler's own change is taken, and its corrected report follows it
    ack = send(http, _changed(placer, CHEST))
    assert "MSA|AA" in ack and not _warned_at_obr4(ack), ack
    assert "3001" in _codes(the_order(http, placer))
    assert "MSA|AA" in send(http, _ris(oru(placer, item=CHEST, status="C")))
    (report,) = _reports(http, the_order(http, placer))
    assert "3001" in _codes(report), report["code"]


def test_the_placers_change_recodes_the_order(http: TestClient) -> None:
    """Guard: the placer's XO changing head CT to chest CT after the RIS's report recodes the order, with no W at
    OBR-4 -- though its MSH-3 (HISAPP) is not the placer number's namespace (HIS): a placer's EI-2 is often its
    assigning authority, not its application (the NIST and nHapi OML samples), so a placer's statement is not
    judged by it. (Since ord39 the order's history is: HISAPP placed it -- its NW stored the placer number; an XO
    from an application that did not is held, ``tests/test_ord39_order_history.py``.)"""
    placer = "D38O-XO"
    assert "|HIS|FNZYY|" in _ordered(placer)
    send(http, _ordered(placer).replace("|HIS|FNZYY|", "|HISAPP|FNZYY|", 1))
    assert "MSA|AA" in send(http, _ris(oru(placer, item=HEAD)))
    xo = (msh(B, "HISAPP", "ORM^O01^ORM_O01", RESULTED) + pid(B)
          + f"ORC|XO|{placer}^HIS|F{placer}^RIS||IP\n" + f"OBR|1|{placer}^HIS|F{placer}^RIS|{CHEST}|||{ORDERED}\n")
    ack = send(http, xo)
    assert "MSA|AA" in ack and not _warned_at_obr4(ack), ack
    codes = _codes(the_order(http, placer))
    assert "3001" in codes and "3002" not in codes, codes


def test_another_applications_order_not_stored_yet_is_coded(http: TestClient) -> None:
    """An order message from an application the numbers do not name, for an order not stored yet: its test fills
    the new order (nothing stored to keep), warned."""
    placer = "D38O-NEW"
    ack = send(http, _from("LIS", _changed(placer, CHEST)))
    assert "MSA|AA" in ack and _warned_at_obr4(ack), ack
    codes = _codes(the_order(http, placer))
    assert "3001" in codes and "3002" not in codes, codes


def test_numbers_without_a_namespace_are_the_senders_own(http: TestClient) -> None:
    """Guard: order numbers sent with no EI-2 name no application: the sender's own numbering, as before -- its
    XX recodes the order, no W."""
    placer = "D38O-BARE"
    bare = (msh(B, "RIS", "ORM^O01^ORM_O01", ORDERED) + pid(B)
            + f"ORC|NW|{placer}|F{placer}||IP\n" + f"OBR|1|{placer}|F{placer}|{HEAD}|||{ORDERED}\n")
    assert "MSA|AA" in send(http, bare)
    ack = send(http, _from("LIS", bare.replace("ORC|NW|", "ORC|XX|").replace(HEAD, CHEST)))
    assert "MSA|AA" in ack and not _warned_at_obr4(ack), ack
    found = http.get("/fhir/ServiceRequest", params={"identifier": f"urn:huren:order:{B}|{placer}"}).json()
    (order,) = [e["resource"] for e in found.get("entry") or ()]
    assert "3001" in _codes(order) and "3002" not in _codes(order), order["code"]


def test_the_placers_cancel_is_not_judged_as_a_fillers_statement(http: TestClient) -> None:
    """Guard: ORC-1 CA (the placer's request, table 0119) from an MSH-3 its numbers do not name is no filler's
    statement: no W at OBR-4, the order cancelled as before."""
    placer = "D38O-CA"
    send(http, _ordered(placer))
    assert "MSA|AA" in send(http, _ris(oru(placer, item=HEAD, status="P")))
    ca = (msh(B, "HISAPP", "ORM^O01^ORM_O01", RESULTED) + pid(B)
          + f"ORC|CA|{placer}^HIS|F{placer}^RIS||CA\n" + f"OBR|1|{placer}^HIS|F{placer}^RIS|{HEAD}|||{ORDERED}\n")
    ack = send(http, ca)
    assert "MSA|AA" in ack and not _warned_at_obr4(ack), ack
    assert "3002" in _codes(the_order(http, placer))
