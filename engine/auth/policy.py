"""Who may use the endpoints that are not plain FHIR interactions: one place, so every router decides alike.

FHIR reads and writes are decided by ``engine.repository.scoped.ScopedRepository``; these are the
rules for the operations around them, all expressed in the caller's scopes:

- **Order checks** (``$check-recognition``): ``ServiceRequest`` read; a resident may check only for
  a patient in their own compartment (the route asks the scoped repository).
- **Order decisions** (CDS Hooks ``order-select``/``order-sign`` and their feedback): these record a
  doctor's choice that moves an institution's recognition rate, so they need a clinician's
  (``user/``) or a system's write scope on ``ServiceRequest`` (``c`` or ``u``); a patient-context
  token never qualifies, whatever it was granted.
- **Duplicate-test reports and reviews**: cross-patient, never for a patient-context token;
  ``DetectedIssue`` search to read, update to review.
- **Insurance reports** (budget settlement, deduction lists, split admissions): cross-patient
  figures for the bureau, so the duplicate-report rule, plus search on what each report reads
  (``ChargeItem`` for the settlement, ``Encounter`` for split admissions).
- **Remit** (监管范围): a staff member bound to an institution, a medical community or a pooling
  region, or a hospital's system client bound to its institution, sees the flags, deduction lists,
  settlements, indicators and refused messages of those institutions only;
  ``audit_remit`` answers which (the insurer's rule ``engine.insurance.remit`` resolves the code),
  and every report route narrows its figures with it or refuses a named institution outside it.
- **Rules reload**: a system client with update rights on every type (``system/*.u``), bound to no
  hospital (the rules are the community's).
- **Ingest administration** (``/admin``): a system client with ``MessageHeader`` read, or create to
  replay (a replay imports data exactly as a new message would); or a signed-in member of the
  operator role itself (the quarantine page, ``/ui/quarantine``), kept to their remit as on the reports.
- **Refusal counts' clients** (``/admin/fidelity`` ``member_refused_by``, ``refusal_count_shown``): an operator
  bound to a remit sees the counts on their institutions' numbers by sending institution only; which client
  posted (a system client's id, a TLS certificate's CN, a connection's address, a replaying operator) is the
  sending institution's infrastructure, for the site's own operators.
- **Audit events of other institutions' message traffic** (``/fhir/AuditEvent``, ``audit_event_shown``): a caller
  bound to an institution or a remit reads no record of a message received, replayed or refused for a member's
  number that names a system client, a staff member or another signed-in person other than itself: which client of
  which hospital sent, corrected or was refused what, and when, is that hospital's infrastructure, as on
  ``/admin/fidelity`` (rv37b MED 1). Such an event naming institutions only, and the access events, read as before.
- **Identity operations** (``$link``/``$unlink``): Patient update, never a patient-context token.
- **Audit administration** (signing checkpoints, full verification): an auditor, or a system client
  allowed to read AuditEvents.
- **Family access** (``$family-grant``/``$family-withdraw``): the resident themselves, for their own
  record (never a family member acting for them: a proxy cannot widen or pass on what it was
  given), or a member institution's desk (a system client with Consent create and update, which
  attests both ID cards were checked).
- **Acting for a family member**: a proxy token holds only while the ``Consent`` it was issued under
  does (``proxy_grant_holds``): active, privacy scope, permitting that ``RelatedPerson`` now, for the
  record the token opens, and the RelatedPerson still names the signed-in person. The scoped
  repository asks on every request, so withdrawal and expiry end access at once.
- **A grant is about one person** (``grant_binds``): the person the grant was given for (its
  subject's ID-number person, recorded in the Consent) must be the person of every record the
  token opens; once a hospital's desk or a later message puts the granted record in another
  person, the grant opens nothing (eighteenth round: a grant for 孙小宝's record read 赵桂兰's
  results after the desk linked that record into her person).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from engine.audit.events import AGENT_SYSTEMS, STAFF_SYSTEM, USER_SYSTEM
from engine.audit.view import IMPORTS
from engine.auth.caller import Caller
from engine.errors import Forbidden, NotFound
from engine.insurance.remit import figures_within, institutions_in_remit

CONSENT_SCOPE = ("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy")
FAMILY_SYSTEM = "urn:huren:family"
# the person a family grant binds, as a key for grants alone (``engine.auth.family.grant_key``): not
# the person id, which is the ``sub`` of that resident's own tokens
GRANT_SYSTEM = "urn:huren:family-grant"


def allowed(rule: Callable[..., None], caller: Caller, *args: Any, **kwargs: Any) -> bool:
    """Whether ``rule`` (one of the ``require_*`` below) lets the caller through: for pages that
    offer only what the caller may do (the API still decides on every request)."""
    try:
        rule(caller, *args, **kwargs)
    except (Forbidden, NotFound):
        return False
    return True

def require_order_check(caller: Caller) -> None:
    caller.require("ServiceRequest", "read")


def require_order_decision(caller: Caller) -> None:
    if caller.restricted or caller.kind == "patient":
        raise Forbidden("ordering decisions are for clinicians and systems, not patient-context tokens")
    if not (caller.allows("ServiceRequest", "create") or caller.allows("ServiceRequest", "update")):
        raise Forbidden("recording an ordering decision needs a ServiceRequest write scope "
                        "(user/ServiceRequest.cu or system/ServiceRequest.cu)")


def require_auditor(caller: Caller, *, review: bool = False) -> None:
    if caller.restricted:
        raise Forbidden("duplicate-test reports are for auditors, not patient-scoped tokens")
    caller.require("DetectedIssue", "update" if review else "search")


def require_insurance_report(caller: Caller, *reads: str) -> None:
    require_auditor(caller)
    for rtype in reads:
        caller.require(rtype, "search")


def require_rules_admin(caller: Caller) -> None:
    """``POST /admin/reload``: the site's rules are the community's, so only the site's own system
    client (``system/*.u``, bound to no hospital) reloads them; a hospital's bound system is refused
    whatever it was granted (the review of privprobe27)."""
    if caller.restricted or caller.kind != "system" or not caller.allows("*", "update"):
        raise Forbidden("reloading rules needs a system client with system/*.u")
    if bound_system(caller):
        raise Forbidden("the site's rules are the community's: a system client bound to one hospital does not "
                        "reload them (机构绑定的客户端不能重新加载全站规则)")


# the staff role whose members run the ingest (运维, ``mappings/staff/roles.yaml``; the name is a
# configuration name and stays stable) and what ``require_operator``'s named actions need of a system client
OPERATOR_ROLE = "operator"
# ``decide`` (an operator's decision on a held change: ``require_owner_decider``) needs both: a feed posts with
# ``MessageHeader`` create alone, and the decision is a person's -- an ops client reads what it decides on
OPERATOR_ACTIONS = {"read": "r", "replay": "c", "decide": "rc"}


def require_operator(caller: Caller, action: str) -> None:
    """``/admin`` (the quarantine, its replay, fidelity, health, metrics) and the page ``/ui/quarantine``.

    ``action``: ``read``, ``replay`` or ``decide``. A system client needs ``MessageHeader`` read, or create to
    replay (the scope that posts messages: a replay imports data as a new message would), both to decide (see
    ``require_owner_decider``). A named staff member signed in to the pages (``caller.role``: only a staff
    session carries one) is let through by the operator role itself (``OPERATOR_ROLE``), for each action: no
    FHIR scope decides it, so the role needs no write scope on ``MessageHeader`` that ``/fhir`` would honour
    too (review of opspage26: ``user/MessageHeader.crs`` let the page session create MessageHeader records).
    Residents, bearer tokens of persons, auditors and clinicians are refused. Which messages a
    remit-bound operator sees is ``audit_remit``'s, as on the reports."""
    letters = OPERATOR_ACTIONS.get(action)
    if letters is None:
        raise ValueError(f"unknown operator action {action!r} (one of {', '.join(OPERATOR_ACTIONS)})")
    if caller.restricted:
        raise Forbidden("the admin API is for system clients and signed-in operators")
    if caller.role is not None:
        if caller.role != OPERATOR_ROLE:
            raise Forbidden("the refused messages are for signed-in operators (运维人员)")
        return
    if caller.kind != "system":
        raise Forbidden("the admin API is for system clients and signed-in operators")
    for letter in letters:
        caller.require("MessageHeader", letter)


def require_owner_decider(caller: Caller, peer: str) -> None:
    """``POST /admin/quarantine/{id}/owner`` (and the page's button): the decision that a held change (W 204) is the
    order number's owner's is a person's, kept with their reason -- the Provenance names them its ``verifier``. A
    signed-in operator (the role), or a system client that reads the held list as well as replays
    (``MessageHeader`` read and create: ``require_operator(..., "decide")``); never a feed's post-only credential
    (``system/MessageHeader.c``, the scope an interface engine holds to ``POST /hl7v2``), and never the client
    that sent the message (``peer``: its transport's record, ``engine.member_refusals.client_of``) -- the party
    the hold protects the order against would otherwise clear it with no person involved: an automated retry, a
    misconfigured interface engine (rv40f MED 2, ordfix40)."""
    from engine.member_refusals import client_of

    require_operator(caller, "decide")
    if caller.role is None and client_of(peer or "") == f"http:{caller.subject}":
        raise Forbidden("the client that sent a held message does not decide that its change is the owner's: an "
                        "operator does (发送该消息的客户端不能自行认定为号码所有者的更改)")


def require_identity_operator(caller: Caller) -> None:
    """``$link``/``$unlink``/``$login-phone``: Patient update, and never a patient-context token (404: for such a
    caller the operation does not exist)."""
    caller.require("Patient", "u")
    if caller.restricted:
        raise NotFound("no such operation for this caller")


def require_audit_admin(caller: Caller) -> None:
    if caller.kind == "auditor" or (caller.kind == "system" and caller.allows("AuditEvent", "read")):
        return
    raise Forbidden("only auditors and systems allowed to read AuditEvents may do this")


def require_record_of_theirs(caller: Caller, patients: Collection[str]) -> None:
    """A proof of one audit record (``/audit/proof/inclusion``) for a resident: only of a record that
    names one of the patients they are or act for; any other is "not found", as a resource outside
    their compartment is. A leaf hash names nobody, but a record's bytes are predictable enough
    (its number, the millisecond, who, which patient) that its hash confirms a guess such as "this
    doctor read that neighbour's file at 10:02", so a resident may not collect other people's."""
    if caller.restricted and not any(caller.sees_patient(pid) for pid in patients):
        raise NotFound("no audit record of yours with this number")


def audit_remit(caller: Caller, site: Any, site_dir: Path | str | None) -> frozenset[str] | None:
    """The institutions whose flags, figures and messages the caller may see; None: every
    institution (an unbound system client -- the site's own -- or staff not bound to a remit).

    A staff member's remit is their account's (``Caller.remit``, resolved by the insurer's rule); a
    hospital's system bound to its institution (``huren client add --institution``, ``Caller.institution``
    on a system token, no role) is kept to that institution alone, as a staff member bound to it
    is: it is one hospital's system, and other hospitals' refused messages, unmapped codes, counts,
    flags and figures are not its hospital's (the review of privprobe27: a bound client with
    ``system/*.cruds`` listed, read and replayed another hospital's refused messages on /admin).
    On /fhir such a client is unchanged: the shared repository is what mutual recognition reads."""
    if caller.remit is not None:
        return institutions_in_remit(caller.remit, site, site_dir)
    if bound_system(caller):
        return frozenset({str(caller.institution)})
    return None


def refusal_count_shown(remit: frozenset[str] | None, row: Mapping[str, Any]) -> bool:
    """Whether one count of refusals on a member's numbers (``engine.member_refusals``: a row ``member``, ``by``,
    ``key``) is shown on ``/admin/fidelity`` to a caller of ``remit`` (``audit_remit``; None: the site's own
    operators, who see every count).

    A caller bound to a remit sees the counts on their own institutions' numbers, and of those the counts by
    sending institution only -- the institution whose messages were refused is theirs to call (priv36), and its
    per-application rows are shown to them already. A count by authenticated client names another institution's
    infrastructure: its system client's id, its TLS certificate's CN, the address it connects from, the operator
    who replayed a corrected copy -- and how often each was refused. That is not the member's to see (rv36g: a
    member's operator was shown the other hospitals' client ids, CNs and addresses); the site's operators, who
    issue the clients and run the listeners, see them, and the member is told only that a client's count is past
    the alert threshold (``engine.api.admin._refusals``)."""
    if remit is None:
        return True
    return row.get("member") in remit and row.get("by") == "institution"


# the identifier systems an AuditEvent's agent names a client or a person by (``engine.audit.events``: a system
# client, a signed-in staff member, an auditor's or a user's sign-in): the ones ``audit_event_shown`` withholds
_NAMED_AGENTS = frozenset({AGENT_SYSTEMS["system"], AGENT_SYSTEMS["auditor"], STAFF_SYSTEM, USER_SYSTEM})
# the events of a sender's message traffic (``engine.audit.actions``): a message received, a stored one replayed
# (``engine.audit.view.IMPORTS``), a refusal for another member's record number (priv36's Security Alert)
TRAFFIC = frozenset({*IMPORTS, "member-number-refused"})
# their bytes: a stored view holding no traffic code, or no such agent, is decided without parsing it
# (``ScopedRepository.counts``)
TRAFFIC_BYTES = tuple(f'"{code}"'.encode() for code in sorted(TRAFFIC))
NAMED_AGENT_BYTES = tuple(f'"{system}"'.encode() for system in sorted(_NAMED_AGENTS))


def audit_bound(caller: Caller) -> bool:
    """Whether ``audit_event_shown`` screens the AuditEvents ``caller`` reads: a hospital's system client bound to
    its institution, or a staff member bound to a remit -- not the site's own clients and staff, nor a resident
    (whose events are decided by their compartment: ``engine.repository.scoped``)."""
    return caller.patient_ids is None and (caller.remit is not None or bound_system(caller))


def audit_event_shown(caller: Caller, event: Mapping[str, Any]) -> bool:
    """Whether a caller bound to an institution or a remit (``audit_bound``) reads ``event`` (an AuditEvent as
    ``engine.audit.view`` shows it), by search, its count, read, ``_history`` or ``_include`` alike
    (``ScopedRepository.admit`` and ``counts``, the gates of all of them).

    Such a caller reads no event of message traffic (``TRAFFIC``: a message received, replayed, refused for a
    member's number) whose agents name a system client, a staff member or another signed-in person other than the
    caller itself. Why: the views strip network addresses, but the requesting agent of a message posted over
    HTTP is its client id -- FNXRMYY's bound client read the ``hl7v2-receive`` record of FNZYY's refused
    ``POST /hl7v2``, ``urn:huren:client his-fnzyy`` outcome 4, beside the refusal's own record: which client of the
    sending hospital was refused, and when -- what ``refusal_count_shown`` withholds on ``/admin/fidelity``
    (rv37b MED 1, fidfix37). The event is left out whole rather than shown with its agent blanked: a search by
    ``agent:identifier`` (or a ``_revinclude``) would otherwise still tie the client to it.

    Read as before: the traffic events naming institutions only (an HL7 v2 sender by its facility over MLLP, the
    ``member-number-refused`` record of a message as sent, naming the sending institution: what the counts by
    institution show), and the access events -- who read or searched the shared records, which a hospital's
    system is shown (probe20: the township's HIS sees the hospital's read of a record, naming the patient only).
    The record does not say which institution a client or a person is of, so another client of the caller's own
    institution is left out of the traffic events too: the safe side."""
    if not audit_bound(caller):
        return True
    if not any(isinstance(c, Mapping) and c.get("code") in TRAFFIC for c in event.get("subtype") or ()):
        return True
    own = {caller.subject, caller.client_id}
    for agent in event.get("agent") or ():
        who = agent.get("who") if isinstance(agent, Mapping) else None
        ident = who.get("identifier") if isinstance(who, Mapping) else None
        if isinstance(ident, Mapping) and ident.get("system") in _NAMED_AGENTS and ident.get("value") not in own:
            return False
    return True


def bound_system(caller: Caller) -> bool:
    """A system client bound to one hospital (``huren client add --institution``): not the site's own."""
    return caller.kind == "system" and caller.role is None and caller.institution is not None


class RemitView:
    """A caller's remit as the FHIR repository asks it (``ScopedRepository``): resolved once, when
    first asked, so a request that reads no published figure pays nothing."""

    def __init__(self, caller: Caller, site: Any, site_dir: Path | str | None) -> None:
        self.caller, self.site, self.site_dir = caller, site, site_dir
        self._institutions: frozenset[str] | None = None
        self._resolved = False

    @property
    def institutions(self) -> frozenset[str] | None:
        if not self._resolved:
            self._institutions, self._resolved = audit_remit(self.caller, self.site, self.site_dir), True
        return self._institutions

    def reports_within(self, who: Any) -> bool:
        """A published figure (an indicator's MeasureReport by ``reporter``, its alert Flag by
        ``subject``) is the caller's to read: every institution it reports on is in the remit
        (``engine.insurance.remit.figures_within``); everything for a caller bound to none."""
        remit = self.institutions
        return remit is None or figures_within(who, remit, self.site)


def require_in_remit(caller: Caller, institution: str | None, site: Any, site_dir: Path | str | None,
                     what: str = "flag") -> None:
    """404 for a record of an institution outside the caller's remit: to them it does not exist."""
    remit = audit_remit(caller, site, site_dir)
    if remit is not None and institution not in remit:
        raise NotFound(f"no such {what} in your remit")


def require_family_manager(caller: Caller, patient_id: str) -> None:
    """Grant or withdraw family access to the record of ``patient_id``."""
    if caller.kind == "patient":
        if caller.acting:
            raise Forbidden("a family member acting for someone cannot grant or withdraw family access "
                            "(代查的家人不能再授权)")
        if patient_id not in (caller.patient_ids or ()):
            raise NotFound("this Patient is not known")
        return
    if caller.restricted or caller.kind != "system" or not (caller.allows("Consent", "c") and caller.allows("Consent", "u")):
        raise Forbidden("recording family access needs the resident's own sign-in or a desk client with "
                        "system/Consent.cu and system/RelatedPerson.cu")
    caller.require("RelatedPerson", "c")
    caller.require("RelatedPerson", "u")


def parse_instant(value: str) -> dt.datetime:
    """An instant of a Consent period; a bare date is that day's start in UTC, a value without an
    offset is taken as UTC. Raises ``ValueError`` for anything else."""
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def is_family_consent(consent: dict[str, Any]) -> bool:
    """A privacy Consent whose provision names RelatedPerson actors: what family access is made of."""
    scope = {(c.get("system"), c.get("code")) for c in (consent.get("scope") or {}).get("coding") or ()}
    actors = (consent.get("provision") or {}).get("actor") or ()
    return CONSENT_SCOPE in scope and any(
        str((a.get("reference") or {}).get("reference", "")).startswith("RelatedPerson/") for a in actors)


MOVED = ("授权所涉的档案已被医院归入他人名下，此授权不再有效，请本人重新授权 "
         "(the record this family access was given for now belongs to another person)")
APART = ("授权所涉的档案目前已被医院移出本人名下（正在核对身份），此授权暂不能使用；医院核对归回后恢复，或请本人重新授权 "
         "(the record this family access was given for is not filed under its resident now: the hospital took "
         "it out or is checking whose it is)")
FILED = ("授权时这份档案还没有身份证号，之后它已归入某人名下（登记了身份证号或由医院归档），无法确认仍是授权所指的本人，"
         "此授权不再有效，请本人重新授权 "
         "(the record had no ID number when this family access was given and has since been filed under a person -- "
         "given a number, or by the hospital's desk: whether that is the person it was given for cannot be told)")
JOINED = ("授权所涉的档案与他人名下的档案相连（医院正在核对），此授权暂不能使用 "
          "(a record joined to the one this family access was given for is another person's: the hospital is "
          "checking)")
UNREAD = ("暂时无法核对授权所涉档案的身份记录，此授权暂不能使用，请稍后再试 "
          "(the history of the record this family access was given for cannot be read now)")
BINDING = frozenset({MOVED, APART, FILED, JOINED, UNREAD})
UNKNOWN_PERSON = "?"  # the person of a grant whose record's history cannot be read: binds nothing


class Withheld(frozenset[str]):
    """The empty compartment of a family token whose grant no longer binds its records, carrying
    why (one of ``BINDING``): the refusal the scoped repository gives must say what happened --
    another person's, taken out, or a number-less record filed by hand -- not one word for all."""

    why: str

    def __new__(cls, why: str) -> Withheld:
        self = super().__new__(cls)
        self.why = why
        return self


NOT_KNOWN = "the family access is not known"
WITHDRAWN = "the family access was withdrawn"
NOT_STARTED = "the family access has not started yet"
EXPIRED = "the family access has expired"
# the reason of a family token's refusal as a code (``OperationOutcome.issue.details``, and beside
# userinfo's error): the resident's page words each in its own language -- it had said "撤销或已过期"
# (withdrawn or expired) on any 403, also for a record filed under another person or a label refused
REFUSAL_SYSTEM = "urn:huren:family-refusal"
_REFUSAL_CODES = {WITHDRAWN: "withdrawn", EXPIRED: "expired", NOT_STARTED: "not-started", MOVED: "moved",
                  APART: "apart", FILED: "filed", JOINED: "joined", UNREAD: "unread"}


def refusal(why: str) -> str:
    """The 403 words for a family token whose grant does not hold: a binding reason as it is
    (Chinese first, it says what happened), any other (withdrawn, expired) as before."""
    if why in BINDING:
        return why
    return f"{why}: this family member's sign-in no longer opens the record (家人代查授权已撤销或已过期，请重新登录)"


def refusal_code(why: str) -> str:
    """``why`` (``proxy_grant_holds``) as a code of ``REFUSAL_SYSTEM``; ``ended`` for the reasons a
    person cannot act on differently (not known, not a family access, entry changed)."""
    return _REFUSAL_CODES.get(why, "ended")


class GrantRefused(Forbidden):
    """403 for a family token whose grant does not hold: the words (``refusal``) and the reason's
    code in ``issue.details`` (``REFUSAL_SYSTEM``), so a page says what happened, not a guess."""

    def __init__(self, why: str) -> None:
        super().__init__(refusal(why))
        self.reason = refusal_code(why)

    def outcome(self) -> dict[str, Any]:
        out = super().outcome()
        out["issue"][0]["details"] = {"coding": [{"system": REFUSAL_SYSTEM, "code": self.reason}]}
        return out


NO_NUMBER = "grk-none"  # recorded in a Consent given on a record with no ID number (never a person's key)


def grant_binds(bound: str | None, subject: str, placed: Mapping[str, str | None], *,
                numbered: bool = False) -> str | None:
    """``None`` when the records a family token would open are all the person the grant binds,
    else the refusal's words for what happened.

    ``bound``: that person (a key of the subject's ID-number person at grant time, see
    ``engine.auth.family``; None when the record had no number then -- it then opens only while the
    record is in no person *and carries no number*: filed under anyone since, by a number or by hand,
    or given any number (``numbered``: the index has a number for it, in conflict or taken out too --
    review of famlast18: an A08 giving it another person's number that the index held in conflict
    left it open, showing his number and his later results), it is ``FILED``); ``placed``: each record of the token's compartment -> the person the patient
    index links it to now, a record merged away judged by its survivor (None: linked to none -- in
    conflict, no number, taken out by an operator). The granted record itself must still be that
    person's, and no record of the compartment anyone else's. Why not follow the record: the
    Consent lies in the granted record, so once that record is another person's the consent sits
    in *their* compartment (they see it, they may withdraw it) and its own resident no longer sees
    or can withdraw it; a grant the resident cannot see must not open anything. A record taken out
    of the person by hand is not the resident's for sign-in either (``patients_for_number``)."""
    if bound == UNKNOWN_PERSON:
        return UNREAD
    if bound is None and numbered:
        return FILED
    own = placed.get(subject)
    if own != bound:
        if own is None:
            return APART
        return MOVED if bound is not None else FILED
    if any(p is not None and p != bound for p in placed.values()):
        return JOINED
    return None


def grant_subject(consent: dict[str, Any]) -> str:
    """The Patient id a family-access Consent was given for."""
    return str((consent.get("patient") or {}).get("reference", "")).removeprefix("Patient/")


def grant_person(consent: dict[str, Any]) -> str | None:
    """The person a Consent recorded it binds (``patient.identifier`` under ``GRANT_SYSTEM``:
    a key for grants alone, never the ID number nor the person id); None for a grant recorded before the
    eighteenth round, whose person is derived instead (``engine.auth.family``)."""
    ident = (consent.get("patient") or {}).get("identifier")
    if isinstance(ident, dict) and ident.get("system") == GRANT_SYSTEM and isinstance(ident.get("value"), str):
        return ident["value"]
    return None


def proxy_grant_holds(consent: dict[str, Any] | None, related: dict[str, Any] | None, *, proxy: str | None,
                      related_id: str | None, patients: Collection[str] | None = None,
                      now: dt.datetime | None = None) -> str | None:
    """``None`` when the grant holds, else why not (for the refusal's words and the audit trail).

    ``proxy``: the signed-in family member's person key; ``patients``: the compartment the token
    opens (the Consent's patient must be in it; a ``Withheld`` one, empty, when the grant binds
    another person than the record's now, see ``grant_binds``, which ``engine.auth.family`` asks);
    ``now``: the instant to judge the period at."""
    if consent is None or related is None or not proxy or not related_id:
        return NOT_KNOWN
    if consent.get("status") != "active":
        return WITHDRAWN
    if not is_family_consent(consent):
        return "the Consent is not a family access"
    provision = consent.get("provision") or {}
    if provision.get("type") != "permit":
        return "the Consent does not permit access"
    if not any((a.get("reference") or {}).get("reference") == f"RelatedPerson/{related_id}"
               for a in provision.get("actor") or ()):
        return "the Consent does not name this family member"
    period = provision.get("period") or {}
    moment = now or dt.datetime.now(dt.UTC)
    try:
        if period.get("start") and parse_instant(period["start"]) > moment:
            return NOT_STARTED
        if period.get("end") and parse_instant(period["end"]) <= moment:
            return EXPIRED
    except ValueError:
        return "the Consent's period cannot be read"
    subject = grant_subject(consent)
    if isinstance(patients, Withheld):
        return patients.why  # the token's compartment was emptied by ``grant_binds`` (engine.auth.family.opens)
    if patients is not None and not patients:
        return MOVED
    if patients is not None and subject not in patients:
        return "the Consent is about another record"
    if related.get("active") is False:
        return "the family member's entry was deactivated"
    if str((related.get("patient") or {}).get("reference", "")).removeprefix("Patient/") != subject:
        return "the family member's entry belongs to another record"
    if not any(i.get("system") == FAMILY_SYSTEM and i.get("value") == proxy for i in related.get("identifier") or ()):
        return "the family member's entry names someone else"
    return None
