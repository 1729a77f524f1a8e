"""low44b: rv44a's findings on low44 -- a held A47 restating her resident ID number decided once (MRG-1's record is
no "other holder" of the number its merge moves), the 409 on a survivor filed since the hold says it was filed
nowhere, and a stored registrar matched against this message's MSH-3 as sent (an alias form's name alone is no
alias: ``applications.sends_as``); what ``persons.leave_unfiled`` keeps filed (another merge of the message taken
into the same survivor).

Real HL7 v2 over ``POST /hl7v2``, the operator's decision over ``/admin``, ``/fhir`` over FastAPI, the real store
(both backends where the module engine is parametrized)."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

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
from tests.module_store import module_eng, module_eng_http, system_client
from tests.owner41_calls import decide, nids
from tests.test_idn43_merge import _a47, _links, _merge_held, _one
from tests.test_rvidentity32_probes import MRN, _nid, adt, oru, patients

__all__ = ["module_eng", "module_eng_http"]

OPS = "low44b-ops"


def _her(http: TestClient, tag: str, c: str, birth: str) -> dict:
    """The HIS registers her record ``<tag>H`` holding resident ID number ``c``: as stored."""
    assert ack_code_of(post(http, adt(f"{tag}Ha", f"{tag}H^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^四四", birth, "F"))) == "AA"
    return _one(http, f"{tag}H")


def _versions(http: TestClient, record: dict) -> int:
    return int(http.get(f"/fhir/Patient/{record['id']}/_history").json()["total"])


# --- a held A47 restating her number -----------------------------------------------------------------------------


def test_a_held_a47_restating_her_number_is_decided_once(module_eng: Engine, http: TestClient) -> None:
    """The LIS's A47 renumbering the HIS's record H as N, its PID restating her number beside N: held, nothing filed;
    the decision (200) files N once holding her number, H replaced by N and no longer active -- the one active
    record holding the number N; asked again, ``already``, nothing written."""
    c = _nid("32092319800918030")
    h = _her(http, "LB1", c, "19800918")
    _merge_held(post(http, _a47("LB1M", f"LB1N^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^四四", "19800918",
                                "LB1H^^^FNXRMYY^MR", "LIS")), "LIS")
    assert patients(http, f"{MRN}|LB1N") == []
    r = decide(http, module_eng, "LB1M", OPS)
    assert r.status_code == 200, r.text[:600]
    n = _one(http, "LB1N")
    assert nids(n) == {c}
    after = http.get(f"/fhir/Patient/{h['id']}").json()
    assert ("replaced-by", f"Patient/{n['id']}") in _links(after) and after.get("active") is False
    holding = [p for p in patients(http, c) if p.get("active") is not False]
    assert [p["id"] for p in holding] == [n["id"]], holding
    versions = _versions(http, n)
    again = decide(http, module_eng, "LB1M", OPS)
    assert again.status_code == 200 and again.json()["already"] is True, again.text[:400]
    assert _versions(http, n) == versions


def test_guard_a_held_a47_stating_another_womans_number_stays_barred(module_eng: Engine, http: TestClient) -> None:
    """Guard: only MRG-1's record is passed over -- the held A47's PID stating a number another woman's record holds
    (not MRG-1's) is still barred: 409 naming that record by its MRN, nothing filed under N."""
    c = _nid("32092319800919030")
    _her(http, "LB2", c, "19800919")
    other = _nid("32092319800919040")  # (another woman born the same day)
    assert ack_code_of(post(http, adt("LB2Xa", f"LB2X^^^FNXRMYY^MR~{other}^^^^NNCHN", "癸^四四", "19800919",
                                      "F"))) == "AA"
    _merge_held(post(http, _a47("LB2M", f"LB2N^^^FNXRMYY^MR~{other}^^^^NNCHN", "壬^四四", "19800919",
                                "LB2H^^^FNXRMYY^MR", "LIS")), "LIS")
    r = decide(http, module_eng, "LB2M", OPS)
    assert r.status_code == 409, r.text[:600]
    assert "held by another record (MRN LB2X at FNXRMYY)" in r.text, r.text[:600]
    assert patients(http, f"{MRN}|LB2N") == []


def test_the_409_on_a_survivor_filed_since_says_it_was_filed_nowhere(module_eng: Engine, http: TestClient) -> None:
    """The held A47's new record filed by the LIS's result before the decision: the 409 says the record was filed
    nowhere when held and names its version now -- no placeholder."""
    _her(http, "LB3", _nid("32092319800920030"), "19800920")
    _merge_held(post(http, _a47("LB3M", "LB3N^^^FNXRMYY^MR", "壬^四四", "19800920", "LB3H^^^FNXRMYY^MR", "LIS")), "LIS")
    assert ack_code_of(post(http, oru("LB3R", "LB3N^^^FNXRMYY^MR", "壬^四四", "19800920", "F", "LB3OBS"))) == "AA"
    n = _one(http, "LB3N")
    r = decide(http, module_eng, "LB3M", OPS)
    assert r.status_code == 409, r.text[:600]
    assert f"Patient/{n['id']} (filed nowhere when held, now version 1)" in r.text, r.text[:600]


# --- a stored registrar against this message's MSH-3 as sent ------------------------------------------------------

LIS_FORM = "LISV2^2.16.840.1.113883.19.4.6^ISO"  # the LIS's new interface as the site names it: a name and its OID
LIS_OTHER = "LISV2^2.16.840.1.113883.19.4.66^ISO"  # another application (another OID, HL7 2.A.33): no form of it


@pytest.fixture(scope="module")
def alias_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The shipped site (FNXRMYY declaring ``HIS`` only) whose senders.yaml names ``LIS`` and ``LIS_FORM`` one
    application."""
    tmp = tmp_path_factory.mktemp("low44balias")
    site = tmp / "site"
    (site / "hl7v2").mkdir(parents=True)
    shipped = yaml.safe_load((DEFAULTS_DIR / "hl7v2" / "senders.yaml").read_text(encoding="utf-8"))
    (site / "hl7v2" / "senders.yaml").write_text(
        yaml.safe_dump({**shipped, "application_aliases": {"FNXRMYY": [["LIS", LIS_FORM]]}}, allow_unicode=True),
        encoding="utf-8")
    settings = Settings(data_dir=tmp / "var", http_port=0, mllp_port=0, base_url="https://huren.example", site=site)
    with Engine(settings) as engine, system_client(engine, "low44balias") as client:
        yield client


def _a40(control: str, pid3: str, name: str, mrg1: str, app: str) -> str:
    return (f"MSH|^~\\&|{app}|FNXRMYY|HUREN|FNYGT|20261201121500||ADT^A40^ADT_A39|{control}|P|2.5.1\r"
            f"EVN|A40|20261201121500\rPID|1||{pid3}||{name}||19801020|F\rMRG|{mrg1}\r")


def _lis_duplicates(http: TestClient, tag: str) -> None:
    """The LIS's walk-in A04s register two records of one woman, ``<tag>A`` and ``<tag>B``, neither numbered."""
    for key in ("A", "B"):
        assert ack_code_of(post(http, adt(f"{tag}{key}a", f"{tag}{key}^^^FNXRMYY^MR", "辛^四四", "19801020", "F",
                                          app="LIS"))) == "AA"


def _merged(http: TestClient, tag: str) -> bool:
    return ("replaced-by", f"Patient/{_one(http, f'{tag}A')['id']}") in _links(_one(http, f"{tag}B"))


def test_guard_the_lis_under_its_aliased_form_merges_its_own_duplicates(alias_http: TestClient) -> None:
    """Guard: the LIS under the form the site wrote (name and OID) merging the two records it registered: AA, no W
    205, merged -- the registrar ``LIS`` is its application."""
    _lis_duplicates(alias_http, "LB4")
    ack = post(alias_http, _a40("LB4M", "LB4A^^^FNXRMYY^MR", "辛^四四", "LB4B^^^FNXRMYY^MR", LIS_FORM))
    assert ack_code_of(ack) == "AA" and not any("|205^" in e for e in err_lines(ack)), err_lines(ack)
    assert _merged(alias_http, "LB4")


def test_another_application_sharing_the_forms_name_does_not_merge_the_lis_records(alias_http: TestClient) -> None:
    """``LISV2^<another OID>^ISO`` -- another application, no form of the LIS's group -- merging the two records the
    LIS registered: held (W 205 at MRG-1), not merged. Matched by its name alone it was the LIS, the registrar, and
    the merge was taken (rv44a MED 1 through the registrar: ``merge_refused``)."""
    _lis_duplicates(alias_http, "LB5")
    ack = post(alias_http, _a40("LB5M", "LB5A^^^FNXRMYY^MR", "辛^四四", "LB5B^^^FNXRMYY^MR", LIS_OTHER))
    assert ack_code_of(ack) == "AA"
    _merge_held(ack, "LISV2")
    assert not _merged(alias_http, "LB5")


def test_a_held_merges_survivor_another_merge_of_the_message_takes_stays_filed(module_eng: Engine,
                                                                               http: TestClient) -> None:
    """What ``leave_unfiled`` keeps filed: the LIS's A40 of two PID/MRG pairs into one new MRN N -- her record (the
    HIS's: held, W 205 at MRG-1) and the LIS's own numberless walk-in (taken). N is filed, the walk-in's survivor,
    replacing the walk-in; her record stays hers, not merged."""
    c = _nid("32092319800923030")
    h = _her(http, "LB6", c, "19800923")
    assert ack_code_of(post(http, adt("LB6Wa", "LB6W^^^FNXRMYY^MR", "壬^四四", "19800923", "F", app="LIS"))) == "AA"
    ack = post(http, "MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201121500||ADT^A40^ADT_A39|LB6M|P|2.5.1\r"
                     "EVN|A40|20261201121500\r"
                     "PID|1||LB6N^^^FNXRMYY^MR||壬^四四||19800923|F\rMRG|LB6H^^^FNXRMYY^MR\r"
                     "PID|2||LB6N^^^FNXRMYY^MR||壬^四四||19800923|F\rMRG|LB6W^^^FNXRMYY^MR\r")
    assert ack_code_of(ack) == "AA"
    assert [e for e in err_lines(ack) if "|205^" in e and "MRG^1^1" in e], err_lines(ack)
    n = _one(http, "LB6N")
    assert ("replaced-by", f"Patient/{n['id']}") in _links(_one(http, "LB6W"))
    assert not any(t == "replaced-by" for t, _ in _links(http.get(f"/fhir/Patient/{h['id']}").json()))
