"""lastread1: the last read of the fortieth round -- behaviour defects found while reading, each shown through the real
path and left for a fixer (a strict xfail naming its severity). The body's ``_format`` labelling a refusal is mended
(forty-first round, http41: ``formats.negotiate_form`` sets the label ``JsonLabel`` reads; the mark dropped).

Real HTTP through FastAPI (TestClient) into the real store on each backend (SQLite, mongomock); the held message is
real HL7 over ``POST /hl7v2`` (ord40's helpers).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.conftest import _BACKENDS
from tests.identity39_calls import engine_and_client
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_ord40_owner_decision import _aliased, _client, _engine_on, _held_message
from tests.test_order35_as_later import _operator
from tests.test_rv40e_probes import FORM

both = engine_and_client("lastread1")


@pytest.mark.parametrize("body", [b"bogusparam=1", b"birthdate=notadate"], ids=["unknown-parameter", "bad-date"])
def test_a_body_format_labels_a_refusal_as_the_query_format_does(both: tuple[Engine, TestClient], body: bytes) -> None:
    """R4 http.html#mime-type: a client naming ``application/json`` is answered in it -- an OperationOutcome too.
    With ``_format`` in the query the 400 is labelled ``application/json`` (``JsonLabel``); the same ``_format`` in
    the form body (ffix40's ``negotiate_form``, "read as the query's are") had left the 400 ``application/fhir+json``."""
    _, http = both
    headers = {"Content-Type": FORM, "Prefer": "handling=strict"}
    in_query = http.post("/fhir/Patient/_search?_format=application/json", content=body, headers=headers)
    assert in_query.status_code == 400, in_query.text
    assert in_query.headers["content-type"] == "application/json; charset=utf-8", in_query.headers["content-type"]
    in_body = http.post("/fhir/Patient/_search", content=body + b"&_format=application/json", headers=headers)
    assert in_body.status_code == 400 and in_body.json()["resourceType"] == "OperationOutcome", in_body.text
    assert in_body.headers["content-type"] == "application/json; charset=utf-8", in_body.headers["content-type"]


# --- the owner's decision reads its body's label as no other body route does ---------------------------------------


@pytest.fixture(scope="module", params=_BACKENDS)
def held(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, TestClient]]:
    """An engine on each backend with the shipped site (no aliases), and a client posting its HL7 (ord40's helpers)."""
    site = _aliased(tmp_path_factory.mktemp("lastread1site"), {})
    with _engine_on(request.param, tmp_path_factory.mktemp("lastread1"), site) as eng, _client(eng, "lastread1") as c:
        yield eng, c


def test_the_owner_decision_reads_its_body_label_as_every_body_route(held: tuple[Engine, TestClient]) -> None:
    """The operator's client labels its decision ``application/json; charset=ISO-8859-1`` and sends the reason in
    Latin-1: refused 415 with an OperationOutcome naming the character set, as every other route that reads a body
    refuses it (``formats.require_body_served``); the change stays held."""
    engine, http = held
    msg = _held_message(http, "LR1-LATIN1", app="EMR")
    body = json.dumps({"reason": "Müller (LIS) ist dieselbe Anwendung"}, ensure_ascii=False).encode("latin-1")
    r = http.post(f"/admin/quarantine/{msg}/owner", content=body,
                  headers=_operator(engine) | {"Content-Type": "application/json; charset=ISO-8859-1"})
    assert engine.ingestor.messages.get(msg).get("held_claims"), r.text  # (nothing taken either way)
    assert r.status_code == 415, (r.status_code, r.text[:300])
    assert "does not read" in r.json()["issue"][0]["diagnostics"], r.text
