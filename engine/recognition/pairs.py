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
so (``source``: "before-pairs"), and the evidence page pairs them when shown (``derive``: the test read
as its decision reads it, order time and all, over the index as it stands then, ``source``
"derived"); the next decision of the flag stores them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from engine.recognition.coding import resource_codings
from engine.recognition.decision import Recognisable, Sources, entry_rank, find_recognisable
from engine.recognition.facts import VOID_STATUSES
from engine.recognition.index import group_key
from mappings.site import local_code_system

# {"analyte", "result", "prior"[, "measure": LOINC][, "result_panel": True][, "prior_panel": True]
#  [, "result_also": [ref, ...]][, "prior_also": [ref, ...]]
#  [, "unlike": True, "result_measure": LOINC, "prior_measure": LOINC]}  (``unlike``: not compared)
Pair = dict[str, Any]


def cited(pair: Mapping[str, Any]) -> list[str]:
    """Every result a pair names: its two sides and the analyte's other entries (``*_also``)."""
    return [r for r in (pair.get("result"), pair.get("prior"), *(pair.get("result_also") or ()),
                        *(pair.get("prior_also") or ())) if r]


def _first(refs: Iterable[str]) -> str | None:
    """The entry a side shows when several name the analyte (two reports of one day): the first by
    kind (report first) and reference, as the flag's own result and prior are chosen."""
    return min(refs, key=entry_rank, default=None)


# the last rules' map of several measurements, with the map it was made from (``_measures``)
_last_measures: tuple[Mapping[str, str] | None, dict[str, tuple[str, ...]]] = (None, {})


def _measures(rules: Any) -> dict[str, tuple[str, ...]]:
    """The analytes reported as more than one measurement (PT: seconds 5902-2 and INR 6301-6,
    items.yaml), each with its LOINC codes: an entry of one is paired only with an entry of the
    same measurement (evfix33). Remembered for the rules' code map it was made from: a list of
    flags reads it once a row (``of_flag``)."""
    global _last_measures
    analytes = rules.codes.analytes
    made_from, several = _last_measures
    if made_from is analytes:
        return several
    by: dict[str, list[str]] = {}
    for loinc, analyte in analytes.items():
        by.setdefault(analyte, []).append(loinc)
    several = {a: tuple(sorted(codes)) for a, codes in by.items() if len(codes) > 1}
    _last_measures = (analytes, several)
    return several


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


# one group of an analyte's entries: (measure, the repeat's, the prior's). measure: a LOINC both
# sides report; None: an analyte of one measurement, or what they measure is not known; UNLIKE: each
# side reported only measurements the other did not (seconds against INR); "": the leftovers
UNLIKE = "unlike"
Group = tuple[str | None, list[str], list[str]]


def _analyte_pairs(a: str, mine: list[str], theirs: list[str], codes: Sequence[str], rules: Any,
                   read: Reader | None, insts: Mapping[str, str | None],
                   measures: dict[str, str | None]) -> list[Group]:
    """An analyte's entries on each side grouped by what they measure: (measure, repeat's, prior's)
    for every measurement both sides have (one group, measure None, for an analyte of one
    measurement or when nothing can be read), then the leftovers (measure "" : a measurement only one
    side reported, or entries whose measurement is not known).

    Both sides measured, but nothing alike (the repeat's PT in seconds, the prior's as an INR): one
    group marked ``UNLIKE``, never a pair of seconds beside an INR (evpage34); where a side's
    entries name none of the analyte's measurements (a whole-panel report) nothing is known to be
    unlike, and the one group stands as before. ``measures`` is filled with what each entry read
    measures (ref -> LOINC or None)."""
    if not codes or read is None:
        return [(None, mine, theirs)]
    def by_measure(refs: list[str]) -> dict[str | None, list[str]]:
        out: dict[str | None, list[str]] = {}
        for ref in refs:
            measures[ref] = measure_of(read(ref), codes, rules, insts.get(ref))
            out.setdefault(measures[ref], []).append(ref)
        return out
    m_mine, m_theirs = by_measure(mine), by_measure(theirs)
    common = [m for m in codes if m in m_mine and m in m_theirs]
    if not common:
        known = any(m is not None for m in m_mine) and any(m is not None for m in m_theirs)
        return [(UNLIKE if known else None, mine, theirs)]
    groups: list[Group] = [(m, m_mine[m], m_theirs[m]) for m in common]
    rest_mine = [r for m, refs in m_mine.items() if m not in common for r in refs]
    rest_theirs = [r for m, refs in m_theirs.items() if m not in common for r in refs]
    if rest_mine or rest_theirs:
        groups.append(("", rest_mine, rest_theirs))
    return groups


def _shown(refs: list[str], codes: Sequence[str], measures: Mapping[str, str | None]) -> str | None:
    """The entry an unlike side shows: the first of its first known measurement (items.yaml order)."""
    for m in codes:
        hit = _first(r for r in refs if measures.get(r) == m)
        if hit:
            return hit
    return _first(refs)


def _unlike(a: str, mine: list[str], theirs: list[str], codes: Sequence[str],
            measures: Mapping[str, str | None]) -> Pair:
    """An analyte's ``unlike`` pair: each side's shown entry (``_shown``) with what it measures."""
    result, prior = _shown(mine, codes, measures), _shown(theirs, codes, measures)
    return {"analyte": a, "result": result, "prior": prior, "unlike": True,
            "result_measure": measures.get(result or ""), "prior_measure": measures.get(prior or "")}


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
    in ``result_also`` / ``prior_also``. An analyte both sides measured, but in no measurement alike
    (the repeat's PT in seconds, the prior's as an INR), is one pair marked ``unlike``, with what each
    shown side measured (``result_measure`` / ``prior_measure``): shown, not compared (evpage34)."""
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
    measures: dict[str, str | None] = {}
    pairs: list[Pair] = []
    for a in sorted(match.analytes):
        codes = several.get(a, ())
        groups = _analyte_pairs(a, done.get(a, []), prior.get(a, []), codes, rules, read, insts, measures)
        if groups[-1][0] == "":
            groups.pop()  # a measurement one side alone reported: cited below, paired with nothing
        own: list[Pair] = []
        for measure, mine_refs, their_refs in groups:
            if measure == UNLIKE:  # each side shown with what it measured, not compared (evpage34)
                own.append(_unlike(a, mine_refs, their_refs, codes, measures))
                continue
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


def _checked(pair: Pair, codes: Sequence[str], rules: Any, read: Reader) -> Pair:
    """A recorded pair of an analyte of several measurements, checked like with like as it is read.

    The thirty-third round stored such an analyte, when its two sides shared no measurement (the
    repeat's PT in seconds, the prior's as an INR), as a plain pair -- {analyte, result, prior}, no
    ``measure``, no ``unlike`` -- and a flag nothing decides again keeps it (rvevpage34 MED 1). So a
    pair with neither mark is grouped again over the entries it cites on each side (its shown one and
    its ``*_also``), by ``_analyte_pairs`` as ``pair_up`` groups them: found unlike, it is the pair
    today's decision would store (``unlike``, each side's shown entry and measure, the rest cited);
    otherwise (a measurement in common, or one side's not known) it stands as recorded. Only what is
    shown changes: the flag's result, prior, analytes and price are not the pair's."""
    if (pair.get("measure") or pair.get("unlike") or pair.get("result_panel") or pair.get("prior_panel")
            or not pair.get("result") or not pair.get("prior")):
        return pair
    mine = [pair["result"], *(pair.get("result_also") or ())]
    theirs = [pair["prior"], *(pair.get("prior_also") or ())]
    measures: dict[str, str | None] = {}
    [(measure, _, _), *_] = _analyte_pairs(pair["analyte"], mine, theirs, codes, rules, read, {}, measures)
    if measure != UNLIKE:
        return pair
    own = [_unlike(pair["analyte"], mine, theirs, codes, measures)]
    _cite_rest(own, mine, theirs)
    return own[0]


def reader(recognition: Any) -> Reader:
    """A reference's current resource as recognition reads it (``RecognitionState.read``): what an
    entry measures is read from it, whoever asks (the measure's code is all that is said of it)."""
    return lambda ref: recognition.read(*ref.split("/", 1))


def of_flag(row: Mapping[str, Any], panel: Sequence[str], recognition: Any = None) -> dict[str, Any]:
    """What a stored flag row says of its pairs: ``pairs``, ``unpaired`` and ``source`` --
    "recorded" (decided since the pairs were kept), "item" (a whole item: its result and prior are
    the pair), or "before-pairs" (a panel flag an earlier release stored: its result and prior are
    not known to be one analyte; ``pairs`` is then empty).

    With ``recognition`` (its rules, and its ``read`` of a result), a recorded pair of an analyte of
    several measurements that carries no ``measure`` and no ``unlike`` is checked like with like as it
    is read (``_checked``): the evidence API, the page, the list and both CSVs read it here, so all
    say the same of a pair the thirty-third round stored (evpfix34)."""
    if row.get("pairs") is not None:
        pairs = [dict(p) for p in row["pairs"]]
        several = _measures(recognition.rules) if recognition is not None else {}
        if several and any(p.get("analyte") in several for p in pairs):
            read = reader(recognition)
            pairs = [_checked(p, several[p["analyte"]], recognition.rules, read) if p.get("analyte") in several
                     else p for p in pairs]
        return {"pairs": pairs, "unpaired": list(row.get("unpaired") or ()), "source": "recorded"}
    if not panel:
        return {"pairs": [{"analyte": None, "result": row.get("result"), "prior": row.get("prior")}],
                "unpaired": [], "source": "item"}
    return {"pairs": [], "unpaired": [], "source": "before-pairs"}


def derive(recognition: Any, row: Mapping[str, Any]) -> dict[str, Any] | None:
    """The pairs of a flag stored before they were kept, found when it is shown: the repeat test
    read as its decision reads it (``Repeats.repeat_reading``: its order as placed, with its time,
    and the candidates each bounded by their own order's time) and its prior test matched by the
    decision's own rule (``find_recognisable``). None when the test is not found or its prior test
    is no longer recognisable for it (withdrawn, corrected away): nothing is then paired.

    Why the decision's reading: ``derive`` built the order without its time and took every entry of
    the prior's day, so a prior result taken after the order was placed -- which the decision never
    offers as a prior (``decision.assess``: after-order) -- was shown as the prior (evpage34)."""
    rules = recognition.rules
    item = rules.items.get(row.get("item") or "")
    if item is None or not row.get("person") or not row.get("prior_day") or not row.get("prior_inst"):
        return None
    index = recognition.index
    # the repeat test as ``prior_changes`` finds it: through the flag's result, grouped under the
    # institution that PERFORMED it (a township's order run by the central lab is filed there, not
    # under the flag's ordering ``inst``); not found: not derived (rvevidence33 MED 2)
    repeat = index.get(row["result"]) if row.get("result") else None
    if repeat is None:
        return None
    group = sorted((d for d in index.group(repeat) if d.get("status") not in VOID_STATUSES),
                   key=lambda d: entry_rank(d["_id"]))
    # the entries of the flag's order, as ``Repeats._evaluate_flag`` splits a test two orders fulfil
    if len({d["order"] for d in group if d.get("order")}) > 1:
        group = [d for d in group if d.get("order") in (row.get("order"), None)]
    if not group:
        return None
    _, _, done, entries, performed, candidates = recognition.repeat_reading(
        row.get("order"), group, group_key(repeat), item)
    prior_day = date.fromisoformat(str(row["prior_day"]))
    sources: Sources = {}
    matches = find_recognisable(done, [c for c in candidates if c.institution == row["prior_inst"] and c.day == prior_day],
                                rules, sources)
    if not matches:
        return None
    pairs, unpaired = pair_up(str(row["result"]), entries, performed, matches[0], tuple(item.analytes), sources,
                              rules, reader(recognition))
    return {"pairs": pairs, "unpaired": unpaired, "source": "derived"}
