"""uifix26: what the review of uimend26 left to say -- the two times of an R98 note told apart
within one second, and the staff pages' own client still unnamed in "谁看过我的档案" while an
app registered without a name is said by its client id (who.js rendered in node)."""

from __future__ import annotations

from engine.recognition.review_note import review_note
from mappings.pagewords import PageWords
from tests.test_rvrvui26_who import _render


def _held(held: str, placed: str) -> str:
    return (f"reason contradicted by records: huren held DiagnosticReport/p-1 since {held}, "
            f"before the order was placed ({placed})")


def test_uifix26_note_times_within_one_second_keep_their_order() -> None:
    names = PageWords(None).current()
    apart = review_note(_held("2025-03-13T16:00:00Z", "2025-03-13T16:00:05Z"), names)
    assert "存入 2025年3月14日 00:00:00，收到医嘱 2025年3月14日 00:00:05" in apart, apart  # seconds as before
    same = review_note(_held("2025-03-13T16:00:05.120000Z", "2025-03-13T16:00:05.450000Z"), names)
    assert "存入 2025年3月14日 00:00:05.120，收到医嘱 2025年3月14日 00:00:05.450" in same, same
    same_ms = review_note(_held("2025-03-13T16:00:05.120001Z", "2025-03-13T16:00:05.120900Z"), names)
    assert "00:00:05.120001" in same_ms and "00:00:05.120900" in same_ms, same_ms


ENTRY = {"when": "2026-03-14T02:30:00Z", "who": "dr-lin", "who_name": "林看", "role": "user", "what": "read",
         "resource_types": ["Observation"], "outcome": "success", "record": "fn-li"}


def test_uifix26_staff_pages_unnamed_other_apps_named() -> None:
    staff = _render([{**ENTRY, "via_app": "huren-staff-pages", "via_app_name": "", "via_staff_pages": True}])
    assert "林看" in staff and "通过" not in staff and "huren-staff-pages" not in staff, staff
    named = _render([{**ENTRY, "via_app": "ehr-viewer", "via_app_name": "区域影像浏览", "via_staff_pages": False}])
    assert "区域影像浏览" in named and "ehr-viewer" not in named, named
    unnamed = _render([{**ENTRY, "via_app": "ehr-viewer", "via_app_name": "", "via_staff_pages": False}])
    assert "ehr-viewer" in unnamed, unnamed
