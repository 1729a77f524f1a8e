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

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from engine.recognition.coding import resource_codings
from engine.recognition.decision import Order, PriorResult, Recognisable, Sources, find_recognisable
from engine.recognition.facts import VOID_STATUSES
from engine.recognition.index import from_doc
from mappings.site import local_code_system

_PREFERENCE = {"DiagnosticReport": 0, "ImagingStudy": 1, "Observation": 2}

# {"analyte", "result", "prior"[, "measure": LOINC][, "result_panel": True][, "prior_panel": True]
#  [, "result_also": [ref, ...]][, "prior_also": [ref, ...]]}
Pair = dict[str, Any]


def cited(pair: Mapping[str, Any]) -> list[str]:
    """Every result a pair names: its two sides and the analyte's other entries (``*_also``)."""
    return [r for r in (pair.get("result"), pair.get("prior"), *(pair.get("result_also") or ()),
                        *(pair.get("prior_also") or ())) if r]


def _first(refs: Iterable[str]) -> str | None:
    """The entry a side shows when several name the analyte (two reports of one day): the first by
    kind (report first) and reference, as the flag's own result and prior are chosen."""
    return min(refs, key=lambda ref: (_PREFERENCE.get(ref.split("/", 1)[0], 9), ref), default=None)


def _measures(rules: Any) -> dict[str, tuple[str, ...]]:
    """The analytes reported as more than one measurement (PT: seconds 5902-2 and INR 6301-6,
    items.yaml), each with its LOINC codes: an entry of one is paired only with an entry of the
    same measurement (evfix33)."""
    by: dict[str, list[str]] = {}
    for loinc, analyte in rules.codes.analytes.items():
        by.setdefault(analyte, []).append(loinc)
    return {a: tuple(sorted(codes)) for a, codes in by.items() if len(codes) > 1}


def measure_of(resource: Mapping[str, Any] | None, codes: Sequence[str], rules: Any,
               institution: str | None) -> str | None:
    """Which of an analyte's measurements (``codes``, LOINC) an entry's resource reports: its LOINC,
    directly or through the institution's code map (as ``coding.analytes_for`` reads it); None when
    it names none of them (a report of the panel as a whole, or no resource to read)."""
    if resource is None:
        return None
    maps = rules.codes
    for c in resource_codings(dict(resource)):
        system, code = str(c.get("system") or ""), str(c.get("code") or "")
        loinc = code if system == maps.loinc_system else ""
        local = None if loinc else local_code_system(system, maps.local_prefix)
        if local:
            loinc = maps.local_loinc.get(local[0], {}).get(code, "")
        if loinc in codes:
            return loinc
    return None


# what a side's entries are read by, for an analyte of several measurements: ref -> its resource
Reader = Callable[[str], Mapping[str, Any] | None]


def _analyte_pairs(a: str, mine: list[str], theirs: list[str], codes: Sequence[str], rules: Any,
                   read: Reader | None, insts: Mapping[str, str | None]) -> list[tuple[str | None, list[str], list[str]]]:
    """An analyte's entries on each side grouped by what they measure: (measure, repeat's, prior's)
    for every measurement both sides have (one group, measure None, for an analyte of one
    measurement or when nothing can be read), then the leftovers (measure "" : a measurement only one
    side reported, or entries whose measurement is not known)."""
    if not codes or read is None:
        return [(None, mine, theirs)]
    def by_measure(refs: list[str]) -> dict[str | None, list[str]]:
        out: dict[str | None, list[str]] = {}
        for ref in refs:
            out.setdefault(measure_of(read(ref), codes, rules, insts.get(ref)), []).append(ref)
        return out
    m_mine, m_theirs = by_measure(mine), by_measure(theirs)
    common = [m for m in codes if m in m_mine and m in m_theirs]
    if not common:
        return [(None, mine, theirs)]
    groups: list[tuple[str | None, list[str], list[str]]] = [(m, m_mine[m], m_theirs[m]) for m in common]
    rest_mine = [r for m, refs in m_mine.items() if m not in common for r in refs]
    rest_theirs = [r for m, refs in m_theirs.items() if m not in common for r in refs]
    if rest_mine or rest_theirs:
        groups.append(("", rest_mine, rest_theirs))
    return groups


def pair_up(repeat_ref: str, performed: Sequence[Mapping[str, Any]], did: Sequence[str], match: Recognisable,
            panel: Sequence[str], sources: Sources, rules: Any = None,
            read: Reader | None = None) -> tuple[list[Pair], list[str]]:
    """The pairs of a repeat and the analytes it did that no prior of the same analyte was found for.

    ``repeat_ref``: the flag's result (the repeat's report, or its first entry); ``performed``: the
    repeat test's index entries (the flagged order's, as the decision read them); ``did``: the
    analytes it resulted as the decision read them (``repeats.done_analytes``; () the whole panel);
    ``match``: the prior test the decision stands on; ``panel``: the item's analytes (() for a whole
    item: one pair, the item itself); ``sources``: what ``find_recognisable`` handed back of the
    prior tests (``decision.Sources``); ``rules`` and ``read`` (a reference's current resource):
    for an analyte of several measurements (PT as seconds and INR), one pair per measurement both
    sides have, never seconds beside INR (evfix33).

    Every entry of a paired analyte is cited (evfix33): the pair shows the first of its measurement
    on each side, and names the others -- a re-run, a measurement the other side did not report --
    in ``result_also`` / ``prior_also``."""
    if not panel:
        return [{"analyte": None, "result": repeat_ref, "prior": match.result.ref}], []
    done: dict[str, list[str]] = {}
    insts: dict[str, str | None] = {}
    for d in performed:
        if d.get("status") in VOID_STATUSES:
            continue
        for a in d.get("analytes") or ():
            done.setdefault(a, []).append(d["_id"])
            insts[d["_id"]] = d.get("inst")
    named, whole = sources.get(match.result.ref, ((), ()))
    prior: dict[str, list[str]] = {}
    for r in named:
        for a in r.analytes:
            prior.setdefault(a, []).append(r.ref)
            insts[r.ref] = r.institution
    whole_prior = _first(r.ref for r in whole)
    several = _measures(rules) if rules is not None and read is not None else {}
    pairs: list[Pair] = []
    for a in sorted(match.analytes):
        groups = _analyte_pairs(a, done.get(a, []), prior.get(a, []), several.get(a, ()), rules, read, insts)
        if groups[-1][0] == "":
            groups.pop()  # a measurement one side alone reported: cited below, paired with nothing
        own: list[Pair] = []
        for measure, mine_refs, their_refs in groups:
            mine, theirs = _first(mine_refs), _first(their_refs)
            pair: Pair = {"analyte": a, "result": mine or repeat_ref, "prior": theirs or whole_prior or match.result.ref}
            if measure:
                pair["measure"] = measure
            if mine is None:
                pair["result_panel"] = True
            if theirs is None:
                pair["prior_panel"] = True
            own.append(pair)
        _cite_rest(own, done.get(a, []), prior.get(a, []))
        pairs += own
    return pairs, [a for a in sorted(did or panel) if a not in match.analytes]


def _cite_rest(own: list[Pair], mine: Sequence[str], theirs: Sequence[str]) -> None:
    """Name on an analyte's last pair every entry of it that no pair of it shows (``result_also`` /
    ``prior_also``, by reference: a re-run, a measurement the other side did not report), so the
    flag cites all it compared (rvevidence33 LOW 3/4)."""
    shown = {p[k] for p in own for k in ("result", "prior")}
    for key, refs in (("result_also", mine), ("prior_also", theirs)):
        rest = sorted(r for r in set(refs) if r not in shown)
        if rest:
            own[-1][key] = rest


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
    # the repeat test as ``prior_changes`` finds it: through the flag's result, grouped under the
    # institution that PERFORMED it (a township's order run by the central lab is filed there, not
    # under the flag's ordering ``inst``); not found: not derived (rvevidence33 MED 2)
    repeat = index.get(row["result"]) if row.get("result") else None
    if repeat is None:
        return None
    group = [d for d in index.group(repeat) if d.get("status") not in VOID_STATUSES]
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
    if not group:
        return None
    pairs, unpaired = pair_up(str(row.get("result")), group, done, matches[0], tuple(item.analytes), sources,
                              rules, lambda ref: recognition.read(*ref.split("/", 1)))
    return {"pairs": pairs, "unpaired": unpaired, "source": "derived"}
