"""rvidfix32's probes of idfix32 (the registering application of a record, read through Provenance and
the message store; the kept-apart warning and its fidelity count; a ``|`` in a record number).

Real HL7 over ``POST /hl7v2`` (and batches) into a real store, read back over ``/fhir`` and
``/admin/fidelity``. A probe showing a defect is a strict xfail naming its severity; a probe that
passes guards behaviour worth keeping."""

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
from tests.identity39_calls import engine_and_client
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_rvidentity32_probes import MRN, adt, oru, patients, subjects


def _ops(engine: Engine) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("ops", "system/MessageHeader.cr")}


def _batch(*messages: str) -> str:
    return ("FHS|^~\\&|HIS|FNXRMYY\rBHS|^~\\&|HIS|FNXRMYY\r" + "".join(messages)
            + f"BTS|{len(messages)}\rFTS|1\r")


def test_a_lis_a08_on_a_result_placeholder_does_not_take_the_his_record(http: TestClient) -> None:
    """A LIS result makes the placeholder of the HIS's MRN FX1 (the HIS has not registered it yet);
    the LIS then sends an A08 under the HIS's own MRN restating it as another person. Whatever the
    engine answers that A08, the HIS (the institution's registration system, whose MRN it is) must
    still be able to correct its record afterwards: its A08 stating the true person is accepted."""
    assert ack_code_of(post(http, oru("FX1A", "FX1^^^FNXRMYY^MR", "钱^一", "19700303", "M", "FX1GLU"))) == "AA"
    post(http, adt("FX1B", "FX1^^^FNXRMYY^MR", "吴^二", "19881212", "F", event="A08", app="LIS"))
    ack = post(http, adt("FX1C", "FX1^^^FNXRMYY^MR", "钱^一", "19700303", "M", event="A08", app="HIS"))
    assert ack_code_of(ack) == "AA", ack
    (record,) = patients(http, f"{MRN}|FX1")
    assert record["name"][0]["text"] == "钱一"


def test_a_batch_does_not_make_its_sender_the_registering_application(http: TestClient) -> None:
    """The HIS registered FX2. A LIS batch: an A08 restating FX2 as the same person (name only), then
    an A08 restating it as another person. Sent alone the second is refused (the LIS did not register
    FX2); in the batch it must be refused too, and the record keeps its person."""
    assert ack_code_of(post(http, adt("FX2A", "FX2^^^FNXRMYY^MR", "孙^三", "19800808", "M"))) == "AA"
    ack = post(http, _batch(adt("FX2B", "FX2^^^FNXRMYY^MR", "孙^叁", "19800808", "M", event="A08", app="LIS"),
                            adt("FX2C", "FX2^^^FNXRMYY^MR", "周^四", "19901010", "F", event="A08", app="LIS")))
    assert b"MSA|AE|FX2C" in ack, ack
    (record,) = patients(http, f"{MRN}|FX2")
    assert record["gender"] == "male"


def test_another_application_is_refused_in_a_batch_after_the_registrars_message(http: TestClient) -> None:
    """A batch: the HIS registers FX3, the LIS's A08 restates it as another person: refused (the
    registrar is the batch's HIS message), the HIS's record filed."""
    ack = post(http, _batch(adt("FX3A", "FX3^^^FNXRMYY^MR", "郑^一", "19750101", "M"),
                            adt("FX3B", "FX3^^^FNXRMYY^MR", "冯^二", "19950202", "F", event="A08", app="LIS")))
    assert b"MSA|AA|FX3A" in ack and b"MSA|AE|FX3B" in ack, ack
    assert [p["name"][0]["text"] for p in patients(http, f"{MRN}|FX3")] == ["郑一"]


def test_a_refused_adt_does_not_make_its_sender_the_registrar(http: TestClient) -> None:
    """The LIS's A04 is refused (``\\F\\`` in its MRN), its raw kept under the (FNXRMYY, FX4A) pair; the
    HIS then registers FX4 with the same MSH-10 (MSH-10 is unique per application, not per
    institution) and later restates it (its own correction): AA with the W. Found: the Provenance's
    entity names the plain MSH-10 "FX4A", ``_registered`` reads ``message_id`` -- the LIS's quarantined
    document -- and answers "LIS": the HIS's own A08 is refused as another application's."""
    bad = adt("FX4A", "FX4\\F\\Z^^^FNXRMYY^MR", "王^五", "19700101", "M", app="LIS")
    assert ack_code_of(post(http, bad)) == "AE"
    assert ack_code_of(post(http, adt("FX4A", "FX4^^^FNXRMYY^MR", "王^五", "19700101", "M"))) == "AA"
    ack = post(http, adt("FX4B", "FX4^^^FNXRMYY^MR", "赵^六", "19921212", "F", event="A08"))
    assert ack_code_of(ack) == "AA" and "restated as another person" in ack.decode("utf-8"), ack


def test_the_registrar_lookup_runs_only_for_a_restatement_as_another_person(engine: Engine, http: TestClient) -> None:
    """The registrar lookup (the registrations table's rows of the record -- registry34 -- or, where the
    table's word is not the whole truth, a Provenance search by target, then a message-store read) runs
    only for an A08/A31 restating a record as another person: a returning patient's result, an A08
    changing one field and a number kept apart read neither."""
    repo, messages = engine.ingestor.repository, engine.ingestor.messages
    calls: list[list] = []
    real = repo.search
    rows = messages.registrations_of

    def counted(rtype, params, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202 -- the real search, counted
        if rtype == "Provenance" and any(k == "target" for k, _ in params):
            calls.append(list(params))
        return real(rtype, params, *args, **kwargs)

    def read(record: str) -> list:  # the real table read, counted
        calls.append([("registrations", record)])
        return rows(record)

    repo.search = counted
    messages.registrations_of = read
    try:
        assert ack_code_of(post(http, adt("FX5A", "FX5^^^FNXRMYY^MR", "刘^一", "19700101", "M"))) == "AA"
        assert ack_code_of(post(http, oru("FX5B", "FX5", "刘^一", "19700101", "M", "FX5GLU", app="HIS"))) == "AA"
        assert ack_code_of(post(http, adt("FX5C", "FX5^^^FNXRMYY^MR", "刘^壹", "19700101", "M", event="A08"))) == "AA"
        assert ack_code_of(post(http, oru("FX5D", "FX5^^^HISX^MR", "刘^一", "19700101", "M", "FX5X"))) == "AA"
        assert calls == []
        ack = post(http, adt("FX5E", "FX5^^^FNXRMYY^MR", "林^二", "19900202", "F", event="A08"))
        assert ack_code_of(ack) == "AA" and len(calls) == 1, (ack, calls)
    finally:
        del repo.search
        del messages.registrations_of


@pytest.mark.parametrize("pid3", ["A\\F\\B^^^FNXRMYY^MR", "A\\F\\B^^^LIS^PI", "X1^^^FNXRMYY^MR~A\\F\\B^^^LIS^PI"])
def test_a_field_separator_in_a_record_number_is_refused_at_pid3(http: TestClient, pid3: str) -> None:
    """``\\F\\`` in the MRN or in another authority's number: AE at PID-3, nothing filed -- also in a
    second repetition, though the MRN before it keys the record (the number would be stored as given)."""
    code = "FX6" + str(abs(hash(pid3)) % 1000)
    ack = post(http, oru("FX6" + code, pid3, "李^七", "19700101", "F", code, app="HIS"))
    assert ack_code_of(ack) == "AE" and "|PID^1^3" in err_lines(ack)[0], ack
    assert subjects(http, code) == []


def test_a_field_separator_elsewhere_is_not_refused(http: TestClient) -> None:
    """``\\F\\`` in a name, an OBX-5 text and a PID-3 number of a non-record kind (a card): AA."""
    msg = ("MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201101500||ORU^R01^ORU_R01|FX7A|P|2.5.1\r"
           "PID|1||FX7^^^FNXRMYY^MR~C\\F\\9^^^FNXRMYY^JHN||李\\F\\^七||19700101|F\r"
           "OBR|1|OFX7|LFX7|FX7T^FX7T^L|||20261201083000||||G|||20261201083500|BLD||||||||20261201091000|||F\r"
           "OBX|1|TX|FX7T^FX7T^L||a\\F\\b||||||F|||20261201090000\r")
    ack = post(http, msg)
    assert ack_code_of(ack) == "AA", ack


def test_mrg1_with_a_field_separator_is_refused_at_mrg1(http: TestClient) -> None:
    assert ack_code_of(post(http, adt("FX8A", "FX8^^^FNXRMYY^MR", "何^八", "19700101", "M"))) == "AA"
    msg = ("MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201121500||ADT^A40^ADT_A39|FX8B|P|2.5.1\r"
           "EVN|A40|20261201121500\rPID|1||FX8^^^FNXRMYY^MR||何^八||19700101|M\rMRG|auth\\F\\LIS\\F\\K9^^^FNXRMYY^MR\r")
    ack = post(http, msg)
    assert ack_code_of(ack) == "AE" and "|MRG^1^1" in err_lines(ack)[0], ack


def test_the_registrar_is_found_past_a_hundred_results(http: TestClient) -> None:
    """FX9's placeholder is made by a LIS result and 100 more follow before the HIS registers it (a
    long-stay lab patient; each message's Provenance names the record); then the LIS's A08 restates
    FX9 as another person: refused, as it is for a record with fewer results."""
    for n in range(101):
        assert ack_code_of(post(http, oru(f"FX9R{n}", "FX9^^^FNXRMYY^MR", "钱^九", "19700909", "M", "FX9GLU"))) == "AA"
    assert ack_code_of(post(http, adt("FX9A", "FX9^^^FNXRMYY^MR", "钱^九", "19700909", "M"))) == "AA"
    ack = post(http, adt("FX9B", "FX9^^^FNXRMYY^MR", "吴^十", "19881212", "F", event="A08", app="LIS"))
    assert ack_code_of(ack) == "AE", ack


# --- both backends ----------------------------------------------------------------------------------


both = engine_and_client("rv")


def test_the_registering_application_on_each_backend(both: tuple[Engine, TestClient]) -> None:
    """SQLite and mongomock: a result placeholder, then the HIS's A04 registering the record (so the
    oldest Provenance is not the registration), then the LIS's A08 restating it as another person:
    AE; the HIS's: AA with the W; a number kept apart beside it (no birth date: not positively the record's
    person, ident38): W, counted per authority."""
    engine, http = both
    assert ack_code_of(post(http, oru("FXB1", "FXB^^^FNXRMYY^MR", "张^三", "19850412", "M", "FXBGLU"))) == "AA"
    assert ack_code_of(post(http, adt("FXB2", "FXB^^^FNXRMYY^MR", "张^三", "19850412", "M"))) == "AA"
    ack = post(http, adt("FXB3", "FXB^^^FNXRMYY^MR", "李^四", "19900101", "F", event="A08", app="LIS"))
    assert ack_code_of(ack) == "AE" and "did not register" in ack.decode("utf-8"), ack
    ack = post(http, adt("FXB4", "FXB^^^FNXRMYY^MR", "李^四", "19900101", "F", event="A08"))
    assert ack_code_of(ack) == "AA" and "restated as another person" in ack.decode("utf-8"), ack
    ack = post(http, oru("FXB5", "FXB^^^HISY^MR", "李^四", "", "F", "FXBY"))
    (err,) = err_lines(ack)
    assert "'HISY'" in err and "|W|" in err and "FXB" not in err.replace("HISY", ""), err
    r = http.get("/admin/fidelity", params={"institution": "FNXRMYY"}, headers=_ops(engine))
    assert r.status_code == 200, r.text
    fid = r.json()["institutions"]["FNXRMYY"]
    assert fid.get("kept_apart", {}).get("HISY") == 1, fid
    assert "李" not in r.text, [i for i in fid["items"] if "李" in str(i)]


def test_the_first_registration_not_the_latest_is_the_registrar(http: TestClient) -> None:
    """The HIS registers FXO; the LIS then sends an A04 naming the same person (some LIS register
    their own visits); the LIS's later A08 restating FXO as another person: refused (the oldest ADT is
    the HIS's), the record keeps its person."""
    assert ack_code_of(post(http, adt("FXO1", "FXO^^^FNXRMYY^MR", "蒋^一", "19660606", "M"))) == "AA"
    assert ack_code_of(post(http, adt("FXO2", "FXO^^^FNXRMYY^MR", "蒋^一", "19660606", "M", app="LIS"))) == "AA"
    ack = post(http, adt("FXO3", "FXO^^^FNXRMYY^MR", "韩^二", "19990909", "F", event="A08", app="LIS"))
    assert ack_code_of(ack) == "AE", ack
    assert [p["gender"] for p in patients(http, f"{MRN}|FXO")] == ["male"]


def test_the_authorities_census_reads_a_gb18030_message_and_names_no_patient(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``huren identity authorities`` on a real store holding a GB18030 message (MSH-18) whose CX-4 is
    a Chinese name, and a refused message: the CX-4 printed as sent (not mojibake), and nothing of
    the patients (names, numbers, birth dates) in the output."""
    settings = Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0)
    with Engine(settings) as eng, TestClient(create_app(eng)) as client:
        client.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("t", "system/*.cruds")
        gb = adt("CG1", "GB771^^^病案科^MR", "欧阳^娜娜", "19610101", "F").replace("|2.5.1\r", "|2.5.1|||||CHN|GB 18030-2000\r", 1)
        assert ack_code_of(post(client, gb, codec="gb18030")) == "AA"
        refused = adt("CG2", "GB772\\F\\X^^^HISQ^MR", "司马^光", "19620202", "M")
        assert ack_code_of(post(client, refused)) == "AE"
    assert identity_authorities(argparse.Namespace(), settings) == 0
    out = capsys.readouterr().out
    assert "\t病案科\t1\tapart" in out, out
    for private in ("欧阳", "娜娜", "GB771", "司马", "GB772", "1961", "1962"):
        assert private not in out, out


def test_a_batch_does_not_make_its_sender_the_registrar_of_an_unknown_record(http: TestClient) -> None:
    """FXU's registration cannot be told (its Provenance deleted over /fhir, as for a record a FHIR
    client made): the LIS's A08 restating it as another person is refused alone. A LIS batch of an
    A08 restating FXU as the same person, then that A08: refused too, the record keeps its person."""
    assert ack_code_of(post(http, adt("FXU1", "FXU^^^FNXRMYY^MR", "曹^一", "19550505", "M"))) == "AA"
    (record,) = patients(http, f"{MRN}|FXU")
    for entry in http.get("/fhir/Provenance", params={"target": f"Patient/{record['id']}"}).json().get("entry", []):
        assert http.delete(f"/fhir/Provenance/{entry['resource']['id']}").status_code in (200, 204)
    alone = post(http, adt("FXU2", "FXU^^^FNXRMYY^MR", "魏^二", "19930303", "F", event="A08", app="LIS"))
    assert ack_code_of(alone) == "AE", alone
    ack = post(http, _batch(adt("FXU3", "FXU^^^FNXRMYY^MR", "曹^壹", "19550505", "M", event="A08", app="LIS"),
                            adt("FXU4", "FXU^^^FNXRMYY^MR", "魏^二", "19930303", "F", event="A08", app="LIS")))
    assert b"MSA|AE|FXU4" in ack, ack
    assert [p["gender"] for p in patients(http, f"{MRN}|FXU")] == ["male"]


def test_the_kept_apart_count_is_one_per_message_filed(engine: Engine, http: TestClient) -> None:
    """The HIS holds FXK under its MRN. A message under CX-4 "HISK" with FXK (no birth date: kept apart,
    ident38): counted once; the same
    bytes sent again (answered from the message store): not counted again; a message under "HISK"
    refused for another reason (a result naming another person under the HIS record): not counted."""
    def count() -> int:
        r = http.get("/admin/fidelity", params={"institution": "FNXRMYY"}, headers=_ops(engine))
        return r.json()["institutions"].get("FNXRMYY", {}).get("kept_apart", {}).get("HISK", 0)

    assert ack_code_of(post(http, adt("FXK1", "FXK^^^FNXRMYY^MR", "梁^一", "19600101", "M"))) == "AA"
    first = oru("FXK2", "FXK^^^HISK^MR", "梁^一", "", "M", "FXKGLU")
    assert ack_code_of(post(http, first)) == "AA"
    assert count() == 1
    post(http, first)
    assert count() == 1
    refused = ("MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201101500||ORU^R01^ORU_R01|FXK3|P|2.5.1\r"
               "PID|1||FXK^^^HISK^MR||林^二||19990909|F\r"
               "OBR|1|OFXK3|LFXK3|FXKT^FXKT^L|||20261201083000||||G|||20261201083500|BLD||||||||20261201091000|||F\r"
               "OBX|1|NM|FXKT^FXKT^L||5.6|mmol/L|||||F|||20261201090000\r")
    assert ack_code_of(post(http, refused)) == "AE"
    assert count() == 1


def test_a_refused_message_does_not_make_its_sender_the_registrar_of_anothers_record(http: TestClient) -> None:
    """The HIS's A04 "FXR1" is refused (``\\\\F\\\\`` in its MRN), kept under (FNXRMYY, FXR1). The LIS's A04
    "FXR1" then registers FXR (its MSH-10 counter met the HIS's). The HIS's A08 restating FXR as
    another person must be refused (the LIS registered it); the record keeps its person."""
    assert ack_code_of(post(http, adt("FXR1", "FXR\\F\\Q^^^FNXRMYY^MR", "卢^一", "19700101", "M"))) == "AE"
    assert ack_code_of(post(http, adt("FXR1", "FXR^^^FNXRMYY^MR", "邓^二", "19800202", "F", app="LIS"))) == "AA"
    ack = post(http, adt("FXR2", "FXR^^^FNXRMYY^MR", "卢^一", "19700101", "M", event="A08"))
    assert ack_code_of(ack) == "AE", ack
    assert [p["gender"] for p in patients(http, f"{MRN}|FXR")] == ["female"]
