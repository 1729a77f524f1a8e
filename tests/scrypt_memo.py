"""The suite's memo of ``hashlib.scrypt`` (forty-sixth round, suite46e): one computation per exact input.

Why: client secrets and staff passwords are hashed and checked with stdlib scrypt at the production cost
(``engine.auth.clients``: n=2**14, r=8, p=1, ~40 ms of CPU a call), and the suite checks the same secret
against the same stored hash again and again -- every token request of a registered client, every staff
sign-in, every unknown name checked against ``staff_session._dummy_hash``. In a fixed sample of 77 files that
register clients or staff or ask tokens, 47 of 103 scrypt calls (~1.9 of ~4.3 s of CPU) repeated an earlier
call's exact arguments; test_auth_token with test_staff_signin: 59 of 106 (4.4 -> 1.9 s).

What: scrypt is a deterministic function of (password, salt, n, r, p, maxmem, dklen), so the suite keeps each
result under exactly those arguments and gives it back on a repeat. Nothing else changes: the engine still
hashes with fresh random salts at its real cost, ``check_secret`` still reads the cost from the stored hash,
compares digests and rejects a wrong secret (a wrong secret is another input: computed, never matched against
a kept one). ``maxmem`` is part of the key, so a check whose memory limit differed from the hash's still runs
scrypt once with its own limit (its refusal, were the limit too small, still surfaces). Calls that raise are
not kept. Production is untouched: only the test process's ``hashlib.scrypt`` is wrapped (the ``huren``
processes tests start compute scrypt themselves).

Exempt: a test that measures what scrypt costs -- sign-in timing (an unknown name costing what a wrong
password costs), or the KDF's real work -- asks for the ``real_scrypt`` fixture (tests/conftest.py), which puts
the real function back for that test. None in the suite did when this was written: the sign-in throttle and
rate limits run on an injected clock, and the tests of the stored hash read its text (``scrypt$...``).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable

REAL_SCRYPT: Callable[..., bytes] = hashlib.scrypt
_kept: dict[tuple[bytes, bytes, int, int, int, int, int], bytes] = {}
_lock = threading.Lock()


def memo_scrypt(
    password: bytes, *, salt: bytes, n: int, r: int, p: int, maxmem: int = 0, dklen: int = 64
) -> bytes:
    """``hashlib.scrypt`` with the same signature and result; a repeat of exact inputs is not computed again."""
    try:
        key = (bytes(password), bytes(salt), int(n), int(r), int(p), int(maxmem), int(dklen))
    except (TypeError, ValueError):  # not bytes-like: the real function raises its own error
        return REAL_SCRYPT(password, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=dklen)
    with _lock:
        kept = _kept.get(key)
    if kept is not None:
        return kept
    derived = REAL_SCRYPT(password, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=dklen)
    with _lock:
        _kept[key] = derived
    return derived


def install() -> None:
    """Route ``hashlib.scrypt`` (as the engine calls it: ``hashlib.scrypt(...)``) through the memo."""
    hashlib.scrypt = memo_scrypt  # type: ignore[assignment]
