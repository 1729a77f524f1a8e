"""id40: identity leftovers of the thirty-ninth round -- what a merge (A40) carries onto the survivor and what an
unlink (A37) takes back, what a renumbering (A47) moves, a thin A08's ID number corrected or deleted, ``""`` for
another authority's number. Real HL7 over ``POST /hl7v2`` into a real store on each backend, read back over
``/fhir`` and through the patient index."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import post
from tests.identity39_calls import NNCHN_SYSTEM, engine_and_client, read_patient, registered, tokens
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_rvidentity32_probes import MRN, _nid, merge, patients

both = engine_and_client("id40")
CARRIED_FROM_EXT = "urn:huren:StructureDefinition:carried-from"  # engine.identity.nationalid.CARRIED_FROM_EXT


def unlink(control: str, first: str, second: str) -> str:
    """ADT^A37 naming two records (each PID-3 its MRN alone): they are distinct and both in use."""
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201131500||ADT^A37^ADT_A37|{control}|P|2.5.1\r"
            f"EVN|A37|20261201131500\rPID|1||{first}^^^FNXRMYY^MR||岳^丙||19620303|F\r"
            f"PID|2||{second}^^^FNXRMYY^MR||岳^丙||19620303|F\r")


def _carried_marks(patient: dict) -> list[dict]:
    return [e for i in patient.get("identifier", ()) for e in i.get("extension", ()) if e.get("url") == CARRIED_FROM_EXT]


def test_an_a37_takes_back_exactly_what_the_a40_carried(both: tuple[Engine, TestClient]) -> None:
    """R1 (MRN + ID number) merged into R2 (MRN alone) by an A40 stating R2's MRN alone: the number answers on R2,
    marked as carried from R1 (HL7 v2.5.1 3.3.40). The A37 undoing the merge takes it off R2 and gives it back to R1
    (3.3.37: two distinct records), unmarked -- R2 is as it was before the merge, and the index joins them no more."""
    engine, http = both
    nid = _nid("32092319620303012")
    one = registered(http, "I40A1", "IAA", "岳^丙", "19620303", "F", f"~{nid}^^^^NNCHN")
    two = registered(http, "I40A2", "IAB", "岳^丙", "19620303", "F")
    ack = post(http, merge("IAC", "I40A2^^^FNXRMYY^MR", "岳^丙", "19620303", "F", "I40A1^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AA", ack
    assert [p["id"] for p in patients(http, nid)] == [two["id"]]
    survivor = read_patient(http, two["id"])
    assert _carried_marks(survivor) == [{"url": CARRIED_FROM_EXT, "valueReference": {"reference": f"Patient/{one['id']}"}}]
    assert engine.identity.same_person(one["id"], two["id"])
    ack = post(http, unlink("IAD", "I40A2", "I40A1"))
    assert ack_code_of(ack) == "AA", ack
    assert [p["id"] for p in patients(http, nid)] == [one["id"]]
    assert tokens(read_patient(http, two["id"])) == {f"{MRN}|I40A2"}
    back = read_patient(http, one["id"])
    assert tokens(back) == {f"{MRN}|I40A1", f"{NNCHN_SYSTEM}|{nid}"}, back["identifier"]
    assert not _carried_marks(back) and not back.get("link"), back
    assert not engine.identity.same_person(one["id"], two["id"])


def test_an_a37_leaves_a_number_the_survivor_was_registered_with(both: tuple[Engine, TestClient]) -> None:
    """The same merge where R2 states the same ID number itself: nothing is carried (the kind is stated), and the
    A37 takes nothing off R2 -- only what the merge carried goes back."""
    engine, http = both
    nid = _nid("32092319620303022")
    one = registered(http, "I40B1", "IBA", "岳^丙", "19620303", "F", f"~{nid}^^^^NNCHN")
    two = registered(http, "I40B2", "IBB", "岳^丙", "19620303", "F", f"~{nid}^^^^NNCHN")
    ack = post(http, merge("IBC", f"I40B2^^^FNXRMYY^MR~{nid}^^^^NNCHN", "岳^丙", "19620303", "F", "I40B1^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AA", ack
    assert not _carried_marks(read_patient(http, two["id"]))
    ack = post(http, unlink("IBD", "I40B2", "I40B1"))
    assert ack_code_of(ack) == "AA", ack
    assert f"{NNCHN_SYSTEM}|{nid}" in tokens(read_patient(http, two["id"]))
    assert one["id"] != two["id"]


def test_a_fhir_client_cannot_write_the_carried_mark(both: tuple[Engine, TestClient]) -> None:
    """The carried-from mark names what an A37 takes off a record: huren's to set. A client's PUT marking R's own ID
    number as carried from another record is stored without the mark, and an A37 naming the two takes nothing."""
    engine, http = both
    nid = _nid("32092319620303032")
    mine = registered(http, "I40C1", "ICA", "岳^丙", "19620303", "F", f"~{nid}^^^^NNCHN")
    other = registered(http, "I40C2", "ICB", "岳^丙", "19620303", "F")
    now = read_patient(http, mine["id"])
    body = {k: v for k, v in now.items() if k not in ("meta", "text")}
    mark = {"url": CARRIED_FROM_EXT, "valueReference": {"reference": f"Patient/{other['id']}"}}
    body["identifier"] = [dict(i, extension=[mark]) if i.get("value") == nid else i for i in now["identifier"]]
    assert http.put(f"/fhir/Patient/{mine['id']}", json=body).status_code == 200
    assert not _carried_marks(read_patient(http, mine["id"]))
    assert ack_code_of(post(http, unlink("ICD", "I40C1", "I40C2"))) == "AA"
    assert [p["id"] for p in patients(http, nid)] == [mine["id"]]
