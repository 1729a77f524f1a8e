"""Referral benchmark: the pre-arrival summary of a resident with a long record, and the cost of the
workflow guard on Task writes.

    python bench/referral.py [--reports N] [--rounds R]

Feeds, through the real ingestor (parse, convert, SQLite repository, patient index, recognition,
audit), one resident's results at the township (FNYLWSY) and at the county (FNXRMYY) under two MRNs
(one person, linked by the national ID): N lab reports with two observations each, alternating
blood count, urinalysis and liver panel (default N=66: about 200 stored resources), plus a second
resident's. Then the township refers the first one up (ServiceRequest + Task), and prints

  (a) the summary (``GET /fhir/ServiceRequest/{id}/$summary`` over HTTP with a system token, and
      ``SummaryBuilder.build`` called directly): wall and CPU ms per call, median and p95 of R calls,
      with the entry count and how many results were recognisable;
  (b) a Task update through the repository: CPU µs per write with the referral guard and hook
      registered, against the same writes on a Task that is not a referral (the guard's cost is
      reading the focus ServiceRequest);
  (c) the hook's cost on an ordinary lab DiagnosticReport (one indexed lookup of reading requests
      by its basedOn), which every ingested lab report pays;
  (d) a referral ServiceRequest update: CPU µs per write with the deductible mark (the server-made
      extension: one row lookup, the Task read, the two grades) against the same writes with the
      mark taken off the repository, alternating;
  (e) HL7 conversion (parse + convert, no store) CPU µs per message: an imaging order addressed to
      the reading centre (ServiceRequest + ImagingStudy + remote-read Task) against the same order
      to no centre, and the centre's report linked to the township's order against the same report
      naming no ordering facility;
  (f) a transaction Bundle creating a referral (ServiceRequest + Task): CPU ms per Bundle, the
      guard judging the Task with the request of the same Bundle (not stored yet).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from adapters.convert import convert  # noqa: E402
from adapters.hl7v2.parser import parse  # noqa: E402
from engine.api.app import create_app  # noqa: E402
from engine.engine import Engine  # noqa: E402
from engine.referral.summary import SummaryBuilder  # noqa: E402
from engine.repository.scoped import ScopedRepository  # noqa: E402
from engine.settings import Settings  # noqa: E402

WANG = "32092319850412001X"
LI = "320923198809030023"
ITEMS = {"FNYLWSY": [("XCG^血常规^L", "WBC"), ("NCG^尿常规^L", "WBC")], "FNXRMYY": [("GGN^肝功能^L", "ALT")]}


def report(inst: str, person: str, mrn: str, n: int, day: int) -> bytes:
    name, born, sex = ("王^建国", "19850412", "M") if person == WANG else ("李^秀英", "19880903", "F")
    item, analyte = ITEMS[inst][n % len(ITEMS[inst])]
    when = f"202611{day:02d}{n % 24:02d}0000"
    return (f"MSH|^~\\&|LIS|{inst}|HUREN|FUNING|{when}||ORU^R01^ORU_R01|{inst}-{person[-4:]}-{n}|P|2.5.1|||AL|NE|CHN|UNICODE UTF-8\r"
            f"PID|1||{person}^^^公安部^NNCHN~{mrn}^^^{inst}^MR||{name}||{born}|{sex}\r"
            f"ORC|RE|B{n}^HIS|F{n}^LIS||CM\r"
            f"OBR|1|B{n}^HIS|F{n}^LIS|{item}|||{when}|||||||||D1^医^生||||||{when}|||F\r"
            f"OBX|1|NM|{analyte}^{analyte}^L||6.{n % 10}|10*9/L|3.5-9.5|N|||F|||{when}\r"
            f"OBX|2|NM|HGB^血红蛋白^L||14{n % 10}|g/L|130-175|N|||F|||{when}\r").encode()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reports", type=int, default=66)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--quick", action="store_true", help="small counts (CI / make bench)")
    args = ap.parse_args()
    if args.quick:
        args.rounds = min(args.rounds, 3)
    with tempfile.TemporaryDirectory() as tmp, Engine(Settings(data_dir=Path(tmp) / "var", http_port=0,
                                                               mllp_port=0)) as eng:
        for n in range(args.reports):
            inst = "FNYLWSY" if n % 3 else "FNXRMYY"
            mrn = "YL100" if inst == "FNYLWSY" else "ZY900"
            eng.ingestor.process([(report(inst, WANG, mrn, n, 1 + n % 28), "bench", "127.0.0.1")])
        for n in range(20):
            eng.ingestor.process([(report("FNYLWSY", LI, "YL200", 1000 + n, 1 + n % 28), "bench", "127.0.0.1")])
        repo = eng.repository
        patient = repo.search("Patient", [("identifier", "urn:huren:mrn:FNYLWSY|YL100")]).resources[0]["id"]
        linked = eng.identity.person_compartment(patient)
        stored = sum(len(repo.search(t, [("_count", "1000")], compartment=linked).resources)
                     for t in ("Patient", "DiagnosticReport", "Observation", "ServiceRequest", "Encounter"))
        org = {"identifier": {"system": "urn:huren:institution", "value": "FNYLWSY"}}
        county = {"identifier": {"system": "urn:huren:institution", "value": "FNXRMYY"}}
        out = repo.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:sr", "request": {"method": "POST", "url": "ServiceRequest"}, "resource": {
                "resourceType": "ServiceRequest", "status": "active", "intent": "order",
                "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "3457005"}]}],
                "code": {"text": "转诊"}, "subject": {"reference": f"Patient/{patient}"}, "authoredOn": "2026-11-29",
                "requester": org, "performer": [county], "reasonCode": [{"text": "胸痛"}]}},
            {"request": {"method": "POST", "url": "Task"}, "resource": {
                "resourceType": "Task", "status": "requested", "intent": "order", "focus": {"reference": "urn:uuid:sr"},
                "for": {"reference": f"Patient/{patient}"}, "requester": org, "owner": county}}]})
        sr_id = out["entry"][0]["response"]["location"].split("/")[1]
        task_id = out["entry"][1]["response"]["location"].split("/")[1]
        print(f"resident with {len(linked)} linked records, {stored} resources in the record; load avg "
              f"{os.getloadavg()[0]:.2f}")

        builder = SummaryBuilder(eng.referrals, eng.settings.fhir_base_url)
        system = eng.auth.authenticate("Bearer " + eng.auth.issue_system_token("bench", "system/*.cruds"))
        scoped = ScopedRepository(repo, system)
        wall, cpu = [], []
        for _ in range(args.rounds):
            w0, c0 = time.perf_counter(), time.process_time()
            doc = builder.build(sr_id, scoped)
            cpu.append((time.process_time() - c0) * 1000)
            wall.append((time.perf_counter() - w0) * 1000)
        results = next(s for s in doc["entry"][0]["resource"]["section"] if s["code"]["coding"][0]["code"] == "30954-2")
        print(f"(a) SummaryBuilder.build: {len(doc['entry'])} entries, "
              f"{len(results['section'][0].get('entry', []))} recognisable results; wall median "
              f"{statistics.median(wall):.1f} ms p95 {pct(wall, .95):.1f} ms, CPU median {statistics.median(cpu):.1f} ms")
        headers = {"Authorization": "Bearer " + eng.auth.issue_system_token("bench", "system/*.cruds")}
        with TestClient(create_app(eng)) as http:
            wall, cpu = [], []
            for _ in range(args.rounds):
                w0, c0 = time.perf_counter(), time.process_time()
                r = http.get(f"/fhir/ServiceRequest/{sr_id}/$summary", headers=headers)
                cpu.append((time.process_time() - c0) * 1000)
                wall.append((time.perf_counter() - w0) * 1000)
                assert r.status_code == 200, r.text
            print(f"    GET $summary over HTTP: {len(r.content) / 1024:.0f} KiB; wall median "
                  f"{statistics.median(wall):.1f} ms p95 {pct(wall, .95):.1f} ms, CPU (client+server) median "
                  f"{statistics.median(cpu):.1f} ms")

        plain = repo.create({"resourceType": "Task", "status": "requested", "intent": "order",
                             "for": {"reference": f"Patient/{patient}"}}).resource

        def writes(task_id: str, n: int, rtype: str = "Task") -> float:
            current = repo.read(rtype, task_id)
            c0 = time.process_time()
            for i in range(n):
                body = {k: v for k, v in current.items() if k != "meta"} | {"note": [{"text": f"n{i}"}]}
                current = repo.update(body).resource
            return (time.process_time() - c0) / n * 1e6

        n = max(50, args.rounds * 5)
        pairs = [(writes(task_id, n), writes(plain["id"], n)) for _ in range(3)]
        ref, other = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
        print(f"(b) Task update CPU per write: referral Task {ref:.0f} µs, plain Task {other:.0f} µs "
              f"(guard + row: {ref - other:+.0f} µs), median of 3 alternating runs of {n}")

        # (c) what every lab report with basedOn pays at ingest: the remote-reading hook's lookup
        lab = repo.search("DiagnosticReport", [("_count", "1")]).resources[0]
        calls = 5000
        c0 = time.process_time()
        for _ in range(calls):
            eng.referrals.on_write(lab, lab)
        print(f"(c) referral hook on a lab DiagnosticReport with basedOn (not a reading request): "
              f"{(time.process_time() - c0) / calls * 1e6:.1f} µs CPU per write")

        # (d) the deductible mark on referral ServiceRequest writes
        def sr_writes(n: int) -> float:
            return writes(sr_id, n, "ServiceRequest")

        mark = eng.referrals.mark_deductible
        pairs = []
        for _ in range(3):
            with_mark = sr_writes(n)
            at = repo._marks.index(mark)  # the hooks are found by position per type: swap, do not remove
            repo._marks[at] = lambda resource: resource
            try:
                without = sr_writes(n)
            finally:
                repo._marks[at] = mark
            pairs.append((with_mark, without))
        ref, other = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
        print(f"(d) referral ServiceRequest update CPU per write: with the deductible mark {ref:.0f} µs, without "
              f"{other:.0f} µs ({ref - other:+.0f} µs), median of 3 alternating runs of {n}")

        # (e) conversion of remote reading messages
        from tests.test_remote_reading import centre_ct_report, township_ct_order

        def converts(message: bytes, n: int) -> float:
            text = message.decode("utf-8")
            c0 = time.process_time()
            for _ in range(n):
                convert(parse(text), eng.site)
            return (time.process_time() - c0) / n * 1e6

        order = township_ct_order()
        plain_order = order.replace(b"|RIS|FNXRMYY|", b"|RIS|FUNING|")
        report_ = centre_ct_report()
        plain_report = report_.replace(b"^^^^^^^^^FNYLWSY", b"").replace(b"|PACS|FNYLWSY|", b"|PACS|FUNING|")
        assert any(r["resourceType"] == "Task" for r in convert(parse(order.decode()), eng.site).resources)
        assert not any(r["resourceType"] == "Task" for r in convert(parse(plain_order.decode()), eng.site).resources)
        m = max(200, args.rounds * 20)
        rows = [(converts(order, m), converts(plain_order, m), converts(report_, m), converts(plain_report, m))
                for _ in range(3)]
        med = [statistics.median(r[i] for r in rows) for i in range(4)]
        print(f"(e) HL7 convert CPU per message: ORM^O01 to the reading centre {med[0]:.0f} µs vs to no centre "
              f"{med[1]:.0f} µs ({med[0] - med[1]:+.0f} µs); centre's ORU^R01 linked {med[2]:.0f} µs vs "
              f"unlinked {med[3]:.0f} µs ({med[2] - med[3]:+.0f} µs); median of 3 runs of {m}")

        # (f) a referral created by a transaction Bundle, guard judging the Task with its request
        def bundle() -> dict:
            return {"resourceType": "Bundle", "type": "transaction", "entry": [
                {"fullUrl": "urn:uuid:sr", "request": {"method": "POST", "url": "ServiceRequest"}, "resource": {
                    "resourceType": "ServiceRequest", "status": "active", "intent": "order",
                    "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "3457005"}]}],
                    "code": {"text": "转诊"}, "subject": {"reference": f"Patient/{patient}"},
                    "authoredOn": "2026-11-29", "requester": org, "performer": [county]}},
                {"request": {"method": "POST", "url": "Task"}, "resource": {
                    "resourceType": "Task", "status": "requested", "intent": "order",
                    "focus": {"reference": "urn:uuid:sr"}, "for": {"reference": f"Patient/{patient}"},
                    "requester": org, "owner": county}}]}

        k = max(30, args.rounds * 2)
        c0 = time.process_time()
        for _ in range(k):
            repo.transaction(bundle())
        print(f"(f) transaction Bundle creating a referral (ServiceRequest + Task): "
              f"{(time.process_time() - c0) / k * 1000:.2f} ms CPU per Bundle ({k} Bundles)")


if __name__ == "__main__":
    main()
