"""tfix34: the other side of rvmsgfix34's probes (``tests/test_rvmsgfix34_probes.py``) -- what must still be
taken once the rule dates more: the same sender's *later* correction of a corrected result (its value is
dated with the status now, and a later one is taken), and an hour-precision MSH-7 against a time outside
its hour (the spans do not overlap: ordered). Real HL7 through ``POST /hl7v2``, stored resources read back
over ``/fhir``, on each storage backend."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.hl7_calls import err_lines, module_http, post
from tests.module_store import module_eng
from tests.test_msgtime33_withdrawal_time import _status
from tests.test_rvdocref32_probes import _three
from tests.test_rvmsgfix34_probes import FIRST_FIX, SECOND_FIX, _by, _correction, _line, _obs, _withdrawal

__all__ = ["engine", "module_http"]

engine = module_eng  # each test its own filler number and control ids (TF34-n...)


def test_the_same_senders_later_correction_of_a_corrected_result_is_taken(engine: Engine, http: TestClient) -> None:
    """The RIS reports (10:00), corrects the line (11:00), corrects it again (12:00): later -- taken, no
    warning at OBX-11; the unchanged resend of the 12:00 correction after it changes nothing."""
    assert b"MSA|AA" in post(http, _by("RIS", _three("TF34-1", "TF34-X1")))
    obs_id = _line(engine, http, "TF34-1")
    assert b"MSA|AA" in post(http, _by("RIS", _correction("TF34-1A", "TF34-X1", "20261202110000", FIRST_FIX)))
    ack = post(http, _by("RIS", _correction("TF34-1B", "TF34-X1", "20261202120000", SECOND_FIX)))
    assert b"MSA|AA" in ack and not any("|OBX^1^11|" in e for e in err_lines(ack)), ack
    after = _obs(http, obs_id)
    assert after["valueString"] == SECOND_FIX and after["status"] == "corrected", after
    ack = post(http, _by("RIS", _correction("TF34-1C", "TF34-X1", "20261202120000", SECOND_FIX)))
    assert b"MSA|AA" in ack and not any("|OBX^1^11|" in e for e in err_lines(ack)), ack
    assert _obs(http, obs_id)["meta"]["versionId"] == after["meta"]["versionId"]


def test_an_hour_precision_withdrawal_is_ordered_against_a_time_outside_its_hour(
        engine: Engine, http: TestClient) -> None:
    """The RIS's withdrawal stamped ``2026120211`` (some time 11:00-11:59): its 10:00 report resent after it
    is older (held at OBX^2^11), its report of 12:30 later (taken) -- only a time inside the hour is not told."""
    assert b"MSA|AA" in post(http, _by("RIS", _three("TF34-2", "TF34-X2")))
    obs_id = _line(engine, http, "TF34-2")
    assert b"MSA|AA" in post(http, _by("RIS", _withdrawal("TF34-2W", "TF34-X2", "2026120211")))
    ack = post(http, _by("RIS", _three("TF34-2R", "TF34-X2", stamp="20261202100000")))
    assert b"MSA|AA" in ack and any("|OBX^2^11|" in e for e in err_lines(ack)), ack
    assert _status(http, obs_id) == "entered-in-error"
    ack = post(http, _by("RIS", _three("TF34-2L", "TF34-X2", stamp="20261202123000")))
    assert b"MSA|AA" in ack, ack
    assert _status(http, obs_id) == "final"
