"""Every ``AttributeError`` raised on the loop's thread while ``bench/asgi_reads.py`` serves its timed
reads, each with its message, the C function that raised it and the Python frames above: the misses
that ``getattr(x, name, default)``, ``hasattr`` and classes with ``__getattr__`` raise and swallow.

    python bench/attr35_misses.py plain 100          # or: audited; READ_PATH='/fhir/Observation?...'
    MISS_ALL=1 python bench/attr35_misses.py plain 100   # every exception raised, of any type

Why gdb and not Python: most of these never reach a Python frame -- the failed ordinary lookup
before a ``__getattr__`` runs, ``hasattr``, a C library's probe -- so neither ``sys.settrace`` nor
a wrapped ``builtins.getattr`` sees them (audc34 found ~44 a read with callgrind, which names C
functions but not the Python caller). Here gdb stops at ``_PyErr_SetObject`` (every raise, C or
Python, goes through it), keeps those of ``AttributeError`` (or a subclass) on thread 1, and reads
the current Python frames from the interpreter's own structures (the interpreter is built with
debug information). Only the timed part counts: the breakpoint is armed when ``sys.call_tracing``
(``CALLGRIND=1``) starts it. Under gdb a read costs milliseconds: 100 reads take some seconds.

Thirty-fifth round (attr35), 100 reads, 1 caller, the fast read: before, six ``AttributeError``s a
read on both paths, all from ``engine.auth.deps`` reading Starlette's ``State`` by attribute
(``getattr(request.state, "caller" / "repo", None)``: the failed lookup and ``State.__getattr__``'s own
raise, two each; ``request.app.state.engine`` twice: one each); with ``MISS_ALL=1``, 14 exceptions a read
(those, ``__getattr__``'s two KeyErrors, three TypeErrors of ``bytes in bytes``, two GeneratorExits of
``any(<generator>)``, the absent clients file's FileNotFoundError). After: none a read (the audited path:
~0.01-0.15 a read from the audit's segment looks in ``engine.audit.record_files``).
Once-per-run rows (the bench's own ``asyncio.gather``) are printed too; read the per-read column.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# run inside gdb (its own Python): arm at sys_call_tracing, stop at every AttributeError on thread 1
GDB_SCRIPT = r'''
import collections, json, os
import gdb

counts = collections.Counter()
pending = []
DEPTH = int(os.environ.get("MISS_DEPTH", "3"))
ALL = os.environ.get("MISS_ALL") == "1"  # every exception type, not only AttributeError
ROOT = os.environ["MISS_ROOT"] + "/"
attribute_error = [0]


def text(address):
    """A str object's text (compact ASCII, or its cached UTF-8), else its type's name."""
    obj = gdb.parse_and_eval(f"(PyObject*){int(address)}").dereference()
    kind = obj["ob_type"].dereference()["tp_name"].string()
    if kind != "str":
        return f"<{kind}>"
    state = gdb.parse_and_eval(f"((PyASCIIObject*){int(address)})->state")
    if int(state["ascii"]) and int(state["compact"]):
        return gdb.parse_and_eval(f"(char*)((PyASCIIObject*){int(address)} + 1)").string()
    utf8 = int(gdb.parse_and_eval(f"((PyCompactUnicodeObject*){int(address)})->utf8"))
    return gdb.parse_and_eval(f"(char*){utf8}").string() if utf8 else "<not ASCII>"


def python_frames():
    frames = []
    frame = gdb.parse_and_eval(
        "((PyThreadState*)_PyRuntime.gilstate.tstate_current._value)->cframe->current_frame")
    while int(frame) and len(frames) < DEPTH:
        code = int(frame.dereference()["f_code"])
        offset = int(gdb.parse_and_eval(
            f"(long)((char*)((_PyInterpreterFrame*){int(frame)})->prev_instr"
            f" - (char*)((PyCodeObject*){code})->co_code_adaptive)"))
        line = int(gdb.parse_and_eval(f"(int)PyCode_Addr2Line((PyCodeObject*){code}, {offset})"))
        name = text(gdb.parse_and_eval(f"((PyCodeObject*){code})->co_filename"))
        name = name.split("site-packages/")[-1].replace(ROOT, "")
        frames.append(f"{name}:{line} {text(gdb.parse_and_eval(f'((PyCodeObject*){code})->co_qualname'))}")
        frame = frame.dereference()["previous"]
    return " < ".join(frames)


class Arm(gdb.Breakpoint):
    def stop(self):
        attribute_error[0] = int(gdb.parse_and_eval("(long)PyExc_AttributeError"))
        raised.enabled = True
        return False


class Raised(gdb.Breakpoint):
    def stop(self):
        if gdb.selected_thread().num != 1 or gdb.selected_frame().pc() != self.locations[0].address:
            return False  # another thread, or the second location gdb gives the same call
        exc = int(gdb.parse_and_eval("exception"))
        kind = gdb.parse_and_eval(f"((PyTypeObject*){exc})->tp_name").string()
        if exc != attribute_error[0] and "AttributeError" not in kind and not ALL:
            return False
        value, message = int(gdb.parse_and_eval("value")), ""
        try:
            value_type = gdb.parse_and_eval(f"((PyObject*){value})->ob_type") if value else None
            if value_type is not None and value_type.dereference()["tp_name"].string() == "str":
                message = text(value)
            elif value_type is not None and int(value_type.dereference()["tp_flags"]) & (1 << 30):
                args = int(gdb.parse_and_eval(f"((PyBaseExceptionObject*){value})->args"))  # an exception
                if int(gdb.parse_and_eval(f"((PyVarObject*){args})->ob_size")):
                    message = text(gdb.parse_and_eval(f"((PyTupleObject*){args})->ob_item[0]"))
            elif value_type is not None:
                message = f"<{value_type.dereference()['tp_name'].string()}>"
        except gdb.error as exc:
            message = f"<unread: {exc}>"
        chain, frame = [], gdb.newest_frame().older()
        while frame is not None and frame.name() != "_PyEval_EvalFrameDefault" and len(chain) < 8:
            chain.append(frame.name() or "?")
            frame = frame.older()
        pending.append((f"{kind}: {message}" if ALL else message, chain[-1] if chain else "?"))
        return True  # the Python frames are read stopped (gdb calls PyCode_Addr2Line)


gdb.execute("set breakpoint pending on")
raised = Raised("_PyErr_SetObject", internal=True)
raised.enabled = False
Arm("sys_call_tracing", internal=True)
gdb.execute("run")
while pending:
    message, entry = pending.pop()
    counts[(message, entry, python_frames())] += 1
    gdb.execute("continue")
with open(os.environ["MISS_OUT"], "w") as fh:
    json.dump([[n, *key] for key, n in counts.most_common()], fh, ensure_ascii=False)
'''


def misses(mode: str, reads: int, root: Path = ROOT) -> tuple[list[list], str]:
    """[count, message, raising C function, Python frames] over ``reads`` timed reads of ``root``'s tree,
    and the bench's own line."""
    with tempfile.TemporaryDirectory() as tmp:
        script, out = Path(tmp) / "misses.gdb.py", Path(tmp) / "misses.json"
        script.write_text(GDB_SCRIPT)
        env = {**os.environ, "CALLGRIND": "1", "MISS_OUT": str(out), "MISS_ROOT": str(root)}
        run = subprocess.run(["gdb", "-q", "-batch", "-ex", "set pagination off", "-ex", f"source {script}",
                              "--args", sys.executable, str(root / "bench" / os.environ.get("MISS_BENCH", "asgi_reads.py")), mode, str(reads), "1"],
                             env=env, capture_output=True, text=True, check=False)
        if not out.exists():
            raise SystemExit(f"gdb wrote no result:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
        line = next((x for x in run.stdout.splitlines() if " over ASGI in process" in x), "")
        return json.loads(out.read_text()), line


def main() -> None:
    mode, reads = sys.argv[1], int(sys.argv[2])
    rows, line = misses(mode, reads, Path(sys.argv[3]).resolve() if len(sys.argv) > 3 else ROOT)
    print(line.split(":")[0])
    total = sum(row[0] for row in rows)
    kinds = "exceptions" if os.environ.get("MISS_ALL") == "1" else "AttributeErrors"
    print(f"{total} {kinds} on the loop's thread over {reads} reads: {total / reads:.2f} a read")
    for count, message, entry, frames in rows:
        print(f"{count / reads:7.2f}/read  {count:5d}  {message}  [{entry}]  {frames}")


if __name__ == "__main__":
    main()
