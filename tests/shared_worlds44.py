"""Names of a test's own in a store its module shares (forty-fourth round, suite44c).

A module whose tests share one engine (``tests.module_store``) gives each test, and each of its parameters, its own
order numbers, control IDs and patients, so no test reads what another wrote and the results are the same in any
order. ``own`` makes such a name from the test's parameters: the same test with other parameters gets another."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.identity import nationalid
from tests.conftest import running_mllp
from tests.module_store import module_community
from tests.test_recognition_e2e import Sender


def own(request: pytest.FixtureRequest, prefix: str) -> str:
    """``prefix`` followed by the test's parameter id (``sqlite-mongomock-text/plain`` ->
    ``PREFIX-SQLITE-MONGOMOCK-TEXT-PLAIN``) in capitals, digits and hyphens only, so it can stand in an HL7 field
    (ORC-2, MSH-10, PID-3) unescaped; ``prefix`` alone for a test without parameters."""
    spec = getattr(request.node, "callspec", None)
    if spec is None:
        return prefix
    return prefix + "-" + re.sub(r"[^A-Z0-9]+", "-", spec.id.upper()).strip("-")


# --- the policy community (HOSPA, HOSPB, HOSPC) once a module, a person of each test's own ------------------------

_TAKEN: dict[str, str] = {}  # the ID numbers given in this process, to the run given each
_AREAS: dict[str, list[str]] = {}  # Jiangsu's area codes known for a birth date (by ``nationalid``)


def _areas(born: str) -> list[str]:
    """The districts and counties of Jiangsu's thirteen cities (3201xx-3213xx) that ``engine.identity.nationalid``
    knows for a person born ``born`` -- an area unknown for the birth year would add a W to every ACK."""
    if born not in _AREAS:
        codes = (f"32{city:02d}{n:02d}" for city in range(1, 14) for n in (*range(1, 30), *range(81, 90)))
        _AREAS[born] = [code for code in codes if nationalid.parse(_checked(f"{code}{born}001")).region_known]
    return _AREAS[born]


def _checked(first17: str) -> str:
    return first17 + nationalid.check_character(first17)


def id_number(run: str, born: str = "19850412", sex: str = "M") -> str:
    """A resident ID number of ``run``'s own (GB 11643: a Jiangsu area known for the birth year, birth date, a
    sequence odd for a man and even for a woman, the ISO 7064 MOD 11-2 check character), born ``born`` as the
    feeds' 王建国 is: drawn from a digest of ``run`` (the next free one when another run of the process holds it),
    so each run of a process has its own and the same run the same."""
    areas = _areas(born)
    at = int(hashlib.blake2b(run.encode("utf-8"), digest_size=6).hexdigest(), 16)
    while True:
        area, seq = areas[at % len(areas)], 100 + 2 * ((at // len(areas)) % 450) + (sex == "M")
        number = _checked(f"{area}{born}{seq:03d}")
        if _TAKEN.setdefault(number, run) == run:
            return number
        at += 1


def renamed(message: str, run: str, person: str = "32092319850412001X") -> str:
    """``message`` (segments ended by ``\\n`` or ``\\r``) as ``run`` sends it, every name in it its own: MSH-10
    ``<run>-<control>``; in PID-3 ``person`` is ``id_number(run)`` and each other identifier ``<value>-<run>``;
    the placer and filler numbers (ORC-2/3, OBR-2/3) ``<run><number>``. Nothing else of the message changes, so
    the message is the scenario's as written, for a person and an order of the test's own."""
    sep = "\r" if "\r" in message else "\n"
    lines = []
    for line in message.split(sep):
        fields = line.split("|")
        if fields[0] == "MSH" and len(fields) > 9 and fields[9]:
            fields[9] = f"{run}-{fields[9]}"
        elif fields[0] == "PID" and len(fields) > 3:
            born, sex = (fields[7:9] if len(fields) > 8 else ["", ""])
            own_id = id_number(run, born or "19850412", sex or "M")
            reps = []
            for rep in fields[3].split("~"):
                value, _, rest = rep.partition("^")
                value = own_id if value == person else (f"{value}-{run}" if value else value)
                reps.append(value + ("^" + rest if rest or "^" in rep else ""))
            fields[3] = "~".join(reps)
        elif fields[0] in ("ORC", "OBR"):
            for at in (2, 3):
                if len(fields) > at and fields[at] and fields[at] != '""':
                    fields[at] = run + fields[at]
        lines.append("|".join(fields))
    return sep.join(lines)


# the policy community (``test_recognition_policy_e2e.INSTITUTIONS``: HOSPA, HOSPB, HOSPC, QC passed) once a module and
# backend -- ``test_money19_cds_orders.engine``'s store, shared by tests that each send as a person of their own
# (``OwnSender``) and read back only their own orders, checks and flags: ``module_store``'s fixture of it, under the
# name its modules ask (pytest registers a fixture by the name a module binds it to)
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

    def send(self, text: str) -> str:
        return super().send(renamed(text, self.run))


def theirs(engine: Engine, run: str, placer: str = "B1", inst: str = "HOSPB") -> tuple[dict, list[str], list[tuple]]:
    """``run``'s order ``placer`` (renamed ``<run><placer>``), the order-time checks of her ``inst`` record and
    ``inst``'s flags of it (not void) as (status, reason): what ``test_rv40k_probes``' ``_order``, ``_checks`` and
    ``_hospb`` read of the whole store, of this test's person only."""
    (order,) = [r for r in engine.repository.search("ServiceRequest", []).resources
                if any(i.get("value") == run + placer for i in r.get("identifier") or ())]
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
                if any(i.get("value") == run + placer for i in r.get("identifier") or ())]
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
