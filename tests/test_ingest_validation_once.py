"""Each resource of an ingested message is validated once: the message's Provenance is validated
when it is written signed (its targets pinned to the stored versions), not also as converted;
an invalid Provenance still refuses the message with the validator's reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.ingest import oru_lab
from engine.engine import Engine
from engine.messages import PROCESSED, QUARANTINED
from engine.settings import Settings


def _counting(engine: Engine) -> list[dict[str, Any]]:
    """The resources the engine's validator is asked about in full, in order."""
    asked: list[dict[str, Any]] = []
    validator = engine.validator
    validate = validator.validate

    def counted(resource: Any) -> None:
        asked.append(resource)
        validate(resource)

    validator.validate = counted  # type: ignore[method-assign]
    return asked


def test_a_message_provenance_is_validated_once_signed(settings: Settings) -> None:
    with Engine(settings) as engine:
        asked = _counting(engine)
        outcomes = engine.ingestor.process([(oru_lab(1), "mllp", "p"), (oru_lab(2), "mllp", "p")])
        assert [o.code for o in outcomes] == ["AA", "AA"]
        provenances = [r for r in asked if r.get("resourceType") == "Provenance"]
        assert len(provenances) == 2
        # the validated ones are the written ones: signed, their targets pinned to stored versions
        assert all(p.get("signature") for p in provenances)
        assert all("/_history/" in t["reference"] for p in provenances for t in p["target"])
        for out in outcomes:
            assert engine.ingestor.messages.get(out.message_id)["status"] == PROCESSED


def test_a_provenance_the_site_refuses_still_refuses_the_message(settings: Settings, tmp_path: Path) -> None:
    from mappings.site import DEFAULTS_DIR

    site = tmp_path / "site"
    (site / "profiles").mkdir(parents=True)
    (site / "institutions.yaml").write_text((DEFAULTS_DIR / "institutions.yaml").read_text("utf-8"), "utf-8")
    (site / "profiles" / "Provenance.yaml").write_text(
        "resourceType: Provenance\nrequired:\n  reason: this site wants every provenance to say why\n", "utf-8")
    with Engine(settings.with_(site=site)) as engine:
        outcomes = engine.ingestor.process([(oru_lab(1), "mllp", "p")])
        assert [o.code for o in outcomes] == ["AE"]
        assert outcomes[0].status == QUARANTINED
        ack = outcomes[0].ack.decode()
        assert "FHIR resource rejected (422)" in ack and "reason" in ack
