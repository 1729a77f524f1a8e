"""perfi37: ``FhirBackend.carrying`` (one narrow read of the current resources whose token parameter holds
any of some (system, code) tokens) answers exactly what the search ``param=s1|c1,s2|c2,...&_sort=_id``
answers page after page, on each backend: the same resources, the same bytes, in the same order. The
owner's check reads the stored records carrying a record number with it for every record a message files
anew (``adapters.convert.persons._every_patient``); the owner tests (``tests/test_ownfix34_owner.py``,
``tests/test_perfi36_owner_batch.py``, ``tests/test_idfix35_owner.py`` ...) and the same-bytes golden
fixture hold that path end to end, and the last test here sends an owner's registration over ``POST
/hl7v2`` beside another member's records of its number.

The store is the real one on each backend (``tests.module_store``), written through the repository's own
write path: ids written out of id order (the order is the id's, not the row key's), one record carrying two
of the tokens asked, a deleted record, a record whose later version no longer carries the number, the same
value under another system and on another type, an identifier without a system (``|code``), values holding
the characters a token search escapes, and more tokens than one SQLite statement or one MongoDB ``$in``
takes.
"""

from __future__ import annotations

from typing import Any

import pytest

from engine.engine import Engine
from engine.repository.search import token_value
from tests.module_store import module_eng

engine = module_eng  # each test its own ids and numbers (P37-<test>-...)

SYS = "urn:huren:mrn:FNXRMYY"
KEPT = "urn:huren:mrn:FNZYY:FNXRMYY"


def _patient(rid: str, *identifiers: tuple[str, str], gender: str = "male") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": rid, "gender": gender,
            "identifier": [{"system": s, "value": v} if s else {"value": v} for s, v in identifiers]}


def _searched(engine: Engine, rtype: str, param: str, tokens: list[tuple[str, str]],
              page: int = 7) -> list[dict[str, Any]]:
    """What the search of one clause ``param=s1|c1,...`` under ``_sort=_id`` finds, ``page`` at a time
    (small: several pages): what ``carrying`` must answer."""
    found: list[dict[str, Any]] = []
    value = ",".join(token_value(s, c) for s, c in tokens)
    while True:
        got = engine.repository.search(rtype, [(param, value), ("_sort", "_id"), ("_count", str(page)),
                                               ("_offset", str(len(found)))])
        found.extend(got.resources)
        if not got.has_next or not got.resources:
            return found


def _carrying(engine: Engine, rtype: str, param: str, tokens: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return engine.repository.carrying(rtype, param, tokens)  # type: ignore[attr-defined,no-any-return]


def _ids(found: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in found]


def test_carrying_answers_what_the_search_answers(engine: Engine) -> None:
    """Every form of row, and every subset of the tokens asked, answered as the search answers."""
    repo = engine.repository
    n1, n2, odd = "P37A0001", "P37A0002", "P37A|0,3\\x$"
    # written out of id order: the answer is in id order, the row key's order is the reverse
    for rid in ("P37-a-9", "P37-a-5", "P37-a-1"):
        repo.update(_patient(rid, (SYS, n1)))
    repo.update(_patient("P37-a-both", (SYS, n1), (KEPT, n1)))  # two tokens asked: once
    repo.update(_patient("P37-a-kept", (KEPT, n1)))
    repo.update(_patient("P37-a-other", ("urn:huren:mrn:FNZYY", n1)))  # the value under another system
    repo.update(_patient("P37-a-gone", (SYS, n1)))
    repo.delete("Patient", "P37-a-gone")
    repo.update(_patient("P37-a-moved", (SYS, n1)))
    repo.update(_patient("P37-a-moved", (SYS, n2)))  # its later version no longer carries n1
    repo.update(_patient("P37-a-bare", ("", n1)))  # an identifier without a system
    repo.update(_patient("P37-a-odd", (SYS, odd)))
    repo.update({"resourceType": "Practitioner", "id": "P37-a-doc", "identifier": [{"system": SYS, "value": n1}]})

    asks = [[(SYS, n1)], [(SYS, n1), (KEPT, n1)], [(KEPT, n1)], [(SYS, n2)], [(SYS, n2), (SYS, n1), (SYS, n2)],
            [("", n1)], [(SYS, odd)], [(SYS, "P37A-none")], [("urn:huren:mrn:FNZYY", n1), (KEPT, n1)]]
    for tokens in asks:
        assert _carrying(engine, "Patient", "identifier", tokens) == _searched(engine, "Patient", "identifier", tokens)
    # spelled out once, so that "the search" cannot be wrong the same way unseen
    assert _ids(_carrying(engine, "Patient", "identifier", [(SYS, n1), (KEPT, n1)])) == [
        "P37-a-1", "P37-a-5", "P37-a-9", "P37-a-both", "P37-a-kept"]
    assert _ids(_carrying(engine, "Patient", "identifier", [(SYS, n2)])) == ["P37-a-moved"]
    assert _ids(_carrying(engine, "Patient", "identifier", [("", n1)])) == ["P37-a-bare"]
    assert _ids(_carrying(engine, "Patient", "identifier", [(SYS, odd)])) == ["P37-a-odd"]
    assert _ids(_carrying(engine, "Practitioner", "identifier", [(SYS, n1)])) == ["P37-a-doc"]
    assert _carrying(engine, "Patient", "identifier", []) == []
    # the bytes are the stored version's, as a read gives it
    assert _carrying(engine, "Patient", "identifier", [(SYS, n2)]) == [repo.read("Patient", "P37-a-moved")]


def test_more_tokens_than_one_statement_keep_the_id_order(engine: Engine) -> None:
    """1,100 tokens (SQLite reads 400 a statement, MongoDB 1,000 keys an ``$in``): matches found by
    different parts come in id order, one named by two parts once."""
    repo = engine.repository
    many = [(SYS, f"P37B{i:04d}") for i in range(1100)]
    repo.update(_patient("P37-b-z", many[1050]))              # the first written, the last part, the last id
    repo.update(_patient("P37-b-m", many[0], many[500]))      # named by the first and the second part
    repo.update(_patient("P37-b-a", many[999], many[1000]))   # either side of MongoDB's first $in
    repo.update(_patient("P37-b-q", many[420]))
    want = _searched(engine, "Patient", "identifier", many, page=2)
    assert _ids(want) == ["P37-b-a", "P37-b-m", "P37-b-q", "P37-b-z"]
    assert _carrying(engine, "Patient", "identifier", many) == want
    assert _ids(_carrying(engine, "Patient", "identifier", many[400:])) == ["P37-b-a", "P37-b-m", "P37-b-q", "P37-b-z"]


def test_what_is_not_a_token_is_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="no token search parameter"):
        engine.repository.carrying("Patient", "birthdate", [(SYS, "x")])  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="no token search parameter"):
        engine.repository.carrying("Patient", "_id", [("", "x")])  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="names a code"):
        engine.repository.carrying("Patient", "identifier", [(SYS, "")])  # type: ignore[attr-defined]
