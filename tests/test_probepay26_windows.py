"""probepay26: DOMAIN.md's decision at its boundaries, through the real path.

Real HL7 v2 bytes over a real MLLP socket into the real store; the order-time answer is the ORM's
ACK (an ERR W naming ``DetectedIssue/rec-...``), the later decision is the stored flag and the ACK
of the repeat's result. DOMAIN.md, "The decision, precisely": a prior R is recognisable for an order
O when "R is final (not preliminary, corrected-away or entered-in-error); ... O's date minus R's
date is within the item's window; the item's scope covers both institutions". Days are the
institution's local days (Asia/Shanghai, README "Mutual recognition").

Guards and findings alike; the report names which fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.engine import Engine
from engine.settings import Settings
from tests.test_recognition_e2e import Sender

WANG = "32092319850412001X"
CBC = "58410-2^CBC panel - Blood by Automated count^LN"
LFT = "24325-3^Hepatic function panel^LN"

INSTITUTIONS = """\
- {code: HOSPA, name: 县人民医院, community: c1, grade: 三级, qc: {passed: all, until: 2099-12-31}}
- {code: HOSPB, name: 县中医院, community: c1, grade: 二级, qc: {passed: all, until: 2099-12-31}}
- {code: HOSPC, name: 镇卫生院, community: c1, grade: 一级, qc: {passed: all, until: 2099-12-31}}
- {code: HOSPD, name: 邻县人民医院, community: c2, grade: 三级, qc: {passed: all, until: 2099-12-31}}
"""


def make_site(tmp_path: Path, **files: str) -> Path:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "institutions.yaml").write_text(INSTITUTIONS, "utf-8")
    for name, text in files.items():
        *dirs, stem, ext = name.split("__")
        path = site.joinpath(*dirs, f"{stem}.{ext}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
    return site


def open_engine(tmp_path: Path, site: Path) -> Iterator[Engine]:
    with Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site)) as eng:
        yield eng


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    yield from open_engine(tmp_path, make_site(tmp_path))


_N = [0]


def _control() -> str:
    _N[0] += 1
    return f"PP26-{_N[0]}"


def msh(inst: str, app: str, kind: str, when: str) -> str:
    return f"MSH|^~\\&|{app}|{inst}|HUREN|C1|{when}||{kind}|{_control()}|P|2.5.1|||AL|NE|CHN|UNICODE UTF-8\n"


def pid(inst: str, person: str = WANG, mrn: str = "") -> str:
    return f"PID|1||{person}^^^公安部^NNCHN~{mrn or 'MRN-' + inst}^^^{inst}^MR||王^建国||19850412|M\n"


def order(inst: str, placer: str, item: str, when: str, reason: str = "", control: str = "NW", **kw: str) -> str:
    orc16 = f"||||{reason}" if reason else ""
    return (msh(inst, "HIS", "ORM^O01^ORM_O01", when) + pid(inst, **kw)
            + f"ORC|{control}|{placer}^HIS|||||||{when}|||D7^张^医生{orc16}\n"
            + f"OBR|1|{placer}^HIS||{item}|||{when}\n")


def result(inst: str, placer: str, item: str, when: str, status: str = "F",
           obx: str = "OBX|1|NM|WBC^白细胞^L||6.1|10*9/L|||||{s}", **kw: str) -> str:
    return (msh(inst, "LIS", "ORU^R01^ORU_R01", when) + pid(inst, **kw)
            + f"ORC|RE|{placer}^HIS|F{placer}^LIS||CM\n"
            + f"OBR|1|{placer}^HIS|F{placer}^LIS|{item}|||{when}|||||||||D7^张^医生||||||{when}|||{status}\n"
            + obx.format(s=status) + f"|||{when}\n")


def reminded(ack: str) -> bool:
    return "Recognisable prior result" in ack


def flags(engine: Engine, status: str | None = None) -> list[dict]:
    return [f for f in engine.recognition.flags.find({}) if status is None or f["status"] == status]


def live_flags(engine: Engine) -> list[dict]:
    return [f for f in engine.recognition.flags.find({}) if f["status"] not in ("cancelled", "overturned")]


# --- the window, in local (Asia/Shanghai) days ------------------------------------------------------

@pytest.mark.parametrize(("prior", "ordered", "expected"), [
    # CBC, window 7: the 7th local day is inside, the 8th outside -- by the local day, not the hour
    ("20260301003000+0800", "20260308233000+0800", True),
    ("20260301235959+0800", "20260309000000+0800", False),
    # an instant written in UTC: 2026-03-01 16:00Z is 2026-03-02 00:00 in Shanghai -> 7 local days
    # (8 UTC days) before 2026-03-09 08:00+08:00
    ("20260301160000+0000", "20260309080000+0800", True),
    # 2026-03-01 15:59:59Z is 2026-03-01 23:59:59 local -> 8 local days (7 UTC days) before 03-09 00:00+08:00
    ("20260301155959+0000", "20260309000000+0800", False),
    # the order written in UTC: 2026-03-08 16:30Z is 2026-03-09 00:30 local -> 8 days after 03-01
    ("20260301090000+0800", "20260308163000+0000", False),
    ("20260301090000+0800", "20260308155959+0000", True),
])
def test_probepay26_window_is_counted_in_local_days(engine: Engine, mllp: int, prior: str, ordered: str,
                                                    expected: bool) -> None:
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", CBC, prior))
    ack = hl7.send(order("HOSPB", "B1", CBC, ordered))
    assert reminded(ack) is expected, (prior, ordered, ack)
    ack = hl7.send(result("HOSPB", "B1", CBC, ordered))
    got = flags(engine, "flagged")
    assert ("not payable" in ack, len(got)) == (expected, int(expected)), (prior, ordered, ack, got)
    if expected:
        [f] = got
        assert (f["window"], f["inst"], f["prior_inst"], f["item"]) == (7, "HOSPB", "HOSPA", "CBC"), f


def test_probepay26_same_day_and_order_before_prior_are_not_repeats(engine: Engine, mllp: int) -> None:
    """0 <= order day - result day: a prior done the same local day counts; one after the order does not."""
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", CBC, "20260310080000+0800"))
    assert reminded(hl7.send(order("HOSPB", "B1", CBC, "20260310230000+0800")))
    hl7.send(result("HOSPB", "B1", CBC, "20260310233000+0800"))
    assert len(flags(engine, "flagged")) == 1


# --- which statuses count -------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "counts"), [("F", True), ("C", True), ("P", False), ("X", False),
                                                ("W", False)])
def test_probepay26_prior_status_decides_recognisable(engine: Engine, mllp: int, status: str, counts: bool) -> None:
    """Final and corrected priors count; preliminary, cancelled and wrong (entered-in-error) do not."""
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", CBC, "20260310090000+0800", status=status))
    ack = hl7.send(order("HOSPB", "B1", CBC, "20260312080000+0800"))
    assert reminded(ack) is counts, (status, ack)
    hl7.send(result("HOSPB", "B1", CBC, "20260312090000+0800"))
    assert len(flags(engine, "flagged")) == int(counts), (status, flags(engine))


def test_probepay26_prior_withdrawn_after_the_flag_withdraws_the_flag(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", CBC, "20260310090000+0800"))
    hl7.send(order("HOSPB", "B1", CBC, "20260312080000+0800"))
    hl7.send(result("HOSPB", "B1", CBC, "20260312090000+0800"))
    assert len(flags(engine, "flagged")) == 1
    hl7.send(result("HOSPA", "A1", CBC, "20260310090000+0800", status="W"))  # the lab: wrong result
    assert flags(engine, "flagged") == [], flags(engine)


_REC14 = ("decided (rec14): DOMAIN's 'for which a recognisable R existed' read with R98: a prior recognisable "
          "by the time the repeat is done flags it; contested by probepay26, left to the policy owner")


@pytest.mark.xfail(strict=True, reason=_REC14)
def test_probepay26_prior_preliminary_then_final_after_the_order(engine: Engine, mllp: int) -> None:
    """At order time the prior was preliminary (nothing recognisable: no reminder); it turns final
    before the repeat's result. The order-time answer said nothing existed: no 'not payable' flag.
    Contested: the fourteenth round (rec14, README) chose to flag such repeats, reading "for which a
    recognisable R existed" as existing in fact and R98 as the doctor's recourse; the probe brief's
    rule (no flag where the order-time answer said nothing recognisable existed) says otherwise.
    A failing finding for the lead to decide."""
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", CBC, "20260310090000+0800", status="P"))
    assert not reminded(hl7.send(order("HOSPB", "B1", CBC, "20260312080000+0800")))
    hl7.send(result("HOSPA", "A1", CBC, "20260310090000+0800", status="F"))
    ack = hl7.send(result("HOSPB", "B1", CBC, "20260312090000+0800"))
    assert flags(engine, "flagged") == [], (ack, flags(engine))


@pytest.mark.xfail(strict=True, reason=_REC14)
def test_probepay26_prior_received_after_the_order_is_no_flag(engine: Engine, mllp: int) -> None:
    """The prior was done before the order but reached huren only after the order was placed: the
    order-time answer said nothing recognisable; the repeat must not be flagged 'not payable'.
    Contested like the test above (rec14 flags it on purpose; README "Limits")."""
    hl7 = Sender(mllp)
    assert not reminded(hl7.send(order("HOSPB", "B1", CBC, "20260312080000+0800")))
    hl7.send(result("HOSPA", "A1", CBC, "20260310090000+0800"))  # sent late
    ack = hl7.send(result("HOSPB", "B1", CBC, "20260312090000+0800"))
    assert flags(engine, "flagged") == [], (ack, flags(engine))


# --- scope: the community -------------------------------------------------------------------------

def test_probepay26_result_from_outside_the_community_is_not_recognised(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    hl7.send(result("HOSPD", "D1", CBC, "20260310090000+0800"))
    ack = hl7.send(order("HOSPB", "B1", CBC, "20260312080000+0800"))
    assert not reminded(ack), ack
    ack = hl7.send(result("HOSPB", "B1", CBC, "20260312090000+0800"))
    assert live_flags(engine) == [] and "DetectedIssue" not in ack, (ack, flags(engine))


def test_probepay26_own_earlier_result_inside_the_community_is_a_repeat(engine: Engine, mllp: int) -> None:
    """Same institution repeating its own recent result: a repeat inside the community too."""
    hl7 = Sender(mllp)
    hl7.send(result("HOSPB", "B0", CBC, "20260310090000+0800"))
    assert reminded(hl7.send(order("HOSPB", "B1", CBC, "20260312080000+0800")))
    hl7.send(result("HOSPB", "B1", CBC, "20260312090000+0800"))
    assert len(flags(engine, "flagged")) == 1


# --- same test ------------------------------------------------------------------------------------

def test_probepay26_other_item_is_no_repeat(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", LFT, "20260310090000+0800", obx="OBX|1|NM|1742-6^ALT^LN||30|U/L|||||{s}"))
    assert not reminded(hl7.send(order("HOSPB", "B1", CBC, "20260312080000+0800")))
    hl7.send(result("HOSPB", "B1", CBC, "20260312090000+0800"))
    assert live_flags(engine) == []


def test_probepay26_other_person_is_no_repeat(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", CBC, "20260310090000+0800"))
    li = "320923198809030023"
    other = (msh("HOSPB", "HIS", "ORM^O01^ORM_O01", "20260312080000+0800")
             + f"PID|1||{li}^^^公安部^NNCHN~MRN-LI^^^HOSPB^MR||李^秀英||19880903|F\n"
             + "ORC|NW|B1^HIS|||||||20260312080000+0800|||D7^张^医生\n"
             + f"OBR|1|B1^HIS||{CBC}|||20260312080000+0800\n")
    assert not reminded(hl7.send(other))


def test_probepay26_mrn_alone_never_matches_across_institutions(engine: Engine, mllp: int) -> None:
    """Same MRN string at two institutions, no national ID: never the same person."""
    hl7 = Sender(mllp)
    body = "PID|1||MRN-SAME^^^{inst}^MR||王^建国||19850412|M\n"
    prior = (msh("HOSPA", "LIS", "ORU^R01^ORU_R01", "20260310090000+0800") + body.format(inst="HOSPA")
             + "OBR|1|A1^HIS|FA1^LIS|" + CBC + "|||20260310090000+0800|||||||||D7^张^医生||||||20260310090000+0800|||F\n"
             + "OBX|1|NM|WBC^白细胞^L||6.1|10*9/L|||||F|||20260310090000+0800\n")
    hl7.send(prior)
    o = (msh("HOSPB", "HIS", "ORM^O01^ORM_O01", "20260312080000+0800") + body.format(inst="HOSPB")
         + "ORC|NW|B1^HIS|||||||20260312080000+0800|||D7^张^医生\n"
         + f"OBR|1|B1^HIS||{CBC}|||20260312080000+0800\n")
    assert not reminded(hl7.send(o))


def test_probepay26_result_taken_after_the_order_the_same_day_is_not_its_prior(engine: Engine, mllp: int) -> None:
    hl7 = Sender(mllp)
    assert not reminded(hl7.send(order("HOSPB", "B1", CBC, "20260312080000+0800")))
    hl7.send(result("HOSPA", "A1", CBC, "20260312100000+0800"))  # taken after B's order was placed
    hl7.send(result("HOSPB", "B1", CBC, "20260312110000+0800"))
    assert flags(engine, "flagged") == [], flags(engine)
