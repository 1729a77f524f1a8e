"""rvlast25b review of txfix25: versioned references to a Bundle entry spelled absolute, through
the real app over the real store (the ``eng`` fixture of tests/test_fhir_api.py)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.test_fhir_api import eng, http
from tests.test_txfix25_mend import _our_base
from tests.test_txfix25_rv_review import OTHER, _local, _obs, _patient, _tx

__all__ = ["eng", "http"]


def _filed_under_ours_or_refused(http: TestClient, r, ours: str) -> None:
    if r.status_code == 400:
        assert r.json()["resourceType"] == "OperationOutcome"
        assert http.get("/fhir/Observation").json()["total"] == 0
        return
    assert r.status_code == 200, r.text
    obs = http.get(_local(r.json()["entry"][1]["response"]["location"])).json()
    new_patient = _local(r.json()["entry"][0]["response"]["location"]).removeprefix("/fhir/")
    subject = obs["subject"]["reference"]
    found = http.get("/fhir/Observation", params={"subject": f"Patient/{ours}"}).json()["total"]
    # never the server's own record that merely holds the sender's temporary id (another person)
    assert not subject.endswith(f"Patient/{ours}") and f"Patient/{ours}/" not in subject, (subject, new_patient, found)
    assert found == 0, "the result is filed under our existing patient, another person"


def test_absolute_versioned_reference_to_entry_at_our_base(http: TestClient) -> None:
    """txfix25 refuses ``Patient/tmp/_history/1`` (relative) naming a Bundle entry; the same reference
    spelled absolute at this server's base must not file the result under our Patient/tmp."""
    base = _our_base(http)
    assert http.put("/fhir/Patient/tmpa", json={**_patient("oursa"), "id": "tmpa"}).status_code == 201
    r = _tx(http, [
        {"fullUrl": f"{base}/Patient/tmpa", "resource": _patient("theirsa"),
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": _obs(f"{base}/Patient/tmpa/_history/1"), "request": {"method": "POST", "url": "Observation"}}])
    _filed_under_ours_or_refused(http, r, "tmpa")


def test_absolute_versioned_reference_to_entry_at_other_base(http: TestClient) -> None:
    """The other server's spelling, absolute and versioned, naming the Bundle's own entry."""
    assert http.put("/fhir/Patient/tmpb", json={**_patient("oursb"), "id": "tmpb"}).status_code == 201
    r = _tx(http, [
        {"fullUrl": f"{OTHER}/Patient/tmpb", "resource": _patient("theirsb"),
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": _obs(f"{OTHER}/Patient/tmpb/_history/1"), "request": {"method": "POST", "url": "Observation"}}])
    if r.status_code == 400:
        assert http.get("/fhir/Observation").json()["total"] == 0
        return
    assert r.status_code == 200, r.text
    new_patient = _local(r.json()["entry"][0]["response"]["location"]).removeprefix("/fhir/")
    obs = http.get(_local(r.json()["entry"][1]["response"]["location"])).json()
    # the result names the Bundle's patient as written here (or the transaction is refused, as the
    # relative spelling is); left as the other server's URL it is a result of no patient here
    assert obs["subject"]["reference"] == new_patient, (obs["subject"], new_patient)


def test_batch_relative_reference_in_a_foreign_fullurl_entry_not_filed_under_our_patient(http: TestClient) -> None:
    """txfix25 refuses (400) ``Patient/p1`` in the transaction entry ``http://other.example/fhir/Observation/o1``
    (the other server's patient). The same entry in a *batch* must not be stored as this server's Patient/p1 (a
    different person who holds that id): the entry refused (4xx), nothing filed under p1."""
    assert http.put("/fhir/Patient/bp1", json={**_patient("oursbp"), "id": "bp1"}).status_code == 201
    r = _tx(http, [{"fullUrl": f"{OTHER}/Observation/o1", "resource": _obs("Patient/bp1", performer=[{"display": "lab"}]),
                    "request": {"method": "POST", "url": "Observation"}}], "batch")
    assert r.status_code == 200, r.text
    status = r.json()["entry"][0]["response"]["status"]
    filed = http.get("/fhir/Observation", params={"subject": "Patient/bp1"}).json()["total"]
    assert status.startswith("4") and filed == 0, (status, filed)
