"""nfix40: rv40a's LOW 6 (a FHIR search by a resident ID number with a lower-case ``x`` check character found nobody)
and LOW 7 (``demographics.fold_name`` kept the invisible format characters, the tatweel, U+A78F and a name's trailing
Tibetan tsheg, so one name written with one of them was "another name").

Real HL7 over ``POST /hl7v2`` into a real store on each backend (``module_eng``: SQLite, mongomock), read back over
``/fhir`` (every form of a search by the number: ``system|value``, the bare value, ``:not``, a chain) and the patient
index; the folding's readings beside, with the names it must keep apart (folding must never join two people)."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import sys
import unicodedata

import pytest
from fastapi.testclient import TestClient

from adapters.convert.persons import _TWO_PEOPLE
from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.identity.demographics import fold_name, same_name
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import NNCHN_SYSTEM, engine_and_client, registered
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_mfix34_members import _fnzyy
from tests.test_rvidentity32_probes import MRN, _nid, adt, oru, subjects

both = engine_and_client("nfix40")


def _utf8(message: str) -> str:
    """``message`` declaring its set, MSH-18 ``UNICODE UTF-8`` (Arabic-script text undeclared may be GB 18030 read
    as UTF-8: refused as a guess, ``adapters.hl7v2.header``)."""
    return message.replace("|P|2.5.1\r", "|P|2.5.1||||||UNICODE UTF-8\r", 1)


def _ids(http: TestClient, rtype: str, params: list[tuple[str, str]]) -> list[str]:
    """The ids a search over ``/fhir`` answers (which must be 200)."""
    got = http.get(f"/fhir/{rtype}", params=params)
    assert got.status_code == 200, got.text
    return sorted(e["resource"]["id"] for e in got.json().get("entry", []))


# --- LOW 6: the search reads the number as nationalid does ------------------------------------------------------------


def test_every_form_of_a_search_by_her_number_written_with_a_lower_case_x_finds_her(
        both: tuple[Engine, TestClient]) -> None:
    """岳卯's number ends in X (stored so by the HL7 path). Written ``...x`` -- under the national system, bare, with
    spaces, in ``:not``, inside a chain to her result -- it is her number; ``...X`` still finds her, and a number
    that differs in its check character (not valid) finds nobody and is no error."""
    _, http = both
    up = _nid("32092319760807034")
    assert up.endswith("X")
    low = up[:-1] + "x"
    rec = registered(http, "NX", "NX1", "岳^卯", "19760807", "F", f"~{up}^^^^NNCHN")
    assert ack_code_of(post(http, oru("NX2", "NX^^^FNXRMYY^MR", "岳^卯", "19760807", "F", "NXGLU"))) == "AA"
    result = _ids(http, "Observation", [("code", "NXGLU")])
    assert len(result) == 1
    her = [rec["id"]]
    for value in (f"{NNCHN_SYSTEM}|{low}", low, f"{NNCHN_SYSTEM}|{up[:6]} {up[6:14]} {low[14:]}", f"{NNCHN_SYSTEM}|{up}"):
        assert _ids(http, "Patient", [("identifier", value)]) == her, value
    # :not -- her record by its MRN, less the records holding her number: none
    assert _ids(http, "Patient", [("identifier", f"{MRN}|NX"), ("identifier:not", f"{NNCHN_SYSTEM}|{low}")]) == []
    # a chain: her result by her number
    chained = _ids(http, "Observation", [("subject:Patient.identifier", f"{NNCHN_SYSTEM}|{low}"), ("code", "NXGLU")])
    assert chained == result
    assert _ids(http, "Patient", [("identifier", f"{NNCHN_SYSTEM}|{up[:-1]}1")]) == []


def test_a_clients_lower_case_x_is_found_by_either_form_and_another_system_keeps_its_own(
        both: tuple[Engine, TestClient]) -> None:
    """A FHIR client's Patient keeps the ``...x`` it sent (exactly what was sent comes back); ``...X`` finds it as
    ``...x`` does, after the site is read again too. The same characters under another system (a card's number) are that system's own: ``x`` is not
    read as ``X`` there."""
    engine, http = both
    up = _nid("32092319810214019")
    assert up.endswith("X")
    low = up[:-1] + "x"
    nnchn = {"system": NNCHN_SYSTEM, "value": low,
             "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}]}}
    made = http.post("/fhir/Patient", json={"resourceType": "Patient", "identifier": [nnchn],
                                            "name": [{"text": "岳辰"}], "gender": "male", "birthDate": "1981-02-14"})
    assert made.status_code == 201, made.text
    pid = made.json()["id"]
    assert made.json()["identifier"][0]["value"] == low
    for value in (f"{NNCHN_SYSTEM}|{low}", f"{NNCHN_SYSTEM}|{up}", up):
        assert _ids(http, "Patient", [("identifier", value)]) == [pid], value
    engine.reload_site()  # (the site read again: its national system still the search's)
    assert _ids(http, "Patient", [("identifier", f"{NNCHN_SYSTEM}|{up}")]) == [pid]
    card = http.post("/fhir/Patient", json={"resourceType": "Patient", "name": [{"text": "岳巳"}],
                                            "identifier": [{"system": "urn:example:card", "value": up}]})
    assert card.status_code == 201, card.text
    assert _ids(http, "Patient", [("identifier", f"urn:example:card|{low}")]) == []
    assert _ids(http, "Patient", [("identifier", f"urn:example:card|{up}")]) == [card.json()["id"]]


# --- LOW 7: a name as a person reads it --------------------------------------------------------------------------------


@pytest.mark.parametrize("mrn, stored, sent", [
    ("NA", "李^娜", "李\u200b^娜"),  # a zero-width space (rv40a's probe: 李\u200b娜)
    ("NB", "李^娜", "李\u00ad娜"),  # a soft hyphen
    ("NC", "\ufeff李^娜", "李^娜"),  # a byte-order mark the stored name carries
    ("ND", "ئايگۈل", "ئايـگۈل"),  # the Arabic tatweel in a Uyghur name
    ("NE", "阿依古丽·买买提", "阿依古丽\ua78f买买提"),  # the sinological dot an IME gives for the middle dot
    ("NF", "བཀྲ་ཤིས་", "བཀྲ་ཤིས"),  # a Tibetan name with and without its last tsheg
], ids=["zero-width-space", "soft-hyphen", "bom", "tatweel", "sinological-dot", "trailing-tsheg"])
def test_a_name_with_a_character_no_one_reads_is_the_same_name(both: tuple[Engine, TestClient], mrn: str,
                                                                stored: str, sent: str) -> None:
    """Her result stating her name with a character no one reads, and a mistyped day (the name the guard's only
    other reason to call it another person), is filed under her record."""
    _, http = both
    rec = registered(http, mrn, f"{mrn}1", stored, "19900501", "F")
    ack = post(http, _utf8(oru(f"{mrn}2", f"{mrn}^^^FNXRMYY^MR", sent, "19900510", "F", f"{mrn}GLU")))
    assert ack_code_of(ack) == "AA", ack
    assert subjects(http, f"{mrn}GLU") == [f"Patient/{rec['id']}"], ack


@pytest.mark.parametrize("mrn, stored, sent", [
    ("NG", "李^娜", "李\u200b^丽"),  # another letter beside a zero-width space
    ("NH", "ག་ཡང", "གཡང"),  # a tsheg inside a name parts syllables: g.yang is not gyang
    ("NI", "ئايگۈل", "ئايـگۈلە"),  # a tatweel and another letter
], ids=["another-hanzi", "inner-tsheg", "another-arabic-letter"])
def test_two_names_that_differ_in_a_letter_still_differ(both: tuple[Engine, TestClient], mrn: str, stored: str,
                                                         sent: str) -> None:
    """Folding must never join two people: a name differing in a letter (and a day) is refused (AE), nothing
    filed -- whatever else in it is dropped."""
    _, http = both
    registered(http, mrn, f"{mrn}1", stored, "19900501", "F")
    ack = post(http, _utf8(oru(f"{mrn}2", f"{mrn}^^^FNXRMYY^MR", sent, "19900510", "F", f"{mrn}GLU")))
    assert ack_code_of(ack) == "AE" and subjects(http, f"{mrn}GLU") == [], ack
    assert any(_TWO_PEOPLE in line for line in err_lines(ack)), ack


def test_the_patient_index_links_one_name_written_with_a_zero_width_space(both: tuple[Engine, TestClient]) -> None:
    """The member hospital registers her under her ID number with a zero-width space in her name: the patient index
    links the record to the county hospital's (same number, sex and day; one name), not "conflicting data"."""
    engine, http = both
    nid = _nid("32092319880312002")
    county = registered(http, "NJ", "NJ1", "韩^梅", "19880312", "F", f"~{nid}^^^^NNCHN")
    ack = post(http, _fnzyy(adt("NJ2", f"ZJ^^^FNZYY^MR~{nid}^^^^NNCHN", "韩\u200b^梅", "19880312", "F")))
    assert ack_code_of(ack) == "AA", ack
    member = _ids(http, "Patient", [("identifier", "urn:huren:mrn:FNZYY|ZJ")])
    assert len(member) == 1 and engine.identity.same_person(member[0], county["id"])


def test_fold_name_drops_every_format_character_and_keeps_every_letter() -> None:
    """Every Cf character of the BMP and of the tag block is dropped between two letters; every letter (``isalpha``)
    but the tatweel and U+A78F is kept -- one letter never folds into another name's."""
    formats = [c for c in map(chr, range(sys.maxunicode + 1)) if unicodedata.category(c) == "Cf"]
    assert "\u200b" in formats and "\U000e0041" in formats
    assert [c for c in formats if fold_name(f"李{c}娜") != "李娜"] == []
    assert fold_name("\u200d\u200c") == "" and fold_name("བཀྲ་ཤིས\u200b་") == "བཀྲ་ཤིས" == fold_name("བཀྲ་ཤིས༌")
    kept = ("张", "A", "ئ", "བ", "ꞎ", "ߊ")
    assert [c for c in kept if fold_name(f"李{c}娜") == "李娜"] == []
    # a space after an inner tsheg is dropped and the tsheg still parts the syllables
    assert fold_name("བཀྲ་ཤིས་ བདེ་ལེགས") == fold_name("བཀྲ་ཤིས་བདེ་ལེགས") != fold_name("བཀྲ་ཤིསབདེ་ལེགས")
    assert not same_name(fold_name("李娜"), "李\u200b丽") and same_name("李娜", "李\u200b娜")


def test_a_logical_reference_by_her_number_is_found_by_the_lower_case_x(both: tuple[Engine, TestClient]) -> None:
    """A reference's ``:identifier`` (a logical reference by the number, ``Reference.identifier``: a record linked
    ``seealso`` to hers): ``...x`` finds the record that names her by ``...X``."""
    _, http = both
    up = _nid("32092319700101013")
    assert up.endswith("X")
    made = http.post("/fhir/Patient", json={
        "resourceType": "Patient", "name": [{"text": "岳未"}],
        "link": [{"type": "seealso", "other": {"identifier": {"system": NNCHN_SYSTEM, "value": up}}}]})
    assert made.status_code == 201, made.text
    assert _ids(http, "Patient", [("link:identifier", f"{NNCHN_SYSTEM}|{up[:-1]}x")]) == [made.json()["id"]]
