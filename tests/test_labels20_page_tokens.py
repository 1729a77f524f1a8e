"""Signing in again on the resident page revokes the token the page held before (labels20).

Found wrong: ``/ui/me`` revoked its token at sign-out, but a second sign-in on the same page
session (the same resident again, or a family member signing in for someone else after signing in
as themselves) replaced the stored token without revoking it: the earlier token went on opening the
record for the rest of its 15 minutes, held by no one. Now the page revokes it once the new sign-in
is stored; sign-out still revokes the token it holds. Headless Chromium over real HTTP (uvicorn),
the token checked over HTTP.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from tests.test_resident_family_ui import WIDTH, community, sign_in  # noqa: F401 - the fixture
from tests.test_resident_record_ui import ZHAO
from tests.test_resident_ui import CHROMIUM, Phone

__all__ = ["community"]


def _status(base: str, token: str) -> int:
    req = urllib.request.Request(base + "/fhir/Patient?_count=1", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def _until(base: str, token: str, status: int) -> int:
    deadline = time.monotonic() + 20
    got = _status(base, token)
    while got != status and time.monotonic() < deadline:  # the revocation is a beacon: not awaited
        time.sleep(0.2)
        got = _status(base, token)
    return got


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")
def test_signing_in_again_on_the_page_revokes_the_earlier_token(community, tmp_path):
    engine, base = community
    phone = Phone(tmp_path)
    try:
        cdp = phone.cdp
        phone.size(WIDTH, 780, mobile=True)
        sign_in(phone, engine, base, ZHAO)
        cdp.wait("document.body.dataset.ready === '1'", timeout=60)
        first = json.loads(cdp.eval("sessionStorage.getItem('session')"))["token"]
        assert _status(base, first) == 200
        # the same page session signs in again (signIn: the launch the sign-in button starts)
        cdp.eval("signIn()")
        cdp.wait("!!document.getElementById('national_id')", timeout=60)
        cdp.eval(f"document.getElementById('national_id').value = '{ZHAO}'; document.forms[0].submit()")
        cdp.wait("!!document.getElementById('code')", timeout=60)
        code = json.loads((engine.settings.data_dir / "otp" / "outbox.jsonl").read_text().splitlines()[-1])["code"]
        cdp.eval(f"document.getElementById('code').value = '{code}'; document.forms[0].submit()")
        cdp.wait("document.body.dataset.ready === '1' && !!sessionStorage.getItem('session')", timeout=60)
        second = json.loads(cdp.eval("sessionStorage.getItem('session')"))["token"]
        assert second != first
        assert _until(base, first, 401) == 401
        assert _status(base, second) == 200
        # and signing out revokes the token it holds
        phone.click("#signout")
        assert _until(base, second, 401) == 401
    finally:
        phone.close()
