"""ord39: an older booking's SCH-2 as-sent copy moved once under its sender's system (``engine.booking_as_sent``).

codedoc38 keeps SCH-2 as sent (``BK-1^HIS``) under the sending institution's ``urn:huren:id:<MSH-4>:HIS``; a
booking an earlier release stored kept ``urn:huren:id:HIS`` (every hospital's HIS) until its next message, so a
client searching the documented system found none of the older bookings (review rv38f LOW). An Engine's start
on an older store moves each such copy to the system its own booking's key names, once (a marker).

Real HL7 over MLLP into the real store; the older copy made as codedoc38's own test makes it (the booking
written back over ``/fhir`` with the copy under the old system); an older store is one without the pass's marker;
read back through ``/fhir`` (TestClient).
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine import booking_as_sent
from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.test_convert11_thinner import send as send_mllp
from tests.test_convmend20_probes import PID, siu
from tests.test_old37_sch_sent_as import _found, _with

_OTHER = "PID|1||ZY39Z^^^FNZYY^MR||王^五||19700101|M"


def _client(eng: Engine) -> TestClient:
    fhir = TestClient(create_app(eng))
    fhir.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("ord39", "system/*.cruds")
    return fhir


def _older(eng: Engine, fhir: TestClient, control: str, number: str, institution: str, pid: str) -> dict[str, Any]:
    """``institution``'s HIS books ``<number>^HIS`` (MLLP); its as-sent copy then written back under the old
    ``urn:huren:id:HIS``, as a release before codedoc38 stored it. Returns the booking as stored."""
    message = siu(control, "S12", _with(control, f"{number}^HIS"), pid)
    message = message.replace(b"|HIS|FNXRMYY|", f"|HIS|{institution}|".encode(), 1)
    (ack,) = send_mllp(eng, message)
    assert ack_code_of(ack) == "AA", ack
    (booking,) = _found(fhir, f"urn:huren:id:{institution}:HIS|{number}")
    body = {k: v for k, v in booking.items() if k != "meta"}
    body["identifier"] = [{**i, "system": "urn:huren:id:HIS"} if "coding" not in (i.get("type") or {}) else i
                          for i in booking["identifier"]]
    assert fhir.put(f"/fhir/Appointment/{booking['id']}", json=body).status_code == 200
    stored = fhir.get(f"/fhir/Appointment/{booking['id']}").json()
    assert _found(fhir, f"urn:huren:id:{institution}:HIS|{number}") == []  # (the older copy: not found so)
    return stored


def _as_sent(booking: dict[str, Any]) -> list[str]:
    return [f"{i['system']}|{i['value']}" for i in booking["identifier"] if "coding" not in (i.get("type") or {})]


def test_an_older_stores_start_moves_each_copy_under_its_own_institution(settings: Settings) -> None:
    """SQLite, two starts. Two institutions' HIS each book ``BK-UP^HIS`` for their own patient; both copies stored
    the older way (one search of ``urn:huren:id:HIS`` meets both: the wrong answer codedoc38 removed). The next
    start of that store (no marker: an older store) moves each copy under its own booking's institution: each
    institution's system finds its booking alone, the old system none; the bookings otherwise as stored (one
    new version each). A further start writes nothing."""
    with Engine(settings) as eng, _client(eng) as fhir:
        one = _older(eng, fhir, "UP1", "BK-UP", "FNXRMYY", PID)
        two = _older(eng, fhir, "UP2", "BK-UP", "FNZYY", _OTHER)
        assert sorted(b["id"] for b in _found(fhir, "urn:huren:id:HIS|BK-UP")) == sorted([one["id"], two["id"]])
        eng.store.collection(booking_as_sent.MARKER_COLLECTION).delete("-backfilled")  # (an older release's store)
    with Engine(settings) as eng, _client(eng) as fhir:
        assert [b["id"] for b in _found(fhir, "urn:huren:id:FNXRMYY:HIS|BK-UP")] == [one["id"]]
        assert [b["id"] for b in _found(fhir, "urn:huren:id:FNZYY:HIS|BK-UP")] == [two["id"]]
        assert _found(fhir, "urn:huren:id:HIS|BK-UP") == []
        for before in (one, two):
            after = fhir.get(f"/fhir/Appointment/{before['id']}").json()
            assert int(after["meta"]["versionId"]) == int(before["meta"]["versionId"]) + 1
            assert {k: v for k, v in after.items() if k not in ("meta", "identifier")} == \
                {k: v for k, v in before.items() if k not in ("meta", "identifier")}
            assert [i for i in after["identifier"] if "coding" in (i.get("type") or {})] == \
                [i for i in before["identifier"] if "coding" in (i.get("type") or {})]
        assert _as_sent(fhir.get(f"/fhir/Appointment/{one['id']}").json()) == ["urn:huren:id:FNXRMYY:HIS|BK-UP"]
        marker = eng.store.collection(booking_as_sent.MARKER_COLLECTION).get("-backfilled")
        assert marker is not None and marker["written"] == 2, marker
    with Engine(settings) as eng, _client(eng) as fhir:
        again = fhir.get(f"/fhir/Appointment/{one['id']}").json()
        assert int(again["meta"]["versionId"]) == int(one["meta"]["versionId"]) + 1


def test_the_pass_on_each_backend_and_the_next_message_after_it(backend_settings: Settings) -> None:
    """On each backend, the pass an older store's start runs (its marker emptied): the older copy moved; the
    booking's next message (an S14 from its HIS) keeps one copy, under the same system; a new store's start
    wrote the marker alone (nothing scanned, nothing written)."""
    with Engine(backend_settings) as eng, _client(eng) as fhir:
        coll = eng.store.collection(booking_as_sent.MARKER_COLLECTION)
        assert coll.get("-backfilled")["written"] == 0  # (a new store)
        old = _older(eng, fhir, "BP1", "BK-BP", "FNXRMYY", PID)
        coll.delete("-backfilled")
        assert booking_as_sent.backfill(eng.repository) == 1
        assert booking_as_sent.backfill(eng.repository) == 0  # (once)
        (found,) = _found(fhir, "urn:huren:id:FNXRMYY:HIS|BK-BP")
        assert found["id"] == old["id"] and _as_sent(found) == ["urn:huren:id:FNXRMYY:HIS|BK-BP"]
        (ack,) = send_mllp(eng, siu("BP2", "S14", _with("BP2", "BK-BP^HIS"), PID))
        assert ack_code_of(ack) == "AA", ack
        after = fhir.get(f"/fhir/Appointment/{old['id']}").json()
        assert _as_sent(after) == ["urn:huren:id:FNXRMYY:HIS|BK-BP"], after["identifier"]
