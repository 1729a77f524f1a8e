"""Enhanced-mode acknowledgement rules (HL7 v2 chapter 2, MSH-15 / MSH-16, table 0155).

In enhanced mode the receiver answers a message twice: an **accept ACK** (MSA-1 CA commit
accept, CE commit error, CR commit reject) once the message is safely stored, then an
**application ACK** (AA / AE / AR), a new ACK message, once it has been processed. MSH-15 says
when the sender wants the accept ACK and MSH-16 when it wants the application ACK:

* ``AL`` always, ``NE`` never, ``ER`` only on an error or rejection, ``SU`` only on success.

Both fields empty means original mode (one AA/AE/AR). Many senders fill AL/NE there by habit and
expect original mode all the same, so enhanced mode is used only for the senders a site opts in
(``enhanced_acknowledgement`` in ``mappings/hl7v2/senders.yaml``). Within enhanced mode an empty
field asks for nothing (as NE) and a value outside table 0155 is taken as AL: an answer the
sender did not need costs less than one it waits for in vain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adapters.hl7v2.header import Header

CONDITIONS = ("AL", "NE", "ER", "SU")  # HL7 table 0155
SUCCESS = ("CA", "AA")
# What our application ACK asks in turn: nothing (an acknowledgement is never acknowledged).
APPLICATION_ACK_TYPES = ("NE", "NE")


@dataclass(frozen=True)
class AckRequest:
    """MSH-15 (accept ACK condition) and MSH-16 (application ACK condition), normalised."""

    accept: str
    application: str


def _condition(value: str) -> str:
    value = value.strip().upper()
    if not value:
        return "NE"
    return value if value in CONDITIONS else "AL"


def enhanced_senders(site: Any) -> frozenset[str]:
    """Institution codes the site has opted in to enhanced mode (``senders.yaml``)."""
    table = (getattr(site, "tables", None) or {}).get("senders") or {}
    return frozenset(str(code) for code in table.get("enhanced_acknowledgement") or ())


def requested(header: Header, site: Any) -> AckRequest | None:
    """The enhanced-mode request of a message, or None for original mode: the sender is not
    opted in, or MSH-15 and MSH-16 are both empty."""
    if not (header.accept_ack_type or header.application_ack_type):
        return None
    if header.facility_code not in enhanced_senders(site):
        return None
    return AckRequest(_condition(header.accept_ack_type), _condition(header.application_ack_type))


def wanted(condition: str, code: str) -> bool:
    """Whether an acknowledgement with MSA-1 ``code`` is sent under ``condition`` (table 0155)."""
    if condition == "AL":
        return True
    if condition == "ER":
        return code not in SUCCESS
    if condition == "SU":
        return code in SUCCESS
    return False
