"""HL7 v2 as chapter 2 says, at the envelope (twenty-ninth round, hl7mode29): real bytes over a real MLLP socket and
``POST /hl7v2`` (FastAPI's TestClient) into one real engine, read back through the message store and ``/fhir``.

* MSH-11 processing id: a node accepts ``P`` (``HUREN_PROCESSING_IDS``); ``T`` (training), ``D`` (debugging)
  and values outside table 0103 are ``AR`` 202 at ``MSH^1^11``, kept for the operator, never stored as clinical
  data; a sender the site declares (``senders.yaml`` ``production_marked_training``) has its ``T`` read as ``P``,
  said in the ACK (ERR severity I) and the stored record; MSH-11.2 (table 0207) read apart from the ID;
* batches: each MSH judged on its own; a ``BTS-1``/``FTS-1`` count the batch does not hold is reported in the
  answering trailer's comment, every whole message still answered;
* bytes before MSH: blank lines, NUL, a BOM skipped with no word; other text warned (W 100, named); a segment
  there is ``AE`` 100, nothing stored.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.messages import PROCESSED, QUARANTINED, message_id
from engine.settings import Settings
from tests.hl7_calls import mllp

ER7 = {"Content-Type": "x-application/hl7-v2+er7"}


def write_senders(site: Path, declared: dict[str, object], key: str = "production_marked_training") -> None:
    (site / "hl7v2").mkdir(parents=True, exist_ok=True)
    (site / "hl7v2" / "senders.yaml").write_text(
        yaml.safe_dump({key: declared}, allow_unicode=True), encoding="utf-8")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mode29site")
    write_senders(folder, {"FNXRMYY": ["LIS"]})  # FNXRMYY's LIS marks production T; its HIS does not
    return folder


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, site: Path) -> Iterator[Engine]:
    root = tmp_path_factory.mktemp("mode29")
    with Engine(Settings(data_dir=root / "var", http_port=0, mllp_port=0, site=site)) as eng:
        yield eng


@pytest.fixture(scope="module")
def http(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as client:
        client.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("m29", "system/*.cruds")
        yield client


def adt(control: str, processing: str = "P", *, app: str = "HIS", facility: str = "FNXRMYY",
        version: str = "2.5.1") -> bytes:
    return (f"MSH|^~\\&|{app}|{facility}|HUREN|FNYGT|20261201091500||ADT^A04^ADT_A01|{control}|{processing}|{version}\r"
            f"EVN|A04|20261201091500\rPID|1||M29{control}^^^{facility}^MR||张^三||19850412|M\rPV1|1|O\r").encode()


def post(http: TestClient, body: bytes) -> bytes:
    r = http.post("/hl7v2", content=body, headers=ER7)
    assert r.status_code == 200, r.text
    return r.content


def errs(ack: bytes) -> list[list[str]]:
    return [s.split("|") for s in ack.decode().split("\r") if s.startswith("ERR")]


def patients(http: TestClient, control: str, facility: str = "FNXRMYY") -> int:
    found = http.get("/fhir/Patient", params={"identifier": f"urn:huren:mrn:{facility}|M29{control}"}).json()
    return len(found.get("entry", []))


# --- MSH-11 ------------------------------------------------------------------------------------------

def test_training_and_debugging_are_refused_kept_and_never_stored(engine: Engine, http: TestClient) -> None:
    """T and D over both paths: AR 202 at MSH^1^11, the raw bytes in the quarantine, no patient written."""
    over_http = [post(http, adt("T1", "T")), post(http, adt("D1", "D")), post(http, adt("X1", "PRD"))]
    over_mllp = mllp(engine, adt("T2", "T"), adt("D2", "D^T"))
    for control, ack in zip(("T1", "D1", "X1", "T2", "D2"), over_http + over_mllp, strict=True):
        assert ack_code_of(ack) == "AR", ack
        assert [e[2:5] for e in errs(ack)] == [["MSH^1^11", "202^Unsupported processing id^HL70357", "E"]], ack
        doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
        assert doc["status"] == QUARANTINED and doc["ack_code"] == "AR" and doc["resources"] == []
        assert base64.b64decode(doc["raw"]).startswith(b"MSH|")
        assert patients(http, control) == 0
    assert "'T' (training)" in errs(over_http[0])[0][8] and "accepts P" in errs(over_http[0])[0][8]


def test_a_declared_senders_t_is_read_as_p_and_said_so(engine: Engine, http: TestClient) -> None:
    """senders.yaml declares FNXRMYY's LIS: its T is production, stored, the ACK and the record saying so
    (ERR severity I); the same institution's HIS is not declared: its T is refused."""
    lis = post(http, adt("L1", "T", app="LIS"))
    his = post(http, adt("L2", "T", app="HIS"))
    assert (ack_code_of(lis), ack_code_of(his)) == ("AA", "AR"), (lis, his)
    (note,) = errs(lis)
    assert note[2:5] == ["MSH^1^11", "202^Unsupported processing id^HL70357", "I"] and "read as P" in note[8], note
    assert b"|T|2.5.1" in lis.split(b"\r")[0]  # the ACK's MSH-11 echoes what was sent
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "L1"))
    assert doc["status"] == PROCESSED and any(e["severity"] == "I" and e["code"] == "202" for e in doc["errors"])
    assert patients(http, "L1") == 1 and patients(http, "L2") == 0
    (mllp_lis,) = mllp(engine, adt("L3", "T", app="LIS"))
    assert ack_code_of(mllp_lis) == "AA" and patients(http, "L3") == 1


def test_the_processing_mode_is_read_apart_from_the_id(engine: Engine, http: TestClient) -> None:
    """MSH-11.2 (table 0207): archive, restore, initial load, current processing are production messages
    (``P^T`` is never training); a mode outside the table is AR 202 at MSH^1^11^^2; an empty MSH-11 is read
    as P with W 101."""
    acks = {m: post(http, adt(f"M{i}", m)) for i, m in enumerate(("P^A", "P^R", "P^I", "P^T", "", "P^Z"))}
    assert {m: ack_code_of(a) for m, a in acks.items()} == {
        "P^A": "AA", "P^R": "AA", "P^I": "AA", "P^T": "AA", "": "AA", "P^Z": "AR"}, acks
    assert [e[2:5] for e in errs(acks["P^Z"])] == [["MSH^1^11^^2", "202^Unsupported processing id^HL70357", "E"]]
    assert [e[2:5] for e in errs(acks[""])] == [["MSH^1^11", "101^Required field missing^HL70357", "W"]]
    assert b"ERR" not in acks["P^T"] and patients(http, "M3") == 1 and patients(http, "M5") == 0


def test_a_v23_refusal_locates_msh11_in_err1(http: TestClient) -> None:
    """v2.3's ERR-1 (ELD) and MSA-3/MSA-6 carry the refusal."""
    ack = post(http, adt("V1", "D", version="2.3"))
    assert ack_code_of(ack) == "AR" and errs(ack)[0][1].startswith("MSH^1^11^202&"), ack


def test_a_refused_t_is_replayed_once_the_site_declares_its_sender(engine: Engine, http: TestClient,
                                                                   site: Path) -> None:
    """The raw message kept is replayed by the operator after the site names the sender: processed once."""
    assert ack_code_of(post(http, adt("R1", "T", app="HIS", facility="FNZYY"))) == "AR"
    doc_id = message_id("FNZYY", "R1")
    write_senders(site, {"FNXRMYY": ["LIS"], "FNZYY": "*"})
    r = http.post(f"/admin/quarantine/{doc_id}/replay", params={"reload_site": "true"})
    assert r.status_code == 200 and r.json()["ack_code"] == "AA", r.text
    assert engine.ingestor.messages.get(doc_id)["status"] == PROCESSED and patients(http, "R1", "FNZYY") == 1


def test_a_training_node_accepts_t_and_refuses_p(tmp_path: Path) -> None:
    """HUREN_PROCESSING_IDS=T (a training node): T stored, P refused; a value outside table 0103 stops the start."""
    settings = Settings.from_env({"HUREN_PROCESSING_IDS": "T", "HUREN_DATA_DIR": str(tmp_path / "var")})
    with Engine(settings.with_(http_port=0, mllp_port=0)) as eng:
        training, production = mllp(eng, adt("N1", "T"), adt("N2", "P"))
    assert (ack_code_of(training), ack_code_of(production)) == ("AA", "AR"), (training, production)
    assert "accepts T" in errs(production)[0][8]
    with pytest.raises(ValueError, match="HL7 table 0103"):
        _ = Settings(processing_ids="P,X").accepted_processing_ids


# --- batches -----------------------------------------------------------------------------------------

def batch(*messages: bytes, bts: str, fts: str) -> bytes:
    return (b"FHS|^~\\&|HIS|FNXRMYY\rBHS|^~\\&|HIS|FNXRMYY||||||B29\r" + b"".join(messages)
            + f"BTS|{bts}\rFTS|{fts}\r".encode())


def trailer(ack: bytes, name: str) -> list[str]:
    (found,) = [s.split("|") for s in ack.decode().split("\r") if s.startswith(name)]
    return found


def test_each_message_of_a_batch_is_judged_on_its_own(engine: Engine, http: TestClient) -> None:
    ack = post(http, batch(adt("B1"), adt("B2", "T"), adt("B3", "T", app="LIS"), bts="3", fts="1"))
    msa = [s.split("|")[1:3] for s in ack.decode().split("\r") if s.startswith("MSA")]
    assert msa == [["AA", "B1"], ["AR", "B2"], ["AA", "B3"]], ack
    assert trailer(ack, "BTS") == ["BTS", "3"] and trailer(ack, "FTS") == ["FTS", "1"]  # counts right: no word


def test_a_batch_trailer_count_the_batch_does_not_hold_is_reported(engine: Engine, http: TestClient) -> None:
    """BTS|5 around two messages, FTS|3 around one batch: both whole messages processed and answered, the
    answering BTS-2 / FTS-2 naming the count sent and the one held; over MLLP (one frame) as over HTTP."""
    posted = post(http, batch(adt("C1"), adt("C2"), bts="5", fts="3"))
    (framed,) = mllp(engine, batch(adt("C3"), adt("C4"), bts="x", fts="1"))
    assert [ack_code_of(a) for a in (posted, framed)] == ["AA", "AA"]
    bts = trailer(posted, "BTS")
    assert bts[1] == "2" and "BTS-1 (batch message count) says 5, the batch held 2 messages" in bts[2], bts
    fts = trailer(posted, "FTS")
    assert fts[1] == "1" and "FTS-1 (file batch count) says 3, the file held 1 batch" in fts[2], fts
    assert "BTS-1 (batch message count) 'x' is not a count" in trailer(framed, "BTS")[2]
    assert trailer(framed, "FTS") == ["FTS", "1"]
    for control in ("C1", "C2", "C3", "C4"):
        assert engine.ingestor.messages.get(message_id("FNXRMYY", control))["status"] == PROCESSED


# --- bytes before MSH --------------------------------------------------------------------------------

def test_blank_lines_padding_and_a_bom_before_msh_are_skipped_with_no_word(engine: Engine, http: TestClient) -> None:
    acks = [post(http, b"\r\n\r\n" + adt("J1")), post(http, b"\xef\xbb\xbf\n" + adt("J2"))]
    acks += mllp(engine, b"\x00\x00\r\n" + adt("J3"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 3 and not any(b"ERR" in a for a in acks), acks


def test_text_before_msh_is_named_in_a_warning(engine: Engine, http: TestClient) -> None:
    """A stray line is no segment of the message: the message (whole from MSH on) is taken, the sender told
    what was not read (W 100), the stored record keeping the warning and the raw bytes as sent."""
    (framed,) = mllp(engine, b"HIS export 2026-12-01\r\n" + adt("K1"))
    posted = post(http, b"--boundary--\r" + adt("K2"))
    named = post(http, b"resent MSH follows\n" + adt("K3"))  # "MSH" in the text is not the segment
    for ack, control, text in ((framed, "K1", "HIS export 2026-12-01"), (posted, "K2", "--boundary--"),
                               (named, "K3", "resent MSH follows")):
        assert ack_code_of(ack) == "AA", ack
        (warning,) = errs(ack)
        assert warning[2:5] == ["MSH^1", "100^Segment sequence error^HL70357", "W"] and repr(text) in warning[8]
        doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
        assert doc["status"] == PROCESSED and doc["errors"][0]["code"] == "100"
        assert base64.b64decode(doc["raw"]).startswith(text.encode())
        assert patients(http, control) == 1


def test_a_segment_before_msh_is_an_error_and_nothing_is_stored(engine: Engine, http: TestClient) -> None:
    """``EVN|...`` before MSH is a segment the message would lose: AE 100, kept, no patient written."""
    (ack,) = mllp(engine, b"EVN|A04|20261201091500\r" + adt("S1"))
    assert ack_code_of(ack) == "AE", ack
    assert [e[2:5] for e in errs(ack)] == [["MSH^1", "100^Segment sequence error^HL70357", "E"]]
    assert "'EVN'" in errs(ack)[0][8]
    assert engine.ingestor.messages.get(message_id("FNXRMYY", "S1"))["status"] == QUARANTINED
    assert patients(http, "S1") == 0


def test_a_batch_after_a_stray_line_is_read_as_a_batch(engine: Engine, http: TestClient) -> None:
    """Text before FHS made the body one message, refused whole (AE: segments before MSH): the batch is read as
    a batch now, the text a part of its own answered AR (no MSH), each message of the batch answered."""
    ack = post(http, b"batch of 2026-12-01\r\n" + batch(adt("F1"), adt("F2"), bts="2", fts="1"))
    msa = [s.split("|")[1:3] for s in ack.decode().split("\r") if s.startswith("MSA")]
    assert msa == [["AR", ""], ["AA", "F1"], ["AA", "F2"]], ack
    assert trailer(ack, "BTS") == ["BTS", "2"] and trailer(ack, "FTS") == ["FTS", "1"]
    assert patients(http, "F1") == 1 and patients(http, "F2") == 1
