"""An unlink (ADT^A37) or a merge back takes away the merge links it undoes (conv13).

A37 states the two records it names are distinct and both in use (v2.5.1 3.3.37), and the
converter wrote them ``active: true`` -- beside the ``replaced-by`` link an earlier A40 left, which
R4 reads as "this record must no longer be used". A merge the other way round (the registrar merged
the wrong way and merges back) left each record both replacing and replaced by the other. Now each
takes away the links between the two records it undoes (both records, both directions) and keeps
every other link; the patient index forgets them too, so a later message does not state them again,
and the resident's compartment of one record no longer spans the other.

Real bytes over MLLP into the real store, read back through ``/fhir``; each failed on 0f3d33c.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)

HEAD = "MSH|^~\\&|HIS|FNXRMYY|HUREN|FUNING|20261201090000||ADT^{event}^{structure}|{control}|P|2.5.1\r" \
       "EVN|{event}|20261201090000\r"
STRUCTURE = {"A40": "ADT_A39", "A37": "ADT_A37"}


def pid(mrn: str, n: int = 1) -> str:
    return f"PID|{n}||{mrn}^^^FNXRMYY^MR||孙^十三^^^^^L||19750301|M\r"


def adt(control: str, event: str, body: str) -> bytes:
    return (HEAD.format(event=event, structure=STRUCTURE.get(event, "ADT_A01"), control=control) + body).encode()


def patients(engine: Engine, fhir: TestClient, control: str) -> dict[str, dict[str, Any]]:  # noqa: F811
    """The Patients a message wrote, by MRN, as stored now."""
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
    assert doc is not None
    out = {}
    for ref in doc["resources"]:
        if ref.startswith("Patient/"):
            res = fhir.get(f"/fhir/{ref}").json()
            out[res["identifier"][0]["value"]] = res
    return out


def links(patient: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((x["type"], x["other"]["reference"]) for x in patient.get("link", ()))


def test_an_unlink_takes_away_the_merge_between_the_two_and_keeps_the_others(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, adt("L1", "A01", pid("UL1") + "PV1|1|O\r"), adt("L2", "A01", pid("UL3") + "PV1|1|O\r"),
                adt("L3", "A40", pid("UL2") + "MRG|UL1^^^FNXRMYY^MR\r"),  # UL1 merged into UL2
                adt("L4", "A40", pid("UL2") + "MRG|UL3^^^FNXRMYY^MR\r"))  # and UL3
    ids = {mrn: p["id"] for c in ("L1", "L2", "L3") for mrn, p in patients(engine, fhir, c).items()}
    assert links(patients(engine, fhir, "L1")["UL1"]) == [("replaced-by", f"Patient/{ids['UL2']}")]
    assert ids["UL1"] in engine.identity.person_compartment(ids["UL2"])
    # the registrar unlinks UL1 and UL2: two persons, both records in use
    acks += send(engine, adt("L5", "A37", pid("UL1") + pid("UL2", 2)))
    after = patients(engine, fhir, "L5")
    assert after["UL1"]["active"] is True and links(after["UL1"]) == []
    assert after["UL2"]["active"] is True and links(after["UL2"]) == [("replaces", f"Patient/{ids['UL3']}")]
    assert links(patients(engine, fhir, "L2")["UL3"]) == [("replaced-by", f"Patient/{ids['UL2']}")]
    # a later message about either does not bring the links back (the patient index forgot them)
    acks += send(engine, adt("L6", "A08", pid("UL1") + "PV1|1|O\r"), adt("L7", "A08", pid("UL2") + "PV1|1|O\r"))
    assert links(patients(engine, fhir, "L6")["UL1"]) == []
    assert links(patients(engine, fhir, "L7")["UL2"]) == [("replaces", f"Patient/{ids['UL3']}")]
    assert ids["UL1"] not in engine.identity.person_compartment(ids["UL2"])
    assert ids["UL2"] not in engine.identity.person_compartment(ids["UL1"])
    assert [ack_code_of(a) for a in acks] == ["AA"] * 7


def test_a_merge_back_undoes_the_merge_the_other_way_round(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, adt("B1", "A01", pid("MB1") + "PV1|1|O\r"),
                adt("B2", "A40", pid("MB2") + "MRG|MB1^^^FNXRMYY^MR\r"),  # MB1 merged into MB2
                adt("B3", "A40", pid("MB1") + "MRG|MB2^^^FNXRMYY^MR\r"),  # the wrong way: MB2 into MB1
                adt("B4", "A08", pid("MB1") + "PV1|1|O\r"), adt("B5", "A08", pid("MB2") + "PV1|1|O\r"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 5
    one, two = patients(engine, fhir, "B4")["MB1"], patients(engine, fhir, "B5")["MB2"]
    assert one["active"] is True and links(one) == [("replaces", f"Patient/{two['id']}")]
    assert two["active"] is False and links(two) == [("replaced-by", f"Patient/{one['id']}")]
