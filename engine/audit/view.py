"""The FHIR view of the audit log: per-patient AuditEvents derived from the signed records.

The signed log keeps one complete record per interaction for auditors: a hospital's search that
returned ten patients names all ten, and its query (which may carry another person's name or ID
number) is kept byte for byte. Those records must never reach a patient's compartment as they
are, or resident A would read B's Patient id and B's query. So the FHIR repository holds a
*view*, as the IHE Basic Audit Log Patterns (BALP) shape patient audit events: one AuditEvent per
patient touched, naming only that patient, with

- the interaction (type, subtype, action), when, outcome, and who asked (the requesting agents,
  without their network address; a resident other than this patient only as "another resident");
- the patient, and only the resources whose own fields say they are that patient's;
- for a search, the resource type and parameter names but no values (``Observation?code&date``,
  in ``entity.description``): a value can name someone else, so the base64 query stays in the log;
- a few details that describe the interaction itself (operation, channel, message type), and
  ``audit-record``: the id of the signed record, for an auditor to take it from there.

Views are derived on read (``engine.audit.derived``), every time a search reaches them, so they
are lean on purpose (codes without display texts, no entity types, the server's own agent and
source left to the log): each element a search parameter covers is index rows to extract per view
and search. An import's view lists one resource of each type the message wrote for the patient
(its first Observation, its DiagnosticReport, ...), not all of them: a 12-result lab message is
one import to the resident, and its two dozen resources as entities made each import's view
~3.5x dearer (measured when views were stored: ~115 -> ~415 µs per message).

A record that touches no patient (a token issued, a report viewed) gets one view with the same
redactions. View ids are ``audit-<seq>-<hash of the patient id>`` (``audit-<seq>`` for a record
without patients): stable, so a view keeps its id and paging is stable, and telling nothing about
how many other patients the interaction touched.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import parse_qsl

from engine.audit.events import (
    ACTING_DETAIL,
    AGENT_SYSTEMS,
    FAMILY_SYSTEM,
    OBJECT_ROLE,
    OWNER_DETAIL,
    QUERY_ROLE,
    SELF_DETAIL,
    STAFF_SYSTEM,
)

NODE_SYSTEM = "urn:huren:node"
RESIDENT_SYSTEM = AGENT_SYSTEMS["patient"]
OTHER_RESIDENT = {"display": "another resident"}  # a resident requestor who is not the view's patient
ROLE_PATIENT = {"system": OBJECT_ROLE, "code": "1"}
ROLE_RESOURCE = {"system": OBJECT_ROLE, "code": "4"}
ROLE_QUERY = {"system": OBJECT_ROLE, "code": QUERY_ROLE}

# details that describe the interaction, not the people in it; everything else stays in the log
VIEW_DETAILS = frozenset({"operation", "channel", "message-type", "grant_type"})
RECORD_DETAIL = "audit-record"
# imports (an HL7 v2 message, a replayed one): their views list one resource of each type written
IMPORTS = frozenset({"hl7v2-receive", "replay"})


def view_id(record_id: str, patient_id: str | None) -> str:
    if patient_id is None:
        return record_id
    return f"{record_id}-{hashlib.sha256(patient_id.encode()).hexdigest()[:12]}"


def patients_named(record: dict[str, Any]) -> list[str]:
    """The patients a record names (entities with role Patient), in order."""
    out = []
    for entity in record.get("entity") or ():
        ref = (entity.get("what") or {}).get("reference") or ""
        if (entity.get("role") or {}).get("code") == "1" and ref.startswith("Patient/"):
            out.append(ref.split("/", 1)[1])
    return list(dict.fromkeys(out))


def query_shape(query_b64: str) -> str:
    """``Type?param&param`` of a recorded search: its resource type and parameter names only."""
    try:
        text = base64.b64decode(query_b64).decode("utf-8", "replace")
    except ValueError:
        return "search"
    path, _, qs = text.partition("?") if "?" in text or "=" not in text else ("", "", text)
    names = sorted({k for k, _ in parse_qsl(qs, keep_blank_values=True)})
    rtype = path.split("/")[0] if path and path.split("/")[0][:1].isupper() else ""
    return (rtype or "search") + ("?" + "&".join(names) if names else "")


def _lean(value: Any) -> Any:
    """The value without ``display`` texts: the view carries codes (a page words them itself),
    and every display would be one more search-index row per view."""
    if isinstance(value, dict):
        return {k: _lean(v) for k, v in value.items() if k != "display"}
    if isinstance(value, list):
        return [_lean(v) for v in value]
    return value


def _agents(record: dict[str, Any], own: bool) -> list[dict[str, Any]]:
    """Who asked (the requestor and the app a person used), without their network address; the
    server's own agent (huren, the same in every record) stays in the log. A resident who is not
    this view's patient is shown as "another resident", without their identity: a resident's id can
    carry their Patient id, and their attempt is this patient's business, their name is not."""
    out = []
    for agent in record.get("agent") or ():
        ident = (agent.get("who") or {}).get("identifier") or {}
        if not agent.get("requestor") and ident.get("system") == NODE_SYSTEM:
            continue
        shown = _lean({k: v for k, v in agent.items() if k != "network"})
        if ident.get("system") == STAFF_SYSTEM and (agent.get("who") or {}).get("display"):
            # a signed-in health worker's display is her name, not a code's wording: the resident is
            # owed who read their record, and her login id alone does not say it
            shown["who"] = {**shown["who"], "display": agent["who"]["display"]}
        if ident.get("system") in (RESIDENT_SYSTEM, FAMILY_SYSTEM) and not own:
            # (a family member acting for someone else is, here, just another resident: neither who
            # they are nor whose consent let them belongs in this patient's view)
            shown = {k: v for k, v in shown.items() if k != "policy"}
            shown["who"] = dict(OTHER_RESIDENT)
        out.append(shown)
    return out


def views_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The FHIR AuditEvents that show ``record`` (a signed log record with its ``id``)."""
    base: dict[str, Any] = {"resourceType": "AuditEvent"}
    for key in ("type", "subtype", "action", "period", "recorded", "outcome", "outcomeDesc", "purposeOfEvent"):
        if key in record:
            base[key] = _lean(record[key])
    base["source"] = {"observer": {"display": "huren"}}  # required; the node itself is in the log
    entities = record.get("entity") or []
    shared: list[dict[str, Any]] = []  # query shape and interaction details: in every view
    resources: list[tuple[dict[str, Any], set[str]]] = []  # resource entity, its patients
    for entity in entities:
        role = (entity.get("role") or {}).get("code")
        if role == "1":
            continue
        if role == QUERY_ROLE:
            shared.append({"role": ROLE_QUERY, "description": query_shape(entity.get("query") or "")})
        elif "what" in entity:
            owners = {d.get("valueString", "").removeprefix("Patient/") for d in entity.get("detail") or ()
                      if d.get("type") == OWNER_DETAIL}
            resources.append(({"what": entity["what"], "role": ROLE_RESOURCE}, owners))
    details = [d for e in entities if "what" not in e and (e.get("role") or {}).get("code") != QUERY_ROLE
               for d in e.get("detail") or () if d.get("type") in VIEW_DETAILS]
    details.append({"type": RECORD_DETAIL, "valueString": record["id"]})
    shared.append({"detail": details})
    patients = patients_named(record)
    if not patients:
        return [{**base, "id": view_id(record["id"], None), "agent": _agents(record, own=False),
                 "entity": [e for e, owners in resources if not owners] + shared}]
    own = {ref.split("/", 1)[1] for e in entities
           if SELF_DETAIL in (e.get("detail") or ()) or ACTING_DETAIL in (e.get("detail") or ())
           for ref in [(e.get("what") or {}).get("reference") or ""] if ref.startswith("Patient/")}
    imported = any(c.get("code") in IMPORTS for c in record.get("subtype") or ())
    views = []
    for pid in patients:
        mine = [e for e, owners in resources if pid in owners]
        if imported:  # one of each type: what kind of records arrived (the log lists every one)
            mine = list({e["what"]["reference"].split("/", 1)[0]: e for e in reversed(mine)}.values())[::-1]
        patient = {"what": {"reference": f"Patient/{pid}"}, "role": ROLE_PATIENT}
        views.append({**base, "id": view_id(record["id"], pid), "agent": _agents(record, own=pid in own),
                      "entity": [patient, *mine, *shared]})
    return views
