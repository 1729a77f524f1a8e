"""HIS patient administration: the segment converters ADT templates name (RelatedPerson from
NK1, AllergyIntolerance from AL1, Condition from DG1, Coverage from IN1) and the merge handler
(A34/A40/A47: Patient.link replaces / replaced-by)."""

from __future__ import annotations

from typing import Any

from adapters.convert import common, persons
from adapters.convert.context import Context, MemberNumber
from adapters.convert.datatypes import cwe
from adapters.convert.engine import apply_table
from adapters.hl7v2.errors import REQUIRED_FIELD_MISSING, TABLE_VALUE_NOT_FOUND, HL7Error
from adapters.hl7v2.parser import Segment
from engine.repository.ids import deterministic_id

# segments that carry nothing to map (envelope, or only repeat data mapped elsewhere)
_CONSUMED = frozenset({"MSH", "EVN", "PID", "PD1", "PV1", "PV2", "NK1", "AL1", "DG1", "IN1", "MRG", "OBX"})


def convert_merge(ctx: Context) -> None:
    """A34/A40: each PID + MRG pair → the surviving Patient ``replaces`` the old one; the old
    record is written inactive with ``replaced-by`` (its earlier versions stay in its history)."""
    msg = ctx.message
    common.organization(ctx)
    current: tuple[str, dict[str, str]] | None = None
    pairs = 0
    for seg in msg.segments:
        if seg.name == "PID":
            current = common.patient(seg, ctx)
        elif seg.name == "MRG":
            if current is None:
                raise seg.error("MRG without a preceding PID", code="100")
            merge(seg, ctx, current)
            pairs += 1
    if not pairs:
        raise HL7Error(
            "merge message has no MRG segment", segment="MRG", sequence=1, code=REQUIRED_FIELD_MISSING
        )
    _report_unmapped(ctx, _CONSUMED)


def prior_patient(mrg: Segment, ctx: Context) -> tuple[str, str]:
    """MRG-1 (prior patient identifier list) -> (the prior record's key, its MRN or ""), keyed as
    a PID keys the record (``common.list_key``: its MRN, else its ID number, else its first id).
    One reading for a merge (A34/A40) and a visit move (A45: the record the visit was filed under)."""
    key, mrn = common.list_key(mrg, 1, ctx)
    if not key:
        raise mrg.error(
            "MRG-1 (prior patient identifier list) is required", 1, 1, code=REQUIRED_FIELD_MISSING
        )
    return key, mrn


def moved_visit(mrg: Segment, ctx: Context, encounter: dict[str, str]) -> None:
    """A45 (move visit information): the message moves the visit (``encounter``) from the record
    MRG-1 names to PID's. A move the sender states, not a visit number reused for another patient:
    ``merge.yaml`` Encounter.subject (``another_person``) lets it pass when the visit is stored
    under that record (or its person's) -- and only then."""
    key, _ = prior_patient(mrg, ctx)
    prior = ctx.ref("Patient", key)["reference"]
    ctx.moved(ctx.resources[encounter["reference"]], "subject", prior)
    _moved_from_member(mrg, ctx, prior, key)


def _moved_from_member(mrg: Segment, ctx: Context, prior: str, key: str) -> None:
    """An A45 whose MRG-1 names the record the visit moves from by another member institution's record number
    alone (``common.list_key``: no own MRN nor ID number there, the record keyed ``auth|<member>|<number>``),
    held as a PID keyed by one is (member33) and an A40's MRG-1 is (identity34): that record, as stored or as the
    batch leaves it, against the member's own record of the number (``persons.check_persons``,
    ``MemberNumber.moved``). Another person -- the sender's record is stale, the member registered the number as
    someone else since -- the move is filed with ERR W 205 at MRG-1 (``persons._moved_off_stale``; rvident35 MED,
    the lead): a move files nothing under that record and is the sender's one correction over HL7 that takes its
    patient's visit off the record answering the member's number (ident35 had refused it, AE). The record held is
    MRG-1's, not the PID's person as a merge holds it: a move says the visit was NOT that record's person's -- the
    PID's person differing from the member's record is what a move corrects. A move onto a record the member's
    number keys is the PID's hold (member33). MRG-1 naming the record by the sender's own number, the member's
    beside: nothing is keyed by it, nothing put on a record."""
    if not key.startswith("auth|"):
        return
    authority, _, value = key.removeprefix("auth|").partition("|")
    member = f"Patient/{deterministic_id(authority, 'Patient', value)}"
    for listed, code, _ in common.listed_member_numbers(mrg, 1, ctx):
        named = MemberNumber(prior, member, "MRG", mrg.sequence, as_stored=True, institution=code, moved=True)
        if listed == member and named not in ctx.members:
            ctx.members.append(named)


# the events that change a record's identifier rather than merge two records (v2.5.1 3.3.46/3.3.47: "change patient
# ID", "change patient identifier list"): the record named by MRG-1 and the PID's are one record renumbered, so the
# numbers it held that the registration does not take away go with it (``persons._carried``, idfix39). Not a merge of
# two records (A40/A34...): the patient index keeps the merged-away record's numbers along its chain, and an unlink
# (A37) must leave the survivor as it was -- a number carried onto it would stay after the unlink
RENUMBERING = frozenset({"A46", "A47"})


def merge(mrg: Segment, ctx: Context, survivor: tuple[str, dict[str, str]]) -> None:
    skey, sref = survivor
    old_key, old_mrn = prior_patient(mrg, ctx)
    inst = ctx.institution
    if old_key == skey:
        raise mrg.error("MRG-1 names the surviving patient itself", 1, 1)
    old: dict[str, Any] = {
        "resourceType": "Patient",
        "active": False,
        "link": [{"other": {"reference": sref["reference"]}, "type": "replaced-by"}],
        "managingOrganization": common.organization(ctx),
    }
    if old_mrn:
        old["identifier"] = [
            {
                "use": "old",
                "type": {"coding": [{"system": common.V2_0203, "code": "MR"}]},
                "system": inst.mrn_system,
                "value": old_mrn,
            }
        ]
    old_ref = ctx.put(old, old_key)
    if ctx.message.msh.trigger_event in RENUMBERING:
        # the identifier moves (3.3.47): the numbers remembered on the record go to the new one (``persons._carried``)
        # and leave the renumbered one -- left on both, two records answered the LIS's number (id40)
        ctx.delete(ctx.resources[old_ref["reference"]], "identifier", persons.FILED_AS_OWN_ENTRIES, RENUMBERED)
    if (apart := common.kept_apart(ctx, old_key, mrg.sequence)) is not None:
        ctx.merged_apart[old_ref["reference"]] = apart  # another authority's number: which record, the store's to tell
    _held_to_members(mrg, ctx, sref["reference"], old_ref["reference"])
    # (two people? ``persons``, nbfix39; a renumbering carries the record's numbers over: ``persons._carried``)
    ctx.merges.append((sref["reference"], old_ref["reference"], mrg.sequence,
                       ctx.message.msh.trigger_event in RENUMBERING))
    # MRG-1 states the merge: a merge the patient index refuses (two records of two ID numbers,
    # ``IdentityService.merge_refusal``) is located there in the ACK's ERR
    ctx.located(ctx.resources[old_ref["reference"]], "link", mrg, 1)
    survivor_res = ctx.resources[sref["reference"]]
    survivor_res.setdefault("link", []).append(
        {"other": {"reference": old_ref["reference"]}, "type": "replaces"}
    )
    # a merge the other way round (the registrar merged the wrong way and merges back) undoes the
    # earlier one: a record does not both replace and get replaced by the same record
    ctx.delete(survivor_res, "link", _link_to(old_ref["reference"], "replaced-by"), MERGED_BACK)
    ctx.delete(ctx.resources[old_ref["reference"]], "link", _link_to(sref["reference"], "replaces"), MERGED_BACK)


def _held_to_members(mrg: Segment, ctx: Context, survivor: str, prior: str) -> None:
    """A merge naming another member institution's record number (``common.member_records``), held as
    a PID naming one is (``persons.check_persons``; identity34): MRG-1 naming the member's number moves
    the record of it into the PID's -- the PID's person is held against the member's own record of the
    number; the PID naming the member's number takes MRG-1's record into it -- that record, as stored,
    is. Either for another person: refused at MRG-1 (a merge states two records are one person: into
    a member's number, that person is the member's patient). MRG-1's hold also carries the record merged away
    (``prior``): the sender's own stale record of the number merged into its person is the sender's correction,
    filed with a warning (``persons._stale_merged``, idfix35)."""
    for member, code, number in common.listed_member_numbers(mrg, 1, ctx):
        named = MemberNumber(survivor, member, "MRG", mrg.sequence, institution=code, number=number,
                             kept=f"{common.apart_system(ctx.code, code)}|{number.partition('|')[2]}", prior=prior)
        if named not in ctx.members:
            ctx.members.append(named)
    for held in [m for m in ctx.members if m.record == survivor and m.segment == "PID"]:
        if (named := MemberNumber(prior, held.member, "MRG", mrg.sequence, as_stored=True,
                                  institution=held.institution)) not in ctx.members:
            ctx.members.append(named)


MERGED_BACK = "merge (PID beside MRG-1): the earlier merge the other way round is undone"
UNLINKED = "unlink (A37): the two records are distinct and both in use"
RENUMBERED = "renumbering (A46/A47): the numbers remembered on the record moved with it to the new identifier"
UNCARRIED = "unlink (A37): the number a merge carried from the other record goes back to it"


def _link_to(reference: str, *types: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The ``Patient.link`` entries of these types pointing at ``reference`` (a delete's ``where``)."""
    return (("type", types), ("other.reference", (reference,)))


def unlink(ctx: Context, patients: list[str]) -> None:
    """ADT^A37 (unlink patient information, v2.5.1 3.3.37): the records the message names are not
    one record merged into another. Each loses the ``replaces``/``replaced-by`` links to the others
    (both ways), and keeps every other link (a merge with a third record, the patient index's
    ``seealso`` by ID number, a client's). The event states both are in use (``states_active``), so
    the links that said one of them must no longer be used go with them: R4 reads a record with
    ``replaced-by`` as one not to use, whatever its ``active``. The unlink undoes what a merge carried too: each
    loses the identifiers a merge carried onto it from another (``persons.carried_from``: her ID number merged onto
    the survivor), which go back to that record (``Context.unlinked``, ``persons._given_back``) -- left, the number
    kept the survivor in the other person's chain (id40). An A37 undoes a merge it names: one of two records merges
    join only through others, or of a merge whose carried number a later merge carried on to a record it does not
    name, is refused before anything is filed (``persons._undoes_no_merge``; idfix40b); so is one of a renumbering
    (A46/A47: one record under a new number, undone by another A47, not by an A37; idfix41)."""
    for ref in patients:
        others = [o for o in patients if o != ref]
        for other in others:
            ctx.delete(ctx.resources[ref], "link", _link_to(other, "replaces", "replaced-by"), UNLINKED)
            ctx.delete(ctx.resources[ref], "identifier", persons.carried_from(other), UNCARRIED)
            ctx.unlinked.append((ref, other))


def related_person(nk1: Segment, ctx: Context, pref: dict[str, str], pkey: str) -> dict[str, str] | None:
    res: dict[str, Any] = {
        "resourceType": "RelatedPerson",
        "active": True,
        "patient": {"reference": pref["reference"]},
    }
    apply_table("nk1_relatedperson", {"NK1": nk1}, ctx, res)
    if len(res) <= 3:
        return None
    name = nk1.value(2, comp=1) + nk1.value(2, comp=2)
    return ctx.put(res, f"{pkey}|nk1|{nk1.value(1) or nk1.sequence}|{name}")


def allergy(al1: Segment, ctx: Context, pref: dict[str, str], pkey: str) -> dict[str, str]:
    res: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "code": "active",
                }
            ]
        },
        "patient": {"reference": pref["reference"]},
    }
    apply_table("al1_allergyintolerance", {"AL1": al1}, ctx, res)
    code = res["code"]
    key = (code.get("coding") or [{}])[0].get("code") or code.get("text", "")
    return ctx.put(res, f"{pkey}|al1|{key}")


def condition(
    dg1: Segment, ctx: Context, pref: dict[str, str], pkey: str, enc_ref: dict[str, str] | None
) -> dict[str, str]:
    res: dict[str, Any] = {"resourceType": "Condition", "subject": {"reference": pref["reference"]}}
    apply_table("dg1_condition", {"DG1": dg1}, ctx, res)
    if enc_ref:
        res["encounter"] = enc_ref
    res.setdefault(
        "category",
        [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "encounter-diagnosis",
                    }
                ]
            }
        ],
    )
    ident = dg1.value(20)
    code = res["code"]
    key = ident or (code.get("coding") or [{}])[0].get("code") or code.get("text", "")
    if enc_ref:
        # an encounter diagnosis is the stay's: keyed by the patient and code alone, the same code sent
        # for a readmission was the first stay's Condition moved to the second, the first left without
        # its diagnosis (a split admission for the same disease went unseen: rvmoney24b). DG1-20 too:
        # it "uniquely identifies a single diagnosis for an encounter ... unique across all segments
        # and messages for an encounter" (v2.5.1 6.5.2.20) -- a HIS numbering diagnoses per stay sends
        # D-1 again for the next stay, which moved the first stay's Condition there (review of dg24).
        # With no visit it keys the Condition alone, as before.
        # A Condition stored under the old key for this very stay is still this one (ctx.formerly).
        ref = ctx.put(res, f"{pkey}|dg1|{enc_ref['reference']}|{key}")
        # DG1-20's one rule (dgfix25): one Condition per (sender's id, stay). The visit-less one of that id
        # (an A28/A31 before the stay) is taken by the first stay naming it ("?": no encounter stored
        # passes too) -- the code alone (no DG1-20) is not: a visit-less diagnosis of that code is not
        # a stay's by its code
        ctx.formerly(ref, f"{pkey}|dg1|{key}", "encounter.reference" + ("?" if ident else ""), enc_ref["reference"])
        return ref
    ref = ctx.put(res, f"{pkey}|dg1|{key}")
    if ident:
        # with no visit, DG1-20 names the patient's Condition of that id whichever stay keyed it: the
        # one there is, refused when several stays have one (which is meant is not said)
        ctx.identified[ref["reference"]] = (ident, pref["reference"], ("DG1", dg1.sequence, 20))
    return ref


# DG1-21 (diagnosis action code, HL7 table 0206): A add, U update, D delete, X no change (dgfix25)
DIAGNOSIS_ACTIONS = frozenset({"A", "U", "D", "X"})


def diagnosis_action(dg1: Segment) -> str:
    """DG1-21 of ``dg1``: "" (not sent: the diagnosis as stated, as before), A, U, D or X. Another code is
    no action HL7 defines: refused (AE, ERR at DG1-21) -- read as an add it would list a diagnosis the
    sender may have meant to delete (a BAR^P12 deleting Z51.1 listed it as the stay's principal)."""
    code = dg1.value(21).strip()
    if code and code.upper() not in DIAGNOSIS_ACTIONS:
        raise dg1.error(f"DG1-21 (diagnosis action code, table 0206: A, U, D, X): {code!r} is not a code of it; "
                        "the diagnosis was not stored", 21, code=TABLE_VALUE_NOT_FOUND)
    return code.upper()


# the status a DG1-21 D writes carries its origin (table 0206's D, as an extension of the status itself):
# a DG1 stating the diagnosis again undoes only the sender's own withdrawal (``withdrawn_by_sender``) --
# a coder's entered-in-error over FHIR is her own status, without it, and a later feed repeating the
# diagnosis must not undo it (review rvlast25a). Kept with the status: a client writing the Condition
# back with the status as it is keeps it; one writing her own status replaces it (dgmend26).
DIAGNOSIS_ACTION = "urn:huren:StructureDefinition:hl7v2-diagnosis-action"
ENTERED_IN_ERROR = {"extension": [{"url": DIAGNOSIS_ACTION, "valueCode": "D"}],
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                "code": "entered-in-error"}]}


# a status a FHIR client wrote entered-in-error (changed, or set) carries the writer's mark, stamped by the
# engine where the writer is known (``stated_by_client``, a repository statement): the client's own, whatever
# else its body carries -- the feed's tag riding along on an in-place edit, or one copied or forged (dgfix26)
BY_CLIENT = "urn:huren:StructureDefinition:verification-status-writer"
_CLIENT_MARK = {"url": BY_CLIENT, "valueCode": "fhir"}


def withdrawn_by_sender(condition: dict[str, Any] | None) -> bool:
    """Whether ``condition`` (stored, or as a batch's earlier message leaves it) is entered-in-error by a
    feed's DG1-21 D -- the one place that tells a sender's withdrawal, which a DG1 stating the diagnosis
    again undoes, from anyone else's entered-in-error, which it does not (dgmend26). Judged by the writer
    recorded on the status (dgfix26): a FHIR client's (``BY_CLIENT``, stamped at the write) is never the
    feed's; else the feed's D tag (``DIAGNOSIS_ACTION``) says the feed's. Neither: a status written before
    the twenty-sixth round, whose writer no version records (the store keeps none) -- the base's answer:
    the feed's when a feed's converter made the Condition (``ids.huren_form``), so a diagnosis the HIS
    withdrew before the tag existed is revived by its re-add (a coder's entered-in-error of that time on
    such a Condition is revived too, as on the base)."""
    status = (condition or {}).get("verificationStatus") or {}
    if (status.get("coding") or [{}])[0].get("code") != "entered-in-error":
        return False
    marks = [e for e in status.get("extension") or () if isinstance(e, dict)]
    if any(e.get("url") == BY_CLIENT for e in marks):
        return False
    if any(e.get("url") == DIAGNOSIS_ACTION and e.get("valueCode") == "D" for e in marks):
        return True
    from engine.repository.ids import huren_form

    rid = (condition or {}).get("id")
    return isinstance(rid, str) and huren_form(rid)


def stated_by_client(resource: dict[str, Any], previous: dict[str, Any] | None, writer: str) -> dict[str, Any]:
    """A repository statement for Condition (the writer is known here, not read from the body): a FHIR
    client's write whose ``verificationStatus`` is not the stored one as it is and is entered-in-error is
    the client's withdrawal -- marked ``BY_CLIENT`` (an in-place edit of the code keeps the feed's tag in
    the body; the mark outweighs it). The feed's tag a client adds where the stored status had none is
    not hers to write: dropped (a copied or forged tag is not taken as the feed's). A client writing the
    status back as stored changes nothing of its origin (dgfix26)."""
    from engine.merge_rules import API

    if writer != API:
        return resource
    status = resource.get("verificationStatus")
    if not isinstance(status, dict):
        return resource
    before = (previous or {}).get("verificationStatus")
    if status == before:
        return resource
    extensions = [e for e in status.get("extension") or () if not (isinstance(e, dict) and e.get("url") == BY_CLIENT)]
    had_tag = isinstance(before, dict) and any(
        isinstance(e, dict) and e.get("url") == DIAGNOSIS_ACTION for e in before.get("extension") or ())
    if not had_tag:
        extensions = [e for e in extensions if not (isinstance(e, dict) and e.get("url") == DIAGNOSIS_ACTION)]
    if (status.get("coding") or [{}])[0].get("code") == "entered-in-error":
        extensions.append(dict(_CLIENT_MARK))
    if extensions == (status.get("extension") or []):
        return resource
    status = {k: v for k, v in status.items() if k != "extension"}
    if extensions:
        status = {"extension": extensions, **status}
    return {**resource, "verificationStatus": status}


def withdrawn_diagnosis(ctx: Context, enc_ref: dict[str, str] | None, cond_ref: dict[str, str]) -> None:
    """DG1-21 D (v2.5.1 6.5.2.21, a BAR^P12's "update diagnosis/procedure"): the sender deletes this
    diagnosis from the stay. Its entry leaves the visit's Encounter.diagnosis (the stored entry of this
    Condition, ``merge_rules._delete``), and the Condition is marked ``verificationStatus``
    entered-in-error: the record of it is withdrawn, not a clinical finding that it was ruled out
    (``refuted`` would be the clinician's, not the billing coder's). It is not deleted: its history
    and what referred to it stay readable."""
    condition = ctx.resources.get(cond_ref["reference"])
    if condition is not None:
        condition["verificationStatus"] = ENTERED_IN_ERROR
        condition.pop("clinicalStatus", None)  # con-5: none on a condition entered in error
    encounter = ctx.resources.get(enc_ref["reference"]) if enc_ref else None
    if encounter is None:
        return
    listed = encounter.get("diagnosis") or []
    listed[:] = [d for d in listed if d.get("condition", {}).get("reference") != cond_ref["reference"]]
    if not listed:
        encounter.pop("diagnosis", None)
    ctx.only(encounter, "diagnosis")
    ctx.delete(encounter, "diagnosis", (("condition.reference", (cond_ref["reference"],)),),
               "DG1-21 D (diagnosis action code: delete): the diagnosis is deleted from the visit")


def visit_diagnosis(
    dg1: Segment, ctx: Context, pref: dict[str, str], pkey: str, enc_ref: dict[str, str] | None,
    table_name: str | None,
) -> tuple[dict[str, str] | None, str]:
    """A DG1 read for a visit, the same way in every message type (ADT, BAR, DFT, ORM/OML: dgfix25b):
    DG1-21 read (``diagnosis_action``) -> (the Condition's reference or None, the action). X: nothing
    written. D: the stored diagnosis it names is withdrawn (``withdrawn_diagnosis``) -- never a new
    Condition: which stored one it is, or none (a warning, nothing written), is settled against the
    store (``settle_withdrawn``). A/U/empty: the Condition, and with ``table_name`` and a visit its
    entry of the visit (``encounter_diagnosis``). The same Condition said deleted and stated in one
    message: the last statement stands (entry and Condition alike)."""
    action = diagnosis_action(dg1)
    if action == "X":  # no change: the diagnosis is sent for context, nothing of it is written
        return None, action
    ref = condition(dg1, ctx, pref, pkey, enc_ref)
    said = "D" if action == "D" else "A"
    before = ctx.diagnosis_said.get(ref["reference"])
    ctx.diagnosis_said[ref["reference"]] = said
    if before == "A" and said == "D":
        ctx.restated.pop(ref["reference"], None)
    if before == "D" and said == "A":
        # D then A/U of one diagnosis in one message (a re-rank sent as delete and add): the last
        # statement stands, on the Condition as on the entry -- it is stated, not withdrawn (the
        # entry's delete stays: the stored entry goes, the new one is listed as the A says)
        ctx.withdrawn.pop(ref["reference"], None)
        cond = ctx.resources[ref["reference"]]
        if cond.get("verificationStatus") == ENTERED_IN_ERROR:
            cond.pop("verificationStatus")
    if action == "D":
        res = ctx.resources[ref["reference"]]
        code = (res.get("code", {}).get("coding") or [{}])[0].get("code") or res.get("code", {}).get("text", "")
        ctx.withdrawn[ref["reference"]] = (
            pref["reference"], enc_ref["reference"] if enc_ref else "", code, dg1.value(20).strip(),
            common.error_for(dg1, "DG1-21 D (diagnosis action code: delete): no stored diagnosis of this "
                             + ("visit" if enc_ref else "patient") + " is the one named; nothing was deleted", 21))
        withdrawn_diagnosis(ctx, enc_ref if table_name else None, ref)
    else:
        if table_name and ref["reference"] not in ctx.restated:
            # only a message stating the visit's diagnoses (ADT, BAR, DFT, orders) states one again: a
            # result message echoing its order's DG1 revived a diagnosis a P12 withdrew (last review);
            # after its own D (D then A), the withdrawal it undoes is its own whoever set the stored one
            ctx.restated[ref["reference"]] = before == "D"
        if table_name and enc_ref is not None:
            encounter_diagnosis(dg1, ctx, table_name, enc_ref, ref)
    return ref, action


def encounter_diagnosis(
    dg1: Segment, ctx: Context, table_name: str, enc_ref: dict[str, str], cond_ref: dict[str, str]
) -> None:
    """DG1 → an entry of the visit's Encounter.diagnosis (IG "Segment DG1 to Encounter"): the DG1's
    Condition, DG1-6 as its use and DG1-15 (priority) as its rank when a positive integer (rule
    table ``table_name``). One entry a Condition: a DG1 said twice in a message is listed once."""
    entry: dict[str, Any] = {}
    told = len(ctx.deletes)
    apply_table(table_name, {"DG1": dg1}, ctx, entry)
    # the table's explicit nulls (DG1-15 ``""``, ``null_deletes``) were said of the entry: they are the
    # Encounter's, a part of the one entry of this Condition (``diagnosis.rank`` where the condition
    # is this one) -- the stored part goes, the other diagnoses' stay (merge_rules ``_delete``)
    nulls = [d.element for r, d in ctx.deletes[told:] if r is entry]
    ctx.deletes[told:] = [said for said in ctx.deletes[told:] if said[0] is not entry]
    rank = str(entry.pop("rank", "") or "").strip()
    if rank:
        if rank.isascii() and rank.isdigit() and 0 < int(rank) <= 2**31 - 1:
            entry["rank"] = int(rank)
        elif rank.lstrip("0"):  # "0" is table 0359's "not included in the ranking": no rank, no warning
            ctx.warn(common.error_for(dg1, f"DG1-15: {rank!r} is not a positive integer priority; no rank stored", 15))
    encounter = ctx.resources.get(enc_ref["reference"])
    if encounter is None:
        return
    listed = encounter.setdefault("diagnosis", [])
    if any(d.get("condition", {}).get("reference") == cond_ref["reference"] for d in listed):
        return
    listed.append({"condition": {"reference": cond_ref["reference"]}, **entry})
    # a billing message's visit (BAR, DFT: written only when absent) takes its diagnoses all the same
    ctx.only(encounter, "diagnosis")
    for part in nulls:
        ctx.delete(encounter, f"diagnosis.{part}", (("condition.reference", (cond_ref["reference"],)),))


def coverage(in1: Segment, ctx: Context, pref: dict[str, str], pkey: str) -> dict[str, str]:
    res: dict[str, Any] = {
        "resourceType": "Coverage",
        "status": "active",
        "beneficiary": {"reference": pref["reference"]},
    }
    apply_table("in1_coverage", {"IN1": in1}, ctx, res)
    plan = in1.rep(2)
    if plan.comp(1):
        res["class"] = [
            {
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/coverage-class", "code": "plan"}
                    ]
                },
                "value": plan.comp(1),
                **({"name": plan.comp(2)} if plan.comp(2) else {}),
            }
        ]
    payor_name = in1.value(4, comp=1)
    payor_id = in1.value(3, comp=1)
    if payor_name or payor_id:
        payor: dict[str, Any] = {"resourceType": "Organization", "active": True}
        if payor_name:
            payor["name"] = payor_name
        if payor_id:
            payor["identifier"] = [{"system": f"urn:huren:payor:{ctx.urn_code}", "value": payor_id}]
        res["payor"] = [ctx.put(payor, f"payor|{payor_id or payor_name}")]
    else:
        res["payor"] = [{"reference": pref["reference"]}]  # self-pay when no insurer is named
    company_type = cwe(in1.rep(15), {}, ctx)
    if company_type and "type" not in res:
        res["type"] = company_type
    policy = in1.value(36) or in1.value(49) or f"{in1.value(2)}|{in1.value(1)}"
    return ctx.put(res, f"{pkey}|in1|{policy}")


def _report_unmapped(ctx: Context, consumed: frozenset[str]) -> None:
    seen: set[str] = set()
    for seg in ctx.message.segments:
        if seg.name not in consumed and seg.name not in seen:
            seen.add(seg.name)
            ctx.note_unmapped("segment", seg.name)
