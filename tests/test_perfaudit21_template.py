"""The one-resource record written from a template (one per caller, action, status and outcome) is
byte for byte the record the general path writes, over many varied requests: non-ASCII and JSON-hostile
names, ids and origins, every status class, starts in and out of the record's millisecond, patients
named twice, resources that are one of the patients, owners and none, unknown outcomes."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import orjson
import pytest

from engine.audit import middleware, record
from engine.audit.derived import facts_keys
from engine.audit.note import AuditNote

NOW_MS = 1796025600123  # 2026-11-30T08:00:00.123Z
RECORDED = "2026-11-30T08:00:00.123Z"

CALLERS = [
    SimpleNamespace(kind="system", subject="his-a", client_id="his-a"),
    SimpleNamespace(kind="auditor", subject="wang.li", client_id="desk", role="auditor", display="王丽"),
    SimpleNamespace(kind="practitioner", subject='dr "quote" \\ back', client_id="ward\t7", role="doctor",
                    display="Zoë \u2028 O'Brien \U0001f600", consent="c-1"),
    SimpleNamespace(kind="system", subject="\u00e9t\u00e9\x01", client_id=None),
    SimpleNamespace(kind="related", subject="rp-1", acting="RelatedPerson/rp-1", display="李 明"),
    None,
]
CLIENTS = [("10.0.0.9", 5000), ("::1", 1), None]
ORIGINS = ["node", "https://社区.example/fhir", 'o"rigin\\']
NOTES = [
    AuditNote("read", ["Observation/o1/_history/2"], ["p1"], owners={"Observation/o1/_history/2": ["p1"]}),
    AuditNote("read", ["Patient/p1/_history/1"], ["p1"], owners={"Patient/p1/_history/1": ["p1"]}),
    AuditNote("read", ["Patient/张三/_history/1"], ["张三"], owners={"Patient/张三/_history/1": ["张三"]}),
    AuditNote("vread", ["Patient/p2/_history/3"], ["p1"], owners={"Patient/p2/_history/3": ["p2"]}),
    AuditNote("read", ["Observation/观察-1"], ["病人-1", "病人-1", "p\"2"],
              owners={"Observation/观察-1": ["病人-1", "p\"2"]}),
    AuditNote("read", ["Organization/org1/_history/1"]),
    AuditNote("read", ["Observation/o9"], ["p9"]),
    AuditNote("read", ["Observation/o9"], ["p9"], owners={"Observation/o9": []}),
    AuditNote("delete", ["Observation/o1"], ["p1", "p1"], outcome="4"),
    AuditNote("update", ["Observation/o1/_history/3"], ["p1"], outcome="99", owners={"Observation/o1/_history/3": []}),
    AuditNote("create", ["Encounter/e\\1"], ["p1", "p2", "p3"], outcome="12"),
    AuditNote("operation"),
    AuditNote("read", [], ["p4"]),
]
STATUSES = (200, 201, 204, 304, 400, 403, 404, 410, 500, 503)
STARTS = ("2026-11-30T08:00:00.100Z", RECORDED, "", NOW_MS - 23, NOW_MS, NOW_MS - 86_400_000)


def test_the_template_writes_the_general_paths_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(middleware, "time_ns", lambda: NOW_MS * 1_000_000)
    salts = itertools.count()
    monkeypatch.setattr(record, "new_salt", lambda: f"{next(salts) % 7:032x}")
    general_path = middleware._facts
    taken: list[int] = []
    monkeypatch.setattr(middleware, "_facts", lambda *a: taken.append(1) or general_path(*a))
    middleware._TEMPLATES.clear()
    checked = 0
    for _round in range(2):  # the second round from the templates the first one made
        for caller, client, origin in itertools.product(CALLERS, CLIENTS, ORIGINS):
            scope = {"type": "http", "method": "GET", "path": "/fhir/Observation/o1", "query_string": b"",
                     "client": client, "state": {"caller": caller} if caller else {}}
            for n in NOTES:
                for status in STATUSES:
                    for start in STARTS:
                        salt = f"{next(salts) % 7:032x}"
                        monkeypatch.setattr(record, "new_salt", lambda s=salt: s)
                        fast = middleware.facts_for_request(scope, [n], status, start, origin)
                        general = general_path(scope, [n], status,
                                               middleware.instant_of(start) if type(start) is int else start,
                                               origin, None, caller, getattr(caller, "kind", None),
                                               middleware.requestor_of(caller, client), RECORDED)
                        assert type(fast) is record.Sealed
                        for seq in (0, 7, 123456789):
                            data = fast.data(seq)
                            assert data == general.data(seq), (caller, client, origin, n, status, start)
                            # and RFC 8785 as the canonical form states it (sorted keys, orjson's escapes)
                            assert data == orjson.dumps(orjson.loads(data), option=orjson.OPT_SORT_KEYS)
                        assert list(fast.keys) == facts_keys(general)
                        assert fast.recorded == RECORDED
                        checked += 1
    assert not taken  # every one of these took the one-resource path (the template)
    assert checked == 2 * len(CALLERS) * len(CLIENTS) * len(ORIGINS) * len(NOTES) * len(STATUSES) * len(STARTS)


def test_a_template_is_not_another_callers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Templates are keyed by the caller's id and hold the caller (so its id is no other object's while
    they do): callers made and dropped one after another each get their own requestor."""
    monkeypatch.setattr(record, "new_salt", lambda: "0" * 32)
    scope = {"type": "http", "method": "GET", "path": "/fhir/Observation/o1", "query_string": b"",
             "client": ("10.0.0.9", 5000), "state": {}}
    note = AuditNote("read", ["Observation/o1"], ["p1"])
    for i in range(200):
        caller = SimpleNamespace(kind="system", subject=f"s{i}", client_id=f"c{i}")
        scope["state"] = {"caller": caller}
        data = middleware.facts_for_request(scope, [note], 200, 0, "node").data(1)
        assert orjson.loads(data)["by"][1] == f"s{i}"
        del caller


def test_an_unwritable_string_fails_the_record_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    """A lone surrogate (which RFC 8785 cannot write) fails the one record in the template path as it
    did in the whole-record dump: the middleware turns that into a 503, never a record of other bytes."""
    scope = {"type": "http", "method": "GET", "path": "/fhir/Observation/o1", "query_string": b"",
             "client": None, "state": {"caller": SimpleNamespace(kind="system", subject="his-a")}}
    with pytest.raises(TypeError):
        middleware.facts_for_request(scope, [AuditNote("read", ["Observation/\ud800"], ["p1"])], 200, 0, "node")
    with pytest.raises(TypeError):
        bad = {"caller": SimpleNamespace(kind="system", subject="\udfff")}
        middleware.facts_for_request({**scope, "state": bad}, [AuditNote("read", ["Observation/o1"], ["p1"])],
                                     200, 0, "node")
