"""rvwriter30: the writer mark when a huren of layout 7 from before writer30 writes the store.

writer30 kept the layout number, and the release before it opened the store and updated a row without
naming the ``writer`` column: the client's version kept the feed's mark. writer31 made the column layout 8,
which that release refuses. Real path: the feed's ADT through the ingestor of this tree, then the release
before writer30 (647c6168, extracted with ``git archive``) opening the same SQLite store in its own process
to update the Patient as a FHIR client would (``Repository.update``, source ``api``), then this tree reading
the Patient and its mark back.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from engine.engine import Engine
from engine.merge_rules import API
from engine.repository.sqlite_fhir import LAYOUT
from engine.settings import Settings
from tests.test_writer30_marks import adt

ROOT = Path(__file__).resolve().parent.parent
BEFORE = "647c6168"


def test_a_clients_version_written_by_the_release_before_is_not_marked_the_feeds(settings: Settings,
                                                                                 tmp_path: Path) -> None:
    """FINDING (rvwriter30 LOW, mended by writer31). The older release's update is ``UPDATE fhir_resource
    SET version, updated, deleted, body, sortkeys, hkeys, ranges WHERE rid`` -- it does not name ``writer``,
    so the row kept the previous version's writer (the feed's group): after a downgrade (same layout, so
    allowed) a client's version read as the feed's, the very confusion the mark exists to prevent. Now the
    store is of layout 8 and that release refuses to open it (its own "newer huren" check): nothing it
    could write reaches the store, the feed's version and mark stay, and this tree's client write is
    marked the client's."""
    with Engine(settings) as engine:
        (out,) = engine.ingestor.process([(adt("W1"), "mllp", "peer")])
        assert out.code == "AA"
        [patient] = [r["id"] for r in engine.repository.search("Patient", [("_count", "10")]).resources]
        feed = engine.repository.writers("Patient", [patient])[patient]
        assert feed not in (None, API), feed
    old = tmp_path / "before"
    old.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", BEFORE, "engine", "mappings", "adapters", "conformance"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(old)!r})
        import engine
        assert engine.__file__.startswith({str(old)!r}), engine.__file__
        from engine.engine import Engine
        from pathlib import Path
        from engine.settings import Settings
        with Engine(Settings(data_dir=Path({str(settings.data_dir)!r}), http_port=0, mllp_port=0)) as e:
            p = e.repository.read("Patient", {patient!r})
            p = {{k: v for k, v in p.items() if k != "meta"}}
            p["gender"] = "female"
            r = e.repository.update(p)
            assert r.resource["meta"]["versionId"] == "2", r.resource["meta"]
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=str(old), capture_output=True, text=True)
    assert done.returncode != 0, done.stdout[-3000:]
    assert "LayoutError" in done.stderr and f"layout {LAYOUT} was written by a newer huren" in done.stderr, \
        done.stderr[-3000:]
    with Engine(settings) as engine:
        stored = engine.repository.read("Patient", patient)
        assert stored["gender"] == "male" and stored["meta"]["versionId"] == "1", stored
        assert engine.repository.writers("Patient", [patient]) == {patient: feed}
        mine = {k: v for k, v in stored.items() if k != "meta"}
        mine["gender"] = "female"
        assert engine.repository.update(mine).resource["meta"]["versionId"] == "2"
        assert engine.repository.writers("Patient", [patient]) == {patient: API}
