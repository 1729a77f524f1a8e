"""A report re-sent with one of its groups reads the results it leaves out in one store call.

The merge rules' ``as_far_as`` (a report's status no further than the results it lists) read each
stored result the incoming version does not carry, one backend ``current`` each: a twelve-group
report re-sent with one group was eleven queries. They are now one ``read_many`` (the
repository's ``current_many``), with the same answer: the report stays preliminary while a result
it still lists is, and becomes final with the last. Real bytes over MLLP into the real store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_conv13_orders import PID, written
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)

TESTS = ["CREA^肌酐^L", "UREA^尿素^L", "UA^尿酸^L", "GLU^葡萄糖^L", "K^钾^L", "NA^钠^L"]


def report(control: str, number: str, statuses: dict[str, str]) -> bytes:
    """One ORU: a group per test of ``statuses`` (test -> OBR-25/OBX-11), one placer and filler number."""
    out = f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201091500||ORU^R01^ORU_R01|{control}|P|2.5.1\r" + PID
    for n, (test, status) in enumerate(statuses.items(), 1):
        out += (f"ORC|RE|ORD-{number}|LAB-{number}\r"
                f"OBR|{n}|ORD-{number}|LAB-{number}|{test}|||20261201083000|||||||20261201083500|BLD"
                f"|||||||20261201091000|||{status}\r"
                f"OBX|1|NM|{test}||{n}|mmol/L|||||{status}|||20261201090000\r")
    return out.encode()


@contextmanager
def counting(backend: Any, *names: str) -> Iterator[dict[str, list[Any]]]:
    """The backend's calls of ``names`` (their arguments) while the block runs; the calls go through."""
    seen: dict[str, list[Any]] = {n: [] for n in names}
    originals: dict[str, Callable[..., Any]] = {n: getattr(backend, n) for n in names}

    def spy(name: str) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            seen[name].append(args)
            return originals[name](*args)
        return call

    for n in names:
        setattr(backend, n, spy(n))
    try:
        yield seen
    finally:
        for n in names:
            setattr(backend, n, originals[n])


def test_the_results_a_thinner_report_leaves_out_are_read_in_one_call(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    (ack,) = send(engine, report("R1", "R1", dict.fromkeys(TESTS, "P")))
    assert ack_code_of(ack) == "AA"
    with counting(engine.repository.backend, "current", "current_many") as calls:
        (ack,) = send(engine, report("R1B", "R1", {TESTS[0]: "F"}))
    assert ack_code_of(ack) == "AA"
    observations = [a for a in calls["current"] if a[0] == "Observation"]
    assert observations == [], observations  # none of the five left out read alone
    (rep,) = written(engine, fhir, "R1B", "DiagnosticReport")
    assert rep["status"] == "preliminary" and len(rep["result"]) == len(TESTS)
    # the whole report sent final: every listed result is final, so is the report
    (ack,) = send(engine, report("R1C", "R1", dict.fromkeys(TESTS, "F")))
    assert ack_code_of(ack) == "AA"
    (rep,) = written(engine, fhir, "R1C", "DiagnosticReport")
    assert rep["status"] == "final"
