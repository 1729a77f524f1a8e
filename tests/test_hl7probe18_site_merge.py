"""A site ``merge.yaml`` copied before a round that added rules (eighteenth round, hl7probe18).

A site's ``merge.yaml`` replaced the shipped one whole, so a copy made before the seventeenth round
(``tests/fixtures/site_merge_c48f504``) lacked its rules: a discharge (A03 with PV1-45 and PV1-36,
without PV1-44 and PV1-14) erased the admission time and admit source the A01 stated -- the later,
thinner message erasing what an earlier one stated, the defect that round mended for the shipped
rules. The file is now laid over the shipped one resource by resource, element by element (as
``hl7v2/vocabulary.yaml`` is table by table): an element the site names is its truth, whole; one it
does not name keeps the shipped rule. Sent over MLLP, read back through ``/fhir``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from mappings.site import Site
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import send
from tests.test_hl7probe17_visit_parts import adt

SITE = Path(__file__).parent / "fixtures" / "site_merge_c48f504"


def test_a_site_merge_file_from_before_a_round_keeps_the_shipped_rules_it_does_not_name(settings: Settings) -> None:
    assert "parts" not in (SITE / "merge.yaml").read_text("utf-8")
    with Engine(settings.with_(site=SITE)) as engine:
        acks = send(engine, adt("M1", "A01", f14="7^急诊入院", f44="20261130080000", f19="VM^^^FNXRMYY^VN"),
                    adt("M2", "A03", f36="01^回家", f45="20261201080000", f19="VM^^^FNXRMYY^VN"))
        assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
        with TestClient(create_app(engine)) as reader:
            reader.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("reader", "system/*.rs")
            (visit,) = written(engine, reader, "M2", "Encounter")
    assert visit["status"] == "finished"
    assert visit["period"] == {"start": "2026-11-30T08:00:00+08:00", "end": "2026-12-01T08:00:00+08:00"}
    assert visit["hospitalization"]["admitSource"]["coding"][0]["code"] == "7"
    assert visit["hospitalization"]["dischargeDisposition"]["coding"][0]["code"] == "01"


def test_what_the_site_names_is_its_truth_and_the_rest_is_shipped(settings: Settings, tmp_path: Path) -> None:
    # (hl7fix18: the site's sources and defaults are its own, whole -- not laid group by group)
    shipped = Site.load(settings).merge
    (tmp_path / "merge.yaml").write_text(
        "sources:\n  registration: [ADT, ZHS]\n  feed: [registration]\n"
        "defaults:\n  modes: {other: replace}\n  conflict: {}\n"
        "resources:\n  Encounter:\n    period: {feed: keep-if-absent}\n", "utf-8")
    site = Site.load(settings.with_(site=tmp_path)).merge
    assert site["sources"] == {"registration": ["ADT", "ZHS"], "feed": ["registration"]}
    assert site["defaults"] == {"modes": {"other": "replace"}, "conflict": {}}
    # (the visit guard laid without ``problem``, a group this site lacks: PPR is in its ``other``, ident38)
    assert site["resources"]["Encounter"] == {**shipped["resources"]["Encounter"], "period": {"feed": "keep-if-absent"},
                                              "subject": {"another_person": {"feed": "reject", "other": "reject"}}}
    assert site["resources"]["*"] == shipped["resources"]["*"]
    # a shipped rule naming a group the site does not define (index, order, api, problem) is left out
    # (Condition.meta names ``feed``, which this site defines: kept -- labelmark27)
    assert "link" not in site["resources"]["Patient"] and "clinicalStatus" not in site["resources"].get("Condition", {})
    assert "authoredOn" not in site["resources"]["ServiceRequest"]
