"""acc42: a report's exam time (OBR-7) compared at whatever precision each side states -- a year down to a fraction of
a second, the sender's hour or minute kept beside the FHIR text that writes ``:00`` seconds (rv42c MED 1); an exam
observed a day before the newest order holding its reused accession was placed is not that order's report (rv42c
HIGH 1); a thinner restatement keeps a stored ``effectivePeriod`` as it keeps ``effectiveDateTime`` (rv42c MED 4).

``compare_times``, ``thinner`` and ``before`` unit-tested for every pair of precisions; the rest through real HL7
v2 over ``POST /hl7v2`` on each backend (``module_eng``: SQLite, mongomock), one by one and in an FHS/BHS batch,
read back over ``/fhir``."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import itertools

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.timestamps import before, compare_times, stated_digits, thinner, to_fhir_datetime
from engine.engine import Engine
from tests.module_store import module_eng
from tests.test_code37_ris_change import HEAD
from tests.test_rv40d_probes import _stated
from tests.test_rv41k_probes import T24, T26, _ct, _old_exam, _reports, _w205
from tests.test_rv42a_probes import _by_order
from tests.test_srfix35_order_code import http, send
from tests.test_xofix41b_orders import _numbered

__all__ = ["http", "module_eng"]

# one exam instant, 2024-03-12 08:07:37.25 at +08:00, stated at each precision: (FHIR text, digits the sender stated
# where the text writes more), and the same precision one step off
PRECISIONS = ["year", "month", "day", "hour", "minute", "second", "fraction"]
AT = {
    "year": ("2024", None), "month": ("2024-03", None), "day": ("2024-03-12", None),
    "hour": ("2024-03-12T08:00:00+08:00", 10), "minute": ("2024-03-12T08:07:00+08:00", 12),
    "second": ("2024-03-12T08:07:37+08:00", None), "fraction": ("2024-03-12T08:07:37.25+08:00", None),
}
OFF = {
    "year": ("2023", None), "month": ("2024-04", None), "day": ("2024-03-13", None),
    "hour": ("2024-03-12T09:00:00+08:00", 10), "minute": ("2024-03-12T08:08:00+08:00", 12),
    "second": ("2024-03-12T08:07:38+08:00", None), "fraction": ("2024-03-12T08:07:37.26+08:00", None),
}


@pytest.mark.parametrize(("a", "b"), list(itertools.product(PRECISIONS, PRECISIONS)))
def test_every_pair_of_precisions_compares_at_the_coarser(a: str, b: str) -> None:
    """Each precision against each: the one instant stated at both agrees -- "same" where both name it (seconds and
    finer), "within" where the coarser is a minute or coarser (two dates alike: one exam's or two of that day);
    one step off at the coarser precision is "other", either way round."""
    (ta, da), (tb, db) = AT[a], AT[b]
    coarse = min(PRECISIONS.index(a), PRECISIONS.index(b))
    agree = "same" if coarse >= PRECISIONS.index("second") else "within"
    assert compare_times(ta, tb, da, db) == agree
    assert compare_times(tb, ta, db, da) == agree
    c = PRECISIONS[coarse]
    finer = b if c == a else a
    (to, do), (tf, df) = OFF[c], AT[finer]
    if c != finer:
        assert compare_times(to, tf, do, df) == "other"
        assert compare_times(tf, to, df, do) == "other"
    assert thinner(ta, tb, da, db) is (PRECISIONS.index(a) < PRECISIONS.index(b) and a in PRECISIONS[:5])


def test_the_coarser_time_read_at_its_own_offset_and_a_date_where_the_exam_was_made() -> None:
    """A minute stated in UTC holds the second stated at +08:00 (00:07Z is 08:07 there); an hour at +05:30 holds
    02:45Z (08:15 there), which 03:00Z does not; a date is the finer one's own local date, never its UTC one."""
    assert compare_times("2024-03-12T00:07:00Z", "2024-03-12T08:07:37+08:00", 12) == "within"
    assert compare_times("2024-03-12T08:00:00+05:30", "2024-03-12T02:45:00Z", 10) == "within"
    assert compare_times("2024-03-12T03:00:00+00:00", "2024-03-12T08:15:00+05:30", 10) == "other"
    assert compare_times("2024-03-12", "2024-03-11T20:00:00Z") == "other"
    assert compare_times("2024-03-12", "2024-03-12T04:00:00+08:00") == "within"
    assert compare_times("", "2024-03-12") is None and compare_times("2024-13", "2024") is None


def test_the_hl7_precision_kept_through_the_sites_zone() -> None:
    """An OBR-7 of minutes with no offset: read in the site's zone, written with ``:00`` seconds -- its stated
    digits (12) make it hold the stored second and not the next minute."""
    minute = "202403120807"
    text = to_fhir_datetime(minute, "Asia/Shanghai")
    assert text == "2024-03-12T08:07:00+08:00" and stated_digits(minute) == 12
    assert compare_times(text, "2024-03-12T08:07:37+08:00", stated_digits(minute)) == "within"
    assert compare_times(text, "2024-03-12T08:08:01+08:00", stated_digits(minute)) == "other"
    assert [stated_digits(v) for v in ("2024", "202403", "20240312", "2024031208", "20240312080737.25+0800")] == \
        [4, 6, 8, 10, 16]
    assert stated_digits("") is None and stated_digits("2024-03") is None


def test_before_is_a_day_earlier_at_the_precision_each_states() -> None:
    """An exam a day or more before its order is before it; one within a day -- a minute earlier by another
    application's clock, across midnight too, or stated in another offset -- or of the order's date alone is not
    (the lead's mend of rv42f MED 1/2: compared as instants with a day's margin); a month or a year at that."""
    order = "2026-03-12T08:00:00+08:00"
    assert before("2024-03-12T08:00:00+08:00", order, 12)
    assert before("2026-03-11T07:59:00+08:00", order) and before("2026-03-10T23:00:00Z", order)
    assert not before("2026-03-11T23:59:00+08:00", order) and not before("2026-03-11T16:30:00Z", order)
    assert not before("2026-03-12T07:59:00+08:00", order)
    assert not before("2026-03-12", order) and not before("2026-03", order) and not before("2026", order)
    assert before("2026-02", order) and before("2025", order)
    assert not before("", order) and not before("2024-03-12", "")


# --- through the real path -------------------------------------------------------------------------------------


def _exam_at_seconds(http: TestClient, run: str) -> str:
    """2024: the HIS orders head CT ``<run>1``; the RIS reports it under ``<run>-ACC``, OBR-7 08:00:37: 未见异常."""
    acc = f"{run}-ACC"
    ordered = _stated("HIS", f"{run}1", "NW", HEAD, "", "").replace("20260312080000", "20240312080000")
    assert "MSA|AA" in send(http, ordered)
    assert "MSA|AA" in send(http, _ct(f"{run}1", acc, sent=T24, obr7="20240312080037+0800", status="F",
                                      text="未见异常"))
    return acc


LATE = "20261101090000+0800"


@pytest.mark.parametrize("way", ["one-by-one", "batch"])
def test_an_old_exams_final_restamped_is_refused_not_filed_as_the_newer_orders_report(
        http: TestClient, way: str) -> None:
    """The 2024 final re-sent by the accession alone, its OBR-7 restamped with the report's time (2024-03-12
    10:15, no stored exam's), while the 2026 order holds the accession unread: observed two years before that order
    was placed (ORC-9 2026-03-12) -- not its report: AE 205 at OBR-3 naming the order and the time, the 2026 order
    without a report. In a batch with the 2026 order's messages, as one by one. Fails without acc42 (filed as the
    2026 exam's report, AA)."""
    run = f"ACC42-RS{way[0].upper()}"
    acc = _exam_at_seconds(http, run)
    restamped = _ct("", acc, sent=LATE, obr7="20240312101500+0800", status="F", text="未见异常")
    if way == "one-by-one":
        _numbered(http, run, acc)
        ack = send(http, restamped)
    else:
        msgs = [_stated("HIS", f"{run}2", "NW", HEAD, "", ""), _stated("RIS", f"{run}2", "SC", HEAD, f"{acc}^RIS", ""),
                restamped]
        ack = send(http, "FHS|^~\\&|RIS|FNZYY\nBHS|^~\\&|RIS|FNZYY\n" + "".join(msgs) + "BTS|3\nFTS|1\n")
        assert ack.count("MSA|AA") == 2, ack
    assert "MSA|AE" in ack and len(errs := _w205(ack)) == 1, ack
    assert "before the newest order" in errs[0][-1] and f"{run}2" in errs[0][-1], errs
    assert _by_order(http, acc, run) == {f"{run}1": "未见异常"}, ack


def test_the_newer_exams_report_stamped_before_its_order_that_day_is_its_own(http: TestClient) -> None:
    """The guard: the 2026 exam's report by the accession alone, OBR-7 07:59 -- a minute before the HIS's order
    time (08:00) by the RIS's clock, the order's own day -- is the 2026 order's report (AA, W 205), not refused."""
    run = "ACC42-SKEW"
    acc = _exam_at_seconds(http, run)
    _numbered(http, run, acc)
    ack = send(http, _ct("", acc, sent=T26, obr7="20260312075900+0800", status="F", text="右侧硬膜下血肿"))
    assert "MSA|AA" in ack and len(_w205(ack)) == 1, ack
    assert _by_order(http, acc, run) == {f"{run}1": "未见异常", f"{run}2": "右侧硬膜下血肿"}


@pytest.mark.parametrize("obr7", ["2024031208+0800", "202403120800+0800", "20240312"])
def test_a_resend_at_a_coarser_precision_is_the_old_exams_and_keeps_its_second(http: TestClient, obr7: str) -> None:
    """The 2024 final re-sent by the accession alone stating its exam time at the hour, the minute or the date,
    the 2026 order numbered and unread: the stored 2024 report is the one (AA), its OBR-7 08:00:37 kept, the 2026
    order without a report. Fails without acc42 for the hour and the minute (filed as the 2026 exam's report)."""
    run = f"ACC42-P{len(obr7)}"
    acc = _exam_at_seconds(http, run)
    _numbered(http, run, acc)
    ack = send(http, _ct("", acc, sent=LATE, obr7=obr7, status="F", text="未见异常"))
    assert "MSA|AA" in ack, ack
    assert _by_order(http, acc, run) == {f"{run}1": "未见异常"}, ack
    assert [r.get("effectiveDateTime") for r in _reports(http, acc)] == ["2024-03-12T08:00:37+08:00"]


def test_a_finer_time_over_a_minute_is_written(http: TestClient) -> None:
    """The precision rule keeps only a coarser statement: a report stated at the minute (08:00, written 08:00:00)
    and re-sent by its placer number stating the second (08:00:37) takes the second; the minute sent again after
    it leaves the second."""
    run = "ACC42-FINER"
    acc = f"{run}-ACC"
    assert "MSA|AA" in send(http, _stated("HIS", f"{run}1", "NW", HEAD, "", "").replace("20260312080000",
                                                                                        "20240312080000"))
    for obr7, sent, want in (("202403120800+0800", T24, "2024-03-12T08:00:00+08:00"),
                             ("20240312080037+0800", "20240312090000+0800", "2024-03-12T08:00:37+08:00"),
                             ("202403120800+0800", "20240312100000+0800", "2024-03-12T08:00:37+08:00")):
        ack = send(http, _ct(f"{run}1", acc, sent=sent, obr7=obr7, status="F", text="未见异常"))
        assert "MSA|AA" in ack, ack
        assert [r.get("effectiveDateTime") for r in _reports(http, acc)] == [want], (obr7, ack)


def test_a_period_restated_thinner_keeps_its_start_and_end(http: TestClient) -> None:
    """A report of OBR-7 08:00:37 and OBR-8 08:30:00 (effectivePeriod): re-sent by its placer number with OBR-7 at
    the minute and OBR-8 at the hour, the stored start and end stay; re-sent with OBR-7 restating the start to the
    second and OBR-8 empty (a dateTime, the Period's own start), the Period stays, its end with it. Fails without
    acc42 (the start written 08:00:00, the end 08:00:00; then the Period dropped for the dateTime)."""
    run = "ACC42-PER"
    acc = _old_exam(http, run)
    stated = {"start": "2024-03-12T08:00:37+08:00", "end": "2024-03-12T08:30:00+08:00"}
    for n, (obr7, sent) in enumerate((("20240312080037+0800|20240312083000+0800", "20240312090000+0800"),
                                      ("202403120800+0800|2024031208+0800", "20240313090000+0800"),
                                      ("20240312080037+0800", "20240314090000+0800"))):
        ack = send(http, _ct(f"{run}1", acc, sent=sent, obr7=obr7, status="F", text="未见异常"))
        assert "MSA|AA" in ack, (n, ack)
        [report] = _reports(http, acc)
        assert report.get("effectivePeriod") == stated and "effectiveDateTime" not in report, (n, report)


def test_a_period_restated_with_another_start_is_written(module_eng: Engine, http: TestClient) -> None:
    """The guard: another start at the precision stated (OBR-7 08:05 for the stored 08:00:37) and another end are
    written -- the rule keeps only what says nothing new."""
    run = "ACC42-PER2"
    acc = _old_exam(http, run)
    for obr7, sent in (("20240312080037+0800|20240312083000+0800", "20240312090000+0800"),
                       ("202403120805+0800|20240312084500+0800", "20240313090000+0800")):
        assert "MSA|AA" in send(http, _ct(f"{run}1", acc, sent=sent, obr7=obr7, status="F", text="未见异常"))
    [report] = _reports(http, acc)
    assert report.get("effectivePeriod") == {"start": "2024-03-12T08:05:00+08:00",
                                             "end": "2024-03-12T08:30:00+08:00".replace("30", "45", 1)}, report


def test_a_resend_stating_no_exam_time_and_a_stored_conclusion_is_refused(http: TestClient) -> None:
    """rv42c LOW 1, decided: the 2024 final re-sent by the accession alone with OBR-7 empty and its conclusion
    (未见异常), the 2026 order numbered and unread -- a re-send, or the 2026 exam's own normal report, which is not
    told; filed as the 2026 one (as before acc42), the unread CT would show as reported normal: AE 205 at OBR-3,
    the 2026 order without a report. Another conclusion is news of the newest exam: its report (AA, W 205)."""
    run = "ACC42-NOT"
    acc = _exam_at_seconds(http, run)
    _numbered(http, run, acc)
    ack = send(http, _ct("", acc, sent=LATE, obr7="", status="F", text="未见异常"))
    assert "MSA|AE" in ack and len(errs := _w205(ack)) == 1 and "no exam time" in errs[0][-1], ack
    assert _by_order(http, acc, run) == {f"{run}1": "未见异常"}, ack
    ack = send(http, _ct("", acc, sent=LATE, obr7="", status="F", text="右侧硬膜下血肿"))
    assert "MSA|AA" in ack and len(_w205(ack)) == 1, ack
    assert _by_order(http, acc, run) == {f"{run}1": "未见异常", f"{run}2": "右侧硬膜下血肿"}, ack


def test_two_dates_alike_with_another_conclusion_are_not_told(http: TestClient) -> None:
    """The guard for "same" at seconds only: the 2024 report stored with its date alone (OBR-7 20240312), a final
    by the accession alone stating that date and another conclusion -- that exam's or another of that day under
    the reused number, which is not told: refused (AE 205), the stored report as it was."""
    run = "ACC42-DATES"
    acc = f"{run}-ACC"
    assert "MSA|AA" in send(http, _stated("HIS", f"{run}1", "NW", HEAD, "", "").replace("20260312080000",
                                                                                        "20240312080000"))
    assert "MSA|AA" in send(http, _ct(f"{run}1", acc, sent=T24, obr7="20240312", status="F", text="未见异常"))
    ack = send(http, _ct("", acc, sent=LATE, obr7="20240312", status="F", text="右侧硬膜下血肿"))
    assert "MSA|AE" in ack and len(_w205(ack)) == 1, ack
    assert [(r.get("effectiveDateTime"), r.get("conclusion")) for r in _reports(http, acc)] == [
        ("2024-03-12", "未见异常")]
