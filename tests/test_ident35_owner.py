"""ident35: the versions the number's owner re-keys are named by a Provenance of their own, and every record is reached.

FNXRMYY (the number's owner) restating or registering its <n> as another person than the one FNZYY's records name
under FNXRMYY's MRN re-keys those records in the same write (ownfix34): the number under FNZYY's kept-apart system.
Those versions were named by no Provenance: unsigned, and the registrar's walk (``persons._walked``: a record whose
trail is marked, or older than the registrations table) read "cannot be told" -- FNZYY's own HIS could no longer
correct its record. Now one separate Provenance, written and signed in the owner's write, names each re-keyed
version: activity a revision, reason the owner's contradiction, agent huren, entity the owner's message; it
registers nothing (the owner's A04 does not become the registrar of FNZYY's record). And the owner's search
reaches every record naming the number, not the first 50. Real HL7 through ``POST /hl7v2``, the operator's
replay, reads over ``/fhir``, on SQLite and mongomock."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from adapters.convert import persons
from adapters.hl7v2.ack import ack_code_of
from engine.audit.provenance import verify_provenance
from engine.engine import Engine
from engine.messages import message_id
from tests.hl7_calls import err_lines, post
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_mfix34_members import APART, FNZYY_MRN, _fnzyy, _tokens, both  # noqa: F401
from tests.test_regfix34_registrar import _marked
from tests.test_rvidentity32_probes import MRN, adt, oru, patients
from tests.test_rvregistry34_probes import _answers, _ops

Both = tuple[Engine, TestClient, dict[str, str]]


def _provenances(http: TestClient, ref: str) -> list[dict]:
    found = http.get("/fhir/Provenance", params={"target": ref, "_count": "100"})
    assert found.status_code == 200, found.text
    return [e["resource"] for e in found.json().get("entry", [])]


def _rekeying(http: TestClient, ref: str) -> list[dict]:
    """The Provenances naming ``ref`` whose reason is the owner's contradiction (``persons.REKEYED``)."""
    return [p for p in _provenances(http, ref)
            if any(c.get("code") == persons.REKEYED["code"] for r in p.get("reason") or () for c in r.get("coding") or ())]


def _verified(engine: Engine, prov: dict) -> bool:
    targets = []
    for t in prov["target"]:
        rtype, rid, _, vid = t["reference"].split("/")
        targets.append(engine.repository.vread(rtype, rid, vid))
    return verify_provenance(prov, targets, engine.audit.keys)


def _a08(control: str, pid3: str, name: str, birth: str, sex: str, app: str = "HIS") -> str:
    return _fnzyy(adt(control, pid3, name, birth, sex, "A08", app=app))


def test_the_rekeyed_version_is_named_by_a_signed_provenance_and_the_members_registrar_stands(both: Both) -> None:  # noqa: F811
    """FNXRMYY's A08 restating OP1 as 陈四 re-keys FNZYY's record of 冯三 (its own ZOP1, OP1 beside): one
    Provenance names exactly that version, signed, its reason the owner's contradiction, its entity FNXRMYY's
    A08, its agent huren; the A08's own Provenance does not name FNZYY's record. Who registered FNZYY's record
    is still FNZYY's HIS, read from the table and by the walk alike. The operator then replays FNZYY's A04 (the
    record's trail is marked: the walk answers from then on): FNZYY's LIS restating the record as another
    person is refused, FNZYY's HIS doing so is accepted (before: the re-keyed version unnamed, the walk said
    "cannot be told" and refused the HIS too)."""
    engine, http, _ = both
    assert ack_code_of(post(http, adt("OP1A", "OP1^^^FNXRMYY^MR", "冯^三", "19610101", "M"))) == "AA"
    pid3 = "ZOP1^^^FNZYY^MR~OP1^^^FNXRMYY^MR"
    assert ack_code_of(post(http, _fnzyy(adt("OP1B", pid3, "冯^三", "19610101", "M")))) == "AA"
    ack = post(http, adt("OP1C", "OP1^^^FNXRMYY^MR", "陈^四", "19920303", "F", "A08"))
    assert ack_code_of(ack) == "AA" and {e.split("|")[4] for e in err_lines(ack)} == {"W"}, ack
    (own,) = patients(http, f"{FNZYY_MRN}|ZOP1")
    ref, version = f"Patient/{own['id']}", own["meta"]["versionId"]
    assert f"{APART}|OP1" in _tokens(own), own
    (prov,) = _rekeying(http, ref)
    assert [t["reference"] for t in prov["target"]] == [f"{ref}/_history/{version}"], prov["target"]
    assert prov["activity"]["coding"][0]["code"] == "UPDATE", prov["activity"]
    assert [a["who"].get("display") for a in prov["agent"]] == ["huren integration engine"], prov["agent"]
    (entity,) = prov["entity"]
    assert entity["role"] == "source" and entity["what"]["identifier"]["value"] == "OP1C", entity
    assert prov.get("signature") and _verified(engine, prov), prov.get("signature")
    # the owner's A08's own Provenance names the owner's record only
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "OP1C"))
    assert doc is not None and f"Provenance/{prov['id']}" in doc["resources"], doc
    mine = [p for p in _provenances(http, ref) if p["id"] != prov["id"]]
    assert all(e["what"]["identifier"]["value"] != "OP1C" for p in mine for e in p.get("entity") or ()), mine
    assert _answers(engine, ref) == ("HIS", "HIS")
    # the operator replays FNZYY's A04: the record's trail is marked, the walk answers it from now on
    r = http.post(f"/admin/quarantine/{message_id('FNZYY', 'OP1B')}/replay", headers=_ops(engine))
    assert r.status_code == 200 and r.json()["ack_code"] == "AA", r.text
    assert _marked(engine, ref)
    assert ack_code_of(post(http, _a08("OP1D", "ZOP1^^^FNZYY^MR", "王^五", "19800505", "F", app="LIS"))) == "AE"
    ack = post(http, _a08("OP1E", "ZOP1^^^FNZYY^MR", "王^五", "19800505", "F"))
    assert ack_code_of(ack) == "AA" and {e.split("|")[4] for e in err_lines(ack)} == {"W"}, ack
    (now,) = patients(http, f"{FNZYY_MRN}|ZOP1")
    assert now["gender"] == "female", now


def test_the_owners_registration_does_not_register_the_members_record_it_rekeys(both: Both) -> None:  # noqa: F811
    """FNZYY's lab result for 冯三 names OQ1^^^FNXRMYY beside its own ZOQ1 while FNXRMYY holds no OQ1: a
    placeholder. FNXRMYY's A04 then registers OQ1 as 陈四 and re-keys the placeholder: the re-key's Provenance
    names it, but an A04 names what it registers -- not this record: FNZYY's record stays unregistered (table
    and walk alike), no registrations row names FNXRMYY's A04, and FNZYY's HIS registering it becomes its
    registrar."""
    engine, http, _ = both
    result = _fnzyy(oru("OQ1A", "ZOQ1^^^FNZYY^MR~OQ1^^^FNXRMYY^MR", "冯^三", "19610101", "M", "OQGLU"))
    assert ack_code_of(post(http, result)) == "AA"
    ack = post(http, adt("OQ1B", "OQ1^^^FNXRMYY^MR", "陈^四", "19920303", "F"))
    assert ack_code_of(ack) == "AA" and {e.split("|")[4] for e in err_lines(ack)} == {"W"}, ack
    (own,) = patients(http, f"{FNZYY_MRN}|ZOQ1")
    ref = f"Patient/{own['id']}"
    assert f"{APART}|OQ1" in _tokens(own) and f"{MRN}|OQ1" not in _tokens(own), own
    (prov,) = _rekeying(http, ref)
    assert _verified(engine, prov)
    assert _answers(engine, ref) == (persons._UNREGISTERED, persons._UNREGISTERED)
    assert not engine.ingestor.messages.registrations_of(ref)
    assert ack_code_of(post(http, _fnzyy(adt("OQ1C", "ZOQ1^^^FNZYY^MR", "冯^三", "19610101", "M")))) == "AA"
    rows = engine.ingestor.messages.registrations_of(ref)
    assert [row["message"] for row in rows] == [message_id("FNZYY", "OQ1C")], rows
    assert _answers(engine, ref) == ("HIS", "HIS")


def test_every_record_naming_the_number_is_rekeyed_not_the_first_fifty(
        both: Both, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """55 of FNZYY's records (one batch of A04s: its own ZOR<i>, FNXRMYY's OR1 beside, the same person 冯三 as
    FNXRMYY's) and FNXRMYY's A08 restating OR1 as 陈四: every one is re-keyed (the search read page after page --
    its page set to 20 here, so that three are read), counted for FNZYY's operator, and named by the one re-key
    Provenance; a clinician's search by FNXRMYY's MRN finds FNXRMYY's person alone (before: the first 50)."""
    engine, http, clinician = both
    monkeypatch.setattr(persons, "_OWNERS_PAGE", 20)
    assert ack_code_of(post(http, adt("OR1A", "OR1^^^FNXRMYY^MR", "冯^三", "19610101", "M"))) == "AA"
    body = "FHS|^~\\&|HIS|FNZYY\rBHS|^~\\&|HIS|FNZYY\r" + "".join(
        _fnzyy(adt(f"OR1B{i}", f"ZOR{i}^^^FNZYY^MR~OR1^^^FNXRMYY^MR", "冯^三", "19610101", "M")) for i in range(55)
    ) + "BTS|55\rFTS|1\r"
    ack = post(http, body)
    assert ack.count(b"MSA|AA|") == 55, ack
    ack = post(http, adt("OR1C", "OR1^^^FNXRMYY^MR", "陈^四", "19920303", "F", "A08"))
    assert ack_code_of(ack) == "AA", ack
    found = http.get("/fhir/Patient", params={"identifier": f"{MRN}|OR1", "_count": "100"}, headers=clinician)
    assert found.status_code == 200, found.text
    assert [e["resource"]["gender"] for e in found.json().get("entry", [])] == ["female"], found.text
    kept = http.get("/fhir/Patient", params={"identifier": f"{APART}|OR1", "_count": "100"}).json()
    records = {f"Patient/{e['resource']['id']}": e["resource"]["meta"]["versionId"] for e in kept.get("entry", [])}
    assert len(records) == 55, sorted(records)
    (prov,) = {p["id"]: p for ref in records for p in _rekeying(http, ref)}.values()
    assert sorted(t["reference"] for t in prov["target"]) == sorted(f"{r}/_history/{v}" for r, v in records.items())
    assert _verified(engine, prov)
    rows = [w for w in engine.ingestor.messages.fidelity.find({"institution": "FNZYY"})
            if w.get("count_as") == "member_contradicted" and w.get("count_key") == "FNXRMYY"]
    assert any(set(records) <= set(w.get("records") or ()) for w in rows), rows
