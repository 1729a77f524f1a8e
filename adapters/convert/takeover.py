"""The HIS's admission taking over a lab's placeholder visit (thirty-third round, visit33).

Results before the admission: a LIS result names the patient by the LIS's own number (PID-3
``L-77^^^LIS^PI``) under the HIS's visit number (PV1-19) and carries a thin Encounter, written only
because none was stored. The HIS's admission then names its own record under that number, and the
merge rule ``another_person`` (one visit number, two patients) refused it at PV1-19: the HIS could
never admit its patient. The admission is the visit's owner speaking -- the visit number is the
HIS's -- and what it admits over is no one's statement of the visit but the lab's stand-in.

When it is such a stand-in is decided here, from the store, before anything is written; the merge
(``MergeRules._another_person``, ``Said.taken_from``) then files the visit under the patient the
admission names. ALL of these must hold (a wrong take-over files a stay, its diagnoses and charges
under another person: rvwriter31; a refusal leaves the message for the operator's replay):

- the message registers a person (ADT A01/A04/A05: ``Conversion.registers``) and states the visit
  (not written only when absent);
- the stored visit's subject is a *placeholder*: a record of the same institution keyed ONLY by
  another assigning authority's number (every identifier under ``urn:huren:mrn:<institution>:<authority>``,
  ``common.authority_of`` -- no MRN of the institution, no ID number, no other member's MRN:
  identity32), and no registration has spoken for it (``persons.unregistered``: every message
  naming it was read, filed, and none registers a person);
- no ADT message ever named the visit (its Provenances, every one read: a visit an ADT stated is
  the HIS's own, and another patient under its number is a reused number);
- the person guard does not call them two people (``demographics.contradicts_all`` of the two
  Patients: name and sex, and birth date when both state one);
- nothing of the batch before this message names the visit or the placeholder (the store would not
  be what the merge finds: refused as before, never guessed).

The merge asks two more things it alone sees: the stored visit's current version was written by a
message (its writer mark: not a FHIR client, not "not known"), and the patient index does not know
the two records for two persons (``Persons.known_apart``).

What is left as it was: the placeholder keeps its identifiers and the results the LIS filed keep
naming it (what the LIS stated; ``Observation.subject`` is the lab's patient, the visit is where
it was made): saying the LIS's record IS the HIS's person is the patient index's and the
operator's (``$link``), not a guess from a shared visit number."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from adapters.convert.persons import unregistered
from engine.identity.demographics import contradicts_all
from engine.merge_rules import Said
from mappings.site import urn_part

# the message family that owns visits: a visit any message of it named is the HIS's statement
_OWNER = "ADT"


def settle_takeover(conversion: Any, read_many: Any, search: Any, messages: Any,
                    earlier: Sequence[Any] = ()) -> None:
    """Mark (``Said.taken_from``) each visit this registration states whose stored version is a
    lab's placeholder under another patient record (the module's rules), for the merge to take
    over. Marks nothing when any rule does not hold: ``another_person`` then refuses as before."""
    if not conversion.registers or search is None or messages is None:
        return
    wanted: dict[str, str] = {}  # Encounter ref -> the Patient ref this message names
    for ref, resource in conversion.by_reference.items():
        if not ref.startswith("Encounter/") or ref in conversion.create_only:
            continue
        subject = (resource.get("subject") or {}).get("reference")
        if isinstance(subject, str) and subject.startswith("Patient/") and subject in conversion.by_reference:
            wanted[ref] = subject
    if not wanted:
        return
    visits = read_many([tuple(ref.split("/", 1)) for ref in wanted])
    held: dict[str, str] = {}  # Encounter ref -> the stored subject, another record
    for ref, subject in wanted.items():
        stored = visits.get(tuple(ref.split("/", 1)))
        mine = ((stored or {}).get("subject") or {}).get("reference")
        if isinstance(mine, str) and mine.startswith("Patient/") and mine != subject:
            held[ref] = mine
    if not held:
        return
    named = {ref for c in earlier for ref in c.by_reference}
    patients = read_many([tuple(ref.split("/", 1)) for ref in set(held.values())])
    prefix = f"urn:huren:mrn:{urn_part(conversion.institution)}:"
    for ref, mine in held.items():
        placeholder = patients.get(tuple(mine.split("/", 1)))
        if (placeholder is None or ref in named or mine in named
                or not _keyed_apart_only(placeholder, prefix)
                or contradicts_all(placeholder, conversion.by_reference[wanted[ref]])
                or not _no_owner_named(ref, search)
                or not unregistered(mine, search, messages)):
            continue
        said = conversion.said.get(ref) or Said()
        conversion.said[ref] = replace(said, taken_from=(*said.taken_from, ("subject", mine)))


def _keyed_apart_only(patient: dict[str, Any], prefix: str) -> bool:
    """Every identifier of the record is a number another authority of this institution assigned
    (``urn:huren:mrn:<institution>:<authority>``): no MRN of the institution, no ID number, no other
    member's MRN, nothing else that could key it."""
    identifiers = patient.get("identifier") or []
    return bool(identifiers) and all(str(i.get("system") or "").startswith(prefix) and len(
        str(i.get("system"))) > len(prefix) for i in identifiers)


def _no_owner_named(visit: str, search: Any) -> bool:
    """Every Provenance naming the visit was read (one page) and none is of the owner's family: no
    ADT ever stated the visit. A page with more: cannot be told, not a placeholder."""
    page = search("Provenance", [("target", visit), ("_count", "100")])
    if page.has_next or not page.resources:
        return False
    for prov in page.resources:
        kind = str((prov.get("activity") or {}).get("text") or "")
        if not kind or kind.partition("^")[0] == _OWNER:
            return False
    return True
