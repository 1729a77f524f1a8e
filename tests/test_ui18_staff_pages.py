"""The auditors' page reads numbers as they were sent (eighteenth round, ui18), in headless Chromium.

The staff pages' one reader of the API (``hurenWords.api``) made JavaScript numbers of the answers,
so a result of 0.50 mmol/L read 0.5 in the evidence ("结果 Value") and in its folded FHIR JSON. It
now keeps each number's digits (``shared/exact.js``). Fails on the round's start (no digits kept).
Signing out, then pressing the browser's back button, shows the sign-in page, not the report.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from tests import test_reports_ui as ui
from tests.test_recognition_world import ALICE, A, World
from tests.test_reports_ui import Browser
from tests.test_ui12_phone import PHONE_360, sign_in

server, browser, pytestmark = ui.server, ui.browser, ui.pytestmark


def test_the_auditors_page_keeps_a_results_digits(engine: Any, server: str, browser: Browser) -> None:
    patient = World(engine).patient(A, ALICE)
    engine.auth.registry.add("ui18-lis", scopes=["system/Observation.c"], kind="system", name="LIS")
    token = engine.auth.issue_system_token("ui18-lis", "system/Observation.c")
    body = ('{"resourceType": "Observation", "id": "k-ui18", "status": "final", "code": {"text": "钾"},'
            f' "subject": {{"reference": "{patient}"}}, "performer": [{{"display": "{A}"}}],'
            ' "effectiveDateTime": "2026-03-04T23:30:00Z", "valueQuantity": {"value": 0.50, "unit": "mmol/L"},'
            ' "referenceRange": [{"low": {"value": 3.50}, "high": {"value": 5.30}}]}').encode()
    req = urllib.request.Request(f"{server}/fhir/Observation", data=body, method="POST", headers={
        "Authorization": "Bearer " + token, "Content-Type": "application/fhir+json"})
    with urllib.request.urlopen(req) as r:  # noqa: S310 - our own test server
        oid = json.loads(r.read())["id"]
    sign_in(browser, server, engine, PHONE_360)
    read = (f"window.hurenWords.api('/fhir/Observation/{oid}', {{}}, '/ui/duplicates').then(o => "
            "[window.hurenExact.digits(o.valueQuantity, 'value'), window.hurenExact.stringify(o.referenceRange)])")
    value, ranges = browser.eval(read)
    assert value == "0.50" and ranges == '[{"low":{"value":3.50},"high":{"value":5.30}}]', (value, ranges)

    # signing out, then "back": the sign-in page again, the report not shown from any cache
    browser.eval("document.querySelector('#signout button, form[action=\"/ui/signout\"] button').click(); true")
    browser.wait_for("location.pathname === '/ui/signin' && location.search.includes('out=1')")
    browser.eval("history.back(); true")
    browser.wait_for("location.pathname === '/ui/signin' && document.readyState === 'complete'")
    assert browser.eval("!document.querySelector('#flags')")
