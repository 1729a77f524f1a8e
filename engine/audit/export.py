"""Self-contained audit export (JSON lines) and its offline verification.

One JSON object per line, in this order, so a verifier streams the file once:

1. ``{"type": "huren-audit-export", "version": 1, "origin", "exported", "records", "checkpoints"}``, and
   ``"sealed"`` (the seal's size) when the log has a seal; its counts are what shows records,
   checkpoints or the seal removed from past the last signature (or added). Since the nineteenth
   round also ``"by"`` (who exported: account@host), ``"root"`` (RFC 9162 root of all its records)
   and ``"note"``: those statements as a signed note under the log's key (``header_body``), made
   where the private key is at hand. A verifier checks it and takes the counts from it; a header
   without one (earlier releases, or no key) is read as before and reported "not proven complete"
   (exit 3): its counts catch a cut file, not a forger who edits them too. Older verifiers ignore
   the new fields
2. ``{"type": "key", "key_id", "name", "pem"}`` — every public key the log has used
3. ``{"type": "checkpoint", "seq", "size", "root", "time", "key_id", "note"}`` — ``note`` is the
   signed text (``engine.audit.checkpoint``), the only field the verifier trusts
3b. ``{"type": "seal", "size", "note"}`` — the seal (``AuditLog.seal``), when the log has one: the
   records past the newest numbered checkpoint that only it signs are then signed offline too
   (huren releases before this line existed reject an export carrying it: an unknown line type)
4. ``{"type": "record", "seq", "hash", "data"}`` — ``data`` is the exact bytes of Merkle leaf
   ``seq``, RFC 8785 canonical: an AuditEvent, or an HTTP interaction's compact record (format 2,
   ``"f":2``; ``engine.audit.record`` documents its names and ``event_of`` derives its AuditEvent)

``verify_export`` checks it with public keys given separately (``--public-key``): keys shipped in
the file are only used when none are given, and the report then says so (``keys_from_export``; the
CLI exits 3, not 0), since whoever could rewrite the file could rewrite its keys too.
"""

from __future__ import annotations

import binascii
import getpass
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson
from cryptography.exceptions import UnsupportedAlgorithm

from engine.audit import merkle
from engine.audit.checkpoint import SEAL, note_signature, now_utc, signed_note
from engine.audit.keys import KEY_NAME, AuditKeys
from engine.audit.log import AuditLog
from engine.audit.verify import Report, Verifier, iter_records

FORMAT = "huren-audit-export"


def write_export(log: AuditLog, out: IO[bytes], *, checkpoint_first: bool = True) -> dict[str, Any]:
    """Write the whole log; signs a checkpoint of the current size first so every record is covered,
    and signs the header (``HEADER_NOTE``) when the private key is at hand."""
    log.refresh()  # another process (the server) may have appended since this log was opened
    if checkpoint_first and log.keys.can_sign and log.size:
        log.checkpoint()
    checkpoints = log.checkpoints.find(sort=[("seq", 1)])
    # the server may sign a checkpoint of records appended after our refresh: cover it too
    seal = log.meta.get(SEAL)  # read after the checkpoints: it signs at least what they do, or is stale
    size = max([log.size, *(cp.get("size", 0) for cp in checkpoints), int(seal.get("size", 0)) if seal else 0])
    header: dict[str, Any] = {"type": FORMAT, "version": 1, "origin": log.origin, "exported": now_utc(),
                              "records": size, "checkpoints": len(checkpoints)}
    if seal is not None:  # (its size: a seal line removed would leave the records only it signs "unsigned")
        header["sealed"] = seal.get("size")
    header["by"] = exporter()
    if log.keys.can_sign:
        root = _root_of(log, size)
        if root is not None:
            header["root"] = root.hex()
            header["note"] = signed_note(log.keys, header_body(header))[2]
    out.write(orjson.dumps(header) + b"\n")
    for pk in log.keys.public.values():
        out.write(orjson.dumps({"type": "key", "key_id": pk.key_id, "name": pk.name, "pem": pk.pem}) + b"\n")
    for cp in checkpoints:
        out.write(orjson.dumps({"type": "checkpoint", **{k: v for k, v in cp.items() if k != "_id"}}) + b"\n")
    if seal is not None:
        out.write(orjson.dumps({"type": "seal", "size": seal.get("size"), "note": seal.get("note")}) + b"\n")
    written = 0
    for doc in iter_records(log):
        if doc.get("seq", 0) >= size:
            break
        out.write(orjson.dumps({"type": "record", "seq": doc.get("seq"), "hash": doc.get("hash"),
                                "data": doc.get("data")}) + b"\n")
        written += 1
    return {**header, "written": written}


# ---------------------------------------------------------------- the signed header
# The header's statements as a C2SP signed note under the log's own key (``checkpoint.signed_note``).
# Its first line is no origin and its second no tree size, so it can never be read as a checkpoint
# (``parse_checkpoint`` wants a size there, then ``seq`` or ``seal``), nor a checkpoint as it.
HEADER_NOTE = "huren-audit-export"
# the header's fields the note states, in its order (``sealed`` only when the header has it)
SIGNED_FIELDS = ("origin", "records", "root", "checkpoints", "sealed", "exported", "by")


def exporter() -> str:
    """Who made the export: the operating-system account and host (one word each, as the note wants)."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # (no name for this uid, as in some containers)
        user = f"uid{os.getuid()}"
    return "".join(c if c.isprintable() and not c.isspace() else "_" for c in f"{user}@{socket.gethostname()}")


def header_body(header: dict[str, Any]) -> str:
    """The signed note's body for ``header``: a first line naming the format, then one line per field."""
    lines = [HEADER_NOTE] + [f"{name} {header[name]}" for name in SIGNED_FIELDS if name in header]
    return "\n".join(lines) + "\n"


def _root_of(log: AuditLog, size: int) -> bytes | None:
    """RFC 9162 root of records ``0..size-1``: from the stored tree (~log2 n node reads, what the
    log's proofs are served from) when the log knows that size, else from the records' bytes (a
    second pass; records never change once appended). The verifier recomputes it from the file's
    records, so a stored tree that disagrees with them shows there as a root mismatch. None when
    the records are not all there, numbered in place (a damaged log's export is not vouched for)."""
    if 0 < size <= log.size:
        try:
            return log.root_at(size)
        except (ValueError, LookupError):  # (a node unreadable: hash the records themselves)
            pass
    frontier = merkle.Frontier()
    for doc in iter_records(log):
        seq, data = doc.get("seq"), doc.get("data")
        if frontier.size >= size:
            break
        if seq != frontier.size or not isinstance(data, str):
            return None
        frontier.extend((merkle.leaf_hash(data.encode()),))
    return frontier.root() if frontier.size == size else None


def _signed_header(header: dict[str, Any], v: Verifier) -> dict[str, Any]:
    """The header as its signature states it. Signed: every field the note states must be the
    header's (else a named problem: the header edited) and the signature the log's, and the
    statements then are the note's. Unsigned (no ``note``: a release before this one, or an export
    made without the private key): the header as it is, and the report says what that proves."""
    report = v.report
    note = header.get("note")
    if note is None:
        report.header = "unsigned"
        report.notes.append(UNSIGNED_HEADER)
        return header
    report.header = "refused"  # (until its signature verifies: a problem is named below)
    try:
        stated, key_id, sig, body = _parse_header_note(note)
    except ValueError as exc:
        v.problem("header", f"the export's header: its signed statement is unreadable ({exc})")
        return header
    if not v.keys.verify(key_id, sig, body.encode()):
        why = "unknown key id" if key_id not in v.keys.public else "bad signature"
        v.problem("signature", f"the export's header: {why} {key_id}")
        return header
    report.header, report.header_key = "signed", key_id
    for name in SIGNED_FIELDS:
        said = str(header[name]) if name in header else None
        if said != stated.get(name):
            v.problem("header", f"the export's header says {name} {said!r}, its signed statement "
                      f"{stated.get(name)!r}: the header was edited")
    out = dict(header)
    for name in ("records", "checkpoints", "sealed"):
        if name in stated:
            out[name] = int(stated[name])
        else:
            out.pop(name, None)
    report.exported, report.exported_by = stated.get("exported", ""), stated.get("by", "")
    if stated.get("origin") != v.origin:
        v.problem("header", f"the export's header is signed for another log ({stated.get('origin')})")
    v.export_root(int(stated["records"]), bytes.fromhex(stated["root"]))
    return out


def _note_retired_header(v: Verifier) -> None:
    """Which given key is the newest, and a note when the header is signed by another. The order of
    ``--public-key`` arguments alone decided it, so keys given newest first noted a fresh export
    and kept quiet on a retired key's header. The export's own trusted checkpoints are evidence
    when they show a rotation (signed by two keys or more): the key of the newest one is the
    newest. Otherwise (one key signed them all, or none is trusted) the order given, oldest
    first. The report says which key was taken as newest, and from what."""
    report = v.report
    if report.header != "signed":
        return
    signers = v.checkpoint_keys()
    if len(set(signers)) > 1:
        report.newest_key, report.newest_from = signers[-1], "checkpoints"
    else:
        report.newest_key, report.newest_from = next(reversed(v.keys.public), report.header_key), "order given"
    if report.header_key != report.newest_key:
        report.notes.append(retired_header(report.header_key, report.newest_key))


def retired_header(key_id: str, newest: str) -> str:
    """The note on a header signed by a key older than the newest one given. A note, not a failure:
    an export made before a rotation is signed so, rightly, and nothing in the file tells when the
    newer key took over; but a retired private key in other hands can cut an export back to its
    own last checkpoint, forge records past it and sign the header, and that verifies the same."""
    return (f"the export's header is signed by key {key_id}, not by the newest key given ({newest}: from the "
            "export's checkpoints when they show a rotation, else the --public-key order, oldest first, as GET "
            "/audit/public-key and the export list them): an export made before that "
            "key took over, or a retired private key in someone else's hands; if the export is newer than the "
            "rotation (its time above), it is not what the log holds / 导出文件头由较旧的密钥签名：若导出晚于密钥轮换，"
            "文件可能被人用已停用的私钥伪造")


def _parse_header_note(note: Any) -> tuple[dict[str, str], str, bytes, str]:
    if not isinstance(note, str):
        raise ValueError(f"it is {type(note).__name__}, not text")
    body, sep, sigs = note.partition("\n\n")
    lines = body.split("\n")
    if not sep or lines[0] != HEADER_NOTE:
        raise ValueError(f"not a {HEADER_NOTE} note")
    stated: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(" ")
        if name not in SIGNED_FIELDS or name in stated or not value:
            raise ValueError(f"line {line!r}")
        stated[name] = value
    for name in ("origin", "records", "root", "checkpoints", "exported", "by"):
        if name not in stated:
            raise ValueError(f"no {name!r} line")
    try:
        for name in ("records", "checkpoints", "sealed"):
            if name in stated and not (stated[name].isascii() and stated[name].isdigit()):
                raise ValueError(f"{name} {stated[name]!r} is no count")
        if len(bytes.fromhex(stated["root"])) != 32:
            raise ValueError("the root is not 32 bytes")
        raw = note_signature(sigs)
    except binascii.Error as exc:
        raise ValueError(str(exc)) from exc
    if len(raw) != 68:
        raise ValueError("the signature is not 4 + 64 bytes")
    return stated, raw[:4].hex(), raw[4:], body + "\n"


UNSIGNED_HEADER = ("the export's header is not signed (made by a release before the nineteenth round, or where the "
                   "private key was not at hand): the checkpoints and seal prove the records they sign, but the "
                   "header's counts only catch a cut file, not a forger who removes the newest checkpoints or "
                   "records and edits the counts to match; check the report's records and root against the live "
                   "log (README, Audit trail) / 导出文件头未签名：检查点和封印证明其所签记录，但文件头的计数只能发现被截断的文件，"
                   "不能发现同时改了计数的伪造")


def _lines(fh: IO[bytes], verifier: list[Verifier]) -> Iterator[dict[str, Any]]:
    """The export's lines as objects, in order. A line that is not a JSON object among the records
    (from the second record line on) is named, not raised: at the end of the file it is a file cut
    short inside its last line (a copy that stopped), elsewhere a damaged line; either way the
    report says which line, and the records after it still verify (a lost record line shows as the
    gap it leaves). Before the verifier exists -- the header, a key, checkpoint or seal line, or
    the first record line (which cannot be told from those) -- it is ``ValueError``: the keys and
    signatures to verify against are not known, so nothing is verified ("cannot verify", exit 2)."""
    pending: tuple[int, str] | None = None  # (line number, what is wrong): named once we know if it was the last
    number = 0
    for raw in fh:
        number += 1
        if not raw.strip():
            continue
        if pending is not None:
            _bad_line(verifier, *pending, last=False)
            pending = None
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pending = (number, "is not JSON")
            continue
        if not isinstance(obj, dict):
            pending = (number, "is not a JSON object")
            continue
        yield obj
    if pending is not None:
        _bad_line(verifier, *pending, last=True)


def _bad_line(verifier: list[Verifier], number: int, what: str, *, last: bool) -> None:
    if not verifier:  # before the records: the file is unusable as an export
        raise ValueError(f"line {number} {what}")
    v = verifier[0]
    if last:
        v.problem("truncated", f"export truncated: line {number} {what} (the file ends inside a line: cut "
                  f"short; first record not read {v.next_record})", record=v.next_record)
    else:
        v.problem("malformed", f"line {number} {what} (damaged; next record expected {v.next_record})",
                  record=v.next_record)


def verify_export(path: Path, public_key_pems: list[bytes] | None = None) -> Report:
    """Verify an export file offline. ``ValueError`` when it is not an export at all (no header,
    a header without the fields every release wrote or with one of another type, a key line
    without its PEM or with one that is no Ed25519 key, two seal lines, a line that is no JSON
    object or of an unknown type before the records); a checkpoint or seal line whose signed note
    is unreadable is a problem in the report; anything wrong from the records on is a problem in
    the report, including a file holding fewer or more records than its header announces: the
    header is not signed, but records cut from past the last signature leave no other trace."""
    made: list[Verifier] = []  # the verifier, once made (the line reader names bad lines to it)
    with path.open("rb") as fh:
        lines = _lines(fh, made)
        header = next(lines, None)
        if not isinstance(header, dict) or header.get("type") != FORMAT:
            raise ValueError(f"{path}: not a huren audit export")
        origin = _check_header(header)
        key_lines: list[dict[str, Any]] = []
        checkpoints: list[dict[str, Any]] = []
        seal: dict[str, Any] | None = None
        first_record: dict[str, Any] | None = None
        for obj in lines:
            kind = obj.get("type")
            if kind == "key":
                key_lines.append(obj)
            elif kind == "checkpoint":
                checkpoints.append(obj)
            elif kind == "seal":
                if seal is not None:  # (a log has one seal: which of two would be the witness?)
                    raise ValueError("two seal lines (a log has one seal)")
                seal = obj
            elif kind == "record":
                first_record = obj
                break
            else:
                raise ValueError(f"{path}: unknown line type {kind!r}")
        keys = _keys(public_key_pems or [_pem_of(k) for k in key_lines])
        v = Verifier(keys, origin=origin)
        made.append(v)
        header = _signed_header(header, v)  # (its statements as signed, when signed)
        v.add_checkpoints(checkpoints)
        _note_retired_header(v)
        v.add_seal(seal)
        sealed = header.get("sealed")  # (the counts' shapes are ``_check_header``'s: a count here)
        if sealed is not None and (seal is None or seal.get("size") != sealed):
            v.problem("checkpoint", f"the export's header announces a seal of {sealed} records, the file "
                      + ("holds none: the seal removed" if seal is None else f"holds one of {seal.get('size')}"))
        said = header["checkpoints"]
        if said != len(checkpoints):
            # (removing the newest checkpoints leaves the records only they signed "unsigned", and
            # then alterable with no trace: the header's count is the witness, as for records)
            v.problem("checkpoint", f"the export's header announces {said} checkpoint(s), the file holds "
                      f"{len(checkpoints)}: checkpoints {'removed' if said > len(checkpoints) else 'added'}")

        def records() -> Iterator[dict[str, Any]]:
            if first_record is not None:
                yield first_record
            for obj in lines:
                if obj.get("type") != "record":
                    v.problem("malformed", f"a {obj.get('type')!r} line among the records (after record "
                              f"{v.next_record - 1})", record=v.next_record)
                    continue
                yield obj

        v.add_records(records())
        v.announced(header["records"])
        report = v.finish()
        if report.header == "signed" and report.ok and report.unsigned:
            report.notes.append(f"records {report.signed_size}..{report.records - 1}, past the log's newest "
                                f"checkpoint or seal, are signed by the export's header only: as they were when "
                                f"exported ({report.exported}, {report.exported_by}), not as they were appended")
        if not public_key_pems:
            report.keys = "export"
            report.notes.append(SELF_KEYED)
        return report


# What a check against the file's own keys proves: the file agrees with itself, nothing more.
SELF_KEYED = ("no --public-key given: checked only against the public keys the export itself carries, which "
              "proves nothing against a forger who re-signed the file with a key of their own embedded; verify "
              "again with the deployment's public key (GET /audit/public-key) given as --public-key / 未给出 "
              "--public-key：只用导出文件自带的公钥核对，伪造者换上自己的密钥重新签名也能通过，不能证明文件未被篡改；"
              "请用部署方的公钥（GET /audit/public-key）以 --public-key 再核对一次")


def _count(header: dict[str, Any], name: str, *, optional: bool = False) -> None:
    value = header.get(name)
    if optional and name not in header:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"the header's {name!r} is {value!r}, not a count: not an export as huren writes it")


def _check_header(header: dict[str, Any]) -> str:
    """The header's origin, once every field the verifier relies on has the shape every huren
    release wrote (version 1, origin, the record and checkpoint counts; ``sealed`` when the log
    had a seal): a count missing or of another type would silently switch off the check it
    feeds, and an origin that is no text would switch off (null) or confuse the origin check, so
    such a file is not verified at all (``ValueError``: "cannot verify", exit 2)."""
    if header.get("version") != 1 or isinstance(header.get("version"), bool):
        raise ValueError(f"export version {header.get('version')!r}: this huren reads version 1")
    origin = header.get("origin")
    if not isinstance(origin, str) or not origin:
        raise ValueError(f"the header's 'origin' is {origin!r}, not the log's name: not an export as huren writes it")
    _count(header, "records")
    _count(header, "checkpoints")
    _count(header, "sealed", optional=True)
    return origin


def _pem_of(line: dict[str, Any]) -> bytes:
    pem = line.get("pem")
    if not isinstance(pem, str) or not pem:
        raise ValueError(f"a key line ({line.get('key_id')!r}) carries no PEM text")
    return pem.encode()


def _keys(pems: list[bytes]) -> AuditKeys:
    """The verification keys; a PEM that is no Ed25519 public key is "cannot verify", whichever
    error the parser raises for it."""
    try:
        return AuditKeys.from_public_pems(KEY_NAME, pems)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"a public key cannot be read ({exc})") from exc
