"""Staff sign-in figures: what a page request costs when authenticated by a session cookie instead of a
bearer token, what one password + TOTP sign-in costs (scrypt dominates, by design), and what the
login throttle costs per attempt now that its state is in the store (shared by every worker).

    python bench/staff.py [--quick]

Prints one line per figure. Runs on a temporary data directory with the real SQLite store.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import pyotp  # noqa: E402

from bench.common import rate  # noqa: E402
from engine.engine import Engine  # noqa: E402
from engine.settings import Settings  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small counts (CI / make bench)")
    args = ap.parse_args()
    n = 300 if args.quick else 5000
    with tempfile.TemporaryDirectory() as tmp, Engine(Settings(data_dir=Path(tmp))) as engine:
        staff = engine.staff
        enrolment = staff.directory.add("wang.li", role="auditor", institution="YBJ", password="bench-password-1",
                                        roles=staff.roles)
        totp = pyotp.TOTP(enrolment.secret)
        clock = [time.time()]
        staff.clock = lambda: clock[0]

        def sign_in() -> str:
            clock[0] += 30  # each TOTP step's code is accepted once
            return staff.sign_in("wang.li", "bench-password-1", totp.at(clock[0]), address="10.0.0.1",
                                 device=None).token

        rate("sign-in: scrypt password + TOTP + new session", max(5, n // 100), sign_in)
        token = sign_in()
        rate("session cookie -> Caller (no idle-clock write)", n, lambda: staff.session(token).caller)

        def busy() -> None:
            clock[0] += 2  # seen more than 1 s ago: the idle clock is written
            staff.session(token)

        rate("session cookie -> Caller (with idle-clock write)", n, busy)
        header = f"Bearer {engine.auth.issue_system_token('auditor-x', 'system/DetectedIssue.rs', kind='auditor')}"
        rate("bearer token -> Caller (cached signature), for comparison", n, lambda: engine.auth.authenticate(header))

        throttle = staff.throttle
        i = [0]

        def failed() -> None:
            i[0] += 1
            clock[0] += 0.01
            throttle.failed(f"10.1.{i[0] % 250}.{i[0] % 7}", f"user{i[0] % 50}")

        rate("throttle: record a failed sign-in", n, failed)
        rate("throttle: check an attempt (address and account limits)", n,
             lambda: throttle.wait("10.1.3.3", "user3", False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
