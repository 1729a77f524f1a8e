"""nmfix39: rv39f's findings on the person guard's former-person pass and the name it compares.

Real HL7 over ``POST /hl7v2`` into a real store on each backend (``module_eng``: SQLite, mongomock), read back over
``/fhir``; the Chinese through ``ui_quarantine.err_said`` over the shipped words (what ``ui_fidelity`` draws):

- ``persons._formerly`` passes a result stating the record's former person only when the registrar's change from
  that version to the current record was to name and/or birth date alone: an overlay -- another person written
  over the record, of the other sex or with another valid ID number -- is refused (rv39f HIGH 1), also across an
  A47 (MED 7); a correction that added the ID number is still a correction;
- ``demographics.fold_name``: a name written with full-width letters or another separator is one name, read
  through the real path; pinyin against hanzi is not (no guessing) (MED 2);
- the former-person W and the guard's refusal said in Chinese; the refusal says the rule as ``_TWO_PEOPLE`` (MED 4,
  LOW 6)."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from adapters.hl7v2.escapes import unescape
from engine.api.ui_quarantine import WORDS, err_said
from engine.engine import Engine
from engine.identity.demographics import conflicts_between, contradicts_all, demographics, fold_name
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import engine_and_client, registered
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_rvidentity32_probes import _nid, adt, oru, subjects

both = engine_and_client("nmfix39")


def _chinese(engine: Engine, ack: str, code: str = "205") -> str:
    (line,) = [e for e in err_lines(ack) if "|PID^1^3|" in e]
    zh, _ = err_said(WORDS.current(engine.settings.site), code, unescape(line.split("|")[8]))
    return zh


# --- HIGH 1: an overlay is not a correction --------------------------------------------------------------------------


def test_an_overlay_of_the_same_sex_with_another_id_number_is_refused(both: tuple[Engine, TestClient]) -> None:
    """The registrar overwrites 王丽 F 1985-03-03 (her ID number) with 张敏 F 1990-07-07 (her own number): the same
    sex, so the sex alone does not tell it -- the valid ID numbers with none in common do. 王丽's result under the
    MRN, with her number or without any, is refused (AE at PID-3, said in Chinese, nothing filed): not filed under
    张敏's record as "the record's former person" (it was, before)."""
    engine, http = both
    hers, other = _nid("32092319850303002"), _nid("32092319900707004")
    registered(http, "NMO1", "NMO1A", "王^丽", "19850303", "F", f"~{hers}^^^^NNCHN")
    ack = post(http, adt("NMO1B", f"NMO1^^^FNXRMYY^MR~{other}^^^^NNCHN", "张^敏", "19900707", "F", event="A08"))
    assert ack_code_of(ack) == "AA", ack
    for control, pid3 in (("NMO1C", f"NMO1^^^FNXRMYY^MR~{hers}^^^^NNCHN"), ("NMO1D", "NMO1^^^FNXRMYY^MR")):
        ack = post(http, oru(control, pid3, "王^丽", "19850303", "F", f"{control}GLU"))
        assert ack_code_of(ack) == "AE" and subjects(http, f"{control}GLU") == [], (control, ack)
        assert "另一个人" in _chinese(engine, ack), ack


def test_an_overlay_of_the_other_sex_without_id_numbers_is_refused(both: tuple[Engine, TestClient]) -> None:
    """李梅 F 1980-01-01 overwritten with 赵强 M 1975-05-05, no ID number anywhere: 李梅's result is refused -- a sex
    changed with the name is no correction (the rule contains idfix39's "a former version whose sex also
    differs")."""
    _, http = both
    registered(http, "NMO2", "NMO2A", "李^梅", "19800101", "F")
    assert ack_code_of(post(http, adt("NMO2B", "NMO2^^^FNXRMYY^MR", "赵^强", "19750505", "M", event="A08"))) == "AA"
    ack = post(http, oru("NMO2C", "NMO2^^^FNXRMYY^MR", "李^梅", "19800101", "F", "NMO2GLU"))
    assert ack_code_of(ack) == "AE" and subjects(http, "NMO2GLU") == [], ack


def test_a_correction_that_added_the_id_number_is_still_filed(both: tuple[Engine, TestClient]) -> None:
    """柳庚 F 1970-01-01 with no ID number, corrected by the registrar's A08 to 刘庚 F 1970-10-01 with her number
    (the ID card read at the desk): name and day corrected, the sex the same, no two numbers -- the LIS's day-old
    copy is the same woman, filed with the W, which the fidelity page says in Chinese."""
    engine, http = both
    record = registered(http, "NMC1", "NMC1A", "柳^庚", "19700101", "F")
    number = _nid("32092319701001002")
    ack = post(http, adt("NMC1B", f"NMC1^^^FNXRMYY^MR~{number}^^^^NNCHN", "刘^庚", "19701001", "F", event="A08"))
    assert ack_code_of(ack) == "AA", ack
    ack = post(http, oru("NMC1C", "NMC1^^^FNXRMYY^MR", "柳^庚", "19700101", "F", "NMC1GLU"))
    assert ack_code_of(ack) == "AA" and subjects(http, "NMC1GLU") == [f"Patient/{record['id']}"], ack
    zh = _chinese(engine, ack)
    assert "更正前" in zh and "刷新" in zh, zh


# --- MED 7 + HIGH 1: across an A47 -----------------------------------------------------------------------------------


def test_an_overlay_then_an_a47_stays_refused_under_the_new_mrn(both: tuple[Engine, TestClient]) -> None:
    """李梅 at NMA1 overwritten with 赵强 (other sex, other day), then moved by the HIS's A47 to NMA2: the pass now
    reads the versions of the record NMA2 replaces, and HIGH 1's limit holds there too -- 李梅's result under NMA2
    is refused, nothing filed under 赵强."""
    _, http = both
    registered(http, "NMA1", "NMA1A", "李^梅", "19800101", "F")
    assert ack_code_of(post(http, adt("NMA1B", "NMA1^^^FNXRMYY^MR", "赵^强", "19750505", "M", event="A08"))) == "AA"
    a47 = ("MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201121500||ADT^A47^ADT_A30|NMA1C|P|2.5.1\r"
           "EVN|A47|20261201121500\rPID|1||NMA2^^^FNXRMYY^MR||赵^强||19750505|M\rMRG|NMA1^^^FNXRMYY^MR\r")
    assert ack_code_of(post(http, a47)) == "AA"
    ack = post(http, oru("NMA1D", "NMA2^^^FNXRMYY^MR", "李^梅", "19800101", "F", "NMA2GLU"))
    assert ack_code_of(ack) == "AE" and subjects(http, "NMA2GLU") == [], ack


# --- MED 2: one name written two ways --------------------------------------------------------------------------------


def test_a_name_in_full_width_letters_with_a_mistyped_day_is_one_person(both: tuple[Engine, TestClient]) -> None:
    """The HIS writes WANG^FANG, the LIS ＷＡＮＧ^ＦＡＮＧ (full-width, an IME's form) with the day mistyped: one
    name (NFKC), one field differing -- filed. Pinyin against hanzi is still another name (no guessing): 王芳 with
    the mistyped day is refused."""
    _, http = both
    record = registered(http, "NMN1", "NMN1A", "WANG^FANG", "19900501", "F")
    ack = post(http, oru("NMN1B", "NMN1^^^FNXRMYY^MR", "ＷＡＮＧ^ＦＡＮＧ", "19900510", "F", "NMN1GLU"))
    assert subjects(http, "NMN1GLU") == [f"Patient/{record['id']}"], ack
    ack = post(http, oru("NMN1C", "NMN1^^^FNXRMYY^MR", "王^芳", "19900510", "F", "NMN1CGLU"))
    assert ack_code_of(ack) == "AE" and subjects(http, "NMN1CGLU") == [], ack


def _patient(name: str, birth: str = "1990-05-01", sex: str = "female") -> dict:
    return {"resourceType": "Patient", "name": [{"text": name}], "gender": sex, "birthDate": birth}


@pytest.mark.parametrize("written", ["阿依古丽·买买提", "阿依古丽．买买提", "阿依古丽・买买提", "阿依古丽•买买提",
                                     "阿依古丽‧买买提", "阿依古丽.买买提", "阿依古丽 买买提", "阿依古丽\u3000买买提",
                                     "阿依古丽-买买提", "阿依古丽\uff65买买提", "阿依古丽\u2010买买提"])
def test_the_separators_of_a_minority_name_are_not_read(written: str) -> None:
    """Each separator a registration writes in a minority name, with the day mistyped: one name, no two people."""
    assert fold_name(written) == "阿依古丽买买提"
    assert not contradicts_all(_patient("阿依古丽·买买提"), _patient(written, "1990-05-10"))


def test_an_index_entry_written_before_the_folding_is_the_same_name() -> None:
    """The patient index keeps each entry's demographics (``mpi``'s ``demo``); one written before ``fold_name``
    holds the name with its dot, and compared with the dotless name read now it is no conflict."""
    stored = {"name": "阿依古丽·买买提", "gender": "female", "birthDate": "1990-05-01"}
    assert conflicts_between(stored, demographics(_patient("阿依古丽．买买提"))) == []
    assert conflicts_between(stored, demographics(_patient("阿依古丽·买买江"))) == ["name"]
