"""A site's privacy rows cover the writers they covered as shipped (twenty-first round, docs21).

The shipped rows keeping a confidentiality label against feeds (``merge.yaml`` ``privacy``) name the
group ``feed``. The overlay check (``mappings.site.laid_over``) read the group's NAME only: a site
defining ``feed`` without MDM kept the row, which then no longer covered the document feed, and an
edit (T08) stating U took a V discharge summary down to N. Real MDM over the real ingest path, read
back over HTTP. The first two fail on the base (53a004f); the third passes there and guards that the
widened row holds feeds only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from mappings.site import Site
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import send
from tests.test_mdm20_document_label import _label, mdm

_DEFAULTS = ("defaults:\n  modes: {feed: keep-if-absent, api: replace, other: keep-if-absent}\n"
             "  conflict: {feed: warn, api: reject, other: warn}\n"
             "resources:\n  Observation:\n    status: {placeholders: [unknown]}\n")
# MDM in no group at all: its writer falls to ``other``
_NO_GROUP = "sources:\n  feed: [ADT, ORM, ORU]\n  api: [api]\n" + _DEFAULTS


def _engine_on(settings: Any, tmp_path: Path, text: str) -> Engine:
    (tmp_path / "merge.yaml").write_text(text, "utf-8")
    return Engine(settings.with_(site=tmp_path))


def test_mdm_in_no_group_keeps_a_v_document_and_its_text_v(settings: Any, tmp_path: Path) -> None:
    with _engine_on(settings, tmp_path, _NO_GROUP) as eng, TestClient(create_app(eng)) as http:
        http.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("reader", "system/*.rs")
        acks = send(eng, mdm("G1", "T02", "V", "第一段", number="DOC-G"), mdm("G2", "T08", "U", "第二段", number="DOC-G"))
        assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
        (doc,) = written(eng, http, "G2", "DocumentReference")
        assert _label(doc) == {"V"}, doc.get("securityLabel")
        texts = [o for o in written(eng, http, "G2", "Observation") if o.get("resourceType") == "Observation"]
        assert texts and all(_label(t) == {"V"} for t in texts), texts


def test_the_overlay_names_the_writers_a_site_group_left_out(settings: Any, tmp_path: Path) -> None:
    (tmp_path / "merge.yaml").write_text(
        "sources:\n  feed: [ADT, ORM, ORU]\n  docs: [MDM]\n  api: [api]\n" + _DEFAULTS, "utf-8")
    site = Site.load(settings.with_(site=tmp_path)).merge
    label = site["resources"]["DocumentReference"]["securityLabel"]
    assert label["stands"]["MDM"] == ["V", "R"] and label["stands"]["feed"] == ["V", "R"], label
    assert "other" in label["stands"], label  # OUL, REF, ... are in no group of this site
    meta = site["resources"]["Observation"]["meta"]
    assert meta["MDM"] == "parts" and meta["stands"]["MDM"] == ["V", "R"], meta
    # a row the site's groups still cover whole is laid under as shipped
    shipped = Site.load(settings).merge
    (tmp_path / "merge.yaml").write_text(
        "sources:\n" + "".join(f"  {g}: {m}\n" for g, m in shipped["sources"].items()).replace("'", "")
        + _DEFAULTS, "utf-8")
    whole = Site.load(settings.with_(site=tmp_path)).merge
    assert whole["resources"]["DocumentReference"]["securityLabel"] == \
        shipped["resources"]["DocumentReference"]["securityLabel"]


def test_a_records_office_still_lowers_the_document_on_such_a_site(settings: Any, tmp_path: Path) -> None:
    """The widened row holds the feeds only: ``api`` is grouped, and a PUT of the whole document lowers it."""
    with _engine_on(settings, tmp_path, _NO_GROUP) as eng, TestClient(create_app(eng)) as http:
        http.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("office", "system/*.cruds")
        assert [ack_code_of(a) for a in send(eng, mdm("P1", "T02", "V", "第一段", number="DOC-P"))] == ["AA"]
        (doc,) = written(eng, http, "P1", "DocumentReference")
        lowered = {k: v for k, v in doc.items() if k not in ("meta", "securityLabel")}
        answer = http.put(f"/fhir/DocumentReference/{doc['id']}", json=lowered)
        assert answer.status_code == 200, answer.text
        assert _label(http.get(f"/fhir/DocumentReference/{doc['id']}").json()) == set()
