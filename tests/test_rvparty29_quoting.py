"""rvparty29: the party rule's "quotes a value" check lets a referral tell its party what a withheld result says.

party29's rule (``ScopedRepository._party_reads``, ``policy.quotes_a_value``) lets a referral's institutions read it
despite an R result it cites, unless its own words quote that result's value. The check reads only strings under
``quoting`` keys and ``_value_texts`` of the cited result; each test here is a referral (or its Task) whose record
states the withheld result's value in a form the check misses, and the receiving hospital's bound system reads it
(200, the value in the body) where it must read as missing. Real path: the example feeds over ``POST /hl7v2``,
the sending hospital's unbound system writing by FHIR PUT, the receiving system bound to FNZYY reading over HTTP.
(partyoff29: the party rule is taken out -- the lead's decision -- so each referral here is withheld from its
parties whatever it holds; the tests stay as guards. The label-removal test, whose premise was the rule, is gone.)
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_labelmark27_results import labels_of
from tests.test_party29_referrals import Parties, _inst, _missing
from tests.test_party29_referrals import w as party_world  # noqa: F401 (the fixture: one engine, module-scoped)

SNOMED = "http://snomed.info/sct"


@pytest.fixture(scope="module")
def w(party_world: Parties) -> Parties:  # noqa: F811
    return party_world


def _result(w: Parties, rid: str, **value: Any) -> str:
    """A result the sending hospital writes and labels R; its reference."""
    obs = w.http.get(f"/fhir/{w.here['result'][1]['reference']}", headers=w.his).json()  # a feed's result as model
    for key in ("meta", "valueQuantity", "interpretation", "referenceRange", "identifier"):
        obs.pop(key, None)
    w.put({**obs, "id": rid, **value})
    assert labels_of(w.label(f"Observation/{rid}", "R")) == ["R"]
    return f"Observation/{rid}"


def _withheld_from_party(w: Parties, ref: str, shown: str) -> None:
    receiving = w.bound_at("FNZYY")
    got = w.http.get(f"/fhir/{ref}", **receiving)
    # (on 29f9dce3: 200, and the body states the withheld result's value)
    assert not (got.status_code == 200 and shown in got.text), (ref, got.status_code, got.text[:400])
    _missing(w, receiving, ref)


def test_a_task_input_value_quantity_stating_the_results_value(w):
    """``Task.input.valueQuantity`` (any value[x] but valueString) of the referral's Task is not read."""
    task = {"resourceType": "Task", "id": "rvp29-task-q", "status": "requested", "intent": "order",
            "focus": {"reference": "ServiceRequest/p29-ref"}, "for": w.here["subject"],
            "requester": _inst("FNXRMYY"), "owner": _inst("FNZYY"),
            "input": [{"type": {"text": "检验结果"}, "valueReference": {"reference": w.secret}},
                      {"type": {"text": "数值"}, "valueQuantity": {"value": 41.2, "unit": "%"}}]}
    assert labels_of(w.put(task)) == ["R"]
    assert w.http.get(f"/fhir/{w.secret}", headers=w.his).json()["valueQuantity"]["value"] == 41.2  # guard
    _withheld_from_party(w, "Task/rvp29-task-q", "41.2")


def test_a_referral_extension_stating_the_results_value(w):
    """A value in the referral's own extension (``valueQuantity``) is not read by the check."""
    ext = {"extension": [{"url": "urn:huren:test:cited-value", "valueQuantity": {"value": 41.2, "unit": "%"}}]}
    assert labels_of(w.referral("rvp29-ref-ext", w.here, w.secret, **ext)) == ["R"]
    _withheld_from_party(w, "ServiceRequest/rvp29-ref-ext", "41.2")


def test_a_decimal_quoted_without_its_trailing_zero(w):
    """A result stated ``5.0`` quoted as ``5``: the same value, in the referral's note; the check looks for the
    text "5.0" only."""
    ref = _result(w, "rvp29-glu", valueQuantity={"value": 5.0, "unit": "mmol/L"})
    note = {"note": [{"text": "空腹血糖 5 mmol/L，请会诊"}]}
    assert labels_of(w.referral("rvp29-ref-dec", w.here, ref, **note)) == ["R"]
    _withheld_from_party(w, "ServiceRequest/rvp29-ref-dec", "空腹血糖 5 mmol/L")


def test_a_coded_results_code_in_the_referrals_reason(w):
    """A coded result (HBsAg detected, SNOMED 260373001) whose code the referral states in ``reasonCode``'s
    Coding (``code`` is not a ``quoting`` key): the party learns the withheld result."""
    ref = _result(w, "rvp29-hbsag", valueCodeableConcept={"coding": [{"system": SNOMED, "code": "260373001",
                                                                       "display": "Detected"}]})
    reason = {"reasonCode": [{"coding": [{"system": SNOMED, "code": "260373001"}]}]}
    assert labels_of(w.referral("rvp29-ref-code", w.here, ref, **reason)) == ["R"]
    _withheld_from_party(w, "ServiceRequest/rvp29-ref-code", "260373001")


def test_a_cited_reports_conclusion_quoted_in_the_note(w):
    """A referral citing an R DiagnosticReport: ``_value_texts`` finds no value in a report (no value[x]), so a
    note quoting its conclusion is read by the party."""
    w.put({"resourceType": "DiagnosticReport", "id": "rvp29-dr", "status": "final", "code": {"text": "乙肝两对半"},
           "subject": w.here["subject"], "conclusion": "乙肝表面抗原阳性"})
    assert labels_of(w.label("DiagnosticReport/rvp29-dr", "R")) == ["R"]
    note = {"note": [{"text": "外院报告：乙肝表面抗原阳性"}]}
    assert labels_of(w.referral("rvp29-ref-dr", w.here, "DiagnosticReport/rvp29-dr", **note)) == ["R"]
    _withheld_from_party(w, "ServiceRequest/rvp29-ref-dr", "乙肝表面抗原阳性")


def test_a_text_result_quoted_in_part(w):
    """A text result (OBX TX/ST: ``valueString``) is looked for whole; a note quoting its finding without its
    advice is read by the party."""
    ref = _result(w, "rvp29-tp", valueString="梅毒螺旋体抗体阳性（TPPA），建议复查")
    note = {"note": [{"text": "梅毒螺旋体抗体阳性，转上级医院"}]}
    assert labels_of(w.referral("rvp29-ref-part", w.here, ref, **note)) == ["R"]
    _withheld_from_party(w, "ServiceRequest/rvp29-ref-part", "梅毒螺旋体抗体阳性")


def test_a_referral_risen_to_v_is_not_shown_to_another_hospitals_system(w):
    """POLICY (the lead decides): the result the referral cites rises from R to V after the receiving hospital read
    the referral; the referral rises to V and the party rule still lifts it (the cited V "accounts for" the V), so
    the receiving hospital's bound system reads a V record -- which huren withholds from the resident it is about
    (confidentiality.py: V is for the originator; 'the originator releases such a note to the person in the
    clinic'). A party here is neither the originator nor the subject."""
    ref = w.here["result"][8]["reference"]
    assert labels_of(w.label(ref, "R")) == ["R"]
    w.referral("rvp29-ref-rise", w.here, ref)
    receiving = w.bound_at("FNZYY")
    _missing(w, receiving, "ServiceRequest/rvp29-ref-rise")  # (R: withheld from its parties, partyoff29)
    assert labels_of(w.label(ref, "V")) == ["V"]
    assert w.http.get("/fhir/ServiceRequest/rvp29-ref-rise", **w.resident()).status_code == 404  # the subject: not
    _missing(w, receiving, "ServiceRequest/rvp29-ref-rise")
