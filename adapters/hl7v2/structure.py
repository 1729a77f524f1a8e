"""Validate a message against the structure of its own HL7 version, using hl7apy's definitions.

Why hl7apy here and not in ``parser``: its message/segment/data-type tables for 2.1-2.8.2 are the
most complete in Python, but building its object tree costs tens of milliseconds per message. So
this runs on demand (operators checking a new feed, tests, the quarantine view), never on the
ingest hot path. hl7apy stops at the first error; we ask it for its full report instead, so the
caller sees every problem at once.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import yaml

from adapters.hl7v2.errors import (
    DATA_TYPE_ERROR,
    SEGMENT_SEQUENCE_ERROR,
    UNSUPPORTED_VERSION_ID,
    HL7Error,
)
from adapters.hl7v2.parser import Message, Segment
from adapters.hl7v2.tables import allowed_structure

_EVENT_STRUCTURES = Path(__file__).resolve().parents[2] / "mappings" / "hl7v2" / "event_structures.yaml"
_EXTRA_COMPONENT = re.compile(r"Datatype None is not correct for (\S+) \(it must be None\)")
_SEGMENT_REF = re.compile(r"<Segment ([A-Z0-9]{3})>|\b([A-Z][A-Z0-9]{2})_(\d+)\b|\b([A-Z][A-Z0-9]{2})\.")


@dataclass
class StructureReport:
    """Outcome of a structure check: ``errors`` break the version's rules, ``warnings`` are advisory."""

    version: str
    structure: str
    errors: list[HL7Error] = field(default_factory=list)
    warnings: list[HL7Error] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def supported_versions() -> list[str]:
    from hl7apy import SUPPORTED_LIBRARIES

    return sorted(SUPPORTED_LIBRARIES)


@lru_cache(maxsize=1)
def event_structures() -> dict[str, str]:
    """HL7 table 0354 (trigger event → message structure), shipped as data."""
    with open(_EVENT_STRUCTURES, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def to_er7(message: Message) -> str:
    """The message re-serialised for hl7apy: CR separators, four encoding characters (hl7apy does
    not know the v2.7 truncation character) and MSH-9.3 filled in from table 0354 when absent."""
    lines = []
    for seg in message.segments:
        fields = seg.fields
        if seg.name == "MSH":
            fields = list(fields)
            enc = seg.enc
            fields[2] = fields[2][:4]
            msh = message.msh
            if len(fields) > 9 and not msh.value(9, comp=3) and msh.trigger_event:
                structure = event_structures().get(f"{msh.message_type}_{msh.trigger_event}")
                if structure:
                    parts = fields[9].split(enc.component)[:2]
                    fields[9] = enc.component.join([*parts, structure])
            lines.append(seg.enc.field.join([fields[0], *fields[2:]]))
        else:
            lines.append(seg.enc.field.join(fields))
    return "\r".join(lines)


def validate_structure(message: Message) -> StructureReport:
    """Check segment order/cardinality, fields and data types against MSH-12's version."""
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.exceptions import HL7apyException
    from hl7apy.parser import parse_message
    from hl7apy.validation import Validator

    msh = message.msh
    version = msh.version
    report = StructureReport(version=version, structure=msh.structure)
    if version not in supported_versions():
        report.errors.append(
            HL7Error(
                f"HL7 version {version!r} is not known to hl7apy ({', '.join(supported_versions())})",
                segment="MSH",
                sequence=1,
                field=12,
                code=UNSUPPORTED_VERSION_ID,
            )
        )
        return report
    try:
        parsed = parse_message(to_er7(message), validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=True)
    except HL7apyException as exc:
        report.errors.append(
            HL7Error(f"hl7apy could not parse the message: {exc}", code=SEGMENT_SEQUENCE_ERROR)
        )
        return report
    fd, path = tempfile.mkstemp(prefix="huren-hl7-structure-", suffix=".txt")
    os.close(fd)
    try:
        try:
            Validator.validate(parsed, report_file=path)
        except HL7apyException:
            pass  # every error is in the report file
        except Exception as exc:  # hl7apy raises plain errors on some malformed trees
            report.errors.append(HL7Error(f"hl7apy validation failed: {exc!r}", code=SEGMENT_SEQUENCE_ERROR))
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    finally:
        os.unlink(path)
    for line in lines:
        kind, _, text = line.partition(": ")
        extra = _EXTRA_COMPONENT.match(text)
        if extra:
            text = f"{extra.group(1)}: element not defined by HL7 {version} for this field/data type"
        err = HL7Error(
            text, segment=_segment_of(text), code=_code_of(text), severity="E" if kind == "Error" else "W"
        )
        (report.errors if kind == "Error" else report.warnings).append(err)
    return report


def _segment_of(text: str) -> str:
    m = _SEGMENT_REF.search(text)
    if not m:
        return ""
    return m.group(1) or m.group(2) or m.group(4) or ""


def _code_of(text: str) -> str:
    if text.startswith(("Missing required", "Child limit", "Invalid children", "Unknown element")):
        return SEGMENT_SEQUENCE_ERROR
    return DATA_TYPE_ERROR


# --- the segments a message's structure holds (on the ingest path: cheap) --------------------------------

@dataclass(frozen=True)
class SegmentRules:
    """What HL7 ``version`` allows in message structure ``structure``: the segment ids HL7 defines in any
    version (``known``: senders use segments of later versions, ``PRT`` in a 2.5.1 ``OML``), and those the
    structure holds at most once (``once``: a segment of cardinality 1 in no repeating group; empty when
    the structure is not one of the version's)."""

    version: str
    structure: str  # "" when the message's structure is unknown to the version
    known: frozenset[str]
    once: frozenset[str]


@lru_cache(maxsize=1)
def known_segments() -> frozenset[str]:
    """Every segment id HL7 v2.1 to v2.8.2 defines (hl7apy's tables, read once)."""
    from hl7apy import SUPPORTED_LIBRARIES, load_library

    return frozenset(name for version in SUPPORTED_LIBRARIES for name in load_library(version).ELEMENTS["Segment"])


@lru_cache(maxsize=256)
def segment_rules(version: str, structure: str) -> SegmentRules | None:
    """``SegmentRules`` of ``structure`` in ``version`` from hl7apy's definitions (read once per pair;
    ~25 ms a version's library the first time); None when hl7apy has no such version."""
    from hl7apy import SUPPORTED_LIBRARIES, load_library

    if version not in SUPPORTED_LIBRARIES:
        return None
    definition = load_library(version).ELEMENTS["Message"].get(structure)
    if definition is None:
        return SegmentRules(version, "", known_segments(), frozenset())
    counts: dict[str, int] = {}

    def walk(node: tuple, repeated: bool) -> None:
        for name, sub, (_, most), tag in node[1]:
            many = repeated or most != 1
            if tag == "GRP":
                walk(sub, many)
            else:
                counts[name] = counts.get(name, 0) + (2 if many else 1)  # twice in the structure: may repeat

    walk(definition, False)
    return SegmentRules(version, structure, known_segments(),
                        frozenset(n for n, c in counts.items() if c == 1 and n not in _JUDGED_ELSEWHERE))


# a later PID is ``adapters.convert.common.one_patient``'s to judge (one owner): the same patient repeated, as
# a LIS repeats its PID, is converted; another patient is AE 100 at that PID
_JUDGED_ELSEWHERE = frozenset({"PID"})


def message_structure(message: Message, version: str) -> str:
    """The message structure ``message`` is read with: MSH-9.3 when it is one of the version's and a
    structure of the event (``tables.allowed_structure``, as ``header.structure_warning`` judges it: an
    ``ADT^A04^ORU_R01`` is warned and read as ``ADT_A01``, so it is checked as one; hl7struct31), else
    table 0354's for MSH-9.1/MSH-9.2 (``ADT^A04`` -> ``ADT_A01``), else ``TYPE_EVENT``."""
    msh = message.msh
    explicit = msh.value(9, comp=3)
    event = f"{msh.message_type}_{msh.trigger_event}"
    expected = event_structures().get(event)
    if explicit and (explicit == event or (rules := segment_rules(version, explicit)) is None or rules.structure) \
            and (expected is None or allowed_structure(version, msh.message_type, msh.trigger_event, explicit,
                                                       expected)):
        return explicit
    return expected or event


def unexpected_segment(message: Message) -> HL7Error | None:
    """The first segment HL7 does not allow where the message has it, as an ``AE`` 100 (segment sequence
    error) naming it; None when there is none (or the version is unknown to hl7apy).

    Why (tidy29's finding, twenty-ninth round, hl7fix29): a raw line break inside a field (OBX-5 of a
    document) leaves a line that the parser reads as a segment when it starts with three capitals or
    digits (``HIV||||||F``); the converter dropped it as an "unmapped segment" with a fidelity warning,
    and the message was answered AA with its text stored cut. A client told "stored" must have had
    everything stored. So a line that is no segment at all -- an id no HL7 version defines -- or a
    second occurrence of a segment the message's structure holds once (a second ``TXA`` in an
    ``MDM_T02``; a second ``PID`` is ``convert.common.one_patient``'s, which refuses another patient's)
    refuses the message, kept for replay, nothing stored. Z-segments are the sender's own (2.7.2): allowed anywhere. Not refused: a segment HL7
    defines that the structure does not hold (``PRB`` in ``ADT_A01``, ``PRT`` in a 2.5.1 ``OML``: 11 of
    the 121 public samples send one, and the converter reads most of them), nor one out of order: those
    are ``sequence.judged``'s (thirty-first round), which runs after this and warns or refuses by the
    site's rules; a line that reads as a segment the structure repeats there (an ``OBX``) is found by
    neither."""
    rules = of_its_structure(message, _RULES, segment_rules)
    if rules is None:
        return None
    known, once = rules.known, rules.once
    # each id once first (the message's ids with their segments, ~8 for a 17-segment lab result); the line
    # to name is then found in order
    for name, segs in message.by_name.items():
        if (name not in known and name[0] != "Z") or (len(segs) > 1 and name in once):
            break
    else:
        return None
    for seg in message.segments:
        name = seg.name
        if name[0] == "Z":
            continue
        if name not in known:
            return _unexpected(seg, "is no segment HL7 defines (nor a Z-segment)")
        if seg.sequence == 2 and name in once:
            return _unexpected(seg, f"occurs a second time; message structure {rules.structure} in HL7 "
                                    f"{rules.version} holds one")
    return None


# (MSH-12, MSH-9 as sent) -> the rules read for them: one dict look-up a message
_UNREAD: Any = object()
_RULES: dict[tuple[str, str], SegmentRules | None] = {}
T = TypeVar("T")


def of_its_structure(message: Message, cache: dict[tuple[str, str], T | None],
                     build: Callable[[str, str], T | None]) -> T | None:
    """What ``build(version, structure)`` makes of ``message``'s version and message structure, kept in
    ``cache`` by MSH-12 and MSH-9 as sent: one dictionary look-up a message after the first of its kind."""
    fields = message.msh.fields
    key = (fields[12] if len(fields) > 12 else "", fields[9] if len(fields) > 9 else "")
    found = cache.get(key, _UNREAD)
    if found is _UNREAD:
        if len(cache) > 4096:  # (bounded: senders send a few types and versions)
            cache.clear()
        version = message.msh.version or "2.5.1"
        found = cache[key] = build(version, message_structure(message, version))
    return found


def _unexpected(seg: Segment, why: str) -> HL7Error:
    return HL7Error(
        f"line {seg.position + 1} ({seg.name!r}) {why}: a line break inside a field of the segment before it? "
        "send it escaped (\\.br\\); the message is kept for the operator and nothing of it is stored",
        segment=seg.name, sequence=seg.sequence, code=SEGMENT_SEQUENCE_ERROR, ack_code="AE")
