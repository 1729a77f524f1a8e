"""The recognition hook's per-group pass-overs (perfrecog21: ``_plan`` reads the batch preview's skip
table and the rules once per write group) under rules reloaded while the feed is written: the varied
feed of ``tests/test_perfrecog21_same_bytes.py`` goes over a real MLLP socket into a fresh store while
the recognition rules are reloaded (``Recognition.reload``, what SIGHUP and ``POST /admin/reload``
call) after every seventh write group (a batch hook after recognition's), so some groups are
decided under the rules their batch's preview was made under and the others under rules replaced
since (the preview's pass-overs no longer trusted). The rules read are the same each time, so every stored version, every recognition and
patient index row and every ACK must be what the base commit stored without reloads (the same
fixture): a group whose preview was made under a replaced rules object passes nothing over and
classifies each result again, never takes another group's answer."""

from __future__ import annotations

from pathlib import Path

from tests.test_perfrecog21_same_bytes import FIXTURE, KEY, _listener, _send_all, comparable, feed, snapshot


def test_the_feed_is_stored_as_the_base_stored_it_while_the_rules_are_reloaded(tmp_path: Path) -> None:
    import json

    from engine.engine import Engine
    from engine.identity.mpi import KEY_FILE
    from engine.settings import Settings

    data_dir = tmp_path / "var"
    (data_dir / "keys").mkdir(parents=True)
    (data_dir / "keys" / KEY_FILE).write_bytes(KEY)
    engine = Engine(Settings(data_dir=data_dir, http_port=0, mllp_port=0))
    first = engine.recognition.rules
    groups = [0]

    def reload_after_some_groups(pairs: list) -> list:  # a batch hook after recognition's own
        groups[0] += 1
        if groups[0] % 7 == 3:  # the rest of this group's batch: a preview under replaced rules
            engine.recognition.reload()
        return [[] for _ in pairs]

    engine.repository.add_batch_hook(reload_after_some_groups)
    messages = feed()
    try:
        with _listener(engine) as port:
            acks = _send_all(port, messages)
        batches = engine.ingestor.stats.batches
    finally:
        engine.close()
    assert engine.recognition.rules is not first and groups[0] >= 20, groups
    assert batches < len(messages)  # batches of several: previews and groups the reloads cut across
    got = snapshot(data_dir, acks)
    expected = json.loads(FIXTURE.read_text(encoding="utf-8"))
    # what later rounds changed on purpose set aside, every other byte compared (``comparable``)
    comparable(got)
    comparable(expected)
    for part in ("acks", "docs", "current", "versions"):
        if got[part] != expected[part]:
            if isinstance(got[part], dict):
                differ = sorted(k for k in set(got[part]) | set(expected[part])
                                if got[part].get(k) != expected[part].get(k))
                raise AssertionError(f"{part}: {len(differ)} differ, e.g. {differ[:5]}")
            assert got[part] == expected[part], part
