"""An operator's link to a record with an invalid ID number: the index answers the same whatever
the process remembers of earlier classifications (a restart, another worker process).

The MPI skips classifying again the index's own link-only version of a record whose content it
classified before, into the entry it holds since. An operator's ``link`` changes the entry
without a version of its own: the index's next version of that record must be classified again
(the invalid ID number wins over the operator's link, as it always did), else the answer would
depend on whether this process had classified the version before. Through the real engine, its
repository, write hooks and SQLite store; "restarted" links in a new engine on the same store."""

from __future__ import annotations

import pytest

from engine.engine import Engine
from tests.test_identity_mpi import ZHANG, patient

BAD = ZHANG[:-1] + ("0" if ZHANG[-1] != "0" else "1")  # the same number, a wrong check character


def _seealso(engine: Engine, pid: str) -> list[str]:
    current = engine.repository.read("Patient", pid)
    return sorted(link["other"]["reference"] for link in current.get("link", []) if link["type"] == "seealso")


@pytest.mark.parametrize("restart", [False, True], ids=["remembered", "restarted"])
@pytest.mark.parametrize("source,target", [("fn-3", "fn-1"), ("fn-1", "fn-3")], ids=["invalid-source", "invalid-target"])
def test_a_manual_link_to_an_invalid_id_record_answers_as_before(settings, source, target, restart):
    engine = Engine(settings)
    try:
        engine.repository.update(patient("fn-1", ZHANG))
        assert engine.repository.update(patient("fn-3", BAD)).issues  # not linked: the check character
        assert engine.identity.record("fn-3")["status"] == "invalid-id"
        if restart:
            engine.close()
            engine = Engine(settings)
        mpi = engine.identity
        mpi.link(source, target, actor="desk-1", reason="same resident, ID card seen")
        assert mpi.record("fn-3")["status"] == "invalid-id" and mpi.record("fn-3")["person"] is None
        assert mpi.person_compartment("fn-1") == {"fn-1"} and mpi.person_compartment("fn-3") == {"fn-3"}
        assert _seealso(engine, "fn-1") == []
        # nor does the invalid record keep a link the index no longer states (it was left pointing at fn-1)
        assert _seealso(engine, "fn-3") == []
    finally:
        engine.close()
