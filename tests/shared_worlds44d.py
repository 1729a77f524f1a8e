"""One store a module for the recognition policy's HL7 scenarios, each test under names of its own (suite44d).

``tests/test_recognition_policy_e2e``'s messages are all about one resident (``WANG``, ``MRN-<inst>``), one
order of each hospital (placer ``A1``/``B1``, filler ``FA1``/``FB1``) and control IDs made of those: a module
of such scenarios opened a fresh Engine (and its community site) for every test and backend, ~0.1 s of CPU
each. ``policy_eng`` is that engine (the policy community, ``test_money19_cds_orders.engine``'s site) once a
module and backend, ``policy_mllp`` its MLLP listener, and ``Own`` the sender a test writes through: every
message it sends is the scenario's, restated under this test's resident (a valid resident ID number of its
own, the same birth date and sex), this test's record numbers, placer/filler numbers and MSH-10 control IDs.
So no test reads what another wrote, and each test asks about its own flags (``Own.flags``: the flags of
its own patient records), never "the one flag" of the store."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.engine import Engine
from engine.settings import Settings
from tests.conftest import _BACKENDS, running_mllp, settings_for_backend
from tests.module_store import Names
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import INSTITUTIONS, WANG


@pytest.fixture(scope="module", params=_BACKENDS)
def policy_eng(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The policy community (HOSPA, HOSPB, HOSPC: ``INSTITUTIONS``) on the backend ``request.param``, once a
    module; the ids of ``_BACKENDS`` (sqlite, mongomock) are those ``test_money19_cds_orders.engine`` had."""
    root = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1] + "-policy")
    site = root / "site"
    site.mkdir()
    (site / "institutions.yaml").write_text(INSTITUTIONS, "utf-8")
    settings = Settings(data_dir=root / "var", http_port=0, mllp_port=0, site=Path(site))
    with settings_for_backend(request.param, settings) as chosen, Engine(chosen) as engine:
        engine.suite44d_names = itertools.count(1)  # type: ignore[attr-defined]
        yield engine


@pytest.fixture(scope="module")
def policy_mllp(policy_eng: Engine) -> Iterator[int]:
    """A real MLLP listener feeding ``policy_eng``, once a module; its port."""
    with running_mllp(policy_eng) as port:
        yield port


class Own(Sender):
    """A test's MLLP sender on the module's store: each message restated under this test's names (``own``).

    The n-th test of a module's engine sends through ``tests.module_store.Names(n)`` (the one renaming rule of the
    test helpers; dup44): the resident ID number ``Names.nid`` gives WANG (its area, birth date and sex kept, a
    sequence of the test's own, the check character anew), record numbers ``<tag>MRN-<inst>``, order numbers
    ``<tag>B1``, control IDs ``<tag><MSH-10>`` (``tag`` = ``T<n>``, three digits), visit numbers and MRG-1 likewise;
    a field naming something ``Names`` does not rename is refused (``ValueError``)."""

    def __init__(self, engine: Engine, port: int) -> None:
        self.engine = engine
        self.names = Names(next(engine.suite44d_names))  # type: ignore[attr-defined]
        self.tag = self.names.tag
        self.resident = self.names.nid(WANG)
        super().__init__(port)

    def own(self, text: str) -> str:
        """``text`` (one scenario message, segments split by newlines) under this test's names (``Names.hl7``)."""
        return self.names.hl7(text)

    def send(self, text: str) -> str:
        """``text`` restated (``own``) over the test's connection; the ACK, asserted AA (``Sender.send``)."""
        return super().send(self.own(text))

    def number(self, order: str) -> str:
        """The scenario's order number ``order`` (``B1``) as this test sent it."""
        return self.names.number(order)

    def patient_id(self, inst: str) -> str:
        """The id of this test's patient record at ``inst`` (the scenario's ``MRN-<inst>`` as this test sent it)."""
        [p] = self.engine.repository.search("Patient", [("identifier", self.names.number(f"MRN-{inst}"))]).resources
        return str(p["id"])

    def flags(self, inst: str = "HOSPB") -> list[dict[str, Any]]:
        """The standing flags (not void) of this test's patient record at ``inst``."""
        mine = self.patient_id(inst)
        return [f for f in self.engine.recognition.flags.find({}) if f["status"] != "void"
                and str(f.get("patient") or "").rsplit("/", 1)[-1] == mine]

    def the_flag(self, inst: str = "HOSPB") -> dict[str, Any]:
        """This test's one flag at ``inst`` (``test_money20_reason_change.the_flag`` on its own records)."""
        [flag] = self.flags(inst)
        return flag

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(name="own")
def own_sender(policy_eng: Engine, policy_mllp: int) -> Iterator[Own]:
    """This test's sender on the module's store (``Own``); a module imports ``own_sender``, its tests ask for
    ``own``."""
    sender = Own(policy_eng, policy_mllp)
    try:
        yield sender
    finally:
        sender.close()


@pytest.fixture(scope="module")
def reader_engine(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """The ``engine`` fixture's engine (``tests.conftest.settings``: SQLite, no listeners) once a module, for the
    scheduling modules whose tests each send under control IDs and an appointment (SCH-1/2) of their own and
    read only that appointment back: each had opened an engine. A module binds it as its ``engine``
    (``from tests.shared_worlds44d import reader_engine as engine, reader_fhir as fhir``)."""
    root = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1] + "-reader")
    with Engine(Settings(data_dir=root / "var", http_port=0, mllp_port=0)) as engine:
        yield engine


@pytest.fixture(scope="module")
def reader_fhir(engine: Engine) -> Iterator[Any]:
    """``test_convert11_thinner.fhir`` (the real app, a reader's token ``system/*.rs``) over the module's
    ``engine``, once a module."""
    from fastapi.testclient import TestClient

    from engine.api.app import create_app

    with TestClient(create_app(engine)) as client:
        client.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("reader", "system/*.rs")
        yield client
