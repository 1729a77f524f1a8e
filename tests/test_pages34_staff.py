"""pages34: the insurance auditor's settlement and indicators page and the operator's refused-messages
page walked as their users read them, in headless Chromium at 1366 px and at 390 px, through the
real path (uvicorn, the real store; HL7 v2 over POST /hl7v2 -- the worked March of the indicators
and opspage26's two refused messages, their fixtures reused).

What a Chinese-speaking reader stumbled on, each asserted in the page's text as shown:
- an alert on the whole medical community named it by its bare code ("告警 ALERT funing："): it
  names the community now, 阜宁县医共体（funing）, as the table beside it does;
- the settlement's heading said "(2026, CNY)" and its tables' figures stood without a unit: it says
  2026年度 · 金额单位：元（CNY） (the unit from the pages' words file, ``currencies``);
- the year-end row read "医共体退还基金 -490.00", a double negative: the words say the direction,
  the figure its size (490.00), as the totals line already did (the report's own amount is unchanged);
- the refused list's 接收时间 did not say its zone (the detail did): its column says 北京时间;
- a sending facility the site has not registered (the usual AR) stood bare, as if a name: it is said
  to be an unregistered code;
- on a phone the ERR's code cell of an AR ("103 表值未找到（代码不在对照表中）", kept on one line)
  ran 20 px past the screen: it wraps there now;
- the message type was the HL7 code alone (ADT^A04), the channel the stored string
  ("http · 127.0.0.1 client=interface-engine"): both are said in words (ADT^A04 门诊登记（挂号）;
  HTTP 接口（POST /hl7v2） · 来自 127.0.0.1 · 接口账号 interface-engine), from
  ``mappings/quarantine/words.yaml``.
Screenshots: HUREN_PAGES34_SHOTS (else the test's temporary folder).
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.engine import Engine
from engine.settings import Settings
from tests import browser_pool
from tests.test_insurance_indicators import fill_march
from tests.test_insurance_ui import sign_in as sign_in_auditor
from tests.test_insurance_ui import small_budget_site
from tests.test_opspage26_quarantine import NEWHOSP, NO_ID, _open, _replay, site  # noqa: F401 - the module's refused messages
from tests.test_opspage26_quarantine import sign_in as sign_in_operator
from tests.test_reports_ui import Browser
from tests.test_resident_ui import CHROMIUM, _free_port, serving
from tests.test_ui12_phone import outside

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")

DESKTOP = {"width": 1366, "height": 768, "deviceScaleFactor": 1, "mobile": False}
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}


def _shots(tmp: Path) -> Path:
    out = Path(os.environ.get("HUREN_PAGES34_SHOTS") or os.environ.get("HUREN_SCREENSHOTS") or tmp)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _shot(b: Browser, folder: Path, name: str) -> None:
    if not browser_pool.shooting("HUREN_PAGES34_SHOTS"):  # for a person to look at; none is taken otherwise
        return
    data = base64.b64decode(b.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"])
    (folder / f"{name}.png").write_bytes(data)


# --- the auditor's settlement and indicators ---------------------------------------------------------

@pytest.fixture(scope="module")
def insurance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, str]]:
    root = tmp_path_factory.mktemp("pages34-insurance")
    engine = Engine(Settings(data_dir=root / "var", http_port=_free_port(), mllp_port=0,
                             site=small_budget_site(root)))
    fill_march(engine)  # the county's stay and bill over POST /hl7v2, the rest of March through FHIR
    with serving(engine):
        yield engine, engine.settings.public_base_url
    engine.close()


@pytest.fixture(scope="module")
def auditor(insurance: tuple[Engine, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Browser, Path]]:
    engine, base = insurance
    b = Browser(tmp_path_factory.mktemp("pages34-auditor"))
    b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
    sign_in_auditor(b, base, engine, "/ui/insurance?month=2026-03&year=2026", "zhao.p34", "auditor")
    b.wait_for("document.querySelector('#settlement').dataset.loaded === '1'")
    yield b, _shots(tmp_path_factory.mktemp("pages34-shots"))
    b.close()


def _alerts(b: Browser) -> list[str]:
    return b.eval("[...document.querySelectorAll('#alerts li')].map(li => li.innerText)")


def _year_end(b: Browser) -> list[list[str]]:
    return b.eval("[...document.querySelectorAll('#settlement tr[data-step=year-end]')]"
                  ".map(r => [r.cells[0].innerText, r.cells[1].innerText])")


def test_a_community_alert_names_the_community(auditor: tuple[Browser, Path]) -> None:
    b, _ = auditor
    alerts = _alerts(b)
    community = [a for a in alerts if "县域内就诊率" in a]
    assert community and all("阜宁县医共体（funing）：" in a for a in community), alerts
    assert not any("funing：" in a and "（funing）：" not in a for a in alerts), alerts  # never the bare code
    # an institution's alert still names the institution
    assert any("阜宁县人民医院（FNXRMYY）：" in a for a in alerts), alerts


def test_the_settlement_says_its_unit_and_a_year_end_its_size(insurance: tuple[Engine, str],
                                                             auditor: tuple[Browser, Path]) -> None:
    b, shots = auditor
    heading = b.eval("document.querySelector('#settlement h3').innerText")
    assert "2026年度" in heading and "金额单位：元（CNY）" in heading and "(2026, CNY)" not in heading, heading
    rows = _year_end(b)
    returns = next(r for r in rows if "医共体退还基金" in r[0])  # the employees' year: prepaid 600, paid 110
    assert returns[1] == "490.00", rows
    pays = next(r for r in rows if "基金向医共体补付" in r[0])
    assert pays[1] == "3,600.00", rows  # thousands grouped (evid35)
    # the report itself is unchanged: the amount keeps its sign for whoever reads the JSON
    amounts = b.eval("fetch('/reports/settlement?year=2026').then(r => r.json()).then(b => b.regions.flatMap("
                     "g => g.communities.flatMap(c => c.settlements.flatMap(s => s.steps.filter(x => x.step === 'year-end')"
                     ".map(x => Number(x.amount))))))")
    assert sorted(amounts) == [-490, 3600], amounts
    _shot(b, shots, "insurance-desktop")


def test_on_a_phone_the_same_and_nothing_sticks_out(auditor: tuple[Browser, Path]) -> None:
    b, shots = auditor
    b.send("Emulation.setDeviceMetricsOverride", **PHONE)
    try:
        assert outside(b, PHONE) == []
        assert any("阜宁县医共体（funing）：" in a for a in _alerts(b))
        assert "金额单位：元（CNY）" in b.eval("document.querySelector('#settlement h3').innerText")
        assert any(r[1] == "490.00" for r in _year_end(b))
        _shot(b, shots, "insurance-phone")
    finally:
        b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)


def test_a_community_not_known_is_said_in_full_and_takes_the_old_notes_away(auditor: tuple[Browser, Path]) -> None:
    """An empty month first (its "—" note shown), then a community typed wrong: the page says there
    is none by that name -- in English too, whole -- and keeps no note about figures it took away."""
    b, shots = auditor

    def ask(month: str, community: str) -> None:
        b.eval("{ const f = document.querySelector('#indicators-form'); document.querySelector('#message').textContent = '';"
               f" f.elements.month.value = {json.dumps(month)}; f.elements.community.value = {json.dumps(community)};"
               " f.requestSubmit(); } true")

    ask("2025-01", "")
    b.wait_for("document.querySelector('#indicators').dataset.month === '2025-01'")
    assert b.eval("document.querySelector('#ind-empty').hidden") is False  # nothing to divide by: said
    ask("2025-01", "阜宁医共体")
    b.wait_for("document.querySelector('#message').innerText.includes('阜宁医共体')")
    said = b.eval("document.querySelector('#message').innerText")
    assert "没有名为“阜宁医共体”的医共体" in said and "No medical community is named 阜宁医共体" in said, said
    assert b.eval("document.querySelectorAll('#indicators tbody tr').length") == 0
    assert b.eval("document.querySelector('#ind-empty').hidden") is True, "the empty month's note stayed"
    _shot(b, shots, "insurance-unknown-community-desktop")


# --- the operator's refused messages -------------------------------------------------------------------

@pytest.fixture(scope="module")
def operator(site: tuple[Engine, str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Browser, Path]]:  # noqa: F811
    engine, base, _ = site
    b = Browser(tmp_path_factory.mktemp("pages34-operator"))
    b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
    sign_in_operator(b, engine, base, "it.wu34", "operator", "吴运维", "/ui/quarantine")
    b.wait_for("document.body.dataset.loaded === '1'")
    yield b, _shots(tmp_path_factory.mktemp("pages34-shots"))
    b.close()


def _cells(b: Browser, control: str) -> dict[str, str]:
    """The row's cells by their caption (the phone's card labels are the columns' words)."""
    return dict(b.eval(f"[...[...document.querySelectorAll('#messages tbody tr')].find(r => r.innerText.includes("
                       f"{json.dumps(control)})).cells].map(c => [c.dataset.label, c.innerText])"))


def test_the_list_says_its_times_are_beijing_and_names_what_each_message_is(operator: tuple[Browser, Path]) -> None:
    b, shots = operator
    head = b.eval("document.querySelector('#messages thead th').innerText")
    assert "北京时间" in head, head
    new = _cells(b, NEWHOSP)
    assert list(new)[0].startswith("接收时间（北京时间）"), new  # the phone's card caption says it too
    assert new["发送机构 Institution"].startswith("FNNEWHOSP（本站未登记的机构代码"), new
    assert new["消息类型 Type"] == "ADT^A04 门诊登记（挂号）", new
    bad = _cells(b, NO_ID)
    assert bad["发送机构 Institution"] == "阜宁县中医院（FNZYY）", bad  # a registered one: its name
    assert bad["消息类型 Type"] == "ORU^R01 检验/检查结果", bad
    _shot(b, shots, "quarantine-list-desktop")


def test_a_message_says_how_it_came_in_words(operator: tuple[Browser, Path]) -> None:
    b, shots = operator
    _open(b, NEWHOSP)
    facts = b.eval("Object.fromEntries([...document.querySelectorAll('#d-facts dt')].map(dt => "
                   "[dt.innerText, dt.nextElementSibling.innerText]))")
    assert facts["通道 Channel"] == "HTTP 接口（POST /hl7v2） · 来自 127.0.0.1 · 接口账号 interface-engine", facts
    assert facts["消息类型 Type"].startswith("ADT^A04 门诊登记（挂号） · HL7 "), facts
    assert facts["发送机构 Institution"].startswith("FNNEWHOSP（本站未登记的机构代码"), facts
    _shot(b, shots, "quarantine-detail-desktop")
    b.send("Emulation.setDeviceMetricsOverride", **PHONE)
    try:
        _shot(b, shots, "quarantine-detail-phone")
        assert outside(b, PHONE) == []
    finally:
        b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)


def test_a_replay_says_its_time_is_beijing_and_who(operator: tuple[Browser, Path]) -> None:
    """Replayed as it is (no site change), the message with no patient identifier is refused again;
    the replay is listed under the receipt with its time's zone said, as the receipt's is."""
    b, shots = operator
    _open(b, NO_ID)
    assert "AE" in _replay(b, reload=False)
    b.wait_for("[...document.querySelectorAll('#d-facts dt')].some(dt => dt.innerText.startsWith('重新处理'))")
    replayed = b.eval("[...document.querySelectorAll('#d-facts dt')].filter(dt => dt.innerText.startsWith('重新处理'))"
                      ".map(dt => dt.nextElementSibling.innerText)")
    assert len(replayed) == 1 and replayed[0].endswith("（北京时间） · 操作人 it.wu34"), replayed
    _shot(b, shots, "quarantine-replayed-desktop")


def test_the_words_come_from_the_data_file(site: tuple[Engine, str, Path]) -> None:  # noqa: F811
    """The page's words for message types and channels are served with the rest (/ui/quarantine/words),
    so a site can name its own (HUREN_SITE/quarantine/words.yaml) -- checked like the other sections."""
    from engine.api.ui_quarantine import WORDS

    engine, _, folder = site
    words = WORDS.current(folder)
    assert words["messages"]["ORU"] == "检验/检查结果" and words["channels"]["mllp"].startswith("MLLP")
    with pytest.raises(urllib.error.HTTPError) as nobody:  # site rules, but for an operator's page only
        urllib.request.urlopen(engine.settings.public_base_url + "/ui/quarantine/words")  # noqa: S310 - our own test server
    assert nobody.value.code == 401
