"""The HR mark of a later version is that version's own: a result no longer recognisable loses it.

The mark (``Recognition.mark_hr``) labels the version a writer sends, before the merge rules
combine it with the stored one. An HL7 v2 message states only what it carries (``keep-if-absent``:
an absent element keeps the stored value), and a converted result carries no ``meta``, so a
correction that made a result no longer recognisable -- sent again as entered in error (OBX-11 W),
or cancelled (X), or coded as no recognition item -- kept the HR tags of the version before: the
resident's record showed "HR 互认" on a result entered in error, and a ``_tag`` search found it.
The repository now labels the combined version again (``add_mark``), so the stored version's
tags are what the mark says of it. Sent through the real ingest path, message by message.
"""

from __future__ import annotations

import pytest

from bench.ingest import oru_lab
from engine.engine import Engine

ALT = "ALT^丙氨酸氨基转移酶^L"
HR = "urn:huren:hr-scope"


def _sent_again(n: int, control: str, *, alt_status: str = "F", alt_code: str = ALT) -> bytes:
    """Blood count ``n`` again under MSH-10 ``control`` (the same ids), its ALT's OBX-11 and OBX-3
    as given."""
    text = oru_lab(n).decode("utf-8").replace(f"|LAB{n:09d}|P|", f"|{control}|P|")
    alt = next(seg for seg in text.split("\r") if seg.startswith("OBX|12|"))
    fields = alt.split("|")
    fields[3], fields[11] = alt_code, alt_status
    return text.replace(alt, "|".join(fields)).encode("utf-8")


def _alt(engine: Engine) -> dict:
    found = engine.repository.search("Observation", [("code", "ALT")]).resources
    assert len(found) == 1
    return found[0]


def _hr(resource: dict) -> list[str]:
    return sorted(t["code"] for t in (resource.get("meta") or {}).get("tag") or () if t.get("system") == HR)


@pytest.mark.parametrize(("status", "code", "why"), [
    ("W", ALT, "entered in error"),
    ("X", ALT, "cancelled"),
    ("F", "ALT^丙氨酸氨基转移酶^LN", "no recognition item"),
])
def test_a_result_no_longer_recognisable_loses_its_hr_mark(engine: Engine, status: str, code: str, why: str) -> None:
    first = engine.ingestor.process([(oru_lab(1), "mllp", "t")])[0]
    assert first.code == "AA"
    before = _alt(engine)
    assert _hr(before) == ["YC", "community"]  # final, FNXRMYY passed QC for LFT
    again = engine.ingestor.process([(_sent_again(1, "AGAIN", alt_status=status, alt_code=code), "mllp", "t")])[0]
    assert again.code == "AA", again.ack
    after = _alt(engine)
    assert after["meta"]["versionId"] == "2", why
    assert _hr(after) == [], why
    # and the recognition index agrees: the result no longer stands for a recognisable test
    entry = engine.recognition.index.get(f"Observation/{after['id']}")
    assert entry is None or entry["status"] in ("cancelled", "entered-in-error"), entry


def test_a_correction_still_recognisable_keeps_its_hr_mark(engine: Engine) -> None:
    engine.ingestor.process([(oru_lab(1), "mllp", "t")])
    again = engine.ingestor.process([(_sent_again(1, "AGAIN", alt_status="C"), "mllp", "t")])[0]
    assert again.code == "AA", again.ack
    after = _alt(engine)
    assert after["status"] == "corrected" and after["meta"]["versionId"] == "2"
    assert _hr(after) == ["YC", "community"]
    # other tags than the mark's stay as they are
    assert [t for t in after["meta"].get("tag") or () if t.get("system") != HR] == \
        [t for t in _alt_versions_first(engine, after["id"]).get("meta", {}).get("tag") or () if t.get("system") != HR]


def _alt_versions_first(engine: Engine, rid: str) -> dict:
    return engine.repository.history("Observation", rid)[-1]
