"""uifix26: the evidence page (in Chromium, over the probe's month of HL7) shows the R98 note with the
held result named, and keeps the engine's recorded sentence one click away beneath it."""

from __future__ import annotations

import re

from tests.test_probeui26_pages import (  # noqa: F401 - site, _tab, tab, desk: fixtures
    _open_flag,
    _tab,
    desk,
    site,
    staff_sign_in,
    tab,
)
from tests.test_reports_ui import Browser


def test_uifix26_evidence_keeps_the_recorded_sentence_beneath_the_note(site, desk: Browser) -> None:  # noqa: F811
    engine, base = site
    staff_sign_in(desk, engine, base, "li.fold", "auditor", "李折")
    facts = _open_flag(desk, "R98")
    note = facts.split("复核提示 Review note", 1)[1]
    assert "检验检查报告 " in note and "记录原文 As recorded" in note, note
    assert not re.search(r"\d{4}-\d{2}-\d{2}T", note), note  # folded: not read until opened
    desk.eval("document.querySelector('#ev-facts details.recorded summary').click(); true")
    recorded = desk.eval("document.querySelector('#ev-facts details.recorded').innerText")
    assert "reason contradicted by records: huren held DiagnosticReport/" in recorded, recorded
    held = re.search(r"DiagnosticReport/(\S+) since", recorded).group(1)
    assert held in note, (held, note)
