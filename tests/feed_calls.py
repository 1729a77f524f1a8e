"""A sending system's call as a hospital feed makes it: ``POST /hl7v2`` with a feed's token, the raw
ER7 bytes as sent, and a 200 carrying the ACK (an AE/AR is still an HTTP 200: the ACK says what went
wrong). Shared by the HL7 probe tests so each states only the bytes it sends."""

from __future__ import annotations

import httpx
from fastapi.testclient import TestClient

from engine.engine import Engine


def post_hl7v2(engine: Engine, http: TestClient, body: bytes) -> httpx.Response:
    """Send ``body`` as the feed does; assert the HTTP layer answered 200 and return the response."""
    token = engine.auth.issue_system_token("feed", "system/MessageHeader.c")
    r = http.post("/hl7v2", content=body,
                  headers={"Authorization": f"Bearer {token}", "Content-Type": "x-application/hl7-v2+er7"})
    assert r.status_code == 200, r.text
    return r
