"""Result reports of different patients in one ingest batch share one write group: their versions
go to the backend in one put (not one a message) and the write hooks run once for them; each
message still gets its own ACK, its resources read back as sent, its record linked by the patient
index. Equivalence of the decisions with one message per batch, hazards included, is
``tests/test_hooks17_batch_equivalence.py`` and ``tests/test_hooks19_batch_hazards.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.ingest import oru_lab
from engine import ingest as ingest_module
from engine.engine import Engine
from engine.settings import Settings


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    tmp: Path = tmp_path_factory.mktemp("perfpipe28")
    with Engine(Settings(data_dir=tmp / "var", http_port=0, mllp_port=0)) as eng:
        # the sender's Organization and Practitioner stored first: a version a group holds unput,
        # written again by a later message of it, makes the repository put the group there
        [warm] = eng.ingestor.process([(oru_lab(6_999, own_person=True), "mllp", "127.0.0.1:1")])
        assert warm.code == "AA"
        yield eng


def _puts(engine: Engine, raws: list[bytes]) -> tuple[list[Any], int]:
    """The outcomes of ``raws`` sent as one batch, and how many backend puts it made."""
    backend = engine.repository.backend
    real = backend.put_many
    calls = []

    def counted(entries: Any) -> Any:
        calls.append(len(entries))
        return real(entries)

    backend.put_many = counted
    try:
        outcomes = engine.ingestor.process([(raw, "mllp", "127.0.0.1:1") for raw in raws])
    finally:
        del backend.put_many
    return outcomes, len(calls)


def test_reports_of_different_patients_are_put_together(engine: Engine) -> None:
    count = getattr(ingest_module, "BATCH_GROUP", 8) + 2  # (a module of another tree has none)
    outcomes, puts = _puts(engine, [oru_lab(7_000 + n, own_person=True) for n in range(count)])
    assert [o.code for o in outcomes] == ["AA"] * count
    assert engine.ingestor.stats.redone_batches == 0
    # two write groups and the batch's Provenances (one a message before: ``count + 1``)
    assert puts <= 3, puts
    for n in (0, count - 1):
        found = engine.repository.search("Patient", [("identifier", f"MRN{7_000 + n:07d}")]).resources
        [patient] = found
        assert engine.identity.record(patient["id"])["status"] == "linked"
        obs = engine.repository.search("Observation", [("subject", f"Patient/{patient['id']}"),
                                                       ("code", "HCT")]).resources
        assert [o["valueQuantity"]["value"] for o in obs] == [0.43]


def test_the_same_resident_twice_in_a_batch_is_written_in_two_groups(engine: Engine) -> None:
    """The second report of a returning resident (the same ID number, another record) is not in
    the first one's group: its hooks run after the first one's, as when sent alone."""
    first, again = 7_100, 7_100 + 499  # ``oru_lab``: the same resident, another MRN
    outcomes, puts = _puts(engine, [oru_lab(first), oru_lab(7_101), oru_lab(again)])
    assert [o.code for o in outcomes] == ["AA"] * 3
    ids = [engine.repository.search("Patient", [("identifier", f"MRN{n:07d}")]).resources[0]["id"]
           for n in (first, again)]
    records = [engine.identity.record(pid) for pid in ids]
    assert [r["status"] for r in records] == ["linked", "linked"]
    assert records[0]["person"] == records[1]["person"]
    assert puts >= 3  # [first, 7101], [again] and the Provenances (the link may add a put)
