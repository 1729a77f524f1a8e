"""Once per store: the merges (A40 and kin) filed before id40's carry given it -- the record merged away's resident ID
number on its survivor, marked carried-from that record.

Why (id40's report, MED left; forty-first round, a40b41): since the fortieth round a merge of two records carries the
ID number of the record merged away onto the survivor (``adapters.convert.persons._carried``), marked
``CARRIED_FROM_EXT`` naming the record, because the merge's version of the record merged away drops it
(``merge.yaml`` ``Patient.identifier`` ``beside`` ``unless: replaced-by``). A merge filed by an earlier release did
not: the number is in no current record, so ``Patient?identifier=<number>`` finds neither the survivor nor the merged
record, and what is keyed by the number misses the merged record's results. This pass gives each such merge exactly
the carry the merge would give it now, by the merge's own rule (``persons.merge_carries``: nothing between two
people by the person guard's rule, nothing of a kind the survivor states or holds, the same mark) and the same check
(``demographics.conflicts_with_own_ids``: a number the survivor's sex or birth date contradicts is not carried --
the merge would have been refused; here it is filed already, so it is left where it was and counted). A merge of
two people carries nothing, and is counted: since a47fix40 such a merge leaves her number on her record merged away
(``persons._stays_on``), which this pass does not do for an old one -- the record's index entry stands for the number
it carried by ``merged_key`` (privleft26's upgrade, ``recover_merged_keys``), and giving the merged-away record the
number again would make it an entry of its own number beside a merge the index no longer accepts (a merge of two
numbers); the operator reads the count (``huren identity carried``) and undoes such a merge (A37) where it was wrong.

Which merges: every Patient whose current version states a ``replaced-by`` link (a merge in force), whose current
version holds no resident ID number (an earlier release's A40 dropped it; one that kept it -- an operator's merge
through the index, or id40's two people, ``_stays_on`` -- lost nothing), and which held one before the first merge
that lost it (``mpi.before_merge``, the one reading of "as it stood at the merge"; passing over an earlier release's
unlink that gave the number to no record -- A40, A37, A40 again -- ``undone``). Only the Patients stating a link are
read (``_scan``: the ``link`` search parameter's rows, in id order). Chains (R1 into R2, R2 into R3) are walked from
their first records on, as the merges were filed: what R2 received goes on with R2's merge, marked once per merge it
came through (``merge_carries``), so each A37 of the chain takes back its own (``his.unlink``,
``persons._carried_on``); what is carried is written on the record in use at the end of the chain.

What the merge's message said (forty-first round, a40fix41; rv41f's review): each merge's filed message is read again
(``persons.as_filed``: the Provenance naming the version the merge wrote, the raw message it names, converted again)
-- what its PID-3 deleted of the survivor (``""^^^^NNCHN``, HL7 v2.5 2.5.3) is not carried back onto it, as the live
merge leaves it out (a47fix40), and an A47 in a chain is a renumbering (its carry unmarked, as the live chain's). A
merge whose message is not kept or cannot be read again is left and counted (``no_message``): what its registrar
deleted cannot be told, and a number the registrar took off (a mother's on her child's record) must not come back.
A merge an earlier release's A37 undid (the A37's records: the filed A37 documents' ``resources``) left the number in
no record at all: the record the A37 separated is given back the number it held before the first merge that lost it
(``_undone``: the A37 takes back what the merge took, as ``his.unlink`` does today), unless that A37 deleted it.

Concurrent ingest (the pass runs at whichever process's start comes first; another's MLLP worker may be filing): each
addition is written only while every record it stands on -- the chain's records merged away and the record written --
is the version the scan read, checked inside the write's transaction (on SQLite ``BEGIN IMMEDIATE`` serialises it
against other processes; on a MongoDB replica set the transaction's write of the survivor conflicts with another's;
on a standalone MongoDB, without transactions, the check and the write are two steps microseconds apart -- against
the scan's seconds before). One written since (a live A37 splitting the pair, a live A40 merging the survivor on) is
left (``moved``) and the marker says ``again``: the next start runs the pass once more and carries it as the merges
then stand. One process at a time (``_claim``: a conditional write of the ``-running`` document): a second start
leaves the pass to the first, so each version is named by one audit record.

Idempotent and safe to kill: each transaction writes up to ``_AT_ONCE`` survivors and the progress beside them; a
survivor carrying the number already is stated it (``kept_beside``: the kind is held) and gets nothing the second
time, so a run after ``kill -9`` writes the rest and doubles nothing (its claim names a process that no longer exists:
taken over at once). Each transaction's survivors are named in one
signed audit record (an update by huren itself; the patients named, so each resident finds it in their record's
AuditEvents), appended after its commit; the survivors a commit wrote whose record was not yet appended (a kill in
between) are kept in the progress and recorded first by the next run (at worst the same record twice: the append and
the progress are in two stores on SQLite). Written as the patient index writes (``INDEX``: no message stated it, not
a FHIR client's write, which may not set huren's marks -- ``persons.marked_by_client``), the version as built
(``write_many(combined=)``): the stored version plus the carried identifiers. A new store writes the marker alone
(``is_new_store``). ``huren identity carried`` reports the marker (``report``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any

from adapters.convert.persons import NATIONAL_ENTRIES, Filed, as_filed, merge_carries, renumbered_as_stored
from engine import fhirjson
from engine.audit.events import now_instant
from engine.audit.record import facts
from engine.errors import Gone, NotFound
from engine.identity.demographics import conflicts_with_own_ids, id_numbers
from engine.identity.mpi import before_merge, links_apart, merges_of
from engine.identity.nationalid import is_national_id
from engine.merge_rules import INDEX
from engine.messages import PROCESSED, MessageStore
from engine.repository.fhir import FhirRepository
from engine.repository.port import DuplicateKey, is_new_store

log = logging.getLogger(__name__)

MARKER_COLLECTION = "carried_numbers"
DONE = "-carried"  # the pass is over: its figures (``report``); ``again``: some left to the next start
PROGRESS = "-progress"  # while it runs: what the commits so far wrote, and what no audit record names yet
CLAIM = "-running"  # who runs it now (``_claim``): one process at a time
_AT_ONCE = 200  # survivors written in one transaction (and named in one audit record)
_PAGE = 1000  # Patients read in one page of the scan
# MSH-9 of an unlink (A37) as a message document records it (``messages.message_type_of``: the sender's component
# separator, "^" by HL7's recommendation and every feed seen; a few others in use)
_UNLINKS = [f"ADT{sep}A37" for sep in "^~!@#$%*+:;"]
_LEASE = 600.0  # seconds: a claim of another host not renewed for this long is a dead run's (``_alive``)
REQUESTOR = ("system", "huren", None, None, None, None, None, None)  # huren itself (``engine.audit.record``)
WHY = ("upgrade: the resident ID number of a record merged away before the fortieth round carried to its survivor, "
       "marked carried-from that record, as a merge carries it since (id40)")


@dataclass
class Outcome:
    """What a run did: survivors written, and the merges it left (each counted once per merge)."""

    written: list[str] = field(default_factory=list)  # "Patient/<id>/_history/<n>" of each version written
    carried: int = 0  # merges whose numbers went on (to their survivor, or on along the chain)
    two_people: int = 0  # ... left: the record merged away and the survivor are two people (``contradicts_all``)
    against: int = 0  # ... left: the survivor's sex or birth date contradicts the number
    held: int = 0  # ... nothing: the survivor states or holds a number of the kind (carried before, or its own)
    no_message: int = 0  # ... left: the merge's message is not filed or cannot be read again ("cannot be told")
    given_back: int = 0  # undone merges (an earlier release's A37): the record the A37 separated given its number
    moved: int = 0  # ... left to the next start: a record of it written since the scan (a live A37, A40...)
    audited: list[int] = field(default_factory=list)  # the audit records' sequence numbers


@dataclass
class _Plan:
    """What the scan found to write: id -> the identifiers to add, and the versions each addition stands on (the
    records of its chain as read, the record written included): any written since, the addition is left."""

    additions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    stands_on: dict[str, dict[str, str]] = field(default_factory=dict)
    read: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> the version the addition goes onto


def backfill(repo: FhirRepository, audit: Any = None, origin: str = "", site: Any = None) -> Outcome | None:
    """Give every merge filed before id40's carry its carry (the module's docstring), once per store. None: done
    before (the marker), or another process runs it now (``_claim``). ``audit``: the signed log (``AuditLog``; None:
    nothing recorded -- a tool without one). ``site``: the site the messages are read again with (``Site``; None:
    no message can be read -- every merge is left, ``no_message``)."""
    coll = repo.store.collection(MARKER_COLLECTION)
    marker = coll.get(DONE)
    if marker is not None and not marker.get("again"):
        return None
    if is_new_store(repo.store):  # nothing an earlier release stored: the marker alone
        coll.replace({"_id": DONE, "at": _now(), "merges": 0, "written": 0, "carried": 0, "two_people": 0,
                      "against": 0, "held": 0, "no_message": 0, "given_back": 0, "moved": 0, "audited": []})
        return Outcome()
    run = _claim(coll)
    if run is None:
        return None
    try:
        return _run(repo, coll, audit, origin, site, run, marker)
    finally:
        held = coll.get(CLAIM)
        if held is not None and held.get("run") == run:
            coll.delete(CLAIM)


def _run(repo: FhirRepository, coll: Any, audit: Any, origin: str, site: Any, run: str,
         marker: dict[str, Any] | None) -> Outcome:
    progress = coll.get(PROGRESS) or {}
    out = Outcome(audited=[*(marker or {}).get("audited", ()), *(progress.get("audited") or ())])
    if progress.get("unaudited"):  # a commit the last run made whose audit record was not appended
        _audit(repo, coll, audit, origin, list(progress["unaudited"]), out, progress)
    reading = _Reading(repo, MessageStore(repo.store), site)
    merged, before, filed = _merged_away(repo, reading, out)
    plan = _carries(repo, merged, before, filed, out)
    _undone(repo, reading, merged, plan, out)
    ids = sorted(plan.additions)
    earlier = int((marker or {}).get("written") or 0)  # (a run left ``again``: what it wrote)
    for start in range(0, len(ids), _AT_ONCE):
        chunk = ids[start:start + _AT_ONCE]
        if not coll.update_if(CLAIM, {"run": run}, {"beat": time.time()}):
            # (its claim lapsed -- another host's start took the pass over: that run finishes it; not this Engine's
            # start to fail over)
            log.warning("merged records' ID numbers: the pass was taken over by another process; this one stops")
            return out
        with repo.store.transaction():
            # the merge each addition stands on still stands, as scanned: every record of its chain and the record
            # written are the versions read (an A37 or A40 filed since by a live process leaves it to the next start,
            # HIGH 2 / MED 4 of rv41f); the write is then of the version read (``combined`` names it)
            wanted = sorted({("Patient", rid) for pid in chunk for rid in plan.stands_on[pid]})
            now = {rid: str((rec.get("meta") or {}).get("versionId"))
                   for (_, rid), rec in repo.read_many(wanted).items()}
            versions = []
            for pid in chunk:
                if any(now.get(rid) != version for rid, version in plan.stands_on[pid].items()):
                    out.moved += 1
                    continue
                new = deepcopy(plan.read[pid])
                new["identifier"] = [*(new.get("identifier") or ()), *plan.additions[pid]]
                versions.append(new)
            results = repo.write_many(versions, source=INDEX,
                                      combined={f"Patient/{v['id']}": v for v in versions}) if versions else []
            written = [f"Patient/{r.resource['id']}/_history/{r.resource['meta']['versionId']}"
                       for r in results if r.changed]
            out.written += written
            progress = {"_id": PROGRESS, "written": [*(progress.get("written") or ()), *written],
                        "audited": out.audited, "unaudited": written}
            coll.replace(progress)
        _audit(repo, coll, audit, origin, written, out, progress)
    done = {"_id": DONE, "at": _now(), "merges": len(merged),
            "written": earlier + len(progress.get("written") or ()),
            "carried": out.carried, "two_people": out.two_people, "against": out.against, "held": out.held,
            "no_message": out.no_message, "given_back": out.given_back, "moved": out.moved,
            "audited": out.audited, **({"again": True} if out.moved else {})}
    with repo.store.transaction():
        coll.replace(done)
        coll.delete(PROGRESS)
    if out.written:
        log.info("merged records' ID numbers: %d records given the number their merge carries", len(out.written))
    if out.moved:
        log.warning("merged records' ID numbers: %d left to the next start (written since the scan)", out.moved)
    return out


def report(repo: FhirRepository) -> dict[str, Any] | None:
    """The pass's marker (``DONE``: when, how many merges it looked at, survivors written, merges left and why, the
    audit records' numbers; ``again``: some were written since its scan, the next start runs it again); None: not
    run on this store."""
    return repo.store.collection(MARKER_COLLECTION).get(DONE)


def _claim(coll: Any) -> str | None:
    """This run's claim of the pass (``CLAIM``: run, host, pid, beat), by a conditional write -- the insert of a
    document none holds, or the take-over of a dead run's (``update_if`` on the run read) -- so two processes opening
    an Engine on one store (``serve`` and a worker, ``huren identity carried``) never both run it: each audit record
    then names versions its own run wrote (rv41f LOW 2). None: another run holds it and is alive (``_alive``)."""
    mine = {"run": uuid.uuid4().hex, "host": socket.gethostname(), "pid": os.getpid(), "beat": time.time()}
    for _ in range(3):
        try:
            coll.insert({"_id": CLAIM, **mine})
            return str(mine["run"])
        except DuplicateKey:
            held = coll.get(CLAIM)
        if held is None:
            continue  # (released meanwhile: claimed again)
        if _alive(held):
            return None
        if coll.update_if(CLAIM, {"run": held.get("run")}, mine):
            return str(mine["run"])
    return None


def _alive(claim: dict[str, Any]) -> bool:
    """Is the run holding ``claim`` still running? On this host: its process exists (a ``kill -9`` ends it, and the
    next start takes the pass over at once); on another (a MongoDB shared by hosts): it renewed its beat (each
    transaction) within ``_LEASE``."""
    if claim.get("host") == socket.gethostname():
        try:
            os.kill(int(claim.get("pid") or 0), 0)
        except (ProcessLookupError, ValueError):
            return False
        except PermissionError:
            return True
        return int(claim.get("pid") or 0) > 0
    return time.time() - float(claim.get("beat") or 0) < _LEASE


class _Reading:
    """The filed messages behind versions, read again (``persons.as_filed``): the repository's Provenances and writer
    marks, the message store, the site."""

    def __init__(self, repo: FhirRepository, messages: MessageStore, site: Any) -> None:
        self.repo, self.messages, self.site = repo, messages, site

    def filed(self, ref: str, version: str, stated: str | None = None) -> list[Filed] | None:
        if self.site is None:
            return None
        return as_filed(ref, version, self.repo.search, self.messages, self.repo, self.site, stated)

    def kept_number(self, pid: str, version: Any) -> bool:
        """Did the messages naming ``version`` of ``pid`` -- numberless: an unlink, or a message since -- leave its ID
        number unsaid (none states ``""^^^^NNCHN``; one that left the version unchanged names it too)? No message:
        cannot be told, no."""
        filed = self.filed(f"Patient/{pid}", str(version.version))
        return bool(filed) and not any(_nulls_number(f) for f in filed or ())


def _nulls_number(filed: Filed) -> bool:
    """Does the message delete the record's resident ID number (PID-3 ``""^^^^NNCHN``)?"""
    return any(d.element == "identifier" and d.where == NATIONAL_ENTRIES for d in filed.deletes)


def _scan(repo: FhirRepository) -> Iterator[Any]:
    """Every current Patient stating a link (``Patient.link``, the ``link`` search parameter's rows: records merged
    away, their survivors, the index's ``seealso``), a page at a time in id order: the store's other Patients are
    never read (rv41f LOW 4: the whole store paged by OFFSET cost its offset on every page)."""
    done = 0
    while True:
        query = repo.parser.parse("Patient", [("link:missing", "false"), ("_sort", "_id")]).query
        query.limit, query.offset = _PAGE, done
        recs = repo.backend.search(query)
        yield from recs
        done += len(recs)
        if len(recs) < _PAGE:
            return


def _merged_away(repo: FhirRepository, reading: _Reading, out: Outcome,
                 ) -> tuple[dict[str, str], dict[str, dict[str, Any]], dict[str, tuple[Filed, bool]]]:
    """Every record merged away whose merge lost its ID number: id -> its survivor's id (the ``replaced-by`` link of
    its current version); id -> its version before the first merge that lost the number (``before_merge`` passing
    over an earlier release's unlink that gave it back to no record: ``_Reading.kept_number``), holding one; and
    id -> what the merge's message stated (``persons.as_filed``: what it deleted of the survivor -- the registrar's
    ``""^^^^NNCHN`` takes the number off, rv41f HIGH 1 -- and whether it was a renumbering, A47, whose carry is not
    marked as a merge's, LOW 1). A merge whose message is not filed or cannot be read again is left (counted
    ``no_message``): what its registrar deleted cannot be told."""
    into: dict[str, str] = {}
    before: dict[str, dict[str, Any]] = {}
    filed: dict[str, tuple[Filed, bool]] = {}
    for rec in _scan(repo):
        if rec.body is None or b'"replaced-by"' not in rec.body:
            continue
        survivor = _survivor(fhirjson.loads(rec.body))
        if survivor is not None and survivor != rec.id:
            into[rec.id] = survivor
    for pid in list(into):
        try:
            history = repo.versions("Patient", pid)
        except (NotFound, Gone):
            continue
        if not history or history[0].resource is None or id_numbers(history[0].resource):
            continue  # (a record merged away holding a number lost nothing: the module's docstring)
        was = before_merge(history, undone=lambda v, pid=pid: reading.kept_number(pid, v))
        if was is None or not id_numbers(was) and not _may_receive(history):
            continue
        before[pid] = was
        merge = _merge_version(history)
        pair = (f"Patient/{into[pid]}", f"Patient/{pid}")
        said = next(((f, r) for f in reading.filed(pair[1], merge, pair[0]) or () for s, p, r in f.merges
                     if (s, p) == pair), None) if merge else None
        if said is None:
            out.no_message += 1
            before.pop(pid)
            continue
        if said[1] and not _renumbering(repo, pair):  # (an A47 onto a record in use: a merge, rv41n HIGH 3)
            said = (said[0], False)
        filed[pid] = said
    return into, before, filed


def _renumbering(repo: FhirRepository, pair: tuple[str, str]) -> bool:
    """Was the A46/A47 of ``pair`` (survivor, record merged away) a renumbering, its PID-3 record not in use before
    it (``persons.renumbered_as_stored``, the reading the live carry and the A37 give)? An A47 onto a record in use
    joined two records: its carry is marked as a merge's."""
    try:
        current = repo.read("Patient", pair[0].partition("/")[2])
    except (NotFound, Gone):
        return True
    return renumbered_as_stored(pair[0], pair[1], current, repo.search, repo.read_many, repo.merge)


def _may_receive(history: list[Any]) -> bool:
    """Could a record merged away with no number at its merge have received one along a chain (merged into first)?
    It states ``replaces`` in one of its versions."""
    return any(kind == "replaces" for v in history if v.resource for kind, _ in merges_of(v.resource))


def _survivor(patient: dict[str, Any]) -> str | None:
    return next((str(link["other"]["reference"]).split("/", 1)[1] for link in patient.get("link") or ()
                 if isinstance(link, dict) and link.get("type") == "replaced-by"
                 and isinstance(link.get("other"), dict)
                 and str(link["other"].get("reference") or "").startswith("Patient/")), None)


def _merge_version(history: list[Any]) -> str | None:
    """The version the merge in force wrote of the record merged away (the oldest of the newest run stating
    ``replaced-by``, the index's writes inside it passed: ``before_merge``'s run): its Provenance names the message."""
    found: str | None = None
    after: dict[str, Any] | None = None
    for version in history:
        if version.resource is None:
            break
        if any(kind == "replaced-by" for kind, _ in merges_of(version.resource)):
            found, after = str(version.version), version.resource
            continue
        if after is not None and links_apart(version.resource, after):
            after = version.resource
            continue
        break
    return found


def _carries(repo: FhirRepository, into: dict[str, str], before: dict[str, dict[str, Any]],
             filed: dict[str, tuple[Filed, bool]], out: Outcome) -> _Plan:
    """The identifiers to add to each record, the merges walked from each chain's first record on (``_walk``): a
    merge carries from its record as it stood at the merge (``before``) plus what the merges into it carried, onto its
    survivor -- a record merged away on (carried further by its own merge), or one in use (written) -- leaving out
    what its message deleted of the survivor and marking nothing for a renumbering (``filed``). A merge of two people
    carries nothing. A record merged away still holding an ID number lost nothing (the module's docstring)."""
    current = _current(repo, into)
    received: dict[str, list[dict[str, Any]]] = {}
    stands: dict[str, dict[str, str]] = {}
    rules = repo.merge
    for prior in _walk(into):
        survivor = into[prior]
        was, now = before.get(prior), current.get(prior)
        if was is None or now is None or id_numbers(now) or prior not in filed:
            continue
        was = {**was, "identifier": [*(was.get("identifier") or ()), *received.get(prior, ())]}
        if not id_numbers(was):
            continue  # (no number at the merge, none carried onto it before: nothing lost)
        # the survivor as it stood at the merge: merged away on, its version before that merge; else its current one
        held = before.get(survivor) if survivor in into else current.get(survivor)
        if held is None:
            continue
        held = {**held, "identifier": [*(held.get("identifier") or ()), *received.get(survivor, ())]}
        said, renumbered = filed[prior]
        carried = merge_carries(was, held, held, f"Patient/{prior}", rules, deletes=said.deletes,
                                renumbered=renumbered)
        if carried is None:  # two people: nothing carried (left as the old release left it: the module's docstring)
            out.two_people += 1
            continue
        if not carried:
            out.held += 1
            continue
        if id_numbers({"identifier": carried}) and conflicts_with_own_ids(
                {**held, "identifier": [*held["identifier"], *carried]}):
            out.against += 1
            continue
        received.setdefault(survivor, []).extend(carried)
        stands.setdefault(survivor, {}).update({**stands.get(prior, {}), prior: _version(now)})
        out.carried += 1
    plan = _Plan()
    for pid, ids in received.items():
        if pid in into or pid not in current:
            continue
        plan.additions[pid], plan.read[pid] = ids, current[pid]
        plan.stands_on[pid] = {**stands[pid], pid: _version(current[pid])}
    return plan


def _undone(repo: FhirRepository, reading: _Reading, into: dict[str, str], plan: _Plan, out: Outcome) -> None:
    """Merges an earlier release filed and its unlink (A37) undid, both before id40's carry: the A40's version of the
    record merged away dropped its ID number and the A37's (its PID: the MRN alone) gave it back to no record -- the
    number is in no record at all (rv41f HIGH 3). Filed today the A37 takes back what the merge took (``his.unlink``):
    the record it separated is given the number it held before the first merge that lost it (``before_merge``), as
    it held it, unless the A37 or a message since deleted it (``""^^^^NNCHN``), the record holds a number, was written
    since by neither the index nor a filed message (a FHIR client's version: whose word cannot be told), or the
    number contradicts its sex or birth date. The records asked are those the filed A37s wrote (their documents' ``resources``)."""
    unlinks = reading.messages.messages.find({"message_type": {"$in": _UNLINKS}, "status": PROCESSED})
    named = sorted({str(ref).split("/", 1)[1] for doc in unlinks for ref in doc.get("resources") or ()
                    if str(ref).startswith("Patient/") and str(ref).count("/") == 1} - set(into))
    for pid in named:
        try:
            history = repo.versions("Patient", pid)
        except (NotFound, Gone):
            continue
        if not history or history[0].resource is None or id_numbers(history[0].resource) \
                or _survivor(history[0].resource) is not None:
            continue
        at = 0  # the unlink's version: the one just after a version stating ``replaced-by``
        while at + 1 < len(history) and history[at + 1].resource is not None \
                and not _survivor(history[at + 1].resource) and not id_numbers(history[at + 1].resource):
            at += 1
        if at + 1 >= len(history) or history[at + 1].resource is None or not _survivor(history[at + 1].resource):
            continue  # (no unlink of a merge since the record last held a number)
        # the unlink and every version since: the index's (links alone differ) or a filed message's that left the
        # number unsaid (an A08 stating the MRN alone) -- a ``""^^^^NNCHN``, or a version no message wrote (a FHIR
        # client's), and the record stays as it is
        if not all(reading.kept_number(pid, history[n]) or n < at and links_apart(history[n].resource,
                                                                                   history[n + 1].resource)
                   for n in range(at + 1)):
            continue
        was = before_merge(history[at + 1:], undone=lambda v, pid=pid: reading.kept_number(pid, v))
        numbers = [deepcopy(i) for i in (was or {}).get("identifier") or ()
                   if isinstance(i, dict) and is_national_id(i) and i.get("value")]
        if not numbers:
            continue
        current = history[0].resource
        if conflicts_with_own_ids({**current, "identifier": [*(current.get("identifier") or ()), *numbers]}):
            out.against += 1
            continue
        plan.additions[pid], plan.read[pid] = numbers, current
        plan.stands_on[pid] = {pid: _version(current)}
        out.given_back += 1


def _version(patient: dict[str, Any]) -> str:
    return str((patient.get("meta") or {}).get("versionId"))


def _current(repo: FhirRepository, into: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The current versions of every record the merges name (merged away and survivors), by id."""
    keys = sorted({("Patient", pid) for pair in into.items() for pid in pair})
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(keys), _PAGE):
        out.update({rid: rec for (_, rid), rec in repo.read_many(keys[start:start + _PAGE]).items()})
    return out


def _walk(into: dict[str, str]) -> Iterator[str]:
    """The records merged away, each after every record merged into it (a chain from its first record on); a cycle
    (a link no merge makes: written by hand) is walked once, from where it was entered."""
    children: dict[str, list[str]] = {}
    for prior, survivor in into.items():
        children.setdefault(survivor, []).append(prior)
    seen: set[str] = set()

    def after(pid: str) -> Iterator[str]:
        stack: list[tuple[str, int]] = [(pid, 0)]
        seen.add(pid)
        while stack:
            node, at = stack.pop()
            kids = sorted(children.get(node, ()))
            if at < len(kids):
                stack.append((node, at + 1))
                if kids[at] not in seen:
                    seen.add(kids[at])
                    stack.append((kids[at], 0))
            elif node in into:
                yield node

    for root in sorted({s for s in into.values() if s not in into} | set(into)):
        if root not in seen:
            yield from after(root)


def _audit(repo: FhirRepository, coll: Any, audit: Any, origin: str, written: list[str], out: Outcome,
           progress: dict[str, Any]) -> None:
    """One signed audit record naming ``written`` (the survivors' versions, detail ``versions``: the patients' own
    references stand as patient entities, ``facts``) and their patients, then the progress told it is recorded.
    Nothing written: nothing recorded."""
    if not written:
        return
    if audit is not None:
        patients = [ref.split("/")[1] for ref in written]
        record = facts(action="update", recorded=now_instant(), start=None, outcome="0", desc=WHY,
                       requestor=REQUESTOR, origin=origin, patients=patients, resources=written,
                       owners={ref: [ref.split("/")[1]] for ref in written},
                       detail={"upgrade": "carried-numbers", "survivors": str(len(written)),
                               "versions": " ".join(written)})
        appended = audit.record(record)
        out.audited.append(int(getattr(appended, "seq", 0) or 0))
    progress.update(audited=out.audited, unaudited=[])
    coll.replace(progress)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()
