"""An audited read split by stage for callgrind: ``bench/asgi_reads.py`` with each stage's function
called through its own C trampoline, so the trampoline's *inclusive* count in callgrind is the stage's.

    CALLGRIND=1 valgrind --tool=callgrind --separate-threads=yes --collect-atstart=no \\
        --toggle-collect=sys_call_tracing python bench/read_stages.py audited 500 1
    python bench/read_stages.py --report callgrind.out.<pid>-01 500
    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=sys_call_tracing \\
        python bench/read_stages.py --calibrate       # each trampoline's own cost, on a no-op

Python functions are invisible to callgrind (every frame is ``_PyEval_EvalFrameDefault``); a C
function that calls one is not. Each stage below gets a trampoline used nowhere else on the read
path: check it in the profile's ``calls=`` lines (the same count for each trampoline; thirty-first
round: twice the reads for each, callgrind listing a call under two file names). Only synchronous
functions can be split so (an ``async`` one's trampoline counts the making of its coroutine):
the middleware layers are counted by difference (``STAGES=bare``). The wrapper's own frames are
outside the trampoline, ~4-4.5 k a call; inside it 0.5-2.0 k (``--calibrate``), to be taken off
each stage, and each nested wrapper's whole cost off the stage around it.
Nothing here changes what a read does (the same functions, called with the same arguments).
"""

from __future__ import annotations

import functools
import itertools
import operator
import os
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def _t_operator(f: Callable, a: tuple, k: dict) -> Any:
    return operator.call(f, *a, **k)


def _t_map(f: Callable, a: tuple, k: dict) -> Any:
    return next(map(lambda _: f(*a, **k), (0,)))


def _t_starmap(f: Callable, a: tuple, k: dict) -> Any:
    return next(itertools.starmap(functools.partial(f, **k) if k else f, (a,)))


def _t_reduce(f: Callable, a: tuple, k: dict) -> Any:
    return functools.reduce(lambda _acc, _x: f(*a, **k), (0,), None)


def _t_accumulate(f: Callable, a: tuple, k: dict) -> Any:
    return list(itertools.accumulate((None, 0), lambda _acc, _x: f(*a, **k)))[1]


def _through(make: Callable[[Callable[[Any], None]], Iterable[Any]]) -> Callable[[Callable, tuple, dict], Any]:
    """A trampoline from an iterator ``make(predicate)`` whose C ``__next__`` calls the predicate."""
    def tramp(f: Callable, a: tuple, k: dict) -> Any:
        out: list[Any] = []
        list(make(lambda _x: out.append(f(*a, **k))))
        return out[0]
    return tramp


_t_filterfalse = _through(lambda p: itertools.filterfalse(p, (0,)))
_t_takewhile = _through(lambda p: itertools.takewhile(p, (0,)))
_t_dropwhile = _through(lambda p: itertools.dropwhile(p, (0,)))
_t_groupby = _through(lambda p: itertools.groupby((0,), key=p))
_t_filter = _through(lambda p: filter(p, (0,)))


def _t_defdict(f: Callable, a: tuple, k: dict) -> Any:
    return defaultdict(lambda: f(*a, **k))[0]


def _t_calliter(f: Callable, a: tuple, k: dict) -> Any:
    out: list[Any] = []

    def once() -> int:
        out.append(f(*a, **k))
        return 0
    next(iter(once, 1))
    return out[0]


# the trampolines, in the order the stages below take them: (C function callgrind names, trampoline)
_TRAMPOLINES: list[tuple[str, Callable]] = [
    ("_operator_call", _t_operator), ("map_next", _t_map), ("starmap_next", _t_starmap),
    ("functools_reduce", _t_reduce), ("accumulate_next", _t_accumulate), ("filterfalse_next", _t_filterfalse),
    ("takewhile_next", _t_takewhile), ("dropwhile_next", _t_dropwhile), ("groupby_next", _t_groupby),
    ("filter_next", _t_filter), ("defdict_missing", _t_defdict), ("calliter_iternext", _t_calliter)]

# the read's stages (``STAGES=read``, the default; nested: the append's inside ``submit``)
READ: dict[str, tuple[str, Callable]] = dict(zip(
    ["authenticate", "read_response", "read_raw", "note", "facts_for_request", "submit", "try_record_many",
     "_prepare", "encode", "Segment.append", "_sync_segment", "_note_keys"], _TRAMPOLINES, strict=True))

# the append's own steps, none nested in another but ``_prepare``'s three (``STAGES=append``)
APPEND: dict[str, tuple[str, Callable]] = dict(zip(
    ["try_record_many", "_prepare", "encode", "Segment.append", "_sync_segment", "_note_keys", "Segment.acquire",
     "_checkpoint_due", "_refuse_if_damaged", "Segment.keep", "Frontier.push", "leaf sha256"],
    _TRAMPOLINES, strict=True))

TRAMPOLINES = APPEND if os.environ.get("STAGES") == "append" else READ


def _wrap(owner: Any, name: str, stage: str) -> None:
    original = getattr(owner, name)
    tramp = TRAMPOLINES[stage][1]

    def wrapped(*a: Any, **k: Any) -> Any:
        return tramp(original, a, k)
    setattr(owner, name, wrapped)


def install() -> None:
    """Wrap the functions of ``TRAMPOLINES``' stages (the same functions, called as before)."""
    from engine.api import fast_read, fhir
    from engine.audit import appends, loading, merkle, middleware, segment, signing
    from engine.audit.group_commit import GroupCommitter
    from engine.auth.service import AuthService
    from engine.repository.scoped import ScopedRepository

    where: dict[str, tuple[Any, str]] = {  # stage -> (where its function is looked up, its name)
        "authenticate": (AuthService, "authenticate"), "read_response": (fast_read, "read_response"),
        "read_raw": (ScopedRepository, "read_raw"), "note": (fhir, "note"),
        "facts_for_request": (middleware, "facts_for_request"), "submit": (GroupCommitter, "submit"),
        "try_record_many": (appends.Appends, "try_record_many"), "_prepare": (appends.Appends, "_prepare"),
        "encode": (appends, "encode"), "Segment.append": (segment.Segment, "append"),
        "_sync_segment": (loading.Loading, "_sync_segment"), "_note_keys": (appends.Appends, "_note_keys"),
        "Segment.acquire": (segment.Segment, "acquire"), "_checkpoint_due": (signing.Signing, "_checkpoint_due"),
        "_refuse_if_damaged": (loading.Loading, "_refuse_if_damaged"), "Segment.keep": (segment.Segment, "keep"),
        "Frontier.push": (merkle.Frontier, "push"), "leaf sha256": (appends, "_sha256")}
    for stage in TRAMPOLINES:
        _wrap(*where[stage], stage)


def report(path: str, reads: int) -> None:
    """Each stage's inclusive instructions a read from a callgrind file of the loop's thread (run with
    the same ``STAGES`` as the profile)."""
    import re
    import subprocess

    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
                         capture_output=True, text=True, check=True).stdout
    costs: dict[str, int] = {}
    total = 0
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \(.*?\)\s+(\S+)", line)
        if m is None:
            continue
        cost = int(m[1].replace(",", ""))
        if m[2] == "PROGRAM":
            total = cost
        name = m[2].rsplit(":", 1)[-1]
        costs[name] = max(costs.get(name, 0), cost)
    print(f"total {total / reads / 1e3:.1f} k a read ({reads} reads)")
    for stage, (cname, _) in TRAMPOLINES.items():
        print(f"{stage:18} {cname:18} {costs.get(cname, 0) / reads / 1e3:7.1f} k a read")


def bare() -> None:
    """``STAGES=bare``: the read served by the audit middleware (when audited) around ``FastRead``
    alone, called directly: what Starlette's error layer, CORS, the JSON label and the request limits
    cost a read is the difference from the app as served (async layers: a trampoline would count
    only the making of their coroutines). Only for counting: those layers are the app's."""
    import http_reads

    from engine.api.fast_read import FastRead
    from engine.audit.middleware import AuditMiddleware

    made = http_reads._app

    def _bare_app(engine: Any, audited: bool) -> Any:
        app = made(engine, audited)
        inner = FastRead(app)
        chain = AuditMiddleware(inner) if audited else inner

        class Bare:
            middleware_stack = chain

            async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
                scope["app"] = app
                await chain(scope, receive, send)
        return Bare()
    http_reads._app = _bare_app


def calibrate(n: int = 1000) -> None:
    """``--calibrate``: a no-op called ``n`` times through each trampoline (under callgrind as above;
    ``--report FILE 1000`` then gives each one's own cost a call, the total the whole wrapper's)."""
    def noop(_self: object, _x: object, _y: object = None) -> None:
        return None
    def run() -> None:
        for _ in range(n):
            for _cname, tramp in _TRAMPOLINES:
                tramp(noop, (1, 2), {})
    sys.call_tracing(run, ())


if __name__ == "__main__":
    if sys.argv[1] == "--calibrate":
        calibrate()
    elif sys.argv[1] == "--report":
        report(sys.argv[2], int(sys.argv[3]))
    elif os.environ.get("STAGES") == "bare":
        bare()
        import asgi_reads

        asgi_reads.main()
    else:
        install()
        import asgi_reads

        asgi_reads.main()
