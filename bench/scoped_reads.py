"""What deciding access costs on reads: the shared repository vs ``ScopedRepository`` per caller kind.

    python bench/scoped_reads.py --quick     # a few seconds
    python bench/scoped_reads.py             # more patients and rounds

In process, on the real SQLite store (a temporary data directory): one resident with ``--per``
Observations at each of two hospitals (linked by national ID) among ``--patients`` others, plus
AuditEvents naming them. Prints process CPU time per operation (steadier than wall time on a
shared machine; best of a few rounds) for

* read by id -- shared repository (no decision), the shared repository narrowed to the resident's
  compartment (what a resident's request cost before ``ScopedRepository``: the compartment only),
  system caller, the resident;
* a one-page search of the resident's Observations (``_count=50``, the whole result fits one page
  for the system caller's query, and for the resident one backend call when it fits too);
* the same search paged (``_count=10``), where the resident's matches are scanned so that paging
  and ``total`` count only what they may see;
* the resident's AuditEvent search (content rules: every entity checked);
* family access: building the request's repository for the resident and for a family member acting
  for them (whose grant -- Consent + RelatedPerson -- is checked again on every request), alone and
  with one read by id: the difference is the cost of the proxy check per request.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson  # noqa: E402
from stdnum.cn import ric  # noqa: E402

from engine.auth.caller import Caller  # noqa: E402
from engine.engine import Engine  # noqa: E402
from engine.repository.scoped import ScopedRepository  # noqa: E402
from engine.settings import Settings  # noqa: E402

NNCHN = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NNCHN"}]}


def seed(engine: Engine, patients: int, per: int) -> None:
    repo = engine.repository
    repo.update({"resourceType": "Organization", "id": "org1", "name": "阜宁县人民医院"})
    nid = "32092319850303003"
    nid += ric.calc_check_digit(nid + "0")
    for pid, inst in (("me-a", "FNXRMYY"), ("me-b", "FNZYY")):
        repo.update({"resourceType": "Patient", "id": pid, "gender": "male", "birthDate": "1985-03-03",
                     "identifier": [{"system": f"urn:huren:mrn:{inst}", "value": pid},
                                    {"system": "urn:oid:2.16.156.10011.1.3", "value": nid, "type": NNCHN}]})
    others = [f"p{i}" for i in range(patients)]
    for pid in others:
        repo.update({"resourceType": "Patient", "id": pid, "gender": "female"})
    batch = []
    for pid in ["me-a", "me-b", *others]:
        for n in range(per if pid.startswith("me") else max(1, per // 10)):
            batch.append({"resourceType": "Observation", "id": f"o-{pid}-{n}", "status": "final",
                          "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
                          "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": "2026-11-01",
                          "performer": [{"reference": "Organization/org1"}],
                          "valueQuantity": {"value": 13.2, "unit": "g/dL"}})
        if len(batch) > 500:
            repo.write_many(batch)
            batch = []
    if batch:
        repo.write_many(batch)
    events = []
    for n in range(per):
        touched = ["me-a"] if n % 5 else ["me-a", "p0"]  # one in five names another patient too
        events.append({"resourceType": "AuditEvent", "id": f"ae-{n}", "recorded": "2026-11-01T00:00:00Z",
                       "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110112"},
                       "agent": [{"requestor": True, "who": {"identifier": {"system": "urn:huren:client",
                                                                            "value": "his"}}}],
                       "source": {"observer": {"display": "huren"}},
                       "entity": [{"what": {"reference": f"Patient/{p}"}} for p in touched]
                       + [{"what": {"reference": f"Observation/o-me-a-{n % per}"}}]})
    repo.write_many(events)
    assert engine.identity.person_compartment("me-a") == {"me-a", "me-b"}, "the two records must link"
    # a son with his own record, whom the resident lets see hers
    son = "32092319600101001"
    son += ric.calc_check_digit(son + "0")
    repo.update({"resourceType": "Patient", "id": "son", "gender": "male", "birthDate": "1960-01-01",
                 "identifier": [{"system": "urn:huren:mrn:FNXRMYY", "value": "son"},
                                {"system": "urn:oid:2.16.156.10011.1.3", "value": son, "type": NNCHN}]})
    engine.family_grant = engine.auth.resident.family.grant("me-a", son, name="儿子", relationship="CHILD", end=None)


def cpu_per_op(fn: Callable[[], object], n: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - start) / n)
    return best * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--patients", type=int, default=None)
    ap.add_argument("--per", type=int, default=None)
    args = ap.parse_args()
    patients = args.patients or (200 if args.quick else 2000)
    per = args.per or (100 if args.quick else 300)
    n, rounds = (200, 3) if args.quick else (1000, 5)
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(Settings(data_dir=Path(tmp) / "var"))
        try:
            seed(engine, patients, per)
            shared = engine.repository
            system = ScopedRepository(shared, Caller("his", "system", ("system/*.rs",), "his"))
            resident = ScopedRepository(shared, Caller("person-me", "patient", ("patient/*.rs",), "phr",
                                                       patient_ids=engine.identity.person_compartment("me-a"),
                                                       person="person-me", patient="me-a"))
            comp = resident.compartment
            page = [("patient", "me-a"), ("_count", "50")]
            paged = [("patient", "me-a"), ("_count", "10"), ("_offset", "20")]
            def compartment_read() -> object:
                rec = shared.read_raw("Observation", "o-me-a-1")
                return shared.in_compartment(orjson.loads(rec.body), comp)  # type: ignore[arg-type]

            rows = [
                ("read Observation by id", lambda: shared.read_raw("Observation", "o-me-a-1"), compartment_read,
                 lambda: system.read_raw("Observation", "o-me-a-1"), lambda: resident.read_raw("Observation", "o-me-a-1")),
                ("search one page (_count=50)", lambda: shared.search("Observation", page),
                 lambda: shared.search("Observation", page, compartment=comp),
                 lambda: system.search("Observation", page), lambda: resident.search("Observation", page)),
                ("search paged (_count=10&_offset=20)", lambda: shared.search("Observation", paged),
                 lambda: shared.search("Observation", paged, compartment=comp),
                 lambda: system.search("Observation", paged), lambda: resident.search("Observation", paged)),
                ("AuditEvent search (_count=50)", lambda: shared.search("AuditEvent", [("patient", "me-a")]),
                 lambda: shared.search("AuditEvent", [], compartment=comp),
                 lambda: system.search("AuditEvent", [("patient", "me-a")]),
                 lambda: resident.search("AuditEvent", [])),
            ]
            print(f"{patients} other patients, {per} Observations for the resident at each of 2 hospitals, "
                  f"{per} AuditEvents (1 in 5 names another patient); CPU µs per operation, best of {rounds}")
            print(f"{'operation':40} {'shared':>10} {'shared+comp':>12} {'system':>10} {'resident':>10}")
            for name, *fns in rows:
                k = n if "read" in name else max(10, n // 10)
                figures = [cpu_per_op(fn, k, rounds) for fn in fns]
                print(f"{name:40} {figures[0]:10.0f} {figures[1]:12.0f} " + " ".join(f"{f:10.0f}" for f in figures[2:]))

            grant = engine.family_grant
            key = grant.related["identifier"][0]["value"]
            resident_caller = resident.caller
            proxy_caller = Caller(key, "patient", ("patient/*.rs",), "phr", patient_ids=comp, person=key,
                                  patient="me-a", acting=grant.related_id, consent=grant.consent_id)
            per_request = [
                ("build the request's repository", lambda: ScopedRepository(shared, resident_caller),
                 lambda: ScopedRepository(shared, proxy_caller)),
                ("build + read Observation by id",
                 lambda: ScopedRepository(shared, resident_caller).read_raw("Observation", "o-me-a-1"),
                 lambda: ScopedRepository(shared, proxy_caller).read_raw("Observation", "o-me-a-1")),
            ]
            print()
            print(f"per request (a repository is built for each): CPU µs, best of {rounds}")
            print(f"{'operation':40} {'resident':>10} {'proxy':>10} {'proxy check':>12}")
            for name, own_fn, proxy_fn in per_request:
                a, b = cpu_per_op(own_fn, n, rounds), cpu_per_op(proxy_fn, n, rounds)
                print(f"{name:40} {a:10.1f} {b:10.1f} {b - a:12.1f}")
        finally:
            engine.close()


if __name__ == "__main__":
    main()
