"""Instructions per ingest stage under callgrind: the stage clock's split, counted instead of timed.

    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=_operator_call \\
        --callgrind-out-file=/dev/shm/cg.out python bench/ingest.py --instructions --by-stage --messages 100
    python bench/stage_instructions.py /dev/shm/cg.out /dev/shm/cg.out.stages.json 100

Why: callgrind sees CPython's eval loop, not Python functions, so its report of an ingest run
names ``_PyEval_EvalFrameDefault`` and the C libraries, never a stage (perfingest30 could not
split the 13.6 M instructions a message). Here every call the stage clock (``bench/ingest.py``,
``StageClock``) would time goes through a C function of its own, one per (calling stage, called
stage) pair: ``huren_stage_007`` is, say, "backend put" called from inside "merge + version".
Callgrind's inclusive count of each such function is exact, and a stage's own instructions are
what its pairs count less what the pairs it calls count (the stage clock's exclusive rule, without
its clock reads). The writer connection's statements are a stage of their own (``SQL``), listed
again by the stage running them, so "backend put" is the put's Python and the SQL is told apart. The trampolines are built here with the system's C compiler (one small
extension, no Python.h beyond the interpreter's own); each wrapped call costs ~4.5 k instructions
of Python bookkeeping (``--calibrate``, thirty-second round), which falls on the calling stage, as
the clock's reads do: ``StageCalls.reset`` where the collected part starts, and ``--wrapper K`` on
the report, take it off again (the pairs file then holds each pair's calls). ``bench/read_stages.py``
splits an audited read with the same trampolines.

    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=sys_call_tracing \\
        --callgrind-out-file=/dev/shm/cal.out python bench/stage_instructions.py --calibrate /dev/shm/cal.json
    python bench/stage_instructions.py --calibration /dev/shm/cal.out /dev/shm/cal.json
"""

from __future__ import annotations

import collections
import importlib.util
import json
import re
import subprocess
import sys
import sysconfig
import tempfile
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.ingest import StageClock  # noqa: E402

PAIRS = 192  # trampolines built: (calling stage, called stage) pairs a run may use
OUTSIDE = "(outside every stage)"
WRAPPING = "(the wrappers themselves, calibrated)"

_C = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>
/* one non-inlined function per pair, each with a body of its own (its index), so that no
   identical-code folding merges them and callgrind names each */
#define TRAMP(n) \
  __attribute__((noinline)) PyObject *huren_stage_##n(PyObject *self, PyObject *const *a, Py_ssize_t k) { \
    static volatile int index = 1##n; (void)index; \
    return PyObject_Call(a[0], a[1], a[2] == Py_None ? NULL : a[2]); }
%(defs)s
static PyMethodDef methods[] = {
%(table)s
  {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_huren_stages", NULL, -1, methods};
PyMODINIT_FUNC PyInit__huren_stages(void) { return PyModule_Create(&module); }
"""


def build(folder: Path) -> Any:
    """Compile the trampolines into ``folder`` and import them (gcc, ``-O1 -fno-ipa-icf``)."""
    names = [f"{n:03d}" for n in range(PAIRS)]
    source = _C % {"defs": "\n".join(f"TRAMP({n})" for n in names),
                   "table": "\n".join(f'  {{"s{n}", (PyCFunction)(void(*)(void))huren_stage_{n}, METH_FASTCALL, NULL}},'
                                      for n in names)}
    c_file = folder / "_huren_stages.c"
    c_file.write_text(source)
    so = folder / ("_huren_stages" + sysconfig.get_config_var("EXT_SUFFIX"))
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-fno-ipa-icf", "-g0", f"-I{sysconfig.get_paths()['include']}",
                    str(c_file), "-o", str(so)], check=True)
    spec = importlib.util.spec_from_file_location("_huren_stages", so)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class StageCalls(StageClock):
    """``StageClock`` whose wrapped calls go through a C trampoline per (caller stage, stage) pair
    instead of reading a clock; ``pairs`` maps each pair to its trampoline's number."""

    def __init__(self, module: Any) -> None:
        super().__init__()
        self._tramps = [getattr(module, f"s{n:03d}") for n in range(PAIRS)]
        self.pairs: dict[tuple[str, str], int] = {}
        self.made = [0] * PAIRS  # calls through each trampoline since ``reset`` (the collected part's)

    def reset(self) -> None:
        """Count calls from now on (call where the collected part starts: callgrind's own ``calls=``
        lines count calls made while collection was off as well)."""
        self.made[:] = [0] * PAIRS

    def wrap(self, fn: Any, stage: str) -> Any:
        local, measuring, pairs, tramps, made = self._local, self._thread, self.pairs, self._tramps, self.made

        def counted(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != measuring:
                return fn(*args, **kwargs)
            stack = getattr(local, "stack", None)
            if stack is None:
                stack = local.stack = []
            parent = stack[-1] if stack else OUTSIDE
            if parent == stage:  # a stage inside itself is the stage (the clock's rule)
                return fn(*args, **kwargs)
            n = pairs.get((parent, stage))
            if n is None:
                n = len(pairs)
                if n >= PAIRS:  # (checked before the pair is kept: save() reads made[n] of every kept pair)
                    raise RuntimeError(f"more than {PAIRS} stage pairs: raise PAIRS")
                pairs[(parent, stage)] = n
            made[n] += 1
            stack.append(stage)
            try:
                return tramps[n](fn, args, kwargs or None)
            finally:
                stack.pop()

        return counted

    def attach(self, engine: Any) -> None:
        """The clock's stages, and the writer connection's statements as a stage of their own
        (``SQL``): the SQL a stage runs (SQLite, the binding, the GIL released per row) is then
        told from the Python around it ("backend put" becomes the put's Python alone)."""
        super().attach(engine)
        store = engine.store
        store._conn = _Statements(store.conn, self.wrap)  # (``conn`` is a property: made first)

    def save(self, path: Path) -> None:
        """The pairs as ``[calling stage, stage, trampoline, calls since reset]``."""
        path.write_text(json.dumps([[parent, stage, n, self.made[n]] for (parent, stage), n in self.pairs.items()]))


SQL = "SQL statements (writer connection)"


class _Statements:
    """The writer's SQLite connection with ``execute`` and ``executemany`` as the stage ``SQL``."""

    def __init__(self, conn: Any, wrap: Any) -> None:
        object.__setattr__(self, "_conn", conn)
        object.__setattr__(self, "execute", wrap(conn.execute, SQL))
        object.__setattr__(self, "executemany", wrap(conn.executemany, SQL))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._conn, name, value)


def _counts(callgrind_out: Path) -> tuple[int, dict[int, int]]:
    """The collected total and each trampoline's inclusive count, by ``callgrind_annotate``."""
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(callgrind_out)],
                          check=True, capture_output=True, text=True).stdout
    total = 0
    inclusive: dict[int, int] = {}
    for line in text.splitlines():
        # (a pair's trampoline re-entered within itself shows again as ``huren_stage_007'2``, whose
        # count its outermost entry already holds: only the outermost is read)
        m = re.match(r"\s*([\d,]+)\s+\(.*?\)\s+(?:\S*:)?huren_stage_(\d+)(?:\s|$)", line)
        if m:
            inclusive[int(m.group(2))] = int(m.group(1).replace(",", ""))
        t = re.match(r"\s*([\d,]+)\s+(?:\(100\.0%\)\s+)?PROGRAM TOTALS", line)
        if t:
            total = int(t.group(1).replace(",", ""))
    return total, inclusive


def split(callgrind_out: Path, pairs_file: Path, messages: int,
          wrapper: float = 0.0) -> list[tuple[str, float]]:
    """Instructions a message per stage (own, the called stages taken out), from a callgrind output
    file and the pairs ``StageCalls.save`` wrote; the rest of the collected total is ``OUTSIDE``.
    ``wrapper``: the instructions one wrapped call adds in all (``--calibrate``), taken off the
    calling stage once per call counted since ``StageCalls.reset`` (callgrind's own ``calls=``
    lines cannot serve: they count calls made while collection was off too), so each stage's own
    count is as in an unwrapped run (the few instructions a trampoline adds inside the called
    stage are taken off its caller instead)."""
    total, inclusive = _counts(callgrind_out)
    own: collections.Counter[str] = collections.Counter()
    for parent, stage, n, *made in json.loads(pairs_file.read_text()):
        cost = inclusive.get(n, 0)
        own[stage] += cost
        own[parent] -= cost
        if wrapper and made:
            own[parent] -= wrapper * made[0]
            own[WRAPPING] += wrapper * made[0]
    own[OUTSIDE] += total
    return sorted(((stage, count / messages) for stage, count in own.items()), key=lambda kv: -kv[1])


def callers(callgrind_out: Path, pairs_file: Path, messages: int, stage: str) -> list[tuple[str, float]]:
    """Instructions a message of ``stage``'s calls by the stage calling them (inclusive)."""
    _total, inclusive = _counts(callgrind_out)
    by: collections.Counter[str] = collections.Counter()
    for parent, called, n, *_made in json.loads(pairs_file.read_text()):
        if called == stage:
            by[parent] += inclusive.get(n, 0)
    return sorted(((parent, count / messages) for parent, count in by.items()), key=lambda kv: -kv[1])


CALIBRATION_CALLS = 2000


def calibrate(pairs_file: Path, n: int = CALIBRATION_CALLS) -> None:
    """``--calibrate PAIRS.json`` under callgrind (``--toggle-collect=sys_call_tracing``): a no-op
    called ``n`` times through the wrapper (the stage ``through``) and ``n`` times directly
    (``direct``); ``--calibration FILE PAIRS.json`` then prints what one wrapped call adds."""
    with tempfile.TemporaryDirectory() as tmp:
        calls = StageCalls(build(Path(tmp)))

    def noop(_a: object, _b: object) -> None:
        return None

    wrapped = calls.wrap(noop, "callee")

    def through() -> None:
        for _ in range(n):
            wrapped(1, 2)

    def direct() -> None:
        for _ in range(n):
            noop(1, 2)

    through_w, direct_w = calls.wrap(through, "through"), calls.wrap(direct, "direct")
    calls.reset()
    sys.call_tracing(lambda: (through_w(), direct_w()), ())
    calls.save(pairs_file)


def calibration(callgrind_out: Path, pairs_file: Path, n: int = CALIBRATION_CALLS) -> float:
    """Instructions one wrapped call adds (``through`` less ``direct``, inclusive, a call)."""
    _total, inclusive = _counts(callgrind_out)
    whole: collections.Counter[str] = collections.Counter()
    for _parent, stage, k, *_made in json.loads(pairs_file.read_text()):
        whole[stage] += inclusive.get(k, 0)
    return (whole["through"] - whole["direct"]) / n


def main() -> None:
    out, pairs_file, messages = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    wrapper = float(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[4] == "--wrapper" else 0.0
    rows = split(out, pairs_file, messages, wrapper)
    whole = sum(v for _, v in rows)
    print(f"instructions a lab message by stage (own; callgrind, {messages} messages): {whole / 1e6:.2f} M in all")
    for stage, per in rows:
        print(f"    {stage:<50} {per / 1e3:8.0f} k  {per / whole * 100:5.1f}%")
    by = callers(out, pairs_file, messages, SQL)
    if by:
        print(f"  {SQL}, by the stage running them:")
        for parent, per in by:
            print(f"    {parent:<50} {per / 1e3:8.0f} k  {per / whole * 100:5.1f}%")


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "--build":
        with tempfile.TemporaryDirectory() as tmp:
            print(build(Path(tmp)))
    elif sys.argv[1] == "--calibrate":
        calibrate(Path(sys.argv[2]))
    elif sys.argv[1] == "--calibration":
        print(f"{calibration(Path(sys.argv[2]), Path(sys.argv[3])):.0f} instructions a wrapped call adds")
    else:
        main()
