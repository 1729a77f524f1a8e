"""rv39f's probes of the thirty-ninth round's person guard (nbfix39: ``demographics.contradicts_all``,
``persons._formerly``) through the real path: HL7 v2 over ``POST /hl7v2`` into a real store on each backend
(``module_eng``: SQLite, mongomock), read back over ``/fhir``."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import post
from tests.identity39_calls import engine_and_client, registered
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_rvidentity32_probes import MRN, _nid, adt, merge, oru, patients, subjects

both = engine_and_client("rv39f")


def test_an_overlaid_records_former_persons_result_is_not_filed_under_the_new_person(
        both: tuple[Engine, TestClient]) -> None:
    """The registrar's clerk opens MRN FO1 (李梅, F, 1980-01-01, her ID number) and overwrites it with another
    patient (赵强, M, 1975-05-05, his own ID number) by an A08 -- an overlay, the commonest patient-index error;
    the A08 itself is filed with a W (a restatement as another person). 李梅's glucose, ordered before, comes from
    the LIS under FO1 with her own name, sex, day and ID number: every field, her valid ID number included, says
    another person than the record now states. It must not be filed under 赵强's record (nor read by 赵强 at /me):
    refused, as the guard refuses any other person's result -- ``_formerly`` files it with a W instead."""
    _, http = both
    hers, his = _nid("32092319800101002"), _nid("32092319750505001")
    record = registered(http, "FO1", "FO1A", "李^梅", "19800101", "F", f"~{hers}^^^^NNCHN")
    ack = post(http, adt("FO1B", f"FO1^^^FNXRMYY^MR~{his}^^^^NNCHN", "赵^强", "19750505", "M", event="A08"))
    assert ack_code_of(ack) == "AA", ack
    ack = post(http, oru("FO1C", f"FO1^^^FNXRMYY^MR~{hers}^^^^NNCHN", "李^梅", "19800101", "F", "FO1GLU"))
    assert subjects(http, "FO1GLU") == [], (ack, record["id"])
    assert ack_code_of(ack) == "AE", ack


def test_an_id_number_with_a_lower_case_x_is_the_same_number(both: tuple[Engine, TestClient]) -> None:
    """A number ending in X, sent by the LIS with a lower-case x and the name without its middle dot: one number in
    common (``nationalid.compact`` upper-cases), so the name alone differing is no reason -- filed."""
    _, http = both
    number = _nid("65010219900501068")  # (its check character X)
    assert number.endswith("X")
    record = registered(http, "FX1", "FX1A", "阿依古丽·买买提", "19900501", "F", f"~{number}^^^^NNCHN")
    ack = post(http, oru("FX1B", f"FX1^^^FNXRMYY^MR~{number.lower()}^^^^NNCHN", "阿依古丽买买提", "19900501", "F",
                         "FX1GLU"))
    assert ack_code_of(ack) in ("AA", "AE") and subjects(http, "FX1GLU") == [f"Patient/{record['id']}"], ack


def test_a_15_digit_old_id_number_is_refused_clearly_not_filed(both: tuple[Engine, TestClient]) -> None:
    """A first-generation (15-digit) number beside the 18-digit one the HIS registered: ``nationalid`` (the one owner
    of validity, GB 11643: 18 characters) refuses it -- AE naming PID-3 and why, nothing filed, never a 500. (It
    never reaches the person guard's ID-number reading, so it can never make two people of one.)"""
    _, http = both
    number = _nid("32092319650301002")
    old = number[:6] + number[8:17]  # GB 11643: drop the century and the check character
    registered(http, "F15", "F15A", "孙^兰", "19650301", "F", f"~{number}^^^^NNCHN")
    ack = post(http, oru("F15B", f"F15^^^FNXRMYY^MR~{old}^^^^NNCHN", "孙^兰", "19650301", "F", "F15GLU"))
    assert ack_code_of(ack) == "AE" and subjects(http, "F15GLU") == [], ack
    assert b"PID-3" in ack and b"must be 18 characters" in ack, ack


def test_a_middle_dot_written_otherwise_and_a_mistyped_day(both: tuple[Engine, TestClient]) -> None:
    """The HIS writes 阿依古丽·买买提 (U+00B7, the form of the ID card), the LIS 阿依古丽．买买提 (full-width full
    stop) -- one name -- with a day of birth mistyped: one field differs, which is no reason; filed."""
    _, http = both
    record = registered(http, "FD1", "FD1A", "阿依古丽·买买提", "19900501", "F")
    ack = post(http, oru("FD1B", "FD1^^^FNXRMYY^MR", "阿依古丽．买买提", "19900510", "F", "FD1GLU"))
    assert subjects(http, "FD1GLU") == [f"Patient/{record['id']}"], ack


def test_the_doubled_escape_warning_says_in_chinese_the_characters_read(both: tuple[Engine, TestClient]) -> None:
    """An MSH-2 doubling its escape character (``^~\\\\&``) is read as the standard ``^~\\&`` (a W in the ACK). The
    Chinese the fidelity page shows for the W (``ui_quarantine.err_said`` over the shipped words, as
    ``ui_fidelity`` draws it) names the characters read: ``^~\\&``, one backslash."""
    from adapters.hl7v2.escapes import unescape
    from engine.api.ui_quarantine import WORDS, err_said
    from tests.hl7_calls import err_lines

    engine, http = both
    message = adt("FE1A", "FE1^^^FNXRMYY^MR", "钱^进", "19700101", "M").replace("MSH|^~\\&|", "MSH|^~\\\\&|", 1)
    ack = post(http, message)
    assert ack_code_of(ack) == "AA", ack
    (line,) = [e for e in err_lines(ack) if "doubles the escape character" in e]
    text = unescape(line.split("|")[8])  # (the ACK escapes it: ERR-8 as sent back)
    zh, _ = err_said(WORDS.current(engine.settings.site), "102", text)
    assert "“^~\\&”" in zh, (zh, text)


def test_the_two_people_merge_warning_is_said_in_chinese(both: tuple[Engine, TestClient]) -> None:
    """An A40 merging 王芳 (F, 1980-01-01) into 李强 (M, 1975-05-05): filed with a W at MRG-1 (nbfix39). The Chinese the
    fidelity page gives that W (``err_said`` over the shipped words, as ``ui_fidelity`` draws it) is its own."""
    from adapters.hl7v2.escapes import unescape
    from engine.api.ui_quarantine import WORDS, err_said
    from tests.hl7_calls import err_lines

    engine, http = both
    registered(http, "FJ1", "FJ1A", "王^芳", "19800101", "F")
    registered(http, "FJ2", "FJ2A", "李^强", "19750505", "M")
    ack = post(http, merge("FJ2B", "FJ2^^^FNXRMYY^MR", "李^强", "19750505", "M", "FJ1^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AA", ack
    (line,) = [e for e in err_lines(ack) if "|MRG^1^1|" in e]
    zh, _ = err_said(WORDS.current(engine.settings.site), "205", unescape(line.split("|")[8]))
    assert zh, line


def test_the_former_person_pass_follows_an_a47(both: tuple[Engine, TestClient]) -> None:
    """孙丽 F 1970-01-01 at FQ1, corrected by the registrar's A08 to 孙丽丽 1970-03-03, then moved by its A47 to FQ2. The
    LIS's result with the day-old copy under FQ2 is the same person the registrar corrected: filed with the W, as it
    is under FQ1."""
    _, http = both
    registered(http, "FQ1", "FQ1A", "孙^丽", "19700101", "F")
    assert ack_code_of(post(http, adt("FQ1B", "FQ1^^^FNXRMYY^MR", "孙^丽丽", "19700303", "F", event="A08"))) == "AA"
    a47 = ("MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201121500||ADT^A47^ADT_A30|FQ1C|P|2.5.1\r"
           "EVN|A47|20261201121500\rPID|1||FQ2^^^FNXRMYY^MR||孙^丽丽||19700303|F\rMRG|FQ1^^^FNXRMYY^MR\r")
    assert ack_code_of(post(http, a47)) == "AA"
    ack = post(http, oru("FQ1D", "FQ1^^^FNXRMYY^MR", "孙^丽", "19700101", "F", "FQ1GLU"))
    assert ack_code_of(ack) == "AA" and subjects(http, "FQ1GLU"), ack  # (the old MRN: filed with the W)
    ack = post(http, oru("FQ1E", "FQ2^^^FNXRMYY^MR", "孙^丽", "19700101", "F", "FQ2GLU"))
    (record,) = patients(http, f"{MRN}|FQ2")
    assert ack_code_of(ack) == "AA" and subjects(http, "FQ2GLU") == [f"Patient/{record['id']}"], ack


def test_the_refusal_says_the_rule_in_its_one_wording(both: tuple[Engine, TestClient]) -> None:
    """The boy's result under his twin sister's MRN (same day) is refused; the ERR says the rule as the module's one
    wording of it (``persons._TWO_PEOPLE``), which the merge refusals say too."""
    from adapters.convert.persons import _TWO_PEOPLE
    from tests.hl7_calls import err_lines

    _, http = both
    registered(http, "FT1", "FT1A", "周^小妹", "20261102", "F")
    ack = post(http, oru("FT1B", "FT1^^^FNXRMYY^MR", "周^小弟", "20261102", "M", "FT1GLU"))
    assert ack_code_of(ack) == "AE" and subjects(http, "FT1GLU") == [], ack
    (line,) = err_lines(ack)
    assert _TWO_PEOPLE in line, line
