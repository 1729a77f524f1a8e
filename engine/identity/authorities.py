"""Which assigning authorities (CX-4) the kept messages write on their record numbers, and how this
release reads each: ``huren identity authorities``.

Why: from the thirty-second round a PID-3 / MRG-1 record number whose CX-4 names neither the sending
institution nor one of the site's institutions is another system's number, keyed apart from the
institution's MRN (``adapters.convert.common.authority_of``; IHE PIX keys a number by its authority).
A site whose HIS has always written its own application name, an OID or "MRN" in CX-4 had those
numbers stored as the institution's MRN (the earlier converter dropped CX-4): after the upgrade every
returning patient's next message would key a second record (rvidentity32 finding 1). The raw messages
are kept, so the names are found exactly, before the upgrade: each (institution, sending application,
CX-4) with its count and its reading now -- ``own`` (the institution's MRN), ``member <code>`` (another
institution of the site), or ``apart`` (keyed under the authority: declare it in ``institutions.yaml``
``mrn_authorities`` if it is the institution's own numbering)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from adapters.convert.common import authority_of, record_number_system
from adapters.hl7v2.errors import HL7Error
from adapters.hl7v2.parser import parse
from adapters.hl7v2.senders import sender_institution
from engine.messages import raw_of

# the fields listing one record's numbers: PID-3 (the patient's), MRG-1 (the record merged or moved)
_FIELDS = (("PID", 3), ("MRG", 1))


@dataclass(frozen=True, order=True)
class Authority:
    """One CX-4 as an institution's application writes it, and this release's reading of it."""

    institution: str
    application: str
    cx4: str  # as written: CX-4.1&CX-4.2&CX-4.3
    reading: str  # "own", "member <code>" or "apart"


def census(messages: Any, site: Any, page: int = 500) -> list[tuple[Authority, int]]:
    """Every CX-4 written on a record number of the kept messages (``messages``: the message
    store's collection), counted once per repetition, in (institution, application, CX-4) order.
    Read a page at a time; a message that does not parse, or names no institution of the site, is
    left out (it was refused when it came)."""
    counts: Counter[Authority] = Counter()
    for raw, codec in _raws(messages, page):
        try:
            message = parse(raw.decode(codec.rstrip("?") or "utf-8", errors="replace"))
        except (HL7Error, LookupError):
            continue
        msh = message.msh
        inst = site.institution(sender_institution(msh.sending_facility or msh.value(4, comp=2),
                                                   msh.sending_application, "", site))
        if inst is None:
            continue
        application = msh.application_id
        for seg in message.segments:
            for name, field_no in _FIELDS:
                if seg.name != name:
                    continue
                for rep in seg.reps(field_no):
                    cx4 = "&".join(rep.comp(4, n).strip() for n in (1, 2, 3)).rstrip("&")
                    if not rep.comp(1).strip() or not cx4 or record_number_system(rep, inst, site) is None:
                        continue
                    counts[Authority(inst.code, application, cx4, _reading(rep, inst, site))] += 1
    return sorted(counts.items())


def _reading(rep: Any, inst: Any, site: Any) -> str:
    authority = authority_of(rep, inst, site)
    if authority is None:
        return "own"
    if authority in site.institutions and authority != inst.code:
        return f"member {authority}"
    return "apart"


def _raws(messages: Any, page: int) -> Iterator[tuple[bytes, str]]:
    """Every kept message's raw bytes and codec, a page at a time by ``_id`` (after the last one
    read, not by an offset: an offset reads every earlier page again, and a store keeps millions)."""
    last: str | None = None
    while True:
        docs = messages.find(None if last is None else {"_id": {"$gt": last}}, sort=[("_id", 1)], limit=page)
        for doc in docs:
            if doc.get("raw"):
                yield raw_of(doc), str(doc.get("codec") or "utf-8")
        if len(docs) < page:
            return
        last = docs[-1]["_id"]
