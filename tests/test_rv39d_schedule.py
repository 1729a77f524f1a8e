"""rv39d: ident39 added a second module-level ``_same_parts`` to ``engine/merge_rules.py`` (identifier keys, for
``beside``); it replaces the scheduling ``_same_parts`` that ``_on_set_id`` calls. Real SIU bytes over MLLP
(``send``), the real store, read back through /fhir (the sched22 harness)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.test_convert11_thinner import fhir  # noqa: F401  (the reader fixture)
from tests.test_sched22_rv_probes import AN, AT, D01, D05, _actors, _run, _show, _text


def test_an_s14_re_stating_the_doctor_and_adding_another_keeps_both(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S12 books 王明 (AIP set id 1); an S14 re-states him unchanged (``AIP|1|A``) and adds 孙力 as anaesthetist
    (``AIP|2|A``): both are the appointment's participants, and nothing is said at AIP-1."""
    appt, (_, ack) = _run(engine, fhir, "RD", [f"AIP|1||{D01}|{AT}||20261205083000"],
                          [f"AIP|1|A|{D01}|{AT}||20261205083000", f"AIP|2|A|{D05}|{AN}||20261205083000"])
    names = sorted(p["actor"]["display"] for p in _actors(appt, "Practitioner"))
    assert names == sorted(["王明", "孙力"]), (_show(appt["participant"]), _text(ack))
    assert "AIP^1" not in _text(ack), _text(ack)
