"""Instructions per Python function of the ingest path under callgrind (thirty-eighth round, perf38b).

    PYTHONHASHSEED=0 valgrind --tool=callgrind --collect-atstart=no --toggle-collect=_operator_call \\
        --callgrind-out-file=/dev/shm/f.cg python bench/function_instructions.py /dev/shm/f.json 50 first \\
        engine.recognition.batch_scope:BatchScope._preview adapters.convert.plans:GroupPlans.quick ...
    python bench/function_instructions.py --report /dev/shm/f.cg /dev/shm/f.json 50 [WRAPPER]

Why: callgrind sees CPython's eval loop, not Python functions, and ``bench/stage_instructions.py``
splits by the stage clock's stages only. Here each named function (``module:function`` or
``module:Class.method``, patched wherever a module holds it) is called through a C trampoline of its
own per (calling function, function) pair -- that file's trampolines -- so its inclusive count is
exact and its own count is the inclusive less the wrapped functions it calls and their wrappers
(``WRAPPER`` instructions a wrapped call, 4,500 by default: ``bench/stage_instructions.py
--calibrate``). ``first``: ``bench/ingest.py --instructions``'s first versions (``N`` 12-OBX
messages in batches of 50 after its warm-up); ``rerun``: ``bench/tfix35_reruns.py``'s re-runs, one
message at a time. The report prints each function's inclusive and own instructions a message
and its calls a message."""

from __future__ import annotations

import collections
import importlib
import json
import operator
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.ingest import one_at_a_time, oru_lab, settle_warm  # noqa: E402
from bench.stage_instructions import OUTSIDE, StageCalls, _counts, build  # noqa: E402


def report(callgrind_out: Path, pairs_file: Path, messages: int, wrapper: float = 4500.0) -> None:
    """Each wrapped function's inclusive and own instructions a message, and its calls a message."""
    total, inclusive = _counts(callgrind_out)
    own: collections.Counter[str] = collections.Counter()
    whole: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()
    for parent, child, k, made in json.loads(pairs_file.read_text()):
        cost = inclusive.get(k, 0)
        whole[child] += cost
        own[child] += cost
        own[parent] -= cost + wrapper * made
        whole[parent] -= wrapper * made  # (the wrappers of its wrapped calls)
        calls[child] += made
    print(f"{total / messages / 1e6:.3f} M instructions a message in all "
          f"(the wrappers {sum(calls.values()) * wrapper / messages / 1e3:.0f} k of them)")
    for name in sorted(whole, key=lambda x: -whole[x]):
        if name != OUTSIDE:
            print(f"  incl {whole[name] / messages / 1e3:8.1f} k  own {own[name] / messages / 1e3:8.1f} k  "
                  f"{calls[name] / messages:6.1f}x  {name}")


def _patch_everywhere(orig: Any, wrapped: Any) -> None:
    """``orig`` replaced by ``wrapped`` in every module holding it (``from x import f`` too)."""
    for module in list(sys.modules.values()):
        names = getattr(module, "__dict__", None)
        if not names or getattr(module, "__name__", "") == "__main__":
            continue
        for key, value in list(names.items()):
            if value is orig:
                setattr(module, key, wrapped)


def measure(out: Path, count: int, bench: str, specs: list[str]) -> None:
    """The ``bench`` run (``first`` or ``rerun``) with each function of ``specs`` wrapped; the pairs
    (calling function, function, trampoline, calls) written to ``out``."""
    from engine.engine import Engine
    from engine.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        # the stage benchmark's wrapper (one C trampoline per (caller, callee) pair), a function for a stage
        calls = StageCalls(build(Path(tmp)))
        wrap = calls.wrap
        for spec in specs:
            module_name, qualname = spec.split(":")
            found = importlib.import_module(module_name)
            name = f"{module_name.rsplit('.', 1)[-1]}:{qualname}"
            if "." in qualname:
                cls_name, attr = qualname.split(".")
                cls = getattr(found, cls_name)
                setattr(cls, attr, wrap(cls.__dict__[attr], name))
            else:
                _patch_everywhere(getattr(found, qualname), wrap(getattr(found, qualname), name))
        settings = Settings(data_dir=Path(tmp) / "var", http_port=0, mllp_port=0)
        with Engine(settings) as engine:
            settle_warm(engine, 50)
            if bench == "first":
                messages = [(oru_lab(50_000_000 + i), "bench", "127.0.0.1:1") for i in range(count)]
                calls.reset()

                def timed() -> None:
                    for start in range(0, count, 50):
                        engine.ingestor.process(messages[start : start + 50])

                operator.call(timed)
            else:
                from bench.tfix35_reruns import rerun

                first = 71_000_000
                engine.ingestor.process([(oru_lab(first + i), "bench", "127.0.0.1:1") for i in range(count)])
                engine.ingestor.process([(oru_lab(first + 10_000), "bench", "127.0.0.1:1")])  # (warm)
                engine.ingestor.process([(rerun(first + 10_000), "bench", "127.0.0.1:1")])
                calls.reset()
                one_at_a_time(engine, [rerun(first + i) for i in range(count)])
    calls.save(out)


def main() -> None:
    if sys.argv[1] == "--report":
        wrapper = float(sys.argv[5]) if len(sys.argv) > 5 else 4500.0
        report(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), wrapper)
        return
    measure(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:])


if __name__ == "__main__":
    main()
