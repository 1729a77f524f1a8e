"""Site data: shipped defaults, the HUREN_SITE overlay, and precise errors for hand-edited files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from engine.settings import Settings
from mappings.site import Site, SiteError


def test_shipped_defaults_load(settings: Settings) -> None:
    site = Site.load(settings)
    assert {"FNXRMYY", "FNZYY", "FNYLWSY"} <= set(site.institutions)
    people = site.institutions["FNXRMYY"]
    assert people.name == "阜宁县人民医院"
    assert people.community == "funing"
    assert people.timezone == "Asia/Shanghai"
    assert people.identifier_type == "NNCHN"
    assert people.mrn_system == "urn:huren:mrn:FNXRMYY"
    assert people.code_system == "urn:huren:code:FNXRMYY"
    assert people.qc.covers("CBC", dt.date(2026, 1, 1))
    assert not people.qc.covers("CBC", dt.date(2028, 1, 1))  # after qc.until
    tcm = site.institutions["FNZYY"]
    assert tcm.qc.covers("CT-CHEST", dt.date(2026, 1, 1)) and not tcm.qc.covers(
        "MR-HEAD", dt.date(2026, 1, 1)
    )
    assert site.code_map("FNXRMYY").lookup("WBC").loinc == "6690-2"
    assert site.code_map("FNZYY").lookup("1001").item == "CBC"
    assert site.ucum("FNXRMYY", "10^9/L") == "10*9/L"
    assert site.ucum("FNXRMYY", "G/L") == "10*9/L"  # institution-specific spelling
    assert site.ucum("FNZYY", "furlongs") is None
    assert "event_structures" in site.tables


def _site(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "site" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path / "site"


def test_site_folder_replaces_files(tmp_path: Path, settings: Settings) -> None:
    folder = _site(
        tmp_path,
        {
            "institutions.yaml": "- code: HA\n  name: 医院甲\n  community: c1\n  timezone: Asia/Urumqi\n"
            "  identifier_type: NNCHN\n  mrn_system: urn:oid:1.2.3\n  qc: {passed: [CBC], until: 2030-01-01}\n",
            "codes/HA.yaml": "codes:\n  K: {loinc: 2823-3}\nunits:\n  mEq/L: meq/L\n",
        },
    )
    site = Site.load(settings.with_(site=folder))
    assert list(site.institutions) == ["HA"]  # the site's file replaces the shipped one
    ha = site.institutions["HA"]
    assert ha.timezone == "Asia/Urumqi" and ha.mrn_system == "urn:oid:1.2.3"
    assert ha.qc.until == dt.date(2030, 1, 1) and ha.qc.passed == frozenset({"CBC"})
    assert site.code_map("HA").lookup("K").loinc == "2823-3"
    assert site.ucum("HA", "mEq/L") == "meq/L"
    assert site.ucum("HA", "g/L") == "g/L"  # shipped codes/units.yaml still in force


@pytest.mark.parametrize(
    ("files", "bad_file", "line", "words"),
    [
        (
            {"institutions.yaml": "- code: HA\n  name: 医院甲\n"},
            "institutions.yaml",
            1,
            "'community' is a required property",
        ),
        (
            {
                "institutions.yaml": "- code: HA\n  name: A\n  community: c\n- code: HB\n  name: B\n  community: c\n  timezone: Mars/Base\n"
            },
            "institutions.yaml",
            7,
            "[1].timezone: unknown time zone",
        ),
        (
            {"institutions.yaml": "- code: HA\n  name: A\n  community: c\n  qc:\n    passed: some\n"},
            "institutions.yaml",
            5,
            "[0].qc.passed",
        ),
        (
            {
                "institutions.yaml": "- code: HA\n  name: A\n  community: c\n  qc:\n    passed: all\n    until: next year\n"
            },
            "institutions.yaml",
            6,
            "[0].qc.until: 'next year' is not a date",
        ),
        (
            {
                "institutions.yaml": "- code: HA\n  name: A\n  community: c\n- code: HA\n  name: B\n  community: c\n"
            },
            "institutions.yaml",
            4,
            "duplicate institution code",
        ),
        (
            {"institutions.yaml": "- code: HA\n  name: A\n  colour: blue\n  community: c\n"},
            "institutions.yaml",
            1,
            "colour",
        ),
        ({"institutions.yaml": "- code: HA\n  name: [unclosed\n"}, "institutions.yaml", 3, "YAML syntax"),
        (
            {
                "institutions.yaml": "- code: HA\n  name: A\n  community: c\n",
                "codes/HA.yaml": "codes:\n  K: {loinc: '2823'}\n",
            },
            "codes/HA.yaml",
            2,
            "codes.K.loinc",
        ),
        (
            {"institutions.yaml": "- code: HA\n  name: A\n  community: c\n", "codes/HB.yaml": "codes: {}\n"},
            "codes/HB.yaml",
            1,
            "not in institutions.yaml",
        ),
        (
            {
                "institutions.yaml": "- code: HA\n  name: A\n  community: c\n",
                "codes/HA.yaml": "institution: HB\n",
            },
            "codes/HA.yaml",
            1,
            "declares institution 'HB'",
        ),
    ],
)
def test_errors_name_file_line_and_field(
    tmp_path: Path, settings: Settings, files: dict[str, str], bad_file: str, line: int, words: str
) -> None:
    folder = _site(tmp_path, files)
    with pytest.raises(SiteError) as info:
        Site.load(settings.with_(site=folder))
    err = info.value
    assert err.path == str(folder / bad_file)
    assert err.line == line, str(err)
    assert words in str(err)
    assert str(err).startswith(f"{folder / bad_file}:{line}: ")


def test_site_folder_must_exist(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(SiteError, match="not a folder"):
        Site.load(settings.with_(site=tmp_path / "missing"))
