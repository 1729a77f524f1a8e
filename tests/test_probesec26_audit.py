"""probesec26: the signed audit trail as published -- every interaction recorded through the real
app, exported with the real CLI (`huren audit export`) and verified offline (`huren audit verify
--export --public-key`) with only the public key published at GET /audit/public-key, after each
way a forger or a careless copy could change it.

Expected: README "Audit trail"; RFC 9162 (a Merkle tree log whose signed root commits to every
record, in order); IHE BALP (every access, refused ones too, names who asked).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.cli import main
from engine.engine import Engine
from engine.settings import Settings


def _h(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def looked(settings: Settings, tmp_path: Path) -> dict[str, Any]:
    """A hospital writes and reads two residents' records; a resident reads hers and tries the other's;
    refused calls (no token, too narrow a scope). Then the log is exported with the CLI and the
    published public key saved apart."""
    s = settings
    out: dict[str, Any] = {}
    with Engine(s) as eng, TestClient(create_app(eng)) as c:
        his = _h(eng.auth.issue_system_token("his-a", "system/*.cruds"))
        narrow = _h(eng.auth.issue_system_token("lis-b", "system/Observation.rs"))
        for pid, name in (("pa", "甲"), ("pb", "乙")):
            r = c.put(f"/fhir/Patient/{pid}", json={"resourceType": "Patient", "id": pid, "name": [{"text": name}]},
                      headers=his)
            assert r.status_code in (200, 201), r.text
        assert c.get("/fhir/Patient/pa", headers=his).status_code == 200
        assert c.get("/fhir/Patient?_id=pa,pb", headers=his).status_code == 200
        assert c.get("/fhir/Patient/pa").status_code == 401
        assert c.get("/fhir/Patient/pa", headers=narrow).status_code == 403
        tok, _ = eng.auth.issue_token(subject="person-a", kind="patient", client_id="phr", scopes=["patient/*.rs"],
                                      patient="pa", person="person-a")
        resident = _h(tok)
        assert c.get("/fhir/Patient/pa", headers=resident).status_code == 200
        assert c.get("/fhir/Patient/pb", headers=resident).status_code == 404
        out["resident"] = resident
        auditor = _h(eng.auth.issue_system_token("audit-office", "system/AuditEvent.rs", kind="auditor"))
        bundle = c.get("/fhir/AuditEvent?_count=200", headers=auditor).json()
        out["events"] = [e["resource"] for e in bundle.get("entry", [])]
        out["mine"] = c.get("/fhir/AuditEvent?_count=200", headers=resident)
        out["who_looked"] = c.get("/ui/me/who-looked", headers=resident)
        pub = c.get("/audit/public-key").json()
    key = tmp_path / "published.pub.pem"
    key.write_text(pub["keys"][0]["pem"])
    export = tmp_path / "audit.jsonl"
    old = os.environ.get("HUREN_DATA_DIR")
    os.environ["HUREN_DATA_DIR"] = str(s.data_dir)
    try:
        assert main(["audit", "export", "-o", str(export)]) == 0
    finally:
        if old is None:
            os.environ.pop("HUREN_DATA_DIR", None)
        else:
            os.environ["HUREN_DATA_DIR"] = old
    out.update(settings=s, key=key, export=export)
    return out


def _lines(path: Path) -> list[dict]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def _write(path: Path, lines: list[dict]) -> None:
    path.write_bytes(b"\n".join(orjson.dumps(x) for x in lines) + b"\n")


def _verify(path: Path, key: Path, capsys: pytest.CaptureFixture[str]) -> int:
    capsys.readouterr()
    return main(["audit", "verify", "--export", str(path), "--public-key", str(key)])


def _records(lines: list[dict]) -> list[int]:
    return [i for i, x in enumerate(lines) if x["type"] == "record"]


# ---- what is recorded ---------------------------------------------------------------------------


def _who(ev: dict) -> str | None:
    for a in ev.get("agent", []):
        if a.get("requestor"):
            return ((a.get("who") or {}).get("identifier") or {}).get("value") or (a.get("who") or {}).get("reference")
    return None


def _touches(ev: dict, ref: str) -> bool:
    return any((e.get("what") or {}).get("reference") == ref for e in ev.get("entity", []))


def test_every_interaction_and_every_refusal_is_recorded_naming_the_caller(looked: dict) -> None:
    events = looked["events"]
    def one(pred) -> dict:  # noqa: ANN001
        found = [e for e in events if pred(e)]
        assert found, "no AuditEvent"
        return found[0]
    writes = [e for e in events if e["action"] in ("C", "U") and _who(e) == "his-a"]
    assert {r for e in writes for r in ("Patient/pa", "Patient/pb") if _touches(e, r)} == {"Patient/pa", "Patient/pb"}
    read = one(lambda e: e["action"] == "R" and _who(e) == "his-a" and _touches(e, "Patient/pa")
               and e["outcome"] == "0")
    assert read["subtype"][0]["code"] == "read"
    one(lambda e: e["action"] == "E" and _who(e) == "his-a")  # the search
    unauth = one(lambda e: e["outcome"] != "0" and _who(e) is None and _touches(e, "Patient/pa"))
    assert unauth["outcome"] in ("4", "8")
    forbidden = one(lambda e: e["outcome"] != "0" and _who(e) == "lis-b")
    assert forbidden["outcome"] in ("4", "8")
    # the resident's refused read of another's record (404): the FHIR view shows "another resident"
    # (README: the view is redacted), the signed record it points to names her
    refused = one(lambda e: e["outcome"] != "0" and _touches(e, "Patient/pb"))
    rec = next(d["valueString"] for x in refused["entity"] for d in x.get("detail", [])
               if d["type"] == "audit-record")
    raw = next(x["data"] for x in _lines(looked["export"]) if x["type"] == "record" and f'"{rec}"' in x["data"])
    assert "person-a" in raw and "pb" in raw, raw


def test_a_residents_own_trail_shows_who_read_her_and_nothing_of_others(looked: dict) -> None:
    r = looked["mine"]
    assert r.status_code == 200, r.text
    text = json.dumps(r.json(), ensure_ascii=False)
    assert "his-a" in text  # the hospital that read her record
    assert "Patient/pb" not in text and "乙" not in text
    w = looked["who_looked"]
    assert w.status_code == 200
    assert "Patient/pb" not in w.text


# ---- offline verification of the export with only the published key -----------------------------


def test_the_untouched_export_verifies(looked: dict, capsys: pytest.CaptureFixture[str]) -> None:
    assert _verify(looked["export"], looked["key"], capsys) == 0, capsys.readouterr().out


def test_a_changed_byte_is_detected(looked: dict, capsys: pytest.CaptureFixture[str]) -> None:
    lines = _lines(looked["export"])
    i = _records(lines)[1]
    lines[i]["data"] = lines[i]["data"].replace("his-a", "his-x", 1)
    assert lines[i]["data"] != _lines(looked["export"])[i]["data"]
    _write(looked["export"], lines)
    assert _verify(looked["export"], looked["key"], capsys) != 0


def test_a_dropped_record_is_detected(looked: dict, capsys: pytest.CaptureFixture[str]) -> None:
    lines = _lines(looked["export"])
    del lines[_records(lines)[2]]
    _write(looked["export"], lines)
    assert _verify(looked["export"], looked["key"], capsys) != 0


def test_a_reordered_record_is_detected(looked: dict, capsys: pytest.CaptureFixture[str]) -> None:
    lines = _lines(looked["export"])
    at = _records(lines)
    lines[at[1]], lines[at[2]] = lines[at[2]], lines[at[1]]
    _write(looked["export"], lines)
    assert _verify(looked["export"], looked["key"], capsys) != 0


@pytest.mark.parametrize("cut", [1, 3])
def test_a_truncated_tail_is_detected(looked: dict, capsys: pytest.CaptureFixture[str], cut: int) -> None:
    lines = _lines(looked["export"])
    at = _records(lines)
    for i in reversed(at[-cut:]):
        del lines[i]
    _write(looked["export"], lines)
    assert _verify(looked["export"], looked["key"], capsys) != 0


def test_a_truncated_file_is_detected(looked: dict, capsys: pytest.CaptureFixture[str]) -> None:
    raw = looked["export"].read_bytes()
    looked["export"].write_bytes(raw[: raw.rstrip(b"\n").rfind(b"\n") + 1])  # the last line gone, bytes-wise
    assert _verify(looked["export"], looked["key"], capsys) != 0


def test_a_record_replaced_with_a_validly_hashed_forgery_is_detected(looked: dict,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """The forger rewrites the resident's refused read as someone else's, and recomputes the leaf
    hash (SHA-256 of 0x00 || data) so the line is well-formed."""
    lines = _lines(looked["export"])
    i = next(i for i in _records(lines) if "person-a" in lines[i]["data"])
    data = lines[i]["data"].replace("person-a", "person-z")
    lines[i] = {**lines[i], "data": data, "hash": hashlib.sha256(b"\x00" + data.encode()).hexdigest()}
    _write(looked["export"], lines)
    assert _verify(looked["export"], looked["key"], capsys) != 0


def test_a_whole_log_forged_under_a_key_of_its_own_is_refused(looked: dict, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A forger builds a complete, self-consistent log with the same origin under a key of their own
    and exports it (its key lines and signatures all valid): against the published key it fails."""
    s = looked["settings"].with_(data_dir=tmp_path / "forged")
    with Engine(s) as eng, TestClient(create_app(eng)) as c:
        his = _h(eng.auth.issue_system_token("his-a", "system/*.cruds"))
        c.get("/fhir/Patient/pa", headers=his)
    forged = tmp_path / "forged.jsonl"
    old = os.environ.get("HUREN_DATA_DIR")
    os.environ["HUREN_DATA_DIR"] = str(s.data_dir)
    try:
        assert main(["audit", "export", "-o", str(forged)]) == 0
        capsys.readouterr()
        assert main(["audit", "verify", "--export", str(forged)]) != 0  # its own keys: not proven
    finally:
        if old is None:
            os.environ.pop("HUREN_DATA_DIR", None)
        else:
            os.environ["HUREN_DATA_DIR"] = old
    assert _verify(forged, looked["key"], capsys) != 0


def test_header_counts_edited_to_match_a_cut_tail_are_detected(looked: dict,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    lines = _lines(looked["export"])
    at = _records(lines)
    del lines[at[-1]]
    head = copy.deepcopy(lines[0])
    head["records"] = head["records"] - 1
    head["note"] = head["note"].replace(f"records {head['records'] + 1}\n", f"records {head['records']}\n")
    lines[0] = head
    _write(looked["export"], lines)
    assert _verify(looked["export"], looked["key"], capsys) != 0
