"""The FHIR view of the audit log: per-patient AuditEvents derived from the signed records.

The signed log keeps one complete record per interaction for auditors: a hospital's search that
returned ten patients names all ten, and its query (which may carry another person's name or ID
number) is kept byte for byte. Those records must never reach a patient's compartment as they
are, or resident A would read B's Patient id and B's query. So the FHIR repository holds a
*view*, as the IHE Basic Audit Log Patterns (BALP) shape patient audit events: one AuditEvent per
patient touched, naming only that patient, with

- the interaction (type, subtype, action), when, outcome, who asked (agents) and the source;
- the patient, and only the resources whose own fields say they are that patient's;
- for a search, the resource type and parameter names but no values (``Observation?code&date``,
  in ``entity.description``): a value can name someone else, so the base64 query stays in the log;
- a few details that describe the interaction itself (operation, channel, message type), and
  ``audit-record``: the id of the signed record, for an auditor to take it from there.

A record that touches no patient (a token issued, a report viewed) gets one view with the same
redactions. View ids are ``audit-<seq>-<hash of the patient id>`` (``audit-<seq>`` for a record
without patients): stable, so a view is written once, and telling nothing about how many other
patients the interaction touched.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import parse_qsl

from engine.audit.events import OBJECT_ROLE, OWNER_DETAIL, QUERY_ROLE

# details that describe the interaction, not the people in it; everything else stays in the log
VIEW_DETAILS = frozenset({"operation", "channel", "message-type", "grant_type"})
RECORD_DETAIL = "audit-record"
_TOP = ("type", "subtype", "action", "period", "recorded", "outcome", "outcomeDesc", "purposeOfEvent",
        "agent", "source")


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


def views_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The FHIR AuditEvents that show ``record`` (a signed log record with its ``id``)."""
    base = {"resourceType": "AuditEvent", **{k: record[k] for k in _TOP if k in record}}
    entities = record.get("entity") or []
    shared: list[dict[str, Any]] = []  # query shape and interaction details: in every view
    resources: list[tuple[dict[str, Any], set[str]]] = []  # resource entity, its patients
    for entity in entities:
        role = (entity.get("role") or {}).get("code")
        if role == "1":
            continue
        if role == QUERY_ROLE:
            shared.append({k: v for k, v in entity.items() if k not in ("query", "description", "detail", "name")}
                          | {"description": query_shape(entity.get("query") or "")})
        elif "what" in entity:
            owners = {d.get("valueString", "").removeprefix("Patient/") for d in entity.get("detail") or ()
                      if d.get("type") == OWNER_DETAIL}
            resources.append(({k: v for k, v in entity.items() if k != "detail"}, owners))
    details = [d for e in entities if "what" not in e and (e.get("role") or {}).get("code") != QUERY_ROLE
               for d in e.get("detail") or () if d.get("type") in VIEW_DETAILS]
    details.append({"type": RECORD_DETAIL, "valueString": record["id"]})
    shared.append({"type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "4",
                            "display": "Other"}, "detail": details})
    patients = patients_named(record)
    if not patients:
        return [{**base, "id": view_id(record["id"], None),
                 "entity": [e for e, owners in resources if not owners] + shared}]
    views = []
    for pid in patients:
        mine = [e for e, owners in resources if pid in owners]
        patient = {"what": {"reference": f"Patient/{pid}"},
                   "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1",
                            "display": "Person"},
                   "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"}}
        views.append({**base, "id": view_id(record["id"], pid), "entity": [patient, *mine, *shared]})
    return views
