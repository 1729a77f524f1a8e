"""rv37d: review probes of old37 (an MDM edit deletes the feed's copies of the paragraphs it dropped) and
perfi37 (``FhirBackend.carrying``, the owner's check's narrow read), thirty-seventh round.

Real HL7 over MLLP (``send``), real HTTP through FastAPI's TestClient, the real store on each backend
(SQLite, mongomock). A probe showing a defect is a strict xfail naming its severity.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.settings import Settings
from tests.test_old37_document_paragraphs import _aa, _ids, mdm
from tests.test_perfi37_carrying import SYS, _carrying, _patient, _searched
from tests.module_store import module_eng

carrying_engine = module_eng


@pytest.fixture
def both(backend_settings: Settings) -> Iterator[tuple[Engine, TestClient]]:
    """An engine on each backend and the real app over it, read with a system token."""
    from engine.api.app import create_app

    with Engine(backend_settings) as eng, TestClient(create_app(eng)) as http:
        http.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("reader", "system/*.rs")
        yield eng, http


def _doc(eng: Engine, http: TestClient, control: str) -> dict[str, Any]:
    from engine.messages import message_id

    listed = eng.ingestor.messages.get(message_id("FNXRMYY", control))["resources"]
    (ref,) = [r for r in listed if r.startswith("DocumentReference/")]
    return http.get(f"/fhir/{ref}").json()


def _texts(http: TestClient, doc: dict[str, Any]) -> list[str]:
    found = http.get("/fhir/Observation", params={"derived-from": f"DocumentReference/{doc['id']}", "_count": "100"})
    assert found.status_code == 200, found.text
    return sorted(e["resource"].get("valueString", "") for e in found.json().get("entry") or ())


def _lines(http: TestClient, doc: dict[str, Any]) -> list[str]:
    now = http.get(f"/fhir/DocumentReference/{doc['id']}").json()
    return sorted(line.strip() for c in now["content"]
                  if c["attachment"].get("contentType", "").startswith("text/plain")
                  for line in base64.b64decode(c["attachment"]["data"]).decode().splitlines() if line.strip())


# ---------------------------------------------------------------- old37: what an edit deletes


@pytest.mark.xfail(strict=True, reason="rv37d: MED an edit removing a middle paragraph leaves the last place's "
                   "copy (its words moved up a place, still in the text), so the document's text reads one "
                   "paragraph twice")
def test_an_edit_removing_a_middle_paragraph_leaves_each_paragraph_once(both: tuple[Engine, TestClient]) -> None:
    eng, http = both
    _aa(eng, mdm("MID1", "T02", ["第一段", "第二段（误）", "第三段"], number="DOC-MID"))
    doc = _doc(eng, http, "MID1")
    _aa(eng, mdm("MID2", "T08", ["第一段", "第三段"], number="DOC-MID"))
    assert _lines(http, doc) == ["第一段", "第三段"]
    assert _texts(http, doc) == ["第一段", "第三段"]


@pytest.mark.xfail(strict=True, reason="rv37d: MED an original (T02) arriving after the edit, older by MSH-7 "
                   "(a replay): the document keeps the edit's text, but the paragraph the edit dropped is "
                   "written again as the document's text and no judgment drops it")
def test_an_older_original_arriving_late_does_not_bring_back_a_dropped_paragraph(
        both: tuple[Engine, TestClient]) -> None:
    eng, http = both
    _aa(eng, mdm("LO1", "T02", ["一段", "二段", "三段（删）"], number="DOC-LO", at="20261201090000"),
        mdm("LO2", "T08", ["一段", "二段"], number="DOC-LO", at="20261201110000"))
    doc = _doc(eng, http, "LO1")
    assert _texts(http, doc) == _lines(http, doc) == ["一段", "二段"]
    _aa(eng, mdm("LO3", "T02", ["一段", "二段", "三段（删）"], number="DOC-LO", at="20261201090000"))
    assert _lines(http, doc) == ["一段", "二段"]
    assert _texts(http, doc) == ["一段", "二段"]
