"""rv36c: review probes of ordfix36 (``not_back``, ``not_from_older``, collected refusals) and mixfix36
(a dated status placeholder; an order's code judged by the maps), merged in the thirty-sixth round.

Real HL7 v2 through ``POST /hl7v2`` into the real store on each backend (``tests.module_store``), read
back over ``/fhir``; the operator's decision through ``POST /admin/quarantine/{id}/replay?as=later``.
A probe that shows a defect is a strict xfail naming its severity; the others guard what was found sound."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.messages import message_id
from tests.hl7_calls import err_lines, module_http, post, written
from tests.module_store import module_eng
from tests.test_order35_as_later import _operator
from tests.test_ordfix36_final_back import _result

__all__ = ["engine", "module_http"]

engine = module_eng


def _obs(http: TestClient, obs_id: str) -> dict:
    return http.get(f"/fhir/Observation/{obs_id}").json()


def _final(engine: Engine, http: TestClient, tag: str, value: str = "4.1", stamp: str = "20261203100000") -> str:
    """The LIS's final potassium ``value`` (MSH-7 ``stamp``): the Observation's id."""
    assert b"MSA|AA" in post(http, _result(f"RV36C-{tag}A", stamp, f"RV36CM{tag}", f"RV36CP{tag}", value, "F"))
    (obs,) = written(engine, http, f"RV36C-{tag}A", "Observation")
    return obs["id"]


# --- ordfix36 ``not_back``: a result taken back only by C, A/B, W/D ---------------------------------

@pytest.mark.xfail(strict=True, reason="rv36c: HIGH a later P over a stored correction sets it back to "
                   "preliminary (``_not_back`` is skipped whenever ``_dated`` compared: corrected is in stands)")
def test_a_later_preliminary_does_not_take_back_a_correction(engine: Engine, http: TestClient) -> None:
    """F 4.1 (10:00), C 4.3 (11:00), then the LIS's P 4.3 re-sent at 12:00: merge.yaml says
    ``not_back: {from: [final, corrected, amended], ...}`` -- the corrected result stays corrected."""
    obs_id = _final(engine, http, "1")
    assert b"MSA|AA" in post(http, _result("RV36C-1B", "20261203110000", "RV36CM1", "RV36CP1", "4.3", "C"))
    ack = post(http, _result("RV36C-1C", "20261203120000", "RV36CM1", "RV36CP1", "4.3", "P"))
    assert b"MSA|AA" in ack, ack
    stored = _obs(http, obs_id)
    assert (stored["status"], stored["valueQuantity"]["value"]) == ("corrected", 4.3), stored


@pytest.mark.xfail(strict=True, reason="rv36c: HIGH a later P with another value over a stored correction "
                   "overwrites the corrected value and status (a final value changes only by C)")
def test_a_later_preliminary_value_does_not_overwrite_a_correction(engine: Engine, http: TestClient) -> None:
    """F 4.1 (10:00), C 4.3 (11:00), then P 5.0 at 12:00: the corrected 4.3 stands (as P 5.0 after an F does)."""
    obs_id = _final(engine, http, "2")
    assert b"MSA|AA" in post(http, _result("RV36C-2B", "20261203110000", "RV36CM2", "RV36CP2", "4.3", "C"))
    ack = post(http, _result("RV36C-2C", "20261203120000", "RV36CM2", "RV36CP2", "5.0", "P"))
    assert b"MSA|AA" in ack, ack
    stored = _obs(http, obs_id)
    assert (stored["status"], stored["valueQuantity"]["value"]) == ("corrected", 4.3), stored
