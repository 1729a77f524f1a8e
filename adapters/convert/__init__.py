"""HL7 v2 → FHIR R4 conversion: ``convert(message, site) -> Conversion``.

Routing by MSH-9: HIS ADT events (``his``), LIS results and orders (``lis``), PACS orders,
imaging reports and documents (``pacs``). An ORU^R01 or ORM^O01 goes to PACS when it carries
imaging content (ZDS/IPC segments, an imaging diagnostic service section in OBR-24, or a study
UID in an OBX), else to the LIS. The output is one FHIR ``transaction`` Bundle of PUTs at
deterministic ids plus a Provenance naming the source message; problems that do not stop the
conversion are ``warnings`` (HL7Error, severity W); codes and segments with no mapping are listed
in ``unmapped`` for the fidelity report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from adapters.convert import common, his, lis, pacs
from adapters.convert.context import Context
from adapters.hl7v2.errors import (
    TABLE_VALUE_NOT_FOUND,
    UNSUPPORTED_EVENT_CODE,
    UNSUPPORTED_MESSAGE_TYPE,
    HL7Error,
)
from adapters.hl7v2.parser import Message
from mappings.site import Site

__all__ = ["Conversion", "convert"]


@dataclass
class Conversion:
    bundle: dict[str, Any]
    institution: str
    warnings: list[HL7Error] = field(default_factory=list)
    unmapped: list[dict[str, str]] = field(default_factory=list)
    # "Type/id" of the Patient/Encounter a LIS/PACS message carries only so its bundle stands
    # alone: the ADT feed owns them, so a writer should create them when absent and otherwise
    # leave the stored (richer) version alone
    create_only: list[str] = field(default_factory=list)

    @property
    def resources(self) -> list[dict[str, Any]]:
        return [e["resource"] for e in self.bundle["entry"]]


def _route(ctx: Context) -> Callable[[Context], None]:
    msh = ctx.message.msh
    mtype, event = msh.message_type, msh.trigger_event
    if mtype == "ADT":
        if event in his.ADT_EVENTS:
            return his.convert_adt
        if event in his.MERGE_EVENTS:
            return his.convert_merge
        raise _unsupported_event(msh, event)
    if mtype == "ORU":
        if event != "R01":
            raise _unsupported_event(msh, event)
        return pacs.convert_imaging_report if pacs.is_imaging(ctx) else lis.convert_lab
    if mtype == "ORM":
        if event != "O01":
            raise _unsupported_event(msh, event)
        return pacs.convert_imaging_order if pacs.is_imaging(ctx) else lis.convert_lab
    if (mtype, event) in (("OUL", "R22"), ("OML", "O21")):
        return lis.convert_lab
    if (mtype, event) == ("OMG", "O19"):
        return pacs.convert_imaging_order
    if mtype == "MDM":
        if event in ("T01", "T02", "T03", "T04", "T05", "T06", "T07", "T08", "T09", "T10", "T11"):
            return pacs.convert_document
        raise _unsupported_event(msh, event)
    if mtype in ("OUL", "OML", "OMG"):
        raise _unsupported_event(msh, event)
    raise HL7Error(
        f"message type {mtype} is not converted by huren (supported: ADT, ORU, ORM, OUL, OML, OMG, MDM)",
        segment="MSH",
        sequence=1,
        field=9,
        component=1,
        code=UNSUPPORTED_MESSAGE_TYPE,
        ack_code="AR",
    )


def _unsupported_event(msh: Any, event: str) -> HL7Error:
    return HL7Error(
        f"trigger event {msh.message_type}^{event} is not converted by huren",
        segment="MSH",
        sequence=1,
        field=9,
        component=2,
        code=UNSUPPORTED_EVENT_CODE,
        ack_code="AR",
    )


def convert(message: Message, site: Site) -> Conversion:
    """Convert one parsed message for the institution named in MSH-4.1. Raises ``HL7Error``."""
    msh = message.msh
    code = msh.sending_facility.strip()
    institution = site.institution(code)
    if institution is None:
        raise HL7Error(
            f"sending facility {code!r} (MSH-4.1) is not a registered institution",
            segment="MSH",
            sequence=1,
            field=4,
            component=1,
            code=TABLE_VALUE_NOT_FOUND,
            ack_code="AR",
        )
    ctx = Context(message=message, site=site, institution=institution)
    _route(ctx)(ctx)
    common.provenance(ctx)
    return Conversion(
        bundle=common.bundle(ctx),
        institution=code,
        warnings=ctx.warnings,
        unmapped=ctx.unmapped,
        create_only=ctx.create_only,
    )
