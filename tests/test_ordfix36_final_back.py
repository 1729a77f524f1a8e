"""ordfix36: a final result is taken back only by a correction, an amendment or a withdrawal (OBX-11 C,
A/B, W/D; HL7 v2.5.1 table 0085) -- a preliminary (P) arriving after the final (F) of the same result
does not set it back to ``preliminary`` (``engine.merge_rules`` ``not_back``, ``merge.yaml``):

- a P the same sender's MSH-7 shows older than the final's message is held, like any older
  restatement (AA, W, nothing of the result written);
- a P sent after the final keeps ``final`` (AA, W at ``OBX^n^11``), and its value, when another, is
  not stored either: a final value changes only by a correction;
- a correction after the final, and a final after a preliminary, go as before.

Real HL7 through ``POST /hl7v2`` into the real store on each backend (``tests.module_store``),
resources read back over ``/fhir``."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.hl7_calls import err_lines, module_http, post, written
from tests.module_store import module_eng

__all__ = ["engine", "module_http"]

engine = module_eng


# OBX-11 (table 0085) -> the OBR-25 (table 0123) a lab sends beside it: the codes both tables give the same
# meaning; any other (W, D withdrawn, A/B amended, U, N, S -- 0123 S is "procedure scheduled", A "some
# results available") leaves OBR-25 empty, the report's status read off its results. The status sat in
# OBR-24 (``...||||CH|F``: CH in OBR-23), so OBR-25 was always empty (notback37; thirty-eighth round, status38)
_REPORT_OF = {"F": "F", "C": "C", "P": "P", "R": "R", "I": "I", "X": "X"}


def report_of(status: str) -> str:
    """The OBR-25 a lab sends beside results of OBX-11 ``status`` (``_REPORT_OF``; "" for any other)."""
    return _REPORT_OF.get(status, "")


def _result(control: str, stamp: str, mrn: str, order: str, value: str, status: str, *, note: str = "",
            report: str | None = None) -> str:
    """One LIS ORU: potassium ``value`` with OBX-11 ``status``, MSH-7 ``stamp``; OBR-24 the section (CH),
    OBR-25 ``report`` (None: ``report_of(status)``)."""
    obr25 = report_of(status) if report is None else report
    lines = [f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|{stamp}||ORU^R01^ORU_R01|{control}|P|2.5.1",
             f"PID|1||{mrn}^^^FNXRMYY^MR||郑^七||19750621|M",
             f"ORC|RE|{order}P^HIS|{order}^LIS||CM",
             f"OBR|1|{order}P^HIS|{order}^LIS|CHEM^生化^L|||20261203080000|||||||||||||||||CH|{obr25}",
             f"OBX|1|NM|K^K^L||{value}|mmol/L|3.5-5.5|N|||{status}|||20261203083000"]
    if note:
        lines.append(f"NTE|1||{note}")
    return "\r".join(lines) + "\r"


def _stored(http: TestClient, obs_id: str) -> dict:
    return http.get(f"/fhir/Observation/{obs_id}").json()


def _first(engine: Engine, http: TestClient, control: str, stamp: str, mrn: str, order: str) -> str:
    assert b"MSA|AA" in post(http, _result(control, stamp, mrn, order, "4.1", "F"))
    (obs,) = written(engine, http, control, "Observation")
    assert obs["status"] == "final"
    return obs["id"]


def test_a_preliminary_sent_after_the_final_keeps_it_final(engine: Engine, http: TestClient) -> None:
    """F 4.1 at 10:00, then P 4.1 at 12:00 (the LIS re-sending its preliminary): still final, AA, one W
    at OBX^1^11 saying a final result is taken back only by C, A/B or W/D."""
    obs_id = _first(engine, http, "OF36-5A", "20261203100000", "OF36M5", "OF36P5")
    (report,) = written(engine, http, "OF36-5A", "DiagnosticReport")
    ack = post(http, _result("OF36-5B", "20261203120000", "OF36M5", "OF36P5", "4.1", "P"))
    assert b"MSA|AA" in ack, ack
    stored = _stored(http, obs_id)
    assert stored["status"] == "final" and stored["valueQuantity"]["value"] == 4.1, stored
    assert http.get(f"/fhir/DiagnosticReport/{report['id']}").json()["status"] == "final"
    (warned,) = [e for e in err_lines(ack) if "taken back only" in e]
    assert warned.split("|")[2] == "OBX^1^11" and "|W|" in warned, warned


def test_a_later_preliminary_with_another_value_changes_nothing_of_the_final(
        engine: Engine, http: TestClient) -> None:
    """F 4.1 at 10:00, then P 5.0 at 12:00: a final value changes only by a correction -- the stored
    result stays final 4.1 (AA, W at OBX^1^11 naming the value too); its note is taken."""
    obs_id = _first(engine, http, "OF36-6A", "20261203100000", "OF36M6", "OF36P6")
    ack = post(http, _result("OF36-6B", "20261203120000", "OF36M6", "OF36P6", "5.0", "P", note="溶血"))
    assert b"MSA|AA" in ack, ack
    stored = _stored(http, obs_id)
    assert stored["status"] == "final" and stored["valueQuantity"]["value"] == 4.1, stored
    assert [n["text"] for n in stored.get("note", ())] == ["溶血"], stored
    (warned,) = [e for e in err_lines(ack) if "taken back only" in e]
    assert warned.split("|")[2] == "OBX^1^11" and "valueQuantity" in warned, warned


def test_an_older_preliminary_is_held(engine: Engine, http: TestClient) -> None:
    """F 4.1 at 12:00, then the LIS's P 4.1 of 11:00 arriving last: the same sender's older statement --
    held (AA, W at OBX^1^11, "not later: older"), nothing of it written: its note is not stored."""
    obs_id = _first(engine, http, "OF36-7A", "20261203120000", "OF36M7", "OF36P7")
    ack = post(http, _result("OF36-7B", "20261203110000", "OF36M7", "OF36P7", "4.1", "P", note="溶血"))
    assert b"MSA|AA" in ack, ack
    stored = _stored(http, obs_id)
    assert stored["status"] == "final" and "note" not in stored, stored
    (warned,) = [e for e in err_lines(ack) if "not later" in e]
    assert warned.split("|")[2] == "OBX^1^11" and "OF36-7A" in warned, warned


def test_an_older_preliminary_with_another_value_is_held_at_its_status(engine: Engine, http: TestClient) -> None:
    """F 4.1 at 12:00, then P 3.9 of 11:00: held as an older statement, W at OBX^1^11 as over a correction
    (one rule, one location: the step back is the reason, whatever value it states -- status37)."""
    obs_id = _first(engine, http, "OF36-8A", "20261203120000", "OF36M8", "OF36P8")
    ack = post(http, _result("OF36-8B", "20261203110000", "OF36M8", "OF36P8", "3.9", "P"))
    assert b"MSA|AA" in ack, ack
    stored = _stored(http, obs_id)
    assert stored["status"] == "final" and stored["valueQuantity"]["value"] == 4.1, stored
    (warned,) = [e for e in err_lines(ack) if "not later" in e]
    assert warned.split("|")[2] == "OBX^1^11", warned


def test_forward_and_a_correction_go_as_before(engine: Engine, http: TestClient) -> None:
    """The controls: P 4.0 at 10:00 then F 4.1 at 11:00 makes it final 4.1; C 4.3 at 12:00 corrects it."""
    assert b"MSA|AA" in post(http, _result("OF36-9A", "20261203100000", "OF36M9", "OF36P9", "4.0", "P"))
    (obs,) = written(engine, http, "OF36-9A", "Observation")
    assert obs["status"] == "preliminary"
    ack = post(http, _result("OF36-9B", "20261203110000", "OF36M9", "OF36P9", "4.1", "F"))
    assert b"MSA|AA" in ack and not [e for e in err_lines(ack) if "|W|" in e and "OBX" in e], ack
    assert (_stored(http, obs["id"])["status"], _stored(http, obs["id"])["valueQuantity"]["value"]) == ("final", 4.1)
    ack = post(http, _result("OF36-9C", "20261203120000", "OF36M9", "OF36P9", "4.3", "C"))
    assert b"MSA|AA" in ack, ack
    stored = _stored(http, obs["id"])
    assert (stored["status"], stored["valueQuantity"]["value"]) == ("corrected", 4.3), stored
