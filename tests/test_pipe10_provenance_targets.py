"""A message whose Provenance names a target the message did not store is quarantined with the
reason, through the real pipeline and store; the other messages of its batch are stored, their
Provenances signed and verifying. Before, such a Provenance was stored unsigned without a word
(``sign_stored`` refuses an unversioned target with a ValueError; the pipeline now never hands it
one: ``Ingestor._versioned``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bench.ingest import oru_lab
from engine.audit.provenance import verify_provenance
from engine.engine import Engine
from engine.messages import PROCESSED, QUARANTINED
from engine.settings import Settings

BAD = 31  # the message whose converter output is spoiled


def _other_record(prov: dict[str, Any]) -> None:
    prov["target"].append({"reference": "Patient/someone-else"})


def _no_reference(prov: dict[str, Any]) -> None:
    prov["target"].append({"display": "a target by name only"})


def _a_version_already(prov: dict[str, Any]) -> None:
    prov["target"].append({"reference": prov["target"][0]["reference"] + "/_history/1"})


@pytest.mark.parametrize("spoil", [_other_record, _no_reference, _a_version_already])
def test_a_provenance_naming_what_the_message_did_not_store_quarantines_that_message_alone(
        backend_settings: Settings, spoil: Callable[[dict[str, Any]], None]) -> None:
    with Engine(backend_settings) as engine:
        convert = engine.ingestor.convert
        assert convert is not None

        own: list[tuple[str, str]] = []  # the spoiled message's own results, report and Provenance

        def spoiled(message: Any, site: Any, **kwargs: Any) -> Any:  # a converter defect, in one message
            conversion = convert(message, site, **kwargs)
            if message.msh.control_id == f"LAB{BAD:09d}":
                own.extend((r["resourceType"], r["id"]) for r in conversion.resources
                           if r["resourceType"] in ("Observation", "DiagnosticReport", "Provenance"))
                for resource in conversion.resources:
                    if resource["resourceType"] == "Provenance":
                        spoil(resource)
            return conversion

        engine.ingestor.convert = spoiled
        outcomes = engine.ingestor.process([(oru_lab(n), "mllp", "10.0.0.5:4000") for n in (30, BAD, 32)])
        assert [(o.code, o.status) for o in outcomes] == [("AA", PROCESSED), ("AE", QUARANTINED), ("AA", PROCESSED)]
        [error] = outcomes[1].errors
        assert "Provenance target names" in error.message and "cannot be signed" in error.message
        assert b"cannot be signed" in outcomes[1].ack
        doc = engine.ingestor.messages.get(outcomes[1].message_id)
        assert doc is not None and doc["status"] == QUARANTINED and "cannot be signed" in doc["reason"]
        # nothing of the quarantined message is stored; the others' Provenances are signed over their versions
        assert outcomes[1].resources == [] and len(own) == 14
        assert all(engine.repository.backend.current(rtype, rid) is None for rtype, rid in own)
        for outcome in (outcomes[0], outcomes[2]):
            ref = next(r for r in outcome.resources if r.startswith("Provenance/"))
            provenance = engine.repository.read(*ref.split("/"))
            targets = [engine.repository.vread(*t["reference"].replace("/_history/", "/").split("/"))
                       for t in provenance["target"]]
            assert verify_provenance(provenance, targets, engine.audit.keys)
        # sent again once the converter is fixed: the operator replays it from the quarantine
        engine.ingestor.convert = convert
        replayed = engine.ingestor.replay(outcomes[1].message_id, actor="operator")
        assert replayed is not None and replayed.code == "AA"
        ref = next(r for r in replayed.resources if r.startswith("Provenance/"))
        provenance = engine.repository.read(*ref.split("/"))
        assert provenance["signature"] and all("/_history/" in t["reference"] for t in provenance["target"])
