"""A small JSON file of secrets (client registry, staff accounts): re-read when it changes, written
atomically and readable by its owner only.

``huren client add`` and ``huren staff add`` write the file while a server may be running; the
server notices by the file's modification time, so no restart is needed. A write goes to a fresh
temporary file (mode 0600, never an existing one) that then replaces the old file in one step, so a
reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class SecretJsonFile(Generic[T]):
    """``read()`` gives ``parse(json)`` of the file, cached until the file changes; ``write(body)``."""

    def __init__(self, path: Path, parse: Callable[[dict[str, Any]], T], empty: Callable[[], T], *,
                 indent: int = 2) -> None:
        self.path = path
        self._parse = parse
        self._empty = empty
        self._indent = indent
        # (inode, mtime, size) of the file last parsed: every write replaces the file (a new inode), so a
        # second ``huren client add`` within the file system's timestamp granularity is seen too
        self._mtime: tuple[int, int, int] | None = None
        self._value: T = empty()

    def read(self) -> T:
        try:
            st = self.path.stat()
            mtime = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            self._value, self._mtime = self._empty(), None
            return self._value
        if mtime != self._mtime:
            self._value = self._parse(json.loads(self.path.read_text("utf-8")))
            self._mtime = mtime
        return self._value

    def write(self, body: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(body, fh, ensure_ascii=False, indent=self._indent)
        os.replace(tmp, self.path)
        self._mtime = None
