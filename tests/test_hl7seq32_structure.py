"""The structure check's unfounded warnings and unnamed gaps (thirty-second round, hl7seq32).

Real HL7 v2.5.1 bytes, written from the standard's abstract message syntax (chapter 4 OML^O21 / OMG^O19,
chapter 7 ORU^R01 / OUL^R22 / OUL^R24, chapter 3 ADT^A04), over a real MLLP socket into a real engine; the
ACK's ERR segments read (code 100: segment sequence error).

* conformant order and lab messages -- a timing ``TQ1`` of the order and of a prior result's order,
  ``TCD`` after an ``OBR`` / ``OBX``, ``SID`` after a result, ``SAC`` under its ``SPM``, ``NTE`` where the
  structure places notes -- draw no 100 at all (the walk placed one reading and warned where another held);
* a required segment missing with nothing after it (an ``ORU`` ending after its patient, an ADT without its
  ``PV1``) is named at that segment, W (AE for a ``strict`` sender), the message accepted;
* an ``NTE`` where the structure holds no note is named as a note, with where notes may stand; a note after
  a segment already named out of place is not named again;
* a ``PID`` repeated among an order's results is named at that PID (``PID^2``), not at the ``OBX`` after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.settings import Settings
from tests.test_hl7mode29 import errs, mllp, write_senders


@pytest.fixture(scope="module")
def eng(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    site: Path = tmp_path_factory.mktemp("seq32site")
    write_senders(site, {"FNZYY": "strict"}, key="message_structure")
    root = tmp_path_factory.mktemp("seq32")
    with Engine(Settings(data_dir=root / "var", http_port=0, mllp_port=0, site=site)) as engine:
        yield engine


def send(eng: Engine, kind: str, control: str, *lines: str, facility: str = "FNXRMYY") -> tuple[str, list[list[str]]]:
    """(MSA-1, the 100 ERRs as [location, severity, text]) of the message sent over MLLP."""
    body = (f"MSH|^~\\&|LIS|{facility}|HUREN|FNYGT|20261201091500||{kind}|{control}|P|2.5.1\r"
            + "".join(f"{x}\r" for x in lines)).encode()
    (ack,) = mllp(eng, body)
    return ack_code_of(ack), [[e[2], e[4], e[8]] for e in errs(ack) if e[3].startswith("100")]


def pid(control: str, facility: str = "FNXRMYY") -> str:
    return f"PID|1||Q32{control}^^^{facility}^MR||王^五||19660302|M"


TQ1 = "TQ1|1||||||20261201080000|20261201090000|R"


def spm(control: str) -> str:
    return f"SPM|1|SP{control}&LIS||BLD^Whole blood^HL70487|||||||||||||20261201073000"
SAC = "SAC|||C1^LIS"
TCD = "TCD|58410-2^CBC panel^LN|^1^:^10"


def obx(n: int, value: str = "13.2") -> str:
    return f"OBX|{n}|NM|718-7^Hemoglobin^LN||{value}|g/dL|12-16||||F|||20261201080000"


def test_a_conformant_oml_o21_with_timing_detail_and_a_prior_result_draws_no_structure_warning(eng: Engine) -> None:
    """OML^O21: ORC, its TIMING (TQ1 TQ2), OBR with TCD / NTE / DG1, an ask-at-order-entry OBX with its TCD and
    NTE, SPM / OBX / SAC, then a PRIOR_RESULT (PID PV1, ORC OBR NTE, its TIMING_PRIOR TQ1, OBX NTE): v2.5.1
    4.4.6. The walk placed the prior result's ORC as a new order and warned its TQ1 "out of order"."""
    code, found = send(eng, "OML^O21^OML_O21", "OM1", pid("OM1"), "PV1|1|O",
                       "ORC|NW|POM1", TQ1, "TQ2|1|S", "OBR|1|POM1||58410-2^CBC panel^LN|||20261201070000", TCD,
                       "NTE|1||fasting", "DG1|1||D50.9^Iron deficiency anaemia^I10", "OBX|1|ST|Q1^fasting^L||yes||||||F",
                       TCD, "NTE|1||asked at entry", spm("OM1"), obx(2), SAC,
                       pid("OM1"), "PV1|1|O", "ORC|RE|PRI1", "OBR|1|PRI1||58410-2^CBC panel^LN|||20261101070000",
                       "NTE|1||last month", TQ1, obx(1, "10.9"), "NTE|1||low")
    assert code == "AA" and found == [], found


def test_a_conformant_omg_o19_with_timing_and_a_prior_result_draws_no_structure_warning(eng: Engine) -> None:
    """OMG^O19 (v2.5.1 4.4.4): ORC TQ1 OBR NTE CTD DG1 OBX NTE SPM SAC, then a prior result whose order has
    its own TQ1 after the OBR (ORDER_PRIOR: [ORC] OBR {TIMING_PRIOR} [{NTE}] [CTD] {OBSERVATION_PRIOR})."""
    code, found = send(eng, "OMG^O19^OMG_O19", "OG1", pid("OG1"), "PV1|1|O",
                       "ORC|NW|POG1", TQ1, "OBR|1|POG1||24627-2^Chest CT^LN|||20261201070000", "NTE|1||contrast",
                       "DG1|1||J18.9^Pneumonia^I10", "OBX|1|ST|Q2^allergy to contrast^L||no||||||F", "NTE|1||asked",
                       pid("OG1"), "ORC|RE|PRG1", "OBR|1|PRG1||24627-2^Chest CT^LN|||20261001070000", TQ1,
                       "OBX|1|TX|18782-3^Radiology study observation^LN||clear||||||F")
    assert code == "AA" and found == [], found


def test_a_conformant_oul_r22_with_tcd_sid_and_notes_draws_no_structure_warning(eng: Engine) -> None:
    """OUL^R22 (v2.5.1 7.3.3): SPM OBX SAC, OBR ORC NTE TQ1, each OBX with TCD, SID and NTE, CTI."""
    code, found = send(eng, "OUL^R22^OUL_R22", "OU1", pid("OU1"), "PV1|1|O", spm("OU1"), "OBX|1|NM|SPV^volume^L||3|mL||||||F", SAC,
                       "OBR|1|POU1|FOU1|58410-2^CBC panel^LN|||20261201070000", "ORC|RE|POU1|FOU1", "NTE|1||haemolysed",
                       TQ1, obx(1), TCD, "SID|CBC^reagent^L|LOT7", "NTE|1||repeated", obx(2, "13.0"), "SID|CBC^reagent^L|LOT7")
    assert code == "AA" and found == [], found


def test_a_conformant_oul_r24_with_its_specimen_then_tcd_after_a_result_draws_no_structure_warning(eng: Engine) -> None:
    """OUL^R24 (v2.5.1 7.3.5): OBR ORC TQ1, the order's SPM with its OBX, then results each with TCD / SID /
    NTE. The walk read the OBX after the SPM as the specimen's and called the TCD after it "without OBX"."""
    code, found = send(eng, "OUL^R24^OUL_R24", "OU2", pid("OU2"), "PV1|1|O",
                       "OBR|1|POU2|FOU2|58410-2^CBC panel^LN|||20261201070000", "ORC|RE|POU2|FOU2", TQ1, spm("OU2"),
                       obx(1), TCD, "SID|CBC^reagent^L|LOT7", "NTE|1||checked")
    assert code == "AA" and found == [], found


def test_an_oru_ending_after_its_order_header_names_the_missing_obr(eng: Engine) -> None:
    """ORU^R01 ending after PID PV1 ORC: ORU_R01_ORDER_OBSERVATION requires its OBR. The converter files the
    bare ORC as an order (as it reads one); the structure check named nothing. An ORU ending after its PV1
    (no order at all) stays the converter's refusal, AE 101 at OBR^1, which the warning does not displace."""
    code, found = send(eng, "ORU^R01^ORU_R01", "OR1", pid("OR1"), "PV1|1|O", "ORC|RE|POR1|FOR1")
    assert code == "AA" and [f[:2] for f in found] == [["OBR^1", "W"]], found
    assert "OBR is missing" in found[0][2] and "after ORC, and the message ends there" in found[0][2], found
    body = ("MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201091500||ORU^R01^ORU_R01|OR2|P|2.5.1\r"
            f"{pid('OR2')}\rPV1|1|O\r").encode()
    (ack,) = mllp(eng, body)
    assert ack_code_of(ack) == "AE" and [(e[2], e[3][:3]) for e in errs(ack)] == [("OBR^1", "101")], ack


def test_an_adt_without_its_pv1_names_it_and_a_strict_sender_has_it_refused(eng: Engine) -> None:
    """ADT^A04 (ADT_A01: MSH EVN PID ... PV1): PV1 is required; W for a standard sender, AE for a strict one
    (senders.yaml message_structure), which keeps the message for replay."""
    lines = ("EVN|A04|20261201091500", pid("AD1"))
    code, found = send(eng, "ADT^A04^ADT_A01", "AD1", *lines)
    assert code == "AA" and [f[:2] for f in found] == [["PV1^1", "W"]], found
    code, found = send(eng, "ADT^A04^ADT_A01", "AD2", "EVN|A04|20261201091500", pid("AD2", "FNZYY"), facility="FNZYY")
    assert code == "AE" and [f[:2] for f in found] == [["PV1^1", "E"]], found


def test_a_misplaced_note_is_named_as_a_note_and_its_note_after_a_misplaced_segment_is_not(eng: Engine) -> None:
    """ORU_R01 (v2.5.1) holds no note before its patient: an NTE after MSH is named with where notes may
    stand; an NTE after a PV1 already named out of place (after the OBR) is that PV1's, not named again."""
    code, found = send(eng, "ORU^R01^ORU_R01", "NT1", "NTE|1||from the lab", pid("NT1"),
                       "OBR|1|PNT1|FNT1|58410-2^CBC panel^LN|||20261201070000", "PV1|1|O", "NTE|1||ward 3", obx(1))
    assert code == "AA" and [f[:2] for f in found] == [["NTE^1", "W"], ["PV1^1", "W"]], found
    note = found[0][2]
    assert note.startswith("NTE (a note) follows MSH") and "NTE may follow" in note and "OBX" in note, note


def test_a_pid_repeated_among_results_is_named_at_the_pid(eng: Engine) -> None:
    """ORU_R01: PID PV1 OBR OBX PID OBX (a LIS repeating its patient): W at PID^2, not at the OBX after it; a
    PID sent after the order header (ORC OBR PID PV1 OBX): W at that PID."""
    code, found = send(eng, "ORU^R01^ORU_R01", "RP1", pid("RP1"), "PV1|1|O",
                       "OBR|1|PRP1|FRP1|58410-2^CBC panel^LN|||20261201070000", obx(1), pid("RP1"), obx(2, "13.0"))
    assert code == "AA" and [f[:2] for f in found] == [["PID^2", "W"]], found
    assert "stands among the results of OBR" in found[0][2], found
    code, found = send(eng, "ORU^R01^ORU_R01", "RP2", "ORC|RE|PRP2|FRP2",
                       "OBR|1|PRP2|FRP2|58410-2^CBC panel^LN|||20261201070000", pid("RP2"), "PV1|1|O", obx(1))
    assert code == "AA" and [f[:2] for f in found] == [["PID^1", "W"]], found  # (was: OBX^1)
    assert "PID stands after OBR, before its results" in found[0][2], found
