"""The check rows' index on ``day`` alone, made by earlier versions, is dropped when recognition
opens a store (on SQLite and on mongomock, through the real stores): nothing queries the day
alone any more (an ID-number correction asks ``(person, item, day)``), so it was write cost only.
Opening a store that never had it, or opening twice, is no error."""

from __future__ import annotations

from engine.engine import Engine
from engine.recognition.service import Recognition
from engine.settings import Settings


def _names(engine: Engine) -> set[str]:
    coll = engine.recognition.checks.coll
    raw = getattr(coll, "raw", None)
    if raw is not None:  # MongoDB: the index names create_index gave
        return set(raw.index_information())
    rows = coll.store.query("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
                            (coll.table.strip('"'),))
    return {r[0] for r in rows}


def test_the_day_index_of_the_check_rows_is_dropped_on_open(backend_settings: Settings) -> None:
    engine = Engine(backend_settings)
    try:
        engine.recognition.checks.ensure_index(["day"])  # as an earlier version left it
        before = _names(engine)
        assert {"ix_recognition_checks_day", "day_1"} & before, before
        Recognition.for_engine(engine)  # recognition opens the same store again
        Recognition.for_engine(engine)  # already gone: no error
        after = _names(engine)
        assert not {"ix_recognition_checks_day", "day_1"} & after, after
        assert {"ix_recognition_checks_person_item_day", "person_1_item_1_day_1"} & after, after
    finally:
        engine.close()
