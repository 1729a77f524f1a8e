"""The recognition hook made cheaper per message (twenty-first round, perfrecog21) decides and
stores exactly what it did before: a varied feed -- the demo month (three sites, merges,
cancellations, R98, self-pay, repeats of lab and imaging tests), then lab reports of the bench's
shape: one resident twice in one batch, repeats inside and outside the window, a corrected
report (OBX-11 C), a township hospital's ALT it has no passed QC for, a result dated after that
hospital's QC lapsed -- goes over a real MLLP socket (pipelined on one connection, so the
listener groups them into batches) into a fresh SQLite store, and every stored version of every
resource (``fhir_history`` and ``fhir_resource``, bodies byte for byte), every document row of
the recognition and patient index collections and every ACK's MSA/ERR segments are compared with
``tests/data/perfrecog21/expected.json``, made by this very file's ``snapshot`` run on the base
commit of the round (``python tests/test_perfrecog21_same_bytes.py OUT.json`` with the base's
code on ``PYTHONPATH``).

What differs between any two runs is masked, and only that: the instants stamped when written
(ISO instants dated within a day of the run: ``meta.lastUpdated``, a check row's ``checked``), the
Provenance signatures and the audit chain (random keys), and the raw message store's receipt
times. The identity key is fixed (written before the engine starts), so the hashed ID numbers
are those of the fixture.
"""

from __future__ import annotations

import datetime
import json
import re
import socket
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import engine as _engine_package

# the checkout whose code runs (the base's, when the fixture is made with it on PYTHONPATH)
REPO = Path(_engine_package.__file__).resolve().parent.parent
FIXTURE = Path(__file__).resolve().parent / "data" / "perfrecog21" / "expected.json"
FEEDS = sorted((REPO / "examples" / "feeds").glob("*.hl7"))
KEY = bytes(range(32))  # the patient index's HMAC key of both runs
# instants: masked when stamped now (dated within a day of the run), kept when a message sent them
_STAMP = re.compile(r"(20\d\d-\d\d-\d\d)T\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")
_TODAY = {(datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=d)).date().isoformat() for d in (-1, 0, 1)}


def _lab(n: int, *, facility: str = "FNXRMYY", day: str = "20261101", status: str = "F",
         control: str | None = None, value: str | None = None) -> bytes:
    """``bench.ingest.oru_lab(n)`` from another facility, on another day, with another result
    status (C: a correction), control id or first value."""
    from bench.ingest import oru_lab

    text = oru_lab(n).decode("utf-8")
    text = text.replace("|FNXRMYY|", f"|{facility}|").replace("^FNXRMYY^", f"^{facility}^")
    text = text.replace("20261101", day)
    if status != "F":
        text = "\r".join(seg[:seg.rfind("|F|||")] + f"|{status}|||" + seg[seg.rfind("|F|||") + 5:]
                         if seg.startswith("OBX|") else seg for seg in text.split("\r"))
    if value is not None:
        text = text.replace("|6.2|", f"|{value}|", 1)
    if control is not None:
        text = text.replace(f"|LAB{n:09d}|P|", f"|{control}|P|", 1)
    return text.encode("utf-8")


def feed() -> list[bytes]:
    messages = [path.read_bytes().replace(b"\r\n", b"\r").replace(b"\n", b"\r").rstrip(b"\r") + b"\r"
                for path in FEEDS]
    messages += [
        _lab(3), _lab(4), _lab(3 + 499),  # resident 3 twice in a batch: a repeat inside the window
        _lab(5), _lab(5 + 499, day="20261105"),  # within CBC's 7 days
        _lab(6), _lab(6 + 499, day="20261125"),  # outside it
        _lab(7), _lab(7, status="C", control="COR000000007", value="6.9"),  # a corrected report
        _lab(8, facility="FNYLWSY"), _lab(8 + 499, facility="FNXRMYY"),  # the ALT of no passed QC
        _lab(9, facility="FNYLWSY", day="20270105"),  # after FNYLWSY's QC lapsed
        _lab(9 + 499, facility="FNZYY", day="20270107"),
        _lab(10, facility="FNZYY"), _lab(10 + 499, facility="FNYLWSY", day="20261102"),
    ]
    return messages


def _send_all(port: int, messages: list[bytes]) -> list[str]:
    """Every message pipelined on one connection; the ACKs in order."""
    from adapters.listeners.mllp import frame

    acks: list[str] = []
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(b"".join(frame(m) for m in messages))
        data = b""
        deadline = time.monotonic() + 120
        while len(acks) < len(messages) and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            assert chunk, "connection closed before every ACK"
            data += chunk
            while b"\x1c\r" in data:
                ack, data = data.split(b"\x1c\r", 1)
                acks.append(ack.lstrip(b"\x0b").decode("utf-8"))
    return acks


def _mask(text: str) -> str:
    return _STAMP.sub(lambda m: "<now>" if m.group(1) in _TODAY else m.group(0), text)


def _plain(value: Any) -> Any:
    """JSON with the instants masked and the volatile keys dropped, recursively."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "meta" and isinstance(v, dict):
                v = {mk: mv for mk, mv in v.items() if mk != "lastUpdated"}
            out[k] = _plain(v)
        return out
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return _mask(value)
    return value


_SKIP_TYPES = ("Provenance", "AuditEvent")  # signed with the store's random key, and the audit's


def snapshot(data_dir: Path, acks: list[str]) -> dict[str, Any]:
    """Everything stored (the engine closed), masked as the module says."""
    conn = sqlite3.connect(data_dir / "huren.sqlite3")
    try:
        versions: dict[str, Any] = {}
        for rtype, rid, version, deleted, body in conn.execute(
                "SELECT type, id, version, deleted, body FROM fhir_history ORDER BY type, id, version"):
            if rtype in _SKIP_TYPES:
                continue
            versions[f"{rtype}/{rid}/_history/{version}"] = (
                deleted, _plain(json.loads(body)) if body else None)
        current: dict[str, Any] = {}
        for rtype, rid, version, deleted, body in conn.execute(
                "SELECT type, id, version, deleted, body FROM fhir_resource ORDER BY type, id"):
            if rtype in _SKIP_TYPES:
                continue
            current[f"{rtype}/{rid}"] = (version, deleted, _plain(json.loads(body)) if body else None)
        docs: dict[str, Any] = {}
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 'doc_%'")]
        for table in sorted(tables):
            name = table[4:]
            if not name.startswith(("recognition", "identity", "mpi")):
                continue
            docs[name] = {rid: _plain(json.loads(body))
                          for rid, body in conn.execute(f'SELECT id, body FROM "{table}" ORDER BY id')}
    finally:
        conn.close()
    acked = [[_mask(seg) for seg in ack.split("\r") if seg.startswith(("MSA|", "ERR|"))] for ack in acks]
    return json.loads(json.dumps({"acks": acked, "versions": versions, "current": current, "docs": docs},
                                 sort_keys=True, ensure_ascii=False))


def run(data_dir: Path) -> dict[str, Any]:
    """The feed over a real MLLP listener into a fresh store at ``data_dir``; its snapshot."""
    from engine.engine import Engine
    from engine.identity.mpi import KEY_FILE
    from engine.settings import Settings

    keys = data_dir / "keys"
    keys.mkdir(parents=True)
    (keys / KEY_FILE).write_bytes(KEY)
    settings = Settings(data_dir=data_dir, http_port=0, mllp_port=0)
    messages = feed()
    engine = Engine(settings)
    try:
        with _listener(engine) as port:
            acks = _send_all(port, messages)
        batches = engine.ingestor.stats.batches if hasattr(engine.ingestor.stats, "batches") else None
    finally:
        engine.close()
    assert len(acks) == len(messages)
    out = snapshot(data_dir, acks)
    out["_batches"] = batches
    return out


def _listener(engine: Any) -> Any:
    import asyncio
    import contextlib
    import threading

    from adapters.listeners.ingest_handler import IngestHandler
    from adapters.listeners.mllp import MLLPServer

    @contextlib.contextmanager
    def running() -> Any:
        loop = asyncio.new_event_loop()
        server = MLLPServer(IngestHandler(engine.ingestor), host="127.0.0.1", port=0)
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(server.start())
            ready.set()
            loop.run_forever()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        assert ready.wait(10)
        try:
            yield server.port
        finally:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)

    return running()


_MONEY = ("money", "price")


def comparable(snap: dict[str, Any]) -> dict[str, Any]:
    """``snap`` with what later rounds changed on purpose set aside, every other byte compared as
    before: payfix26's ``results`` in a report's index entry (which entries of its test are its own;
    the fixture's base did not write it); moneyleft27's amounts stored as decimal text to the fen
    (``"0.10"``; the base stored floats, 0.1) -- each read as the store's one reading of an amount
    (``tiers.stored_fen``), so a fen of difference still fails; moneyfix27's once-only re-pricing
    marker in ``recognition_layout``; evidence33's evidence pairs (a flag row's ``pairs`` and
    ``unpaired``, its DetectedIssue's ``analytePair``/``unpairedAnalyte`` evidence, the evidence
    entry of each pair and the pairs' results among its ``implicated``); evid35's link of an
    Observation to the order its report is based on (its entry's ``order``: the base linked none, no
    Observation of the feed names an order of its own), set aside only where the snapshot's own check
    row of that order is an order-time check of the entry's person and item; link37's reports kept on
    an Observation's entry (``reports``), its once-only marker, and its notes of reports stored ahead
    of their results when there are none (the feed has no FHIR client); perfa42's compartment stamp in ``mpi_meta``
    (random, replaced by each identity write); acsn43b's assigner of an order's accession (ACSN identifier's
    ``assigner``, the application that assigned it) and acsn45's of a report's bare filler number (its sender)."""
    from engine.identity.mpi import COMPARTMENTS_STAMP
    from engine.insurance.tiers import stored_fen
    from engine.recognition.index import LISTED_AHEAD
    from engine.recognition.repricing import MONEY_RULES
    from engine.recognition.upgrade import REPORT_DAYS

    docs = snap["docs"]
    # perfa42's random compartment stamp (``mpi.COMPARTMENTS_STAMP``): replaced by every identity write, no fact
    meta = docs.get("mpi_meta")
    if isinstance(meta, dict):
        for key in [k for k, v in meta.items() if COMPARTMENTS_STAMP in (k, v.get("_id") if isinstance(v, dict) else None)]:
            del meta[key]
        if not meta:
            del docs["mpi_meta"]
    checks = docs.get("recognition_checks", {})
    if not docs.get(LISTED_AHEAD):
        docs.pop(LISTED_AHEAD, None)
    docs.get("recognition_layout", {}).pop(REPORT_DAYS, None)
    for key, doc in docs.get("recognition_results", {}).items():
        doc.pop("results", None)
        doc.pop("reports", None)
        if key.startswith("Observation/") and doc.get("order"):
            check = checks.get(doc["order"]) or {}
            assert (check.get("source"), check.get("person"), check.get("item")) == \
                ("order", doc.get("person"), doc.get("item")), (key, doc, check)
            doc["order"] = None
    docs.get("recognition_layout", {}).pop(MONEY_RULES, None)
    for doc in docs.get("recognition_flags", {}).values():
        doc.pop("pairs", None)
        doc.pop("unpaired", None)
    for part, at in (("current", 2), ("versions", 1)):
        for key, row in snap.get(part, {}).items():
            if key.startswith("DetectedIssue/dup-") and row[at]:
                row[at] = _without_pairs(row[at])
            if key.startswith("ServiceRequest/") and row[at]:
                row[at] = {**row[at], "identifier": [
                    {k: v for k, v in i.items() if k != "assigner" or _kind(i) != "ACSN"}
                    for i in row[at].get("identifier") or ()]} if "identifier" in row[at] else row[at]
            if key.startswith("DiagnosticReport/") and row[at] and "identifier" in row[at]:
                row[at] = {**row[at], "identifier": [
                    {k: v for k, v in i.items() if k != "assigner" or not _bare_filler(i)}
                    for i in row[at]["identifier"]]}
    for name in ("recognition_flags", "recognition_check_days", "recognition_flag_days"):
        for doc in docs.get(name, {}).values():
            for key in _MONEY:
                if key in doc:
                    doc[key] = str(stored_fen(doc[key]))
    return snap


_BARE_FILLER = "urn:huren:order:"  # a report's filler number sent with no authority (results.py's system for it)


def _bare_filler(identifier: dict[str, Any]) -> bool:
    """A report identifier that is its bare filler number (``urn:huren:order:<INST>``): the one acsn45 records the
    sender of as ``assigner``. A stated authority's identifier (``urn:huren:id:LIS``, an OID) keeps its assigner in
    the comparison (rv45a LOW 7: the mask had stripped every report identifier's)."""
    return str(identifier.get("system") or "").startswith(_BARE_FILLER)


def _kind(identifier: dict[str, Any]) -> str:
    """An identifier's v2 0203 type ("" when it states none)."""
    return str(((identifier.get("type") or {}).get("coding") or [{}])[0].get("code") or "")


def _without_pairs(issue: dict[str, Any]) -> dict[str, Any]:
    """A flag's DetectedIssue as it was before evidence33 added its pairs (see ``comparable``)."""
    own = {d["reference"] for e in (issue.get("evidence") or [])[:2] for d in e.get("detail") or ()}
    paired = {d["reference"] for e in (issue.get("evidence") or [])[2:] for d in e.get("detail") or ()}
    out = {**issue, "evidence": (issue.get("evidence") or [])[:2]}
    if "implicated" in issue:
        out["implicated"] = [i for i in issue["implicated"] if i.get("reference") not in paired - own]
    out["extension"] = [{**ext, "extension": [e for e in ext.get("extension") or ()
                                              if e.get("url") not in ("analytePair", "unpairedAnalyte")]}
                        for ext in issue.get("extension") or ()]
    return out


def test_a_varied_feed_is_stored_byte_for_byte_as_the_base_stored_it(tmp_path: Path) -> None:
    expected = json.loads(FIXTURE.read_text(encoding="utf-8"))
    got = run(tmp_path / "var")
    got.pop("_batches", None)
    expected.pop("_batches", None)
    # the feed is what the fixture says it is: repeats flagged, checks kept, a correction stored
    flags = got["docs"]["recognition_flags"]
    assert flags and got["docs"]["recognition_checks"] and got["docs"]["recognition_results"]
    assert any(k.startswith("DetectedIssue/dup-") for k in got["current"])
    assert any(k.startswith("Observation/") and v[0] == 2 for k, v in got["current"].items())  # corrected
    comparable(got)
    comparable(expected)
    for part in ("acks", "docs", "current", "versions"):
        if got[part] != expected[part]:
            if isinstance(got[part], dict):
                differ = sorted(k for k in set(got[part]) | set(expected[part])
                                if got[part].get(k) != expected[part].get(k))
                raise AssertionError(f"{part}: {len(differ)} differ, e.g. {differ[:5]}: "
                                     f"{got[part].get(differ[0])!r} != {expected[part].get(differ[0])!r}")
            assert got[part] == expected[part], part


def test_the_mask_sets_aside_only_the_bare_filler_number_s_assigner() -> None:
    """A report of the fixture given a bare filler number with its sender recorded (acsn45) and an assigner on its
    stated authority's identifier: ``comparable`` sets aside the first and compares the second -- a later change to a
    stated authority's assigner is not hidden (rv45a LOW 7)."""
    expected = json.loads(FIXTURE.read_text(encoding="utf-8"))
    key, (version, deleted, report) = next((k, v) for k, v in sorted(expected["current"].items())
                                           if k.startswith("DiagnosticReport/") and v[2])
    (stated,) = report["identifier"]
    assert stated["system"] == "urn:huren:id:LIS", stated
    by = {"identifier": {"system": "urn:huren:application:HOSPA", "value": "LIS"}, "display": "LIS"}
    report = {**report, "identifier": [{**stated, "assigner": by},
                                       {"system": "urn:huren:order:HOSPA", "value": stated["value"], "assigner": by}]}
    snap = {"docs": {}, "current": {key: [version, deleted, report]}, "versions": {}}
    comparable(snap)
    assert snap["current"][key][2]["identifier"] == [
        {**stated, "assigner": by}, {"system": "urn:huren:order:HOSPA", "value": stated["value"]}]


if __name__ == "__main__":  # the fixture, from the code on PYTHONPATH (the round's base)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        result = run(Path(tmp) / "var")
    Path(sys.argv[1]).parent.mkdir(parents=True, exist_ok=True)
    Path(sys.argv[1]).write_text(json.dumps(result, sort_keys=True, ensure_ascii=False, indent=0) + "\n",
                                 encoding="utf-8")
    print(sys.argv[1], {k: len(v) for k, v in result.items() if isinstance(v, (dict, list))}, result["_batches"])
