"""status37: ``not_back`` in a site's ``merge.yaml`` (schema in ``mappings/site.py``) is one step as before
(``{from, to, with}``: a site file written for the thirty-sixth round still loads) or a list of steps, each
with ``whole`` (a boolean) and ``why`` (a text); anything else is refused naming the file and line. Read by
the real loader, ``load_merge_file``, from a file written beside the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from mappings.site import DEFAULTS_DIR, SiteError, load_merge_file

_START, _END = "             not_back: [", "             withdrawn: [entered-in-error]}"


def _with_steps(tmp_path: Path, steps: str) -> Path:
    """The shipped ``merge.yaml`` with Observation.status's ``not_back`` replaced by ``steps``."""
    text = (DEFAULTS_DIR / "merge.yaml").read_text(encoding="utf-8")
    at, end = text.index(_START), text.index(_END)
    path = tmp_path / "merge.yaml"
    path.write_text(text[:at] + f"             not_back: {steps},\n" + text[end:], encoding="utf-8")
    return path


@pytest.mark.parametrize("steps", [
    '{from: [final, corrected, amended], to: [registered, preliminary], with: ["effective[x]"]}',
    '[{from: [final], to: [preliminary]}, {from: [entered-in-error], to: [cancelled], whole: true, why: "W"}]'])
def test_one_step_or_a_list_of_them_loads(tmp_path: Path, steps: str) -> None:
    rules = load_merge_file(_with_steps(tmp_path, steps))
    stated = rules["resources"]["Observation"]["status"]["not_back"]
    assert (stated if isinstance(stated, list) else [stated])[0]["from"][0] == "final", stated


@pytest.mark.parametrize("steps", ["[]", '[{from: [final], to: [preliminary], whole: "yes"}]',
                                   '[{from: [final], to: [preliminary], why: ""}]',
                                   '[{from: [final], to: [preliminary], over: [final]}]'])
def test_a_step_the_schema_does_not_know_is_refused_at_its_line(tmp_path: Path, steps: str) -> None:
    path = _with_steps(tmp_path, steps)
    with pytest.raises(SiteError) as refused:
        load_merge_file(path)
    text = path.read_text(encoding="utf-8")
    line = text[:text.index("not_back: " + steps)].count("\n") + 1
    assert f"{path}:{line}:" in str(refused.value) and "not_back" in str(refused.value), refused.value
