"""ordfix36: a message refused because its order against stored results cannot be told records every
stored version it could not date (``refused_against``: one entry each; ``Untimely.more``,
``MergeRules.refused``) and answers one ERR each, at its own OBX-11 -- so the operator's one decision
"as later" covers everything the refusal showed (rvfixord35 LOW 4). A refusal stored before this
(one version only) stays readable: its decided replay answers 409 without calling a version stored
before the refusal "changed", and records every version for the next decision.

The RIS reports three lines (10:00); the PACS withdraws two of them (11:00: another application,
taken over a final); the RIS's 12:00 correction of both cannot be ordered against the PACS's
withdrawal. Real HL7 through ``POST /hl7v2`` into the real store on each backend, the decision by
``POST /admin/quarantine/{id}/replay?as=later``, resources read back over ``/fhir``."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.messages import message_id
from tests.hl7_calls import err_lines, module_http, post, written
from tests.module_store import module_eng
from tests.test_msgfix34_cross_sender import _by
from tests.test_order35_as_later import _operator
from tests.test_rvdocref32_probes import F1, IMP, _obx, _oru

__all__ = ["engine", "module_http"]

engine = module_eng

LINE1, LINE2, IMPRESSION = "双肺纹理增粗。", "右肺上叶见结节影。", "慢性支气管炎。"


def _refused(engine: Engine, http: TestClient, n: str) -> tuple[str, dict[str, str], bytes]:
    """The three-line report, the PACS's withdrawal of lines 1 and 2, the RIS's refused correction:
    (the refused message's id, words -> Observation id, the correction's ACK)."""
    mrn, filler = f"OF36R{n}", f"OF36X{n}"
    report = _oru(f"OF36-R{n}A", filler, _obx(1, F1, "1", LINE1, "F"), _obx(2, F1, "2", LINE2, "F"),
                  _obx(3, IMP, "", IMPRESSION, "F"), mrn=mrn, name="冯^五")
    assert b"MSA|AA" in post(http, _by("RIS", report))
    ids = {o["valueString"]: o["id"] for o in written(engine, http, f"OF36-R{n}A", "Observation")}
    withdraw = _oru(f"OF36-R{n}W", filler, _obx(1, F1, "1", LINE1, "W"), _obx(2, F1, "2", LINE2, "W"),
                    mrn=mrn, name="冯^五", stamp="20261202110000")
    assert b"MSA|AA" in post(http, withdraw)
    correct = _oru(f"OF36-R{n}C", filler, _obx(1, F1, "1", "双肺纹理清晰。", "C"), _obx(2, F1, "2", "右肺上叶见钙化灶。", "C"),
                   _obx(3, IMP, "", IMPRESSION, "F"), mrn=mrn, name="冯^五", stamp="20261202120000")
    ack = post(http, _by("RIS", correct))
    assert b"MSA|AE" in ack, ack
    return message_id("FNXRMYY", f"OF36-R{n}C"), ids, ack


def _version(http: TestClient, obs_id: str) -> str:
    return http.get(f"/fhir/Observation/{obs_id}").json()["meta"]["versionId"]


def test_the_refusal_names_every_result_it_could_not_date(engine: Engine, http: TestClient) -> None:
    """One ERR 206 at each withdrawn line's OBX-11, both versions recorded; one decision takes the
    correction whole (AA, both lines corrected, the decision used)."""
    msg, ids, ack = _refused(engine, http, "1")
    refused = [e for e in err_lines(ack) if "|206^" in e]
    assert sorted(e.split("|")[2] for e in refused) == ["OBX^1^11", "OBX^2^11"], ack
    doc = engine.ingestor.messages.get(msg)
    assert sorted((e["resource"], e["versionId"]) for e in doc["refused_against"]) == sorted(
        (f"Observation/{ids[t]}", _version(http, ids[t])) for t in (LINE1, LINE2)), doc["refused_against"]
    r = http.post(f"/admin/quarantine/{msg}/replay?as=later", headers=_operator(engine))
    assert r.status_code == 200, r.text
    assert r.json()["ack_code"] == "AA" and r.json()["decided"]["used"] is True, r.json()
    stored = [http.get(f"/fhir/Observation/{ids[t]}").json() for t in (LINE1, LINE2)]
    assert [(o["status"], o["valueString"]) for o in stored] == [("corrected", "双肺纹理清晰。"),
                                                                 ("corrected", "右肺上叶见钙化灶。")], stored


def test_an_older_refusal_naming_one_version_is_not_told_the_other_changed(engine: Engine, http: TestClient) -> None:
    """A refusal stored as before (its first version only): the decided replay is 409, saying the
    refusal did not name the second result's version, stored before it -- not "the record changed";
    nothing is written, the refusal now names both, and the next decision takes the correction."""
    msg, ids, _ = _refused(engine, http, "2")
    doc = engine.ingestor.messages.get(msg)
    first = next(e for e in doc["refused_against"] if e["resource"] == f"Observation/{ids[LINE1]}")
    engine.ingestor.messages.messages.update(msg, {"refused_against": [first]})  # (as stored before ordfix36)
    r = http.post(f"/admin/quarantine/{msg}/replay?as=later", headers=_operator(engine))
    assert r.status_code == 409, r.text
    said = r.json()["issue"][0]["diagnostics"]
    assert "changed" not in said and f"did not name Observation/{ids[LINE2]}/_history/" in said, said
    assert [http.get(f"/fhir/Observation/{ids[t]}").json()["status"] for t in (LINE1, LINE2)] == ["entered-in-error"] * 2
    assert len(engine.ingestor.messages.get(msg)["refused_against"]) == 2
    r = http.post(f"/admin/quarantine/{msg}/replay?as=later", headers=_operator(engine))
    assert r.status_code == 200 and r.json()["ack_code"] == "AA", r.text
    assert [http.get(f"/fhir/Observation/{ids[t]}").json()["status"] for t in (LINE1, LINE2)] == ["corrected"] * 2


def test_a_version_written_after_the_refusal_is_still_the_record_changed(engine: Engine, http: TestClient) -> None:
    """The control: the PACS withdraws line 1 again with new words after the refusal (13:00, a new
    version): the decided replay is 409 "the record changed after the refusal", naming that version."""
    msg, ids, _ = _refused(engine, http, "3")
    again = _oru("OF36-R3V", "OF36X3", _obx(1, F1, "1", "双肺纹理增粗紊乱。", "W"), mrn="OF36R3", name="冯^五",
                 stamp="20261202130000")
    assert b"MSA|AA" in post(http, again)
    newer = _version(http, ids[LINE1])
    r = http.post(f"/admin/quarantine/{msg}/replay?as=later", headers=_operator(engine))
    assert r.status_code == 409, r.text
    said = r.json()["issue"][0]["diagnostics"]
    assert "record changed after the refusal" in said and f"Observation/{ids[LINE1]}/_history/{newer}" in said, said
