"""``write_many(combined=)``: the patient index hands the repository what the merge rules made of
a record when it asked whether its links change anything, and the repository takes that answer
instead of combining again -- only while the version it was combined over is still the current
one. A record written over in between (another feed's update) is combined again over what is
stored: the stale answer would put back the version before and lose what the update stated.
Real repository on SQLite and mongomock.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from engine.engine import Engine
from engine.merge_rules import INDEX
from engine.settings import Settings


@pytest.fixture
def engine(backend_settings: Settings) -> Iterator[Engine]:
    with Engine(backend_settings) as e:
        yield e


def _patient(pid: str, **more: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1961-05-02",
            "name": [{"family": "钱", "given": ["红"]}], **more}


def _stated(stored: dict[str, Any], other: str) -> dict[str, Any]:
    """What the index states of ``stored``: the record with its links (as ``_materialise``)."""
    stated = {k: v for k, v in stored.items() if k != "link"}
    stated["link"] = [{"other": {"reference": f"Patient/{other}"}, "type": "seealso"}]
    return stated


def test_the_index_answer_is_taken_only_over_the_version_it_was_made_of(engine: Engine) -> None:
    repo = engine.repository
    v1 = repo.update(_patient("flow17-a")).resource
    stated = _stated(v1, "flow17-b")
    merged = repo.merge.combine(v1, stated, INDEX).resource
    # another writer first: the telephone it states must survive the index's write
    v2 = repo.update(_patient("flow17-a", telecom=[{"system": "phone", "value": "13900000017"}])).resource
    assert v2["meta"]["versionId"] == "2"
    [written] = repo.write_many([stated], source=INDEX, validated=True, combined={"Patient/flow17-a": merged})
    now = repo.read("Patient", "flow17-a")
    assert written.resource["meta"]["versionId"] == "3"  # (the index's own hook may write a 4th)
    assert written.resource["telecom"] == now["telecom"] == [{"system": "phone", "value": "13900000017"}]
    assert repo.merge.combine(v2, stated, INDEX).resource["telecom"] == now["telecom"]


def test_over_the_current_version_it_stores_what_combining_again_stores(engine: Engine) -> None:
    repo = engine.repository
    for pid, pass_combined in (("flow17-c", True), ("flow17-d", False)):
        v1 = repo.update(_patient(pid, telecom=[{"system": "phone", "value": "1390000001"}])).resource
        stated = _stated(v1, "flow17-e")
        merged = repo.merge.combine(v1, stated, INDEX).resource
        repo.write_many([stated], source=INDEX, validated=True,
                        combined={f"Patient/{pid}": merged} if pass_combined else None)
    # version 2 is the index's write (its own hook may write a 3rd: it knows no "flow17-e")
    taken, again = repo.vread("Patient", "flow17-c", "2"), repo.vread("Patient", "flow17-d", "2")
    for r in (taken, again):
        r.pop("id")
        r["meta"].pop("lastUpdated")
    assert taken == again
    assert taken["link"] == [{"other": {"reference": "Patient/flow17-e"}, "type": "seealso"}]
