"""regapp33: a site with more than one registering system -- an HIS and a separate 体检 (physical exam)
registration system, both sending ADT for one institution -- declares them in ``institutions.yaml``
``registration_applications``: an A08/A31 from any of them may restate a record another of them
registered; from any other application, or with nothing declared, as before (only the registrar).
The declaration is checked at site load against what senders.yaml says of the institution's
applications.

Real HL7 over ``POST /hl7v2`` into engines on real stores, one with the shipped site and one with a
site folder declaring ``[HIS, TJXT]``; the site checks through the real loader."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from mappings.site import Site
from mappings.sitefiles import SiteError
from tests.hl7_calls import module_engine, module_http, post  # noqa: F401 -- the shipped site's engine and client
from tests.test_rvidentity32_probes import MRN, adt, patients

REPO_ROOT = Path(__file__).resolve().parents[1]


def _site(folder: Path, registering: list[str] | None, senders: str | None = None) -> Path:
    """A site folder: the shipped institutions declaring no registration application but FNXRMYY's ``registering``
    (None: none -- the shipped site declares each hospital's HIS since decl42, so a site declaring none is built
    here); ``senders``: the text of its hl7v2/senders.yaml (none: the shipped one)."""
    members = yaml.safe_load((REPO_ROOT / "mappings" / "institutions.yaml").read_text(encoding="utf-8"))
    for member in members:
        member.pop("registration_applications", None)
        if member["code"] == "FNXRMYY" and registering is not None:
            member["registration_applications"] = registering
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "institutions.yaml").write_text(yaml.safe_dump(members, allow_unicode=True), encoding="utf-8")
    if senders is not None:
        (folder / "hl7v2").mkdir(exist_ok=True)
        (folder / "hl7v2" / "senders.yaml").write_text(senders, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def declared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = _site(tmp_path_factory.mktemp("regapp33-site"), ["HIS", "TJXT"])
    with Engine(Settings(data_dir=root / "var", http_port=0, mllp_port=0, site=root)) as eng, \
            TestClient(create_app(eng)) as client:
        client.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("t", "system/*.cruds")
        yield client


def test_a_declared_registration_system_restates_the_his_record(declared: TestClient) -> None:
    """The HIS registers RA1; the 体检 system TJXT's A08 restating it as another person: AA with the W (the
    site says TJXT registers this institution's persons too); the LIS's: AE, the record unchanged by it."""
    assert ack_code_of(post(declared, adt("RAA1", "RA1^^^FNXRMYY^MR", "郭^一", "19700101", "M"))) == "AA"
    ack = post(declared, adt("RAA2", "RA1^^^FNXRMYY^MR", "马^二", "19800202", "F", event="A08", app="LIS"))
    assert ack_code_of(ack) == "AE" and "registration_applications" in ack.decode("utf-8"), ack
    assert [p["gender"] for p in patients(declared, f"{MRN}|RA1")] == ["male"]
    ack = post(declared, adt("RAA3", "RA1^^^FNXRMYY^MR", "马^二", "19800202", "F", event="A08", app="TJXT"))
    assert ack_code_of(ack) == "AA" and "restated as another person" in ack.decode("utf-8"), ack
    assert [p["gender"] for p in patients(declared, f"{MRN}|RA1")] == ["female"]


def test_the_his_restates_a_record_the_exam_system_registered(declared: TestClient) -> None:
    """TJXT registers RA2 (a physical-exam visit, A04); the HIS's A31 restating it as another person: AA with
    the W; an undeclared application's A04 (the LIS registering its own visits) does not make it one of
    them: a record the LIS registered is restated by the LIS alone."""
    assert ack_code_of(post(declared, adt("RAB1", "RA2^^^FNXRMYY^MR", "罗^三", "19650505", "M", app="TJXT"))) == "AA"
    ack = post(declared, adt("RAB2", "RA2^^^FNXRMYY^MR", "梁^四", "19900909", "F", event="A31"))
    assert ack_code_of(ack) == "AA" and "restated as another person" in ack.decode("utf-8"), ack
    assert ack_code_of(post(declared, adt("RAB3", "RA3^^^FNXRMYY^MR", "宋^五", "19660606", "M", app="LIS"))) == "AA"
    ack = post(declared, adt("RAB4", "RA3^^^FNXRMYY^MR", "唐^六", "19910101", "F", event="A08", app="TJXT"))
    assert ack_code_of(ack) == "AE", ack
    assert [p["gender"] for p in patients(declared, f"{MRN}|RA3")] == ["male"]


def test_nothing_declared_only_the_registrar_restates(http: TestClient) -> None:
    """The shipped site declares no registration applications: the 体检 system's A08 restating the HIS's
    record as another person is refused, as before."""
    assert ack_code_of(post(http, adt("RAC1", "RA4^^^FNXRMYY^MR", "冯^七", "19670707", "M"))) == "AA"
    ack = post(http, adt("RAC2", "RA4^^^FNXRMYY^MR", "陈^八", "19920202", "F", event="A08", app="TJXT"))
    assert ack_code_of(ack) == "AE", ack
    assert [p["gender"] for p in patients(http, f"{MRN}|RA4")] == ["male"]


# --- site load --------------------------------------------------------------------------------------



def _load(folder: Path) -> Site:
    return Site.load(Settings(data_dir=folder / "var", site=folder))


def test_an_application_of_another_institution_is_refused_at_load(tmp_path: Path) -> None:
    site = _site(tmp_path, ["HIS", "ZYHIS"], "applications:\n  ZYHIS: FNZYY\n")
    with pytest.raises(SiteError) as refused:
        _load(site)
    text = str(refused.value)
    assert "institutions.yaml:" in text and "registration_applications[1]" in text and "'FNZYY'" in text, text


def test_an_application_only_the_charsets_do_not_name_loads(tmp_path: Path) -> None:
    """senders.yaml names only the applications that differ from the default (the LIS's charset, the HIS's
    structure mode): no file lists every application of an institution, so a registration application
    absent from them loads (the lead, thirty-third round: a site declaring its HIS beside a LIS-only
    charset was refused); one that ``applications`` gives this institution loads too."""
    site = _site(tmp_path / "a", ["HIS", "TJXT"], "charsets:\n  FNXRMYY: {LIS: GB 18030-2000}\n"
                                                  "message_structure:\n  FNXRMYY: {HIS: strict}\n")
    assert _load(site).institutions["FNXRMYY"].registration_applications == ("HIS", "TJXT")
    mine = _site(tmp_path / "b", ["HIS", "TJXT"], "applications:\n  TJXT: FNXRMYY\n")
    assert _load(mine).institutions["FNXRMYY"].registration_applications == ("HIS", "TJXT")
    assert _load(_site(tmp_path / "c", ["HIS", "TJXT"])).institutions["FNXRMYY"].registration_applications == (
        "HIS", "TJXT")


def test_with_registration_systems_declared_a_lis_a08_does_not_restate_a_placeholder(declared: TestClient) -> None:
    """A LIS result makes RA5's placeholder (no registration yet). With nothing declared any application's
    A08 may restate such a record (with the W); once the site declares its registration systems, the LIS's
    A08 restating it as another person is refused, TJXT's accepted."""
    assert ack_code_of(post(declared, ("MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201101500||ORU^R01^ORU_R01|RAE1|P|2.5.1\r"
                                       "PID|1||RA5^^^FNXRMYY^MR||田^九||19580808|M\r"
                                       "OBR|1|ORAE1|LRAE1|RAEG^RAEG^L|||20261201083000||||G|||20261201083500|BLD"
                                       "||||||||20261201091000|||F\r"
                                       "OBX|1|NM|RAEG^RAEG^L||5.6|mmol/L|||||F|||20261201090000\r"))) == "AA"
    ack = post(declared, adt("RAE2", "RA5^^^FNXRMYY^MR", "范^十", "19970707", "F", event="A08", app="LIS"))
    assert ack_code_of(ack) == "AE", ack
    ack = post(declared, adt("RAE3", "RA5^^^FNXRMYY^MR", "范^十", "19970707", "F", event="A08", app="TJXT"))
    assert ack_code_of(ack) == "AA" and "restated as another person" in ack.decode("utf-8"), ack
