"""evid35: the site's ward table names a ward over the first PL-9 name stored for it (deptfix34's order, pinned).

deptfix34 put ``wards.yaml`` first (``engine.wards.department_namer``: the site's word, then the first PL-9
name stored, then the code), reversing dept33, which put the PL-9 name first; its tests had the table settle a
ward sent under two PL-9 names, where either order could be argued. Here the systems agree -- every message
names XYK 血液科病区 -- and the site's table says 血液病区: the table's word is the label, and it becomes the
label of the rows already stored as soon as the site lists the ward (the table is read again when its file
changes), in the auditors' report and in the MeasureReport's department stratum alike. Real HL7 through the
ingest handler into the real store, on SQLite and mongomock, read back over HTTP (rvlast34's helpers).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.test_rvlast34_probes import AUDITOR, _feed, _rates, _zhao_order

NEI_ONLY = "FNXRMYY:\n  NEI: 心内科病区\n"


def _stratum(eng: Engine) -> set[str]:
    """The blood ward's department stratum of the recognition rate's MeasureReport for March 2025."""
    token = eng.auth.issue_system_token("audit", AUDITOR, kind="auditor")
    res = TestClient(create_app(eng)).get("/fhir/Measure/huren-recognition-rate/$evaluate-measure",
                                          params={"periodStart": "2025-03-01", "periodEnd": "2025-03-31"},
                                          headers={"Authorization": f"Bearer {token}"})
    assert res.status_code == 200, res.text
    [dept] = [s for s in res.json()["group"][0]["stratifier"] if s["code"][0]["text"] == "department"]
    return {st["value"]["text"] for st in dept["stratum"] if "血液" in st["value"]["text"] or "XYK" in st["value"]["text"]}


def _blood(eng: Engine) -> dict[str, int]:
    return {k: r["recognisable"] for k, r in _rates(eng).items() if "血液" in k or "XYK" in k}


def test_the_site_table_names_a_ward_over_the_one_pl9_name_its_systems_send(backend_settings: Any, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    table = site / "wards.yaml"
    table.write_text(NEI_ONLY, encoding="utf-8")
    with Engine(backend_settings.with_(site=site)) as eng:
        _feed(eng, *(_zhao_order(n, f"XYK^50{n}^0{n}^FNXRMYY^^^^^血液科病区", f"2025032{3 + n}") for n in (1, 2, 3)))
        # no table lists XYK: the first (and only) PL-9 name
        assert _blood(eng) == {"阜宁县人民医院 血液科病区": 3}
        assert _stratum(eng) == {"阜宁县人民医院 血液科病区"}
        # the site lists the ward under its own word: that is the label, of the rows already stored too
        table.write_text(NEI_ONLY + "  XYK: 血液病区\n", encoding="utf-8")
        later = time.time() + 5
        os.utime(table, (later, later))  # a change the table's reader sees whatever the clock's grain
        assert _blood(eng) == {"阜宁县人民医院 血液病区": 3}
        assert _stratum(eng) == {"阜宁县人民医院 血液病区"}
