"""A transaction's citations of its own entries (twenty-second round, prb22).

A label-limited caller (a clinician's app, the bound township HIS, a resident) cites in a
Provenance, a DetectedIssue, an AuditEvent's ``entity.what`` or a document's ``relatesTo`` only
records it may read (else 422: writes are no existence oracle). In a transaction only the entries
already run counted, and entries run deletes, creates, updates: a citation of a record written in
the same transaction was refused when it came before its target, or its target was a PUT at a new
id. Now such a citation is judged by that entry, before any runs; a record outside the
transaction (withheld, made up, deleted) answers exactly as before, and as a made-up one. Real HL7
over MLLP, real HTTP through FastAPI, real tokens, the real store.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_hl7fix17_review import document
from tests.test_probe21_audit_writes import _event
from tests.test_probe21_derived_writes import _issue, _provenance, _token, _written

__all__ = ["fhir"]
U = "urn:uuid:5d0c3a52-0000-4000-8000-0000000000"
_VARYING = {"date", "x-request-id", "x-correlation-id", "x-process-time", "content-length"}


def _callers(engine: Engine) -> dict[str, dict[str, str]]:
    return {"clinician": _token(engine, "user", ["user/*.cruds"]),
            "township": _token(engine, "system", ["system/*.cruds"], extra={"institution": "FNYLWSY"})}


def _note(patient: str, **kw: Any) -> dict[str, Any]:
    return {"resourceType": "DocumentReference", "status": "current", "subject": {"reference": patient},
            "content": [{"attachment": {"contentType": "text/plain", "data": "eA=="}}], **kw}


def _txn(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def _post(resource: dict[str, Any], full_url: str | None = None, **request: Any) -> dict[str, Any]:
    entry = {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"], **request}}
    return {**entry, "fullUrl": full_url} if full_url else entry


def _shape(r: Any, *ids: str) -> tuple[Any, ...]:
    text = r.text
    for rid in ids:
        text = text.replace(rid, "ID")
    headers = {k.lower(): v for k, v in r.headers.items() if k.lower() not in _VARYING}
    return r.status_code, text, sorted(headers.items())


def _count(fhir: TestClient, engine: Engine, rtype: str) -> int:
    hospital = {"Authorization": "Bearer " + engine.auth.issue_system_token("his")}
    return fhir.get(f"/fhir/{rtype}", params={"_summary": "count"}, headers=hospital).json()["total"]


@pytest.mark.parametrize("who", ["clinician", "township"])
def test_a_document_and_a_result_citing_a_document_posted_later_in_the_transaction(
        engine: Engine, fhir: TestClient, who: str) -> None:  # noqa: F811
    """``relatesTo`` / ``derivedFrom`` (``_cites_only_readable``) had the same entry-order refusal."""
    acks = send(engine, document("OE1", "DOC-OE1", "oe1.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    plain = _written(engine, "OE1")
    h = _callers(engine)[who]
    addendum = _note(plain["Patient"], relatesTo=[{"code": "appends", "target": {"reference": U + "01"}}])
    text = {"resourceType": "Observation", "status": "final", "code": {"text": "正文"},
            "subject": {"reference": plain["Patient"]}, "valueString": "x",
            "effectiveDateTime": "2026-12-01T08:00:00+08:00", "performer": [{"reference": plain["Organization"]}],
            "derivedFrom": [{"reference": U + "01"}]}
    out = fhir.post("/fhir", headers=h, json=_txn(_post(addendum), _post(text), _post(_note(plain["Patient"]), U + "01")))
    assert out.status_code == 200, out.text


def test_a_resident_s_audit_event_naming_a_note_posted_in_the_same_transaction(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """An AuditEvent's ``entity.what`` is checked for a resident by what it names (``_names_only_own``),
    which read only the store: a note of theirs the same transaction posts was 'someone else's' (403)."""
    acks = send(engine, document("OE2", "DOC-OE2", "oe2.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    me = _written(engine, "OE2")["Patient"]
    resident = _token(engine, "patient", ["patient/*.cruds"], patient=me.split("/", 1)[1])
    for n, order in enumerate(((0, 1), (1, 0))):
        entries = [_post(_note(me), f"{U}2{n}"), _post(_event(me, f"{U}2{n}"))]
        out = fhir.post("/fhir", headers=resident, json=_txn(*(entries[i] for i in order)))
        assert out.status_code == 200, (order, out.text)


@pytest.mark.parametrize("who", ["clinician", "township"])
def test_a_citation_by_the_entry_s_absolute_full_url(engine: Engine, fhir: TestClient, who: str) -> None:  # noqa: F811
    """A ``Type/id`` fullUrl (absolute, at this server) stands for the entry as a urn:uuid does."""
    acks = send(engine, document("OE3", "DOC-OE3", "oe3.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    plain = _written(engine, "OE3")
    h = _callers(engine)[who]
    base = engine.settings.fhir_base_url
    rid = f"prb22-full-url-{who}"
    put = {"fullUrl": f"{base}/DocumentReference/{rid}", "resource": _note(plain["Patient"], id=rid),
           "request": {"method": "PUT", "url": f"DocumentReference/{rid}"}}
    out = fhir.post("/fhir", headers=h, json=_txn(
        _post(_provenance(f"{base}/DocumentReference/{rid}", plain["Organization"])), put,
        _post(_issue(f"DocumentReference/{rid}", plain["Patient"]))))
    assert out.status_code == 200, out.text


@pytest.mark.parametrize("who", ["clinician", "township"])
def test_a_record_outside_the_transaction_answers_as_a_made_up_one_whatever_the_entries(
        engine: Engine, fhir: TestClient, who: str) -> None:  # noqa: F811
    """Withheld, deleted-withheld and made-up records cited beside the transaction's own entries:
    the same 422, body and headers; nothing written."""
    acks = send(engine, document("OV1", "DOC-OV1", "ov1.rtf", "V"), document("OV2", "DOC-OV2", "ov2.rtf", "V"),
                document("OP1", "DOC-OP1", "op1.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 3, acks
    very, gone, plain = _written(engine, "OV1"), _written(engine, "OV2"), _written(engine, "OP1")
    hospital = {"Authorization": "Bearer " + engine.auth.issue_system_token("his")}
    assert fhir.delete(f"/fhir/{gone['DocumentReference']}", headers=hospital).status_code == 204
    h = _callers(engine)[who]
    before = _count(fhir, engine, "Provenance"), _count(fhir, engine, "DocumentReference")
    shapes = {}
    for name, ref in (("withheld", very["DocumentReference"]), ("deleted", gone["DocumentReference"]),
                      ("made up", "DocumentReference/prb22-no-such-doc")):
        rid = ref.split("/", 1)[1]
        shapes[name] = [_shape(fhir.post("/fhir", headers=h, json=_txn(*entries)), rid) for entries in (
            # the Provenance cites its own entry and the outside record, before and after the entry
            [_post({**_provenance(U + "31", plain["Organization"]), "target": [{"reference": U + "31"}, {"reference": ref}]}),
             _post(_note(plain["Patient"]), U + "31")],
            [_post(_note(plain["Patient"]), U + "32"),
             _post({**_provenance(ref, plain["Organization"]), "entity": [{"role": "source", "what": {"reference": U + "32"}}]})],
            [_post(_event(plain["Patient"], ref)), _post(_note(plain["Patient"]), U + "33")],
            [_post(_note(plain["Patient"], relatesTo=[{"code": "appends", "target": {"reference": ref}}])),
             _post(_note(plain["Patient"]), U + "34")])]
    assert shapes["withheld"] == shapes["deleted"] == shapes["made up"], (who, shapes)
    assert all(s[0] == 422 for s in shapes["made up"]), shapes["made up"]
    assert (_count(fhir, engine, "Provenance"), _count(fhir, engine, "DocumentReference")) == before


@pytest.mark.parametrize("who", ["clinician", "township"])
def test_an_own_entry_refused_fails_the_transaction_alike_for_withheld_and_deleted(
        engine: Engine, fhir: TestClient, who: str) -> None:  # noqa: F811
    """A Provenance citing the transaction's PUT at a withheld (or deleted withheld) record's id: the
    PUT is refused (404, as over HTTP), so is the whole transaction -- nothing is written."""
    acks = send(engine, document("OV3", "DOC-OV3", "ov3.rtf", "V"), document("OV4", "DOC-OV4", "ov4.rtf", "V"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 2, acks
    very, gone = _written(engine, "OV3"), _written(engine, "OV4")
    hospital = {"Authorization": "Bearer " + engine.auth.issue_system_token("his")}
    assert fhir.delete(f"/fhir/{gone['DocumentReference']}", headers=hospital).status_code == 204
    h = _callers(engine)[who]
    before = _count(fhir, engine, "Provenance")
    shapes = {}
    for name, ref in (("withheld", very["DocumentReference"]), ("deleted", gone["DocumentReference"])):
        rid = ref.split("/", 1)[1]
        put = {"resource": _note(very["Patient"], id=rid), "request": {"method": "PUT", "url": ref}}
        shapes[name] = _shape(fhir.post("/fhir", headers=h, json=_txn(_post(_provenance(ref, very["Organization"])), put)), rid)
    assert shapes["withheld"] == shapes["deleted"], (who, shapes)
    assert shapes["withheld"][0] == 404, shapes
    assert _count(fhir, engine, "Provenance") == before
    assert fhir.get(f"/fhir/{very['DocumentReference']}", headers=hospital).json()["securityLabel"][0]["coding"][0]["code"] == "V"


@pytest.mark.parametrize("who", ["clinician", "township"])
def test_a_citation_of_a_record_the_transaction_deletes(engine: Engine, fhir: TestClient, who: str) -> None:  # noqa: F811
    """Deletes run first: a record the caller reads, deleted and cited in one transaction, is cited as
    it last stood (200); a withheld one's delete is 404, as a made-up one's."""
    acks = send(engine, document("OD1", "DOC-OD1", "od1.rtf"), document("OV5", "DOC-OV5", "ov5.rtf", "V"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 2, acks
    plain, very = _written(engine, "OD1"), _written(engine, "OV5")
    h = _callers(engine)[who]
    out = fhir.post("/fhir", headers=h, json=_txn(_post(_provenance(plain["DocumentReference"], plain["Organization"])),
                                                  {"request": {"method": "DELETE", "url": plain["DocumentReference"]}}))
    assert out.status_code == 200, out.text
    shapes = {}
    for name, ref in (("withheld", very["DocumentReference"]), ("made up", "DocumentReference/prb22-nothing")):
        shapes[name] = _shape(fhir.post("/fhir", headers=h, json=_txn(
            _post(_provenance(ref, very["Organization"])), {"request": {"method": "DELETE", "url": ref}})),
            ref.split("/", 1)[1])
    assert shapes["withheld"] == shapes["made up"] and shapes["made up"][0] == 404, (who, shapes)


@pytest.mark.parametrize("who", ["clinician", "township"])
def test_a_conditional_create_matching_a_withheld_record_is_no_oracle(
        engine: Engine, fhir: TestClient, who: str) -> None:  # noqa: F811
    """``ifNoneExist`` matching a record the caller may not read is no match (the caller's own
    search): a new record is created and cited, as for criteria matching nothing; one matching a
    record they read is that record, cited as stored."""
    acks = send(engine, document("OV6", "DOC-OV6", "ov6.rtf", "V"), document("OC1", "DOC-OC1", "oc1.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 2, acks
    very, plain = _written(engine, "OV6"), _written(engine, "OC1")
    h = _callers(engine)[who]
    cited = {}
    for name, rid in (("withheld", very["DocumentReference"].split("/", 1)[1]), ("made up", "prb22-none"),
                      ("readable", plain["DocumentReference"].split("/", 1)[1])):
        u = f"{U}6{len(cited)}"
        out = fhir.post("/fhir", headers=h, json=_txn(
            _post(_provenance(u, plain["Organization"])),
            _post(_note(plain["Patient"]), u, ifNoneExist=f"_id={rid}")))
        assert out.status_code == 200, (name, out.text)
        prov = out.json()["entry"][0]["response"]["location"].split("/_history")[0]
        cited[name] = (fhir.get(f"/fhir/{prov}", headers=h).json()["target"][0]["reference"],
                       out.json()["entry"][1]["response"]["status"])
    assert cited["readable"] == (plain["DocumentReference"], "200 OK"), cited
    assert cited["withheld"][0] != very["DocumentReference"] and cited["withheld"][1] == cited["made up"][1] == "201 Created"


@pytest.mark.parametrize("who", ["clinician", "township"])
def test_a_batch_judges_each_entry_alone(engine: Engine, fhir: TestClient, who: str) -> None:  # noqa: F811
    """A batch is not a transaction: a Provenance citing a record a later entry creates is refused on
    its own (422, as over HTTP at that moment), the create runs; cited after it, accepted."""
    acks = send(engine, document("OB1", "DOC-OB1", "ob1.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    plain = _written(engine, "OB1")
    h = _callers(engine)[who]
    rid = f"prb22-batch-{who}"
    prov = _post(_provenance(f"DocumentReference/{rid}", plain["Organization"]))
    put = {"resource": _note(plain["Patient"], id=rid), "request": {"method": "PUT", "url": f"DocumentReference/{rid}"}}
    out = fhir.post("/fhir", headers=h, json={"resourceType": "Bundle", "type": "batch", "entry": [prov, put, prov]})
    assert out.status_code == 200, out.text
    assert [e["response"]["status"][:3] for e in out.json()["entry"]] == ["422", "201", "201"], out.text


def test_a_resident_s_transaction_citing_a_note_for_someone_else_is_refused_whole(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """The entry cited must itself be one the resident may write: a note naming another person fails
    the transaction (its own 403), whatever the order; nothing is written."""
    from tests.test_probe21_derived_writes import OTHER
    acks = send(engine, document("OR1", "DOC-OR1", "or1.rtf"), document("OR2", "DOC-OR2", "or2.rtf", pid=OTHER))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 2, acks
    me, other = _written(engine, "OR1")["Patient"], _written(engine, "OR2")["Patient"]
    resident = _token(engine, "patient", ["patient/*.cruds"], patient=me.split("/", 1)[1])
    before = _count(fhir, engine, "DetectedIssue"), _count(fhir, engine, "DocumentReference")
    for n, order in enumerate(((0, 1), (1, 0))):
        entries = [_post(_note(other), f"{U}7{n}"), _post(_issue(f"{U}7{n}", me))]
        out = fhir.post("/fhir", headers=resident, json=_txn(*(entries[i] for i in order)))
        assert out.status_code in (403, 404, 422), (order, out.text)
        assert other.split("/", 1)[1] not in out.text
    assert (_count(fhir, engine, "DetectedIssue"), _count(fhir, engine, "DocumentReference")) == before


def test_a_family_member_s_transaction_cites_its_own_entries_and_nothing_withheld(engine: Engine) -> None:
    """Acting for 赵桂兰 (a family grant; R and V withheld from him): his flag and event citing a note
    he posts in the same transaction are written whatever the order; citing her R document answers
    as a made-up id does, beside his own entries too."""
    from engine.api.app import create_app
    from tests.test_resident_family import bearer
    with TestClient(create_app(engine)) as http:
        me, son = son_acting_for_zhao(engine, http)
        assert http.get(f"/fhir/{me}", headers=son).status_code == 200
        hospital = bearer(engine.auth.issue_system_token("his"))
        secret = _note(me, securityLabel=[{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                                                       "code": "R"}]}])
        r = http.post("/fhir/DocumentReference", json=secret, headers=hospital)
        assert r.status_code == 201, r.text
        withheld = f"DocumentReference/{r.json()['id']}"
        assert http.get(f"/fhir/{withheld}", headers=son).status_code == 404
        for n, order in enumerate(((0, 1, 2), (2, 1, 0))):
            entries = [_post(_note(me), f"{U}8{n}"), _post(_issue(f"{U}8{n}", me)), _post(_event(me, f"{U}8{n}"))]
            out = http.post("/fhir", headers=son, json=_txn(*(entries[i] for i in order)))
            assert out.status_code == 200, (order, out.text)
        shapes = {}
        for name, ref in (("withheld", withheld), ("made up", "DocumentReference/prb22-none")):
            rid = ref.split("/", 1)[1]
            shapes[name] = [_shape(http.post("/fhir", headers=son, json=_txn(*entries)), rid) for entries in (
                [_post({**_issue(U + "90", me), "implicated": [{"reference": U + "90"}, {"reference": ref}]}),
                 _post(_note(me), U + "90")],
                [_post(_event(me, ref)), _post(_note(me), U + "91")])]
        assert shapes["withheld"] == shapes["made up"], shapes
        assert all(s[0] >= 400 for s in shapes["made up"]), shapes


@pytest.mark.parametrize("who", ["clinician", "township"])
def test_a_conditional_create_citing_a_record_put_in_the_same_transaction(
        engine: Engine, fhir: TestClient, who: str) -> None:  # noqa: F811
    """A conditional entry's body is checked as it is planned, before its search answers: a citation
    there of a record another entry PUTs at a fresh id is judged by that entry too."""
    acks = send(engine, document("OQ1", "DOC-OQ1", "oq1.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    plain = _written(engine, "OQ1")
    h = _callers(engine)[who]
    rid = f"prb22-conditional-{who}"
    out = fhir.post("/fhir", headers=h, json=_txn(
        _post(_provenance(f"DocumentReference/{rid}", plain["Organization"]), ifNoneExist="_id=prb22-no-such-provenance"),
        {"resource": _note(plain["Patient"], id=rid), "request": {"method": "PUT", "url": f"DocumentReference/{rid}"}}))
    assert out.status_code == 200, out.text
    assert [e["response"]["status"] for e in out.json()["entry"]] == ["201 Created", "201 Created"]


def son_acting_for_zhao(engine: Engine, http: TestClient) -> tuple[str, dict[str, str]]:
    """The family feeds sent over POST /hl7v2, a family grant made at the desk for 赵桂兰's son 孙伟,
    and his token acting for her (R and V withheld from him): her ``Patient/<id>`` and his headers."""
    from tests.test_resident_family import SUN, bearer, family_feeds, params
    from tests.test_resident_record_ui import ZHAO
    sender = {"Authorization": "Bearer " + engine.auth.issue_system_token("interface-engine", "system/MessageHeader.c"),
              "Content-Type": "x-application/hl7-v2+er7"}
    for message in family_feeds():
        assert http.post("/hl7v2", content=message, headers=sender).headers["x-hl7-ack-code"] == "AA"
    zhao = sorted(engine.identity.patients_for_number(ZHAO))[0]
    me = f"Patient/{zhao}"
    desk = bearer(engine.auth.issue_system_token("desk", "system/Consent.cru system/RelatedPerson.cru"))
    r = http.post("/fhir/Patient/$family-grant", headers=desk, json=params(
        patient={"reference": me}, proxyNationalId=SUN, proxyName="孙伟", relationship="CHILD", idCardChecked=True))
    assert r.status_code == 201, r.text
    got = {p["name"]: p["resource"] for p in r.json()["parameter"]}
    related = got["relatedPerson"]
    person = next(i["value"] for i in related["identifier"] if i.get("system") == "urn:huren:family")
    token, _ = engine.auth.issue_token(subject="family-x", kind="patient", client_id="phr", scopes=["patient/*.cruds"],
                                       patient=zhao, person=person,
                                       extra={"acting": related["id"], "consent": got["consent"]["id"]})
    return me, bearer(token)
