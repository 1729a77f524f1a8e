"""Issue 15, the read path (thirty-fifth round, attr35): no read makes our code miss an attribute of
Starlette's ``State``. ``State`` answers attribute reads from ``__getattr__``, which Python calls only
after the ordinary lookup has failed -- an ``AttributeError`` raised, formatted and dropped in C, and a
second one raised by ``__getattr__`` when the name is not set. ``engine.auth.deps`` read the caller,
the repository and the engine so: six a read (``bench/attr35_misses.py`` finds them under gdb). It now
keeps the first two in the request's state dict and reads the engine by key.

A call of any Python ``__getattr__`` from our code is that miss made visible: it is counted with a
profile hook on every thread (the TestClient serves from a thread of its own) over real requests --
the fast read, a routed read and a search (audited, as served), and a request without a token -- and
the hook is shown to catch such a miss when one is made. An exception raised in (or just below) our
code on those requests and dropped is counted with a trace hook the same way: ``Caller.allows``'s
``any(<generator>)`` (a GeneratorExit thrown into it), a search's absent ``Prefer`` read through
``headers.get`` (a KeyError), the client registry's absent file (a FileNotFoundError) -- a refusal the
client is answered with is not such a miss. The values kept stay where ``request.state`` reads and
writes them (the audit and the sign-in pages use that name)."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from fastapi.testclient import TestClient
from starlette.requests import Request

from engine.api.app import create_app
from engine.auth.clients import ClientRegistry
from engine.auth.deps import engine_of, get_caller, get_repo
from engine.engine import Engine
from engine.errors import FhirError
from engine.repository.scoped import ScopedRepository

ROOT = Path(__file__).resolve().parent.parent
OURS = (str(ROOT / "engine") + "/", str(ROOT / "adapters") + "/")


ARMED: list[bool] = [True]  # the hooks record only while armed (the warm-up round runs disarmed)


@contextmanager
def getattr_fallbacks(ours: tuple[str, ...] = OURS) -> Iterator[list[str]]:
    """Every call of a Python ``__getattr__`` made from a file under ``ours``, on any thread started
    inside the block and on this one, as ``caller file:line -> class.__getattr__``."""
    seen: list[str] = []

    def hook(frame: FrameType, event: str, _arg: Any) -> None:
        if event == "call" and frame.f_code.co_name == "__getattr__" and ARMED[0]:
            caller = frame.f_back
            if caller is not None and caller.f_code.co_filename.startswith(ours):
                seen.append(f"{caller.f_code.co_filename}:{caller.f_lineno} -> {frame.f_code.co_qualname}")

    threading.setprofile(hook)
    sys.setprofile(hook)
    try:
        yield seen
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]


def _near_ours(frame: FrameType | None, ours: tuple[str, ...], depth: int = 3) -> str | None:
    """``file:line`` of the nearest frame of ours within ``depth`` calls, or None."""
    for _ in range(depth):
        if frame is None:
            return None
        if frame.f_code.co_filename.startswith(ours):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return None


@contextmanager
def dropped_exceptions(ours: tuple[str, ...] = OURS) -> Iterator[list[str]]:
    """Every exception raised in a Python frame within three calls of a file under ``ours`` (or thrown
    into one), on any thread started inside the block, but a ``FhirError`` (an answer, not a miss)."""
    seen: list[str] = []

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "exception" and ARMED[0] and not isinstance(arg[1], (FhirError, StopIteration)):
            where = _near_ours(frame, ours)
            if where is not None:
                seen.append(f"{where} {arg[0].__name__}")
        return local

    def hook(frame: FrameType, event: str, arg: Any) -> Any:
        return local if event == "call" else None

    threading.settrace(hook)
    sys.settrace(hook)
    try:
        yield seen
    finally:
        sys.settrace(None)
        threading.settrace(None)  # type: ignore[arg-type]


def _seeded(engine: Engine) -> str:
    engine.repository.update({"resourceType": "Organization", "id": "org1", "name": "county hospital"})
    engine.repository.update({"resourceType": "Patient", "id": "p1", "gender": "female"})
    engine.repository.update({"resourceType": "Observation", "id": "o1", "status": "final",
                              "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
                              "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-11-01",
                              "performer": [{"reference": "Organization/org1"}]})
    return engine.auth.issue_system_token("his", "system/*.rs")


def test_reads_and_searches_make_no_state_attribute_misses_in_our_code(engine: Engine) -> None:
    token = _seeded(engine)
    bearer = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
    requests: list[tuple[str, dict[str, str], int]] = [
        ("/fhir/Observation/o1", bearer, 200),  # the fast read
        ("/fhir/Observation/o1?_format=json", bearer, 200),  # a query: the router's read
        ("/fhir/Observation?subject=Patient/p1", bearer, 200),  # a search (its Bundle's base URL)
        ("/fhir/Observation/o1", {"Accept": "application/fhir+json"}, 401),  # no token
    ]
    app = create_app(engine)
    ARMED[0] = False
    try:
        with dropped_exceptions() as dropped, getattr_fallbacks() as seen, TestClient(app) as client:
            for path, headers, _status in requests:  # once first: what a first request settles is no read's
                client.get(path, headers=headers)
            audited = engine.audit.size
            ARMED[0] = True
            answers = [(client.get(path, headers=headers), status) for path, headers, status in requests]
            ARMED[0] = False
    finally:
        ARMED[0] = True
    for answer, status in answers:
        assert answer.status_code == status, answer.text
    assert answers[0][0].json()["id"] == "o1" and answers[1][0].json()["id"] == "o1"
    assert answers[2][0].json()["entry"][0]["fullUrl"].endswith("/Observation/o1")
    assert engine.audit.size - audited == len(requests)  # each audited, as before
    assert seen == [], seen
    assert dropped == [], dropped


def test_the_hook_sees_a_state_miss_when_one_is_made() -> None:
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": [], "state": {}})
    with getattr_fallbacks((__file__,)) as seen:
        assert getattr(request.state, "caller", None) is None  # the old read: generic miss, then __getattr__
    assert len(seen) == 1 and seen[0].endswith("State.__getattr__")
    with dropped_exceptions((__file__,)) as dropped:
        assert request.headers.get("prefer") is None  # Mapping.get: Headers.__getitem__ raises KeyError
    assert dropped and {d.split()[-1] for d in dropped} == {"KeyError"}


def test_an_absent_secret_file_is_looked_at_without_an_exception_and_seen_once_written(engine: Engine) -> None:
    registry = engine.auth.registry
    assert not registry.path.exists()
    with dropped_exceptions() as dropped:
        assert [registry.get("later") for _ in range(3)] == [None, None, None]
    assert [d.split()[-1] for d in dropped] == ["FileNotFoundError"]  # the first look only
    ClientRegistry(registry.path.parent).add("later", scopes=["system/*.rs"])  # as ``huren client add`` writes
    assert registry.get("later") is not None and registry.get("later").scopes == ["system/*.rs"]
    registry.path.unlink()
    assert registry.get("later") is None and registry.get("later") is None


def _request(engine: Engine, headers: list[tuple[bytes, bytes]]) -> Request:
    app = create_app(engine)
    return Request({"type": "http", "method": "GET", "path": "/fhir/Patient/p1", "headers": headers, "app": app})


def _run(step: Callable[[], Any]) -> Any:
    return asyncio.run(step())


def test_what_request_state_holds_is_what_the_dependencies_keep_and_find(engine: Engine) -> None:
    token = _seeded(engine)
    # kept by the dependencies: read back under request.state's names (the audit reads the caller so)
    request = _request(engine, [(b"authorization", f"Bearer {token}".encode())])
    repo = _run(lambda: get_repo(request))
    assert isinstance(repo, ScopedRepository)
    assert request.state.repo is repo and request.state.caller.client_id == "his"
    assert _run(lambda: get_repo(request)) is repo and engine_of(request) is engine
    # set through request.state (as the sign-in pages set the caller): found without a token
    bare = _request(engine, [])
    bare.state.caller = request.state.caller
    assert _run(lambda: get_caller(bare)) is request.state.caller
    assert _run(lambda: get_repo(bare)).caller is request.state.caller
