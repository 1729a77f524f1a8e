"""Family access (家人代查): a resident lets a family member see their record, as FHIR ``Consent`` + ``RelatedPerson``.

A parent keeps the record of a child who has no phone, an adult child helps an elderly parent.
The resident (on ``/ui/me`` or through the FHIR operation) or a member institution's desk (after
checking both ID cards) records the grant; it is data like any other, in the resident's own
compartment, so the resident sees it, and so does the audit trail:

- a ``RelatedPerson`` of the resident's record (``patient``), with the relationship and the family
  member's name, identified by the family member's pseudonymous person key (``urn:huren:family``:
  the same key their own sign-in carries, never the ID number itself);
- a ``Consent`` (scope ``patient-privacy``, category LOINC 59284-0) whose ``provision`` permits
  that RelatedPerson (``actor``) to access the record during ``period``.

The family member signs in as themselves (their own ID number and phone) and chooses whose record
to open; their token names the RelatedPerson and the Consent, and whether the Consent still holds
is decided again on every request (``engine.auth.policy.proxy_grant_holds``, asked by the scoped
repository), so a withdrawal or an expired period ends access at once.

A grant is consent about one person, not about whatever person its record is filed under later:
the Consent records the person it binds (``Consent.patient.identifier``, ``urn:huren:family-grant``:
a key of the subject's ID-number person at grant time for grants alone, ``grant_key``), and a
family token opens its compartment only while every record in it is that person's
(``opens``, ``policy.grant_binds``). A grant recorded before this rule has no such identifier: its
person is derived from the number the granted record carried when the grant was made (its stored
version of that moment), never from the person the record is in now -- a record corrected to
another number by an A08 would otherwise carry the grant to that number's holder.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from engine.auth import policy
from engine.errors import Gone, NotFound, Unprocessable
from engine.identity import nationalid

FAMILY_SYSTEM = policy.FAMILY_SYSTEM  # RelatedPerson.identifier: the family member's person key
ROLE_CODES = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
# the relationships a resident can choose (v3 RoleCode), with the words the pages show
RELATIONSHIPS = {
    "PRN": ("parent", "父母"), "CHILD": ("child", "子女"), "SPS": ("spouse", "配偶"),
    "SIB": ("sibling", "兄弟姐妹"), "GRPRN": ("grandparent", "祖父母/外祖父母"), "GRNDCHILD": ("grandchild", "孙子女"),
    "GUARD": ("guardian", "监护人"), "FAMMEMB": ("family member", "其他家人"),
}
TZ = dt.timezone(dt.timedelta(hours=8))  # a period typed as a date ends at that day's end, China time


class Version(Protocol):
    @property
    def updated(self) -> str: ...
    @property
    def resource(self) -> dict[str, Any] | None: ...


class Repository(Protocol):
    def read(self, type_: str, id_: str) -> dict[str, Any]: ...
    def update(self, resource: dict[str, Any], **kw: Any) -> Any: ...
    def search(self, type_: str, params: list[tuple[str, str]], **kw: Any) -> Any: ...
    def versions(self, rtype: str, rid: str) -> Sequence[Version]: ...


class Identity(Protocol):
    def nid_key(self, number: str) -> str: ...
    def patients_for_number(self, number: str) -> list[str]: ...
    def record(self, patient_id: str) -> dict[str, Any] | None: ...
    def person_compartment(self, patient_id: str) -> frozenset[str]: ...
    def merge_chain(self, patient_id: str) -> list[str] | None: ...


_UNKNOWN = policy.UNKNOWN_PERSON  # a grant whose record's history cannot be read: binds nothing, not kept
_DERIVED_KEPT = 4096
# a merged-away record whose merge chain the index cannot tell (into another ID number's record, a
# loop): filed under no person the grant can bind, so the grant is refused as moved (``_person_of``)
_ELSEWHERE = "merged-elsewhere"


def person_key(nid_key: str) -> str:
    """The pseudonymous key a family member is known by: the person id their own sign-in derives
    from their ID number (``engine.identity``), so a grant outlives relinking of their records."""
    return "per-" + nid_key[:32]


def now_instant() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _instant(value: str, *, end: bool) -> str:
    """An ISO date or date-time as an instant; a bare date is the start or the end of that day."""
    value = value.strip()
    try:
        if len(value) == 10:
            d = dt.date.fromisoformat(value)
            t = dt.time(23, 59, 59, tzinfo=TZ) if end else dt.time(0, 0, 0, tzinfo=TZ)
            return dt.datetime.combine(d, t).isoformat()
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Unprocessable(f"日期格式不正确 ('{value}' is not a date, YYYY-MM-DD)", expression=["Parameters.parameter[end]"]) from None
    if parsed.tzinfo is None:
        raise Unprocessable("a time must carry its offset", expression=["Parameters.parameter[end]"])
    return parsed.isoformat()


@dataclass(frozen=True)
class Grant:
    """One family access in force: whose record, to whom, until when."""

    consent: dict[str, Any]
    related: dict[str, Any]

    @property
    def consent_id(self) -> str:
        return self.consent["id"]

    @property
    def related_id(self) -> str:
        return self.related["id"]

    @property
    def patient(self) -> str:
        return self.consent["patient"]["reference"].removeprefix("Patient/")

    @property
    def relationship(self) -> str:
        return next((c.get("code", "") for r in self.related.get("relationship") or () for c in r.get("coding") or ()), "")


class FamilyAccess:
    """Grants, withdrawals and the grants a signed-in family member holds (writes go straight to
    the repository: who may make them is decided by ``engine.auth.policy`` before)."""

    def __init__(self, repository: Repository, identity: Identity) -> None:
        self.repository = repository
        self.identity = identity
        self._derived: dict[tuple[str, str], str | None] = {}  # (Consent id, subject) -> its person, old grants

    # ---- the person a grant binds -----------------------------------------------------------------
    def placed(self, patients: frozenset[str] | set[str]) -> dict[str, str | None]:
        """Each record -> the person the patient index links it to now (None: linked to none).

        A record merged away (not linked, ``replaced_by`` its survivor: an ADT^A40 leaves the old
        MRN with no number, out of every person) is judged by its survivor, as the index's
        compartment follows it: merging a child's old record into her new one is record keeping,
        not a move to someone else, and a merge into another person's record still shows as that
        person (review of famfix18: the A40 ended every grant for the old record). A record an
        operator took out (``unlinked``) is not followed: their decision stands."""
        return {pid: self.grant_key(self._person_of(pid)) for pid in patients}

    def grant_key(self, person: str | None) -> str | None:
        """The key a grant records for ``person``: a keyed digest for grants alone. Why not the
        person id: it is the ``sub`` of that resident's own tokens, and the Consent is read by the
        family member (and, once the record is moved, by another person) -- nothing there should
        name the resident's sign-in. One-way (the index's secret), so only compared, never read."""
        if person is None or person == _UNKNOWN:
            return person
        return "grk-" + self.identity.nid_key("huren-family-grant|" + person)[:32]

    def _person_of(self, pid: str) -> str | None:
        """The person of the first record linked along ``pid``'s merge chain, as the index walks it
        (``merge_chain``: None when it cannot tell whose record is kept -- a loop, or a merge into
        another ID number's record, which is not the granted person's record kept on); a record an
        operator took out on the way stops it (None). A record linked itself is its person's,
        whatever it was merged into (the compartment does not follow a merge into another number)."""
        doc = self.identity.record(pid) or {}
        if doc.get("status") in ("linked", "unlinked") or not doc.get("replaced_by"):
            return doc.get("person") if doc.get("status") == "linked" else None
        chain = self.identity.merge_chain(pid)
        if chain is None:
            return _ELSEWHERE  # merged on into another number's record: not the granted person's (MOVED)
        for at in chain:
            doc = self.identity.record(at) or {}
            if doc.get("status") == "linked":
                return doc.get("person")
            if doc.get("status") == "unlinked":
                return None
        return None

    def bound_person(self, consent: dict[str, Any]) -> str | None:
        """The person ``consent`` binds: recorded in it, or for an older grant (and one given on a
        record with no ID number) derived from the number the granted record carried when the
        Consent was first stored; None: it had none then (a newborn's), so the grant opens that
        record only while the index has it in no person (``policy.grant_binds``: once it is
        given a number and filed under anyone, ``policy.FILED``). Derived once and kept, "none" too
        (the history of that moment does not change); "cannot be read now" is asked again.

        Why not the first number she is given later (fammend18, taken out in review): that number
        was checked against the particulars of the same later version, so an ADT^A08 giving the
        record another person's number with his particulars bound the grant to him and opened
        his results -- and it cost two history reads per request while no number was found."""
        recorded = policy.grant_person(consent)
        if recorded == policy.NO_NUMBER:  # said when granted: no number then (no history to read)
            return None
        if recorded is not None:
            return recorded
        subject = policy.grant_subject(consent)
        key = (str(consent.get("id", "")), subject)
        if key in self._derived:
            return self._derived[key]
        person = self._person_at_grant(key[0], subject)
        if person != _UNKNOWN:
            if len(self._derived) >= _DERIVED_KEPT:
                self._derived.clear()
            self._derived[key] = person
        return person

    def _person_at_grant(self, consent_id: str, subject: str) -> str | None:
        """The person of the ID number the record carried when the Consent was first stored (None:
        it had none), ``_UNKNOWN`` when that cannot be read."""
        try:
            since = policy.parse_instant(self.repository.versions("Consent", consent_id)[-1].updated)
            versions = self.repository.versions("Patient", subject)
        except (NotFound, Gone, ValueError):
            return _UNKNOWN
        for version in versions:  # newest first: the one stored when the grant was made
            if version.resource is not None and policy.parse_instant(version.updated) <= since:
                number = nationalid.patient_number(version.resource)
                return self.grant_key(person_key(self.identity.nid_key(number))) if number else None
        return _UNKNOWN

    def opens(self, claims: dict[str, Any], compartment: frozenset[str]) -> frozenset[str]:
        """What a family member's token opens: the compartment of its record while every record in
        it is the person the grant binds, else nothing that says why (``policy.Withheld``: the
        scoped repository refuses every request with those words). Asked for every request
        (``AuthService.caller_from_claims``)."""
        consent_id = claims.get("consent")
        try:
            consent = self.repository.read("Consent", str(consent_id)) if consent_id else None
        except (NotFound, Gone):
            consent = None
        if consent is None:
            return frozenset()
        why = self._unbound(consent, compartment)
        return policy.Withheld(why) if why is not None else compartment

    def _unbound(self, consent: dict[str, Any], compartment: frozenset[str] | set[str]) -> str | None:
        """Why ``consent`` does not bind the records of ``compartment`` (``policy.grant_binds``), None
        when it does: the one decision every path asks -- each request (``opens``), sign-in's offer
        (``grants_for``), introspection and userinfo (``why_not``)."""
        subject = policy.grant_subject(consent)
        return policy.grant_binds(self.bound_person(consent), subject, self.placed(compartment),
                                  numbered=self._numbered(subject))

    def _numbered(self, pid: str) -> bool:
        """Whether the patient index has an ID number for the record now (linked, in conflict, taken
        out by hand: any), or places it other than as a record with none."""
        doc = self.identity.record(pid) or {}
        return bool(doc.get("nid_key")) or doc.get("status") not in (None, "no-id")

    # ---- granting and withdrawing ---------------------------------------------------------------
    def grant(self, patient_id: str, proxy_number: str, *, name: str, relationship: str, end: str | None,
              start: str | None = None, desk: str | None = None) -> Grant:
        """Record that the resident of ``patient_id`` lets the holder of ``proxy_number`` see their
        record from ``start`` (now) to ``end`` (None: until withdrawn). ``desk``: the operator who
        checked both ID cards in person (recorded as the Consent's verification)."""
        try:
            number = nationalid.parse(proxy_number.strip().upper()).number
        except nationalid.InvalidNationalId as exc:
            raise Unprocessable(f"家人的身份证号不正确 (the family member's ID number: {exc})",
                                expression=["Parameters.parameter[proxyNationalId]"]) from None
        if relationship not in RELATIONSHIPS:
            raise Unprocessable(f"relationship must be one of {', '.join(RELATIONSHIPS)}",
                                expression=["Parameters.parameter[relationship]"])
        name = (name or "").strip()
        if not name or len(name) > 64:
            raise Unprocessable("请填写家人姓名 (the family member's name is required, at most 64 characters)",
                                expression=["Parameters.parameter[proxyName]"])
        if not self.identity.patients_for_number(number):
            raise Unprocessable("家人的身份证号还没有归入本人的记录，还不能登录：请家人到任一成员医院建档或核对 (no record "
                                "is linked to the family member's ID number yet, so they cannot sign in: they register, "
                                "or have their records checked, at the desk of any member hospital)",
                                expression=["Parameters.parameter[proxyNationalId]"])
        key = person_key(self.identity.nid_key(number))
        patient = self.repository.read("Patient", patient_id)
        if nationalid.patient_number(patient) == number or person_key(self._key_of(patient_id)) == key:
            raise Unprocessable("不需要授权给自己 (a resident does not need family access to their own record)",
                                expression=["Parameters.parameter[proxyNationalId]"])
        own = nationalid.patient_number(patient)
        subject_person = self.grant_key(person_key(self.identity.nid_key(own))) if own else None
        if policy.grant_binds(subject_person, patient_id, self.placed(self.identity.person_compartment(patient_id)),
                              numbered=self._numbered(patient_id)):
            raise Unprocessable("这份档案目前不在其身份证号本人名下（医院正在核对或已归入他人），暂不能授权；请到服务台核对 "
                                "(this record is not its ID number's person's now: the index holds it apart or in "
                                "another person, so a grant for it cannot be told whose it is)",
                                expression=["Parameters.parameter[patient]"])
        now = now_instant()
        period: dict[str, str] = {"start": _instant(start, end=False) if start else now}
        if end:
            period["end"] = _instant(end, end=True)
            if not _after(period["end"], period["start"]):
                raise Unprocessable("授权结束日期必须晚于今天 (the end of the period must be after its start)",
                                    expression=["Parameters.parameter[end]"])
        related = self._related(patient_id, key, name, relationship)
        consent: dict[str, Any] = {
            "resourceType": "Consent", "id": "fam-" + uuid.uuid4().hex[:24], "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                  "code": "patient-privacy", "display": "Privacy Consent"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}],
                          "text": "家人代查授权"}],
            # the person it binds, or that the record had no number (said, not derived later from the
            # history: an A08 landing between the read above and this write would be taken for it)
            "patient": {"reference": f"Patient/{patient_id}",
                        "identifier": {"system": policy.GRANT_SYSTEM, "value": subject_person or policy.NO_NUMBER}},
            "dateTime": now,
            "performer": [{"reference": f"Patient/{patient_id}"}],  # the resident consents; a desk records it
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
            "provision": {"type": "permit", "period": period,
                          "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                                          "code": "IRCP", "display": "information recipient"}]},
                                     "reference": {"reference": f"RelatedPerson/{related['id']}"}}],
                          "action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction",
                                                  "code": "access"}]}]},
        }
        if desk:
            consent["verification"] = [{"verified": True, "verificationDate": now,
                                        "verifiedWith": {"reference": f"Patient/{patient_id}"}}]
        self.repository.update(consent)
        return Grant(self.repository.read("Consent", consent["id"]), related)

    def _key_of(self, patient_id: str) -> str:
        return (self.identity.record(patient_id) or {}).get("nid_key") or ""

    def _related(self, patient_id: str, key: str, name: str, relationship: str) -> dict[str, Any]:
        """The resident's RelatedPerson for this family member: the existing one (updated), or a new one."""
        found = self.repository.search("RelatedPerson", [("patient", f"Patient/{patient_id}"),
                                                         ("identifier", f"{FAMILY_SYSTEM}|{key}"), ("_count", "1")])
        english, chinese = RELATIONSHIPS[relationship]
        related = found.resources[0] if found.resources else {
            "resourceType": "RelatedPerson", "id": "fam-" + uuid.uuid4().hex[:24]}
        related = {**related, "active": True, "patient": {"reference": f"Patient/{patient_id}"},
                   "identifier": [{"system": FAMILY_SYSTEM, "value": key}],
                   "relationship": [{"coding": [{"system": ROLE_CODES, "code": relationship, "display": english}],
                                     "text": chinese}],
                   "name": [{"text": name}]}
        self.repository.update(related)
        return self.repository.read("RelatedPerson", related["id"])

    def withdraw(self, consent_id: str) -> dict[str, Any]:
        """End a grant now: the Consent becomes ``inactive`` and its period ends (the history keeps
        what it was). Withdrawing twice is harmless."""
        consent = self.consent(consent_id)
        if consent.get("status") == "inactive":
            return consent
        now = now_instant()
        provision = dict(consent.get("provision") or {})
        period = dict(provision.get("period") or {})
        if not period.get("end") or _after(period["end"], now):
            period["end"] = now
        provision["period"] = period
        self.repository.update({**consent, "status": "inactive", "provision": provision})
        return self.repository.read("Consent", consent_id)

    def consent(self, consent_id: str) -> dict[str, Any]:
        """A family-access Consent (404 for anything else, as for a missing one)."""
        try:
            consent = self.repository.read("Consent", consent_id)
        except (NotFound, Gone):  # a deleted grant as a missing one: 410 told anyone it had existed
            raise NotFound("this Consent is not known") from None
        if not policy.is_family_consent(consent):
            raise NotFound("this Consent is not known")
        return consent

    # ---- what a signed-in family member may open -------------------------------------------------
    def grants_for(self, key: str) -> list[Grant]:
        """The grants in force now for the family member with person key ``key``."""
        related = self.repository.search("RelatedPerson", [("identifier", f"{FAMILY_SYSTEM}|{key}"), ("_count", "100")])
        out: list[Grant] = []
        for rp in related.resources:
            consents = self.repository.search("Consent", [("actor", f"RelatedPerson/{rp['id']}"), ("status", "active"),
                                                          ("_count", "100")])
            for c in consents.resources:
                if policy.proxy_grant_holds(c, rp, proxy=key, related_id=rp["id"]) is not None:
                    continue
                if self._unbound(c, self.identity.person_compartment(policy.grant_subject(c))) is None:
                    out.append(Grant(c, rp))
        # oldest grant first, as the resident made them (same-second grants by their stored time)
        return sorted(out, key=lambda g: (g.consent.get("dateTime", ""), (g.consent.get("meta") or {}).get("lastUpdated", ""),
                                          g.consent_id))

    def still_holds(self, claims: dict[str, Any], patients: frozenset[str]) -> bool:
        """Whether the grant a family member's token names (claims ``consent``, ``acting``,
        ``person``) still holds, its person included: for answers about the token itself
        (introspection, userinfo); FHIR requests are decided by the scoped repository with the same
        rule, on the compartment ``opens`` left them."""
        return self.why_not(claims, patients) is None

    def why_not(self, claims: dict[str, Any], patients: frozenset[str]) -> str | None:
        """``still_holds``'s reason: None when the grant holds, else why not (``policy.refusal``
        gives the words), so userinfo says what happened as the FHIR API does. ``patients``: the
        caller's compartment as ``opens`` left it (a ``policy.Withheld`` carries its reason) or the
        record's compartment (introspection), which is decided here as ``opens`` decides it."""
        docs = []
        for rtype, rid in (("Consent", claims.get("consent")), ("RelatedPerson", claims.get("acting"))):
            try:
                docs.append(self.repository.read(rtype, str(rid)) if rid else None)
            except (NotFound, Gone):
                docs.append(None)
        if docs[0] is not None and not isinstance(patients, policy.Withheld):
            why = self._unbound(docs[0], patients)
            if why is not None:
                patients = policy.Withheld(why)
        return policy.proxy_grant_holds(docs[0], docs[1], proxy=claims.get("person"), related_id=claims.get("acting"),
                                        patients=patients)

    def grant_of(self, key: str, consent_id: str) -> Grant | None:
        return next((g for g in self.grants_for(key) if g.consent_id == consent_id), None)


def _after(a: str, b: str) -> bool:
    """Is instant ``a`` later than instant ``b``? (Instants of different offsets compare by time.)"""
    return policy.parse_instant(a) > policy.parse_instant(b)
