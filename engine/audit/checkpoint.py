"""Signed checkpoints: the C2SP ``tlog-checkpoint`` text in a C2SP ``signed-note``.

A checkpoint commits to the whole log at one size. Text (UTF-8, every line ends in ``\\n``)::

    example.org/audit                      <- origin: which log (fixed when the log starts)
    1024                                   <- tree size, decimal
    Q2hlY2twb2ludCByb290IGhhc2g...=        <- root hash, base64 (RFC 9162 MTH of the first 1024 records)
    time 2026-11-23T11:30:00.123456Z       <- extension line: when it was signed (UTC)
    seq 7                                  <- extension line: checkpoint number, 0, 1, 2... (a deleted
                                              checkpoint leaves a gap the verifier reports)
    seal                                   <- in place of ``seq`` in the seal only (``AuditLog.seal``): the seal
                                              has no number, so no number is ever signed over two roots
    recovered 1000                         <- optional extension line: records 1000..size-1 were signed as
                                              found (at a process's start, or a damaged file's records
                                              taken back), not by the process that appended them; the
                                              checkpoint is signed over exactly those records (records a
                                              live writer appended after them get the next checkpoint)

    — huren-audit Ab3d...                  <- signature line: key name, base64(key_hash[4] || Ed25519 sig[64])

The Ed25519 signature covers the body: every byte before the blank line, including its last
newline. ``key_hash`` is the 4-byte C2SP key id (see ``engine.audit.keys``), so a checkpoint names
the key that signed it and key rotation keeps old checkpoints verifiable.

Why ``recovered``: records past the latest checkpoint are bound by no signature. A process that
starts and finds such a tail (the one that appended it stopped before signing: ``kill -9``, a power
cut) cannot tell those records from a forgery made while nothing was running, with the leaf hashes,
tree nodes and CRCs recomputed. It signs them all the same (later records must be bound to them),
but says so in the signed text, where deleting the statement breaks the signature or leaves a gap
in the checkpoint numbers; ``huren audit verify`` reports the range. C2SP lets a checkpoint carry
extension lines after the root hash: this parser accepts any (a verifier that does not know one
still checks the signature over it). huren releases before the one that says so in the README
accepted only ``time`` and ``seq`` and reject a checkpoint carrying ``recovered``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime

from engine.audit.keys import AuditKeys

SIG_PREFIX = "\u2014 "  # em dash + space, as in C2SP signed notes
SEAL = "seal"  # ``audit_meta``'s document holding the seal: the whole log signed in place (``AuditLog.seal``)


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    time: str
    seq: int
    key_id: str
    signature: bytes
    text: str
    recovered: int | None = None  # records recovered..size-1 were signed as found (see above)
    seal: bool = False  # the seal (a ``seal`` line, no ``seq``: it carries no checkpoint number; ``seq`` is -1)

    def body(self) -> str:
        """The signed body as stored (extension lines this release does not know included)."""
        return self.text.partition("\n\n")[0] + "\n"

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {"seq": self.seq, "size": self.size, "root": self.root.hex(), "time": self.time,
                                  "key_id": self.key_id, "origin": self.origin, "note": self.text}
        if self.seal:  # no number: a monitor must never see one number signed over two roots
            del out["seq"]
            out["seal"] = True
        if self.recovered is not None:
            out["recovered"] = self.recovered
        return out


class CheckpointError(ValueError):
    """A checkpoint that cannot be parsed."""


def body_text(origin: str, size: int, root: bytes, time: str, seq: int, recovered: int | None = None,
              seal: bool = False) -> str:
    tail = "" if recovered is None else f"recovered {recovered}\n"
    number = "seal" if seal else f"seq {seq}"
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\ntime {time}\n{number}\n{tail}"


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sign_checkpoint(keys: AuditKeys, origin: str, size: int, root: bytes, seq: int,
                    time: str | None = None, *, recovered: int | None = None, seal: bool = False) -> Checkpoint:
    """``recovered``: the first of the records this signer found rather than appended (``None``:
    none); a value at or past ``size`` states nothing and is left out. ``seal``: the seal, with a
    ``seal`` line in place of ``seq`` (``seq`` is ignored and -1 in the result)."""
    if recovered is not None and not 0 <= recovered < size:
        recovered = None
    time = time or now_utc()
    seq = -1 if seal else seq
    body = body_text(origin, size, root, time, seq, recovered, seal)
    key_id, sig, text = signed_note(keys, body)
    return Checkpoint(origin, size, root, time, seq, key_id, sig, text, recovered, seal)


def signed_note(keys: AuditKeys, body: str) -> tuple[str, bytes, str]:
    """``body`` signed as a C2SP signed note: the key id, the signature and the note's text (the
    body, a blank line, one signature line). Any body: the tests sign hand-written ones with it."""
    key_id, sig = keys.sign(body.encode())
    line = f"{SIG_PREFIX}{keys.name} {base64.b64encode(bytes.fromhex(key_id) + sig).decode()}\n"
    return key_id, sig, body + "\n" + line


def note_signature(sigs: str) -> bytes:
    """The key id and signature (4 + 64 bytes expected) of a signed note's one signature line --
    ``sigs``, what follows the blank line -- as ``signed_note`` writes it. Read for checkpoints and
    for an export's signed header alike. Raises ``CheckpointError`` for no or several signature
    lines, ``ValueError``/``binascii.Error`` for a malformed one."""
    sig_lines = [line for line in sigs.split("\n") if line]
    if len(sig_lines) != 1 or not sig_lines[0].startswith(SIG_PREFIX):
        raise CheckpointError("expected exactly one signature line")
    _, blob = sig_lines[0][len(SIG_PREFIX):].rsplit(" ", 1)
    return base64.b64decode(blob, validate=True)


def parse_checkpoint(text: str) -> Checkpoint:
    """The origin, size and root hash, then extension lines (C2SP ``tlog-checkpoint``: any number,
    each non-empty): huren's ``time`` and ``seq`` (required), ``recovered`` (optional), and any line a
    later release adds, kept in the text and covered by the signature like the rest of the body.
    (Releases before the twelfth round's fixes accepted exactly ``time`` and ``seq``: they reject a
    checkpoint with ``recovered`` or any other extension line.)"""
    if not isinstance(text, str):  # (an export's note is whatever JSON the file holds)
        raise CheckpointError(f"the signed note is {type(text).__name__}, not text")
    body, sep, sigs = text.partition("\n\n")
    if not sep:
        raise CheckpointError("no blank line between body and signature")
    lines = body.split("\n")
    if len(lines) < 3 or any(not line for line in lines):
        raise CheckpointError("body must be origin, size, root hash and extension lines (none empty)")
    ext: dict[str, str] = {}
    for line in lines[3:]:
        name, _, value = line.partition(" ")
        if name in ("time", "seq", "recovered", "seal"):
            if name in ext:
                raise CheckpointError(f"extension line {name!r} appears twice")
            ext[name] = value
    seal = "seal" in ext
    if seal and ext["seal"]:
        raise CheckpointError("the 'seal' extension line carries nothing after it")
    if "time" not in ext or seal == ("seq" in ext):
        raise CheckpointError("body must carry a 'time …' extension line and either 'seq …' or 'seal' (not both)")
    try:
        size, seq = int(lines[1]), -1 if seal else int(ext["seq"])
        recovered = int(ext["recovered"]) if "recovered" in ext else None
        if recovered is not None and not 0 <= recovered < size:
            raise CheckpointError(f"recovered {recovered} is outside 0..{size - 1}")
        root = base64.b64decode(lines[2], validate=True)
        raw = note_signature(sigs)
    except (ValueError, binascii.Error) as exc:
        raise CheckpointError(f"malformed checkpoint: {exc}") from exc
    if len(root) != 32 or len(raw) != 68:
        raise CheckpointError("root hash must be 32 bytes and the signature 4 + 64 bytes")
    return Checkpoint(lines[0], size, root, ext["time"], seq, raw[:4].hex(), raw[4:], text, recovered, seal)


def verify_checkpoint(cp: Checkpoint, keys: AuditKeys) -> bool:
    """Check the signature over the body bytes exactly as stored (not a re-rendering of them)."""
    return keys.verify(cp.key_id, cp.signature, (cp.text.partition("\n\n")[0] + "\n").encode())
