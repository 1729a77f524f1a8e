"""rv41p: review probes of httpfix41b (one reader of a decision body) through the real path -- TestClient into the
real store on both backends, the duplicate flag written by the real recognition hook (labels20's county), the held
owner change sent as real HL7 (httpfix41's ``held``)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api import ui_shared
from engine.api.app import create_app
from engine.engine import Engine
from tests import test_httpfix41_edges as hf
from tests import test_insurance_ui as ins
from tests.test_httpfix41b_reasons import _owner, _review, module_backend_eng, one_flag, unreviewed_flag  # noqa: F401 -- fixtures
from tests.test_order35_as_later import _operator
from tests.test_reports_ui import Browser
from tests.test_rv40f_probes import _held_message

server, browser, engine = ins.server, ins.browser, ins.engine
held = hf.held  # a held owner change on each backend (httpfix41's)


def _status_and_issue(r: Any) -> tuple[int, dict[str, Any]]:
    body = r.json() if r.headers.get("content-type", "").split(";")[0].endswith("json") else {}
    return r.status_code, (body.get("issue") or [{}])[0] if isinstance(body, dict) else {}


def test_a_review_naming_its_decision_twice_is_refused_not_decided_by_the_last(
        unreviewed_flag: tuple[Engine, dict[str, str], str]) -> None:  # noqa: F811 -- the fixture
    store, auditor, flag = unreviewed_flag
    with TestClient(create_app(store)) as http:
        r = _review(http, flag, auditor, b'{"decision": "overturned", "reason": "\xe5\xb7\xb2\xe6\xa0\xb8\xe5\xae\x9e", '
                                         b'"decision": "upheld"}')
        kept = store.recognition.flags.get(flag)
        assert r.status_code == 400 and not kept.get("reviews"), (r.status_code, r.text[:300], kept.get("reviews"))


def test_a_review_reason_sent_twice_is_refused(
        unreviewed_flag: tuple[Engine, dict[str, str], str]) -> None:  # noqa: F811 -- the fixture
    store, auditor, flag = unreviewed_flag
    with TestClient(create_app(store)) as http:
        r = _review(http, flag, auditor, '{"decision": "upheld", "reason": "核实一", "reason": "核实二"}'.encode())
        assert r.status_code == 400 and _status_and_issue(r)[1].get("expression") == ["reason"], (r.status_code,
                                                                                                 r.text[:300])
        assert not store.recognition.flags.get(flag).get("reviews")


def test_an_owner_reason_sent_twice_is_refused(held: tuple[Engine, TestClient]) -> None:
    engine, owner_http = held
    msg = _held_message(owner_http, "RV41P-TWICE")
    ops = _operator(engine, "system/MessageHeader.cr", "ops-desk")
    r = _owner(owner_http, msg, ops, '{"reason": "号主一", "reason": "号主二"}'.encode())
    assert r.status_code == 400 and _status_and_issue(r)[1].get("expression") == ["reason"], (r.status_code,
                                                                                             r.text[:300])


def test_a_review_body_with_nan_is_not_json(
        unreviewed_flag: tuple[Engine, dict[str, str], str]) -> None:  # noqa: F811 -- the fixture
    store, auditor, flag = unreviewed_flag
    with TestClient(create_app(store)) as http:
        r = _review(http, flag, auditor, b'{"decision": "upheld", "reason": "ok", "score": NaN}')
        assert r.status_code == 400, (r.status_code, r.text[:300])
        assert not store.recognition.flags.get(flag).get("reviews")


@pytest.mark.parametrize("body", [
    b"\xef\xbb\xbf" + json.dumps({"decision": "upheld", "reason": "已核实"}, ensure_ascii=False).encode(),  # BOM
    b'{"decision": "upheld", "reason": "ok"' + b"," + b'"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # deep
    b'{"decision": "upheld", "reason": 1e999999}',  # a number past float: inf, not text
    b'{"decision": "upheld", "reason": "ok"} {"decision": "overturned"}',  # two documents
    '{"decision": "upheld", "reason": "已核实"}'.encode("gbk"),  # GBK without saying so
    b"decision=upheld&reason=ok",  # a form
])
def test_odd_review_bodies_are_a_400_never_a_500_nor_a_review(
        unreviewed_flag: tuple[Engine, dict[str, str], str], body: bytes) -> None:  # noqa: F811 -- the fixture
    """Guard: each odd body is a 400 OperationOutcome and the flag stays unreviewed."""
    store, auditor, flag = unreviewed_flag
    with TestClient(create_app(store), raise_server_exceptions=False) as http:
        for labelled in ("application/json", "text/plain", "application/x-www-form-urlencoded"):
            r = _review(http, flag, auditor, body, labelled)
            assert r.status_code == 400, (labelled, r.status_code, r.text[:300])
        r = http.post(f"/reports/duplicates/{flag}/review", content=body, headers=auditor)  # no Content-Type
        assert r.status_code == 400, (r.status_code, r.text[:300])
        assert not store.recognition.flags.get(flag).get("reviews")


def test_a_body_labelled_gbk_is_415_before_it_is_read(
        unreviewed_flag: tuple[Engine, dict[str, str], str]) -> None:  # noqa: F811 -- the fixture
    """Guard: charset=gbk is refused by the one body check (require_body_served), not read as UTF-8."""
    store, auditor, flag = unreviewed_flag
    with TestClient(create_app(store)) as http:
        body = '{"decision": "upheld", "reason": "已核实"}'.encode("gbk")
        r = _review(http, flag, auditor, body, "application/json; charset=gbk")
        assert r.status_code == 415 and not store.recognition.flags.get(flag).get("reviews"), r.text[:300]


@ins.pytestmark
@pytest.mark.parametrize("path", ["/ui/nowhere", "/ui/me/%5Cx"])
def test_the_lost_pages_in_chromium_list_every_page_and_each_link_leads_somewhere(engine: Engine, server: str,
                                                                                  browser: Browser, shots: Path,
                                                                                  path: str) -> None:
    """Guard: the 404 and the unreadable-address page, as a person sees them -- Chinese first, the way back exactly
    ``ui_shared.PAGES`` in order, and every link answered by a page or a sign-in, never a 404 of its own."""
    browser.send("Page.navigate", url=server + path)
    browser.wait_for("document.readyState === 'complete' && !!document.querySelector('h1')")
    assert browser.eval("document.documentElement.lang") == "zh-CN"
    h1 = browser.eval("document.querySelector('h1').innerText")
    assert h1.split("\n")[0] in ("找不到这个页面", "无法识别这个地址"), h1
    hrefs = browser.eval("JSON.stringify([...document.querySelectorAll('main a')].map(a => a.getAttribute('href')))")
    assert json.loads(hrefs) == [p.href for p in ui_shared.PAGES], hrefs
    for href in json.loads(hrefs):
        got = browser.eval(f"fetch({json.dumps(href)}, {{headers: {{Accept: 'text/html'}}, redirect: 'manual'}})"
                           ".then(r => r.status)")
        assert got in (0, 200, 302, 303, 401, 403), (href, got)  # 0: an opaque redirect to the sign-in
    (shots / f"lost-{path.strip('/').replace('/', '_').replace('%', '')}.png").write_bytes(base64.b64decode(
        browser.send("Page.captureScreenshot", format="png")["data"]))


# --- the Extended_Pictographic data file at start -------------------------------------------------------------------

_ROOT = Path(__file__).resolve().parent.parent


def _start_with(tmp: Path, spoil: Any) -> subprocess.CompletedProcess[str]:
    """huren's code copied whole, its ``engine/extended_pictographic.txt`` spoiled by ``spoil``, then the app made as
    ``huren serve`` makes it (``create_app`` imported), in a Python of its own. The copy keeps the tree's compiled
    ``__pycache__`` (this module imported ``engine.api.app``, so it is there; ``copytree`` keeps each source's mtime,
    which is what a ``.pyc`` is checked against): the child had compiled every module it imports from source, ~0.55 s
    of CPU a start (suite45b). The data file is read at import, not compiled, so a spoiled one is read as spoiled."""
    for part in ("engine", "adapters", "mappings"):
        shutil.copytree(_ROOT / part, tmp / part)
    spoil(tmp / "engine" / "extended_pictographic.txt")
    code = ("import engine.api.app\nprint('STARTED')\nfrom engine.message_time import reason_of\n"
            "try:\n    print('KEPT', repr(reason_of('\\U0001f469\\u200d\\u2695\\ufe0f')))\n"
            "except ValueError:\n    print('REFUSED')\n")
    return subprocess.run([sys.executable, "-c", code], cwd=tmp, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(tmp)})


def _last_line(done: subprocess.CompletedProcess[str]) -> str:
    return (done.stderr.strip().splitlines() or [""])[-1]


def test_a_missing_pictographic_file_stops_the_start_naming_it(tmp_path: Path) -> None:
    """Guard: no data file, no app -- at start, naming the file, never a 500 at the first reason."""
    done = _start_with(tmp_path, lambda f: f.unlink())
    assert "STARTED" not in done.stdout and "extended_pictographic.txt" in _last_line(done), done.stderr[-600:]


def test_a_corrupt_pictographic_file_stops_the_start_naming_the_file_and_line(tmp_path: Path) -> None:
    done = _start_with(tmp_path, lambda f: f.write_text(f.read_text(encoding="utf-8") + "1F9ZZ ; Extended_Pictographic\n",
                                                        encoding="utf-8"))
    assert "STARTED" not in done.stdout and "extended_pictographic.txt" in _last_line(done), done.stderr[-600:]


def test_pictographic_ranges_out_of_order_stop_the_start(tmp_path: Path) -> None:
    def reverse(f: Path) -> None:
        lines = [ln for ln in f.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]
        f.write_text("\n".join(reversed(lines)) + "\n", encoding="utf-8")
    done = _start_with(tmp_path, reverse)
    assert "STARTED" not in done.stdout, (done.stdout, done.stderr[-600:])  # it starts, and then refuses 👩‍⚕️
