"""perfi36: the owner's check (``persons._owners_word``) reads only the batch's messages of another member
institution -- its own institution's earlier messages are skipped before their resources are read (they
never counted; reading them cost ~470 lookups a message in a batch of 50). Nothing answered changes: in a
batch where the owner's own registrations come before, between and after the member's, the owner's
registration of another person under its number is still warned once (W at PID-3), counted once for the
member, and the member's row names the record the batch's member message wrote.

Real HL7 over ``POST /hl7v2`` (one FHS/BHS batch) into the real store on each backend."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.hl7_calls import post
from tests.identity39_calls import engine_and_client
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_idfix34_owner import _as, _count, _one, _rows
from tests.test_rvidentity32_probes import MRN, adt

both = engine_and_client("perfi36")


def test_the_owners_own_messages_around_the_members_leave_its_count_as_it_was(both: tuple[Engine, TestClient]) -> None:
    engine, http = both
    before = _count(engine, http)
    body = ("FHS|^~\\&|HIS|FNXRMYY\rBHS|^~\\&|HIS|FNXRMYY\r"
            + adt("PF0", "PF0^^^FNXRMYY^MR", "赵^一", "19700101", "M")
            + _as("FNZYY", adt("PF1", "PF1^^^FNXRMYY^MR", "王^八", "19930101", "F"))
            + adt("PF2", "PF2^^^FNXRMYY^MR", "赵^二", "19710101", "F")
            + adt("PF3", "PF1^^^FNXRMYY^MR", "郑^八", "19630101", "M")
            + "BTS|4\rFTS|1\r")
    ack = post(http, body)
    for control in (b"PF0", b"PF1", b"PF2", b"PF3"):
        assert b"MSA|AA|" + control in ack, ack
    head, owners = ack.split(b"MSA|AA|PF3", 1)
    assert b"|W|" not in head, ack  # neither the owner's own registrations nor the member's are warned
    warnings = [line for line in owners.split(b"\r") if line.startswith(b"ERR|") and b"|W|" in line]
    assert len(warnings) == 1 and b"|PID^1^3|" in warnings[0], ack
    assert _count(engine, http) == before + 1
    members = _one(http, "urn:huren:mrn:FNZYY:FNXRMYY|PF1", "female")  # re-keyed by the owner's (ownfix34)
    (row,) = [r for r in _rows(engine, http) if f"Patient/{members['id']}" in (r.get("records") or ())]
    owners_own = {f"Patient/{_one(http, f'{MRN}|PF0', 'male')['id']}", f"Patient/{_one(http, f'{MRN}|PF2', 'female')['id']}"}
    assert not any(owners_own & set(r.get("records") or ()) for r in _rows(engine, http)), row
