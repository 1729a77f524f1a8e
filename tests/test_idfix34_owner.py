"""The owner's registration over another member's contradicting reference: what the member's operator is
shown and when the owner's check runs (thirty-fourth round, idfix34; rvidentity34 findings 1, 2, 5, 6, 8
beyond its probes).

- The member's ``member_contradicted`` row lists the member's OWN records naming the number (every one
  of them, from the store and from the batch), never the owner's; the item says which count and owner
  it is (``count_as``, ``count_key``).
- The owner's check runs when the owner's record is stated anew -- a name, sex or birth date the stored
  version lacked or stated otherwise -- and not when the same person is stated again: counted once per
  change, not once per message.
- In one batch the owner's count leans on the member's message it read: written, it stands and names the
  batch's record.

Real HL7 over ``POST /hl7v2`` into the real store on each backend (SQLite, mongomock), read back over
``/fhir`` and ``/admin/fidelity``."""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import engine_and_client
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_identity34_members import _fidelity
from tests.test_rvidentity32_probes import MRN, adt, patients

both = engine_and_client("idfix34")


def _as(institution: str, message: str) -> str:
    return message.replace("|FNXRMYY|HUREN|", f"|{institution}|HUREN|", 1)


def _rows(engine: Engine, http: TestClient, owner: str = "FNXRMYY") -> list[dict]:
    """FNZYY's member_contradicted rows for ``owner``."""
    return [i for i in _fidelity(engine, http, "FNZYY")["items"]
            if i.get("count_as") == "member_contradicted" and i.get("count_key") == owner]


def _count(engine: Engine, http: TestClient) -> int:
    return int(_fidelity(engine, http, "FNZYY").get("member_contradicted", {}).get("FNXRMYY", 0))


def _warnings(ack: bytes) -> list[str]:
    assert ack_code_of(ack) == "AA", ack
    return [e for e in err_lines(ack) if e.split("|")[4:5] == ["W"]]


def _one(http: TestClient, token: str, gender: str) -> dict:
    (found,) = [p for p in patients(http, token) if p["gender"] == gender]
    return found


def test_the_members_row_lists_every_record_of_its_own_naming_the_number_and_none_of_the_owners(
        both: tuple[Engine, TestClient]) -> None:
    """FNZYY holds two records naming FNXRMYY's IA1: one keyed by the number alone, one under its own ZA1
    with the number beside. FNXRMYY registers another person under IA1: one W, and FNZYY's row lists both
    of FNZYY's records -- the owner's record is on no row FNZYY's operator reads, its person nowhere."""
    engine, http = both
    assert ack_code_of(post(http, _as("FNZYY", adt("IA1", "IA1^^^FNXRMYY^MR", "王^一", "19900101", "F")))) == "AA"
    assert ack_code_of(post(http, _as("FNZYY", adt("IA2", "ZA1^^^FNZYY^MR~IA1^^^FNXRMYY^MR", "王^一", "19900101",
                                                   "F")))) == "AA"
    beside = _one(http, "urn:huren:mrn:FNZYY|ZA1", "female")
    (keyed_apart,) = [p for p in patients(http, f"{MRN}|IA1") if p["id"] != beside["id"]]
    assert len(_warnings(post(http, adt("IA3", "IA1^^^FNXRMYY^MR", "郑^一", "19600101", "M")))) == 1
    owners = _one(http, f"{MRN}|IA1", "male")
    (row,) = [r for r in _rows(engine, http) if f"Patient/{keyed_apart['id']}" in (r.get("records") or ())]
    assert set(row["records"]) >= {f"Patient/{keyed_apart['id']}", f"Patient/{beside['id']}"}, row
    shown = str(_fidelity(engine, http, "FNZYY"))
    assert owners["id"] not in shown and "郑" not in shown, shown
    assert not _fidelity(engine, http, "FNXRMYY").get("member_contradicted"), "counted for the owner too"


def test_the_owners_name_change_newly_contradicting_a_reference_is_counted(both: tuple[Engine, TestClient]) -> None:
    """FNXRMYY's IB1 is 郑二 (M, 1960); FNZYY files 郑二 (F, 1990) under IB1 -- the same name: not another
    person, filed. FNXRMYY's A08 changes only the name (郑三): not a restatement as another person against
    its own record, but now FNZYY's reference names another person -- warned and counted once."""
    engine, http = both
    assert ack_code_of(post(http, adt("IB1", "IB1^^^FNXRMYY^MR", "郑^二", "19600101", "M"))) == "AA"
    assert ack_code_of(post(http, _as("FNZYY", adt("IB2", "IB1^^^FNXRMYY^MR", "郑^二", "19900101", "F")))) == "AA"
    before = _count(engine, http)
    warnings = _warnings(post(http, adt("IB3", "IB1^^^FNXRMYY^MR", "郑^三", "19600101", "M", "A08")))
    assert len(warnings) == 1 and "|PID^1^3|" in warnings[0], warnings
    assert _count(engine, http) == before + 1


def test_the_owner_stating_the_same_person_again_is_not_counted_again(both: tuple[Engine, TestClient]) -> None:
    """After the owner's registration was warned and counted, its next messages stating the same person
    (an A08 unchanged, a second visit's A04) are not: nothing new can contradict a reference, so the
    number is not searched again and the member's count moves once per change."""
    engine, http = both
    assert ack_code_of(post(http, _as("FNZYY", adt("IC1", "IC1^^^FNXRMYY^MR", "王^三", "19910101", "F")))) == "AA"
    assert len(_warnings(post(http, adt("IC2", "IC1^^^FNXRMYY^MR", "郑^四", "19610101", "M")))) == 1
    after = _count(engine, http)
    assert _warnings(post(http, adt("IC3", "IC1^^^FNXRMYY^MR", "郑^四", "19610101", "M", "A08"))) == []
    assert _warnings(post(http, adt("IC4", "IC1^^^FNXRMYY^MR", "郑^四", "19610101", "M"))) == []
    assert _count(engine, http) == after


def test_in_one_batch_the_members_message_written_the_owners_count_stands_and_names_its_record(
        both: tuple[Engine, TestClient]) -> None:
    """One batch: FNZYY's registration of 王四 under FNXRMYY's ID1 (filed), then FNXRMYY's of 郑五 under ID1:
    the owner's W stands and FNZYY's row names the record the batch's first message wrote."""
    engine, http = both
    before = _count(engine, http)
    body = ("FHS|^~\\&|HIS|FNXRMYY\rBHS|^~\\&|HIS|FNXRMYY\r"
            + _as("FNZYY", adt("ID1", "ID1^^^FNXRMYY^MR", "王^四", "19920101", "F"))
            + adt("ID2", "ID1^^^FNXRMYY^MR", "郑^五", "19620101", "M")
            + "BTS|2\rFTS|1\r")
    ack = post(http, body)
    assert b"MSA|AA|ID1" in ack and b"MSA|AA|ID2" in ack, ack
    assert b"|W|" in ack[ack.index(b"MSA|AA|ID2"):], ack
    assert _count(engine, http) == before + 1
    members = _one(http, "urn:huren:mrn:FNZYY:FNXRMYY|ID1", "female")  # re-keyed by the owner's (ownfix34)
    assert any(f"Patient/{members['id']}" in (r.get("records") or ()) for r in _rows(engine, http))


def test_two_owners_rows_each_list_their_own_references(both: tuple[Engine, TestClient]) -> None:
    """FNZYY's references to FNXRMYY's IE1 and FNYLWSY's IE2 are contradicted by each owner: two rows, each
    counted under its owner and listing FNZYY's record naming that owner's number only."""
    engine, http = both
    assert ack_code_of(post(http, _as("FNZYY", adt("IE1", "IE1^^^FNXRMYY^MR", "王^五", "19930101", "F")))) == "AA"
    assert ack_code_of(post(http, _as("FNZYY", adt("IE2", "IE2^^^FNYLWSY^MR", "王^六", "19940101", "F")))) == "AA"
    first = _one(http, f"{MRN}|IE1", "female")
    second = _one(http, "urn:huren:mrn:FNYLWSY|IE2", "female")
    assert len(_warnings(post(http, adt("IE3", "IE1^^^FNXRMYY^MR", "郑^六", "19630101", "M")))) == 1
    assert len(_warnings(post(http, _as("FNYLWSY", adt("IE4", "IE2^^^FNYLWSY^MR", "郑^七", "19640101", "M"))))) == 1
    mine = [r for r in _rows(engine, http, "FNXRMYY") if f"Patient/{first['id']}" in (r.get("records") or ())]
    theirs = [r for r in _rows(engine, http, "FNYLWSY") if f"Patient/{second['id']}" in (r.get("records") or ())]
    assert len(mine) == 1 and len(theirs) == 1, (mine, theirs)
    assert f"Patient/{second['id']}" not in mine[0]["records"] and f"Patient/{first['id']}" not in theirs[0]["records"]
    assert mine[0]["message"].startswith("本机构病历") and "also named" in mine[0]["message"]
