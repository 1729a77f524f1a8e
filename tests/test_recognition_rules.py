"""The rules files: shipped defaults load; a site overlay wins by file name; any mistake names file, line, field."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from engine.recognition.rules import SHIPPED, Institution, RulesError, load_rules, rule_folders


def _site(tmp_path: Path, name: str, text: str) -> Path:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / name).write_text(text, encoding="utf-8")
    return site


def test_shipped_defaults_cover_domain_table() -> None:
    rules = load_rules(rule_folders(None))
    assert rules.items["CBC"].window_days == 7
    assert rules.items["CBC"].category == "检验"
    assert rules.items["CT-CHEST"].category == "检查"
    assert rules.items["HBA1C"].window_days == 60
    assert rules.items["ELEC"].window_days == 3
    assert rules.codes.loinc["58410-2"] == "CBC"
    assert rules.codes.loinc["11524-6"] == "ECG"
    assert set(rules.reasons) == {f"R0{i}" for i in range(1, 10)} | {"R98", "R99"}
    assert rules.reasons["R06"].text_required
    assert {c for c, e in rules.policy.reasons.items() if e.startswith("check_")} == {"R08", "R09", "R98"}
    assert {c for c, r in rules.reasons.items() if r.text_required} == {"R06"}
    assert rules.currency == "CNY" and rules.price("CT-CHEST", None) == 220.0


def test_site_file_replaces_shipped_file_by_name(tmp_path: Path) -> None:
    site = _site(tmp_path, "prices.yaml", "currency: CNY\ndefault: {CBC: 18.5}\ninstitutions: {FNZYY: {CBC: 16}}\n")
    rules = load_rules(rule_folders(site))
    assert rules.price("CBC", None) == 18.5
    assert rules.price("CBC", "FNZYY") == 16.0
    assert rules.price("LFT", None) == 0.0  # the whole file is the site's
    assert rules.items["LFT"].window_days == 14  # other files still the shipped ones


@pytest.mark.parametrize(
    ("name", "text", "line", "field", "words"),
    [
        ("items.yaml", "- {code: CBC, name: 血常规, category: 检验, window_days: 7}\n"
                       "- {code: UA, name: 尿常规, category: 化验, window_days: 7}\n", 2, "[1].category", "is not one of"),
        ("items.yaml", "- code: CBC\n  name: 血常规\n  category: 检验\n  window_days: -1\n", 4, "[0].window_days", "minimum"),
        ("items.yaml", "- code: CBC\n  name: 血常规\n  category: 检验\n", 1, "[0]", "'window_days' is a required property"),
        ("items.yaml", "- {code: CBC, name: a, category: 检验, window_days: 7}\n- {code: CBC, name: b, category: 检验, window_days: 7}\n",
         2, "[1].code", "duplicate item code"),
        ("items.yaml", "- {code: CBC, name: a, category: 检验, window_days: 7, scope: [MARS]}\n", 1, "[0].scope[0]", "unknown scope"),
        ("qc.yaml", "- institution: FNXRMYY\n  item: CBC\n  passed: true\n  from: 2026-01-01\n  until: 2026-13-01\n",
         5, "[0].until", "is not a 'date'"),
        ("qc.yaml", "- {institution: FNXRMYY, item: NOPE, passed: true, from: 2026-01-01, until: 2026-02-01}\n",
         1, "[0].item", "unknown item 'NOPE'"),
        ("qc.yaml", "- {institution: A, item: all, passed: true, from: 2026-03-01, until: 2026-02-01}\n",
         1, "[0].until", "before 'from'"),
        ("item_codes.yaml", "loinc:\n  58410-2: CBC\n  1742-6: LIVER\n", 3, "loinc.1742-6", "unknown item 'LIVER'"),
        ("item_codes.yaml", "loinc:\n  not-a-loinc: CBC\n", 2, "loinc", "does not match"),
        ("prices.yaml", "currency: yuan\ndefault: {}\n", 1, "currency", "does not match"),
        ("reasons.yaml", "system: urn:x\ncodes:\n  - {code: R1, display: x}\n", 3, "codes[0].code", "does not match"),
        ("policy.yaml", "default:\n  reasons: {R01: maybe}\n", 2, "default.reasons.R01", "is not one of"),
        ("policy.yaml", "default:\n  reasons: {R55: payable}\n", 2, "default.reasons.R55", "unknown reason code"),
        ("scopes.yaml", "- {code: CN, name: a}\n- {code: CN, name: b}\n", 2, "[1].code", "duplicate scope code"),
        ("items.yaml", "- {code: CBC, name: 血常规\n", 2, "", "YAML syntax"),
    ],
)
def test_bad_rules_name_file_line_and_field(tmp_path: Path, name: str, text: str, line: int, field: str, words: str) -> None:
    site = _site(tmp_path, name, text)
    if name == "items.yaml":  # keep the other shipped files consistent with a one-item catalogue where possible
        for other in ("item_codes.yaml", "prices.yaml", "qc.yaml"):
            (site / other).write_text({"item_codes.yaml": "loinc: {}\n",
                                       "prices.yaml": "currency: CNY\ndefault: {}\n",
                                       "qc.yaml": "[]\n"}[other], encoding="utf-8")
    with pytest.raises(RulesError) as caught:
        load_rules(rule_folders(site))
    err = caught.value
    assert err.path == str(site / name)
    assert err.line == line
    assert err.where == field
    assert words in str(err)
    assert str(err).startswith(f"{site / name}:{line}: ")


def test_missing_file_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    shutil.copytree(SHIPPED, folder)
    (folder / "scopes.yaml").unlink()
    with pytest.raises(RulesError, match=r"scopes.yaml: missing"):
        load_rules([folder])


def test_qc_combines_institution_status_and_assessment_history(tmp_path: Path) -> None:
    site = _site(tmp_path, "qc.yaml",
                 "- {institution: A, item: CBC, passed: false, from: 2026-03-01, until: 2026-03-31, source: EQA 2026-1}\n"
                 "- {institution: B, item: LFT, passed: true, from: 2026-01-01, until: 2026-06-30, hr: [JS]}\n")
    institutions = {
        "A": Institution("A", community="funing", qc_passed=frozenset({"all"}), qc_until=date(2026, 12, 31)),
        "B": Institution("B", community="funing", qc_passed=frozenset({"CBC"}), qc_until=date(2026, 5, 31)),
        "C": Institution("C", community="funing"),
    }
    rules = load_rules(rule_folders(site), institutions)
    assert rules.qc_passed("A", "CBC", date(2026, 2, 28))
    assert not rules.qc_passed("A", "CBC", date(2026, 3, 15))  # failed assessment suspends
    assert rules.qc_passed("A", "LFT", date(2026, 3, 15))  # only for that item
    assert not rules.qc_passed("A", "CBC", date(2027, 1, 1))  # after `until`
    assert rules.qc_passed("B", "CBC", date(2026, 5, 31))
    assert not rules.qc_passed("B", "CBC", date(2026, 6, 1))
    assert not rules.qc_passed("B", "UA", date(2026, 2, 1))  # not in its passed list
    assert rules.qc_passed("B", "LFT", date(2026, 6, 30))  # from the assessment history
    assert rules.hr_scopes("B", "LFT", date(2026, 6, 30)) == ("JS",)
    assert not rules.qc_passed("C", "CBC", date(2026, 2, 1))
    assert not rules.qc_passed("Z", "CBC", date(2026, 2, 1))
