"""party29: a referral's parties read it despite a cited result's label; the result stays withheld.

A referral (``ServiceRequest`` with the referral category, its ``Task``) citing an R/V result takes
that result's label (labelfix28, the lead's decision: privacy first). The party rule of the access
policy (``ScopedRepository._party_reads``, ``policy.PartyView``, ``mappings/access/referral_parties.yaml``)
lets the sending and the receiving institution (``Referrals.endpoints``) read the referral record
-- the reference shown, the result itself still read as missing -- unless the referral's own label
goes beyond what it cites, or its own words quote the result's value. Every neighbour of a read:
search (and its count), ``_include``, ``$everything``, ``_history``/vread, AuditEvents naming the
referral, the pre-arrival ``$summary``, a write over it, the resident's own referral. And (last test) a
charge line billing an R result takes its label while the settlement stays exact (privleft28's xfail).

Real path: the project's example feeds (invented messages, ``examples/feeds``) over ``POST /hl7v2``
into one SQLite store; the sending hospital's unbound system writes and labels by FHIR PUT; systems
bound to 阜宁县中医院 (FNZYY, receiving), 阜宁县人民医院 (FNXRMYY, sending) and 阜宁县妇幼
(FNFYBJY, neither) and clinicians' page sessions read over HTTP (TestClient).
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.auth.staff import StaffIdentity
from engine.auth.staff_session import SESSION_COOKIE
from engine.engine import Engine
from engine.settings import Settings
from tests.citation_world import FEEDS, SEC, World, labels_of
from tests.test_insurance_settlement_e2e import RULES, body, charge, ident, insurer
from tests.test_moneymend19_charges import employee

SNOMED_REFERRAL = {"system": "http://snomed.info/sct", "code": "3457005", "display": "Patient referral"}


def _inst(code: str) -> dict[str, Any]:
    return {"identifier": {"system": "urn:huren:institution", "value": code}}


class Parties(World):
    here: dict[str, Any]
    secret: str  # the referral's cited result, labelled R

    def bound_at(self, institution: str) -> dict[str, Any]:
        token, _ = self.engine.auth.issue_token(subject=f"his-{institution.lower()}", kind="system",
                                                client_id=f"his-{institution.lower()}", scopes=["system/*.cruds"],
                                                extra={"institution": institution})
        return {"headers": self.h(token)}

    def clinician_at(self, institution: str) -> dict[str, Any]:
        person = StaffIdentity(f"dr.{institution.lower()}", "clinician", institution, "李医生")
        token, _ = self.engine.staff.open_session(person, self.engine.staff.roles["clinician"], address="127.0.0.1",
                                                  issuer="https://idp.ybj.example.cn")
        return {"cookies": {SESSION_COOKIE: token}}

    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        r = self.http.put(f"/fhir/{body['resourceType']}/{body['id']}", json=body, headers=self.his)
        assert r.status_code in (200, 201), r.text[:400]
        return r.json()

    def referral(self, rid: str, here: dict[str, Any], cited: str, **extra: Any) -> dict[str, Any]:
        return self.put({"resourceType": "ServiceRequest", "id": rid, "status": "active", "intent": "order",
                         "category": [{"coding": [SNOMED_REFERRAL]}], "code": {"text": "转诊 referral"},
                         "subject": here["subject"], "authoredOn": "2025-03-11", "requester": _inst("FNXRMYY"),
                         "performer": [_inst("FNZYY")], "supportingInfo": [{"reference": cited}], **extra})


@pytest.fixture(scope="module")
def w(tmp_path_factory):
    root = tmp_path_factory.mktemp("party29")
    (root / "site" / "insurance").mkdir(parents=True)  # the settlement's rules (the charge test, below)
    (root / "site" / "insurance" / "settlement.yaml").write_text(RULES, "utf-8")
    engine = Engine(Settings(data_dir=root / "var", http_port=0, mllp_port=0, site=root / "site"))
    try:
        with TestClient(create_app(engine)) as http:
            world = Parties(engine, http)
            for name in ("01_FNXRMYY_ADT_A01_admission.hl7", "02_FNXRMYY_ORU_R01_blood_count.hl7"):
                assert world.post((FEEDS / name).read_bytes()) in ("AA", "CA"), name
            world.here = world.report("FNXRMYY-LIS-000201")
            world.secret = world.here["result"][3]["reference"]
            assert labels_of(world.label(world.secret, "R")) == ["R"]
            assert labels_of(world.referral("p29-ref", world.here, world.secret)) == ["R"]
            yield world
    finally:
        engine.close()


def _missing(w: Parties, how: dict[str, Any], ref: str) -> None:
    """``ref`` reads as a made-up id of its type does (404, the same words)."""
    rtype, rid = ref.split("/")
    real = w.http.get(f"/fhir/{ref}", **how)
    fake = w.http.get(f"/fhir/{rtype}/zz-missing-0", **how)
    assert real.status_code == fake.status_code == 404, (ref, real.status_code, real.text[:300])
    assert real.text.replace(rid, "X") == fake.text.replace("zz-missing-0", "X")


def test_the_parties_read_the_referral_and_not_the_result_a_third_hospital_reads_neither(w):
    receiving, sending, third = w.bound_at("FNZYY"), w.bound_at("FNXRMYY"), w.bound_at("FNFYBJY")
    for party in (receiving, sending, w.clinician_at("FNZYY")):
        got = w.http.get("/fhir/ServiceRequest/p29-ref", **party)
        assert got.status_code == 200, got.text[:300]
        assert got.json()["supportingInfo"] == [{"reference": w.secret}]  # the reference is shown
        assert labels_of(got.json()) == ["R"]
        _missing(w, party, w.secret)  # its content is not
    for other in (third, w.clinician_at("FNFYBJY")):
        _missing(w, other, "ServiceRequest/p29-ref")


def test_a_referral_labelled_beyond_what_it_cites_or_quoting_the_value_stays_withheld(w):
    """The rule lifts a label only as far as the cited results account for it, and not when the
    referral's own words state the result's value (it would tell what the result does)."""
    receiving = w.bound_at("FNZYY")
    v = {"meta": {"security": [{"system": SEC, "code": "V"}]}}
    assert labels_of(w.referral("p29-ref-v", w.here, w.secret, **v)) == ["V"]
    _missing(w, receiving, "ServiceRequest/p29-ref-v")
    value = w.http.get(f"/fhir/{w.secret}", headers=w.his).json()["valueQuantity"]["value"]
    note = {"note": [{"text": f"血常规异常，结果 {value}，请进一步检查"}]}
    assert labels_of(w.referral("p29-ref-quoted", w.here, w.secret, **note)) == ["R"]
    _missing(w, receiving, "ServiceRequest/p29-ref-quoted")
    plain = {"note": [{"text": "血常规异常，请进一步检查"}]}
    w.referral("p29-ref-words", w.here, w.secret, **plain)
    assert w.http.get("/fhir/ServiceRequest/p29-ref-words", **receiving).status_code == 200  # guard
    # an order that is no referral, naming the receiving hospital as performer: no party rule
    w.put({"resourceType": "ServiceRequest", "id": "p29-order", "status": "active", "intent": "order",
           "code": {"text": "复查"}, "subject": w.here["subject"], "requester": _inst("FNXRMYY"),
           "performer": [_inst("FNZYY")], "supportingInfo": [{"reference": w.secret}]})
    _missing(w, receiving, "ServiceRequest/p29-order")


def test_searches_includes_and_everything_show_the_referral_to_its_parties_only(w):
    receiving, third = w.bound_at("FNZYY"), w.bound_at("FNFYBJY")
    subject = w.here["subject"]["reference"]
    rid = w.secret.split("/")[1]

    def ids(how: dict[str, Any], query: str) -> tuple[set[str], int]:
        r = w.http.get(f"/fhir/{query}", **how)
        assert r.status_code == 200, (query, r.text[:300])
        body = r.json()
        return {e["resource"]["id"] for e in body.get("entry", [])}, body.get("total")

    for query in (f"ServiceRequest?subject={subject}&_count=100", "ServiceRequest?category=3457005&_count=100",
                  "ServiceRequest?_id=p29-ref&_include=ServiceRequest:subject"):
        shown, total = ids(receiving, query)
        assert "p29-ref" in shown and rid not in shown, (query, shown)
        hidden, total3 = ids(third, query)
        assert "p29-ref" not in hidden, (query, hidden)
        counted = w.http.get(f"/fhir/{query}&_summary=count", **receiving).json()["total"]
        assert counted == total == len({i for i in shown if i != subject.split("/")[1]}) or "_include" in query
    assert ids(receiving, "ServiceRequest?category=3457005&_summary=count")[1] == \
        ids(third, "ServiceRequest?category=3457005&_summary=count")[1] + 2  # p29-ref, p29-ref-words
    # $everything: the referral, never the result
    ev = w.http.get(f"/fhir/{subject}/$everything?_count=1000", **receiving)
    assert ev.status_code == 200
    found = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in ev.json().get("entry", [])}
    assert ("ServiceRequest", "p29-ref") in found and ("Observation", rid) not in found
    ev3 = w.http.get(f"/fhir/{subject}/$everything?_count=1000", **third).json()
    assert "p29-ref" not in {e["resource"]["id"] for e in ev3.get("entry", [])}


def test_history_vread_and_the_audit_trail_naming_the_referral(w):
    receiving, third = w.bound_at("FNZYY"), w.bound_at("FNFYBJY")
    hist = w.http.get("/fhir/ServiceRequest/p29-ref/_history", **receiving)
    assert hist.status_code == 200 and hist.json()["entry"], hist.text[:300]
    vid = hist.json()["entry"][0]["resource"]["meta"]["versionId"]
    assert w.http.get(f"/fhir/ServiceRequest/p29-ref/_history/{vid}", **receiving).status_code == 200
    _missing(w, third, "ServiceRequest/p29-ref")
    assert w.http.get(f"/fhir/ServiceRequest/p29-ref/_history/{vid}", **third).status_code == 404
    # the sending system's audited read names the referral: its party sees the entity, a third hospital not
    assert w.http.get("/fhir/ServiceRequest/p29-ref", headers=w.his).status_code == 200
    q = "/fhir/AuditEvent?entity=ServiceRequest/p29-ref&_summary=count"
    assert w.http.get(q, **receiving).json()["total"] >= 1
    assert w.http.get(q, **third).json()["total"] == 0 == \
        w.http.get("/fhir/AuditEvent?entity=ServiceRequest/zz-never-read&_summary=count", **third).json()["total"]


def test_the_summary_and_a_write_over_the_referral_by_its_party(w):
    receiving, third = w.bound_at("FNZYY"), w.bound_at("FNFYBJY")
    rid = w.secret.split("/")[1]
    summary = w.http.get("/fhir/ServiceRequest/p29-ref/$summary", **receiving)
    assert summary.status_code == 200, summary.text[:300]
    held = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in summary.json()["entry"]}
    assert ("Observation", rid) not in held
    assert w.http.get("/fhir/ServiceRequest/p29-ref/$summary", **third).status_code == 404
    w.referral("p29-ref-w", w.here, w.secret)
    body = w.http.get("/fhir/ServiceRequest/p29-ref-w", **receiving).json()
    body.pop("meta")
    # citing what it may not read is refused to a party as to anyone (422, the body first)
    for who in (receiving, third):
        assert w.http.put("/fhir/ServiceRequest/p29-ref-w", json=body, **who).status_code == 422
    # without the citation: the party writes over its referral (its write scope), a third hospital
    # is answered as for a missing record
    body.pop("supportingInfo")
    assert w.http.put("/fhir/ServiceRequest/p29-ref-w", json=body, **third).status_code == 404
    done = w.http.put("/fhir/ServiceRequest/p29-ref-w", json=body, **receiving)
    assert done.status_code == 200 and labels_of(done.json()) == [], done.text[:300]


def test_a_referral_task_citing_the_result_is_read_by_its_owner(w):
    task = {"resourceType": "Task", "id": "p29-task", "status": "requested", "intent": "order",
            "focus": {"reference": "ServiceRequest/p29-ref"}, "for": w.here["subject"],
            "requester": _inst("FNXRMYY"), "owner": _inst("FNZYY"),
            "input": [{"type": {"text": "检验结果"}, "valueReference": {"reference": w.secret}}]}
    assert labels_of(w.put(task)) == ["R"]
    assert w.http.get("/fhir/Task/p29-task", **w.bound_at("FNZYY")).status_code == 200
    # the Task with its referral included (``_include``), for the party; neither for a third hospital
    q = "/fhir/Task?_id=p29-task&_include=Task:focus"
    got = {e["resource"]["id"] for e in w.http.get(q, **w.bound_at("FNZYY")).json().get("entry", [])}
    assert got == {"p29-task", "p29-ref"}, got
    assert not w.http.get(q, **w.bound_at("FNFYBJY")).json().get("entry")
    _missing(w, w.bound_at("FNFYBJY"), "Task/p29-task")


def test_the_residents_own_referral_citing_a_v_result_stays_withheld_from_him(w):
    """A resident is no party: his referral citing his V result reads as missing to him, as the
    result does (V is withheld from the person it is about); an R one he reads (R is not withheld
    from him)."""
    v = w.here["result"][6]["reference"]
    assert labels_of(w.label(v, "V")) == ["V"]
    assert labels_of(w.referral("p29-ref-res-v", w.here, v)) == ["V"]
    resident = w.resident()
    _missing(w, resident, "ServiceRequest/p29-ref-res-v")
    _missing(w, resident, v)
    assert w.http.get("/fhir/ServiceRequest/p29-ref", **resident).status_code == 200
    assert w.http.get("/fhir/ServiceRequest/p29-ref-res-v", **w.bound_at("FNZYY")).status_code == 200


def test_a_task_naming_itself_owner_does_not_make_its_writer_a_party_of_the_request(w):
    """A referral naming no receiving institution (an HL7 referral to a doctor): a third hospital's
    system writing a Task focused on it, itself as ``owner``, is the referral report's receiving side
    (``Referrals.endpoints``) -- but the request's parties are the request's own: it still reads the
    labelled request as missing. The sending hospital reads it (guard)."""
    sr = {"resourceType": "ServiceRequest", "id": "p29-ref-open", "status": "active", "intent": "order",
          "category": [{"coding": [SNOMED_REFERRAL]}], "code": {"text": "转诊 referral"},
          "subject": w.here["subject"], "requester": _inst("FNXRMYY"), "supportingInfo": [{"reference": w.secret}]}
    assert labels_of(w.put(sr)) == ["R"]
    third = w.bound_at("FNFYBJY")
    task = {"resourceType": "Task", "id": "p29-task-claim", "status": "requested", "intent": "order",
            "focus": {"reference": "ServiceRequest/p29-ref-open"}, "for": w.here["subject"], "owner": _inst("FNFYBJY")}
    r = w.http.put("/fhir/Task/p29-task-claim", json=task, **third)
    assert r.status_code == 201, r.text[:300]
    assert w.engine.referrals.row("ServiceRequest/p29-ref-open")["to"] == "FNFYBJY"  # the report's reading
    _missing(w, third, "ServiceRequest/p29-ref-open")
    assert w.http.get("/fhir/ServiceRequest/p29-ref-open", **w.bound_at("FNXRMYY")).status_code == 200


# -- a charge line naming an R result (twenty-ninth round, party29: privleft28's strict xfail) ---------------
# privleft28 left ``ChargeItem.service`` out of ``result_citations.yaml`` for fear that a labelled charge would
# leave an auditor's figures short, and a bound hospital system read the withheld result's id in the charge.
# The money reports read the charges for the system (the settlement, the deduction lists' charge lines,
# recognition's billed lines), so the decision: the charge is labelled as the result it bills, withheld on
# /fhir from whom the result is (read and search by its service alike), and the insurer's settlement, read by
# an auditor shown no R record, counts it to the fen as before the label.

def _line(w: World, cid: str, service: str, amount: str, fund: str) -> dict[str, Any]:
    c = {**charge(cid, "2026-02-01T09:00:00+08:00", ident("FNXRMYY"), amount, fund, "employee"),
         "service": [{"reference": service}]}
    r = w.http.put(f"/fhir/ChargeItem/{cid}", content=body(c),
                   headers={**w.his, "Content-Type": "application/fhir+json"})
    assert r.status_code in (200, 201), r.text[:300]
    return r.json()


def _figures(w: World) -> tuple[D, D, int]:
    report = w.http.get("/reports/settlement?year=2026", headers=insurer(w.engine))
    assert report.status_code == 200, report.text[:300]
    emp = employee(report.json())
    return D(str(emp["spending"])), D(str(emp["charged"])), emp["lines"]


def test_a_charge_billing_an_r_result_is_labelled_and_the_settlement_counts_it_to_the_fen(w):
    here = w.report("FNXRMYY-LIS-000201")
    secret, plain = here["result"][7]["reference"], here["result"][1]["reference"]
    assert labels_of(_line(w, "p29m-r", secret, "12.35", "8.65")) == []  # before the label
    _line(w, "p29m-plain", plain, "30.10", "21.07")
    before = _figures(w)
    assert before == (D("29.72"), D("42.45"), 2), before  # guard: both lines, fund shares 8.65 + 21.07
    assert labels_of(w.label(secret, "R")) == ["R"]
    stored = w.http.get("/fhir/ChargeItem/p29m-r", headers=w.his).json()
    assert labels_of(stored) == ["R"] and str(stored["priceOverride"]["value"]) == "12.35"  # the rise
    assert labels_of(_line(w, "p29m-r2", secret, "5.00", "3.50")) == ["R"]  # the mark, written after
    bound = w.bound()
    for cid in ("p29m-r", "p29m-r2"):
        r = w.http.get(f"/fhir/ChargeItem/{cid}", **bound)
        assert r.status_code == 404 and secret.split("/")[1] not in r.text, (cid, r.status_code)
    count = "/fhir/ChargeItem?service={}&_summary=count"
    assert w.http.get(count.format(secret), **bound).json()["total"] == 0 == \
        w.http.get(count.format("Observation/zz-missing-0"), **bound).json()["total"]
    assert w.http.get("/fhir/ChargeItem/p29m-plain", **bound).status_code == 200  # guard
    # the auditor is shown no R record (``confidentiality.withheld_codes``) and the settlement is exact
    assert _figures(w) == (before[0] + D("3.50"), before[1] + D("5.00"), 3)
