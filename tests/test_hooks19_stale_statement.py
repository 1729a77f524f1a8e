"""A patient index statement made for a Patient version that was never stored does not key a
later message's results.

The patient index classifies a Patient version as it is about to be stored (its statement) and
recognition keys a record's results by that finding while the version's write group runs
(``IdentityService.same_person_number``). An ADT^A08 giving HOSPB's record of 周强 his son's name
(the index would leave it in conflict: no one's results) whose message then fails while it is
stored (here the store refuses its Encounter, as a full disk would) stored nothing -- but its
statement stayed with the ingest thread, and recognition took it for the record until something
wrote to the index again: the record's repeat blood count, in the batch redone message by message
after the failure or sent after it, was keyed to nobody -- not flagged (HOSPB paid for a
duplicate) and its order out of the recognition rate. Sent one message per batch in the order
where the failure comes last, it was flagged. Real HL7 through the ingestor, SQLite and mongomock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.engine import Engine
from tests.test_hooks19_batch_hazards import ZHOU, _a08, _engine, _order, _pid, _result

_A, _B = _pid("HOSPA", ZHOU, "MRN-A-ZHOU"), _pid("HOSPB", ZHOU, "MRN-B-ZHOU")
_SON = _pid("HOSPB", ZHOU, "MRN-B-ZHOU", name="周^小明")  # his son's name on the father's record
_FAILING = "V9FAIL"  # the visit number of the A08 whose message the store refuses


def _raw(texts: list[str]) -> list[tuple[bytes, str, str]]:
    return [(t.replace("\n", "\r").encode("utf-8"), "mllp", "t") for t in texts]


def _refused_a08() -> str:
    return _a08("HOSPB", _SON, "HOSPB-A08-SON").replace("PV1|1|O\n", f"PV1|1|O|||||||||||||||||{_FAILING}\n")


def _refuse_one(engine: Engine) -> None:
    def refuse(resource: dict[str, Any], previous: Any) -> None:
        if any(isinstance(i, dict) and i.get("value") == _FAILING for i in resource.get("identifier") or ()):
            raise RuntimeError("disk trouble for this message")

    engine.repository.add_write_guard(refuse, types={"Encounter"})


def _decided(engine: Engine) -> tuple[list[tuple[str, str]], list[tuple[str, Any, Any]]]:
    flags = sorted((f["inst"], f["status"]) for f in engine.recognition.flags.find({}))
    checks = sorted((c["inst"], c.get("person"), c.get("outcome")) for c in engine.recognition.checks.find({}))
    return flags, checks


_EXPECTED = ([("HOSPB", "flagged")], [("HOSPA", ZHOU[0], "retested"), ("HOSPB", ZHOU[0], "duplicate")])


@pytest.mark.parametrize("backend", ["sqlite", "mongomock"])
@pytest.mark.parametrize("one_by_one", [True, False])
def test_a_refused_a08_does_not_take_the_record_out_of_its_person(tmp_path: Path, backend: str,
                                                                  one_by_one: bool) -> None:
    """The record's repeat and the refused A08 in one batch (failed whole, redone message by
    message), or one message per batch: the repeat is flagged either way."""
    with _engine(tmp_path, backend, "store") as engine:
        _refuse_one(engine)
        # 周强's blood count at HOSPA, and his HOSPB record registered
        engine.ingestor.process(_raw([_order("HOSPA", _A, "A1", 5), _result("HOSPA", _A, "A1", 5),
                                      _a08("HOSPB", _B, "HOSPB-A08-0")]))
        later = _raw([_order("HOSPB", _B, "B1", 1), _result("HOSPB", _B, "B1", 1), _refused_a08()])
        outcomes = [o for raw in later for o in engine.ingestor.process([raw])] if one_by_one \
            else engine.ingestor.process(later)
        assert [o.code for o in outcomes] == ["AA", "AA", "AE"]
        assert _decided(engine) == _EXPECTED
        record = engine.repository.search("Patient", [("identifier", "MRN-B-ZHOU")]).resources[0]
        assert engine.identity.record(record["id"])["status"] == "linked"  # nothing of the A08 stored


@pytest.mark.parametrize("backend", ["sqlite", "mongomock"])
def test_a_repeat_sent_after_a_refused_a08_is_flagged(tmp_path: Path, backend: str) -> None:
    with _engine(tmp_path, backend, "store") as engine:
        _refuse_one(engine)
        engine.ingestor.process(_raw([_order("HOSPA", _A, "A1", 5), _result("HOSPA", _A, "A1", 5),
                                      _a08("HOSPB", _B, "HOSPB-A08-0")]))
        [refused] = engine.ingestor.process(_raw([_refused_a08()]))
        assert refused.code == "AE"
        for raw in _raw([_order("HOSPB", _B, "B1", 1), _result("HOSPB", _B, "B1", 1)]):
            assert [o.code for o in engine.ingestor.process([raw])] == ["AA"]
        assert _decided(engine) == _EXPECTED


@pytest.mark.parametrize("backend", ["sqlite", "mongomock"])
def test_a_refused_a08_does_not_put_the_record_back_in_its_person(tmp_path: Path, backend: str) -> None:
    """The other direction, and the worse one (a review's finding): HOSPB's record carries the
    son's name (in conflict: no one's results), his blood count is ordered there, and an A08 giving
    the record back the father's name is refused by the store. The son's result is not the father's:
    no flag against the father's prior, no index entry under the father's number (on the code
    before, the refused A08's statement keyed it to 周强 and flagged it a duplicate of his test)."""
    with _engine(tmp_path, backend, "store") as engine:
        _refuse_one(engine)
        engine.ingestor.process(_raw([_order("HOSPA", _A, "A1", 5), _result("HOSPA", _A, "A1", 5),
                                      _a08("HOSPB", _SON, "HOSPB-A08-SON0")]))
        assert [o.code for o in engine.ingestor.process(_raw([_order("HOSPB", _SON, "B1", 1)]))] == ["AA"]
        back = _a08("HOSPB", _B, "HOSPB-A08-BACK").replace("PV1|1|O\n", f"PV1|1|O|||||||||||||||||{_FAILING}\n")
        assert [o.code for o in engine.ingestor.process(_raw([back]))] == ["AE"]
        assert [o.code for o in engine.ingestor.process(_raw([_result("HOSPB", _SON, "B1", 1)]))] == ["AA"]
        record = engine.repository.search("Patient", [("identifier", "MRN-B-ZHOU")]).resources[0]
        assert engine.identity.record(record["id"])["status"] == "conflict"  # nothing of the A08 stored
        assert _decided(engine) == ([], [("HOSPA", ZHOU[0], "retested")])
