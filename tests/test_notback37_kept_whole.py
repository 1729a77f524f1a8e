"""notback37: a later P kept out of a final or corrected result (``merge.yaml`` Observation.status
``not_back``, ``merged: [note]``) is kept out whole but for its note -- everything that describes its
observation goes with its value -- and its report keeps its times with its status (DiagnosticReport.status
``stands_with``); the report's status is located at OBR-25 only when OBR-25 was sent (review rv37a MED 2-5,
LOW 8).

The messages here state OBR-25 where HL7 puts it (field 25: ``...|CH|F``, OBR-24 the section), beside
OBX-14 (time), OBX-16 (observer), OBX-17 (method), OBX-20 (body site) and an SPM (the specimen). Real HL7
v2 through ``POST /hl7v2`` (and one over MLLP) into the real store on each backend (``tests.module_store``),
read back over ``/fhir``."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.hl7_calls import err_lines, mllp, module_http, post, written
from tests.module_store import module_eng

__all__ = ["engine", "module_http"]

engine = module_eng


def _result(control: str, stamp: str, tag: str, value: str, status: str, *, app: str = "LIS",
            drawn: str = "20261203080000", issued: str = "20261203093000", seen: str = "20261203083000",
            observer: str = "D001^张^三", method: str = "ISE^离子选择电极法^L", site: str = "LA^左臂^L",
            tube: str = "", note: str = "", obr25: str | None = None) -> str:
    """One ORU of potassium ``value`` (OBX-11 ``status``; OBR-25 the same unless ``obr25``), MSH-7 ``stamp``:
    OBR-7 ``drawn``, OBR-22 ``issued``, OBX-14 ``seen``, OBX-16 ``observer``, OBX-17 ``method``, OBX-20
    ``site``; ``tube``: an SPM of that SPM-2 collected at ``drawn``; ``note``: an NTE."""
    obr = ["OBR", "1", f"NB37P{tag}^HIS", f"NB37F{tag}^LIS", "CHEM^生化^L", "", "", drawn] + [""] * 14
    obr += [issued, "", "CH", status if obr25 is None else obr25]
    obx = ["OBX", "1", "NM", "K^钾^L", "", value, "mmol/L", "3.5-5.5", "N", "", "", status, "", "", seen,
           "", observer, method, "", "", site]
    lines = [f"MSH|^~\\&|{app}|FNXRMYY|HUREN|FNYGT|{stamp}||ORU^R01^ORU_R01|{control}|P|2.5.1",
             f"PID|1||NB37M{tag}^^^FNXRMYY^MR||钱^八||19700315|F",
             f"ORC|RE|NB37P{tag}^HIS|NB37F{tag}^LIS||CM", "|".join(obr), "|".join(obx)]
    if note:
        lines.append(f"NTE|1||{note}")
    if tube:
        lines.append(f"SPM|1|{tube}^LIS||BLD^全血^L|||||||||||||{drawn}")
    return "\r".join(lines) + "\r"


def _read(http: TestClient, ref: str) -> dict:
    return http.get(f"/fhir/{ref}").json()


def _first(engine: Engine, http: TestClient, tag: str, **kw: str) -> tuple[dict, dict]:
    """The LIS's F 4.1 at 10:00 (tube A): (its Observation, its DiagnosticReport) as stored."""
    assert b"MSA|AA" in post(http, _result(f"NB37-{tag}A", "20261203100000", tag, "4.1", "F",
                                           tube=f"NB37S{tag}A", **kw))
    (obs,) = written(engine, http, f"NB37-{tag}A", "Observation")
    (report,) = written(engine, http, f"NB37-{tag}A", "DiagnosticReport")
    return obs, report


def _kept_warning(ack: bytes) -> tuple[str, list[str], str]:
    """The one W of the kept-out result: (ERR-2, the elements it says stood, what it says was stored)."""
    (warned,) = [e for e in err_lines(ack) if "taken back only" in e and "|W|" in e]
    stood, _, stored = warned.partition("what else it states is stored")
    return warned.split("|")[2], stood.split("|")[8].split(": ", 1)[0].split(", "), stored


# the P of a re-drawn tube B: drawn 11:00, issued 11:45, observed 11:30 by 李四, POCT, right arm, a note
_REDRAWN = {"drawn": "20261203110000", "issued": "20261203114500", "seen": "20261203113000",
            "observer": "D002^李^四", "method": "POCT^床旁快速检测^L", "site": "RA^右臂^L", "note": "溶血"}


def test_a_later_p_of_a_redrawn_tube_leaves_the_final_result_whole_but_its_note(
        engine: Engine, http: TestClient) -> None:
    """F 4.1 (tube A, 08:00, 张三, ISE, left arm), then the LIS's later P 5.0 of tube B (11:00, 李四, POCT,
    right arm) with the note 溶血: the final result is still tube A's 4.1 as 张三 observed it by ISE on the
    left arm, at its time -- only the note is taken; the W at OBX^1^11 names each element that stood and
    the note as stored."""
    obs, _ = _first(engine, http, "1")
    before = _read(http, f"Observation/{obs['id']}")
    ack = post(http, _result("NB37-1B", "20261203120000", "1", "5.0", "P", tube="NB37S1B", **_REDRAWN))
    assert b"MSA|AA" in ack, ack
    after = _read(http, f"Observation/{obs['id']}")
    for name in ("status", "valueQuantity", "effectiveDateTime", "performer", "method", "bodySite", "specimen"):
        assert after.get(name) == before.get(name), (name, before.get(name), after.get(name))
    assert [n["text"] for n in after.get("note", ())] == ["溶血"], after
    at, stood, stored = _kept_warning(ack)
    assert at == "OBX^1^11", at
    assert stood == ["Observation.status", *(f"Observation.{n}" for n in (
        "bodySite", "effectiveDateTime", "method", "performer", "specimen", "valueQuantity"))], stood
    assert "Observation.note" in stored and "performer" not in stored, stored


def test_the_warning_names_only_what_differed(engine: Engine, http: TestClient) -> None:
    """The same tube, observer, method and site again, only the value another (5.0): the W names the status
    and the value alone -- what the P stated as stored is not said to be kept out."""
    obs, _ = _first(engine, http, "2")
    ack = post(http, _result("NB37-2B", "20261203120000", "2", "5.0", "P", tube="NB37S2A"))
    assert b"MSA|AA" in ack, ack
    assert _read(http, f"Observation/{obs['id']}")["valueQuantity"]["value"] == 4.1
    at, stood, stored = _kept_warning(ack)
    assert (at, stood, stored) == ("OBX^1^11", ["Observation.status", "Observation.valueQuantity"], ""), ack


def test_a_later_p_deleting_the_observer_keeps_it(engine: Engine, http: TestClient) -> None:
    """Over MLLP: F 4.1 by 张三, then the LIS's later P 4.1 with OBX-16 ``""`` (delete the observer): the
    final's observer stays -- no information issue says it was deleted; the W names it as stood."""
    obs, _ = _first(engine, http, "3")
    before = _read(http, f"Observation/{obs['id']}")
    (ack,) = mllp(engine, _result("NB37-3B", "20261203120000", "3", "4.1", "P", tube="NB37S3A",
                                  observer='""').encode())
    assert b"MSA|AA" in ack, ack
    after = _read(http, f"Observation/{obs['id']}")
    assert after["performer"] == before["performer"], (before["performer"], after["performer"])
    assert not [e for e in err_lines(ack) if "deleted" in e], err_lines(ack)
    assert _kept_warning(ack)[1] == ["Observation.status", "Observation.performer"], ack


def test_a_correction_still_takes_its_observer_method_and_tube(engine: Engine, http: TestClient) -> None:
    """The control: F 4.1, then the LIS's correction C 4.3 of tube B by 李四 (POCT): nothing is kept out --
    the corrected result is 李四's POCT measurement of tube B, and the report takes the correction's time."""
    obs, report = _first(engine, http, "4")
    ack = post(http, _result("NB37-4B", "20261203120000", "4", "4.3", "C", tube="NB37S4B", **_REDRAWN))
    assert b"MSA|AA" in ack and not [e for e in err_lines(ack) if "taken back only" in e], ack
    after = _read(http, f"Observation/{obs['id']}")
    assert (after["status"], after["valueQuantity"]["value"]) == ("corrected", 4.3), after
    assert after["method"]["coding"][0]["code"] == "POCT", after["method"]
    assert "李四" in [p.get("display") for p in after["performer"]], after["performer"]
    (tube,) = written(engine, http, "NB37-4B", "Specimen")
    assert after["specimen"]["reference"] == f"Specimen/{tube['id']}", after["specimen"]
    assert _read(http, f"DiagnosticReport/{report['id']}")["effectiveDateTime"].startswith("2026-12-03T11:00")


def test_the_final_report_keeps_its_times_with_its_status(engine: Engine, http: TestClient) -> None:
    """F report (OBR-7 08:00, OBR-22 09:30), then the LIS's later P of tube B (OBR-7 11:00, OBR-22 11:45,
    OBR-25 P): its result kept out, the report stays final and keeps both times; the W at OBR^1^25 (sent)
    names them and the times it did not store."""
    _, report = _first(engine, http, "5")
    before = _read(http, f"DiagnosticReport/{report['id']}")
    ack = post(http, _result("NB37-5B", "20261203120000", "5", "5.0", "P", tube="NB37S5B", **_REDRAWN))
    assert b"MSA|AA" in ack, ack
    after = _read(http, f"DiagnosticReport/{report['id']}")
    assert after["status"] == "final", after
    assert (after["effectiveDateTime"], after["issued"]) == (before["effectiveDateTime"], before["issued"]), after
    (warned,) = [e for e in err_lines(ack) if "DiagnosticReport.status" in e]
    assert warned.split("|")[2] == "OBR^1^25" and "|W|" in warned, warned
    assert "effectiveDateTime" in warned and "issued" in warned and "2026-12-03T11:00" in warned, warned


def test_a_later_final_still_dates_the_report(engine: Engine, http: TestClient) -> None:
    """The control: the LIS's later F 4.4 of tube B (a re-run sent F) is no step back -- the report takes its
    times, and no W says they stood."""
    _, report = _first(engine, http, "6")
    ack = post(http, _result("NB37-6B", "20261203120000", "6", "4.4", "F", tube="NB37S6B", **_REDRAWN))
    assert b"MSA|AA" in ack and not [e for e in err_lines(ack) if "DiagnosticReport" in e], ack
    after = _read(http, f"DiagnosticReport/{report['id']}")
    assert after["effectiveDateTime"].startswith("2026-12-03T11:00") and after["issued"].startswith(
        "2026-12-03T11:45"), after


def _corrected(engine: Engine, http: TestClient, tag: str) -> dict:
    obs, _ = _first(engine, http, tag)
    assert b"MSA|AA" in post(http, _result(f"NB37-{tag}B", "20261203120000", tag, "5.6", "C", tube=f"NB37S{tag}A"))
    return obs


def test_a_report_status_sent_in_obr25_is_refused_there(engine: Engine, http: TestClient) -> None:
    """Another application's F over the LIS's correction, OBR-25 F sent: its report's status cannot be dated
    either -- AE, one ERR at the result's OBX^1^11 and one at OBR^1^25, where the report's F was stated."""
    obs = _corrected(engine, http, "7")
    ack = post(http, _result("NB37-7C", "20261203130000", "7", "4.4", "F", app="POCT", tube="NB37S7A"))
    assert b"MSA|AE" in ack, ack
    assert [e.split("|")[2] for e in err_lines(ack) if e.split("|")[4] == "E"] == ["OBX^1^11", "OBR^1^25"], ack
    assert _read(http, f"Observation/{obs['id']}")["valueQuantity"]["value"] == 5.6


def test_a_report_status_read_from_its_results_names_no_obr25(engine: Engine, http: TestClient) -> None:
    """The same with OBR-25 empty (the report's F read from its result): AE, the report's ERR names no field
    -- not OBR^1^25, which the sender left empty."""
    obs = _corrected(engine, http, "8")
    ack = post(http, _result("NB37-8C", "20261203130000", "8", "4.4", "F", app="POCT", tube="NB37S8A", obr25=""))
    assert b"MSA|AE" in ack, ack
    assert [e.split("|")[2] for e in err_lines(ack) if e.split("|")[4] == "E"] == ["OBX^1^11", ""], ack
    assert _read(http, f"Observation/{obs['id']}")["valueQuantity"]["value"] == 5.6
