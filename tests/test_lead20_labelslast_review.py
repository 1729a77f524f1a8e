"""rv-labelslast20's probes of the screened recognition rates, kept (the lead's mend): the indicators and the
recognition MeasureReport take the reader's screen as the auditors' report does (they gave back a withheld flag's
amount and counted its order); a deleted unlabelled order or prior result no longer screens an order out of the
rates. Each failed on 3774d46; a signed-in staff page meets a broken staff.json as a Chinese 503 page (the lead, twenty-first round)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from engine.api.app import create_app
from tests.test_labels20_report_flags import _auditor, _county
from tests.test_recognition_world import B


def _pop(mr: dict[str, Any], code: str) -> int:
    for g in mr.get("group") or ():
        for p in g.get("population") or ():
            if p["code"]["coding"][0]["code"] == code:
                return int(p["count"])
    return 0


def test_measure_report_agrees_with_the_screened_report_rate(engine: Any) -> None:
    """The MeasureReport's figures are 'the auditors' report's, so they can never disagree'
    (measure.py) -- for the auditor the report now screens the withheld CBC re-test out; the
    $evaluate-measure for the same institution and day must not count it back."""
    with TestClient(create_app(engine)) as http:
        _county(engine, http)
        auditor = _auditor(engine)
        rep = http.get(f"/reports/duplicates?institution={B}&from=2026-03-03&to=2026-03-03", headers=auditor).json()
        want = rep["recognition_rate"].get(B, {}).get("recognisable", 0)
        r = http.get("/fhir/Measure/huren-recognition-rate/$evaluate-measure",
                     params={"periodStart": "2026-03-03", "periodEnd": "2026-03-03", "reporter": B}, headers=auditor)
        assert r.status_code == 200, r.text[:400]
        mr = r.json()
        assert _pop(mr, "denominator") == want, (want, mr.get("group"))


def test_deleted_unlabelled_prior_does_not_screen_the_rate(engine: Any) -> None:
    """label_withholds counts a deleted record as withheld; withheld_checks feeds it every
    recognisable prior of every order: an order whose unlabelled prior result was deleted leaves
    the auditor's rates, though nothing about it is labelled."""
    with TestClient(create_app(engine)) as http:
        system, _ = _county(engine, http)
        auditor = _auditor(engine)
        q = f"item=LFT&institution={B}"
        before = http.get(f"/reports/duplicates?{q}", headers=system).json()["recognition_rate"]
        checks = [c for c in engine.recognition.checks.find({"item": "LFT", "inst": B})]
        assert checks and checks[0]["recognisable"], checks
        prior = checks[0]["recognisable"][0]
        d = http.delete(f"/fhir/{prior}", headers=system)
        assert d.status_code in (200, 204), d.text
        checks = [c for c in engine.recognition.checks.find({"item": "LFT", "inst": B})]
        sys_rate = http.get(f"/reports/duplicates?{q}", headers=system).json()["recognition_rate"]
        aud_rate = http.get(f"/reports/duplicates?{q}", headers=auditor).json()["recognition_rate"]
        assert aud_rate == sys_rate, (before, sys_rate, aud_rate, checks)


def test_indicator_money_does_not_give_back_the_withheld_amount(engine: Any) -> None:
    """The K rule hides one withheld flag's amount ('its price names the item'); the month's
    indicators (same reader, same institution and month) sum the duplicate money unscreened: the
    difference with the screened report's money is that one flag's price."""
    with TestClient(create_app(engine)) as http:
        _county(engine, http)
        auditor = {"Authorization": "Bearer " + engine.auth.issue_system_token(
            "insurer", "system/DetectedIssue.rs system/ChargeItem.rs system/Encounter.rs", kind="auditor")}
        rep = http.get(f"/reports/duplicates?institution={B}&from=2026-03-01&to=2026-03-31", headers=auditor).json()
        left = rep["totals"]["restricted"]
        assert left["count"] == 1 and left["amount"] is None, left
        r = http.get("/reports/indicators", params={"month": "2026-03", "institution": B}, headers=auditor)
        assert r.status_code == 200, r.text[:300]
        money = None
        for e in r.json()["entry"]:
            res = e["resource"]
            if res["resourceType"] != "MeasureReport" or "duplicate" not in res.get("measure", ""):
                continue
            if "money" in res["measure"]:
                money = float(res["group"][0]["measureScore"]["value"])
        assert money is not None and round(money - rep["totals"]["money_at_stake"], 2) == 0, (
            money, rep["totals"]["money_at_stake"], "the difference is the withheld flag's price")


def test_signed_in_staff_page_with_a_broken_staff_file_is_not_a_500_or_english_json(
        engine: Any, monkeypatch: Any, capsys: Any) -> None:
    """A person already signed in who opens the duplicates page while staff.json is broken."""
    import time

    from tests.test_labelslast20_pages import _break
    from tests.test_staff_signin import PASSWORD, add_staff, rfc6238, sign_in

    secret = add_staff(monkeypatch, capsys, engine.settings, "wang.li", "auditor")
    with TestClient(create_app(engine), raise_server_exceptions=False) as client:
        r = sign_in(client, "wang.li", PASSWORD, rfc6238(secret, time.time()))
        assert r.status_code in (302, 303), r.text[:300]
        assert client.get("/ui/duplicates").status_code == 200
        _break(engine.settings.data_dir / "staff.json")
        for path in ("/ui/duplicates", "/ui/session"):
            r = client.get(path)
            assert r.status_code != 500, (path, r.text[:300])
            print(path, r.status_code, r.headers.get("content-type"), r.text[:200])
            if path == "/ui/duplicates":
                assert r.status_code == 503 and r.headers["content-type"].startswith("text/html"), (
                    path, r.status_code, r.text[:300])
                assert "服务暂时不可用" in r.text and "staff.json" not in r.text, r.text[:300]


def test_refused_signed_deduction_list_is_audited(engine: Any) -> None:
    """The new 403 of the signed list: a refusal of a payment document must leave an AuditEvent."""
    with TestClient(create_app(engine)) as http:
        system, _ = _county(engine, http)
        for row in http.get("/reports/duplicates", headers=system).json()["rows"]:
            http.post(f"/reports/duplicates/{row['id']}/review", json={"decision": "upheld", "reason": "属实"},
                      headers=system)
        auditor = _auditor(engine)
        r = http.get("/reports/deductions", params={"institution": B, "month": "2026-03"}, headers=auditor)
        assert r.status_code == 403, r.text
        h = {"Authorization": "Bearer " + engine.auth.issue_system_token("auditor-x", "system/AuditEvent.rs")}
        events = http.get("/fhir/AuditEvent?_count=200", headers=h).json().get("entry", [])
        seen = [(e["resource"].get("outcome"), e["resource"].get("outcomeDesc"), e["resource"]["subtype"][0]["code"])
                for e in events]
        assert any(o[0] != "0" and "403" in str(o[1]) for o in seen), seen


def test_k_rule_at_k_minus_one_and_k(engine: Any, monkeypatch: Any) -> None:
    """One withheld flag: K=2 (K-1 flags) hides the amount; K=1 (K flags) shows it, in JSON and CSV."""
    from engine.recognition import reports

    with TestClient(create_app(engine)) as http:
        _county(engine, http)
        auditor = _auditor(engine)
        q = f"/reports/duplicates?institution={B}"
        monkeypatch.setattr(reports, "amount_shown_from", lambda: 2)
        t = http.get(q, headers=auditor).json()["totals"]["restricted"]
        assert t == {"count": 1, "amount": None, "amount_shown_from": 2}, t
        csv = http.get(q + "&_format=csv", headers=auditor)
        assert csv.status_code == 200 and "金额不显示（少于 2 条）" in csv.text, csv.text[-400:]
        monkeypatch.setattr(reports, "amount_shown_from", lambda: 1)
        t = http.get(q, headers=auditor).json()["totals"]["restricted"]
        assert t["count"] == 1 and t["amount"] == 20.0, t
        csv = http.get(q + "&_format=csv", headers=auditor)
        assert csv.status_code == 200 and "金额 20.00 元" in csv.text, csv.text[-400:]


def test_deleted_order_counts_the_same_for_auditor_and_system(engine: Any) -> None:
    """An unlabelled order deleted by the HIS: whatever its row now says, the auditor's rate and
    the system's must agree (no label is involved)."""
    with TestClient(create_app(engine)) as http:
        system, _ = _county(engine, http)
        auditor = _auditor(engine)
        q = f"item=LFT&institution={B}"
        checks = list(engine.recognition.checks.find({"item": "LFT", "inst": B}))
        d = http.delete(f"/fhir/{checks[0]['_id']}", headers=system)
        assert d.status_code in (200, 204), d.text
        sys_rate = http.get(f"/reports/duplicates?{q}", headers=system).json()["recognition_rate"]
        aud_rate = http.get(f"/reports/duplicates?{q}", headers=auditor).json()["recognition_rate"]
        assert aud_rate == sys_rate, (sys_rate, aud_rate, list(engine.recognition.checks.find({"item": "LFT"})))


def test_screened_rates_on_both_backends(backend_settings: Any) -> None:
    """labelslast20's rate screen (checks.find with the tally query, then subtraction) on mongomock too."""
    from engine.engine import Engine

    eng = Engine(backend_settings)
    try:
        with TestClient(create_app(eng)) as http:
            system, _ = _county(eng, http)
            auditor = _auditor(eng)
            q = f"item=CBC&institution={B}&from=2026-03-03&to=2026-03-03"
            mine = http.get(f"/reports/duplicates?{q}", headers=auditor)
            assert mine.status_code == 200, mine.text[:300]
            assert not mine.json()["recognition_rate"].get(B), mine.json()["recognition_rate"]
            full = http.get(f"/reports/duplicates?{q}", headers=system).json()
            assert full["recognition_rate"][B]["recognisable"] >= 1
    finally:
        eng.close()
