"""HL7 v2 → FHIR R4 conversion: ``convert(message, site) -> Conversion``.

Routing by MSH-9 to a message template (``mappings/hl7v2/messages/<STRUCTURE>.yaml``, run by
``templates``): the template names the message's segment groups and the resources each makes, or
hands the message to a named handler (``builders``: the ORC/OBR/OBX result families, where an
ORU^R01 or ORM^O01 goes to PACS when it carries imaging content, else to the LIS). The output is one FHIR ``transaction`` Bundle of PUTs at
deterministic ids plus a Provenance naming the source message; problems that do not stop the
conversion are ``warnings`` (HL7Error, severity W); codes and segments with no mapping are listed
in ``unmapped`` for the fidelity report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from adapters.convert import (
    builders,  # noqa: F401  (registers the builders templates name)
    common,
    templates,
)
from adapters.convert.context import Context
from adapters.hl7v2.errors import (
    DATA_TYPE_ERROR,
    REQUIRED_FIELD_MISSING,
    TABLE_VALUE_NOT_FOUND,
    UNSUPPORTED_EVENT_CODE,
    UNSUPPORTED_MESSAGE_TYPE,
    HL7Error,
)
from adapters.hl7v2.parser import Message, encoding_repaired
from adapters.hl7v2.senders import sender_institution
from engine.merge_rules import Said
from mappings.site import Site

__all__ = ["Conversion", "convert", "template_for"]


@dataclass
class Conversion:
    """What ``convert`` made of one message: its resources (``by_reference``, "Type/id" ->
    resource, in the order of the transaction Bundle), the institution, warnings and gaps.

    The Bundle itself is built when first asked for (``bundle``): ingest writes the resources
    and never reads the Bundle, which cost ~8 us a 12-result message to build (an entry, a
    request and a fullUrl check per resource); a replay, the CLI and the tests read it as before."""

    by_reference: dict[str, dict[str, Any]]
    institution: str
    warnings: list[HL7Error] = field(default_factory=list)
    unmapped: list[dict[str, str]] = field(default_factory=list)
    # "Type/id" of the Patient/Encounter a LIS/PACS message carries only so its bundle stands
    # alone: the ADT feed owns them, so a writer should create them when absent and otherwise
    # leave the stored (richer) version alone
    create_only: list[str] = field(default_factory=list)
    # "Type/id" → how a resource was built from a compiled plan (``plans.Planned``): validation then
    # checks only what varies between the resources of that plan
    planned: dict[str, Any] = field(default_factory=dict)
    # "Type/id" -> what the message said of the resource beside its content (``engine.merge_rules.Said``:
    # its deletes with HL7's explicit null ``""``, the elements the converter only assumed -- an
    # A08's Encounter status --, the fields that stated an element), for the merge rules
    # (``MergeRules.saying``)
    said: dict[str, Said] = field(default_factory=dict)
    # "Type/id" -> the "Type/id" the resource had before its key changed (``Context.formerly``): see ``resolve``
    formerly: dict[str, str] = field(default_factory=dict)
    _bundle: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def resolve(self, read_many: Callable[[list[tuple[str, str]]], Mapping[tuple[str, str], Any]]) -> None:
        """Write each resource with a former id (``formerly``) at that id when the store holds it and not the
        new one: an Appointment booked before the twenty-fifth round, keyed then by SCH-2's value under its
        patient, is updated where it is (a re-sent S13 of it is no second booking). ``read_many``: the
        repository's (one call for the message). The resource, its references in the message's others (the
        Provenance's target), and what is said of it, by reference, are renamed."""
        pairs = [(new, old) for new, old in self.formerly.items() if new in self.by_reference and new != old]
        if not pairs:
            return
        keys = [tuple(ref.split("/", 1)) for pair in pairs for ref in pair]
        found = read_many(keys)  # type: ignore[arg-type]
        renamed = {new: old for new, old in pairs
                   if tuple(new.split("/", 1)) not in found and tuple(old.split("/", 1)) in found}
        if not renamed:
            return
        self.by_reference = {renamed.get(ref, ref): r for ref, r in self.by_reference.items()}
        for old in renamed.values():
            self.by_reference[old]["id"] = old.split("/", 1)[1]
        for r in self.by_reference.values():
            _rename_references(r, renamed)
        self.create_only = [renamed.get(ref, ref) for ref in self.create_only]
        self.planned = {renamed.get(ref, ref): p for ref, p in self.planned.items()}
        self.said = {renamed.get(ref, ref): s for ref, s in self.said.items()}
        self._bundle = None

    @property
    def bundle(self) -> dict[str, Any]:
        """The FHIR ``transaction`` Bundle of PUTs (built once, on first use)."""
        if self._bundle is None:
            self._bundle = common.bundle(self.by_reference)
        return self._bundle

    @property
    def resources(self) -> list[dict[str, Any]]:
        """The resources in the Bundle's order (read from the Bundle once it was built: a caller
        may have changed it)."""
        if self._bundle is not None:
            return [e["resource"] for e in self._bundle["entry"]]
        return list(self.by_reference.values())


def _rename_references(value: Any, renamed: Mapping[str, str]) -> None:
    """Each ``{"reference": "Type/id"}`` inside ``value`` naming a key of ``renamed`` made to name its value."""
    if isinstance(value, dict):
        ref = value.get("reference")
        if isinstance(ref, str) and ref in renamed:
            value["reference"] = renamed[ref]
        for v in value.values():
            if isinstance(v, (dict, list)):
                _rename_references(v, renamed)
    elif isinstance(value, list):
        for v in value:
            if isinstance(v, (dict, list)):
                _rename_references(v, renamed)


def template_for(ctx: Context) -> dict[str, Any]:
    """The message template (``mappings/hl7v2/messages/``) for MSH-9: an event's own template
    (``ADT_A41``) when its meaning differs from its structure's, else the structure's, the
    structure found through table 0354 (``event_structures.yaml``) or MSH-9.3."""
    msh = ctx.message.msh
    mtype, event = msh.message_type, msh.trigger_event
    tables = ctx.site.tables
    spec = tables.get(f"messages/{mtype}_{event}") if event else None
    if spec is None:
        structure = (tables.get("event_structures") or {}).get(f"{mtype}_{event}") or msh.value(9, comp=3)
        spec = tables.get(f"messages/{structure}") if structure else None
    if spec is not None and event and spec.get("events") and event not in spec["events"]:
        spec = None
    if spec is not None:
        return spec
    types = sorted({k.split("/", 1)[1].split("_", 1)[0] for k in tables if k.startswith("messages/")})
    if mtype in types:
        raise _unsupported_event(msh, event)
    raise HL7Error(
        f"message type {mtype} is not converted by huren (supported: {', '.join(types)})",
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


def convert(message: Message, site: Site, institution: str | None = None, application: str = "") -> Conversion:
    """Convert one parsed message for the institution that sent it: ``institution`` when the
    caller resolved it (from the listener too), else MSH-4.1 through the site's sender table.
    ``application``: MSH-3.1 when another application of the institution sent this MSH-10 first
    (``Context.message_key``). Raises ``HL7Error``."""
    msh = message.msh
    code = institution if institution is not None else sender_institution(
        msh.sending_facility or msh.value(4, comp=2), msh.sending_application, "", site
    )
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
    ctx = Context(message=message, site=site, institution=institution, application=application)
    if encoding_repaired(msh):
        ctx.warn(HL7Error(f"MSH-2 {msh.field(2)!r} doubles the escape character; read as {msh.enc.msh2!r}",
                          segment="MSH", sequence=1, field=2, code=DATA_TYPE_ERROR))
    if message.derived_control_id:
        ctx.warn(HL7Error(f"MSH-10 (message control id) is empty; the message is known by its content "
                          f"as {msh.control_id} (an identical resend is recognised)",
                          segment="MSH", sequence=1, field=10, code=REQUIRED_FIELD_MISSING))
    spec = template_for(ctx)
    ctx.states_active = bool(spec.get("states_active"))
    templates.convert(ctx, spec)
    common.provenance(ctx)
    return Conversion(
        by_reference=ctx.resources,
        institution=code,
        warnings=ctx.warnings,
        unmapped=ctx.unmapped,
        create_only=ctx.create_only,
        planned=ctx.planned,
        said=ctx.said(),
        formerly=ctx.formerly,
    )
