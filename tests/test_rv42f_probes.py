"""rv42f probes: review of decl42b (a merge exempts only what it carries; a new record's held number) and acc42
(an exam observed a day before the newest order holding the accession is not its report). Real HL7 v2 over
``POST /hl7v2`` on each backend (``module_eng``: SQLite, mongomock), read back over ``/fhir``."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import err_lines, post
from tests.module_store import module_eng, undeclared_eng, undeclared_eng_http
from tests.owner41_calls import nids
from tests.test_acc42_exam_times import _exam_at_seconds
from tests.test_code37_ris_change import HEAD
from tests.test_decl42b_identity import _merge, _observed
from tests.test_rv40d_probes import _stated
from tests.test_rv41k_probes import T26, _ct, _w205
from tests.test_rv42a_probes import _by_order
from tests.test_rvidentity32_probes import MRN, _nid, adt, oru, patients
from tests.test_srfix35_order_code import ORDERED, http, send

__all__ = ["http", "module_eng", "undeclared_eng", "undeclared_eng_http"]  # (``uhttp``: undeclared_eng_http)

# --- acc42: "a day before" read at each time's own offset, with no tolerance across midnight ---------------------


def _numbered_at(http: TestClient, run: str, acc: str, placed: str) -> None:
    """2026: the HIS orders head CT ``<run>2`` at ORC-9 ``placed``; the RIS numbers it (SC) with the accession."""
    assert "MSA|AA" in send(http, _stated("HIS", f"{run}2", "NW", HEAD, "", "").replace(ORDERED, placed))
    assert "MSA|AA" in send(http, _stated("RIS", f"{run}2", "SC", HEAD, f"{acc}^RIS", "").replace(ORDERED, placed))


def test_an_exam_two_minutes_before_its_order_across_midnight_is_its_own(http: TestClient) -> None:
    """The acc42 skew guard moved across midnight: the 2026 order placed 2026-03-12 00:01 +08:00, its report by the
    accession alone stating OBR-7 2026-03-11 23:59 +08:00 (two minutes earlier by the RIS's clock) and a new
    finding: that order's report (AA, W 205), as 07:59 against 08:00 is."""
    run = "RV42F-MID"
    acc = _exam_at_seconds(http, run)
    _numbered_at(http, run, acc, "20260312000100+0800")
    ack = send(http, _ct("", acc, sent=T26, obr7="20260311235900+0800", status="F", text="右侧硬膜下血肿"))
    assert "MSA|AA" in ack and len(_w205(ack)) == 1, ack
    assert _by_order(http, acc, run) == {f"{run}1": "未见异常", f"{run}2": "右侧硬膜下血肿"}


def test_an_exam_stated_in_utc_after_its_order_is_its_own(http: TestClient) -> None:
    """The order placed 2026-03-12 00:01 +08:00; the report by the accession alone states OBR-7 2026-03-11 16:30
    +00:00 -- 2026-03-12 00:30 at +08:00, after the order: that order's report (AA, W 205), not refused."""
    run = "RV42F-UTC"
    acc = _exam_at_seconds(http, run)
    _numbered_at(http, run, acc, "20260312000100+0800")
    ack = send(http, _ct("", acc, sent=T26, obr7="20260311163000+0000", status="F", text="右侧硬膜下血肿"))
    assert "MSA|AA" in ack and len(_w205(ack)) == 1, ack
    assert _by_order(http, acc, run) == {f"{run}1": "未见异常", f"{run}2": "右侧硬膜下血肿"}


def test_an_exam_the_evening_before_its_order_is_refused(http: TestClient) -> None:
    """Guard: an exam at 2026-03-10 20:00 +08:00 (28 hours before the 00:01 order: a day or more, the rule since the
    lead's mend of rv42f MED 1/2 -- four hours before is within the clocks' day of margin) by the accession alone
    with a new finding is refused AE 205 ('before the newest order'), the 2026 order unreported."""
    run = "RV42F-EVE"
    acc = _exam_at_seconds(http, run)
    _numbered_at(http, run, acc, "20260312000100+0800")
    ack = send(http, _ct("", acc, sent=T26, obr7="20260310200000+0800", status="F", text="右侧硬膜下血肿"))
    assert "MSA|AE" in ack and len(errs := _w205(ack)) == 1 and "before the newest order" in errs[0][-1], ack
    assert _by_order(http, acc, run) == {f"{run}1": "未见异常"}


# --- decl42b: a merge exempts what it carries -- from whichever record the sender names in MRG-1 ---------------------


def test_the_lis_a40_merging_the_his_record_into_its_walk_in_leaks_nothing(module_eng: Engine, http: TestClient) -> None:
    """Shipped (declared) site: the HIS registered her record H with her number c; the LIS's walk-in W (another
    name, no number) has a result. The LIS's A40 states W in PID (its own name, no number) and names H in MRG-1:
    what ``_merge_carried`` exempts is c, carried from H -- so the undeclared LIS would move her number onto its
    walk-in by merging away the HIS's record. Her resident must not read W's result, and W must not hold c."""
    c = _nid("32092319800811020")
    birth = "19800811"
    assert ack_code_of(post(http, adt("RF1Ha", f"RF1H^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^十一", birth, "F"))) == "AA"
    (her,) = patients(http, f"{MRN}|RF1H")
    assert ack_code_of(post(http, oru("RF1Wa", "RF1W^^^FNXRMYY^MR", "癸^十一", birth, "F", "RF1OBS"))) == "AA"
    assert ack_code_of(post(http, adt("RF1Wb", "RF1W^^^FNXRMYY^MR", "癸^十一", birth, "F", app="LIS"))) == "AA"
    ack = post(http, _merge("RF1M", "RF1W^^^FNXRMYY^MR", "癸^十一", birth, "RF1H^^^FNXRMYY^MR", "LIS"))
    (w,) = patients(http, f"{MRN}|RF1W")
    assert _observed(module_eng, her, "RF1OBS") == [], (err_lines(ack), nids(w))
    assert c not in nids(w), (err_lines(ack), w)


def test_the_held_new_records_later_result_stating_her_number_stays_held(module_eng: Engine, http: TestClient) -> None:
    """Declared site: the LIS's A04 of a new record N stating the number c the HIS registered on her is held
    (decl42b); the LIS's next ORU^R01 under N stating c again (N now stored, holding no number) is held too: N holds
    no number and her resident does not read N's result."""
    c = _nid("32092319800812020")
    birth = "19800812"
    assert ack_code_of(post(http, adt("RF2Ha", f"RF2H^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^十二", birth, "F"))) == "AA"
    (her,) = patients(http, f"{MRN}|RF2H")
    ack = post(http, adt("RF2Na", f"RF2N^^^FNXRMYY^MR~{c}^^^^NNCHN", "癸^十二", birth, "F", app="LIS"))
    assert ack_code_of(ack) == "AA" and any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    ack = post(http, oru("RF2Nb", f"RF2N^^^FNXRMYY^MR~{c}^^^^NNCHN", "癸^十二", birth, "F", "RF2OBS"))
    (n,) = patients(http, f"{MRN}|RF2N")
    assert _observed(module_eng, her, "RF2OBS") == [], (err_lines(ack), nids(n))
    assert c not in nids(n), (err_lines(ack), n)


def test_the_lis_a40_merging_the_his_record_into_its_walk_in_undeclared(undeclared_eng: Engine,
                                                                         uhttp: TestClient) -> None:
    """Undeclared site: the HIS's record H with her number c, the LIS's walk-in W (another name, a result); the LIS's
    A40, PID W, MRG-1 H: her resident must not read W's result."""
    c = _nid("32092319800813020")
    birth = "19800813"
    assert ack_code_of(post(uhttp, adt("RF3Ha", f"RF3H^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^十三", birth, "F"))) == "AA"
    (her,) = patients(uhttp, f"{MRN}|RF3H")
    assert ack_code_of(post(uhttp, oru("RF3Wa", "RF3W^^^FNXRMYY^MR", "癸^十三", birth, "F", "RF3OBS"))) == "AA"
    assert ack_code_of(post(uhttp, adt("RF3Wb", "RF3W^^^FNXRMYY^MR", "癸^十三", birth, "F", app="LIS"))) == "AA"
    ack = post(uhttp, _merge("RF3M", "RF3W^^^FNXRMYY^MR", "癸^十三", birth, "RF3H^^^FNXRMYY^MR", "LIS"))
    assert _observed(undeclared_eng, her, "RF3OBS") == [], err_lines(ack)
