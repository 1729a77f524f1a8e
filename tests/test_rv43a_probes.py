"""rv43a: review probes of round 42's merges (perfa42's resident compartment cache, perfa42b's resident audit
record, trim42b's shared site tables, omi42, conv42b, plan42). Each sends real bytes through the real path: HL7 v2
over ``POST /hl7v2``, FHIR over ``/fhir`` with a resident's token, the real store. A probe that shows a defect is a
strict xfail naming its severity."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import copy

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.settings import Settings
from tests.hl7_calls import post
from tests.identity39_calls import read_patient
from tests.test_a40b41_carried import BING, opened
from tests.test_rv41n_probes import _his, _nids, _reads
from tests.test_rvidentity32_probes import _nid, oru

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
