"""Made ``old-flags.json``: run with the code of commit fbe2e7c4 (the release before the evidence
pairs were kept), from a tree of that commit (``git archive fbe2e7c4``), as

    cp tests/data/evpage34/make_old_flags.py OLD/tests/ && cd OLD && \\
    EVPAGE34_FEED=.../feed.hl7 EVPAGE34_OUT=.../old-flags.json python -m pytest -q tests/make_old_flags.py

It sends ``feed.hl7`` (the exact bytes today's test sends) over ``POST /hl7v2`` into that release's store
and writes its flag rows as that release stored them (no ``pairs``, no ``unpaired``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient


def test_make(engine: Any, http: TestClient) -> None:
    http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("lis", "system/*.cruds")
    feed = Path(os.environ["EVPAGE34_FEED"]).read_text("utf-8").strip().split("\n\n")
    for message in feed:
        r = http.post("/hl7v2", content=message.replace("\n", "\r").encode(), headers={"Content-Type": "x-application/hl7-v2+er7"})
        assert r.status_code == 200 and "MSA|AA" in r.text, r.text
    rows = sorted(engine.recognition.flags.find({}), key=lambda f: f["_id"])
    assert rows and all("pairs" not in f for f in rows), rows
    Path(os.environ["EVPAGE34_OUT"]).write_text(json.dumps(rows, ensure_ascii=False, indent=1, sort_keys=True) + "\n", "utf-8")
