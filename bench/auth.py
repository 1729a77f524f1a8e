"""Auth figures: access-token issue and verify rates, the client_credentials round trip over HTTP,
and the cost of a resident's compartment lookup.

    python bench/auth.py [--quick]

Prints one line per figure. Runs on a temporary data directory with the real SQLite store.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fastapi.testclient import TestClient  # noqa: E402

from bench.common import rate  # noqa: E402
from engine.api.app import create_app  # noqa: E402
from engine.engine import Engine  # noqa: E402
from engine.settings import Settings  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small counts (CI / make bench)")
    args = ap.parse_args()
    n = 300 if args.quick else 5000
    with tempfile.TemporaryDirectory() as tmp, Engine(Settings(data_dir=Path(tmp))) as engine:
        auth = engine.auth
        rate("issue access token (Ed25519 JWT)", n, lambda: auth.issue_system_token("his-a"))
        token = auth.issue_system_token("his-a")
        header = f"Bearer {token}"
        fresh = iter([f"Bearer {auth.issue_system_token('his-a')}" for _ in range(n + 1)])
        rate("verify new token -> Caller (signature + revocation)", n, lambda: auth.authenticate(next(fresh)))
        rate("verify seen token -> Caller (cached signature)", n, lambda: auth.authenticate(header))
        caller = auth.authenticate(header)
        rate("Caller.require(Observation, s)", n * 10, lambda: caller.require("Observation", "s"))

        for i in range(20):
            engine.identity.on_write({"resourceType": "Patient", "id": f"p{i}", "identifier": [
                {"value": "320923199001011238", "type": {"coding": [{"code": "NNCHN"}]}}],
                "gender": "male", "birthDate": "1990-01-01"}, None)
        rate("person_compartment (20 linked records)", n, lambda: engine.identity.person_compartment("p0"))
        # what a resident's request asks since the forty-second round: the walk remembered under the index's stamp
        rate("resident_compartment (the same, remembered)", n, lambda: engine.identity.resident_compartment("p0"))

        secret = auth.registry.add("his-b", scopes=["system/*.cruds"])
        with TestClient(create_app(engine)) as http:
            form = {"grant_type": "client_credentials", "client_id": "his-b", "client_secret": secret}

            def fetch() -> None:
                r = http.post("/auth/token", data=form)
                assert r.status_code == 200, r.text

            rate("POST /auth/token client_credentials (HTTP)", max(50, n // 20), fetch)
        t0 = time.perf_counter()
        from engine.auth.clients import check_secret

        check_secret(secret, auth.registry.get("his-b").secret_hash)
        print(f"{'scrypt secret check (first use per secret)':<48} {(time.perf_counter() - t0) * 1e3:>10,.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
