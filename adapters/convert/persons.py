"""The guard of a message's patient against the record its PID resolved to.

The converter keys a Patient by what PID-3 says (``common.patient_key``); whether the record under
that key is the same person is known only from the store. A message whose PID resolves to a stored
record it names as another person (``demographics.contradicts_all``: the name differing, and the sex, a day of
birth or the valid resident ID numbers too -- ``_TWO_PEOPLE``) names another person under that record's
number -- a record number the HIS gave two people, a
sender's number misread as the institution's -- and its results, orders or visits would be filed
under the stored person, answered AA (lead, thirty-first round). So it is refused: AE, ERR at the
PID's PID-3 (the identifier that resolved to the record), nothing written, the raw message kept for
replay once the sender or an operator has put the identity right.

An ADT A08 (update patient information) or A31 (update person information), v2.5.1 3.3.8 / 3.3.31,
is the registration system restating who its record's person is -- how a wrong registration is
corrected. Only the application that registered the record (MSH-3 of the first received registration
-- A01/A04/A05/A28, never an update -- that huren filed for it, read from the message store: the
store's writer mark names the message type, not the sender), or another of the institution's declared
registration applications (``institutions.yaml`` ``registration_applications``: an HIS and a separate
体检 registration system) when one of them registered it, may restate it as another person: it is
accepted with a warning (ERR W, counted in the operator's fidelity view). From any other
application of the institution (a LIS's A08), or when the registration cannot be told, it is
refused like a result naming another person (rvidentity32 findings 2 and 3; the lead after
rvidfix32: a LIS's A08 had registered a placeholder, a refused message under the same MSH-10 had
been read as the registration, a registration past the first page of Provenances was not seen).
A record no registration has spoken for (a placeholder a result made) may be restated, with the
warning, until one does. Any other event only names the person: it is held against the record.

A number keyed apart under another assigning authority (``common.authority_of``) while the
institution holds a record of the same value under its own MRN is warned of (ERR W at PID-3,
counted in the fidelity view per institution and authority): a site whose HIS writes its own name
in CX-4 sees on day one that its numbers were kept apart, and how to declare the name
(``institutions.yaml`` ``mrn_authorities``; rvidentity32 finding 1)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from copy import deepcopy
from dataclasses import replace
from typing import Any, NamedTuple

from adapters.convert.actors import INSTITUTION_SYSTEM
from adapters.convert.applications import (
    code_declared,
    filed_registrar,
    is_declared,
    listed,
    same_code,
    sends_as,
)
from adapters.convert.engine import json_copy
from adapters.hl7v2.errors import (
    DATA_TYPE_ERROR,
    DUPLICATE_KEY_IDENTIFIER,
    UNKNOWN_KEY_IDENTIFIER,
    HL7Error,
    Tally,
)
from engine.errors import FhirError, NotFound
from engine.identity.demographics import (
    conflicts_between,
    conflicts_with_own_ids,
    contradicts_all,
    demographics,
    id_numbers,
    id_numbers_differ,
    name_of,
    numbers_against_sex,
    same_name,
    sex_disowned,
    to_the_day,
)
from engine.identity.nationalid import CARRIED_FROM_EXT, is_national_id, valid_number
from engine.merge_rules import API, NOT_THE_FEED, Delete, MergeRules, Said, shipped
from engine.messages import PROCESSED, application_of, message_institution, registrar_of, stored_instant
from engine.repository.ids import deterministic_id
from engine.repository.search import token_value

# the advice of a refusal: an identical resend (same MSH-10) is answered from the message store
# (``engine.ingest``), so "send it again" alone cannot work (rvidentity32 finding 6)
_ADVICE = ("If the number is this patient's, have the registering system correct the record (ADT^A08/A31), then "
           "send the message corrected with a new MSH-10, or ask the operator to replay it after correcting the "
           "record; if it is another system's number, send its assigning authority (PID-3.4)")


def check_persons(conversion: Any, read_many: Any, earlier: Sequence[Any] = (), search: Any = None,
                  messages: Any = None, merge: MergeRules | None = None) -> list[int]:
    """Refuse (``HL7Error``) a conversion whose PID's Patient (``conversion.persons``: reference ->
    PID's sequence) resolves to a record of another person: the version an earlier message of the
    batch will write (not written yet), else the stored one. A restatement (``conversion.corrections``)
    as another person: refused unless this message's application registered the record or is one of
    the institution's declared registration applications as its registrar is (``_may_restate``), else
    warned of. A number kept apart beside a record of the institution's own MRN of that value: warned of.
    Returns the positions in ``earlier`` the answer read (their Patients were compared; the error's
    ``leaned_on`` too). ``merge``: the repository's merge rules (the site's), by which a record is judged as this
    message leaves it (``_as_stored``); None: the shipped ones."""
    leaned: list[int] = []
    unread: list[tuple[str, int, bool, int | None]] = []  # ... and the batch's placeholder of it, if any
    left_out: dict[str, Renumber] = {}  # a record whose PID-3 number ``_registrars_number`` left out -> who may renumber
    def renumber(ref: str) -> Renumber:  # (the refusal's advice: ``_against_kept_number``)
        return _may_renumber(conversion, ref, earlier, search, messages, read_many)
    if conversion.merges:  # (who may merge a record away: before anything reads the merges -- idn43)
        leaned += _merges_held(conversion, earlier, search, messages, read_many, merge)
    # a record an earlier message of the batch states: a number this application may not replace is left out
    # before the check against the kept number (below), as it is for a stored record (rv40l MED 3)
    stating = {ref for refs in (conversion.persons, conversion.corrections) for ref in refs
               if (left := batch_version(ref, earlier)) is not None and left.states}
    if stating:
        _registrars_number(conversion, earlier, {}, leaned, search, messages, read_many, left_out, stating,
                           merge=merge)
    for refs, corrects in ((conversion.persons, False), (conversion.corrections, True)):
        for ref, sequence in refs.items():
            left = batch_version(ref, earlier)
            if left is None or not left.states:
                unread.append((ref, sequence, corrects, left.at if left is not None else None))
                continue
            at = left.at
            leaned.append(at)
            _against_kept_number(conversion, ref, sequence, earlier[at].by_reference[ref], merge, [at], left_out,
                                 renumber)
            if contradicts_all(earlier[at].by_reference[ref], conversion.by_reference[ref]):
                if not corrects:
                    if not _formerly(conversion, ref, sequence, earlier[at].by_reference[ref], search, read_many,
                                     messages):
                        _refuse(sequence, [at])
                    continue  # (the record's former person, as its registrar stated it: filed with the W)
                # stored before the batch: its registering message is in the store; else the batch's
                registrar = _registered(ref, search, messages, conversion.registrars, read_many)
                registrar = _with_batch(registrar, ref, earlier, conversion.registrars)
                _restated(conversion, sequence, registrar, [at])
    bare = [(r, any(r[2] in c.by_reference for c in earlier)) for r in conversion.apart.values()]
    wanted = [tuple(ref.split("/", 1)) for ref, _, _, _ in unread]
    wanted += [tuple(b[2].split("/", 1)) for b, in_batch in bare if not in_batch]
    # ... and one the batch names without stating it (a result filed under it, its number remembered: ``_remember``)
    wanted += [tuple(b[2].split("/", 1)) for b, in_batch in bare
               if in_batch and _stated_in(b[2], earlier) is None]
    # another member's number (``common.member_records``): its record, as the batch leaves it or stored;
    # a merge's prior record held as stored too
    members = [(held, _stated_in(held.member, earlier)) for held in conversion.members]
    wanted += [tuple(held.member.split("/", 1)) for held, at in members if at is None]
    # a merge's prior record held as stored; a PID's record beside a member's number: whether it already
    # carries the number (``_beside``; mostly read already: the PID's own record is held above)
    wanted += [tuple(held.record.split("/", 1)) for held, _ in members if held.as_stored or held.number]
    wanted += [tuple(held.prior.split("/", 1)) for held, _ in members if held.prior]  # a merge's MRG-1 record
    # a merge's MRG-1 under an undeclared authority: its record, and the institution's own of the value
    wanted += [tuple(r.split("/", 1)) for prior, (_, _, own, _) in conversion.merged_apart.items() for r in (prior, own)]
    # a merge's MRG-1 record (``_joined``), and its survivor (``_carried``: what it holds already)
    wanted += [tuple(ref.split("/", 1)) for survivor, prior, _, _ in conversion.merges for ref in (prior, survivor)]
    # a PID-3 ``""`` of another authority's number: whether the record holds one the sender never stated; of the ID
    # number: whether the record holds one (``_registrars_null``)
    wanted += [tuple(ref.split("/", 1)) for ref, *_ in (*conversion.nulled, *conversion.id_nulled)]
    # an unlink's records: what a merge carried from one onto the other (``_given_back``)
    wanted += [tuple(ref.split("/", 1)) for pair in conversion.unlinked for ref in pair]
    wanted = list(dict.fromkeys(wanted))
    stored = read_many(wanted) if wanted else {}
    # a number kept apart whose institution's own record of the value is positively this person: filed there
    moved = _filed_as_own(conversion, earlier, stored, leaned, read_many)
    if conversion.merged_apart:
        _merged_apart(conversion, earlier, stored, leaned)
    if conversion.id_nulled:  # (before the carry: a null not taken leaves the carry as it was)
        _registrars_null(conversion, earlier, stored, leaned, search, messages, read_many)
    _registrars_number(conversion, earlier, stored, leaned, search, messages, read_many, left_out, merge=merge)
    if conversion.merges:
        _joined(conversion, earlier, stored, leaned)
        _carried(conversion, earlier, stored, leaned, merge)
    if conversion.unlinked:
        _undoes_no_merge(conversion, earlier, stored, leaned, read_many, search, merge)
        _given_back(conversion, earlier, stored, leaned, merge)
    if conversion.nulled:
        _not_theirs_to_delete(conversion, earlier, stored, leaned)
    for ref, sequence, corrects, made in unread:
        if ref in moved:
            continue  # the record it was filed under is the PID's person (``_same_person``): nothing to hold
        was, at = stored.get(tuple(ref.split("/", 1))), None
        if was is None:  # not stored: an earlier message of the batch writing it only when absent makes it
            if made is None:
                continue
            at = made
            leaned.append(at)
            was = earlier[at].by_reference[ref]
        _against_kept_number(conversion, ref, sequence, was, merge, [at] if at is not None else [], left_out,
                             renumber)
        if not (contradicts_all(was, conversion.by_reference[ref]) if at is not None
                else _two_people(conversion, ref, was, search, messages, read_many)):
            continue
        on = [at] if at is not None else []
        if not corrects:
            if at is not None or not _formerly(conversion, ref, sequence, was, search, read_many, messages):
                _refuse(sequence, on)
            continue  # (the record's former person, as its registrar stated it: filed with the W)
        # made in the batch only by a message writing it when absent (a result's placeholder): as the
        # store would answer once that message is filed, unregistered until a registration of the batch
        registrar = (_registered_in_batch(ref, earlier, conversion.registrars) or _UNREGISTERED
                     if at is not None else _registered(ref, search, messages, conversion.registrars, read_many))
        _restated(conversion, sequence, registrar, on)
    beside: set[str] = set()  # the member records a PID's number filed beside its record was held against
    for held, at in members:  # a PID's (``common.patient``) before a merge's (``his.merge``)
        if held.as_stored and held.member in beside:
            continue  # the survivor already carried the number: the merge puts nothing new on it
        person = _as_left(held.record, earlier, stored, leaned) if held.as_stored else \
            _survivor(conversion, held, earlier, stored, leaned, merge) if held.prior else \
            conversion.by_reference[held.record]
        if person is None:
            continue
        # the member's record: the same person (a referral) or none, nothing to hold (regfix33, member33)
        was, read_at = _member_record(held, at, earlier, stored, leaned)
        if was is None or not contradicts_all(was, person):
            if was is not None:  # (the member holding no record of it: silence, not agreement -- rvident35 LOW)
                _agreed(conversion, held, was, earlier, stored, leaned)
            continue
        read = len(leaned)
        differs = _differing(was, person)  # (named in the W or the refusal: rv39b LOW, id40)
        if _beside(conversion, held, earlier, stored, leaned, differs):
            beside.add(held.member)
            continue
        if _stale_merged(conversion, held, was, person, earlier, stored, leaned):
            continue
        if held.moved:  # an A45's MRG-1 record stale: the move off it is filed, with the warning
            conversion.warn(_moved_off_stale(held))
            continue
        # leaning on the member's record as the batch leaves it and on the version of the sender's record
        # ``_beside`` read: either not written, the message is settled again (rvmemfix34 finding 3)
        on = sorted({*([read_at] if read_at is not None else []), *leaned[read:]})
        _refuse_member(held, on, keyed=held.record in conversion.apart and _keyed_by(conversion, held), differs=differs,
                       sender=f"{conversion.institution}/{conversion.application or '?'}")
    members_named = {held.member for held in conversion.members}
    for (authority, number, own, sequence), in_batch in bare:
        if own in moved.values():
            continue  # filed under the institution's own record (``_filed_as_own``), warned of there
        if in_batch or tuple(own.split("/", 1)) in stored:
            member = f"Patient/{deterministic_id(authority, 'Patient', number)}" in members_named
            conversion.warn(_kept_apart(authority, sequence, member))
    if conversion.owns and search is not None:
        anew = [o for o in conversion.owns if _first_filed(o[0], earlier, stored, conversion)]
        # filed before: an owner's message may have re-keyed a member's record away (``_rekeyed_back``), put back
        # only for the owner's record as this message leaves it (``_as_stored``: the record as left, merged with this PID)
        read: list[int] = []
        back = {ref: _as_stored(conversion, ref, was, merge) for ref, _, _, _ in anew
                if (was := _as_left(ref, earlier, stored, read)) is not None}
        leaned += read
        leaned += _owners_word(conversion, anew, search, read_many, earlier, back)
    return leaned


def _filed_as_own(conversion: Any, earlier: Sequence[Any], stored: dict[Any, Any], leaned: list[int],
                  read_many: Any = None) -> dict[str, str]:
    """A PID-3 number keyed apart under an assigning authority ``institutions.yaml`` ``mrn_authorities`` does
    not declare (``Context.apart``: ``123^^^HIS^MR``), while the institution holds its own record of the
    value -- stored, or as the batch leaves it -- that is positively this PID's person (``_same_person``, the
    converter's one rule for joining two records: name, sex and birth date known on both sides and agreeing,
    the ID numbers the same where both carry one; the birth dates each a full day, ``_to_the_day``): the
    message is filed under that record, with an ERR W at PID-3 naming the authority, counted per authority in
    the fidelity view (``filed_as_own``, the record listed for the operator). Returns the records moved
    ("Patient/<apart>" -> "Patient/<own>").

    Why: a deployment whose HIS always wrote its own name (an OID, "MRN") in CX-4 holds records an earlier
    release keyed by the bare number (it dropped CX-4); keyed apart now, every returning patient's next
    message made a second record, her earlier results on the first (rvidentity32 HIGH 1: the record a
    clinician opens is split). The same number of the same institution, for the same person, is one record.
    Never two people's: a record another person's (name, sex, birth date or ID number disagreeing, or one of
    them unknown on either side, or a birth date known only to the year or month: a year agrees with every day
    of it, and 张伟 M 1961 is no evidence) is not joined -- the number stays keyed apart as identity32 decided,
    with the kept-apart warning (a LIS's own number of the value, another woman). Not joined either: a number
    that is another member institution's (its record is that institution's, one number one owner), a message
    naming the own record itself (a merge).

    Remembered (idfix38, rv38e findings 1-3): a number filed under the record stays on it -- its identifier
    as sent (``urn:huren:mrn:<institution>:<authority>``), written by a result too (the identifier alone,
    ``_remember``). From then on the number names that record, whatever a later message says: one agreeing
    or thin (nothing of name, sex, birth date or ID number disagreeing: a LIS that sometimes sends only an age)
    is filed under it; one disagreeing is refused (``_refuse_filed``: AE at PID-3, nothing filed under the record
    nor as a new record of the number) -- before, each message was decided afresh, so a thin message or another
    person's made the record of the number as sent, and from then on her own agreeing results went to it (to
    another woman's record). A record of the number as sent that exists already (stored, or made by an earlier
    message of the batch: a split of releases 32-37, or one made before the number was remembered) keeps the
    messages positively its person's (the split stays for the desk's ``$link``); a message positively the own
    record's person and not that record's is filed under the own record, never under the other. The own record
    merged away (an A40 or A47 naming its MRN in MRG-1), the number moved with it to the survivor, which the
    message is filed under (``_moved_with``, id40)."""
    moves: dict[str, str] = {}
    if not conversion.apart:
        return moves
    from adapters.convert.common import apart_system  # (common imports this module; not on the common path)

    members = {held.member for held in conversion.members}
    remember: list[tuple[str, str, dict[str, Any]]] = []  # (own record, token, as read) to write the number on
    for ref, (authority, number, own, sequence) in conversion.apart.items():
        if f"Patient/{deterministic_id(authority, 'Patient', number)}" in members or own in conversion.by_reference:
            continue
        read: list[int] = []
        was = _as_left(own, earlier, stored, read)
        if was is None:
            continue
        patient = conversion.by_reference[ref]
        token = f"{apart_system(conversion.institution, authority)}|{number}"
        remembered = _holds_number(was, token)
        if not remembered and (moved := _moved_with(was, token, earlier, stored, read_many, read)) is not None:
            own, was, remembered = moved[0], moved[1], True
            if own in conversion.by_reference:
                continue
        if remembered:
            if _another_person(was, patient):
                _refuse_filed(authority, sequence, read)
        elif not (_to_the_day(was, patient) and _same_person(was, patient)):
            continue
        elif tuple(ref.split("/", 1)) in stored or batch_version(ref, earlier) is not None:
            apart_read: list[int] = []
            split = _as_left(ref, earlier, stored, apart_read)
            if split is not None and _same_person(split, patient):
                continue  # a split record of the number, positively this person too: it stays hers (the desk links)
        leaned += read
        moves[ref] = own
        _mark_filed(patient, token)
        # the own record's identifiers of the number (its MRN as the earlier release stored it) stay: a
        # registration states the identifiers whole (``merge.yaml``), and the number names that record now
        have = {(i.get("system"), i.get("value")) for i in patient.get("identifier") or ()}
        kept = [deepcopy(i) for i in was.get("identifier") or ()
                if i.get("value") == number and (i.get("system"), i.get("value")) not in have]
        patient["identifier"] = [*kept, *(patient.get("identifier") or ())]
        conversion.warn(_filed_own_warning(authority, sequence, own, remembered))
        if not remembered and ref in conversion.create_only:
            remember.append((own, token, was))
    if not moves:
        return moves
    from adapters.convert import _take  # (the package imports this module)

    _take(conversion, moves)
    conversion.persons = {moves.get(r, r): n for r, n in conversion.persons.items()}
    conversion.corrections = {moves.get(r, r): n for r, n in conversion.corrections.items()}
    conversion.apart = {r: v for r, v in conversion.apart.items() if r not in moves}
    conversion.members[:] = [held._replace(record=moves.get(held.record, held.record)) for held in conversion.members]
    conversion.owns[:] = [(moves.get(o[0], o[0]), *o[1:]) for o in conversion.owns]
    for own, token, was in remember:
        _remember(conversion, own, token, was)
    return moves


def _moved_with(was: dict[str, Any], token: str, earlier: Sequence[Any], stored: dict[Any, Any], read_many: Any,
                read: list[int]) -> tuple[str, dict[str, Any]] | None:
    """The survivor an institution's own record was merged into (its ``replaced-by`` link: an A40, an A47), when
    that survivor -- as the batch leaves it, else stored -- holds the remembered number ``token``: ("Patient/id",
    the record). A merge carries the remembered number to the survivor and the record merged away drops it
    (``_carried``; ``merge.yaml`` ``beside`` ``unless: replaced-by``: HL7 v2.5.1 3.3.40/3.3.47, the identifier
    moves), so the LIS's next result under the number is filed where the number is now. Before, both records held
    it and the result went to the record merged away (id40). One step: the survivor is the one the merge named."""
    for link in was.get("link") or ():
        survivor = (link.get("other") or {}).get("reference") if link.get("type") == "replaced-by" else None
        if not isinstance(survivor, str) or not survivor.startswith("Patient/"):
            continue
        key = tuple(survivor.split("/", 1))
        if key not in stored and batch_version(survivor, earlier) is None and read_many is not None:
            stored.update(read_many([key]))
        later = _as_left(survivor, earlier, stored, read)
        if later is not None and _holds_number(later, token):
            return survivor, later
    return None


def _merged_apart(conversion: Any, earlier: Sequence[Any], stored: dict[Any, Any], leaned: list[int]) -> None:
    """A merge (A40/A34...) whose MRG-1 number is under an assigning authority ``mrn_authorities`` does not declare
    (``Conversion.merged_apart``), while the institution holds its own record of the value: the number names that
    record once it was filed under it (remembered there, ``_filed_as_own``) -- the merge moves that record, as a
    PID under the number would be filed there; else which record the merge names cannot be told, and the message is
    refused (AE at MRG-1, nothing merged). Before (rv38e finding 4), MRG-1 stayed keyed apart while its PID was
    filed under the institution's own record: the real survivor was linked as replacing a phantom record of the
    number as sent, the real duplicate (with her results) stayed live, answered AA. A record of the number as sent
    that exists already (stored, or made by an earlier message of the batch), the number not remembered on the own
    record, is the one it names, as before; with no own record of the value, nothing changes either."""
    from adapters.convert import _take  # (the package imports this module)
    from adapters.convert.common import apart_system  # (common imports this module)

    moves: dict[str, str] = {}
    for prior, (authority, number, own, sequence) in conversion.merged_apart.items():
        read: list[int] = []
        was = _as_left(own, earlier, stored, read)
        if was is None:
            continue
        remembered = _holds_number(was, f"{apart_system(conversion.institution, authority)}|{number}")
        if not remembered and _as_left(prior, earlier, stored, read) is not None:
            continue
        leaned += read
        if not remembered or own in conversion.by_reference:
            error = HL7Error(
                f"MRG-1 record number under assigning authority {authority!r} (MRG-1.4), which institutions.yaml "
                "mrn_authorities does not declare: the institution holds its own record of the same number, "
                + ("which is the surviving patient itself (PID-3)" if remembered else
                   "which no message of this authority was filed under, and no record of the number as sent")
                + "; which record the merge names cannot be told, nothing is merged. Send MRG-1 under the "
                "institution's own record number, or declare the authority in institutions.yaml mrn_authorities "
                "if it is the institution's own record numbering",
                segment="MRG", sequence=sequence, field=1, code=DUPLICATE_KEY_IDENTIFIER)
            if read:
                error.leaned_on = read  # type: ignore[attr-defined]
            raise error
        # the record keeps its identifiers of the number (a merge states them whole: a bare MRG-1's record keeps its MRN)
        conversion.by_reference[prior]["identifier"] = [json_copy(i) for i in was.get("identifier") or ()
                                                      if i.get("value") == number]
        moves[prior] = own
    if moves:
        _take(conversion, moves)
        conversion.members[:] = [held._replace(record=moves.get(held.record, held.record),
                                               prior=moves.get(held.prior, held.prior)) for held in conversion.members]


def _to_the_day(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Are both birth dates known to the day (``YYYY-MM-DD``)? Joining a number to a record needs it: ``_same_person``
    compares each date at its own precision (``same_day``), and a year alone -- many county LIS derive it from an
    age -- agrees with every day of that year (rv38e finding 5)."""
    return all(to_the_day(p.get("birthDate")) for p in (a, b))


def _another_person(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Does anything both Patient versions state disagree -- name, sex or birth date (``conflicts_between``), or the
    ID number where both carry one (``demographics.id_numbers``)? Not ``contradicts_all`` (the name and one of sex, a
    day of birth or the ID numbers differing): under a number this institution joined to a record only on positive
    agreement, another woman of the same sex is another person, whatever her birth date is known to."""
    if conflicts_between(demographics(a), demographics(b)):
        return True
    numbers = (id_numbers(a), id_numbers(b))
    return all(numbers) and numbers[0] != numbers[1]


# what ``demographics.contradicts_all`` holds for two people, as the answers it decides word it (ident39: they said
# "name and sex" alone after nbfix38 added the name and a day of birth)
_TWO_PEOPLE = "name and sex differ; or name and day of birth differ; or name and resident ID numbers differ"


# on the identifier of a number filed under the institution's own record (``_filed_as_own``): huren filed it there,
# the HIS did not state it -- ``merge.yaml`` ``Patient.identifier`` ``beside``: the registration's identifiers,
# stated whole, leave it on the record unless they state one under its system (ident39)
FILED_AS_OWN_EXT = "urn:huren:StructureDefinition:filed-as-own"
# the entries of ``Patient.identifier`` so marked, as a delete's ``where`` (a renumbering's: ``his.merge``)
FILED_AS_OWN_ENTRIES = (("extension.url", (FILED_AS_OWN_EXT,)),)
# ... and its resident ID number's, as a delete's ``where`` (PID-3 ``""^^^^NNCHN``: ``common._national_deleted``)
NATIONAL_ENTRIES = (("type.coding.code", ("NNCHN",)),)


def _mark_filed(patient: dict[str, Any], token: str) -> None:
    """Mark the message's identifier of the number filed as the institution's own (``FILED_AS_OWN_EXT``), so a
    registration that does not state it -- the HIS's next A08 under the bare MRN, an A40 merging the record --
    leaves it on the record: the number remembered there names the record (idfix38), and the HIS, which never
    stated it, has no say over it."""
    for ident in patient.get("identifier") or ():
        if _token(ident) == token and not _marked(ident):
            ident["extension"] = [*(ident.get("extension") or ()), {"url": FILED_AS_OWN_EXT, "valueBoolean": True}]


def marked_by_client(resource: dict[str, Any], previous: dict[str, Any] | None, writer: str) -> dict[str, Any]:
    """A repository statement for Patient (the writer is known here, not read from the body): huren's marks on an
    identifier -- filed-as-own (``FILED_AS_OWN_EXT``, ``_mark_filed``) and carried-from (``CARRIED_FROM_EXT``,
    ``_carried``) -- are huren's to set and to take off, never a FHIR client's: a client's write keeps a mark only on
    an identifier the stored version carries with that very mark (the record read and written back as read), and
    drops it from any other; an identifier the client keeps (the same ``system|value``) that the stored version
    carries marked keeps its marks, the body stating them or not. Why: filed-as-own binds the registration
    (``merge.yaml`` ``beside``: a marked number outlives the HIS's next A08 leaving it out), so a PUT marking any
    identifier made the HIS unable to take that number off (rv39d LOW 6), and a PUT keeping the LIS's number but
    leaving its extension out made the HIS's next thin A08 drop the number the LIS's results are filed by (rv40a LOW
    5); carried-from names what an unlink (A37) takes off a record and gives another. Leaving the identifier out
    entirely stays the client's right (the identifiers stated whole). One place: every client write path (PUT, POST,
    conditional update, Bundles) reaches the repository's statements with its writer (``engine.engine`` registers
    it)."""
    if writer != API:
        return resource
    idents = resource.get("identifier")
    if not isinstance(idents, list):
        return resource
    held: dict[str, list[Any]] = {}  # the stored version's marks, by identifier
    for ident in (previous or {}).get("identifier") or ():
        if isinstance(ident, dict) and (marks := _huren_marks(ident)):
            held.setdefault(_token(ident), []).extend(marks)
    if not held and not any(_huren_marks(i) for i in idents if isinstance(i, dict)):
        return resource
    out, changed = [], False
    for ident in idents:
        if isinstance(ident, dict) and (_huren_marks(ident) or _token(ident) in held):
            kept = {_mark_key(e): e for e in held.get(_token(ident), ())}
            stated = ident.get("extension") if isinstance(ident.get("extension"), list) else []
            mine = _huren_marks(ident)
            rest = [e for e in stated if e not in mine or _mark_key(e) in kept]
            have = {_mark_key(e) for e in rest if e in mine}
            rest += [json_copy(e) for key, e in kept.items() if key not in have]
            if rest != stated:
                ident = {k: v for k, v in ident.items() if k != "extension"} | ({"extension": rest} if rest else {})
                changed = True
        out.append(ident)
    return {**resource, "identifier": out} if changed else resource


def _mark_key(extension: dict[str, Any]) -> str:
    """One mark as compared between a client's body and the stored version: its JSON with sorted keys (a client
    writing the record back as read may order an extension's keys otherwise)."""
    return json.dumps(extension, sort_keys=True, ensure_ascii=False)


def _huren_marks(ident: dict[str, Any]) -> list[Any]:
    """The extensions of ``ident`` that are huren's marks (``FILED_AS_OWN_EXT``, ``CARRIED_FROM_EXT``)."""
    extensions = ident.get("extension")
    return [e for e in extensions if isinstance(e, dict) and e.get("url") in (FILED_AS_OWN_EXT, CARRIED_FROM_EXT)] \
        if isinstance(extensions, list) else []


def _marked(ident: dict[str, Any]) -> bool:
    extensions = ident.get("extension")
    return isinstance(extensions, list) and any(isinstance(e, dict) and e.get("url") == FILED_AS_OWN_EXT
                                                for e in extensions)


def _remember(conversion: Any, own: str, token: str, was: dict[str, Any]) -> None:
    """A result (or order: ``create_only``, the ADT feed owns the record) filed under the institution's own record
    (``_filed_as_own``) writes that record's identifier alone, the number as sent added (the feed's identifiers
    combine by union: nothing stored is taken away; ``Said.only``), so the number names the record from then on.
    An ADT states its Patient's identifiers, the number among them."""
    patient = conversion.by_reference[own]
    ident = next((i for i in patient.get("identifier") or () if _token(i) == token), None)
    if ident is None:
        return
    patient["identifier"] = [*json_copy(was.get("identifier") or []), json_copy(ident)]  # (not the read's own objects)
    conversion.create_only[:] = [r for r in conversion.create_only if r != own]
    conversion.planned.pop(own, None)
    said = conversion.said.get(own) or Said()
    conversion.said[own] = replace(said, only=said.only | {"identifier"})
    conversion._bundle = None


def _refuse_filed(authority: str, sequence: int, leaned: list[int]) -> None:
    """A number under an undeclared authority that an earlier message filed under the institution's own record
    (remembered there: ``_filed_as_own``), now sent for someone that record's person is not: refused, nothing
    filed -- neither under that record (another person's) nor as a new record of the number (it names hers)."""
    _refused_at_pid3(
        f"PID-3 record number under assigning authority {authority!r} (PID-3.4), which institutions.yaml "
        "mrn_authorities does not declare, names the institution's own record of the same number (an earlier "
        "message of this authority was filed under it as that record's patient); this PID's name, sex, birth date "
        "or ID number (PID-5, PID-8, PID-7, PID-3) differs from that record's: nothing of the message is filed, "
        f"neither under that record nor as a new one. {_ADVICE}", sequence, leaned)


def _filed_own_warning(authority: str, sequence: int, own: str, remembered: bool = False) -> HL7Error:
    """The W of a number under an undeclared authority filed under the institution's own record of its value
    (``_filed_as_own``): the authority named, the number and the person not echoed. ``remembered``: the number
    was filed under that record before (nothing of this PID disagrees with it)."""
    why = ("an earlier message of this authority was filed under it as its patient, and nothing of this PID "
           "disagrees with it" if remembered else
           "that record is this patient's (name, sex and birth date agree; the ID number too where both carry one)")
    warning = HL7Error(
        f"PID-3 record number under assigning authority {authority!r} (PID-3.4), which institutions.yaml "
        f"mrn_authorities does not declare, filed under the institution's own record of the same number: {why}. "
        "If this authority is the institution's own record numbering, declare it in institutions.yaml mrn_authorities",
        segment="PID", sequence=sequence, field=3, code=DUPLICATE_KEY_IDENTIFIER,
        tally=Tally(FILED_AS_OWN, authority, records=(own,)))
    return warning


# the fidelity view's count of ``_filed_own_warning`` (``engine.api.admin``)
FILED_AS_OWN = "filed_as_own"


def _refuse(sequence: int, leaned: list[int]) -> None:
    # the stored person's particulars are not echoed: the ACK goes back to the sender, and the record
    # is not the sender's patient's
    _refused_at_pid3(
        f"PID-3 names the record of another person: between the stored record and this PID (PID-5, PID-8, PID-7, "
        f"PID-3) the {_TWO_PEOPLE}; nothing of the message is filed under it. {_ADVICE}", sequence, leaned)


def _refused_at_pid3(text: str, sequence: int, leaned: list[int]) -> None:
    """The AE of a PID whose record is another person's (``_refuse``, ``_refuse_filed``, ``_restated``): at PID-3,
    205, the batch positions it leaned on kept for the redo."""
    error = HL7Error(text, segment="PID", sequence=sequence, field=3, code=DUPLICATE_KEY_IDENTIFIER)
    if leaned:
        error.leaned_on = leaned  # type: ignore[attr-defined]
    raise error


def _member_record(held: Any, at: int | None, earlier: Sequence[Any], stored: dict[Any, Any],
                   leaned: list[int]) -> tuple[dict[str, Any] | None, int | None]:
    """Another member institution's own record of the number a message names (``held.member``: a CX-4
    naming the member, kept apart under the member's MRN system: identity32), and the batch position it
    was read from: as the batch leaves it (``at``: the last earlier message stating it; else one writing
    it only when absent, with nothing stored) or stored; (None, None): the member holds no record of it."""
    member = held.member
    if at is None:
        was = stored.get(tuple(member.split("/", 1)))
        if was is not None:
            return was, None
        left = batch_version(member, earlier)
        if left is None:
            return None, None
        at = left.at
    leaned.append(at)
    return earlier[at].by_reference[member], at


def _keyed_by(conversion: Any, held: Any) -> bool:
    """Does the member's number key the record (``Context.apart``: no own MRN nor ID number in PID-3, the
    record keyed by the first other authority's number, this member's)?"""
    authority, number, _, _ = conversion.apart[held.record]
    return held.member == f"Patient/{deterministic_id(authority, 'Patient', number)}"


def _beside(conversion: Any, held: Any, earlier: Sequence[Any], stored: dict[Any, Any],
            leaned: list[int], differs: str = "") -> bool:
    """A PID naming a member's number for another person than the member's record, where the number does
    not key the record -- the sender's own MRN (or ID number, or another authority's number) does:
    filed under that record, the number never under the member's MRN system there, ERR W at the PID-3
    repetition holding it (rvlast34 finding 1, memfix34; mfix34). The member's number is what is wrong,
    not the record the message is about: FNZYY filed its own patient with FNXRMYY's number beside (a
    referral, the same person then); FNXRMYY's registering HIS later restated its record of the number as
    another person (accepted: identity34) -- refusing every FNZYY result for its correctly identified
    patient from then on guarded nothing and left the results unfiled until FNZYY's master index changed.
    So:

    - a message only naming the patient (``create_only``: a result, an order -- the ADT feed owns the
      record) is filed; the number is taken off the message's Patient, so a placeholder it makes does
      not carry it;
    - a record that carries the number (stale, as above) -- as the batch leaves it or stored, under the
      member's MRN system or already re-keyed -- is filed under, and keeps the number, exactly as sent,
      under the sender's own system for other authorities' numbers (``MemberNumber.kept``,
      ``urn:huren:mrn:FNZYY:FNXRMYY``, identity32's keyed-apart form): it no longer answers the member's
      MRN (rvmemfix34 finding 1: a search of results by FNXRMYY's MRN returned FNZYY's patient's new
      results beside FNXRMYY's patient's). An ADT restating the record re-keys it in the Patient it
      states; a result re-keys the stored record's identifier alone (``_rekeyed``). The same A08 sent
      again meets the re-keyed number and is answered alike (no AA then AE); nothing the sender stated
      is erased;
    - a message stating the record that would newly give it the number (an A04, A08/A31 or merge adding
      it) is refused, as member33 decided: that statement is what is wrong (False).

    The W names no other institution, number nor person; ``/admin/fidelity`` counts it for the sender's
    operator (``member_contradicted``, per member: the sender's reference is the one to correct).
    A merge's (``held.segment`` MRG) is decided by ``_refuse_member`` alone."""
    if held.segment != "PID" or not held.number:
        return False
    if held.record in conversion.apart and _keyed_by(conversion, held):
        return False
    ref = held.record
    was = _as_left(ref, earlier, stored, leaned)
    as_member = was is not None and _holds_number(was, held.number)
    carried = as_member or (was is not None and bool(held.kept) and _holds_number(was, held.kept))
    patient = conversion.by_reference[ref]
    if ref not in conversion.create_only:
        if not carried:
            return False
        patient["identifier"] = _rekey(patient.get("identifier") or (), held.number, held.kept)
    else:
        patient["identifier"] = [i for i in patient.get("identifier") or () if _token(i) != held.number]
        if as_member and held.kept:
            _rekeyed(conversion, ref, was, held.number, held.kept)
    conversion.planned.pop(ref, None)  # no longer the resource its plan made
    warning = HL7Error(
        "PID-3 lists a record number another member institution assigned (PID-3.4 names it), and that "
        f"institution's own record of the number is another person: its {differs or 'name'} differ from this PID's "
        f"(by the person guard's rule: {_TWO_PEOPLE}); the number does not key this record: the "
        "message is filed under the record PID-3's other identifier keys, "
        + ("which already carries the number: kept as sent, apart under this institution's system for other "
           "authorities' numbers, so that it does not answer that institution's record number"
           if carried else "without the number")
        + ". If the number is this patient's, have that institution correct its record; else take the number "
        "off this patient's identifiers in the sending system", segment="PID", sequence=held.sequence, field=3,
        repetition=held.repetition, code=DUPLICATE_KEY_IDENTIFIER, tally=Tally("member_contradicted", held.institution))
    conversion.warn(warning)
    return True


def _survivor(conversion: Any, held: Any, earlier: Sequence[Any], stored: dict[Any, Any],
              leaned: list[int], merge: MergeRules | None = None) -> dict[str, Any]:
    """The person of a merge whose MRG-1 names a member's number (``held.prior``: ``his._held_to_members``), held
    against the member's record and MRG-1's: the survivor (the PID's record) as the merge leaves it -- as stored or
    as the batch leaves it, the name, sex and birth date the PID states merged over it (``_as_stored``) -- else, not
    stored, the PID's Patient. Not the PID as sent: an A40's PID of the name alone contradicts no one, and a merge
    of the member's person's record into another person's stored record had been filed AA, the member's number now
    answering the survivor's person (priv36, after rvfixid35's LOW on ``_stale_merged``; backfix35's rule for the
    owner's put-back)."""
    at = len(leaned)
    was = _as_left(held.record, earlier, stored, leaned)
    if was is None:
        del leaned[at:]
        return conversion.by_reference[held.record]
    return _as_stored(conversion, held.record, was, merge)


def _stale_merged(conversion: Any, held: Any, member: dict[str, Any], person: dict[str, Any], earlier: Sequence[Any],
                  stored: dict[Any, Any], leaned: list[int]) -> bool:
    """A merge (A40, A47 and kin: ``his.merge``) whose MRG-1 names, by another member's number, the sender's own
    record that is stale -- that record (``held.prior``), as stored or as the batch leaves it, is another person
    than the member's own record of the number (the member registered the number as someone else since the
    sender filed it) -- and is the PID's person (``contradicts_all`` says nothing against it): the merge is the
    sender's correction of its own record, filed with ERR W 205 at MRG-1 (counted for the sender's operator,
    ``member_contradicted``), the merged record's copy of the number, if still under the member's MRN system,
    re-keyed under the sender's kept-apart system as ``_beside`` does, so it no longer answers the member's MRN.
    The hold of the PID's person against the member's record (identity34) had refused it: a record keyed only by
    a number its owner gave another person could not be corrected over HL7 at all (ident35's note; the lead). The
    hold stays for what it guards, compared on MRG-1's stored record as the A45's is: a merge whose MRG-1 record
    is the member's person (not stale) or is not stored is refused at MRG-1 (``_refuse_member``).

    ``person`` is the survivor as the merge leaves it (``_survivor``: stored, the PID's particulars over it), not
    the PID as sent (priv36): an A40's PID of the name alone had contradicted neither record, and the merge never
    came here -- filed AA with no warning, whatever the survivor's stored person. What "another person than the
    PID's (two people joined)" can mean under the same-person rule (``contradicts_all``: name AND sex both differ,
    male/female; or name AND a day of birth, nbfix38) is narrower than it reads: by name and sex, MRG-1's record
    and the survivor both differ in sex from the member's record, so not from each other (idfix35's README); by
    name and day of birth the check below can refuse -- kept so that a change of the rule cannot turn it into a
    silent accept. Two records of one sex and two names and no two days of birth are one person to that rule
    here as everywhere; a sender's merge of its own records is not otherwise
    person-checked. The refusal that does guard is the hold before: the survivor, as left, another person than
    the member's record while MRG-1's record is the member's person (``tests/test_priv36_identity.py``)."""
    if held.segment != "MRG" or not held.prior or held.as_stored or held.moved:
        return False
    at = len(leaned)
    prior = _as_left(held.prior, earlier, stored, leaned)
    if prior is None or not contradicts_all(prior, member) or contradicts_all(prior, person):
        del leaned[at:]
        return False
    if held.number and held.kept and _holds_number(prior, held.number):
        merged = conversion.by_reference[held.prior]
        mine = [i for i in merged.get("identifier") or () if not _holds_number(prior, _token(i))]
        merged["identifier"] = _rekey([*deepcopy(prior.get("identifier") or []), *mine], held.number, held.kept)
        system, _, value = held.number.partition("|")
        said = conversion.said.get(held.prior) or Said()
        gone = Delete("identifier", where=(("system", (system,)), ("value", (value,))), quiet=True)
        conversion.said[held.prior] = replace(said, deletes=(*said.deletes, gone))
        conversion._bundle = None
    warning = HL7Error(
        "MRG-1 names, by a record number another member institution assigned (MRG-1's CX-4 names it), this "
        "institution's own record, and that institution's own record of the number is another person ("
        + _TWO_PEOPLE + "): the merge of this institution's record is filed as its "
        "correction, the number kept on the merged record as sent, apart under this institution's system for other "
        "authorities' numbers, so that it does not answer that institution's record number. Take the number off "
        "this patient's identifiers in the sending system", segment="MRG", sequence=held.sequence, field=1,
        code=DUPLICATE_KEY_IDENTIFIER, tally=Tally("member_contradicted", held.institution))
    conversion.warn(warning)
    return True


def _moved_off_stale(held: Any) -> HL7Error:
    """The warning of an A45 (``MemberNumber.moved``: ``his.moved_visit``) moving a visit off the sender's record
    that MRG-1 names by another member's number alone, the member's own record of the number another person than
    that record (stale: the member registered the number as someone else since the sender filed it). The move is
    filed (rvident35 MED, the lead): it files nothing under the stale record -- it takes the visit off it -- and
    claims nothing of whose the number is, so refusing it (ident35) guarded nothing and blocked the sender's one
    correction over HL7 that takes its patient's visit out of the record answering the member's number. ERR W 205
    at MRG-1, counted for the sender's operator (``member_contradicted``, per member), the member's person not
    echoed. A move ONTO a record the member's number keys, for another person than the member's record, is still
    refused: the PID's hold (member33, ``_refuse_member``)."""
    warning = HL7Error(
        "MRG-1 names the record the visit moves from by a record number another member institution assigned "
        "(MRG-1's CX-4 names it), and that institution's own record of the number is another person than that "
        "record (" + _TWO_PEOPLE + "): the move is filed, nothing is filed "
        "under that record. Its number is stale: have the sending system take the number off that record, or merge "
        "it into this institution's own record of its patient (ADT^A40/A47)", segment="MRG", sequence=held.sequence,
        field=1, code=DUPLICATE_KEY_IDENTIFIER, tally=Tally("member_contradicted", held.institution))
    return warning


def _token(identifier: dict[str, Any]) -> str:
    return f"{identifier.get('system')}|{identifier.get('value')}"


def _rekey(identifiers: Sequence[dict[str, Any]], away: str, to: str) -> list[dict[str, Any]]:
    """``identifiers`` with the entry ``away`` ("system|value") under ``to``'s system in its place, every
    other part as it was (value, type, assigner); once only. The member's number (``MemberNumber.number``)
    to the sender's kept-apart system (``kept``) once the member contradicts it, and back once it agrees."""
    system = to.rpartition("|")[0]
    out: list[dict[str, Any]] = []
    for ident in identifiers:
        if _token(ident) == away:
            ident = {**ident, "system": system}
        if _token(ident) != to or not any(_token(i) == to for i in out):
            out.append(ident)
    return out


def _rekeyed(conversion: Any, ref: str, was: dict[str, Any], away: str, to: str) -> None:
    """A result's (or order's) record stored carrying the number ``away`` (a member's, under the member's
    MRN system, or kept apart: ``_rekey``): the message writes that record's identifier alone
    (``Said.only``), the number under ``to``'s system -- the rest of the record is the ADT feed's and stays
    as stored. The identifier combines as the feed's does (union, by system and value), so the entry under
    the old system is taken away by a delete of it (quiet: the W says it, or nothing is wrong); every
    identifier stored at the write, not only those read here, stays."""
    patient = conversion.by_reference[ref]
    patient["identifier"] = _rekey(deepcopy(was.get("identifier") or []), away, to)  # (not the read's own objects)
    conversion.create_only[:] = [r for r in conversion.create_only if r != ref]
    system, _, value = away.partition("|")
    said = conversion.said.get(ref) or Said()
    gone = Delete("identifier", where=(("system", (system,)), ("value", (value,))), quiet=True)
    conversion.said[ref] = replace(said, only=said.only | {"identifier"}, deletes=(*said.deletes, gone))
    conversion._bundle = None


def _agreed(conversion: Any, held: Any, member: dict[str, Any], earlier: Sequence[Any], stored: dict[Any, Any],
            leaned: list[int]) -> None:
    """A result or order (``create_only``) naming the member's number, the member's own record of it (``member``,
    as the batch leaves it or stored) not contradicting the PID's person, for a record that carries it kept
    apart (a result or the owner's message re-keyed it: ``_beside``, ``_rekeyed_by_owner``): the number
    back under the member's MRN system, its identifier alone written (``_rekeyed``), no warning. The rule
    an ADT follows by stating the record (its identifiers replace the stored ones: mfix34) -- the re-key
    follows the member's record, whichever message meets it next (rvmfix34 LOW 1: a result had kept the
    record out of a search by the member's MRN until the sender's next ADT).

    Only when the member's record contradicts the record the number goes back onto as well (as stored, or as
    the batch leaves it), not the PID's person alone: the same-person rule the re-key used (``contradicts_all``
    of the two records). A lab's PID is often the name alone; it contradicts no one, and had put back 冯三's
    number on FNZYY's record of 王五 (F, 1980), answering a clinician's search by FNXRMYY's MRN with her results
    (rvident35 HIGH 1). Not when the member holds no record of the number any more (the caller): silence."""
    ref = held.record
    if held.segment != "PID" or not held.kept or ref not in conversion.create_only:
        return
    was = _as_left(ref, earlier, stored, leaned)
    if was is not None and _holds_number(was, held.kept) and not _holds_number(was, held.number) \
            and not contradicts_all(member, was):
        _rekeyed(conversion, ref, was, held.kept, held.number)


def _refuse_member(held: Any, on: list[int], keyed: bool, sender: str = "", differs: str = "") -> None:
    """Refuse a message naming another member institution's record number for another person than the
    member's own record of it (``_member_record``, ``contradicts_all``), unless filed beside
    (``_beside``). Filed, the sender's record would carry ``urn:huren:mrn:<member>|<number>`` under
    another person: a search by the member's MRN finds two people (regfix33's decision, member33); not
    filed without the member's system instead either: a wrong number kept quietly, the sender never
    told. A merge (``held.segment`` MRG, identity34): MRG-1 naming the member's number holds the PID's
    person; the PID naming it holds MRG-1's record (as stored), which the merge would make the member's
    patient -- refused at MRG-1.

    The answer itself tells the sender that the member holds a record under the number and that its person is
    another than the one sent (``contradicts_all``: ``_TWO_PEOPLE``; rvlast34: an
    oracle). It stays -- see the README's "(thirty-sixth round, priv36)": every answer that says the same whatever
    the member holds either files a message under another
    person or refuses the same person's referrals -- and is made visible instead: the refusal carries a count
    (``Tally`` ``member_refused``) for the member's operator, keyed by the sending institution and application
    (``sender``), which the ingest counts with the quarantine, audits, and alerts on
    (``engine.ingest.Ingestor._member_refused``, ``HUREN_MEMBER_REFUSAL_ALERT``). It names what differs
    (``differs``, ``_differing``: name and sex, birth date or ID number), as the merge's warning does -- the general
    rule it had stated told the operator "name and sex differ" of two women (rv39b LOW, id40). Naming them tells a
    sender nothing the answer did not: a field differing or not is already learnt by sending the message with it
    changed and reading AA or AE."""
    if held.segment == "MRG":
        error = HL7Error(
            "MRG-1 merges a record into a record number another member institution assigned (PID-3.4 or MRG-1's "
            "CX-4 names it), and that institution's own record of the number is another person than the record "
            f"merged: their {differs or 'name'} differ (by the person guard's rule: {_TWO_PEOPLE}); nothing of the "
            "merge is filed. "
            "If the two are one person, have that institution correct its record; else merge under this "
            "institution's own numbers", segment="MRG", sequence=held.sequence, field=1,
            code=DUPLICATE_KEY_IDENTIFIER)
    else:
        # keyed by the member's number, the sender sent none of its own; beside its own, the advice
        # "send this institution's own number" would be wrong (rvlast34): the number is to come off
        error = HL7Error(
            "PID-3 names a record number another member institution assigned (PID-3.4 names it), and that "
            f"institution's own record of the number is another person: its {differs or 'name'} differ from this "
            f"PID's (by the person guard's rule: {_TWO_PEOPLE}); nothing of the message is filed. If the "
            "number is this patient's, have that institution correct its record; else "
            + ("send this institution's own number" if keyed else
               "take the number off this patient's identifiers in the registering system (this message would "
               "put it on the record)") + _member_operator(differs or "name"),
            segment="PID", sequence=held.sequence, field=3, repetition=held.repetition,
            code=DUPLICATE_KEY_IDENTIFIER)
    if held.institution:
        error.tally = Tally(MEMBER_REFUSED, sender, held.institution, text=_REFUSED_ROW)
    if on:
        error.leaned_on = on  # type: ignore[attr-defined]
    raise error


def _member_operator(differs: str) -> str:
    """What an operator can do with ``_refuse_member``'s refused message (kept, raw): no path files it as sent under a
    record the operator chooses -- a wrong filing costs a resident their privacy (the lead, nbfix39: rv39b MED 3's
    referral with a homophone name and a lunar birthday stays refused); the operator checks, then replays. The
    corrected copy states what differs (``differs``, ``_differing``: the same fields the refusal names) as that
    institution's record holds it -- "the name and birth date" whatever differed told the operator to correct a birth
    date that agreed and not the ID number that differed (rv40g LOW 5; idfix40b)."""
    return (". The message is kept: an operator who has checked the two are one person replays it once that "
            f"institution's record is corrected, or replays a corrected copy (same MSH-10) stating the {differs} as "
            "that record holds them, or without that institution's number")


# the count of ``_refuse_member``'s refusals, for the member's operator (``/admin/fidelity``), per sender
MEMBER_REFUSED = "member_refused"
# ... its row, read by the member's operator (Chinese first, as the view's advice; the ERR text is the sender's)
_REFUSED_ROW = (
    "另一成员机构的发送系统（count_key：机构/应用）以本机构的病案号指称另一人（姓名不同，且性别、出生日期或居民身份证号之一不符），消息被拒收（AE 205）。偶发多为号码录入错误；"
    "同一发送方计数持续增长，可能是在用本机构病案号探测患者信息，请与该机构核实。(A sending system of another member institution "
    "(count_key: institution/application) named this institution's record numbers for other persons (" + _TWO_PEOPLE + ") "
    "and was refused (AE 205). Now and then it is a mistyped number; a count that keeps growing for one sender "
    "may be someone probing this institution's numbers: check with that institution.)")


def _as_left(ref: str, earlier: Sequence[Any], stored: dict[Any, Any], leaned: list[int]) -> dict[str, Any] | None:
    """The record ``ref`` as the batch's earlier messages leave it (the last stating it), else stored,
    else as an earlier message writing it only when absent makes it; None: no such record. Its identifier
    as a later re-key of the batch leaves it (``_batch_rekey``: the person stays the version's before it)."""
    left, keyed = _batch_walk(ref, earlier)
    was = stored.get(tuple(ref.split("/", 1))) if left is None or not left.states else None
    if was is None:
        if left is None:
            return None
        leaned.append(left.at)
        was = earlier[left.at].by_reference[ref]
    if keyed is None:
        return was
    leaned.append(keyed)
    return {**was, "identifier": earlier[keyed].by_reference[ref].get("identifier") or []}


def _first_filed(ref: str, earlier: Sequence[Any], stored: dict[Any, Any], conversion: Any) -> bool:
    """Does this message state ``ref``'s person anew -- no version of it stored or written by the batch
    before, or a name, sex or birth date the version before lacked or stated otherwise (the owner's A04
    completing a record its lab's result made thin, an A08 changing the name only, an A08/A31 restating
    it as another person)? Only then can another member's earlier reference to its number newly
    contradict it: a reference was held against the record as it was when the reference was filed, and
    the same name, sex and birth date stated again contradict it no more than they did then. Not
    "restated as another person" alone: contradiction is not transitive -- a record without a sex
    contradicts no reference, completed it may (rvidentity34 finding 5)."""
    was = _as_left(ref, earlier, stored, [])  # (what it leaned on is not asked here)
    if was is None:
        return True
    before, now = demographics(was), demographics(conversion.by_reference[ref])
    return any(now[f] and now[f] != before[f] for f in ("name", "gender", "birthDate"))


def _owners_word(conversion: Any, owned: Sequence[tuple[str, str, int, tuple[str, ...]]], search: Any, read_many: Any,
                 earlier: Sequence[Any], back: Mapping[str, dict[str, Any]] | None = None) -> list[int]:
    """The number's owner speaking (identity34, the converse of ``_refuse_member``): this institution
    files, under its own record number, a person another member institution's record already names
    under this institution's MRN system (``RVX^^^FNXRMYY^MR``, filed by FNZYY while FNXRMYY held no
    record of RVX, or before FNXRMYY's A08 corrected it) -- and that record is another person
    (``contradicts_all``). The number is the owner's to give: its registration is filed, under its own
    record (never the other member's: the two records stay two, the patient index links by ID number
    only). Refusing it would let another institution's reference, which was never the owner's word,
    stop the owner's desk registering its patient. The other member's record now names another
    person's number: the sender is warned (ERR W at PID-3, naming no other institution, number nor
    person) and the member's operator counts it (``/admin/fidelity`` ``member_contradicted``, per
    owner, under the member's own institution: its record to correct). One search of the number (every page) per
    record filed for the first time or stating its person anew (``_first_filed``).

    The member's row names the member's own records (``Tally.records``: its patients, its operator's to
    open -- nothing of the owner's person) and is worded for the member (``Tally.text``, Chinese first;
    idfix34). Returns the positions in ``earlier`` whose records it counted: the count leans on them, and
    if one is not written (refused at its write) the message is settled again (rvidentity34 finding 8).

    ``back``: the records of ``owned`` filed before, each as this message leaves it (``_as_stored``) -- for them
    the owner agreeing again re-keys back what an owner's re-key keyed apart (``_rekeyed_back``, idfix35), from the
    same search (the bare number's records)."""
    back = back or {}
    leaned: list[int] = []
    rekeyed: list[str] = []  # the member's records this message re-keys, for their Provenance
    restored: list[str] = []  # ... and re-keys back, the owner agreeing again (``_rekeyed_back``)
    for ref, token, sequence, kept_by in owned:
        person = conversion.by_reference[ref]
        holders: dict[str, set[str]] = {}  # member institution -> its records naming the number
        found: dict[str, tuple[str, dict[str, Any]]] = {}  # each such record -> its institution, as read
        for at, c in enumerate(earlier):
            # only another member's message counts: a message of this institution is skipped before its
            # resources are read (the batch's messages are mostly one sender's, and each was read for every
            # later record filed: ~470 lookups a message in a batch of 50; thirty-sixth round, perfi36)
            if c.institution == conversion.institution:
                continue
            named = {other for other, r in c.by_reference.items() if other.startswith("Patient/")
                     and _holds_number(r, token) and contradicts_all(r, person)}
            if named:
                holders.setdefault(c.institution, set()).update(named)
                found.update({other: (c.institution, c.by_reference[other]) for other in named})
                leaned.append(at)
        # a record filed before: the number's records under this number's system and under each other member's
        # kept-apart system for this institution's numbers (``kept_by``: where an owner's re-key put them,
        # ``_rekeyed_back``) -- one search for both; not the bare number, every authority's records of the value
        # (each member's own MRN of it, a lab's), read and dropped on every restatement (priv36)
        system, _, value = token.partition("|")
        systems = (system, *kept_by) if ref in back else (system,)
        named = _every_patient(search, [(s, value) for s in systems])
        others = [p for p in named if f"Patient/{p.get('id')}" != ref and _holds_number(p, token)
                  and contradicts_all(p, person)]
        organizations = {str((p.get("managingOrganization") or {}).get("reference") or "") for p in others}
        wanted = [tuple(o.split("/", 1)) for o in organizations if o.startswith("Organization/")]
        codes = {f"{k[0]}/{k[1]}": _institution_of(org) for k, org in (read_many(wanted) if wanted else {}).items()}
        for p in others:
            code = codes.get(str((p.get("managingOrganization") or {}).get("reference") or ""))
            if code and code != conversion.institution:
                holders.setdefault(code, set()).add(f"Patient/{p.get('id')}")
                found.setdefault(f"Patient/{p.get('id')}", (code, p))  # the batch's version first
        for holder, records in sorted(holders.items()):
            warning = HL7Error(
                "PID-3's record number, this institution's own, is also named by another member institution's "
                "record of another person (" + _TWO_PEOPLE + "): filed under "
                "this institution's record, the number being this institution's to give; the two records are not "
                "merged, and the other institution's reference is counted for its operator to correct",
                segment="PID", sequence=sequence, field=3, code=DUPLICATE_KEY_IDENTIFIER,
                tally=Tally("member_contradicted", conversion.institution, holder, tuple(sorted(records)),
                            _MEMBERS_ROW))
            conversion.warn(warning)
        for other, (holder, was) in found.items():
            if other not in conversion.by_reference:
                _rekeyed_by_owner(conversion, other, was, token, holder)
                rekeyed.append(other)
        if ref in back:
            for other, (kept, was) in _rekeyed_back(conversion, token, back[ref], named, search, read_many, earlier,
                                                    leaned).items():
                if other not in conversion.by_reference:
                    conversion.by_reference[other] = {"resourceType": "Patient", "id": other.split("/", 1)[1]}
                    _rekeyed(conversion, other, was, kept, token)
                    restored.append(other)
    if rekeyed or restored:
        _rekeying_provenance(conversion, rekeyed, restored)
    return leaned


def _rekeyed_back(conversion: Any, token: str, owner_person: dict[str, Any], named: Sequence[dict[str, Any]],
                  search: Any, read_many: Any, earlier: Sequence[Any],
                  leaned: list[int]) -> dict[str, tuple[str, dict[str, Any]]]:
    """The member records an owner's message (this institution's) re-keyed away from its number ``token``
    (``_rekeyed_by_owner``) that the owner's record, as this message leaves it (``owner_person``: ``_as_stored``),
    is positively the same person as (``_same_person``: name, sex and birth date known on both sides and agreeing, the
    same ID number where both carry one -- not merely not two people by the rule the re-key used) -- "Patient/id" -> (the kept-apart token it carries, the record's identifiers as the
    write will meet them): the owner agreeing again puts them back, in its own write (rvid35 MED 1; before, one
    mistyped A08 at the owner unlinked every member's referral record of the number, and its correction relinked
    none until each member's HIS spoke again). Not the PID as sent: a thin A08 (the name alone, the birth date
    alone) contradicts no one, and its silence had put the owner's number back onto another person's record while
    the owner's record stayed that other person (rvfixid35 HIGH, backfix35); putting a number back links two
    records, so silence is never agreement -- the record stays apart, no error, until a fuller word.

    Only a record whose version now stored is the one an owner's re-key wrote -- a re-key Provenance
    (``rekeys``) of a message of this institution names exactly that version -- or, in a batch, whose last
    earlier version is an earlier owner message's re-key. A record its own institution has stated since
    (its ADT) or re-keyed itself (its result meeting the owner's record: ``_beside``) is that institution's
    word, not the owner's: its next message decides (``_agreed``, an ADT's restatement). Asked only when the
    owner's record is stated anew (``_first_filed``) and was filed before (a re-key needs an owner's record):
    ``named``, the stored records carrying the bare number (``_owners_word``'s one search, every page), and one
    search of the candidates' re-key Provenances. A stored record is passed over only when the batch states it or
    re-keys it before this message (``_batch_walk``): one that an earlier message merely names (a result, writing
    it only when absent) is as stored, and the batch answers as the same messages sent singly (rvfixid35 MED)."""
    from adapters.convert.common import apart_system  # (common imports this module)

    system, _, value = token.partition("|")
    owner = conversion.institution
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    # in the batch: an earlier owner message re-keyed the stored record (its version the identifier alone:
    # ``_rekeyed_by_owner``) and no later message stated it nor re-keyed it again (``_batch_rekey``); the person
    # is the record as stored, or as a message of the batch before the re-key stated it (``batch_version``)
    for p in named:
        other = f"Patient/{p.get('id')}"
        if not _holds_number(p, token):
            continue
        keyed = _batch_rekey(other, earlier)
        if keyed is None or earlier[keyed].institution != owner or not _rekeyed_in(earlier[keyed], other):
            continue
        read: list[int] = []
        now = _as_left(other, earlier, {tuple(other.split("/", 1)): p}, read)
        if now is None or not _same_person(owner_person, now):
            continue
        kept = next((_token(i) for i in now.get("identifier") or () if _token(i) != token
                     and i.get("value") == value and str(i.get("system") or "").startswith("urn:huren:mrn:")), None)
        if kept is not None:
            leaned += read
            out[other] = (kept, now)
    # stored: carrying the number under its institution's kept-apart system for this owner's numbers
    candidates = {f"Patient/{p.get('id')}": p for p in named
                  if not _holds_number(p, token) and not _batch_writes(f"Patient/{p.get('id')}", earlier)
                  and _same_person(owner_person, p)}
    organizations = {str((p.get("managingOrganization") or {}).get("reference") or "") for p in candidates.values()}
    wanted = [tuple(o.split("/", 1)) for o in organizations if o.startswith("Organization/")]
    codes = {f"{k[0]}/{k[1]}": _institution_of(org) for k, org in (read_many(wanted) if wanted else {}).items()}
    kept_of: dict[str, str] = {}
    for other, p in candidates.items():
        code = codes.get(str((p.get("managingOrganization") or {}).get("reference") or ""))
        kept = f"{apart_system(code, owner)}|{value}" if code and code != owner else ""
        if kept and kept.partition("|")[0] != system and _holds_number(p, kept):
            kept_of[other] = kept
    if kept_of:
        named = _owners_rekeys(search, sorted(kept_of), owner, read_many)
        for other, kept in kept_of.items():
            version = str((candidates[other].get("meta") or {}).get("versionId") or "")
            if version and version in named.get(other, ()):
                out[other] = (kept, candidates[other])
    return out


def _as_stored(conversion: Any, ref: str, was: dict[str, Any], merge: MergeRules | None = None) -> dict[str, Any]:
    """The owner's record ``ref`` as this message leaves it, for the persons' rule: ``was`` (stored, or as the batch
    leaves it: ``_as_left``) with its name, sex, birth date and identifiers as the merge combines this message's over
    them -- the merge itself, called (``MergeRules.combine`` of those elements alone, the message's writer, what it
    said beside them: HL7's ``""`` deletes, what the converter only assumed), not a second reading of it: a thinner
    message never erases what an earlier one stated, and a name of another kind (XPN-7's use, the representation:
    ``by-key``) is added beside the stored names, not over them -- laid over whole (before, rv36a LOW), an A08 naming
    冯三 as a nickname made a record officially 陈四 冯三's and put his number back. The identifiers: the ID number the
    record will carry (``_same_person``), which the registration states whole. ``merge``: the site's rules (the
    repository's), else the shipped ones."""
    rules = merge if merge is not None else shipped()  # (compiled once: ``shipped`` is cached)
    stated = ("resourceType", "id", *_PERSON, "identifier")
    said = conversion.said.get(ref)
    with rules.saying({ref: said} if said is not None else None):
        merged = rules.combine({**{k: was[k] for k in stated if k in was}, "resourceType": "Patient",
                                "id": ref.split("/", 1)[1]},
                               {k: v for k, v in conversion.by_reference[ref].items() if k in stated},
                               conversion.writer or _WRITER).resource
    return {**{k: v for k, v in was.items() if k not in stated}, **merged}


# the writer a conversion made without its message type is combined as (an owner's restatement: its ADT)
_WRITER = "ADT"


# the elements of a Patient the persons' rule compares (``demographics``)
_PERSON = ("name", "gender", "birthDate")


def _same_person(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Are two Patient versions positively one person -- what putting a number back onto a record (``_rekeyed_back``),
    an act of linking two records, needs (DOMAIN.md "Same person": the number, with name, sex and birth date as the
    consistency checks)? Name, sex and birth date known on both sides, and each agreeing (``conflicts_between``: the
    name as written after trivial normalisation, the birth date each at its own precision, ``same_day``); an ID
    number, where both carry one, the same. Not ``contradicts_all``, the rule that keys a record apart: it finds two
    people only when the name differs and the sex, a day of birth (nbfix38) or the ID numbers (nbfix39) too, so one field in common -- a
    coin-flip sex -- had put FNXRMYY's number back onto FNZYY's 冯三 M 1961 from an owner's record of 陈四 M 1992 (rv36a
    MED 5; the lead: positive agreement). An unknown sex or a missing birth date is no agreement (backfix35). Between
    the two rules a record stays as it is: 陈四 M born 1992 (a year, no day) neither keys 冯三 M 1961 apart nor puts the
    number back."""
    known = (demographics(a), demographics(b))
    if not all(d[f] for d in known for f in _PERSON) or conflicts_between(*known):
        return False
    numbers = (id_numbers(a), id_numbers(b))
    return not all(numbers) or numbers[0] == numbers[1]


def _batch_writes(ref: str, earlier: Sequence[Any]) -> bool:
    """Does an earlier message of the batch state ``ref`` or re-key it (``_batch_walk``)? Not one merely naming it."""
    left, keyed = _batch_walk(ref, earlier)
    return keyed is not None or (left is not None and left.states)


def _rekeyed_in(conversion: Any, ref: str) -> bool:
    """Did ``conversion`` (an earlier message of the batch) re-key ``ref`` (its re-key Provenance names it)?"""
    return any(rekeys(r) and {"reference": ref} in (r.get("target") or ())
               for other, r in conversion.by_reference.items() if other.startswith("Provenance/"))


def _owners_rekeys(search: Any, refs: Sequence[str], owner: str, read_many: Any = None) -> dict[str, set[str]]:
    """Each record of ``refs`` ("Patient/id") -> its versions that a re-key Provenance (``rekeys``) of a message of
    ``owner`` names (``Patient/x/_history/n``: the ingest pins each target to the version filed). Searched by
    target and the re-key's agent type (assembler: huren itself), a page at a time -- not every Provenance of the
    records (each result's names its record). Only the feed's own (its writer mark a message's, ``_marks``): a FHIR
    client's Provenance with the re-key's reason and the owner's message named had put a number back (priv36);
    no writer marks at hand, none is."""
    marks = _marks(search, read_many)
    out: dict[str, set[str]] = {}
    if marks is None:
        return out
    offset = 0
    while True:
        page = search("Provenance", [("target", ",".join(refs)), ("agent-type", _ASSEMBLER), ("_sort", "_id"),
                                     ("_count", str(_OWNERS_PAGE)), ("_offset", str(offset))])
        stored_by = marks.writers("Provenance", [str(prov.get("id")) for prov in page.resources])
        for prov in page.resources:
            if stored_by.get(str(prov.get("id"))) in NOT_THE_FEED:
                continue
            if rekeys(prov) and any(institution == owner for institution, _ in _named_messages(prov)):
                for ref in refs:
                    out.setdefault(ref, set()).update(_versions_named(prov, ref) - {""})
        offset += len(page.resources)
        if not page.has_next or not page.resources:
            return out


# the agent type of the re-key's Provenance (``_rekeying_provenance``): a message's own names its sender the author
_ASSEMBLER = "http://terminology.hl7.org/CodeSystem/provenance-participant-type|assembler"


def _every_patient(search: Any, tokens: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """Every stored Patient carrying an identifier of ``tokens`` (system, value), in id order: the owner's
    check counts and re-keys each member record naming its number -- the first page alone (50) left the
    rest answering the owner's MRN for another person, uncounted (ownfix34's limit). Read by the store's
    narrow read (``FhirRepository.carrying``, of the repository whose ``search`` this is: one indexed
    statement, the same answer as the search every page), else by that search a page
    (``_OWNERS_PAGE``) at a time: the search's parsing and general compiler were ~2.3 % of a first
    version's CPU, for one primary-key probe (thirty-seventh round, perfi37)."""
    carrying = getattr(getattr(search, "__self__", None), "carrying", None)
    if carrying is not None:
        return carrying("Patient", "identifier", tokens)
    token = ",".join(token_value(s, value) for s, value in tokens)
    out: list[dict[str, Any]] = []
    while True:
        page = search("Patient", [("identifier", token), ("_sort", "_id"), ("_count", str(_OWNERS_PAGE)),
                                  ("_offset", str(len(out)))])
        out += page.resources
        if not page.has_next or not page.resources:
            return out


# the page of ``_every_patient``: one number's records are the owner's and the few records of other members
# naming it -- one page, but for a number many records name (a referral hospital's, misread by a sender)
_OWNERS_PAGE = 200


def _rekeyed_by_owner(conversion: Any, ref: str, was: dict[str, Any], token: str, holder: str) -> None:
    """The member's record ``ref`` naming the owner's number (``token``) for another person, re-keyed by
    the owner's accepted message itself (ownfix34): its identifier alone, the number under the member's
    kept-apart system (``common.apart_system``: ``urn:huren:mrn:FNZYY:FNXRMYY``), value, type and
    assigner kept, as ``_rekeyed`` writes it when the member next speaks (mfix34) -- one new version, in
    the owner's write. Not waiting for the member: it may never speak of that patient again, and until
    then a search by the owner's MRN answered two people (rvmfix34 MED 1, rvidentity34 MED 3). The engine
    needs no fact of the member's for it: the same re-key, of the same record, with the same data. The
    version is named by a Provenance of its own (``_rekeying_provenance``, ident35)."""
    from adapters.convert.common import apart_system  # (common imports this module)

    kept = f"{apart_system(holder, conversion.institution)}|{token.partition('|')[2]}"
    conversion.by_reference[ref] = {"resourceType": "Patient", "id": ref.split("/", 1)[1]}
    _rekeyed(conversion, ref, was, token, kept)


def _rekeying_provenance(conversion: Any, refs: Sequence[str], back: Sequence[str] = ()) -> None:
    """The Provenance of the versions the owner's message re-keyed (``_rekeyed_by_owner``), one naming them
    all, written and signed in the message's write as its own Provenance is (the ingest names the exact
    versions filed and signs each Provenance of a message over their stored bytes). Apart from the
    message's Provenance, which speaks for the message -- an A04's registers every record it names
    (``registered_by``, the walk ``_walked``): naming FNZYY's record there would make FNXRMYY's HIS its
    registrar, its first when a result made the record. This one registers nothing (``rekeys``): its
    activity is a revision (v3 DataOperation UPDATE), its reason the owner's contradiction, its agent
    huren (no institution asked for it), its entity the owner's message (what the change was made on).
    So the record's history says who changed its identifier and why, and the walk reads every version
    named (before: the version unnamed, the registrar "cannot be told" and the member's own A08 refused).
    Its id is the message Provenance's, re-keyed: a replay writes it again, not a second one. The records the
    message re-keys back (``back``: the owner agreeing again, ``_rekeyed_back``, idfix35) are named by the same
    Provenance, its reason's text saying so."""
    own = next((r for ref, r in conversion.by_reference.items() if ref.startswith("Provenance/") and not rekeys(r)),
               None)
    if own is None:  # (a conversion without its message's Provenance names nothing to act on)
        return
    prov: dict[str, Any] = {
        "resourceType": "Provenance",
        "id": deterministic_id(conversion.institution, "Provenance", f"rekeyed|{own.get('id')}"),
        "target": [{"reference": ref} for ref in (*refs, *back)],
        "recorded": own.get("recorded"),
        "activity": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                                 "code": "UPDATE", "display": "revise"}],
                     "text": "identifier re-keyed"},
        "reason": [{"coding": [REKEYED], "text": " / ".join(t for t, named in ((_REKEYED_TEXT, refs),
                                                                               (_BACK_TEXT, back)) if named)}],
        "agent": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                                        "code": "assembler", "display": "Assembler"}]},
                   "who": {"type": "Device", "display": "huren integration engine"}}],
        "entity": deepcopy(own.get("entity") or []),
    }
    conversion.by_reference[f"Provenance/{prov['id']}"] = prov
    conversion._bundle = None


# the reason of ``_rekeying_provenance``: what tells it from a message's own Provenance (``rekeys``)
REKEYED = {"system": "urn:huren:provenance-reason", "code": "member-number-contradicted",
           "display": "another member institution's number contradicted by that institution"}
_REKEYED_TEXT = (
    "the institution that assigned the record number registered it as another person (" + _TWO_PEOPLE
    + "): the number is kept, as sent, under this record's institution's system for "
    "other authorities' numbers, so that it no longer answers that institution's record number")

# ... of the records it re-keys back (``_rekeyed_back``): the same Provenance, the owner agreeing again
_BACK_TEXT = (
    "the institution that assigned the record number registered it again as this record's person (name, sex and "
    "birth date no longer all differ): the number, as sent, is back under that institution's record-number system")


def rekeys(provenance: dict[str, Any]) -> bool:
    """Is ``provenance`` one naming the versions an owner's message re-keyed (``_rekeying_provenance``)? Such
    a Provenance registers nothing, whatever its message's event (``registered_by``, ``_walked``)."""
    return any(c.get("system") == REKEYED["system"] and c.get("code") == REKEYED["code"]
               for reason in provenance.get("reason") or () for c in (reason or {}).get("coding") or ())


# the member's fidelity row of ``_owners_word``'s warning: read by the member's operator, whose records
# the row lists (``records``), Chinese first as the view's advice (idfix34; the ERR text is the owner's)
_MEMBERS_ROW = (
    "本机构病历引用的另一成员机构病案号（PID-3.4 为该机构），已由该机构登记为另一人（姓名不同，且性别、出生日期或居民身份证号之一不符）：号码归该机构分配，"
    "两份病历未合并。请核对 records 所列本机构病历，更正该号码。(A record number another member institution assigned, "
    "named by this institution's records listed (records), is also named by that institution's registration of "
    "another person (" + _TWO_PEOPLE + "): the number is that institution's "
    "to give and the two records are not merged; correct the number on the records listed.)")


def _holds_number(patient: dict[str, Any], token: str) -> bool:
    system, _, value = token.partition("|")
    return any(i.get("system") == system and i.get("value") == value for i in patient.get("identifier") or ())


def _institution_of(organization: dict[str, Any] | None) -> str | None:
    """The member institution code an Organization the converter made for a sender names
    (``actors.organization``: its identifier under ``INSTITUTION_SYSTEM``)."""
    for ident in (organization or {}).get("identifier") or ():
        if ident.get("system") == INSTITUTION_SYSTEM and ident.get("value"):
            return str(ident["value"])
    return None


def _restated(conversion: Any, sequence: int, registrar: str | None, leaned: list[int]) -> None:
    """An A08/A31 restating a record as another person: from the application that registered the
    record, accepted and warned of (the registration system's own correction, rare, and every result
    filed under the record now reads as the new person's: an operator should see it); from another
    application, or when the registering one is not known, refused."""
    if not _may_restate(conversion, registrar):
        _refused_at_pid3(
            "PID-3 names a record this update (ADT^A08/A31) restates as another person (against the stored "
            "record's, " + _TWO_PEOPLE + "), and this application (MSH-3) did not register the record "
            "(or no filed registration of it is known): only the registering application, or another of the "
            "institution's registration_applications (institutions.yaml), may correct who its record's person is; "
            "nothing is filed. Ask the registering system or the operator to correct the record", sequence, leaned)
    warning = HL7Error(
        "PID-3's record restated as another person by its registering application (" + _TWO_PEOPLE
        + ": changed at once, ADT^A08/A31); accepted as the registration's correction, and every result filed "
        "under the record now reads as this person's -- check it is not a number given to someone else",
        segment="PID", sequence=sequence, field=3, code=DUPLICATE_KEY_IDENTIFIER)
    conversion.warn(warning)


def _declares(conversion: Any) -> bool:
    """Is this message's application (MSH-3) one of its institution's declared ``registration_applications``
    (institutions.yaml)? By ``applications.is_declared``: a form the site's ``application_aliases`` name with a
    declared application is it -- the HIS whose interface moved to ``^<OID>^ISO`` is still the declared HIS (compared
    by equality since decl42, its word had been held as an undeclared application's: last43 LOW; low44) -- as sent,
    every component the form states: ``HISV2^<another OID>^ISO`` is not the HIS aliased as ``HISV2^<OID>^ISO``
    (rv44a MED 1; low44b)."""
    return bool(conversion.registrars) and is_declared(conversion.institution, conversion.sender,
                                                       conversion.registrars, conversion.site)


def _may_restate(conversion: Any, registrar: str | None) -> bool:
    """May this message's application restate as another person a record ``registrar`` registered? Its
    registering application may; so may any of the institution's declared registration applications
    (``institutions.yaml`` ``registration_applications``: an HIS and a separate 体检 registration system
    registering the same institution's persons) a record another of them registered -- never one whose
    registration cannot be told, nor one an undeclared application (a LIS's A04) registered. A record no
    registration has spoken for (a result's placeholder): any application, with nothing declared (its
    first registration will settle it); once the site declares its registration applications, only
    they -- the site has said which systems say who a record's person is, and a LIS's A08 is not one."""
    declared = conversion.registrars
    if registrar == _UNREGISTERED:
        return not declared or _declares(conversion)
    if registrar is None or registrar == _UNSPOKEN:
        return False
    return sends_as(conversion.institution, conversion.sender, registrar, conversion.site) or (
        _declares(conversion) and code_declared(conversion.institution, registrar, declared, conversion.site))


class Renumber(NamedTuple):
    """``_may_renumber``'s answer: whether this message may, and who may (``rule`` and the ``apps`` it names by
    MSH-3, for the W 205 and the refusal's advice -- never patient data). ``held``: the no is the operator's to
    overrule -- another application registered the record's number (``RENUMBER_OWNER``): the change is kept with
    the message (``held_claims``) and listed for the operator's decision (``GET /admin/held``; reg41)."""
    may: bool
    rule: str = ""
    apps: tuple[str, ...] = ()
    held: bool = False

    @property
    def who(self) -> str:
        """The rule with the applications it names: "... (MSH-3 HIS, TJXT)" (words.yaml reads the names)."""
        return f"{self.rule} (MSH-3 {', '.join(self.apps) or 'unknown'})"


def _may_renumber(conversion: Any, ref: str, earlier: Sequence[Any], search: Any, messages: Any,
                  read_many: Any, numbers: frozenset[str] | None = None) -> Renumber:
    """May this message replace or take off (``""^^^^NNCHN``) the resident ID number record ``ref`` holds? The
    one rule of it (``_registrars_number``, ``_registrars_null``, and the refusal's advice: ``_against_kept_number``),
    with who may, in words, for the W or the AE that says no (never patient data: MSH-3 names). ``numbers``: the
    ID numbers the record holds as the batch leaves it, else stored (``_numbers_left``; read here when not given).

    The site declares its ``registration_applications``: any of them may, whoever registered the record -- a
    county that replaced its HIS (MSH-3 HIS -> HIS2, only HIS2 declared) corrects over HL7 the records the old
    HIS registered (rv40l MED 2), and a declared application already wins the registrar's place from an undeclared
    one (``_registered``); an undeclared application only on a record it is the registrar of (one no declared
    application registered stays its own, as ``_may_restate`` has it).

    None declared (a site that cannot say; the shipped demo site declares each hospital's HIS since decl42): nothing
    tells the HIS from a LIS sending ADT under the HIS's MRN (PID-3.4 the institution's authority either way), so "the first registration received" (``_registered``) is no owner of
    the record's number (rv40l HIGH 1) -- the number's own history is (forty-first round, reg41). The record holds a
    valid number that an application which registered the record stated (``_number_owners``: the messages that
    wrote the versions holding it since it came, those of a registering application): that application may
    replace or take it off -- the HIS re-sending its A04/A08 corrected, as before -- and any other may not, its
    registration event either. A LIS's walk-in A04 under the HIS's MRN stating another valid number (the clerk
    picked the wrong 甲一 of two women of one name and birth date) had replaced the HIS's number with the other
    woman's, linked the two records and filed one woman's results as the other's priors (rv40m HIGH 1); and the
    walk-in made the LIS a registrant for good, whose later A08s and null then replaced the HIS's number too. Which
    of the two is right only a person can tell, so the change is held, not refused: the record keeps its number,
    ERR W 205 names both applications, and the message is listed for the operator's decision (``Renumber.held``,
    ord40's ``POST /admin/quarantine/{id}/owner``: the same hold, audit and page as a held order change), whose
    replay takes it (``Conversion.decided_renumbers``). Two MSH-3s the site names one application
    (senders.yaml ``application_aliases``) are one (``applications.sends_as``: as sent).

    Else (the number no registering application's: a placeholder's, a FHIR client's, one whose history cannot be
    read): an application that registers the record -- this message a registration event (A01/A04/A05/A28, a
    merge naming its survivor: ``registers_person``), or its application's registration of the record filed before
    (the registrations table, any application's first) or earlier in the batch. An update (A08/A31) from an
    application that never registered the record (the LIS's A08 on the HIS's record: a47fix40) may not. A record
    only a result's placeholder made (``_UNREGISTERED``) is anyone's to number, as ``_may_restate`` says; one whose
    registrations cannot be told (None) or no registration spoke for (``_UNSPOKEN``: a FHIR client's, results naming
    it or not -- a result naming a record is no registration, regfix41): only a registration event."""
    declared = conversion.registrars
    if declared:
        if _declares(conversion):
            return Renumber(True)
        registrar = _with_batch(_registered(ref, search, messages, declared, read_many), ref, earlier, declared)
        return Renumber(registrar is not None and sends_as(conversion.institution, conversion.sender, registrar,
                                                            conversion.site), RENUMBER_DECLARED, tuple(declared))
    registrants = _registrants(ref, search, messages, read_many)
    if registrants == {_UNREGISTERED}:
        return Renumber(True)
    if registrants == {_UNSPOKEN} and _placeholder_in_batch(ref, earlier, read_many):
        return Renumber(True)  # (as it will be once the batch's earlier messages are filed: ``_UNREGISTERED``)
    registrants = (registrants or set()) - {_UNREGISTERED, _UNSPOKEN}
    registrants |= set(_batch_registrants(ref, earlier))
    if numbers is None:
        numbers = _numbers_left(ref, earlier, read_many([tuple(ref.split("/", 1))]) if read_many is not None else {},
                                [])
    owners = _number_owners(conversion, ref, frozenset(n for n in numbers if valid_number(n)), registrants, earlier,
                            search, messages, read_many)
    if owners:
        if any(sends_as(conversion.institution, conversion.sender, owner, conversion.site) for owner in owners):
            return Renumber(True)
        if ref in conversion.decided_renumbers:  # (the operator took this message's change as the owner's)
            conversion.decision_answered = True
            return Renumber(True)
        return Renumber(False, RENUMBER_OWNER, tuple(sorted(owners)), held=True)
    if conversion.registers:
        return Renumber(True)
    return Renumber(any(sends_as(conversion.institution, conversion.sender, r, conversion.site) for r in registrants),
                    RENUMBER_REGISTRANTS, tuple(sorted(registrants)))


def _numbers_left(ref: str, earlier: Sequence[Any], stored: dict[Any, Any], leaned: list[int]) -> frozenset[str]:
    """The resident ID numbers (``id_numbers``) record ``ref`` holds as the batch's earlier messages leave it, else
    stored: the last earlier message stating numbers of it; one stating none, or whose numbers were left out
    (``_registrars_number``), or whose null was not taken, leaves them as they were (``merge.yaml`` ``beside``) --
    a null taken (its delete still said) takes them off. ``_as_left``'s version is the PID as written, without the
    numbers left out of it, so a batch had read a number kept by a W as no number at all and decided otherwise than
    the same messages one by one (hooks19's rule). Else the stored record's, else a placeholder's the batch makes."""
    made = None
    for at in range(len(earlier) - 1, -1, -1):
        c = earlier[at]
        person = c.by_reference.get(ref)
        if person is None:
            continue
        if ref in c.create_only:
            made = at
            continue
        if numbers := id_numbers(person):
            leaned.append(at)
            return numbers
        if _nulled(c, ref):
            leaned.append(at)
            return frozenset()
    was = stored.get(tuple(ref.split("/", 1)))
    if was is None and made is not None:
        leaned.append(made)
        was = earlier[made].by_reference[ref]
    return id_numbers(was) if was is not None else frozenset()


def _number_owners(conversion: Any, ref: str, numbers: frozenset[str], registrants: Collection[str],
                   earlier: Sequence[Any], search: Any, messages: Any, read_many: Any) -> set[str]:
    """The application that registered the valid resident ID ``numbers`` record ``ref`` holds: of the versions
    holding them since they came (the run: the stored versions, then the batch's earlier messages stating the
    record, back to the first stating other numbers -- one stating none leaves the number as it was, ``merge.yaml``
    ``beside``), the sender of the first one made by a registration (its message a registration event:
    ``registers_person``) or by an application that registered the record (``registrants``: the registrations
    table's, the batch's -- the HIS's A08 correcting the number of a record it registered; asked by ``same_code``, as
    the take-over asks, never by equality: the HIS's A08 sent as ``his``, or under another form of its alias group,
    is the registrant's -- by equality the EMR's A04 restating the number had been read as its owner, and the EMR's
    A08 replaced the HIS's number unheld; forty-fifth round, low45). A version's makers are read
    from the Provenances naming that very version and their filed messages (``_makers``), in the order received: the
    message that wrote it, and one that stated the record as stored (``unchanged``: the HIS's A04 registering a
    LIS's placeholder with the very number the result stated writes nothing, yet registers the number as much as an
    A04 that also adds an address) -- the first received of them that registers is the owner, so a later echo (the
    LIS's A04 restating the HIS's number, a re-send filed before stfix40 kept ``unchanged``) makes no second owner.
    Not one whose own number was held (its ``held_claims``: it kept the number, it did not state it). A batch reads
    its earlier messages as the store will read their Provenances, each in its turn: whether or not its write would
    change the record, a registration stating no number (the number kept beside) and a result naming the record
    (create-only) among them, not one whose renumbering was held nor one whose null was taken (its version holds no
    number, passed over as a stored one is) -- one by one the RIS's A08 after the HIS's A04 over a LIS placeholder
    had been answered by the registrants' rule and in one batch held, or the other way round (regfix41). A message
    stating no number is one of the run only when the record as it left it (``_numbers_left``: the batch's earlier
    messages, else stored) held the number, as its stored version would: the HIS's A04 by MRN alone BEFORE the LIS's
    walk-in added the number had been read in a batch as the number's maker, and the HIS's A08 replaced the LIS's
    number unwarned where one by one it was held (rv41g HIGH 1, idfix41b).
    Empty when the record holds no valid number, or no registering message made a version of the run (a result's
    placeholder numbered by a LIS's ORU and never registered, a FHIR client's record): ``_may_renumber`` then answers
    by the registrants' rule. Read only when a message would replace or take off the number (a PID's number differs
    from the record's), never on the common path."""
    if not numbers:
        return set()
    batch: list[tuple[str, bool]] = []  # the batch's makers of the run, newest first
    whole = True  # the run reaches back into the store
    oldest: int | None = None  # (the batch's oldest message of the run)
    stored: dict[Any, Any] | None = None  # (read once, when a message stating no number is met)
    for at in range(len(earlier) - 1, -1, -1):
        c = earlier[at]
        person = c.by_reference.get(ref)
        if person is None:
            continue
        theirs = frozenset() if ref in c.create_only else id_numbers(person)
        if theirs and not numbers <= theirs:
            whole = False
            break
        if not theirs:  # (its version holds what the record held as it left it: in the run only if the number)
            if stored is None:
                stored = read_many([tuple(ref.split("/", 1))]) if read_many is not None else {}
            kept = _numbers_left(ref, earlier[:at + 1], stored, [])
            if kept and not numbers <= kept:
                whole = False
                break
            if not kept:
                continue
        oldest = at
        if not _renumber_held(c.held, ref):
            batch.append((_registrar_of(c), bool(c.registers)))
    makers: list[tuple[str, bool]] = []  # in the order received
    marks = _marks(search, read_many)
    if whole and marks is not None and messages is not None:
        rtype, _, rid = ref.partition("/")
        try:
            versions = marks.versions(rtype, rid)
        except NotFound:
            versions = []
        run: list[str] = []  # newest first
        first = 0  # (the oldest version of the run, in ``versions``)
        for at, version in enumerate(versions):
            if version.resource is None:
                break
            theirs = id_numbers(version.resource)
            if theirs and not numbers <= theirs:
                break
            if theirs:
                run.append(str(version.version))
                first = at
        older = versions[first + 1:] if run else versions  # (the run all the batch's: every stored version is older)
        holding = (versions[first].resource if run else
                   earlier[oldest].by_reference[ref] if oldest is not None else None)  # (the run's oldest)
        if holding is not None and _placeholders_number(ref, holding, older, () if run else earlier[:oldest],
                                                        earlier, search, messages, marks):
            run, batch = [], []  # (a placeholder's number another record holds: no owner -- the registrants' rule)
        if run:
            made = _makers(ref, set(run), search, messages, marks)
            makers = [(app, registers) for v in reversed(run) for _, app, registers in sorted(made.get(v, ()))]
    makers += reversed(batch)
    return next(({app} for app, registers in makers
                 if registers or any(same_code(conversion.institution, app, r, conversion.site) for r in registrants)),
                set())


def _placeholders_number(ref: str, holding: dict[str, Any], older: Sequence[Any], before: Sequence[Any],
                         earlier: Sequence[Any], search: Any, messages: Any, marks: Any) -> bool:
    """Was the number record ``ref`` holds (``holding``: the oldest version of its run, stored or the batch's) first given to a result's placeholder -- every stored version
    older than the number's run (``older``) and every message of the batch before the run's first (``before``, when
    the run is all the batch's) holds no number, and no registration made any of them, a message did (stored:
    ``_makers``; the batch's: its messages' own event) -- while another active record holds it too (``_holders``,
    stored or as the batch's ``earlier`` messages leave it; linked or not)? Then the application that numbered the
    placeholder is no owner of the number (``_number_owners``: none -- the registrants' rule answers): the LIS's
    walk-in A04 on its own result's placeholder stating the number the HIS had registered on another woman's record
    was taken before ``_first_number_held`` held it (or, nobody holding it then, before her registration came), the
    index linked the two, and the HIS's own A04 of the placeholder's MRN with her true number was held as "only the
    application that registered the record's ID number (MSH-3 LIS)" -- the leak kept and the registrar overruled by a
    word that registered nobody's number (rv41n HIGH 2; forty-first round, regfix41d). The batch is read as the store
    will read it once filed: the same four messages in one ingestor batch had held the HIS's A04 (the LIS's walk-in
    earlier in the batch read as the owner, the other woman's record earlier in the batch not seen) where one by one
    it parted them (rv41q HIGH 3; forty-second round, decl42). A number the HIS's registration first gave the
    placeholder, no other record holding it, keeps its owner (rv40m HIGH 1: the LIS's walk-in does not replace it)."""
    named = [c for c in before if ref in c.by_reference]
    if not older and not named:
        return False
    if any(v.resource is None or id_numbers(v.resource) for v in older):
        return False
    if any(c.registers or (ref not in c.create_only and id_numbers(c.by_reference[ref])) for c in named):
        return False
    if older:
        made = _makers(ref, {str(v.version) for v in older}, search, messages, marks)
        if not made or any(registers for found in made.values() for _, _, registers in found):
            return False
    return bool(_holders(ref, _id_tokens(holding), earlier, search))


def _makers(ref: str, versions: set[str], search: Any, messages: Any,
            marks: Any) -> dict[str, set[tuple[str, str, bool]]]:
    """Version of ``ref`` -> (received at, application (MSH-3), whether a registration event) of each filed message
    that stated it, of ``versions``: the Provenances naming that very version (``_versions_named``), the feed's own
    (``_naming``), and of their messages every one but those that held its renumbering (``held_claims``'
    ``RENUMBER_CLAIM`` for it) -- the one that wrote it and those that left it as stored (``unchanged``) alike, the
    time received telling them apart (``_number_owners``: the first received that registers owns the number)."""
    out: dict[str, set[tuple[str, str, bool]]] = {}
    for prov, docs in _naming(ref, versions, search, messages, marks):
        made = {(str(doc.get("received_at") or ""), _registrar_of(doc), registers_person(*_event(doc))) for doc in docs
                if not _renumber_held(doc.get("held_claims") or (), ref)}
        for version in _versions_named(prov, ref) & versions:
            out.setdefault(version, set()).update(made)
    return out


def _renumber_held(claims: Sequence[Any], ref: str) -> bool:
    """Do a message's held claims (its document's ``held_claims``, a batch's ``Conversion.held``) hold a renumbering
    of ``ref`` (``_hold_renumber``): it kept the record's number, it did not state it."""
    return any(isinstance(c, dict) and c.get("claim") == RENUMBER_CLAIM and c.get("resource") == ref for c in claims)


def _nulled(conversion: Any, ref: str) -> bool:
    """Did this message's ``""^^^^NNCHN`` take ``ref``'s resident ID number off (its delete still said: a null not
    taken is dropped from ``said``, ``_kept_on``)? ``_numbers_left``'s reading."""
    said = conversion.said.get(ref)
    return said is not None and any(d.element == "identifier" and d.where == NATIONAL_ENTRIES for d in said.deletes)


# who may replace or take off a record's ID number (``_may_renumber``), as the W 205 and the refusal's advice say it
# (words.yaml ``w-id-number-not-registrar``, ``w-id-null-not-registrar`` read the MSH-3 names after "MSH-3 ")
RENUMBER_DECLARED = "the institution's registration_applications (institutions.yaml)"
RENUMBER_REGISTRANTS = "a registration (ADT^A01/A04/A05/A28), or an update from an application that registered the record"
RENUMBER_OWNER = "the application that registered the record's ID number"
RENUMBER_FIRST = "the application that registered the record"  # (a record holding no number: ``_first_number_held``)
# a number another record holds, given by an application the site did not declare (``_links_unheld``: decl42)
RENUMBER_LINKS = "the institution's declared registration_applications (institutions.yaml)"
# a held renumbering's claim (``held_claims``' ``claim``: what an order's hold names ``KIND|system|value``): the
# record's resident ID number, never the number itself -- the list is read by staff, the number is another person's
RENUMBER_CLAIM = "NNCHN"


def _hold_renumber(conversion: Any, ref: str, sequence: int, repetition: int | None = None) -> None:
    """Keep the renumbering this message was not let make (``Renumber.held``) with the message, as the merge keeps a
    held order change (``held_claims``: ``engine.ingest`` adds ``Conversion.held``): the operator's list and
    decision (``GET /admin/held``, ``POST /admin/quarantine/{id}/owner``) are ord40's, one machinery."""
    at = f"PID[{sequence}]-3" + (f"[{repetition}]" if repetition and repetition > 1 else "")
    claim = {"claim": RENUMBER_CLAIM, "resource": ref, "element": "identifier", "at": at, "elsewhere": False,
             "kind": "id-number"}
    if claim not in conversion.held:
        conversion.held.append(claim)


def _held_words(answer: Renumber, app: str) -> str:
    """What a W 205 adds for a held renumbering (``Renumber.held``): both applications by MSH-3, and that the
    operator decides (words.yaml reads the names). ``app``: this message's as a registrar is named (``_registrar_of``:
    its MSH-3 whole, so ``^HIS^DNS`` is not told "(MSH-3 HIS) is another" beside the owner ``HIS``; reg45)."""
    if not answer.held:
        return ""
    return (f"; this message's application (MSH-3 {app or 'unknown'}) is another: held for the operator, who may take "
            "it as the number's owner's change")


def _placeholder_in_batch(ref: str, earlier: Sequence[Any], read_many: Any) -> bool:
    """Whether an earlier message of the batch made the record ``ref`` -- not stored, and named by an earlier message
    -- and none of them registers it: the placeholder a result or an order made, which ``_registered`` reads
    ``_UNREGISTERED`` once they are filed -- a batch must decide as the same messages sent one by one (the HIS's A08
    correcting the number its own ORM placed on a record it made, in one batch with it, had been refused AE at
    PID-8: hooks19). A stored record no registration spoke for (a FHIR client's) that a result of the batch names
    stays ``_UNSPOKEN``, as ``_named`` reads it once filed: the result made nothing (rv41a LOW 1, MED 3)."""
    if not any(ref in c.by_reference for c in earlier) or _batch_registrants(ref, earlier):
        return False
    return read_many is not None and tuple(ref.split("/", 1)) not in read_many([tuple(ref.split("/", 1))])


def _renumbered_on(ref: str, earlier: Sequence[Any], stored: dict[Any, Any], leaned: list[int],
                   read_many: Any) -> str:
    """The record whose resident ID numbers a renumbering of ``ref`` is judged on (``_registrars_number``): ``ref``
    itself, or -- merged away (its ``Patient.link`` ``replaced-by``, as the batch leaves it: ``_as_left_linked``) --
    the survivor it was merged into, along the chain (at most ``_CHAIN_READ`` records; read into ``stored``). A
    merged-away record holds no number of its own (the merge carried it to the survivor), so a message under its
    MRN stating another number was read as numbering a record without one and taken: after the HIS's A40 the LIS's
    held walk-in A04, replayed plainly (as the owner decision's 409 asked) or sent again, gave the merged-away record
    another woman's number, the index linked it to her record while it was the survivor's, and her resident read
    the survivor's record and results (rv41d HIGH 2). The person's number is the survivor's: who may replace it is
    judged on it, so the change is held again as it was before the merge (forty-first round, regfix41b)."""
    at, seen = ref, {ref}
    while len(seen) <= _CHAIN_READ:
        key = tuple(at.split("/", 1))
        if key not in stored and read_many is not None:
            stored.update(read_many([key]))
        record = _as_left_linked(at, earlier, stored, leaned, None)
        after = _replaced_by(record)
        if after is None or after in seen:
            return at
        seen.add(after)
        at = after
    return at


class Barred(NamedTuple):
    """Why the operator's decision may not take a held renumbering of a record (``decision_barred``): ``merged`` --
    the record was merged into ``other`` (its number is that record's); else another record, ``other``, holds the
    number the message states. ``mrn``: that record's number at the sending institution (MR under its
    ``mrn_system``), "" when it holds none there -- what the operator is told, never the other person's name or ID
    number. ``member``: when it holds no MRN there, the public name of the member institution whose record it is
    (institutions.yaml ``name``, read by its MRN system; "" when none): the operator learns which member holds the
    number -- never its MRN there (regfix41c, rv41j MED 3)."""
    merged: bool
    other: str
    mrn: str
    member: str = ""


def decision_barred(conversion: Any, ref: str, search: Any, read_many: Any) -> Barred | None:
    """May an operator's decision (``POST /admin/quarantine/{id}/owner``, ``huren quarantine replay ID --as-owner``)
    not give record ``ref`` the resident ID number its held message states (``conversion``: the message converted
    again, its PID's numbers as stated)? Barred when ``ref`` was merged into another record (``_renumbered_on``: the
    number is the survivor's, and the decision's replay would hold it again) or when another stored record, not one
    of ``ref``'s person (joined to it by no ``Patient.link``: a merge, the index's or an operator's link) and not
    ``active: false``, holds a number the message states. Why: the page asks the operator to check the resident's
    ID card; after a mis-selected walk-in (the LIS picked QH, the other 甲六 came) the card *is* the other woman's and
    the number "right" -- taking it made QH hold QI's number, the index joined the two records, and QI's resident
    read QH's record and results (rv41d HIGH 1). Which record the number is whose is then the registration's to
    correct (the other record first, or a merge if they are one person), never a decision on this message's
    renumbering. Read only on the decision and the operator's view of a held message, never on a message's path.

    A record this message's merge replaces by ``ref`` (``merged_by``: MRG-1's record, the held merge the decision
    takes) is no other holder: HL7 v2.5.1 3.3.47/3.3.40 move its identifiers to the survivor, so the number it holds
    is the one the merge gives ``ref``. Counted, the LIS's held A47 whose PID restates her number beside the new MRN
    could never be decided -- 409 "held by another record", that record MRG-1's own, the operator told to take a
    right number off (rv44a MED 2; forty-fourth round, low44b)."""
    stored: dict[Any, Any] = {}
    survivor = _renumbered_on(ref, (), stored, [], read_many)
    if survivor != ref:
        return Barred(True, survivor, _mrn_at_sender(conversion, stored.get(tuple(survivor.split("/", 1)))))
    holder = _other_holder(ref, _id_tokens(conversion.by_reference.get(ref)), (), stored, search, read_many,
                           merged_by(conversion, ref))
    if holder is None:
        return None
    mrn = _mrn_at_sender(conversion, holder)
    return Barred(False, f"Patient/{holder.get('id')}", mrn, "" if mrn else _member_of(conversion, holder))


def _member_of(conversion: Any, record: dict[str, Any] | None) -> str:
    """The public name of the other member institution whose own MRN (its ``mrn_system``) record ``record``
    carries; "" when none does. Only the institution: never the MRN itself (``decision_barred``)."""
    site = conversion.site
    systems = {str(i.get("system")) for i in (record or {}).get("identifier") or () if isinstance(i, dict)}
    return next((inst.name for code, inst in sorted((getattr(site, "institutions", None) or {}).items())
                 if code == inst.code and code != conversion.institution and inst.mrn_system in systems), "")


def merged_by(conversion: Any, survivor: str) -> set[str]:
    """The records this message merges away into ``survivor`` (MRG-1's): its merges taken (``Conversion.merges``)
    and those held for the operator (``_merges_held``'s claim on the survivor, MRG-1's record ``pinned`` beside it) --
    what the operator's decision, taking the merge, replaces by ``survivor``."""
    found = {prior for s, prior, _, _ in conversion.merges if s == survivor}
    found |= {str(p.get("resource")) for c in conversion.held
              if isinstance(c, dict) and c.get("kind") == MERGE_KIND and c.get("resource") == survivor
              for p in c.get("pinned") or () if isinstance(p, dict) and p.get("resource")}
    return found


def _id_tokens(person: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The resident ID numbers a PID's Patient states, as (system, value): what ``_other_holder`` searches."""
    return sorted({(str(i["system"]), str(i["value"])) for i in (person or {}).get("identifier") or ()
                   if isinstance(i, dict) and is_national_id(i) and i.get("system") and i.get("value")})


def _holders(ref: str, tokens: Sequence[tuple[str, str]], earlier: Sequence[Any],
             search: Any) -> list[dict[str, Any]]:
    """Every active record but ``ref`` (not ``active: false``: merged away) holding a resident ID number of ``tokens``,
    linked to ``ref`` or not: stored (``_every_patient``), or as the batch's ``earlier`` messages leave it (a record an
    earlier message states, its last version there: the last numbers an earlier message states, or its null taken,
    win over the stored record's -- batch = one by one). ``_other_holder`` (unlinked ones) and
    ``_placeholders_number`` (any) read it: one reading of "another record holds this number"."""
    if not tokens or search is None:
        return []
    wanted = set(tokens)
    left: dict[str, dict[str, Any]] = {}
    for c in earlier:  # (in order: the last numbers an earlier message states, or its null taken, win)
        for other, person in c.by_reference.items():
            if (other.startswith("Patient/") and other != ref and isinstance(person, dict)
                    and (_id_tokens(person) or _nulled(c, other))):
                left[other] = person
    holders = [p for p in _every_patient(search, tokens)
               if f"Patient/{p.get('id')}" != ref and f"Patient/{p.get('id')}" not in left]
    holders += [{**person, "id": other.split("/", 1)[1]} for other, person in left.items()
                if set(_id_tokens(person)) & wanted]
    return [p for p in holders if p.get("active") is not False]


def _other_holder(ref: str, tokens: Sequence[tuple[str, str]], earlier: Sequence[Any], stored: dict[Any, Any],
                  search: Any, read_many: Any, replaced: Collection[str] = ()) -> dict[str, Any] | None:
    """Another record -- not ``ref``, not ``active: false`` (merged away), not one of ``ref``'s person (joined to
    it by no ``Patient.link``: a merge's, the index's ``seealso``, an operator's; ``_one_persons``) -- that holds a
    resident ID number of ``tokens``: stored, or as the batch's ``earlier`` messages leave it (``_holders``). None:
    no such record. The one check of "this number is another record's" -- the operator's decision
    (``decision_barred``) and a number given to a record by an application that may not link it
    (``_first_number_held``). ``replaced``: records the decided merge replaces by ``ref`` (``merged_by``), ``ref``'s
    person's as its links will say."""
    holders = _holders(ref, tokens, earlier, search)
    if not holders:
        return None
    one = _one_persons(ref, stored, read_many) | set(replaced)
    return next((h for h in holders if f"Patient/{h.get('id')}" not in one and ref not in _linked(h)), None)


def _linked(record: dict[str, Any] | None, types: Collection[str] | None = None) -> list[str]:
    """Every record ``record``'s ``Patient.link`` names, of any type (a merge's, the index's ``seealso``, an
    operator's): what says the two are one person's records. ``types``: only the links of those types
    (``_merge_links``)."""
    return [str(link["other"]["reference"]) for link in (record or {}).get("link") or ()
            if isinstance(link, dict) and (types is None or link.get("type") in types)
            and isinstance(link.get("other"), dict) and link["other"].get("reference")]


def _replaced_by(record: dict[str, Any] | None) -> str | None:
    """The record ``record`` was merged into (its first ``replaced-by`` link, ``_linked``); None: not merged away.
    One step of the survivor chains ``_renumbered_on`` and ``_carried_on`` walk."""
    return next(iter(_linked(record, ("replaced-by",))), None)


def _one_persons(ref: str, stored: dict[Any, Any], read_many: Any) -> set[str]:
    """``ref`` and the records its links join it to (``_linked``, along them: at most ``_CHAIN_READ`` records)."""
    found, frontier = {ref}, [ref]
    while frontier and len(found) <= _CHAIN_READ:
        unread = [key for key in (tuple(r.split("/", 1)) for r in frontier) if key not in stored]
        if unread and read_many is not None:
            stored.update(read_many(unread))
        step = [o for r in frontier for o in _linked(stored.get(tuple(r.split("/", 1)))) if o not in found]
        found.update(step)
        frontier = step
    return found


def _mrn_at_sender(conversion: Any, record: dict[str, Any] | None) -> str:
    """Record ``record``'s number at the message's sending institution (MR under its ``mrn_system``, else any
    identifier under it); "" when it holds none there -- another member's record is not named by its number."""
    inst = conversion.site.institution(conversion.institution) if conversion.site is not None else None
    system = getattr(inst, "mrn_system", None)
    mine = [i for i in (record or {}).get("identifier") or ()
            if isinstance(i, dict) and system and i.get("system") == system and i.get("value")]
    return str(next((i["value"] for i in mine if _typed_mr(i)), mine[0]["value"] if mine else ""))


def _registrants(ref: str, search: Any, messages: Any, read_many: Any) -> set[str] | None:
    """Every application that registered the stored record ``ref`` (the registrations table's rows: each
    application's first registration), where the table's word is the whole truth (``_table``); elsewhere the
    one ``_registered`` tells (the first received), or ``{_UNREGISTERED}``/``{_UNSPOKEN}``; None: cannot be told.
    Asked by ``_may_renumber`` on a site declaring no registration applications."""
    marks = _marks(search, read_many)
    if marks is None or messages is None:
        return None
    rows = _table(ref, marks, messages)
    if rows:
        return {str(row.get("application") or "") for row in rows}
    registrar = _registered(ref, search, messages, (), read_many)
    return None if registrar is None else {registrar}


def _registrar_of(source: Any) -> str:
    """The application of a filed message (its document) or of a batch's earlier conversion as a registrar or a
    number's owner is kept and compared: ``applications.registrar`` of its MSH-3 as sent, whole -- its code with its
    kind (``^his2.fnx.example^DNS``, not the bare ``his2.fnx.example`` the document's ``application`` keeps, which
    ``applications.states`` reads as a name: such an application's A08 correcting its own registration was refused
    AE 205, last44 MED 2; low44c) and with the universal id beside its name (``HIS^1.2.3^ISO``: ``HIS^9.9.9^ISO``,
    another application by HL7 v2.5.1 2.A.33, had been the registrar ``HIS`` too, low44c LOW 2; reg45). A document's
    is ``engine.messages.registrar_of`` -- the registrations table's key, one reading -- so a registration filed
    before this reads the same; the table's rows are read through their messages (``_table``). A name (HD-1 sent) is
    the code as filed (``Conversion.application``): the ingest decoded it in the set the site declares for the
    sender, which a re-read of the raw does not know. (forty-fourth round, low44c; forty-fifth round, reg45)"""
    if isinstance(source, dict):
        return registrar_of(source)
    return filed_registrar(str(source.application or ""), source.sender)


# the kept-apart warning's text before and after the authority: what the rows written before the
# warning stated its count (``Tally``, identity34) are read back by (``kept_apart_authority``)
_APART_HEAD = "PID-3 record number under assigning authority "
_APART_TAIL = " (PID-3.4) kept apart from the institution's own record of the same number"


def kept_apart_authority(message: str) -> str | None:
    """The authority a kept-apart warning's text names (``_kept_apart``), else None: how the operator's
    fidelity view (``engine.api.admin``) counts a row stored before the warning carried its ``Tally``."""
    return authority_between(message, _APART_HEAD, _APART_TAIL)


def authority_between(message: str, head: str, tail: str) -> str | None:
    """The assigning authority a warning's text names between its fixed ``head`` and ``tail`` (quoted
    as the warning wrote it), else None: the one reading of the texts the fidelity view counts by
    (kept apart here, taken over in ``adapters.convert.takeover``)."""
    if not message.startswith(head) or tail not in message:
        return None
    return message[len(head):message.index(tail)].strip("'\"")


def _kept_apart(authority: str, sequence: int, member: bool) -> HL7Error:
    """The warning of a number keyed apart beside the institution's own record of its value, counted
    per institution and authority (``Tally``). The number is not echoed. What to do depends on whose
    the authority is: an authority of the institution's own systems (``123^^^HIS^MR``) may be declared
    its own (``institutions.yaml`` ``mrn_authorities``); another member institution's code may not --
    site load refuses it (one number, one owner) -- so the advice there is what can be done: nothing, if
    the patient is that institution's; else the sender writes its own authority (identity34: the
    advice had said to declare the member's code)."""
    if member:
        advice = ("(another member institution's record number, kept as that institution's). If the patient is "
                  "that institution's, nothing is to be done; if the number is this institution's own, the sending "
                  "system must leave PID-3.4 empty or name this institution (its code, name or senders.yaml "
                  "facility_aliases): another member's code cannot be declared in mrn_authorities")
    else:
        advice = ("(another system's number, keyed by its authority). If this authority is the institution's own "
                  "record numbering, declare it in institutions.yaml mrn_authorities")
    warning = HL7Error(f"{_APART_HEAD}{authority!r}{_APART_TAIL} {advice}", segment="PID", sequence=sequence,
                       field=3, code=DUPLICATE_KEY_IDENTIFIER, tally=Tally("kept_apart", authority))
    return warning


# ``_registered``'s answer for a record that filed messages name but no registration does (a placeholder
# a result made; an update registers nothing): the first registration, of the batch or later, registers it,
# and until then an A08/A31 restating it is accepted with the warning
_UNREGISTERED = "\n(unregistered)"
# ``_registered``'s answer for a record no Provenance names: nothing stored under it, or a record a FHIR
# client made. A restatement of it is refused unless the batch's own registration decides (as the store
# answers once that registration is filed); "cannot be told" (None) is not overridden by a batch: alone,
# the same messages would be refused (regapp33)
_UNSPOKEN = "\n(no message names it)"

# The events that register a person (v2.5.1 ch. 3: admit, register an outpatient, pre-admit, add
# person information). An update registers nothing: a LIS's A08 on a placeholder its result made had
# become the record's registration and locked the HIS out of its own number (rvidfix32).
_REGISTERING = frozenset({("ADT", "A01"), ("ADT", "A04"), ("ADT", "A05"), ("ADT", "A28")})
# The events that restate who a record's person is (v2.5.1 3.3.8 A08 update patient information, 3.3.31
# A31 update person information): held against the registration, not against the stored person
_CORRECTING = frozenset({("ADT", "A08"), ("ADT", "A31")})


# The merges (``handler: merge`` in mappings/hl7v2/messages: ADT_A18, ADT_A30, ADT_A39): the registration
# system stating that the record it names (PID) is the person of the record merged away (MRG-1) -- for a
# stored record, a registration of the survivor by the merge's application (rvregapp33 finding 6). Not a
# registration of ``Conversion.registers`` (an admission's take-over of a lab's visit is not a merge's)
_MERGING = frozenset(("ADT", e) for e in ("A18", "A30", "A34", "A39", "A40", "A46", "A47"))


def _registers_record(message_type: str, trigger_event: str) -> bool:
    """Does a stored message of this event speak for who its record's person is (``_registered``)?"""
    return (message_type, trigger_event) in _REGISTERING or (message_type, trigger_event) in _MERGING


def registers_person(message_type: str, trigger_event: str) -> bool:
    """Does this event register a person (``_REGISTERING``)? The one reading of it: a message's
    conversion (``Conversion.registers``) and a stored message (``_registered``) alike."""
    return (message_type, trigger_event) in _REGISTERING


def registers(message_type: str) -> bool:
    """Does a message of ``message_type`` (MSH-9 as its document stores it, ``ADT^A04^ADT_A01``) register
    the records its Provenance names (``registered_by``)? Asked too by the message store's reopen: only
    such a message's replay can change who registered a record (regfix34, rvregistry34 finding 4)."""
    kind, _, event = message_type.partition("^")
    return _registers_record(kind, event.partition("^")[0])


def registered_by(message_type: str, resources: Sequence[dict[str, Any]]) -> set[str]:
    """The records (``Patient/x``) a message of ``message_type`` (its document's MSH-9, as stored)
    registers, of its ``resources`` as converted: every Patient its Provenance names, when its event
    registers a person or merges into a survivor (``_registers_record``); else none. What the ingest
    keeps in the registrations table (``engine.messages.MessageStore.note_registrations``) in the
    transaction that files the message -- the same reading ``_registered``'s walk makes of a stored
    message (its event from the document, its records from its Provenance's targets). Not the targets of
    the Provenance naming the member records an owner's message re-keyed (``rekeys``): the owner's A04
    registers its own record, not FNZYY's (ident35); nor those of a merge's held for the operator, which merged
    nothing (``registers_nothing``, idn43)."""
    if not registers(message_type):
        return set()
    out: set[str] = set()
    for resource in resources:
        if resource.get("resourceType") == "Provenance" and not registers_nothing(resource):
            for target in resource.get("target") or ():
                reference = str((target or {}).get("reference") or "")
                if reference.startswith("Patient/"):
                    out.add("/".join(reference.split("/")[:2]))
    return out


def corrects_person(message_type: str, trigger_event: str) -> bool:
    """Does this event restate who its record's person is (``_CORRECTING``)? Asked by the converter
    (``common.patient``: such a record goes to ``Context.corrections``, not ``Context.persons``)."""
    return (message_type, trigger_event) in _CORRECTING


def _registered_in_batch(ref: str, earlier: Sequence[Any], declared: Collection[str] = ()) -> str | None:
    """The application (MSH-3) of the first earlier message of the batch that registers ``ref``
    (``Conversion.registers``, stating it, not writing it only when absent) -- of a ``declared``
    registration application when one does (``_registered``'s rule); None when none does. A message writing the
    record's identifier alone (``_rekeyed_alone``: the owner's A04 re-keying a member's record) does not register it,
    as ``registered_by`` does not count it once filed (rkfix35: the batch had made the owner's HIS the registrar of
    FNZYY's placeholder and refused FNZYY's LIS restating it, which sent singly is accepted)."""
    apps = _batch_registrants(ref, earlier)
    return next((a for a in apps if listed(a, declared)), apps[0] if apps else None)


def _batch_registrants(ref: str, earlier: Sequence[Any]) -> list[str]:
    """The applications (MSH-3) of the batch's earlier messages that register ``ref``, in order -- the one reading
    of "registers it in this batch" (``_registered_in_batch``, ``_may_renumber``, ``_placeholder_in_batch``)."""
    return [_registrar_of(c) for c in earlier if c.registers and ref in c.by_reference and ref not in c.create_only
            and not _rekeyed_alone(c, ref)]


def _with_batch(registrar: str | None, ref: str, earlier: Sequence[Any], declared: Collection[str]) -> str | None:
    """The stored answer ``registrar`` as it will be once the batch's earlier messages are filed: a
    registration of the batch decides a record no registration spoke for (``_UNSPOKEN``,
    ``_UNREGISTERED``), and one by a declared registration application one only an undeclared
    application registered; "cannot be told" (None) stands (alone, the messages would be refused)."""
    if registrar is None:
        return None
    if registrar in (_UNSPOKEN, _UNREGISTERED):
        return _registered_in_batch(ref, earlier, declared) or registrar
    if declared and not listed(registrar, declared):
        found = _registered_in_batch(ref, earlier, declared)
        return found if found is not None and listed(found, declared) else registrar
    return registrar


def unregistered(ref: str, search: Any, messages: Any) -> bool:
    """Whether the stored record ``ref`` is a placeholder no registration has spoken for: every message
    naming it was read and filed, and none registers a person (``_registered``'s ``_UNREGISTERED``).
    The one question another module asks of the registrar (``adapters.convert.takeover``: only such a
    record's visit may be taken over by the HIS's admission)."""
    return _registered(ref, search, messages) == _UNREGISTERED


def applications_of(provenances: Sequence[dict[str, Any]], messages: Any) -> dict[str, set[str]]:
    """"Provenance/id" -> the sending applications (MSH-3) of the filed messages that wrote it
    (``_writers``), each as a registrar is (``_registrar_of``: its MSH-3 whole): the one reading of whose message a
    Provenance is, asked by ``adapters.convert.takeover`` (which application's ADT named a visit: visfix33), which
    compares them by ``applications``' rules (reg45)."""
    return {ref: {_registrar_of(doc) for doc in docs} for ref, docs in _writers(provenances, messages).items()}


def _registered(ref: str, search: Any, messages: Any, declared: Collection[str] = (),
                read_many: Any = None) -> str | None:
    """The application that registered the stored record ``ref``: MSH-3 of the first received
    registration message (``registers_person``) huren filed whose Provenance names the record;
    ``_UNREGISTERED`` when every message naming it was read and none registers it (a placeholder a
    result made: ``_named``); ``_UNSPOKEN`` when no Provenance names it (nothing stored) or a FHIR client
    made it, whatever results named it since (regfix41); None when it cannot be told (no store at hand, a Provenance of a registration event whose
    message is no longer kept or not filed, more Provenances than ``_PAGES`` pages hold): then no one's
    A08 may restate it as another person (a wrong person is worse than an update left for the operator).

    One read (registry34): the registrations table the ingest writes in the transaction that files each
    registering message (``registered_by``, ``MessageStore.note_registrations``: per record and
    application, its first registration received) answers, where its word is the whole truth
    (``_table``); a record with no row is "unregistered" when a Provenance names it, else
    ``_UNSPOKEN``. Elsewhere -- a Provenance a FHIR client wrote or deleted, a filed message reopened, a
    record older than the table -- the walk below (``_walked``) answers as it did before the table.

    Which message a Provenance was made from (the walk): its entity names the institution (its system) and
    MSH-10 alone, and an (institution, MSH-10) pair may hold several documents -- the first
    application's, another application's under ``sender_id``, a conflict -- any of them refused and
    later replayed by the operator. So it is none of them by its id: it is the filed (``processed``)
    document of the pair that lists the Provenance among the resources it wrote (regapp33: a LIS
    message refused under the pair and replayed after the HIS's registration had used the same MSH-10
    was read as the registration -- the LIS its registrar, or the record "unregistered"). Every page
    is read and the first registration RECEIVED wins: the Provenances come in the order they were
    last written, and a replayed registration is written again (regapp33: the HIS's A04 replayed made
    a later A04 of the LIS the registration). A Provenance whose message cannot be read is passed over
    when its activity (MSH-9) is not a registration event: it cannot be one.

    A merge (``_MERGING``: A40 and its kin) registers the record it names as the survivor: a number
    the HIS's merge first names was "unregistered", open to the LIS's A08 (rvregapp33 finding 6).
    ``declared`` (the institution's ``registration_applications``): the first registration received
    from one of them wins over an earlier one of an undeclared application (a LIS's walk-in A04 had
    made the LIS the registrar of the HIS's record on a site that had said which systems say who a
    person is; rvregapp33 finding 5); a record only undeclared applications registered stays theirs."""
    marks = _marks(search, read_many)
    if marks is None or messages is None:
        return None
    rows = _table(ref, marks, messages)
    if rows is None:
        return _walked(ref, search, messages, declared, marks)
    if not rows:  # no registration: a placeholder some message named, or nothing the feed wrote
        return _UNREGISTERED if _named(ref, search, marks) else _UNSPOKEN
    seen = sorted((str(row.get("received_at") or ""), str(row.get("application") or "")) for row in rows)
    return next((app for _, app in seen if listed(app, declared)), seen[0][1])


def _named(ref: str, search: Any, marks: Any) -> bool:
    """Did a filed message make ``ref`` (a record no registration spoke for: ``_table``, ``_walked``) -- the
    placeholder a result or an order made, ``_UNREGISTERED``, anyone's to number and restate until a registration
    speaks for it? A record whose first version a FHIR client wrote (its writer mark ``API``, ``version_writers``
    oldest last) -- no, whatever messages named it since (``_UNSPOKEN``): a result naming a record writes nothing of
    it (its PID create-only) and registers nobody, yet a record a client made with its ID number had read
    "unregistered" once a LIS result named it, and any application's A08 replaced the number the client stated,
    unwarned, where the same A08 alone was answered W 205 (rv41a MED 3; regfix41). Else yes when a version of it is
    the feed's (its writer mark a message's, not ``NOT_THE_FEED`` nor None): every conversion's Provenance names
    every resource it wrote (``adapters.convert.common.provenance``), and a deleted one would have marked the
    record -- read from the record's few versions, where a Provenance search by target costs with the record's
    results (0.2 ms at 450, 2.9 ms at 5,000: SQLite sorts every match for the first). Else (one stored before the
    writer mark) that search, for one."""
    rtype, _, rid = ref.partition("/")
    writers = marks.version_writers(rtype, rid)
    if writers and writers[-1][1] == API:
        return False
    if any(writer is not None and writer not in NOT_THE_FEED for _, writer in writers):
        return True
    return bool(search("Provenance", [("target", ref), ("_count", "1"), ("_total", "none")]).resources)


def _table(ref: str, marks: Any, messages: Any) -> list[dict[str, Any]] | None:
    """The registrations table's rows of ``ref`` (``MessageStore.registrations_of``: per application,
    its first registration received), when the table's word is the whole truth; else None, and
    ``_registered`` walks the record's Provenances as before it existed (``_walked``):
    - the record's Provenance trail is marked (``engine.repository.trail``): a FHIR client wrote or
      deleted a Provenance naming it, or a filed message naming it was reopened for a replay -- the walk
      tells those cases or answers "cannot be told";
    - the store filed messages before the table began (``registrations_epoch``) and the record is not
      known to be younger than the table (absent, or its first version older): a registration of it
      may be one the table never saw. A record first written since then was registered, if at all, by
      messages the table holds (no backfill at open: see the README's identity section);
    - a row's message is not filed (regfix34, rvregistry34 finding 3): on a MongoDB without
      transactions a failed block whose undo could not take its row back left a row naming a registrar
      whose message was never filed (kept ``received`` for the operator's replay, which writes the row
      again). Each row is checked against its message document (one read of the few rows' messages), and its
      ``application`` read from it as a registrar (``_registrar_of``: the code with its kind; low44c)."""
    if not (callable(getattr(messages, "registrations_of", None)) and callable(getattr(marks, "trail_touched", None))):
        return None
    if marks.trail_touched(ref):
        return None
    epoch = messages.registrations_epoch()
    if epoch.get("predates"):
        rtype, _, rid = ref.partition("/")
        try:
            versions = marks.versions(rtype, rid)
        except NotFound:
            return None
        if not versions or stored_instant(versions[-1].updated) <= stored_instant(str(epoch.get("since") or "")):
            return None
    rows = messages.registrations_of(ref)
    if rows:
        filed = messages.get_many([str(row.get("message") or "") for row in rows])
        if any((filed.get(str(row.get("message") or "")) or {}).get("status") != PROCESSED for row in rows):
            return None
        rows = [{**row, "application": _registrar_of(filed[str(row.get("message") or "")])} for row in rows]
    return rows


def _walked(ref: str, search: Any, messages: Any, declared: Collection[str], marks: Any) -> str | None:
    """``_registered`` read the way it was before the registrations table (registry34): every
    Provenance naming ``ref``, the filed message that wrote each, its trail checked whole. Asked only
    where the table's word is not the whole truth (``_table``)."""
    first: tuple[str, str] | None = None  # (received_at, application) of the first registration received
    first_declared: tuple[str, str] | None = None  # ... of a ``declared`` application
    named: set[tuple[str, str | None]] = set()  # (version of ``ref``, Provenance's writer) (``_trail_whole``)
    rewritten: list[tuple[str, str | None]] = []  # (id, writer) of the Provenances written more than once
    for n in range(_PAGES):
        page = search("Provenance", [("target", ref), ("_sort", "_lastUpdated"), ("_count", str(_PAGE)),
                                     ("_offset", str(n * _PAGE))])
        if n == 0 and not page.resources:
            return _UNSPOKEN if _trail_whole(ref, named, rewritten, marks) else None
        writers = _writers(page.resources, messages)
        stored_by = marks.writers("Provenance", [str(prov.get("id")) for prov in page.resources])
        for prov in page.resources:
            mark = stored_by.get(str(prov.get("id")))
            if _named_messages(prov) and mark in NOT_THE_FEED:
                return None  # a message's Provenance a FHIR client wrote over: not the message's word
            named.update((v, mark) for v in _versions_named(prov, ref))
            if str((prov.get("meta") or {}).get("versionId") or "1") != "1":
                rewritten.append((str(prov.get("id")), mark))
            found = writers.get(f"Provenance/{prov.get('id')}", [])
            if len({application_of(doc) for doc in found}) > 1:  # two applications' (older rules' store)
                return None
            # an owner's re-key Provenance registers nothing -- the feed's own only: one a FHIR client wrote with its
            # reason is a client's Provenance like any other (rvident35 LOW: it had been passed over, so its record's
            # registrar was read from the rest of the trail where any other client Provenance makes it "cannot be told")
            fed = mark not in NOT_THE_FEED
            registrations = [] if fed and registers_nothing(prov) else [doc for doc in found
                                                                        if _registers_record(*_event(doc))]
            if not found and _may_register(prov, fed):  # not filed, or no longer kept
                return None
            for doc in registrations:
                seen = (str(doc.get("received_at") or ""), _registrar_of(doc))
                first = seen if first is None or seen < first else first
                if listed(seen[1], declared) and (first_declared is None or seen < first_declared):
                    first_declared = seen
        if not page.has_next:
            if not _trail_whole(ref, named, rewritten, marks):
                return None
            first = first_declared or first
            if first is not None:
                return first[1]
            return _UNREGISTERED if _named(ref, search, marks) else _UNSPOKEN  # (a client's record a result names)
    return None


def _marks(*reads: Any) -> Any:
    """The repository whose reads (``search``, ``read_many``) ``_registered`` was handed -- the ingest
    hands its repository's bound methods, as ``check_persons``' and ``unregistered``'s callers do --
    when it reads writer marks and versions (``WriterMarks``, ``versions``): what tells the feed's
    Provenances and Patient versions from a FHIR client's. None: not at hand -- "cannot be told"."""
    wanted = ("writers", "version_writers", "versions")
    for read in reads:
        repository = getattr(read, "__self__", None)
        if all(callable(getattr(repository, w, None)) for w in wanted):
            return repository
    return None


def _versions_named(prov: dict[str, Any], ref: str) -> set[str]:
    """The versions of ``ref`` a Provenance's targets name (``Patient/x/_history/3`` -> "3"; the ingest
    names the exact versions a message filed, ``engine.audit.provenance``); "" for a target naming
    ``ref`` with no version (a Provenance stored unsigned, or by the code before)."""
    out = set()
    for target in prov.get("target") or ():
        reference = str((target or {}).get("reference") or "")
        if reference == ref:
            out.add("")
        elif reference.startswith(ref + "/_history/"):
            out.add(reference[len(ref) + len("/_history/"):])
    return out


def _trail_whole(ref: str, named: set[tuple[str, str | None]], rewritten: Sequence[tuple[str, str | None]],
                 marks: Any) -> bool:
    """Is every version of the record ``ref`` a message of the feed stored named by a Provenance the
    same feed stored (``named``: (version, the Provenance's writer mark); a message's Provenance is
    written under its resources' mark, and names the exact versions it filed)? A Provenance deleted
    over FHIR (``DELETE /fhir/Provenance/<id>``, a system client's right) leaves the version its
    message wrote unnamed by its feed -- a later result's Provenance names that version too, under
    ``ORU``: the registration was gone, the record read "unregistered" and a LIS's A08 restating the
    HIS's patient was accepted (rvregapp33 finding 4). Then the trail is not the engine's own and
    who registered the record cannot be told. A Provenance naming ``ref`` with no version (stored
    unsigned, or by the code before) cannot say which version it wrote: the check is not made (the
    store's word stands, as before). A version stored before the writer mark (None), by a FHIR client
    or by the patient index needs no message's Provenance.

    A message the operator replays writes its Provenance again, naming the versions the replay filed
    (``rewritten``: those Provenances, id and writer): the version its first run wrote is named by
    the Provenance's earlier version, read only then (a replay is rare; a registration corrected and
    then replayed had otherwise been "cannot be told")."""
    if any(version == "" for version, _ in named):
        return True
    rtype, _, rid = ref.partition("/")
    fed = [writer if writer not in NOT_THE_FEED else None for _, writer in marks.version_writers(rtype, rid)]
    if not any(fed):
        return True
    kept = [str(v.version) for v in marks.versions(rtype, rid) if not v.deleted]
    unnamed = {(version, writer) for version, writer in zip(kept, fed, strict=True)
               if writer is not None and (version, writer) not in named}
    for pid, mark in rewritten:
        if not unnamed:
            break
        if mark in {writer for _, writer in unnamed}:
            for old in marks.versions("Provenance", pid)[1:]:
                unnamed -= {(v, mark) for v in _versions_named(old.resource or {}, ref)}
    return not unnamed


# the Provenances of a record ``_registered`` reads, a page at a time: a long-stay patient's results
# each name the record, and its registration may come after them (a result's placeholder). A page is
# the repository's largest (``engine.repository.search.MAX_COUNT``): each page's search reads every
# Provenance of the record again, so pages of 100 made 1,000 results cost 105 ms, pages of 1,000 76 ms
# (``bench/regapp33_registrar.py``; most of it decoding the Provenances, each naming its message's resources)
_PAGE = 1000
_PAGES = 5


def _writers(provenances: Sequence[dict[str, Any]], messages: Any) -> dict[str, list[dict[str, Any]]]:
    """"Provenance/id" -> the filed message documents that wrote it (``_registered``), one message-store
    query per institution the page's entities name."""
    wanted: dict[str, set[str]] = {}
    for prov in provenances:
        for institution, control in _named_messages(prov):
            wanted.setdefault(institution, set()).add(control)
    out: dict[str, list[dict[str, Any]]] = {}
    refs = {f"Provenance/{prov.get('id')}" for prov in provenances}
    for institution, controls in wanted.items():
        for doc in messages.filed(institution, controls):
            for ref in refs.intersection(doc.get("resources") or ()):
                out.setdefault(ref, []).append(doc)
    return out


def _named_messages(prov: dict[str, Any]) -> list[tuple[str, str]]:
    """(institution, MSH-10) of each message a Provenance's entities name."""
    out = []
    for entity in prov.get("entity") or ():
        identifier = (entity.get("what") or {}).get("identifier") or {}
        institution = message_institution(str(identifier.get("system") or ""))
        if institution is not None and identifier.get("value"):
            out.append((institution, str(identifier["value"])))
    return out


def _may_register(prov: dict[str, Any], fed: bool = True) -> bool:
    """Could the message a Provenance was made from be a registration? Its activity's text is MSH-9
    (``ADT^A04``, ``adapters.convert.common.provenance``); none stated: it could. One naming the versions an
    owner's message re-keyed (``rekeys``), or a merge's held for the operator (``registers_nothing``, idn43),
    cannot -- when the feed wrote it (``fed``: its writer mark a message's); the same reason in a FHIR client's
    Provenance proves nothing (priv36)."""
    if fed and registers_nothing(prov):
        return False
    kind, event = _activity(prov)
    if not (kind or event):
        return True
    return _registers_record(kind, event) or not event


def _activity(prov: dict[str, Any]) -> tuple[str, str]:
    """(MSH-9.1, MSH-9.2) of the message a Provenance was made from: its activity's text is MSH-9 (``ADT^A04``,
    ``adapters.convert.common.provenance``); ("", "") when none is stated."""
    kind, _, event = str((prov.get("activity") or {}).get("text") or "").partition("^")
    return kind, event.partition("^")[0]


def _event(doc: dict[str, Any]) -> tuple[str, str]:
    """(MSH-9.1, MSH-9.2) of a stored message document."""
    kind, _, event = str(doc.get("message_type") or "").partition("^")
    return kind, event.partition("^")[0]


class BatchVersion(NamedTuple):
    """Where the batch's earlier messages leave a resource (``batch_version``): the position of the message
    whose version it is, and whether that message states it (else it writes it only when absent -- a
    result's or order's placeholder -- so a stored version, if any, stands)."""

    at: int
    states: bool


def batch_version(ref: str, earlier: Sequence[Any]) -> BatchVersion | None:
    """``ref`` as the batch leaves it, asked of its earlier conversions (settled, not written yet): the
    last one stating it (``states``); else, none stating it, the first one writing it only when absent
    (with nothing stored, the version written); None when none names it. The one reading of "as the
    batch leaves it" for the guard of a message's patient (``check_persons``, ``_as_left``) and the
    take-over of a visit the batch's lab result made (``adapters.convert.takeover``).

    A write of a record's identifier alone (``_rekeyed_alone``: the re-key of a member's number, either way,
    by the member's result or the owner's message) states no person: it is passed over, as if the message
    did not name the record -- the person is the version before it, stored or stated (rvident35 HIGH 2, 3:
    its Patient, a thin PID's or the owner's identifier-only one, had been read as the batch's word on the
    person; nothing could contradict it and the batch filed a result of another person that, sent singly, is
    refused). Where the identifier is asked, ``_batch_rekey`` names that write."""
    return _batch_walk(ref, earlier)[0]


def _batch_rekey(ref: str, earlier: Sequence[Any]) -> int | None:
    """The position of the batch's last earlier conversion writing ``ref``'s identifier alone (``_rekeyed_alone``)
    after every one stating it -- whose identifier the batch leaves on the record (``_as_left``); None: none."""
    return _batch_walk(ref, earlier)[1]


def _batch_walk(ref: str, earlier: Sequence[Any]) -> tuple[BatchVersion | None, int | None]:
    """(``batch_version``, ``_batch_rekey``) of ``ref``: one walk of the batch back from its last message."""
    first: int | None = None
    keyed: int | None = None
    for at in range(len(earlier) - 1, -1, -1):
        conversion = earlier[at]
        if ref in conversion.by_reference:
            if ref in conversion.create_only:
                first = at
            elif not _rekeyed_alone(conversion, ref):
                return BatchVersion(at, True), keyed
            elif keyed is None:
                keyed = at
    return (BatchVersion(first, False) if first is not None else None), keyed


def _rekeyed_alone(conversion: Any, ref: str) -> bool:
    """Does ``conversion`` write ``ref``'s identifier alone (``Said.only``: ``_rekeyed``, a member's number re-keyed
    either way on a record another message states)?"""
    said = conversion.said.get(ref)
    return ref not in conversion.create_only and said is not None and said.only == frozenset({"identifier"})


def _stated_in(ref: str, earlier: Sequence[Any]) -> int | None:
    """The position of the last earlier conversion of the batch that states ``ref`` (``batch_version``)."""
    left = batch_version(ref, earlier)
    return left.at if left is not None and left.states else None


# what the person guard's warnings name of two Patient versions that differ (``_differing``): the field and where
# a PID states it
_STATED_AT = {"name": "name (PID-5)", "gender": "sex (PID-8)", "birthDate": "birth date (PID-7)"}


def _differing(a: dict[str, Any], b: dict[str, Any]) -> str:
    """What differs between two Patient versions, worded for an ERR (``_STATED_AT``): the fields
    ``conflicts_between`` finds, and the resident ID number where each carries a valid one and none in common
    (``demographics.id_numbers_differ``) -- the person guard's own reading (``contradicts_all``), named."""
    da, db = demographics(a), demographics(b)
    said = [_STATED_AT[f] for f in conflicts_between(da, db)
            if f != "gender" or not (sex_disowned(a, da) or sex_disowned(b, db))]
    if id_numbers_differ(a, b):
        said.append("resident ID number (PID-3)")
    return " and ".join(said) or "nothing"


def _formerly(conversion: Any, ref: str, sequence: int, current: dict[str, Any], search: Any, read_many: Any,
              messages: Any) -> bool:
    """A result's or order's PID (the record written only when absent: ``create_only``) that the person guard finds
    another person than the record ``ref`` (``current``) yet that states a FORMER version of the same record, as
    the application that registered it stated it (``_registered``; the version's own message, read through the
    Provenance naming that version): the same person, filed, with a W naming what was stated. The registrar
    corrected name and birth date by its own A08; a LIS refreshes its patient copy at order time and sends the
    day-old ones -- refused, the result's flow stopped, the refusal's advice ("have the registering system correct
    the record") already done (rv39b MED 1). An ADT stating the person is not passed (it would write the former
    person over the correction), nor a version a FHIR client wrote or another application's message stated.

    Asked only on the refusal path: the record's versions and the Provenances naming it are read then, never for
    a message the guard lets through. "States" is positive: the version's name the PID's, and nothing else both
    state differs (``conflicts_between``). Only a version the current record CORRECTS (``_corrected_alone``: name
    and/or birth date changed, not the sex nor the ID number) -- a version another person was written over is an
    overlay, and its person's result refused (rv39f HIGH 1); the versions of the records this one replaces (an
    A47, an A40) too (``_former_versions``, rv39f MED 7). Appends the W (``conversion.warnings``) and answers True;
    False: the refusal stands."""
    marks = _marks(search, read_many)
    if ref not in conversion.create_only or marks is None or messages is None:
        return False
    said = demographics(conversion.by_reference[ref])
    if not said["name"]:
        return False
    former = _former_versions(ref, current, said, marks)
    if not former:
        return False
    registrar = _registered(ref, search, messages, conversion.registrars, read_many)
    if registrar in (None, _UNSPOKEN, _UNREGISTERED) or not any(
            _stated_by(record, versions, str(registrar), search, messages, marks, conversion.institution,
                       conversion.site) for record, versions in former.items()):
        return False
    warning = HL7Error(
        f"PID-3's record: this PID states the record's former {_differing(current, conversion.by_reference[ref])}, "
        "as the application that registered the record stated them before correcting them (ADT^A08/A31): filed "
        "under the record, which keeps the corrected ones. The sending system's copy of the patient predates the "
        "correction: have it refresh the patient's details", segment="PID", sequence=sequence, field=3,
        code=DUPLICATE_KEY_IDENTIFIER)
    conversion.warn(warning)
    return True


# how many records ``_former_versions`` reads across merges and MRN changes (a record replacing one that replaced
# another...): a bound on the reads of the refusal path, far above any real chain of A47s
_REPLACED_AT_MOST = 8


def _former_versions(ref: str, current: dict[str, Any], said: dict[str, str | None], marks: Any) -> dict[str, set[str]]:
    """The stored versions, per record, of ``ref`` and of the records it replaces -- an A47 (MRN change) or an A40
    moved the record's person there (``his.merge``: ``Patient.link`` ``replaces``, followed through each replaced
    record's own latest version) -- that state the PID's person (the name the PID's, nothing else both state
    differing: ``conflicts_between``) and from which ``current`` is a correction of name and/or birth date alone
    (``_corrected_alone``). Empty: no such version, the refusal stands (rv39f MED 7: the LIS's day-old copy was
    filed under the old MRN and refused under the new one)."""
    out: dict[str, set[str]] = {}
    seen, queue = {ref}, [ref]
    while queue:
        record = queue.pop(0)
        rtype, _, rid = record.partition("/")
        try:
            versions = marks.versions(rtype, rid)
        except NotFound:
            versions = []  # (not stored: the links the batch gives it are still followed)
        found = {str(v.version) for v in versions if v.resource is not None
                 and (stated := demographics(v.resource))["name"] == said["name"]
                 and not conflicts_between(stated, said) and _corrected_alone(v.resource, current)}
        if found:
            out[record] = found
        latest = next((v.resource for v in versions if v.resource), None) or {}  # (newest first)
        # (the record's own: as the batch leaves it too, an earlier message's merge not stored yet)
        links = [*(current.get("link") or ()), *(latest.get("link") or ())] if record == ref else latest.get("link") or ()
        for link in links:
            other = str(((link or {}).get("other") or {}).get("reference") or "")
            if link.get("type") == "replaces" and other.startswith("Patient/") and other not in seen \
                    and len(seen) < _REPLACED_AT_MOST:
                seen.add(other)
                queue.append(other)
    return out


def _corrected_alone(former: dict[str, Any], current: dict[str, Any]) -> bool:
    """Is ``current`` a correction of ``former``'s name and/or birth date alone -- the registrar's A08 fixing a typo
    or a day, what ``_formerly`` lets a day-old copy through for? Not when the sex differs where both state male or
    female, nor when both carry valid resident ID numbers and none in common (``demographics.id_numbers_differ``):
    the readings that mark two people, so such a change is an overlay -- the registrar wrote ANOTHER person over
    the record -- and the former person's result filed there would read as the new person's (rv39f HIGH 1). This
    rule contains "a former version whose sex also differs" (idfix39)."""
    return "gender" not in conflicts_between(demographics(former), demographics(current)) \
        and not id_numbers_differ(former, current)


def _stated_by(ref: str, versions: set[str], application: str, search: Any, messages: Any, marks: Any,
               institution: str, site: Any) -> bool:
    """Did a filed message of ``application`` (a registrar, the MSH-3 whole: ``_registrar_of``, as the registrations
    table keeps it -- last45: an HD-1 compared with it missed every message of a registrar sending its OID) write one
    of ``versions`` of the record ``ref``? Its own by ``_its_own``. Read from the
    Provenances naming the record (``_naming``), stopping at the first; past ``_PAGES`` pages, no (the refusal
    ``_formerly`` would lift stands)."""
    try:
        return any(_its_own(doc, application, institution, site)
                   for _, docs in _naming(ref, versions, search, messages, marks, whole=True) for doc in docs)
    except _Untold:
        return False


def _its_own(doc: dict[str, Any], application: str, institution: str, site: Any) -> bool:
    """Is the filed message ``doc`` one of the registrar ``application``'s (``_stated_by``, ``_versions_stated_by``)?
    Both are stored codes (``_registrar_of``: the MSH-3 whole), so by ``applications.same_code`` -- the one rule of
    two stored codes naming one application (HL7's HD rule, the site's alias groups of ``institution``): its A08 sent
    in its other MSH-3 form (``HIS`` / ``HIS^<OID>^ISO``, ``his``) is its word, as ``applications.states`` takes it
    as its own -- compared as strings, its number read as no one's and the man's own result refused AE 205 at PID-3
    (rv45e MED 2) -- while ``HIS^a^DNS`` is no ``HIS^b^DNS``, nor ``LIS`` the ``HIS``. (forty-sixth round, med46)"""
    return same_code(institution, _registrar_of(doc), application, site)


def _versions_stated_by(ref: str, versions: set[str], application: str, search: Any, messages: Any,
                        marks: Any, institution: str, site: Any) -> dict[str, list[dict[str, Any]]] | None:
    """Which of ``versions`` of the record ``ref`` did a filed message of ``application`` (a registrar of
    ``institution``; a message its own by ``_its_own``) write, and which
    messages (version -> their documents)? Read from the Provenances naming the record (``_naming``), every page.
    None: "cannot be told" -- more Provenances than ``_PAGES`` pages hold, as ``_walked`` answers: what was read
    is the OLDEST (the pages run oldest first), and a registration stating F the HIS corrected to U since would
    own the mother's number again (rv41b LOW)."""
    out: dict[str, list[dict[str, Any]]] = {}
    try:
        for prov, docs in _naming(ref, versions, search, messages, marks, whole=True):
            theirs = [doc for doc in docs if _its_own(doc, application, institution, site)]
            for version in _versions_named(prov, ref) & versions if theirs else ():
                out.setdefault(version, []).extend(theirs)
    except _Untold:
        return None
    return out


class _Untold(Exception):
    """``_naming(whole=True)`` read ``_PAGES`` pages and more Provenances name the record: "cannot be told"."""


def _naming(ref: str, versions: set[str], search: Any, messages: Any, marks: Any,
            whole: bool = False) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Each Provenance naming one of ``versions`` of the record ``ref`` (each names the exact versions its message
    filed: ``_versions_named``), the feed's own only (a FHIR client's Provenance proves nothing: its writer mark),
    with the filed messages that wrote it (``_writers``), a page at a time as ``_walked`` reads them. ``whole``: past
    ``_PAGES`` pages with more to read, raises ``_Untold`` (else it stops there)."""
    for fed in _feeds_naming(ref, lambda prov: bool(_versions_named(prov, ref) & versions), search, marks, whole):
        writers = _writers(fed, messages)
        for prov in fed:
            yield prov, writers.get(f"Provenance/{prov.get('id')}", [])


def _feeds_naming(ref: str, keep: Callable[[dict[str, Any]], bool], search: Any, marks: Any,
                  whole: bool) -> Iterator[list[dict[str, Any]]]:
    """The Provenances naming the record ``ref`` that ``keep`` keeps, a page (``_PAGE``, in the order stored) at a
    time, at most ``_PAGES`` pages: of each page holding any, the feed's own (a FHIR client's proves nothing: its
    writer mark) -- empty where a client wrote them all. ``whole``: past ``_PAGES`` pages with more to read, raises
    ``_Untold`` (else it stops there). The one reading of those pages for ``_naming`` and ``_renumbered``."""
    for n in range(_PAGES):
        page = search("Provenance", [("target", ref), ("_sort", "_lastUpdated"), ("_count", str(_PAGE)),
                                     ("_offset", str(n * _PAGE))])
        naming = [prov for prov in page.resources if keep(prov)]
        if naming:
            stored_by = marks.writers("Provenance", [str(prov.get("id")) for prov in naming])
            yield [prov for prov in naming if stored_by.get(str(prov.get("id"))) not in NOT_THE_FEED]
        if not page.has_next:
            return
    if whole:
        raise _Untold(ref)


def _two_people(conversion: Any, ref: str, was: dict[str, Any], search: Any, messages: Any, read_many: Any) -> bool:
    """Are the stored record ``ref`` (``was``) and the PID's two people (``demographics.contradicts_all``)? Where the
    answer is yes and the record's registrar could say otherwise -- the record states a sex and no day, and carries
    a valid ID number of the other sex (``numbers_against_sex``) -- asked again with the record as its registrar
    stated it (``_as_registered``: whose the number is, ``own_id_numbers``): the HIS registered a man with his
    number, sex M and no PID-7, a FHIR client set his sex to female, and the HIS's A01 correcting his name was
    refused as another person (rv40i LOW 2). Only then is the store read (the refusal path)."""
    person = conversion.by_reference[ref]
    if not contradicts_all(was, person):
        return False
    if not numbers_against_sex(was, demographics(was)):
        return True
    registered = _as_registered(ref, search, messages, conversion.registrars, read_many, conversion.institution,
                                conversion.site)
    return registered is None or contradicts_all(was, person, registered)


# what ``_as_registered`` reads of the registrar's messages: the elements ``own_id_numbers`` asks (PID-5, PID-8, PID-7)
_REGISTERED = ("name", "gender", "birthDate")
# how many of the registrar's messages ``_as_registered`` reads again at most, newest first, for what it last stated
# of each element: it stops at the first where each is said (the common case: its newest A08 states them all), else
# reads on until the messages run out -- a registrar that never states PID-7 (the very records the rule is for) has
# every message read; past the bound with one still unsaid, "cannot be told". Each is parsed and converted again
# (under a millisecond: 100 messages 43-63 ms, the whole ``_as_registered`` 137 ms, on a loaded test machine), on the
# refusal path only (a record whose sex a number disowns): at 32 the man without a birth date lost his own results
# after his 33rd HIS message (rv41g MED 1, idfix41b); 256 is years of a chronic patient's visits
_STATEMENTS_READ = 256


def _as_registered(ref: str, search: Any, messages: Any, declared: Collection[str], read_many: Any, institution: str,
                   site: Any) -> dict[str, Any] | None:
    """The stored record ``ref`` as the application that registered it (``_registered``) stated it: of each of its
    name (PID-5), sex (PID-8), birth date (PID-7) and resident ID numbers (PID-3 NNCHN), what the newest of that
    application's filed messages stating it stated (``""`` too: stated absent), read again from the message's own
    raw bytes (``_as_sent``) -- the messages those Provenances name that name the record's versions
    (``_versions_stated_by``). Never a stored version: a version is its message merged over the record, so an A08
    with PID-8 empty kept the sex a FHIR client had set, and the version "the registrar's" carried a sex the HIS
    never sent -- the twin sister's result under the boy's MRN was filed as his (rv41b HIGH 1), and the man's own
    result refused again (rv41b LOW 2). None: no such message, or no registrar to tell (a record a FHIR client made,
    one only a result's placeholder made), or "cannot be told" (more Provenances than the pages read, a message
    that cannot be read again, an element unsaid in ``_STATEMENTS_READ`` messages)."""
    marks = _marks(search, read_many)
    registrar = _registered(ref, search, messages, declared, read_many)
    if marks is None or site is None or registrar in (None, _UNSPOKEN, _UNREGISTERED):
        return None
    rtype, _, rid = ref.partition("/")
    try:
        kept = [v for v in marks.versions(rtype, rid) if v.resource is not None]  # (newest first)
    except NotFound:
        return None
    versions = [str(v.version) for v in kept]
    stated = _versions_stated_by(ref, set(versions), str(registrar), search, messages, marks, institution, site)
    if stated is None:
        return None
    said: dict[str, Any] = {}
    numbers: list[dict[str, Any]] | None = None
    docs = _newest_sent(list({str(doc.get("_id")): doc for version in versions
                              for doc in stated.get(version, ())}.values()), site)
    for doc in docs[:_STATEMENTS_READ]:
        sent = _as_sent(doc, ref, site)
        if sent is None:
            return None
        person, deleted = sent
        if not person:
            continue  # (the message names the record without stating it: a result's PID, an A40's MRG-1)
        for element in _REGISTERED:
            if element not in said and (element in person or element in deleted):
                said[element] = person.get(element)
        national = [i for i in person.get("identifier") or () if isinstance(i, dict) and is_national_id(i)]
        if numbers is None and (national or "identifier" in deleted):
            numbers = national
        if numbers is not None and len(said) == len(_REGISTERED):
            break
    else:
        if len(docs) > _STATEMENTS_READ:
            return None
    if kept and (carried := _carried_as_registered(ref, kept[0].resource, str(registrar), search, messages, marks,
                                                    institution, site)):
        numbers = [*(numbers or ()), *carried]
    if numbers is None and not said:
        return None
    return {"resourceType": "Patient", "identifier": numbers or [],
            **{element: value for element, value in said.items() if value is not None}}


def _as_sent(doc: dict[str, Any], ref: str, site: Any) -> tuple[dict[str, Any], frozenset[str]] | None:
    """The record ``ref`` as the filed message ``doc`` stated it, and the elements it deleted (HL7's ``""``): its raw
    bytes (kept exactly as received, ``engine.messages``) read as the pipeline read them (``read_message``: the
    sender's set, MSH-18, the HTTP charset kept in ``peer``), parsed and converted again -- the converter is the one
    reading of a PID (``common.patient``), and nothing of the store is in it. ({}, none) when the message names the
    record without stating it (a result's or order's PID, written only when absent; an A40's MRG-1 record); None when
    it cannot be read again (a site changed since: "cannot be told")."""
    conversion = _read_again(doc, site)
    return None if conversion is None else _stated_of(conversion, ref)


def _stated_of(conversion: Any, ref: str) -> tuple[dict[str, Any], frozenset[str]]:
    """The record ``ref`` as a message read again (``_read_again``) stated it, and the elements it deleted: the
    one reading of that for ``_as_sent`` and ``_carried_as_registered`` (which needs the message's merges too)."""
    person = conversion.by_reference.get(ref)
    if person is None or ref in conversion.create_only:
        return {}, frozenset()
    said = conversion.said.get(ref)
    # (of the identifiers, only a delete of the resident ID number, PID-3 ``""^^^^NNCHN``, states the number absent: an
    # A37 deletes the marks a merge carried -- ``his.unlink`` -- and says nothing of the number)
    return person, frozenset(d.element for d in (said.deletes if said is not None else ())
                             if d.element != "identifier" or d.where == NATIONAL_ENTRIES)


def _newest_sent(docs: list[dict[str, Any]], site: Any) -> list[dict[str, Any]]:
    """The registrar's messages ``docs`` (newest received first) newest SENT first: by the sender's own MSH-7
    (``engine.ingest.doc_stamp``, the reading the write's order uses), an equal time by arrival -- when every one
    has a usable MSH-7 to the second or finer and one sender (MSH-3 of MSH-4) sent them all: then the times compare
    (``engine.message_time``). Otherwise as received, the only order that can be told. The HIS's A08 sent 10:15
    arriving after its A08 of 11:15 (a queue replayed) had been read as its newest word: the sex the 11:15 message
    took back read as stated, the mother's number as the boy's own, his twin sister's result filed under him
    (rv41g HIGH 3, idfix41b). The stored record's own fields still go by arrival (``merge.yaml``): not changed here."""
    from engine.ingest import doc_stamp  # (the ingest imports this module)

    if len(docs) < 2:
        return docs
    stamps = [doc_stamp(doc, site) for doc in docs]
    if any(st.sent is None or st.until is not None or st.sender != stamps[0].sender for st in stamps):
        return docs
    newest = sorted(range(len(docs)), reverse=True, key=lambda at: (stamps[at].sent, -at))  # (equal: newest received)
    return [docs[at] for at in newest]


def _read_again(doc: dict[str, Any], site: Any) -> Any:
    """The filed message ``doc`` converted again from its raw bytes (kept exactly as received, ``engine.messages``),
    read as the pipeline read them (``read_message``: the sender's set, MSH-18, the HTTP charset kept in ``peer``):
    the converter is the one reading of what a message states. None: it cannot be read again (a site changed since,
    or the conversion failing otherwise -- logged: "cannot be told", never an error out of another message's person
    guard: rv41g LOW, idfix41b)."""
    from adapters.convert import convert  # (that package imports this module)
    from adapters.hl7v2.header import read_message
    from adapters.hl7v2.parser import parse
    from engine.messages import raw_of

    try:
        head, text = read_message(raw_of(doc), str(doc.get("peer") or ""), site)
        return convert(parse(text, head.read_in), site, institution=str(doc.get("facility") or "")
                       or head.facility_code)
    except (HL7Error, FhirError, ValueError):
        return None
    except Exception:  # (any other failure of a conversion, as the pipeline's: never out through another's guard)
        logging.getLogger("huren.persons").exception("message %s could not be converted again", doc.get("_id"))
        return None


class Filed(NamedTuple):
    """What the filed message that wrote a version of a record stated of it, read again (``as_filed``)."""

    deletes: tuple[Delete, ...]  # of the record: what its ``""`` deleted (``Said.deletes``)
    merges: tuple[tuple[str, str, bool], ...]  # the merges it made: (survivor, record merged away, renumbering)


def as_filed(ref: str, version: str, search: Any, messages: Any, marks: Any, site: Any,
             stated: str | None = None) -> list[Filed] | None:
    """Each of the feed's filed messages naming version ``version`` of the record ``ref`` (the Provenances naming that
    version, ``_naming``: the message that wrote it, and any later one that left it unchanged; the messages their
    entities name, ``_writers``), oldest first, read again (``_read_again``): what it deleted of the record ``stated``
    (default ``ref``: PID-3 ``""^^^^NNCHN``, HL7 v2.5 2.5.3, is in ``deletes``) and the merges it made, each with
    whether it was a renumbering (A46/A47: ``his.RENUMBERING``). For the upgrade giving merges filed before id40's
    carry that carry (``engine.carried_numbers``, a40fix41): a merge leaves out what its message deletes
    (``merge_carries``' ``deletes``) and a renumbering's carry is unmarked -- the stored versions cannot tell either.
    None: "cannot be told" (more Provenances than the pages read, a message that cannot be read again)."""
    out: list[Filed] = []
    try:
        for _, docs in _naming(ref, {version}, search, messages, marks, whole=True):
            for doc in docs:
                conversion = _read_again(doc, site)
                if conversion is None:
                    return None
                said = conversion.said.get(stated or ref)
                out.append(Filed(tuple(said.deletes) if said is not None else (),
                                 tuple((str(s), str(p), bool(r)) for s, p, _, r in conversion.merges)))
    except _Untold:
        return None
    return out


def _carried_as_registered(ref: str, record: dict[str, Any], registrar: str, search: Any, messages: Any,
                           marks: Any, institution: str, site: Any) -> list[dict[str, Any]]:
    """The resident ID numbers the stored ``record`` (``ref``) holds that a merge of the registrar's own carried onto
    it (``_carried_from``'s mark naming the record merged away) from a record on which the registrar's messages last
    stated them: its word as much as a number it stated on ``ref`` -- the HIS registered the man's number on GBR1 and
    merged GBR1 into GBR2 (A40), and the number on GBR2 read as no one's word, his own results refused after a
    client's wrong sex (rv41g MED 2, idfix41b). Read from the messages (``_as_sent``) of the record merged away, newest
    first, up to ``_STATEMENTS_READ``; the merge must be one of them (its MRG-1 that record, its PID ``ref``)."""
    priors: dict[str, list[dict[str, Any]]] = {}
    for ident in record.get("identifier") or ():
        for ext in ident.get("extension") or () if isinstance(ident, dict) and is_national_id(ident) else ():
            if isinstance(ext, dict) and ext.get("url") == CARRIED_FROM_EXT:
                prior = str((ext.get("valueReference") or {}).get("reference") or "")
                priors.setdefault(prior, []).append(ident)
    out: list[dict[str, Any]] = []
    for prior, carried in priors.items():
        rtype, _, rid = prior.partition("/")
        try:
            versions = [str(v.version) for v in marks.versions(rtype, rid) if v.resource is not None]
        except NotFound:
            continue
        stated = _versions_stated_by(prior, set(versions), registrar, search, messages, marks, institution, site)
        docs = _newest_sent(list({str(doc.get("_id")): doc for version in versions
                                  for doc in (stated or {}).get(version, ())}.values()), site)
        merged, numbers = False, None
        for doc in docs[:_STATEMENTS_READ]:
            conversion = _read_again(doc, site)
            if conversion is None:
                return []
            merged = merged or any((survivor, was) == (ref, prior) for survivor, was, _, _ in conversion.merges)
            person, deleted = _stated_of(conversion, prior)
            if numbers is None and person:
                national = {str(i.get("value")) for i in person.get("identifier") or ()
                            if isinstance(i, dict) and is_national_id(i)}
                if national or "identifier" in deleted:
                    numbers = national
            if merged and numbers is not None:
                break
        if merged and numbers:
            out += [i for i in carried if str(i.get("value")) in numbers]
    return out


def _joined(conversion: Any, earlier: Sequence[Any], stored: dict[Any, Any], leaned: list[int]) -> None:
    """A merge (A40/A34...) whose MRG-1 record -- as the batch leaves it, else stored -- is another person than the
    PID's by the person guard's rule (``contradicts_all``): filed, the registering system's explicit instruction,
    with a W at MRG-1 naming what differs (rv39b MED 2: a daughter's record merged into her mother's was AA without
    a word, while an A08 restating a record as another person is warned of). Never refused: the commonest real
    duplicate -- the same woman registered twice with a homophone name and a mistyped day -- meets the same rule,
    and its merge is the very correction merges exist for. The W goes where the restatement's does
    (``conversion.warnings``: the ACK's ERR, and the operator's fidelity view counts it)."""
    for survivor, prior, sequence, _ in conversion.merges:
        was = _as_left(prior, earlier, stored, leaned)
        person = conversion.by_reference.get(survivor)
        if was is None or person is None or not contradicts_all(was, person):
            continue
        warning = HL7Error(
            f"MRG-1's record and this PID's person differ in {_differing(was, person)}: by the person guard's rule two "
            "people. The merge is filed as the registering system's instruction, and every result of the merged "
            "record now reads as this person's -- check the two records were one person; if not, unlink them "
            "(ADT^A37) and correct the registration", segment="MRG", sequence=sequence, field=1,
            code=DUPLICATE_KEY_IDENTIFIER)
        conversion.warn(warning)


def _carried(conversion: Any, earlier: Sequence[Any], stored: dict[Any, Any], leaned: list[int],
             merge: MergeRules | None) -> None:
    """A merge (A40/A34..., HL7 v2.5.1 3.3.40: "the identifiers ... merge") or a renumbering (A47/A46:
    ``his.RENUMBERING``, one record under a new identifier) carries to the survivor's version the numbers the record
    merged away held that the registration does not take away (``merge.yaml`` ``Patient.identifier`` ``beside``,
    read by ``MergeRules.kept_beside``): her resident ID number; a renumbering the numbers remembered as the
    institution's own too (``_mark_filed``, mark and all), which the renumbered record drops (``his.merge``: the
    identifier moves, 3.3.47) -- a merge of two records leaves them on the record merged away, where the LIS's next
    result goes as her result under the bare MRN does (rv38j, ident39). The record merged away drops the ID number
    (``unless: replaced-by``: its identifiers are MRG-1's), so a merge whose PID-3 states the survivor's MRN alone
    erased her ID number from the store (an A47: rv39d HIGH 3b, idfix39; an A40: rv39d HIGH 3a, id40). Not carried: a number of a ``kind`` the
    survivor states or already holds (a different ID number on it stays; the patient index refuses joining two
    numbers). What a merge of two records carries is marked ``CARRIED_FROM_EXT`` naming the record it came from, so
    the unlink (A37) that undoes a wrong merge takes exactly it back (``his.unlink``, ``_given_back``): left there,
    the number kept the survivor in the other person's chain and the index refused its next right merge (idfix39's
    reason; lastfix25, identity27, mergemend25). A renumbering's is not marked: the number moved with the one
    record (3.3.47), an unlink has nothing of it to undo -- unless its PID-3 record was in use just before it
    (``_in_use``, the reading ``_renumbered`` gives its A37): then it joined two records, a merge, carried and marked
    as one, so the A37 parting them takes her number back (rv41n HIGH 3: it stayed on HB, her sign-in opened HB).

    A number goes only where it agrees with the record as this message leaves it (rv40a, a47fix40): nothing is
    carried when the two records are two people by the person guard's rule (``contradicts_all``, ``_joined``'s W) --
    王丽's ID number had landed on 张敏's record, and the search by it answered 张敏 (HIGH 1) -- her ID number stays on
    the record merged away (``_stays_on``) and a renumbering's remembered numbers too (``_kept_on``: its queued move
    taken back); an ID number
    the survivor's sex or birth date contradicts (``conflicts_with_own_ids``) refuses the message at PID-8/7 with
    the thin A08's words (``_refuse_against_number``; MED 2: the same state, the same answer, and the registrar
    mends it over HL7 by stating the corrected number or ``""^^^^NNCHN``); what the message's ``""`` deletes of the
    survivor is not carried back onto it (``kept_beside``'s ``deletes``; MED 3)."""
    rules = merge if merge is not None else shipped()
    writer = conversion.writer or _WRITER
    for survivor, prior, _, renumbered in conversion.merges:
        person = conversion.by_reference.get(survivor)
        was = _as_left(prior, earlier, stored, leaned)
        if person is None or was is None or not was.get("identifier"):
            continue
        held = _as_left(survivor, earlier, stored, leaned) or {}
        said = conversion.said.get(survivor)
        # an A46/A47 onto a record in use joins two records (``_in_use``, the reading ``_renumbered`` gives the A37):
        # carried as a merge's, marked, so the A37 that parts them takes it back (rv41n HIGH 3)
        renumbered = bool(renumbered) and not _in_use(_as_left_linked(survivor, earlier, stored, leaned, merge))
        carried = merge_carries(was, person, held, prior, rules, writer, said.deletes if said is not None else (),
                                renumbered=renumbered)
        if not renumbered or carried is None:  # (a merge, or two people: the remembered numbers stay where they were,
            _kept_on(conversion, prior, FILED_AS_OWN_ENTRIES)  # ``his.merge``'s queued move of an A46/A47 taken back)
        if carried is None:  # two people (``_joined``'s W): her numbers are not the survivor's
            _stays_on(conversion, prior, was)
            continue
        if not carried:
            continue
        person["identifier"] = [*(person.get("identifier") or ()), *carried]
        if id_numbers({"identifier": carried}) and (wrong := conflicts_with_own_ids(
                _as_stored(conversion, survivor, held, merge))):
            sequence = conversion.persons.get(survivor) or conversion.corrections.get(survivor) or 1
            _refuse_against_number(wrong, sequence, "PID-3 does not state it, and the merge carries it from MRG-1's "
                                   "record onto this one", leaned)


def merge_carries(was: dict[str, Any], person: dict[str, Any], held: dict[str, Any], prior: str, rules: MergeRules,
                  writer: str = _WRITER, deletes: Sequence[Delete] = (), *, renumbered: bool = False,
                  ) -> list[dict[str, Any]] | None:
    """What a merge carries from ``was`` (the record merged away, ``prior``, as it stood at the merge) onto its
    survivor -- ``person`` (the survivor as the merge states it) over ``held`` (as it stood before): the one reading of
    ``_carried``'s rule, asked by the merge itself and by the upgrade giving merges filed before the rule their carry
    (``engine.carried_numbers``, a40b41). None: the two are two people by the person guard's rule
    (``contradicts_all``), nothing is carried. Else the identifiers ``merge.yaml``'s ``beside`` keeps from ``was``
    beside what the survivor states or holds (``MergeRules.kept_beside``: not a kind it has; not what ``deletes``,
    the merge's ``""``, took off), copies; a merge of two records (not ``renumbered``) leaves the remembered numbers
    (filed-as-own) where they are and marks each it carries ``CARRIED_FROM_EXT`` naming ``prior`` -- one mark per
    merge, so a number a chain of merges carried on names every record it came through, and each A37 takes back its
    own. Whether the survivor's sex or birth date contradicts a carried ID number
    (``demographics.conflicts_with_own_ids``) is the caller's to ask, of the survivor as it is then left."""
    if contradicts_all(was, person):
        return None
    stated = [*(person.get("identifier") or ()), *(held.get("identifier") or ())]
    carried = rules.kept_beside("Patient", "identifier", writer, json_copy(was.get("identifier") or []), stated,
                                deletes)
    if not renumbered:  # (the record merged away keeps its remembered numbers: rv38j, ident39)
        carried = [i for i in carried if not _marked(i)]
        for ident in carried:
            ident["extension"] = [*(ident.get("extension") or ()), _carried_from(prior)]
    return carried


def _stays_on(conversion: Any, prior: str, was: dict[str, Any]) -> None:
    """The record merged away, of another person than the survivor (``_carried``), keeps its resident ID number: the
    merge's version of it states MRG-1's identifiers alone and the registration's rule drops the number from a record
    merged away (``merge.yaml`` ``unless: replaced-by``) -- not carried either, her number was in no record."""
    mine = conversion.by_reference.get(prior)
    if mine is None:
        return
    numbers = [json_copy(i) for i in was.get("identifier") or () if isinstance(i, dict) and is_national_id(i)]
    if numbers:
        mine["identifier"] = [*(mine.get("identifier") or ()), *numbers]


def _kept_on(conversion: Any, prior: str, where: tuple[tuple[str, tuple[str, ...]], ...]) -> None:
    """The delete of ``prior``'s identifiers ``where`` matches, which a renumbering queued because they move to the new
    record (``his.merge``), taken back: not carried (``_carried``: two people), they stay where they were."""
    said = conversion.said.get(prior)
    if said is None:
        return
    deletes = tuple(d for d in said.deletes if not (d.element == "identifier" and d.where == where))
    if len(deletes) != len(said.deletes):
        conversion.said[prior] = replace(said, deletes=deletes)
        conversion.planned.pop(prior, None)
        conversion._bundle = None


def _registrars_number(conversion: Any, earlier: Sequence[Any], stored: dict[Any, Any], leaned: list[int],
                       search: Any, messages: Any, read_many: Any, left_out: dict[str, Renumber],
                       only: Collection[str] | None = None, *, merge: MergeRules | None = None) -> None:
    """A registration's PID-3 stating a resident ID number other than the one its record holds (as the batch leaves
    it, else stored) -- which would replace it (``merge.yaml`` ``beside``: a number of that kind stated replaces
    the kept one): taken only from an application ``_may_renumber`` says may (the one rule: a declared
    ``registration_applications`` one; none declared, a registration event or an application that registered the
    record -- regfix40), as the null is (``_registrars_null``; the decision on rv40a MED 4's pre-existing half). From any other
    application the record keeps its number -- the PID's numbers of that kind are left out of what it writes -- and
    ERR W 205 at PID-3 says why. Why the same rule: a replacement takes the held number off exactly as the null
    does (the number the patient index links the person's records on), and a LIS's walk-in A04 or an undeclared
    EMR's A08 stating another valid number for the same name had moved her record out of her person on a word
    that registers nothing; the number it states passed the digit and demographic checks, which tell a wrong
    number from a right one no better than the null's sender can. Not refused: the rest of the message is the
    sender's to state. Records not held yet, or holding no number, are this message's to number -- unless
    another record holds the number and this application did not register the record (``_first_number_held``:
    held, regfix41c) -- and a record merged into another (``_renumbered_on``) is judged on its survivor's
    numbers (regfix41b). Whoever may, a number another record holds is held unless a declared registration
    application states it (``_links_unheld``, ``_hold_linking``: no renumbering joins two records -- decl42). Who may
    is ``_may_renumber``'s rule; ``left_out`` gets each record whose number was left
    out -> who may (the refusal of the sex the kept number then contradicts advises that:
    ``_against_kept_number``). ``only``: these records alone (a batch's, asked before the rest are read)."""
    for refs in (conversion.persons, conversion.corrections):
        for ref, sequence in refs.items():
            if only is not None and ref not in only:
                continue
            person = conversion.by_reference.get(ref)
            if ref in conversion.create_only and person is not None and only is None and id_numbers(person) \
                    and new_record_linked(conversion, ref, earlier, stored, search, read_many):
                _hold_linking(conversion, ref, sequence, person, _NEW_LINKS.format(
                    apps=", ".join(dict.fromkeys((*conversion.registrars, *conversion.linkers))) or "none declared",
                    app=_registrar_of(conversion) or "unknown"))
                continue
            if ref in conversion.create_only or person is None or not (stated := id_numbers(person)):
                continue
            judged = _renumbered_on(ref, earlier, stored, leaned, read_many)  # (merged away: its survivor)
            held = _numbers_left(judged, earlier, stored, leaned)
            carried = _merge_carried(conversion, ref, judged, earlier, stored, leaned, read_many, merge)
            if not held:
                first = _first_number_held(conversion, ref, judged, person, earlier, stored, search, messages,
                                           read_many, carried)
                if first is not None and first.rule == RENUMBER_LINKS:
                    _hold_linking(conversion, ref, sequence, person)
                elif first is not None:
                    _hold_linking(conversion, ref, sequence, person, (
                        "PID-3 gives a resident ID number to a record that holds none, and another record holds that "
                        "number: not taken -- taken, the patient index would join the two records as one person's. "
                        f"The record was registered by another application (MSH-3 {', '.join(first.apps) or 'none'}) "
                        f"than this message's (MSH-3 {_registrar_of(conversion) or 'unknown'}), and only {RENUMBER_LINKS} "
                        f"(MSH-3 {', '.join(conversion.registrars) or 'none declared'}) give a number another record "
                        "holds unheld: held for the operator. If the two records are one person's, merge them (A40)"))
                continue
            if held - stated:
                answer = _may_renumber(conversion, judged, earlier, search, messages, read_many, held)
                if not answer.may:
                    _leave_numbers_out(conversion, ref, person)
                    left_out[ref] = answer
                    if answer.held:
                        _hold_renumber(conversion, ref, sequence)
                    conversion.warn(HL7Error(
                        "PID-3 states a resident ID number other than the one the record holds: not taken, the record "
                        f"keeps its number -- only {answer.who} replaces it"
                        f"{_held_words(answer, _registrar_of(conversion))}. If the record's number is wrong, ask that "
                        "application to correct it, or the operator", segment="PID", sequence=sequence, field=3,
                        code=DUPLICATE_KEY_IDENTIFIER))
                    continue
            new = [(system, value) for system, value in _id_tokens(person) if (valid_number(value) or value) not in held]
            if (new and _links_unheld(conversion, new, carried)
                    and _other_holder(judged, new, earlier, stored, search, read_many) is not None):
                _hold_linking(conversion, ref, sequence, person)


def _hold_linking(conversion: Any, ref: str, sequence: int, person: dict[str, Any], words: str | None = None) -> None:
    """Hold a PID's resident ID number another record holds, given to a stored record by an application that may not
    link the two by it (``_links_unheld``, or a record holding none: ``_first_number_held``, ``words`` its own): left
    out, kept with the message for the operator (``_hold_renumber``; the decision barred while the other record
    holds it: ``decision_barred``), ERR W 205 at PID-3 naming the declared registration applications and this
    message's by MSH-3 -- never the number nor the other record."""
    _leave_numbers_out(conversion, ref, person)
    _hold_renumber(conversion, ref, sequence)
    conversion.warn(HL7Error(words or (
        "PID-3 gives the record a resident ID number another record holds: not taken -- taken, the patient index "
        "would join the two records as one person's, and a change of a record's number is no way to join two "
        f"records. Only {RENUMBER_LINKS} (MSH-3 {', '.join(conversion.registrars) or 'none declared'}) give it "
        f"unheld; this message's application (MSH-3 {_registrar_of(conversion) or 'unknown'}) is held for the operator. "
        "If the two records are one person's, take the wrong number off (\"\"^^^^NNCHN) and merge them (A40)"),
        segment="PID", sequence=sequence, field=3, code=DUPLICATE_KEY_IDENTIFIER))


def _leave_numbers_out(conversion: Any, ref: str, person: dict[str, Any]) -> None:
    """Leave the resident ID numbers a PID states for ``ref`` out of what the message writes (the record keeps what it
    holds): a renumbering not taken (``_registrars_number``)."""
    person["identifier"] = [i for i in person.get("identifier") or ()
                            if not (isinstance(i, dict) and is_national_id(i))]
    conversion.planned.pop(ref, None)
    conversion._bundle = None


def _number_token(system: str, value: str) -> tuple[str, str]:
    """A resident ID number as (system, value), its value as the patient index reads it (``valid_number``: the
    check character upper-cased), so a number stated and a number held compare as one."""
    return str(system), str(valid_number(value) or value)


def _merge_carried(conversion: Any, ref: str, judged: str, earlier: Sequence[Any], stored: dict[Any, Any],
                   leaned: list[int], read_many: Any, merge: MergeRules | None) -> frozenset[tuple[str, str]]:
    """The resident ID numbers (``_number_token``) a merge in this message whose survivor is record ``ref`` (or
    ``judged``, the survivor it was merged into) carries onto it from the record it merges away (MRG-1, as the batch leaves it,
    else stored): ``merge_carries``' own reading -- ``_carried``'s rule -- asked of the survivor as if its PID stated
    no resident ID number (a number the PID states of a kind keeps ``beside`` from carrying that kind, yet is the
    same number when the merged-away record held it). Empty: no merge names the record, or the two are two people
    (``contradicts_all``). What ``_links_unheld`` exempts -- only what the merge itself carries (rv42d HIGH 1)."""
    rules = merge if merge is not None else shipped()
    out: set[tuple[str, str]] = set()
    for survivor, prior, _, renumbered in conversion.merges:
        if survivor not in (ref, judged) or (person := conversion.by_reference.get(survivor)) is None:
            continue
        key = tuple(prior.split("/", 1))
        if key not in stored and read_many is not None and not any(prior in c.by_reference for c in earlier):
            stored.update(read_many([key]))
        was = _as_left(prior, earlier, stored, leaned)
        if was is None:
            continue
        carried = _carried_bare(conversion, survivor, person, prior, was, rules, bool(renumbered))
        out.update(_number_token(s, v) for s, v in _id_tokens({"identifier": carried or []}))
    return frozenset(out)


def _carried_bare(conversion: Any, survivor: str, person: dict[str, Any], prior: str, was: dict[str, Any],
                  rules: MergeRules, renumbered: bool) -> list[dict[str, Any]] | None:
    """What a merge of this message carries onto ``survivor`` (``person``: its PID's Patient) from ``prior`` (``was``,
    as it stood), asked as if the PID stated no resident ID number -- one stated of a kind keeps ``beside`` from
    carrying that kind, yet is the same number when the merged-away record held it: ``merge_carries``' reading for
    ``_merge_carried``'s exemption and ``merge_refused``'s "a number moving"."""
    bare = {**person, "identifier": [i for i in person.get("identifier") or ()
                                     if not (isinstance(i, dict) and is_national_id(i))]}
    said = conversion.said.get(survivor)
    return merge_carries(was, bare, {}, prior, rules, conversion.writer or _WRITER,
                         said.deletes if said is not None else (), renumbered=renumbered)


def _links_unheld(conversion: Any, tokens: Sequence[tuple[str, str]],
                  carried: Collection[tuple[str, str]] = ()) -> bool:
    """Would resident ID numbers ``tokens`` that a PID gives a stored record -- its first number, a replacement, or
    one beside the number it holds -- be held for the operator (``_hold_linking``) when another active record not
    linked to it holds one (``_other_holder``)? Yes unless this message's application is one of the institution's
    declared ``registration_applications``, or every such number is one a merge in this very message carries onto
    the record from the record it merges away (``carried``: ``_merge_carried``, ``merge_carries``' reading -- the
    merge joins or refuses the two by its own rules, ``_carried``): on a site that declares none, whoever sends it --
    the record's registrar, the number's owner, the HIS alike. A record not stored yet is asked only on a site that
    declares its registration applications (``_first_number_held``; elsewhere this message registers it: the index
    joins a returning patient's records by her number).

    Why: taken, the patient index joins the two records as one person's (one number, one person), and her resident
    reads the other record's results. On a site that declares no registration application nothing in a message
    tells the HIS from a LIS (both send the institution's PID-3.4), and the rules of who may number a record could
    be walked around: the LIS's walk-in A04 numbering its own result's placeholder with a number nobody held made it
    the record's registrar and the number's owner, and its second A04 replaced it with the number the HIS had
    registered on another woman's record -- taken, linked, her resident reading the placeholder's result (rv41q HIGH
    1); the same through a placeholder's number regfix41d had made ownerless (rv41q HIGH 2). A duplicate
    registration of one person is an A40's business (the wrong number taken off first) or the operator's, never an
    automatic link by renumbering. A declared registration application's word stands: the site has said which
    systems say who a record's person is (forty-second round, decl42). A merge exempts only what it carries: the
    whole survivor once was exempt, whoever sent the merge, so the LIS's A40 whose PID gave its own walk-in record her
    name and the number the HIS registered on her (MRG a second LIS placeholder) was taken where the same PID in an
    A08 is held -- linked, at her own hospital or another member, her resident reading the walk-in's result (rv42d
    HIGH 1; forty-second round, decl42b). A number the merged-away record held moves with the merge as HL7 v2.5.1
    3.3.40 has it ("the identifiers ... merge"); a number the survivor's PID newly states is a renumbering."""
    if _declares(conversion):
        return False
    return any(_number_token(s, v) not in carried for s, v in tokens)


# a merge held for the operator (``_merges_held``): the claim's ``kind`` (the operator's list names it), and the reason
# its message's Provenance states -- a held merge merged nothing, so its Provenance registers no record
# (``registers_nothing``: a merge names its survivor a registration, ``_MERGING``)
MERGE_KIND = "merge"
MERGE_HELD = {"system": "urn:huren:provenance-reason", "code": "merge-held",
              "display": "the merge was held for the operator: no record was merged"}


def _merges_held(conversion: Any, earlier: Sequence[Any], search: Any, messages: Any, read_many: Any,
                 merge: MergeRules | None) -> list[int]:
    """Who may merge a record away: each merge of this message (A18/A30/A34/A39/A40/A46/A47: ``his.merge``'s
    ``Conversion.merges``) that ``merge_refused`` refuses is held for the operator as the same application's A08
    giving the record another's number is (``_hold_linking``): the merge is left out of what the message writes
    (``_unmerged``: MRG-1's record as it was, the survivor without the link, nothing carried), the message is kept
    with a held claim on the survivor (``GET /admin/held``; the operator's decision replays it with the merge
    taken: ``Conversion.decided_renumbers``), and ERR W 205 at MRG-1 says why -- never the other record's number or
    name. The rest of the PID is filed as the same application's A08 would be (its own rules). Asked before any
    step that reads the merges (``_merge_carried``'s exemption, ``_joined``, ``_carried``): a merge held carries
    nothing, so a number its PID states is judged as a plain renumbering. Returns the positions in ``earlier`` read."""
    leaned: list[int] = []
    stored: dict[Any, Any] = {}
    held: list[tuple[str, str, int, str]] = []
    for survivor, prior, sequence, renumbered in list(conversion.merges):
        why = merge_refused(conversion, survivor, prior, renumbered, earlier, stored, search, messages, read_many,
                            merge, leaned)
        if why is None:
            continue
        if survivor in conversion.decided_renumbers:  # (the operator took this message's merge: taken)
            conversion.decision_answered = True
            continue
        held.append((survivor, prior, sequence, why))
    # every merge decided before any is left out: two held merges of one MRG-1 record are both left out, neither
    # survivor keeping a link to a record nothing merged (rv43d MED 2)
    gone = {(survivor, prior) for survivor, prior, _, _ in held}
    conversion.merges[:] = [m for m in conversion.merges if (m[0], m[1]) not in gone]
    for survivor, prior, sequence, why in held:
        _unmerged(conversion, survivor, prior, sequence)
        if _read_in(stored, survivor, read_many) not in stored \
                and not any(survivor in c.by_reference for c in earlier) and survivor not in conversion.unfiled:
            conversion.unfiled.append(survivor)  # (filed nowhere: the merge's own record -- ``leave_unfiled``)
        # the decision is about both records as the operator was shown them: MRG-1's record pinned beside the
        # survivor (``pinned``: its version now), so either changed since answers 409 (rv43d MED 1)
        was = stored.get(tuple(prior.split("/", 1))) or {}
        version = (was.get("meta") or {}).get("versionId")
        claim = {"claim": RENUMBER_CLAIM, "resource": survivor, "element": "link", "at": f"MRG[{sequence}]-1",
                 "elsewhere": False, "kind": MERGE_KIND,
                 **({"pinned": [{"resource": prior, "versionId": str(version)}]} if version else {})}
        if claim not in conversion.held:
            conversion.held.append(claim)
        conversion.warn(HL7Error(why, segment="MRG", sequence=sequence, field=1, code=DUPLICATE_KEY_IDENTIFIER))
    return leaned


def merge_refused(conversion: Any, survivor: str, prior: str, renumbered: bool, earlier: Sequence[Any],
                  stored: dict[Any, Any], search: Any, messages: Any, read_many: Any, merge: MergeRules | None,
                  leaned: list[int]) -> str | None:
    """May this message's application merge record ``prior`` (MRG-1's) away into ``survivor`` (the PID's)? None:
    it may; else why not, the W 205's words. The one rule of who may merge a record away (``_merges_held`` asks it).

    *A site that declares its registration applications* (institutions.yaml ``registration_applications``): any of
    them may; another application only when it registered both records itself (``_registered``, the batch's as one
    by one: ``_with_batch``; aliases one: ``sends_as``) -- a survivor no version of which is stored or written by the
    batch is this message's own. A merge says the two records are one person's: HL7 v2.5.1 3.3.40 "the
    identifiers ... merge", and the patient index reads every result of both as the survivor's person's. The site
    has declared which systems say who a record's person is; the LIS's A08 giving its walk-in her number is held
    (decl42), and its A40 naming the HIS's record of her in MRG-1 and its own walk-in of another name in PID had
    carried her number onto the walk-in -- AA, her resident reading the walk-in's result (rv42f HIGH; forty-third
    round, idn43). The opposite direction (the LIS merging its walk-in INTO the HIS's record) is held too: the
    walk-in's results become hers on the LIS's word, what decl42b says a LIS's own message cannot do ("what the LIS
    met without the card cannot become her record by its own message") -- the declared HIS's A40, or the
    operator's decision, joins them. The LIS merging two records it registered itself (its own duplicates) stands
    unless it would move a resident ID number MRG-1's record holds onto a survivor not holding it (``_numbers_moved``):
    the HIS's A08 numbering the LIS's walk-in is the registration's word of whose record it is, and the LIS's A40
    merging that walk-in into its other one of another name had carried her number there -- AA, her resident reading
    the other's result (rv43d HIGH 1; idn43b). Only a declared registration application moves a number by merging.

    *A site declaring none*: nothing in a message tells the HIS from a LIS, so the rule reads what the merge does --
    held when it would move a resident ID number (``merge_carries``, what the merged-away record holds) onto a
    survivor that holds none (as the batch leaves it, else stored) and whose name as this message leaves it
    (``_as_stored``) differs from the merged-away record's (``same_name``): a number moving to another name is
    another person's record taking her identity. The HIS merging one woman registered twice, the survivor's PID
    stating her name, is taken as before; a duplicate whose name was mistyped is merged by restating the name. A name
    missing on either record is no agreement (rv43d HIGH 2: her number had moved onto a nameless placeholder)."""
    declared, app = conversion.registrars, _registrar_of(conversion)
    if declared:
        if _declares(conversion):
            return None
        for ref in (prior, survivor):
            key = _read_in(stored, ref, read_many)
            if ref == survivor and key not in stored and not any(ref in c.by_reference for c in earlier):
                continue  # (not held anywhere: this message's new record)
            registrar = _with_batch(_registered(ref, search, messages, declared, read_many), ref, earlier, declared)
            if registrar in (None, _UNSPOKEN, _UNREGISTERED) or not sends_as(conversion.institution, conversion.sender,
                                                                             registrar, conversion.site):
                by = registrar if registrar not in (None, _UNSPOKEN, _UNREGISTERED) else "none"
                whose = "MRG-1's record" if ref == prior else "the PID's record"
                return (f"MRG-1's record is not merged away: {whose} was registered by another application (MSH-3 "
                        f"{by}) than this message's, and only {RENUMBER_LINKS} (MSH-3 {', '.join(declared)}) or the "
                        "application that registered both records merge one away -- taken, the two records would "
                        "be one person's and each resident would read the other's record. This message's "
                        f"application (MSH-3 {app or 'unknown'}) is held for the operator. If the two records are "
                        "one person's, have the registering application merge them (A40)")
        if _numbers_moved(conversion, survivor, prior, renumbered, earlier, stored, merge, leaned):
            return ("MRG-1's record is not merged away: the merge would move a resident ID number MRG-1's record "
                    "holds onto the PID's record, which does not hold it -- only "
                    f"{RENUMBER_LINKS} (MSH-3 {', '.join(declared)}) move an ID number by merging; taken, the "
                    "patient index would read the PID's record as that number's person's and her resident would "
                    f"read it. This message's application (MSH-3 {app or 'unknown'}) is held for the operator. If "
                    "the two records are one person's, have the registering application merge them (A40)")
        return None
    for ref in (prior, survivor):
        _read_in(stored, ref, read_many)
    was = _as_left(prior, earlier, stored, leaned)
    person = conversion.by_reference.get(survivor)
    if was is None or person is None or _numbers_left(survivor, earlier, stored, leaned):
        return None
    carried = _carried_bare(conversion, survivor, person, prior, was, merge if merge is not None else shipped(),
                            bool(renumbered))
    if not id_numbers({"identifier": carried or []}):
        return None
    held = _as_left(survivor, earlier, stored, leaned)
    theirs, hers = name_of(_as_stored(conversion, survivor, held or {}, merge)), name_of(was)
    if theirs is not None and hers is not None and same_name(theirs, hers):
        return None  # (a name missing on either is no agreement: nothing then says the survivor is hers -- rv43d HIGH 2)
    return ("MRG-1's record is not merged away: the merge would move its resident ID number onto the PID's record, "
            "which holds none and bears another name (PID-5) or none, or MRG-1's record bears none -- taken, the "
            "patient index would read the two records "
            "as one person's and her resident would read the other record. Held for the operator (MSH-3 "
            f"{app or 'unknown'}; on a site that declares its registration_applications in institutions.yaml, theirs "
            "merge unheld). If the two records are one person's, have the registering application merge them with "
            "the person's name in PID-5")


def _read_in(stored: dict[Any, Any], ref: str, read_many: Any) -> tuple[str, ...]:
    """``ref``'s stored version read into ``stored`` unless it is there (``merge_refused``); its key."""
    key = tuple(ref.split("/", 1))
    if key not in stored and read_many is not None:
        stored.update(read_many([key]))
    return key


def _numbers_moved(conversion: Any, survivor: str, prior: str, renumbered: Any, earlier: Sequence[Any],
                   stored: dict[Any, Any], merge: MergeRules | None, leaned: list[int]) -> frozenset[str]:
    """The resident ID numbers a merge of this message would move from ``prior`` (MRG-1's record, as the batch
    leaves it, else stored) onto ``survivor`` that the survivor does not hold already (``_numbers_left``): what the
    merge carries (``_carried_bare``: a number the PID restates that MRG-1's record held is moved all the same).
    ``merge_refused`` holds such a merge from an application the declaring site did not declare a registration
    application: the LIS registered both its walk-ins, yet the number the HIS gave one of them is the HIS's word of
    whose record it is, and the LIS's A40 had moved it onto its other walk-in of another name -- AA, her resident
    reading that walk-in's result (rv43d HIGH 1; forty-third round, idn43b). Two numberless walk-ins move none."""
    was = _as_left(prior, earlier, stored, leaned)
    person = conversion.by_reference.get(survivor)
    if was is None or person is None:
        return frozenset()
    carried = _carried_bare(conversion, survivor, person, prior, was, merge if merge is not None else shipped(),
                            bool(renumbered))
    return id_numbers({"identifier": carried or []}) - _numbers_left(survivor, earlier, stored, leaned)


def _unmerged(conversion: Any, survivor: str, prior: str, sequence: int) -> None:
    """Leave a held merge (``_merges_held``) out of what its message writes: MRG-1's record (``his.merge``'s inactive
    version of it, its renumbering's queued move) and its place in the Provenance, the survivor's ``replaces`` link
    to it and the undoing of a merge the other way round, the members MRG-1 names (``his._held_to_members``), the
    merge itself (``Conversion.merges``: nothing carried) -- the records stay as they were. The Provenance says the
    merge was held (``MERGE_HELD``): a merge names its records a registration (``_MERGING``), a held one none."""
    conversion.merges[:] = [m for m in conversion.merges if (m[0], m[1]) != (survivor, prior)]
    # MRG-1 named again by a merge taken (``_merges_held`` leaves every held one out first): that merge writes MRG-1's
    # record, its members and its Provenance target; this survivor still loses its link to it
    stands = any(m[1] == prior for m in conversion.merges)
    if not stands:
        conversion.by_reference.pop(prior, None)
        conversion.said.pop(prior, None)
        conversion.planned.pop(prior, None)
        conversion.merged_apart.pop(prior, None)
    conversion.members[:] = [m for m in conversion.members if not (m.segment == "MRG" and m.sequence == sequence)]
    res = conversion.by_reference.get(survivor)
    if res is not None:
        links = [lk for lk in res.get("link") or () if (lk.get("other") or {}).get("reference") != prior]
        if links:
            res["link"] = links
        else:
            res.pop("link", None)
        said = conversion.said.get(survivor)
        if said is not None:
            conversion.said[survivor] = replace(said, deletes=tuple(
                d for d in said.deletes if not (d.element == "link" and ("other.reference", (prior,)) in d.where)))
        conversion.planned.pop(survivor, None)
    for ref, resource in conversion.by_reference.items():
        if ref.startswith("Provenance/"):
            if not stands:
                resource["target"] = [t for t in resource.get("target") or () if t.get("reference") != prior]
            if not any(MERGE_HELD in (r or {}).get("coding") or () for r in resource.get("reason") or ()):
                resource["reason"] = [*(resource.get("reason") or ()), {"coding": [dict(MERGE_HELD)]}]
            conversion.planned.pop(ref, None)
    conversion._bundle = None


def leave_unfiled(conversion: Any) -> None:
    """Leave out of what the message writes each record a held merge named as its survivor that was filed nowhere
    before (``Conversion.unfiled``: no version stored nor written by the batch -- an A47's or A46's new identifier,
    an A40 naming a survivor never registered): the record and its place in the Provenance, and the Provenance
    itself when it names nothing else. Asked last of the settle steps, so every check read the message as sent.

    Why: HL7 v2.5.1 3.3.47 -- an A47 says MRG-1's record is now known by PID-3's identifier; the record under the new
    identifier is that record renumbered, never a second one. Held, nothing was renumbered, yet the new identifier's
    record was filed with the PID's name and no number (idn43b's left LOW): a record no registration spoke for, made
    of a change that did not happen, which the LIS's later results under the new MRN then filed on. A held merge
    registers no one (``MERGE_HELD``); so nothing of it is filed until the operator decides -- the decision replays
    the message, the merge taken, and the renumbered record is filed whole (forty-fourth round, low44). A record
    another resource of the message names stays filed: another merge of the message, taken, into the same survivor
    (an A40's second PID/MRG pair: its MRG-1 record ``replaced-by`` it) files it as its own survivor. No other
    resource of a merge names it -- no shipped merge template maps a visit (A18's PV1 is not read), and the
    Provenance is left out with it (rv44a LOW; low44b)."""
    for ref in conversion.unfiled:
        named = [r for k, r in conversion.by_reference.items()
                 if k != ref and not k.startswith("Provenance/") and _names(r, ref)]
        if named or ref not in conversion.by_reference:
            continue
        for gone in (ref, *(k for k, r in conversion.by_reference.items() if k.startswith("Provenance/")
                            and [t for t in r.get("target") or () if t.get("reference") != ref] == [])):
            conversion.by_reference.pop(gone, None)
            conversion.said.pop(gone, None)
            conversion.planned.pop(gone, None)
        for resource in conversion.by_reference.values():
            if resource.get("resourceType") == "Provenance":
                resource["target"] = [t for t in resource.get("target") or () if t.get("reference") != ref]
        conversion.create_only[:] = [r for r in conversion.create_only if r != ref]
    conversion._bundle = None


def _names(value: Any, ref: str) -> bool:
    """Whether a resource (any part of it) holds a Reference to ``ref``."""
    if isinstance(value, dict):
        return value.get("reference") == ref or any(_names(v, ref) for v in value.values())
    return isinstance(value, list) and any(_names(v, ref) for v in value)


def registers_nothing(provenance: dict[str, Any]) -> bool:
    """Does ``provenance`` register no record whatever its message's event -- one naming the versions an owner's
    message re-keyed (``rekeys``), or a merge's held for the operator (``MERGE_HELD``: nothing was merged, and a
    merge's survivor counts as its registration only when it merged)?"""
    return rekeys(provenance) or any(
        c.get("system") == MERGE_HELD["system"] and c.get("code") == MERGE_HELD["code"]
        for reason in provenance.get("reason") or () for c in (reason or {}).get("coding") or ())


# the W 205 of a new record's number held (``new_record_linked``): begins as ``_hold_linking``'s own words do (one
# number another record holds), names who may (words.yaml ``w-id-number-new-record-held`` reads the MSH-3 names)
_NEW_LINKS = (
    "PID-3 gives the record a resident ID number another record holds: not taken -- the record is new, made by this "
    "message's result or order, and taken, the patient index would join it to that record as one person's. Only "
    f"{RENUMBER_LINKS} and number_linking_applications (MSH-3 {{apps}}) give it unheld; this message's application "
    "(MSH-3 {app}) is held for the operator: the record is filed without the number, its results its own. If the two "
    "records are one person's, have the registering application state the number on this record (A08/A31)")


def new_record_linked(conversion: Any, ref: str, earlier: Sequence[Any], stored: dict[Any, Any], search: Any,
                      read_many: Any) -> bool:
    """Is the resident ID number a result's or an order's PID states for the NEW record it makes (``create_only``: no
    version of it stored or written by the batch) to be held for the operator, not given? Yes on a site declaring
    its ``registration_applications`` when another active record holds that number (``_other_holder``) and this
    message's application is neither a declared registration application nor one of the institution's declared
    ``number_linking_applications`` (institutions.yaml: the applications whose results restate the registration --
    a LIS whose patients come from the HIS's orders) -- each by ``applications.is_declared``, so a form the site's
    ``application_aliases`` name with a declared application is it. The one rule of which senders' results link a new record by
    number, asked by ``_registrars_number``; the operator's decision (``decided_renumbers``) takes it.

    Why: taken, the patient index joins the new record to hers (one number, one person) and her resident reads the
    result. A LIS's walk-in registration (A04) stating her number is held on such a site (decl42b), and its result
    under a new MRN stating her name, birth date and number had linked all the same (decl42b HIGH; forty-third round,
    idn43). Holding every result's number stopped the workflows that link by it -- a remote reading centre's report,
    a referral's result, a LIS whose patients the HIS registered without an ADT feed -- so which senders' results
    relay the registration is the site's to declare, as which systems register is: a wrong answer is worse than no
    answer, and the held result is filed on its own record, nothing lost. A site declaring no registration
    application keeps the index's rule (nothing there tells the HIS from a LIS: decl42b's choice)."""
    institution, site = conversion.institution, conversion.site
    if not conversion.registrars or is_declared(institution, conversion.sender, conversion.registrars
                                                + conversion.linkers, site):
        return False
    if ref in conversion.decided_renumbers:  # (the operator's decision: given)
        conversion.decision_answered = True
        return False
    if tuple(ref.split("/", 1)) in stored or any(ref in c.by_reference for c in earlier):
        return False
    return _other_holder(ref, _id_tokens(conversion.by_reference.get(ref)), earlier, stored, search,
                         read_many) is not None


def _first_number_held(conversion: Any, ref: str, judged: str, person: dict[str, Any], earlier: Sequence[Any],
                       stored: dict[Any, Any], search: Any, messages: Any, read_many: Any,
                       carried: Collection[tuple[str, str]] = ()) -> Renumber | None:
    """Is the resident ID number a PID states for record ``ref`` -- held (as the batch leaves it, else stored) and
    holding no number (``judged``: it, or the survivor it was merged into) -- to be held for the operator, not
    given? Yes -- a held ``Renumber`` naming the registering application(s) by MSH-3, for the W -- when another record
    holds that number (``_other_holder``: the decision's own check) and this message's application did not register
    the record: not a declared registration application, nor the record's registrar (``_registered``, the batch's as
    one by one: ``_with_batch``; aliases one: ``sends_as``). A result's placeholder no registration spoke for -- or
    only one whose renumbering was held here (``_registered_unheld``) -- has no registrar: held unless a declared
    registration application sends it (``_may_restate``'s rule; rv41n HIGH 1, regfix41d). The record's registrar,
    not a declared registration application, is held too (``RENUMBER_LINKS``, ``_links_unheld``: a duplicate
    registration of one person is an A40's or the operator's business, never a link by renumbering -- forty-second
    round, decl42; regfix41c had taken it) unless a merge in this message names the record. None: given -- a record
    not held yet (this message registers it: the index joins a returning patient's records), a declared
    registration application's word, or no other record holding the number.

    Why: ``_may_renumber`` judges the replacement of a number a record holds; a record holding none was "this
    message's to number" whoever sent it, so the LIS's walk-in A04 under the HIS's record JA (the clerk picked the
    wrong one of two women of one name and birth date; JA registered without the card) stating the other woman's
    number was taken AA, the index joined JA to her record and her resident read JA's record and results (rv41j HIGH
    1) -- the harm regfix41b bars for the operator's decision, live. Held as a renumbering is (``_hold_renumber``,
    ``GET /admin/held``), so the operator sees it -- and the decision on it is barred (``decision_barred``) while
    the other record holds the number, as regfix41b has it (forty-first round, regfix41c)."""
    key = tuple(judged.split("/", 1))
    tokens = _id_tokens(person)
    if key not in stored and not any(judged in c.by_reference for c in earlier):
        # (not held yet: this message registers it -- the index joins a returning patient's records; on a site that
        # declares its registration applications another application's new record is held like its A08: rv42d HIGH 2)
        if (not conversion.registrars or not _links_unheld(conversion, tokens, carried)
                or _other_holder(judged, tokens, earlier, stored, search, read_many) is None):
            return None
        return Renumber(False, RENUMBER_LINKS, tuple(conversion.registrars), held=True)
    if _other_holder(judged, tokens, earlier, stored, search, read_many) is None:
        if ref in conversion.decided_renumbers:  # (the operator's decision, no longer barred: it gives the number)
            conversion.decision_answered = True
        return None
    declared = conversion.registrars
    if _declares(conversion):
        return None
    held = Renumber(False, RENUMBER_FIRST, (), held=True)  # (a placeholder: registered by none)
    registrar = _with_batch(_registered(judged, search, messages, declared, read_many), judged, earlier, declared)
    if registrar == _UNREGISTERED or (registrar == _UNSPOKEN and _placeholder_in_batch(judged, earlier, read_many)):
        return held  # (a placeholder: no one registered it -- held; a declared application returned above)
    if registrar not in (None, _UNSPOKEN) and not _registered_unheld(judged, earlier, search, messages, read_many):
        return held  # (a placeholder whose registrations were all held here: a placeholder still)
    if registrar not in (None, _UNSPOKEN) and sends_as(conversion.institution, conversion.sender, registrar,
                                                       conversion.site):
        return Renumber(False, RENUMBER_LINKS, tuple(declared), held=True) \
            if _links_unheld(conversion, tokens, carried) else None  # (the registrar's own: held unless its merge
        # carries the number -- decl42, decl42b)
    return held._replace(apps=(registrar,) if registrar not in (None, _UNSPOKEN) else ())


def _registered_unheld(ref: str, earlier: Sequence[Any], search: Any, messages: Any, read_many: Any) -> bool:
    """Did a registration not held here speak for record ``ref`` -- a registration event (``registers_person``) that
    made or restated a version of it (``_makers``: every message but one whose renumbering was held), stored or an
    earlier message of the batch (batch = one by one)? No: a result's placeholder whose only registrations were held by
    ``_first_number_held`` -- the LIS's walk-in A04 stating the number another woman holds, held W 205, was filed and
    so became the record's registrar, and the same A04 sent again was "the registrar's own word": taken, the two
    linked, her resident reading the placeholder's result (the held number taken by a re-send; forty-first round,
    regfix41d). Read only when another record holds the number a numberless record is given."""
    if any(c.registers and ref in c.by_reference and ref not in c.create_only and not _renumber_held(c.held, ref)
           for c in earlier):
        return True
    marks = _marks(search, read_many)
    if marks is None or messages is None:
        return True  # (cannot be told: the registrar's reading stands)
    rtype, _, rid = ref.partition("/")
    try:
        versions = marks.versions(rtype, rid)
    except NotFound:
        return True
    made = _makers(ref, {str(v.version) for v in versions}, search, messages, marks)
    return any(registers for found in made.values() for _, _, registers in found)


def _registrars_null(conversion: Any, earlier: Sequence[Any], stored: dict[Any, Any], leaned: list[int],
                     search: Any, messages: Any, read_many: Any) -> None:
    """PID-3 ``""^^^^NNCHN`` (``Conversion.id_nulled``, ``common._national_deleted``) over a record that holds a
    resident ID number -- as the batch leaves it, else stored: taken (the number deleted) only from an application
    ``_may_renumber`` says may (the one rule of who may replace or take off the number: regfix40); from any other
    application the number stays, and ERR W 205 at that
    repetition says why. The README calls the null "the registrar's way" to take a twin sister's number off: the
    number is the one the patient index links the person's records on, and a LIS's or an undeclared system's A08
    taking it off lost it on a word that registered nothing (rv40a MED 4). A W, not an AE: the rest of the message
    (its name, address...) is the sender's to state, as a ``""`` of another authority's number is answered
    (``_not_theirs_to_delete``). A result's or order's PID (``create_only``) deletes nothing anyway; a record not
    held yet (an A47's new record) is this message's registration: its null stands (it leaves out the carry)."""
    for ref, sequence, repetition in conversion.id_nulled:
        if ref in conversion.create_only:
            continue
        held = _numbers_left(ref, earlier, stored, leaned)
        if not held:
            continue
        answer = _may_renumber(conversion, ref, earlier, search, messages, read_many, held)
        if answer.may:
            continue
        _kept_on(conversion, ref, NATIONAL_ENTRIES)
        if answer.held:
            _hold_renumber(conversion, ref, sequence, repetition)
        conversion.warn(HL7Error(
            f"PID-3 repetition {repetition} asks to delete the record's resident ID number (\"\"^^^^NNCHN): not "
            f"taken, the ID number is kept -- only {answer.who} takes it off{_held_words(answer, _registrar_of(conversion))}."
            " If it is wrong, ask that application to send the null, or the operator to correct the record", segment="PID",
            sequence=sequence, field=3, code=DUPLICATE_KEY_IDENTIFIER, repetition=repetition if repetition > 1 else None))


def _carried_from(prior: str) -> dict[str, Any]:
    """The mark (``nationalid.CARRIED_FROM_EXT``) on an identifier a merge carried from ``prior``: the unlink (A37)
    undoing the merge takes it off the survivor (``his.unlink``) and gives it back (``_given_back``); the patient
    index does not count it as the survivor's own number (``nationalid.raw_national_id``)."""
    return {"url": CARRIED_FROM_EXT, "valueReference": {"reference": prior}}


def carried_from(prior: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The identifiers a merge carried from record ``prior`` (``_carried``'s mark), as a delete's ``where``: the
    one reading ``his.unlink`` takes them off the survivor by."""
    return (("extension.url", (CARRIED_FROM_EXT,)), ("extension.valueReference.reference", (prior,)))


def _not_theirs_to_delete(conversion: Any, earlier: Sequence[Any], stored: dict[Any, Any], leaned: list[int]) -> None:
    """A PID-3 repetition ``""`` under another authority (``Conversion.nulled``, ``common._others_nulled``) whose
    record -- as the batch leaves it, else stored -- holds a number under that authority's system which huren filed
    there as the institution's own (``_marked``: remembered from another application's messages, never stated by
    the sender): kept (``merge.yaml`` ``beside``), and the sender told so -- ERR W 205 at that repetition. HL7 v2.5
    2.5.3 makes ``""`` a delete, but a hospital deletes only what it stated: the number names the record for the
    application that sent it (idfix38), and the registration taking it off made that application's next result a
    record of its own. Silently ignored before (AA, nothing said: id40)."""
    for ref, system, authority, sequence, repetition in conversion.nulled:
        if ref in conversion.create_only:
            continue  # (a result's or order's PID: its record's identifiers are not written over)
        was = _as_left(ref, earlier, stored, leaned)
        if was is None or not any(i.get("system") == system and _marked(i) for i in was.get("identifier") or ()):
            continue
        conversion.warn(HL7Error(
            f"PID-3 repetition {repetition} asks to delete the record's number under assigning authority "
            f"'{authority}' (\"\"): that number was filed under the record from another application's messages, "
            "not stated by this system, and is kept -- a system deletes only the numbers it states. If it is wrong, "
            "ask the operator to correct the record", segment="PID", sequence=sequence, field=3,
            code=DUPLICATE_KEY_IDENTIFIER, repetition=repetition if repetition > 1 else None))


# how far an unlink looks along a chain of merges for the other record it names (``_undoes_no_merge``): records read
_CHAIN_READ = 64


def _undoes_no_merge(conversion: Any, earlier: Sequence[Any], stored: dict[Any, Any], leaned: list[int],
                     read_many: Any, search: Any = None, merge: MergeRules | None = None) -> None:
    """Refuse (AE 204 at the second record's PID-3) an unlink (A37) of two records no merge joined directly -- neither
    holds a ``replaces``/``replaced-by`` link to the other, as the batch leaves it, else stored -- that merges join
    through other records (R1 merged into R2, R2 into R3; the A37 names R3 and R1). An A37 undoes a merge it names
    (HL7 v2.5.1 3.3.37: it unlinks the two identifiers it names); which merge of the chain was wrong -- R1 into R2 or
    R2 into R3 -- the message does not say, and either undo files another person's records apart. ``his.unlink``
    took the ID number off R3, the record in use, by the mark naming R1 anywhere on it, and gave it to R1, still
    merged away, marked from R2, while every link stood (rv40g MED 4; idfix40b). The sender is told which records
    lie between, so it names one merge: the A37 of R3 and R2, or of R2 and R1. Two records no merge joins at all
    are already apart: the A37 is answered AA and changes nothing, as before. Looked for up to ``_CHAIN_READ``
    records along the links (a longer chain: not refused, the links as they stand).

    Refused too (``_carried_on``): the A37 of a merge it names (R2 and R1) when what that merge carried -- R1's ID
    number -- a later merge carried on (R2 into R3): the number sits on R3, which the A37 does not name and so does
    not change; taken, the A37 parted R1 from the chain while R3 kept R1's number, and ``Patient?identifier=`` the
    number answered R3, by the HIS's own word another person's record (idfix40b). The sender undoes the later merge
    first (the A37 of R3 and R2: the number back on R2), then this one (back on R1), and merges R2 into R3 again.
    Where the later one was a renumbering (R2 renumbered R2N by an A47: ``_renumbered``), the advice is its undo --
    an A47 from R2N back to R2 -- not "the A37 of R2N and R2" (rv41b LOW 1, HIGH 2); so is the chain refusal's of the
    A37 of R2N and R1 (the one merge between made under R2): the A47 back, then the A37 of R2 and R1 (idfix41).

    Refused first (rv41b HIGH 2): an A37 of two records one of which an A46/A47 renumbered into the other
    (``_renumbered``). A renumbering is one record under a new number (HL7 v2.5.1 3.3.47), not a merge of two, and is
    undone by another A47; the A37 was taken as the undo of a merge -- the retired number a record in use again
    beside its new one, the mark ``his.unlink`` takes back naming neither -- so after A40 R1 into R2 and A47 R2 to
    R2N, the A37s of R2N/R2 and then R2/R1 parted R1 without its ID number, left on R2N, another person's record by
    the HIS's own word."""
    for ref, other in conversion.unlinked:
        if ref > other and (other, ref) in conversion.unlinked:
            continue  # (each pair once: ``his.unlink`` lists both ways)
        systems = {str(i.get("system")) for i in (_as_left(ref, earlier, stored, leaned) or {}).get("identifier") or ()
                   if _typed_mr(i)}
        sequence = max(conversion.persons.get(r, 2) for r in (ref, other))
        renumbered = next(((new, old) for new, old in ((ref, other), (other, ref))
                           if _renumbered(new, old, earlier, stored, leaned, search, read_many, merge)), None)
        if renumbered is not None:
            new, old = (_mrn_of(_as_left(r, earlier, stored, leaned), systems) for r in renumbered)
            _refuse_unlink(
                f"the A37 names the record {old} and the number {new} an A46/A47 renumbered it to: one record under "
                "a new number, not two records a merge joined, and an A37 undoes a merge (HL7 v2.5.1 3.3.37) -- "
                f"taken, {old} would be a record in use again beside {new}, and nothing the renumbering moved goes "
                f"back; nothing of it is filed. A renumbering is undone by another: an A47 from {new} back to {old} "
                f"(MRG-1 {new})", sequence, leaned)
        between = _merged_between(ref, other, earlier, stored, leaned, read_many, merge)
        if between:
            named = _named_between([ref, *between, other], systems, earlier, stored, leaned, search, read_many, merge)
            advice = ("which merge of them was wrong the message does not say; nothing of it is filed. Send the A37 of "
                      "the two records of the wrong merge (a record and the one it was merged into)")
            end = next((e for e in (ref, other) if len(between) == 1
                        and _renumbered(e, between[0], earlier, stored, leaned, search, read_many, merge)), None)
            if end is not None:  # (the one merge between, made under the number an A46/A47 replaced since)
                former, current, parted = (_mrn_of(_as_left(r, earlier, stored, leaned), systems)
                                           for r in (between[0], end, other if end == ref else ref))
                advice = (f"the merge was made under {former}, before the renumbering, and an A37 does not read "
                          f"through one; nothing of it is filed. Renumber {current} back to {former} first (an A47, "
                          f"MRG-1 {current}), then send the A37 of {former} and {parted} (and the A47 from {former} "
                          f"to {current} after it)")
            _refuse_unlink(
                "the A37 unlinks two records no merge joined directly: merges join them through the record"
                f"{'s' if len(named) > 1 else ''} {', '.join(named)} between, and an A37 undoes a merge it names (HL7 "
                f"v2.5.1 3.3.37) -- {advice}", sequence, leaned)
        on = _carried_on(ref, other, earlier, stored, leaned, read_many, merge)
        if on is not None:
            holder, before = (_mrn_of(_as_left(r, earlier, stored, leaned), systems) for r in on)
            if _renumbered(*on, earlier, stored, leaned, search, read_many, merge):
                _refuse_unlink(
                    "the A37 undoes a merge whose carried numbers (the resident ID number) went on with the record "
                    f"{before} when an A46/A47 renumbered it {holder}: this A37 does not name {holder}, and an A37 "
                    "changes only the records it names (HL7 v2.5.1 3.3.37) -- left there, the number would answer for "
                    f"another person; nothing of it is filed. A renumbering is not a merge, and an A37 does not undo "
                    f"it: renumber {holder} back to {before} first (an A47, MRG-1 {holder}), then send this A37 again "
                    f"(and the A47 from {before} to {holder} after it)", sequence, leaned)
            _refuse_unlink(
                "the A37 undoes a merge whose carried numbers (the resident ID number) a later merge carried on to "
                f"the record {holder}, merged from {before}: this A37 does not name it, and an A37 changes only the "
                "records it names (HL7 v2.5.1 3.3.37) -- left there, the number would answer for another person; "
                f"nothing of it is filed. Undo the later merge first (the A37 of {holder} and {before}), then send "
                "this A37 again", sequence, leaned)


def _named_between(path: list[str], systems: Collection[str], earlier: Sequence[Any], stored: dict[Any, Any],
                   leaned: list[int], search: Any, read_many: Any, merge: MergeRules | None) -> list[str]:
    """The records between a chain's two ends (``path``: the A37's two records and ``_merged_between``'s between
    them), each once, as the sender knows it now (``_mrn_of``): a record a renumbering (A46/A47: ``_renumbered``)
    replaced is that record under its former number, so it is named by the number in use -- the record that
    replaced it, named already -- and not as a record of its own (rv40i LOW 3: "through the records 'F40J2N',
    'F40J2'" named one record twice, and invited an A37 of the retired number). One renumbered into an end of the
    chain (the A37 names the record by its new number) is named by its former number with the one in use, the merge
    having been made under it: nothing else lies between."""
    named = []
    for at in range(1, len(path) - 1):
        record = path[at]
        into = next((n for n in (path[at - 1], path[at + 1])
                     if _renumbered(n, record, earlier, stored, leaned, search, read_many, merge)), None)
        if into is None:
            named.append(_mrn_of(_as_left(record, earlier, stored, leaned), systems))
        elif into in (path[0], path[-1]):
            named.append(f"{_mrn_of(_as_left(record, earlier, stored, leaned), systems)} (renumbered "
                         f"{_mrn_of(_as_left(into, earlier, stored, leaned), systems)} since by an A46/A47)")
    return named


def _renumbered(newer: str, older: str, earlier: Sequence[Any], stored: dict[Any, Any], leaned: list[int],
                search: Any, read_many: Any, merge: MergeRules | None) -> bool:
    """Is ``newer`` the record ``older`` was renumbered into -- ``newer`` ``replaces`` it by an A46/A47
    (``his.RENUMBERING``: one record under a new identifier, HL7 v2.5.1 3.3.47), not by a merge of two records? The
    link does not say (``his.merge`` writes the same ``replaces``/``replaced-by`` for both), so the message that made
    it does: the batch's last merge of the two (``Conversion.merges``' renumbering flag), else the newest of the
    feed's Provenances naming both whose activity (MSH-9) is a merge event (``_MERGING``); a Provenance a FHIR client
    wrote proves nothing (its writer mark). False when it cannot be told (no store at hand). Asked only of an A37
    (``_undoes_no_merge``): of its two records, refused when one renumbered the other; of the record its refusal
    names."""
    from adapters.convert.his import RENUMBERING  # (his imports this module)

    linked = _as_left_linked(newer, earlier, stored, leaned, merge)
    if not any(isinstance(link, dict) and link.get("type") == "replaces"
               and (link.get("other") or {}).get("reference") == older for link in (linked or {}).get("link") or ()):
        return False
    for at in range(len(earlier) - 1, -1, -1):
        said = [renumbers for survivor, prior, _, renumbers in earlier[at].merges if (survivor, prior) == (newer, older)]
        if said:
            leaned.append(at)
            return said[-1] and not _in_use(_as_left_linked(newer, earlier[:at], stored, leaned, merge))
    marks = _marks(search, read_many)
    if marks is None:
        return False
    newest: dict[str, Any] | None = None
    for fed in _feeds_naming(older, lambda prov: bool(_versions_named(prov, older) and _versions_named(prov, newer)
                                                      and _activity(prov) in _MERGING), search, marks, False):
        newest = fed[-1] if fed else newest
    if newest is None or _activity(newest)[1] not in RENUMBERING:
        return False
    wrote = [int(v) for v in _versions_named(newest, newer) if v.isascii() and v.isdigit()]
    if not wrote:
        return True  # (a Provenance naming no version: the renumbering as its event says, the reading before)
    rtype, _, rid = newer.partition("/")
    try:
        before = next((v.resource for v in marks.versions(rtype, rid) if v.version < min(wrote)), None)
    except NotFound:
        before = None
    return not _in_use(before)


def renumbered_as_stored(survivor: str, prior: str, current: dict[str, Any], search: Any, read_many: Any,
                         merge: MergeRules | None) -> bool:
    """Was the stored A46/A47 that made ``survivor`` replace ``prior`` a renumbering -- its PID-3 record not in use
    just before it (``_renumbered``' store reading: the version before the one its Provenance names) -- rather than a
    merge of two records in use? ``current``: the survivor's stored version. For the upgrade giving merges filed
    before id40's carry that carry (``engine.carried_numbers``): it carries as ``_carried`` does live, a merge's number
    marked, so the A37 parting the two takes it back (rv41n HIGH 3). False: a merge, or cannot be told."""
    rtype, _, rid = survivor.partition("/")
    return _renumbered(survivor, prior, (), {(rtype, rid): current}, [], search, read_many, merge)


def _in_use(record: dict[str, Any] | None) -> bool:
    """Was ``record`` (the A46/A47's PID-3 record as it stood before that message) a record in use -- stored, not
    retired (``active`` false) nor merged away (a ``replaced-by`` link)? Then the A46/A47 did not give one record a
    new identifier (HL7 v2.5.1 3.3.47: to one not in use) but joined two records, each in use with its own results:
    a merge, which an A37 undoes (``_renumbered``; rv41g HIGH 2, idfix41b). A record it made, or one retired before
    it (the A47 back from R2N to R2 that undoes a renumbering), is a renumbering."""
    if record is None or record.get("active") is False:
        return False
    return not any(isinstance(link, dict) and link.get("type") == "replaced-by" for link in record.get("link") or ())


def _refuse_unlink(text: str, sequence: int, leaned: list[int]) -> None:
    """Raise ``_undoes_no_merge``'s refusal: AE 204 at the A37's second PID-3."""
    error = HL7Error(text, segment="PID", sequence=sequence, field=3, code=UNKNOWN_KEY_IDENTIFIER)
    if leaned:
        error.leaned_on = leaned  # type: ignore[attr-defined]
    raise error


def _carried_on(ref: str, other: str, earlier: Sequence[Any], stored: dict[Any, Any], leaned: list[int],
                read_many: Any, merge: MergeRules | None = None) -> tuple[str, str] | None:
    """Of a merge the A37 names directly (one record ``replaces`` the other): the record further along the survivor's
    ``replaced-by`` links (the survivor merged on into a third) holding an identifier the merge carried from the
    record merged away (``_carried_from``'s mark naming it), and the record it was merged from -- (holder, before);
    None: none such (up to ``_CHAIN_READ`` records). Each record's links as the batch leaves them (``_as_left_linked``)."""
    one, two = (_as_left_linked(r, earlier, stored, leaned, merge) for r in (ref, other))
    replaces = [(r, p, rec) for r, p, rec in ((ref, other, one), (other, ref, two))
                if p in _linked(rec, ("replaces",))]
    if not replaces:
        return None
    survivor, prior, record = replaces[0]
    mark, at, seen = _carried_from(prior), survivor, {survivor}
    while len(seen) <= _CHAIN_READ:
        nxt = _replaced_by(record)
        if nxt is None or nxt in seen:
            return None
        if tuple(nxt.split("/", 1)) not in stored:
            stored.update(read_many([tuple(nxt.split("/", 1))]))
        record = _as_left_linked(nxt, earlier, stored, leaned, merge)
        if any(mark in (i.get("extension") or ()) for i in (record or {}).get("identifier") or ()
               if isinstance(i, dict)):
            return nxt, at
        seen.add(nxt)
        at = nxt
    return None


def _typed_mr(identifier: Any) -> bool:
    """An identifier typed MR (the record number, HL7 table 0203)."""
    return isinstance(identifier, dict) and any(
        c.get("code") == "MR" for c in (identifier.get("type") or {}).get("coding") or () if isinstance(c, dict))


def _mrn_of(record: dict[str, Any] | None, systems: Collection[str]) -> str:
    """A record as the sender knows it: its record number (MR, current or ``old``) under one of ``systems`` (the
    named record's own), quoted; else "of another assigning authority" (its number not the sender's to read)."""
    value = next((str(i.get("value")) for i in (record or {}).get("identifier") or ()
                  if _typed_mr(i) and str(i.get("system")) in systems and i.get("value")), None)
    return f"'{value}'" if value is not None else "of another assigning authority"


def _as_left_linked(ref: str, earlier: Sequence[Any], stored: dict[Any, Any], leaned: list[int],
                    merge: MergeRules | None) -> dict[str, Any] | None:
    """The record ``ref`` as the batch leaves it (``_as_left``), its ``Patient.link`` as the batch leaves it too: the
    stored links with each earlier message's version of the record combined over them in turn (``MergeRules.combine``
    of ``link`` alone, as the write does: a merge's link added, ``feed: union``; an unlink's or a merge back's taken
    off, what its message said it deleted). One message's version of a record holds only the links that message
    states -- an A40's record merged away its ``replaced-by`` alone -- so read alone it lost the chain's other links:
    in one batch (A40 R1 into R2, A40 R2 into R3, the A37 of R3 and R1) the chain was not seen and the A37 took the
    ID number off R3, the refusal one by one gives bypassed (found by idlow41). ``merge``: the site's rules (the
    repository's), else the shipped ones."""
    record = _as_left(ref, earlier, stored, leaned)
    writes = [at for at, conversion in enumerate(earlier)
              if ref in conversion.by_reference and ref not in conversion.create_only]
    if record is None or not writes:
        return record
    rules = merge if merge is not None else shipped()
    rtype, _, rid = ref.partition("/")
    links = (stored.get((rtype, rid)) or {}).get("link")
    for at in writes:
        conversion = earlier[at]
        said = conversion.said.get(ref)
        stated = conversion.by_reference[ref].get("link")
        with rules.saying({ref: said} if said is not None else None):
            links = rules.combine({"resourceType": rtype, "id": rid, **({"link": links} if links else {})},
                                  {"resourceType": rtype, "id": rid, **({"link": stated} if stated else {})},
                                  conversion.writer or _WRITER).resource.get("link")
        leaned.append(at)
    return {**{k: v for k, v in record.items() if k != "link"}, **({"link": links} if links else {})}


def _merge_links(record: dict[str, Any] | None) -> list[str]:
    """The records ``record`` replaces or is replaced by (``Patient.link``): the merges that touch it."""
    return _linked(record, ("replaces", "replaced-by"))


def _merged_between(ref: str, other: str, earlier: Sequence[Any], stored: dict[Any, Any], leaned: list[int],
                    read_many: Any, merge: MergeRules | None = None) -> list[str]:
    """The records between ``ref`` and ``other`` along the merges' links (``_merge_links``, each record's links as the
    batch leaves them: ``_as_left_linked``; read in rounds), when the two are joined only through others; [] when one
    links the other directly, or no chain of at most ``_CHAIN_READ`` records joins them."""
    first = _as_left_linked(ref, earlier, stored, leaned, merge)
    if other in _merge_links(first) or ref in _merge_links(_as_left_linked(other, earlier, stored, leaned, merge)):
        return []
    came: dict[str, str] = {ref: ""}
    frontier = [ref]
    records = {ref: first}
    while frontier and len(came) <= _CHAIN_READ:
        unread = [tuple(r.split("/", 1)) for r in frontier if r not in records]
        if unread:
            stored.update(read_many(unread))
        step = []
        for at in frontier:
            if at not in records:
                records[at] = _as_left_linked(at, earlier, stored, leaned, merge)
            for nxt in _merge_links(records[at]):
                if nxt in came:
                    continue
                came[nxt] = at
                if nxt == other:
                    path, back = [], at
                    while back != ref:
                        path.append(back)
                        back = came[back]
                    return path[::-1]
                step.append(nxt)
        frontier = step
    return []


def _given_back(conversion: Any, earlier: Sequence[Any], stored: dict[Any, Any], leaned: list[int],
                merge: MergeRules | None) -> None:
    """An unlink (A37: ``Conversion.unlinked``, each record and the other it names) gives the record each number a
    merge had carried from it onto the other (``_carried``'s mark naming it, on the other as the batch leaves it,
    else stored), the mark naming it taken off -- unless the A37's PID of it states, or it holds, a number of that
    kind (``MergeRules.kept_beside``, the merge's own reading). ``his.unlink`` takes them off the other: the undo
    of the merge's carrying, exactly what it carried and no more."""
    rules = merge if merge is not None else shipped()
    writer = conversion.writer or _WRITER
    for ref, other in conversion.unlinked:
        person = conversion.by_reference.get(ref)
        held = _as_left(other, earlier, stored, leaned)
        if person is None or held is None:
            continue
        mark = _carried_from(ref)
        back = [{k: v for k, v in i.items() if k != "extension"}
                | ({"extension": rest} if (rest := [e for e in i.get("extension") or () if e != mark]) else {})
                for i in json_copy(held.get("identifier") or []) if mark in (i.get("extension") or ())]
        if not back:
            continue
        mine = _as_left(ref, earlier, stored, leaned) or {}
        stated = [*(person.get("identifier") or ()), *(mine.get("identifier") or ())]
        given = rules.kept_beside("Patient", "identifier", writer, back, stated)
        if given:
            person["identifier"] = [*(person.get("identifier") or ()), *given]


def _against_kept_number(conversion: Any, ref: str, sequence: int, was: dict[str, Any], merge: MergeRules | None,
                         leaned: list[int], left_out: Mapping[str, Renumber] | None = None,
                         renumber: Callable[[str], Renumber] | None = None) -> None:
    """Refuse (AE at PID-8, or PID-7) a registration whose PID-3 states no resident ID number when the record as it
    leaves it -- the stored number kept beside its identifiers (``merge.yaml`` ``Patient.identifier`` ``beside``),
    the PID's sex and birth date over the stored -- contradicts that number (``demographics.conflicts_with_own_ids``):
    the same rule, both ways, as the same PID stating the number is refused by (``common._check_demographics``). An
    A08 under the bare MRN with sex F left a female record holding a male ID number, answered AA, and ``a_man`` then
    called her a man (rv39d MED 4). Only a writer whose identifiers keep a number beside them is asked (the
    registration: a result's PID changes no record's sex), and only when the record holds a number and the PID
    states none. The stored number is not echoed (the ACK goes back to the sender).

    The advice is what the sender may do (rv40l LOW 4): a PID-3 number ``_registrars_number`` left out (``left_out``:
    who may replace it) is said to be left out, not "not stated"; an application that may not replace or take off the
    number (``renumber``: ``_may_renumber``) is told to correct PID-8/PID-7 or have the application that may, or the
    operator, correct the number -- not to send the number or ``""^^^^NNCHN``, which it would be answered W 205 for."""
    if ref in conversion.create_only:
        return  # (a result's or order's PID: its record is written only when absent, no sex of it changed)
    rules = merge if merge is not None else shipped()
    ep = rules.plan("Patient", conversion.writer or _WRITER).elements.get("identifier")
    if ep is None or not ep.beside:
        return
    person = conversion.by_reference[ref]
    if id_numbers(person) or not id_numbers(was):
        return
    wrong = conflicts_with_own_ids(_as_stored(conversion, ref, was, merge))
    if not wrong:
        return
    if left_out and ref in left_out:
        _refuse_against_number(wrong, sequence, "PID-3's resident ID number is left out (ERR W 205: not this "
                               "application's to replace), and the registration's identifiers leave the record's on "
                               "it", leaned, who=left_out[ref])
    answer = renumber(ref) if renumber is not None else Renumber(True)
    _refuse_against_number(wrong, sequence, "PID-3 does not state it, and the registration's identifiers leave it "
                           "on the record", leaned, who=None if answer.may else answer)


def _refuse_against_number(wrong: list[str], sequence: int, why: str, leaned: list[int],
                           who: Renumber | None = None) -> None:
    """The AE at PID-8 (or PID-7) of a registration leaving its record with a resident ID number its sex or birth
    date contradicts (``demographics.conflicts_with_own_ids``' ``wrong``), the number not stated by the PID: ``why``
    it is there -- kept beside the registration's identifiers (``_against_kept_number``), or carried by a merge
    (``_carried``; rv40a MED 2: the A47 onto a record of the other sex put a number there the thin A08 is refused
    for). The stored number is not echoed (the ACK goes back to the sender). ``who``: the sender may not replace nor
    take off the number (``_may_renumber``), these may -- the advice names them instead of the two HL7 mends."""
    field = 8 if any(w.startswith("gender") for w in wrong) else 7
    what = "sex" if field == 8 else "birth date"
    advice = (f"State the corrected ID number in PID-3 with the corrected {what}, take a wrong one off with "
              f"\"\"^^^^NNCHN in PID-3, or correct PID-{field}") if who is None else \
        (f"Correct PID-{field}, or have the application that may (MSH-3 {', '.join(who.apps) or 'unknown'}) or the "
         f"operator correct the record's ID number -- only {who.rule} replaces or takes it off")
    error = HL7Error(
        f"PID-{field} {what} disagrees with the resident ID number the record holds "
        f"({'; '.join(wrong)}): {why}; nothing of the message is filed. {advice}", segment="PID", sequence=sequence,
        field=field, code=DATA_TYPE_ERROR)
    if leaned:
        error.leaned_on = leaned  # type: ignore[attr-defined]
    raise error
