"""A counter of token revocations shared by every process on one SQLite store, read without a
system call.

Why: a bearer read asked the store "is this token revoked?" on every request (one SQL ``SELECT`` of
``auth_revoked``, ~15 % of an audited read's instructions with its Python around it, twenty-ninth
round), although a token is revoked once in its life at most. ``AuthService.authenticate`` now keeps
what it decided for a token together with this counter's value taken before it looked, and decides
afresh only when the counter has moved. Every revocation goes through ``AuthService.revoke_jti``,
which writes the row and then bumps the counter; the counter is a file beside the SQLite database
mapped into each process's memory (``MAP_SHARED``: the server's workers, ``huren`` commands), so a
revocation written by any of them is seen by the next request of every other: a request that starts
after ``revoke_jti`` returned reads the new value and looks the token up again.

Only where the store is one SQLite file on this machine: with MongoDB another node's revocation
never touches this file, so ``for_store`` gives None and every request asks the store, as before.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
from pathlib import Path
from typing import Any

_U64 = struct.Struct("<Q")
SUFFIX = "-auth-generation"


class SharedCounter:
    """An unsigned 64-bit counter in an 8-byte file, mapped shared; ``bump`` under ``flock``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < _U64.size:
                with _locked(fd):
                    if os.fstat(fd).st_size < _U64.size:
                        os.ftruncate(fd, _U64.size)
            self._map = mmap.mmap(fd, _U64.size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self.value = self._value  # bound once: read on every authenticated request

    def _value(self) -> int:
        return _U64.unpack_from(self._map)[0]

    def bump(self) -> None:
        """One more, seen by every process mapping the file (other processes' bumps are not lost:
        the read-modify-write holds the file's lock)."""
        with _locked(self._fd):
            _U64.pack_into(self._map, 0, (_U64.unpack_from(self._map)[0] + 1) & 0xFFFF_FFFF_FFFF_FFFF)

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)


class _locked:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __enter__(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: Any) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)


def for_store(store: Any) -> SharedCounter | None:
    """The revocation counter of ``store``: beside its SQLite file, or None (MongoDB, in memory)."""
    from engine.repository.sqlite_store import SqliteStore

    if not isinstance(store, SqliteStore) or str(store.path) == ":memory:":
        return None
    try:
        return SharedCounter(Path(str(store.path) + SUFFIX))
    except OSError:  # a read-only directory: no counter, every request asks the store
        return None
