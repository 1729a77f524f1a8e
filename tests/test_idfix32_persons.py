"""idfix32: the review's findings on patient-number authorities and the person guard (rvidentity32).

Real HL7 over ``POST /hl7v2`` into a real store, read back over ``/fhir`` and ``/admin/fidelity``:
an A08 restating a record as another person only from the application that registered it (and
flagged then); the guard with no birth date; a number kept apart beside the institution's own
record of its value warned of and counted per authority; the refusal's advice."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.identity.cli import identity_authorities
from engine.settings import Settings
from tests.hl7_calls import err_lines, module_engine, module_http, post  # noqa: F401 -- the module's engine and client
from tests.test_rvidentity32_probes import MRN, adt, oru, patients, subjects


def _ops(engine: Engine) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("ops", "system/MessageHeader.cr")}


def _fidelity(engine: Engine, http: TestClient) -> dict:
    r = http.get("/admin/fidelity", params={"institution": "FNXRMYY"}, headers=_ops(engine))
    assert r.status_code == 200, r.text
    return r.json()["institutions"].get("FNXRMYY", {})


def test_the_registering_application_restates_its_record_with_a_warning_counted(
        engine: Engine, http: TestClient) -> None:
    """The HIS registered IA1 and restates it as another person: AA, ERR W at PID-3 (the record's
    results now read as the new person's), counted in the fidelity view; the record shows the new person."""
    assert ack_code_of(post(http, adt("IA1A", "IA1^^^FNXRMYY^MR", "钱^一", "19700303", "M"))) == "AA"
    ack = post(http, adt("IA1B", "IA1^^^FNXRMYY^MR", "吴^二", "19881212", "F", event="A08"))
    assert ack_code_of(ack) == "AA", ack
    (err,) = err_lines(ack)
    assert "|PID^1^3|" in err and "|W|" in err and "restated as another person" in err, err
    (record,) = patients(http, f"{MRN}|IA1")
    assert record["name"][0]["text"] == "吴二"
    items = [i for i in _fidelity(engine, http)["items"] if "restated as another person" in (i["message"] or "")]
    assert items and items[0]["count"] >= 1


def test_an_a31_from_another_application_is_refused_and_one_agreeing_is_not(engine: Engine, http: TestClient) -> None:
    """A31 from the LIS restating the HIS record as another person: AE at PID-3, nothing changed; an
    A08 from the LIS changing only the name (sex and birth date agree) is no restatement: AA."""
    assert ack_code_of(post(http, adt("IA2A", "IA2^^^FNXRMYY^MR", "孙^三", "19800808", "M"))) == "AA"
    ack = post(http, adt("IA2B", "IA2^^^FNXRMYY^MR", "周^四", "19901010", "F", event="A31", app="LIS"))
    assert ack_code_of(ack) == "AE" and "|PID^1^3|" in err_lines(ack)[0], ack
    assert "did not register the record" in ack.decode("utf-8")
    (record,) = patients(http, f"{MRN}|IA2")
    assert record["name"][0]["text"] == "孙三" and record["gender"] == "male"
    assert ack_code_of(post(http, adt("IA2C", "IA2^^^FNXRMYY^MR", "孙^叁", "19800808", "M", event="A08",
                                      app="LIS"))) == "AA"


def test_the_guard_without_birth_dates(http: TestClient) -> None:
    """Name and sex both differ, no birth date on either side: refused. Name and sex differ and the
    birth date both state agrees: refused too since nbfix39 (twins of the other sex share the day: rv39b
    HIGH 1); the name in another script alone, sex and day agreeing: filed."""
    assert ack_code_of(post(http, adt("IA3A", "IA3^^^FNXRMYY^MR", "孙^五", "", "M"))) == "AA"
    ack = post(http, oru("IA3B", "IA3", "周^五", "", "F", "IA3GLU"))
    assert ack_code_of(ack) == "AE" and "new MSH-10" in ack.decode("utf-8"), ack
    assert subjects(http, "IA3GLU") == []
    assert ack_code_of(post(http, adt("IA3C", "IA3D^^^FNXRMYY^MR", "孙^六", "19800808", "M"))) == "AA"
    ack = post(http, oru("IA3D", "IA3D", "SUN^LIU", "19800808", "F", "IA3DGLU"))
    assert ack_code_of(ack) == "AE" and subjects(http, "IA3DGLU") == [], ack
    assert ack_code_of(post(http, oru("IA3E", "IA3D", "SUN^LIU", "19800808", "M", "IA3EGLU"))) == "AA"
    assert len(subjects(http, "IA3EGLU")) == 1


def test_a_number_kept_apart_beside_the_own_record_is_warned_and_counted(engine: Engine, http: TestClient) -> None:
    """A returning patient's number under CX-4 "HISX" while the institution holds IA4 under its own
    MRN (sent without her birth date: not positively her, so kept apart; one that agrees is filed under
    IA4, ``tests/test_ident38_returning.py``): AA with ERR W at PID-3 naming mrn_authorities, counted under the authority in the fidelity
    view, twice for two messages; a LIS number with no record of its value under the MRN: no warning."""
    assert ack_code_of(post(http, adt("IA4A", "IA4^^^FNXRMYY^MR", "柳^七", "19610101", "F"))) == "AA"
    before = _fidelity(engine, http).get("kept_apart", {}).get("HISX", 0)
    for control in ("IA4B", "IA4C"):
        ack = post(http, adt(control, "IA4^^^HISX^MR", "柳^七", "", "F"))
        assert ack_code_of(ack) == "AA", ack
        (err,) = err_lines(ack)
        assert "|PID^1^3|" in err and "|W|" in err and "mrn_authorities" in err and "'HISX'" in err, err
    assert _fidelity(engine, http)["kept_apart"]["HISX"] == before + 2
    ack = post(http, oru("IA4D", "IA4E^^^LISX^PI", "李^八", "19700101", "F", "IA4GLU"))
    assert ack_code_of(ack) == "AA" and not err_lines(ack), ack
    assert "LISX" not in _fidelity(engine, http)["kept_apart"]


def test_a_record_number_holding_the_field_separator_is_refused_at_its_field(http: TestClient) -> None:
    """``auth\\F\\LIS\\F\\IA5`` as an MRN, and ``a\\F\\b`` as another authority's number: AE naming
    PID-3, nothing filed."""
    for control, pid3 in (("IA5A", "auth\\F\\LIS\\F\\IA5^^^FNXRMYY^MR"), ("IA5B", "a\\F\\b^^^LISX^PI")):
        ack = post(http, oru(control, pid3, "李^九", "19700101", "F", "IA5GLU", app="HIS"))
        assert ack_code_of(ack) == "AE" and "|PID^1^3" in err_lines(ack)[0], ack
        assert "field separator" in ack.decode("utf-8")
    assert subjects(http, "IA5GLU") == []


def test_the_authorities_census_reads_the_kept_messages_as_this_release_does(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``huren identity authorities`` on a store holding messages of the old habit: the HIS's CX-4
    "HISX" read ``apart`` with its count, the institution's own code ``own``, another member's
    ``member FNZYY``; a number without CX-4 is not listed (nothing to declare)."""
    settings = Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0)
    with Engine(settings) as eng, TestClient(create_app(eng)) as client:
        client.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("t", "system/*.cruds")
        for control, pid3 in (("IC1", "C1^^^HISX^MR"), ("IC2", "C2^^^HISX^MR"), ("IC3", "C3^^^FNXRMYY^MR"),
                              ("IC4", "C4^^^FNZYY^MR"), ("IC5", "C5")):
            assert ack_code_of(post(client, adt(control, pid3, "柳^一", "19610101", "F"))) == "AA"
    assert identity_authorities(argparse.Namespace(), settings) == 0
    lines = capsys.readouterr().out.strip().split("\n")
    assert lines[0].split("\t") == ["institution", "application", "CX-4", "count", "reading"]
    assert sorted(tuple(line.split("\t")) for line in lines[1:]) == [
        ("FNXRMYY", "HIS", "FNXRMYY", "1", "own"),
        ("FNXRMYY", "HIS", "FNZYY", "1", "member FNZYY"),
        ("FNXRMYY", "HIS", "HISX", "2", "apart"),
    ]


def test_a_record_only_a_result_made_is_restated_until_a_registration_speaks_for_it(http: TestClient) -> None:
    """A LIS result made IA6's record (a placeholder: results do not register, nor does an update --
    the lead after rvidfix32: a LIS's A08 had become the registration of the HIS's own number). An A08
    restating it as another person is accepted with the warning while no registration has spoken for
    it; once the HIS's A04 registers it, the HIS's A08 is a correction (W) and the LIS's is refused."""
    assert ack_code_of(post(http, oru("IA6A", "IA6^^^FNXRMYY^MR", "孙^宝宝", "20261101", "F", "IA6GLU"))) == "AA"
    ack = post(http, adt("IA6B", "IA6^^^FNXRMYY^MR", "钱^多多", "19510711", "M", event="A08"))
    assert ack_code_of(ack) == "AA" and "|W|" in err_lines(ack)[0], ack
    assert ack_code_of(post(http, adt("IA6C", "IA6^^^FNXRMYY^MR", "钱^多多", "19510711", "M"))) == "AA"  # A04
    ack = post(http, adt("IA6D", "IA6^^^FNXRMYY^MR", "孙^宝宝", "20261101", "F", event="A08", app="LIS"))
    assert ack_code_of(ack) == "AE" and "did not register the record" in ack.decode("utf-8"), ack
    ack = post(http, adt("IA6E", "IA6^^^FNXRMYY^MR", "孙^宝宝", "20261101", "F", event="A08"))
    assert ack_code_of(ack) == "AA" and "|W|" in err_lines(ack)[0], ack
    (record,) = patients(http, f"{MRN}|IA6")
    assert record["name"][0]["text"] == "孙宝宝"
