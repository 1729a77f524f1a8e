"""Verifying the audit log: recompute the tree, check every checkpoint, name the first bad record.

The same ``Verifier`` runs online (records, nodes and checkpoints read from the database) and
offline (an export file plus the public key(s), on another machine). It streams the records in
sequence order and, for each one, checks that

- the sequence has no gap or repeat (a deleted or inserted record),
- the stored leaf hash is SHA-256(0x00 || the stored canonical text) (altered content),
- the record is an AuditEvent whose id is ``audit-<its position>`` (a record moved: reordered; a
  record found later than its place is named out of place, its content unchecked, since the tree
  cannot be recomputed over records out of order),
- (online) every tree node the record completes equals the stored node (which proofs are served
  from), so a record altered *and* re-hashed is located to the subtree it sits in;

and for checkpoints that every one is well-formed, signed by a known key (named by its key id),
numbered without gaps, in non-decreasing size and time order, and that its root equals the root
recomputed from the records at its size. Recomputing every checkpoint's root from one sequence of
records proves all checkpoints mutually consistent (each is a prefix of the same log), which is
what a chain of RFC 9162 consistency proofs would prove. A checkpoint larger than the log means
the log was truncated.

What it cannot do: pin down a single record that was altered and re-hashed together with the
stored nodes above it; then the report names the range between the last matching checkpoint and
the first mismatching one. Records newer than the last checkpoint are only as trustworthy as the
database until the next checkpoint signs them: a record there altered with its leaf hash, tree
nodes and CRC recomputed verifies. So the report states how many there are (``unsigned``) rather
than a bare "OK", and which ranges a checkpoint signed as found (``recovered``: a process that
opened the log found them unsigned, left by one that stopped) -- proven unchanged since that
checkpoint, not proven to be what was appended.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from engine.audit import merkle
from engine.audit.checkpoint import SEAL, Checkpoint, CheckpointError, parse_checkpoint, verify_checkpoint
from engine.audit.keys import AuditKeys
from engine.audit.record import FORMAT

MAX_PROBLEMS = 50
# What a check against the keys beside the log proves: the log agrees with itself, nothing more.
DISK_KEYED = ("no --public-key given: checked only against the public keys in the data directory (data_dir/keys), "
              "which whoever could alter the log could replace with a key of their own and re-sign every "
              "checkpoint; verify again with the deployment's public key kept elsewhere (GET /audit/public-key, "
              "saved when it was published) given as --public-key / 未给出 --public-key：只用数据目录中的公钥核对，"
              "能篡改日志的人也能换上自己的密钥重新签名，不能证明日志未被篡改；请用另行保存的部署方公钥以 --public-key 再核对一次")
EXACT = {"deleted", "inserted", "altered", "reordered", "malformed", "truncated", "unreadable"}


@dataclass(frozen=True)
class Problem:
    kind: str  # deleted inserted altered reordered malformed truncated unreadable | node root | checkpoint signature header
    message: str
    record: int | None = None  # first record index concerned
    checkpoint: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class Report:
    records: int = 0
    checkpoints: int = 0
    root: str = ""
    signed_size: int = 0
    # the root the newest trusted signature (checkpoint or seal) signs at ``signed_size``: what an
    # auditor checks a consistency proof to the live log's checkpoint from (README "Audit trail")
    signed_root: str = ""
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unsigned: int = 0  # records past the newest signed checkpoint: no signature covers them
    sealed: int = 0  # the size the seal signs, when it signs more than the numbered checkpoints
    # (checkpoint, first, last): records a checkpoint signed as found, not as appended (``recovered``)
    recovered: list[tuple[int, int, int]] = field(default_factory=list)
    # whose public keys the signatures were checked against: ``trusted`` (given by the auditor,
    # ``--public-key``), ``export`` (the ones an export carries itself) or ``disk`` (the log's own
    # ``data_dir/keys``, online with no key given). Only ``trusted`` proves anything against a forger:
    # whoever could rewrite the records could rewrite the keys beside them and re-sign
    keys: str = "trusted"
    # an export's header: ``signed`` (its counts, range, root, when and by whom, under the log's key),
    # ``unsigned`` (an earlier release's export, or one made without the private key: its counts
    # catch a cut file, not a forger who edits them too), ``refused`` (a signature that does not
    # verify or cannot be read: a named problem), "" online
    header: str = ""
    exported: str = ""  # when and by whom the export was made, as its signed header states them
    exported_by: str = ""
    header_key: str = ""  # the key id that signed an export's header (noted when not the newest given)
    # the key taken as the newest, and from what: ``checkpoints`` (the export's trusted checkpoints
    # show a rotation: the newest one's key) or ``order given`` (the last ``--public-key``)
    newest_key: str = ""
    newest_from: str = ""

    @property
    def keys_from_export(self) -> bool:
        return self.keys == "export"

    @property
    def proven(self) -> bool:
        """Verified against a trusted key, and (an export) under a signed header: what exit 0 says."""
        return self.ok and self.keys == "trusted" and self.header != "unsigned"

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_record(self) -> int | None:
        """The first record named exactly; else the start of the smallest range known to be bad
        (a stored tree node, then a checkpoint root, narrows it less)."""
        for kinds in (EXACT, {"node"}, {"root"}):
            idx = [p.record for p in self.problems if p.record is not None and p.kind in kinds]
            if idx:
                return min(idx)
        return None

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "checkpoints": self.checkpoints, "root": self.root,
                "signed_size": self.signed_size,
                "signed_root": self.signed_root, "sealed": self.sealed, "unsigned": self.unsigned,
                "recovered": [{"checkpoint": c, "first": a, "last": b} for c, a, b in self.recovered],
                "first_bad_record": self.first_bad_record,
                "problems": [p.as_json() for p in self.problems], "notes": self.notes,
                "keys": self.keys, "proven": self.proven,
                **({"header": self.header, "exported": self.exported, "exported_by": self.exported_by}
                   if self.header else {}),
                **({"header_key": self.header_key} if self.header_key else {}),
                **({"newest_key": self.newest_key, "newest_from": self.newest_from} if self.newest_key else {})}

    def text(self) -> str:
        lines = [f"audit log: {self.records} records, {self.checkpoints} checkpoints, "
                 f"signed up to {self.signed_size}" + (f" (signed root {self.signed_root})" if self.signed_root else "")
                 + f", root {self.root}"]
        if self.ok and not self.unsigned:
            lines.append("OK: every record, tree node and checkpoint verifies; every record is under a signed checkpoint")
        elif self.ok:
            lines.append(f"OK up to record {self.signed_size - 1}: every record, tree node and checkpoint verifies; "
                         if self.signed_size else "OK: every record and tree node verifies; ")
            lines[-1] += (f"{self.unsigned} record(s) ({self.records - self.unsigned}..{self.records - 1}) lie past the "
                          "last signed checkpoint: no signature covers them, so nothing proves their content (a "
                          "running server seals them within HUREN_AUDIT_SEAL_SECONDS; `huren audit "
                          "checkpoint` signs them as they are now)")
        else:
            first = self.first_bad_record
            lines.append(f"FAILED: {len(self.problems)} problem(s)"
                         + (f"; first bad record: {first}" if first is not None else ""))
            lines += [f"  - {p.message}" for p in self.problems]
        if self.ok and self.keys != "trusted":  # (the note below says why; a script reads the exit code, 3)
            whose = "inside the export" if self.keys == "export" else "in the data directory (data_dir/keys)"
            lines[1] = (f"NOT PROVEN AUTHENTIC / 未证明真实: checked only against the keys {whose}; "
                        "consistent with itself: " + lines[1])
        elif self.ok and self.header == "unsigned":
            lines[1] = ("NOT PROVEN COMPLETE / 未证明完整: the export's header is not signed: " + lines[1])
        if self.header == "signed":
            lines.insert(1, f"export made {self.exported} by {self.exported_by}; its header (counts, range, root) "
                         f"is signed by key {self.header_key}"
                         + (f"; newest key taken: {self.newest_key} ("
                            + ("the key of the export's newest checkpoint, which show the rotation"
                               if self.newest_from == "checkpoints" else "the last key given, --public-key "
                               "or the export's own: its checkpoints show no rotation") + ")" if self.newest_key else ""))
        lines += [f"  recovered: records {a}..{b} were first signed by checkpoint {c} as found when a process "
                  "opened the log (the one that appended them stopped before signing), not by the process that "
                  "appended them: proven unchanged since that checkpoint, not proven to be what was appended"
                  for c, a, b in self.recovered]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


class Verifier:
    """Feed checkpoints first (``add_checkpoints``), then records in order (``add_records``),
    then ``finish()``. ``stored_nodes`` (online only) is called with the nodes a batch of records
    completed and returns the stored hashes for those ``(level, index)`` keys."""

    def __init__(self, keys: AuditKeys, *, origin: str | None = None) -> None:
        self.keys = keys
        self.origin = origin
        self.report = Report()
        self._frontier = merkle.Frontier()
        self._expected = 0
        self._broken = False  # a gap or repeat: later roots cannot be compared meaningfully
        self._by_size: dict[int, list[Checkpoint]] = {}
        self._checkpoints: list[Checkpoint] = []
        self._bad_nodes: set[tuple[int, int]] = set()
        self._root_failed = False  # after one checkpoint root mismatches, every later one does too
        self._held = 0  # records the store states it holds (``held``)
        self._announced: int | None = None  # records an export's header says it holds (``announced``)
        self._export_root: tuple[int, bytes] | None = None  # (size, root) an export's signed header states
        self._gaps: list[tuple[int, int]] = []  # ranges reported missing (a record there found later: reordered)
        self._found_late: set[int] = set()  # records of those ranges found later in the file
        self._retired: dict[str, int] = {}  # key id -> the checkpoint where another key took over from it
        self._noted_keys: set[str] = set()

    def problem(self, kind: str, message: str, *, record: int | None = None, checkpoint: int | None = None) -> None:
        if len(self.report.problems) < MAX_PROBLEMS:
            self.report.problems.append(Problem(kind, message, record, checkpoint))

    # ---------------------------------------------------------------- checkpoints
    def checkpoint_keys(self) -> list[str]:
        """The key ids of the trusted checkpoints, by checkpoint number: who signed when (the
        export's evidence of a rotation, ``export._note_retired_header``)."""
        return [cp.key_id for cp in sorted(self._checkpoints, key=lambda c: c.seq)]

    def add_checkpoints(self, docs: Iterable[dict[str, Any]]) -> None:
        """Each doc has ``note`` (the signed text); other fields, when present, must agree with it."""
        cps: list[Checkpoint] = []
        for pos, doc in enumerate(docs):
            try:
                cp = parse_checkpoint(doc["note"])
            except (CheckpointError, KeyError, TypeError) as exc:
                self.problem("checkpoint", f"checkpoint #{pos}: unreadable ({exc})", checkpoint=doc.get("seq"))
                continue
            if cp.seal:  # (the seal has no number: it belongs in ``audit_meta``, not among the numbered)
                self.problem("checkpoint", f"checkpoint #{pos}: a seal (size {cp.size}), which carries no "
                             "number, stored as a numbered checkpoint")
                continue
            if not self._trusted(cp, f"checkpoint {cp.seq}", checkpoint=cp.seq):
                continue
            for name, want in (("seq", cp.seq), ("size", cp.size), ("root", cp.root.hex())):
                if name in doc and doc[name] != want:
                    self.problem("checkpoint", f"checkpoint {cp.seq}: stored {name} {doc[name]!r} differs from "
                                 f"the signed note ({want!r})", checkpoint=cp.seq)
            cps.append(cp)
        cps.sort(key=lambda c: c.seq)
        expected = 0
        prev: Checkpoint | None = None
        for cp in cps:
            if prev is not None and cp.key_id != prev.key_id:
                self._key_changed(prev.key_id, cp)
            if cp.seq != expected:
                if cp.seq < expected:
                    self.problem("checkpoint", f"checkpoint {cp.seq} appears twice", checkpoint=cp.seq)
                    continue
                self.problem("checkpoint", f"checkpoint(s) {expected}..{cp.seq - 1} missing (deleted)",
                             checkpoint=expected)
            if prev is not None and (cp.size < prev.size or cp.time < prev.time):
                self.problem("checkpoint", f"checkpoint {cp.seq} (size {cp.size}, {cp.time}) goes back from "
                             f"checkpoint {prev.seq} (size {prev.size}, {prev.time})", checkpoint=cp.seq)
            expected, prev = cp.seq + 1, cp
            if cp.recovered is not None:
                self.report.recovered.append((cp.seq, cp.recovered, cp.size - 1))
            self._by_size.setdefault(cp.size, []).append(cp)
            self._checkpoints.append(cp)
        self.report.checkpoints = len(cps)
        if cps:
            newest = max(cps, key=lambda c: c.size)
            self.report.signed_size, self.report.signed_root = newest.size, newest.root.hex()

    def _key_changed(self, old: str, cp: Checkpoint) -> None:
        """Keys sign in runs: a rotation (``huren audit rotate-key``) retires the old private key, so a
        key seen again after another took over is noted, not failed -- a server still running with the
        old key after a rotation does that legitimately until it restarts -- since it is also what a
        retired private key in someone else's hands (kept, leaked) signing new checkpoints looks like."""
        self._retired.setdefault(old, cp.seq)
        first = self._retired.get(cp.key_id)
        if first is not None and cp.key_id not in self._noted_keys:
            self._noted_keys.add(cp.key_id)
            self.report.notes.append(
                f"checkpoint {cp.seq} is signed by key {cp.key_id}, which another key had replaced by checkpoint "
                f"{first}: a retired key signing again (a server not restarted after `huren audit rotate-key`, or "
                "the retired private key in someone else's hands) / 已轮换停用的密钥再次签名")

    def _trusted(self, cp: Checkpoint, name: str, checkpoint: int | None = None) -> bool:
        """Whether a signed statement (a checkpoint, the seal) is signed by a key of this log and
        for this log; the problem is noted as ``name``'s when not."""
        if not verify_checkpoint(cp, self.keys):
            why = "unknown key id" if cp.key_id not in self.keys.public else "bad signature"
            self.problem("signature", f"{name} (size {cp.size}): {why} {cp.key_id}", checkpoint=checkpoint)
            return False
        if self.origin is not None and cp.origin != self.origin:
            self.problem("checkpoint", f"{name}: signed for another log ({cp.origin})", checkpoint=checkpoint)
            return False
        return True

    def add_seal(self, doc: dict[str, Any] | None) -> None:
        """The log's seal (``AuditLog.seal``: the whole log signed in place each second), after
        the checkpoints: checked like one (signature, origin, its root against the records at its
        size) when it signs more than they do; one they already cover is stale, not wrong."""
        if doc is None:
            return
        try:
            cp = parse_checkpoint(doc["note"])
        except (CheckpointError, KeyError, TypeError) as exc:
            self.problem("checkpoint", f"the seal is unreadable ({exc})")
            return
        if not self._trusted(cp, "the seal"):
            return
        if cp.size <= self.report.signed_size:
            return
        self._by_size.setdefault(cp.size, []).append(cp)
        self._checkpoints.append(cp)
        self.report.signed_size, self.report.signed_root = cp.size, cp.root.hex()
        self.report.sealed = cp.size

    # ---------------------------------------------------------------- records
    def add_records(self, docs: Iterable[dict[str, Any]],
                    stored_nodes: Any | None = None) -> None:
        """``docs``: ``{seq, hash, data}`` in ascending ``seq`` order."""
        sha, prefix = hashlib.sha256, merkle.LEAF_PREFIX
        frontier = self._frontier
        made_nodes: dict[tuple[int, int], bytes] = {}
        for doc in docs:
            seq = doc.get("seq")
            data = doc.get("data")
            if not isinstance(seq, int) or not isinstance(data, str):
                self.problem("malformed", f"record {self._expected}: stored document {doc.get('_id')!r} is malformed",
                             record=self._expected)
                self._broken = True
                continue
            if seq != self._expected:
                if seq < self._expected:
                    self._late(seq)
                    self._broken = True
                    continue
                self.problem("deleted", f"record(s) {self._expected}..{seq - 1} missing (deleted)",
                             record=self._expected)
                self._gaps.append((self._expected, seq - 1))
                self._broken = True
                self._expected = seq
            raw = data.encode()
            leaf = sha(prefix + raw).digest()  # (``merkle.leaf_hash``, in place)
            if doc.get("hash") != leaf.hex():
                self.problem("altered", f"record {seq}: content altered (does not match its leaf hash)", record=seq)
            # Canonical JSON of record audit-<seq> (an AuditEvent, or a compact record of format 2): a
            # substring test avoids parsing every record (detection rests on the hashes; this only
            # names a moved record), parse when it fails.
            if f'"id":"audit-{seq}"' not in data or (
                    '"f":2,' not in data and '"resourceType":"AuditEvent"' not in data):
                self._name_misplaced(seq, raw)
            self._expected = seq + 1
            if self._broken:
                continue
            if stored_nodes is None:
                frontier.extend((leaf,))
            else:
                for lvl, idx, h in frontier.append(leaf):
                    made_nodes[(lvl, idx)] = h
                if len(made_nodes) >= 4096:
                    self._check_nodes(made_nodes, stored_nodes)
                    made_nodes = {}
            for cp in self._by_size.get(frontier.size, ()):
                if frontier.root() != cp.root and not self._root_failed:
                    self._root_failed = True
                    prev = max((c.size for c in self._checkpoints if c.size < cp.size), default=0)
                    if self._explained(0, cp.size - 1):
                        continue
                    which = f"the seal (size {cp.size})" if cp.size == self.report.sealed else \
                        f"signed checkpoint {cp.seq} (size {cp.size})"
                    self.problem("root", f"records {prev}..{cp.size - 1} do not match {which}: a record there "
                                 "was altered and re-hashed", record=prev, checkpoint=cp.seq)
        if made_nodes and stored_nodes is not None:
            self._check_nodes(made_nodes, stored_nodes)

    def _late(self, seq: int) -> None:
        """A record numbered below the next expected one: a second copy (inserted), or -- when it
        falls in a gap already reported as deleted -- the missing record itself, found later in the
        file (reordered); the gap's "deleted" is then withdrawn for it (a one-record gap: a swap)."""
        gap = next((g for g in self._gaps if g[0] <= seq <= g[1]), None)
        if gap is None or seq in self._found_late:
            self.problem("inserted", f"record {seq} appears again (inserted record)", record=seq)
            return
        self._found_late.add(seq)
        # Only its place is known: the tree cannot be recomputed over records out of order, so a
        # copy altered and re-hashed (its leaf hash made to match) reads the same as one moved.
        self.problem("reordered", f"record {seq} found out of place (after record {self._expected - 1}): records "
                     "reordered, or a copy put there; its content is not checked against the signed roots, "
                     "so it may also have been altered", record=seq)

    def _still_missing(self) -> None:
        """Word each gap's "deleted" again for the records not found later in it (``_late``): a moved
        block is "out of place", never "missing (deleted)" as well; a gap all found is withdrawn."""
        if not self._found_late:
            return
        kept: list[Problem] = []
        for p in self.report.problems:
            gap = next((g for g in self._gaps if p.kind == "deleted" and p.record == g[0]), None)
            if gap is None:
                kept.append(p)
                continue
            runs: list[list[int]] = []
            for seq in range(gap[0], gap[1] + 1):
                if seq in self._found_late:
                    continue
                if runs and runs[-1][1] == seq - 1:
                    runs[-1][1] = seq
                else:
                    runs.append([seq, seq])
            kept.extend(Problem("deleted", f"record(s) {lo}..{hi} missing (deleted)", lo) for lo, hi in runs)
        self.report.problems = kept

    def held(self, count: int) -> None:
        """The store states it holds ``count`` records (online: the log's index). Those past the ones
        read cannot be read (a damaged or missing record file): a read that merely stops early
        shows no gap, so ``finish`` names them unless a checkpoint already says the log is cut short
        there."""
        self._held = count

    def announced(self, count: int) -> None:
        """An export's header says it holds ``count`` records. The header is not signed, but records
        cut from past the last signature (or added there) leave no other trace in the file: a count
        that differs is a file that is not what was exported, and ``finish`` says so."""
        self._announced = count

    def export_root(self, size: int, root: bytes) -> None:
        """An export's signed header states the root of its ``size`` records: ``finish`` compares it
        with the root recomputed from them, so a record past the log's own newest signature (which
        nothing else signs) cannot be altered and re-hashed in the file unnoticed."""
        self._export_root = (size, root)

    @property
    def next_record(self) -> int:
        """The sequence number the next record should carry."""
        return self._expected

    def _name_misplaced(self, seq: int, raw: bytes) -> None:
        try:
            ev = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.problem("altered", f"record {seq}: not JSON", record=seq)
            return
        rid = ev.get("id") if isinstance(ev, dict) else None
        rtype = ev.get("resourceType") if isinstance(ev, dict) else None
        if (rtype == "AuditEvent" or ev.get("f") == FORMAT) and rid == f"audit-{seq}":
            return
        if isinstance(rid, str) and rid.startswith("audit-"):
            self.problem("reordered", f"record {seq}: holds record {rid[6:]} (records reordered or inserted)",
                         record=seq)
        else:
            self.problem("altered", f"record {seq}: not the AuditEvent audit-{seq}", record=seq)

    def _check_nodes(self, made: dict[tuple[int, int], bytes], stored_nodes: Any) -> None:
        """Report only the lowest mismatching nodes: every ancestor of a bad node differs as well,
        and naming those would only widen the range."""
        stored: dict[tuple[int, int], bytes | None] = stored_nodes(list(made))
        for (lvl, idx), h in sorted(made.items()):
            got = stored.get((lvl, idx))
            if got == h:
                continue
            self._bad_nodes.add((lvl, idx))
            if (lvl - 1, 2 * idx) in self._bad_nodes or (lvl - 1, 2 * idx + 1) in self._bad_nodes:
                continue
            lo, hi = idx << lvl, ((idx + 1) << lvl) - 1
            if got is not None and self._explained(lo, hi):
                continue
            if got is None:
                self.problem("node", f"tree node {lvl}:{idx} (records {lo}..{hi}) missing from the database", record=lo)
            else:
                self.problem("node", f"records {lo}..{hi}: do not match stored tree node {lvl}:{idx} (a record there "
                             "was altered and re-hashed, or the node was)", record=lo)

    def _explained(self, lo: int, hi: int) -> bool:
        """A record in ``lo..hi`` was already named exactly: a node or checkpoint mismatch over that
        range follows from it and would only blur which record is the first bad one."""
        return any(p.record is not None and lo <= p.record <= hi and p.kind in EXACT for p in self.report.problems)

    def finish(self) -> Report:
        self._still_missing()
        r = self.report
        r.records = self._expected
        r.root = self._frontier.root().hex() if not self._broken else ""
        for cp in sorted(self._checkpoints, key=lambda c: -c.size):  # the newest says how much is gone
            if cp.size > self._expected:
                which = "the seal" if cp.size == r.sealed else f"checkpoint {cp.seq}"
                self.problem("truncated", f"log truncated: {which} signs {cp.size} records, only "
                             f"{self._expected} present (first missing record {self._expected})",
                             record=self._expected, checkpoint=cp.seq)
                break
        if self._held > self._expected and not any(p.kind == "truncated" for p in r.problems):
            self.problem("unreadable", f"records {self._expected}..{self._held - 1} are held according to the "
                         "log's index but cannot be read (a record file damaged or missing)", record=self._expected)
            r.root = ""
        if self._announced is not None and not any(p.kind == "truncated" for p in r.problems):
            if self._announced > self._expected:
                self.problem("truncated", f"export truncated: its header announces {self._announced} records, the "
                             f"file holds {self._expected} (first missing record {self._expected})",
                             record=self._expected)
            elif self._announced < self._expected:
                self.problem("inserted", f"records {self._announced}..{self._expected - 1} lie past the "
                             f"{self._announced} records the export's header announces (added)",
                             record=self._announced)
        # (after a checkpoint's root failed, the header's fails too: that problem already names the range)
        if self._export_root is not None and r.root and self._export_root[0] == r.records and not self._root_failed:
            size, root = self._export_root
            lo = min(r.signed_size, size - 1)
            if root.hex() != r.root and not self._explained(lo, size - 1):
                self.problem("root", f"records {lo}..{size - 1} do not match the root the export's signed header "
                             "states: a record there was altered and re-hashed after the export was made (or the log's "
                             "stored tree disagreed with its records when exported: `huren audit verify` online "
                             "names that)", record=lo)
        r.unsigned = max(0, r.records - r.signed_size)
        rank = {"node": 1, "root": 2}
        r.problems.sort(key=lambda p: (p.record is None, 0 if p.kind in EXACT else rank.get(p.kind, 3),
                                       p.record if p.record is not None else 0))
        return r


# ---------------------------------------------------------------- sources
def iter_records(log: Any, batch: int = 5000) -> Iterator[dict[str, Any]]:
    """Stream ``audit_log`` in ``_id`` order, page by page (keyset paging on the primary key).

    ``_id`` is the zero-padded sequence number, so this is seq order for an intact log; a record
    whose ``seq`` field was changed, or one inserted under another ``_id``, shows up out of order
    and the verifier names it (it checks the ``seq`` fields, not the ``_id``s)."""
    after = ""
    while True:
        page = log.leaves.find({"_id": {"$gt": after}}, sort=[("_id", 1)], limit=batch)
        if not page:
            return
        yield from page
        after = page[-1]["_id"]


def verify_online(log: Any, keys: AuditKeys | None = None, *, check_nodes: bool = True) -> Report:
    """Verify the database's log (``AuditLog``) against ``keys`` (trusted: given by the auditor)
    or, when none are given, the public keys on disk beside the log -- which whoever altered the
    log could have replaced with their own, so the report then says ``keys: disk`` and is not
    ``proven`` (``huren audit verify`` exits 3, as for an export checked against its own keys).
    ``check_nodes`` also compares every stored tree node (what proofs are served from) with the
    recomputed tree: about half the time of a run, since each node is a document to read."""
    v = Verifier(keys or log.keys, origin=log.origin)
    if keys is None:
        v.report.keys = "disk"
        v.report.notes.append(DISK_KEYED)
    v.add_checkpoints(log.checkpoints.find(sort=[("seq", 1)]))
    v.add_seal(log.meta.get(SEAL))

    def stored_nodes(wanted: list[tuple[int, int]]) -> dict[tuple[int, int], bytes | None]:
        return dict(log.stored_nodes(wanted))

    v.add_records(iter_records(log), stored_nodes if check_nodes else None)
    v.held(log.held_count())
    return v.finish()
