"""Ingest serialises each message's resources right after conversion and the write splices their
``meta`` into those bytes (``FhirRepository.serialise_ahead``): what is stored must be what the
write path stores serialising them itself, byte for byte, on every backend."""

from __future__ import annotations

from typing import Any

from bench.ingest import adt_a01, oru_lab, oru_pacs
from engine.engine import Engine
from engine.settings import Settings


def _stored(settings: Settings, ahead: bool) -> dict[tuple[str, str], bytes]:
    """Every version the feed wrote, by (type, id), its instant written as ``T``."""
    with Engine(settings) as engine:
        repo = engine.repository
        if not ahead:
            repo.serialise_ahead = None  # type: ignore[method-assign,assignment]
        keys: list[tuple[str, str]] = []
        write_many = repo.write_many

        def noted(resources: Any, **kwargs: Any) -> Any:
            results = write_many(resources, **kwargs)
            keys.extend((r.resource["resourceType"], r.resource["id"]) for r in results)
            return results

        repo.write_many = noted  # type: ignore[method-assign]
        feed = [oru_lab(n) for n in (1, 2, 500, 3)] + [adt_a01(1), oru_pacs(1), oru_lab(1), oru_lab(4)]
        outcomes = engine.ingestor.process([(m, "mllp", "p") for m in feed[:5]])
        outcomes += engine.ingestor.process([(m, "mllp", "p") for m in feed[5:]])
        assert [o.code for o in outcomes] == ["AA"] * len(feed)
        out = {}
        for rtype, rid in keys:
            if rtype in ("Provenance", "AuditEvent"):  # signed and recorded at their own instants
                continue
            for v in repo.versions(rtype, rid):
                rec = repo.backend.version(rtype, rid, v.version)
                assert rec is not None and rec.body is not None
                out[(rtype, f"{rid}/{v.version}")] = rec.body.replace(rec.updated.encode(), b"T")
        return out


def test_resources_serialised_ahead_are_stored_as_the_write_path_serialises_them(backend_settings: Settings) -> None:
    with_ahead = _stored(backend_settings, ahead=True)
    without = _stored(backend_settings.with_(data_dir=backend_settings.data_dir / "plain",
                                             mongodb_db=f"{backend_settings.mongodb_db}_plain"), ahead=False)
    assert len(with_ahead) > 40
    assert with_ahead == without
