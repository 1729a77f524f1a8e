"""rvrvpriv26 probes: ``recover_merged_keys`` (run at first start and by ``huren identity rebuild``)
against merges stored by TODAY's code, and the scoped read of a resident's own merged records.
Real path: HL7 over POST /hl7v2, FHIR over the FastAPI app, the real store."""

from __future__ import annotations

from adapters.hl7v2.ack import ack_code_of
from tests.test_mergemend25_merge import A_NID, B_NID, _operator, _pid, _resident, world  # noqa: F401


def _ids(bundle: dict) -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", []) if e["resource"]["resourceType"] == "Patient"}


def test_a_number_removed_then_a_numberless_merge_survives_identity_rebuild(world):  # noqa: F811
    """W was registered with B's number by mistake; an operator removes the number (PUT), the hospital
    then merges the now numberless W into A's record (A40: AA, followed -- today's code stores no
    merged_key, W carried no number when merged). ``huren identity rebuild`` must not change that
    answer: nothing in the store changed."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    w = register("MRN-W", B_NID, "钱^秘密")
    ops = _operator(world)
    stored = http.get(f"/fhir/Patient/{w}", headers=ops).json()
    stored.pop("meta", None)
    stored["identifier"] = [i for i in stored["identifier"] if B_NID not in str(i.get("value"))]
    stored["name"] = [{"text": "赵一", "family": "赵", "given": ["一"]}]
    stored["gender"], stored["birthDate"] = "male", "1990-01-01"
    r = http.put(f"/fhir/Patient/{w}", json=stored, headers=ops)
    assert r.status_code == 200, r.text
    assert B_NID not in http.get(f"/fhir/Patient/{w}", headers=ops).text
    assert not world.identity.record(w).get("nid_key")
    ack = send("A40", _pid("MRN-A", A_NID, "赵^一"), "MRG|MRN-W^^^FNXRMYY^MR\r")
    assert ack_code_of(ack) == "AA", ack
    before = world.identity.person_compartment(a)
    assert w in before and world.identity.kept_record(w) == a
    ha = _resident(world, a)
    enc = http.get("/fhir/Encounter", headers=ha)
    assert "V-MRN-W" in enc.text, enc.text[:400]
    world.identity.rebuild()
    assert world.identity.person_compartment(a) == before, world.identity.record(w)
    assert world.identity.kept_record(w) == a, world.identity.record(w)
    enc = http.get("/fhir/Encounter", headers=ha)
    assert "V-MRN-W" in enc.text, enc.text[:400]


def test_her_own_merged_away_records_are_read_and_counted_alike(world):  # noqa: F811
    """A2 (her number) and U (no number) merged into A: A's token reads both by id, and the Patient
    search lists and counts them; A2's old token reads A too."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    a2 = register("MRN-A2", A_NID, "赵^一")
    u = register("MRN-U", None, "无名^氏", "19900101", "M")
    b = register("MRN-B", B_NID, "钱^秘密")
    for mrn in ("MRN-A2", "MRN-U"):
        ack = send("A40", _pid("MRN-A", A_NID, "赵^一"), f"MRG|{mrn}^^^FNXRMYY^MR\r")
        assert ack_code_of(ack) == "AA", ack
    ha = _resident(world, a)
    for pid in (a, a2, u):
        assert http.get(f"/fhir/Patient/{pid}", headers=ha).status_code == 200, pid
    assert http.get(f"/fhir/Patient/{b}", headers=ha).status_code == 404
    page = http.get("/fhir/Patient?_count=50", headers=ha).json()
    assert _ids(page) == {a, a2, u}, page
    assert page.get("total", len(page.get("entry", []))) == 3, page.get("total")
    count = http.get("/fhir/Patient?_summary=count", headers=ha).json()
    assert count["total"] == 3, count
    ev = http.get(f"/fhir/Patient/{a}/$everything", headers=ha)
    assert ev.status_code == 200 and {a, a2, u} <= _ids(ev.json()), ev.text[:400]
    assert http.get(f"/fhir/Patient/{a}", headers=_resident(world, a2)).status_code == 200
    enc = http.get("/fhir/Encounter", headers=ha)
    assert all(f"V-MRN-{m}" in enc.text for m in ("A", "A2", "U")), enc.text[:400]
