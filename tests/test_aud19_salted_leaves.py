"""A resident's inclusion proof no longer confirms a guess about the neighbouring record.

张三 reads his result; a hospital then reads 李四's. 张三 asks for the inclusion proof of his own
record (``GET /audit/proof/inclusion``, his token): the path's first node is the leaf hash of the
record beside his. Records were predictable bytes (number, millisecond, requestor, patient,
resource), so someone who guessed "the hospital read 李四's Observation at that millisecond" could
hash the guess and see it match. Each record now carries 128 random bits of its own (``salt``):
the neighbour's exact facts, everything but the salt, no longer hash to the path's node, while the
proof still verifies (RFC 9162) and the whole log still verifies. Real HTTP through FastAPI, the
real log; nothing of the salt reaches a resident's AuditEvent views.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.audit import merkle
from engine.audit.verify import verify_online
from tests.test_audit_views import bearer, resident, world

__all__ = ["world"]


def _seq_of(log: Any, needle: str, since: int) -> int:
    return next(seq for seq in range(since, log.size) if needle in log.get(seq)["data"])


def test_the_neighbours_leaf_in_my_proof_does_not_confirm_a_guess(world: Any) -> None:
    http = TestClient(create_app(world))
    log = world.audit
    start = log.size
    me = resident(world, "pt-zhang")
    his = bearer(world.auth.issue_system_token("his-fnxrmyy", "system/*.rs"))
    assert http.get("/fhir/Observation/obs-zhang", headers=me).status_code == 200
    for _ in range(3):
        assert http.get("/fhir/Observation/obs-li", headers=his).status_code == 200
    mine = _seq_of(log, "obs-zhang", start)
    size = log.size
    r = http.get(f"/audit/proof/inclusion?leaf={mine}&size={size}", headers=me)
    assert r.status_code == 200, r.text
    proof = r.json()
    path = [bytes.fromhex(h) for h in proof["audit_path"]]
    assert merkle.verify_inclusion(mine, size, bytes.fromhex(proof["leaf_hash"]), path, bytes.fromhex(proof["root"]))

    neighbour = log.get(mine ^ 1)["data"]
    assert merkle.leaf_hash(neighbour.encode()).hex() == path[0].hex()  # the path's first node: its leaf
    guess = orjson.loads(neighbour)
    salt = guess.pop("salt", None)  # everything a guesser could know: all but the record's own salt
    assert merkle.leaf_hash(orjson.dumps(guess, option=orjson.OPT_SORT_KEYS)) != path[0]
    assert isinstance(salt, str) and len(bytes.fromhex(salt)) == 16
    salts = {orjson.loads(log.get(seq)["data"]).get("salt") for seq in range(start, log.size)}
    assert len(salts) == log.size - start  # one of its own each

    views = http.get("/fhir/AuditEvent?patient=pt-zhang", headers=me)
    assert views.status_code == 200 and views.json()["total"] >= 1
    assert not any(s in views.text for s in salts)
    assert verify_online(log).ok
