"""rv38b: review probes of the thirty-seventh round's merged changes (docfix37, linkfix37, gfix37, perfi37,
perfx37, lastread1, lastread2), thirty-eighth round.

Real HL7 over MLLP (``send``) or the ingest handler, real HTTP through FastAPI's TestClient, the real store
on each backend (SQLite, mongomock). A probe that shows a defect is a strict xfail naming its severity; the
others guard what the changes claim.
"""

from __future__ import annotations

import base64
from typing import Any

from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.settings import Settings
from tests.test_convert11_thinner import send
from tests.test_dept37_departments import COUNTY, _ingest
from tests.test_deptfix34_departments import _wards
from tests.test_old37_document_paragraphs import _aa, _ids, mdm
from tests.test_rv37d_probes import _doc, _lines, _texts, both  # noqa: F401
from tests.test_rvlast34_probes import _feed, _rates, _zhao_order

# -- gfix37 (dept37's outside facility) ---------------------------------------------------------------------

def test_an_outside_ward_named_like_an_own_ward_is_not_counted_in_it(backend_settings: Settings) -> None:
    """An order at a facility no member's code names (PL-4 WAIYUAN), its ward named "心内科病区" (PL-9) -- the
    county hospital's own NEI's name by its table. gfix37 said an outside ward stored by code alone as
    "QQW（外部代码）" so that it is not one row with the institution's own unnamed QQW, whose count it would
    join; the same holds of a name: the outside row's label is the county's own ward's, and the rate by
    department counts the other hospital's order in "阜宁县人民医院 心内科病区"."""
    with Engine(backend_settings) as eng:
        _feed(eng)
        before = _rates(eng)[COUNTY]["recognisable"]
        _ingest(eng, _zhao_order(1, "NEI^7^1^WAIYUAN^^^^^心内科病区"))
        after = _rates(eng)
        assert after[COUNTY]["recognisable"] == before, _wards(after, "心内科")


# -- docfix37 (an MDM edit's text is the copies its message states) ----------------------------------------

def test_an_older_edit_arriving_late_brings_back_no_paragraph_the_later_edit_dropped(
        both: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """T02 09:00 [甲, 乙, 丙], T08 11:00 [甲, 乙] (丙 dropped), then a T08 of 10:00 [甲, 丙] arriving late: its
    statement is held (older), and of the copies it states only those the stored, later text holds stay --
    丙 is not brought back at the place it names, and 乙 (which the late edit does not name) is not dropped."""
    eng, http = both
    _aa(eng, mdm("OE1", "T02", ["甲段", "乙段", "丙段"], number="DOC-OE", at="20261201090000"),
        mdm("OE2", "T08", ["甲段", "乙段"], number="DOC-OE", at="20261201110000"))
    doc = _doc(eng, http, "OE1")
    first = _ids(eng, "OE1")
    (ack,) = send(eng, mdm("OE3", "T08", ["甲段", "丙段"], number="DOC-OE", at="20261201100000"))
    assert b"MSA|AA|OE3" in ack, ack
    assert _texts(http, doc) == _lines(http, doc) == ["乙段", "甲段"]
    assert [http.get(f"/fhir/Observation/{o}").status_code for o in first] == [200, 200, 410]



def test_an_edit_raising_the_document_to_v_still_drops_the_paragraph_it_left_out(
        both: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """T02 [甲, 乙, 丙] (N), then a T08 [甲, 乙] that raises the document to V (TXA-18): the group relabels the
    document's text as it judges it -- the paragraph the edit left out is still deleted (not kept as one of
    the group's writes), the two it states stay, labelled V."""
    from tests.test_old37_document_paragraphs import _system

    eng, http = both
    _aa(eng, mdm("RV1", "T02", ["甲段", "乙段", "丙段"], number="DOC-RV"))
    doc = _doc(eng, http, "RV1")
    _aa(eng, mdm("RV2", "T08", ["甲段", "乙段"], number="DOC-RV", conf="V"))
    first, office = _ids(eng, "RV1"), _system(eng)
    assert [http.get(f"/fhir/Observation/{o}", headers=office).status_code for o in first] == [200, 200, 410]
    kept = [http.get(f"/fhir/Observation/{o}", headers=office).json() for o in first[:2]]
    assert [[c["code"] for c in o["meta"].get("security") or ()] for o in kept] == [["V"], ["V"]]
    now = http.get(f"/fhir/DocumentReference/{doc['id']}", headers=office).json()
    assert sorted(line for c in now["content"] if c["attachment"].get("contentType", "").startswith("text/plain")
                  for line in base64.b64decode(c["attachment"]["data"]).decode().splitlines()) == ["乙段", "甲段"]

# -- perfi37 (the owner's check reads the number's records by ``carrying``) -------------------------------

def _patients(http: TestClient, system: str, value: str) -> list[dict[str, Any]]:
    from engine.repository.search import token_value

    found = http.get("/fhir/Patient", params={"identifier": token_value(system, value)})
    assert found.status_code == 200, found.text
    return [e["resource"] for e in found.json().get("entry") or ()]


def test_the_owners_check_finds_a_member_record_of_a_number_holding_search_characters(
        both: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """The owner's number holds a comma and a dollar (a search would read ``,`` as "or" unescaped): FNZYY's
    record of it beside its own, then FNXRMYY restating the number as another person over HL7 -- the owner's
    check (now the store's ``carrying``, the tokens passed unescaped) finds FNZYY's record and re-keys it to
    FNZYY's kept-apart system; a search by FNXRMYY's number then answers one person."""
    from tests.test_mfix34_members import APART, FNZYY_MRN, _fnzyy
    from tests.test_rvidentity32_probes import MRN, adt

    eng, http = both
    number = "RV,38$B"
    acks = send(eng, adt("RB1A", f"{number}^^^FNXRMYY^MR", "冯^三", "19610101", "M").encode(),
                _fnzyy(adt("RB1B", f"ZRB1^^^FNZYY^MR~{number}^^^FNXRMYY^MR", "冯^三", "19610101", "M")).encode())
    assert all(b"MSA|AA|" in a for a in acks), acks
    (member,) = _patients(http, FNZYY_MRN, "ZRB1")
    assert f"{MRN}|{number}" in {f"{i.get('system')}|{i.get('value')}" for i in member["identifier"]}
    (ack,) = send(eng, adt("RB1C", f"{number}^^^FNXRMYY^MR", "陈^四", "19920303", "F", "A08").encode())
    assert b"MSA|AA|RB1C" in ack and b"|W|" in ack, ack
    (after,) = _patients(http, FNZYY_MRN, "ZRB1")
    tokens = {f"{i.get('system')}|{i.get('value')}" for i in after["identifier"]}
    assert f"{APART}|{number}" in tokens and f"{MRN}|{number}" not in tokens, tokens
    assert [p["gender"] for p in _patients(http, MRN, number)] == ["female"]


# -- perfx37 (a put's rows in multi-row INSERT statements) ------------------------------------------------

def _panel(control: str, n: int) -> bytes:
    """FNXRMYY's ORU of ``n`` numeric results, each its own local code (one put of ~n Observations and
    their index rows: more than every statement size, 64 + 16 + 4 + the rest one a row)."""
    obx = "".join(f"OBX|{i}|NM|RB{i:03d}^项目{i}^L||{i}.5|mmol/L|||||F|||20261201090000\r" for i in range(1, n + 1))
    return (f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201091500||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
            "PID|1||RBP38^^^FNXRMYY^MR||王^五||19850412|M\r"
            "OBR|1|ORBP38|LRBP38|PNL^大套餐^L|||20261201083000||||G|||20261201083500|BLD"
            "||||||||20261201091000|||F\r" + obx).encode()


def test_a_put_of_many_rows_is_searchable_row_for_row_and_a_resend_writes_nothing(
        both: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """89 results in one message (64 + 16 + 4 + 5 rows of one table, the rest one a row): each is found by its
    own code, the patient's results are 89, and the same results resent (a new MSH-10) write no version."""
    eng, http = both
    n = 89
    (ack,) = send(eng, _panel("RBP1", n))
    assert b"MSA|AA|RBP1" in ack, ack
    (patient,) = _patients(http, "urn:huren:mrn:FNXRMYY", "RBP38")
    found = http.get("/fhir/Observation", params={"subject": f"Patient/{patient['id']}", "_count": "200"}).json()
    assert found.get("total") == n and len(found.get("entry") or ()) == n, found.get("total")
    versions: dict[str, str] = {}
    for i in (1, 4, 16, 17, 64, 65, 80, 81, 84, 85, 89):
        hit = http.get("/fhir/Observation", params={"code": f"RB{i:03d}", "subject": f"Patient/{patient['id']}"}).json()
        (entry,) = hit.get("entry") or ()
        assert entry["resource"]["valueQuantity"]["value"] == i + 0.5
        versions[entry["resource"]["id"]] = entry["resource"]["meta"]["versionId"]
    (ack,) = send(eng, _panel("RBP2", n))
    assert b"MSA|AA|RBP2" in ack, ack
    again = http.get("/fhir/Observation", params={"subject": f"Patient/{patient['id']}", "_count": "200"}).json()
    assert again.get("total") == n
    assert {e["resource"]["id"]: e["resource"]["meta"]["versionId"] for e in again["entry"]
            if e["resource"]["id"] in versions} == versions


# -- linkfix37 (a long ``$in`` bound as one JSON array on SQLite) -----------------------------------------

def test_a_long_in_answers_each_value_as_a_short_one_does(store: Any) -> None:
    """Values a JSON array must carry exactly (quotes, backslashes, a non-BMP character, a float, a large int,
    a numeric string beside its number): a ``$in`` of more than ``IN_CHUNK`` values finds what the same values
    asked in short ``$in``s find, on each backend."""
    from engine.repository.sqlite_store import IN_CHUNK

    odd: list[Any] = ['引"号', "back\\slash", "😀表情", "tab\there", 1.5, 3, "3", 2**53 + 1, -7, "", "0.10", 0.1]
    coll = store.collection("rv38b")
    coll.insert_many([{"_id": f"v{i:02d}", "v": v} for i, v in enumerate(odd)])
    filler = [f"none{i}" for i in range(IN_CHUNK)]
    long = coll.find({"v": {"$in": [*filler, *odd]}}, sort=[("_id", 1)])
    short = sorted((d for v in odd for d in coll.find({"v": {"$in": [v]}})), key=lambda d: d["_id"])
    assert [d["_id"] for d in long] == [d["_id"] for d in short] == [f"v{i:02d}" for i in range(len(odd))]
    assert coll.count({"v": {"$in": [*filler, 3]}}) == coll.count({"v": {"$in": [3]}}) == 1
