"""wards37: CPU of a ``GET /ui/me/wards`` through FastAPI's TestClient (the search, the walk, the names,
the audit note) for a
resident with five visits -- two at another member's facility, one at the county hospital's own ward, one
at a facility no member names, one at a member's ward nobody names (tests/test_wards37_wards.py's) --
over a fresh SQLite store.

    .venv/bin/python bench/wards37_me_wards.py [calls]"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_wards37_wards import HE, _messages


def main(calls: int) -> None:
    with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
        settings = Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0, base_url="https://huren.example")
        with Engine(settings) as engine, TestClient(create_app(engine)) as http:
            system = {"Authorization": "Bearer " + engine.auth.issue_system_token("bench-w37", "system/*.cruds")}
            for message in _messages():
                r = http.post("/hl7v2", content=message, headers={"Content-Type": "x-application/hl7-v2+er7", **system})
                assert b"MSA|AA" in r.content, r.content
            [record] = engine.identity.patients_for_number(HE)
            token, _ = engine.auth.issue_token(subject="person-" + record, kind="patient", client_id="huren-me",
                                               scopes=["patient/*.rs"], patient=record)
            her = {"Authorization": "Bearer " + token}
            got = http.get("/ui/me/wards", headers=her)
            assert got.status_code == 200 and len(got.json()["wards"]) >= 1, got.text
            for _ in range(20):
                http.get("/ui/me/wards", headers=her)
            start = time.process_time()
            for _ in range(calls):
                http.get("/ui/me/wards", headers=her)
            took = time.process_time() - start
            print(f"{calls} calls: {took / calls * 1e3:.2f} ms CPU a call")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)
