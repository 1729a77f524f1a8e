"""rv44a: review probes of low44's merge -- a declared application under its alias (``applications.is_declared``),
a held A47's survivor filed nothing until decided (``persons.leave_unfiled``), a CDS draft order without
``status``/``intent`` a 400 (``cds.DRAFT_REQUIRED``).

Real HL7 v2 over ``POST /hl7v2`` and the ingestor in one batch, ``/fhir``, ``/admin`` and ``/cds-services`` over
FastAPI, the real store. A probe showing a defect is a strict xfail naming its severity."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from engine.settings import Settings
from mappings.site import DEFAULTS_DIR
from tests.hl7_calls import err_lines, post
from tests.module_store import module_eng, module_eng_http, system_client
from tests.owner41_calls import decide, nids, operator, shown
from tests.test_cds_hooks import bearer, draft, hook_request, ward
from tests.test_idn43_merge import _a47, _links, _merge_held, _one
from tests.test_recognition_world import B, cbc
from tests.test_rvidentity32_probes import MRN, _nid, adt, oru, patients

__all__ = ["module_eng", "module_eng_http", "ward"]

OPS = "rv44a-ops"


def _her(http: TestClient, tag: str, c: str, birth: str) -> dict:
    """The HIS registers her record ``<tag>H`` with resident ID number ``c``: as stored."""
    assert ack_code_of(post(http, adt(f"{tag}Ha", f"{tag}H^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^四四", birth, "F"))) == "AA"
    return _one(http, f"{tag}H")


def _w205(ack: bytes) -> int:
    return sum("|205^" in e for e in err_lines(ack))


# --- a held A47 files nothing until decided ---------------------------------------------------------------------


def test_held_a47_leaves_no_provenance_naming_the_unfiled_record_and_the_decision_files_it_once(
        module_eng: Engine, http: TestClient) -> None:
    """The LIS's A47 renumbering the HIS's record H as N, held: no Provenance names N (none dangles), the message's
    Provenance still stands (the message's trail kept); decided: N filed with her number, the decision asked again
    answers ``already`` and writes nothing (N's versions the same)."""
    c = _nid("32092319800911020")
    _her(http, "RA1", c, "19800911")
    before = {e["resource"]["id"] for e in http.get("/fhir/Provenance", params={"_count": "500"}).json()["entry"]}
    _merge_held(post(http, _a47("RA1M", "RA1N^^^FNXRMYY^MR", "壬^四四", "19800911", "RA1H^^^FNXRMYY^MR", "LIS")), "LIS")
    new = [e["resource"] for e in http.get("/fhir/Provenance", params={"_count": "500"}).json()["entry"]
           if e["resource"]["id"] not in before]
    assert len(new) == 1 and new[0]["reason"][0]["coding"][0]["code"] == "merge-held", new
    assert decide(http, module_eng, "RA1M", OPS).status_code == 200
    n = _one(http, "RA1N")
    assert nids(n) == {c}
    assert not any(t["reference"].startswith(f"Patient/{n['id']}") for t in new[0]["target"]), new[0]["target"]
    versions = http.get(f"/fhir/Patient/{n['id']}/_history").json()["total"]
    again = decide(http, module_eng, "RA1M", OPS)
    assert again.status_code == 200 and again.json()["already"] is True
    assert http.get(f"/fhir/Patient/{n['id']}/_history").json()["total"] == versions


def test_held_a47_one_by_one_twice_files_nothing(module_eng: Engine, http: TestClient) -> None:
    """Guard: the LIS sends its held A47 twice under two control ids (its retry): neither files N."""
    c = _nid("32092319800914020")
    _her(http, "RD1", c, "19800914")
    for control in ("RD1M", "RD1R"):
        ack = post(http, _a47(control, "RD1N^^^FNXRMYY^MR", "壬^四四", "19800914", "RD1H^^^FNXRMYY^MR", "LIS"))
        _merge_held(ack, "LIS")
    assert patients(http, f"{MRN}|RD1N") == []


def test_held_a47_twice_in_one_batch_files_nothing_as_one_by_one(module_eng: Engine, http: TestClient) -> None:
    """Guard: her registration and the LIS's A47 sent twice (its retry under a new control id) in one ingestor
    batch: as one by one (previous test), no record under the new MRN -- the second A47 does not take the first's
    survivor, left unfiled, as a record the batch wrote (``_merges_held``'s ``earlier``)."""
    c = _nid("32092319800915020")
    messages = [adt("RE1Ha", f"RE1H^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^四四", "19800915", "F"),
                _a47("RE1M", "RE1N^^^FNXRMYY^MR", "壬^四四", "19800915", "RE1H^^^FNXRMYY^MR", "LIS"),
                _a47("RE1R", "RE1N^^^FNXRMYY^MR", "壬^四四", "19800915", "RE1H^^^FNXRMYY^MR", "LIS")]
    outs = module_eng.ingestor.process([(m.encode(), "mllp", "t") for m in messages])
    assert [ack_code_of(o.ack) for o in outs] == ["AA", "AA", "AA"], [o.ack for o in outs]
    assert [_w205(o.ack) for o in outs] == [0, 1, 1], [o.ack for o in outs]
    assert patients(http, f"{MRN}|RE1N") == [], "the batch filed the held renumbering's record"


def test_held_a47_then_its_result_in_one_batch_files_the_result_once(module_eng: Engine, http: TestClient) -> None:
    """Guard: her registration, the LIS's held A47 and the LIS's result under the new MRN in one batch: the result
    files N from its own PID (one record, no number) and the result on it -- nothing of the ORU lost to the A47's
    unfiling."""
    c = _nid("32092319800916020")
    messages = [adt("RF1Ha", f"RF1H^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^四四", "19800916", "F"),
                _a47("RF1M", "RF1N^^^FNXRMYY^MR", "壬^四四", "19800916", "RF1H^^^FNXRMYY^MR", "LIS"),
                oru("RF1R", "RF1N^^^FNXRMYY^MR", "壬^四四", "19800916", "F", "RF1OBS")]
    outs = module_eng.ingestor.process([(m.encode(), "mllp", "t") for m in messages])
    assert [ack_code_of(o.ack) for o in outs] == ["AA", "AA", "AA"], [o.ack for o in outs]
    (n,) = patients(http, f"{MRN}|RF1N")
    assert nids(n) == set()
    found = http.get("/fhir/Observation", params={"code": "RF1OBS"}).json().get("entry", [])
    assert [e["resource"]["subject"]["reference"] for e in found] == [f"Patient/{n['id']}"]


def test_a_decision_after_the_survivor_was_filed_says_it_did_not_exist_when_held(
        module_eng: Engine, http: TestClient) -> None:
    c = _nid("32092319800913020")
    _her(http, "RC1", c, "19800913")
    _merge_held(post(http, _a47("RC1M", "RC1N^^^FNXRMYY^MR", "壬^四四", "19800913", "RC1H^^^FNXRMYY^MR", "LIS")), "LIS")
    assert ack_code_of(post(http, oru("RC1R", "RC1N^^^FNXRMYY^MR", "壬^四四", "19800913", "F", "RC1OBS"))) == "AA"
    r = decide(http, module_eng, "RC1M", OPS)
    assert r.status_code == 409, r.text
    assert "version ?" not in r.text, r.text


def test_guard_after_the_409_a_plain_replay_holds_it_again_and_the_decision_files_it(
        module_eng: Engine, http: TestClient) -> None:
    """Guard of the way out the 409 names: the held A47's new record filed since by the LIS's result, the plain replay
    holds the A47 again against N as stored (W 205), and the operator's decision then takes the renumbering once --
    N holds her number, H replaced by N, one record under N."""
    c = _nid("32092319800922020")
    _her(http, "RL1", c, "19800922")
    _merge_held(post(http, _a47("RL1M", "RL1N^^^FNXRMYY^MR", "壬^四四", "19800922", "RL1H^^^FNXRMYY^MR", "LIS")), "LIS")
    assert ack_code_of(post(http, oru("RL1R", "RL1N^^^FNXRMYY^MR", "壬^四四", "19800922", "F", "RL1OBS"))) == "AA"
    assert decide(http, module_eng, "RL1M", OPS).status_code == 409
    r = http.post(f"/admin/quarantine/{message_id('FNXRMYY', 'RL1M')}/replay", headers=operator(module_eng, OPS))
    assert r.status_code == 200, r.text[:400]
    assert r.json()["ack_code"] == "AA" and any("|205^" in e for e in err_lines(r.json()["ack"].encode())), r.text
    d = decide(http, module_eng, "RL1M", OPS)
    assert d.status_code == 200, d.text[:400]
    (n,) = patients(http, f"{MRN}|RL1N")
    assert nids(n) == {c}
    assert ("replaced-by", f"Patient/{n['id']}") in _links(_one(http, "RL1H"))


def test_a_held_a47_stating_her_number_is_decided_and_files_n_once(module_eng: Engine, http: TestClient) -> None:
    """The LIS's A47 renumbering the HIS's record H as N, its PID stating N and her resident ID number: held (W 205),
    nothing filed; the operator's decision takes it -- N holds her number, H replaced by N."""
    c = _nid("32092319800917020")
    _her(http, "RH1", c, "19800917")
    ack = post(http, _a47("RH1M", f"RH1N^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^四四", "19800917", "RH1H^^^FNXRMYY^MR",
                          "LIS"))
    _merge_held(ack, "LIS")
    assert patients(http, f"{MRN}|RH1N") == []
    r = decide(http, module_eng, "RH1M", OPS)
    assert r.status_code == 200, r.text[:600]
    n = _one(http, "RH1N")
    assert nids(n) == {c}
    assert ("replaced-by", f"Patient/{n['id']}") in _links(_one(http, "RH1H"))


def _audited(engine: Engine, http: TestClient, patient: str) -> int:
    engine.audit.index_keys()
    auditor = {"Authorization": f"Bearer {engine.auth.issue_system_token('rv44a-audit', 'system/AuditEvent.rs')}"}
    r = http.get("/fhir/AuditEvent", params={"patient": patient, "_count": "200"}, headers=auditor)
    assert r.status_code == 200, r.text
    return int(r.json()["total"])


def test_the_operators_read_of_a_held_a47_is_audited_against_her_record(module_eng: Engine, http: TestClient) -> None:
    h = _her(http, "RK1", _nid("32092319800921020"), "19800921")
    _merge_held(post(http, _a47("RK1M", "RK1N^^^FNXRMYY^MR", "壬^四四", "19800921", "RK1H^^^FNXRMYY^MR", "LIS")), "LIS")
    before = _audited(module_eng, http, f"Patient/{h['id']}")
    shown(http, module_eng, "RK1M", OPS)
    assert _audited(module_eng, http, f"Patient/{h['id']}") > before


# --- a declared application under its alias ---------------------------------------------------------------------

HIS_FORM = "HISV2^2.16.840.1.113883.19.4.1^ISO"  # the HIS's new interface as the site names it: a name and its OID
OTHER = "HISV2^2.16.840.1.113883.19.4.99^ISO"  # another application (another OID, HL7 2.A.33): no form of the group


@pytest.fixture(scope="module")
def alias_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The shipped site (FNXRMYY declaring ``HIS``) whose senders.yaml names ``HIS`` and ``HIS_FORM`` one
    application."""
    tmp = tmp_path_factory.mktemp("rv44aalias")
    site = tmp / "site"
    (site / "hl7v2").mkdir(parents=True)
    shipped = yaml.safe_load((DEFAULTS_DIR / "hl7v2" / "senders.yaml").read_text(encoding="utf-8"))
    (site / "hl7v2" / "senders.yaml").write_text(
        yaml.safe_dump({**shipped, "application_aliases": {"FNXRMYY": [["HIS", HIS_FORM]]}}, allow_unicode=True),
        encoding="utf-8")
    settings = Settings(data_dir=tmp / "var", http_port=0, mllp_port=0, base_url="https://huren.example", site=site)
    with Engine(settings) as engine, system_client(engine, "rv44aalias") as client:
        yield client


def _registered_twice(http: TestClient, tag: str, app: str, day: str) -> bytes:
    c = _nid(f"320923198010{day}020")
    assert ack_code_of(post(http, adt(f"{tag}a", f"{tag}A^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^四十", f"198010{day}",
                                      "F"))) == "AA"
    return post(http, adt(f"{tag}b", f"{tag}B^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^四十", f"198010{day}", "F", app=app))


def test_guard_the_his_under_its_aliased_form_as_sent_is_declared(alias_http: TestClient) -> None:
    """Guard: the HIS under the form the site wrote (name and OID) registering her again: AA, no W 205, linked."""
    ack = _registered_twice(alias_http, "RG1", HIS_FORM, "11")
    assert ack_code_of(ack) == "AA" and _w205(ack) == 0, err_lines(ack)
    assert nids(patients(alias_http, f"{MRN}|RG1B")[0]) == {_nid("32092319801011020")}


def test_another_application_sharing_only_the_forms_name_is_not_declared(alias_http: TestClient) -> None:
    ack = _registered_twice(alias_http, "RG2", OTHER, "12")
    assert ack_code_of(ack) == "AA"
    assert _w205(ack) == 1, err_lines(ack)
    assert nids(patients(alias_http, f"{MRN}|RG2B")[0]) == set()


def test_a_name_equal_to_the_aliased_oid_is_not_the_declared_his(tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp("rv44aoid")
    site = tmp / "site"
    (site / "hl7v2").mkdir(parents=True)
    shipped = yaml.safe_load((DEFAULTS_DIR / "hl7v2" / "senders.yaml").read_text(encoding="utf-8"))
    (site / "hl7v2" / "senders.yaml").write_text(yaml.safe_dump(
        {**shipped, "application_aliases": {"FNXRMYY": [["HIS", "^2.16.840.1.113883.19.4.1^ISO"]]}},
        allow_unicode=True), encoding="utf-8")
    settings = Settings(data_dir=tmp / "var", http_port=0, mllp_port=0, base_url="https://huren.example", site=site)
    with Engine(settings) as engine, system_client(engine, "rv44aoid") as http:
        ack = _registered_twice(http, "RG3", "2.16.840.1.113883.19.4.1", "13")
        assert _w205(ack) == 1, err_lines(ack)


# --- CDS: a draft without status/intent ---------------------------------------------------------------------------

SIGN = "/cds-services/huren-recognition-sign"


@pytest.mark.parametrize("status", [None, "", ["draft"]], ids=["null", "empty", "array"])
def test_a_draft_whose_status_is_no_code_is_a_400_outcome(engine: Any, ward: dict[str, Any], status: Any) -> None:
    """``status`` present but null, empty or an array: 400, an OperationOutcome naming it -- never a card, never a
    500."""
    p = ward["alice_b"]
    r = ward["http"].post(SIGN, json=hook_request("order-sign", p, [{**draft("d1", cbc(B), p), "status": status}]),
                          headers=bearer(engine))
    assert r.status_code == 400, (r.status_code, r.text[:400])
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["expression"] == ["context.draftOrders.entry[0].resource.status"], body


def test_guard_a_medication_draft_without_status_beside_a_valid_order_keeps_the_card(
        engine: Any, ward: dict[str, Any]) -> None:
    """Guard: a MedicationRequest draft without status (not huren's to check) beside a valid ServiceRequest draft:
    200 and the card."""
    p = ward["alice_b"]
    med = {"resourceType": "MedicationRequest", "id": "m1", "intent": "order", "subject": {"reference": p}}
    r = ward["http"].post(SIGN, json=hook_request("order-sign", p, [med, draft("d1", cbc(B), p)]),
                          headers=bearer(engine))
    assert r.status_code == 200, r.text[:400]
    [card] = r.json()["cards"]
    assert card["links"][0]["url"].endswith(ward["prior"])


def _a40(control: str, pid3: str, name: str, birth: str, mrg1: str, app: str, pv1: str = "") -> str:
    return (f"MSH|^~\\&|{app}|FNXRMYY|HUREN|FNYGT|20261201121500||ADT^A40^ADT_A39|{control}|P|2.5.1\r"
            f"EVN|A40|20261201121500\rPID|1||{pid3}||{name}||{birth}|F\rMRG|{mrg1}\r{pv1}")
