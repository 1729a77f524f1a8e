"""A transaction's conditional update cited by its absolute fullUrl from a conditional or ifMatch
entry (twenty-third round, prb23).

Left by prb22: a conditional or ifMatch entry is judged while the transaction is planned, before
the other entries' searches run, and a conditional update (``PUT Type?search``) had no id there --
so a Provenance citing it by its absolute ``fullUrl`` was refused 422 "cites a record that is not
known" (alike for a fullUrl naming a withheld record and a made-up one) where the same entries
without the condition were written. Now the conditional update stands, while planned, under a
provisional id (its body's, else a new one), judged by its own body as the transaction's other
entries are; when run, the citation names the record its search found or created. Real HL7 over
MLLP, real HTTP through FastAPI, real tokens, the real store.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_hl7fix17_review import document
from tests.test_prb22_own_entries import _callers, _note, _post, _shape, _txn
from tests.test_probe21_derived_writes import _provenance, _written

__all__ = ["fhir"]


def _hospital(engine: Engine) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("his")}


def _cond_put(patient: str, full_url: str, identifier: str, **kw: Any) -> dict[str, Any]:
    body = _note(patient, identifier=[{"system": "urn:x:prb23", "value": identifier}], **kw)
    return {"fullUrl": full_url, "resource": body,
            "request": {"method": "PUT", "url": f"DocumentReference?identifier=urn:x:prb23|{identifier}"}}


@pytest.mark.parametrize("who", ["clinician", "township"])
def test_a_conditional_entry_citing_a_conditional_update_by_its_absolute_full_url(
        engine: Engine, fhir: TestClient, who: str) -> None:  # noqa: F811
    acks = send(engine, document("CU1", "DOC-CU1", "cu1.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    plain = _written(engine, "CU1")
    h = _callers(engine)[who]
    base = engine.settings.fhir_base_url
    # the same transaction, the citing Provenance plain and conditional: both written
    for n, cond in enumerate(({}, {"ifNoneExist": "_id=prb23-no-such-provenance"})):
        full = f"{base}/DocumentReference/prb23-cu-{who}-{n}"
        for order in ("after", "before"):
            entries = [_cond_put(plain["Patient"], full, f"cu-{who}-{n}-{order}"),
                       _post(_provenance(full, plain["Organization"]), **cond)]
            out = fhir.post("/fhir", headers=h, json=_txn(*(entries if order == "after" else entries[::-1])))
            assert out.status_code == 200, (cond, order, out.text)
            statuses = [e["response"]["status"] for e in out.json()["entry"]]
            assert statuses == ["201 Created"] * 2, statuses
            prov = next(e for e in out.json()["entry"] if "Provenance" in e["response"]["location"])
            doc = next(e for e in out.json()["entry"] if "DocumentReference" in e["response"]["location"])
            cited = fhir.get("/fhir/" + prov["response"]["location"].split("/_history")[0], headers=h).json()
            assert cited["target"] == [{"reference": doc["response"]["location"].split("/_history")[0]}]
    # an ifMatch PUT of a Provenance it wrote, citing a conditional update that matches a note it wrote
    r = fhir.post("/fhir/Provenance", headers=h, json=_provenance(plain["DocumentReference"], plain["Organization"]))
    assert r.status_code == 201, r.text
    pid, version = r.json()["id"], r.json()["meta"]["versionId"]
    first = fhir.post("/fhir", headers=h, json=_txn(_cond_put(plain["Patient"], f"{base}/DocumentReference/x",
                                                              f"cu-{who}-m")))
    assert first.status_code == 200, first.text
    matched = first.json()["entry"][0]["response"]["location"].split("/_history")[0]
    full = f"{base}/DocumentReference/prb23-cu-{who}-m"
    out = fhir.post("/fhir", headers=h, json=_txn(
        {"resource": {**_provenance(full, plain["Organization"]), "id": pid},
         "request": {"method": "PUT", "url": f"Provenance/{pid}", "ifMatch": f'W/"{version}"'}},
        _cond_put(plain["Patient"], full, f"cu-{who}-m", description="again")))
    assert out.status_code == 200, out.text
    assert [e["response"]["status"] for e in out.json()["entry"]] == ["200 OK", "200 OK"], out.text
    assert fhir.get(f"/fhir/Provenance/{pid}", headers=h).json()["target"] == [{"reference": matched}]


@pytest.mark.parametrize("who", ["clinician", "township"])
def test_a_conditional_update_s_full_url_naming_a_withheld_record_answers_as_a_made_up_one(
        engine: Engine, fhir: TestClient, who: str) -> None:  # noqa: F811
    """The fullUrl stands for the entry, whatever stored record its URL names: a withheld record's
    URL and a made-up one answer alike (200, the citation pointing at the entry's record), and
    the withheld record is untouched."""
    acks = send(engine, document("CV1", "DOC-CV1", "cv1.rtf", "V"), document("CP1", "DOC-CP1", "cp1.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 2, acks
    very, plain = _written(engine, "CV1"), _written(engine, "CP1")
    h = _callers(engine)[who]
    base = engine.settings.fhir_base_url
    shapes = {}
    for name, ref in (("withheld", very["DocumentReference"]), ("made up", "DocumentReference/prb23-cu-none")):
        full = f"{base}/{ref}"
        out = fhir.post("/fhir", headers=h, json=_txn(
            _post(_provenance(full, plain["Organization"]), ifNoneExist="_id=prb23-none-p"),
            _cond_put(plain["Patient"], full, f"cv-{who}-{name.replace(' ', '-')}")))
        assert out.status_code == 200, (name, out.text)
        entries = out.json()["entry"]
        new = entries[1]["response"]["location"].split("/_history")[0]
        prov = entries[0]["response"]["location"].split("/_history")[0]
        assert new != very["DocumentReference"]
        assert fhir.get(f"/fhir/{prov}", headers=h).json()["target"] == [{"reference": new}]
        shapes[name] = [e["response"]["status"] for e in entries]
    assert shapes["withheld"] == shapes["made up"] == ["201 Created", "201 Created"], shapes
    assert fhir.get(f"/fhir/{very['DocumentReference']}", headers=_hospital(engine)).json()["meta"]["versionId"] == "1"


@pytest.mark.parametrize("who", ["clinician", "township"])
def test_guard_a_conditional_entry_citing_a_withheld_record_by_its_id_beside_a_conditional_update(
        engine: Engine, fhir: TestClient, who: str) -> None:  # noqa: F811
    """A record outside the transaction, cited by its relative reference, is judged as stored: withheld
    and made up refused alike (422), nothing written."""
    acks = send(engine, document("CV2", "DOC-CV2", "cv2.rtf", "V"), document("CP2", "DOC-CP2", "cp2.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 2, acks
    very, plain = _written(engine, "CV2"), _written(engine, "CP2")
    h = _callers(engine)[who]
    base = engine.settings.fhir_base_url
    shapes = {}
    for name, ref in (("withheld", very["DocumentReference"]), ("made up", "DocumentReference/prb23-cu-nothing")):
        out = fhir.post("/fhir", headers=h, json=_txn(
            _post(_provenance(ref, plain["Organization"]), ifNoneExist="_id=prb23-none-q"),
            _cond_put(plain["Patient"], f"{base}/DocumentReference/prb23-cu-other-{name[0]}", f"cw-{who}-{name[0]}")))
        shapes[name] = _shape(out, ref.split("/", 1)[1], f"prb23-cu-other-{name[0]}")
    assert shapes["withheld"] == shapes["made up"] and shapes["made up"][0] == 422, shapes
    found = fhir.get("/fhir/DocumentReference", params={"identifier": f"urn:x:prb23|cw-{who}-w"},
                     headers=_hospital(engine)).json()
    assert found["total"] == 0, found
