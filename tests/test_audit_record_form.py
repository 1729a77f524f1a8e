"""The signed record's bytes are RFC 8785 whichever way they are made.

``build_event`` vouches for its events (``BuiltEvent.jcs_safe``) so the log writes them with orjson
directly; for every kind of event the engine builds — a read, a search with a query in Chinese and
control characters, a resident's own access, a family member's, a named staff member's, an HL7
import with details — those bytes must be exactly ``canonical``'s. An agent that orjson would
write differently (a float RFC 8785 writes otherwise) takes the event off the fast form.
"""

from __future__ import annotations

import orjson

from engine.audit.canonical import canonical
from engine.audit.events import BuiltEvent, build_event, requestor_agent
from engine.audit.log import _canonical, event_id

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
