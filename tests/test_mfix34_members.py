"""mfix34: another member's number that the member's own record contradicts stops answering the member's MRN.

FNXRMYY registers 冯三 under its RS<n>. FNZYY files its own patient with RS<n>^^^FNXRMYY beside its own MRN
(a referral: the same person then). FNXRMYY's registering HIS later restates RS<n> as 陈四. FNZYY's next
message (a result or an ADT) meets its own record carrying FNXRMYY's number for another person than
FNXRMYY's record: the record keeps the number exactly as sent, but under FNZYY's kept-apart system
(``urn:huren:mrn:FNZYY:FNXRMYY``), so a search by FNXRMYY's MRN (a clinician's, over ``/fhir``) finds
FNXRMYY's person and its results only (rvmemfix34 finding 1). Also: the W and the refusal locate the
PID-3 repetition (finding 4), a name several members declare is warned of at PID-3.4 (finding 2).
Real HL7 over ``POST /hl7v2`` into the real store on each backend (SQLite, mongomock)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.hl7_calls import err_lines, post
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_rvidentity32_probes import MRN, adt, oru, patients
from tests.test_rvlast34_probes import _site_sharing_his

FNZYY_MRN = "urn:huren:mrn:FNZYY"
APART = "urn:huren:mrn:FNZYY:FNXRMYY"  # FNZYY's kept-apart system for FNXRMYY's numbers


@pytest.fixture(scope="module")
def both(module_eng: Engine) -> Iterator[tuple[Engine, TestClient, dict[str, str]]]:  # noqa: F811
    """The engine, a client holding a system token (the feed's tests), and a clinician's headers."""
    with TestClient(create_app(module_eng)) as client:
        client.headers["Authorization"] = "Bearer " + module_eng.auth.issue_system_token("mfix34", "system/*.cruds")
        token, _ = module_eng.auth.issue_token(subject="dr-mfix34", kind="user", client_id="ward-mfix34",
                                               scopes=["user/Patient.rs", "user/Observation.rs"])
        yield module_eng, client, {"Authorization": f"Bearer {token}"}


def _fnzyy(message: str) -> str:
    return message.replace("|FNXRMYY|HUREN|", "|FNZYY|HUREN|", 1)


def _tokens(patient: dict) -> set[str]:
    return {f"{i.get('system')}|{i.get('value')}" for i in patient.get("identifier") or ()}


def _stale(http: TestClient, n: str) -> str:
    """FNXRMYY: 冯三 under <n>; FNZYY: its own Z<n> with <n> beside (the same person); FNXRMYY's record of <n>
    then restated as 陈四 over ``/fhir`` (a PUT by a system client), which -- unlike FNXRMYY's HL7
    restatement, which re-keys FNZYY's record at once (ownfix34) -- leaves FNZYY's record carrying the number
    under FNXRMYY's MRN: the stale record FNZYY's next message re-keys (as one stored before ownfix34).
    Returns FNZYY's PID-3 (its own MRN first, FNXRMYY's number second)."""
    assert ack_code_of(post(http, adt(f"{n}A", f"{n}^^^FNXRMYY^MR", "冯^三", "19610101", "M"))) == "AA"
    pid3 = f"Z{n}^^^FNZYY^MR~{n}^^^FNXRMYY^MR"
    assert ack_code_of(post(http, _fnzyy(adt(f"{n}B", pid3, "冯^三", "19610101", "M")))) == "AA"
    (own,) = patients(http, f"{FNZYY_MRN}|Z{n}")
    (theirs,) = [p for p in patients(http, f"{MRN}|{n}") if p["id"] != own["id"]]
    restated = {k: v for k, v in theirs.items() if k not in ("meta", "text")}
    restated.update(name=[{"family": "陈", "given": ["四"], "text": "陈四"}], gender="female", birthDate="1992-03-03")
    put = http.put(f"/fhir/Patient/{theirs['id']}", json=restated)
    assert put.status_code in (200, 201), put.text
    return pid3


def _warned(ack: bytes, n: str, where: str = "PID^1^3^2") -> str:
    """AA, exactly one ERR: W 205 at ``where``, naming nothing of FNXRMYY's (institution, number, person)."""
    assert ack_code_of(ack) == "AA", ack
    (err,) = err_lines(ack)
    fields = err.split("|")
    assert fields[2] == where and fields[3].startswith("205") and fields[4] == "W", err
    for word in ("FNXRMYY", f"{n}^", f"|{n}|", "陈", "19920303"):
        assert word not in err, (word, err)
    return err


def _observations(http: TestClient, token: str, headers: dict[str, str]) -> set[str]:
    found = http.get("/fhir/Observation", params={"subject:Patient.identifier": token}, headers=headers)
    assert found.status_code == 200, found.text
    return {e["resource"]["subject"]["reference"] for e in found.json().get("entry", [])}


def test_a_result_rekeys_the_stale_number_and_the_members_mrn_finds_the_members_person_only(
        both: tuple[Engine, TestClient, dict[str, str]]) -> None:
    """FNZYY's result for its own patient meets its record carrying FNXRMYY's number, now 陈四's there: filed
    under FNZYY's record, W at PID-3's second repetition; the record's entry keeps value, type and assigner as
    sent under FNZYY's kept-apart system, every other identifier and particular as stored. A clinician's
    search by FNXRMYY's MRN then finds 陈四 and 陈四's results only; FNZYY's MRN still finds FNZYY's patient's.
    The next result finds the number re-keyed already: the same W, the record not written again."""
    _, http, clinician = both
    pid3 = _stale(http, "MK1")
    assert ack_code_of(post(http, oru("MK1D", "MK1^^^FNXRMYY^MR", "陈^四", "19920303", "F", "MFX1A"))) == "AA"
    (before,) = patients(http, f"{FNZYY_MRN}|ZMK1")
    (theirs,) = [p for p in patients(http, f"{MRN}|MK1") if p["id"] != before["id"]]
    _warned(post(http, _fnzyy(oru("MK1E", pid3, "冯^三", "19610101", "M", "MFX1B", app="HIS"))), "MK1")
    (after,) = patients(http, f"{FNZYY_MRN}|ZMK1")
    assert after["id"] == before["id"]
    assert _tokens(after) == (_tokens(before) - {f"{MRN}|MK1"}) | {f"{APART}|MK1"}, after
    (old,) = [i for i in before["identifier"] if i.get("system") == MRN]
    (kept,) = [i for i in after["identifier"] if i.get("system") == APART]
    assert kept == {**old, "system": APART}, (old, kept)
    for element in ("name", "gender", "birthDate", "managingOrganization", "active"):
        assert after.get(element) == before.get(element), element
    # a clinician's search by FNXRMYY's MRN: FNXRMYY's person and its results only
    people = http.get("/fhir/Patient", params={"identifier": f"{MRN}|MK1"}, headers=clinician)
    assert people.status_code == 200, people.text
    assert [e["resource"]["id"] for e in people.json().get("entry", [])] == [theirs["id"]]
    assert _observations(http, f"{MRN}|MK1", clinician) == {f"Patient/{theirs['id']}"}
    assert _observations(http, f"{FNZYY_MRN}|ZMK1", clinician) == {f"Patient/{after['id']}"}
    assert _observations(http, f"{APART}|MK1", clinician) == {f"Patient/{after['id']}"}
    # the next result: the record already re-keyed, nothing written to it
    _warned(post(http, _fnzyy(oru("MK1F", pid3, "冯^三", "19610101", "M", "MFX1C", app="HIS"))), "MK1")
    (again,) = patients(http, f"{FNZYY_MRN}|ZMK1")
    assert again["meta"]["versionId"] == after["meta"]["versionId"], again
    assert _observations(http, f"{MRN}|MK1", clinician) == {f"Patient/{theirs['id']}"}


def test_an_adt_restating_the_stale_number_rekeys_it_and_is_answered_alike_after_a_result_did(
        both: tuple[Engine, TestClient, dict[str, str]]) -> None:
    """FNZYY's A08 restating its record with FNXRMYY's number: the record re-keyed in the Patient it states
    (W); sent again, the same answer (no AA then AE: the number is carried, kept apart). After a result
    re-keyed another record, an A08 of that one is answered alike too."""
    _, http, clinician = both
    pid3 = _stale(http, "MK2")
    for control in ("MK2D", "MK2E"):
        _warned(post(http, _fnzyy(adt(control, pid3, "冯^三", "19610101", "M", "A08"))), "MK2")
        (own,) = patients(http, f"{FNZYY_MRN}|ZMK2")
        assert f"{MRN}|MK2" not in _tokens(own) and f"{APART}|MK2" in _tokens(own), own
    pid3 = _stale(http, "MK3")
    _warned(post(http, _fnzyy(oru("MK3D", pid3, "冯^三", "19610101", "M", "MFX3", app="HIS"))), "MK3")
    _warned(post(http, _fnzyy(adt("MK3E", pid3, "冯^三", "19610101", "M", "A08"))), "MK3")
    people = http.get("/fhir/Patient", params={"identifier": f"{MRN}|MK3"}, headers=clinician).json()
    assert [e["resource"]["gender"] for e in people.get("entry", [])] == ["female"]


def test_the_number_answers_the_members_mrn_again_once_the_member_agrees(
        both: tuple[Engine, TestClient, dict[str, str]]) -> None:
    """The re-key follows the member's record, it does not erase: FNXRMYY's HIS restates the number as 冯三
    again (its correction taken back); FNZYY's next A08 names the same person as FNXRMYY's record: no W, and
    the number is under FNXRMYY's MRN system again, as sent."""
    _, http, _ = both
    pid3 = _stale(http, "MK4")
    _warned(post(http, _fnzyy(adt("MK4D", pid3, "冯^三", "19610101", "M", "A08"))), "MK4")
    assert ack_code_of(post(http, adt("MK4E", "MK4^^^FNXRMYY^MR", "冯^三", "19610101", "M", "A08"))) == "AA"
    ack = post(http, _fnzyy(adt("MK4F", pid3, "冯^三", "19610101", "M", "A08")))
    assert ack_code_of(ack) == "AA" and not err_lines(ack), ack
    (own,) = patients(http, f"{FNZYY_MRN}|ZMK4")
    assert f"{MRN}|MK4" in _tokens(own) and f"{APART}|MK4" not in _tokens(own), own


def test_one_batch_the_result_then_the_registration_restating_it_as_singly(
        both: tuple[Engine, TestClient, dict[str, str]]) -> None:
    """One batch: FNZYY's result (re-keys the stored record), then FNZYY's A08 still listing the number: the
    A08 reads the record as the result leaves it (carrying the number kept apart) -- AA with the W, as it
    is sent alone after the result."""
    _, http, clinician = both
    pid3 = _stale(http, "MK5")
    body = ("FHS|^~\\&|HIS|FNZYY\rBHS|^~\\&|HIS|FNZYY\r"
            + _fnzyy(oru("MK5D", pid3, "冯^三", "19610101", "M", "MFX5", app="HIS"))
            + _fnzyy(adt("MK5E", pid3, "冯^三", "19610101", "M", "A08"))
            + "BTS|2\rFTS|1\r")
    ack = post(http, body)
    assert b"MSA|AA|MK5D" in ack and b"MSA|AA|MK5E" in ack, ack
    assert ack.count(b"|PID^1^3^2|205") == 2, ack
    (own,) = patients(http, f"{FNZYY_MRN}|ZMK5")
    assert f"{MRN}|MK5" not in _tokens(own) and f"{APART}|MK5" in _tokens(own), own
    people = http.get("/fhir/Patient", params={"identifier": f"{MRN}|MK5"}, headers=clinician).json()
    assert [e["resource"]["gender"] for e in people.get("entry", [])] == ["female"]


def test_the_location_names_the_repetition_holding_the_number(
        both: tuple[Engine, TestClient, dict[str, str]]) -> None:
    """The member's number third in PID-3: the W at ``PID^1^3^3``; first (the own MRN listed after it):
    ``PID^1^3`` (ERL.4's default, the first); an A04 that would newly put it on the record, second:
    refused at ``PID^1^3^2``."""
    _, http, _ = both
    assert ack_code_of(post(http, adt("MK6A", "MK6^^^FNXRMYY^MR", "郑^一", "19600101", "M"))) == "AA"
    third = "ZMK6^^^FNZYY^MR~L6^^^LIS^PI~MK6^^^FNXRMYY^MR"
    _warned(post(http, _fnzyy(oru("MK6B", third, "王^二", "19900202", "F", "MFX6A", app="HIS"))), "MK6",
            "PID^1^3^3")
    first = "MK6^^^FNXRMYY^MR~ZMK7^^^FNZYY^MR"
    _warned(post(http, _fnzyy(oru("MK6C", first, "王^二", "19900202", "F", "MFX6B", app="HIS"))), "MK6", "PID^1^3")
    ack = post(http, _fnzyy(adt("MK6D", "ZMK8^^^FNZYY^MR~MK6^^^FNXRMYY^MR", "王^二", "19900202", "F")))
    assert ack_code_of(ack) == "AE", ack
    (err,) = err_lines(ack)
    assert err.split("|")[2] == "PID^1^3^2" and "take the number off" in err, err


def test_a_name_several_members_declare_is_warned_at_pid3_4(backend_settings: Settings, tmp_path: Path) -> None:
    """FNXRMYY and FNZYY both declare ``mrn_authorities: [HIS]``: FNYLWSY's ``RH9^^^HIS^MR`` (second in PID-3)
    is kept apart under FNYLWSY, W at ``PID^1^3^2^4`` (the authority) -- the sender told that the name says
    no institution. A declaring member's own ``RH9^^^HIS^MR`` is its MRN: no W."""
    site = _site_sharing_his(tmp_path)
    with Engine(backend_settings.with_(site=site)) as eng, TestClient(create_app(eng)) as http:
        http.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("mfix34", "system/*.cruds")
        own = post(http, adt("SH9A", "RH9^^^HIS^MR", "郑^一", "19600101", "M"))
        assert ack_code_of(own) == "AA" and not err_lines(own), own
        third = adt("SH9B", "Y9^^^FNYLWSY^MR~RH9^^^HIS^MR", "卫^六", "19950606", "F")
        ack = post(http, third.replace("|FNXRMYY|HUREN|", "|FNYLWSY|HUREN|", 1))
        assert ack_code_of(ack) == "AA", ack
        (err,) = err_lines(ack)
        assert err.split("|")[2] == "PID^1^3^2^4" and err.split("|")[4] == "W", err
        assert "several member institutions" in err and "FNXRMYY" not in err and "FNZYY" not in err, err
        (made,) = patients(http, "urn:huren:mrn:FNYLWSY|Y9")
        assert "urn:huren:mrn:FNYLWSY:HIS|RH9" in _tokens(made), made
        assert [p["gender"] for p in patients(http, f"{MRN}|RH9")] == ["male"]
