"""What one Merkle leaf per group of audit records would save on a read (issue 15, thirty-fourth
round, perf34): a measurement of a log format, not the format. Runs ``bench/asgi_reads.py`` with
``AuditLog._prepare`` replaced, for a group of two or more request records (``Sealed``), by the
append a group leaf would make: the records numbered, **one** leaf, **one** step of the tree's right
edge (``Frontier.push``), **one** frame (``encode``: one CRC a group); the ``write()``, the locks and the
checkpoint check are per group already:

- ``digests``: the leaf is SHA-256(0x02 || SHA-256(0x00 || record) for each record). The form a real
  format would need: a resident's inclusion proof for their record then carries the other records'
  digests (salted, so unguessable: ``engine.audit.record``), never their bytes.
- ``bytes``: the leaf is SHA-256(0x02 || the records' bytes joined): the upper bound (one hash a
  group), which no real format may use, since a proof of one record would disclose the group's
  other records (who read which patient's file).

A lone record (one caller, lone mode: ``engine.audit.group_commit``) is appended as today: a group
leaf cannot change anything there. The log this writes is not a valid log (its records are named
``audit-<leaf>.<i>`` and its frames hold a group's bytes); it lives in the bench's temporary
directory only.

    CALLGRIND=1 KEEP_SECONDS=0.5 valgrind --tool=callgrind --separate-threads=yes --collect-atstart=no \\
        --toggle-collect=sys_call_tracing --callgrind-out-file=/dev/shm/gl.out \\
        python bench/group_leaf_ceiling.py digests audited 504 8
    (then the ``summary:`` line of /dev/shm/gl.out-01, divided by 504; ``none`` in place of ``digests``
    runs ``bench/asgi_reads.py`` unchanged, the base to compare with in the same tree)
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

VARIANTS = ("none", "digests", "bytes")
GROUP_LEAF_PREFIX = b"\x02"  # (0x00 is a record's leaf, 0x01 a node: RFC 9162)


def group_leaf(datas: Sequence[bytes], variant: str) -> bytes:
    """The group's leaf hash in ``variant`` (see the module docstring)."""
    sha = hashlib.sha256
    if variant == "digests":
        return sha(GROUP_LEAF_PREFIX + b"".join([sha(b"\x00" + d).digest() for d in datas])).digest()
    if variant == "bytes":
        return sha(GROUP_LEAF_PREFIX + b"\n".join(datas)).digest()
    raise ValueError(f"no group leaf {variant!r}; one of {VARIANTS[1:]}")


def grouped_prepare(variant: str) -> Callable[..., Any]:
    """``AuditLog._prepare`` with a group of request records appended as one leaf in ``variant``."""
    from engine.audit.appends import Appended, Appends
    from engine.audit.record import Sealed

    original = Appends._prepare
    made = tuple.__new__

    def _prepare(self: Any, events: Sequence[Any]) -> Any:
        if len(events) < 2 or any(type(e) is not Sealed for e in events):
            return original(self, events)
        self._refuse_if_damaged()
        frontier = self._frontier.copy()
        seq = frontier.size
        datas = [b'%s,"id":"audit-%d.%d"%s' % (e[0], seq, i, e[1]) for i, e in enumerate(events)]
        leaf = group_leaf(datas, variant)
        rows = [(seq, leaf, b"[" + b",".join(datas) + b"]", frontier.push(leaf))]
        # (no search keys noted: ``index_keys`` reads the group's back, as another process's -- perfa41's _prepare
        # returns the keys it made at the request as a fourth value)
        return [made(Appended, (seq, leaf, d)) for d in datas], rows, frontier, {}

    return _prepare


def main() -> None:
    variant = sys.argv.pop(1)
    if variant not in VARIANTS:
        raise SystemExit(f"usage: group_leaf_ceiling.py {{{'|'.join(VARIANTS)}}} audited|plain READS CALLERS")
    if variant != "none":
        from engine.audit.log import AuditLog

        AuditLog._prepare = grouped_prepare(variant)  # type: ignore[method-assign]
    import asgi_reads

    asgi_reads.main()


if __name__ == "__main__":
    main()
