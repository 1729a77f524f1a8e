"""nbfix38: a newborn's result under the mother's own MRN is refused (``demographics.contradicts_all``: name and a
birth date both stated to the day, both differing, mean two people whatever the sex); the corrections one field at a
time, a year-only birth date and a newborn named later stay accepted.

Real HL7 over ``POST /hl7v2`` into a real store on each backend (``module_eng``), read back over ``/fhir``."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id, raw_of
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import engine_and_client, registered
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_rvidentity32_probes import MRN, adt, oru, patients, subjects

both = engine_and_client("nb38")


def _mother(http: TestClient, number: str, control: str, name: str = "柳^甲", birth: str = "19610101") -> dict:
    """Her record, registered by the HIS under its own MRN."""
    return registered(http, number, control, name, birth, "F")


def test_a_newborns_result_under_the_mothers_own_mrn_is_refused(both: tuple[Engine, TestClient]) -> None:
    """The HIS sends the newborn's result under the mother's MRN (another name, another full birth date, the same
    sex, no PID-21): AE at PID-3 naming PID-5/7/8, nothing filed, the raw kept byte for byte, the ACK naming
    neither the mother nor the child; the mother's record unchanged."""
    engine, http = both
    mother = _mother(http, "NB1", "NB1A")
    sent = oru("NB1B", "NB1^^^FNXRMYY^MR", "柳甲之女", "20261130", "F", "NB1GLU", app="HIS")
    ack = post(http, sent)
    assert ack_code_of(ack) == "AE", ack
    (err,) = err_lines(ack)
    assert "|PID^1^3|" in err and all(f in err for f in ("PID-5", "PID-7", "PID-8")), err
    text = ack.decode("utf-8")
    assert all(s not in text for s in ("柳", "甲", "之女", "1961", "20261130", "2026-11-30", mother["id"])), text
    assert subjects(http, "NB1GLU") == []
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "NB1B"))
    assert doc is not None and raw_of(doc).decode().replace("\n", "\r").rstrip("\r") == sent.rstrip("\r"), doc
    now = http.get(f"/fhir/Patient/{mother['id']}").json()
    assert (now["name"], now["gender"], now["birthDate"]) == (mother["name"], "female", "1961-01-01"), now
    assert [p["id"] for p in patients(http, f"{MRN}|NB1")] == [mother["id"]]


def test_the_same_from_the_lis_and_of_the_other_sex_is_refused(both: tuple[Engine, TestClient]) -> None:
    """The LIS's result for a son under her MRN: name, sex and birth date all differ -- refused as before; and one
    of a daughter (same sex) from the LIS: refused now too. Neither filed."""
    _, http = both
    _mother(http, "NB2", "NB2A")
    for control, name, sex in (("NB2B", "柳甲之子", "M"), ("NB2C", "柳甲之女", "F")):
        ack = post(http, oru(control, "NB2^^^FNXRMYY^MR", name, "20261201", sex, control))
        assert ack_code_of(ack) == "AE" and subjects(http, control) == [], ack


@pytest.mark.parametrize(("number", "was", "name", "birth", "read", "corrected"), [
    # a name written another way (same sex, same birth date): the record renamed
    pytest.param("NB3", "柳^乙", "刘^乙", "19610101", lambda p: p["name"][0]["text"], "刘乙", id="name"),
    # the same name and sex, another day of birth (a typo corrected): the record's birth date corrected
    pytest.param("NB4", "柳^丙", "柳^丙", "19610110", lambda p: p["birthDate"], "1961-01-10", id="birth_date"),
])
def test_a_correction_of_one_field_alone_is_accepted(both: tuple[Engine, TestClient], number: str, was: str,
                                                     name: str, birth: str, read: Callable[[dict], str],
                                                     corrected: str) -> None:
    """A result under her MRN that differs from her record in one field alone (the name, or the day of birth;
    same sex): filed under her; the HIS's A08 correcting that field alone: filed, no warning, the record corrected."""
    _, http = both
    mother = _mother(http, number, f"{number}A", name=was)
    ack = post(http, oru(f"{number}B", f"{number}^^^FNXRMYY^MR", name, birth, "F", f"{number}GLU"))
    assert ack_code_of(ack) == "AA" and subjects(http, f"{number}GLU") == [f"Patient/{mother['id']}"], ack
    ack = post(http, adt(f"{number}C", f"{number}^^^FNXRMYY^MR", name, birth, "F", event="A08"))
    assert ack_code_of(ack) == "AA" and err_lines(ack) == [], ack
    (now,) = patients(http, f"{MRN}|{number}")
    assert now["id"] == mother["id"] and read(now) == corrected, now


def test_a_year_only_birth_date_with_another_name_is_accepted(both: tuple[Engine, TestClient]) -> None:
    """A LIS that knows only the year (PID-7 ``1961``) and writes the name in pinyin: no day to contradict
    (``same_day``), one field differing -- filed under her."""
    _, http = both
    mother = _mother(http, "NB5", "NB5A", name="柳^丁")
    ack = post(http, oru("NB5B", "NB5^^^FNXRMYY^MR", "LIU^DING", "1961", "F", "NB5GLU"))
    assert ack_code_of(ack) == "AA" and subjects(http, "NB5GLU") == [f"Patient/{mother['id']}"], ack


def test_a_result_with_no_birth_date_keeps_the_name_and_sex_rule(both: tuple[Engine, TestClient]) -> None:
    """Many county LIS send no PID-7: another name of the same sex is filed (one field), another name and sex is
    refused (name AND sex, as before)."""
    _, http = both
    mother = _mother(http, "NB6", "NB6A", name="柳^戊")
    ack = post(http, oru("NB6B", "NB6^^^FNXRMYY^MR", "LIU^WU", "", "F", "NB6GLU"))
    assert ack_code_of(ack) == "AA" and subjects(http, "NB6GLU") == [f"Patient/{mother['id']}"], ack
    ack = post(http, oru("NB6C", "NB6^^^FNXRMYY^MR", "周^戊", "", "M", "NB6X"))
    assert ack_code_of(ack) == "AE" and subjects(http, "NB6X") == [], ack


def test_a_newborn_registered_unnamed_then_named_keeps_the_record(both: tuple[Engine, TestClient]) -> None:
    """张三之子, sex unknown, registered on the day of birth; then named (sex given) with the same birth date: the
    HIS's A08 and the result are filed under the one record, renamed."""
    _, http = both
    assert ack_code_of(post(http, adt("NB7A", "NB7^^^FNXRMYY^MR", "张三之子", "20261130", "U"))) == "AA"
    (baby,) = patients(http, f"{MRN}|NB7")
    ack = post(http, adt("NB7B", "NB7^^^FNXRMYY^MR", "张^小明", "20261130", "M", event="A08"))
    assert ack_code_of(ack) == "AA", ack
    ack = post(http, oru("NB7C", "NB7^^^FNXRMYY^MR", "张^小明", "20261130", "M", "NB7GLU"))
    assert ack_code_of(ack) == "AA" and subjects(http, "NB7GLU") == [f"Patient/{baby['id']}"], ack
    (now,) = patients(http, f"{MRN}|NB7")
    assert now["id"] == baby["id"] and now["name"][0]["text"] == "张小明" and now["gender"] == "male", now


def test_the_registrars_a08_correcting_name_and_day_of_birth_is_accepted_with_a_warning(
        both: tuple[Engine, TestClient]) -> None:
    """The real-world correction of a wrong registration (name and day of birth both wrong, the same sex): the
    registering HIS's A08 restates its record, accepted with the warning (ERR W) as any restatement; a result
    then filed under the corrected record. A LIS's A08 doing the same is refused."""
    _, http = both
    record = _mother(http, "NB8", "NB8A", name="柳^己")
    ack = post(http, adt("NB8B", "NB8^^^FNXRMYY^MR", "吴^己", "19700505", "F", event="A08", app="LIS"))
    assert ack_code_of(ack) != "AA", ack
    ack = post(http, adt("NB8C", "NB8^^^FNXRMYY^MR", "吴^己", "19700505", "F", event="A08"))
    assert ack_code_of(ack) == "AA" and err_lines(ack) and "|W" in err_lines(ack)[0], ack
    ack = post(http, oru("NB8D", "NB8^^^FNXRMYY^MR", "吴^己", "19700505", "F", "NB8GLU"))
    assert ack_code_of(ack) == "AA" and subjects(http, "NB8GLU") == [f"Patient/{record['id']}"], ack
    now = http.get(f"/fhir/Patient/{record['id']}").json()
    assert now["name"][0]["text"] == "吴己" and now["birthDate"] == "1970-05-05", now
