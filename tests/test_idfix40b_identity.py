"""idfix40b: rv40g's findings beside the A40/A47 carry -- a newborn under the mother's ID number keeps the twin guard
(only a record's own number disowns its sex: ``demographics.own_id_numbers``), an A37 of two records merges join only
through others is refused (``persons._undoes_no_merge``), the member refusal's replay advice names what differs.

Real HL7 over ``POST /hl7v2`` into a real store on each backend (``module_eng``), read back over ``/fhir`` and through
the patient index; the rule itself asked directly where no HL7 message reaches a side of it."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from adapters.hl7v2.escapes import unescape
from engine.api.ui_quarantine import WORDS, err_said
from engine.engine import Engine
from engine.identity.demographics import contradicts_all, demographics, own_id_numbers
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import (
    NNCHN_SYSTEM,
    carried_marks,
    engine_and_client,
    read_patient,
    registered,
    tokens,
    unlink,
)
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_mfix34_members import _fnzyy
from tests.test_rvidentity32_probes import MRN, _nid, adt, merge, oru, patients, subjects

both = engine_and_client("idfix40b")
MOTHER = _nid("32092319880505122")  # 柳甲, born 1988-05-05, female (17th digit even)


def _patient(name: str, birth: str | None, gender: str, *numbers: str) -> dict:
    body: dict = {"resourceType": "Patient", "name": [{"text": name}], "gender": gender,
                  "identifier": [{"type": {"coding": [{"code": "NNCHN"}]}, "system": NNCHN_SYSTEM, "value": n}
                                   for n in numbers]}
    if birth:
        body["birthDate"] = birth
    return body


def _set(http: TestClient, pid: str, **fields: str) -> None:
    """A FHIR client (the ward) records ``fields`` on the Patient: PUT, 200."""
    body = {k: v for k, v in read_patient(http, pid).items() if k not in ("meta", "text")}
    assert http.put(f"/fhir/Patient/{pid}", json={**body, **fields}).status_code == 200


def test_both_twins_under_the_mothers_number_keep_the_twin_guard(both: tuple[Engine, TestClient]) -> None:
    """Twins of the other sex, each registered by the HIS under the mother's ID number (sex U, no PID-7: DOMAIN.md, a
    newborn is registered under the mother's number), each sex then recorded by the ward over FHIR -- the boy male
    with his day of birth, the girl female. The other twin's result under either's MRN (a wrong wristband) names
    another name and sex: refused AE at PID-3, filed under neither. The mother's number is neither twin's own (its
    birth date is not theirs), so it disowns neither sex. Fails without idfix40b for the boy (his result's sister
    filed as his: the number's female sex discounted his male one)."""
    engine, http = both
    boy = registered(http, "F40B1", "FBA", "柳^甲之子", "", "U", f"~{MOTHER}^^^^NNCHN")
    girl = registered(http, "F40B2", "FBB", "柳^甲之女", "", "U", f"~{MOTHER}^^^^NNCHN")
    _set(http, boy["id"], gender="male", birthDate="2026-11-30")
    _set(http, girl["id"], gender="female")
    ack = post(http, oru("FBC", "F40B1^^^FNXRMYY^MR", "柳^甲之女", "20261130", "F", "FBOBS1"))
    assert ack_code_of(ack) == "AE" and any("PID^1^3" in e for e in err_lines(ack)), ack
    ack = post(http, oru("FBD", "F40B2^^^FNXRMYY^MR", "柳^甲之子", "20261130", "M", "FBOBS2"))
    assert ack_code_of(ack) == "AE" and any("PID^1^3" in e for e in err_lines(ack)), ack
    assert subjects(http, "FBOBS1") == [] and subjects(http, "FBOBS2") == []
    assert not engine.identity.same_person(boy["id"], girl["id"])


def test_only_the_number_whose_birth_date_is_the_records_day_disowns_its_sex() -> None:
    """The rule (``own_id_numbers``, GB 11643's characters 7-14): a number is the record's own only when it encodes
    the day the record states. The newborn's record -- either side of the comparison -- does not own the mother's
    number (no birth date, or his own day), so a name and a sex both differing are two people; a man's record with
    his own number and a stored sex the number contradicts (rv39h LOW, id40) still is not another person. A record
    stating only the year owns nothing (a year agrees with every day of it)."""
    girl = _patient("柳甲之女", None, "female", MOTHER)
    for born in (None, "2026-11-30"):
        boy = _patient("柳甲之子", born, "male", MOTHER)
        assert not own_id_numbers(boy, demographics(boy))
        assert contradicts_all(girl, boy) and contradicts_all(boy, girl)
    his = _nid("11010119750512011")
    him = _patient("王芳", "1975-05-12", "female", his)
    assert own_id_numbers(him, demographics(him)) == {his}
    assert not contradicts_all(him, _patient("王芳芳", "1975-05-12", "male", his))
    by_year = _patient("王芳", "1975", "female", his)
    assert not own_id_numbers(by_year, demographics(by_year))
    assert contradicts_all(by_year, _patient("王芳芳", "1975", "male"))


def test_an_a37_naming_records_a_chain_joins_through_another_is_refused(both: tuple[Engine, TestClient]) -> None:
    """R1 (ID number) merged into R2, R2 into R3; the HIS's A37 names R3 and R1, which no merge joined directly: which
    merge was wrong it does not say. Refused AE 204 at the second PID's PID-3, naming R2's record number between;
    nothing changes (R3 keeps the number and both marks, every link stands, the index one person). The A37 of R3 and
    R2 -- a merge it names -- is then taken. Fails without idfix40b (AA; R3 lost the number to R1, still merged away)."""
    engine, http = both
    nid = _nid("32092319620303312")
    person = ("岳^癸", "19620303", "F")
    one = registered(http, "F40C1", "FCA", *person, f"~{nid}^^^^NNCHN")
    two = registered(http, "F40C2", "FCB", *person)
    three = registered(http, "F40C3", "FCC", *person)
    assert ack_code_of(post(http, merge("FCD", "F40C2^^^FNXRMYY^MR", *person, "F40C1^^^FNXRMYY^MR"))) == "AA"
    assert ack_code_of(post(http, merge("FCE", "F40C3^^^FNXRMYY^MR", *person, "F40C2^^^FNXRMYY^MR"))) == "AA"
    before = {p: read_patient(http, p) for p in (one["id"], two["id"], three["id"])}
    ack = post(http, unlink("FCF", ("F40C3", *person), ("F40C1", *person)))
    (line,) = err_lines(ack)
    assert ack_code_of(ack) == "AE" and line.split("|")[2:5] == ["PID^2^3", "204^Unknown key identifier^HL70357", "E"]
    assert "'F40C2'" in line and "no merge joined directly" in line, line
    for pid, was in before.items():
        now = read_patient(http, pid)
        assert (now.get("link"), now.get("identifier")) == (was.get("link"), was.get("identifier")), pid
    assert [p["id"] for p in patients(http, nid)] == [three["id"]]
    assert len(carried_marks(read_patient(http, three["id"]))) == 2
    assert engine.identity.same_person(one["id"], three["id"])
    assert ack_code_of(post(http, unlink("FCG", ("F40C3", *person), ("F40C2", *person)))) == "AA"
    assert [p["id"] for p in patients(http, nid)] == [two["id"]]
    assert tokens(read_patient(http, three["id"])) == {f"{MRN}|F40C3"}


def test_the_member_refusals_replay_advice_names_what_differs(both: tuple[Engine, TestClient]) -> None:
    """FNXRMYY's 王丽 (her ID number); FNZYY registers 陈六 -- the same sex and day, another valid ID number -- under
    FNXRMYY's number beside its own: refused AE, name and ID number differing. The advice of the replay names those
    (a corrected copy stating the name and resident ID number as that record holds them), not "the name and birth
    date"; the operator's Chinese says it too (words.yaml). Fails without idfix40b."""
    engine, http = both
    registered(http, "F40D1", "FDA", "王^丽", "19800301", "F", f"~{_nid('32092319800301122')}^^^^NNCHN")
    other = _nid("32092319800301142")
    ack = post(http, _fnzyy(adt("FDB", f"ZF40D^^^FNZYY^MR~F40D1^^^FNXRMYY^MR~{other}^^^^NNCHN", "陈^六",
                                "19800301", "F")))
    (said,) = err_lines(ack)
    assert ack_code_of(ack) == "AE", ack
    text = unescape(said.split("|")[8])
    assert "its name (PID-5) and resident ID number (PID-3) differ" in text, text
    assert "stating the name (PID-5) and resident ID number (PID-3) as that record holds them" in text, text
    assert "birth date" not in text, text
    zh, _ = err_said(WORDS.current(engine.settings.site), "205", text)
    assert "其姓名、居民身份证号与本消息不符" in zh and "其姓名、居民身份证号按该机构病历填写" in zh, zh
    assert "{what}" not in zh and "PID-" not in zh.split("（同一 MSH-10）")[1], zh



def test_an_a37_of_a_merge_whose_number_moved_on_is_refused_until_the_later_merge_is_undone(
        both: tuple[Engine, TestClient]) -> None:
    """R1 (ID number) wrongly merged into R2, then R2 rightly into R3 (the number carried on to R3, marked from both).
    The HIS's A37 of R2 and R1 names that merge, but the number it carried sits on R3, which the A37 does not name:
    refused AE 204 at the second PID's PID-3, naming R3 and R2, nothing changed. The sender undoes the later merge
    (A37 R3/R2), then this one (A37 R2/R1), merges R2 into R3 again: R1 holds its number unmarked, R3 none, and the
    index keeps R1 apart. Fails without idfix40b (AA: R1 parted, R3 kept R1's number and answered it)."""
    engine, http = both
    nid = _nid("32092319620303412")
    person = ("岳^子", "19620303", "F")
    one = registered(http, "F40E1", "FEA", *person, f"~{nid}^^^^NNCHN")
    two = registered(http, "F40E2", "FEB", *person)
    three = registered(http, "F40E3", "FEC", *person)
    assert ack_code_of(post(http, merge("FED", "F40E2^^^FNXRMYY^MR", *person, "F40E1^^^FNXRMYY^MR"))) == "AA"
    assert ack_code_of(post(http, merge("FEE", "F40E3^^^FNXRMYY^MR", *person, "F40E2^^^FNXRMYY^MR"))) == "AA"
    before = {p: read_patient(http, p) for p in (one["id"], two["id"], three["id"])}
    ack = post(http, unlink("FEF", ("F40E2", *person), ("F40E1", *person)))
    (line,) = err_lines(ack)
    assert ack_code_of(ack) == "AE" and line.split("|")[2:5] == ["PID^2^3", "204^Unknown key identifier^HL70357", "E"]
    assert "the A37 of 'F40E3' and 'F40E2'" in line, line
    for pid, was in before.items():
        now = read_patient(http, pid)
        assert (now.get("link"), now.get("identifier")) == (was.get("link"), was.get("identifier")), pid
    assert ack_code_of(post(http, unlink("FEG", ("F40E3", *person), ("F40E2", *person)))) == "AA"
    assert ack_code_of(post(http, unlink("FEH", ("F40E2", *person), ("F40E1", *person)))) == "AA"
    assert ack_code_of(post(http, merge("FEI", "F40E3^^^FNXRMYY^MR", *person, "F40E2^^^FNXRMYY^MR"))) == "AA"
    assert [p["id"] for p in patients(http, nid)] == [one["id"]]
    assert not carried_marks(read_patient(http, one["id"])) and tokens(read_patient(http, three["id"])) == {f"{MRN}|F40E3"}
    assert not engine.identity.same_person(one["id"], three["id"])
    assert engine.identity.same_person(two["id"], three["id"])
