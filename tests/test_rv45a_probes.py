"""Review rv45a (forty-fifth round) of acsn45's merge: a report's bare filler number records its sender
(``DiagnosticReport.identifier.assigner``, ``results._sender_recorded``) and ``adapters.convert._own_space`` files a
report apart -- in the application's space, ``<key>|application|<MSH-3 as sent, lower-cased>`` -- only where the
stored report's recorded sender is known and another application.

Each probe sends real HL7 v2.5.1 in the hospital's style through ``POST /hl7v2`` (and, for the stored row, FHIR
PUTs and the operator's replay) into one engine a backend (SQLite, mongomock) on acsn43d's site (``ESB`` a listed
relay of FNXRMYY), each under record, order and accession numbers of its own, read back over ``/fhir``. A probe
that shows a defect is a STRICT xfail naming its severity; the passing ones guard what acsn45 relies on and no
other test shows."""

# ruff: noqa: F811 -- the fixtures are the tests' arguments

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.messages import message_id
from tests.test_acsn43_accession import _omi, _order, _orders_of, _report
from tests.test_acsn43b_assigner import _based_on, _us
from tests.test_acsn45_senders import AT_OBR3, _acks, _stored_before
from tests.test_ord40_owner_decision import _aliased, _client, _engine_on
from tests.test_order35_as_later import _operator

FULL_HD = "USIS^1.2.156.112604.1.2.7^ISO"  # (the ultrasound system's MSH-3 with its OID: one application with USIS)


@pytest.fixture(scope="module", params=["sqlite", "mongomock"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine,
                                                                                                     TestClient]]:
    """The engine and its client on a site whose senders.yaml names ``ESB`` a relay of FNXRMYY (acsn43d's)."""
    folder = _aliased(tmp_path_factory.mktemp("rv45a-site"), {})
    senders = folder / "hl7v2" / "senders.yaml"
    senders.write_text(senders.read_text(encoding="utf-8").replace(
        "relay_applications: {}", "relay_applications: {FNXRMYY: [ESB]}"), encoding="utf-8")
    with _engine_on(request.param, tmp_path_factory.mktemp("rv45a-store"), folder) as eng, \
            _client(eng, "rv45a") as client:
        yield eng, client


@pytest.fixture
def http(site: tuple[Engine, TestClient]) -> TestClient:
    return site[1]


def _subject(http: TestClient, mrn: str) -> str:
    (patient,) = [e["resource"] for e in http.get("/fhir/Patient", params={"identifier": mrn}).json()["entry"]]
    return f"Patient/{patient['id']}"


def _reports(http: TestClient, mrn: str) -> list[tuple[str, str, str | None]]:
    """Her reports, sorted: (status, its result's text, its recorded sender)."""
    found = http.get("/fhir/DiagnosticReport", params={"subject": _subject(http, mrn), "_count": 50}).json()
    out = []
    for r in (e["resource"] for e in found.get("entry") or ()):
        (res,) = r["result"]
        (ident,) = r["identifier"]
        out.append((r["status"], http.get(f"/fhir/{res['reference']}").json()["valueString"],
                    ((ident.get("assigner") or {}).get("identifier") or {}).get("value")))
    return sorted(out)


def _ct_and_report(http: TestClient, tag: str, number: str) -> dict[str, Any]:
    """The RIS's OMI (head CT, accession ``number``) and its final by the accession alone (bare OBR-3): the order."""
    omi = _omi(f"{tag}1", tag, f"{tag}P", number, "20261206090000", f"1.2.156.4545.{number[-3:]}")
    assert _acks(http, omi) == ("AA", [])
    assert _acks(http, _report(f"{tag}2", tag, number, "20261206093000", "F", "未见异常", "20261206110000")) == ("AA", [])
    return _order(http, f"{tag}P")


def _placer_named(message: str, number: str, placer: str) -> str:
    """``message`` naming its order by the placer number too (OBR-2), OBR-3 as it was."""
    return message.replace(f"OBR|1||{number}|", f"OBR|1|{placer}|{number}|", 1)


def _corrected(message: str) -> str:
    """The ultrasound's report as its correction (OBR-25 C, OBX-11 C) with another finding."""
    return message.replace("|F\r", "|C\r").replace("肝胆脾未见异常", "脂肪肝")


CT = ("final", "未见异常", "RIS")
US_CORRECTED = ("corrected", "脂肪肝", "USIS")


def test_the_ultrasounds_bare_correction_corrects_its_report_filed_by_placer(http: TestClient) -> None:
    """HIGH 1a (mended, acsn45b): RIS OMI and its report by the accession alone; the ultrasound's own final under its
    bare number of the value naming its order USP (filed apart by the placer, W); its correction by the number alone:
    one ultrasound report, corrected -- as the same two messages make with no CT report under the number (it was
    filed in the application's empty space as a second report)."""
    tag, number = "RV45A1", "20261206301"
    _ct_and_report(http, tag, number)
    assert _acks(http, _placer_named(_us(f"{tag}3", tag, number), number, f"{tag}US"))[0] == "AA"
    assert _acks(http, _corrected(_us(f"{tag}4", tag, number)))[0] == "AA"
    assert _reports(http, tag) == [US_CORRECTED, CT]


def test_the_ultrasounds_correction_naming_its_placer_corrects_its_bare_report(http: TestClient) -> None:
    """HIGH 1b (mended, acsn45b): RIS OMI and report; the ultrasound's own final by its bare number (AA, its own
    order); its correction naming the order USP too: one ultrasound report, corrected -- as with no CT report under
    the number (it was judged against the CT report and filed apart as a second report)."""
    tag, number = "RV45A2", "20261206302"
    _ct_and_report(http, tag, number)
    assert _acks(http, _us(f"{tag}3", tag, number)) == ("AA", [])
    assert _acks(http, _placer_named(_corrected(_us(f"{tag}4", tag, number)), number, f"{tag}US"))[0] == "AA"
    assert _reports(http, tag) == [US_CORRECTED, CT]


def test_control_with_no_ct_report_the_two_ways_are_one_report(http: TestClient) -> None:
    """Control of 1a and 1b (passes): the same ultrasound messages with no other application's report under the
    number -- final by placer then correction bare, final bare then correction by placer -- make one corrected report
    each."""
    for tag, number, placed in (("RV45A3", "20261206303", True), ("RV45A4", "20261206304", False)):
        first, then = _us(f"{tag}3", tag, number), _corrected(_us(f"{tag}4", tag, number))
        if placed:
            first = _placer_named(first, number, f"{tag}US")
        else:
            then = _placer_named(then, number, f"{tag}US")
        assert _acks(http, first) == ("AA", []) and _acks(http, then) == ("AA", [])
        assert _reports(http, tag) == [US_CORRECTED]


def test_the_ris_correction_naming_its_placer_finds_its_report_in_its_space(http: TestClient) -> None:
    """MED 2 (mended, acsn45b): the ultrasound's report first (its own order), then the RIS's by the accession alone,
    filed in the RIS's space on the CT order; the RIS's correction naming the CT order by its placer number finds its
    report in its space (``_senders_reports``: by its recorded sender) and corrects it -- it was refused AE 205 at
    OBR-4, judged against the ultrasound's report."""
    tag, number = "RV45A5", "20261206305"
    assert _acks(http, _omi(f"{tag}1", tag, f"{tag}P", number, "20261206090000", "1.2.156.4545.305")) == ("AA", [])
    assert _acks(http, _us(f"{tag}2", tag, number)) == ("AA", [])
    assert _acks(http, _report(f"{tag}3", tag, number, "20261206093000", "F", "未见异常", "20261206110000")) == ("AA", [])
    correction = _report(f"{tag}4", tag, number, "20261206093000", "C", "少量积液", "20261206120000")
    assert _acks(http, _placer_named(correction, number, f"{tag}P"))[0] == "AA"
    assert _reports(http, tag) == [("corrected", "少量积液", "RIS"), ("final", "肝胆脾未见异常", "USIS")]


def test_the_same_application_under_its_full_hd_finds_its_report(http: TestClient) -> None:
    """MED 3 (mended, acsn45b): the ultrasound's own report as ``USIS`` in its space, then its correction with MSH-3
    ``USIS^<OID>^ISO`` (one application: ``names_one``, no group declared) corrects it -- the space found by what its
    report records, not by the text of this MSH-3 (it was filed as a second report)."""
    tag, number = "RV45A6", "20261206306"
    _ct_and_report(http, tag, number)
    assert _acks(http, _us(f"{tag}3", tag, number)) == ("AA", [])
    assert _acks(http, _corrected(_us(f"{tag}4", tag, number, app=FULL_HD))) == ("AA", [])
    assert [r[:2] for r in _reports(http, tag)] == [US_CORRECTED[:2], CT[:2]]


def test_a_relays_resend_of_the_report_filed_by_placer_keeps_its_sender(http: TestClient) -> None:
    """Guard ("a thinner message never erases"): the ultrasound's own report naming its order by placer is filed
    apart by it (W 205); the relay (ESB, no sender) re-sending it by the bare number is that report restated (the
    exam time, ``_restated``: moved to the placer's key) and leaves USIS recorded -- only because ``_take`` moves
    the report's defaulted sender with it (without, the relay's thinner identifier erased it)."""
    tag, number = "RV45A7", "20261206307"
    _ct_and_report(http, tag, number)
    us = _placer_named(_us(f"{tag}3", tag, number), number, f"{tag}US")
    assert _acks(http, us) == ("AA", AT_OBR3)
    assert _acks(http, _us(f"{tag}4", tag, number, app="ESB"))[0] == "AA"
    assert _reports(http, tag) == [CT, ("final", "肝胆脾未见异常", "USIS")]


def test_a_report_stored_with_no_sender_is_still_filed_by_the_operators_replay(site: tuple[Engine, TestClient]) -> None:
    """Guard of the README's remedy for a report stored before acsn45 (no sender recorded; here a FHIR PUT stripping
    it): the ultrasound's own report under the number is refused AE 205 at OBR-3 as before, a plain replay refuses
    it again, and the replay of a copy naming its application in OBR-3 (``<n>^USIS``) files it as the ultrasound's
    own exam -- the CT report left as it was. (rv43e's guard of the replay, which acsn45 rewrote to the AA at once.)"""
    eng, http = site
    tag, number = "RV45A8", "20261206308"
    ct = _ct_and_report(http, tag, number)
    _stored_before(http, ct)
    held = _us(f"{tag}3", tag, number)
    assert _acks(http, held) == ("AE", AT_OBR3)
    url = f"/admin/quarantine/{message_id('FNXRMYY', f'{tag}3')}/replay"
    ops = _operator(eng, "system/MessageHeader.cr", "rv45a-ops")
    plain = http.post(url, headers=ops)
    assert plain.status_code == 200 and plain.json()["ack_code"] == "AE", plain.text
    named = http.post(url, content=held.replace(f"OBR|1||{number}|", f"OBR|1||{number}^USIS|").encode(), headers=ops)
    assert named.status_code == 200 and named.json()["ack_code"] == "AA", named.text
    assert _based_on(http, ct) == ["未见异常"]
    assert len(_orders_of(http, ct["subject"]["reference"])) == 2
