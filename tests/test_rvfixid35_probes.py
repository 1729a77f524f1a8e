"""rvfixid35: probes of idfix35 / rkfix35 (the owner agreeing again puts a re-keyed number back; a member's merge of
its own stale record; batches answering as single sends). Real HL7 through ``POST /hl7v2`` into the real store on
each backend (SQLite, mongomock), read back over ``/fhir``. A strict xfail pins a defect found; a plain test guards."""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import err_lines, post
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_idfix35_owner import _referred, _restated
from tests.test_mfix34_members import APART, FNZYY_MRN, _fnzyy, _tokens, both  # noqa: F401
from tests.test_rvidentity32_probes import MRN, adt, oru, patients

Both = tuple[Engine, TestClient, dict[str, str]]


def _owner(http: TestClient, n: str, zid: str) -> dict:
    (owner,) = [p for p in patients(http, f"{MRN}|{n}") if p["id"] != zid]
    return owner


def test_an_owners_name_only_restatement_does_not_put_its_number_back_on_another_person(both: Both) -> None:  # noqa: F811
    """冯三 (M 1961) at FNZYY carries FNXRMYY's RF1 beside; FNXRMYY restates RF1 as 陈四 (F 1992): re-keyed apart.
    FNXRMYY's next A08 corrects the name alone (陈五, no sex, no birth date: a thin PID): its record stays F 1992 --
    still another person than 冯三 (M 1961). FNZYY's record must stay apart; a clinician's search by FNXRMYY's
    RF1 must not answer 冯三's record (and with it his results) for the owner's 陈五."""
    _, http, clinician = both
    own = _referred(http, "RF1")
    _restated(http, "RF1C", "RF1", "陈^四", "19920303", "F")
    _restated(http, "RF1D", "RF1", "陈^五", "", "")
    owner = _owner(http, "RF1", own["id"])
    assert owner.get("gender") == "female" and owner.get("birthDate") == "1992-03-03", owner  # nothing erased
    (after,) = patients(http, f"{FNZYY_MRN}|ZRF1")
    assert f"{APART}|RF1" in _tokens(after) and f"{MRN}|RF1" not in _tokens(after), after["identifier"]


def test_an_owners_birth_date_only_restatement_does_not_put_its_number_back_on_another_person(
        both: Both) -> None:  # noqa: F811
    """The same with a thin A08 correcting the owner's 陈四's birth date alone (name and sex not sent): the owner's
    record is 陈四 F -- FNZYY's 冯三 M must stay apart."""
    _, http, _ = both
    own = _referred(http, "RG1")
    _restated(http, "RG1C", "RG1", "陈^四", "19920303", "F")
    _restated(http, "RG1D", "RG1", "", "19920304", "")
    owner = _owner(http, "RG1", own["id"])
    assert owner.get("gender") == "female" and owner["name"][0].get("family") == "陈", owner
    (after,) = patients(http, f"{FNZYY_MRN}|ZRG1")
    assert f"{APART}|RG1" in _tokens(after) and f"{MRN}|RG1" not in _tokens(after), after["identifier"]


def test_control_the_owners_full_restatement_of_another_person_leaves_it_apart(both: Both) -> None:  # noqa: F811
    """Control of the two above: the owner's full A08 as 陈五 F 1992 leaves FNZYY's 冯三 apart."""
    _, http, _ = both
    _referred(http, "RH1")
    _restated(http, "RH1C", "RH1", "陈^四", "19920303", "F")
    _restated(http, "RH1D", "RH1", "陈^五", "19920303", "F")
    (after,) = patients(http, f"{FNZYY_MRN}|ZRH1")
    assert f"{APART}|RH1" in _tokens(after) and f"{MRN}|RH1" not in _tokens(after), after["identifier"]


def _member_result_then_owner_agreeing(http: TestClient, n: str, batch: bool) -> dict:
    """FNZYY's result naming only its own Z<n>, then FNXRMYY's A08 as 冯三 again -- in one relay batch or singly."""
    _referred(http, n)
    _restated(http, f"{n}C", n, "陈^四", "19920303", "F")
    result = _fnzyy(oru(f"{n}E", f"Z{n}^^^FNZYY^MR", "冯^三", "19610101", "M", f"G{n}E"))
    agreeing = adt(f"{n}D", f"{n}^^^FNXRMYY^MR", "冯^三", "19610101", "M", "A08")
    if batch:
        ack = post(http, "FHS|^~\\&|HIS|FNZYY\rBHS|^~\\&|HIS|FNZYY\r" + result + agreeing + "BTS|2\rFTS|1\r")
        assert f"MSA|AA|{n}E".encode() in ack and f"MSA|AA|{n}D".encode() in ack, ack
    else:
        assert ack_code_of(post(http, result)) == "AA"
        _restated(http, f"{n}D", n, "冯^三", "19610101", "M")
    (after,) = patients(http, f"{FNZYY_MRN}|Z{n}")
    return after


def test_singly_a_member_result_then_the_owner_agreeing_puts_the_number_back(both: Both) -> None:  # noqa: F811
    """Control: sent singly, FNZYY's result (own MRN only, writes nothing to the record) then FNXRMYY agreeing
    again: the number back under FNXRMYY's MRN system."""
    _, http, _ = both
    after = _member_result_then_owner_agreeing(http, "RJ1", batch=False)
    assert f"{MRN}|RJ1" in _tokens(after) and f"{APART}|RJ1" not in _tokens(after), after["identifier"]


def test_in_a_batch_a_member_result_then_the_owner_agreeing_puts_the_number_back(both: Both) -> None:  # noqa: F811
    """The same two messages in one relay batch must leave the record as sent singly: the number back."""
    _, http, _ = both
    after = _member_result_then_owner_agreeing(http, "RK1", batch=True)
    assert f"{MRN}|RK1" in _tokens(after) and f"{APART}|RK1" not in _tokens(after), after["identifier"]


def test_after_the_put_back_the_members_own_his_still_registers_its_record(both: Both) -> None:  # noqa: F811
    """The put-back version is written by FNXRMYY's message: it must not make FNXRMYY's HIS the registrar of FNZYY's
    record -- FNZYY's HIS restating its record afterwards is AA with no E, its person as sent."""
    _, http, _ = both
    _referred(http, "RL1")
    _restated(http, "RL1C", "RL1", "陈^四", "19920303", "F")
    _restated(http, "RL1D", "RL1", "冯^三", "19610101", "M")
    (back,) = patients(http, f"{FNZYY_MRN}|ZRL1")
    assert f"{MRN}|RL1" in _tokens(back), back["identifier"]
    ack = post(http, _fnzyy(adt("RL1E", "ZRL1^^^FNZYY^MR~RL1^^^FNXRMYY^MR", "冯^三", "19610102", "M", "A08")))
    assert ack_code_of(ack) == "AA" and not [e for e in err_lines(ack) if e.split("|")[4] == "E"], ack
    (after,) = patients(http, f"{FNZYY_MRN}|ZRL1")
    assert after["birthDate"] == "1961-01-02" and f"{MRN}|RL1" in _tokens(after), after


_A40 = ("MSH|^~\\&|HIS|FNZYY|HUREN|FNYGT|20261201121500||ADT^A40^ADT_A39|{c}|P|2.5.1\rEVN|A40|20261201121500\r"
        "PID|1||Z{n}^^^FNZYY^MR||冯^三||19610101|M\rMRG|{n}^^^FNXRMYY^MR\r")


def _stale_then(http: TestClient, n: str, batch: bool) -> list[str]:
    """FNZYY admits 冯三 under FNXRMYY's <n> alone and registers him under its own Z<n>; then FNXRMYY registers <n>
    as 陈四 and FNZYY merges its stale record into Z<n> (A40) -- in one relay batch, or singly. Returns the MSA-1s."""
    assert ack_code_of(post(http, _fnzyy(adt(f"{n}A", f"{n}^^^FNXRMYY^MR", "冯^三", "19610101", "M", "A01")))) == "AA"
    assert ack_code_of(post(http, _fnzyy(adt(f"{n}C", f"Z{n}^^^FNZYY^MR", "冯^三", "19610101", "M")))) == "AA"
    owner = adt(f"{n}B", f"{n}^^^FNXRMYY^MR", "陈^四", "19920303", "F")
    merge = _A40.format(c=f"{n}D", n=n)
    if batch:
        acks = [post(http, "FHS|^~\\&|HIS|FNZYY\rBHS|^~\\&|HIS|FNZYY\r" + owner + merge + "BTS|2\rFTS|1\r")]
    else:
        acks = [post(http, owner), post(http, merge)]
    codes = [line.split("|")[1] for a in acks for line in a.decode().split("\r") if line.startswith("MSA|")]
    return codes + sorted(e.split("|")[2] + ":" + e.split("|")[4] for a in acks for e in err_lines(a))


def test_singly_the_owners_registration_then_the_members_merge_of_its_stale_record_is_filed(both: Both) -> None:  # noqa: F811
    """Control: singly, the owner's A04 (re-keying FNZYY's stale record) then FNZYY's A40 of it: AA (its W at PID-3:
    the owner's word on the member's records), AA with W at MRG-1 (idfix35's ``_stale_merged``)."""
    _, http, _ = both
    assert _stale_then(http, "RM1", batch=False) == ["AA", "AA", "MRG^1^1:W", "PID^1^3:W"]


def test_in_a_batch_the_owners_registration_then_the_members_merge_of_its_stale_record_is_filed(both: Both) -> None:  # noqa: F811
    """The same two in one relay batch answer as singly: the merge reads the stale record as the batch leaves it
    (the owner's re-key, its identifier alone, states no person: rkfix35's ``batch_version``)."""
    _, http, _ = both
    assert _stale_then(http, "RN1", batch=True) == ["AA", "AA", "MRG^1^1:W", "PID^1^3:W"]
