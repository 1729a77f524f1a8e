"""The thirty-ninth round's identity tests' shared set-up (ident39, idfix39, nbfix39, nmfix39 and the probes rv39b,
rv39d, rv39f): the module's engine with an HTTP client holding a system token, a Patient read back over ``/fhir``, its
identifiers as ``system|value`` tokens, a record registered by the HIS's A04 -- each file had its own copy (the last
read of the round). The messages themselves are ``tests.test_rvidentity32_probes``' builders.

A module binds the fixture under the name its tests ask for, with its own token's client id:
``both = engine_and_client("rv39d")`` (and imports ``module_eng`` from ``tests.module_store``, which it asks for).
The identity files of rounds 33-38 bind it too (tidy40: seventeen more copies of the same fixture);
``tests/test_rvidentity32_probes.py`` keeps its own, this module importing its builders. The fortieth round's
identity files (id40, rv40g, idfix40b) share the A37 builder and the carried-from marks here (each had its copy:
lastread2)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.identity.nationalid import CARRIED_FROM_EXT
from tests.hl7_calls import post
from tests.test_rvidentity32_probes import MRN, adt, patients

NNCHN_SYSTEM = "urn:huren:id:NNCHN"  # mappings/hl7v2/identifiers.yaml national_id_system


def engine_and_client(client_id: str) -> Callable[..., Any]:
    """A module-scoped fixture: the module's engine (``module_eng``) and a client over it whose token is the system
    ``client_id``'s, allowed every FHIR interaction."""

    @pytest.fixture(scope="module")
    def both(module_eng: Engine) -> Iterator[tuple[Engine, TestClient]]:
        with TestClient(create_app(module_eng)) as client:
            client.headers["Authorization"] = "Bearer " + module_eng.auth.issue_system_token(client_id,
                                                                                            "system/*.cruds")
            yield module_eng, client

    return both


def tokens(patient: dict) -> set[str]:
    """The Patient's identifiers as ``system|value``."""
    return {f"{i.get('system')}|{i.get('value')}" for i in patient.get("identifier", ())}


def read_patient(http: TestClient, pid: str) -> dict:
    """``GET /fhir/Patient/<pid>``, which must answer 200."""
    got = http.get(f"/fhir/Patient/{pid}")
    assert got.status_code == 200, got.text
    return got.json()


def registered(http: TestClient, number: str, control: str, name: str, birth: str, sex: str, ids: str = "") -> dict:
    """The record of MRN ``number`` (FNXRMYY) registered by the HIS's A04 (``ids``: PID-3's further repetitions,
    each led by ``~``), answered AA; the one Patient the MRN finds."""
    ack = post(http, adt(control, f"{number}^^^FNXRMYY^MR{ids}", name, birth, sex))
    assert ack_code_of(ack) == "AA", ack
    (record,) = patients(http, f"{MRN}|{number}")
    return record


def unlink(control: str, first: tuple[str, str, str, str], second: tuple[str, str, str, str],
           sender: str = "FNXRMYY") -> str:
    """ADT^A37 naming two records, each PID its MRN (FNXRMYY's), name, birth date and sex: the two are distinct
    and both in use (HL7 v2.5.1 3.3.37)."""
    (m1, n1, b1, s1), (m2, n2, b2, s2) = first, second
    return (f"MSH|^~\\&|HIS|{sender}|HUREN|FNYGT|20261201131500||ADT^A37^ADT_A37|{control}|P|2.5.1\r"
            f"EVN|A37|20261201131500\rPID|1||{m1}^^^FNXRMYY^MR||{n1}||{b1}|{s1}\r"
            f"PID|2||{m2}^^^FNXRMYY^MR||{n2}||{b2}|{s2}\r")


def carried_marks(patient: dict) -> list[dict]:
    """The carried-from marks (``nationalid.CARRIED_FROM_EXT``: what a merge carried from the record merged away) on
    the Patient's identifiers."""
    return [e for i in patient.get("identifier", ()) for e in i.get("extension", ()) if e.get("url") == CARRIED_FROM_EXT]
