"""Review probes of prb23 (twenty-third round, rvprb23; carried by prbfix23): a label-limited caller's PUT at an id of
huren's form (v5 UUID), the conditional update cited by fullUrl, the If-Match PUT's one read.

Real HL7 over MLLP, real HTTP through FastAPI, real tokens, the real store. Guards and findings
alike; the report names which fail.
"""

from __future__ import annotations

import re
import threading
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.repository.ids import deterministic_id
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_hl7fix17_review import document
from tests.test_prb22_own_entries import _callers, _note, _post, _txn
from tests.test_probe21_derived_writes import _provenance, _written

__all__ = ["fhir"]

_VARYING = {"date", "x-request-id", "x-correlation-id", "x-process-time", "content-length", "last-modified"}
_STAMPS = re.compile(r'"lastUpdated":"[^"]*"|"resourceType":"Bundle","id":"[^"]*"')


def _hospital(engine: Engine) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("his")}


def _shape(r: Any, *ids: str) -> tuple[Any, ...]:
    """Status, body and headers with the ids asked about blanked (in headers too: Location, ETag)."""
    text = _STAMPS.sub("STAMP", r.text)
    headers = {k.lower(): v for k, v in r.headers.items() if k.lower() not in _VARYING}
    for rid in ids:
        text = text.replace(rid, "ID")
        headers = {k: v.replace(rid, "ID") for k, v in headers.items()}
    return r.status_code, text, sorted(headers.items())


def _made_up(key: str, rtype: str = "DocumentReference") -> str:
    return deterministic_id("FNXRMYY", rtype, key)


def _four(engine: Engine, fhir: TestClient, tag: str) -> dict[str, str]:  # noqa: F811
    """A live V document, a deleted V document, a deleted plain one and a live plain one; their ids."""
    acks = send(engine, document(f"{tag}V1", f"DOC-{tag}V1", "v1.rtf", "V"),
                document(f"{tag}V2", f"DOC-{tag}V2", "v2.rtf", "V"),
                document(f"{tag}P1", f"DOC-{tag}P1", "p1.rtf"), document(f"{tag}P2", f"DOC-{tag}P2", "p2.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 4, acks
    very, gone, dropped, plain = (_written(engine, f"{tag}{c}") for c in ("V1", "V2", "P1", "P2"))
    for rec in (gone, dropped):
        assert fhir.delete(f"/fhir/{rec['DocumentReference']}", headers=_hospital(engine)).status_code == 204
    return {"withheld": very["DocumentReference"].split("/", 1)[1],
            "deleted withheld": gone["DocumentReference"].split("/", 1)[1],
            "deleted": dropped["DocumentReference"].split("/", 1)[1],
            "made up": _made_up(f"DOC-{tag}-NEVER"),
            "patient": plain["Patient"], "plain": plain["DocumentReference"], "org": plain["Organization"]}


@pytest.mark.parametrize("who", ["clinician", "township"])
def test_rvrvprb23_if_match_put_answers_alike_at_withheld_deleted_and_made_up_ids(
        engine: Engine, fhir: TestClient, who: str) -> None:  # noqa: F811
    """HTTP PUT with If-Match (the right version of the V document, another, a malformed tag): the
    prb23 file asks only plain PUTs. Every answer alike for the four ids; nothing written."""
    ids = _four(engine, fhir, "IM" + who[0].upper())
    h = _callers(engine)[who]
    shapes: dict[str, list[Any]] = {}
    for name in ("withheld", "deleted withheld", "deleted", "made up"):
        rid = ids[name]
        doc = {**_note(ids["patient"]), "id": rid}
        shapes[name] = [_shape(fhir.put(f"/fhir/DocumentReference/{rid}", json=doc, headers={**h, "If-Match": tag}), rid)
                        for tag in ('W/"1"', 'W/"2"', '"3"', "garbage", "*", 'W/"1", W/"2"')]
    for name in ("withheld", "deleted withheld", "deleted"):
        assert shapes[name] == shapes["made up"], (who, name, shapes[name], shapes["made up"])
    assert [s[0] for s in shapes["made up"]][:4] == [404, 404, 404, 400], shapes["made up"]
    assert all(s[0] < 500 for s in shapes["made up"]), shapes["made up"]
    hospital = _hospital(engine)
    assert fhir.get(f"/fhir/DocumentReference/{ids['withheld']}", headers=hospital).json()["meta"]["versionId"] == "1"
    assert fhir.get(f"/fhir/DocumentReference/{ids['made up']}", headers=hospital).status_code == 404


@pytest.mark.parametrize("who", ["clinician", "township"])
def test_rvrvprb23_other_forms_of_a_withheld_id_answer_as_those_of_a_made_up_one(
        engine: Engine, fhir: TestClient, who: str) -> None:  # noqa: F811
    """Upper case, no hyphens, the same v5 under another type: each form of the V document's id
    answers as the same form of a made-up v5 id (status, body, headers, ids blanked)."""
    ids = _four(engine, fhir, "OF" + who[0].upper())
    h = _callers(engine)[who]
    forms = {"upper": str.upper, "no hyphens": lambda s: s.replace("-", ""),
             "upper, no hyphens": lambda s: s.replace("-", "").upper()}
    for label, form in forms.items():
        got = {}
        for name in ("withheld", "made up"):
            rid = form(ids[name])
            got[name] = _shape(fhir.put(f"/fhir/DocumentReference/{rid}", json={**_note(ids["patient"]), "id": rid},
                                        headers=h), rid)
        assert got["withheld"] == got["made up"], (who, label, got)
    # the v5 id of the V document under other types (a prober tries each type it may write)
    for rtype, body in (("Observation", {"resourceType": "Observation", "status": "final",
                                         "code": {"text": "x"}, "subject": {"reference": ids["patient"]}}),
                        ("Provenance", _provenance(ids["plain"], ids["org"]))):
        got = {}
        for name in ("withheld", "made up"):
            rid = ids[name]
            got[name] = _shape(fhir.put(f"/fhir/{rtype}/{rid}", json={**body, "id": rid}, headers=h), rid)
        assert got["withheld"] == got["made up"] and got["made up"][0] == 404, (who, rtype, got)


@pytest.mark.parametrize("who", ["clinician", "township"])
def test_rvrvprb23_batch_and_transaction_if_match_and_conditional_entries_answer_alike(
        engine: Engine, fhir: TestClient, who: str) -> None:  # noqa: F811
    """Bundle forms the prb23 file leaves out: an ifMatch PUT entry (batch and transaction) and a
    batch conditional update whose body names the id."""
    ids = _four(engine, fhir, "BT" + who[0].upper())
    h = _callers(engine)[who]
    shapes: dict[str, list[Any]] = {}
    for name in ("withheld", "deleted withheld", "deleted", "made up"):
        rid = ids[name]
        doc = {**_note(ids["patient"]), "id": rid}
        out = []
        for kind in ("batch", "transaction"):
            entry = {"resource": doc, "request": {"method": "PUT", "url": f"DocumentReference/{rid}", "ifMatch": 'W/"1"'}}
            r = fhir.post("/fhir", headers=h, json={"resourceType": "Bundle", "type": kind, "entry": [entry]})
            out.append(_shape(r, rid))
        r = fhir.post("/fhir", headers=h, json={"resourceType": "Bundle", "type": "batch", "entry": [
            {"resource": doc, "request": {"method": "PUT", "url": "DocumentReference?identifier=urn:x|rvprb23-none"}}]})
        out.append(_shape(r, rid))
        shapes[name] = out
    for name in ("withheld", "deleted withheld", "deleted"):
        assert shapes[name] == shapes["made up"], (who, name, shapes[name], shapes["made up"])
    assert shapes["made up"][1][0] == 404, shapes["made up"]


def test_rvrvprb23_concurrent_if_match_puts_lose_no_update(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Six clinicians' If-Match PUTs of one version at once (the app's thread pool runs them in
    parallel): exactly one is written, the others 412; the record at version 2 holding the winner's
    words, two versions in its history."""
    acks = send(engine, document("CC1", "DOC-CC1", "cc1.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    ref = _written(engine, "CC1")["DocumentReference"]
    h = _callers(engine)["clinician"]
    doc = fhir.get(f"/fhir/{ref}", headers=h).json()
    assert doc["meta"]["versionId"] == "1"
    start = threading.Barrier(6)
    answers: dict[int, int] = {}

    def put(n: int) -> None:
        start.wait()
        r = fhir.put(f"/fhir/{ref}", json={**doc, "description": f"writer {n}"}, headers={**h, "If-Match": 'W/"1"'})
        answers[n] = r.status_code

    threads = [threading.Thread(target=put, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(answers.values()) == [200] + [412] * 5, answers
    winner = next(n for n, s in answers.items() if s == 200)
    now = fhir.get(f"/fhir/{ref}", headers=_hospital(engine)).json()
    assert (now["meta"]["versionId"], now.get("description")) == ("2", f"writer {winner}"), now
    hist = fhir.get(f"/fhir/{ref}/_history", headers=_hospital(engine)).json()
    assert hist["total"] == 2, hist


def test_rvrvprb23_if_match_put_reads_the_record_once(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """The README's count (backend reads of the record of one If-Match PUT 4 -> 1, of a plain PUT
    2 -> 1), counted at the backend for the record's own key."""
    acks = send(engine, document("RC1", "DOC-RC1", "rc1.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    ref = _written(engine, "RC1")["DocumentReference"]
    key = tuple(ref.split("/", 1))
    h = _callers(engine)["clinician"]
    doc = fhir.get(f"/fhir/{ref}", headers=h).json()
    backend = engine.repository.backend
    reads: list[str] = []
    real_one, real_many = backend.current, backend.current_many

    def one(rtype: str, rid: str) -> Any:
        if (rtype, rid) == key:
            reads.append("current")
        return real_one(rtype, rid)

    def many(keys: Any) -> Any:
        keys = list(keys)
        if key in keys:
            reads.append("current_many")
        return real_many(keys)

    backend.current, backend.current_many = one, many
    try:
        r = fhir.put(f"/fhir/{ref}", json={**doc, "description": "a"}, headers={**h, "If-Match": 'W/"1"'})
        assert r.status_code == 200, r.text
        with_tag, reads[:] = list(reads), []
        r = fhir.put(f"/fhir/{ref}", json={**doc, "description": "b"}, headers=h)
        assert r.status_code == 200, r.text
        plain = list(reads)
    finally:
        backend.current, backend.current_many = real_one, real_many
    assert (len(with_tag), len(plain)) == (1, 1), (with_tag, plain)


def test_rvrvprb23_bound_hospital_creates_at_its_own_v5_id(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """A hospital's own system bound to its institution (``huren client add --institution``) that
    names its records by a v5 UUID of its own namespace (RFC 4122 name-based ids, a common client
    practice) PUTs a new record at such an id. The reviewer expected a create (201), as at a v4 or a
    name; no one can tell whose namespace made a v5 id, so the rule stays (privacy first) -- and the
    refusal now says it plainly (prbfix23): ids of this form are where huren keeps the feeds'
    records, a PUT at one updates only a record you may read, create with POST or another form of
    id. The same status, body and headers at a withheld, a deleted and a fresh id; at a v4 id the
    same PUT creates (201)."""
    acks = send(engine, document("BH1", "DOC-BH1", "bh1.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    plain = _written(engine, "BH1")
    token, _ = engine.auth.issue_token(subject="his-b", kind="system", client_id="his-b", scopes=["system/*.cruds"],
                                       extra={"institution": "FNXRMYY"})
    h = {"Authorization": f"Bearer {token}"}
    own = str(uuid.uuid5(uuid.NAMESPACE_URL, "https://his-b.example/documents/4711"))
    r = fhir.put(f"/fhir/DocumentReference/{own}", json={**_note(plain["Patient"]), "id": own}, headers=h)
    assert r.status_code == 404, (r.status_code, r.text)
    said = r.json()["issue"][0]["diagnostics"]
    for words in ("ids of this form", "feeds", "updates a record you may read", "POST", "another form"):
        assert words in said, said
    v4 = str(uuid.uuid4())
    r = fhir.put(f"/fhir/DocumentReference/{v4}", json={**_note(plain["Patient"]), "id": v4}, headers=h)
    assert r.status_code == 201, (r.status_code, r.text)
    # the same refusal, word for word, for a clinician at a withheld, a deleted-withheld, a deleted
    # and a fresh id of the form
    ids = _four(engine, fhir, "BHC")
    clinician = _callers(engine)["clinician"]
    shapes = {name: _shape(fhir.put(f"/fhir/DocumentReference/{ids[name]}",
                                    json={**_note(ids["patient"]), "id": ids[name]}, headers=clinician), ids[name])
              for name in ("withheld", "deleted withheld", "deleted", "made up")}
    assert shapes["withheld"] == shapes["deleted withheld"] == shapes["deleted"] == shapes["made up"], shapes
    assert shapes["made up"][0] == 404 and "ids of this form" in shapes["made up"][1], shapes["made up"]


@pytest.mark.parametrize("who", ["clinician", "township"])
def test_rvrvprb23_odd_conditional_update_entries_answer_4xx(
        engine: Engine, fhir: TestClient, who: str) -> None:  # noqa: F811
    """The new ``_provisional`` branch (a conditional update stands under its body's id): odd body ids
    and fullUrls, cited by a conditional Provenance -- a 4xx or a 200, never a 500."""
    acks = send(engine, document("OD1", "DOC-OD1", "od1.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    plain = _written(engine, "OD1")
    h = _callers(engine)[who]
    base = engine.settings.fhir_base_url
    odd_ids: list[Any] = [5, "", "A" * 80, "../x", "a b", None, ["x"], {"x": 1}, _made_up("ODD").upper()]
    odd_urls: list[Any] = [5, "", "urn:uuid:", base, f"{base}/DocumentReference", f"{base}/DocumentReference/",
                           "DocumentReference/rvprb23-rel", f"{base}/Patient/{plain['Patient'].split('/')[1]}"]
    for n, rid in enumerate(odd_ids):
        body = _note(plain["Patient"], identifier=[{"system": "urn:x:rv", "value": f"od-{who}-{n}"}])
        if rid is not None:
            body["id"] = rid
        full = f"{base}/DocumentReference/rvprb23-od-{who}-{n}"
        r = fhir.post("/fhir", headers=h, json=_txn(
            _post(_provenance(full, plain["Organization"]), ifNoneExist=f"_id=rv-none-{n}"),
            {"fullUrl": full, "resource": body,
             "request": {"method": "PUT", "url": f"DocumentReference?identifier=urn:x:rv|od-{who}-{n}"}}))
        assert r.status_code < 500, (rid, r.status_code, r.text)
    for n, full in enumerate(odd_urls):
        body = _note(plain["Patient"], identifier=[{"system": "urn:x:rv", "value": f"ou-{who}-{n}"}])
        cite = full if isinstance(full, str) and full else "DocumentReference/x"
        r = fhir.post("/fhir", headers=h, json=_txn(
            _post(_provenance(cite, plain["Organization"]), ifNoneExist=f"_id=rv-none-u{n}"),
            {"fullUrl": full, "resource": body,
             "request": {"method": "PUT", "url": f"DocumentReference?identifier=urn:x:rv|ou-{who}-{n}"}}))
        assert r.status_code < 500, (full, r.status_code, r.text)


@pytest.mark.parametrize("who", ["clinician", "township"])
def test_rvrvprb23_full_url_of_a_conditional_update_cannot_carry_a_withheld_citation(
        engine: Engine, fhir: TestClient, who: str) -> None:  # noqa: F811
    """A conditional update whose search matches nothing, its fullUrl the V document's URL, its body
    with no id: an ifMatch PUT of the caller's own Provenance citing that fullUrl. Written, the
    Provenance names the new record, never the V document; a relative reference to the V document
    beside it is refused (422) as one to a made-up id."""
    acks = send(engine, document("FV1", "DOC-FV1", "fv1.rtf", "V"), document("FP1", "DOC-FP1", "fp1.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 2, acks
    very, plain = _written(engine, "FV1"), _written(engine, "FP1")
    h = _callers(engine)[who]
    base = engine.settings.fhir_base_url
    r = fhir.post("/fhir/Provenance", headers=h, json=_provenance(plain["DocumentReference"], plain["Organization"]))
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    version = 1
    shapes = {}
    for name, ref in (("withheld", very["DocumentReference"]), ("made up", f"DocumentReference/{_made_up('FV-none')}")):
        full = f"{base}/{ref}"
        cond = {"fullUrl": full, "resource": _note(plain["Patient"], identifier=[
                    {"system": "urn:x:rv", "value": f"fv-{who}-{name[0]}"}]),
                "request": {"method": "PUT", "url": f"DocumentReference?identifier=urn:x:rv|fv-{who}-{name[0]}"}}
        out = fhir.post("/fhir", headers=h, json=_txn(
            {"resource": {**_provenance(full, plain["Organization"]), "id": pid},
             "request": {"method": "PUT", "url": f"Provenance/{pid}", "ifMatch": f'W/"{version}"'}}, cond))
        assert out.status_code == 200, (name, out.text)
        version += 1
        new = out.json()["entry"][1]["response"]["location"].split("/_history")[0]
        target = fhir.get(f"/fhir/Provenance/{pid}", headers=_hospital(engine)).json()["target"]
        assert target == [{"reference": new}] and new != very["DocumentReference"], (name, target)
        # the same, the Provenance naming the V document by its relative reference beside the fullUrl
        rel = fhir.post("/fhir", headers=h, json=_txn(
            {"resource": {**_provenance(full, plain["Organization"]), "id": pid,
                          "entity": [{"role": "source", "what": {"reference": ref}}]},
             "request": {"method": "PUT", "url": f"Provenance/{pid}", "ifMatch": f'W/"{version}"'}},
            {**cond, "request": {**cond["request"], "url": cond["request"]["url"] + "-2"}}))
        shapes[name] = _shape(rel, ref.split("/", 1)[1])
    assert shapes["withheld"] == shapes["made up"] and shapes["made up"][0] == 422, shapes
    assert fhir.get(f"/fhir/{very['DocumentReference']}", headers=_hospital(engine)).json()["meta"]["versionId"] == "1"


def test_rvrvprb23_resident_if_match_put_of_their_own_record(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """The resident's If-Match PUT now runs inside the one-read block: their own note updated (200),
    a stale tag 412, and another person's V document and a made-up v5 id answer alike (404)."""
    from tests.test_probe21_derived_writes import _token

    acks = send(engine, document("RS1", "DOC-RS1", "rs1.rtf"), document("RS2", "DOC-RS2", "rs2.rtf", "V"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 2, acks
    mine, other = _written(engine, "RS1"), _written(engine, "RS2")
    resident = _token(engine, "patient", ["patient/*.cruds"], patient=mine["Patient"].split("/", 1)[1])
    doc = fhir.get(f"/fhir/{mine['DocumentReference']}", headers=resident).json()
    r = fhir.put(f"/fhir/{mine['DocumentReference']}", json={**doc, "description": "mine"},
                 headers={**resident, "If-Match": 'W/"1"'})
    assert r.status_code == 200, r.text
    r = fhir.put(f"/fhir/{mine['DocumentReference']}", json={**doc, "description": "stale"},
                 headers={**resident, "If-Match": 'W/"1"'})
    assert r.status_code == 412, r.text
    got = {}
    for name, rid in (("other", other["DocumentReference"].split("/", 1)[1]), ("made up", _made_up("RS-none"))):
        body = {**_note(mine["Patient"]), "id": rid}
        got[name] = [_shape(fhir.put(f"/fhir/DocumentReference/{rid}", json=body, headers={**resident, **extra}), rid)
                     for extra in ({}, {"If-Match": 'W/"1"'})]
    assert got["other"] == got["made up"] and [s[0] for s in got["made up"]] == [404, 404], got


@pytest.mark.parametrize("who", ["clinician", "township"])
def test_rvrvprb23_conditional_update_matching_nothing_at_a_stored_id_is_409(
        engine: Engine, fhir: TestClient, who: str) -> None:  # noqa: F811
    """R4 http.html conditional update: "No matches, id provided and already exist: the server rejects
    the update with a 409 Conflict". prb23 judges the body's id before the search; a record the caller
    reads at that id is written over by a search that matched nothing."""
    acks = send(engine, document("CZ" + who[0].upper(), f"DOC-CZ{who[0]}", "cz.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    plain = _written(engine, "CZ" + who[0].upper())
    h = _callers(engine)[who]
    doc = fhir.get(f"/fhir/{plain['DocumentReference']}", headers=h).json()
    r = fhir.put("/fhir/DocumentReference", params={"identifier": "urn:x|rvprb23-matches-nothing"},
                 json={**doc, "description": "over it"}, headers=h)
    assert r.status_code == 409, (r.status_code, r.text[:300])
    assert fhir.get(f"/fhir/{plain['DocumentReference']}", headers=h).json()["meta"]["versionId"] == "1"


def test_rvrvprb23_resident_body_refusal_comes_before_the_id(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """prb23 judges the id after the body (``_claims`` from ``check_write``, "what is refused for it is
    refused at any id") -- but a resident's body naming another person (403, ``_theirs``) is still
    judged after the id's deleted-withheld check: a PUT at another person's deleted V document's id
    answers 404 where at a made-up v5 id, a name, or a live V document's id it answers 403: which ids
    were another person's V documents, deleted since (old: the base answers so too)."""
    from tests.test_probe21_derived_writes import _token

    other = "PID|1||ZYRB9^^^FNXRMYY^MR||赵^桂兰||19600101|F\r"  # another person: their V documents
    acks = send(engine, document("RB1", "DOC-RB1", "rb1.rtf"), document("RB2", "DOC-RB2", "rb2.rtf", "V", pid=other),
                document("RB3", "DOC-RB3", "rb3.rtf", "V", pid=other))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 3, acks
    mine, gone, very = _written(engine, "RB1"), _written(engine, "RB2"), _written(engine, "RB3")
    assert fhir.delete(f"/fhir/{gone['DocumentReference']}", headers=_hospital(engine)).status_code == 204
    # the body names a Patient that is not the resident's (made up): refused for whose it is, at any id
    resident = _token(engine, "patient", ["patient/*.cruds"], patient=mine["Patient"].split("/", 1)[1])
    stranger = "Patient/" + deterministic_id("FNXRMYY", "Patient", "RB-STRANGER")
    got = {}
    for name, rid in (("deleted withheld", gone["DocumentReference"].split("/", 1)[1]),
                      ("withheld", very["DocumentReference"].split("/", 1)[1]),
                      ("made up", _made_up("RB-none")), ("own name", "rvprb23-resident-own")):
        got[name] = _shape(fhir.put(f"/fhir/DocumentReference/{rid}", json={**_note(stranger), "id": rid},
                                    headers=resident), rid)
    assert got["deleted withheld"] == got["made up"] == got["withheld"] == got["own name"], {k: v[:2] for k, v in got.items()}
