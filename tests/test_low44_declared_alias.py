"""low44: a declared registration application is declared under every form the site's aliases name it by.

institutions.yaml's ``registration_applications`` (decl42) and ``number_linking_applications`` (idn43) were compared
with MSH-3 by equality: FNXRMYY's HIS whose interface moved to its OID form (senders.yaml ``application_aliases``
naming ``HIS`` and ``^<OID>^ISO`` one application, ord40) had its word held as an undeclared application's (last43's
LOW: ``persons.new_record_linked``; the same comparison in ``_links_unheld``, ``_may_renumber``, ``merge_refused``...).
One rule now, ``applications.is_declared``. Real HL7 v2 over ``POST /hl7v2`` into the real store on the shipped site
with the aliases added, read as ``huren serve`` reads it; ``/fhir`` over FastAPI.
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

HIS_OID = "^2.16.840.1.113883.19.4.1^ISO"


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The shipped site (FNXRMYY declaring ``HIS``) whose senders.yaml names ``HIS`` and ``HIS_OID`` one application."""
    tmp = tmp_path_factory.mktemp("low44alias")
    site = tmp / "site"
    (site / "hl7v2").mkdir(parents=True)
    shipped = yaml.safe_load((DEFAULTS_DIR / "hl7v2" / "senders.yaml").read_text(encoding="utf-8"))
    (site / "hl7v2" / "senders.yaml").write_text(
        yaml.safe_dump({**shipped, "application_aliases": {"FNXRMYY": [["HIS", HIS_OID]]}}, allow_unicode=True),
        encoding="utf-8")
    settings = Settings(data_dir=tmp / "var", http_port=0, mllp_port=0, base_url="https://huren.example", site=site)
    with Engine(settings) as engine, system_client(engine, "low44alias") as client:
        yield client


def _registered_twice(http: TestClient, tag: str, app: str, day: str) -> bytes:
    """The HIS registers her as ``<tag>A`` with her resident ID number; then MSH-3 ``app`` registers her again as a
    new MRN ``<tag>B`` stating the same number (a returning patient registered twice): that ACK."""
    c = _nid(f"320923198009{day}020")
    assert ack_code_of(post(http, adt(f"{tag}a", f"{tag}A^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^四十", f"198009{day}",
                                      "F"))) == "AA"
    return post(http, adt(f"{tag}b", f"{tag}B^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^四十", f"198009{day}", "F", app=app))


@pytest.mark.parametrize(("tag", "app", "day"), [("LD1", HIS_OID, "11"), ("LD2", "HIS", "12")],
                         ids=["his-under-its-oid", "guard-his-by-name"])
def test_the_declared_his_under_its_aliased_oid_registers_as_the_his(http: TestClient, tag: str, app: str,
                                                                     day: str) -> None:
    """The declared HIS's second registration of her, under its OID form as under its name: AA, no W 205, the new
    record holds her number (the patient index joins her two records) -- as the declared HIS's word."""
    ack = _registered_twice(http, tag, app, day)
    assert ack_code_of(ack) == "AA" and not any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    assert nids(patients(http, f"{MRN}|{tag}B")[0]) == {_nid(f"320923198009{day}020")}


def test_guard_an_undeclared_application_registering_her_again_is_held(http: TestClient) -> None:
    """Guard: the same registration from the LIS (not declared, no alias of the HIS): held, W 205, the new record
    without her number."""
    ack = _registered_twice(http, "LD3", "LIS", "13")
    assert ack_code_of(ack) == "AA" and any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    assert nids(patients(http, f"{MRN}|LD3B")[0]) == set()
