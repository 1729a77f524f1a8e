"""MSH-11 (processing type): whether this node takes a message, read as chapter 2's original acknowledgment
rules read it (twenty-ninth round, hl7mode29).

v2.5.1 2.9.2.1: on receipt the responder checks that MSH-9, MSH-12 and MSH-11 are ones it accepts, and
rejects the message otherwise (``AR``; HL7 table 0357 code 202 "Unsupported processing id"). huren stored
``T`` (training) and ``D`` (debugging) messages in the production repository like ``P``: they counted for
mutual recognition and payment flags and showed in residents' records. Now:

* MSH-11.1 (HL7 table 0103, read in upper case as every ID field here) must be one the node accepts:
  ``HUREN_PROCESSING_IDS`` (``Settings.accepted_processing_ids``), ``P`` by default. Else ``AR`` 202 at
  ``MSH^1^11``, the raw message kept in the quarantine for replay, nothing converted.
* A sender the site declares in ``senders.yaml`` ``production_marked_training`` (institution -> its
  sending applications, MSH-3.1, or ``"*"``) marks its production traffic ``T``, a known misconfiguration
  of real HIS (39 public samples here send ``T``): its ``T`` is read as ``P``, and the ACK and the stored
  message record say so (ERR severity I, code 202, at ``MSH^1^11``).
* MSH-11 empty (required by every version): read as ``P``, the sender told (W 101 at ``MSH^1^11``), as
  an empty MSH-7 is; it names no other processing type.
* MSH-11.2 processing mode (HL7 table 0207 of the message's version: ``A`` archive, ``R`` restore from
  archive, ``I`` initial load, ``T`` current processing, empty: current processing) does not change how
  a message is stored; a mode outside the table is ``AR`` 202 at ``MSH^1^11^^2``. ``P^T`` is production
  in current processing, never training: the mode is read apart from the ID.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from adapters.hl7v2.errors import REQUIRED_FIELD_MISSING, UNSUPPORTED_PROCESSING_ID, HL7Error
from adapters.hl7v2.tables import table_values

PRODUCTION = "P"
TRAINING = "T"
NAMES = {"P": "production", "T": "training", "D": "debugging"}
DECLARATION = "production_marked_training"  # the senders.yaml key


@dataclass
class Processing:
    """How MSH-11 was read: the ID as sent (upper case), the one the node takes it as, the mode, and the
    refusals (AR) and notes (warnings, information) for the ACK."""

    sent: str = ""
    read_as: str = PRODUCTION
    mode: str = ""
    refusals: list[HL7Error] = field(default_factory=list)
    notes: list[HL7Error] = field(default_factory=list)


def sent_id(processing_id: str, component_sep: str) -> str:
    """MSH-11.1 as sent, read in upper case (``T^A`` -> ``T``): the id judged, and recorded on the stored
    message (``engine.messages`` ``processing_id``)."""
    if processing_id == PRODUCTION:
        return PRODUCTION
    head = processing_id.split(component_sep, 1)[0] if component_sep else processing_id
    return head.strip().upper()


# MSH-11 ``P`` on a production node: read as sent, nothing to say (never changed: its lists are tuples)
_PLAIN = Processing(sent=PRODUCTION, refusals=(), notes=())  # type: ignore[arg-type]


def kept_accepted(judged: Processing, accepted: Collection[str]) -> Processing:
    """``judged`` for a message the repository already holds as clinical data, accepted under the policy
    of its day (before MSH-11 was judged, or before ``HUREN_PROCESSING_IDS`` or a ``senders.yaml``
    declaration changed): replayed, it keeps that acceptance, each refusal of its MSH-11 said as
    information (ERR I) -- it would now be refused. Refused on replay, the message record turned
    quarantined ("not stored as clinical data") while its Patient and Encounter stayed in the
    repository, still counted, and an identical resend answered AA before was answered AR
    (rvhl7mode29 finding 1). Nothing stored is removed or hidden here: an operator finds such
    messages by their processing id (``engine.messages``, ``GET /admin/messages?processing_id=T``)."""
    if not judged.refusals:
        return judged
    notes = [*judged.notes, *(HL7Error(
        f"{e.message.replace('; not stored as clinical data, kept for the operator', '')}: it would now be "
        "refused; kept as accepted, this message was stored as clinical data before", segment=e.segment,
        sequence=e.sequence, field=e.field, component=e.component, code=e.code, severity="I", ack_code="AA")
        for e in judged.refusals)]
    return Processing(sent=judged.sent, read_as=judged.read_as, mode=judged.mode, notes=notes)


def parse_ids(text: str | Collection[str]) -> frozenset[str]:
    """``HUREN_PROCESSING_IDS`` ("P", "P,T", "T"; in a TOML file also a list, ``["P", "T"]``): the processing
    IDs a node accepts. A value outside HL7 table 0103 stops the start (ValueError): a node told to accept
    ``X`` accepts nothing a sender sends."""
    if not isinstance(text, str):
        text = ",".join(map(str, text))
    ids = frozenset(part.strip().upper() for part in text.replace(";", ",").replace(" ", ",").split(",")
                    if part.strip())
    unknown = sorted(ids - set(NAMES))
    if not ids or unknown:
        raise ValueError(f"HUREN_PROCESSING_IDS {text!r}: list processing IDs of HL7 table 0103 (P production, "
                         f"T training, D debugging){'; not ' + ', '.join(unknown) if unknown else ''}")
    return ids


def declared_training(site: Any, institution: str, application: str) -> bool:
    """Whether the site declares that ``institution``'s ``application`` (MSH-3.1) marks production
    traffic ``T`` (``senders.yaml`` ``production_marked_training``: code -> list of applications or "*")."""
    table = (getattr(site, "tables", None) or {}).get("senders") or {}
    entry = (table.get(DECLARATION) or {}).get(institution)
    if entry is None:
        return False
    if isinstance(entry, str):
        return entry.strip() == "*" or entry.strip() == application.strip()
    return any(str(a).strip() in ("*", application.strip()) for a in entry)


def judge(processing_id: str, component_sep: str, version: str, institution: str, application: str,
          site: Any, accepted: Collection[str]) -> Processing:
    """MSH-11 as sent (``processing_id``, in the sender's delimiters) judged for this node. A plain ``P`` on a
    node taking ``P`` (nearly every message) is answered by one shared, empty ``Processing`` with no work
    (rvhl7mode29 finding 8: ~1.5 us a message spent on lists and a joined text never shown)."""
    if processing_id == PRODUCTION and PRODUCTION in accepted:
        return _PLAIN
    parts = processing_id.split(component_sep) if component_sep else [processing_id]
    sent = parts[0].strip().upper()
    mode = parts[1].strip().upper() if len(parts) > 1 else ""
    out = Processing(sent=sent, mode=mode)
    if not sent:
        out.notes.append(HL7Error(
            "MSH-11 (processing id) is required and empty; read as P (production)", segment="MSH", sequence=1,
            field=11, code=REQUIRED_FIELD_MISSING, severity="W", ack_code="AA"))
    elif sent == TRAINING and PRODUCTION in accepted and TRAINING not in accepted \
            and declared_training(site, institution, application):
        out.notes.append(HL7Error(
            f"processing id 'T' (training) read as P (production): the site declares that {institution}"
            f"{'/' + application if application else ''} marks its production messages T (senders.yaml "
            f"{DECLARATION})", segment="MSH", sequence=1, field=11, code=UNSUPPORTED_PROCESSING_ID,
            severity="I", ack_code="AA"))
    else:
        out.read_as = sent
    if out.read_as not in accepted:
        name = NAMES.get(out.read_as)
        what = f"{out.read_as!r} ({name})" if name else f"{out.read_as!r} (not one of HL7 table 0103)"
        out.refusals.append(HL7Error(
            f"processing id {what} is not accepted by this node (it accepts {', '.join(sorted(accepted))}); not stored as "
            "clinical data, kept for the operator", segment="MSH", sequence=1, field=11,
            code=UNSUPPORTED_PROCESSING_ID, ack_code="AR"))
    if mode and mode not in table_values(version or "2.5.1", "0207")[0]:
        out.refusals.append(HL7Error(
            f"processing mode {mode!r} (MSH-11.2) is not one of HL7 table 0207 (A archive, R restore from "
            "archive, I initial load, T current processing, empty)", segment="MSH", sequence=1, field=11,
            component=2, code=UNSUPPORTED_PROCESSING_ID, ack_code="AR"))
    return out
