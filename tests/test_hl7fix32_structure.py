"""The structure check's review findings mended (thirty-second round, hl7fix32, after rvhl7seq32).

Real HL7 v2.5.1 bytes over a real MLLP socket into a real engine (hl7seq32's set-up: a site with a ``strict``
sender FNZYY); the ACK's code-100 ERRs read, what was stored read from the engine's message record.

* a segment no reading of the structure holds, which the greedy step placed without a word (a ``PID`` sent
  again before its order, an ``ORC`` twice), is named at itself, once: the walk goes on from where HAPI would
  place it, so the segments after it are not named as well;
* a note (``NTE``) no reading holds is named as a note of the segment before it, each of a run of them; a
  note after a non-note segment named out of place stays that segment's (hl7seq32's rule, kept);
* a ``strict`` sender is refused for these as for every deviation (README: the decision on ``missing``).
"""

from __future__ import annotations

from engine.engine import Engine
from engine.messages import message_id
from tests import test_hl7seq32_structure as seq32
from tests.test_hl7seq32_structure import TQ1, obx, pid, send

eng = seq32.eng  # (hl7seq32's set-up: this module's engine, a strict sender FNZYY in its site)

OBR = "OBR|1|P{0}|F{0}|58410-2^CBC panel^LN|||20261201070000"


def stored(eng: Engine, control: str, rtype: str, facility: str = "FNXRMYY") -> int:
    """How many ``rtype`` resources message ``control`` wrote (0 when it was refused: no record)."""
    doc = eng.ingestor.messages.get(message_id(facility, control))
    return sum(r.startswith(rtype + "/") for r in (doc or {}).get("resources") or [])


def test_a_pid_sent_again_before_its_order_is_named_once_and_its_results_are_stored(eng: Engine) -> None:
    """ORU_R01: PID PV1 PID OBR OBX OBX, the same patient twice: the first PATIENT_RESULT then has no
    ORDER_OBSERVATION (required), so no reading holds the second PID; before, no word. W at PID^2 only."""
    code, found = send(eng, "ORU^R01^ORU_R01", "FX1", pid("FX1"), "PV1|1|O", pid("FX1"), OBR.format("FX1"),
                       obx(1), obx(2, "13.0"))
    assert code == "AA" and [f[:2] for f in found] == [["PID^2", "W"]], found
    assert "PID stands after PV1" in found[0][2], found
    assert stored(eng, "FX1", "Observation") == 2


def test_a_prior_results_order_without_its_result_draws_one_warning_not_a_cascade(eng: Engine) -> None:
    """OMG_O19: a prior result's order (ORC OBR TQ1) with no OBX (OBSERVATION_PRIOR is required), then a
    new order ORC TQ1 OBR OBX. One W, at the ORC no reading holds; the new order's TQ1, OBR and OBX after it
    are in place (keeping the walk's places from before the ORC named its OBR as well)."""
    code, found = send(eng, "OMG^O19^OMG_O19", "FX2", pid("FX2"), "PV1|1|O",
                       "ORC|NW|PFX2", TQ1, "OBR|1|PFX2||24627-2^Chest CT^LN",
                       "ORC|RE|PRX2", "OBR|1|PRX2||24627-2^Chest CT^LN", TQ1,
                       "ORC|NW|PFX2C", TQ1, "OBR|2|PFX2C||24627-2^Chest CT^LN", obx(1))
    assert code == "AA" and [f[:2] for f in found] == [["ORC^3", "W"]], found


def test_an_orc_sent_twice_is_named_at_the_second_and_the_order_after_is_in_place(eng: Engine) -> None:
    """ORU_R01: PID OBR OBX, then ORC ORC OBR OBX (an order header doubled): W at ORC^2 only, both results
    stored."""
    code, found = send(eng, "ORU^R01^ORU_R01", "FX3", pid("FX3"), OBR.format("FX3"), obx(1),
                       "ORC|RE|PFX3B", "ORC|RE|PFX3B", "OBR|2|PFX3B|FFX3B|58410-2^CBC panel^LN|||20261201070000",
                       obx(1, "12.0"))
    assert code == "AA" and [f[:2] for f in found] == [["ORC^2", "W"]], found
    assert stored(eng, "FX3", "Observation") == 2


def test_a_note_between_the_order_header_and_its_obr_is_named_as_a_note(eng: Engine) -> None:
    """ORU_R01: PID ORC NTE OBR OBX. ORDER_OBSERVATION holds notes after its OBR, not after its ORC: named
    as a note following ORC (before: "NTE has no OBR ... before it"), the OBR and OBX after it in place. Sent
    with no OBR at all, the OBR is still named missing at the end, as it is without the note."""
    code, found = send(eng, "ORU^R01^ORU_R01", "FX4", pid("FX4"), "ORC|RE|PFX4", "NTE|1||fasting",
                       OBR.format("FX4"), obx(1))
    assert code == "AA" and [f[:2] for f in found] == [["NTE^1", "W"]], found
    assert found[0][2].startswith("NTE (a note) follows ORC") and "NTE may follow" in found[0][2], found
    code, found = send(eng, "ORU^R01^ORU_R01", "FX9", pid("FX9"), "PV1|1|O", "ORC|RE|PFX9", "NTE|1||fasting")
    assert code == "AA" and [f[:2] for f in found] == [["NTE^1", "W"], ["OBR^1", "W"]], found  # (the note hid it)


def test_each_of_a_run_of_notes_where_none_may_stand_is_named(eng: Engine) -> None:
    """ADT_A01 (v2.5.1 holds no NTE): three notes after the PV1 are three warnings; a note after a segment
    named out of place (an RXA, outside ADT_A01) stays that segment's and is not named."""
    code, found = send(eng, "ADT^A01^ADT_A01", "FX5", "EVN|A01|20261201091500", pid("FX5"), "PV1|1|I",
                       "NTE|1||a", "NTE|2||b", "NTE|3||c")
    assert code == "AA" and [f[:2] for f in found] == [["NTE^1", "W"], ["NTE^2", "W"], ["NTE^3", "W"]], found
    code, found = send(eng, "ADT^A01^ADT_A01", "FX6", "EVN|A01|20261201091500", pid("FX6"), "PV1|1|I",
                       "RXA|0|1|20261201|20261201|08^HepB^CVX|1", "NTE|1||the dose's note")
    assert code == "AA" and [f[:2] for f in found] == [["RXA^1", "W"]], found


def test_a_strict_sender_is_refused_for_a_pid_no_reading_holds(eng: Engine) -> None:
    """The same PID twice from the strict sender: AE at PID^2, nothing stored (strict refuses every deviation,
    the newly named ones too)."""
    code, found = send(eng, "ORU^R01^ORU_R01", "FX7", pid("FX7", "FNZYY"), pid("FX7", "FNZYY"), OBR.format("FX7"),
                       obx(1), facility="FNZYY")
    assert code == "AE" and [f[:2] for f in found] == [["PID^2", "E"]], found
    assert stored(eng, "FX7", "Observation", facility="FNZYY") == 0
