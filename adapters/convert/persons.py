"""The guard of a message's patient against the record its PID resolved to.

The converter keys a Patient by what PID-3 says (``common.patient_key``); whether the record under
that key is the same person is known only from the store. A message whose PID resolves to a stored
record whose name, sex AND birth date all contradict its own (``demographics.contradicts_all``)
names another person under that record's number -- a record number the HIS gave two people, a
sender's number misread as the institution's -- and its results, orders or visits would be filed
under the stored person, answered AA (lead, thirty-first round). So it is refused: AE, ERR at the
PID's PID-3 (the identifier that resolved to the record), nothing written, the raw message kept for
replay once the sender or an operator has put the identity right.

Not asked of the events that correct the person (``Context.persons``, ``common.patient``): ADT A08
(update patient information) and A31 (update person information), v2.5.1 3.3.8 / 3.3.31, are the
registration system restating who its record's person is -- how a wrong registration is corrected
(the record's own sender: keys are per sending institution, so no other institution's message
resolves to this record). Any other event (an A01 or A04 registering a visit, a lab result) only
names the person: it is held against the record."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.hl7v2.errors import DUPLICATE_KEY_IDENTIFIER, HL7Error
from engine.identity.demographics import contradicts_all


def check_persons(conversion: Any, read_many: Any, earlier: Sequence[Any] = ()) -> list[int]:
    """Refuse (``HL7Error``) a conversion whose PID's Patient (``conversion.persons``: reference ->
    PID's sequence) resolves to a record of another person: the version an earlier message of the
    batch will write (not written yet), else the stored one. Returns the positions in ``earlier``
    the answer read (their Patients were compared; the error's ``leaned_on`` too)."""
    leaned: list[int] = []
    unread: list[tuple[str, int]] = []
    for ref, sequence in conversion.persons.items():
        at = _earlier_version(ref, earlier)
        if at is None:
            unread.append((ref, sequence))
            continue
        leaned.append(at)
        _check(conversion.by_reference[ref], earlier[at].by_reference[ref], sequence, [at])
    if unread:
        stored = read_many([tuple(ref.split("/", 1)) for ref, _ in unread])
        for ref, sequence in unread:
            was = stored.get(tuple(ref.split("/", 1)))
            if was is not None:
                _check(conversion.by_reference[ref], was, sequence, [])
    return leaned


def _earlier_version(ref: str, earlier: Sequence[Any]) -> int | None:
    """The position of the last earlier conversion of the batch that writes ``ref`` as it states it
    (not one it writes only when absent: the stored version, if any, stands then)."""
    for at in range(len(earlier) - 1, -1, -1):
        conversion = earlier[at]
        if ref in conversion.by_reference and ref not in conversion.create_only:
            return at
    return None


def _check(incoming: dict[str, Any], stored: dict[str, Any], sequence: int, leaned: list[int]) -> None:
    if not contradicts_all(stored, incoming):
        return
    # the stored person's particulars are not echoed: the ACK goes back to the sender, and the record
    # is not the sender's patient's
    error = HL7Error(
        "PID-3 names the record of another person: the stored record's name, sex and birth date all differ "
        "from this PID's (PID-5, PID-8, PID-7); nothing of the message is filed under it. If the number is "
        "this patient's, correct the record first (ADT^A08/A31) and send the message again; if it is another "
        "system's number, send its assigning authority (PID-3.4)",
        segment="PID", sequence=sequence, field=3, code=DUPLICATE_KEY_IDENTIFIER)
    if leaned:
        error.leaned_on = leaned  # type: ignore[attr-defined]
    raise error
