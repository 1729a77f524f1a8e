"""rvmfix34: probes of mfix34's re-key of a member's number its own record contradicts.

FNXRMYY registers 冯三 under <n>; FNZYY files its own patient Z<n> with <n>^^^FNXRMYY beside (a referral);
FNXRMYY's HIS restates <n> as 陈四. mfix34 re-keys the number on FNZYY's record under
``urn:huren:mrn:FNZYY:FNXRMYY`` when FNZYY next speaks. Probed: the history the re-key leaves, the record
otherwise untouched, the number moving back once the member agrees (after a result did the re-key), the
member's person's $everything, and what a clinician's search by the member's MRN finds before FNZYY speaks
again. Real HL7 through ``POST /hl7v2`` into the real store on each backend (SQLite, mongomock)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from tests.hl7_calls import err_lines, post
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_mfix34_members import APART, FNZYY_MRN, _fnzyy, _stale, _tokens, _warned, both  # noqa: F401
from tests.test_rvidentity32_probes import MRN, adt, merge, oru, patients

Both = tuple[Engine, TestClient, dict[str, str]]


def _ids(http: TestClient, token: str, headers: dict[str, str]) -> list[str]:
    found = http.get("/fhir/Patient", params={"identifier": token}, headers=headers)
    assert found.status_code == 200, found.text
    return [e["resource"]["id"] for e in found.json().get("entry", [])]


def test_the_rekeying_result_leaves_history_and_changes_the_identifier_alone(both: Both) -> None:  # noqa: F811
    """The result's re-key is one new version of FNZYY's record: the version before it still reads the
    number under FNXRMYY's system (history is not rewritten), and the new version differs from it in
    ``identifier`` alone, the entry under the kept-apart system, nothing else of the record gone."""
    _, http, _ = both
    pid3 = _stale(http, "RV1")
    (before,) = patients(http, f"{FNZYY_MRN}|ZRV1")
    _warned(post(http, _fnzyy(oru("RV1D", pid3, "冯^三", "19610101", "M", "RVX1", app="HIS"))), "RV1")
    (after,) = patients(http, f"{FNZYY_MRN}|ZRV1")
    assert int(after["meta"]["versionId"]) == int(before["meta"]["versionId"]) + 1, (before["meta"], after["meta"])
    old = http.get(f"/fhir/Patient/{after['id']}/_history/{before['meta']['versionId']}")
    assert old.status_code == 200, old.text
    assert f"{MRN}|RV1" in _tokens(old.json()) and f"{APART}|RV1" not in _tokens(old.json())
    history = http.get(f"/fhir/Patient/{after['id']}/_history")
    assert history.status_code == 200, history.text
    assert len(history.json().get("entry", [])) == int(after["meta"]["versionId"])
    strip = {"meta", "identifier", "text"}
    assert {k: v for k, v in after.items() if k not in strip} == {k: v for k, v in before.items() if k not in strip}
    assert len(after["identifier"]) == len(before["identifier"]), (before["identifier"], after["identifier"])


def test_after_a_result_rekeyed_the_number_moves_back_once_the_member_agrees(both: Both) -> None:  # noqa: F811
    """A result re-keys (the record's identifier written by the ORU alone); FNXRMYY's HIS then restates the
    number as 冯三 again; FNZYY's next A08 names the same person as FNXRMYY's record: no W, the number under
    FNXRMYY's MRN system again and not also under the kept-apart one (one number, one entry)."""
    _, http, clinician = both
    pid3 = _stale(http, "RV2")
    _warned(post(http, _fnzyy(oru("RV2D", pid3, "冯^三", "19610101", "M", "RVX2", app="HIS"))), "RV2")
    assert ack_code_of(post(http, adt("RV2E", "RV2^^^FNXRMYY^MR", "冯^三", "19610101", "M", "A08"))) == "AA"
    ack = post(http, _fnzyy(adt("RV2F", pid3, "冯^三", "19610101", "M", "A08")))
    assert ack_code_of(ack) == "AA" and not err_lines(ack), ack
    (own,) = patients(http, f"{FNZYY_MRN}|ZRV2")
    assert f"{MRN}|RV2" in _tokens(own) and f"{APART}|RV2" not in _tokens(own), own
    assert own["id"] in _ids(http, f"{MRN}|RV2", clinician)


def test_the_same_a08_twice_after_a_result_writes_no_new_version(both: Both) -> None:  # noqa: F811
    """A result re-keys; the A08 restating the record (W) then the same A08 again: both AA with the one W,
    and the second writes nothing new to the record (a resend is no change)."""
    _, http, _ = both
    pid3 = _stale(http, "RV3")
    _warned(post(http, _fnzyy(oru("RV3D", pid3, "冯^三", "19610101", "M", "RVX3", app="HIS"))), "RV3")
    a08 = _fnzyy(adt("RV3E", pid3, "冯^三", "19610101", "M", "A08"))
    _warned(post(http, a08), "RV3")
    (first,) = patients(http, f"{FNZYY_MRN}|ZRV3")
    _warned(post(http, a08.replace("|RV3E|", "|RV3F|")), "RV3")
    (second,) = patients(http, f"{FNZYY_MRN}|ZRV3")
    assert _tokens(second) == _tokens(first) and f"{MRN}|RV3" not in _tokens(second), second
    assert second["meta"]["versionId"] == first["meta"]["versionId"], (first["meta"], second["meta"])


def test_the_members_persons_everything_holds_none_of_the_senders_patient(both: Both) -> None:  # noqa: F811
    """陈四's $everything (FNXRMYY's record of the number): none of FNZYY's 冯三's record or results, before or
    after the re-key."""
    eng, http, _ = both
    pid3 = _stale(http, "RV4")
    _warned(post(http, _fnzyy(oru("RV4D", pid3, "冯^三", "19610101", "M", "RVX4", app="HIS"))), "RV4")
    (own,) = patients(http, f"{FNZYY_MRN}|ZRV4")
    theirs = [i for i in _ids(http, f"{MRN}|RV4", {}) if i != own["id"]]
    assert len(theirs) == 1
    everything = http.get(f"/fhir/Patient/{theirs[0]}/$everything")
    assert everything.status_code == 200, everything.text
    refs = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in everything.json().get("entry", [])}
    subjects = {(e["resource"].get("subject") or {}).get("reference") for e in everything.json().get("entry", [])}
    assert f"Patient/{own['id']}" not in refs and f"Patient/{own['id']}" not in subjects, refs


def test_a_search_by_the_members_mrn_after_its_restatement_finds_its_person_only(both: Both) -> None:  # noqa: F811
    """FNZYY filed 冯三's result under its record carrying RV5^^^FNXRMYY (the same person then). FNXRMYY's HIS
    restates RV5 as 陈四 (accepted). FNZYY says nothing more. A clinician's ``Patient?identifier=`` and
    ``Observation?subject:Patient.identifier=`` by FNXRMYY's RV5 should find 陈四 and 陈四's results only:
    the engine knows at the restatement that the record FNZYY keeps carrying RV5 is another person's (it
    re-keys the same record, with no new fact, the moment FNZYY next speaks). Today both are returned."""
    _, http, clinician = both
    assert ack_code_of(post(http, adt("RV5A", "RV5^^^FNXRMYY^MR", "冯^三", "19610101", "M"))) == "AA"
    pid3 = "ZRV5^^^FNZYY^MR~RV5^^^FNXRMYY^MR"
    assert ack_code_of(post(http, _fnzyy(adt("RV5B", pid3, "冯^三", "19610101", "M")))) == "AA"
    assert ack_code_of(post(http, _fnzyy(oru("RV5C", pid3, "冯^三", "19610101", "M", "RVX5", app="HIS")))) == "AA"
    assert ack_code_of(post(http, adt("RV5D", "RV5^^^FNXRMYY^MR", "陈^四", "19920303", "F", "A08"))) == "AA"
    (own,) = patients(http, f"{FNZYY_MRN}|ZRV5")
    found = _ids(http, f"{MRN}|RV5", clinician)
    obs = http.get("/fhir/Observation", params={"subject:Patient.identifier": f"{MRN}|RV5"}, headers=clinician)
    assert obs.status_code == 200, obs.text
    subjects = {e["resource"]["subject"]["reference"] for e in obs.json().get("entry", [])}
    assert own["id"] not in found and f"Patient/{own['id']}" not in subjects, (found, subjects)


@pytest.mark.parametrize("rekeyed_by", ["ORU", "A08"])
def test_the_senders_a08_without_the_number_takes_the_kept_apart_entry_off(both: Both, rekeyed_by: str) -> None:  # noqa: F811
    """Once re-keyed (by a result, whose ORU wrote the identifier, or by an A08), FNZYY's HIS corrects its
    master index and restates the record without FNXRMYY's number: the registration states the identifiers
    in full, so the kept-apart entry goes as well (no W: the PID names no member's number); the record
    keeps FNZYY's MRN."""
    _, http, _ = both
    n = f"RV6{rekeyed_by[0]}"
    pid3 = _stale(http, n)
    first = (oru(f"{n}D", pid3, "冯^三", "19610101", "M", f"RVX6{rekeyed_by[0]}", app="HIS") if rekeyed_by == "ORU"
             else adt(f"{n}D", pid3, "冯^三", "19610101", "M", "A08"))
    _warned(post(http, _fnzyy(first)), n)
    ack = post(http, _fnzyy(adt(f"{n}E", f"Z{n}^^^FNZYY^MR", "冯^三", "19610101", "M", "A08")))
    assert ack_code_of(ack) == "AA" and not err_lines(ack), ack
    (own,) = patients(http, f"{FNZYY_MRN}|Z{n}")
    assert _tokens(own) == {f"{FNZYY_MRN}|Z{n}"}, own


def test_a_resident_of_the_members_record_sees_none_of_the_senders_patient(both: Both) -> None:  # noqa: F811
    """陈四, signed in to FNXRMYY's record of the number (a resident's token), searches by her own record
    number: her record only, before FNZYY speaks again (its record still carrying the number) and after the
    re-key; FNZYY's 冯三 and his results are never hers to read."""
    eng, http, _ = both
    pid3 = _stale(http, "RV7")
    assert ack_code_of(post(http, _fnzyy(oru("RV7C", pid3, "冯^三", "19610101", "M", "RVX7A", app="HIS")))) in {"AA"}
    (own,) = patients(http, f"{FNZYY_MRN}|ZRV7")
    (theirs,) = [i for i in _ids(http, f"{MRN}|RV7", {}) if i != own["id"]]
    token, _ = eng.auth.issue_token(subject="person-rv7", kind="patient", client_id="phr",
                                    scopes=["patient/*.rs"], patient=theirs)
    me = {"Authorization": f"Bearer {token}"}
    for step in ("before", "after"):
        if step == "after":
            _warned(post(http, _fnzyy(oru("RV7D", pid3, "冯^三", "19610101", "M", "RVX7B", app="HIS"))), "RV7")
        assert _ids(http, f"{MRN}|RV7", me) == [theirs], step
        obs = http.get("/fhir/Observation", params={"subject:Patient.identifier": f"{MRN}|RV7"}, headers=me)
        assert obs.status_code == 200 and not obs.json().get("entry"), (step, obs.text)
        assert http.get(f"/fhir/Patient/{own['id']}", headers=me).status_code in {403, 404}, step


def test_the_senders_merge_does_not_carry_the_stale_number_onto_the_survivor(both: Both) -> None:  # noqa: F811
    """FNZYY's record Z<n> carries FNXRMYY's <n> (冯三's then, 陈四's now); FNZYY registers 冯三 again as ZB<n>
    and merges Z<n> into it (A40, PID-3 the survivor's own MRN alone). A clinician's search by FNXRMYY's <n>
    must not find the survivor: the merge names no member's number, and the number it would carry over is
    another person's at FNXRMYY."""
    _, http, clinician = both
    _stale(http, "RV8")
    assert ack_code_of(post(http, _fnzyy(adt("RV8D", "ZBRV8^^^FNZYY^MR", "冯^三", "19610101", "M")))) == "AA"
    ack = post(http, _fnzyy(merge("RV8E", "ZBRV8^^^FNZYY^MR", "冯^三", "19610101", "M", "ZRV8^^^FNZYY^MR")))
    assert ack_code_of(ack) == "AA", ack
    (survivor,) = [p for p in patients(http, f"{FNZYY_MRN}|ZBRV8") if p.get("active") is not False]
    found = _ids(http, f"{MRN}|RV8", clinician)
    assert survivor["id"] not in found, (survivor["identifier"], found)


def test_once_the_member_agrees_the_senders_next_result_puts_the_number_back(both: Both) -> None:  # noqa: F811
    """A result re-keyed FNZYY's record (FNXRMYY's <n> was 陈四's there); FNXRMYY's HIS takes its correction back
    (<n> is 冯三 again). FNZYY's next message is a result for 冯三 listing <n>: no W (the member's record is
    the same person), and the re-key is undone as a result did it -- the number under FNXRMYY's MRN system
    again, so a search by it finds FNZYY's record of 冯三 as before the correction."""
    _, http, clinician = both
    pid3 = _stale(http, "RV9")
    _warned(post(http, _fnzyy(oru("RV9D", pid3, "冯^三", "19610101", "M", "RVX9A", app="HIS"))), "RV9")
    assert ack_code_of(post(http, adt("RV9E", "RV9^^^FNXRMYY^MR", "冯^三", "19610101", "M", "A08"))) == "AA"
    ack = post(http, _fnzyy(oru("RV9F", pid3, "冯^三", "19610101", "M", "RVX9B", app="HIS")))
    assert ack_code_of(ack) == "AA" and not err_lines(ack), ack
    (own,) = patients(http, f"{FNZYY_MRN}|ZRV9")
    assert own["id"] in _ids(http, f"{MRN}|RV9", clinician), own["identifier"]


def test_one_batch_two_results_rekey_once_and_both_are_filed(both: Both) -> None:  # noqa: F811
    """One batch of FNZYY's two results for its stale record (each listing FNXRMYY's number): both AA with
    the one W each, both filed under FNZYY's record, the record re-keyed once (one new version), and
    FNXRMYY's MRN finds none of them."""
    _, http, clinician = both
    pid3 = _stale(http, "RW1")
    (before,) = patients(http, f"{FNZYY_MRN}|ZRW1")
    body = ("FHS|^~\\&|HIS|FNZYY\rBHS|^~\\&|HIS|FNZYY\r"
            + _fnzyy(oru("RW1D", pid3, "冯^三", "19610101", "M", "RWX1A", app="HIS"))
            + _fnzyy(oru("RW1E", pid3, "冯^三", "19610101", "M", "RWX1B", app="HIS"))
            + "BTS|2\rFTS|1\r")
    ack = post(http, body)
    assert b"MSA|AA|RW1D" in ack and b"MSA|AA|RW1E" in ack, ack
    assert ack.count(b"|PID^1^3^2|205") == 2 and b"|E|" not in ack, ack
    (after,) = patients(http, f"{FNZYY_MRN}|ZRW1")
    assert int(after["meta"]["versionId"]) == int(before["meta"]["versionId"]) + 1, after["meta"]
    assert f"{APART}|RW1" in _tokens(after) and f"{MRN}|RW1" not in _tokens(after), after
    obs = http.get("/fhir/Observation", params={"subject:Patient.identifier": f"{FNZYY_MRN}|ZRW1"}, headers=clinician)
    codes = {c["code"] for e in obs.json().get("entry", []) for c in e["resource"]["code"]["coding"]}
    assert {"RWX1A", "RWX1B"} <= codes, codes
    mine = http.get("/fhir/Observation", params={"subject:Patient.identifier": f"{MRN}|RW1"}, headers=clinician)
    assert not mine.json().get("entry"), mine.text


def _names_number(value: object, system: str, number: str) -> bool:
    """Whether ``value`` (a resource, recursively) holds an identifier ``system|number``."""
    if isinstance(value, dict):
        if value.get("system") == system and value.get("value") == number:
            return True
        return any(_names_number(v, system, number) for v in value.values())
    if isinstance(value, list):
        return any(_names_number(v, system, number) for v in value)
    return False


def test_nothing_the_rekeying_result_made_answers_the_members_mrn(both: Both) -> None:  # noqa: F811
    """Every resource FNZYY's re-keying result made or wrote (the message store's record of it: the
    Observation, the report, the visit, the Patient) holds FNXRMYY's number under FNXRMYY's MRN system
    nowhere (a logical reference's identifier, a visit's identifier): none answers the member's MRN."""
    eng, http, _ = both
    pid3 = _stale(http, "RW2")
    _warned(post(http, _fnzyy(oru("RW2D", pid3, "冯^三", "19610101", "M", "RWX2", app="HIS"))), "RW2")
    doc = eng.ingestor.messages.get(message_id("FNZYY", "RW2D"))
    assert doc is not None and doc.get("resources"), doc
    made = doc["resources"]
    assert any(r.startswith("Observation/") for r in made) and any(r.startswith("Patient/") for r in made), made
    for ref in made:
        got = http.get(f"/fhir/{ref}")
        assert got.status_code == 200, (ref, got.text)
        assert not _names_number(got.json(), MRN, "RW2"), (ref, got.json())
