"""Segment order and membership checked against the message structure of the message's HL7 version.

Why: HL7 v2 chapter 2 gives every message structure (``ORU_R01``, ``ADT_A01`` ...) an order of segments and
segment groups; a receiver that reads segments by name alone stores a segment out of its place as if it
were in it. hl7apy ships those structures for v2.1 to v2.8.2 (``structure.segment_rules`` reads the same
definitions); they are compiled here once per (version, structure) into a flat list of segment slots, and
each message is then one walk over its segment ids: for each id, where the structure lets it stand next
(a later slot, the same slot again when it repeats, or a new repetition of a group it can begin), as HAPI's
and most engines' parsers place segments. The answer for (slot, id) is computed once and remembered, so a
message costs one dictionary look-up per segment, not a walk of the definition.

The greedy place is one reading; a structure often has several (an ``ORC`` after a result may begin a new
order or a prior result's order, and only the ``TQ1`` after its ``OBR`` tells). So the same slots are also
compiled into the structure's grammar (``Compiled.follow``: each slot's possible successors, Glushkov's
construction of the regular expression HL7's groups write), and the walk carries the set of places the
message so far can stand at: a segment is in place whenever some reading holds it, and only when none does
is the greedy place asked what is wrong (hl7seq32, thirty-second round).

A deviation is one of (``Deviation.kind``):

* ``outside``: a segment HL7 defines that the structure does not hold (an ``RXA`` in ``ADT_A01``);
* ``order``: a segment the structure holds, found where no reading of it can stand (``PID`` after ``PV1``;
  the same ``PID`` twice, leaving the first patient without the order ``ORU_R01`` requires; an ``ORC`` before
  the ``PID``), the walk going on from where the greedy step places it; a note (``NTE``) the structure holds
  nowhere there is always this kind, named as a note of the segment before it (each of a run of them);
* ``without``: a segment placed in a group whose required segment before it the message lacks (an ``OBX``
  in ``ORU_R01`` with no ``OBR`` before it);
* ``missing``: a required segment the message lacks with nothing standing in for it -- at its end (an ``ORU``
  ending after its ``ORC``, an ADT without ``PV1``) or passed over (an ADT without ``EVN``): named at the
  missing segment.

What each is -- an error that refuses the message (AE 100, kept for replay) or a warning (ERR severity W, the
message accepted) -- is the site's data (``mappings/hl7v2/structure.yaml``), with a per-sender strictness in
``senders.yaml`` ``message_structure``. Z-segments are the sender's own (v2.7.2 2.8.2): allowed anywhere. A
segment id no version defines and a second occurrence of a segment the structure holds once stay
``structure.unexpected_segment``'s (a line cut out of a field), judged before this check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from operator import attrgetter
from typing import Any, NamedTuple, Protocol

from adapters.hl7v2.errors import SEGMENT_SEQUENCE_ERROR, HL7Error
from adapters.hl7v2.parser import Message, Segment
from adapters.hl7v2.structure import of_its_structure

OUTSIDE, ORDER, WITHOUT, MISSING = "outside", "order", "without", "missing"
PATIENT = "patient"  # judged's reading of a WITHOUT result after a PID among an order's results
STRICT, STANDARD, LENIENT = "strict", "standard", "lenient"
LEVELS = (STRICT, STANDARD, LENIENT)
DECLARATION = "message_structure"  # the senders.yaml key
ANY = "ANYHL7SEGMENT"  # hl7apy's name for "any segment" in a structure


class SiteTables(Protocol):
    """What the check reads of a site: its tables (``structure``, ``senders``)."""

    tables: Mapping[str, Any]


@dataclass(frozen=True)
class Group:
    """A segment group of the structure: its slots ``[start, end)``, whether it repeats or is required."""

    name: str
    start: int
    end: int
    repeats: bool
    required: bool


@dataclass(frozen=True)
class Slot:
    name: str
    required: bool
    repeats: bool
    groups: tuple[int, ...]  # indices into ``Compiled.groups``, outermost first (0: the message itself)


class Deviation(NamedTuple):  # (a tuple: built per message with a deviation, cheaper than a dataclass)
    kind: str  # OUTSIDE, ORDER, WITHOUT or MISSING
    segment: Segment
    lacking: str = ""  # WITHOUT, MISSING: the required segment the message lacks
    group: str = ""  # WITHOUT, MISSING: the group that requires it; ORDER: the segment it stands after
    alone: bool = False  # WITHOUT: the segment begins its group; MISSING: the message ends after ``segment``
    before: Segment | None = None  # the segment before it in the message (Z-segments passed over)
    count: int = 0  # MISSING: how many of ``lacking`` the message has (the missing one is the next)


# (next slot, deviation kind or "", lacking segment, group, alone): one step of the walk
Step = tuple[int, str, str, str, bool]
_FIRST = frozenset((0,))  # the places after MSH


class Compiled:
    """One message structure as flat slots, with the remembered steps of the walk.

    Two readings of the same slots: ``follow`` is the structure's grammar as HL7 writes it (each slot a
    position, a group's repetition and optionality as a regular expression's; Glushkov's construction), so
    the set of places a message's segments can stand at is known exactly -- a segment is in place whenever
    some reading of the message so far holds it (an ``ORC`` that may begin a new order or a prior result's
    order, decided by the ``TQ1`` that follows it). The greedy ``step`` (one place, as HAPI places segments)
    only says *what* is wrong once no reading holds a segment."""

    def __init__(self, version: str, structure: str, slots: list[Slot], groups: list[Group],
                 open_: bool = False, follow: list[frozenset[int]] | None = None,
                 accepting: frozenset[int] = frozenset()) -> None:
        self.version, self.structure = version, structure
        self.slots, self.groups = slots, groups
        self.names = frozenset(s.name for s in slots)
        self.open = open_  # the structure admits any segment somewhere: none is outside it
        self.steps: dict[tuple[int, str], Step] = {}
        self.shapes: dict[tuple[str, ...], tuple[Step, ...]] = {}
        # (slot -> segment id -> the slots it may stand at next); None: no grammar (an open structure)
        self.follow: list[dict[str, frozenset[int]]] | None = None if follow is None else [
            {name: frozenset(k for k in after if slots[k].name == name) for name in {slots[k].name for k in after}}
            for after in follow]
        self.accepting = accepting  # the slots a complete message may end at
        self.advances: dict[tuple[frozenset[int], int, str], tuple[frozenset[int], int, Step | None]] = {}

    def walk(self, shape: tuple[str, ...]) -> tuple[Step, ...]:
        """(segment index, kind, lacking, group, alone) of each deviation of a message of segment ids ``shape``;
        () when it is in place or does not begin with the structure's first segment (MSH). A required
        segment missing at the end is a ``MISSING`` step at the last segment's index."""
        if not shape or shape[0] != self.slots[0].name:
            return ()
        out = []
        places, at = _FIRST, 0
        last, slipped = 0, False  # the last segment walked; whether it was out of place (named)
        for i in range(1, len(shape)):
            name = shape[i]
            if name[0] == "Z":
                continue
            if slipped and name == "NTE":  # a note stands with the segment it follows: that one was named
                last = i
                continue
            key = (places, at, name)
            found = self.advances.get(key)
            if found is None:
                found = self.advances[key] = self._advance(places, at, name)
            places, at, dev = found
            # (a note named out of place is no segment whose notes follow: a second NTE is named again)
            last, slipped = i, dev is not None and dev[1] in (OUTSIDE, ORDER) and name != "NTE"
            if dev is not None and not (dev[1] == MISSING and dev[2] in shape[i + 1:]):  # (sent later: its
                out.append((i, *dev[1:]))  # place is named there, out of order)
        if self.follow is not None and not places & self.accepting \
                and not any(dev[1] in (ORDER, WITHOUT) and shape[dev[0]] != "NTE" for dev in out):
            lacking = self._ahead(at)
            if lacking:  # (alone: nothing after it; not after a segment out of place, a note apart: the place is a guess)
                out.append((last, MISSING, lacking[0], lacking[1], True))
        return tuple(out)

    def notes_after(self) -> frozenset[str]:
        """The segments an ``NTE`` may follow in this structure (for the warning of one that may not)."""
        if self.follow is None:
            return frozenset()
        return frozenset(self.slots[q].name for q, after in enumerate(self.follow) if "NTE" in after)

    def _advance(self, places: frozenset[int], at: int, name: str
                 ) -> tuple[frozenset[int], int, Step | None]:
        """(the places after segment ``name``, the greedy place, the deviation or None)."""
        step = self.step(at, name)
        if self.follow is None:
            return places, step[0], (step if step[1] else None)
        follow = self.follow
        after = frozenset(k for q in places for k in follow[q].get(name, ()))
        if after:  # some reading of the message holds it: in place
            return after, (step[0] if step[0] in after else max(after)), None
        nxt, kind = step[0], step[1]
        if name == "NTE" and kind != OUTSIDE:  # a note belongs to the segment before it: named as one that
            return places, at, (at, ORDER, "", self.slots[at].name, False)  # may not have one, nothing begun
        if kind:
            return (places if kind in (OUTSIDE, ORDER) else frozenset((nxt,))), nxt, step
        # the greedy walk places it, passing over a required segment no reading can do without (an ADT's EVN)
        lacking = self._passed(at, nxt)
        if lacking:
            return frozenset((nxt,)), nxt, (nxt, MISSING, lacking[0], lacking[1], False)
        # the greedy walk places it without a word (a PID again, beginning a patient with no order; an ORC
        # before the PID), but no reading of the grammar holds it: out of order; the walk goes on from the
        # greedy place (HAPI's), so what follows is judged from there and one slip draws one warning
        return frozenset((nxt,)), nxt, (nxt, ORDER, "", self.slots[at].name, False)

    def _passed(self, at: int, k: int) -> tuple[str, str] | None:
        """The first required segment between slots ``at`` and ``k`` that a message going there lacks."""
        inside, open_ = self.slots[k].groups, self.slots[at].groups
        for m in range(at + 1, k):
            if self._required_on_way(m, inside, open_):
                return self.slots[m].name, self.groups[self.slots[m].groups[-1]].name
        return None

    def _ahead(self, at: int) -> tuple[str, str] | None:
        """The first required segment after slot ``at`` a message ending there lacks (its group's name)."""
        open_ = self.slots[at].groups
        for m in range(at + 1, len(self.slots)):
            if self._required_on_way(m, open_):
                return self.slots[m].name, self.groups[self.slots[m].groups[-1]].name
        return None

    def step(self, at: int, name: str) -> Step:
        """The ``Step`` for segment ``name`` after slot ``at``."""
        key = (at, name)
        found = self.steps.get(key)
        if found is None:
            found = self.steps[key] = self._step(at, name)
        return found

    def _step(self, at: int, name: str) -> Step:
        if name not in self.names:
            return at, "" if self.open else OUTSIDE, "", "", False
        slots = self.slots
        here = slots[at]
        if here.name == name and here.repeats:
            return at, "", "", "", False
        levels = [(level, self.groups[here.groups[level]]) for level in range(len(here.groups) - 1, -1, -1)]
        # the innermost group first, then outwards: a later slot of the group, else a new repetition of it;
        # first where the segment enters no group or enters each at a required segment (an OBR, a PID: a
        # new order, a new patient), then where it enters one at an optional first segment (an ORC)
        for strong in (True, False):
            for level, group in levels:
                for k in range(at + 1, group.end):
                    if slots[k].name == name and self._enters(k, here.groups, strong):
                        return self._judged(at, k, here.groups)
                if group.repeats:
                    outer = here.groups[:level]
                    for k in range(group.start, at + 1):
                        if slots[k].name == name and self._enters(k, outer, strong):
                            return self._judged(at, k, outer, restart=group)
        for k in range(at + 1, len(slots)):  # placed where it can stand, but one group lacks what comes first
            if slots[k].name == name:
                lacking = [g for g in slots[k].groups if g not in here.groups and self._lacking(g, k)]
                if len(lacking) == 1:  # (an OBX in ORU_R01 with no OBR; not a TQ1 in a prior result's order)
                    return self._judged(at, k, here.groups)
        for level, group in levels:  # a repetition of its group lacking only what begins it (a 2nd RXA, no ORC)
            if group.repeats:
                for k in range(group.start, at + 1):
                    if slots[k].name == name and slots[k].groups[-1] == here.groups[level] \
                            and self._enters(k, here.groups[:level + 1], False):
                        return self._judged(at, k, here.groups[:level], restart=group)
        return at, ORDER, "", here.name, False

    def under(self, name: str, lacking: str) -> bool:
        """Whether the structure holds ``name`` in a group that ``lacking`` (required) begins before it: an
        ``OBX`` of ``ORU_R01`` under its ``OBR``, not an ``ADT_A01``'s OBX (the message's own)."""
        return any(slot.name == name and any(self._lacking(g, k) == lacking for g in slot.groups if g)
                   for k, slot in enumerate(self.slots))

    def _enters(self, k: int, open_groups: tuple[int, ...], strong: bool) -> bool:
        """Whether slot ``k`` begins each group it is in that is not open yet (nothing required before it
        there); ``strong``: and it is itself required when it enters one (an anchor, not an optional lead)."""
        entered = [g for g in self.slots[k].groups if g not in open_groups]
        if strong and entered and not self.slots[k].required:
            return False
        return not any(self._lacking(g, k) for g in entered)

    def _lacking(self, g: int, k: int) -> str:
        """The first required segment of group ``g`` before slot ``k`` on the way to it; "" when none."""
        inside = self.slots[k].groups
        for m in range(self.groups[g].start, k):
            if self._required_on_way(m, inside):
                return self.slots[m].name
        return ""

    def _required_on_way(self, m: int, inside: tuple[int, ...], also: tuple[int, ...] = ()) -> bool:
        slot = self.slots[m]
        return slot.required and all(self.groups[g].required for g in slot.groups if g not in inside and g not in also)

    def _judged(self, at: int, k: int, open_groups: tuple[int, ...], restart: Group | None = None) -> Step:
        """The step to ``k``, a WITHOUT deviation when a required segment of a group (not the message's
        own level: a missing top-level segment is no question of order) is passed over on the way."""
        inside = self.slots[k].groups
        first = restart.start if restart is not None else at + 1
        for m in range(first, k):
            if m == at:
                continue
            if self._required_on_way(m, inside, () if restart is not None else open_groups):
                groups = [g for g in self.slots[m].groups if g != 0 and g in inside]
                if groups:
                    alone = restart is not None or groups[-1] not in self.slots[at].groups
                    return k, WITHOUT, self.slots[m].name, self.groups[groups[-1]].name, alone
        return k, "", "", "", False


@lru_cache(maxsize=256)
def compiled(version: str, structure: str) -> Compiled | None:
    """``structure`` of HL7 ``version`` compiled from hl7apy's definition (once per pair); None when
    hl7apy has no such version or the version no such structure."""
    from hl7apy import SUPPORTED_LIBRARIES, load_library

    if version not in SUPPORTED_LIBRARIES:
        return None
    definition = load_library(version).ELEMENTS["Message"].get(structure)
    if definition is None:
        return None
    slots: list[Slot] = []
    groups: list[Group] = [Group(structure, 0, 0, False, True)]
    follow: list[set[int]] = []
    wildcard: list[str] = []

    def walk(node: tuple, path: tuple[int, ...]) -> tuple[set[int], set[int], bool]:
        """Appends ``node``'s slots and groups; (its first slots, its last slots, whether it may be empty)."""
        choice = node[0] == "choice"  # one of its members (ORM_O01's OBR | RQD | RQ1 | RXO | ODS | ODT)
        first: set[int] = set()
        last: set[int] = set()
        empty = not choice  # a sequence of nothing is empty; a choice is empty only if a member may be
        for name, sub, (least, most), tag in node[1]:
            if tag == "GRP":
                index = len(groups)
                groups.append(Group(name, len(slots), 0, most != 1, least >= 1 and not choice))
                f, la, e = walk(sub, (*path, index))
                groups[index] = Group(name, groups[index].start, len(slots), most != 1, least >= 1 and not choice)
            elif name == ANY:
                wildcard.append(name)  # "any HL7 segment" (v2.6 PPR_PC1's order detail): nothing is outside
                continue
            else:
                k = len(slots)
                slots.append(Slot(name, least >= 1 and not choice, most != 1, path))
                follow.append(set())
                f, la, e = {k}, {k}, False
            if most != 1:  # repeats: after its last slots, its first again
                for q in la:
                    follow[q] |= f
            e = e or least == 0
            if choice:
                first |= f
                last |= la
                empty = empty or e
                continue
            for q in last:  # a sequence: after what may end so far, this member's first slots
                follow[q] |= f
            if empty:
                first |= f
            last = la | last if e else set(la)
            empty = empty and e
        return first, last, empty

    first, last, _ = walk(definition, (0,))
    groups[0] = Group(structure, 0, len(slots), False, True)
    open_ = bool(wildcard)
    return Compiled(version, structure, slots, groups, open_=open_,
                    follow=None if open_ else [frozenset(f) for f in follow], accepting=frozenset(last))


def deviations(message: Message) -> list[Deviation]:
    """Every segment of ``message`` out of its message structure's place (Z-segments never are); [] when
    the version or structure is unknown to hl7apy (nothing to check against)."""
    found = of_its_structure(message, _COMPILED, compiled)
    if found is None:
        return []
    segments = message.segments
    shape = tuple(map(_NAME, segments))  # (C-level: the message's ids; a feed sends a few shapes)
    walked = found.shapes.get(shape)
    if walked is None:
        walked = found.walk(shape)
        if len(shape) <= _REMEMBERED_LENGTH:  # (bounded: a lab's result shapes differ by their OBX counts)
            if len(found.shapes) > 1024:
                found.shapes.clear()
            found.shapes[shape] = walked
    return [_deviation(message, i, kind, lacking, group, alone) for i, kind, lacking, group, alone in walked] \
        if walked else []


def _deviation(message: Message, i: int, kind: str, lacking: str, group: str, alone: bool) -> Deviation:
    segments = message.segments
    if kind == MISSING:
        return Deviation(kind, segments[i], lacking, group, alone, None, len(message.by_name.get(lacking, ())))
    before = None
    if kind == ORDER or kind == OUTSIDE and segments[i].name == "NTE":  # (named in the text)
        before = next((segments[j] for j in range(i - 1, -1, -1) if segments[j].name[0] != "Z"), None)
    return Deviation(kind, segments[i], lacking, group, alone, before)


_NAME = attrgetter("name")
_REMEMBERED_LENGTH = 256  # a longer message is walked each time (its steps still remembered): no shape kept
_COMPILED: dict[tuple[str, str], Compiled | None] = {}


def strictness(site: SiteTables, institution: str, application: str) -> str:
    """The sender's level (``senders.yaml`` ``message_structure``: institution -> level, or a map of its
    sending applications (MSH-3.1) to levels, ``"*"`` for the rest); ``standard`` when not declared."""
    table = (site.tables.get("senders") or {}).get(DECLARATION) or {}
    entry = table.get(institution)
    if isinstance(entry, dict):
        entry = entry.get(application.strip(), entry.get("*"))
    return str(entry).strip().lower() if entry else STANDARD


class OrderReading(Protocol):
    """How the converter reads a message's results into orders: the positions of the results it has no
    order (ORC/OBR) for (``adapters.convert.results.orderless``, the one owner of that reading)."""

    def __call__(self, message: Message) -> frozenset[int]: ...


def judged(message: Message, site: SiteTables, institution: str, application: str, *, orderless: OrderReading
           ) -> tuple[HL7Error | None, list[HL7Error]]:
    """(the refusal, or None; the warnings) for ``message``'s deviations under the site's rules and the
    sender's strictness: ``strict`` refuses every deviation, ``lenient`` none (each is a warning),
    ``standard`` a ``without`` deviation of a segment ``structure.yaml`` ``refuse_without`` names -- an
    ``OBX`` lacking its ``OBR`` -- that ``orderless`` (the converter's reading) has no order for: only
    there does the deviation change what is stored. Where the walk's place and the converter's reading
    differ (a PID repeated between results starts a new patient group in the structure; an OBX after a bare
    ORC, in ORU and OML alike), the converter attaches the result to the order before it: warned."""
    found = deviations(message)
    if not found:
        return None, []
    rules = site.tables.get("structure") or {}
    compiled_for = of_its_structure(message, _COMPILED, compiled)  # (read above: a look-up)
    version, structure = message.msh.version, compiled_for.structure if compiled_for else ""
    if structure in (rules.get("unchecked") or ()):  # (RSP_K11: the query profile's segment pattern)
        return None, []
    level = strictness(site, institution, application)
    refuse = rules.get("refuse_without") or {}
    warnings: list[HL7Error] = []
    unordered: frozenset[int] | None = None  # read once, and only for a message with such a deviation
    for dev in found:
        orphan: bool | None = None  # None: not a deviation the rules refuse
        lacking = refuse.get(dev.segment.name)  # (None for most: nothing more asked)
        if lacking and (dev.lacking in lacking if dev.kind == WITHOUT else dev.kind == ORDER
                        and compiled_for is not None and any(compiled_for.under(dev.segment.name, x) for x in lacking)):
            if unordered is None:
                unordered = orderless(message)
            orphan = dev.segment.position in unordered
        if orphan is False and dev.kind == WITHOUT and dev.alone:
            dev = _patient_between(message, dev)
        err = _error(dev, version, structure, orphan, compiled_for)
        if level == STRICT or (level != LENIENT and orphan):
            err.ack_code, err.severity = "AE", "E"
            err.message += ("; refused (nothing of the message is stored; it is kept for replay once the sender "
                            "places it)")
            return err, warnings
        warnings.append(err)
    return None, warnings


def _patient_between(message: Message, dev: Deviation) -> Deviation:
    """``dev`` (a result the converter reads with the order before it, though the walk began a new group at
    it) named at its cause when that is a ``PID`` standing between the order's ``dev.lacking`` (OBR) and it
    -- a LIS repeating the patient, or sending it after the order header: the PID is what is out of place
    (``PATIENT``, ``before`` the order's segment, ``group`` the result's id)."""
    segments = message.segments
    pid, results = None, False
    for j in range(dev.segment.position - 1, -1, -1):
        name = segments[j].name
        if name == "PID" and pid is None:
            pid = segments[j]
        elif name == dev.segment.name and pid is not None:
            results = True  # (alone: the PID stands among the order's results, not right after its header)
        elif name in (dev.lacking, "ORC"):
            if pid is None:
                return dev
            return Deviation(PATIENT, pid, dev.lacking, dev.segment.name, results, segments[j])
    return dev


def _error(dev: Deviation, version: str, structure: str, orphan: bool | None,
           found: Compiled | None = None) -> HL7Error:
    """The ERR of ``dev``; ``orphan``: whether the converter has no order for a segment the rules refuse
    without one (True: the refusal's reason; False: it is read with the order before it), None for others."""
    seg = dev.segment
    where = f"message structure {structure} of HL7 {version}"
    before = _named(dev.before) if dev.before is not None else "MSH"
    if dev.kind == MISSING:  # located at the segment that should be there (its next occurrence)
        if dev.alone:
            text = (f"{dev.lacking} is missing: {where} requires it in {dev.group} after {_named(seg)}, "
                    "and the message ends there")
        else:
            text = f"{dev.lacking} is missing: {where} requires it in {dev.group} before {_named(seg)}"
        return HL7Error(text, segment=dev.lacking, sequence=dev.count + 1, code=SEGMENT_SEQUENCE_ERROR,
                        severity="W", ack_code="AA")
    if seg.name == "NTE" and dev.kind in (OUTSIDE, ORDER):  # a note belongs to the segment it follows
        allowed = sorted(found.notes_after()) if found is not None else []
        text = (f"NTE (a note) follows {before}, where {where} holds no note"
                + (f" (NTE may follow {', '.join(allowed)})" if allowed else " (it holds none anywhere)"))
    elif dev.kind == OUTSIDE:
        text = f"{seg.name} is not a segment of {where}: taken as sent, outside the structure"
    elif dev.kind == ORDER:
        text = (f"{seg.name} stands after {before}, out of the order of {where}"
                + (": with no ORC or OBR before it, it cannot be attached to an order" if orphan else ""))
    elif dev.kind == PATIENT:  # a PID among an order's results: the walk's new patient, the converter's order
        text = (f"{_named(seg)} stands " + (f"among the results of {_named(dev.before)}" if dev.alone else
                                             f"after {_named(dev.before)}, before its results")
                + f": {where} begins a new patient "
                f"group at a PID, leaving the {dev.group} after it with no {dev.lacking}; read as the same "
                f"patient's, its results as the order's (ORC/{dev.lacking}) before it")
    elif dev.alone and orphan is False:  # the walk's new group, the converter's order before it
        text = (f"{seg.name} stands where {where} begins a new group {dev.group} with no {dev.lacking} in it; "
                f"read as belonging to the order (ORC/{dev.lacking}) before it")
    elif dev.alone:
        text = (f"{seg.name} has no {dev.lacking} (nor any segment of its group {dev.group}) before it in {where}"
                + (": it cannot be attached to an order" if orphan else ""))
    else:
        text = f"{seg.name} has no {dev.lacking} before it in its group {dev.group} of {where}"
    return HL7Error(text, segment=seg.name, sequence=seg.sequence, code=SEGMENT_SEQUENCE_ERROR,
                    severity="W", ack_code="AA")


def _named(seg: Segment) -> str:
    """``PID`` for a message's only PID, ``PID #2`` for its second: ERR-8 text (a ``^`` there is escaped)."""
    return f"{seg.name} #{seg.sequence}" if seg.sequence > 1 else seg.name
