"""low44c: a registrar is kept with its kind; a declared code is matched by the HD component stating that kind.

last44 MED 2: an application named by a universal id alone (``^his2.fnx.example^DNS``) was never its own registrar --
its registration stored the bare code, which ``applications.states`` read as a name. Now a registrar is
``applications.registrar`` of the message's MSH-3 as sent (``^his2.fnx.example^DNS``), read from the filed message
and from a batch's earlier conversion alike, and the HD-1 ``his2.fnx.example`` (another application by HL7 v2.5.1
2.A.33) is no longer that registrar. last44 MED 1 (a declared bare OID is an MSH-3.1 name too) is probed in
tests/test_last44_probes.py; here its other half: the same declared OID stated as a universal id (``^<OID>^ISO``) is
still the declared registrar the persons checks pick over an undeclared one (``applications.listed``).

Real bytes through the real path: HL7 v2 over ``POST /hl7v2`` (single messages and an FHS/BHS batch) into the real
store (SQLite), ``/fhir`` over FastAPI, the site read from a folder as ``huren serve`` reads it.
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

OID = "2.16.840.1.113883.19.4.1"  # FNXRMYY's HIS, declared by that text (institutions.yaml: an MSH-3.1 name)
DNS = "^his2.fnx.example^DNS"


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The shipped site with FNXRMYY's ``registration_applications`` naming its HIS by the OID's text."""
    tmp = tmp_path_factory.mktemp("low44c")
    site = tmp / "site"
    site.mkdir()
    institutions = yaml.safe_load((DEFAULTS_DIR / "institutions.yaml").read_text(encoding="utf-8"))
    for inst in institutions:
        if inst["code"] == "FNXRMYY":
            inst["registration_applications"] = [OID]
    (site / "institutions.yaml").write_text(yaml.safe_dump(institutions, allow_unicode=True), encoding="utf-8")
    settings = Settings(data_dir=tmp / "var", http_port=0, mllp_port=0, base_url="https://huren.example", site=site)
    with Engine(settings) as engine, system_client(engine, "low44c") as client:
        yield client


def _restated(http: TestClient, tag: str, registers: str, corrects: str) -> bytes:
    """MSH-3 ``registers`` registers ``<tag>`` (A04); MSH-3 ``corrects`` restates it as another person (A08: name,
    sex and birth date changed): the A08's ACK."""
    assert ack_code_of(post(http, adt(f"{tag}a", f"{tag}^^^FNXRMYY^MR", "甲^一", "19801013", "F",
                                      app=registers))) == "AA"
    return post(http, adt(f"{tag}b", f"{tag}^^^FNXRMYY^MR", "乙^二", "19750101", "M", event="A08", app=corrects))


def _refused(ack: bytes) -> bool:
    return ack_code_of(ack) == "AE" and any("|205^" in x for x in err_lines(ack))


def test_a_registrar_by_a_dns_id_corrects_its_own_registration_in_one_batch(http: TestClient) -> None:
    """The batch's earlier registration is read as the store will read it (``_registrar_of`` of the conversion):
    ``^his2.fnx.example^DNS``'s A04 and its own A08 in one FHS/BHS batch -- two AA, the A08 with the W 205 of a
    correction, and the record reads as the corrected person."""
    a04 = adt("LCBa", "LCB^^^FNXRMYY^MR", "甲^一", "19801013", "F", app=DNS)
    a08 = adt("LCBb", "LCB^^^FNXRMYY^MR", "乙^二", "19750101", "M", event="A08", app=DNS)
    ack = post(http, f"FHS|^~\\&|HIS|FNXRMYY\rBHS|^~\\&|HIS|FNXRMYY\r{a04}{a08}BTS|2\rFTS|1\r")
    assert ack.count(b"MSA|AA|") == 2 and any("|205^" in x and "|W|" in x for x in err_lines(ack)), ack
    assert patients(http, f"{MRN}|LCB")[0]["gender"] == "male"


def test_the_name_spelling_a_registrars_dns_id_is_not_that_registrar(http: TestClient) -> None:
    """``his2.fnx.example`` as MSH-3.1 is a name -- another application than the universal id
    ``^his2.fnx.example^DNS`` that registered the record (v2.5.1 2.A.33): its A08 restating the record as another
    person is refused AE 205, the record unchanged. Stored as the bare code (fix44), the registrar read as that
    name and the other application's A08 was taken as the registration's correction -- the mirror of rv44c MED 1
    on the stored side (fix44's and low44b's LOW 1)."""
    ack = _restated(http, "LCC", DNS, "his2.fnx.example")
    assert _refused(ack), err_lines(ack)
    assert patients(http, f"{MRN}|LCC")[0]["gender"] == "female"


def test_nor_is_the_dns_id_the_registrar_a_name_spelling_it_registered(http: TestClient) -> None:
    """Guard (held before this change too): the other way round, a record MSH-3.1 ``his2.fnx.example`` registered is not ``^his2.fnx.example^DNS``'s to
    restate (AE 205), while the name's own A08 (guard) is its registration's correction (AA, W 205)."""
    assert _refused(_restated(http, "LCD", "his2.fnx.example", DNS))
    ack = _restated(http, "LCE", "his2.fnx.example", "his2.fnx.example")
    assert ack_code_of(ack) == "AA" and any("|205^" in x and "|W|" in x for x in err_lines(ack)), err_lines(ack)


def test_the_declared_oid_as_a_universal_id_is_the_declared_registrar(http: TestClient) -> None:
    """A record the LIS registered first, then the declared HIS sending its OID as a universal id (``^<OID>^ISO``;
    declared as the bare OID) registered with her resident ID number: the declared HIS is the record's registrar
    (``_registered`` picks a declared application's registration over an earlier undeclared one, by
    ``applications.listed``), so the LIS's A08 replacing her number with another woman's is not the registrar's --
    held W 205, and the record keeps her number. Passes before this change (the registrar was the bare OID); guards
    that ``listed`` is asked: compared by equality, the registrar kept with its kind
    (``^<OID>^ISO``) was no declared ``<OID>`` and the LIS, registering first, was taken for the registrar."""
    hers, other = _nid("32092319801014020"), _nid("32092319801014040")
    assert ack_code_of(post(http, adt("LCFa", "LCF^^^FNXRMYY^MR", "丙^三", "19801014", "F", app="LIS"))) == "AA"
    ack = post(http, adt("LCFb", f"LCF^^^FNXRMYY^MR~{hers}^^^^NNCHN", "丙^三", "19801014", "F",
                         app=f"^{OID}^ISO"))
    assert ack_code_of(ack) == "AA" and not any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    ack = post(http, adt("LCFc", f"LCF^^^FNXRMYY^MR~{other}^^^^NNCHN", "丙^三", "19801014", "F", event="A08",
                         app="LIS"))
    assert any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    assert nids(patients(http, f"{MRN}|LCF")[0]) == {hers}
