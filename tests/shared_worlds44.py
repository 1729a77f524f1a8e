"""Names of a test's own in a store its module shares (forty-fourth round, suite44c).

A module whose tests share one engine (``tests.module_store``) gives each test, and each of its parameters, its own
order numbers, control IDs and patients, so no test reads what another wrote and the results are the same in any
order. ``own`` makes such a name from the test's parameters: the same test with other parameters gets another."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.conftest import running_mllp
from tests.module_store import Names, module_community, next_number
from tests.test_recognition_e2e import Sender


def own(request: pytest.FixtureRequest, prefix: str) -> str:
    """``prefix`` followed by the test's parameter id (``sqlite-mongomock-text/plain`` ->
    ``PREFIX-SQLITE-MONGOMOCK-TEXT-PLAIN``) in capitals, digits and hyphens only, so it can stand in an HL7 field
    (ORC-2, MSH-10, PID-3) unescaped; ``prefix`` alone for a test without parameters. The run's names
    (``run_names``) are made here, numbered by the module's one counter (``tests.module_store.next_number``)."""
    spec = getattr(request.node, "callspec", None)
    run = prefix if spec is None else prefix + "-" + re.sub(r"[^A-Z0-9]+", "-", spec.id.upper()).strip("-")
    module = request.module.__name__
    if _RUNS.get(run, ("", None))[0] != module:
        _RUNS[run] = (module, Names(next_number(module), tag=run + "-"))
    return run


# --- the policy community (HOSPA, HOSPB, HOSPC) once a module, a person of each test's own ------------------------

_RUNS: dict[str, tuple[str, Names]] = {}  # each run ``own`` named: the module it was named in, its Names


def run_names(run: str) -> Names:
    """The ``Names`` of ``run`` (made by ``own``): the tag ``<run>-`` before its control IDs, record, order and visit
    numbers, and resident ID numbers of its own (``Names.nid``)."""
    if run not in _RUNS:
        raise KeyError(f"{run!r} was not named by own(request, prefix): its names would have no number in its module")
    return _RUNS[run][1]


def renamed(message: str, run: str) -> str:
    """``message`` as ``run`` sends it, every name in it its own: ``tests.module_store.Names.hl7`` under
    ``run_names(run)`` -- MSH-10 (BHS/FHS-11) ``<run>-<control>``; PID-2/3/4 and MRG-1 record numbers
    ``<run>-<number>``, each resident ID number (NNCHN) one of the run's own of the same area, birth date and sex;
    ORC-2/3, OBR-2/3/18/19/20 and PV1-19 ``<run>-<number>``; a field naming something it does not rename refused
    (``ValueError``). Nothing else of the message changes, so it is the scenario's as written, for persons, visits
    and orders of the test's own (one rule with suite44b's ``Names`` and suite44d's ``Own``; dup44)."""
    sep = "\r" if "\r" in message else "\n"
    return run_names(run).hl7(message).replace("\n", sep)


# the policy tests' community (``test_recognition_policy_e2e.INSTITUTIONS``: HOSPA, HOSPB, HOSPC, QC passed) once a
# module and backend, shared by tests that each send as a person of their own (``OwnSender``) and read back only their
# own orders, checks and flags: suite44b's ``module_community`` under the name these modules ask for (one fixture; a
# fixture imported under another name is registered under that name; dup44)
community_eng = module_community


@pytest.fixture(scope="module")
def community_mllp(community_eng: Engine) -> Iterator[int]:
    """A real MLLP listener feeding ``community_eng`` (``conftest.running_mllp``), once a module and backend."""
    with running_mllp(community_eng) as port:
        yield port


class OwnSender(Sender):
    """``test_recognition_e2e.Sender`` (one MLLP connection, each message's ACK) sending every message ``renamed``
    for ``run``: the scenario's messages as written, for a person, orders and control IDs of the test's own."""

    def __init__(self, port: int, run: str) -> None:
        super().__init__(port)
        self.run = run
        self.names = run_names(run)

    def send(self, text: str) -> str:
        return super().send(renamed(text, self.run))


def theirs(engine: Engine, run: str, placer: str = "B1", inst: str = "HOSPB") -> tuple[dict, list[str], list[tuple]]:
    """``run``'s order ``placer`` (renamed ``<run>-<placer>``), the order-time checks of her ``inst`` record and
    ``inst``'s flags of it (not void) as (status, reason): what ``test_rv40k_probes``' ``_order``, ``_checks`` and
    ``_hospb`` read of the whole store, of this test's person only."""
    (order,) = [r for r in engine.repository.search("ServiceRequest", []).resources
                if any(i.get("value") == run_names(run).number(placer) for i in r.get("identifier") or ())]
    patient = order["subject"]["reference"]
    checks = [c.get("outcome") for c in engine.recognition.checks.find({})
              if c.get("inst") == inst and c.get("patient") == patient]
    flags = [(f["status"], f.get("reason")) for f in engine.recognition.flags.find({})
             if f["status"] != "void" and f["inst"] == inst and f.get("patient") == patient]
    return order, checks, flags


def flag_status(engine: Engine, run: str, placer: str = "B1", inst: str = "HOSPB") -> str | None:
    """The status of ``inst``'s one flag of ``run``'s record holding order ``placer`` (void too), or None: what
    ``test_hooks11_policy_edges.flag_of`` reads of the whole store, of this test's person only."""
    (order,) = [r for r in engine.repository.search("ServiceRequest", []).resources
                if any(i.get("value") == run_names(run).number(placer) for i in r.get("identifier") or ())]
    found = [f for f in engine.recognition.flags.find({})
             if f["inst"] == inst and f.get("patient") == order["subject"]["reference"]]
    assert len(found) <= 1, found
    return found[0]["status"] if found else None


# --- labels20's county and its one unreviewed flag -----------------------------------------------------------------


def one_county_flag(engine: Engine, http: TestClient) -> tuple[dict[str, str], str]:
    """labels20's county written through ``http`` (``_county``: B's repeat of Alice's blood count flagged) and its
    auditor's headers and the one flag's id -- httpfix41b's ``_one_flag``, here so httpfix41 (whose module httpfix41b
    imports) can stand on it too."""
    from tests.test_labels20_report_flags import _auditor, _county

    _county(engine, http)
    auditor = _auditor(engine)
    (row,) = http.get("/reports/duplicates", headers=auditor).json()["rows"]
    return auditor, row["id"]
