"""Review probes of prb22 (a transaction's citations judged by its own entries), rvp22.

Real HL7 over MLLP for the records, real HTTP through FastAPI with real tokens, the real store.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.repository.ids import deterministic_id
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_hl7fix17_review import document
from tests.test_prb22_deletes_audits import _shape
from tests.test_prb22_own_entries import _count, _note, _post, _txn
from tests.test_probe21_audit_writes import _event
from tests.test_probe21_derived_writes import OTHER, _issue, _provenance, _token, _written

__all__ = ["fhir"]
U = "urn:uuid:7e1d0c52-0000-4000-8000-0000000000"


# -- FINDING (HIGH): a Provenance citing the transaction's own flag is judged by what that flag cites,
# read from the store: a withheld record there fails the Provenance's entry, a made-up one the flag's
@pytest.mark.parametrize("who", ["clinician", "township"])
def test_rvp22_citing_an_own_flag_that_implicates_a_withheld_record_answers_as_made_up(
        engine: Engine, fhir: TestClient, who: str) -> None:  # noqa: F811
    acks = send(engine, document("RV1", "DOC-RV1", "rv1.rtf", "V"), document("RV2", "DOC-RV2", "rv2.rtf", "V"),
                document("RP1", "DOC-RP1", "rp1.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 3, acks
    very, gone, plain = _written(engine, "RV1"), _written(engine, "RV2"), _written(engine, "RP1")
    hospital = {"Authorization": "Bearer " + engine.auth.issue_system_token("his")}
    assert fhir.delete(f"/fhir/{gone['DocumentReference']}", headers=hospital).status_code == 204
    clinician = (_token(engine, "user", ["user/*.cruds"]) if who == "clinician"
                 else _token(engine, "system", ["system/*.cruds"], extra={"institution": "FNYLWSY"}))
    before = _count(fhir, engine, "Provenance"), _count(fhir, engine, "DetectedIssue")
    shapes = {}
    for name, ref in (("withheld", very["DocumentReference"]), ("deleted", gone["DocumentReference"]),
                      ("made up", "DocumentReference/rvp22-no-such-doc")):
        out = fhir.post("/fhir", headers=clinician, json=_txn(
            _post(_provenance(U + "01", plain["Organization"])),
            _post(_issue(ref, plain["Patient"]), U + "01")))
        shapes[name] = _shape(out, ref.split("/", 1)[1])
    assert (_count(fhir, engine, "Provenance"), _count(fhir, engine, "DetectedIssue")) == before
    assert shapes["made up"][0] == 422, shapes
    assert shapes["withheld"] == shapes["deleted"] == shapes["made up"], "\n".join(f"{k}: {v[1]}" for k, v in shapes.items())


# -- FINDING (HIGH): the same through a resident: another person's record vs a made-up id
def test_rvp22_resident_citing_an_own_flag_that_implicates_another_s_record_answers_as_made_up(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("RR1", "DOC-RR1", "rr1.rtf"), document("RR2", "DOC-RR2", "rr2.rtf", pid=OTHER))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 2, acks
    mine, other = _written(engine, "RR1"), _written(engine, "RR2")
    me = mine["Patient"]
    resident = _token(engine, "patient", ["patient/*.cruds"], patient=me.split("/", 1)[1])
    shapes = {}
    for name, ref in (("another's", other["DocumentReference"]), ("made up", "DocumentReference/rvp22-none")):
        out = fhir.post("/fhir", headers=resident, json=_txn(
            _post(_provenance(U + "11", me)),
            _post(_issue(ref, me), U + "11")))
        shapes[name] = _shape(out, ref.split("/", 1)[1])
    assert shapes["made up"][0] == 403, shapes
    assert shapes["another's"] == shapes["made up"], "\n".join(f"{k}: {v[1]}" for k, v in shapes.items())


# -- FINDING (HIGH): a resident's AuditEvent naming their own flag, the flag implicating another
# person's document or a made-up id: the refusal names a different entry
def test_rvp22_resident_event_naming_an_own_flag_that_implicates_another_s_record_answers_as_made_up(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("RR3", "DOC-RR3", "rr3.rtf"), document("RR4", "DOC-RR4", "rr4.rtf", pid=OTHER))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 2, acks
    mine, other = _written(engine, "RR3"), _written(engine, "RR4")
    me = mine["Patient"]
    resident = _token(engine, "patient", ["patient/*.cruds"], patient=me.split("/", 1)[1])
    before = _count(fhir, engine, "DetectedIssue")
    shapes = {}
    for name, ref in (("another's", other["DocumentReference"]), ("made up", "DocumentReference/rvp22-none-e")):
        out = fhir.post("/fhir", headers=resident, json=_txn(
            _post(_event(me, U + "12")),
            _post(_issue(ref, me), U + "12")))
        shapes[name] = _shape(out, ref.split("/", 1)[1])
    assert _count(fhir, engine, "DetectedIssue") == before
    assert shapes["made up"][0] == 422, shapes
    assert shapes["another's"] == shapes["made up"], "\n".join(f"{k}: {v[1]}" for k, v in shapes.items())


# -- guard: the flag before the Provenance (entry order) answers alike
def test_rvp22_guard_flag_first_answers_alike(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("RV3", "DOC-RV3", "rv3.rtf", "V"), document("RP3", "DOC-RP3", "rp3.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 2, acks
    very, plain = _written(engine, "RV3"), _written(engine, "RP3")
    clinician = _token(engine, "user", ["user/*.cruds"])
    shapes = {}
    for name, ref in (("withheld", very["DocumentReference"]), ("made up", "DocumentReference/rvp22-nothing")):
        out = fhir.post("/fhir", headers=clinician, json=_txn(
            _post(_issue(ref, plain["Patient"]), U + "21"),
            _post(_provenance(U + "21", plain["Organization"]))))
        shapes[name] = _shape(out, ref.split("/", 1)[1])
    assert shapes["withheld"] == shapes["made up"] and shapes["made up"][0] == 422, shapes


# -- FINDING (MED): a conditional create citing a POST entry by its absolute fullUrl is refused (422)
# at planning, where the same entry without ifNoneExist is written (200)
def test_rvp22_conditional_create_citing_a_post_entry_by_absolute_full_url(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("RC1", "DOC-RC1", "rc1.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    plain = _written(engine, "RC1")
    clinician = _token(engine, "user", ["user/*.cruds"])
    base = engine.settings.fhir_base_url
    out = {}
    for n, cond in enumerate(({}, {"ifNoneExist": "_id=rvp22-no-such-provenance"})):
        full = f"{base}/DocumentReference/rvp22-abs-{n}"
        out[bool(cond)] = fhir.post("/fhir", headers=clinician, json=_txn(
            _post(_note(plain["Patient"]), full),
            _post(_provenance(full, plain["Organization"]), **cond)))
    assert out[False].status_code == 200, out[False].text
    assert out[True].status_code == 200, out[True].text


# -- guard: the same with a urn:uuid fullUrl
def test_rvp22_guard_conditional_create_citing_a_post_entry_by_urn(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("RC2", "DOC-RC2", "rc2.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    plain = _written(engine, "RC2")
    clinician = _token(engine, "user", ["user/*.cruds"])
    out = fhir.post("/fhir", headers=clinician, json=_txn(
        _post(_provenance(U + "31", plain["Organization"]), ifNoneExist="_id=rvp22-none-2"),
        _post(_note(plain["Patient"]), U + "31")))
    assert out.status_code == 200, out.text


# -- FINDING (MED): an ifMatch PUT entry citing a POST entry by its absolute fullUrl: 422 at planning
def test_rvp22_if_match_entry_citing_a_post_entry_by_absolute_full_url(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("RM1", "DOC-RM1", "rm1.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    plain = _written(engine, "RM1")
    clinician = _token(engine, "user", ["user/*.cruds"])
    base = engine.settings.fhir_base_url
    r = fhir.post("/fhir/Provenance", headers=clinician, json=_provenance(plain["DocumentReference"], plain["Organization"]))
    assert r.status_code == 201, r.text
    pid, version = r.json()["id"], r.json()["meta"]["versionId"]
    full = f"{base}/DocumentReference/rvp22-abs-m"
    body = {**_provenance(full, plain["Organization"]), "id": pid}
    out = fhir.post("/fhir", headers=clinician, json=_txn(
        _post(_note(plain["Patient"]), full),
        {"resource": body, "request": {"method": "PUT", "url": f"Provenance/{pid}", "ifMatch": f'W/"{version}"'}}))
    assert out.status_code == 200, out.text


# -- guard: an ifMatch PUT at a withheld derived record (the V document's Provenance) and at a
# made-up id answer alike over HTTP and in a transaction
def test_rvp22_guard_if_match_at_a_withheld_provenance(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("RW1", "DOC-RW1", "rw1.rtf", "V"), document("RW2", "DOC-RW2", "rw2.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 2, acks
    very, plain = _written(engine, "RW1"), _written(engine, "RW2")
    clinician = _token(engine, "user", ["user/*.cruds"])
    hospital = {"Authorization": "Bearer " + engine.auth.issue_system_token("his")}
    found = fhir.get("/fhir/Provenance", params={"target": very["DocumentReference"]}, headers=hospital).json()
    provs = [e["resource"] for e in found.get("entry", [])]
    assert provs, found
    prov = provs[0]
    assert fhir.get(f"/fhir/Provenance/{prov['id']}", headers=clinician).status_code == 404
    shapes = {}
    for name, rid, tag in (("withheld", prov["id"], f'W/"{prov["meta"]["versionId"]}"'),
                           ("withheld-stale", prov["id"], 'W/"99"'), ("made up", deterministic_id("FNXRMYY", "Provenance", "RVP22-MADE-UP"), 'W/"1"')):
        body = {**_provenance(plain["DocumentReference"], plain["Organization"]), "id": rid}
        entry = {"resource": body, "request": {"method": "PUT", "url": f"Provenance/{rid}", "ifMatch": tag}}
        shapes[name] = (_shape(fhir.put(f"/fhir/Provenance/{rid}", json=body, headers={**clinician, "If-Match": tag}), rid),
                        _shape(fhir.post("/fhir", headers=clinician, json=_txn(entry)), rid))
    assert shapes["withheld"] == shapes["withheld-stale"] == shapes["made up"], shapes
    assert shapes["made up"][0][0] == 404, shapes


# -- FINDING (LOW, also on the base): a resident's conditional create (ifNoneExist) of an AuditEvent
# naming a note the same transaction posts (urn:uuid) is refused 403 at planning; without
# ifNoneExist the same transaction is written (200)
def test_rvp22_resident_conditional_event_naming_an_own_posted_note(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("RE1", "DOC-RE1", "re1.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    me = _written(engine, "RE1")["Patient"]
    resident = _token(engine, "patient", ["patient/*.cruds"], patient=me.split("/", 1)[1])
    out = {}
    for n, cond in enumerate(({}, {"ifNoneExist": "_id=rvp22-no-such-event"})):
        out[bool(cond)] = fhir.post("/fhir", headers=resident, json=_txn(
            _post(_event(me, f"{U}4{n}"), **cond), _post(_note(me), f"{U}4{n}")))
    assert out[False].status_code == 200, out[False].text
    assert out[True].status_code == 200, out[True].text


# -- guard: odd If-Match values from a clinician at a withheld and a made-up id: never a 500, alike
def test_rvp22_guard_odd_if_match_values_answer_alike(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("RO1", "DOC-RO1", "ro1.rtf", "V"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    very = _written(engine, "RO1")
    clinician = _token(engine, "user", ["user/*.cruds"])
    shapes: dict[str, list[Any]] = {}
    # an empty ifMatch in a Bundle is no precondition (a plain PUT: README), left out here
    for name, ref0 in (("withheld", very["DocumentReference"]), ("made up", "DocumentReference/rvp22-odd")):
        shapes[name] = []
        for n, tag in enumerate(("W/", '"1"', 'W/"1", W/"2"', 'W/"x"', "W/\"1\"junk", " W/\"1\" ")):
            # a made-up id of huren's form, as a prober computes it (prbfix23: a name-form id answers in other words)
            ref = ref0 if name == "withheld" else "DocumentReference/" + deterministic_id("FNXRMYY", "DocumentReference", f"RVP22-ODD-{n}")
            rid = ref.split("/", 1)[1]
            body = {**_note(very["Patient"]), "id": rid}
            r = fhir.put(f"/fhir/{ref}", json=body, headers={**clinician, "If-Match": tag})
            assert r.status_code < 500, (tag, r.text)
            t = fhir.post("/fhir", headers=clinician, json=_txn(
                {"resource": body, "request": {"method": "PUT", "url": ref, "ifMatch": tag}}))
            assert t.status_code < 500, (tag, t.text)
            shapes[name].append((tag, _shape(r, rid), _shape(t, rid)))
    diff = [(a, b) for a, b in zip(shapes["withheld"], shapes["made up"], strict=True) if a != b]
    assert not diff, "\n".join(f"{a}\n{b}" for a, b in diff)


# -- guard: a POST entry whose absolute fullUrl is a withheld record's URL stands for the new record
# (cited by that URL: 200, pointing at the new one) and tells nothing beside a made-up URL; the
# relative reference is the stored record's (422 alike)
def test_rvp22_guard_full_url_equal_to_a_withheld_record_s_url(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, document("RF1", "DOC-RF1", "rf1.rtf", "V"), document("RF2", "DOC-RF2", "rf2.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 2, acks
    very, plain = _written(engine, "RF1"), _written(engine, "RF2")
    clinician = _token(engine, "user", ["user/*.cruds"])
    hospital = {"Authorization": "Bearer " + engine.auth.issue_system_token("his")}
    base = engine.settings.fhir_base_url
    shapes = {}
    for name, ref in (("withheld", very["DocumentReference"]), ("made up", "DocumentReference/rvp22-fu-none")):
        rid = ref.split("/", 1)[1]
        out = fhir.post("/fhir", headers=clinician, json=_txn(
            _post(_provenance(f"{base}/{ref}", plain["Organization"])), _post(_note(plain["Patient"]), f"{base}/{ref}")))
        assert out.status_code == 200, (name, out.text)
        prov = out.json()["entry"][0]["response"]["location"].split("/_history")[0]
        new = out.json()["entry"][1]["response"]["location"].split("/_history")[0]
        assert fhir.get(f"/fhir/{prov}", headers=clinician).json()["target"] == [{"reference": new}]
        relative = fhir.post("/fhir", headers=clinician, json=_txn(
            _post(_provenance(ref, plain["Organization"])), _post(_note(plain["Patient"]), f"{base}/{ref}")))
        shapes[name] = _shape(relative, rid)
    assert shapes["withheld"] == shapes["made up"] and shapes["made up"][0] == 422, shapes
    assert fhir.get(f"/fhir/{very['DocumentReference']}", headers=hospital).json()["meta"]["versionId"] == "1"
