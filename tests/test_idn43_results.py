"""idn43: which applications' results may link a NEW record by the resident ID number (decl42b's HIGH made a data
decision). On a site declaring its ``registration_applications``, a result's or order's PID making a new record
with a number another record holds links it (the patient index: one number, one person) only when its application is
a declared registration application or one of the institution's ``number_linking_applications``
(institutions.yaml: a LIS whose patients come from the HIS's orders); from any other the number is held (W 205,
listed, the decision barred while the other record holds it), the record filed without it and its result its own.
The shipped site declares what its feeds need (each hospital's LIS, the county's RIS: the remote reading centre).
Real HL7 v2 over ``POST /hl7v2`` and the ingestor, reads over ``/fhir``, ``/admin`` and the resident's phone; both
backends."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.settings import Settings
from mappings.site import Site, SiteError
from tests.conftest import _BACKENDS
from tests.hl7_calls import err_lines, post
from tests.module_store import (
    REPO_ROOT,
    module_eng,
    module_eng_http,
    settings_for_backend,
    site_without,
    system_client,
)
from tests.owner41_calls import at_fnzyy, decide, nids
from tests.test_decl42b_identity import FNZYY, _held, _links_held, _observed
from tests.test_rvidentity32_probes import MRN, _nid, adt, oru, patients

__all__ = ["module_eng", "module_eng_http"]  # (``http``)

NEW = "the record is new, made by this message's result or order"


def his_only_site(folder: Path) -> Path:
    """The shipped site with every ``number_linking_applications`` taken out: each hospital declares its HIS as its
    registration application and no application whose results link a new record by number."""
    return site_without(folder, "number_linking_applications")


@pytest.fixture(scope="module", params=_BACKENDS)
def his_only_eng(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    root = tmp_path_factory.mktemp("idn43-his-only")
    settings = Settings(data_dir=root / "var", http_port=0, mllp_port=0, base_url="https://huren.example",
                        site=his_only_site(root / "site"))
    with settings_for_backend(request.param, settings) as chosen, Engine(chosen) as engine:
        yield engine


@pytest.fixture(scope="module")
def hhttp(his_only_eng: Engine) -> Iterator[TestClient]:
    with system_client(his_only_eng, "idn43") as client:
        yield client


def _registered_at_fnzyy(http: TestClient, tag: str, c: str, name: str, birth: str) -> dict:
    assert ack_code_of(post(http, at_fnzyy(f"{tag}Ea", f"{tag}E", name, birth, "F", f"~{c}^^^^NNCHN"))) == "AA"
    (her,) = patients(http, f"{FNZYY}|{tag}E")
    return her


def _placeholder_held(http: TestClient, engine: Engine, tag: str, ack: bytes, app: str, her: dict) -> None:
    """The result's W 205 at PID-3 (``_links_held``'s words and the new record's), the placeholder filed without the
    number and unlinked, the result on it alone, her resident reading nothing of it, the message listed."""
    _links_held(ack, app)
    assert any(NEW in x for x in err_lines(ack)), err_lines(ack)
    (placeholder,) = patients(http, f"{MRN}|{tag}K")
    assert nids(placeholder) == set() and not placeholder.get("link"), placeholder
    found = http.get("/fhir/Observation", params={"code": f"{tag}OBS"}).json().get("entry") or ()
    assert [e["resource"]["subject"]["reference"] for e in found] == [f"Patient/{placeholder['id']}"], found
    assert _observed(engine, her, f"{tag}OBS") == []
    assert f"{tag}Ka" in _held(http, engine)


def test_an_undeclared_applications_result_making_a_record_with_her_number_is_held(
        module_eng: Engine, http: TestClient) -> None:
    """Shipped site: FNZYY's HIS registered her with c; at FNXRMYY an application the site declares neither a
    registration nor a number-linking one (a point-of-care glucose middleware, MSH-3 POCT) sends an ORU^R01 under a
    new MRN stating her name, birth date and c: held, filed unlinked; the operator's decision is refused 409 while
    her record holds c."""
    c = _nid("32092319800830020")
    her = _registered_at_fnzyy(http, "IR1", c, "壬^三十", "19800830")
    ack = post(http, oru("IR1Ka", f"IR1K^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^三十", "19800830", "F", "IR1OBS", app="POCT"))
    _placeholder_held(http, module_eng, "IR1", ack, "POCT", her)
    assert decide(http, module_eng, "IR1Ka", "idn43-ops").status_code == 409


def test_the_shipped_lis_result_of_a_returning_patient_links_by_her_number(module_eng: Engine, http: TestClient) -> None:
    """Guard (the shipped site declares FNXRMYY's LIS: its feed's result of a patient registered at another member
    links, examples/feeds/10): the LIS's ORU^R01 under a new MRN stating her number is AA without W 205, the record
    holds c, her FNZYY resident reads the result."""
    c = _nid("32092319800831020")
    her = _registered_at_fnzyy(http, "IR2", c, "壬^三一", "19800831")
    ack = post(http, oru("IR2Ka", f"IR2K^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^三一", "19800831", "F", "IR2OBS"))
    assert ack_code_of(ack) == "AA" and not any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    assert nids(patients(http, f"{MRN}|IR2K")[0]) == {c}
    assert _observed(module_eng, her, "IR2OBS")


def test_an_undeclared_applications_result_whose_number_nobody_holds_is_taken(
        module_eng: Engine, http: TestClient) -> None:
    """Guard: the POCT result under a new MRN stating a number no record holds: AA, no W 205, the record holds it."""
    c = _nid("32092319800901020")
    ack = post(http, oru("IR3Ka", f"IR3K^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^九一", "19800901", "F", "IR3OBS", app="POCT"))
    assert ack_code_of(ack) == "AA" and not any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    assert nids(patients(http, f"{MRN}|IR3K")[0]) == {c}


def test_the_lis_result_is_held_where_the_site_does_not_declare_it(his_only_eng: Engine, hhttp: TestClient) -> None:
    """A site declaring each HIS and no number-linking application: FNXRMYY's LIS's ORU^R01 under a new MRN stating
    the number FNZYY's HIS registered on her (decl42b's probe, its message as it was) is held and filed unlinked;
    the HIS's A08 of the record stating c then links it (the registration's word) and her resident reads it."""
    c = _nid("32092319800902020")
    her = _registered_at_fnzyy(hhttp, "IR4", c, "壬^九二", "19800902")
    ack = post(hhttp, oru("IR4Ka", f"IR4K^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^九二", "19800902", "F", "IR4OBS"))
    _placeholder_held(hhttp, his_only_eng, "IR4", ack, "LIS", her)
    ack = post(hhttp, oru("IR4Kb", f"IR4K^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^九二", "19800902", "F", "IR4OBS2"))
    assert nids(patients(hhttp, f"{MRN}|IR4K")[0]) == set(), "the stored record's later result does not number it"
    ack = post(hhttp, adt("IR4Kc", f"IR4K^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^九二", "19800902", "F", event="A08"))
    assert ack_code_of(ack) == "AA" and not any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    assert _observed(his_only_eng, her, "IR4OBS"), "the HIS's word links the record to her"


def test_a_new_records_number_decides_in_one_batch_as_one_by_one(module_eng: Engine, http: TestClient) -> None:
    """Her FNZYY registration, then two POCT results under a new MRN stating her number -- one by one and in one
    ingestor batch: the same ACKs (AA, the first W 205, the second none: its record is then stored), her resident
    reading nothing."""
    for tag, batch in (("IR5S", False), ("IR5B", True)):
        c = _nid("32092319800903020" if not batch else "32092319800904020")
        birth = "19800903" if not batch else "19800904"
        messages = [at_fnzyy(f"{tag}Ea", f"{tag}E", "壬^九三", birth, "F", f"~{c}^^^^NNCHN"),
                    oru(f"{tag}Ka", f"{tag}K^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^九三", birth, "F", f"{tag}OBS", app="POCT"),
                    oru(f"{tag}Kb", f"{tag}K^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^九三", birth, "F", f"{tag}OBS", app="POCT")]
        raws = [(m.encode(), "mllp", "t") for m in messages]
        outs = (module_eng.ingestor.process(raws) if batch
                else [o for r in raws for o in module_eng.ingestor.process([r])])
        assert [ack_code_of(o.ack) for o in outs] == ["AA"] * 3, tag
        assert [sum("|205^" in e for e in err_lines(o.ack)) for o in outs] == [0, 1, 0], tag
        (her,) = patients(http, f"{FNZYY}|{tag}E")
        assert nids(patients(http, f"{MRN}|{tag}K")[0]) == set(), tag
        assert _observed(module_eng, her, f"{tag}OBS") == [], tag


def _load(folder: Path, linking: object, senders: str = "") -> Site:
    """The shipped site with FNXRMYY's ``number_linking_applications`` set to ``linking`` (and ``senders``'s
    senders.yaml), loaded."""
    members = yaml.safe_load((REPO_ROOT / "mappings" / "institutions.yaml").read_text(encoding="utf-8"))
    members[0]["number_linking_applications"] = linking
    folder.mkdir(parents=True)
    (folder / "institutions.yaml").write_text(yaml.safe_dump(members, allow_unicode=True), encoding="utf-8")
    if senders:
        (folder / "hl7v2").mkdir()
        (folder / "hl7v2" / "senders.yaml").write_text(senders, encoding="utf-8")
    return Site.load(Settings(data_dir=folder / "var", site=folder))


def test_number_linking_applications_is_checked_at_load(tmp_path: Path) -> None:
    """The list is data, checked as ``registration_applications`` is: a name senders.yaml gives another institution
    is refused at load naming the entry; a value not a list of names fails the schema; a list loads."""
    with pytest.raises(SiteError) as refused:
        _load(tmp_path / "a", ["LIS", "ZYLIS"], "applications:\n  ZYLIS: FNZYY\n")
    text = str(refused.value)
    assert "number_linking_applications[1]" in text and "'FNZYY'" in text, text
    with pytest.raises(SiteError):
        _load(tmp_path / "b", "LIS")
    assert _load(tmp_path / "c", ["LIS", "RIS"]).institutions["FNXRMYY"].number_linking_applications == ("LIS", "RIS")
