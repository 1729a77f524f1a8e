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
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from adapters.hl7v2.errors import (
    DATA_TYPE_ERROR,
    SEGMENT_SEQUENCE_ERROR,
    UNSUPPORTED_VERSION_ID,
    HL7Error,
)
from adapters.hl7v2.parser import Message

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
