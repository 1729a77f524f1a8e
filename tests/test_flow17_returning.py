"""A lab message of a returning resident: the thin Patient it carries is create-only and found
stored, so the write leaves it alone and answers with the stored version without parsing it
(``versioning.FoundStored``). What must hold: the stored record is not thinned, the message's
Provenance names the version stored (here 2, after an ADT^A08) and its signature verifies over
that version's bytes -- a batch of one message and a batch of two (one signature for their
Provenances), on SQLite and mongomock.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.audit.provenance import verify_provenance
from engine.engine import Engine
from engine.repository.ids import deterministic_id
from engine.settings import Settings
from tests.conftest import REPO_ROOT

FEEDS = REPO_ROOT / "examples" / "feeds"


def _msa(ack: bytes) -> str:
    return next(seg for seg in ack.split(b"\r") if seg.startswith(b"MSA|")).split(b"|")[1].decode()


def _oru(n: int) -> bytes:
    """The blood count of 02_..., another control id and order number each ``n``."""
    text = (FEEDS / "02_FNXRMYY_ORU_R01_blood_count.hl7").read_bytes()
    return (text.replace(b"FNXRMYY-LIS-000201", b"FNXRMYY-LIS-9%05d" % n)
            .replace(b"LIS20250310001", b"LIS2025031%04d" % n).replace(b"SQ20250310001", b"SQ2025031%04d" % n))


@pytest.fixture
def engine(backend_settings: Settings) -> Iterator[Engine]:
    with Engine(backend_settings) as e:
        yield e


def _provenances_of(engine: Engine, ack_refs: list[str]) -> list[dict]:
    return [engine.repository.read("Provenance", ref.split("/")[1]) for ref in ack_refs if ref.startswith("Provenance/")]


def _check(engine: Engine, prov: dict, pid: str, admitted: dict) -> None:
    targets = []
    for t in prov["target"]:
        rtype, rid, _, vid = t["reference"].split("/")
        targets.append(engine.repository.vread(rtype, rid, vid))
    assert f"Patient/{pid}/_history/2" in [t["reference"] for t in prov["target"]]
    assert verify_provenance(prov, targets, engine.audit.keys)
    assert engine.repository.read("Patient", pid) == admitted  # not thinned, no new version


def test_a_returning_residents_thin_patient_is_named_at_its_stored_version(engine: Engine) -> None:
    adt = (FEEDS / "01_FNXRMYY_ADT_A01_admission.hl7").read_bytes()
    a08 = (adt.replace(b"ADT^A01^ADT_A01", b"ADT^A08^ADT_A01").replace(b"EVN|A01", b"EVN|A08")
           .replace(b"FNXRMYY-ADT-000101", b"FNXRMYY-ADT-000102").replace(b"13951234567", b"13951234599"))
    assert _msa(engine.ingestor.handle(adt, channel="test", peer="test")) == "AA"
    assert _msa(engine.ingestor.handle(a08, channel="test", peer="test")) == "AA"
    pid = deterministic_id("FNXRMYY", "Patient", "ZY2025000101")
    admitted = engine.repository.read("Patient", pid)
    assert admitted["meta"]["versionId"] == "2" and "13951234599" in str(admitted["telecom"])

    for batch in ([_oru(1)], [_oru(2), _oru(3)]):  # a batch of one, and two sharing one signature
        outcomes = engine.ingestor.process([(raw, "mllp", "p") for raw in batch])
        assert [o.code for o in outcomes] == ["AA"] * len(batch)
        provenances = [p for o in outcomes for p in _provenances_of(engine, list(o.resources))]
        assert len(provenances) == len(batch)
        for prov in provenances:
            _check(engine, prov, pid, admitted)
