"""Self-contained audit export (JSON lines) and its offline verification.

One JSON object per line, in this order, so a verifier streams the file once:

1. ``{"type": "huren-audit-export", "version": 1, "origin", "exported", "records", "checkpoints"}``, and
   ``"sealed"`` (the seal's size) when the log has a seal. The header is not signed; its counts are
   what shows records, checkpoints or the seal removed from past the last signature (or added), which
   no signature can
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
the file are only used when none are given, and the report then says so, since whoever could
rewrite the file could rewrite its keys too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from engine.audit.checkpoint import SEAL, now_utc
from engine.audit.keys import KEY_NAME, AuditKeys
from engine.audit.log import AuditLog
from engine.audit.verify import Report, Verifier, iter_records

FORMAT = "huren-audit-export"


def write_export(log: AuditLog, out: IO[bytes], *, checkpoint_first: bool = True) -> dict[str, Any]:
    """Write the whole log; signs a checkpoint of the current size first so every record is covered."""
    log.refresh()  # another process (the server) may have appended since this log was opened
    if checkpoint_first and log.keys.can_sign and log.size:
        log.checkpoint()
    checkpoints = log.checkpoints.find(sort=[("seq", 1)])
    # the server may sign a checkpoint of records appended after our refresh: cover it too
    seal = log.meta.get(SEAL)  # read after the checkpoints: it signs at least what they do, or is stale
    size = max([log.size, *(cp.get("size", 0) for cp in checkpoints), int(seal.get("size", 0)) if seal else 0])
    header = {"type": FORMAT, "version": 1, "origin": log.origin, "exported": now_utc(),
              "records": size, "checkpoints": len(checkpoints)}
    if seal is not None:  # (its size: a seal line removed would leave the records only it signs "unsigned")
        header["sealed"] = seal.get("size")
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


def _lines(fh: IO[bytes], verifier: list[Verifier]) -> Iterator[dict[str, Any]]:
    """The export's lines as objects, in order. A line that is not a JSON object is named, not
    raised: at the end of the file it is a file cut short inside its last line (a copy that
    stopped), elsewhere a damaged line; either way the report says which line, and the records
    after it still verify (a lost record line shows as the gap it leaves)."""
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
    an unknown line type before the records); anything wrong from the records on is a problem in
    the report, including a file holding fewer or more records than its header announces: the
    header is not signed, but records cut from past the last signature leave no other trace."""
    made: list[Verifier] = []  # the verifier, once made (the line reader names bad lines to it)
    with path.open("rb") as fh:
        lines = _lines(fh, made)
        header = next(lines, None)
        if not isinstance(header, dict) or header.get("type") != FORMAT:
            raise ValueError(f"{path}: not a huren audit export")
        origin = header["origin"]
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
                seal = obj
            elif kind == "record":
                first_record = obj
                break
            else:
                raise ValueError(f"{path}: unknown line type {kind!r}")
        if public_key_pems:
            keys = AuditKeys.from_public_pems(KEY_NAME, public_key_pems)
            note = None
        else:
            keys = AuditKeys.from_public_pems(KEY_NAME, [k["pem"].encode() for k in key_lines])
            note = "no --public-key given: checked against the keys inside the export itself"
        v = Verifier(keys, origin=origin)
        made.append(v)
        v.add_checkpoints(checkpoints)
        v.add_seal(seal)
        sealed = header.get("sealed")
        if isinstance(sealed, int) and not isinstance(sealed, bool) and (seal is None or seal.get("size") != sealed):
            v.problem("checkpoint", f"the export's header announces a seal of {sealed} records, the file "
                      + ("holds none: the seal removed" if seal is None else f"holds one of {seal.get('size')}"))
        said = header.get("checkpoints")
        if isinstance(said, int) and not isinstance(said, bool) and said != len(checkpoints):
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
        announced = header.get("records")
        if isinstance(announced, int) and not isinstance(announced, bool):
            v.announced(announced)
        report = v.finish()
        if note:
            report.notes.append(note)
        return report
