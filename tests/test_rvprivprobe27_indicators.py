"""rvprivprobe27: a remit-bound auditor reads other hospitals' published indicator figures through /fhir.

``/reports/indicators`` and ``$evaluate-measure`` keep a bound auditor to the remit (``policy.audit_remit``:
"a community only partly theirs is reported per institution"), but once ``huren indicators --publish`` has
stored the month's MeasureReports and alerts, ``GET /fhir/Flag`` (``confined.yaml`` ``remit_searched``) and
``GET /fhir/MeasureReport`` show the bound person every institution's: they name no patient, which is all
``ScopedRepository._within_remit`` asks -- the class of leak privprobe27 closed on ``/admin`` (another
institution's counts). The month is test_insurance_indicators' (real HL7 and FHIR writes, the real CLI).
"""

from __future__ import annotations

from typing import Any

import pytest

from engine import cli
from engine.auth.staff import StaffIdentity
from engine.auth.staff_session import SESSION_COOKIE
from tests.test_insurance_indicators import SECOND, fill_march


def _reporter(resource: dict[str, Any]) -> str:
    who = resource.get("subject") if resource["resourceType"] == "Flag" else resource.get("reporter")
    return str(((who or {}).get("identifier") or {}).get("value"))


def test_a_remit_bound_auditor_reads_only_the_remits_published_indicators(
        engine: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    http = fill_march(engine)
    monkeypatch.setenv("HUREN_DATA_DIR", str(engine.settings.data_dir))
    assert cli.main(["indicators", "2026-03", "--publish"]) == 0
    capsys.readouterr()
    person = StaffIdentity("sun.li", "auditor", "YBJ", "孙丽", SECOND)
    token, _ = engine.staff.open_session(person, engine.staff.roles["auditor"], address="127.0.0.1",
                                         issuer="https://idp.ybj.example.cn")
    http.headers.pop("Authorization")
    cookies = {SESSION_COOKIE: token}
    # what the report gives this auditor: its own hospital's figures only
    report = http.get("/reports/indicators", params={"month": "2026-03"}, cookies=cookies).json()
    assert {_reporter(e["resource"]) for e in report["entry"]} == {SECOND}, report
    shown: dict[str, set[str]] = {}
    for rtype in ("Flag", "MeasureReport"):
        r = http.get(f"/fhir/{rtype}", params={"_count": "200"}, cookies=cookies)
        assert r.status_code == 200, r.text[:300]
        shown[rtype] = {_reporter(e["resource"]) for e in r.json().get("entry") or ()}
    assert shown["Flag"] <= {SECOND} and shown["MeasureReport"] <= {SECOND}, shown
