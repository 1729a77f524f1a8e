"""What a ``fhir_resource`` row costs, part by part (fortieth round, perf40).

    python bench/perf40_resource_rows.py build DIR            # the engine's store after bench/ingest.py's run
    PYTHONHASHSEED=0 valgrind --tool=callgrind --collect-atstart=no --toggle-collect=_operator_call \\
        python bench/perf40_resource_rows.py replay DIR VARIANT

``build`` runs ``bench/ingest.py --instructions``' messages in process (its warm-up, then 50 12-OBX
lab results in one batch) into ``DIR`` and keeps the last rid of the warm-up (``DIR/warm-rid``). ``replay`` copies the
warm-up's resource rows into a fresh store of the same page size and pragmas, then inserts the
timed messages' rows as the put does (``sqlite_fhir.insert_flat``, 17 rows a message, 50 messages a
transaction) inside ``operator.call``: divide callgrind's collected instructions by the rows printed.
Variants take one thing away or change one thing, to see what it costs: ``stored`` (as the store
is: layout 9, ``tu`` indexed), ``no-key`` (without the ``idh`` index), ``no-updated`` (without the
``tu`` index), ``no-indexes`` (neither), ``no-body`` (the body NULL), ``text-updated`` (layout 8: no
``tu``, the text index ``(type, updated)`` instead -- perf40's ``stored``; perf41's layout 9 was
perf40's ``int-updated``), ``one-statement`` (a message's rows in one statement rather than 16 + 1:
``insert_flat``'s ``_ROWS_AT_ONCE`` is 64, 16, 4).

Why here and not in ``bench/ingest.py``: the put's statements are ~0.2 M instructions of a 13.9 M
message each, too small a share to see a variant in the whole message's count."""

from __future__ import annotations

import operator
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VARIANTS = ("stored", "no-key", "no-updated", "no-indexes", "no-body", "text-updated", "one-statement")
_KEY = "CREATE INDEX IF NOT EXISTS fhir_resource_key ON fhir_resource (idh);"
_TU = "CREATE INDEX IF NOT EXISTS fhir_resource_tu ON fhir_resource (tu);"  # (``sqlite_fhir._add_tu``'s)
_UPDATED = "CREATE INDEX IF NOT EXISTS fhir_resource_updated ON fhir_resource (type, updated);"
_COLUMNS = "rid, type, id, version, updated, deleted, body, sortkeys, hkeys, ranges, idh, writer, tu"


def build(folder: Path) -> None:
    from bench.ingest import oru_lab, settle_warm
    from engine.engine import Engine
    from engine.settings import Settings

    settings = Settings(data_dir=folder / "var", http_port=0, mllp_port=0)
    with Engine(settings) as engine:
        settle_warm(engine, 50)
        warm = engine.store.conn.execute("SELECT max(rid) FROM fhir_resource").fetchone()[0]
        engine.ingestor.process([(oru_lab(50_000_000 + i), "bench", "127.0.0.1:1") for i in range(50)])
    (folder / "warm-rid").write_text(str(warm))
    print(f"{settings.sqlite_path}: the warm-up's rows end at rid {warm}")


def replay(folder: Path, variant: str) -> None:
    import engine.repository.sqlite_fhir as sqlite_fhir

    source = folder / "var" / "huren.sqlite3"
    path = folder / f"replay-{variant}.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA page_size=16384")  # (engine.repository.open_store's)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "cache_size=-131072", "temp_store=MEMORY",
                   "mmap_size=268435456"):
        conn.execute("PRAGMA " + pragma)
    schema, columns = sqlite_fhir.SCHEMA + _TU, _COLUMNS
    if variant in ("no-key", "no-indexes"):
        schema = schema.replace(_KEY, "")
    if variant in ("no-updated", "no-indexes"):
        schema = schema.replace(_TU, "")
    if variant == "text-updated":  # layout 8
        schema = schema.replace(_TU, _UPDATED).replace("writer TEXT, tu INTEGER);", "writer TEXT);", 1)
        columns = _COLUMNS.removesuffix(", tu")
    conn.executescript(schema)
    conn.execute("ATTACH ? AS src", (str(source),))
    warm = int((folder / "warm-rid").read_text())
    conn.execute(f"INSERT INTO fhir_resource ({columns}) SELECT {columns} FROM src.fhir_resource "  # noqa: S608
                 "WHERE rid <= ?", (warm,))
    rows: list[list[Any]] = [list(r) for r in conn.execute(
        f"SELECT {columns} FROM src.fhir_resource WHERE rid > ? ORDER BY rid", (warm,))]  # noqa: S608
    conn.execute("DETACH src")
    head, width = sqlite_fhir._INSERT_RESOURCE, 13
    if variant == "text-updated":
        head, width = head.removesuffix(", tu)") + ")", 12
    for row in rows:  # bound as the put binds them (its blobs as bytearray: perf39)
        row[6] = None if variant == "no-body" else bytearray(row[6])
        row[8] = bytearray(row[8])
    if variant == "one-statement":
        sqlite_fhir._ROWS_AT_ONCE = (17, 16, 4)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    messages = [rows[at : at + 17] for at in range(0, len(rows), 17)]

    def insert(batch: list[list[list[Any]]]) -> None:
        for message in batch:
            sqlite_fhir.insert_flat(conn, head, width, [v for row in message for v in row])

    cpu = time.process_time()
    for at in range(0, len(messages), 50):
        conn.execute("BEGIN IMMEDIATE")
        operator.call(insert, messages[at : at + 50])
        conn.execute("COMMIT")
    spent = time.process_time() - cpu
    conn.close()
    print(f"{variant}: {len(rows)} rows after {warm} ({spent / len(rows) * 1e6:.1f} us a row of CPU); "
          f"under callgrind, divide the collected instructions by {len(rows)}")


def main() -> None:
    if sys.argv[1:2] == ["build"]:
        build(Path(sys.argv[2]))
    elif sys.argv[1:2] == ["replay"] and len(sys.argv) == 4 and sys.argv[3] in VARIANTS:
        replay(Path(sys.argv[2]), sys.argv[3])
    else:
        sys.exit(f"usage: {sys.argv[0]} build DIR | replay DIR {'|'.join(VARIANTS)}")


if __name__ == "__main__":
    main()
