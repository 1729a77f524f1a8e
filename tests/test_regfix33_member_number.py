"""regfix33's decision on rvregapp33's note 11: another member's number claimed for another person.

FNZYY's HIS sends an A08 naming ``RVX^^^FNXRMYY^MR`` -- FNXRMYY's record number, CX-4 naming the member --
with another person's name, sex and birth date. Keys are local to each institution, so FNZYY's record is a
second Patient, and by identity32's design a member's number is stored under that member's own MRN system
(so that a search by the MRN finds every member's record of the patient: a referral keeps its number). The
second Patient then carries ``urn:huren:mrn:FNXRMYY|RVX`` under another person's details, and a FHIR
``identifier=`` search returns two people under one MRN.

Decided: refuse it (AE, ERR at PID-3, nothing filed), as a message whose own record number names a stored
record of another person is refused (``persons.check_persons``): the member's own record of that number,
when stored, is the person the number names; a message whose name, sex and birth date all contradict it
claims the number for someone else. Not "file it under FNZYY's key without FNXRMYY's system": that keeps a
wrong number on the record quietly (the referral's lookup then misses the right person too), and the
sender is never told. A member number whose record is not stored, or names the same person, is accepted as
today. Built by member33 (``common.member_record`` marks a member's number in ``Context.apart``;
``persons.check_persons`` reads the member's record in its one read): the strict xfail is green, its mark
removed."""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from tests.hl7_calls import module_engine, module_http, post  # noqa: F401 -- the module's engine and client
from tests.test_rvidentity32_probes import MRN, adt, patients


def _fnzyy(control: str, pid3: str, name: str, birth: str, sex: str, event: str = "A08") -> str:
    return adt(control, pid3, name, birth, sex, event=event).replace("|HIS|FNXRMYY|", "|HIS|FNZYY|", 1)


def test_another_members_number_claimed_for_another_person_is_refused(http: TestClient) -> None:
    assert ack_code_of(post(http, adt("MN1", "MNX^^^FNXRMYY^MR", "郑^一", "19600101", "M"))) == "AA"
    ack = post(http, _fnzyy("MN2", "MNX^^^FNXRMYY^MR", "王^二", "19900202", "F"))
    assert ack_code_of(ack) == "AE" and b"PID^1^3" in ack, ack
    assert [p["gender"] for p in patients(http, f"{MRN}|MNX")] == ["male"]


def test_another_members_number_for_the_same_person_is_accepted(http: TestClient) -> None:
    """The referral's case, kept: FNZYY records FNXRMYY's number for the same person -- accepted, and a
    search by FNXRMYY's MRN finds both institutions' records of that person."""
    assert ack_code_of(post(http, adt("MN3", "MNY^^^FNXRMYY^MR", "冯^三", "19610101", "M"))) == "AA"
    assert ack_code_of(post(http, _fnzyy("MN4", "MNY^^^FNXRMYY^MR", "冯^三", "19610101", "M", event="A04"))) == "AA"
    found = patients(http, f"{MRN}|MNY")
    assert len(found) == 2 and {p["gender"] for p in found} == {"male"}
