"""GB 18030 bytes under a declared ``8859/1`` (nineteenth round, conv19); over MLLP, read via ``/fhir``.

Chinese HIS often declare ``8859/1`` in MSH-18 (their interface engine's default) and send GB 18030.
Latin-1 reads any byte, so honouring the declaration stored every Chinese name as mojibake (张三 as
``ÕÅÈý``) with AA: a wrong name, silently. Now:

- bytes a declared ISO 8859 set cannot hold as text -- C1 control bytes (0x80-0x9F), and under a
  Latin part UTF-8 text or Chinese GB 18030 text (two or more characters of two bytes from 0xA1) --
  are refused AE, ERR naming the field; the raw bytes are kept for a replay;
- the site names a sender's real character set (``hl7v2/senders.yaml`` ``charsets``, per institution
  and optionally per sending application): its messages are read in it whatever MSH-18 declares, and
  the refused message, replayed after the site reload, is stored right;
- real Latin-1 text under ``8859/1`` (Müller, µmol/L, 25°C) is read as declared, as before.
"""

from __future__ import annotations

import base64
from pathlib import Path

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.messages import QUARANTINED, message_id
from engine.settings import Settings
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import send
from tests.test_ingest_durability import err_fields


def adt(control: str, name: str, *, msh18: str = "8859/1", application: str = "HIS", note: str = "") -> str:
    return (f"MSH|^~\\&|{application}|FNXRMYY|HUREN|FNYGT|20261201091500||ADT^A04^ADT_A01|{control}|P|2.5.1"
            f"|||||CHN|{msh18}\rEVN|A04|20261201091500\rPID|1||ZY19{control}^^^FNXRMYY^MR||{name}||19850412|M"
            f"|||{note}\rPV1|1|O\r")


def patient(engine: Engine, reader: TestClient, control: str) -> dict:
    (person,) = written(engine, reader, control, "Patient")
    return person


def reading(engine: Engine) -> TestClient:
    reader = TestClient(create_app(engine))
    reader.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("reader", "system/*.cruds")
    return reader


def test_gb18030_under_a_declared_latin1_is_refused_then_read_in_the_senders_set(
        settings: Settings, tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "hl7v2").mkdir(parents=True)
    raw = adt("CS1", "张^三").encode("gb18030")
    with Engine(settings.with_(site=site)) as engine, reading(engine) as reader:
        (ack,) = send(engine, raw)
        # was AA, the Patient named "ÕÅ ÈÝ"
        assert ack_code_of(ack) == "AE", ack
        (err,) = [e for e in err_fields(ack) if e[4] == "E"]
        assert err[2].startswith("PID^1^5") and err[3].startswith("102^"), err
        assert "GB 18030" in err[8]
        doc = engine.ingestor.messages.get(message_id("FNXRMYY", "CS1"))
        assert doc is not None and doc["status"] == QUARANTINED and base64.b64decode(doc["raw"]) == raw
        assert not [r for r in doc.get("resources") or [] if r.startswith("Patient/")]

        # the site says what this sender's bytes are; the refused message, replayed, is read right
        (site / "hl7v2" / "senders.yaml").write_text("charsets:\n  FNXRMYY: GB 18030-2000\n", "utf-8")
        replayed = reader.post(f"/admin/quarantine/{doc['_id']}/replay?reload_site=true")
        assert replayed.status_code == 200 and replayed.json()["ack_code"] == "AA", replayed.json()
        assert patient(engine, reader, "CS1")["name"][0]["text"] == "张三"
        assert base64.b64decode(engine.ingestor.messages.get(doc["_id"])["raw"]) == raw  # kept as sent

        # the sender's next message under the same wrong MSH-18 is read in its set at once
        (ack,) = send(engine, adt("CS2", "李^四").encode("gb18030"))
        assert ack_code_of(ack) == "AA", ack
        assert patient(engine, reader, "CS2")["name"][0]["text"] == "李四"


def test_a_sets_per_application_and_the_rest_of_the_institution(settings: Settings, tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "hl7v2").mkdir(parents=True)
    (site / "hl7v2" / "senders.yaml").write_text(
        "charsets:\n  FNXRMYY: {LIS: GB 18030-2000, '*': 8859/1}\n", "utf-8")
    with Engine(settings.with_(site=site)) as engine, reading(engine) as reader:
        acks = send(engine, adt("CA1", "王^建国", application="LIS").encode("gb18030"),
                    adt("CA2", "Müller^Conceição Assunção", msh18="").encode("latin-1"))
        assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
        assert patient(engine, reader, "CA1")["name"][0]["text"] == "王建国"
        # the site says this application's bytes are Latin-1: read as such, even where they would
        # also read as Chinese (two accents side by side twice)
        assert patient(engine, reader, "CA2")["name"][0]["family"] == "Müller"


def test_bytes_a_declared_latin_set_cannot_hold_are_refused(engine: Engine) -> None:
    acks = send(engine,
                adt("CB1", "张^三").encode("utf-8"),  # UTF-8 under 8859/1 (E5 BC A0: a C1 byte too)
                adt("CB2", "Zoë^José", note="é".encode().decode("latin-1")).encode("latin-1"),  # Ã© in PID-11
                adt("CB3", "Li^Ming\x85").encode("latin-1"),  # a C1 control byte (NEL)
                adt("CB4", "王^建国", msh18="8859/15").encode("gb18030"))
    assert [ack_code_of(a) for a in acks] == ["AE"] * 4, acks
    located = [[e[2].split("^")[:3] for e in err_fields(a) if e[4] == "E"] for a in acks]
    assert located == [[["PID", "1", "5"]], [["PID", "1", "11"]], [["PID", "1", "5"]], [["PID", "1", "5"]]]


def test_latin1_text_under_8859_1_is_read_as_declared(engine: Engine, settings: Settings) -> None:
    acks = send(engine, adt("CL1", "Müller^José", note="25°C µmol/L Conceição").encode("latin-1"),
                adt("CL2", "Ångström^François").encode("latin-1"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    with reading(engine) as reader:
        assert patient(engine, reader, "CL1")["name"][0]["family"] == "Müller"
        assert patient(engine, reader, "CL2")["name"][0]["given"] == ["François"]


def test_windows_1252_declared_latin1_is_refused_until_the_site_names_it(settings: Settings, tmp_path: Path) -> None:
    """’ is 0x92 in Windows-1252, a C1 control code in ISO 8859-1: stored as U+0092 before."""
    site = tmp_path / "site"
    (site / "hl7v2").mkdir(parents=True)
    with Engine(settings.with_(site=site)) as engine:
        (ack,) = send(engine, adt("CW1", "O’Brien^Anne").encode("cp1252"))
        assert ack_code_of(ack) == "AE", ack
    (site / "hl7v2" / "senders.yaml").write_text("charsets:\n  FNXRMYY: cp1252\n", "utf-8")
    with Engine(settings.with_(site=site)) as engine, reading(engine) as reader:
        (ack,) = send(engine, adt("CW2", "O’Brien^Anne").encode("cp1252"))
        assert ack_code_of(ack) == "AA", ack
        assert patient(engine, reader, "CW2")["name"][0]["family"] == "O’Brien"
