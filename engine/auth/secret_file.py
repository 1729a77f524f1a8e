"""A small JSON file of secrets (client registry, staff accounts): re-read when it changes, written
atomically and readable by its owner only.

``huren client add`` and ``huren staff add`` write the file while a server may be running; the
server notices by the file's (inode, mtime, size), so no restart is needed. A write goes to a fresh
temporary file (mode 0600, never an existing one) that then replaces the old file in one step, so a
reader sees the old file or the new one, never half of one.

Two writes within one timestamp tick may give the same (inode, mtime, size) -- ext4 hands a freed
inode to the next new file, and a file system may keep whole seconds -- so git's "racy clean" rule
applies: a file whose mtime is not older than ``RACY_NS`` before our read of it is read again next
time (its bytes compared; parsed only when they differ).

A file that does not parse (an operator's hand edit: a trailing comma) is refused, not guessed
around: every ``read`` raises ``SecretFileUnreadable`` (503, an OperationOutcome, logged once per
state of the file) until it is mended. The last good copy is not kept serving: the edit may have
been meant to remove a client or narrow its scopes, and a server that went on honouring the old
registration would grant what the operator has just taken away (an auth server fails closed).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from engine.errors import FhirError

T = TypeVar("T")
log = logging.getLogger(__name__)
# a file modified this close to (or after) our read of it may change again unseen within its tick
RACY_NS = 2_000_000_000


class SecretFileUnreadable(FhirError):
    """The registry file does not parse: no request that depends on it is decided (503)."""

    status, code = 503, "transient"


class SecretJsonFile(Generic[T]):
    """``read()`` gives ``parse(json)`` of the file, cached until the file changes; ``write(body)``."""

    def __init__(self, path: Path, parse: Callable[[dict[str, Any]], T], empty: Callable[[], T], *,
                 indent: int = 2) -> None:
        self.path = path
        self._where = os.fspath(path)  # ``os.stat`` of a str: ``Path.stat`` is Python around it (read per request)
        self._parse = parse
        self._empty = empty
        self._indent = indent
        # (inode, mtime, size) of the file last parsed: every write replaces the file (a new inode)
        self._mtime: tuple[int, int, int] | None = None
        self._racy = False  # the file last read was modified within a tick of our read: read again
        self._raw: bytes | None = None
        self._value: T = empty()
        self._broken: tuple[int, int, int] | None = None  # the state last logged as not parsing
        self._absent = False  # the last look found no file

    def read(self) -> T:
        if self._absent and not os.access(self._where, os.F_OK):
            # still absent: ``os.access`` says so without the FileNotFoundError ``os.stat`` raises and
            # this would drop -- on every request that looks a client up while no file was written
            # (thirty-fifth round, attr35). Unreachable counts as absent: nothing granted (fail closed).
            self._value = self._empty()
            return self._value
        try:
            now = time.time_ns()
            st = os.stat(self._where)
            mtime = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            self._value, self._mtime, self._raw, self._racy = self._empty(), None, None, False
            self._absent = True
            return self._value
        self._absent = False
        if mtime != self._mtime or self._racy:
            raw = self.path.read_bytes()
            if raw != self._raw or self._mtime is None:
                try:
                    value = self._parse(json.loads(raw.decode("utf-8")))
                except (ValueError, TypeError, KeyError, AttributeError) as exc:
                    self._refuse(mtime, exc)
                self._value, self._raw = value, raw
            self._mtime = mtime
            self._racy = st.st_mtime_ns >= now - RACY_NS
        return self._value

    def _refuse(self, state: tuple[int, int, int], exc: Exception) -> None:
        if state != self._broken:
            self._broken = state
            log.error("%s does not parse (%s): every request that needs it is refused (503) until it is mended",
                      self.path, exc)
        self._mtime, self._raw = None, None
        raise SecretFileUnreadable(f"{self.path.name} cannot be read: the server refuses until it is mended",
                                   headers={"Retry-After": "60"}) from None

    def write(self, body: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(body, fh, ensure_ascii=False, indent=self._indent)
        os.replace(tmp, self.path)
        self._mtime, self._raw = None, None
