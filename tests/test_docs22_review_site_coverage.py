"""Reviewer rvdocs's probes of docs21's site privacy rows by coverage: real MDM through a site's merge.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import send
from tests.test_mdm20_document_label import _label, mdm

_DEFAULTS = ("defaults:\n  modes: {feed: keep-if-absent, api: replace, other: keep-if-absent}\n"
             "  conflict: {feed: warn, api: reject, other: warn}\n"
             "resources:\n  Observation:\n    status: {placeholders: [unknown]}\n")
_SITES = {
    # MDM put with the FHIR clients (a site trusting its document system like a client)
    "mdm_in_api": "sources:\n  feed: [ADT, ORM, ORU]\n  api: [api, MDM]\n" + _DEFAULTS,
    # feed nested: the site's feed names a group of its own
    "nested": "sources:\n  hl7: [ADT, ORM, ORU, MDM]\n  feed: [hl7]\n  api: [api]\n" + _DEFAULTS,
    # MDM alone in a group of its own, the rest of the shipped feed in another
    "docs_only": "sources:\n  feed: [ADT]\n  docs: [MDM]\n  labs: [ORU, ORM]\n  api: [api]\n" + _DEFAULTS,
}


@pytest.mark.parametrize("site", sorted(_SITES))
def test_an_edit_stating_u_keeps_a_v_document_v(settings: Any, tmp_path: Path, site: str) -> None:
    (tmp_path / "merge.yaml").write_text(_SITES[site], "utf-8")
    with Engine(settings.with_(site=tmp_path)) as eng, TestClient(create_app(eng)) as http:
        http.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("reader", "system/*.rs")
        acks = send(eng, mdm("G1", "T02", "V", "第一段", number="DOC-G"), mdm("G2", "T08", "U", "第二段", number="DOC-G"))
        # the site's own conflict treatment may refuse the lowering (MDM in ``api``: reject): AE, the label kept
        assert [ack_code_of(a) for a in acks] in (["AA", "AA"], ["AA", "AE"]), acks
        (doc,) = written(eng, http, "G1", "DocumentReference")  # the current version, read by id
        assert _label(doc) == {"V"}, (site, doc.get("securityLabel"))
        texts = [o for c in ("G1", "G2") for o in written(eng, http, c, "Observation")
                 if o.get("resourceType") == "Observation"]
        assert all(_label(t) == {"V"} for t in texts), (site, texts)
