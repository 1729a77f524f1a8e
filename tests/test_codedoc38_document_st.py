"""codedoc38: an edit sending an ST value where a text paragraph stood takes the paragraph mark off.

A document's paragraph copies are kept at their places (OBX-3 and OBX-1 order). An edit (T08) sending an ST value
at a paragraph's place wrote the same Observation without an identifier; under keep-if-absent the stored mark
stayed, so the value was judged a paragraph the edit did not state and deleted (old37's "left"). The converter
now deletes its own mark from a copy that is no paragraph, so the value stays, unmarked, and the next edit leaves
it alone.

Real HL7 over MLLP, read back over ``/fhir`` (TestClient), on SQLite and mongomock.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_conv13_orders import written
from tests.test_old37_document_paragraphs import _aa, _lines, _texts, mdm

_ST = "OBX|2|ST|18842-5^出院小结^LN||高血压||||||F\r"


def test_an_st_value_at_a_paragraphs_place_is_no_paragraph(backend_settings: Settings) -> None:
    with Engine(backend_settings) as eng, TestClient(create_app(eng)) as fhir:
        fhir.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("reader", "system/*.rs")
        _aa(eng, mdm("T1", "T02", ["第一段", "第二段"], number="DOC-ST38"))
        (doc,) = written(eng, fhir, "T1", "DocumentReference")
        place = {o["valueString"]: o for o in written(eng, fhir, "T1", "Observation")}["第二段"]
        # the edit: the first paragraph as text, at the second place an ST value (same OBX-3, OBX-1 order 2)
        _aa(eng, mdm("T2", "T08", ["第一段（改）"], number="DOC-ST38", obx=_ST))
        now = fhir.get(f"/fhir/Observation/{place['id']}")
        assert now.status_code == 200, now.text  # (the value is the edit's statement: not deleted)
        value = now.json()
        assert value.get("valueString") == "高血压", value
        assert not [i for i in value.get("identifier") or () if "document-paragraph" in str(i.get("system"))], value
        assert _lines(fhir, doc) == ["第一段（改）"]
        # a later edit judges the document's paragraphs only: the ST value stays
        _aa(eng, mdm("T3", "T08", ["第一段（再改）"], number="DOC-ST38"))
        assert fhir.get(f"/fhir/Observation/{place['id']}").status_code == 200
        assert "第一段（再改）" in _texts(fhir, doc)
