"""A message's raw bytes are base64-encoded once on the ingest path (fortieth round, perf40).

The in-flight journal (``engine.inflight``) records a batch's raw messages as base64 text before the
batch is processed, and the message store keeps each message's raw bytes as base64 text in its
document (``engine.messages``): the same text, made twice a message (~31 k instructions of a 1.4 KB
lab result each under callgrind). Now the ingest makes it once (``engine.messages.raw_text``) and
hands it to both. Sent over real MLLP to the real engine, on both backends: each message's bytes are
encoded once, and the journal's record, the stored document and the bytes sent agree exactly.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters.hl7v2.ack import ack_code_of
from bench.ingest import oru_lab
from engine.engine import Engine
from engine.inflight import InFlightJournal
from engine.messages import message_id, raw_of, raw_text
from engine.settings import Settings
from tests.conftest import mllp_send, running_mllp

NUMBERS = range(40_100, 40_104)


def test_each_message_encoded_once_and_kept_exactly(backend_settings: Settings,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    sent = [oru_lab(n) for n in NUMBERS]
    encodes: dict[bytes, int] = {}
    real = base64.b64encode

    def counted(data: Any, *args: Any, **kwargs: Any) -> bytes:
        encodes[bytes(data)] = encodes.get(bytes(data), 0) + 1
        return real(data, *args, **kwargs)

    monkeypatch.setattr(base64, "b64encode", counted)
    journaled: list[dict[str, Any]] = []
    with Engine(backend_settings) as engine:
        journal = engine.ingestor.journal
        assert journal is not None
        begin = journal.begin

        def recorded(messages: Any, encoded: Any = None) -> None:
            begin(messages, encoded)
            assert journal._path is not None
            journaled.extend(orjson.loads(journal._path.read_bytes())["m"])

        monkeypatch.setattr(journal, "begin", recorded)
        with running_mllp(engine) as port:
            acks = [mllp_send(port, raw) for raw in sent]
        assert [ack_code_of(a) for a in acks] == ["AA"] * len(sent)
        for raw in sent:
            assert encodes.get(raw) == 1, f"{raw[:40]!r}... encoded {encodes.get(raw)} times"
            doc = engine.ingestor.messages.get(message_id("FNXRMYY", raw.split(b"|")[9].decode()))
            assert doc is not None
            assert doc["raw"] == real(raw).decode("ascii") == raw_text(raw)
            assert raw_of(doc) == raw
        assert sorted(m["raw"] for m in journaled) == sorted(real(raw).decode("ascii") for raw in sent)


def test_journal_record_the_same_with_the_text_given_or_made(tmp_path: Path) -> None:
    """``begin(messages, encoded)`` writes the very line ``begin(messages)`` writes; a count that
    does not match the messages is refused (it would record another message's bytes)."""
    batch = [(oru_lab(n), "mllp", "10.0.0.5:4000", n % 3) for n in NUMBERS]
    lines = []
    for encoded in (None, [raw_text(raw) for raw, *_ in batch]):
        journal = InFlightJournal(tmp_path / ("given" if encoded else "made"))
        journal.begin(batch, encoded)
        assert journal._path is not None
        lines.append(journal._path.read_bytes())
        journal.close()
    assert lines[0] == lines[1]
    record = orjson.loads(lines[0])
    assert [base64.b64decode(m["raw"]) for m in record["m"]] == [raw for raw, *_ in batch]
    journal = InFlightJournal(tmp_path / "short")
    with pytest.raises(ValueError, match="3 encoded texts for 4 messages"):
        journal.begin(batch, [raw_text(raw) for raw, *_ in batch[:3]])
    journal.close()
