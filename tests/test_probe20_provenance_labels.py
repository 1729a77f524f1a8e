"""A Provenance names what its message wrote: one naming a record labelled beyond the caller is
withheld like that record (twentieth round, probe20).

huren writes one Provenance per HL7 message, its ``target`` every record the message wrote. A
hospital sends a discharge summary very restricted (MDM^T02, TXA-18 ``V``): 王建国 and a clinician
read the DocumentReference (and its text, an Observation) 404, as if it did not exist -- yet the
message's Provenance, in his compartment, showed both of them its id and type, the message type
and number, in a search of his Provenances, in ``$everything``, and by ``target=`` (total 1 for the
real id, 0 for a made-up one: the search confirmed the record). Now a Provenance is decided as a
recognition flag is (``confidentiality.DERIVED``, ``ScopedRepository.admit``): shown only when no
record it cites, as that record stands now, carries a label withheld from the caller. Real HL7
over MLLP, real HTTP through FastAPI, real tokens, the real store (SQLite).
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from tests.test_convert11_thinner import fhir, result, send  # noqa: F401  (the reader fixture)
from tests.test_hl7fix17_review import document
from tests.test_lead20_provenance_writes import _token

__all__ = ["fhir"]


def _written(engine: Engine, control: str) -> dict[str, str]:
    """The message's records, by type (one of each here): ``Type`` -> ``Type/id``."""
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
    assert doc is not None
    return {ref.split("/", 1)[0]: ref for ref in doc["resources"]}


def _ids(response: Any, rtype: str = "Provenance") -> set[str]:
    assert response.status_code == 200, response.text
    return {e["resource"]["id"] for e in response.json().get("entry") or () if e["resource"]["resourceType"] == rtype}


def test_a_provenance_naming_a_withheld_document_is_withheld_with_it(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("PV1", "DOC-PV1", "pv1.rtf", "V"), document("PV2", "DOC-PV2", "pv2.rtf", "R"),
                document("PV3", "DOC-PV3", "pv3.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 3, acks
    very, restricted, plain = (_written(engine, c) for c in ("PV1", "PV2", "PV3"))
    pid = very["Patient"].split("/", 1)[1]
    prov = {name: w["Provenance"].split("/", 1)[1] for name, w in
            (("very", very), ("restricted", restricted), ("plain", plain))}
    # the hospital's systems read every Provenance, each naming its document
    every = fhir.get(f"/fhir/Provenance?patient={pid}")
    assert _ids(every) == set(prov.values()) and every.json()["total"] == 3
    assert very["DocumentReference"] in fhir.get(f"/fhir/Provenance/{prov['very']}").text

    resident = _token(engine, "patient", ["patient/*.rs"], patient=pid)  # reads R, not V
    clinician = _token(engine, "user", ["user/*.rs"])  # reads neither
    for who, headers, shown in (("resident", resident, {"restricted", "plain"}), ("clinician", clinician, {"plain"})):
        hidden = {name for name in prov if name not in shown}
        withheld = [very] + ([restricted] if "restricted" in hidden else [])
        missing = fhir.get("/fhir/Provenance/no-such-provenance", headers=headers)
        assert missing.status_code == 404
        for w in withheld:
            assert fhir.get(f"/fhir/{w['DocumentReference']}", headers=headers).status_code == 404, who
        # read by id: as a missing one
        for name in hidden:
            r = fhir.get(f"/fhir/Provenance/{prov[name]}", headers=headers)
            assert (r.status_code, r.text) == (404, missing.text), (who, name)
            assert fhir.get(f"/fhir/Provenance/{prov[name]}/_history/1", headers=headers).status_code == 404
        for name in shown:
            assert fhir.get(f"/fhir/Provenance/{prov[name]}", headers=headers).status_code == 200, (who, name)
        # searched: not listed, not counted
        found = fhir.get(f"/fhir/Provenance?patient={pid}", headers=headers)
        assert _ids(found) == {prov[n] for n in shown} and found.json()["total"] == len(shown), who
        count = fhir.get(f"/fhir/Provenance?patient={pid}&_summary=count", headers=headers).json()
        assert count["total"] == len(shown), who
        # by the withheld document's id: the same answer as for an id nobody has
        made_up = fhir.get("/fhir/Provenance?target=DocumentReference/no-such-document", headers=headers).json()
        for w in withheld:
            for ref in (w["DocumentReference"], w["Observation"]):
                r = fhir.get(f"/fhir/Provenance?target={ref}", headers=headers)
                assert _ids(r) == set() and r.json()["total"] == made_up["total"] == 0, (who, ref)
        # nor in $everything, nor included beside a record the caller reads
        everything = fhir.get(f"/fhir/Patient/{pid}/$everything?_count=200", headers=headers)
        assert _ids(everything) == {prov[n] for n in shown}, who
        for w in withheld:
            assert w["DocumentReference"].split("/", 1)[1] not in everything.text, who
        beside = fhir.get(f"/fhir/Patient?_id={pid}&_revinclude=Provenance:target", headers=headers)
        assert _ids(beside) == {prov[n] for n in shown}, who
        # nor as a Bundle entry
        batch = {"resourceType": "Bundle", "type": "batch", "entry": [
            {"request": {"method": "GET", "url": f"Provenance/{prov['very']}"}},
            {"request": {"method": "GET", "url": f"Provenance?target={very['DocumentReference']}"}}]}
        entries = fhir.post("/fhir", json=batch, headers=headers).json()["entry"]
        assert entries[0]["response"]["status"].startswith("404"), who
        assert entries[1]["resource"]["total"] == 0, who


def test_a_result_labelled_after_its_message_withholds_that_messages_provenance(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, result("PL1", "78"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    written = _written(engine, "PL1")
    pid, prov = written["Patient"].split("/", 1)[1], written["Provenance"].split("/", 1)[1]
    clinician = _token(engine, "user", ["user/*.rs"])
    assert fhir.get(f"/fhir/Provenance/{prov}", headers=clinician).status_code == 200
    assert _ids(fhir.get(f"/fhir/Provenance?target={written['Observation']}", headers=clinician)) == {prov}

    # the hospital labels the result R afterwards (a FHIR update of its own system)
    system = _token(engine, "system", ["system/*.cruds"])
    obs = fhir.get(f"/fhir/{written['Observation']}").json()
    obs["meta"] = {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]}
    assert fhir.put(f"/fhir/{written['Observation']}", json=obs, headers=system).status_code == 200
    assert fhir.get(f"/fhir/{written['Observation']}", headers=clinician).status_code == 404
    assert fhir.get(f"/fhir/Provenance/{prov}", headers=clinician).status_code == 404
    r = fhir.get(f"/fhir/Provenance?target={written['Observation']}", headers=clinician)
    assert _ids(r) == set() and r.json()["total"] == 0
    assert fhir.get(f"/fhir/Provenance?patient={pid}&_summary=count", headers=clinician).json()["total"] == 0
    # the resident reads their own R result, and so its message's Provenance
    resident = _token(engine, "patient", ["patient/*.rs"], patient=pid)
    assert fhir.get(f"/fhir/Provenance/{prov}", headers=resident).status_code == 200
