"""The audit log's record bytes and leaf hash each have one owner (fortieth round, pfix40; rv40j LOW 2).

A sealed record's bytes as record ``seq`` (``head,"id":"audit-<seq>"tail``) are written by two
append paths (``Appends._prepare`` for a group, ``_append_sealed`` for a lone record; one path, ``_prepare``,
since the forty-first round) and read back
by ``Sealed.data``; the leaf hash ``SHA-256(0x00 || bytes)`` is made by both append paths and
recomputed by the verifier. A copy that drifted from the others would be written to the segment
first and found by ``huren audit verify`` only afterwards, and ``duplicates`` does not see such
one-line copies. So the format is ``engine.audit.record.SEALED_FORMAT`` and the prefix
``engine.audit.merkle.LEAF_PREFIX``, and no other engine module spells either out. The bytes the
two paths write are held equal, through real logs, by ``tests/test_perf40r_lone_append.py`` and
``tests/test_rv40j_probes.py``; here, that both paths' records are the owners' bytes and hash.
"""

from __future__ import annotations

import re
from pathlib import Path

from engine.audit import merkle
from engine.audit.record import SEALED_FORMAT, Sealed, seal
from engine.audit.verify import verify_online

ENGINE = Path(__file__).resolve().parent.parent / "engine"
_FORMAT = re.compile(r'audit-%d')
_PREFIX = re.compile(r"""b(["'])\\x00\1""")


def test_no_engine_module_but_the_owners_spells_the_format_or_the_prefix() -> None:
    found: dict[str, list[str]] = {"format": [], "prefix": []}
    for path in sorted(ENGINE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        name = str(path.relative_to(ENGINE))
        if _FORMAT.search(text):
            found["format"].append(name)
        if _PREFIX.search(text):
            found["prefix"].append(name)
    assert found == {"format": ["audit/record.py"], "prefix": ["audit/merkle.py"]}


def test_a_sealed_record_is_the_format_applied_and_its_leaf_the_prefixed_hash(tmp_path: Path) -> None:
    from engine.audit.keys import AuditKeys
    from engine.audit.log import AuditLog
    from engine.repository import open_store
    from engine.settings import Settings

    settings = Settings(data_dir=tmp_path / "data", audit_checkpoint_every=0)
    store = open_store(settings)
    log = AuditLog(store, settings, AuditKeys.load(settings))
    try:
        doc = {"f": 2, "act": "read", "at": "2026-12-05T00:00:00.000Z", "by": ["system", "his-a", None, "his-a",
               None, None, None, None], "node": "pfix40", "out": "0", "pat": ["张三"], "res": ["Observation/o1"]}
        records: list[Sealed] = [seal(doc, ("p:张三",), "2026-12-05T00:00:00.000Z") for _ in range(3)]
        lone = log.try_record_many(records[:1])  # (the lone path)
        group = log.try_record_many(records[1:])  # (the general path)
        assert lone is not None and group is not None
        for seq, (appended, record) in enumerate(zip([*lone, *group], records, strict=True)):
            assert appended.seq == seq  # type: ignore[union-attr]
            assert appended.data == record.data(seq) == SEALED_FORMAT % (record.head, seq, record.tail)  # type: ignore[union-attr]
            assert b'"id":"audit-%d"' % seq in appended.data  # type: ignore[union-attr]
            assert appended.leaf_hash == merkle.leaf_hash(appended.data)  # type: ignore[union-attr]
        report = verify_online(log)
        assert report.ok and report.records == 3, report.text()
    finally:
        log.close()
        store.close()
