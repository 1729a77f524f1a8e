"""An operator's patient-index call as the desk makes it (``$link``/``$unlink`` over HTTP), and what the
index then says of a record: shared by the identity and recognition tests that need them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from fastapi.testclient import TestClient

from engine.engine import Engine


def operate(http: TestClient, op: str, source: str, target: str | None = None) -> None:
    """``POST /fhir/Patient/$<op>`` with the record, the other record if any, and a reason; must answer 200."""
    params = [{"name": "source", "valueReference": {"reference": f"Patient/{source}"}},
              {"name": "reason", "valueString": "checked at the desk"}]
    if target:
        params.append({"name": "target", "valueReference": {"reference": f"Patient/{target}"}})
    r = http.post(f"/fhir/Patient/${op}", json={"resourceType": "Parameters", "parameter": params})
    assert r.status_code == 200, r.text


def index_state(engine: Engine, http: TestClient, pid: str) -> tuple[str, frozenset[str], list[str]]:
    """The record's index status, its person's compartment, and the ``seealso`` links its stored version holds."""
    stored = http.get(f"/fhir/Patient/{pid}").json()
    links = sorted(link["other"]["reference"].split("/")[1] for link in stored.get("link", [])
                   if link["type"] == "seealso")
    return engine.identity.record(pid)["status"], engine.identity.person_compartment(pid), links


@contextlib.contextmanager
def before_linkmend26(engine: Engine) -> Iterator[None]:
    """Inside: the desk's ``$link`` as the code before the twenty-sixth round took it -- a link or merge
    of two ID numbers' records not refused (``IdentityService.link_refusal`` answers None). Only for
    building the state such an old link left in a store, so a test can show it is still undone,
    repaired or judged right; no operator has this (DOMAIN: no override). The real path otherwise."""
    engine.identity.link_refusal = lambda *args, **kwargs: None  # this engine's index only
    try:
        yield
    finally:
        del engine.identity.link_refusal
