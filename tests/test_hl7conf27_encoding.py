"""HL7 v2 encoding as v2.5.1 chapter 2 says, probed with real bytes over a real MLLP socket and real HTTP
into the real engine (twenty-seventh round, hl7conf27). Messages are made up here (no public sample).

FINDINGS mended this round (each test failed on main):

- 2.7.4 ``\\Xdddd..\\`` (hexadecimal data) written byte by byte, ``\\XE5\\\\XBC\\\\XA0\\``: each byte alone is no
  character, so the name was stored as the escape text (MED); adjacent hex sequences are now read as
  one byte string in the message's character set (UTF-8, GB 18030);
- ``\\X00\\`` / ``\\X1B\\`` decoded to a NUL / ESC stored in ``Patient.name`` and ``Observation.valueString``
  (MED: an R4 string holds no control character below U+0020 but TAB, LF, CR, and the parser refuses
  those bytes raw); such hex data is now kept as sent, as bytes the character set cannot read are;
- 2.15.9.18: a message with no MSH-18 is read as UTF-8 when its bytes are valid UTF-8, else GB 18030;
  GB 18030 Chinese whose bytes happen to be valid UTF-8 (``钱伟`` C7 AE CE B0 = ``Ǯΰ``) was stored as
  that mojibake with an AA (HIGH: a wrong name, silently); now refused AE at MSH-18, kept for a replay
  once the site names the sender's set;
- bytes not valid in a declared set fall back to GB 18030, which reads almost any bytes: Latin-1 ``Müller``
  under ``UNICODE UTF-8`` was stored ``M黮ler`` with an AA (MED); a GB character whose second byte is ASCII
  is now doubted there, AE at MSH-18 (GB 2312 text under a wrong label is read as before).

Guards (right before and after): ``\\X0D0A\\`` is a line break and ``\\X09\\`` a tab in a TX value; real
UTF-8 Chinese, GB 18030 text that is not valid UTF-8, and a lone non-ASCII sign (``μmol/L``, ``José``)
without MSH-18 are read as before.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import QUARANTINED, message_id
from engine.settings import Settings
from tests import hl7_calls
from tests.hl7_calls import module_http, post, written  # noqa: F401  (the module's client)
from tests.test_convert11_thinner import send
from tests.test_ingest_durability import err_fields

GB_APP = "GBLIS"  # the one sending application the last test names a character set for


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hl7conf27") / "site"
    (path / "hl7v2").mkdir(parents=True)
    return path


@pytest.fixture(scope="module")
def engine(site: Path) -> Iterator[Engine]:
    settings = Settings(data_dir=site.parent / "var", http_port=0, mllp_port=0)
    with Engine(settings.with_(site=site)) as eng:
        yield eng


def adt(control: str, name: str, *, msh18: str = "", application: str = "HIS") -> str:
    return hl7_calls.adt(control, mrn="C27", name=name, application=application, msh_rest=f"|||||CHN|{msh18}")


def oru(control: str, value: str, *, kind: str = "TX", unit: str = "") -> str:
    return hl7_calls.oru(control, value, mrn="C27", kind=kind, unit=unit)


def name_of(engine: Engine, http: TestClient, control: str) -> dict:
    (person,) = written(engine, http, control, "Patient")
    return person["name"][0]


def test_hex_data_escaped_byte_by_byte_reads_as_one_character(engine: Engine, http: TestClient) -> None:
    utf8 = adt("HX1", "\\XE5\\\\XBC\\\\XA0\\^\\XE4\\\\XB8\\\\X89\\").encode()  # 张^三, one escape per byte
    gb = adt("HX2", "\\XC0\\\\XEE\\^\\XCB\\\\XC4\\", msh18="GB 18030-2000").encode()  # 李^四 in GB 18030
    acks = send(engine, utf8, gb)
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    assert name_of(engine, http, "HX1")["family"] == "张"  # was the escape text "\XE5\\XBC\\XA0\"
    assert name_of(engine, http, "HX1")["given"] == ["三"]
    assert name_of(engine, http, "HX2")["text"] == "李四"


def test_hex_data_of_a_control_character_is_kept_as_sent(engine: Engine, http: TestClient) -> None:
    acks = send(engine, adt("HX3", "张\\X00\\^三").encode(), oru("HX4", "a\\X1B\\b").encode())
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    (person,) = written(engine, http, "HX3", "Patient")
    (result,) = written(engine, http, "HX4", "Observation")
    for resource in (person, result):  # no control character in any stored string (was NUL / ESC)
        assert not any(ord(c) < 0x20 and c not in "\t\r\n" for c in json.dumps(resource, ensure_ascii=False))
    assert person["name"][0]["family"] == "张\\X00\\"
    assert result["valueString"] == "a\\X1B\\b"


def test_hex_line_breaks_and_tabs_still_read_as_text(engine: Engine, http: TestClient) -> None:
    (ack,) = send(engine, oru("HX5", "第一行\\X0D0A\\第二行\\X09\\完").encode())
    assert ack_code_of(ack) == "AA", ack
    (result,) = written(engine, http, "HX5", "Observation")
    assert result["valueString"].replace("\r\n", "\n") == "第一行\n第二行\t完"


def test_undeclared_gb_text_that_is_valid_utf8_is_refused_and_kept(engine: Engine, http: TestClient) -> None:
    raw = adt("GB1", "钱伟").encode("gb18030")  # C7 AE CE B0: valid UTF-8, "Ǯΰ"
    raw.decode("utf-8")  # the premise: these bytes are valid UTF-8
    ack = post(http, raw)
    assert ack_code_of(ack) == "AE", ack  # was AA, the Patient named "Ǯΰ"
    (err,) = err_fields(ack)
    assert err[2] == "MSH^1^18" and err[3].startswith("102^") and err[4] == "E", err
    assert "GB 18030" in err[8]
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "GB1"))
    assert doc is not None and doc["status"] == QUARANTINED and base64.b64decode(doc["raw"]) == raw
    assert not [r for r in doc.get("resources") or [] if r.startswith("Patient/")]


@pytest.mark.parametrize(("control", "raw", "family"), [
    ("GB2", adt("GB2", "钱伟").encode(), "钱伟"),  # the same name in UTF-8: three bytes a character
    ("GB3", adt("GB3", "张^三").encode("gb18030"), "张"),  # GB 18030 that is not valid UTF-8
    ("GB4", adt("GB4", "José^Li").encode(), "José"),  # one accented letter: no run to doubt
])
def test_undeclared_text_read_as_before(engine: Engine, http: TestClient, control: str, raw: bytes,
                                        family: str) -> None:
    ack = post(http, raw)
    assert ack_code_of(ack) == "AA", ack
    assert name_of(engine, http, control)["family"] == family


def test_undeclared_utf8_unit_sign_reads_as_before(engine: Engine, http: TestClient) -> None:
    ack = post(http, oru("GB5", "5.6", kind="NM", unit="mmol/L^μmol/L").encode())
    assert ack_code_of(ack) == "AA", ack


def test_refused_undeclared_gb_is_read_right_once_the_site_names_the_set(engine: Engine, http: TestClient,
                                                                        site: Path) -> None:
    raw = adt("GB6", "钱伟", application=GB_APP).encode("gb18030")
    assert ack_code_of(post(http, raw)) == "AE"
    (site / "hl7v2" / "senders.yaml").write_text(f"charsets:\n  FNXRMYY:\n    {GB_APP}: GB 18030-2000\n", "utf-8")
    doc_id = message_id("FNXRMYY", "GB6")
    replayed = http.post(f"/admin/quarantine/{doc_id}/replay?reload_site=true")
    assert replayed.status_code == 200 and replayed.json()["ack_code"] == "AA", replayed.json()
    assert name_of(engine, http, "GB6")["text"] == "钱伟"
    assert base64.b64decode(engine.ingestor.messages.get(doc_id)["raw"]) == raw  # kept as sent


def utf8_labelled(control: str, name: str) -> str:
    return adt(control, name, msh18="UNICODE UTF-8")


def test_latin1_under_a_utf8_declaration_is_refused_not_read_as_gb(engine: Engine, http: TestClient) -> None:
    raw = utf8_labelled("FB1", "Müller^Hans").encode("latin-1")  # FC 6C: one GB 18030 character
    ack = post(http, raw)
    assert ack_code_of(ack) == "AE", ack  # was AA, the Patient named "M黮ler"
    (err,) = err_fields(ack)
    assert err[2] == "MSH^1^18" and err[4] == "E" and "'UNICODE UTF-8'" in err[8], err
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "FB1"))
    assert doc is not None and doc["status"] == QUARANTINED and base64.b64decode(doc["raw"]) == raw


@pytest.mark.parametrize(("control", "name", "family"), [
    ("FB2", "张^三", "张"),  # GB 2312 under a UTF-8 label: read in GB 18030, as before
    ("FB3", "欧阳^娜娜", "欧阳"),
])
def test_gb_text_under_a_utf8_label_is_still_read(engine: Engine, http: TestClient, control: str, name: str,
                                                  family: str) -> None:
    ack = post(http, utf8_labelled(control, name).encode("gb18030"))
    assert ack_code_of(ack) == "AA", ack
    assert name_of(engine, http, control)["family"] == family
