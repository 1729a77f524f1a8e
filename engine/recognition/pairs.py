"""The evidence pairs of a duplicate flag: each repeated analyte beside the prior result of the SAME
analyte, kept apart from the billed result.

A flag names one repeated result (``result``: the test's first entry, its report where it has one)
and one prior (``prior``: the prior test's report, else its first entry). For a whole item (a blood
count) the two are the same test and say all. For a panel they did not: a liver panel of which only
some analytes repeat showed the repeat's first entry (ALT 88) beside the prior's (AST 30), two
different analytes (pages32). ``result`` stays what it is -- it is the result the insurance deduction
finds the billed charge line by (``engine.insurance.deductions._charge_for``: ``ChargeItem.service``)
-- and the pairs say what was compared: for every analyte the repeat shares with the prior test,
the repeat's entry of that analyte and the prior's entry of that analyte, analytes matched by their
analyte code as the recognition rules match them (``coding.analytes_for``: LOINC, directly or
through the institution's map). An analyte the repeat did that the prior test did not cover is
``unpaired``: a new result, not repeated against a prior (and not priced as a repeat).

A side that has no entry of its own for the analyte -- a report of the panel as a whole, its
results coded locally -- is that report, marked ``result_panel`` / ``prior_panel``.

Flags written before the pairs were kept (thirty-third round) have no ``pairs``: ``of_flag`` says
so (``source``: "before-pairs"), and the evidence page pairs them when shown (``derive``: the same
rule over the index as it stands then, ``source`` "derived"); the next decision of the flag stores them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from engine.recognition.decision import Order, PriorResult, Recognisable, Sources, find_recognisable
from engine.recognition.facts import VOID_STATUSES
from engine.recognition.index import from_doc

_PREFERENCE = {"DiagnosticReport": 0, "ImagingStudy": 1, "Observation": 2}

Pair = dict[str, Any]  # {"analyte", "result", "prior"[, "result_panel": True][, "prior_panel": True]}


def _first(refs: Iterable[str]) -> str | None:
    """The entry a side shows when several name the analyte (two reports of one day): the first by
    kind (report first) and reference, as the flag's own result and prior are chosen."""
    return min(refs, key=lambda ref: (_PREFERENCE.get(ref.split("/", 1)[0], 9), ref), default=None)


def pair_up(repeat_ref: str, performed: Sequence[Mapping[str, Any]], did: Sequence[str], match: Recognisable,
            panel: Sequence[str], sources: Sources) -> tuple[list[Pair], list[str]]:
    """The pairs of a repeat and the analytes it did that no prior of the same analyte was found for.

    ``repeat_ref``: the flag's result (the repeat's report, or its first entry); ``performed``: the
    repeat test's index entries (the flagged order's, as the decision read them); ``did``: the
    analytes it resulted as the decision read them (``repeats.done_analytes``; () the whole panel);
    ``match``: the prior test the decision stands on; ``panel``: the item's analytes (() for a whole
    item: one pair, the item itself); ``sources``: what ``find_recognisable`` handed back of the
    prior tests (``decision.Sources``)."""
    if not panel:
        return [{"analyte": None, "result": repeat_ref, "prior": match.result.ref}], []
    done: dict[str, list[str]] = {}
    for d in performed:
        if d.get("status") in VOID_STATUSES:
            continue
        for a in d.get("analytes") or ():
            done.setdefault(a, []).append(d["_id"])
    named, whole = sources.get(match.result.ref, ((), ()))
    prior: dict[str, list[str]] = {}
    for r in named:
        for a in r.analytes:
            prior.setdefault(a, []).append(r.ref)
    whole_prior = _first(r.ref for r in whole)
    pairs: list[Pair] = []
    for a in sorted(match.analytes):
        mine, theirs = _first(done.get(a, ())), _first(prior.get(a, ()))
        pair: Pair = {"analyte": a, "result": mine or repeat_ref, "prior": theirs or whole_prior or match.result.ref}
        if mine is None:
            pair["result_panel"] = True
        if theirs is None:
            pair["prior_panel"] = True
        pairs.append(pair)
    return pairs, [a for a in sorted(did or panel) if a not in match.analytes]


def of_flag(row: Mapping[str, Any], panel: Sequence[str]) -> dict[str, Any]:
    """What a stored flag row says of its pairs: ``pairs``, ``unpaired`` and ``source`` --
    "recorded" (decided since the pairs were kept), "item" (a whole item: its result and prior are
    the pair), or "before-pairs" (a panel flag an earlier release stored: its result and prior are
    not known to be one analyte; ``pairs`` is then empty)."""
    if row.get("pairs") is not None:
        return {"pairs": [dict(p) for p in row["pairs"]], "unpaired": list(row.get("unpaired") or ()),
                "source": "recorded"}
    if not panel:
        return {"pairs": [{"analyte": None, "result": row.get("result"), "prior": row.get("prior")}],
                "unpaired": [], "source": "item"}
    return {"pairs": [], "unpaired": [], "source": "before-pairs"}


def derive(recognition: Any, row: Mapping[str, Any]) -> dict[str, Any] | None:
    """The pairs of a flag stored before they were kept, found when it is shown: the repeat test's
    entries and its prior test's as the index holds them now, matched by the decision's own rule
    (``find_recognisable`` for the flag's order, facts as the flag recorded them). None when the
    prior test is no longer recognisable for it (withdrawn, corrected away): nothing is then paired."""
    rules = recognition.rules
    item = rules.items.get(row.get("item") or "")
    person = row.get("person")
    if item is None or not person or not row.get("prior_day") or not row.get("order_day"):
        return None
    index = recognition.index
    key = {"inst": row.get("inst"), "person": person, "item": item.code, "day": row.get("day")}
    group = [d for d in index.group(key) if d.get("status") not in VOID_STATUSES]
    if row.get("order"):
        group = [d for d in group if d.get("order") in (row["order"], None)]
    # the decision's own reading of what the test did (imported here: repeats imports this module)
    from engine.recognition.repeats import done_analytes

    done = done_analytes(group)
    order_day = date.fromisoformat(str(row["order_day"]))
    order = Order(person=person, item=item.code, institution=str(row.get("inst")), day=order_day,
                  ref=row.get("order"), patient=row.get("patient"), analytes=done)
    candidates: list[PriorResult] = [from_doc(d) for d in index.between(
        person, item.code, str(row["prior_day"]), str(row["prior_day"])) if d.get("inst") == row.get("prior_inst")]
    sources: Sources = {}
    matches = [m for m in find_recognisable(order, candidates, rules, sources)
               if m.result.institution == row.get("prior_inst") and m.result.day.isoformat() == row["prior_day"]]
    if not matches:
        return None
    pairs, unpaired = pair_up(str(row.get("result")), group, done, matches[0], tuple(item.analytes), sources)
    return {"pairs": pairs, "unpaired": unpaired, "source": "derived"}
