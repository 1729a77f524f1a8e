"""med46 (forty-sixth round): a filed message is its registrar's word by ``applications.same_code`` -- the one rule
of two stored application codes naming one application (``persons._its_own``) -- not by string equality of whole
registrars (rv45e MED 2), and never for another application (a wrong answer is worse than a refusal).

Real HL7 v2.5.1 bytes over ``POST /hl7v2`` into one engine a module on each backend (``module_eng``: SQLite,
mongomock), read back over ``/fhir``, each test under record numbers of its own. The two paths that read the
registrar's word: ``persons._formerly`` (``_stated_by``: the LIS's day-old copy after the registrar's correction) and
``persons._as_registered`` (``_versions_stated_by``: the man's number the registrar gave, after a client's wrong
sex; its positive cases are rv45e's ``test_the_man_numbered_by_his_registrars_other_form_keeps_his_result``)."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import engine_and_client
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_idlow41_identity import _set
from tests.test_rvidentity32_probes import MRN, _nid, adt, oru, patients, subjects

both = engine_and_client("med46")

OID = "1.2.156.112604.1.1.7"
# (the registering MSH-3, another MSH-3 that is ANOTHER application by HL7 v2.5.1 2.A.33 / by name; a site putting
# the hospital's OID in every MSH-3; a universal id spelled as the registrar's name: rv44c MED 1)
OTHERS = [("HIS^his.a.example^DNS", "HIS^his.b.example^DNS"), ("HIS", "LIS"), (f"HIS^{OID}^ISO", "HIS^1.2.156.999.9^ISO"),
          (f"HIS^{OID}^ISO", f"EMR^{OID}^ISO"), ("HIS", "^HIS^DNS")]
OTHER_IDS = ["two-dns-ids", "another-name", "two-oids", "hospital-oid", "universal-id-of-its-letters"]


def _refused_at_pid3(ack: bytes) -> bool:
    return ack_code_of(ack) == "AE" and any("|205^" in x and "PID^1^3" in x for x in err_lines(ack))


def _copy_of_a_version_written_by(http: TestClient, tag: str, registers: str, restates: str) -> tuple[bytes, dict]:
    """nmfix39's case (``persons._formerly`` -> ``_stated_by``) with the former version written by ``restates``:
    柳庚 F 1970-01-01 registered by ``registers``; ``restates``'s A08 states her 柳庚 F 1970-02-02; the registrar
    corrects her to 刘庚 F 1970-10-01. The LIS's result then names 柳庚 1970-02-02 -- the version ``restates``
    wrote. The result's ACK and the record."""
    mrn = f"{tag}^^^FNXRMYY^MR"
    assert ack_code_of(post(http, adt(f"{tag}A", mrn, "柳^庚", "19700101", "F", app=registers))) == "AA"
    (record,) = patients(http, f"{MRN}|{tag}")
    a08 = post(http, adt(f"{tag}B", mrn, "柳^庚", "19700202", "F", event="A08", app=restates))
    assert ack_code_of(a08) == "AA", err_lines(a08)  # (the premise: that version is stored)
    a08 = post(http, adt(f"{tag}D", mrn, "刘^庚", "19701001", "F", event="A08", app=registers))
    assert ack_code_of(a08) == "AA", err_lines(a08)
    return post(http, oru(f"{tag}C", mrn, "柳^庚", "19700202", "F", f"{tag}GLU")), record


@pytest.mark.parametrize("registers, restates", [(f"HIS^{OID}^ISO", "HIS"), ("HIS", f"HIS^{OID}^ISO"),
                                                 ("HIS", "his")], ids=["oid-then-name", "name-then-oid", "case"])
def test_a_day_old_copy_of_the_registrars_version_in_its_other_form_is_filed(
        both: tuple[Engine, TestClient], registers: str, restates: str) -> None:
    """``_stated_by`` (``_formerly``): the version the LIS's day-old copy states was written by the registrar's A08
    in its other MSH-3 form, which ``applications.states`` takes as its own: the registrar's word, so the copy is
    the same woman, filed under her record (AA with the W), as under one form (last45's control). Compared as
    strings it was no one's and the result refused AE 205 at PID-3 (rv45e MED 2's other path)."""
    _, http = both
    tag = "M46" + "ABC"[[f"HIS^{OID}^ISO", "HIS", "his"].index(restates)]
    ack, record = _copy_of_a_version_written_by(http, tag, registers, restates)
    assert ack_code_of(ack) == "AA" and subjects(http, f"{tag}GLU") == [f"Patient/{record['id']}"], err_lines(ack)


@pytest.mark.parametrize("registers, other", OTHERS, ids=OTHER_IDS)
def test_control_a_number_another_application_gave_is_not_the_registrars_word(
        both: tuple[Engine, TestClient], registers: str, other: str) -> None:
    """Control of ``_versions_stated_by`` (``_as_registered``): rv45e's man registered by ``registers`` without his
    number; ``other`` -- another application, whatever its HD-1 -- gives his male number by its A08; a client sets
    female; the LIS's result names him M with that number. The number is not the registrar's word, so the record's
    female stands against it: refused AE 205 at PID-3, nothing filed."""
    _, http = both
    at = OTHERS.index((registers, other))
    tag = "M46" + "DEFKL"[at]
    man = _nid(f"32092319700101{31 + 2 * at:03d}")  # (a man's number of his own: odd sequence, one record each)
    mrn = f"{tag}^^^FNXRMYY^MR"
    assert ack_code_of(post(http, adt(f"{tag}A", mrn, "许^子", "", "M", app=registers))) == "AA"
    a08 = post(http, adt(f"{tag}B", f"{mrn}~{man}^^^^NNCHN", "许^子", "", "M", event="A08", app=other))
    (him,) = patients(http, f"{MRN}|{tag}")
    assert man in str(him.get("identifier")), (err_lines(a08), him)  # (the premise: the other's number is on him)
    _set(http, him["id"], gender="female")
    ack = post(http, oru(f"{tag}C", f"{mrn}~{man}^^^^NNCHN", "许^子子", "", "M", f"{tag}OBS"))
    assert _refused_at_pid3(ack) and subjects(http, f"{tag}OBS") == [], err_lines(ack)


@pytest.mark.parametrize("registers, other", OTHERS, ids=OTHER_IDS)
def test_control_a_day_old_copy_of_another_applications_version_is_refused(
        both: tuple[Engine, TestClient], registers: str, other: str) -> None:
    """Control of ``_stated_by`` (``_formerly``): the same with the version the copy states written by ``other``,
    another application: no word of the registrar's, refused AE 205 at PID-3, nothing filed."""
    _, http = both
    tag = "M46" + "GHJMN"[OTHERS.index((registers, other))]
    ack, _ = _copy_of_a_version_written_by(http, tag, registers, other)
    assert _refused_at_pid3(ack) and subjects(http, f"{tag}GLU") == [], err_lines(ack)
