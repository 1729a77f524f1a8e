"""Reads by id: the current version (as stored bytes or parsed), one version, the history."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine import fhirjson
from engine.bounds import MAX_INT
from engine.errors import BadRequest, Gone, NotFound
from engine.repository.contracts import Version
from engine.repository.group_commit import GroupCommit
from engine.repository.port import StoredResource


class Reads(GroupCommit):
    """``read``, ``vread`` and the history of one resource. Inside a write group's hook phase the
    current versions read are cached per thread (``_local.reads``, emptied by any write), and the
    versions its hooks derived are read before they are put (``group_commit``'s stage); a vread
    or a history, read from the backend, puts them first."""

    def read_raw(self, rtype: str, rid: str) -> StoredResource:
        """The current version as stored (JSON bytes), for handlers that can return it as is."""
        self._check(rtype, rid)
        reads = getattr(self._local, "reads", None)
        if reads is None:
            rec = self._current_one(rtype, rid)
        elif (rtype, rid) in reads:
            rec = reads[(rtype, rid)]
        else:
            rec = reads[(rtype, rid)] = self._current_one(rtype, rid)
        if rec is None:
            raise NotFound(f"{rtype}/{rid} is not known")
        if rec.deleted:
            raise Gone(f"{rtype}/{rid} was deleted", headers={"ETag": f'W/"{rec.version}"'})
        return rec

    def read(self, rtype: str, rid: str) -> dict[str, Any]:
        return fhirjson.loads(self.read_raw(rtype, rid).body)  # type: ignore[arg-type]

    def read_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """``read`` of several (type, id) at once: what a write group knows or staged, the rest in
        one backend call (``current_many``); absent, deleted and invalid ones left out. For the
        merge rules' ``as_far_as``, which read each stored result a thinner report leaves out."""
        wanted = []
        for rtype, rid in dict.fromkeys(keys):
            try:
                self._check(rtype, rid)
            except (BadRequest, NotFound):  # a bad id, or a type huren does not know (an absolute
                continue                    # URL's "http:"): that reference alone is left out
            wanted.append((rtype, rid))
        found = self._current_of(wanted) if wanted else {}
        return {key: fhirjson.loads(rec.body) for key, rec in found.items() if not rec.deleted}  # type: ignore[arg-type]

    def writers(self, rtype: str, ids: Sequence[str]) -> dict[str, str | None]:
        """``WriterMarks.writers``: who stored the current version of each (``StoredResource.writer``,
        the write's merge source; None for a version stored before the mark); deleted and absent
        ones left out. The mark is the store's, beside the version: the FHIR JSON does not carry it."""
        found = self._current_of([(rtype, rid) for rid in dict.fromkeys(ids)]) if ids else {}
        return {rid: rec.writer for (_, rid), rec in found.items() if not rec.deleted}

    def referring(self, rtype: str, param: str,
                  targets: Sequence[tuple[str, str]]) -> list[tuple[dict[str, Any], str | None]]:
        """The current ``rtype`` resources whose reference parameter ``param`` names any of
        ``targets`` (type, id; a version of one too), each with its writer mark (``writers``), in the
        order a search gives: the matches of ``search(rtype, [(param, "T1/a,T2/b,...")])`` read page
        after page, as the backend's one narrow read (``FhirBackend.referring``). For the merge
        rules, which read the Provenances naming every result a message states on each write
        (``MergeRules._provenances``): the general search cost that write eight plain searches'
        worth, its compiler's work per value (thirty-sixth round, perfi36)."""
        self._check_type(rtype)
        spec = self.params.get(rtype, param)
        if spec is None or spec.type != "reference":
            raise ValueError(f"{rtype} has no reference search parameter '{param}'")
        if not targets:
            return []
        recs = self.backend.referring(rtype, self.params.stored_as(rtype, param), targets)
        staged = getattr(self._local, "staged", None)
        marks = self.writers(rtype, [r.id for r in recs]) if staged else None  # a derived version waiting
        return [(fhirjson.loads(r.body), r.writer if marks is None else marks.get(r.id))  # type: ignore[arg-type]
                for r in recs]

    def version_writers(self, rtype: str, rid: str) -> list[tuple[str, str | None]]:
        """``WriterMarks.version_writers``: every version's (lastUpdated, writer), newest first,
        deletions left out (``StoredResource.updated`` is the version's ``meta.lastUpdated``)."""
        self._check(rtype, rid)
        self._put_staged()
        return [(r.updated, r.writer) for r in self.backend.history(rtype, rid) if not r.deleted]

    def vread(self, rtype: str, rid: str, vid: str) -> dict[str, Any]:
        self._check(rtype, rid)
        if not (vid.isascii() and vid.isdigit()) or int(vid) > MAX_INT:
            raise NotFound(f"{rtype}/{rid} has no version '{vid}'")
        self._put_staged()
        rec = self.backend.version(rtype, rid, int(vid))
        if rec is None:
            raise NotFound(f"{rtype}/{rid} has no version {vid}")
        if rec.deleted:
            raise Gone(f"version {vid} of {rtype}/{rid} is a deletion")
        return fhirjson.loads(rec.body)  # type: ignore[arg-type]

    def versions(self, rtype: str, rid: str) -> list[Version]:
        """Every version, newest first (deletions included, with ``resource`` None)."""
        self._check(rtype, rid)
        self._put_staged()
        recs = self.backend.history(rtype, rid)
        if not recs:
            raise NotFound(f"{rtype}/{rid} is not known")
        return [Version(r.version, r.updated, r.deleted, None if r.deleted else fhirjson.loads(r.body))  # type: ignore[arg-type]
                for r in recs]

    def history(self, rtype: str, rid: str) -> list[dict[str, Any]]:
        """The stored versions of a resource, newest first (deletions are left out)."""
        return [v.resource for v in self.versions(rtype, rid) if v.resource is not None]

    def carrying(self, rtype: str, param: str, tokens: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        """The current ``rtype`` resources whose token parameter ``param`` holds any of ``tokens``
        (system, code: exactly that system -- "" for none, as ``|code`` -- and that code), in id order:
        the matches of ``search(rtype, [(param, "s1|c1,s2|c2,..."), ("_sort", "_id")])`` read page after
        page, as the backend's one narrow read (``FhirBackend.carrying``). For the owner's check, which
        reads the stored records carrying a record number for each record a message files anew
        (``adapters.convert.persons._every_patient``): the general search cost that read its parsing and
        its compiler's work, not SQLite's (thirty-seventh round, perfi37). A token without a code
        (``system|``) is not one: refused, as a parameter that is not a token (or is ``_id``) is."""
        self._check_type(rtype)
        spec = self.params.get(rtype, param)
        if spec is None or spec.type != "token" or param == "_id":  # (``_id``: the row's own column, no token rows)
            raise ValueError(f"{rtype} has no token search parameter '{param}'")
        if any(not code for _, code in tokens):
            raise ValueError("a token of carrying names a code (system|code, or |code for none)")
        if not tokens:
            return []
        recs = self.backend.carrying(rtype, self.params.stored_as(rtype, param), tokens)
        return [fhirjson.loads(r.body) for r in recs]  # type: ignore[arg-type]
