"""Where one-time login codes go: pluggable, chosen by ``settings.extra["otp_sender"]``.

``file`` (default, development) appends one JSON line per code to ``data_dir/otp/outbox.jsonl``
(mode 0600) and logs that a code was written; ``console`` logs the code itself. A production SMS
gateway is a class with the same ``send`` method named as ``"package.module:ClassName"``; it is
built with the ``Settings`` and receives the phone numbers on the resident's Patient records.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Protocol

from engine.settings import Settings

log = logging.getLogger("huren.auth.otp")


class CodeSender(Protocol):
    def send(self, *, phones: list[str], code: str, purpose: str) -> None: ...


def mask(phone: str) -> str:
    return phone[:3] + "*" * max(0, len(phone) - 7) + phone[-4:] if len(phone) > 7 else "*" * len(phone)


class FileSender:
    """Development sender: the 'SMS' lands in a file an operator (or a test) can read."""

    def __init__(self, settings: Settings) -> None:
        self.path = Path(settings.data_dir) / "otp" / "outbox.jsonl"
        self._lock = threading.Lock()

    def send(self, *, phones: list[str], code: str, purpose: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"at": dt.datetime.now(dt.UTC).isoformat(), "to": phones, "code": code,
                           "purpose": purpose}, ensure_ascii=False)
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        log.info("one-time code for %s written to %s", ", ".join(mask(p) for p in phones) or "(no phone)", self.path)


class ConsoleSender:
    def __init__(self, settings: Settings) -> None:
        pass

    def send(self, *, phones: list[str], code: str, purpose: str) -> None:
        log.warning("one-time %s code for %s: %s", purpose, ", ".join(mask(p) for p in phones) or "(no phone)", code)


def build_sender(settings: Settings) -> CodeSender:
    name = str(settings.extra.get("otp_sender", "file"))
    if name == "file":
        return FileSender(settings)
    if name == "console":
        return ConsoleSender(settings)
    module_name, _, cls_name = name.partition(":")
    if not cls_name:
        raise ValueError(f"otp_sender {name!r}: use 'file', 'console' or 'package.module:ClassName'")
    return getattr(importlib.import_module(module_name), cls_name)(settings)
