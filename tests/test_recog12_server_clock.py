""""Today" is today at the institution, not on the server's clock.

A server kept in UTC is a day behind Asia/Shanghai from 00:00 to 08:00 there, and one kept ahead of
it (a cloud region east of China) is a day ahead for part of each day. Two answers read the server's
date: ``$check-recognition`` without a date (a doctor at 07:00 was told nothing about a blood count
taken that morning -- it looked "after the order" -- or, ahead, nothing about one of seven days ago),
and the recognition rate (an order whose window had just ended stayed "pending" for eight hours, or
one still open counted "recognised" a day early). Each test runs the server side with a clock zone
whose date differs from Shanghai's at the moment it runs: the HTTP check in this process
(``TZ`` + ``time.tzset``), ``huren report duplicates`` in its own process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.test_hooks11_policy_edges import engine, result
from tests.test_recognition_api import OP, bearer
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, TZ, order, ts

__all__ = ["engine"]  # the fixture, used by name
REPO = Path(__file__).resolve().parent.parent


def _other_zone() -> tuple[str, int]:
    """A clock zone whose date differs from Shanghai's now, and by how many days (-1 or +1): UTC-12
    is 20 hours behind (another date until 20:00 in Shanghai), UTC+14 six hours ahead (from 18:00)."""
    here = datetime.now(TZ)
    for name in ("Etc/GMT+12", "Etc/GMT-14"):
        there = datetime.now(ZoneInfo(name)).date()
        if there != here.date():
            return name, (there - here.date()).days
    raise AssertionError("unreachable: one of the two zones is on another date")


@contextmanager
def _server_clock(zone: str) -> Iterator[None]:
    before = os.environ.get("TZ")
    os.environ["TZ"] = zone
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = before
        time.tzset()


def test_a_check_without_a_date_is_for_today_at_the_institution(engine: Engine, mllp: int) -> None:
    zone, shift = _other_zone()
    # behind: a blood count taken at 00:05 today; ahead: one taken seven days ago (the window's last day)
    days = 0 if shift < 0 else 7
    hl7 = Sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(days, 0)))
    hl7.send(result("HOSPA", "A1", CBC, ts(days, 0).replace("0000\n", "0500\n")))
    [entry] = engine.recognition.index.coll.find({})
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": entry["patient"]}},
        {"name": "code", "valueCoding": {"system": "http://loinc.org", "code": "58410-2"}},
        {"name": "institution", "valueString": "HOSPB"}]}
    with _server_clock(zone):
        res = TestClient(create_app(engine)).post(OP, json=params, headers=bearer(engine))
    assert res.status_code == 200, res.text
    found = [p for p in res.json()["parameter"] if p["name"] == "recognisable"]
    assert len(found) == 1, (zone, res.json())


def test_the_rate_judges_an_orders_window_on_today_at_its_institution(engine: Engine, mllp: int) -> None:
    zone, shift = _other_zone()
    # CBC's window is 7 days. Behind: an order of 8 days ago, its window ended yesterday --
    # recognised. Ahead: an order of 7 days ago, its window ends today -- still pending.
    days, expected = (8, "recognised") if shift < 0 else (7, "pending")
    hl7 = Sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(days + 3)))
    hl7.send(result("HOSPA", "A1", CBC, ts(days + 3, 10)))
    hl7.send(order("HOSPB", "B1", CBC, ts(days)))  # reminded, never resulted
    settings = engine.settings
    engine.close()
    env = os.environ | {"HUREN_DATA_DIR": str(settings.data_dir), "HUREN_SITE": str(settings.site), "TZ": zone}
    done = subprocess.run([sys.executable, "-m", "engine.cli", "report", "duplicates", "--format", "json"],
                          cwd=REPO, env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    rate = json.loads(done.stdout)["recognition_rate"]["HOSPB"]
    assert (rate["recognisable"], rate[expected]) == (1, 1), (zone, rate)
