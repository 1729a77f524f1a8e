"""low45: a resident ID number's owner is asked of the registrants by ``applications``' comparison (reg45's LOW).

``persons._number_owners`` took the first maker of the number's run that registers, or whose application is among
the record's registrants -- by ``app in registrants``, string equality of two registrars. The HIS registering a record
as ``HIS`` and giving her number in an A08 sent as ``his`` (the same application, case aside: ``same_text``), or under
another form of its alias group (senders.yaml ``application_aliases``), was no registrant there; so a later
registration's application restating the number (the EMR's A04) was read as the number's owner, and the EMR's A08
replaced the HIS's number unheld. Now the registrars are compared as the take-over compares them
(``applications.same_code``: one code case aside, or one alias group).

Real bytes through the real path: HL7 v2 over ``POST /hl7v2`` into the real store, ``/fhir`` over FastAPI, on a site
declaring no registration application (``tests.module_store.undeclared_eng``, one engine a module and backend; the
alias site on SQLite, one engine a module).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.settings import Settings
from tests.hl7_calls import err_lines, post
from tests.module_store import alias_site, system_client, undeclared_eng, undeclared_eng_http, undeclared_site
from tests.owner41_calls import nids
from tests.test_rvidentity32_probes import MRN, _nid, adt, patients

__all__ = ["undeclared_eng", "undeclared_eng_http"]

HIS_FORM = "^2.16.840.1.113883.19.4.45^ISO"  # the HIS's new interface as the site names it, its OID alone


@pytest.fixture(scope="module")
def alias_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """An undeclared site (``undeclared_site``) whose senders.yaml names ``HIS`` and ``HIS_FORM`` one application of
    FNXRMYY (SQLite)."""
    tmp = tmp_path_factory.mktemp("low45alias")
    site = alias_site(undeclared_site(tmp / "site"), {"FNXRMYY": [["HIS", HIS_FORM]]})
    settings = Settings(data_dir=tmp / "var", http_port=0, mllp_port=0, base_url="https://huren.example", site=site)
    with Engine(settings) as engine, system_client(engine, "low45alias") as client:
        yield client


def _held(ack: bytes) -> bool:
    return ack_code_of(ack) == "AA" and any("|205^" in x and "|W|" in x for x in err_lines(ack))


def _the_emr_renumbers_the_his_s_number(http: TestClient, tag: str, his: str) -> None:
    """``HIS`` registers record ``tag`` by MRN (A04); the HIS, sent as ``his``, gives her resident ID number (A08);
    the EMR registers the record too, restating that number (A04: nothing changes); the EMR's A08 then states
    another woman's number. The number is the HIS's -- the first of its run's makers that registered the record --
    so the EMR's change is held (AA, W 205) and the record keeps her number. Read by equality, ``his`` was no
    registrant, the EMR's A04 the number's owner, and the EMR's A08 replaced it unheld."""
    hers, other = _nid("32092319801015060"), _nid("32092319801015080")
    record = f"{tag}^^^FNXRMYY^MR"
    for ack in (post(http, adt(f"{tag}a", record, "甲^一", "19801015", "F", app="HIS")),
                post(http, adt(f"{tag}b", f"{record}~{hers}^^^^NNCHN", "甲^一", "19801015", "F", event="A08", app=his)),
                post(http, adt(f"{tag}c", f"{record}~{hers}^^^^NNCHN", "甲^一", "19801015", "F", app="EMR"))):
        assert ack_code_of(ack) == "AA" and not any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    assert nids(patients(http, f"{MRN}|{tag}")[0]) == {hers}
    ack = post(http, adt(f"{tag}d", f"{record}~{other}^^^^NNCHN", "甲^一", "19801015", "F", event="A08", app="EMR"))
    assert _held(ack), err_lines(ack)
    assert any("MSH-3 EMR" in x for x in err_lines(ack) if "|205^" in x), err_lines(ack)
    assert nids(patients(http, f"{MRN}|{tag}")[0]) == {hers}
    # guard: the HIS's own A08 (as registered, ``HIS``) corrects its number -- taken
    ack = post(http, adt(f"{tag}e", f"{record}~{other}^^^^NNCHN", "甲^一", "19801015", "F", event="A08", app="HIS"))
    assert ack_code_of(ack) == "AA", err_lines(ack)
    assert nids(patients(http, f"{MRN}|{tag}")[0]) == {other}


def test_the_registrar_s_number_sent_in_another_case_is_its_own(uhttp: TestClient) -> None:
    _the_emr_renumbers_the_his_s_number(uhttp, "LWA", "his")


def test_the_registrar_s_number_sent_under_another_form_of_its_alias_group_is_its_own(alias_http: TestClient) -> None:
    _the_emr_renumbers_the_his_s_number(alias_http, "LWB", HIS_FORM)
