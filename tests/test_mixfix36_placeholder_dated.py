"""mixfix36: a status placeholder (OBX-11 empty, stored ``unknown``) over a stored correction is dated by
the value it restates (review rv36a HIGH 1).

``MergeRules._dated`` passed over a placeholder status whenever the stored status was in ``stands``
(corrected, amended, entered-in-error): the LIS's 11:00 value with OBX-11 empty, arriving after its
12:00 correction, overwrote the corrected value under AA while the status stayed ``corrected``. Now a
placeholder is passed over only where the status alone is the question (the message restates no
element dated with it); a message restating the value is dated like a stated F: older -- held (AA, W at
its OBX-5, nothing written); not told (another application) -- refused (AE at its OBX-5, nothing
written); later -- taken, the stored status staying (a placeholder states none).

Real HL7 v2 over ``POST /hl7v2`` into the real store on each backend (``tests.module_store``), read
back over ``/fhir``. Each test uses record and order numbers of its own.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.hl7_calls import err_lines, post, written
from tests.module_store import module_eng
from tests.test_rv36a_probes import _k, _potassium
from tests.test_srfix35_order_code import http

__all__ = ["http", "module_eng"]


def _corrected(engine: Engine, http: TestClient, tag: str) -> dict:
    """4.1 F at 10:00, then the LIS's 12:00 correction 5.6 (C, H): the stored result, read back."""
    post(http, _potassium(f"MF36-{tag}A", "20261203100000", f"MF36M{tag}", f"MF36P{tag}", "4.1"))
    (obs,) = written(engine, http, f"MF36-{tag}A", "Observation")
    ack = post(http, _potassium(f"MF36-{tag}B", "20261203120000", f"MF36M{tag}", f"MF36P{tag}", "5.6", "H", "C"))
    assert b"MSA|AA" in ack, ack
    return _k(http, obs["id"])


def _held(ack: bytes) -> list[str]:
    """The ACK's 'not later' warnings of the result (the report's own, OBR-25, aside)."""
    return [e for e in err_lines(ack) if "not later" in e and e.split("|")[8].startswith("Observation.")]


def _versions(http: TestClient, obs_id: str) -> int:
    return len(http.get(f"/fhir/Observation/{obs_id}/_history").json().get("entry") or ())


def test_an_older_value_with_no_status_over_a_correction_is_held_at_its_obx5(
        module_eng: Engine, http: TestClient) -> None:
    """The 11:00 message arriving last with OBX-11 empty and 4.4: AA, one W at OBX^1^5 naming the value and
    the placeholder, no new version; the correction (5.6, corrected, H) stays whole."""
    before = _corrected(module_eng, http, "1")
    ack = post(http, _potassium("MF36-1C", "20261203110000", "MF36M1", "MF36P1", "4.4", "N", ""))
    assert b"MSA|AA" in ack, ack
    held = _held(ack)
    assert len(held) == 1 and held[0].split("|")[2] == "OBX^1^5", ack
    assert "valueQuantity" in held[0] and "unknown" in held[0] and "corrected" in held[0], held
    after = _k(http, before["id"])
    assert after["valueQuantity"]["value"] == 5.6 and after["status"] == "corrected"
    assert after["interpretation"] == before["interpretation"]
    assert after["meta"]["versionId"] == before["meta"]["versionId"] and _versions(http, before["id"]) == 2


def test_the_same_older_value_with_a_stated_final_is_held_alike(module_eng: Engine, http: TestClient) -> None:
    """The contrast: the same 11:00 message with OBX-11 F -- held too, and at OBX-11 (the status it states)."""
    before = _corrected(module_eng, http, "2")
    ack = post(http, _potassium("MF36-2C", "20261203110000", "MF36M2", "MF36P2", "4.4", "N", "F"))
    held = _held(ack)
    assert b"MSA|AA" in ack and len(held) == 1 and held[0].split("|")[2] == "OBX^1^11", ack
    assert _k(http, before["id"])["valueQuantity"]["value"] == 5.6


def test_a_later_value_with_no_status_over_a_correction_is_taken_and_the_status_stays(
        module_eng: Engine, http: TestClient) -> None:
    """The LIS's 13:00 re-run 6.0 with OBX-11 empty after its 12:00 correction: later, taken (no 'not later'
    W); the placeholder states no status, so ``corrected`` stays."""
    before = _corrected(module_eng, http, "3")
    ack = post(http, _potassium("MF36-3C", "20261203130000", "MF36M3", "MF36P3", "6.0", "H", ""))
    assert b"MSA|AA" in ack and not [e for e in err_lines(ack) if "not later" in e], ack
    after = _k(http, before["id"])
    assert after["valueQuantity"]["value"] == 6.0 and after["status"] == "corrected", after


def test_the_same_value_again_with_no_status_is_not_dated(module_eng: Engine, http: TestClient) -> None:
    """Where the status alone is the question: the 11:00 message restating the corrected 5.6 (H) with OBX-11
    empty changes nothing dated with the status -- passed over: AA, no 'not later' W, the correction stays."""
    before = _corrected(module_eng, http, "4")
    ack = post(http, _potassium("MF36-4C", "20261203110000", "MF36M4", "MF36P4", "5.6", "H", ""))
    assert b"MSA|AA" in ack and not [e for e in err_lines(ack) if "not later" in e], ack
    after = _k(http, before["id"])
    assert after["valueQuantity"]["value"] == 5.6 and after["status"] == "corrected", after


@pytest.mark.parametrize("status", ["", "F"])
def test_another_applications_value_over_a_correction_is_refused_alike(
        module_eng: Engine, http: TestClient, status: str) -> None:
    """Another sending application's 13:00 value over the LIS's correction cannot be dated against it: AE,
    nothing written -- with OBX-11 empty (ERR at the value, OBX^1^5) as with a stated F (at OBX^1^11, and
    the report's F over its stored corrected at OBR^1^25: every comparison that cannot be told is named
    since ordfix36). The fixture now sends OBR-25 where HL7 puts it, F beside the F and empty beside the
    empty OBX-11 (its F sat in OBR-24, OBR-25 always empty: the report's F was read off the result and its
    ERR named no field -- rv37a LOW 8, notback37; thirty-eighth round, status38)."""
    tag = f"5{status or 'E'}"
    before = _corrected(module_eng, http, tag)
    message = _potassium(f"MF36-{tag}C", "20261203130000", f"MF36M{tag}", f"MF36P{tag}", "4.4", "N", status)
    ack = post(http, message.replace("MSH|^~\\&|LIS|", "MSH|^~\\&|POCT|", 1))
    assert b"MSA|AE" in ack, ack
    assert [e.split("|")[2] for e in err_lines(ack) if e.split("|")[4] == "E"] == \
        (["OBX^1^5"] if not status else ["OBX^1^11", "OBR^1^25"]), ack
    after = _k(http, before["id"])
    assert after["valueQuantity"]["value"] == 5.6 and after["status"] == "corrected", after
