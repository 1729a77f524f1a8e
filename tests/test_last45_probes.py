"""Review last45 (forty-fifth round, the last read): probes of the round's change through the real path.

Each probe sends real HL7 v2.5.1 through ``POST /hl7v2`` into one engine a module on each backend (``module_eng``:
SQLite, mongomock), read back over ``/fhir``, under record numbers of its own. A probe that shows a defect is a
STRICT xfail naming its severity; the control beside it is the same messages under the plain MSH-3 ``HIS``."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import post
from tests.identity39_calls import engine_and_client
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_idlow41_identity import _set
from tests.test_rvidentity32_probes import MRN, _nid, adt, oru, patients, subjects

both = engine_and_client("last45")

HIS_WITH_OID = "HIS^1.2.156.112604.1.1.1^ISO"  # (the HIS's MSH-3 with its universal id: reg45 keeps it whole)


def _day_old_copy_after_a_correction(http: TestClient, tag: str, app: str) -> tuple[str, dict]:
    """nmfix39's case (``persons._formerly``): the HIS (MSH-3 ``app``) registers 柳庚 F 1970-01-01, corrects her by
    its A08 to 刘庚 F 1970-10-01 with her ID number; the LIS then sends her result with its day-old copy of the
    patient (the former name and day). Returns the result's ACK and the record."""
    assert ack_code_of(post(http, adt(f"{tag}A", f"{tag}^^^FNXRMYY^MR", "柳^庚", "19700101", "F", app=app))) == "AA"
    (record,) = patients(http, f"{MRN}|{tag}")
    number = _nid("32092319701001002")
    ack = post(http, adt(f"{tag}B", f"{tag}^^^FNXRMYY^MR~{number}^^^^NNCHN", "刘^庚", "19701001", "F", event="A08",
                         app=app))
    assert ack_code_of(ack) == "AA", ack
    return post(http, oru(f"{tag}C", f"{tag}^^^FNXRMYY^MR", "柳^庚", "19700101", "F", f"{tag}GLU")), record


def test_control_a_day_old_copy_after_the_plain_his_correction_is_filed(both: tuple[Engine, TestClient]) -> None:
    """Control: under MSH-3 ``HIS`` the LIS's day-old copy is the same woman, filed under her record with the W."""
    _, http = both
    ack, record = _day_old_copy_after_a_correction(http, "LST1", "HIS")
    assert ack_code_of(ack) == "AA" and subjects(http, "LST1GLU") == [f"Patient/{record['id']}"], ack


# (MED, a regression of reg45, mended by the lead: each filed message read as its registrar, _registrar_of)
def test_a_day_old_copy_after_the_correction_of_a_his_sending_its_oid_is_filed(
        both: tuple[Engine, TestClient]) -> None:
    """MED: the same messages with the HIS's MSH-3 carrying its OID (``HIS^<OID>^ISO``, a site writing its OID in
    every MSH-3): the registrar is now ``HIS^<OID>^ISO`` whole (reg45), and ``_stated_by`` compares it by equality
    with each filed message's ``application_of`` (``HIS``) -- so no version is the registrar's, ``_formerly``
    answers no, and the day-old copy is refused AE 205 at PID-3 (before reg45 the registrar was ``HIS`` and it was
    filed, as the control is)."""
    _, http = both
    ack, record = _day_old_copy_after_a_correction(http, "LST2", HIS_WITH_OID)
    assert ack_code_of(ack) == "AA" and subjects(http, "LST2GLU") == [f"Patient/{record['id']}"], ack


def _man_after_a_wrong_sex(http: TestClient, tag: str, app: str) -> tuple[bytes, bytes, dict]:
    """idfix41's case (``persons._two_people`` -> ``_as_registered``): the HIS (MSH-3 ``app``) registers 许子 with
    his MRN and his male ID number, sex M, no PID-7; a FHIR client (the ward) sets female; the HIS's A08 corrects his
    name saying nothing of the sex; the LIS's result names him M with his number. The A08's and the result's ACKs,
    and the record."""
    man = _nid("32092319700101011")
    assert ack_code_of(post(http, adt(f"{tag}A", f"{tag}^^^FNXRMYY^MR~{man}^^^^NNCHN", "许^子", "", "M",
                                      app=app))) == "AA"
    (him,) = patients(http, f"{MRN}|{tag}")
    _set(http, him["id"], gender="female")
    a08 = post(http, adt(f"{tag}B", f"{tag}^^^FNXRMYY^MR~{man}^^^^NNCHN", "许^子子", "", "", event="A08", app=app))
    result = post(http, oru(f"{tag}C", f"{tag}^^^FNXRMYY^MR~{man}^^^^NNCHN", "许^子子子", "", "M", f"{tag}OBS"))
    return a08, result, him


def test_control_the_man_keeps_his_results_after_a_wrong_sex_under_the_plain_his(
        both: tuple[Engine, TestClient]) -> None:
    """Control: under MSH-3 ``HIS`` the name correction and his result are his (AA, filed under him)."""
    _, http = both
    a08, result, him = _man_after_a_wrong_sex(http, "LST3", "HIS")
    assert ack_code_of(a08) == "AA" and ack_code_of(result) == "AA", (a08, result)
    assert subjects(http, "LST3OBS") == [f"Patient/{him['id']}"]


# (MED, a regression of reg45, mended by the lead: each filed message read as its registrar, _registrar_of)
def test_the_man_keeps_his_results_after_a_wrong_sex_under_a_his_sending_its_oid(
        both: tuple[Engine, TestClient]) -> None:
    """MED, the same cause's other face: the registrar's own word (``_as_registered``: what its messages stated) is
    read by ``_versions_stated_by``, which keeps only the documents whose ``application_of`` (``HIS``) equals the
    registrar (``HIS^<OID>^ISO`` since reg45): none -- so the record's client-set female stands against his male
    number and the LIS's result naming him is refused at PID-3 as another person's."""
    _, http = both
    a08, result, him = _man_after_a_wrong_sex(http, "LST4", HIS_WITH_OID)
    assert ack_code_of(a08) == "AA" and ack_code_of(result) == "AA", (a08, result)
    assert subjects(http, "LST4OBS") == [f"Patient/{him['id']}"]
