"""The auditors' page shows a result's numbers as they were sent (eighteenth round, ui18; its test
made to render, uifix18), in headless Chromium over real HTTP.

A potassium of 0.50 mmol/L at one hospital and 4.20 at another two days later (a repeat within the
electrolytes' window: a flag whose evidence is the two Observations, written by a FHIR client). The
auditor opens the flag: the evidence says "0.50 mmol/L" and "4.20 mmol/L", and its folded FHIR JSON
``"value": 0.50`` -- the page had made JavaScript numbers of them (0.5, 4.2). Fails on the round's
start; reverting either of the evidence's two uses of ``shared/exact.js`` (the value's words, the
folded JSON) fails it too (uifix18: ui18's test had called the page's reader directly, and passed
with both reverted).
Signing out, then pressing the browser's back button, goes back (a new document, reached by the
back/forward navigation) to the sign-in page, and no report is shown.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from tests import test_reports_ui as ui
from tests.test_recognition_world import ALICE, A, B, World
from tests.test_reports_ui import Browser
from tests.test_ui12_phone import PHONE_360, sign_in

server, browser, pytestmark = ui.server, ui.browser, ui.pytestmark


def potassium(server: str, token: str, patient: str, performer: str, when: str, value: str) -> str:
    """One Observation written over the FHIR API, its value in the digits given (bytes as sent)."""
    body = ('{"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": "http://loinc.org",'
            f' "code": "2823-3"}}], "text": "钾"}}, "subject": {{"reference": "{patient}"}},'
            f' "performer": [{{"reference": "{performer}"}}], "effectiveDateTime": "{when}", "issued": "{when}",'
            f' "valueQuantity": {{"value": {value}, "unit": "mmol/L"}}}}').encode()
    req = urllib.request.Request(f"{server}/fhir/Observation", data=body, method="POST", headers={
        "Authorization": "Bearer " + token, "Content-Type": "application/fhir+json"})
    with urllib.request.urlopen(req) as r:  # noqa: S310 - our own test server
        return json.loads(r.read())["id"]


def test_the_auditors_page_shows_a_results_digits(engine: Any, server: str, browser: Browser) -> None:
    w = World(engine)
    pa, pb = w.patient(A, ALICE), w.patient(B, ALICE, mrn="B-1")
    engine.auth.registry.add("ui18-lis", scopes=["system/Observation.c"], kind="system", name="LIS")
    token = engine.auth.issue_system_token("ui18-lis", "system/Observation.c")
    potassium(server, token, pa, w.organization(A), "2026-03-01T09:00:00+08:00", "0.50")
    potassium(server, token, pb, w.organization(B), "2026-03-02T09:00:00+08:00", "4.20")
    sign_in(browser, server, engine, PHONE_360)
    assert browser.eval("document.querySelectorAll('#flags tbody tr').length") == 1
    browser.eval("document.querySelector('#flags tbody tr').click(); true")
    browser.wait_for("!document.querySelector('#evidence').hidden")
    prior = browser.eval("document.querySelector('#ev-prior-words').innerText")
    repeat = browser.eval("document.querySelector('#ev-repeat-words').innerText")
    assert "0.50 mmol/L" in prior and "4.20 mmol/L" in repeat, (prior, repeat)
    folded = [browser.eval(f"document.querySelector('#ev-{k}').textContent") for k in ("prior", "repeat")]
    assert '"value": 0.50,' in folded[0] and '"value": 4.20,' in folded[1], folded
    assert "0.5 " not in prior and '"value": 0.5,' not in folded[0]

    # signing out, then "back": a new document (the marker set on the signed-out page is gone) reached
    # by going back, which the server sent to sign in; no report, no result
    browser.eval("document.querySelector('#signout button, form[action=\"/ui/signout\"] button').click(); true")
    browser.wait_for("location.pathname === '/ui/signin' && location.search.includes('out=1')")
    browser.eval("window.__signedOutPage = true; history.back(); true")
    browser.wait_for("!window.__signedOutPage && document.readyState === 'complete'")
    assert browser.eval("performance.getEntriesByType('navigation')[0].type") == "back_forward"
    assert browser.eval("location.pathname + location.search") == "/ui/signin?next=/ui/duplicates"
    shown = browser.eval("document.body.innerText")
    assert browser.eval("!document.querySelector('#flags, #evidence')") and "0.50" not in shown and "钾" not in shown
