"""rv43a: review probes of round 42's merges (perfa42's resident compartment cache, perfa42b's resident audit
record, trim42b's shared site tables, omi42, conv42b, plan42). Each sends real bytes through the real path: HL7 v2
over ``POST /hl7v2``, FHIR over ``/fhir`` with a resident's token, the real store. A probe that shows a defect is a
strict xfail naming its severity."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.settings import Settings
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import read_patient, unlink
from tests.test_a40b41_carried import BING, opened
from tests.test_rv41n_probes import _his, _nids, _reads
from tests.test_rvidentity32_probes import _nid, adt, merge, oru, patients

BOTH = pytest.mark.parametrize("backend_settings", ["sqlite", "mongomock"], indirect=True)


def _token(engine: Engine, patient: str) -> dict[str, str]:
    token, _ = engine.auth.issue_token(subject=f"Patient/{patient}", kind="patient", client_id="rv43a-phone",
                                       scopes=["patient/*.rs"], patient=patient)
    return {"access_token": token}


def _two_of_hers(http: TestClient, engine: Engine, tag: str, number: str) -> tuple[str, str, dict[str, str]]:
    """Her number on ZQ (阜宁县中医院) and R1 (阜宁县人民医院, a result on R1); her token bound to ZQ, which has read
    R1's result twice (the second from what the first remembered)."""
    zq = _his(http, f"ZQ{tag}", f"ZQ{tag}a", f"~{number}^^^^NNCHN", "13700001111", facility="FNZYY")
    one = _his(http, f"R1{tag}", f"R1{tag}a", f"~{number}^^^^NNCHN", "13700001112")
    assert ack_code_of(post(http, oru(f"R1{tag}b", f"R1{tag}^^^FNXRMYY^MR", *BING, f"{tag}OBS"))) == "AA"
    hers = _token(engine, zq)
    assert _reads(http, hers, f"{tag}OBS") == [f"Patient/{one}"]
    assert _reads(http, hers, f"{tag}OBS") == [f"Patient/{one}"]
    return zq, one, hers


def _renumbered(patient: dict, number: str) -> dict:
    out = copy.deepcopy(patient)
    for ident in out.get("identifier", []):
        if ident.get("value") and number not in _nids({"identifier": [ident]}) and _nids({"identifier": [ident]}):
            ident["value"] = number
    out.pop("meta", None)
    return out


@BOTH
def test_a_fhir_put_renumbering_her_other_record_is_seen_by_her_very_next_request(
        backend_settings: Settings) -> None:
    """perfa42 (privacy): a system client's ``PUT /fhir/Patient/R1`` giving R1 another ID number (not an HL7 A08):
    R1 is no longer hers, and the very next request of her unchanged token reads R1's result no more."""
    number, other = _nid("32092319620303460"), _nid("32092319620303476")
    with opened(backend_settings) as (engine, http):
        _, one, hers = _two_of_hers(http, engine, "43P", number)
        put = http.put(f"/fhir/Patient/{one}", json=_renumbered(read_patient(http, one), other))
        assert put.status_code == 200, put.text
        assert _nids(read_patient(http, one)) == {other}
        assert _reads(http, hers, "43POBS") == []


@BOTH
def test_a_fhir_delete_of_her_other_record_is_seen_by_her_very_next_request(backend_settings: Settings) -> None:
    """perfa42 (privacy): ``DELETE /fhir/Patient/R1``; the index takes R1 out of her person (``on_delete``) and her
    very next request no longer reaches anything filed on R1."""
    number = _nid("32092319620303484")
    with opened(backend_settings) as (engine, http):
        _, one, hers = _two_of_hers(http, engine, "43D", number)
        gone = http.delete(f"/fhir/Patient/{one}")
        assert gone.status_code in (200, 204), gone.text
        assert _reads(http, hers, "43DOBS") == []


@BOTH
def test_an_operators_unlink_is_seen_by_her_very_next_request(backend_settings: Settings) -> None:
    """perfa42 (privacy): the desk's ``POST /fhir/Patient/$unlink`` takes R1 out of her person (a record registered
    from a relative's card): her very next request reads R1's result no more."""
    number = _nid("32092319620303492")
    with opened(backend_settings) as (engine, http):
        _, one, hers = _two_of_hers(http, engine, "43U", number)
        r = http.post("/fhir/Patient/$unlink", json={"resourceType": "Parameters", "parameter": [
            {"name": "source", "valueReference": {"reference": f"Patient/{one}"}},
            {"name": "reason", "valueString": "registered from a relative's ID card"}]})
        assert r.status_code == 200, r.text
        assert _reads(http, hers, "43UOBS") == []


@BOTH
def test_a_transaction_bundle_renumbering_her_other_record_is_seen_by_her_very_next_request(
        backend_settings: Settings) -> None:
    """perfa42 (privacy): the same renumbering as one entry of a ``transaction`` Bundle (its writes and the stamp
    in one store transaction)."""
    number, other = _nid("32092319620303506"), _nid("32092319620303514")
    with opened(backend_settings) as (engine, http):
        _, one, hers = _two_of_hers(http, engine, "43B", number)
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": _renumbered(read_patient(http, one), other),
             "request": {"method": "PUT", "url": f"Patient/{one}"}}]}
        r = http.post("/fhir", json=bundle)
        assert r.status_code == 200, r.text
        assert _nids(read_patient(http, one)) == {other}
        assert _reads(http, hers, "43BOBS") == []



def _k(control: str, mrn: str, status: str, director: str, observer: str = "") -> str:
    """FNXRMYY's LIS potassium for MRN ``mrn`` (omi42's ``_elr`` shape): OBX-16 ``observer``, OBX-23 the hospital,
    OBX-25 ``director``."""
    obx = ["OBX", "1", "NM", "RV43K^钾^L", "", "4.1" if status == "F" else "4.3", "mmol/L", "3.5-5.5", "N", "", "",
           status, "", "", "20261201090000", "", observer, "", "", "", "", "", "", "阜宁县人民医院", "", director]
    return (f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201{control[-6:]}+0800||ORU^R01^ORU_R01|{control}|P|2.5.1|||AL|NE|"
            f"CHN|UNICODE UTF-8\rPID|1||{mrn}^^^FNXRMYY^MR||王^十三||19900113|F\r"
            f"OBR|1|P{mrn}|F{mrn}|RV43K^钾^L|||20261201083000||||||||BLD|||||||20261201091000|||F\r"
            + "|".join(obx) + "\r")


def _performers(http: TestClient, mrn: str) -> list[str]:
    """The kinds of the performers of the potassium result on MRN ``mrn``, as served."""
    (patient,) = patients(http, f"urn:huren:mrn:FNXRMYY|{mrn}")
    found = http.get("/fhir/Observation", params={"code": "RV43K", "subject": f"Patient/{patient['id']}"})
    assert found.status_code == 200, found.text
    (obs,) = [e["resource"] for e in found.json()["entry"]]
    return sorted(p["reference"].split("/")[0] for p in obs["performer"])


def _corrected(http: TestClient, first: dict[str, str], correction: dict[str, str]) -> dict[str, list[str]]:
    """Four patients' results sent with ``first``'s OBX-16/OBX-25, each then corrected by ``correction``'s, in
    turn: the first correction of its shape takes the ordinary path (the site learns a plan from it), the next
    three the compiled plan. Each MRN -> its result's performers after its correction."""
    out = {}
    for n, mrn in enumerate(("RV43KA", "RV43KB", "RV43KC", "RV43KD")):
        assert ack_code_of(post(http, _k(f"RV43X{n}091500", mrn, "F", **first))) == "AA"
        assert ack_code_of(post(http, _k(f"RV43Y{n}101500", mrn, "C", **correction))) == "AA"
        out[mrn] = _performers(http, mrn)
    return out


@BOTH
def test_obx_25_null_in_a_correction_takes_the_director_off_on_the_compiled_plan_path_too(
        backend_settings: Settings) -> None:
    """omi42: OBX-25 ``""`` deletes the stored director -- the README says such a result is off-plan, but plan42
    removed ``OFF_PLAN`` and keys a plan by OBX-25's text. Each of four patients' corrections must lose him as the
    first (the ordinary path) does."""
    with opened(backend_settings) as (_, http):
        got = _corrected(http, {"director": "2001^王^主任"}, {"director": '""'})
    assert got == dict.fromkeys(got, ["Organization"]), got


@BOTH
def test_obx_16_null_in_a_correction_takes_the_observer_off_on_every_path(backend_settings: Settings) -> None:
    """The same for OBX-16 ``""`` (the observers deleted: ``null_deletes``), beside a director kept."""
    with opened(backend_settings) as (_, http):
        got = _corrected(http, {"director": "2001^王^主任", "observer": "3001^周^技师"},
                         {"director": "2001^王^主任", "observer": '""'})
    assert got == dict.fromkeys(got, ["Organization", "PractitionerRole"]), got


@pytest.mark.parametrize("backend_settings", ["sqlite"], indirect=True)
def test_one_99zzz_list_sent_in_either_case_is_one_system(backend_settings: Settings) -> None:
    """阜宁县人民医院's LIS names its organism list ``99BAC`` in one result and ``99bac`` in the next: one list."""
    systems = []
    with opened(backend_settings) as (_, http):
        for n, name in enumerate(("99BAC", "99bac")):
            msg = (f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|2026120109150{n}+0800||ORU^R01^ORU_R01|RV43O{n}|P|2.5.1\r"
                   f"PID|1||RV43O{n}^^^FNXRMYY^MR||王^芳||19900101|F\r"
                   f"OBR|1|PRV43O{n}|FRV43O{n}|BACT^细菌培养^L|||20261201083000||||||||BLD|||||||20261201091000|||F\r"
                   f"OBX|1|CWE|ORG^菌种^L||ECO^大肠埃希菌^{name}||||||F|||20261201090000\r")
            assert ack_code_of(post(http, msg)) == "AA"
            (patient,) = patients(http, f"urn:huren:mrn:FNXRMYY|RV43O{n}")
            found = http.get("/fhir/Observation", params={"subject": f"Patient/{patient['id']}"}).json()
            (obs,) = [e["resource"] for e in found["entry"]]
            systems.append(obs["valueCodeableConcept"]["coding"][0]["system"])
    assert systems[0] == systems[1], systems


def _omi(n: int, ipc3: str) -> str:
    return (f"MSH|^~\\&|RIS|FNXRMYY|HUREN|FNYGT|2026120109150{n}+0800||OMI^O23^OMI_O23|RV43I{n}|P|2.5.1|||AL|NE|CHN|"
            f"UNICODE UTF-8\rPID|1||RV43I{n}^^^FNXRMYY^MR||赵^甲||19700109|M\rPV1|1|O\r"
            f"ORC|NW|RV43IP{n}|||||||20261201090000|||1001^李^医生\rOBR|1|RV43IP{n}||CT009^胸部CT平扫^L|||20261201090000\r"
            f"IPC|RV43A{n}|RP|{ipc3}|SPS|CT\r")


def _uids(http: TestClient, n: int) -> list[str]:
    found = http.get("/fhir/ServiceRequest", params={"identifier": f"urn:huren:order:FNXRMYY|RV43IP{n}"}).json()
    (sr,) = [e["resource"] for e in found["entry"]]
    return [i["value"] for i in sr.get("identifier", ()) if i.get("system") == "urn:dicom:uid"]


@pytest.mark.parametrize("backend_settings", ["sqlite"], indirect=True)
def test_an_orders_study_uid_is_the_studys_rule_urn_oid_once_and_a_bad_one_warned(
        backend_settings: Settings) -> None:
    with opened(backend_settings) as (_, http):
        assert ack_code_of(post(http, _omi(0, "urn:oid:1.2.156.4343.1"))) == "AA"
        bad = post(http, _omi(1, "not a uid"))
        uids = (_uids(http, 0), _uids(http, 1))
    assert uids == (["urn:oid:1.2.156.4343.1"], []), uids
    assert any("IPC" in line and "not a uid" in line for line in err_lines(bad)), err_lines(bad)


@BOTH
def test_an_unmerge_inside_an_hl7_batch_is_seen_by_her_very_next_request(backend_settings: Settings) -> None:
    """perfa42 (privacy): the index's ``batch`` defers the stamp to the batch's end; an A37 parting R2 from her R1,
    sent in a BHS/BTS batch between two other registrations, is seen by her very next request all the same."""
    number = _nid("32092319620303522")
    with opened(backend_settings) as (engine, http):
        zq = _his(http, "ZQ43M", "ZQ43Ma", f"~{number}^^^^NNCHN", "13700002221", facility="FNZYY")
        _his(http, "R143M", "R143Ma", f"~{number}^^^^NNCHN", "13700002222")
        two = _his(http, "R243M", "R243Ma", "", "13700002223")
        assert ack_code_of(post(http, oru("R243Mb", "R243M^^^FNXRMYY^MR", *BING, "R243MOBS"))) == "AA"
        assert ack_code_of(post(http, merge("R343M", "R243M^^^FNXRMYY^MR", *BING, "R143M^^^FNXRMYY^MR"))) == "AA"
        hers = _token(engine, zq)
        assert _reads(http, hers, "R243MOBS") == [f"Patient/{two}"]
        assert _reads(http, hers, "R243MOBS") == [f"Patient/{two}"]
        others = [adt(f"X43M{n}", f"X43M{n}^^^FNXRMYY^MR", "李^四", "19800101", "M") for n in range(2)]
        body = ("BHS|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201131500||||B43M\r" + others[0]
                + unlink("R443M", ("R243M", *BING), ("R143M", *BING)) + others[1] + "BTS|3\r")
        r = http.post("/hl7v2", content=body.encode("utf-8"), headers={"Content-Type": "x-application/hl7-v2+er7"})
        assert r.status_code == 200, r.text
        assert r.content.count(b"MSA|AA|") == 3, r.content
        assert _reads(http, hers, "R243MOBS") == []


def test_her_sons_very_next_request_after_her_record_is_renumbered_no_longer_reaches_it(tmp_path: Path) -> None:
    """perfa42 (privacy), a family member: her son, granted access to her records (a real grant: Consent and
    RelatedPerson), reads her result on p2 (linked to her p1 by her ID number) with his token -- the compartment
    remembered under the stamp; a system client's PUT renumbers p2 (another person's now): his very next request
    with the same token no longer reads it."""
    from engine.auth.service import ME_CLIENT_ID
    from tests.test_perfa42b_resident_record import A_NID, SON_NID, _patient

    other = _nid("32092319700511020")
    with opened(Settings(data_dir=tmp_path / "data")) as (engine, http):
        _patient(engine, "p1", "FNXRMYY", A_NID)
        _patient(engine, "p2", "FNZYY", A_NID)
        _patient(engine, "p4", "FNXRMYY", SON_NID)
        assert engine.identity.person_compartment("p1") == {"p1", "p2"}
        engine.repository.update({"resourceType": "Organization", "id": "org1", "name": "阜宁县中医院"})
        engine.repository.update({"resourceType": "Observation", "id": "o2", "status": "final",
                                  "performer": [{"reference": "Organization/org1"}],
                                  "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
                                  "subject": {"reference": "Patient/p2"}, "effectiveDateTime": "2026-11-01",
                                  "valueQuantity": {"value": 13.2, "unit": "g/dL"}})
        grant = engine.auth.resident.family.grant("p1", SON_NID, name="孙伟", relationship="CHILD", end=None)
        son_key = grant.related["identifier"][0]["value"]
        son = engine.auth.issue_token(subject=son_key, kind="patient", client_id=ME_CLIENT_ID, scopes=["patient/*.rs"],
                                      patient="p1", person=son_key,
                                      extra={"acting": grant.related_id, "consent": grant.consent_id})[0]
        his = {"Authorization": "Bearer " + son}
        assert http.get("/fhir/Observation/o2", headers=his).status_code == 200
        assert http.get("/fhir/Observation/o2", headers=his).status_code == 200
        p2 = read_patient(http, "p2")
        for ident in p2["identifier"]:
            if ident.get("value") == A_NID:
                ident["value"] = other
        p2.pop("meta", None)
        assert http.put("/fhir/Patient/p2", json=p2).status_code == 200
        assert "p2" not in engine.identity.person_compartment("p1")
        assert http.get("/fhir/Observation/o2", headers=his).status_code == 404
