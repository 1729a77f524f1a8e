"""An audited read split by stage for callgrind: ``bench/asgi_reads.py`` with each stage's function
called through the gcc-built trampolines of ``bench/stage_instructions.py`` (one C function per
(calling stage, called stage) pair), so each stage's own instructions are counted, not timed.

    CALLGRIND=1 KEEP_SECONDS=0.5 valgrind --tool=callgrind --separate-threads=yes --collect-atstart=no \\
        --toggle-collect=sys_call_tracing --callgrind-out-file=/dev/shm/rs.out \\
        python bench/read_stages.py audited 500 1 /dev/shm/rs.pairs.json
    python bench/read_stages.py --report /dev/shm/rs.out-01 /dev/shm/rs.pairs.json 500

The first command serves ``audited`` (or ``plain``) reads as ``bench/asgi_reads.py`` does (the
timed part alone collected, inside ``sys.call_tracing``) and writes the pairs it used to the JSON
file; the second prints each stage's own instructions a read (its pairs less the pairs it calls:
the same rule as the ingest split) and its inclusive count. The file ending ``-01`` is the loop's
thread: only its calls go through the trampolines (``StageCalls`` counts the thread that made it).

Why this tool and not the C builtins it replaced (thirty-first round: ``operator.call``, ``map``,
``functools.reduce``..., one builtin per stage): there are only a dozen such builtins, each must
be used nowhere else on the path (checked by hand in the profile), a stage nested in another
counted inclusively with a calibrated ~5.7 k of wrapper to take off by hand. The trampolines are
generated (192), named only by this tool, and route by pair, so nesting is resolved exactly and
the wrapper's Python (some hundreds of instructions) falls on the calling stage, not the stage.

``STAGES=read`` (the default: the read's stages, the append's nested inside ``submit``),
``STAGES=append`` (the append's own steps) and ``STAGES=bare`` (no trampolines: the audit
middleware around ``FastRead`` alone, called directly, to count the outer async layers, which a
trampoline cannot split -- it would count only the making of their coroutines).
Nothing here changes what a read does (the same functions, called with the same arguments).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

# the read's stages (``STAGES=read``; nested: the append's inside ``submit``)
READ = ["authenticate", "read_response", "read_raw", "note", "facts_for_request", "submit", "try_record_many",
        "_record_many", "_append_sealed", "_prepare", "encode", "Segment.append", "_sync_segment", "_note_keys",
        "revocation get", "_client_holds"]

# the append's own steps (``STAGES=append``)
APPEND = ["try_record_many", "_record_many", "_append_sealed", "_prepare", "encode", "Segment.append",
          "_sync_segment", "_note_keys", "Segment.acquire", "_checkpoint_due", "_refuse_if_damaged", "Segment.keep",
          "Frontier.copy", "Frontier.push", "leaf sha256"]


def _where() -> dict[str, tuple[Any, str]]:
    """stage -> (where its function is looked up, its name there)."""
    from engine.api import fast_read, fhir
    from engine.audit import appends, loading, merkle, middleware, segment, signing
    from engine.audit.group_commit import GroupCommitter
    from engine.auth.service import AuthService
    from engine.repository.scoped import ScopedRepository

    return {
        "authenticate": (AuthService, "authenticate"), "read_response": (fast_read, "read_response"),
        "read_raw": (ScopedRepository, "read_raw"), "note": (fhir, "note"),
        "facts_for_request": (middleware, "facts_for_request"), "submit": (GroupCommitter, "submit"),
        "try_record_many": (appends.Appends, "try_record_many"), "_prepare": (appends.Appends, "_prepare"),
        # every append's one path since the forty-first round; the fortieth's lone record's own path and the
        # keys' step before it (kept so that the same bench measures an earlier tree: absent names are skipped)
        "_record_many": (appends.Appends, "_record_many"), "_append_sealed": (appends.Appends, "_append_sealed"),
        # framed where it is looked up: by ``Segment.append`` since the forty-first round, by the log before
        "encode": (appends if hasattr(appends, "encode") else segment, "encode"),
        "Segment.append": (segment.Segment, "append"), "Frontier.copy": (merkle.Frontier, "copy"),
        "_sync_segment": (loading.Loading, "_sync_segment"), "_note_keys": (appends.Appends, "_note_keys"),
        "Segment.acquire": (segment.Segment, "acquire"), "_checkpoint_due": (signing.Signing, "_checkpoint_due"),
        "_refuse_if_damaged": (loading.Loading, "_refuse_if_damaged"), "Segment.keep": (segment.Segment, "keep"),
        "Frontier.push": (merkle.Frontier, "push"), "leaf sha256": (appends, "_sha256"),
        "_client_holds": (AuthService, "_client_holds")}


def install(calls: Any, stages: list[str]) -> None:
    """Wrap each stage's function where it is looked up (a class's method or a module's function)."""
    where = _where()
    for stage in stages:
        if stage == "revocation get":
            continue  # an instance's collection: wrapped once the engine exists (``_wrap_engine``)
        owner, name = where[stage]
        if hasattr(owner, name):  # so that the same bench measures an earlier version too
            setattr(owner, name, calls.wrap(getattr(owner, name), stage))


def _wrap_engine(calls: Any, stages: list[str]) -> None:
    """The revocation lookup is a method of the auth service's collection object, made with the engine."""
    if "revocation get" not in stages:
        return
    from engine import engine as engine_module

    made = engine_module.Engine.__init__

    def init(self: Any, *a: Any, **k: Any) -> None:
        made(self, *a, **k)
        revoked = self.auth.revoked
        # the probe the check makes: ``holds`` since the thirty-third round, ``get`` before
        name = "holds" if hasattr(revoked, "holds") else "get"
        setattr(revoked, name, calls.wrap(getattr(revoked, name), "revocation get"))
    engine_module.Engine.__init__ = init  # type: ignore[method-assign]


def report(callgrind_out: Path, pairs_file: Path, reads: int, wrapper: float = 0.0) -> None:
    """Each stage's own and inclusive instructions a read (run with the same ``STAGES`` as the
    profile); ``wrapper``: what one wrapped call adds (``bench/stage_instructions.py --calibrate``),
    taken off the calling stage once per call (and off the inclusive counts of the stages around)."""
    from bench.stage_instructions import OUTSIDE, WRAPPING, _counts, split

    total, inclusive = _counts(callgrind_out)
    pairs = json.loads(pairs_file.read_text())
    rows = split(callgrind_out, pairs_file, reads, wrapper)
    raw: dict[str, int] = {}  # a stage's inclusive count, wrappers and all
    made: dict[str, int] = {}  # a stage's calls (collected part)
    for _parent, stage, n, *k in pairs:
        raw[stage] = raw.get(stage, 0) + inclusive.get(n, 0)
        made[stage] = made.get(stage, 0) + (k[0] if k else 0)

    def nested(stage: str, seen: frozenset[str] = frozenset()) -> float:
        """Wrapped calls made inside one call of ``stage``, at any depth (a stage called from
        several stages shares its own calls among them by how often each called it)."""
        if not made.get(stage):
            return 0.0
        inner = sum((k[0] if k else 0) * (1 + nested(c, seen | {stage}))
                    for p, c, _n, *k in pairs if p == stage and c not in seen)
        return inner / made[stage]

    def whole(stage: str) -> float:
        return raw.get(stage, 0) - wrapper * made.get(stage, 0) * nested(stage)

    print(f"total {total / reads / 1e3:.1f} k instructions a read ({reads} reads; own = the stage less the stages"
          f" it calls{'; wrappers taken off' if wrapper else ''})")
    for stage, own in rows:
        incl = "" if stage in (OUTSIDE, WRAPPING) else f"  inclusive {whole(stage) / reads / 1e3:7.1f} k"
        print(f"    {stage:<22} own {own / 1e3:7.1f} k{incl}")


def bare() -> None:
    """``STAGES=bare``: the read served by the audit middleware (when audited) around ``FastRead``
    alone, called directly: what Starlette's error layer, CORS, the JSON label and the request limits
    cost a read is the difference from the app as served. Only for counting: those layers are the app's."""
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


def main() -> None:
    import asgi_reads

    mode = os.environ.get("STAGES", "read")
    if mode == "bare":
        bare()
        asgi_reads.main()
        return
    from bench.stage_instructions import StageCalls, build

    pairs_file = Path(sys.argv.pop(4)) if len(sys.argv) > 4 else Path("read_stages.pairs.json")
    stages = APPEND if mode == "append" else READ
    with tempfile.TemporaryDirectory() as tmp:
        calls = StageCalls(build(Path(tmp)))
    install(calls, stages)
    _wrap_engine(calls, stages)
    tracing = sys.call_tracing  # (``CALLGRIND=1``: the timed reads run inside it, collected alone)

    def collected(fn: Any, args: tuple) -> Any:
        calls.reset()  # the wrapped calls of the collected reads alone
        return tracing(fn, args)
    sys.call_tracing = collected
    asgi_reads.main()
    calls.save(pairs_file)
    print(f"pairs: {pairs_file}")


if __name__ == "__main__":
    if sys.argv[1] == "--report":
        report(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]),
               float(sys.argv[6]) if len(sys.argv) > 6 and sys.argv[5] == "--wrapper" else 0.0)
    else:
        main()
