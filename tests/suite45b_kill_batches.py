"""The messages rv40j's kill -9 probe sends (``tests/test_rv40j_probes.py``), in a module of their own (suite45b).

The probe's child process (an ingest killed mid-batch) and the test that checks what it left must make the same
bytes from one rule. The child had imported the test module for them, and with it pytest, ``tests.conftest`` and
the FastAPI test client -- ~0.8 s of CPU a child, three children a run, for three small functions. Here they stand
on ``bench.ingest`` alone."""

from __future__ import annotations

from collections.abc import Callable

from bench.ingest import oru_lab


def _gb18030(n: int) -> bytes:
    """``oru_lab(n)`` sent as GB18030 (MSH-18 says so): its Chinese bytes are not UTF-8."""
    return oru_lab(n).decode().replace("UNICODE UTF-8", "GB18030").encode("gb18030")


def _big(n: int) -> bytes:
    """``oru_lab(n)`` with a ~1 MB comment after its results."""
    return oru_lab(n) + ("NTE|1||" + "血常规复查" * 70_000 + "\r").encode()


_MAKE: dict[str, Callable[[int], bytes]] = {"utf8": oru_lab, "gb": _gb18030, "big": _big}


def message(kind: str, n: int) -> bytes:
    """The message the kill probe's child and parent both make (``kind``: utf8, gb, big)."""
    return _MAKE[kind](n)


def peer(n: int) -> str:
    """Each message's own sender address: the journal's record of a batch keeps each raw with its own."""
    return f"10.0.{n % 250}.1:{n}"
