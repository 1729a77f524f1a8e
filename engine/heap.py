"""Garbage-collector settings for a long-running server process.

After start-up a server holds a large, permanent heap: the R4 schema and its compiled
validators, the site's mappings, the search parameter plans, the hash and normalisation caches.
CPython's cyclic collector walks the objects of a generation each time it runs, and ingest
allocates many short-lived dicts and lists per message (parse tree, FHIR resources, index rows),
so collections are frequent and the oldest generation is large. ``settle`` moves everything alive
at that point out of the collector's view (``gc.freeze``) and lets the youngest generation grow
larger before a collection: cycles are still collected, only less often and over fewer objects.
Measured on the 12-OBX ORU^R01 ingest benchmark: about 5 % of the server's CPU per message.

**What outlives an ingest batch** (``retire``). The ingest worker pauses the collector for a batch
and lets reference counting free the batch's objects when it ends (``engine.ingest``). What is
still alive then is what the caches kept of the batch (converted patients, codes, addresses and
names, index keys: ~140-200 containers a 12-OBX message while the caches fill) and the answers
still being sent. The young collection that ran as soon as the collector resumed walked all of
them and found nothing to collect (measured: ~10,000 containers a batch of 50, 0 collected,
~26-74 us of CPU a message), and the older generations walked them again later. So in a settled
server a batch's survivors are frozen with the permanent heap instead: a cache that lets go of
them frees them by reference counting as before; they are only no longer walked. Cycles among
them (none were found in ingest) wait for the full collection ``retire`` runs every
``FULL_COLLECTION_SECONDS`` (unfreeze, collect everything, freeze the survivors): a time bound,
not a relative growth bound, because a filling cache grows the heap legitimately (a rule on growth,
like CPython's own for its oldest generation, ran a full collection of ~100-150 ms every ~500
messages of the benchmark). The collector is paused process-wide during a batch, so cyclic garbage
another thread makes meanwhile (an HTTP request's exception and its traceback, say) is frozen too:
an absolute bound, ``FULL_COLLECTION_GROWTH`` objects frozen since the last full collection, caps
what can wait for it (tens of MB at most) whatever the time bound says. A process that was not
settled (tests, tools) keeps the collector as it is.

**Batches that overlap** (``paused``). The pause is process-wide, so it is counted: two ingestors
in one process (two engines, as tests and embedding applications make) may each run a batch at
once. Each batch used to remember whether the collector was on when it began and turn it back on
when it ended: the first batch to end turned it on under the other, still running (whose objects
the young collections then walked), and froze that batch's half-built objects with its own
survivors. Counted, the collector stays paused until the last overlapping batch ends, and only
then are the survivors retired and the collector resumed -- if it was on when the first began
(whoever turned it off keeps it off).
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Iterator

YOUNG_THRESHOLD = 10_000  # objects allocated (net) before a young collection; CPython's default is 700
FULL_COLLECTION_SECONDS = 300.0  # at most this long between full collections of a settled process
FULL_COLLECTION_GROWTH = 1_000_000  # ... and at most this many objects frozen since the last one

_settled = False
_next_full = 0.0  # time.monotonic() after which ``retire`` runs a full collection
_frozen_since_full = 0  # objects frozen by ``retire`` since the last full collection (an upper bound)
_lock = threading.RLock()  # ``paused`` holds it while ``retire`` takes it again
_pauses = 0  # batches inside ``paused`` now, in every thread
_resume = False  # the collector was on when the first of them began: the last one turns it on


def settle() -> None:
    """Call once, when the process has loaded everything it keeps (before serving)."""
    global _settled, _next_full, _frozen_since_full
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    with _lock:
        _settled = True
        _next_full = time.monotonic() + FULL_COLLECTION_SECONDS
        _frozen_since_full = 0


def retire() -> bool:
    """At the end of an ingest batch, the collector still paused and the batch's own objects freed:
    in a settled process, freeze what is alive (see the module docstring), after a full
    collection when ``FULL_COLLECTION_SECONDS`` have passed since the last one or more than
    ``FULL_COLLECTION_GROWTH`` objects were frozen since. True when it froze; False (nothing done)
    in a process that was not settled, whose collector resumes as usual."""
    global _next_full, _frozen_since_full
    if not _settled:
        return False
    with _lock:
        # the young generation's count (tracked objects allocated less those freed since it was
        # last emptied) is what this freeze adds: read in O(1), where gc.get_freeze_count() walks
        # the whole frozen list (measured: ~12 % of a 12-OBX message's CPU when asked per batch).
        # It never goes down when a frozen object dies, so it over-counts: a bound, not a size.
        _frozen_since_full += gc.get_count()[0]
        gc.freeze()
        now = time.monotonic()
        if now >= _next_full or _frozen_since_full > FULL_COLLECTION_GROWTH:
            gc.unfreeze()
            gc.collect()
            _next_full = now + FULL_COLLECTION_SECONDS
            gc.freeze()
            _frozen_since_full = 0
    return True


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """No cyclic collection while the block runs, in any thread (an ingest batch: see
    ``engine.ingest``); when the last block that overlaps it ends, ``retire`` and the collector
    back on, if it was on when the first began. Counted, so overlapping blocks (two ingestors in
    one process) keep it paused until all have ended (the module docstring)."""
    global _pauses, _resume
    with _lock:
        if _pauses == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _resume:
                _resume = False
                try:
                    retire()
                finally:
                    gc.enable()


def unsettle() -> None:
    """Undo ``settle`` (tests): everything frozen goes back to the oldest generation."""
    global _settled
    with _lock:
        _settled = False
        gc.unfreeze()
