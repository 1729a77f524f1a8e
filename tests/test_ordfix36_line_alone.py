"""ordfix36: a message carrying one text line alone states no report text (one line is a value: no
text document of its own, ``adapters.convert.lis``) -- yet its line is one of the report's lines:

- a correction of a *withdrawn* line alone brings it back into the report's text and the imaging
  document that copies it, at its place (order35's strict xfail, now a plain test in
  ``tests/test_order35_line_place.py``);
- a correction of a *standing* line alone rewords it there (the report kept the old words, and its
  document with it, while the result said the new);
- the report's conclusion (the impressions' words alone) takes no finding's line either way.

Real HL7 through ``POST /hl7v2`` into the real store on each backend (``tests.module_store``),
resources read back over ``/fhir``."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.hl7_calls import module_http, post
from tests.module_store import module_eng
from tests.test_rvdocref32_probes import F1, IMP, _doc_texts, _obx, _oru, _report_texts, _stored, _three

__all__ = ["engine", "module_http"]

engine = module_eng

FIRST, SECOND, IMPRESSION = "双肺纹理增粗。", "右肺上叶见结节影。", "慢性支气管炎。"
FIXED = "右肺上叶见钙化灶。"


def _ok(ack: bytes) -> None:
    assert b"MSA|AA" in ack, ack


def _conclusion(http: TestClient, report_id: str) -> str:
    return http.get(f"/fhir/DiagnosticReport/{report_id}").json().get("conclusion", "")


def test_a_standing_line_corrected_alone_is_reworded_in_the_report_and_its_document(
        engine: Engine, http: TestClient) -> None:
    _ok(post(http, _three("OF36-L1", "OF36-XL1")))
    doc_id, report_id = _stored(engine, http, "OF36-L1")
    _ok(post(http, _oru("OF36-L1C", "OF36-XL1", _obx(2, F1, "2", FIXED, "C"), stamp="20261202120000")))
    assert _report_texts(http, report_id) == [f"{FIRST}\n{FIXED}\n{IMPRESSION}"] == _doc_texts(http, doc_id)
    assert _conclusion(http, report_id) == IMPRESSION


def test_a_withdrawn_line_corrected_alone_comes_back_but_not_into_the_conclusion(
        engine: Engine, http: TestClient) -> None:
    _ok(post(http, _three("OF36-L2", "OF36-XL2")))
    doc_id, report_id = _stored(engine, http, "OF36-L2")
    _ok(post(http, _oru("OF36-L2W", "OF36-XL2", _obx(2, F1, "2", SECOND, "W"), stamp="20261202110000")))
    assert _report_texts(http, report_id) == [f"{FIRST}\n{IMPRESSION}"] == _doc_texts(http, doc_id)
    _ok(post(http, _oru("OF36-L2C", "OF36-XL2", _obx(2, F1, "2", FIXED, "C"), stamp="20261202120000")))
    assert _report_texts(http, report_id) == [f"{FIRST}\n{FIXED}\n{IMPRESSION}"] == _doc_texts(http, doc_id)
    assert _conclusion(http, report_id) == IMPRESSION


def test_the_impression_corrected_alone_rewords_the_conclusion_and_the_text(engine: Engine, http: TestClient) -> None:
    _ok(post(http, _three("OF36-L3", "OF36-XL3")))
    doc_id, report_id = _stored(engine, http, "OF36-L3")
    _ok(post(http, _oru("OF36-L3C", "OF36-XL3", _obx(3, IMP, "", "支气管炎。", "C"), stamp="20261202120000")))
    assert _conclusion(http, report_id) == "支气管炎。"
    assert _report_texts(http, report_id) == [f"{FIRST}\n{SECOND}\n支气管炎。"] == _doc_texts(http, doc_id)


def test_an_older_correction_of_a_withdrawn_line_alone_brings_nothing_back(engine: Engine, http: TestClient) -> None:
    """The withdrawal at 12:00, the 11:00 correction arriving after: held -- the line stays out."""
    _ok(post(http, _three("OF36-L4", "OF36-XL4")))
    doc_id, report_id = _stored(engine, http, "OF36-L4")
    _ok(post(http, _oru("OF36-L4W", "OF36-XL4", _obx(2, F1, "2", SECOND, "W"), stamp="20261202120000")))
    _ok(post(http, _oru("OF36-L4C", "OF36-XL4", _obx(2, F1, "2", FIXED, "C"), stamp="20261202110000")))
    assert _report_texts(http, report_id) == [f"{FIRST}\n{IMPRESSION}"] == _doc_texts(http, doc_id)
