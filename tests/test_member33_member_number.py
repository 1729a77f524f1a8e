"""Another member institution's record number named for another person (member33; regfix33's decision).

FNZYY's messages name a patient under ``<n>^^^FNXRMYY^MR`` -- FNXRMYY's record number (identity32 keeps it
under FNXRMYY's MRN system, so a search by that MRN finds every member's record of the patient). When
FNXRMYY's own record of the number is another person (name and sex, and birth date when both state one,
all differ: ``demographics.contradicts_all``), the message is refused AE at PID-3 (205), nothing filed,
the raw kept for replay -- whether the number keys FNZYY's record or stands beside FNZYY's own MRN. The
same person (a referral) and a number FNXRMYY holds no record of are filed as before.

Real HL7 over ``POST /hl7v2`` into the real store on each backend (SQLite, mongomock), read back over
``/fhir`` and the message store."""

from __future__ import annotations

import base64
import re

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import engine_and_client
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_rvidentity32_probes import MRN, adt, oru, patients, subjects

FNZYY_MRN = "urn:huren:mrn:FNZYY"


both = engine_and_client("m33")


def _fnzyy(message: str) -> str:
    return message.replace("|FNXRMYY|HUREN|", "|FNZYY|HUREN|", 1)


def _refused_at_pid3(ack: bytes) -> None:
    assert ack_code_of(ack) == "AE", ack
    (err,) = err_lines(ack)
    assert re.search(r"\|PID\^1\^3(\^\d+)?\|", err) and "|205" in err, err


def test_a_member_number_keying_the_record_for_another_person_is_refused(both: tuple[Engine, TestClient]) -> None:
    """FNZYY's A04 whose only number is FNXRMYY's, for another person: AE at PID-3, the ERR echoing none
    of FNXRMYY's patient, nothing filed (one person under FNXRMYY's MRN), the raw kept quarantined."""
    engine, http = both
    assert ack_code_of(post(http, adt("MA1", "MA1^^^FNXRMYY^MR", "郑^一", "19600101", "M"))) == "AA"
    ack = post(http, _fnzyy(adt("MA2", "MA1^^^FNXRMYY^MR", "王^二", "19900202", "F")))
    _refused_at_pid3(ack)
    text = ack.decode("utf-8")
    assert "郑" not in text and "19600101" not in text and "1960-01-01" not in text, text
    assert [p["gender"] for p in patients(http, f"{MRN}|MA1")] == ["male"]
    kept = engine.ingestor.messages.get(message_id("FNZYY", "MA2"))
    assert kept is not None and kept["status"] == "quarantined"
    assert "王^二" in base64.b64decode(kept["raw"]).decode("utf-8")


def test_a_member_number_beside_the_senders_own_mrn_is_held_too(both: tuple[Engine, TestClient]) -> None:
    """The referral's usual form: FNZYY's own MRN first, FNXRMYY's number beside it. For another person
    than FNXRMYY's record: refused (filed, FNZYY's record would carry FNXRMYY's MRN under her); for the
    same person: filed, FNXRMYY's MRN finding both institutions' records of him."""
    _, http = both
    assert ack_code_of(post(http, adt("MB1", "MB1^^^FNXRMYY^MR", "冯^三", "19610101", "M"))) == "AA"
    _refused_at_pid3(post(http, _fnzyy(adt("MB2", "ZB2^^^FNZYY^MR~MB1^^^FNXRMYY^MR", "陈^四", "19920303", "F"))))
    assert patients(http, f"{FNZYY_MRN}|ZB2") == []
    assert ack_code_of(post(http, _fnzyy(adt("MB3", "ZB3^^^FNZYY^MR~MB1^^^FNXRMYY^MR", "冯^三", "19610101",
                                              "M")))) == "AA"
    found = patients(http, f"{MRN}|MB1")
    assert len(found) == 2 and {p["gender"] for p in found} == {"male"}
    (theirs,) = patients(http, f"{FNZYY_MRN}|ZB3")
    assert theirs["id"] in {p["id"] for p in found}


def test_a_result_naming_a_member_number_for_another_person_is_refused(both: tuple[Engine, TestClient]) -> None:
    """Not only registrations: FNZYY's result under FNXRMYY's number for another person is not filed."""
    _, http = both
    assert ack_code_of(post(http, adt("MC1", "MC1^^^FNXRMYY^MR", "褚^五", "19700505", "M"))) == "AA"
    _refused_at_pid3(post(http, _fnzyy(oru("MC2", "MC1^^^FNXRMYY^MR", "卫^六", "19950606", "F", "M33GLU",
                                           app="HIS"))))
    assert subjects(http, "M33GLU") == []


def test_a_member_number_the_member_holds_no_record_of_is_filed(both: tuple[Engine, TestClient]) -> None:
    """Nothing to hold it against: filed as today, under FNXRMYY's MRN system."""
    _, http = both
    assert ack_code_of(post(http, _fnzyy(adt("MD1", "MD1^^^FNXRMYY^MR", "蒋^七", "19800707", "F")))) == "AA"
    assert [p["gender"] for p in patients(http, f"{MRN}|MD1")] == ["female"]


def test_the_member_s_record_written_earlier_in_the_batch_is_held_to(both: tuple[Engine, TestClient]) -> None:
    """One batch: FNXRMYY's A04 registering him, then FNZYY's A04 naming his number for her: the second
    is held to the version the first writes (nothing stored yet) and refused; his record is filed."""
    _, http = both
    body = ("FHS|^~\\&|HIS|FNXRMYY\rBHS|^~\\&|HIS|FNXRMYY\r"
            + adt("ME1", "ME1^^^FNXRMYY^MR", "沈^八", "19750808", "M")
            + _fnzyy(adt("ME2", "ME1^^^FNXRMYY^MR", "韩^九", "19990909", "F"))
            + "BTS|2\rFTS|1\r")
    ack = post(http, body)
    assert b"MSA|AA|ME1" in ack and b"MSA|AE|ME2" in ack, ack
    assert [p["gender"] for p in patients(http, f"{MRN}|ME1")] == ["male"]


def test_the_refused_message_replayed_after_the_member_corrects_its_record_is_filed(
        both: tuple[Engine, TestClient]) -> None:
    """The ERR's advice: have that institution correct its record. FNXRMYY's registering HIS restates
    its record (A08), the operator replays FNZYY's kept message: filed, one person under the MRN."""
    engine, http = both
    assert ack_code_of(post(http, adt("MF1", "MF1^^^FNXRMYY^MR", "杨^十", "19650110", "M"))) == "AA"
    _refused_at_pid3(post(http, _fnzyy(adt("MF2", "MF1^^^FNXRMYY^MR", "朱^一", "19910111", "F"))))
    doc = engine.ingestor.messages.get(message_id("FNZYY", "MF2"))
    assert doc is not None
    ops = {"Authorization": "Bearer " + engine.auth.issue_system_token("ops", "system/MessageHeader.cr")}
    assert ack_code_of(post(http, adt("MF3", "MF1^^^FNXRMYY^MR", "朱^一", "19910111", "F", "A08"))) == "AA"
    replayed = http.post(f"/admin/quarantine/{doc['_id']}/replay", headers=ops)
    assert replayed.status_code == 200, replayed.text
    found = patients(http, f"{MRN}|MF1")
    assert len(found) == 2 and {p["gender"] for p in found} == {"female"}
