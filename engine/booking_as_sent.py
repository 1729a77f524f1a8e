"""Once per store: the SCH-2 as-sent copies an earlier release kept under every hospital's ``urn:huren:id:<HD-1>``
put under their sender's ``urn:huren:id:<MSH-4>:<HD-1>``, the system the README documents.

Why (review rv38f LOW; thirty-ninth round, ord39): codedoc38 moved the copy a booking keeps of SCH-2 as sent
(``BK-1^HIS``) from ``urn:huren:id:HIS`` -- every hospital's HIS, so two institutions' equal numbers met in one
search -- to the sending institution's system. A booking stored before kept the old form until its next
message, so a client that switched to the documented system got an empty Bundle for every older booking. Two
ways were weighed. An alias in the search (the new system also finding the old form) cannot keep to the
institution's own bookings by a token alone -- the old form is every hospital's HIS, the wrong answer codedoc38
removed -- and would stay in every search for good. This pass moves each old copy once, to the system its own
booking's key names (``builders.as_sent_upgraded``: the FILL identifier ``urn:huren:appointment:<MSH-4>:<HD-1>``
of the same value), as ``ResultLabels.backfill`` and ``DeletedLabels.backfill`` bring an older store up: one
new version of each such booking (few: the copies old37 wrote before codedoc38), its other content as stored,
written as a FHIR client's would be (``source`` api: the merge rules store it as given; no message stated it, so
a later message's time is compared with the one before it, ``MergeRules._carried``). A new store writes the
marker alone (``is_new_store``); a second process doing it at once writes the same systems (no new version:
unchanged content makes none).
"""

from __future__ import annotations

import logging
from typing import Any

from adapters.convert.builders import AS_SENT_MARK, as_sent_upgraded
from engine import fhirjson
from engine.merge_rules import API
from engine.repository.fhir import FhirRepository
from engine.repository.port import is_new_store

log = logging.getLogger(__name__)

MARKER_COLLECTION = "booking_as_sent"
_DONE = "-backfilled"
_AT_ONCE = 1000  # bookings read in one page of the pass


def backfill(repo: FhirRepository) -> int:
    """Move the older as-sent copies (see the module's docstring), once per store: the number of bookings
    written. The stored Appointments are read a page at a time as bytes, and parsed only when they hold a copy
    (``AS_SENT_MARK``); the writes follow the reading, so no page shifts under it."""
    coll = repo.store.collection(MARKER_COLLECTION)
    if coll.get(_DONE) is not None:
        return 0
    if is_new_store(repo.store):  # nothing an earlier release stored: the marker alone
        coll.replace({"_id": _DONE, "written": 0})
        return 0
    moved: list[dict[str, Any]] = []
    done = 0
    while True:
        query = repo.parser.parse("Appointment", []).query
        query.limit, query.offset = _AT_ONCE, done
        recs = repo.backend.search(query)
        for rec in recs:
            if rec.body is not None and AS_SENT_MARK in rec.body:
                booking = fhirjson.loads(rec.body)
                identifiers = as_sent_upgraded(booking.get("identifier"))
                if identifiers is not None:
                    booking["identifier"] = identifiers  # (its labels and tags kept: the whole version as stored)
                    moved.append(booking)
        done += len(recs)
        if len(recs) < _AT_ONCE:
            break
    with repo.store.transaction():
        for booking in moved:
            repo.update(booking, source=API)
        coll.replace({"_id": _DONE, "written": len(moved)})
    if moved:
        log.info("SCH-2 as sent: %d older bookings' copies moved under their senders' systems", len(moved))
    return len(moved)
