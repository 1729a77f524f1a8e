"""putback36: the owner's put-back of a re-keyed number is positive agreement (rv36a MED 5, the lead's rule): the
owner's record as its message leaves it and the member's record agree on name AND birth date, the sex does not
contradict (known on both sides, as backfix35 has it), and an ID number, where both carry one, is the same
(``persons._same_person``). The owner's record as left is the merge's (``persons._as_stored``: the feed's own rule
for the name, its kinds by use and representation, called, and the ID numbers the message states), not the PID laid
over it whole (rv36a LOW). Real HL7 through ``POST /hl7v2`` into the real store on each backend (SQLite,
mongomock), read back over ``/fhir``; idfix35's set-ups."""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import post
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_idfix35_owner import _referred, _restated
from tests.test_mfix34_members import APART, FNZYY_MRN, _fnzyy, _tokens, both  # noqa: F401
from tests.test_rvidentity32_probes import MRN, _nid, adt, oru, patients

Both = tuple[Engine, TestClient, dict[str, str]]

# valid resident ID numbers (GB 11643) whose birth date and sex agree with the PIDs below
FENG = _nid("32092319610101001")  # 冯三, M, 1961-01-01
FENG_OTHER = _nid("32092319610101003")  # another man born the same day
CHEN = _nid("32092319920303002")  # 陈四, F, 1992-03-03


def _kept_apart(http: TestClient, n: str) -> bool:
    """Does FNZYY's record Z<n> carry FNXRMYY's <n> apart (under FNZYY's kept-apart system), not under FNXRMYY's MRN?"""
    (record,) = patients(http, f"{FNZYY_MRN}|Z{n}")
    tokens = _tokens(record)
    assert (f"{APART}|{n}" in tokens) != (f"{MRN}|{n}" in tokens), record["identifier"]
    return f"{APART}|{n}" in tokens


def _apart_then(http: TestClient, n: str, name: str, birth: str, sex: str) -> bool:
    """FNZYY's 冯三 M 1961 re-keyed apart by FNXRMYY's 陈四 F 1992; then FNXRMYY's A08 as given: still apart?"""
    _referred(http, n)
    _restated(http, f"{n}C", n, "陈^四", "19920303", "F")
    assert _kept_apart(http, n)
    _restated(http, f"{n}D", n, name, birth, sex)
    return _kept_apart(http, n)


def test_the_name_and_sex_in_common_another_birth_date_leaves_it_apart(both: Both) -> None:  # noqa: F811
    """The owner's A08 as 冯三 M 1970: the name and sex agree, the birth date is another's -- no positive agreement."""
    _, http, _ = both
    assert _apart_then(http, "PB1", "冯^三", "19700505", "M")


def test_the_birth_date_and_sex_in_common_another_name_leaves_it_apart(both: Both) -> None:  # noqa: F811
    """The owner's A08 as 陈四 M 1961-01-01: birth date and sex agree, the name is another's -- left apart."""
    _, http, _ = both
    assert _apart_then(http, "PB2", "陈^四", "19610101", "M")


def test_a_year_of_birth_agrees_at_its_precision(both: Both) -> None:  # noqa: F811
    """The owner's A08 as 冯三 M 1961 (PID-7 the year alone): name and sex agree, the birth date at its own
    precision (``same_day``, the persons' rule everywhere) -- the number goes back."""
    _, http, _ = both
    assert not _apart_then(http, "PB3", "冯^三", "1961", "M")


def _with_ids(http: TestClient, n: str, restated_id: str) -> bool:
    """FNXRMYY registers 冯三 M 1961 with his ID number; FNZYY files its Z<n> with <n> and the same ID number beside;
    FNXRMYY's A08 restates <n> as 陈四 F 1992 with hers (FNZYY's record keyed apart), then as 冯三 M 1961 with
    ``restated_id``: is FNZYY's record still apart?"""
    def pid3(number: str) -> str:
        return f"{n}^^^FNXRMYY^MR~{number}^^^^NNCHN"

    assert ack_code_of(post(http, adt(f"{n}A", pid3(FENG), "冯^三", "19610101", "M"))) == "AA"
    assert ack_code_of(post(http, _fnzyy(adt(f"{n}B", f"Z{n}^^^FNZYY^MR~{n}^^^FNXRMYY^MR~{FENG}^^^^NNCHN",
                                             "冯^三", "19610101", "M")))) == "AA"
    assert ack_code_of(post(http, _fnzyy(oru(f"{n}R", f"Z{n}^^^FNZYY^MR", "冯^三", "19610101", "M", f"G{n}")))) == "AA"
    assert not _kept_apart(http, n)
    assert ack_code_of(post(http, adt(f"{n}C", pid3(CHEN), "陈^四", "19920303", "F", "A08"))) == "AA"
    assert _kept_apart(http, n)
    assert ack_code_of(post(http, adt(f"{n}D", pid3(restated_id), "冯^三", "19610101", "M", "A08"))) == "AA"
    return _kept_apart(http, n)


def test_another_id_number_leaves_it_apart(both: Both) -> None:  # noqa: F811
    """冯三 M 1961 again, but with another man's ID number than FNZYY's record carries: name, sex and birth date
    agree, the ID numbers do not -- two men of one name and birthday; left apart."""
    _, http, _ = both
    assert _with_ids(http, "PB4", FENG_OTHER)


def test_the_same_id_number_as_the_message_states_it_puts_it_back(both: Both) -> None:  # noqa: F811
    """The converse: 冯三 M 1961 with his own ID number again -- the owner's record as this A08 leaves it carries
    that number (the registration states PID-3 whole), not the one 陈四's A08 left on it: back."""
    _, http, _ = both
    assert not _with_ids(http, "PB5", FENG)


def test_the_name_is_judged_as_the_merge_keeps_it(both: Both) -> None:  # noqa: F811
    """The owner's record officially 陈四 (XPN-7 L) F 1992, FNZYY's 冯三 keyed apart; its A08 names 冯三 as a
    nickname (XPN-7 N) M 1961: the merge keeps the official name 陈四 beside the nickname (by-key, use and
    representation), so the record as stored is still 陈四's -- the number stays apart. (Laid over whole, the PID's
    nickname alone had been the record's name: 冯三, and the number went back onto him.)"""
    _, http, _ = both
    own = _referred(http, "PB6")
    _restated(http, "PB6C", "PB6", "陈^四^^^^^L", "19920303", "F")
    assert _kept_apart(http, "PB6")
    _restated(http, "PB6D", "PB6", "冯^三^^^^^N", "19610101", "M")
    (owner,) = [p for p in patients(http, f"{MRN}|PB6") if p["id"] != own["id"]]
    assert {(n.get("use"), n.get("text")) for n in owner["name"]} == {("official", "陈四"), ("nickname", "冯三")}, owner
    assert _kept_apart(http, "PB6")
