"""Second review probes of prb23 / prbfix23 (twenty-third round, rvrvprb23b): the conditional update's
409, a deleted record re-created by one, idempotent re-sends, odd ids, a resident's 403 ordering.

Real HL7 over MLLP, real HTTP through FastAPI, real tokens, the real store. Guards and findings alike.
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
from tests.test_prb22_own_entries import _callers, _note, son_acting_for_zhao
from tests.test_prb23_rv_probes import _hospital, _made_up, _shape
from tests.test_probe21_derived_writes import _token, _written

__all__ = ["fhir"]

_Q = {"identifier": "urn:x|rvrvprb23b-nothing"}
_NOTHING = "DocumentReference?identifier=urn:x|rvrvprb23b-nothing"


def _bundle(kind: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def test_rvrvprb23b_conditional_re_create_keeps_history(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """A deleted record re-created by a conditional update matching nothing: version 3, the history
    lists 3, 2 (deleted), 1, version 1 still reads as it was; the answer's status as a plain PUT's
    re-create answers (201 both, or 200 both)."""
    acks = send(engine, document("RH1", "DOC-RH1", "rh1.rtf"), document("RH2", "DOC-RH2", "rh2.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 2, acks
    h = _hospital(engine)
    refs = [_written(engine, t)["DocumentReference"] for t in ("RH1", "RH2")]
    docs = [fhir.get(f"/fhir/{ref}", headers=h).json() for ref in refs]
    for ref in refs:
        assert fhir.delete(f"/fhir/{ref}", headers=h).status_code == 204
    body = {k: v for k, v in docs[0].items() if k != "meta"}
    cond = fhir.put("/fhir/DocumentReference", params=_Q, json=body, headers=h)
    plain = fhir.put(f"/fhir/{refs[1]}", json={k: v for k, v in docs[1].items() if k != "meta"}, headers=h)
    assert cond.status_code == plain.status_code, (cond.status_code, plain.status_code)
    assert cond.json()["id"] == refs[0].split("/", 1)[1]
    hist = fhir.get(f"/fhir/{refs[0]}/_history", headers=h).json()
    assert [e.get("request", {}).get("method") for e in hist["entry"]][:1] in (["PUT"], ["POST"]), hist["entry"][0]
    assert [e["response"]["status"][:3] if "response" in e else None for e in hist["entry"]] or True
    versions = [e["resource"]["meta"]["versionId"] if "resource" in e else "gone" for e in hist["entry"]]
    assert versions == ["3", "gone", "1"], versions
    v1 = fhir.get(f"/fhir/{refs[0]}/_history/1", headers=h)
    assert v1.status_code == 200 and v1.json()["content"] == docs[0]["content"], v1.text[:200]


def test_rvrvprb23b_idempotent_resend_of_a_conditional_update_is_not_409(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """A trusted feed re-sending the same conditional update (id and identifier in the body), over HTTP,
    in a batch and in a transaction: the second send matches the first's record and is 200, never 409;
    unchanged content makes no new version."""
    acks = send(engine, document("RS1", "DOC-RS1", "rs1.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    patient = _written(engine, "RS1")["Patient"]
    h = _hospital(engine)
    for n, kind in enumerate(("http", "batch", "transaction")):
        ident = f"rvrvprb23b-resend-{n}"
        body = {**_note(patient), "id": f"rvrvprb23b-feed-{n}", "identifier": [{"system": "urn:x", "value": ident}]}
        url = f"DocumentReference?identifier=urn:x|{ident}"
        answers = []
        for _ in range(2):
            if kind == "http":
                r = fhir.put("/fhir/DocumentReference", params={"identifier": f"urn:x|{ident}"}, json=body, headers=h)
                answers.append(r.status_code)
            else:
                r = fhir.post("/fhir", headers=h, json=_bundle(kind, {"resource": body, "request": {"method": "PUT", "url": url}}))
                assert r.status_code == 200, r.text[:300]
                answers.append(int(r.json()["entry"][0]["response"]["status"][:3]))
        assert answers == [201, 200], (kind, answers)
        got = fhir.get(f"/fhir/DocumentReference/rvrvprb23b-feed-{n}", headers=h).json()
        assert got["meta"]["versionId"] == "1", (kind, got["meta"])


def test_rvrvprb23b_transaction_delete_then_conditional_put_at_that_id(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """R4 http.html#trules: "If any resource identities (including resolved identities from conditional
    update/delete) overlap in steps 1-3, then the transaction SHALL fail": a transaction deleting a record
    and, in another entry, conditionally updating (matching nothing) with that record's id in the body
    fails whole (a 4xx, never a 500) and the record is left as it was."""
    acks = send(engine, document("TD1", "DOC-TD1", "td1.rtf"), document("TD2", "DOC-TD2", "td2.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 2, acks
    h = _hospital(engine)
    ref = _written(engine, "TD1")["DocumentReference"]
    doc = {k: v for k, v in fhir.get(f"/fhir/{ref}", headers=h).json().items() if k != "meta"}
    r = fhir.post("/fhir", headers=h, json=_bundle(
        "transaction", {"resource": {**doc, "description": "again"}, "request": {"method": "PUT", "url": _NOTHING}},
        {"request": {"method": "DELETE", "url": ref}}))
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:400])
    got = fhir.get(f"/fhir/{ref}", headers=h)
    assert got.status_code == 200 and got.json()["meta"]["versionId"] == "1", got.text[:200]


_ODD: list[Any] = ["", " ", "a b", "x" * 65, 17, None, ["x"], {"a": 1}, "../Patient/1", "ÄÖ"]


@pytest.mark.parametrize("who", ["hospital", "clinician"])
@pytest.mark.parametrize("odd", _ODD, ids=[repr(o)[:12] for o in _ODD])
def test_rvrvprb23b_odd_body_ids_of_conditional_updates_no_500_and_http_agrees_with_batch(
        engine: Engine, fhir: TestClient, who: str, odd: Any) -> None:  # noqa: F811
    """Odd body ids in a conditional update matching nothing: never a 500, over HTTP and in a batch or a
    transaction, and a batch entry answers the status HTTP does (the same rule on both paths)."""
    tag = "OI" + who[0].upper()
    acks = send(engine, document(tag, f"DOC-{tag}", "oi.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    patient = _written(engine, tag)["Patient"]
    h = _hospital(engine) if who == "hospital" else _callers(engine)[who]
    body = {**_note(patient), "id": odd}
    r = fhir.put("/fhir/DocumentReference", params={"identifier": "urn:x|rvrvprb23b-odd-h"}, json=body, headers=h)
    entry = {"resource": body, "request": {"method": "PUT", "url": "DocumentReference?identifier=urn:x|rvrvprb23b-odd-b"}}
    b = fhir.post("/fhir", headers=h, json=_bundle("batch", entry))
    t = fhir.post("/fhir", headers=h, json=_bundle("transaction", entry))
    assert r.status_code < 500 and b.status_code < 500 and t.status_code < 500, (
        odd, r.status_code, r.text[:200], b.status_code, b.text[:200], t.status_code, t.text[:200])
    in_batch = int(b.json()["entry"][0]["response"]["status"][:3]) if b.status_code == 200 else b.status_code
    assert (r.status_code < 300) == (in_batch < 300), (odd, r.status_code, r.text[:200], in_batch, b.text[:300])


def test_rvrvprb23b_resident_body_and_id_refusals(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """A resident: a body naming themselves at another person's live / deleted / V document's id, and at a
    made-up v5 id, answers alike (404); a body naming another person answers 403 at all of them and at
    their own record's id; a conditional update is 403 whatever it names; nothing is written."""
    other = "PID|1||ZYRR9^^^FNXRMYY^MR||钱^秀英||19610101|F\r"
    acks = send(engine, document("RR1", "DOC-RR1", "rr1.rtf"), document("RR2", "DOC-RR2", "rr2.rtf", pid=other),
                document("RR3", "DOC-RR3", "rr3.rtf", "V", pid=other), document("RR4", "DOC-RR4", "rr4.rtf", "V", pid=other))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 4, acks
    mine, live, very, gone = (_written(engine, f"RR{n}") for n in range(1, 5))
    h = _hospital(engine)
    assert fhir.delete(f"/fhir/{gone['DocumentReference']}", headers=h).status_code == 204
    resident = _token(engine, "patient", ["patient/*.cruds"], patient=mine["Patient"].split("/", 1)[1])
    ids = {"other live": live["DocumentReference"].split("/", 1)[1], "other V": very["DocumentReference"].split("/", 1)[1],
           "other deleted V": gone["DocumentReference"].split("/", 1)[1], "made up": _made_up("RR-none")}
    own = {name: _shape(fhir.put(f"/fhir/DocumentReference/{rid}", json={**_note(mine["Patient"]), "id": rid},
                                 headers=resident), rid) for name, rid in ids.items()}
    assert len({repr(v) for v in own.values()}) == 1 and own["made up"][0] == 404, {k: v[:2] for k, v in own.items()}
    ids["own"] = mine["DocumentReference"].split("/", 1)[1]
    foreign = {name: _shape(fhir.put(f"/fhir/DocumentReference/{rid}", json={**_note(live["Patient"]), "id": rid},
                                     headers=resident), rid) for name, rid in ids.items()}
    assert len({repr(v) for v in foreign.values()}) == 1 and foreign["own"][0] == 403, {k: v[:2] for k, v in foreign.items()}
    for rid in ids.values():
        r = fhir.put("/fhir/DocumentReference", params=_Q, json={**_note(mine["Patient"]), "id": rid}, headers=resident)
        assert r.status_code == 403, (rid, r.status_code, r.text[:200])
    for name in ("other live", "other V", "own"):
        assert fhir.get(f"/fhir/DocumentReference/{ids[name]}", headers=h).json()["meta"]["versionId"] == "1", name


@pytest.mark.parametrize("who", ["clinician", "township"])
def test_rvrvprb23b_409_no_oracle_across_feed_form_withheld_deleted_fresh_in_a_transaction_with_others(
        engine: Engine, fhir: TestClient, who: str) -> None:  # noqa: F811
    """A transaction of two entries -- a plain POST and a conditional update matching nothing whose body id
    is a withheld, deleted-withheld, deleted plain or made-up v5 id -- answers alike (status, body,
    headers); nothing written by any of them."""
    tag = "TX" + who[0].upper()
    acks = send(engine, document(f"{tag}1", f"DOC-{tag}1", "a.rtf", "V"), document(f"{tag}2", f"DOC-{tag}2", "b.rtf", "V"),
                document(f"{tag}3", f"DOC-{tag}3", "c.rtf"), document(f"{tag}4", f"DOC-{tag}4", "d.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 4, acks
    very, gone, dropped, plain = (_written(engine, f"{tag}{n}") for n in range(1, 5))
    for rec in (gone, dropped):
        assert fhir.delete(f"/fhir/{rec['DocumentReference']}", headers=_hospital(engine)).status_code == 204
    h = _callers(engine)[who]
    before = fhir.get("/fhir/DocumentReference", params={"_summary": "count"}, headers=_hospital(engine)).json()["total"]
    shapes = {}
    for name, rid in (("withheld", very["DocumentReference"].split("/", 1)[1]),
                      ("deleted withheld", gone["DocumentReference"].split("/", 1)[1]),
                      ("deleted", dropped["DocumentReference"].split("/", 1)[1]),
                      ("made up", deterministic_id("FNXRMYY", "DocumentReference", f"{tag}-NEVER"))):
        r = fhir.post("/fhir", headers=h, json=_bundle(
            "transaction", {"resource": _note(plain["Patient"]), "request": {"method": "POST", "url": "DocumentReference"}},
            {"resource": {**_note(plain["Patient"]), "id": rid}, "request": {"method": "PUT", "url": _NOTHING}}))
        shapes[name] = _shape(r, rid)
    assert len({repr(v) for v in shapes.values()}) == 1 and shapes["made up"][0] == 404, {k: v[:2] for k, v in shapes.items()}
    after = fhir.get("/fhir/DocumentReference", params={"_summary": "count"}, headers=_hospital(engine)).json()["total"]
    assert after == before


def test_rvrvprb23b_capability_statement_states_the_rules(fhir: TestClient) -> None:  # noqa: F811
    """/metadata (no token): rest.documentation says the feed-form rule and the conditional update's 409."""
    r = fhir.get("/fhir/metadata")
    assert r.status_code == 200, r.text[:200]
    doc = r.json()["rest"][0]["documentation"]
    assert "version 5" in doc and "409" in doc and "POST" in doc, doc


def test_rvrvprb23b_409_in_a_batch_leaves_the_other_entries(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """A batch of a conditional update answered 409 and a plain create: the create still runs (201), the
    stood-on record is unchanged, and the 409 entry's outcome names only the caller's own record."""
    acks = send(engine, document("BO1", "DOC-BO1", "bo1.rtf"))
    assert [ack_code_of(a) for a in acks] == ["AA"], acks
    plain = _written(engine, "BO1")
    h = _callers(engine)["clinician"]
    doc = {**fhir.get(f"/fhir/{plain['DocumentReference']}", headers=h).json(), "description": "over"}
    r = fhir.post("/fhir", headers=h, json=_bundle(
        "batch", {"resource": doc, "request": {"method": "PUT", "url": _NOTHING}},
        {"resource": _note(plain["Patient"]), "request": {"method": "POST", "url": "DocumentReference"}}))
    assert r.status_code == 200, r.text[:300]
    statuses = [e["response"]["status"][:3] for e in r.json()["entry"]]
    assert statuses == ["409", "201"], r.text[:500]
    assert fhir.get(f"/fhir/{plain['DocumentReference']}", headers=h).json()["meta"]["versionId"] == "1"


def test_rvrvprb23b_family_member_body_refusal_before_the_id(engine: Engine) -> None:
    """A family member acting for 赵桂兰 (R and V withheld from him): a body naming a stranger is 403 at every
    id (her R document's, her deleted R document's, a made-up v5, a name); a body naming her answers
    those ids alike too (withheld, deleted withheld, made up: 404 in the same words); nothing written."""
    from engine.api.app import create_app
    from tests.test_resident_family import bearer
    with TestClient(create_app(engine)) as http:
        me, son = son_acting_for_zhao(engine, http)
        hospital = bearer(engine.auth.issue_system_token("his"))
        label = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]}]
        ids = {}
        for name in ("withheld", "deleted withheld"):
            rid = deterministic_id("FNXRMYY", "DocumentReference", f"RVB-FAM-{name}")
            r = http.put(f"/fhir/DocumentReference/{rid}", json={**_note(me, securityLabel=label), "id": rid}, headers=hospital)
            assert r.status_code == 201, r.text
            ids[name] = rid
        assert http.delete(f"/fhir/DocumentReference/{ids['deleted withheld']}", headers=hospital).status_code == 204
        ids["made up"] = deterministic_id("FNXRMYY", "DocumentReference", "RVB-FAM-NEVER")
        stranger = "Patient/" + deterministic_id("FNXRMYY", "Patient", "RVB-FAM-STRANGER")
        foreign = {n: _shape(http.put(f"/fhir/DocumentReference/{rid}", json={**_note(stranger), "id": rid}, headers=son), rid)
                   for n, rid in {**ids, "name": "rvrvprb23b-fam-name"}.items()}
        assert len({repr(v) for v in foreign.values()}) == 1 and foreign["made up"][0] == 403, \
            {k: v[:2] for k, v in foreign.items()}
        hers = {n: _shape(http.put(f"/fhir/DocumentReference/{rid}", json={**_note(me), "id": rid}, headers=son), rid)
                for n, rid in ids.items()}
        assert len({repr(v) for v in hers.values()}) == 1 and hers["made up"][0] == 404, {k: v[:2] for k, v in hers.items()}
        assert http.get(f"/fhir/DocumentReference/{ids['withheld']}", headers=hospital).json()["meta"]["versionId"] == "1"
