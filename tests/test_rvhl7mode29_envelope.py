"""Review of hl7mode29 (twenty-ninth round, rvhl7mode29): MSH-11 judged at the envelope, bytes before MSH, batch
trailer counts, the ``HUREN_PROCESSING_IDS`` setting. Real bytes through ``POST /hl7v2`` (TestClient) and a real
MLLP socket into real engines. Each test here FAILS on f6fe789a: findings for a fixer, not xfails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.messages import PROCESSED, QUARANTINED, message_id
from engine.settings import Settings
from tests.hl7_calls import mllp
from tests.test_hl7mode29 import adt, errs, patients, post, trailer


def client(engine: Engine) -> TestClient:
    c = TestClient(create_app(engine))
    c.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("rvm29", "system/*.cruds")
    return c


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    root = tmp_path_factory.mktemp("rvm29")
    with Engine(Settings(data_dir=root / "var", http_port=0, mllp_port=0)) as eng:
        yield eng


@pytest.fixture(scope="module")
def http(engine: Engine) -> Iterator[TestClient]:
    with client(engine) as c:
        yield c


# --- 1. a T message accepted before this round, replayed now ------------------------------------------------

def test_replaying_a_t_message_accepted_before_does_not_disown_its_stored_data(tmp_path: Path) -> None:
    """Before this round every ``T`` message was processed like ``P`` (its Patient, Encounter in the repository).
    An operator may replay any stored message (``/admin/quarantine/{id}/replay``: "a resend of one accepted before
    changes nothing"). Now the replay answers AR 202, the record turns QUARANTINED with an ERR saying "not stored
    as clinical data", while the Patient and Encounter it wrote stay in the repository, still counted; an identical
    resend of that message, answered AA before, is then answered AR. The record and the repository disagree."""
    data = tmp_path / "var"
    with Engine(Settings(data_dir=data, http_port=0, mllp_port=0, processing_ids="P,T")) as old, client(old) as c:
        assert ack_code_of(post(c, adt("OLD1", "T"))) == "AA"  # stored as T was before this round
    with Engine(Settings(data_dir=data, http_port=0, mllp_port=0)) as eng, client(eng) as c:
        doc_id = message_id("FNXRMYY", "OLD1")
        assert eng.ingestor.messages.get(doc_id)["status"] == PROCESSED and patients(c, "OLD1") == 1
        r = c.post(f"/admin/quarantine/{doc_id}/replay")
        assert r.status_code == 200, r.text
        doc = eng.ingestor.messages.get(doc_id)
        stored = patients(c, "OLD1")
        assert not (doc["status"] == QUARANTINED and stored), (
            f"record {doc['status']} ({r.json()['errors']}) while its Patient is in the repository ({stored})")
        assert ack_code_of(post(c, adt("OLD1", "T"))) == "AA"  # the recorded answer of what was accepted


# --- 2. "MSH" in the text before MSH: only the "MSH " neighbour was mended ---------------------------------

@pytest.mark.parametrize("text", [b"note: MSH-10 was resent\r\n", b"-- MSH: follows --\n", b"check MSH.7 below\r"])
def test_msh_followed_by_punctuation_in_the_stray_text_is_not_the_segment(engine: Engine, http: TestClient,
                                                                         text: bytes) -> None:
    """``_MSH_START`` takes "MSH" and any printable non-alphanumeric as the segment, so "MSH-10", "MSH:", "MSH."
    in a stray line is read as MSH with "-", ":" or "." as the field separator: the whole message is refused AR
    (MSH-2 invalid) with an ACK written in those delimiters, where "resent MSH follows" (the probed case, a space)
    gets AA + W 100. MSH is a segment: it begins a line (or the body)."""
    control = "PX" + str(len(text)) + chr(65 + text[0] % 26)
    ack = post(http, text + adt(control))
    assert ack_code_of(ack) == "AA" and ack.startswith(b"MSH|^~\\&|"), ack
    assert [e[2:5] for e in errs(ack)] == [["MSH^1", "100^Segment sequence error^HL70357", "W"]], ack
    assert patients(http, control) == 1


def test_msh_dash_in_the_stray_text_over_mllp(engine: Engine, http: TestClient) -> None:
    (ack,) = mllp(engine, b"HIS resend of MSH-10 PM1\r\n" + adt("PM1"))
    assert ack_code_of(ack) == "AA", ack
    assert patients(http, "PM1") == 1


# --- 3. FTS-1 of a file whose messages are in no BHS ----------------------------------------------------------

def test_a_file_of_bare_messages_counted_one_batch_is_not_told_to_resend(engine: Engine, http: TestClient) -> None:
    """``FHS`` + two messages + ``FTS|1``: the batch group's ``BHS`` and ``BTS`` are optional (2.10.3,
    ``[FHS] { [BHS] { MSH... } [BTS] } [FTS]``), so the sender's one batch is right; both messages are answered
    AA. The answering FTS says "the file held 0 batches ... send the missing ones again" (and a warning is
    logged): a sender following it resends what was already taken; nothing is missing."""
    body = b"FHS|^~\\&|HIS|FNXRMYY\r" + adt("FB1") + adt("FB2") + b"FTS|1\r"
    ack = post(http, body)
    assert [s.split("|")[1] for s in ack.decode().split("\r") if s.startswith("MSA")] == ["AA", "AA"], ack
    fts = trailer(ack, "FTS")
    assert not any("missing" in f for f in fts), fts


# --- 4. the setting read at start ---------------------------------------------------------------------------

def test_processing_ids_as_a_toml_list_is_read_or_refused_by_name(tmp_path: Path) -> None:
    """HUREN_CONFIG (TOML) is the documented other way to set it, and ``processing_ids = ["P", "T"]`` is how TOML
    writes a list: ``parse_ids`` calls ``str.replace`` on the list, an AttributeError with no setting named."""
    config = tmp_path / "huren.toml"
    config.write_text('processing_ids = ["P", "T"]\n', encoding="utf-8")
    settings = Settings.from_env({"HUREN_CONFIG": str(config)})
    try:
        ids = settings.accepted_processing_ids
    except ValueError as exc:
        assert "processing" in str(exc).lower()
    else:
        assert ids == frozenset({"P", "T"})


def test_a_bad_processing_ids_stops_the_start_before_the_data_dir_is_written(tmp_path: Path) -> None:
    """"A value outside table 0103 stops the start": it does, but only at ``build_ingestor``, the last step of
    ``Engine.__init__``, after the store, signing keys and audit database were created in the data dir (and the
    audit background thread started, left running). A mistyped setting on a first start leaves a half-made node."""
    data = tmp_path / "var"
    with pytest.raises(ValueError, match="0103"):
        Engine(Settings(data_dir=data, http_port=0, mllp_port=0, processing_ids="P,X"))
    made = sorted(p.name for p in data.iterdir()) if data.exists() else []
    assert not made, made


def test_a_bts1_echoed_in_the_comment_keeps_the_batch_delimiters_escaped(engine: Engine, http: TestClient) -> None:
    """``BTS|1^2\\X`` (not a count): the answering BTS-2 (ST) quotes it through ``repr`` and only the field separator
    is replaced, so a raw component separator ``^`` and a doubled escape character ``\\\\`` go back inside an ST
    field; read by the sender, BTS-2 splits into components and ``\\\\X...`` is a broken escape sequence. ERR-8
    escapes what it quotes (hl7left28); this comment does not."""
    ack = post(http, b"BHS|^~\\&|HIS|FNXRMYY\r" + adt("BD1") + b"BTS|1^2\\X\r")
    comment = trailer(ack, "BTS")[2]
    assert "^" not in comment and "\\\\" not in comment, comment
