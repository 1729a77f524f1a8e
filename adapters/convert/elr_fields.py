"""The ELR fields of an OBX no field rule of ``obx_observation.yaml`` can state, and the count of those no rule reads.

OBX-25 (performing organisation medical director, XCN) is, in the v2-to-FHIR IG's "Segment OBX to Observation"
map, ``Observation.performer`` a PractitionerRole: its practitioner the director, its organization the
performing organisation, its code MDIR (HL7 table 0912). It is made here and not by a field rule because the
role's organisation is the result's performer (``results.result_performer``: OBX-23's organisation, else the
sender), which no single field gives. Whose result recognition sees does not change: recognition reads a result's
institution from the performer references carrying an institution identifier (``engine.recognition.facts.
performer_institutions``) and then from Organization references; a PractitionerRole reference is neither. And
in the merge (``merge.yaml`` Observation.performer, by-key on ``@type``) it is a kind of its own: a correction
naming only the OBX-16 observer keeps the director, and OBX-16 "" (which deletes the Practitioner observers)
keeps it too.

OBX fields no rule reads (``obx_observation.yaml`` ``unread``: the probability, the nature of the abnormal test,
the producer's id, the mood code, OBX-24's address of the performing organisation...) are counted, when valued,
in the fidelity report (``/admin/fidelity``, kind ``field``): a field a sender fills and huren drops is seen by
the operator, not lost without a word (review rv42b MED 4; forty-second round, fam42). So are the IPC fields
``pacs`` does not read (``ipc_imaging.yaml``: the requested procedure id, the scheduled procedure step...).
"""

from __future__ import annotations

from typing import Any

from adapters.convert.actors import practitioner
from adapters.convert.by_identity import ByIdentity
from adapters.convert.context import Context
from adapters.convert.tables import table
from adapters.hl7v2.parser import Segment

V2_0912 = "http://terminology.hl7.org/CodeSystem/v2-0912"
MEDICAL_DIRECTOR = {"coding": [{"system": V2_0912, "code": "MDIR", "display": "Medical Director"}]}


# OBX-25 "" (HL7 v2 2.5.3's explicit null: the director deleted) takes off the stored performers of this kind -- the
# director's PractitionerRole and nothing else: OBX-16's observers and PRT's participants are Practitioners,
# OBX-23's lab and the sender Organizations (``merge.yaml`` Observation.performer, by-key on ``@type``)
_DIRECTOR_KIND = (("@type", ("PractitionerRole",)),)


def director(obx: Segment, ctx: Context, performer: dict[str, Any],
             res: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """OBX-25 → a reference to the PractitionerRole MDIR of the director at ``performer`` (the result's
    performing organisation); None when OBX-25 names nobody. OBX-25 sent as ``""`` deletes the stored director
    from the Observation ``res`` (as OBX-16 ``""`` its observers): a correction by which the LIS takes the
    director back had been read as one not stating OBX-25, and the result went on naming him (review rv42d LOW 5;
    forty-second round, omi42)."""
    fields = obx.fields
    if len(fields) <= 25 or not fields[25]:
        return None
    if fields[25] == '""':
        # (a compiled plan asks without its result, and only for a director named: the delete its first conversion
        # said here it says again of each result it makes -- ``plans.Plan.deletes``, plan43; rv43a LOW 2)
        if res is not None:
            ctx.delete(res, "performer", _DIRECTOR_KIND)
        return None
    person = practitioner(obx.rep(25), ctx)
    if person is None:
        return None
    role: dict[str, Any] = {"resourceType": "PractitionerRole", "active": True,
                            "practitioner": dict(person), "code": [MEDICAL_DIRECTOR]}
    at = performer.get("reference")
    if at:
        role["organization"] = {"reference": at, **({"display": performer["display"]} if performer.get("display")
                                                    else {})}
    ref = ctx.put(role, f"MDIR|{person['reference']}|{at or ''}")
    out: dict[str, Any] = {"reference": ref["reference"]}
    if person.get("display"):
        out["display"] = person["display"]
    return out


def note_unread(seg: Segment, ctx: Context, name: str) -> None:
    """Count each valued field of ``seg`` the site's table ``name`` lists as ``unread`` (``obx_observation``,
    ``ipc_imaging``, ``rxg_medicationdispense``) in the fidelity report: kind ``field``, code ``<SEG>-<n>``; and
    each field a rule of the table reads one repetition of (no rule on it ``repeats``) whose later repetitions
    hold a value: code ``<SEG>-<n>(2)`` -- OBX-18's second analyser (Observation.device is 0..1) had been dropped
    without a count (fam42, rv42d LOW; forty-third round, acsn43). A compiled plan reports what its first
    conversion noted again, and OBX-18's text is part of a plan's description: a planned result counts the same."""
    spec = table(ctx.site, name)
    fields = seg.fields
    for n in spec.get("unread") or ():
        n = int(n)
        if len(fields) > n and fields[n] and fields[n] != '""':
            ctx.note_unmapped("field", f"{seg.name}-{n}")
    repetition = seg.enc.repetition
    for n in _read_once(spec):
        if len(fields) > n and repetition in fields[n] \
                and any(r.strip() and r != '""' for r in fields[n].split(repetition)[1:]):
            ctx.note_unmapped("field", f"{seg.name}-{n}(2)")


_ONCE: ByIdentity[dict[str, Any], tuple[int, ...]] = ByIdentity(64)


def _read_once(spec: dict[str, Any]) -> tuple[int, ...]:
    """The fields of a table's own segment its rules read one repetition of: each rule on the field reads the
    first (none ``repeats``). Kept per table object (the site's tables are shared read-only, trim42b)."""
    known = _ONCE.get(spec)
    if known is not None:
        return known
    own = spec.get("segment") or spec.get("from")
    by_field: dict[int, bool] = {}
    for rule in spec.get("rules") or ():
        if rule.get("segment", own) == own:
            n = int(rule["field"])
            by_field[n] = by_field.get(n, False) or bool(rule.get("repeats"))
    return _ONCE.put(spec, tuple(sorted(n for n, repeats in by_field.items() if not repeats)))
