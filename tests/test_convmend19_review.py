"""What the review of conv19 found (nineteenth round, convmend19); real bytes over MLLP, read via ``/fhir``.

- an ORU^R01 of two patients (two PATIENT_RESULT groups) filed the second patient's order and
  results under the first (AA); orders, and the template-converted messages, alike;
- an ADT OBX of one test and time re-sent after another test was stored a second time (its key
  followed OBX-1);
- ``ISO-8859-1`` and other spellings of Latin-1 let GB 18030 through as mojibake; under a site's
  set the ``\\X..\\`` escapes were still read in MSH-18's Latin-1;
- a sender naming itself in Chinese (MSH-4 阜宁县中医院, a shipped alias) never met its ``charsets``
  entry: the header read in Latin-1 matched no alias.
"""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from engine.settings import Settings
from tests.test_conv13_orders import written
from tests.test_conv19_charsets import adt as latin_adt
from tests.test_conv19_charsets import reading
from tests.test_conv19_hunt import adt as adt_with_obx
from tests.test_convert11_thinner import fhir, send  # noqa: F401
from tests.test_ingest_durability import err_fields

# -- 2. never one patient's data under another ------------------------------------------------------


def two_patients_oru(control: str) -> bytes:
    return ("MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201080000||ORU^R01^ORU_R01|" + control + "|P|2.5.1\r"
            "PID|1||ZYA^^^FNXRMYY^MR||张^三||19850412|M\r"
            "OBR|1|ORD-A1|LAB-A1|GLU^血糖^L|||20261201083000||||||||||||||20261201093000|||F\r"
            "OBX|1|NM|GLU^血糖^L||5.1|mmol/L|||||F\r"
            "PID|2||ZYB^^^FNXRMYY^MR||李^四||19900101|F\r"
            "OBR|1|ORD-B1|LAB-B1|GLU^血糖^L|||20261201083000||||||||||||||20261201093000|||F\r"
            "OBX|1|NM|GLU^血糖^L||5.6|mmol/L|||||F\r").encode()


def refused_at_second_pid(ack: bytes) -> None:
    assert ack_code_of(ack) == "AE", ack
    assert [e for e in err_fields(ack) if e[2].startswith("PID^2") and e[4] == "E"], ack


def test_a_result_message_of_two_patients_files_nothing_under_the_first(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    (ack,) = send(engine, two_patients_oru("TP1"))
    refused_at_second_pid(ack)  # was AA, 李四's glucose 5.6 filed under 张三
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "TP1"))
    assert doc is not None and not doc.get("resources") and doc.get("raw"), doc
    found = fhir.get("/fhir/Observation", params={"code": "GLU"}).json()
    assert not found.get("entry"), found


def test_an_order_message_of_two_patients_is_refused(engine: Engine) -> None:
    msg = ("MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201080000||ORM^O01^ORM_O01|TP2|P|2.5.1\r"
           "PID|1||ZYA^^^FNXRMYY^MR||张^三||19850412|M\r"
           "ORC|NW|ORD-A2|||||||20261201080000\rOBR|1|ORD-A2||GLU^血糖^L|||20261201080000\r"
           "PID|2||ZYB^^^FNXRMYY^MR||李^四||19900101|F\r"
           "ORC|NW|ORD-B2|||||||20261201080000\rOBR|1|ORD-B2||GLU^血糖^L|||20261201080000\r").encode()
    (ack,) = send(engine, msg)
    refused_at_second_pid(ack)


def test_a_template_message_of_two_patients_is_refused(engine: Engine) -> None:
    # a schedule message (SIU^S12, template-converted): its PATIENT group repeats in the standard
    msg = ("MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201080000||SIU^S12^SIU_S12|TP3|P|2.5.1\r"
           "SCH|AP1^HIS|||||||||30|min|^^30^20261202090000^20261202093000|||||D7^张^医生||||||||||BOOKED\r"
           "PID|1||ZYA^^^FNXRMYY^MR||张^三||19850412|M\r"
           "PID|2||ZYB^^^FNXRMYY^MR||李^四||19900101|F\r"
           "RGS|1\r").encode()
    (ack,) = send(engine, msg)
    refused_at_second_pid(ack)


# -- 3. a re-sent ADT result is the same result ------------------------------------------------------


def test_a_resent_result_after_another_test_is_not_stored_twice(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    tp1 = "NM|TP^总蛋白^L||7.3|g/dL|||||F|||20261201090000"
    tp2 = "NM|TP^总蛋白^L||6.4|g/dL|||||F|||20261201090000"
    height = "NM|HT^身高^L||170|cm|||||F|||20261201090000"
    acks = send(engine, adt_with_obx("RO1", tp1, tp2), adt_with_obx("RO2", height, tp1, tp2))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    found = fhir.get("/fhir/Observation", params={"code": "TP"}).json()
    # was [6.4, 6.4, 7.3]: the A08's second TP (OBX-1 3) took another key than the A01's (OBX-1 2)
    assert sorted(e["resource"]["valueQuantity"]["value"] for e in found.get("entry", [])) == [6.4, 7.3]


def test_results_told_apart_by_sub_id_keep_their_keys_in_any_order(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    tp1 = "NM|TP^总蛋白^L|1|7.3|g/dL|||||F|||20261201090000"
    tp2 = "NM|TP^总蛋白^L|2|6.4|g/dL|||||F|||20261201090000"
    tp2_corrected = "NM|TP^总蛋白^L|2|6.5|g/dL|||||C|||20261201090000"
    acks = send(engine, adt_with_obx("RS1", tp1, tp2), adt_with_obx("RS2", tp2_corrected, tp1))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    found = fhir.get("/fhir/Observation", params={"code": "TP"}).json()
    assert sorted(e["resource"]["valueQuantity"]["value"] for e in found.get("entry", [])) == [6.5, 7.3]


# -- 4. Latin-1 under any spelling; escapes in the site's set -----------------------------------------


def test_every_spelling_of_latin1_is_checked(engine: Engine) -> None:
    for n, spelt in enumerate(("ISO-8859-1", "ISO8859-1", "ISO_8859-1", "latin1")):
        (ack,) = send(engine, latin_adt(f"SP{n}", "张^三", msh18=spelt).encode("gb18030"))
        assert ack_code_of(ack) == "AE", (spelt, ack)  # was AA, 张三 stored as ÕÅ ÈÝ
        assert [e for e in err_fields(ack) if e[2].startswith("PID^1^5")], (spelt, ack)


def site_with(tmp_path: Path, senders: str) -> Path:
    site = tmp_path / "site"
    (site / "hl7v2").mkdir(parents=True)
    (site / "hl7v2" / "senders.yaml").write_text(senders, "utf-8")
    return site


def test_escapes_are_read_in_the_set_the_site_names(settings: Settings, tmp_path: Path) -> None:
    site = site_with(tmp_path, "charsets:\n  FNXRMYY: GB 18030-2000\n")
    with Engine(settings.with_(site=site)) as engine, reading(engine) as reader:
        # 张 is D5C5, 三 C8FD in GB 18030; as escapes under MSH-18 8859/1
        (ack,) = send(engine, latin_adt("ES1", "\\XD5C5\\^\\XC8FD\\").encode("gb18030"))
        assert ack_code_of(ack) == "AA", ack
        (person,) = written(engine, reader, "ES1", "Patient")
        assert person["name"][0]["family"] == "张", person["name"]  # was "ÕÅ"


# -- 5. a sender naming itself in Chinese meets its charsets entry ------------------------------------


def test_a_chinese_alias_under_latin1_is_read_in_its_institutions_set(
        settings: Settings, tmp_path: Path) -> None:
    site = site_with(tmp_path, "facility_aliases:\n  阜宁县人民医院: FNXRMYY\n  阜宁县中医院: FNZYY\n"
                               "charsets:\n  FNZYY: GB 18030-2000\n")
    raw = latin_adt("AL1", "张^三").replace("|FNXRMYY|HUREN", "|阜宁县中医院|HUREN").encode("gb18030")
    with Engine(settings.with_(site=site)) as engine, reading(engine) as reader:
        (ack,) = send(engine, raw)
        assert ack_code_of(ack) == "AA", ack  # was AE at MSH-4 and PID-5, forever
        doc = engine.ingestor.messages.get(message_id("FNZYY", "AL1"))
        assert doc is not None
        (person,) = [reader.get(f"/fhir/{r}").json() for r in doc["resources"] if r.startswith("Patient/")]
        assert (person["name"][0]["family"], person["name"][0]["given"]) == ("张", ["三"]), person["name"]


def test_a_chinese_name_matching_no_alias_in_any_named_set_stays_refused(
        settings: Settings, tmp_path: Path) -> None:
    site = site_with(tmp_path, "facility_aliases:\n  阜宁县中医院: FNZYY\ncharsets:\n  FNZYY: GB 18030-2000\n")
    raw = latin_adt("AL2", "张^三").replace("|FNXRMYY|HUREN", "|某某医院|HUREN").encode("gb18030")
    with Engine(settings.with_(site=site)) as engine:
        (ack,) = send(engine, raw)
        assert ack_code_of(ack) in ("AE", "AR"), ack


def test_a_chinese_application_meets_its_own_key_not_the_star(settings: Settings, tmp_path: Path) -> None:
    # MSH-4 registered (ASCII), MSH-3 检验系统 keyed in the institution's entry, "*" (the others) real
    # Latin-1: read in Latin-1 the application matched no key, "*" was taken and 张三 stored as mojibake
    site = site_with(tmp_path, "charsets:\n  FNXRMYY: {\"*\": 8859/1, 检验系统: GB 18030-2000}\n")
    raw = latin_adt("AP1", "张^三", application="检验系统").encode("gb18030")
    with Engine(settings.with_(site=site)) as engine, reading(engine) as reader:
        (ack,) = send(engine, raw)
        assert ack_code_of(ack) == "AA", ack
        (person,) = written(engine, reader, "AP1", "Patient")
        assert (person["name"][0]["family"], person["name"][0]["given"]) == ("张", ["三"]), person["name"]
