"""rvid35: probes of idfix34, mfix34, ownfix34 (another member's number re-keyed) and locfix34, deptfix34 (wards).

Identity: FNXRMYY registers 冯三 under its number <n>; FNZYY files its own patient Z<n> with <n>^^^FNXRMYY
beside (a referral, the same person then); FNXRMYY's HIS restates <n> as 陈四 (accepted, W), which re-keys
FNZYY's record at once (ownfix34): the number kept under ``urn:huren:mrn:FNZYY:FNXRMYY``. The probes drive
what comes after -- the owner agreeing again, the member's own HIS speaking, merges naming the number,
searches, ``$everything``, a resident's compartment, the member's fidelity row.

Wards: a ward named by PL-9 once, then sent by code (locfix34's ``displays``), at two hospitals with the
same ward code, and the beds a code-only transfer makes.

Real HL7 over ``POST /hl7v2`` into the real store on each backend (SQLite, mongomock), read over ``/fhir``
and ``/admin`` through FastAPI's TestClient. A probe that shows a defect is a strict xfail naming it."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from tests.hl7_calls import err_lines, post
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_mfix34_members import APART, FNZYY_MRN, _fnzyy, _tokens, both  # noqa: F401
from tests.test_rvidentity32_probes import MRN, adt, merge, oru, patients

Both = tuple[Engine, TestClient, dict[str, str]]


def _rekeyed(http: TestClient, n: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """冯三 at FNXRMYY under <n>, FNZYY's Z<n> carrying <n> beside, FNZYY's result for him, then FNXRMYY's A08
    restating <n> as 陈四 (AA W): FNZYY's record re-keyed. Returns (FNZYY's PID-3, FNZYY's record, 陈四's)."""
    assert ack_code_of(post(http, adt(f"{n}A", f"{n}^^^FNXRMYY^MR", "冯^三", "19610101", "M"))) == "AA"
    pid3 = f"Z{n}^^^FNZYY^MR~{n}^^^FNXRMYY^MR"
    assert ack_code_of(post(http, _fnzyy(adt(f"{n}B", pid3, "冯^三", "19610101", "M")))) == "AA"
    assert ack_code_of(post(http, _fnzyy(oru(f"{n}R", f"Z{n}^^^FNZYY^MR", "冯^三", "19610101", "M",
                                             f"C{n}", app="LIS")))) == "AA"
    ack = post(http, adt(f"{n}C", f"{n}^^^FNXRMYY^MR", "陈^四", "19920303", "F", "A08"))
    assert ack_code_of(ack) == "AA", ack
    (ours,) = patients(http, f"{FNZYY_MRN}|Z{n}")
    assert f"{APART}|{n}" in _tokens(ours) and f"{MRN}|{n}" not in _tokens(ours), ours
    (theirs,) = [p for p in patients(http, f"{MRN}|{n}") if p["id"] != ours["id"]]
    return pid3, ours, theirs


def _ids(http: TestClient, path: str, params: dict[str, str], headers: dict[str, str] | None = None) -> list[str]:
    r = http.get(path, params=params, headers=headers or {})
    assert r.status_code == 200, r.text
    return sorted(f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in r.json().get("entry") or ())


# --- the owner agreeing again -------------------------------------------------------------------------


def test_the_owner_agreeing_again_puts_the_members_number_back(both: Both) -> None:  # noqa: F811
    _, http, clinician = both
    _, ours, theirs = _rekeyed(http, "RA1")
    ack = post(http, adt("RA1D", "RA1^^^FNXRMYY^MR", "冯^三", "19610101", "M", "A08"))
    assert ack_code_of(ack) == "AA", ack
    found = _ids(http, "/fhir/Patient", {"identifier": f"{MRN}|RA1"}, clinician)
    assert found == sorted([f"Patient/{ours['id']}", f"Patient/{theirs['id']}"]), found


def test_after_the_owners_rekey_the_mrn_finds_the_owners_person_and_results_only(both: Both) -> None:  # noqa: F811
    """Guard: after the re-key, FNXRMYY's MRN (Patient and Observation by subject identifier) answers 陈四's
    record only; FNZYY's MRN and the kept-apart token answer FNZYY's record and its result."""
    _, http, clinician = both
    _, ours, theirs = _rekeyed(http, "RB1")
    assert _ids(http, "/fhir/Patient", {"identifier": f"{MRN}|RB1"}, clinician) == [f"Patient/{theirs['id']}"]
    subjects = {o for o in _ids(http, "/fhir/Observation", {"subject:Patient.identifier": f"{MRN}|RB1"},
                                clinician)}
    assert not subjects, subjects
    mine = _ids(http, "/fhir/Observation", {"subject:Patient.identifier": f"{APART}|RB1"}, clinician)
    also = _ids(http, "/fhir/Observation", {"subject:Patient.identifier": f"{FNZYY_MRN}|ZRB1"}, clinician)
    assert mine and mine == also, (mine, also)
    # identifier=<value> with no system: both records carry the value, either answers it
    both_ids = _ids(http, "/fhir/Patient", {"identifier": "RB1"}, clinician)
    assert f"Patient/{ours['id']}" in both_ids and f"Patient/{theirs['id']}" in both_ids, both_ids


def test_everything_of_each_person_holds_its_own_records_only(both: Both) -> None:  # noqa: F811
    """$everything of 陈四 (FNXRMYY) holds nothing of FNZYY's patient; FNZYY's patient's holds its result."""
    _, http, _ = both
    _, ours, theirs = _rekeyed(http, "RC1")
    hers = http.get(f"/fhir/Patient/{theirs['id']}/$everything")
    his = http.get(f"/fhir/Patient/{ours['id']}/$everything")
    assert hers.status_code == 200 and his.status_code == 200, (hers.text, his.text)
    hers_refs = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in hers.json().get("entry") or ()}
    his_refs = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in his.json().get("entry") or ()}
    assert f"Patient/{ours['id']}" not in hers_refs and not any(r.startswith("Observation/") for r in hers_refs)
    assert any(r.startswith("Observation/") for r in his_refs), his_refs


def test_a_resident_of_the_owner_sees_none_of_the_members_patient(both: Both) -> None:  # noqa: F811
    """陈四's own token (patient compartment): a search by her MRN, or of Observations, shows nothing of
    FNZYY's 冯三; 冯三's own token still reads his result and his record."""
    engine, http, _ = both
    _, ours, theirs = _rekeyed(http, "RD1")

    def resident(pid: str) -> dict[str, str]:
        token, _ = engine.auth.issue_token(subject=f"p-{pid}", kind="patient", client_id="phr",
                                           scopes=["patient/*.rs"], patient=pid)
        return {"Authorization": f"Bearer {token}"}

    hers = resident(theirs["id"])
    assert _ids(http, "/fhir/Patient", {"identifier": f"{MRN}|RD1"}, hers) == [f"Patient/{theirs['id']}"]
    assert http.get(f"/fhir/Patient/{ours['id']}", headers=hers).status_code in (403, 404)
    assert not _ids(http, "/fhir/Observation", {}, hers)
    his = resident(ours["id"])
    assert len(_ids(http, "/fhir/Observation", {}, his)) == 1
    assert http.get(f"/fhir/Patient/{ours['id']}", headers=his).status_code == 200


# --- the member's own HIS speaking after the owner's re-key -------------------------------------------


def test_the_members_his_correcting_its_own_patient_after_the_rekey_is_accepted(both: Both) -> None:  # noqa: F811
    """FNZYY's registering HIS corrects its own Z<n> (a registration error: another person, by its own MRN
    only). The re-key was written by FNXRMYY's message with no Provenance naming it (ownfix34's note 1):
    the member's own registrar must still be recognised as the record's registrar -- AA, the record
    restated as sent (its PID-3 states its identifiers in full: its own MRN alone)."""
    _, http, _ = both
    _, ours, _ = _rekeyed(http, "RE1")
    ack = post(http, _fnzyy(adt("RE1E", "ZRE1^^^FNZYY^MR", "卫^六", "19850606", "F", "A08")))
    assert ack_code_of(ack) == "AA", ack
    (after,) = patients(http, f"{FNZYY_MRN}|ZRE1")
    assert after["id"] == ours["id"] and after["gender"] == "female", after
    assert _tokens(after) == {f"{FNZYY_MRN}|ZRE1"}, after


def test_the_members_result_after_the_owners_rekey_is_filed_with_one_warning_and_writes_nothing(
        both: Both) -> None:  # noqa: F811
    _, http, _ = both
    pid3, ours, _ = _rekeyed(http, "RF1")
    ack = post(http, _fnzyy(oru("RF1F", pid3, "冯^三", "19610101", "M", "CRF1B", app="LIS")))
    assert ack_code_of(ack) == "AA" and len(err_lines(ack)) == 1, ack
    (after,) = patients(http, f"{FNZYY_MRN}|ZRF1")
    assert after["meta"]["versionId"] == ours["meta"]["versionId"], after["meta"]


def test_the_owners_lab_result_with_other_demographics_rekeys_nothing(both: Both) -> None:  # noqa: F811
    """FNXRMYY's LIS result for <n> whose PID reads another person (the lab's own, not the registration:
    a result only names the record) is no restatement by the owner: FNZYY's record keeps the number under
    FNXRMYY's MRN, no version written."""
    _, http, _ = both
    assert ack_code_of(post(http, adt("RL1A", "RL1^^^FNXRMYY^MR", "冯^三", "19610101", "M"))) == "AA"
    pid3 = "ZRL1^^^FNZYY^MR~RL1^^^FNXRMYY^MR"
    assert ack_code_of(post(http, _fnzyy(adt("RL1B", pid3, "冯^三", "19610101", "M")))) == "AA"
    (before,) = patients(http, f"{FNZYY_MRN}|ZRL1")
    post(http, oru("RL1C", "RL1^^^FNXRMYY^MR", "陈^四", "19920303", "F", "CRL1"))
    (after,) = patients(http, f"{FNZYY_MRN}|ZRL1")
    assert after["meta"]["versionId"] == before["meta"]["versionId"] and _tokens(after) == _tokens(before), after


def test_the_rekey_leaves_the_national_id_and_both_systems_answer_their_own(both: Both) -> None:  # noqa: F811
    """FNZYY's record carries the patient's national ID beside: after the owner's re-key the ID still finds
    FNZYY's record (its entry unchanged), and the owner's record is not found by it."""
    _, http, clinician = both
    nid = "320923196101010036"  # a valid GB 11643 ID (check digit computed)
    assert ack_code_of(post(http, adt("RN1A", "RN1^^^FNXRMYY^MR", "冯^三", "19610101", "M"))) == "AA"
    pid3 = f"ZRN1^^^FNZYY^MR~RN1^^^FNXRMYY^MR~{nid}^^^^NNCHN"
    assert ack_code_of(post(http, _fnzyy(adt("RN1B", pid3, "冯^三", "19610101", "M")))) == "AA"
    (before,) = patients(http, f"{FNZYY_MRN}|ZRN1")
    assert ack_code_of(post(http, adt("RN1C", "RN1^^^FNXRMYY^MR", "陈^四", "19920303", "F", "A08"))) == "AA"
    (after,) = patients(http, f"{FNZYY_MRN}|ZRN1")
    assert _tokens(after) == (_tokens(before) - {f"{MRN}|RN1"}) | {f"{APART}|RN1"}, after
    by_nid = [r for r in _ids(http, "/fhir/Patient", {"identifier": nid}, clinician)]
    assert by_nid == [f"Patient/{after['id']}"], by_nid


def test_the_owners_restatement_and_the_members_result_in_one_batch_answer_as_sent_singly(both: Both) -> None:  # noqa: F811
    """[FNXRMYY's A08 restating <n> as 陈四, FNZYY's result for its 冯三 naming <n> beside] in one batch and the
    same two messages sent singly (other numbers): the same ACK codes and ERR counts, FNZYY's record keyed
    alike, FNXRMYY's MRN finding 陈四 alone either way."""
    _, http, clinician = both
    answers = []
    for n, batched in (("RP1", True), ("RP2", False)):
        assert ack_code_of(post(http, adt(f"{n}A", f"{n}^^^FNXRMYY^MR", "冯^三", "19610101", "M"))) == "AA"
        pid3 = f"Z{n}^^^FNZYY^MR~{n}^^^FNXRMYY^MR"
        assert ack_code_of(post(http, _fnzyy(adt(f"{n}B", pid3, "冯^三", "19610101", "M")))) == "AA"
        first = adt(f"{n}C", f"{n}^^^FNXRMYY^MR", "陈^四", "19920303", "F", "A08")
        second = _fnzyy(oru(f"{n}D", pid3, "冯^三", "19610101", "M", f"C{n}", app="LIS"))
        if batched:
            ack = post(http, "FHS|^~\\&|HIS|FNXRMYY\rBHS|^~\\&|HIS|FNXRMYY\r" + first + second + "BTS|2\rFTS|1\r")
            text = ack.decode("utf-8")
            codes = [line.split("|")[1] for line in text.split("\r") if line.startswith("MSA|")]
            errs = text.count("\rERR|")
        else:
            acks = [post(http, first), post(http, second)]
            codes = [ack_code_of(a) for a in acks]
            errs = sum(len(err_lines(a)) for a in acks)
        (ours,) = patients(http, f"{FNZYY_MRN}|Z{n}")
        theirs = _ids(http, "/fhir/Patient", {"identifier": f"{MRN}|{n}"}, clinician)
        answers.append((codes, errs, sorted(t.replace(n, "<n>") for t in _tokens(ours)), len(theirs),
                        ours["meta"]["versionId"]))
    assert answers[0] == answers[1] and answers[0][0] == ["AA", "AA"] and answers[0][3] == 1, answers


def test_the_owners_restatement_rekeys_a_record_the_members_result_made(both: Both) -> None:  # noqa: F811
    """FNZYY's LIS files a result for Z<n> with <n>^^^FNXRMYY beside before any FNZYY ADT (the record the
    result makes, the same person as FNXRMYY's then); FNXRMYY restates <n> as 陈四: FNXRMYY's MRN then finds
    陈四 alone -- the result-made record is re-keyed as an ADT-made one is."""
    _, http, clinician = both
    assert ack_code_of(post(http, adt("RQ1A", "RQ1^^^FNXRMYY^MR", "冯^三", "19610101", "M"))) == "AA"
    pid3 = "ZRQ1^^^FNZYY^MR~RQ1^^^FNXRMYY^MR"
    assert ack_code_of(post(http, _fnzyy(oru("RQ1B", pid3, "冯^三", "19610101", "M", "CRQ1", app="LIS")))) == "AA"
    made = patients(http, f"{FNZYY_MRN}|ZRQ1")
    assert len(made) == 1, made
    assert ack_code_of(post(http, adt("RQ1C", "RQ1^^^FNXRMYY^MR", "陈^四", "19920303", "F", "A08"))) == "AA"
    found = _ids(http, "/fhir/Patient", {"identifier": f"{MRN}|RQ1"}, clinician)
    assert f"Patient/{made[0]['id']}" not in found and len(found) == 1, (found, made[0].get("identifier"))
    assert not _ids(http, "/fhir/Observation", {"subject:Patient.identifier": f"{MRN}|RQ1"}, clinician)


# --- merges across the re-keyed number ----------------------------------------------------------------


def test_the_members_merge_naming_the_owners_number_after_the_rekey_is_refused(both: Both) -> None:  # noqa: F811
    """FNZYY's A40 with MRG-1 <n>^^^FNXRMYY: after the re-key the number answers 陈四's record only, which is
    another person than FNZYY's -- AE at MRG-1; 陈四's record neither replaced nor linked."""
    _, http, _ = both
    _, ours, theirs = _rekeyed(http, "RG1")
    ack = post(http, _fnzyy(merge("RG1M", "ZRG1^^^FNZYY^MR", "冯^三", "19610101", "M", "RG1^^^FNXRMYY^MR")))
    assert ack_code_of(ack) == "AE", ack
    hers = http.get(f"/fhir/Patient/{theirs['id']}").json()
    assert hers.get("active") is not False and not hers.get("link"), hers


def test_the_members_merge_of_its_own_two_records_keeps_the_rekeyed_number_on_the_survivor(both: Both) -> None:  # noqa: F811
    """FNZYY merges a second record of its own (Z2<n>) into the re-keyed Z<n>: AA; the survivor keeps the
    number kept apart, and FNXRMYY's MRN still finds 陈四 alone."""
    _, http, clinician = both
    pid3, ours, theirs = _rekeyed(http, "RH1")
    assert ack_code_of(post(http, _fnzyy(adt("RH1X", "Z2RH1^^^FNZYY^MR", "冯^三", "19610101", "M")))) == "AA"
    ack = post(http, _fnzyy(merge("RH1M", pid3, "冯^三", "19610101", "M", "Z2RH1^^^FNZYY^MR")))
    assert ack_code_of(ack) == "AA", ack
    (after,) = patients(http, f"{FNZYY_MRN}|ZRH1")
    assert f"{APART}|RH1" in _tokens(after) and f"{MRN}|RH1" not in _tokens(after), after
    assert _ids(http, "/fhir/Patient", {"identifier": f"{MRN}|RH1"}, clinician) == [f"Patient/{theirs['id']}"]


def test_the_owners_merge_of_its_contradicted_record_leaves_the_members_record_alone(both: Both) -> None:  # noqa: F811
    """FNXRMYY merges its <n> (陈四) into a new number of hers (A40): FNZYY's 冯三 is neither the survivor nor
    replaced; it keeps its own MRN and the kept-apart number."""
    _, http, _ = both
    _, ours, theirs = _rekeyed(http, "RI1")
    assert ack_code_of(post(http, adt("RI1X", "N-RI1^^^FNXRMYY^MR", "陈^四", "19920303", "F"))) == "AA"
    ack = post(http, merge("RI1M", "N-RI1^^^FNXRMYY^MR", "陈^四", "19920303", "F", "RI1^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AA", ack
    (after,) = patients(http, f"{FNZYY_MRN}|ZRI1")
    assert after["id"] == ours["id"] and after.get("active") is not False and not after.get("link"), after
    assert after["name"] == ours["name"] and f"{APART}|RI1" in _tokens(after), after


# --- what the owner's message leaves about the member's record ----------------------------------------


def test_the_rekeyed_version_is_named_by_a_provenance(both: Both) -> None:  # noqa: F811
    _, http, _ = both
    _, ours, _ = _rekeyed(http, "RJ1")
    target = f"Patient/{ours['id']}/_history/{ours['meta']['versionId']}"
    found = http.get("/fhir/Provenance", params={"target": f"Patient/{ours['id']}", "_count": "100"})
    assert found.status_code == 200, found.text
    named = {t.get("reference") for e in found.json().get("entry") or () for t in e["resource"].get("target") or ()}
    assert target in named, (target, named)


def test_the_members_fidelity_row_names_its_record_and_the_owners_names_none_of_its(both: Both) -> None:  # noqa: F811
    """FNZYY's operator's row of the owner's contradiction lists FNZYY's record; FNXRMYY's operator's
    rows name no record of FNZYY's."""
    engine, http, _ = both
    _, ours, theirs = _rekeyed(http, "RK1")

    def rows(inst: str) -> list[dict]:
        ops = engine.auth.issue_system_token(f"ops-{inst}", "system/MessageHeader.cr")
        r = http.get("/admin/fidelity", params={"institution": inst}, headers={"Authorization": f"Bearer {ops}"})
        assert r.status_code == 200, r.text
        return r.json()["institutions"].get(inst, {}).get("items", [])

    listed = {rec for item in rows("FNZYY") for rec in item.get("records") or ()}
    assert f"Patient/{ours['id']}" in listed, listed
    text = repr(rows("FNXRMYY"))
    assert ours["id"] not in text and "冯" not in text, text


# --- wards: a code-only PL after a named one (locfix34), two hospitals, a code-only transfer ----------


def _ward_adt(control: str, event: str, inst: str, n: str, pl: str, prior: str = "",
              stamp: str = "20261203080000") -> str:
    pv1 = ["PV1", "1", "I", pl, "", "", prior] + [""] * 12 + [f"RW35V{inst}{n}"]
    structure = "ADT_A02" if event == "A02" else "ADT_A01"
    return "\r".join([
        f"MSH|^~\\&|HIS|{inst}|HUREN|FNYGT|{stamp}||ADT^{event}^{structure}|{control}|P|2.5.1",
        f"EVN|{event}|{stamp}",
        f"PID|1||RW35P{n}^^^{inst}^MR||钱^七||19600101|M",
        "|".join(pv1),
    ]) + "\r"


def _accepted(http: TestClient, message: str) -> None:
    ack = post(http, message)
    assert ack_code_of(ack) == "AA", ack


def _active(http: TestClient, inst: str, n: str) -> dict[str, Any]:
    found = http.get("/fhir/Encounter", params={"identifier": f"RW35V{inst}{n}"}).json().get("entry") or []
    assert len(found) == 1, found
    [place] = [p for p in found[0]["resource"]["location"] if p.get("status") == "active"]
    return place["location"]


def _chain_names(http: TestClient, ref: str | None) -> list[str]:
    out = []
    while ref:
        loc = http.get(f"/fhir/{ref}").json()
        out.append(loc["name"])
        ref = (loc.get("partOf") or {}).get("reference")
    return out


def test_a_code_only_transfer_to_a_new_bed_of_a_named_ward_names_the_ward(both: Both) -> None:  # noqa: F811
    _, http, _ = both
    _accepted(http, _ward_adt("RW1a", "A01", "FNXRMYY", "1", "RWA^301^02^FNXRMYY^^^^^血液科病区"))
    _accepted(http, _ward_adt("RW1b", "A02", "FNXRMYY", "1", "RWA^302^05^FNXRMYY",
                              "RWA^301^02^FNXRMYY^^^^^血液科病区", "20261203090000"))
    now = _active(http, "FNXRMYY", "1")
    names = _chain_names(http, now["reference"])
    assert names[-1] == "血液科病区", names
    assert now["display"] == "血液科病区 302房 05床" and names[0] == "血液科病区 302房 05床", (now, names)


def test_two_hospitals_same_ward_code_keep_their_own_names(both: Both) -> None:  # noqa: F811
    """FNXRMYY's RWB (PL-4 empty) named 血液科病区; FNZYY's RWB by code alone, then named 儿科病区: two
    Locations, neither named by the other's message; a code-only A08 at FNXRMYY keeps its own name."""
    _, http, _ = both
    _accepted(http, _ward_adt("RW2a", "A01", "FNXRMYY", "2", "RWB^301^02^^^^^^血液科病区"))
    _accepted(http, _ward_adt("RW2b", "A01", "FNZYY", "2", "RWB^301^02"))
    theirs, ours = _active(http, "FNXRMYY", "2"), _active(http, "FNZYY", "2")
    assert theirs["reference"] != ours["reference"]
    assert ours["display"] == "RWB 301房 02床", ours
    _accepted(http, _ward_adt("RW2c", "A08", "FNZYY", "2", "RWB^301^02^^^^^^儿科病区", stamp="20261203090000"))
    _accepted(http, _ward_adt("RW2d", "A08", "FNXRMYY", "2", "RWB^301^02", stamp="20261203090000"))
    assert _chain_names(http, _active(http, "FNXRMYY", "2")["reference"])[-1] == "血液科病区"
    assert _active(http, "FNXRMYY", "2")["display"] == "血液科病区 301房 02床"
    assert _chain_names(http, _active(http, "FNZYY", "2")["reference"])[-1] == "儿科病区"


def test_another_hospitals_name_for_a_ward_does_not_rename_the_wards_own_location(both: Both) -> None:  # noqa: F811
    """FNZYY's A01 naming FNXRMYY's ward (PL-4 FNXRMYY: a referral's bed at the county hospital) with its
    own PL-9 word: FNXRMYY's Location (managed by FNXRMYY) keeps the name FNXRMYY's HIS gave it."""
    _, http, _ = both
    _accepted(http, _ward_adt("RW3a", "A01", "FNXRMYY", "3", "RWC^301^02^FNXRMYY^^^^^血液科病区"))
    ward_ref = _active(http, "FNXRMYY", "3")["reference"]
    assert _chain_names(http, ward_ref)[-1] == "血液科病区"
    _accepted(http, _ward_adt("RW3b", "A01", "FNZYY", "3", "RWC^301^02^FNXRMYY^^^^^外院病区"))
    assert _chain_names(http, ward_ref)[-1] == "血液科病区", _chain_names(http, ward_ref)


def test_a_renamed_ward_is_reported_under_the_name_its_location_has(backend_settings: Any) -> None:
    from engine.engine import Engine as _Engine
    from tests.test_rvlast34_probes import _feed, _rates, _zhao_order

    with _Engine(backend_settings) as eng:
        _feed(eng, _zhao_order(1, "XYR^501^01^FNXRMYY^^^^^血液科病区", "20250324"),
              _zhao_order(2, "XYR^502^03^FNXRMYY^^^^^血液内科", "20250325"))
        with TestClient(create_app(eng)) as http:
            http.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("rvid35", "system/*.cruds")
            wards = [e["resource"] for e in http.get("/fhir/Location", params={"_count": "200"}).json()["entry"]
                     if "XYR" in (e["resource"].get("alias") or ())
                     and e["resource"]["physicalType"]["coding"][0]["code"] == "wa"]
        assert {w["name"] for w in wards} == {"血液内科"}, wards
        labels = {k for k in _rates(eng) if "血液" in k or "XYR" in k}
        assert labels == {"阜宁县人民医院 血液内科"}, labels


def test_a_pl9_sent_as_the_hl7_null_does_not_name_the_ward(both: Both) -> None:  # noqa: F811
    """PV1-3 ``RWD^301^02^FNXRMYY^^^^^""``: PL-9 is HL7's explicit null (delete the description), no name:
    the ward stays 血液科病区, and no Location is named '""'."""
    _, http, _ = both
    _accepted(http, _ward_adt("RW4a", "A01", "FNXRMYY", "4", "RWD^301^02^FNXRMYY^^^^^血液科病区"))
    _accepted(http, _ward_adt("RW4b", "A08", "FNXRMYY", "4", 'RWD^301^02^FNXRMYY^^^^^""', stamp="20261203090000"))
    now = _active(http, "FNXRMYY", "4")
    names = _chain_names(http, now["reference"])
    assert not any('""' in name for name in [*names, now["display"]]), (now, names)
    assert names[-1] == "血液科病区", names


def test_the_owners_ack_names_nothing_of_the_members_record(both: Both) -> None:  # noqa: F811
    """The owner's A08 that re-keys FNZYY's record: its ACK says nothing of FNZYY's record (no id, no FNZYY
    number, no name of its person, no FNZYY), one W of its own restatement's count only."""
    _, http, _ = both
    assert ack_code_of(post(http, adt("RS1A", "RS1^^^FNXRMYY^MR", "冯^三", "19610101", "M"))) == "AA"
    pid3 = "ZRS1^^^FNZYY^MR~RS1^^^FNXRMYY^MR"
    assert ack_code_of(post(http, _fnzyy(adt("RS1B", pid3, "冯^三", "19610101", "M")))) == "AA"
    (ours,) = patients(http, f"{FNZYY_MRN}|ZRS1")
    ack = post(http, adt("RS1C", "RS1^^^FNXRMYY^MR", "陈^四", "19920303", "F", "A08")).decode("utf-8")
    for word in (ours["id"], "ZRS1", "FNZYY", "冯", "19610101", "Patient.identifier", "deleted"):
        assert word not in ack, (word, ack)


def test_a_member_record_keyed_by_the_owners_number_after_contradiction_and_agreement(both: Both) -> None:  # noqa: F811
    """FNZYY's record keyed by FNXRMYY's number alone (filed before FNXRMYY held a record of it); FNXRMYY
    registers the number as 陈四 (re-keys FNZYY's record: rvidentity34 MED 3), then corrects it to 冯三 (the
    person FNZYY's record is). FNZYY's next result, keyed the same way, is filed beside its earlier one:
    one record of FNZYY's for its patient, not a second."""
    _, http, clinician = both
    assert ack_code_of(post(http, _fnzyy(adt("RT1A", "RT1^^^FNXRMYY^MR", "冯^三", "19610101", "M")))) == "AA"
    assert ack_code_of(post(http, _fnzyy(oru("RT1B", "RT1^^^FNXRMYY^MR", "冯^三", "19610101", "M", "CRT1A")))) == "AA"
    (first,) = _ids(http, "/fhir/Observation", {"code": "CRT1A"}, clinician)
    before = http.get(f"/fhir/{first}", headers=clinician).json()["subject"]["reference"]
    assert ack_code_of(post(http, adt("RT1C", "RT1^^^FNXRMYY^MR", "陈^四", "19920303", "F"))) == "AA"
    assert ack_code_of(post(http, adt("RT1D", "RT1^^^FNXRMYY^MR", "冯^三", "19610101", "M", "A08"))) == "AA"
    ack = post(http, _fnzyy(oru("RT1E", "RT1^^^FNXRMYY^MR", "冯^三", "19610101", "M", "CRT1B")))
    assert ack_code_of(ack) == "AA" and not err_lines(ack), ack
    (second,) = _ids(http, "/fhir/Observation", {"code": "CRT1B"}, clinician)
    after = http.get(f"/fhir/{second}", headers=clinician).json()["subject"]["reference"]
    assert after == before, (before, after)
