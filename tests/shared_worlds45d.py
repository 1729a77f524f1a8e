"""A test's own names on a module's engine for the scheduling, specimen and visit scenarios (forty-fifth round,
suite45d).

The round-20..33 scenario files (convmend20, schedfix24/25, the visit probes) opened an Engine (and a reader client)
for every test, because their messages share names: one patient (``ZY20S``, ``ZY24R``), control IDs (``RD1`` sent
by each parameter), appointment numbers (``AP-X``/``BK-X``), specimen numbers (``SP-RS4``). On one engine a module
each test sends its scenario under ``tests.module_store.Names`` instead (MSH-10, PID-2/3/4, MRG-1, ORC/OBR numbers,
PV1-19, SCH-1/SCH-2 (the placer's and filler's appointment ids), SPM-2 (the specimen's id), TXA-12 (the document
number): the one renaming rule of the test helpers; ``mine`` sends through it). So two tests (or two parameters of one
test) book two appointments, file two specimens and documents, for two patients of their own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.settings import Settings
from tests.module_store import Names


def mine(names: Names, message: bytes | str) -> bytes:
    """``message`` (segments split by \\r or \\n) under ``names``: ``Names.hl7``, which renames SCH-1/2, SPM-2, MRG-5,
    TXA-12/16 and PID-21 besides (this module had renamed the first five here; they moved to ``Names``, the one
    renaming rule of the test helpers: low45). The segments' order and every other byte as the scenario wrote them;
    segments end in \\r."""
    text = message.decode("utf-8") if isinstance(message, bytes) else message
    return names.hl7(text).replace("\n", "\r").encode("utf-8")


def send_as(engine: Engine, names: Names, *messages: bytes) -> list[bytes]:
    """``tests.test_convert11_thinner.send`` (real MLLP, one connection) of ``messages`` each under ``names``."""
    from tests.test_convert11_thinner import send

    return send(engine, *(mine(names, m) for m in messages))


def written_as(engine: Engine, fhir: TestClient, names: Names, control: str, rtype: str) -> list[dict[str, Any]]:
    """``tests.test_conv13_orders.written`` for the scenario's ``control`` as ``names`` sent it."""
    from tests.test_conv13_orders import written

    return written(engine, fhir, names.control(control), rtype)


# --- visit20's county (HOSPA, HOSPB, HOSPC) once a module and backend --------------------------------------------


@pytest.fixture(scope="module", params=[{}, {"mongodb_uri": "mongomock://"}], ids=["sqlite", "mongomock"])
def visit_eng(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """``tests.test_visit20_reused_numbers.engine`` (the policy community's site, SQLite and mongomock) once a module
    and backend, for a module whose tests each send under ``Names`` of their own (``visit_send``) and read back only
    their own visits, records and results. A module binds it as ``engine`` (``import visit_eng as engine``)."""
    from tests.test_recognition_policy_e2e import INSTITUTIONS

    root = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1] + "-visit")
    site = root / "site"
    site.mkdir()
    (site / "institutions.yaml").write_text(INSTITUTIONS, "utf-8")
    with Engine(Settings(data_dir=root / "var", http_port=0, mllp_port=0, site=site, **request.param)) as eng:
        yield eng


@pytest.fixture(scope="module")
def visit_mllp(engine: Engine) -> Iterator[int]:
    """A real MLLP listener on the module's ``engine`` (``conftest.running_mllp``) once a module; its port."""
    from tests.conftest import running_mllp

    with running_mllp(engine) as port:
        yield port


@pytest.fixture(scope="module")
def visit_fhir(engine: Engine) -> Iterator[TestClient]:
    """``tests.test_visit20_reused_numbers.fhir`` (the real app, a ``system/*.read`` token) once a module."""
    from engine.api.app import create_app

    with TestClient(create_app(engine)) as client:
        client.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("test-system", "system/*.read")
        yield client


def visit_send(port: int, names: Names, text: str) -> tuple[str, list[list[str]]]:
    """``tests.test_visit20_reused_numbers.send`` (MSA-1 and the ERR segments of the ACK, over a real MLLP socket)
    of ``text`` under ``names``."""
    from tests.test_visit20_reused_numbers import send

    return send(port, mine(names, text).decode("utf-8"))


def visit_accepted(port: int, names: Names, text: str) -> None:
    """``tests.test_visit20_reused_numbers.accepted`` of ``text`` under ``names``: AA asserted."""
    code, errs = visit_send(port, names, text)
    assert code == "AA", errs


def own_read(engine: Engine, fhir: TestClient, names: Names, rtype: str, by: str = "subject") -> list[dict[str, Any]]:
    """``tests.test_visit20_reused_numbers.read`` of ``rtype`` whose ``by`` (``subject``; ``patient`` for an
    Immunization) is one of ``names``' patient records (``Names.patients``: every record holding a number it sent):
    what a test had read of the whole of a store of its own, on the module's shared store."""
    from tests.test_visit20_reused_numbers import read

    return [r for ref in sorted(names.patients(engine)) for r in read(fhir, rtype, **{by: ref})]


def own_patients(engine: Engine, fhir: TestClient, names: Names) -> list[dict[str, Any]]:
    """The Patient records (read over FHIR) holding a record number or resident ID number ``names`` sent, and those
    their links name (a record merged or replaced away keeps no identifier: its survivor's ``replaces`` link names it),
    to the end of each chain: what a test had read as ``read(fhir, "Patient")`` of a store of its own."""
    found: dict[str, dict[str, Any]] = {}
    todo = sorted(names.patients(engine))
    while todo:
        ref = todo.pop()
        if ref in found:
            continue
        got = fhir.get(f"/fhir/{ref}")
        assert got.status_code == 200, (ref, got.text)
        found[ref] = got.json()
        todo += [link["other"]["reference"] for link in found[ref].get("link", ())
                 if link.get("other", {}).get("reference", "").startswith("Patient/")]
    return [found[ref] for ref in sorted(found)]


@pytest.fixture
def own_visit(engine: Engine, tmp_path: Path) -> Iterator[tuple[Engine, int, TestClient]]:
    """A store of the test's own on the module engine's backend (visit20's county, ``visit_eng``'s settings in a
    folder of the test's own), a real MLLP listener on it (its port) and ``visit_fhir``'s reader of it. For a test
    that counts what the store holds (``/admin/fidelity``'s take-overs), or sends what ``Names`` would change the
    meaning of (a mistyped resident ID number: ``Names.nid`` gives a valid one)."""
    from engine.api.app import create_app
    from tests.conftest import running_mllp

    with Engine(engine.settings.with_(data_dir=tmp_path / "var")) as own, running_mllp(own) as port, \
            TestClient(create_app(own)) as client:
        client.headers["Authorization"] = "Bearer " + own.auth.issue_system_token("test-system", "system/*.read")
        yield own, port, client


@pytest.fixture
def own_visit_mllp(engine: Engine, tmp_path: Path) -> Iterator[int]:
    """``own_visit``'s store and listener without its reader; the port."""
    from tests.conftest import running_mllp

    with Engine(engine.settings.with_(data_dir=tmp_path / "var")) as own, running_mllp(own) as port:
        yield port
