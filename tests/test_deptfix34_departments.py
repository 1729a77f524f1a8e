"""deptfix34: a ward is one department per institution and point-of-care code, under one label in every period.

What rvlast34's dept33 probes (tests/test_rvlast34_probes.py) do not cover, each on SQLite and mongomock: the
site's ward table settles a ward its systems name two ways; else the ward Location's current name (wardfix35;
deptfix34 took the first name stored), also in a period that holds only the earlier one; a ward whose PL-1 is Chinese and that PL-9 names once is one department;
a row dept33 stored for a Chinese ward name (``dept|心内科|``) counts with the new ones; one hospital's name for a
code does not name another's; the MeasureReport's department stratum is the same in any period; the rate report
still counts when the store answers ``find`` with a one-pass cursor. Real HL7 through the ingest handler into the
real store, read back through ``GET /reports/duplicates`` and ``$evaluate-measure``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.recognition.facts import department_parts
from engine.recognition.reports import latest_ward_name
from engine.wards import department_namer
from tests.test_rvlast34_probes import AUDITOR, _feed, _rates, _zhao_order


def _wards(rates: dict[str, Any], *words: str) -> dict[str, int]:
    return {k: r["recognisable"] for k, r in rates.items() if any(w in k for w in words)}


def test_the_site_table_names_a_ward_its_systems_name_two_ways(backend_settings: Any, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "wards.yaml").write_text("FNXRMYY:\n  NEI: 心内科病区\n  XYK: 血液病区\n", encoding="utf-8")
    with Engine(backend_settings.with_(site=site)) as eng:
        _feed(eng, _zhao_order(1, "XYK^501^01^FNXRMYY^^^^^血液科病区"), _zhao_order(2, "XYK^502^03^FNXRMYY^^^^^血液内科"),
              _zhao_order(3, "XYK^502^04^FNXRMYY^^^^^血液内科"))
        assert _wards(_rates(eng), "血液", "XYK") == {"阜宁县人民医院 血液病区": 3}


def test_else_the_wards_current_name_in_every_period(backend_settings: Any) -> None:
    """No table lists XYK: 血液科病区 first (03-24), then 血液内科 twice (03-25, 03-26): a PL-9 stating a new name
    renames the ward Location (locfix34), and the report names the ward as its Location is named now, 血液内科
    -- also in a report of 03-24 alone, whose one row said 血液科病区 (a report read today uses today's name for
    every period). deptfix34 kept the first name here, for ever; wardfix35 (rvid35 LOW 4) reads the Location."""
    with Engine(backend_settings) as eng:
        _feed(eng, _zhao_order(1, "XYK^501^01^FNXRMYY^^^^^血液科病区", "20250324"),
              _zhao_order(2, "XYK^502^03^FNXRMYY^^^^^血液内科", "20250325"),
              _zhao_order(3, "XYK^502^04^FNXRMYY^^^^^血液内科", "20250326"))
        assert _wards(_rates(eng), "血液", "XYK") == {"阜宁县人民医院 血液内科": 3}
        late = _rates(eng, **{"from": "2025-03-25", "to": "2025-03-31"})
        assert _wards(late, "血液", "XYK") == {"阜宁县人民医院 血液内科": 2}
        early = _rates(eng, **{"from": "2025-03-24", "to": "2025-03-24"})
        assert _wards(early, "血液", "XYK") == {"阜宁县人民医院 血液内科": 1}


def test_a_chinese_point_of_care_named_once_is_one_department(backend_settings: Any) -> None:
    """PV1-3 心内科^301^02 once with PL-9 心内科病区, twice without: one row, by PL-9's name, whatever
    form each row was stored in (dept33's ``dept|心内科|``, the bed's text before it, ``dept||心内科``)."""
    with Engine(backend_settings) as eng:
        _feed(eng)
        # NEI (the demo's own ward, named 心内科病区 by wards.yaml) is another code, counted in the same row
        nei = _wards(_rates(eng), "心内科")["阜宁县人民医院 心内科病区"]
        for i, bed in enumerate(("心内科^301^02^FNXRMYY^^^^^心内科病区", "心内科^301^03^FNXRMYY", "心内科^302^01^FNXRMYY")):
            assert b"MSA|AA|" in eng.ingestor.handle(_zhao_order(i + 1, bed), channel="file", peer=f"file:df34-{i}")
        rows = [c for c in eng.recognition.checks.find({}) if "心内科" in str(c.get("dept"))
                and not str(c["dept"]).startswith("dept|NEI|")]
        assert len(rows) == 3 and not any("院内代码" in str(c["dept"]) for c in rows), rows
        assert _wards(_rates(eng), "心内科") == {"阜宁县人民医院 心内科病区": nei + 3}
        # the code-only orders read the ward Location, which keeps the name PL-9 gave it (locfix34: before,
        # a code-only PL renamed it 心内科 and these rows were stored as the code alone, dept|心内科|)
        assert sorted(c["dept"] for c in rows) == ["dept|心内科|心内科病区"] * 3, rows
        # two of them as a release before dept33 stored them (the bed's text) and as a Location without the
        # alias gives it (deptfix34's key for a ward sent by its Chinese name alone)
        plain = sorted(rows, key=lambda c: c["_id"])[1:]
        eng.recognition.checks.replace({**plain[0], "dept": "心内科 301房 03床"})
        eng.recognition.checks.replace({**plain[1], "dept": "dept||心内科"})
        eng.recognition.rebuild_tallies()
        assert _wards(_rates(eng), "心内科") == {"阜宁县人民医院 心内科病区": nei + 3}


def test_one_hospitals_name_for_a_code_does_not_name_anothers(backend_settings: Any) -> None:
    """The namer over the real store's tallies: FNXRMYY's XYK is 血液科病区; FNZYY's XYK, stored by code alone,
    is its own code, not that name. (Tallies written straight: a FNZYY order through the ingest path would
    need a recognisable prior result from another member for its row to be counted at all. No ward Location
    is stored: the name is the latest named tally's, ``reports.latest_ward_name``, wardfix35.)"""
    with Engine(backend_settings) as eng:
        days = eng.recognition.check_days
        rows = [("dept|XYK|血液科病区", "FNXRMYY", "2025-03-24"), ("dept|XYK|", "FNZYY", "2025-03-23"),
                ("dept|XYK|", "FNXRMYY", "2025-03-26")]
        days.insert_many([{"_id": f"t{i}", "dept": d, "inst": inst, "day": day, "count": 1}
                          for i, (d, inst, day) in enumerate(rows)])
        label = department_namer(None, eng.site.institutions, department_parts, eng.repository.read_many,
                                 latest_ward_name(days), [(d, inst) for d, inst, _ in rows[1:]])
        assert [label(d, inst) for d, inst, _ in rows] == [
            "阜宁县人民医院 血液科病区", "阜宁县中医院 XYK（院内代码）", "阜宁县人民医院 血液科病区"]


def test_the_measure_reports_department_stratum_is_the_same_in_any_period(backend_settings: Any) -> None:
    with Engine(backend_settings) as eng:
        _feed(eng, _zhao_order(1, "XYK^501^01^FNXRMYY^^^^^血液科病区", "20250324"),
              _zhao_order(2, "XYK^502^03^FNXRMYY", "20250326"))
        token = eng.auth.issue_system_token("audit", AUDITOR, kind="auditor")
        client = TestClient(create_app(eng))

        def strata(**period: str) -> set[str]:
            res = client.get("/fhir/Measure/huren-recognition-rate/$evaluate-measure", params=period,
                             headers={"Authorization": f"Bearer {token}"})
            assert res.status_code == 200, res.text
            [dept] = [s for s in res.json()["group"][0]["stratifier"] if s["code"][0]["text"] == "department"]
            return {st["value"]["text"] for st in dept["stratum"] if "血液" in st["value"]["text"]
                    or "XYK" in st["value"]["text"]}

        assert strata(periodStart="2025-03-01", periodEnd="2025-03-31") == {"阜宁县人民医院 血液科病区"}
        assert strata(periodStart="2025-03-26", periodEnd="2025-03-31") == {"阜宁县人民医院 血液科病区"}


def test_the_rate_counts_when_the_store_answers_with_a_one_pass_cursor(backend_settings: Any) -> None:
    """``Collection.find`` returns a list on both backends; a store answering with a cursor (walked once)
    must give the same rates, not empty ones (rvlast34's fragile report code: the totals were walked twice)."""
    with Engine(backend_settings) as eng:
        _feed(eng, _zhao_order(1, "XYK^501^01^FNXRMYY^^^^^血液科病区"))
        listed = _rates(eng)
        days = eng.recognition.check_days
        real = days.find
        days.find = lambda *a, **k: iter(real(*a, **k))  # type: ignore[method-assign]
        try:
            assert _rates(eng) == listed and listed
        finally:
            days.find = real  # type: ignore[method-assign]
