"""The recognition hook's shortcuts decide exactly as the full decision.

Two shortcuts spare the hook most of its work for an ingest batch: a result built from a
converter plan that is no recognition item is passed over by the HR mark and the hook after one
look-up (``Recognition._not_item``), and a test alone in its order's window is decided
"retested" from its order's check row without building the order, the candidates and the
decision (``Recognition._alone_in_window``). Here the same messages -- the shipped demo month
(merges, cancellations, corrections, R98, self-pay) and 12-OBX reports of residents who repeat
within the batch at the same and at another institution, with and without a re-test reason --
are sent twice: one message per batch with both shortcuts turned off (the full decision for
every result), and all in one batch with them on. Every flag, check row, tally, index entry,
DetectedIssue, patient index record, Patient and ACK warning must be the same, on SQLite and on
the MongoDB backend (mongomock).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.ingest import oru_lab
from engine.engine import Engine
from engine.recognition.service import Recognition
from tests.test_recognition_batch import FEEDS, _in_one_batch, _settings, _state, _warnings

REASON = "urn:huren:recognition-reason"


def _at(raw: bytes, institution: str, reason: str | None = None) -> bytes:
    """The bench's blood count sent by ``institution`` (MSH-4, the MRN's and the visit's
    authority), with ``reason`` as the order's re-test reason (ORC-16) when given."""
    text = raw.decode("utf-8").replace("FNXRMYY", institution)
    if reason:
        head, _, rest = text.partition("\rORC|")
        fields = rest.split("\r", 1)
        orc = fields[0].split("|")
        orc += [""] * (16 - len(orc))
        orc[15] = f"{reason}^{reason}^{REASON}"
        text = head + "\rORC|" + "|".join(orc) + "\r" + fields[1]
    return text.encode("utf-8")


def _messages() -> list[tuple[bytes, str, str]]:
    lab = [
        oru_lab(3), oru_lab(4), oru_lab(3 + 499),  # the same resident twice at one institution, one day
        oru_lab(5), _at(oru_lab(5 + 499), "FNYLWSY"),  # repeated at another institution: not payable
        oru_lab(6), _at(oru_lab(6 + 499), "FNYLWSY", "R01"),  # with a justifying reason
        oru_lab(7), _at(oru_lab(7 + 499), "FNYLWSY", "R05"),  # self-pay
        _at(oru_lab(8), "FNYLWSY"), oru_lab(8 + 499),  # the other way round
    ]
    return [(path.read_bytes(), "file", f"file:{path.name}") for path in FEEDS] + \
        [(raw, "file", "file:lab") for raw in lab]


@pytest.mark.parametrize("backend", ["sqlite", "mongomock"])
def test_the_shortcuts_decide_as_the_full_decision(tmp_path: Path, backend: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    raws = _messages()
    with monkeypatch.context() as off:
        off.setattr(Recognition, "_not_item", lambda self, resource: False)
        off.setattr(Recognition, "_alone_in_window", lambda self, member, order_ref, window_days: False)
        with Engine(_settings(tmp_path, backend, "full")) as engine:
            full = [_warnings(engine.ingestor.process([raw])[0].ack) for raw in raws]
            expected = _state(engine)

    taken = {"alone": 0, "not_item": 0}
    alone, not_item = Recognition._alone_in_window, Recognition._not_item

    def counted_alone(self: Recognition, *args: object) -> bool:
        found = alone(self, *args)  # type: ignore[arg-type]
        taken["alone"] += found
        return found

    def counted_not_item(self: Recognition, resource: dict) -> bool:
        found = not_item(self, resource)
        taken["not_item"] += found
        return found

    monkeypatch.setattr(Recognition, "_alone_in_window", counted_alone)
    monkeypatch.setattr(Recognition, "_not_item", counted_not_item)
    warnings, state = _in_one_batch(tmp_path, backend, "full", "short", raws)
    assert warnings == full
    assert state == expected

    assert taken["alone"] > 10 and taken["not_item"] > 100, taken  # the shortcuts were taken
    statuses = {flag["status"] for flag in expected["flags"]}
    assert {"flagged", "justified", "self_pay"} <= statuses, statuses  # and full decisions made
    assert any(check.get("recognisable") for check in expected["checks"])
