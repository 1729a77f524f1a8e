"""Who looked at my record (谁看过我的档案): a resident's accesses, read from the AuditEvent view.

The data behind the resident page: for the Patient ids of one person (their compartment), every
interaction that touched them — which institution or app, in what role, when, what it did, and
whether it succeeded — newest first. It reads only the per-patient views (``engine.audit.view``)
through the ordinary FHIR search ``AuditEvent?patient=...`` restricted to that compartment, so an
entry can name nobody else; the same search a SMART app makes through the FHIR API.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from engine.audit.events import STAFF_ROLE_SYSTEM, STAFF_SYSTEM
from engine.audit.view import OTHER_RESIDENT, RECORD_DETAIL

MAX_ENTRIES = 200
# requestor's identifier system -> role, for the agents engine.audit.events writes
ROLES = {"urn:huren:client": "system", "urn:huren:resident": "resident", "urn:huren:auditor": "auditor",
         "urn:huren:institution": "sending-institution", "urn:huren:user": "user", "urn:huren:family": "family"}
# what the interaction did, in the resident's terms
WHAT = {"read": "read", "vread": "read", "history": "read", "search": "search", "create": "write",
        "update": "write", "patch": "write", "delete": "delete", "hl7v2-receive": "import", "replay": "import",
        "token-issue": "sign-in", "110122": "sign-in", "110123": "sign-out", "identity-link": "link", "review": "review",
        "report-view": "read", "family-access": "family-access"}
EXPORTS = {"$everything", "$export"}


class StaffRole(Protocol):
    """A staff role as its one owner loads it (``engine.auth.staff.Role``, from ``staff/roles.yaml``)."""

    @property
    def kind(self) -> str: ...


class Searches(Protocol):
    """The part of ``FhirRepository`` this needs."""

    def search(self, rtype: str, params: Any, *, compartment: Collection[str] | None = None) -> Any: ...


@dataclass(frozen=True)
class Access:
    when: str  # AuditEvent.recorded (instant, UTC)
    who: str  # the requestor's id: a client id, a resident's subject, an institution code, a RelatedPerson
    who_name: str  # a display name when known (a registered client's name), else ""
    role: str  # system | resident | auditor | sending-institution | user | family | unauthenticated | other
    what: str  # read | search | export | write | delete | import | sign-in | operation | ...
    resource_types: tuple[str, ...]  # the types of this resident's resources it touched
    outcome: str  # success | refused | failed
    via_app: str  # the app a person used (client id), "" for a system
    record: str  # the signed audit record's id, for an auditor

    def as_json(self) -> dict[str, Any]:
        return {"when": self.when, "who": self.who, "who_name": self.who_name, "role": self.role,
                "what": self.what, "resource_types": list(self.resource_types), "outcome": self.outcome,
                "via_app": self.via_app, "record": self.record}


def who_looked(repository: Searches, patient_ids: Collection[str], *,
               names: Callable[[str], str] | None = None, limit: int = MAX_ENTRIES,
               staff_roles: Mapping[str, StaffRole] | None = None) -> list[Access]:
    """Accesses to the record of the person with these Patient ids, newest first (the views are
    derived from the log on read: a read made a moment ago is there); ``names`` gives a client
    id's display name; ``staff_roles`` the site's staff roles (``engine.staff.roles``), which say
    whether a signed-in person's role is an auditor's or a health worker's (none given: such a
    person is ``other``, named, never guessed).
    """
    ids = sorted({p for p in patient_ids if p})
    if not ids:
        return []
    found = repository.search("AuditEvent", [("patient", ",".join(ids)), ("_sort", "-date"),
                                             ("_count", str(max(1, min(limit, MAX_ENTRIES))))],
                              compartment=frozenset(ids))
    out: list[Access] = []
    seen: set[str] = set()
    for event in found.resources:
        access = summarise(event, names, staff_roles)
        if access.record in seen:  # one interaction with two of this person's linked records
            continue
        seen.add(access.record)
        out.append(access)
    return out


def summarise(event: dict[str, Any], names: Callable[[str], str] | None = None,
              staff_roles: Mapping[str, StaffRole] | None = None) -> Access:
    """One AuditEvent view in the resident's terms."""
    requestor = next((a for a in event.get("agent") or () if a.get("requestor")), {})
    ident = (requestor.get("who") or {}).get("identifier") or {}
    who = str(ident.get("value") or "")
    if ROLES.get(ident.get("system", "")) == "family":  # acting for the resident: named by their RelatedPerson
        who = str((requestor.get("who") or {}).get("reference") or who)
    staff_name = ""
    if requestor.get("who") == OTHER_RESIDENT:
        role = "resident"
    elif ident.get("system") == STAFF_SYSTEM:  # a person signed in to the pages: by her role, named
        role = staff_kind(requestor, staff_roles or {})
        staff_name = str((requestor.get("who") or {}).get("display") or "")
    else:
        role = ROLES.get(ident.get("system", ""), "unauthenticated" if not who else "other")
    app = next((str(((a.get("who") or {}).get("identifier") or {}).get("value") or "")
                for a in event.get("agent") or ()
                if not a.get("requestor") and ((a.get("who") or {}).get("identifier") or {}).get("system")
                == "urn:huren:client"), "")
    details = {d.get("type"): d.get("valueString") for e in event.get("entity") or ()
               for d in e.get("detail") or ()}
    action = next((c.get("code") for c in event.get("subtype") or ()), "") or ""
    what = WHAT.get(action, action or "operation")
    if details.get("operation") in EXPORTS:
        what = "export"
    types = sorted({e["what"]["reference"].split("/")[0] for e in event.get("entity") or ()
                    if (e.get("role") or {}).get("code") == "4" and "what" in e})
    outcome = {"0": "success", "4": "refused"}.get(str(event.get("outcome")), "failed")
    name = names(who) if names is not None and role == "system" and who else staff_name
    return Access(str(event.get("recorded") or ""), who, name or "", role, what, tuple(types), outcome, app,
                  str(details.get(RECORD_DETAIL) or event.get("id") or ""))


def staff_kind(requestor: dict[str, Any], staff_roles: Mapping[str, StaffRole]) -> str:
    """``auditor`` or ``user`` for a signed-in person, by her role's *kind*: the record names the
    role (``urn:huren:staff-role``), and a site names its roles as it likes (``yb_auditor``, kind
    auditor, 医保审核员), so the name says nothing; the kind comes from the one owner of staff
    roles. A role the site no longer has is ``other``: which kind it was is not known here, and
    a guess would tell the resident something untrue."""
    codes = [c.get("code") for r in requestor.get("role") or () for c in r.get("coding") or ()
             if c.get("system") == STAFF_ROLE_SYSTEM]
    kinds = {staff_roles[c].kind for c in codes if isinstance(c, str) and c in staff_roles}
    return kinds.pop() if len(kinds) == 1 and kinds <= {"auditor", "user"} else "other"
