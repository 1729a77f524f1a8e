"""acsn45b (forty-fifth round): a sender's reports under a bare filler number are found by what each records
(``adapters.convert._senders_reports``: its recorded sender judged by ``applications.names_one``), wherever they are
keyed -- its space or apart by an order's placer number -- so one exam stays one report however the sender names it.

Real HL7 v2.5.1 through ``POST /hl7v2`` into rv45a's engine (one a backend, SQLite and mongomock; acsn43d's site,
``ESB`` a listed relay), each test under record, order and accession numbers of its own, read back over ``/fhir``."""

# ruff: noqa: F811 -- the fixtures are the tests' arguments

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.hl7_calls import post
from tests.test_acsn43_accession import _omi, _orders_of, _report
from tests.test_acsn43b_assigner import _us
from tests.test_rv43e_probes import _batch
from tests.test_rv45a_probes import (
    AT_OBR3,
    CT,
    _acks,
    _corrected,
    _ct_and_report,
    _placer_named,
    _reports,
    _subject,
    http,
    site,
)

__all__ = ["http", "site"]  # (the engine fixtures, module-scoped: one engine a backend for this file)


def _at(message: str, when: str) -> str:
    """The ultrasound's report (``_us``) of an exam observed at ``when`` (OBR-7)."""
    return message.replace("|20261201100000|", f"|{when}|", 1)


def test_the_bare_correction_adds_no_order(http: TestClient) -> None:
    """rv45a HIGH 1a's messages: the ultrasound's bare correction of its report filed apart by placer is that
    report's, on its USP order -- the number alone names no third order (her orders stay the CT and USP ones)."""
    tag, number = "AC45B1", "20261206401"
    _ct_and_report(http, tag, number)
    assert _acks(http, _placer_named(_us(f"{tag}3", tag, number), number, f"{tag}US")) == ("AA", AT_OBR3)
    assert _acks(http, _corrected(_us(f"{tag}4", tag, number)))[0] == "AA"
    orders = _orders_of(http, _subject(http, tag))
    assert len(orders) == 2
    assert _reports(http, tag) == [("corrected", "脂肪肝", "USIS"), CT]


def test_of_two_exams_filed_by_placer_the_bare_correction_restating_one_exam_corrects_it(http: TestClient) -> None:
    """The ultrasound's two exams under its number, each named by its placer (filed apart by each: W 205); its bare
    correction stating the second exam's time corrects that report only; one stating neither exam's time is refused
    AE 205 at OBR-3 (which it corrects is not told), nothing changed -- never filed as a third report."""
    tag, number = "AC45B2", "20261206402"
    _ct_and_report(http, tag, number)
    first = _placer_named(_at(_us(f"{tag}3", tag, number), "20261201100000"), number, f"{tag}U1")
    second = _placer_named(_at(_us(f"{tag}4", tag, number).replace("肝胆脾未见异常", "胆囊结石"), "20261203100000"),
                           number, f"{tag}U2")
    assert _acks(http, first) == ("AA", AT_OBR3) and _acks(http, second) == ("AA", AT_OBR3)
    told = _at(_us(f"{tag}5", tag, number), "20261203100000").replace("|F\r", "|C\r").replace("肝胆脾未见异常", "脂肪肝")
    assert _acks(http, told)[0] == "AA"
    after = [CT, ("corrected", "脂肪肝", "USIS"), ("final", "肝胆脾未见异常", "USIS")]
    assert _reports(http, tag) == sorted(after)
    untold = _at(_corrected(_us(f"{tag}6", tag, number)), "20261205100000")
    assert _acks(http, untold) == ("AE", AT_OBR3)
    assert _reports(http, tag) == sorted(after)


def test_two_applications_of_one_name_and_two_oids_keep_a_space_each(http: TestClient) -> None:
    """``USIS^<OID1>^ISO`` and ``USIS^<OID2>^ISO`` are two applications (both universal ids sent and other:
    ``same_hd``): the second's own report under the number, after the CT report and the first's, is its own -- never
    written over the first's (a space keyed by the name alone would hold both)."""
    tag, number = "AC45B3", "20261206403"
    _ct_and_report(http, tag, number)
    one, other = "USIS^1.2.156.4545.1^ISO", "USIS^1.2.156.4545.2^ISO"
    assert _acks(http, _us(f"{tag}3", tag, number, app=one)) == ("AA", [])
    assert _acks(http, _us(f"{tag}4", tag, number, app=other).replace("肝胆脾未见异常", "胆囊结石")) == ("AA", [])
    assert _reports(http, tag) == sorted([CT, ("final", "肝胆脾未见异常", one), ("final", "胆囊结石", other)])


def test_the_placer_named_final_and_its_bare_correction_in_one_batch(http: TestClient) -> None:
    """rv45a HIGH 1a's messages in one FHS/BHS batch -- the OMI, the RIS's report, the ultrasound's final naming USP,
    its correction by the number alone: as one by one, the correction finds the report an earlier message of the
    batch filed apart by placer (``_senders_reports`` reads the batch's earlier messages too) -- one ultrasound
    report, corrected."""
    tag, number = "AC45B4", "20261206404"
    ack = post(http, _batch(_omi(f"{tag}1", tag, f"{tag}P", number, "20261206090000", "1.2.156.4545.404"),
                            _report(f"{tag}2", tag, number, "20261206093000", "F", "未见异常", "20261206110000"),
                            _placer_named(_us(f"{tag}3", tag, number), number, f"{tag}US"),
                            _corrected(_us(f"{tag}4", tag, number))))
    assert ack.count(b"MSA|AA|") == 4, ack
    assert _reports(http, tag) == [("corrected", "脂肪肝", "USIS"), CT]
    assert len(_orders_of(http, _subject(http, tag))) == 2
