"""Family access on /ui/me, in headless Chromium at 360 px, as 赵桂兰 (78) and her son 孙伟 use it.

Her records (three hospitals) and his arrive as HL7 v2 over real HTTP (uvicorn). On her phone she
signs in, reads her medicines and her referral's progress, switches to large text and lets her son
see her record. On his phone he signs in as himself, chooses her record, and sees hers only, with a
banner saying whose record it is. She sees his looks under "who looked at my record", withdraws the
access, and his page loses her record at once. Screenshots go to ``HUREN_SCREENSHOTS`` (default
/tmp/family-shots) for a person to look at.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from engine.engine import Engine
from engine.settings import Settings
from tests.module_store import fed_copy
from tests.test_resident_family import SUN, family_feeds
from tests.test_resident_record_ui import ZHAO, _http
from tests.test_resident_ui import CHROMIUM, Phone, _free_port, serving
from tests.test_ui12_phone import (
    outside,  # every visible element inside the screen, not only the page's width
)

WIDTH = 360


def _fed(folder: Path) -> None:
    """An engine on ``folder`` served over real HTTP (uvicorn), the family's feeds posted to ``/hl7v2``, closed."""
    engine = Engine(Settings(data_dir=folder, http_port=_free_port(), mllp_port=0))
    with serving(engine):
        base = engine.settings.public_base_url
        sender = engine.auth.issue_system_token("interface-engine", "system/MessageHeader.c")
        for message in family_feeds():
            status, headers, ack = _http("POST", base + "/hl7v2", sender, message, "x-application/hl7-v2+er7")
            assert status == 200 and headers.get("x-hl7-ack-code") == "AA", ack
    engine.close()


@pytest.fixture
def community(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory):
    """The family's county served over real HTTP: an engine on a copy of the data folder ``_fed`` fed once a process
    (``module_store.fed_copy``; each test had fed its own: forty-sixth round, suite46b)."""
    port = _free_port()
    fed_copy("resident-family-ui", _fed, tmp_path / "var", tmp_path_factory)
    engine = Engine(Settings(data_dir=tmp_path / "var", http_port=port, mllp_port=0))
    with serving(engine):
        yield engine, engine.settings.public_base_url
    engine.close()


def sign_in(phone: Phone, engine: Engine, base: str, number: str) -> None:
    cdp = phone.cdp
    cdp.call("Page.navigate", url=base + "/ui/me/")
    cdp.wait("document.getElementById('signin')?.hidden === false")
    phone.click("#login")
    cdp.wait("!!document.getElementById('national_id')")
    cdp.eval(f"document.getElementById('national_id').value = '{number}'; document.forms[0].submit()")
    cdp.wait("!!document.getElementById('code')")
    code = json.loads((engine.settings.data_dir / "otp" / "outbox.jsonl").read_text().splitlines()[-1])["code"]
    cdp.eval(f"document.getElementById('code').value = '{code}'; document.forms[0].submit()")


def fits(phone: Phone) -> None:
    """Nothing wider than the phone: no sideways scrolling."""
    assert outside(phone.cdp, {"width": WIDTH}) == []


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")
def test_mother_lets_her_son_see_her_record_and_withdraws_it(community, tmp_path):
    engine, base = community
    mother = Phone(tmp_path / "mother")
    son = None
    try:
        m = mother.cdp
        mother.size(WIDTH, 780, mobile=True)
        sign_in(mother, engine, base, ZHAO)
        m.wait("document.body.dataset.ready === '1'")
        assert mother.text("banner").startswith("赵桂兰")
        # her medicine by name (the Medication her prescription names) and where her referral stands
        m.eval("document.querySelector('[data-tab=meds]').click()")
        assert "硝苯地平缓释片" in mother.text("meds") and "药品（名称" not in mother.text("meds")
        m.eval("document.querySelector('[data-tab=referrals]').click()")
        referrals = mother.text("referrals")
        assert "上转：心内科进一步诊治" in referrals and "对方医院已同意接收" in referrals
        mother.shot("01-mother-referral-360")
        fits(mother)

        # large text, then the family section: she lets her son see her record
        mother.click("#bigtext")
        m.wait("document.documentElement.classList.contains('big')")
        m.eval("document.querySelector('[data-tab=family]').click()")
        family = mother.text("family")
        assert "您还没有授权任何家人" in family and "授权一位家人" in family
        # a mistyped number is caught, in words she can act on, before and by the server
        m.eval("""(() => { document.getElementById('fam-name').value = '孙伟';
            document.getElementById('fam-nid').value = '3209231975';
            document.querySelector('.family-form button[type=submit]').click(); })()""")
        assert "身份证号应为 18 位" in mother.text("status")
        wrong = SUN[:-1] + ("0" if SUN[-1] != "0" else "1")
        m.eval(f"""(() => {{ document.getElementById('fam-nid').value = '{wrong}';
            document.querySelector('.family-form button[type=submit]').click(); }})()""")
        m.wait("document.getElementById('status').innerText.includes('没有办成')")
        assert "家人的身份证号不正确" in mother.text("status") and "可以查看" not in mother.text("family")
        # while the grant is on its way its button is held and says so (observed, not timed)
        m.eval("""(() => { const b = document.querySelector('.family-form button[type=submit]');
            window.grantStates = []; new MutationObserver(() => window.grantStates.push(
              [b.disabled, b.getAttribute('aria-busy'), b.textContent])).observe(b,
              { attributes: true, childList: true, characterData: true, subtree: true }); })()""")
        m.eval(f"""(() => {{
            document.getElementById('fam-name').value = '孙伟';
            document.getElementById('fam-nid').value = '{SUN}';
            document.getElementById('fam-rel').value = 'CHILD';
            document.querySelector('.family-form button[type=submit]').click(); }})()""")
        m.wait("document.getElementById('family').innerText.includes('可以查看')")
        family = mother.text("family")
        assert "孙伟" in family and "子女" in family and "撤销孙伟的查看权限" in family
        assert "已授权孙伟查看您的档案" in mother.text("status")
        assert [True, "true", "正在授权……"] in m.eval("window.grantStates"), m.eval("window.grantStates")
        mother.shot("02-mother-granted-big-360")
        fits(mother)
        # the same in English, on a button (and back: Chinese first)
        mother.click("#lang")
        family_en = mother.text("family")
        assert "Family access" in family_en and "Can view" in family_en and "Withdraw 孙伟's access" in family_en
        assert "家人代查" not in family_en and "可以查看" not in family_en
        fits(mother)
        mother.click("#lang")
        assert "可以查看" in mother.text("family")

        # his phone: he signs in as himself and is asked whose record to open
        son = Phone(tmp_path / "son")
        s = son.cdp
        son.size(WIDTH, 780, mobile=True)
        sign_in(son, engine, base, SUN)
        s.wait("document.body.innerText.includes('您要查看谁的档案')")
        choices = s.eval("[...document.querySelectorAll('button[name=choice]')].map(b => b.innerText)")
        assert len(choices) == 2 and choices[0].startswith("我自己（孙伟）") and "赵桂兰 · 子女" in choices[1]
        assert re.search(r"代为查看，授权至 \d{4}年\d{1,2}月\d{1,2}日 ·", choices[1]), choices[1]  # the day as written in China
        son.shot("03-son-chooses-360")
        assert outside(s, {"width": WIDTH}) == []
        s.eval("[...document.querySelectorAll('button[name=choice]')].find(b => b.innerText.includes('赵桂兰')).click()")
        s.wait("document.body.dataset.ready === '1'")
        banner = son.text("banner")
        assert "您正在代赵桂兰查看档案" in banner and "孙伟，子女" in banner
        timeline = son.text("timeline")
        assert "流感疫苗" in timeline and "高血压" in timeline  # hers, from all three hospitals
        assert "2026年10月1日" not in timeline and "2026年10月2日" not in timeline  # not his, not his daughter's
        son.shot("04-son-reads-for-mother-360")
        fits(son)
        s.eval("document.querySelector('[data-tab=family]').click()")
        assert "只有档案本人" in son.text("family")  # he cannot pass her record on

        # she sees his looks, in words, and withdraws
        m.eval("document.querySelector('[data-tab=who]').click()")
        m.eval("document.getElementById('who-refresh').click()")
        m.wait("document.getElementById('who').innerText.includes('家人孙伟（子女）')")
        who = mother.text("who")
        assert re.search(r"家人孙伟（子女）通过「[^」]+」代您(查询|查看)了您的", who), who
        # the feed's system client has no display name: said by what it is, its id after it
        assert "医院信息系统（interface-engine）发来了" in who and "interface-engine（" not in who, who
        mother.shot("05-mother-who-looked-big-360")
        fits(mother)
        m.eval("document.querySelector('[data-tab=family]').click()")
        m.eval("document.querySelector('button.withdraw').click()")
        # one tap asks first (it ends his access at once); "keep" puts the button back, nothing withdrawn
        m.wait("document.activeElement.classList.contains('ask')")
        assert "确定撤销孙伟的查看权限吗？撤销后立即生效" in mother.text("family")
        m.eval("document.querySelector('.confirm-box button.keep').click()")
        m.wait("document.activeElement.classList.contains('withdraw')")
        assert "可以查看" in mother.text("family") and not m.eval("!!document.querySelector('.confirm-box')")
        m.eval("document.querySelector('button.withdraw').click()")
        m.wait("!!document.querySelector('.confirm-box button.confirm')")
        # the withdrawal on a slow connection (held in the page until released): neither button does
        # more while it runs ("keep" had put the withdraw button back though access was being withdrawn)
        m.eval("{ const f = window.fetch; window.held = []; window.fetch = (u, o) => String(u).includes('family-withdraw')"
               " ? new Promise(r => window.held.push(() => r(f(u, o)))) : f(u, o); } true")
        m.eval("document.querySelector('.confirm-box button.confirm').click()")
        m.wait("window.held.length === 1")
        assert m.eval("[...document.querySelectorAll('.confirm-box button')].map(b => b.disabled)") == [True, True]
        assert "正在撤销……" in mother.text("family")
        m.eval("document.querySelector('.confirm-box button.keep').click()")
        assert m.eval("!!document.querySelector('.confirm-box') && !document.querySelector('button.withdraw:not(.confirm)')")
        # withdrawn, but the list's reload then fails (the connection dropped): the card says withdrawn,
        # no question comes back (its "keep" had put the withdraw button back: she believed he still saw)
        m.eval("{ const f = window.fetch; let once = true; window.fetch = (u, o) => once && String(u).includes('Consent?')"
               " ? (once = false, Promise.reject(new TypeError('Failed to fetch'))) : f(u, o); } true")
        m.eval("window.held[0](); true")
        m.wait("document.getElementById('family').innerText.includes('已撤销')")
        assert not m.eval("!!document.querySelector('.confirm-box') || !!document.querySelector('button.withdraw')")
        assert "可以查看" not in mother.text("family") and "撤销孙伟的查看权限" not in mother.text("family")
        assert mother.text("status").startswith("已撤销。对方从现在起不能再查看您的档案。")
        mother.shot("06-mother-withdrew-big-360")

        # his page: her record is gone at once, and says why
        s.call("Page.reload")
        s.wait("document.getElementById('signin')?.hidden === false && document.body.dataset.ready === 'error'")
        assert "授权已被对方撤销" in son.text("status") and "或已过期" not in son.text("status")
        assert "赵桂兰" not in s.eval("document.body.innerText")
        son.shot("07-son-access-ended-360")
        fits(son)
        # signing in again opens his own record straight away: nothing else is granted to him
        sign_in(son, engine, base, SUN)
        s.wait("document.body.dataset.ready === '1'")
        assert son.text("banner").startswith("孙伟") and "您正在代" not in son.text("banner")
        son.shot("08-son-own-record-360")
    finally:
        mother.close()
        if son is not None:
            son.close()
