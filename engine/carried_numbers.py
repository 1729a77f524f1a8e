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

Which merges: every Patient whose current version states a ``replaced-by`` link (a merge in force: one an A37 took
back states none -- nothing to carry), whose current version holds no resident ID number (an earlier release's A40
dropped it; one that kept it -- an operator's merge through the index, or id40's two people, ``_stays_on`` -- lost
nothing), and whose version just before the merge held one (``mpi.before_merge``, the one reading of "as it stood at
the merge", which ``recover_merged_keys`` uses too). Chains (R1 into R2, R2 into R3) are walked from their first
records on, as the merges were filed: what R2 received goes on with R2's merge, marked once per merge it came through
(``merge_carries``), so each A37 of the chain takes back its own (``his.unlink``, ``persons._carried_on``); what is
carried is written on the record in use at the end of the chain.

Idempotent and safe to kill: each transaction writes up to ``_AT_ONCE`` survivors and the progress beside them; a
survivor carrying the number already is stated it (``kept_beside``: the kind is held) and gets nothing the second
time, so a run after ``kill -9`` writes the rest and doubles nothing. Each transaction's survivors are named in one
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
from collections.abc import Iterator
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any

from adapters.convert.persons import merge_carries
from engine import fhirjson
from engine.audit.events import now_instant
from engine.audit.record import facts
from engine.errors import Gone, NotFound
from engine.identity.demographics import conflicts_with_own_ids, id_numbers
from engine.identity.mpi import before_merge
from engine.merge_rules import INDEX
from engine.repository.fhir import FhirRepository
from engine.repository.port import is_new_store

log = logging.getLogger(__name__)

MARKER_COLLECTION = "carried_numbers"
DONE = "-carried"  # the pass is over: its figures (``report``)
PROGRESS = "-progress"  # while it runs: what the commits so far wrote, and what no audit record names yet
_AT_ONCE = 200  # survivors written in one transaction (and named in one audit record)
_PAGE = 1000  # Patients read in one page of the scan
_MERGED_AWAY = b'"replaced-by"'  # in the stored bytes of a record merged away (``Patient.link.type``)
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
    audited: list[int] = field(default_factory=list)  # the audit records' sequence numbers


def backfill(repo: FhirRepository, audit: Any = None, origin: str = "") -> Outcome | None:
    """Give every merge filed before id40's carry its carry (the module's docstring), once per store. None: done
    before (the marker). ``audit``: the signed log (``AuditLog``; None: nothing recorded -- a tool without one)."""
    coll = repo.store.collection(MARKER_COLLECTION)
    if coll.get(DONE) is not None:
        return None
    if is_new_store(repo.store):  # nothing an earlier release stored: the marker alone
        coll.replace({"_id": DONE, "at": _now(), "merges": 0, "written": 0, "carried": 0, "two_people": 0,
                      "against": 0, "held": 0, "audited": []})
        return Outcome()
    progress = coll.get(PROGRESS) or {}
    out = Outcome(audited=list(progress.get("audited") or ()))
    if progress.get("unaudited"):  # a commit the last run made whose audit record was not appended
        _audit(repo, coll, audit, origin, list(progress["unaudited"]), out, progress)
    merged, before = _merged_away(repo)
    additions = _carries(repo, merged, before, out)
    ids = sorted(additions)
    for start in range(0, len(ids), _AT_ONCE):
        chunk = ids[start:start + _AT_ONCE]
        with repo.store.transaction():
            current = repo.read_many([("Patient", pid) for pid in chunk])
            versions = []
            for pid in chunk:
                survivor = current.get(("Patient", pid))
                if survivor is None or id_numbers(survivor):
                    continue  # (an ID number since the scan -- another process's message: the kind is held)
                new = deepcopy(survivor)
                new["identifier"] = [*(new.get("identifier") or ()), *additions[pid]]
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
    done = {"_id": DONE, "at": _now(), "merges": len(merged), "written": len(progress.get("written") or ()),
            "carried": out.carried, "two_people": out.two_people, "against": out.against, "held": out.held,
            "audited": out.audited}
    with repo.store.transaction():
        coll.replace(done)
        coll.delete(PROGRESS)
    if out.written:
        log.info("merged records' ID numbers: %d survivors given the number their merge carries", len(out.written))
    return out


def report(repo: FhirRepository) -> dict[str, Any] | None:
    """The pass's marker (``DONE``: when, how many merges it looked at, survivors written, merges left and why, the
    audit records' numbers); None: not run on this store."""
    return repo.store.collection(MARKER_COLLECTION).get(DONE)


def _merged_away(repo: FhirRepository) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """Every record merged away whose merge lost its ID number: id -> its survivor's id (the ``replaced-by`` link of
    its current version), and id -> its version just before the merge (``before_merge``), holding a number. The
    Patients are read a page at a time as bytes, parsed only when they state the link."""
    into: dict[str, str] = {}
    before: dict[str, dict[str, Any]] = {}
    done = 0
    while True:
        query = repo.parser.parse("Patient", []).query
        query.limit, query.offset = _PAGE, done
        recs = repo.backend.search(query)
        for rec in recs:
            if rec.body is None or _MERGED_AWAY not in rec.body:
                continue
            patient = fhirjson.loads(rec.body)
            survivor = next((str(link["other"]["reference"]).split("/", 1)[1] for link in patient.get("link") or ()
                             if isinstance(link, dict) and link.get("type") == "replaced-by"
                             and isinstance(link.get("other"), dict)
                             and str(link["other"].get("reference") or "").startswith("Patient/")), None)
            if survivor is None or survivor == rec.id:
                continue
            into[rec.id] = survivor
        done += len(recs)
        if len(recs) < _PAGE:
            break
    for pid in list(into):
        try:
            history = repo.versions("Patient", pid)
        except (NotFound, Gone):
            continue
        was = before_merge(history)
        if was is not None:
            before[pid] = was
    return into, before


def _carries(repo: FhirRepository, into: dict[str, str], before: dict[str, dict[str, Any]],
             out: Outcome) -> dict[str, list[dict[str, Any]]]:
    """The identifiers to add to each record (id -> list), the merges walked from each chain's first record on
    (``_walk``): a merge carries from its record as it stood at the merge (``before``) plus what the merges into it
    carried, onto its survivor -- a record merged away on (carried further by its own merge), or one in use (written).
    A merge of two people carries nothing. A record merged away still holding an ID number lost nothing (the module's
    docstring): it carries nothing."""
    current = _current(repo, into)
    received: dict[str, list[dict[str, Any]]] = {}
    rules = repo.merge
    for prior in _walk(into):
        survivor = into[prior]
        was, now = before.get(prior), current.get(prior)
        if was is None or now is None or id_numbers(now):
            continue
        was = {**was, "identifier": [*(was.get("identifier") or ()), *received.get(prior, ())]}
        if not id_numbers(was):
            continue  # (no number at the merge, none carried onto it before: nothing lost)
        # the survivor as it stood at the merge: merged away on, its version before that merge; else its current one
        held = before.get(survivor) if survivor in into else current.get(survivor)
        if held is None:
            continue
        held = {**held, "identifier": [*(held.get("identifier") or ()), *received.get(survivor, ())]}
        carried = merge_carries(was, held, held, f"Patient/{prior}", rules)
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
        out.carried += 1
    return {pid: ids for pid, ids in received.items() if pid not in into and pid in current}


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
