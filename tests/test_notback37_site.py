"""notback37: the two new keys of ``merge.yaml`` in a site's file (schema in ``mappings/site.py``) -- a
``not_back`` step's ``merged`` (the only elements of a kept-out message merged) and a status's
``stands_with`` (the elements kept with it where it stands) are lists of element names; anything else is
refused naming the file and line. Read by the real loader, ``load_merge_file``, from a file written beside
the test, and by the shipped merge rules (``shipped``) for what the shipped file means."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.merge_rules import shipped
from mappings.site import DEFAULTS_DIR, SiteError, load_merge_file

_STEP = "{from: [final, corrected, amended], to: [registered, preliminary], merged: [note]}"
_STANDS = '      stands_with: [issued, "effective[x]", specimen]\n'


def _written(tmp_path: Path, step: str = _STEP, stands: str = _STANDS) -> Path:
    """The shipped ``merge.yaml`` with Observation.status's first ``not_back`` step and DiagnosticReport.status's
    ``stands_with`` line replaced by ``step`` and ``stands``."""
    text = (DEFAULTS_DIR / "merge.yaml").read_text(encoding="utf-8")
    assert text.count(_STEP) == 1 and text.count(_STANDS) == 1
    path = tmp_path / "merge.yaml"
    path.write_text(text.replace(_STEP, step).replace(_STANDS, stands), encoding="utf-8")
    return path


def test_the_shipped_rules_keep_all_but_the_note_and_the_reports_times() -> None:
    """What the shipped file says, as the merge reads it: the step over a final merges the note alone, the
    step over a withdrawal holds the result whole, the report's times stand with its status."""
    final, withdrawn, _alone = shipped().plan("Observation", "ORU").elements["status"].not_back
    assert final.merged == frozenset({"note"}) and not final.whole, final
    assert withdrawn.whole and "OBX-11 C or F" in withdrawn.why, withdrawn
    stands = shipped().plan("DiagnosticReport", "ORU").elements["status"].stands_with
    assert stands == frozenset({"issued", "effectiveDateTime", "effectivePeriod", "specimen"}), stands  # (status38)


def test_merged_and_stands_with_load(tmp_path: Path) -> None:
    rules = load_merge_file(_written(tmp_path, "{from: [final], to: [preliminary], merged: [note, bodySite]}",
                                     '      stands_with: [issued]\n'))
    assert rules["resources"]["Observation"]["status"]["not_back"][0]["merged"] == ["note", "bodySite"]
    assert rules["resources"]["DiagnosticReport"]["status"]["stands_with"] == ["issued"]


@pytest.mark.parametrize(("step", "stands", "named"), [
    ("{from: [final], to: [preliminary], merged: []}", _STANDS, "not_back"),
    ("{from: [final], to: [preliminary], merged: note}", _STANDS, "not_back"),
    (_STEP, "      stands_with: issued\n", "stands_with"),
    (_STEP, "      stands_with: [\"\"]\n", "stands_with")])
def test_a_key_the_schema_does_not_take_is_refused_at_its_line(tmp_path: Path, step: str, stands: str,
                                                               named: str) -> None:
    path = _written(tmp_path, step, stands)
    with pytest.raises(SiteError) as refused:
        load_merge_file(path)
    text = path.read_text(encoding="utf-8")
    line = text[:text.index(step if named == "not_back" else stands.strip())].count("\n") + 1
    assert f"{path}:{line}:" in str(refused.value) and named in str(refused.value), refused.value
