"""``GroupMemo`` and the result index's remembered windows answer exactly what the store holds,
on both backends: inside a scope after every kind of write, and outside one (no memory at all)."""

from __future__ import annotations

from datetime import date

from engine.recognition.decision import PriorResult
from engine.recognition.index import ResultIndex
from engine.recognition.memo import GroupMemo
from engine.repository.port import Store


def test_memo_answers_what_the_store_holds_through_every_write(store: Store) -> None:
    coll = store.collection("memo_test")
    coll.insert({"_id": "a", "n": 1})
    coll.insert({"_id": "b", "n": 2})
    memo = GroupMemo(coll)
    with store.transaction(), memo.scope():
        memo.prefetch(["a", "b", "c"])  # one query; "c" remembered as absent
        assert memo.get("a") == {"_id": "a", "n": 1} and memo.get("c") is None
        memo.replace({"_id": "c", "n": 3})
        assert memo.get("c") == {"_id": "c", "n": 3} == coll.get("c")
        assert memo.update("a", {"n": 10}) and memo.get("a") == {"_id": "a", "n": 10} == coll.get("a")
        assert memo.update("zz", {"n": 1}) is False and memo.get("zz") is None
        assert memo.delete("b") and memo.get("b") is None and coll.get("b") is None
        memo.replace({"_id": "d", "n": 4}, upsert=False)  # not there: nothing written, nothing remembered
        assert memo.get("d") is None and coll.get("d") is None
        with memo.scope():  # nested: shares the outer memory
            assert memo.get("c") == {"_id": "c", "n": 3}
    coll.replace({"_id": "a", "n": 99})  # outside a scope nothing is remembered
    assert memo.get("a") == {"_id": "a", "n": 99}
    assert {d["_id"] for d in memo.find({})} == {"a", "c"}


def entry(ref: str, person: str | None, item: str, day: str, inst: str = "A", patient: str = "Patient/p") -> dict:
    return {"_id": ref, "person": person, "patient": patient, "item": item, "inst": inst, "day": day,
            "status": "final", "order": None, "held": None}


def test_remembered_windows_follow_every_write_of_the_index(store: Store) -> None:
    index = ResultIndex(store.collection("windows_test"))
    for doc in (entry("Observation/1", "P", "CBC", "2026-03-01"), entry("Observation/2", "P", "CBC", "2026-03-05"),
                entry("Observation/3", "P", "CBC", "2026-03-05", inst="B"), entry("Observation/4", "P", "LFT", "2026-03-05")):
        index.coll.insert(doc)

    def ids(results: list) -> set[str]:
        return {getattr(r, "ref", None) or r["_id"] for r in results}

    with store.transaction(), index.scope():
        assert ids(index.group(entry("x", "P", "CBC", "2026-03-05"), 7)) == {"Observation/2"}  # reads the window
        assert ids(index.candidates("P", "CBC", date(2026, 3, 5), 7)) == {"Observation/1", "Observation/2",
                                                                            "Observation/3"}
        assert index.delete("Observation/1")
        index.put(PriorResult(ref="Observation/6", person="P", item="CBC", institution="A", day=date(2026, 3, 3),
                              status="final", patient="Patient/q"), "2026-03-03T00:00:00Z")
        assert ids(index.candidates("P", "CBC", date(2026, 3, 5), 7)) == {"Observation/2", "Observation/3",
                                                                            "Observation/6"}
        index.set_person(index.by_patient("Patient/q"), "Q")  # the person changed: leaves P's window
        assert ids(index.candidates("P", "CBC", date(2026, 3, 5), 7)) == {"Observation/2", "Observation/3"}
        assert ids(index.candidates("Q", "CBC", date(2026, 3, 5), 7)) == {"Observation/6"}
        fresh = {d["_id"] for d in index.coll.find({"person": "P", "item": "CBC"})}
        assert fresh == {"Observation/2", "Observation/3"}
    assert ids(index.candidates("P", "CBC", date(2026, 3, 5), 30)) == {"Observation/2", "Observation/3"}


def test_a_results_classification_is_remembered_per_codings_and_performers(engine) -> None:
    """The (institution, item) remembered across messages is told apart by every value it is
    read from: the same test performed elsewhere is that institution's, an odd coding is
    classified as always, and a result of no item stays none."""
    facts, rules = engine.recognition.facts, engine.recognition.rules
    loinc, item = next(iter(sorted(rules.codes.loinc.items())))
    a, b = sorted(rules.institutions)[:2]

    def obs(n: int, inst: str, code: object = loinc) -> dict:
        return {"resourceType": "Observation", "id": f"o{n}", "status": "final",
                "code": {"coding": [{"system": rules.codes.loinc_system, "code": code}]},
                "performer": [{"identifier": {"system": "urn:huren:institution", "value": inst}}]}

    assert facts.classify(obs(1, a)) == (a, item)
    assert facts.classify(obs(2, b)) == (b, item)  # the same codings, another performer
    assert facts.classify(obs(3, a)) == (a, item)
    odd = obs(4, a)
    odd["code"]["coding"].append({"system": "urn:x", "code": {"not": "a string"}})  # no key: computed
    assert facts.classify(odd) == (a, item)
    assert facts.classify(obs(5, a, "0000-0")) == (a, None)
    assert facts.classify(obs(6, a, "0000-0")) == (a, None)


def test_a_deferred_write_reaches_the_store_once_as_it_ends(store: Store) -> None:
    """A row changed twice in one write group (an order's check row: placed, then its outcome) is
    written once when the group ends, as it ended; until then the memo answers with it. What the
    caller learns is the row before the group touched it and after, for its tallies; a group that
    failed writes nothing, and one that ends a row as it began leaves it alone."""
    coll = store.collection("defer_test")
    coll.insert({"_id": "o", "outcome": "pending"})
    coll.insert({"_id": "k", "n": 1})
    memo = GroupMemo(coll)
    assert memo.defer({"_id": "o", "outcome": "x"}, None) is False  # outside a scope: the caller writes
    writes: list[str] = []
    real = coll.replace
    coll.replace = lambda doc, **kw: writes.append(doc["_id"]) or real(doc, **kw)  # type: ignore[method-assign]
    with store.transaction(), memo.scope():
        first = memo.get("o")
        assert memo.defer({"_id": "o", "outcome": "recognised"}, first)
        assert memo.defer({"_id": "o", "outcome": "duplicate"}, memo.get("o"))
        assert memo.defer({"_id": "n", "outcome": "pending"}, None)
        assert memo.defer({"_id": "k", "n": 2}, memo.get("k")) and memo.defer({"_id": "k", "n": 1}, memo.get("k"))
        assert memo.get("o") == {"_id": "o", "outcome": "duplicate"} and coll.get("o") == first
        assert writes == []
        changed = memo.take_deferred()
        assert sorted(writes) == ["n", "o"]  # "k" ended as it began: not written
        assert ({"_id": "o", "outcome": "pending"}, {"_id": "o", "outcome": "duplicate"}) in changed
        assert (None, {"_id": "n", "outcome": "pending"}) in changed
        assert memo.take_deferred() == []  # taken once
    assert coll.get("o") == {"_id": "o", "outcome": "duplicate"} and coll.get("n") is not None
    writes.clear()
    with store.transaction(), memo.scope():
        memo.defer({"_id": "o", "outcome": "void"}, memo.get("o"))
    assert writes == [] and coll.get("o") == {"_id": "o", "outcome": "duplicate"}  # not taken: never written


def test_windows_prefetched_together_answer_as_the_store(store: Store) -> None:
    """The windows a write group will ask (its order's, each recognition item's) are read in one
    query; each then answers exactly what the store holds for its person, item and days, and
    keeps following the writes."""
    index = ResultIndex(store.collection("prefetch_test"))
    for doc in (entry("Observation/1", "P", "CBC", "2026-03-01"), entry("Observation/2", "P", "LFT", "2026-03-04"),
                entry("Observation/3", "Q", "CBC", "2026-03-04"), entry("Observation/4", "P", "CBC", "2026-02-01"),
                entry("Observation/5", "P", "LFT", "2026-03-09")):
        index.coll.insert(doc)
    finds: list[object] = []
    real = index.coll.find
    index.coll.find = lambda *a, **k: finds.append(a) or real(*a, **k)  # type: ignore[method-assign]

    def ids(results: list) -> set[str]:
        return {getattr(r, "ref", None) or r["_id"] for r in results}

    with store.transaction(), index.scope():
        index.prefetch_windows([("P", "CBC", "2026-02-26", "2026-03-05"), ("P", "LFT", "2026-03-03", "2026-03-05")])
        assert len(finds) == 1
        assert ids(index.candidates("P", "CBC", date(2026, 3, 5), 7)) == {"Observation/1"}
        assert ids(index.candidates("P", "LFT", date(2026, 3, 5), 2)) == {"Observation/2"}
        assert ids(index.group(entry("x", "P", "LFT", "2026-03-04"), 1)) == {"Observation/2"}
        assert len(finds) == 1  # all three from the one query
        index.put(PriorResult(ref="Observation/6", person="P", item="LFT", institution="A", day=date(2026, 3, 5),
                              status="final", patient="Patient/p"), "2026-03-05T00:00:00Z")
        assert ids(index.candidates("P", "LFT", date(2026, 3, 5), 2)) == {"Observation/2", "Observation/6"}
        assert ids(index.candidates("Q", "CBC", date(2026, 3, 5), 7)) == {"Observation/3"}  # not prefetched: asked
        assert ids(index.candidates("P", "LFT", date(2026, 3, 9), 7)) == {"Observation/2", "Observation/5",
                                                                            "Observation/6"}  # wider: asked
        assert len(finds) == 3


def test_new_deferred_rows_go_in_one_insert_and_one_stored_meanwhile_is_upserted(store: Store) -> None:
    """Rows that did not exist when read (a batch's new check rows) are written in one
    ``insert_many``; should another writer have stored one of them meanwhile, each is upserted
    as before, with what the scope decided."""
    coll = store.collection("defer_many_test")
    memo = GroupMemo(coll)
    inserts: list[int] = []
    real = coll.insert_many
    coll.insert_many = lambda docs: inserts.append(len(docs)) or real(docs)  # type: ignore[method-assign]
    with store.transaction(), memo.scope():
        for key in ("a", "b", "c"):
            assert memo.get(key) is None
            memo.defer({"_id": key, "n": 1}, None)
        memo.take_deferred()
    assert inserts == [3] and [coll.get(k) for k in "abc"] == [{"_id": k, "n": 1} for k in "abc"]
    with store.transaction(), memo.scope():
        for key in ("d", "e"):
            assert memo.get(key) is None
            memo.defer({"_id": key, "n": 2}, None)
        coll.insert({"_id": "e", "n": 0})  # another writer, after the scope read it
        changed = memo.take_deferred()
    assert len(changed) == 2 and coll.get("d") == {"_id": "d", "n": 2} and coll.get("e") == {"_id": "e", "n": 2}


def test_a_patients_remembered_entries_follow_every_write_of_the_index(store: Store) -> None:
    """The entries of a batch's Patient records, read in one query, answer as the store does
    after each entry is written, moved to another record's person or deleted."""
    index = ResultIndex(store.collection("patients_test"))
    index.coll.insert(entry("Observation/1", "P", "CBC", "2026-03-01", patient="Patient/p"))
    index.coll.insert(entry("Observation/2", None, "CBC", "2026-03-01", patient="Patient/q"))
    finds: list[object] = []
    real = index.coll.find
    index.coll.find = lambda *a, **k: finds.append(a) or real(*a, **k)  # type: ignore[method-assign]

    def ids(docs: list) -> set[str]:
        return {d["_id"] for d in docs}

    with store.transaction(), index.scope():
        index.prefetch_patients(["Patient/p", "Patient/q", "Patient/r"])
        assert len(finds) == 1
        assert ids(index.by_patient("Patient/p")) == {"Observation/1"} and index.by_patient("Patient/r") == []
        index.put(PriorResult(ref="Observation/3", person="R", item="CBC", institution="A", day=date(2026, 3, 2),
                              status="final", patient="Patient/r"), "2026-03-02T00:00:00Z")
        index.set_person(index.by_patient("Patient/q"), "Q")
        assert index.delete("Observation/1")
        assert len(finds) == 1
        for ref in ("Patient/p", "Patient/q", "Patient/r"):
            assert ids(index.by_patient(ref)) == {d["_id"] for d in real({"patient": ref})}, ref
        assert index.by_patient("Patient/q")[0]["person"] == "Q"


def test_tallies_moved_together_are_those_moved_one_by_one(store: Store) -> None:
    """``move_many`` nets a batch's moves per bucket: the tallies end as the moves one by one
    leave them (a bucket emptied and filled again, a price changed in the same bucket)."""
    from engine.recognition import aggregates

    def flag(day: str, status: str, price: float) -> dict:
        return {"day": day, "inst": "B", "item": "CBC", "category": "检验", "status": status, "price": price}

    moves = [(None, flag("2026-03-01", "flagged", 20.0)), (None, flag("2026-03-01", "flagged", 5.5)),
             (flag("2026-03-01", "flagged", 20.0), flag("2026-03-01", "justified", 20.0)),
             (flag("2026-03-02", "flagged", 7.0), None), (None, flag("2026-03-02", "flagged", 7.25)),
             (flag("2026-03-01", "flagged", 5.5), flag("2026-03-01", "flagged", 6.5))]
    one, many = store.collection("tally_one"), store.collection("tally_many")
    for coll in (one, many):
        coll.insert({"_id": "2026-03-02|B|CBC|flagged", "day": "2026-03-02", "inst": "B", "item": "CBC",
                     "category": "检验", "status": "flagged", "count": 1, "money": 7.0})
    with store.transaction():
        for old, new in moves:
            aggregates.move(one, aggregates.flag_bucket(old), aggregates.flag_bucket(new))
        aggregates.move_many(many, [(aggregates.flag_bucket(old), aggregates.flag_bucket(new)) for old, new in moves])
    assert sorted(one.find({}), key=lambda d: d["_id"]) == sorted(many.find({}), key=lambda d: d["_id"])
    assert {d["_id"]: (d["count"], d["money"]) for d in many.find({})} == {
        # the money as decimal text to the fen (moneyleft27); the 7.0 an earlier release stored read as 7.00
        "2026-03-01|B|CBC|flagged": (1, "6.50"), "2026-03-01|B|CBC|justified": (1, "20.00"),
        "2026-03-02|B|CBC|flagged": (1, "7.25")}
