"""The signed record's bytes are RFC 8785 whichever way they are made.

``build_event`` vouches for its events (``BuiltEvent.jcs_safe``) so the log writes them with orjson
directly; for every kind of event the engine builds — a read, a search with a query in Chinese and
control characters, a resident's own access, a family member's, a named staff member's, an HL7
import with details — those bytes must be exactly ``canonical``'s. An agent that orjson would
write differently (a float RFC 8785 writes otherwise) takes the event off the fast form.

An HTTP interaction is signed as its compact record (format 2, ``engine.audit.record``): its bytes
are RFC 8785 too, and the AuditEvent read back from them is exactly the one ``build_event`` makes
of the same facts, with the same search keys; both formats live, verify and read in one log.
"""

from __future__ import annotations

import orjson

from engine.audit.canonical import canonical
from engine.audit.derived import record_keys, stored_keys
from engine.audit.events import BuiltEvent, build_event, requestor_agent
from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog, _canonical, event_id, seq_key
from engine.audit.record import Facts, event_of, facts, recorded_of
from engine.audit.verify import verify_online
from engine.repository.port import Store
from engine.settings import Settings

HIS = requestor_agent(kind="system", subject="his-阜宁", address="10.0.0.9")
EVENTS = [
    build_event(action="read", origin="o", agents=HIS, patient_ids=["p1"], resources=["Observation/1/_history/2"],
                owners={"Observation/1/_history/2": ["p1"]}),
    build_event(action="search", origin="o", agents=HIS, patient_ids=["p1", "p2"], outcome="4",
                query="Patient?name=李四&x=\u0001\t\"\\\u2028", outcome_desc="HTTP 403: 拒绝",
                detail={"operation": "$everything", "count": 3, "备注": "说明"}),
    build_event(action="read", origin="o", requestor_patients=["p1"], patient_ids=["p1"],
                agents=requestor_agent(kind="patient", subject="person-张三", address=None, client_id="phr")),
    build_event(action="read", origin="o", acting_for=["p1"], patient_ids=["p1"],
                agents=requestor_agent(kind="patient", subject="person-王芳", address="::1", client_id="phr",
                                       acting="rp-1", consent="c-1")),
    build_event(action="report-view", origin="o",
                agents=requestor_agent(kind="auditor", subject="wang.li", address="10.0.0.1", role="auditor",
                                       display="王丽")),
    build_event(action="hl7v2-receive", origin="o", patient_ids=["p1"],
                agents=[{"type": {"coding": [{"code": "110150"}]}, "requestor": True,
                         "who": {"identifier": {"system": "urn:huren:institution", "value": "FNXRMYY"}}}],
                resources=[f"Observation/o{i}/_history/1" for i in range(12)],
                owners={f"Observation/o{i}/_history/1": ["p1"] for i in range(12)},
                detail={"message": "m-1", "control-id": "MSG0001", "message-type": "ORU^R01", "channel": "mllp"}),
    build_event(action="no-such-action", origin="o", agents=HIS),
]


def test_the_fast_form_is_the_canonical_form() -> None:
    for seq, event in enumerate(EVENTS):
        assert isinstance(event, BuiltEvent) and event.jcs_safe
        resource = {**event, "resourceType": "AuditEvent", "id": event_id(seq)}
        assert _canonical(event, resource) == canonical(resource)
        assert orjson.loads(_canonical(event, resource)) == resource


def test_an_agent_orjson_writes_otherwise_takes_the_canonical_path() -> None:
    odd = {"who": {"display": "meter"}, "requestor": True, "extension": [{"valueDecimal": 145.0}]}
    event = build_event(action="read", origin="o", agents=[odd])
    assert not event.jcs_safe
    resource = {**event, "resourceType": "AuditEvent", "id": "audit-0"}
    assert orjson.dumps(resource, option=orjson.OPT_SORT_KEYS) != canonical(resource)  # why it matters
    assert _canonical(event, resource) == canonical(resource)
    changed = dict(EVENTS[0])  # an event changed after it was built is a plain dict: canonical decides
    assert _canonical(changed, {**changed, "id": "audit-0"}) == canonical({**changed, "id": "audit-0"})


# ---------------------------------------------------------------- compact records (format 2)
def _requestor(kind, subject, address=None, client_id=None, role=None, display=None, acting=None, consent=None):  # noqa: ANN001, ANN202
    return (kind, subject, address, client_id, role, display, acting, consent)


# (facts() keywords, the same interaction as build_event() keywords but the agents)
INTERACTIONS = [
    dict(action="read", requestor=_requestor("system", "his-阜宁", "10.0.0.9"), patients=["p1"],
         resources=["Observation/1/_history/2"], owners={"Observation/1/_history/2": ["p1"]}),
    dict(action="search", requestor=_requestor("system", "his-阜宁", "10.0.0.9"), patients=["p1", "p2", "p1", ""],
         outcome="4", query="Patient?name=李四&x=\u0001\t\"\\\u2028", desc="HTTP 403: 拒绝",
         detail={"operation": "$everything", "count": 3, "备注": "说明", "gone": None}),
    dict(action="read", requestor=_requestor("patient", "person-张三", None, "phr"), patients=["p1"], own=["p1"]),
    dict(action="read", requestor=_requestor("patient", "person-王芳", "::1", "phr", acting="rp-1", consent="c-1"),
         patients=["p1"], acting_for=["p1"]),
    dict(action="report-view", requestor=_requestor("auditor", "wang.li", "10.0.0.1", role="auditor", display="王丽")),
    dict(action="search", requestor=_requestor(None, None, "10.0.0.2"), outcome="99", desc=None,
         patients=["p1"], resources=["Patient/p1", *(f"Observation/o{i}" for i in range(130)), "Observation/o1"],
         owners={f"Observation/o{i}": ["p1"] for i in range(130)}),
    dict(action="no-such-action", requestor=_requestor("system", "x"), start="2026-01-01T00:00:00.000Z"),
]


def _both(kw: dict) -> tuple[Facts, dict]:
    recorded = "2026-11-30T08:00:00.123Z"
    compact = facts(recorded=recorded, start=kw.get("start"), outcome=kw.get("outcome", "0"),
                    desc=kw.get("desc", "HTTP 200"), requestor=kw["requestor"], origin="node", action=kw["action"],
                    patients=kw.get("patients", ()), resources=kw.get("resources", ()), owners=kw.get("owners"),
                    query=kw.get("query"), detail=kw.get("detail"), own=kw.get("own", ()),
                    acting_for=kw.get("acting_for", ()))
    kind, subject, address, client_id, role, display, acting, consent = kw["requestor"]
    full = build_event(action=kw["action"], origin="node", outcome=kw.get("outcome", "0"),
                       outcome_desc=kw.get("desc", "HTTP 200"),
                       agents=requestor_agent(kind=kind, subject=subject, address=address, client_id=client_id,
                                              role=role, display=display, acting=acting, consent=consent),
                       patient_ids=kw.get("patients", ()), resources=kw.get("resources", ()),
                       owners=kw.get("owners"), query=kw.get("query"), detail=kw.get("detail"),
                       start=kw.get("start"), recorded=recorded, requestor_patients=kw.get("own", ()),
                       acting_for=kw.get("acting_for", ()))
    return compact, full


def test_a_compact_record_states_exactly_the_audit_event_build_event_makes() -> None:
    for seq, kw in enumerate(INTERACTIONS):
        compact, full = _both(kw)
        data = compact.data(seq)
        assert data == canonical(orjson.loads(data))  # its signed bytes are RFC 8785
        assert event_of(data) == {**full, "resourceType": "AuditEvent", "id": event_id(seq)}, kw["action"]
        assert stored_keys(data) == (record_keys(event_of(data)), full["recorded"])
        assert recorded_of(data) == full["recorded"]
        assert len(data) < len(canonical({**full, "id": event_id(seq)})) / 2 or seq == 4


def test_a_search_over_many_resources_keeps_only_those_its_event_lists() -> None:
    compact, full = _both(INTERACTIONS[5])
    assert len(compact.resources) == 100 and compact.detail[-1] == ("resources-not-listed", "30")
    assert len([o for o in compact.owners]) == 100
    assert {"type": "resources-not-listed", "valueString": "30"} in full["entity"][-1]["detail"]


def test_both_formats_are_read_and_verified_in_one_log(store: Store, backend_settings: Settings) -> None:
    log = AuditLog(store, backend_settings, AuditKeys.load(backend_settings))
    first = log.record(EVENTS[0])
    compact, _ = _both(INTERACTIONS[1])
    second = log.record(compact)
    assert first.resource["id"] == "audit-0" and second.resource["outcomeDesc"] == "HTTP 403: 拒绝"
    assert [e["id"] for e in log.events()] == ["audit-0", "audit-1"]
    assert verify_online(log).ok
    doc = log.leaves.get(seq_key(1))  # an altered compact record is found like any other
    log.leaves.replace({**doc, "data": doc["data"].replace('"out":"4"', '"out":"0"')})
    report = verify_online(log)
    assert not report.ok and any(p.kind == "altered" and p.record == 1 for p in report.problems)


def test_keys_noted_at_the_append_are_those_read_back_from_the_records(store: Store,
                                                                       backend_settings: Settings) -> None:
    """A log keys its own compact records from the facts it appended, and another process's (a
    second ``AuditLog`` on the same store, as ``--workers`` are) from their stored bytes: the key
    documents must be exactly those a log that read every record back would write."""
    one = AuditLog(store, backend_settings, AuditKeys.load(backend_settings))
    two = AuditLog(store, backend_settings, AuditKeys.load(backend_settings))
    for i, kw in enumerate(INTERACTIONS * 3):
        writer = one if i % 3 else two
        writer.refresh()
        writer.record_many([_both(kw)[0], EVENTS[i % len(EVENTS)]] if i % 4 == 0 else [_both(kw)[0]])
    assert one._appended_keys and two._appended_keys  # each noted its own
    one.index_keys()
    keyed = sorted((d["_id"], d.get("more"), d.get("to")) for d in one.key_index.find())
    assert not one._appended_keys  # consumed once keyed
    two.index_keys()  # nothing left to key: its notes of records the other keyed are let go
    assert not two._appended_keys
    for doc in one.key_index.find():
        one.key_index.delete(doc["_id"])
    one.meta.delete("keyed-to")
    fresh = AuditLog(store, backend_settings, AuditKeys.load(backend_settings))  # notes nothing: reads back
    fresh.index_keys()
    assert sorted((d["_id"], d.get("more"), d.get("to")) for d in fresh.key_index.find()) == keyed
    assert any(k.startswith("p:p2\t") for k, _m, _t in keyed) and any(k.startswith("a:") for k, _m, _t in keyed)
