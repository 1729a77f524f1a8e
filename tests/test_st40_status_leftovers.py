"""st40 (fortieth round): the report, result and order statuses sfix39 left (its LOWs) -- real ORU^R01 over
``POST /hl7v2`` into the real store on each backend (``tests.module_store``), read back over ``/fhir``; the money
through the policy community over real MLLP (``recognition``: HOSPB's repeat flagged "not payable" or not), once a
module and backend (``shared_worlds44.community_eng``, suite44c), each test as a person of its own (``OwnSender``)
reading her reports and her flag; ``community`` (a store a test) stays for the modules that import it.

1. a correction under OBR-25 P beside a result still withdrawn: the report is the lab's preliminary, not corrected
   (``MergeRules._revived``);
2. a report first met as a withdrawal: its order is not completed (``results.status_from_report``);
3. a FHIR client's version between the feed's: as before or as later as the version it was written over
   (``MergeRules._before_later``), the stored one dated by what it kept (``_older_over_later``);
4. ``_older_over_later`` and its neighbours for P, C, W and X arriving older after a later version.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.messages import message_id
from tests.hl7_calls import err_lines, module_http, post, written
from tests.module_store import module_eng
from tests.shared_worlds44 import OwnSender, community_eng, community_mllp, flag_status, own
from tests.test_hooks11_policy_edges import flags, result
from tests.test_notback37_kept_whole import _REDRAWN
from tests.test_notback37_kept_whole import _result as _potassium
from tests.test_recognition_policy_e2e import CBC, community_engine, order, ts
from tests.test_stfix38_report_follows import _with_sodium

__all__ = ["community_eng", "community_mllp", "engine", "module_http"]

engine = module_eng


def _read(http: TestClient, ref: str) -> dict:
    return http.get(f"/fhir/{ref}").json()


def _final_panel(engine: Engine, http: TestClient, tag: str) -> tuple[dict[str, dict], dict]:
    """F of potassium 4.1 and sodium 140 (tube A) at 10:00, then the W of both at 11:00 (OBR-25 empty): the
    results by code and the report as stored, entered-in-error."""
    message = _potassium(f"ST40-{tag}A", "20261203100000", f"T{tag}", "4.1", "F", tube=f"ST40S{tag}A")
    assert b"MSA|AA" in post(http, _with_sodium(message, "F"))
    results = {o["code"]["coding"][0]["code"]: o for o in written(engine, http, f"ST40-{tag}A", "Observation")}
    (report,) = written(engine, http, f"ST40-{tag}A", "DiagnosticReport")
    withdraw = _potassium(f"ST40-{tag}B", "20261203110000", f"T{tag}", "4.1", "W", obr25="", tube=f"ST40S{tag}A")
    assert b"MSA|AA" in post(http, _with_sodium(withdraw, "W"))
    assert _read(http, f"DiagnosticReport/{report['id']}")["status"] == "entered-in-error"
    return results, report


# --- 1. a correction under OBR-25 P beside a result still withdrawn ------------------------------------------


def test_a_correction_under_p_beside_a_result_still_withdrawn_leaves_the_report_preliminary(
        engine: Engine, http: TestClient) -> None:
    """F of potassium and sodium, W of both, then the LIS's C 4.3 of potassium alone under OBR-25 P (sodium to
    be measured again): table 0123 P, "final results not yet obtained", and R4's preliminary, "not all results
    are final", both hold -- sodium is withdrawn. The report is preliminary, as the lab says, unwarned at
    OBR-25; it had gone corrected (a recognisable prior) beside sodium still withdrawn."""
    results, report = _final_panel(engine, http, "1")
    ack = post(http, _potassium("ST40-1C", "20261203120000", "T1", "4.3", "C", obr25="P", tube="ST40S1A"))
    assert b"MSA|AA" in ack, ack
    after = {code: _read(http, f"Observation/{o['id']}")["status"] for code, o in results.items()}
    assert after == {"K": "corrected", "NA": "entered-in-error"}, after
    assert _read(http, f"DiagnosticReport/{report['id']}")["status"] == "preliminary", err_lines(ack)
    assert not [e for e in err_lines(ack) if e.split("|")[2] == "OBR^1^25"], err_lines(ack)


def test_the_same_correction_listing_sodium_still_withdrawn_leaves_it_preliminary(
        engine: Engine, http: TestClient) -> None:
    """The same C of potassium under OBR-25 P, the message listing sodium's W again: one rule for the results
    the message lists and those only stored -- preliminary."""
    _, report = _final_panel(engine, http, "2")
    message = _potassium("ST40-2C", "20261203120000", "T2", "4.3", "C", obr25="P", tube="ST40S2A")
    ack = post(http, _with_sodium(message, "W"))
    assert b"MSA|AA" in ack, ack
    assert _read(http, f"DiagnosticReport/{report['id']}")["status"] == "preliminary", err_lines(ack)


def test_a_correction_of_every_result_under_p_makes_the_withdrawn_report_corrected(
        engine: Engine, http: TestClient) -> None:
    """Control (stat39's rule stands): the C of potassium and of sodium under OBR-25 P -- every result the
    report lists is corrected, so nothing is "not yet obtained" and the report is corrected, the W at
    OBR^1^25 naming the P not stored."""
    _, report = _final_panel(engine, http, "3")
    message = _potassium("ST40-3C", "20261203120000", "T3", "4.3", "C", obr25="P", tube="ST40S3A")
    ack = post(http, _with_sodium(message, "C", value="141"))
    assert b"MSA|AA" in ack, ack
    assert _read(http, f"DiagnosticReport/{report['id']}")["status"] == "corrected", err_lines(ack)
    (warned,) = [e for e in err_lines(ack) if e.split("|")[2] == "OBR^1^25"]
    assert '"preliminary" was not stored' in warned, warned


@pytest.fixture
def community(tmp_path: Path) -> Iterator[Engine]:
    """The policy tests' community (HOSPA, HOSPB, HOSPC; QC passed) on its own store."""
    yield from community_engine(tmp_path)


_HGB = "OBX|2|NM|HGB^血红蛋白^L||135|g/L|||||{status}|||{when}\n"


def _hospa(status: str, obr25: str, hours: int, control: str, *, wbc: str = "6.1", hgb: str | None = "135",
           hgb_status: str | None = None) -> str:
    """HOSPA's blood count (placer A1, drawn five days ago): WBC ``wbc`` at OBX-11 ``status`` and, unless
    ``hgb`` is None, HGB ``hgb`` at ``hgb_status`` (default ``status``), under OBR-25 ``obr25``, MSH-7 ``hours``
    o'clock that day."""
    when = ts(5, 10)
    sent = result("HOSPA", "A1", CBC, when, status=status, control=control)
    obr = {"W": "X"}.get(status, status)
    sent = sent.replace(f"|||{obr}\n", f"|||{obr25}\n").replace(f"|C1|{when}|", f"|C1|{ts(5, hours)}|")
    sent = sent.replace("||6.1|10*9/L|", f"||{wbc}|10*9/L|")
    if hgb is not None:
        sent += _HGB.format(status=hgb_status or status, when=when).replace("||135|", f"||{hgb}|")
    return sent


def _report_of(community: Engine, control: str) -> dict:
    doc = community.ingestor.messages.get(message_id("HOSPA", control))
    assert doc is not None, control
    (ref,) = [r for r in doc["resources"] if r.startswith("DiagnosticReport/")]
    return community.repository.read("DiagnosticReport", ref.split("/")[1])


def _order_of(community: Engine, report: dict) -> dict:
    (based,) = report["basedOn"]
    return community.repository.read("ServiceRequest", based["reference"].split("/")[1])


ON_SQLITE = pytest.mark.parametrize("community_eng", ["sqlite"], indirect=True)  # (as ``community``: SQLite alone)


@ON_SQLITE
def test_through_the_panel_the_flag_follows_what_the_report_is_after_each_step(
        community_eng: Engine, community_mllp: int, request: pytest.FixtureRequest) -> None:
    """HOSPA's final blood count (WBC and HGB) flags HOSPB's repeat; HOSPA withdraws both (OBR-25 C): void;
    HOSPA's C of WBC under OBR-25 P, HGB still withdrawn: the report is preliminary, no recognisable prior --
    the flag stays void (it came back "not payable" against a report whose HGB the lab says was wrong); HOSPA's
    C of HGB under OBR-25 C: every result corrected, the report corrected, and the flag back."""
    run = own(request, "ST40-1")
    hl7 = OwnSender(community_mllp, run)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    assert "MSA|AA" in hl7.send(_hospa("F", "F", 10, "f"))
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(result("HOSPB", "B1", CBC, ts(1, 10)))
    assert flag_status(community_eng, run) == "flagged", flags(community_eng)
    assert "MSA|AA" in hl7.send(_hospa("W", "C", 12, "w"))
    assert _report_of(community_eng, f"{run}-HOSPA-ORU-A1-Ww")["status"] == "entered-in-error"
    assert flag_status(community_eng, run) == "void", flags(community_eng)
    ack = hl7.send(_hospa("C", "P", 13, "c1", wbc="6.3", hgb=None))
    assert "MSA|AA" in ack, ack
    assert _report_of(community_eng, f"{run}-HOSPA-ORU-A1-Cc1")["status"] == "preliminary", ack
    assert flag_status(community_eng, run) == "void", flags(community_eng)
    ack = hl7.send(_hospa("C", "C", 14, "c2", wbc="6.3", hgb="136"))
    assert "MSA|AA" in ack, ack
    assert _report_of(community_eng, f"{run}-HOSPA-ORU-A1-Cc2")["status"] == "corrected", ack
    assert flag_status(community_eng, run) == "flagged", flags(community_eng)


# --- 2. a report first met as a withdrawal: its order ----------------------------------------------------------


@ON_SQLITE
@pytest.mark.parametrize("obr25", ["F", "C"])
def test_a_report_first_met_withdrawn_leaves_its_order_active(community_eng: Engine, community_mllp: int, obr25: str,
                                                            request: pytest.FixtureRequest) -> None:
    """HOSPA's order (active), then its first result message the W of both results under OBR-25 ``obr25`` (the
    final never received): the report is entered-in-error and the order not "fully completed" (R4 completed) --
    nor revoked nor entered-in-error: the lab withdrew its results, not the order -- it stays active; HOSPB's
    repeat is not flagged. The lab's re-issued final then completes the order and flags the repeat."""
    run = own(request, "ST40-2")
    hl7 = OwnSender(community_mllp, run)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    ack = hl7.send(_hospa("W", obr25, 12, "w"))
    assert "MSA|AA" in ack, ack
    report = _report_of(community_eng, f"{run}-HOSPA-ORU-A1-Ww")
    assert report["status"] == "entered-in-error", report
    assert _order_of(community_eng, report)["status"] == "active", ack
    assert "ORC^1^5" in ack and "ORC-5 'CM' (completed) was not stored" in ack, ack  # (its ORC-5 CM)
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(result("HOSPB", "B1", CBC, ts(1, 10)))
    assert flag_status(community_eng, run) in (None, "void"), flags(community_eng)
    assert "MSA|AA" in hl7.send(_hospa("F", "F", 13, "f"))
    assert _order_of(community_eng, report)["status"] == "completed"


@pytest.mark.parametrize(("status", "order_status"), [("W", "active"), ("X", "revoked")])
def test_a_first_report_none_of_whose_results_stands_completes_no_order(
        engine: Engine, http: TestClient, status: str, order_status: str) -> None:
    """The LIS's first message of an order it created (no ORM before) is a W (or X) of its one result under
    OBR-25 F: W leaves the order active (it was not wrong, nor called off); X -- results cannot be obtained --
    revokes it, as the same X under OBR-25 empty does (control below)."""
    ack = post(http, _potassium(f"ST40-6{status}", "20261203110000", f"T6{status}", "" if status == "X" else "4.1",
                                status, obr25="F", tube=f"ST40S6{status}"))
    assert b"MSA|AA" in ack, ack
    (report,) = written(engine, http, f"ST40-6{status}", "DiagnosticReport")
    (request,) = written(engine, http, f"ST40-6{status}", "ServiceRequest")
    assert report["status"] in ("entered-in-error", "cancelled"), report
    assert request["status"] == order_status, request
    control = _potassium(f"ST40-7{status}", "20261203110000", f"T7{status}", "" if status == "X" else "4.1",
                         status, obr25="", tube=f"ST40S7{status}")
    assert b"MSA|AA" in post(http, control)
    (request,) = written(engine, http, f"ST40-7{status}", "ServiceRequest")
    assert request["status"] == order_status, request


def test_a_first_report_with_a_result_standing_completes_its_order(engine: Engine, http: TestClient) -> None:
    """Control: potassium W beside sodium F under OBR-25 F -- a result stands, the report is final and the
    order completed."""
    message = _potassium("ST40-8A", "20261203110000", "T8", "4.1", "W", obr25="F", tube="ST40S8A")
    assert b"MSA|AA" in post(http, _with_sodium(message, "F"))
    (request,) = written(engine, http, "ST40-8A", "ServiceRequest")
    assert request["status"] == "completed", request


# --- 3. a FHIR client's version between the feed's ------------------------------------------------------------


def _tube(http: TestClient, resource: dict) -> str | None:
    """The SPM-2 of the tube ``resource`` (a result) names, read through its Specimen."""
    ref = (resource.get("specimen") or {}).get("reference")
    return _read(http, ref)["identifier"][0]["value"] if ref else None


def _clients_note(http: TestClient, obs_id: str, text: str) -> None:
    """A records office's PUT of the result as stored with a note added (a FHIR client's version)."""
    body = _read(http, f"Observation/{obs_id}")
    body["note"] = [*body.get("note", ()), {"text": text}]
    assert http.put(f"/fhir/Observation/{obs_id}", json=body).status_code == 200


def test_a_clients_note_on_the_later_p_gives_the_older_final_none_of_its_tube(
        engine: Engine, http: TestClient) -> None:
    """P 4.0 of tube A at 09:00, the later P 5.0 of re-drawn tube B at 12:00, an office's note on it (a FHIR
    client's version), the LIS's P 5.1 of tube B at 12:10, then the F 4.1 of 11:50 with no SPM (delivered
    late): in MSH-7 order the F comes over the 09:00 P. The client's version was written over the 12:00 P and
    carries its tube B -- as later as that P, not "before": the final names tube A."""
    assert b"MSA|AA" in post(http, _potassium("ST40-9A", "20261203090000", "T9", "4.0", "P", tube="ST40S9A"))
    (obs,) = written(engine, http, "ST40-9A", "Observation")
    later = _potassium("ST40-9B", "20261203120000", "T9", "5.0", "P", tube="ST40S9B", **_REDRAWN)
    assert b"MSA|AA" in post(http, later)
    _clients_note(http, obs["id"], "已电话通知病房")
    again = _potassium("ST40-9C", "20261203121000", "T9", "5.1", "P", tube="ST40S9B", **_REDRAWN)
    assert b"MSA|AA" in post(http, again)
    assert _tube(http, _read(http, f"Observation/{obs['id']}")) == "ST40S9B"
    ack = post(http, _potassium("ST40-9D", "20261203115000", "T9", "4.1", "F"))
    assert b"MSA|AA" in ack, ack
    result = _read(http, f"Observation/{obs['id']}")
    assert (result["status"], result["valueQuantity"]["value"]) == ("final", 4.1), result
    assert _tube(http, result) == "ST40S9A", (result, err_lines(ack))


def test_a_clients_note_stored_on_the_later_p_dates_it_by_that_p(engine: Engine, http: TestClient) -> None:
    """P of tube A at 09:00, the later P of tube B at 12:00, an office's note on it (the stored version a
    client's), then the F of 11:50 with no SPM: the client kept the P's status and value, so the stored
    version is dated by the 12:00 P (``carried``, as ``_not_back`` dates it) and the F is older -- tube A; the
    office's note stays (a note is merged)."""
    assert b"MSA|AA" in post(http, _potassium("ST40-10A", "20261203090000", "T10", "4.0", "P", tube="ST40S10A"))
    (obs,) = written(engine, http, "ST40-10A", "Observation")
    later = _potassium("ST40-10B", "20261203120000", "T10", "5.0", "P", tube="ST40S10B", **_REDRAWN)
    assert b"MSA|AA" in post(http, later)
    _clients_note(http, obs["id"], "已电话通知病房")
    ack = post(http, _potassium("ST40-10C", "20261203115000", "T10", "4.1", "F"))
    assert b"MSA|AA" in ack, ack
    result = _read(http, f"Observation/{obs['id']}")
    assert (result["status"], _tube(http, result)) == ("final", "ST40S10A"), (result, err_lines(ack))
    assert "已电话通知病房" in [n.get("text") for n in result.get("note", ())], result


def test_a_clients_version_over_the_even_older_p_is_what_the_older_final_comes_over(
        engine: Engine, http: TestClient) -> None:
    """Control: P of tube A at 09:00, an office's PUT over it naming tube C (a client's version written over
    the 09:00 P: before), the later P of tube B at 12:00, then the F of 11:50 with no SPM: the final comes over
    the client's version -- tube C, the client's word, not the 09:00 P's tube A nor the later P's B."""
    assert b"MSA|AA" in post(http, _potassium("ST40-11A", "20261203090000", "T11", "4.0", "P", tube="ST40S11A"))
    (obs,) = written(engine, http, "ST40-11A", "Observation")
    body = _read(http, f"Observation/{obs['id']}")
    tube = {"resourceType": "Specimen", "identifier": [{"system": "urn:st40:office", "value": "ST40S11C"}],
            "subject": body["subject"]}
    created = http.post("/fhir/Specimen", json=tube)
    assert created.status_code == 201, created.text
    body["specimen"] = {"reference": f"Specimen/{created.json()['id']}"}
    assert http.put(f"/fhir/Observation/{obs['id']}", json=body).status_code == 200
    later = _potassium("ST40-11B", "20261203120000", "T11", "5.0", "P", tube="ST40S11B", **_REDRAWN)
    assert b"MSA|AA" in post(http, later)
    assert _tube(http, _read(http, f"Observation/{obs['id']}")) == "ST40S11B"
    ack = post(http, _potassium("ST40-11C", "20261203115000", "T11", "4.1", "F"))
    assert b"MSA|AA" in ack, ack
    result = _read(http, f"Observation/{obs['id']}")
    assert (result["status"], _tube(http, result)) == ("final", "ST40S11C"), (result, err_lines(ack))


# --- 4. P, C, W and X arriving older after a later version: what MSH-7 order gives -----------------------------


_OLDER = {"P": "4.1", "C": "4.3", "W": "4.0", "X": "", "F": "4.1"}  # the 11:50 message's OBX-5 by its OBX-11


def _three(tag: str, later: str, older: str, *, in_order: bool) -> list[str]:
    """P 4.0 of tube A at 09:00; the ``later`` at 12:00 (P: 5.0 of a re-drawn tube B; F: 4.2 of tube A); the
    ``older`` of 11:50 with no SPM (OBR-25 its status, empty for W and X) -- in MSH-7 order, or as delivered
    (the 11:50 one late, after the 12:00 one)."""
    first = _potassium(f"ST40-{tag}A", "20261203090000", tag, "4.0", "P", tube=f"ST40S{tag}A")
    twelve = (_potassium(f"ST40-{tag}B", "20261203120000", tag, "5.0", "P", tube=f"ST40S{tag}B", **_REDRAWN)
              if later == "P" else _potassium(f"ST40-{tag}B", "20261203120000", tag, "4.2", "F", tube=f"ST40S{tag}A"))
    late = _potassium(f"ST40-{tag}C", "20261203115000", tag, _OLDER[older], older,
                      obr25="" if older in ("W", "X") else older)
    return [first, late, twelve] if in_order else [first, twelve, late]


def _as_sent(engine: Engine, http: TestClient, tag: str, later: str, older: str, *, in_order: bool) -> dict:
    """What the result and its report are after ``_three``'s messages: statuses, value, tube letters, notes."""
    for message in _three(tag, later, older, in_order=in_order):
        ack = post(http, message)
        assert b"MSA|A" in ack, ack
    (obs,) = written(engine, http, f"ST40-{tag}A", "Observation")
    (report,) = written(engine, http, f"ST40-{tag}A", "DiagnosticReport")
    tubes = sorted(_read(http, s["reference"])["identifier"][0]["value"][-1] for s in report.get("specimen", ()))
    tube = _tube(http, obs)
    return {"status": obs["status"], "value": (obs.get("valueQuantity") or {}).get("value"),
            "tube": tube[-1] if tube else None, "notes": [n.get("text") for n in obs.get("note", ())],
            "report": report["status"], "report tubes": tubes}


# what MSH-7 order gives (older, later): the result's status, value and tube, the report's status and tubes.
# Under the later P of tube B: the P stands over a P (the later one) and over an X (nothing obtained: the re-drawn
# tube's P is a result), is kept out of a C or F (its note merged, ``not_back``) and held whole over a W; under the
# later F (4.2): the F stands over each.
_IN_ORDER = {
    ("P", "P"): ("preliminary", 5.0, "B", "preliminary", ["A", "B"]),
    ("C", "P"): ("corrected", 4.3, "A", "corrected", ["A"]),
    ("W", "P"): ("entered-in-error", 4.0, "A", "entered-in-error", ["A"]),
    ("X", "P"): ("preliminary", 5.0, "B", "preliminary", ["A", "B"]),
    ("F", "P"): ("final", 4.1, "A", "final", ["A"]),
    **{(older, "F"): ("final", 4.2, "A", "final", ["A"]) for older in "PCWXF"},
}


@pytest.mark.parametrize("later", ["P", "F"])
@pytest.mark.parametrize("older", ["P", "C", "W", "X", "F"])
def test_an_older_message_after_a_later_one_gives_what_msh7_order_gives(
        engine: Engine, http: TestClient, older: str, later: str) -> None:
    """The LIS's P of tube A at 09:00, its ``later`` at 12:00 and its ``older`` of 11:50 (no SPM): sent in
    MSH-7 order to one order, and delivered late -- the 11:50 one after the 12:00 one -- to another. The result
    (status, value, tube, notes) and its report (status, tubes) are the same either way (``_older_over_later``,
    ``_dated``, ``_restated_older``, ``_not_back``; the report's ``_over_later_p``) -- and what ``_IN_ORDER``
    says. The report of the older C or W had kept the later P's tube B (``_dated`` lifted its status, its
    results having stepped past the P, and ``_over_later_p`` was not asked)."""
    tag = f"U{older}{later}"
    in_order = _as_sent(engine, http, f"{tag}1", later, older, in_order=True)
    late = _as_sent(engine, http, f"{tag}2", later, older, in_order=False)
    assert late == in_order
    status, value, tube, report, tubes = _IN_ORDER[(older, later)]
    assert (in_order["status"], in_order["value"], in_order["tube"]) == (status, value, tube), in_order
    assert (in_order["report"], in_order["report tubes"]) == (report, tubes), in_order
