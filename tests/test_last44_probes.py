"""last44: probes from the round's last read (fix44/low44b's ``applications.sends_as``/``is_declared``).

Real bytes through the real path: HL7 v2 over ``POST /hl7v2`` into the real store (SQLite), ``/fhir`` over FastAPI,
the site read from a folder as ``huren serve`` reads it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.settings import Settings
from mappings.site import DEFAULTS_DIR
from tests.hl7_calls import err_lines, post
from tests.module_store import system_client
from tests.owner41_calls import nids
from tests.test_rvidentity32_probes import MRN, _nid, adt, patients

# FNXRMYY's HIS whose interface writes its OID as MSH-3.1 (HD-1: the namespace id), as some Chinese HIS interfaces
# do; institutions.yaml documents registration_applications as "the sending applications (MSH-3.1)"
HIS_AS_OID = "2.16.840.1.113883.19.4.1"


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The shipped site with FNXRMYY's ``registration_applications`` naming its HIS by that MSH-3.1."""
    tmp = tmp_path_factory.mktemp("last44")
    site = tmp / "site"
    site.mkdir()
    shipped = (DEFAULTS_DIR / "institutions.yaml").read_text(encoding="utf-8")
    institutions = yaml.safe_load(shipped)
    for inst in institutions:
        if inst["code"] == "FNXRMYY":
            inst["registration_applications"] = [HIS_AS_OID]
    (site / "institutions.yaml").write_text(yaml.safe_dump(institutions, allow_unicode=True), encoding="utf-8")
    settings = Settings(data_dir=tmp / "var", http_port=0, mllp_port=0, base_url="https://huren.example", site=site)
    with Engine(settings) as engine, system_client(engine, "last44") as client:
        yield client


def _registered_twice(http: TestClient, tag: str, app: str, day: str) -> bytes:
    """MSH-3 ``app`` registers her as ``<tag>A`` with her resident ID number, then again as a new MRN ``<tag>B``
    stating the same number (a returning patient registered twice): the second ACK."""
    c = _nid(f"320923198010{day}020")
    assert ack_code_of(post(http, adt(f"{tag}a", f"{tag}A^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^四十", f"198010{day}",
                                      "F", app=app))) == "AA"
    return post(http, adt(f"{tag}b", f"{tag}B^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^四十", f"198010{day}", "F", app=app))


def test_a_declared_his_named_by_an_oid_spelt_in_msh3_1_is_still_declared(http: TestClient) -> None:
    ack = _registered_twice(http, "L44A", HIS_AS_OID, "11")
    assert ack_code_of(ack) == "AA" and not any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    assert nids(patients(http, f"{MRN}|L44AB")[0]) == {_nid("32092319801011020")}


def test_guard_an_undeclared_application_registering_her_again_is_held(http: TestClient) -> None:
    """Guard (the probe's site is sound): the shipped ``HIS``, no longer declared there, is held W 205."""
    ack = _registered_twice(http, "L44B", "HIS", "12")
    assert ack_code_of(ack) == "AA" and any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    assert nids(patients(http, f"{MRN}|L44BB")[0]) == set()


def _restated_by_its_registrar(http: TestClient, tag: str, app: str) -> bytes:
    """MSH-3 ``app`` registers ``<tag>`` (A04), then restates it as another person (A08: name, sex and birth date all
    changed) -- the registering application's own correction, which README/institutions.yaml accept from it: the
    A08's ACK."""
    assert ack_code_of(post(http, adt(f"{tag}a", f"{tag}^^^FNXRMYY^MR", "甲^一", "19801013", "F", app=app))) == "AA"
    return post(http, adt(f"{tag}b", f"{tag}^^^FNXRMYY^MR", "乙^二", "19750101", "M", event="A08", app=app))


@pytest.mark.parametrize("app", ["^his2.fnx.example^DNS", "^f81d4fae-7dec-11d0-a765-00a0c91e6bf6^UUID"],
                         ids=["dns", "uuid"])
def test_a_registrar_named_by_a_dns_or_uuid_universal_id_may_correct_its_own_registration(http: TestClient,
                                                                                          app: str) -> None:
    ack = _restated_by_its_registrar(http, "L44D" + app[-3:], app)
    assert ack_code_of(ack) == "AA", err_lines(ack)


def test_guard_a_registrar_named_by_hd1_corrects_its_own_registration(http: TestClient) -> None:
    """Guard: the same from an application named by HD-1 (``TJXT``, undeclared): AA with the W 205 of a correction."""
    ack = _restated_by_its_registrar(http, "L44E", "TJXT")
    assert ack_code_of(ack) == "AA" and any("|205^" in x and "|W|" in x for x in err_lines(ack)), err_lines(ack)
