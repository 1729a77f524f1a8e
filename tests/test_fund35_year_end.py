"""fund35: the settlement's year-end said fund by fund, never netted across funds.

Each settlement is one insurance type's fund: 居民医保 and 职工医保 are separate pools. In the pages'
March (``fill_march``: HL7 over POST /hl7v2 and FHIR, on a small budget) the residents' fund pays the
community 3,600.00 more at the year-end and the community returns 490.00 to the employees' fund. The
page's totals line had read "年终清算 基金补付 3110.00" -- 3,600 less 490, a figure no fund pays, which an
auditor or the insurance bureau would act on wrongly (rvui35's note). Now:
- the page says each fund's year-end, who pays whom and how much, in 元 to the fen and grouped as the
  indicators say money (evid35's money()): "居民医保：基金补付 3,600.00 元", "职工医保：医共体退还基金 490.00 元";
- the totals line keeps what adds up across funds (budget, spending, prepaid, fund pays) and no net;
- the API keeps every field (``totals.balance`` too: deployments read it), each settlement carries
  its own year-end (``balance``, ``direction``), and ``huren settle`` prints each fund's year-end and
  calls the sum a net, paid by no fund.
Walked at 1366 px and 390 px in headless Chromium (the real server, the real store). Screenshots:
HUREN_FUND35_SHOTS (else the test's temporary folder).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path

import pytest

from engine import cli
from engine.engine import Engine
from engine.settings import Settings
from tests import browser_pool
from tests.test_insurance_indicators import fill_march
from tests.test_insurance_ui import sign_in, small_budget_site
from tests.test_reports_ui import Browser
from tests.test_resident_ui import CHROMIUM, _free_port, serving
from tests.test_ui12_phone import outside

DESKTOP = {"width": 1366, "height": 768, "deviceScaleFactor": 1, "mobile": False}
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")


def _shots(tmp: Path) -> Path:
    out = Path(os.environ.get("HUREN_FUND35_SHOTS") or os.environ.get("HUREN_SCREENSHOTS") or tmp)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _shot(b: Browser, folder: Path, name: str, selector: str = "#settlement") -> None:
    """The settlement section (the part an auditor reads here), whole."""
    if not browser_pool.shooting("HUREN_FUND35_SHOTS"):  # for a person to look at; none is taken otherwise
        return
    box = b.eval(f"(() => {{ const r = document.querySelector('{selector}').getBoundingClientRect();"
                 " return [r.left + scrollX, r.top + scrollY, r.width, r.height]; })()")
    clip = {"x": box[0], "y": box[1], "width": box[2], "height": box[3], "scale": 1}
    data = b.send("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip)["data"]
    (folder / f"{name}.png").write_bytes(base64.b64decode(data))


@pytest.fixture(scope="module")
def insurance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    root = tmp_path_factory.mktemp("fund35")
    engine = Engine(Settings(data_dir=root / "var", http_port=_free_port(), mllp_port=0,
                             site=small_budget_site(root)))
    fill_march(engine)  # the county's stay and bill over POST /hl7v2, the rest of March through FHIR
    with serving(engine):
        yield engine
    engine.close()


@pytest.fixture(scope="module")
def auditor(insurance: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Browser, Path]]:
    b = Browser(tmp_path_factory.mktemp("fund35-auditor"))
    b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)
    sign_in(b, insurance.settings.public_base_url, insurance, "/ui/insurance?month=2026-03&year=2026",
            "qian.f35", "auditor")
    b.wait_for("document.querySelector('#settlement').dataset.loaded === '1'")
    yield b, _shots(tmp_path_factory.mktemp("fund35-shots"))
    b.close()


def _lines(b: Browser) -> tuple[str, str]:
    """The totals line and the year-end line, as shown."""
    return (b.eval("document.querySelector('#settlement p.totals:not(.year-end)').innerText"),
            b.eval("document.querySelector('#settlement p.year-end').innerText"))


@needs_chromium
def test_the_year_end_says_each_fund_who_pays_whom_and_never_a_net(auditor: tuple[Browser, Path]) -> None:
    b, shots = auditor
    totals, year_end = _lines(b)
    # each fund's own year-end, in 元 to the fen, thousands grouped
    assert "居民医保：基金补付 3,600.00 元" in year_end, year_end
    assert "职工医保：医共体退还基金 490.00 元" in year_end, year_end
    assert year_end.startswith("年终清算（各基金分别结算）："), year_end
    # the English under it says the same, fund by fund
    assert "resident: the fund pays 3,600.00" in year_end and "employee: the community returns 490.00" in year_end
    # no figure of the two funds netted, anywhere in the settlement
    whole = b.eval("document.querySelector('#settlement').innerText")
    assert "3,110" not in whole and "3110" not in whole, whole
    # the totals keep what adds up across the funds (1,000 + 8,000 budgets; 8,510 paid over the year)
    assert totals.startswith("合计（各险种之和）：预算 9,000.00 · 支出 8,600.00 · 已预付 5,400.00 · 基金全年支付 8,510.00"), totals
    assert "年终" not in totals and "补付" not in totals and "退还" not in totals, totals
    _shot(b, shots, "fund35-settlement-desktop")


@needs_chromium
def test_the_year_end_tables_and_line_agree(insurance: Engine, auditor: tuple[Browser, Path]) -> None:
    """Each fund's line is its table's year-end row: the same size, the same direction, and both what
    the API reports for that settlement (whose own figures are unchanged, their signs kept)."""
    b, _ = auditor
    rows = b.eval("[...document.querySelectorAll('#settlement table.steps')].map(t => [t.caption.innerText,"
                  " t.querySelector('tr[data-step=year-end]').cells[0].innerText,"
                  " t.querySelector('tr[data-step=year-end]').cells[1].innerText])")
    assert len(rows) == 2, rows
    _, year_end = _lines(b)
    for caption, words, amount in rows:
        fund = "居民医保" if caption.startswith("城乡居民") else "职工医保"
        said = "基金补付" if "补付" in words else "医共体退还基金"
        assert f"{fund}：{said} {amount} 元" in year_end, (rows, year_end)
    report = b.eval("fetch('/reports/settlement?year=2026').then(r => r.json()).then(j => j.regions[0].communities[0])"
                    ".then(c => JSON.stringify([c.totals, c.settlements.map(s => [s.insurance_type, s.balance, s.direction])]))")
    totals, each = json.loads(report)
    assert sorted(each) == [["employee", -490.0, "community-returns"], ["resident", 3600.0, "fund-pays"]], each
    assert set(totals) == {"budget", "spending", "prepaid", "fund_pays", "balance"}  # no field dropped
    assert D(str(totals["balance"])) == D("3110.00")  # kept for the API's readers: the sum of the two


@needs_chromium
def test_on_a_phone_each_fund_reads_whole_and_nothing_sticks_out(auditor: tuple[Browser, Path]) -> None:
    b, shots = auditor
    b.send("Emulation.setDeviceMetricsOverride", **PHONE)
    try:
        assert outside(b, PHONE) == []
        _, year_end = _lines(b)
        assert "居民医保：基金补付 3,600.00 元" in year_end and "职工医保：医共体退还基金 490.00 元" in year_end
        # a fund's words and its amount are not split across lines on a 390 px screen ("医共体退" / "还基金",
        # "3,600.00" / "元" had been): each fund's phrase sits on one line
        tops = b.eval("[...document.querySelectorAll('#settlement p.year-end span.fund')].map(s => {"
                      " const r = document.createRange(); r.selectNodeContents(s);"
                      " return [s.innerText, new Set([...r.getClientRects()].map(x => Math.round(x.top))).size]; })")
        assert len(tops) == 2 and all(lines == 1 for _, lines in tops), tops
        _shot(b, shots, "fund35-settlement-phone")
        _shot(b, shots, "fund35-phone-totals-and-year-end", "#settlement .community p.totals")
        _shot(b, shots, "fund35-phone-year-end", "#settlement p.year-end")
    finally:
        b.send("Emulation.setDeviceMetricsOverride", **DESKTOP)


def test_huren_settle_prints_each_funds_year_end_and_calls_the_sum_a_net(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The command line says what the page says: each fund's year-end (who pays whom, how much) and
    the sum only as a net; its JSON is the API's, each settlement with its own year-end."""
    engine = Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=small_budget_site(tmp_path)))
    http = fill_march(engine)
    api = http.get("/reports/settlement?year=2026")
    assert api.status_code == 200, api.text
    settings = engine.settings
    engine.close()  # the CLI opens its own engine on the same data directory
    monkeypatch.setenv("HUREN_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("HUREN_SITE", str(settings.site))
    assert cli.main(["settle", "2026", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == api.json()
    assert cli.main(["settle", "2026"]) == 0
    text = capsys.readouterr().out
    lines = [ln.strip() for ln in text.splitlines()]
    totals = next(ln for ln in lines if ln.startswith("totals:"))
    assert totals == "totals: budget 9000.00  spending 8600.00  prepaid 5400.00  fund pays 8510.00", totals
    start = lines.index("year-end by fund:")
    assert lines[start + 1:start + 4] == [
        "employee (职工基本医疗保险): the community returns to the fund 490.00",
        "resident (城乡居民基本医疗保险): the fund pays the community 3600.00",
        "(net of the funds' year-ends 3110.00: an arithmetic net, paid by no fund)"], text
    assert "year-end 3110.00" not in text
