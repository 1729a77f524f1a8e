"""idfix35: a member's merge of its own stale record keyed by another member's number is its correction (the lead).

FNZYY admitted 冯三 under FNXRMYY's <n> alone (FNXRMYY then held no <n>): its record keyed by that number. FNXRMYY
then registers <n> as 陈四 -- the number is FNXRMYY's to give (identity34). FNZYY's record is stale, and every FNZYY
message naming it by <n> is refused (member33), its A08, its A45 (ident35) -- and its A40/A47 merging it into its own
record of 冯三 was refused too, because the hold compared the PID's person with FNXRMYY's record. Now the hold of a
merge's MRG-1 compares MRG-1's record as stored (as the A45's does): the sender's own stale record merged into the
same person is accepted with ERR W 205 at MRG-1; a merge that would join two different people (MRG-1's record the
member's person, or another person than the PID's) is still refused AE 205 at MRG-1, nothing written. Real HL7
through ``POST /hl7v2`` into the real store on each backend (SQLite, mongomock), read back over ``/fhir``."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from tests.hl7_calls import err_lines, post
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_mfix34_members import FNZYY_MRN, _fnzyy, both  # noqa: F401
from tests.test_rvidentity32_probes import MRN, adt, patients

Both = tuple[Engine, TestClient, dict[str, str]]
_STRUCTURE = {"A40": "ADT_A39", "A47": "ADT_A30"}


def _zy(control: str, event: str, pid3: str, name: str, birth: str, sex: str, mrg1: str) -> str:
    return (f"MSH|^~\\&|HIS|FNZYY|HUREN|FNYGT|20261201121500||ADT^{event}^{_STRUCTURE[event]}|{control}|P|2.5.1\r"
            f"EVN|{event}|20261201121500\rPID|1||{pid3}||{name}||{birth}|{sex}\rMRG|{mrg1}\r")


def _stale(http: TestClient, n: str) -> dict:
    """FNZYY's record of 冯三 keyed by FNXRMYY's <n> alone; FNXRMYY registers <n> as 陈四; FNZYY registers 冯三 under
    its own Z<n>. Returns FNZYY's stale record."""
    assert ack_code_of(post(http, _fnzyy(adt(f"{n}A", f"{n}^^^FNXRMYY^MR", "冯^三", "19610101", "M", "A01")))) == "AA"
    (stale,) = [p for p in patients(http, f"{n}") if p["managingOrganization"]["reference"].endswith(
        _org(http, "FNZYY"))]
    assert ack_code_of(post(http, adt(f"{n}B", f"{n}^^^FNXRMYY^MR", "陈^四", "19920303", "F"))) == "AA"
    assert ack_code_of(post(http, _fnzyy(adt(f"{n}C", f"Z{n}^^^FNZYY^MR", "冯^三", "19610101", "M")))) == "AA"
    return stale


def _org(http: TestClient, code: str) -> str:
    found = http.get("/fhir/Organization", params={"identifier": code}).json().get("entry", [])
    (org,) = [e["resource"]["id"] for e in found]
    return org


def _owners(http: TestClient, n: str) -> list[dict]:
    return [p for p in patients(http, f"{MRN}|{n}") if p.get("name", [{}])[0].get("family") == "陈"]


@pytest.mark.parametrize("event", ["A40", "A47"])
def test_the_members_merge_of_its_stale_record_into_its_own_is_filed_with_a_warning(both: Both, event: str) -> None:  # noqa: F811
    """FNZYY's A40/A47 merging its stale record (MRG-1 <n>^^^FNXRMYY) into its own Z<n> for 冯三: AA with one ERR,
    W 205 at MRG-1, naming nothing of FNXRMYY's person; the stale record inactive and replaced by Z<n>'s; FNXRMYY's
    record of 陈四 untouched; a search by FNXRMYY's MRN answers 陈四's record only."""
    _, http, _ = both
    n = f"IM{event[-1]}"
    stale = _stale(http, n)
    (owner,) = _owners(http, n)
    ack = post(http, _zy(f"{n}D", event, f"Z{n}^^^FNZYY^MR", "冯^三", "19610101", "M", f"{n}^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AA", ack
    (err,) = err_lines(ack)
    fields = err.split("|")
    assert fields[2] == "MRG^1^1" and fields[3].startswith("205") and fields[4] == "W", err
    for word in ("陈", "19920303", owner["id"]):
        assert word not in err, (word, err)
    (own,) = patients(http, f"{FNZYY_MRN}|Z{n}")
    merged = http.get(f"/fhir/Patient/{stale['id']}").json()
    assert {"other": {"reference": f"Patient/{own['id']}"}, "type": "replaced-by"} in merged.get("link", []), merged
    assert merged.get("active") is False, merged
    (after,) = _owners(http, n)
    assert after["meta"]["versionId"] == owner["meta"]["versionId"], after
    assert [p["id"] for p in patients(http, f"{MRN}|{n}")] == [owner["id"]]


def test_a_merge_naming_a_record_the_sender_never_filed_is_still_refused(both: Both) -> None:  # noqa: F811
    """FNZYY never filed a record under FNXRMYY's IN1 (nothing stale to correct): its A40 naming IN1 in MRG-1 for its
    冯三 says FNXRMYY's 陈四 is 冯三 -- AE 205 at MRG-1 as before, nothing written, the message kept. (A stale record
    and a PID that are both other people than each other and than the member's record cannot be told by the rule --
    name and sex must both differ -- so "two people joined" is this case and the next.)"""
    engine, http, _ = both
    assert ack_code_of(post(http, adt("IN1B", "IN1^^^FNXRMYY^MR", "陈^四", "19920303", "F"))) == "AA"
    assert ack_code_of(post(http, _fnzyy(adt("IN1C", "ZIN1^^^FNZYY^MR", "冯^三", "19610101", "M")))) == "AA"
    ack = post(http, _zy("IN1D", "A40", "ZIN1^^^FNZYY^MR", "冯^三", "19610101", "M", "IN1^^^FNXRMYY^MR"))
    _refused(engine, ack, "IN1D")
    (own,) = patients(http, f"{FNZYY_MRN}|ZIN1")
    assert not own.get("link"), own


def test_a_merge_of_a_record_of_the_members_person_into_another_is_still_refused(both: Both) -> None:  # noqa: F811
    """FNZYY's record keyed by FNXRMYY's IO1 is 陈四, as FNXRMYY's record is (not stale): its A40 merging it into its
    own record of 冯三 says FNXRMYY's 陈四 is 冯三 -- AE 205 at MRG-1, nothing written."""
    engine, http, _ = both
    assert ack_code_of(post(http, adt("IO1A", "IO1^^^FNXRMYY^MR", "陈^四", "19920303", "F"))) == "AA"
    assert ack_code_of(post(http, _fnzyy(adt("IO1B", "IO1^^^FNXRMYY^MR", "陈^四", "19920303", "F", "A01")))) == "AA"
    assert ack_code_of(post(http, _fnzyy(adt("IO1C", "ZIO1^^^FNZYY^MR", "冯^三", "19610101", "M")))) == "AA"
    ack = post(http, _zy("IO1D", "A40", "ZIO1^^^FNZYY^MR", "冯^三", "19610101", "M", "IO1^^^FNXRMYY^MR"))
    _refused(engine, ack, "IO1D")


def _refused(engine: Engine, ack: bytes, control: str) -> None:
    assert ack_code_of(ack) == "AE", ack
    (err,) = [e for e in err_lines(ack) if e.split("|")[4] == "E"]
    fields = err.split("|")
    assert fields[2] == "MRG^1^1" and fields[3].startswith("205"), err
    doc = engine.ingestor.messages.get(message_id("FNZYY", control))
    assert doc is not None and doc["status"] != "processed", doc


def test_a_stale_record_still_under_the_members_system_is_merged_with_the_number_kept_apart(both: Both) -> None:  # noqa: F811
    """A stale record still carrying <n> under FNXRMYY's MRN system (filed before the owner's re-key existed --
    here put back so over FHIR, as such a store holds it): the merge files it with the number, value and type as
    stored, under FNZYY's kept-apart system; FNXRMYY's MRN then answers 陈四's record only."""
    _, http, _ = both
    stale = _stale(http, "IP1")
    record = http.get(f"/fhir/Patient/{stale['id']}").json()
    record["identifier"] = [{**i, "system": MRN} if i.get("value") == "IP1" else i for i in record["identifier"]]
    assert http.put(f"/fhir/Patient/{stale['id']}", json=record).status_code == 200
    assert stale["id"] in [p["id"] for p in patients(http, f"{MRN}|IP1")]
    ack = post(http, _zy("IP1D", "A40", "ZIP1^^^FNZYY^MR", "冯^三", "19610101", "M", "IP1^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AA" and [e.split("|")[4] for e in err_lines(ack)] == ["W"], ack
    merged = http.get(f"/fhir/Patient/{stale['id']}").json()
    (kept,) = [i for i in merged["identifier"] if i.get("value") == "IP1"]
    (was,) = [i for i in record["identifier"] if i.get("value") == "IP1"]
    assert kept == {**was, "system": "urn:huren:mrn:FNZYY:FNXRMYY"}, merged["identifier"]
    assert [p["id"] for p in patients(http, f"{MRN}|IP1")] == [p["id"] for p in _owners(http, "IP1")]
