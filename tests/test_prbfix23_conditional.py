"""prbfix23 (twenty-third round): a conditional update whose search matches nothing, its body
naming the id of a record that stands, is 409 Conflict (R4 http.html#cond-update) -- over HTTP and
as a batch or transaction entry, for every caller; a record the caller may not read there answers
as a made-up id does.

Real HL7 over MLLP, real HTTP through FastAPI, real tokens, the real store.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_hl7fix17_review import document
from tests.test_prb22_own_entries import _callers, _note
from tests.test_prb23_rv_probes import _hospital, _made_up, _shape
from tests.test_probe21_derived_writes import _written

__all__ = ["fhir"]

_NOTHING = "DocumentReference?identifier=urn:x|prbfix23-matches-nothing"


def _callers_all(engine: Engine) -> dict[str, dict[str, str]]:
    return {**_callers(engine), "hospital": _hospital(engine)}


def _entry(doc: dict[str, Any]) -> dict[str, Any]:
    return {"resource": doc, "request": {"method": "PUT", "url": _NOTHING}}


@pytest.mark.parametrize("who", ["clinician", "township", "hospital"])
def test_prbfix23_conditional_update_matching_nothing_at_a_stored_id_is_409_in_bundles_too(
        engine: Engine, fhir: TestClient, who: str) -> None:  # noqa: F811
    tag = "CQ" + who[0].upper()
    acks = send(engine, document(tag, f"DOC-{tag}", "cq.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    ref = _written(engine, tag)["DocumentReference"]
    h = _callers_all(engine)[who]
    doc = {**fhir.get(f"/fhir/{ref}", headers=h).json(), "description": "over it"}
    r = fhir.put("/fhir/DocumentReference", params={"identifier": "urn:x|prbfix23-matches-nothing"}, json=doc, headers=h)
    assert r.status_code == 409, (who, r.status_code, r.text[:300])
    assert r.json()["issue"][0]["code"] == "conflict", r.text
    r = fhir.post("/fhir", headers=h, json={"resourceType": "Bundle", "type": "batch", "entry": [_entry(doc)]})
    assert r.status_code == 200, r.text
    assert r.json()["entry"][0]["response"]["status"].startswith("409"), (who, r.text[:400])
    r = fhir.post("/fhir", headers=h, json={"resourceType": "Bundle", "type": "transaction", "entry": [_entry(doc)]})
    assert r.status_code == 409, (who, r.status_code, r.text[:300])
    assert fhir.get(f"/fhir/{ref}", headers=h).json()["meta"]["versionId"] == "1"
    # no id in the body: the search matching nothing creates, as ever
    fresh = {k: v for k, v in doc.items() if k not in ("id", "meta")}
    r = fhir.put("/fhir/DocumentReference", params={"identifier": "urn:x|prbfix23-matches-nothing"}, json=fresh,
                 headers=h)
    assert r.status_code == 201, (who, r.status_code, r.text[:300])


def test_prbfix23_conditional_update_at_a_deleted_id_re_creates(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """A deleted record no longer stands: a fully trusted client's conditional update naming its id
    (the search matching nothing) re-creates it, as a PUT at the id does."""
    acks = send(engine, document("CQD", "DOC-CQD", "cqd.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    ref = _written(engine, "CQD")["DocumentReference"]
    h = _hospital(engine)
    doc = fhir.get(f"/fhir/{ref}", headers=h).json()
    assert fhir.delete(f"/fhir/{ref}", headers=h).status_code == 204
    r = fhir.put("/fhir/DocumentReference", params={"identifier": "urn:x|prbfix23-matches-nothing"},
                 json={k: v for k, v in doc.items() if k != "meta"}, headers=h)
    assert r.status_code in (200, 201), r.text
    assert fhir.get(f"/fhir/{ref}", headers=h).json()["meta"]["versionId"] == "3"


@pytest.mark.parametrize("who", ["clinician", "township"])
def test_prbfix23_conditional_update_at_a_withheld_id_answers_as_a_made_up_one(
        engine: Engine, fhir: TestClient, who: str) -> None:  # noqa: F811
    """The 409 is for a record the caller may write over: a V document's id (live or deleted) in the
    body of a conditional update matching nothing answers as a made-up id's, over HTTP, in a batch
    and in a transaction; the V document unchanged."""
    tag = "CW" + who[0].upper()
    acks = send(engine, document(f"{tag}1", f"DOC-{tag}1", "v.rtf", "V"), document(f"{tag}2", f"DOC-{tag}2", "g.rtf", "V"),
                document(f"{tag}3", f"DOC-{tag}3", "p.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 3, acks
    very, gone, plain = (_written(engine, f"{tag}{n}") for n in (1, 2, 3))
    assert fhir.delete(f"/fhir/{gone['DocumentReference']}", headers=_hospital(engine)).status_code == 204
    h = _callers(engine)[who]
    shapes = {}
    for name, rid in (("withheld", very["DocumentReference"].split("/", 1)[1]),
                      ("deleted withheld", gone["DocumentReference"].split("/", 1)[1]),
                      ("made up", _made_up(f"{tag}-none"))):
        doc = {**_note(plain["Patient"]), "id": rid}
        shapes[name] = [
            _shape(fhir.put("/fhir/DocumentReference", params={"identifier": "urn:x|prbfix23-matches-nothing"},
                            json=doc, headers=h), rid),
            *(_shape(fhir.post("/fhir", headers=h, json={"resourceType": "Bundle", "type": kind,
                                                         "entry": [_entry(doc)]}), rid)
              for kind in ("batch", "transaction"))]
    assert shapes["withheld"] == shapes["deleted withheld"] == shapes["made up"], shapes
    assert shapes["made up"][0][0] == 404, shapes["made up"]
    hospital = _hospital(engine)
    assert fhir.get(f"/fhir/{very['DocumentReference']}", headers=hospital).json()["meta"]["versionId"] == "1"
