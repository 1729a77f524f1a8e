"""opspage26: the operator's page of refused messages, ``/ui/quarantine``, in headless Chromium through
the real app (uvicorn), the real store and real HL7 over ``POST /hl7v2`` (twenty-sixth round).

One app for the module (a site folder of its own, so a test can register an institution and replay);
each test a fresh context of the shared Chromium (tests/browser_pool.py). Screenshots are taken
when ``HUREN_OPSPAGE26_SHOTS`` or ``HUREN_SCREENSHOTS`` is set, into that folder (suite45e). What is asserted is what the person sees:
visible text, boxes inside the viewport; and what the engine then holds (the message's status, the
audit trail's record of the replay naming the operator).
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.audit.record import event_of
from engine.auth.staff import StaffDirectory
from engine.engine import Engine
from engine.messages import QUARANTINED
from engine.settings import Settings
from tests import browser_pool
from tests.test_reports_ui import AUDITOR_PASSWORD, Browser
from tests.test_resident_record_ui import _http, hl7, msh
from tests.test_resident_ui import CHROMIUM, _free_port, serving
from tests.test_staff_signin import rfc6238
from tests.test_ui12_phone import outside

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")

REPO = Path(__file__).resolve().parent.parent
SHOTS = Path(os.environ.get("HUREN_OPSPAGE26_SHOTS") or os.environ.get("HUREN_SCREENSHOTS") or "/tmp/opspage26")
DESKTOP = {"width": 1366, "height": 768, "deviceScaleFactor": 1, "mobile": False}
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}
ER7 = "x-application/hl7-v2+er7"
NO_ID = "OPS26-NOID-1"  # an ORU whose PID-3 holds no identifier: AE, and AE again on replay
NEWHOSP = "OPS26-NEW-1"  # from a hospital the site has not registered yet: AR, then AA once it is
ISO_INSTANT = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}"
# a lab's long unbroken value (a specimen barcode run together) and markup in a note: the raw
# message must wrap on a phone and show the markup as text
LONG = "SPECIMEN" + "0123456789" * 12


def _shot(browser: Browser, name: str, full: bool = True) -> Path:
    """The page as a PNG, when screenshots are asked for (``browser_pool.shooting``)."""
    out = SHOTS / f"{name}.png"
    if browser_pool.shooting("HUREN_OPSPAGE26_SHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(browser.send("Page.captureScreenshot", format="png",
                                                      captureBeyondViewport=full)["data"]))
    return out


def _post(base: str, token: str, body: bytes) -> str:
    status, headers, ack = _http("POST", base + "/hl7v2", token, body, ER7)
    assert status == 200, ack
    return headers.get("x-hl7-ack-code") or ""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, str, Path]]:
    root = tmp_path_factory.mktemp("opspage26")
    folder = root / "site"
    folder.mkdir()
    (folder / "institutions.yaml").write_text((REPO / "mappings" / "institutions.yaml").read_text(encoding="utf-8"),
                                              encoding="utf-8")
    engine = Engine(Settings(data_dir=root / "var", http_port=_free_port(), mllp_port=0, site=folder))
    with serving(engine):
        base = engine.settings.public_base_url
        sender = engine.auth.issue_system_token("interface-engine", "system/MessageHeader.c")
        bad = hl7(msh("LIS", "FNZYY", "202503211100", "ORU^R01^ORU_R01", NO_ID),
                  "PID|1||^^^公安部^NNCHN||李^秀英||19880903|F",
                  "ORC|RE|OPS-O^HIS|OPS-F^LIS||CM",
                  "OBR|1|OPS-O^HIS|OPS-F^LIS|XCG^血常规^L|||202503210800||||||||BLD&血液|D9^王^医生||||||20250321103000|||F",
                  f"OBX|1|NM|HGB^血红蛋白^L||120|g/L|115-150|N|||F|||20250321100000||||{LONG}",
                  "NTE|1||<b>复查</b> & <script>alert(1)</script>")
        assert _post(base, sender, bad) == "AE"
        time.sleep(0.01)  # received after the first: newest first puts it on top
        new = hl7(msh("HIS", "FNNEWHOSP", "202503221000", "ADT^A04^ADT_A01", NEWHOSP), "EVN|A04|20250322100000",
                  "PID|1||320923199001010016^^^公安部^NNCHN~NH0001^^^FNNEWHOSP^MR||孙^新院||19900101|M", "PV1|1|O")
        assert _post(base, sender, new) == "AR"
        yield engine, base, folder
    engine.close()


def sign_in(b: Browser, engine: Engine, base: str, name: str, role: str, display: str, page: str) -> None:
    """The person opens ``page``, is sent to sign in, types name, password and the TOTP code, and is back."""
    secret = StaffDirectory(engine.settings.data_dir).add(
        name, role=role, institution="YBJ", password=AUDITOR_PASSWORD, display=display, roles=engine.staff.roles).secret
    b.send("Page.enable")
    b.send("Page.navigate", url=base + page)
    b.wait_for("location.pathname === '/ui/signin' && document.readyState === 'complete'")
    b.eval(f"document.querySelector('#name').value = {json.dumps(name)};"
           f"document.querySelector('#password').value = {json.dumps(AUDITOR_PASSWORD)};"
           f"document.querySelector('#code').value = {json.dumps(rfc6238(secret, time.time()))};"
           "document.querySelector('#signin').submit(); true")
    b.wait_for(f"location.pathname === {json.dumps(page.split('?')[0])} && document.readyState === 'complete'")


def _row(b: Browser, control: str) -> str:
    return b.eval(f"[...document.querySelectorAll('#messages tbody tr')].find(r => r.innerText.includes({json.dumps(control)}))?.innerText")


def _open(b: Browser, control: str) -> None:
    b.eval(f"[...document.querySelectorAll('#messages tbody tr')].find(r => r.innerText.includes({json.dumps(control)}))"
           ".querySelector('button.open').click(); true")
    b.wait_for(f"!document.querySelector('#detail').hidden && document.querySelector('#d-facts').innerText.includes({json.dumps(control)})")


def _replay(b: Browser, reload: bool = True) -> str:
    """Press 重新处理, read the confirmation, confirm; the answer said on the page."""
    b.eval(f"document.querySelector('#reload').checked = {json.dumps(reload)}; document.querySelector('#replay').click(); true")
    b.wait_for("document.querySelector('#confirm').open")
    asked = b.eval("document.querySelector('#confirm').innerText")
    assert "确认重新处理" in asked and "审计" in asked, asked
    b.eval("document.querySelector('#replay-said').dataset.ack = ''; document.querySelector('#confirm-yes').click(); true")
    b.wait_for("!!document.querySelector('#replay-said').dataset.ack")
    return b.eval("document.querySelector('#replay-said').innerText")


def test_operator_reads_why_in_chinese_and_replays_after_the_site_is_fixed(site) -> None:
    engine, base, folder = site
    b = Browser(SHOTS)
    try:
        b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
        # from the pages' navigation: the operator's link, as the probe asked
        sign_in(b, engine, base, "it.wu26", "operator", "吴运维", "/ui/duplicates")
        b.wait_for("document.body.dataset.loaded === '1'")
        assert b.eval("!document.querySelector('#nav-quarantine').hidden")
        b.eval("document.querySelector('#nav-quarantine').click(); true")
        b.wait_for("location.pathname === '/ui/quarantine' && document.body.dataset.loaded === '1'")
        assert b.eval("document.documentElement.lang") == "zh-CN" and b.eval("document.title").startswith("拒收消息")
        rows = b.eval("[...document.querySelectorAll('#messages tbody tr')].map(r => r.innerText)")
        assert len(rows) == 2 and NEWHOSP in rows[0] and NO_ID in rows[1], rows  # newest first
        assert not re.search(ISO_INSTANT, "\n".join(rows)), rows  # times as people read them, Beijing's
        assert "阜宁县中医院（FNZYY）" in rows[1] and "ORU^R01" in rows[1] and "AE 应用错误" in rows[1], rows[1]
        assert "AR 拒收" in rows[0] and "发送机构“FNNEWHOSP”未在本站登记" in rows[0], rows[0]
        _shot(b, "01-list-desktop")

        # filters: another institution finds nothing, said in words; a date range of today finds both
        b.eval("document.querySelector('[name=facility]').value = '阜宁县人民医院'; document.querySelector('#apply').click(); true")
        b.wait_for("document.querySelector('#messages tbody tr.empty') !== null")
        assert "没有拒收的消息" in b.eval("document.querySelector('#messages tbody').innerText")
        assert "facility=阜宁县人民医院" in b.eval("decodeURIComponent(location.search)")  # kept for a reload, as typed
        today = b.eval("window.hurenBeijing.beijingDay()")
        b.eval(f"document.querySelector('[name=facility]').value = ''; document.querySelector('[name=from]').value = '{today}';"
               f"document.querySelector('[name=to]').value = '{today}'; document.querySelector('#apply').click(); true")
        b.wait_for("document.querySelector('#list-count').dataset.total === '2'")
        b.eval("document.querySelector('[name=to]').value = '2025-03-21'; document.querySelector('[name=from]').value = '2025-03-01';"
               "document.querySelector('#apply').click(); true")
        b.wait_for("document.querySelector('#list-count').dataset.total === '0'")  # received today, not in March 2025
        b.eval("document.querySelector('[name=from]').value = ''; document.querySelector('[name=to]').value = '';"
               "document.querySelector('#apply').click(); true")
        b.wait_for("document.querySelector('#list-count').dataset.total === '2'")

        # one message: each ERR as 段 / 字段 / 原因 in Chinese, the raw message as text
        _open(b, NO_ID)
        errs = b.eval("[...document.querySelectorAll('#errs tbody tr')].map(r => [...r.cells].map(c => c.innerText))")
        seg, field, reason, code = errs[0]
        assert seg.startswith("PID 患者信息") and field.startswith("PID-3") and "患者标识符" in field, errs
        assert reason.startswith("患者标识符（PID-3）为空") and code.startswith("101 必填字段缺失"), errs
        raw = b.eval("document.querySelector('#d-raw').innerText")
        raw_html = b.eval("document.querySelector('#d-raw').innerHTML")
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in raw_html and b.eval("document.querySelectorAll('#d-raw *').length") == 0
        assert b.eval("getComputedStyle(document.querySelector('#d-raw')).whiteSpace") == "pre-wrap", raw
        assert "monospace" in b.eval("getComputedStyle(document.querySelector('#d-raw')).fontFamily")
        _shot(b, "02-detail-desktop")

        # replayed as it is: refused again, said in Chinese with why; still in the list
        said = _replay(b, reload=False)
        _shot(b, "03-replay-fails-again-desktop")
        assert said.startswith("重新处理后仍未通过：AE") and "患者标识符（PID-3）为空" in said, said
        assert engine.ingestor.messages.count(QUARANTINED) == 2
        assert _row(b, NO_ID) is not None

        # the AR from the hospital not yet registered: replayed before the site knows it, AR again
        _open(b, NEWHOSP)
        assert "发送机构“FNNEWHOSP”未在本站登记" in b.eval("document.querySelector('#errs').innerText")
        said = _replay(b, reload=True)
        assert said.startswith("重新处理后仍未通过：AR"), said
        # the integrator registers it in the site's institutions.yaml; the replay (re-reading the site) goes through
        shipped = (folder / "institutions.yaml").read_text(encoding="utf-8")
        (folder / "institutions.yaml").write_text(shipped + "- code: FNNEWHOSP\n  name: 阜宁县新院\n  community: funing\n",
                                                  encoding="utf-8")
        said = _replay(b, reload=True)
        _shot(b, "04-replay-succeeds-desktop")
        assert said.startswith("重新处理成功：AA 已接收") and "移出拒收清单" in said, said
        b.wait_for("document.querySelector('#list-count').dataset.total === '1'")
        assert _row(b, NEWHOSP) is None
        assert "已处理" in b.eval("document.querySelector('#d-facts').innerText")
        assert b.eval("document.querySelector('#replay-box').hidden")  # nothing left to replay
        assert engine.ingestor.messages.count(QUARANTINED) == 1

        # audited as every replay is: the request's record and the ingest's, naming the operator
        log = engine.audit
        events = [event_of(d["data"]) for d in (log.get(seq) for seq in range(log.size)) if d is not None]
        replays = [e for e in events if any(c.get("code") == "replay" for c in e.get("subtype") or ())]
        assert replays and all(
            any("it.wu26" in json.dumps(a, ensure_ascii=False) for a in e.get("agent") or ()) for e in replays), replays
        doc = next(d for d in engine.ingestor.messages.quarantined() if d["control_id"] == NO_ID)
        assert [r["by"] for r in doc["replays"]] == ["it.wu26"]
    finally:
        b.close()


def test_an_auditor_and_a_resident_are_refused_in_chinese(site) -> None:
    engine, base, _ = site
    b = Browser(SHOTS)
    try:
        b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
        sign_in(b, engine, base, "wang.shen26", "auditor", "王审", "/ui/quarantine")
        seen = b.eval("document.body.innerText")
        _shot(b, "05-auditor-refused-desktop")
        assert "您无权查看拒收消息" in seen and "审核员" in seen, seen
        assert b.eval("document.documentElement.lang") == "zh-CN"
        status = b.eval("fetch('/ui/quarantine').then(r => r.status)")
        api = b.eval("fetch('/admin/quarantine').then(r => r.status)")
        words = b.eval("fetch('/ui/quarantine/words').then(r => r.status)")
        replay = b.eval("fetch('/admin/quarantine/x/replay', {method: 'POST'}).then(r => r.status)")
        assert (status, api, words, replay) == (403, 403, 403, 403)
        # the auditor's own page offers no link to it
        b.send("Page.navigate", url=base + "/ui/duplicates")
        b.wait_for("document.body.dataset.loaded === '1'")
        assert b.eval("document.querySelector('#nav-quarantine').hidden")
    finally:
        b.close()
    # a resident's token (her phone app's) on the page and on the API
    token, _ = engine.auth.issue_token(subject="person-1", kind="patient", client_id="huren-me",
                                       scopes=["patient/*.rs"], patient="p-1", person="person-1")
    for path in ("/ui/quarantine", "/admin/quarantine"):
        req = urllib.request.Request(base + path, headers={"Authorization": "Bearer " + token})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req)  # noqa: S310 - our own test server
        assert refused.value.code == 403, path
        body = refused.value.read().decode()
        if path == "/ui/quarantine":
            assert "您无权查看拒收消息" in body and "居民" in body, body[:300]


def test_the_page_fits_a_phone(site) -> None:
    engine, base, _ = site
    b = Browser(SHOTS)
    try:
        b.send("Emulation.setDeviceMetricsOverride", **PHONE)
        sign_in(b, engine, base, "it.phone26", "operator", "吴手机", "/ui/quarantine")
        b.wait_for("document.body.dataset.loaded === '1'")
        _shot(b, "06-list-phone", full=False)
        assert outside(b, PHONE) == []
        _open(b, NO_ID)
        assert LONG in b.eval("document.querySelector('#d-raw').innerText")
        _shot(b, "07-detail-phone", full=True)
        assert outside(b, PHONE) == []
        assert b.eval("document.documentElement.scrollWidth") <= PHONE["width"]
        b.eval("document.querySelector('#replay').click(); true")
        b.wait_for("document.querySelector('#confirm').open")
        _shot(b, "08-confirm-phone", full=False)
        assert outside(b, PHONE) == []
        b.eval("document.querySelector('#confirm-no').click(); true")  # cancelled: nothing replayed
        b.wait_for("!document.querySelector('#confirm').open")
        # the page session replays only with its CSRF token, as the other pages' changes
        doc_id = b.eval("document.querySelector('#d-id').innerText")
        assert b.eval(f"fetch('/admin/quarantine/{doc_id}/replay', {{method: 'POST'}}).then(r => r.status)") == 403
        doc = next(d for d in engine.ingestor.messages.quarantined() if d["control_id"] == NO_ID)
        assert len(doc.get("replays") or []) <= 1  # the desktop test's replay at most, none from here
    finally:
        b.close()


def test_the_list_is_filtered_by_when_it_was_received(site) -> None:
    """``since``/``before`` on ``/admin/quarantine`` (the page's date filter, Beijing's days as instants
    with their offset); an instant without an offset says no zone: 400, an OperationOutcome."""
    engine, base, _ = site
    token = engine.auth.issue_system_token("ops-console", "system/MessageHeader.r")
    doc = next(d for d in engine.ingestor.messages.quarantined() if d["control_id"] == NO_ID)
    at = doc["received_at"]  # 2026-12-03T17:34:00.123456Z
    def total(**params: str) -> int:
        query = urllib.parse.urlencode(params)
        return json.loads(_http("GET", f"{base}/admin/quarantine?{query}", token)[2])["total"]
    everything = total()
    assert total(since=at) >= 1 and total(before=at) < everything
    assert total(since="2999-01-01T00:00:00+08:00") == 0
    day = at[:10]
    assert total(since=f"{day}T00:00:00Z", before=f"{day}T23:59:59.999999Z", facility="FNZYY") == 1
    with pytest.raises(urllib.error.HTTPError) as bad:
        _http("GET", f"{base}/admin/quarantine?since={day}", token)
    assert bad.value.code == 400 and json.loads(bad.value.read())["resourceType"] == "OperationOutcome"


def test_the_words_table_covers_huren_codes_and_is_checked(tmp_path: Path) -> None:
    """Every HL7 table 0357 code huren answers with has Chinese words; a site's reason whose pattern
    does not compile, or whose sentence names a group the pattern does not capture, is refused with
    the file and the reason's id (at run time the last good words stay in force)."""
    from adapters.hl7v2 import errors
    from engine.api.ui_quarantine import SHIPPED, WORDS_FILE, QuarantineWords, _checked, _python_pattern
    from mappings.sitefiles import SiteError, read_yaml

    table = QuarantineWords().current(None)
    used = {v for k, v in vars(errors).items() if k.isupper() and isinstance(v, str) and v.isdigit()}
    assert used and used <= set(table["codes"]), used - set(table["codes"])
    # huren's own sentences, as the engine writes them, find their Chinese
    said = {r["id"]: re.compile(_python_pattern(r["match"])) for r in table["reasons"]}
    assert said["unknown-sender"].search("sending facility 'FNNEWHOSP' is not a registered institution "
                                         "(institutions.yaml of the site)").group("code") == "FNNEWHOSP"
    assert said["no-patient-identifier"].search(
        "PID-3 (patient identifier list) has no identifier, nor has PID-2, PID-4, PID-19 or PID-20")
    site = tmp_path / "site"
    (site / "quarantine").mkdir(parents=True)
    bad = site / WORDS_FILE
    bad.write_text("reasons:\n  - id: typo\n    match: 'sending (?<who>x'\n    zh: '{who}'\n", encoding="utf-8")
    with pytest.raises(SiteError, match="typo"):
        _checked(read_yaml(bad).data, bad)
    bad.write_text("reasons:\n  - id: unnamed\n    match: 'sending (?<who>x)'\n    zh: '{whom}'\n", encoding="utf-8")
    with pytest.raises(SiteError, match="whom"):
        _checked(read_yaml(bad).data, bad)
    words = QuarantineWords()
    assert words.current(site)["codes"] == table["codes"]  # the broken file: the shipped words stay
    bad.write_text("codes:\n  '207': 系统内部错误\nreasons:\n  - id: mine\n    match: 'sending (?<who>x)'\n    zh: '{who}'\n",
                   encoding="utf-8")
    time.sleep(0.01)
    mine = words.current(site)
    assert mine["codes"]["207"] == "系统内部错误" and mine["reasons"][0]["id"] == "mine"  # the site's first
    assert SHIPPED.is_file()
