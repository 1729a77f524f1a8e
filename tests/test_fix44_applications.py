"""fix44: ``applications.sends_as`` asks each HD whether it STATES the declared code (``applications.states``: a name
as HD-1, a universal id as HD-2 with its HD-3) under one case rule (``applications.same_text``: case aside) --
rv44c MED 1 and LOW 4, beside rv44c's probes (``tests/test_rv44c_probes.py``), which pass as plain tests now.

Real HL7 v2 over ``POST /hl7v2`` into a real Engine on the shipped site (FNXRMYY declares ``HIS`` its registration
application), ``/fhir`` read back; and the rule itself on the HDs it is asked about."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from adapters.convert import applications
from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.settings import Settings
from tests.hl7_calls import err_lines
from tests.module_store import system_client
from tests.owner41_calls import nids
from tests.test_rv44c_probes import _registered_twice
from tests.test_rvidentity32_probes import MRN, patients

OID = "2.16.840.1.113883.19.4.1"


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("fix44")
    with (Engine(Settings(data_dir=tmp / "var", http_port=0, mllp_port=0, base_url="https://huren.example")) as eng,
          system_client(eng, "fix44") as client):
        yield client


def _held(ack: bytes) -> bool:
    return ack_code_of(ack) == "AA" and any("|205^" in x for x in err_lines(ack))


def test_a_uri_whose_text_is_the_declared_name_is_no_declared_application(http: TestClient) -> None:
    """MSH-3 ``^HIS^URI`` (no name; ``HIS`` read as a URI by its type -- ``universal_system`` takes any text without
    white space): the declared code ``HIS`` is a name, stated only as HD-1, so the registration restating her number
    under a new MRN is held (W 205) and the new record holds no number of hers. Fails when a code is compared with
    HD-2 by its text (``Header.application_code``), or with any HD-2 that HD-3 makes a universal id."""
    ack = _registered_twice(http, "FX1", "^HIS^URI", "21")
    assert _held(ack), err_lines(ack)
    assert nids(patients(http, f"{MRN}|FX1B")[0]) == set()


def test_the_declared_name_in_lower_case_is_the_declared_application_with_no_alias(http: TestClient) -> None:
    """The case rule is one with or without the site's aliases (rv44c LOW 4 showed it inside a group): MSH-3 ``his``
    is the declared ``HIS`` -- its registration restating her number is taken, no W 205 -- as ``his`` is ``HIS`` to
    HL7's rule (``datatypes.same_hd``: the order history) and to the alias forms (``as_sent``). Fails under a
    case-sensitive comparison of the declared code."""
    ack = _registered_twice(http, "FX2", "his", "22")
    assert ack_code_of(ack) == "AA" and not any("|205^" in x for x in err_lines(ack)), err_lines(ack)


def test_the_declared_name_with_a_universal_id_is_the_declared_application(http: TestClient) -> None:
    """Guard: ``HIS^<OID>^ISO`` states the name ``HIS`` as HD-1 -- the declared HIS (taken, no W 205)."""
    ack = _registered_twice(http, "FX3", f"HIS^{OID}^ISO", "23")
    assert ack_code_of(ack) == "AA" and not any("|205^" in x for x in err_lines(ack)), err_lines(ack)


@pytest.mark.parametrize(("hd", "code", "states"), [
    (("HIS", "", ""), "HIS", True),
    (("his", "", ""), "HIS", True),                 # same_text: case aside
    (("", "HIS", "DNS"), "HIS", False),             # rv44c MED 1: a universal id, no name
    (("", "HIS", "URI"), "HIS", False),             # a code that is a name is stated as HD-1 only
    (("", OID, "ISO"), OID, True),                  # a stored universal id (Header.application_code of ^<OID>^ISO)
    (("", OID, "iso"), OID, True),
    ((OID, "", ""), OID, True),                     # a bare declared OID is an MSH-3.1 name too (last44 MED 1)
    ((OID, "", ""), f"^{OID}^ISO", False),          # a registrar kept as a universal id: no HD-1 states it
    (("", OID, "ISO"), f"^{OID}^ISO", True),
    (("", "his2.fnx.example", "DNS"), "^his2.fnx.example^DNS", True),  # a registrar by a DNS id (last44 MED 2)
    (("", "his2.fnx.example", "UUID"), "^his2.fnx.example^DNS", False),  # ... of another type
    (("his2.fnx.example", "", ""), "^his2.fnx.example^DNS", False),
    (("", "HIS", "DNS"), "^HIS^DNS", True),
    (("HIS", "", ""), "^HIS^DNS", False),
    (("LIS", OID, "ISO"), OID, False),              # its code is LIS (Header.application_code: HD-1 where sent)
    (("", OID, "DNS"), OID, False),                 # no universal id of a type read as one
    (("", "urn:oid:" + OID, "URI"), "urn:oid:" + OID, True),
    (("", "", ""), "", False),
])
def test_what_an_hd_states(hd: tuple[str, str, str], code: str, states: bool) -> None:
    assert applications.states(hd, code) is states
