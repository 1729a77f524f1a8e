"""A SMART app served from another origin runs in headless Chromium: discovery, the standalone
launch, the token exchange, reads with the bearer token (preflighted), userinfo and a refresh
without client_id all cross origins, under the browser's own CORS enforcement. A page on an
origin no app registered can read the public metadata but not a resident's record.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests import browser_pool
from tests import test_resident_ui as ui
from tests.test_resident_ui import _CDP, CHROMIUM, ZHANG, _free_port

served = ui.served  # huren under uvicorn with 张三's records (fixture)

APP_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>app</title></head><body><script>
const HUREN = "%HUREN%", CLIENT = "x-origin-app", REDIRECT = location.origin + "/cb";
const b64url = b => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\\+/g, "-").replace(/\\//g, "_")
  .replace(/=+$/, "");
async function start() {
  const conf = await (await fetch(HUREN + "/fhir/.well-known/smart-configuration")).json();
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  sessionStorage.setItem("verifier", verifier);
  sessionStorage.setItem("token", conf.token_endpoint);
  location.href = conf.authorization_endpoint + "?" + new URLSearchParams({
    response_type: "code", client_id: CLIENT, redirect_uri: REDIRECT, state: "s1", aud: HUREN + "/fhir",
    scope: "launch/patient openid fhirUser offline_access patient/*.rs",
    code_challenge: challenge, code_challenge_method: "S256"});
}
async function finish() {
  const token = sessionStorage.getItem("token");
  const grant = await (await fetch(token, {method: "POST", body: new URLSearchParams({
    grant_type: "authorization_code", code: new URLSearchParams(location.search).get("code"),
    redirect_uri: REDIRECT, client_id: CLIENT, code_verifier: sessionStorage.getItem("verifier")})})).json();
  const auth = {Authorization: "Bearer " + grant.access_token, Accept: "application/fhir+json"};
  const patient = await (await fetch(HUREN + "/fhir/Patient/" + grant.patient, {headers: auth})).json();
  const me = await (await fetch(HUREN + "/auth/userinfo", {headers: auth})).json();
  const again = await (await fetch(token, {method: "POST", body: new URLSearchParams({
    grant_type: "refresh_token", refresh_token: grant.refresh_token})})).json();
  document.body.dataset.result = JSON.stringify({patient: patient.id, name: patient.name[0].text,
    fhirUser: me.fhirUser, refreshed: !!again.access_token, access: grant.access_token});
}
window.start = start;
if (location.pathname === "/cb") finish().catch(e => { document.body.dataset.error = String(e); });
</script></body></html>"""


def serve_page(html: str) -> tuple[ThreadingHTTPServer, str]:
    """Serve ``html`` at every path of a new origin (another port on this machine)."""
    body = html.encode()

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    port = _free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{port}"


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")
def test_a_smart_app_on_another_origin_launches_and_reads(served, tmp_path: Path):
    engine = served
    huren = engine.settings.public_base_url
    app_server, app_origin = serve_page(APP_PAGE.replace("%HUREN%", huren))
    stranger_server, stranger_origin = serve_page("<!doctype html><title>stranger</title>")
    engine.auth.registry.add("x-origin-app", scopes=["launch/patient", "openid", "fhirUser", "offline_access", "patient/*.rs"],
                             kind="patient-app", redirect_uris=[app_origin + "/cb"], public=True)
    # a page in a fresh browser context of this test process's one Chromium (tests/browser_pool.py)
    page = browser_pool.Page("--lang=zh-CN")
    try:
        cdp = _CDP(page.ws_url)
        cdp.call("Page.enable")
        cdp.call("Page.navigate", url=app_origin + "/")
        cdp.wait("typeof window.start === 'function'")
        cdp.eval("window.start(); true")
        cdp.wait("location.pathname === '/auth/authorize' && !!document.getElementById('national_id')")
        cdp.eval(f"document.getElementById('national_id').value = '{ZHANG}'; document.forms[0].submit()")
        cdp.wait("!!document.getElementById('code')")
        code = json.loads((engine.settings.data_dir / "otp" / "outbox.jsonl").read_text().splitlines()[-1])["code"]
        cdp.eval(f"document.getElementById('code').value = '{code}'; document.forms[0].submit()")
        cdp.wait("location.origin === " + json.dumps(app_origin) + " && location.pathname === '/cb'")
        raw = cdp.wait("document.body && (document.body.dataset.result || document.body.dataset.error)")
        assert not cdp.eval("document.body.dataset.error"), raw
        result = json.loads(raw)
        assert result["patient"] in ("fn-zhang", "fz-zhang") and result["name"] == "张三"
        assert result["fhirUser"] == f"{huren}/fhir/Patient/{result['patient']}" and result["refreshed"]

        # a page on an origin no app registered: public discovery yes, a resident's record no
        cdp.call("Page.navigate", url=stranger_origin + "/")
        cdp.wait(f"location.origin === {json.dumps(stranger_origin)}")
        meta = cdp.eval(f"fetch({json.dumps(huren + '/fhir/metadata')}).then(r => r.status, e => 'blocked')")
        assert meta == 200
        read = cdp.eval(f"fetch({json.dumps(huren + '/fhir/Patient/' + result['patient'])}, "
                        f"{{headers: {{Authorization: 'Bearer {result['access']}'}}}})"
                        ".then(r => r.status, e => 'blocked')")
        assert read == "blocked"
        cdp.ws.close()
    finally:
        page.close()
        app_server.shutdown()
        stranger_server.shutdown()
