"""What a confidentiality label (HL7 v3 ``Confidentiality``: U L M N R V) withholds, and from whom.

A record says how confidential it is in ``meta.security`` (any resource, R4) or, for a document,
``DocumentReference.securityLabel`` (TXA-18 arrives there: a restricted discharge summary). R4
leaves the reading to the server's policy; the v3 definitions give it: ``R`` (restricted) is
"highly sensitive, potentially stigmatizing information" for those with a need to know, ``V``
(very restricted) "extremely sensitive" information, "in some cases" for the subject and the
originator alone. The safe reading here, since huren cannot tell which hospital a record belongs
to (no rule on ``/fhir`` does: see ``ScopedRepository``'s remit) nor who is in its care team:

- a **hospital system** (a ``system`` client without a remit: the institutions' own HIS, which
  send and exchange these records and answer for their use): every record, as sent -- unless
  the client is bound to an institution (``huren client add --institution``: another hospital's
  system, a township clinic's): neither ``R`` nor ``V``, since no rule tells which records are
  that institution's own (its need to know cannot be shown, so it is not assumed);
- a **resident** reading their own record: ``R`` yes (it restricts disclosure to *others*), ``V``
  no -- the originator releases such a note to the person in the clinic;
- a **family member** acting for the resident: neither ``R`` nor ``V`` -- the family grant is a
  general one, not a consent to sensitive information;
- an **auditor** (insurance review: money, not care) and a **staff member** signed in to the
  pages (clinician, operator: their hospital is not the record's as far as huren can tell):
  neither ``R`` nor ``V``.

A withheld record reads exactly like a missing one (404, not in searches, totals, includes,
``_history``, ``vread``, Bundle entries or ``$everything``), and neither can it be written over.
A label in any other system, or an unknown code, withholds nothing.

A record huren builds *from* others carries their label (``carried``): a recognition flag
(``DetectedIssue``) names its prior and repeated results, the institutions, the dates and the
item, so it tells what an R-labelled result would, and is labelled as the most confidential record
it cites (v3: a derived record keeps its sources' "high water mark"). That stored label is kept,
but what holds is decided when the flag is read (``DERIVED``; ``ScopedRepository.admit``): a flag
is shown only when no record it cites, as that record stands now, carries a label withheld from
the caller -- a result labelled after its flag was written, or a flag stored before flags carried
labels, would otherwise still tell what the result does. A ``Provenance`` is decided the same
way (twentieth round, probe20): the one huren writes per HL7 message targets every record the
message wrote, so an MDM^T02's named the V document by id and type, with the message type and
number, to the resident and to a clinician who read that document 404 -- and
``Provenance?target=DocumentReference/<id>`` answered 1 for it, 0 for a made-up id.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engine import fhirjson
from engine.auth.caller import Caller

# R4 names a code system by its canonical URL where one is defined (terminologies.html), so a
# Coding with the OID ``urn:oid:2.16.840.1.113883.5.25`` is not this system's and withholds nothing
SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
# bytes every labelled record carries (a pre-check on stored JSON: a record without them has no
# label); one scan, ~0.6 us on a 1 kB result under load, asked once per match of a search
MARKER = b"Confidentiality"
_BOTH = frozenset({"R", "V"})
_V = frozenset({"V"})  # (the answers are made once: asked for every request's ScopedRepository)
_NONE: frozenset[str] = frozenset()
# types huren builds from other records (a flag from the results it cites, a Provenance from what its
# message wrote), withheld from a caller when a record they cite is; and a DiagnosticReport, built from
# its results, whose ``result`` named a V result to its resident and an R one to a bound client
# (probep25; twenty-fifth round, privmend25)
DERIVED = frozenset({"DetectedIssue", "Provenance"})


def withheld_codes(caller: Caller) -> frozenset[str]:
    """The confidentiality codes whose records ``caller`` is not shown (see module docstring)."""
    if caller.kind == "patient":
        return _BOTH if caller.acting is not None or caller.consent is not None else _V
    if caller.kind == "system" and caller.remit is None and caller.role is None and caller.institution is None:
        return _NONE
    return _BOTH


def withheld_body(caller: Caller, raw: bytes | None) -> bool:
    """Whether a stored record (its JSON bytes; None: no such record) carries a label withheld from
    ``caller`` -- for surfaces that tell of records by reference without reading them for the
    caller (the auditors' duplicate report and deduction lists). The byte pre-check first."""
    codes = withheld_codes(caller)
    if not codes or raw is None or not may_carry(raw):
        return False
    return not codes.isdisjoint(labels(fhirjson.loads(raw)))


def _codings(resource: dict[str, Any]) -> Iterable[Any]:
    meta = resource.get("meta")
    if isinstance(meta, dict) and isinstance(meta.get("security"), list):
        yield from meta["security"]
    if resource.get("resourceType") == "DocumentReference":
        for label in resource.get("securityLabel") or ():
            if isinstance(label, dict):
                yield from label.get("coding") or ()


def labels(resource: dict[str, Any]) -> frozenset[str]:
    """The v3 confidentiality codes ``resource`` carries (``meta.security``, ``securityLabel``)."""
    return frozenset(c["code"] for c in _codings(resource)
                     if isinstance(c, dict) and c.get("system") == SYSTEM and isinstance(c.get("code"), str))


def may_carry(raw: bytes) -> bool:
    """Whether stored bytes can carry a confidentiality label at all (no: none to look for)."""
    return MARKER in raw


def carried(resource: dict[str, Any], sources: Iterable[dict[str, Any] | None]) -> dict[str, Any]:
    """``resource`` (built from ``sources``: a flag from the results and order it cites) labelled
    as the most confidential of them -- ``V`` if any is ``V``, else ``R`` if any is ``R`` -- and
    with no confidentiality label of this system when none is: the label is the sources', given
    again each time ``resource`` is written, so one taken off a source comes off it too. Its
    other security labels are kept. Returns ``resource`` itself when nothing changes."""
    found: set[str] = set()
    for source in sources:
        if source is not None:
            found |= labels(source)
    top = "V" if "V" in found else "R" if "R" in found else None
    meta = resource.get("meta") if isinstance(resource.get("meta"), dict) else {}
    security = meta.get("security") if isinstance(meta.get("security"), list) else []
    others = [c for c in security if not (isinstance(c, dict) and c.get("system") == SYSTEM)]
    wanted = [*others, {"system": SYSTEM, "code": top}] if top else others
    if wanted == security:
        return resource
    meta = {k: v for k, v in meta.items() if k != "security"}
    if wanted:
        meta["security"] = wanted
    out = {k: v for k, v in resource.items() if k != "meta"}
    if meta:
        out["meta"] = meta
    return out
