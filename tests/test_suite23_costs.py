"""What keeps an Engine's start cheap (twenty-third round) stays correct.

- A site file's value found valid against a schema is not validated again (``mappings.sitefiles``):
  a changed file, or a value its reader changed before checking it, is validated anew, and a
  mistake is reported every time.
- A profile (``conformance/profiles/*.yaml``) is made once per process for a given text: Validators
  share it; a changed file is read afresh and a broken one refused every time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.profiles import Profile, ProfileError, load_profile, load_profiles
from conformance.validate import Validator
from mappings.sitefiles import SiteError, check, load_checked, read_yaml

_INTS = {"type": "object", "additionalProperties": {"type": "integer"}}


def test_a_site_file_found_valid_once_is_checked_again_when_it_or_its_value_changes(tmp_path: Path) -> None:
    path = tmp_path / "limits.yaml"
    path.write_text("a: 1\nb: 2\n", encoding="utf-8")
    for _ in range(3):  # valid, and again from what was kept
        assert load_checked(path, _INTS)[0] == {"a": 1, "b": 2}
    # the same text, its value changed by the reader before the check: True is not an integer
    # (a key of equal values would take it for the 1 found valid)
    doc = read_yaml(path)
    doc.data["a"] = True
    with pytest.raises(SiteError) as err:
        check(doc, _INTS)
    assert err.value.line == 1 and err.value.where == "a"
    # the file changed: its mistake named, every time
    path.write_text("a: 1\nb: two\n", encoding="utf-8")
    for _ in range(2):
        with pytest.raises(SiteError) as err:
            load_checked(path, _INTS)
        assert err.value.line == 2 and err.value.where == "b" and "'two' is not of type 'integer'" in str(err.value)
    # ... and the same value against another schema is checked against that one
    path.write_text("a: 1\nb: 2\n", encoding="utf-8")
    with pytest.raises(SiteError):
        load_checked(path, {"type": "object", "additionalProperties": {"type": "string"}})
    assert load_checked(path, _INTS)[0] == {"a": 1, "b": 2}


_OBSERVATION = """resourceType: Observation
required:
  status: {why}
rules:
  - element: valueQuantity.value
    schema: {{type: number, minimum: 0}}
    message: not below zero
"""


def test_a_profile_is_made_once_for_its_text_and_anew_when_it_changes(tmp_path: Path) -> None:
    definitions = Validator().r4.definitions
    path = tmp_path / "Observation.yaml"
    path.write_text(_OBSERVATION.format(why="a result has a status"), encoding="utf-8")
    first = load_profile(path, definitions)
    assert isinstance(first, Profile) and load_profile(path, definitions) is first
    assert first.required["status"][1] == "a result has a status"
    assert not first.satisfied_by({"resourceType": "Observation", "status": "final", "valueQuantity": {"value": -1}})
    # another set of definitions is not taken for the one the profile was checked against
    assert load_profile(path, dict(definitions)) is not first
    path.write_text(_OBSERVATION.format(why="said differently"), encoding="utf-8")
    changed = load_profile(path, definitions)
    assert changed is not first and changed.required["status"][1] == "said differently"
    path.write_text(_OBSERVATION.format(why="a result has a status").replace("status:", "stature:", 1),
                    encoding="utf-8")
    for _ in range(2):
        with pytest.raises(ProfileError, match="has no element 'stature'"):
            load_profile(path, definitions)


def test_validators_share_the_shipped_profiles_and_a_site_profile_still_replaces_one(tmp_path: Path) -> None:
    one, two = Validator(), Validator()
    assert one.profiles.keys() == two.profiles.keys() and one.profiles is not two.profiles
    assert all(one.profiles[t] is two.profiles[t] for t in one.profiles)
    (tmp_path / "Observation.yaml").write_text(_OBSERVATION.format(why="the site says so"), encoding="utf-8")
    site = Validator(site_profiles_dir=tmp_path)
    assert site.profiles["Observation"].required["status"][1] == "the site says so"
    assert Validator().profiles["Observation"] is one.profiles["Observation"]
    assert load_profiles(None, one.r4.definitions)["Observation"] is one.profiles["Observation"]
