"""statfix37: review rv37e's findings on status37.

- MED 1: a status alone (OBX-11 U "status change to final without retransmitting results", F, C or A with
  OBX-5 empty) over a withdrawn result (W: posted as wrong, e.g. for the wrong patient) is no result: held
  whole as a P over it is (``merge.yaml``'s ``not_back`` step ``unless_states: ["value[x]"]``), W at
  OBX^n^11; a message stating its value brings it back as before.
- MED 2 / LOW 3: the same sender's older message that changes the status (an X restating the final's value)
  is held as older, at the status's field (OBX-11) as an older P is -- whatever value it states; an older F
  over a later P stays a step forward (in MSH-7 order the P would have been kept out).
- LOW 4: an Observation built from a compiled plan (``adapters.convert.plans``, the second OBX of a shape)
  did not say where its ``dataAbsentReason`` was stated (OBX-5), so the same held message was located at
  OBX-5 the first time and at OBX-11 once a plan made it.

Real HL7 v2 through ``POST /hl7v2`` (one over MLLP) into the real store on each backend
(``tests.module_store``), read back over ``/fhir``; the site file through the real loader.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.merge_rules import MergeRules
from mappings.site import DEFAULTS_DIR, SiteError, load_merge_file
from tests.hl7_calls import err_lines, mllp, module_http, post, written
from tests.module_store import module_eng
from tests.test_ordfix36_final_back import _result

__all__ = ["engine", "module_http"]

engine = module_eng


def _obs(http: TestClient, obs_id: str) -> dict:
    return http.get(f"/fhir/Observation/{obs_id}").json()


def _warned(ack: bytes, words: str) -> list[str]:
    return [e for e in err_lines(ack) if words in e and "|W|" in e and "|OBX^" in e]


def _withdrawn(engine: Engine, http: TestClient, tag: str) -> dict:
    """The LIS's F 4.1 (10:00), then its W (11:00): the withdrawn Observation as stored."""
    assert b"MSA|AA" in post(http, _result(f"SF7-{tag}A", "20261203100000", f"SF7M{tag}", f"SF7P{tag}", "4.1", "F"))
    (obs,) = written(engine, http, f"SF7-{tag}A", "Observation")
    assert b"MSA|AA" in post(http, _result(f"SF7-{tag}B", "20261203110000", f"SF7M{tag}", f"SF7P{tag}", "4.1", "W"))
    stored = _obs(http, obs["id"])
    assert stored["status"] == "entered-in-error", stored
    return stored


@pytest.mark.parametrize("status", ["C", "U"])
def test_a_status_alone_over_a_withdrawal_is_held_whole(engine: Engine, http: TestClient, status: str) -> None:
    """F 4.1, W, then the LIS's C (or, over MLLP, U) at 12:00 with OBX-5 empty and a note: AA, the withdrawn
    version whole (no new version, no note), one W at OBX^1^11 saying it states a status alone."""
    tag = f"1{status}"
    before = _withdrawn(engine, http, tag)
    text = _result(f"SF7-{tag}C", "20261203120000", f"SF7M{tag}", f"SF7P{tag}", "", status, note="复核")
    ack = post(http, text) if status == "C" else mllp(engine, text.encode())[0]
    assert b"MSA|AA" in ack, ack
    after = _obs(http, before["id"])
    assert after["meta"]["versionId"] == before["meta"]["versionId"], after
    assert (after["status"], after["valueQuantity"]["value"], after.get("note")) == ("entered-in-error", 4.1, None)
    (warned,) = _warned(ack, "a status alone")
    assert warned.split("|")[2] == "OBX^1^11", warned


def test_a_final_stating_its_value_brings_a_withdrawal_back(engine: Engine, http: TestClient) -> None:
    """F 4.1, W, then the LIS's F 4.3 at 12:00: a message stating its result -- final 4.3, no W of it."""
    before = _withdrawn(engine, http, "2")
    ack = post(http, _result("SF7-2C", "20261203120000", "SF7M2", "SF7P2", "4.3", "F"))
    assert b"MSA|AA" in ack, ack
    after = _obs(http, before["id"])
    assert (after["status"], after["valueQuantity"]["value"]) == ("final", 4.3), after
    assert not _warned(ack, "OBX"), err_lines(ack)


def _older(engine: Engine, http: TestClient, tag: str, first: tuple[str, str], then: tuple[str, str]) -> tuple[dict, bytes]:
    """The LIS's ``first`` (value, OBX-11) at 10:00, then its ``then`` of 09:30 arriving last."""
    assert b"MSA|AA" in post(http, _result(f"SF7-{tag}A", "20261203100000", f"SF7M{tag}", f"SF7P{tag}", *first))
    (obs,) = written(engine, http, f"SF7-{tag}A", "Observation")
    ack = post(http, _result(f"SF7-{tag}B", "20261203093000", f"SF7M{tag}", f"SF7P{tag}", *then))
    assert b"MSA|AA" in ack, ack
    return _obs(http, obs["id"]), ack


def test_an_older_cancel_with_no_value_is_held_at_its_status(engine: Engine, http: TestClient) -> None:
    """F 4.1 (10:00), the LIS's X with OBX-5 empty of 09:30: held, final 4.1 stands, the W at OBX^1^11
    naming the status first (rv37e LOW 3's "" case -- one location for a change of status)."""
    after, ack = _older(engine, http, "3", ("4.1", "F"), ("", "X"))
    assert (after["status"], after["valueQuantity"]["value"]) == ("final", 4.1), after
    (warned,) = _warned(ack, "older")
    assert warned.split("|")[2] == "OBX^1^11" and "Observation.status" in warned, warned


def test_an_older_final_over_a_later_preliminary_is_a_step_forward(engine: Engine, http: TestClient) -> None:
    """The LIS's P 4.1 (10:00), then its F 4.1 of 09:30 arriving last: final (in MSH-7 order the later P
    would have been kept out by ``not_back``), no older-statement W -- the same answer either order."""
    after, ack = _older(engine, http, "4", ("4.1", "P"), ("4.1", "F"))
    assert (after["status"], after["valueQuantity"]["value"]) == ("final", 4.1), after
    assert not _warned(ack, "older"), err_lines(ack)


def test_an_older_statement_with_no_value_is_located_at_its_obx5_whatever_came_before(
        engine: Engine, http: TestClient) -> None:
    """Three results F 4.1 (10:00), each followed by the LIS's F with OBX-5 empty of 09:30 (the same
    status: a restatement of dataAbsentReason). The first such OBX is converted the ordinary way, the
    later ones from its compiled plan: each is held with the W at OBX^1^5 (it was OBX^1^11 from a plan)."""
    for n in range(3):
        after, ack = _older(engine, http, f"5{n}", ("4.1", "F"), ("", "F"))
        assert (after["status"], after["valueQuantity"]["value"]) == ("final", 4.1), after
        (warned,) = _warned(ack, "older")
        assert warned.split("|")[2] == "OBX^1^5" and "Observation.dataAbsentReason" in warned, (n, warned)


_START, _END = "             not_back: [", "             withdrawn: [entered-in-error]}"


def _site(tmp_path: Path, not_back: str) -> Path:
    text = (DEFAULTS_DIR / "merge.yaml").read_text(encoding="utf-8")
    path = tmp_path / "merge.yaml"
    path.write_text(text[:text.index(_START)] + f"             not_back: {not_back},\n" + text[text.index(_END):],
                    encoding="utf-8")
    return path


def test_a_site_step_unless_it_states_a_value_compiles_to_every_value_choice(tmp_path: Path) -> None:
    """A site's ``not_back`` step with ``unless_states: ["value[x]"]`` loads and reads as every value
    choice; the shipped file's withdrawal steps: the status alone one among them."""
    path = _site(tmp_path, '[{from: [entered-in-error], to: [final], unless_states: ["value[x]"], whole: true}]')
    (step,) = MergeRules(load_merge_file(path)).plan("Observation", "feed").elements["status"].not_back
    assert {"valueQuantity", "valueString", "valueCodeableConcept"} <= step.unless and step.whole, step
    shipped = MergeRules(load_merge_file(DEFAULTS_DIR / "merge.yaml")).plan("Observation", "feed")
    alone = [s for s in shipped.elements["status"].not_back if s.unless]
    assert [(s.over, s.to, s.whole) for s in alone] == [
        ({"entered-in-error"}, {"final", "corrected"}, True)], alone  # (A/B: the whole step's -- status38)


def test_a_site_step_with_an_empty_unless_is_refused(tmp_path: Path) -> None:
    path = _site(tmp_path, '[{from: [entered-in-error], to: [final], unless_states: []}]')
    with pytest.raises(SiteError, match="merge.yaml"):
        load_merge_file(path)
