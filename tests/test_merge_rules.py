"""The merge rules of ``mappings/merge.yaml``, case by case: who may change or erase what.

Each row: resource type, writer, stored version, incoming version → the version stored and the
conflicts reported (or refused). The rules come from the shipped data file, as the engine loads it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import Unprocessable
from engine.merge_rules import MergeRules, shipped
from mappings.site import Site, SiteError

REPO = Path(__file__).resolve().parent.parent
R01 = {"coding": [{"system": "urn:huren:recognition-reason", "code": "R01", "display": "病情变化"}]}
R02 = {"coding": [{"system": "urn:huren:recognition-reason", "code": "R02"}]}
PLAC = {"system": "urn:huren:order:B", "value": "B-3", "type": {"coding": [{"code": "PLAC"}]}}
FILL = {"system": "urn:huren:order:B", "value": "FB-3", "type": {"coding": [{"code": "FILL"}]}}
T0, T1 = "2026-03-14T08:00:00+08:00", "2026-03-14T09:00:00+08:00"
RP = {"other": {"reference": "RelatedPerson/rp-1"}, "type": "seealso"}
SAME = {"other": {"reference": "Patient/pa"}, "type": "seealso"}
OTHER = {"other": {"reference": "Patient/pz"}, "type": "seealso"}
MERGED = {"other": {"reference": "Patient/old"}, "type": "replaces"}


def sr(**kw) -> dict:
    return {"resourceType": "ServiceRequest", "id": "sr", "intent": "order", "subject": {"reference": "Patient/p"}, **kw}


def pat(**kw) -> dict:
    return {"resourceType": "Patient", "id": "pb", **kw}


CASES = [
    # (what, writer, stored, incoming, expected, conflicts)
    ("result keeps the order's reason and time, applies its status and adds the filler number", "ORU",
     sr(status="active", authoredOn=T0, reasonCode=[R01], identifier=[PLAC]),
     sr(status="completed", identifier=[PLAC, FILL]),
     sr(status="completed", authoredOn=T0, reasonCode=[R01], identifier=[PLAC, FILL]), 0),
    ("result with another order time: the order's stands, the writer is warned", "ORU",
     sr(status="active", authoredOn=T0), sr(status="completed", authoredOn=T1),
     sr(status="completed", authoredOn=T0), 1),
    ("result may fill an order time nobody stated", "ORU",
     sr(status="active"), sr(status="completed", authoredOn=T1), sr(status="completed", authoredOn=T1), 0),
    ("the order (owner) corrects its own time", "ORM",
     sr(status="active", authoredOn=T0), sr(status="active", authoredOn=T1), sr(status="active", authoredOn=T1), 0),
    ("reasons accumulate without duplicates", "ORU",
     sr(reasonCode=[R01]), sr(reasonCode=[R01, R02]), sr(reasonCode=[R01, R02]), 0),
    ("a FHIR client states the whole resource (FHIR update): it may remove the reason", "api",
     sr(status="active", authoredOn=T0, reasonCode=[R01]), sr(status="revoked"), sr(status="revoked"), 0),
    ("a thinner ADT keeps what it leaves out (HL7 v2: empty = no change)", "ADT",
     pat(gender="male", telecom=[{"system": "phone", "value": "1"}]), pat(gender="male"),
     pat(gender="male", telecom=[{"system": "phone", "value": "1"}]), 0),
    ("the registration system restates the patient's identifiers in full", "ADT",
     pat(identifier=[{"system": "s", "value": "wrong"}]), pat(identifier=[{"system": "s", "value": "right"}]),
     pat(identifier=[{"system": "s", "value": "right"}]), 0),
    ("a feed re-sending a Patient without links keeps every link", "ADT",
     pat(link=[RP, SAME]), pat(gender="male"), pat(gender="male", link=[RP, SAME]), 0),
    ("the index states its links: the client's link to a RelatedPerson stays", "index",
     pat(gender="male", link=[RP]), pat(gender="male", link=[SAME]), pat(gender="male", link=[RP, SAME]), 0),
    ("the index removes a link it no longer states, and only that", "index",
     pat(link=[RP, SAME]), pat(), pat(link=[RP]), 0),
    ("the index may not change what it does not own", "index",
     pat(gender="male"), pat(gender="female"), pat(gender="male"), 1),
    ("a client re-sending without the index's links keeps them, drops its own", "api",
     pat(link=[RP, SAME]), pat(gender="male"), pat(gender="male", link=[SAME]), 0),
    ("a client re-sending the index's links as they are is fine", "api",
     pat(link=[RP, SAME]), pat(link=[RP, SAME]), pat(link=[RP, SAME]), 0),
    ("an ADT merge (A40) adds a replaces link beside the index's", "ADT",
     pat(link=[SAME]), pat(link=[MERGED]), pat(link=[SAME, MERGED]), 0),
    ("a feed's person link the index did not make is not stored, and said so", "ADT",
     pat(link=[SAME]), pat(link=[OTHER]), pat(link=[SAME]), 1),
]


@pytest.mark.parametrize(("what", "writer", "stored", "incoming", "expected", "conflicts"), CASES,
                         ids=[c[0] for c in CASES])
def test_merge_rule(what, writer, stored, incoming, expected, conflicts) -> None:
    combined = shipped().combine(stored, incoming, writer)
    assert combined.resource == expected
    assert len(combined.issues) == conflicts, combined.issues
    for issue in combined.issues:
        assert issue["severity"] == "warning" and "not stored" in issue["diagnostics"]


@pytest.mark.parametrize(("stored", "incoming"), [
    (pat(link=[SAME]), pat(link=[OTHER])),  # a person link on an update
    (None, pat(link=[OTHER])),  # ... or on a create
    (None, pat(link=[RP, OTHER])),  # beside a link of its own
])
def test_a_client_is_refused_what_would_not_be_stored(stored, incoming) -> None:
    with pytest.raises(Unprocessable, match="patient index"):
        shipped().combine(stored, incoming, "api")


def test_a_client_creating_with_its_own_links_is_untouched() -> None:
    assert shipped().combine(None, pat(link=[RP]), "api").resource == pat(link=[RP])


def test_the_rules_come_from_the_data_file() -> None:
    text = (REPO / "mappings" / "merge.yaml").read_text("utf-8")
    assert "authoredOn: {owner: [order, api], held: true}" in text  # the row above that keeps the order time
    assert shipped().plan("ServiceRequest", "ORU").elements["authoredOn"].mode == "keep-stored"
    assert shipped().plan("ServiceRequest", "ORM").elements["authoredOn"].mode == "keep-if-absent"
    assert shipped().plan("Observation", "api").trivial  # a client's resource is stored as sent


def test_a_site_replaces_the_rules(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    text = (REPO / "mappings" / "merge.yaml").read_text("utf-8")
    (site / "merge.yaml").write_text(text.replace("    feed: warn ", "    feed: reject "), "utf-8")
    rules = MergeRules.from_site(Site.from_dirs(REPO / "mappings", site))
    with pytest.raises(Unprocessable, match="authoredOn"):
        rules.combine(sr(authoredOn=T0), sr(authoredOn=T1), "ORU")


def test_a_bad_rules_file_names_file_and_line(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    text = (REPO / "mappings" / "merge.yaml").read_text("utf-8")
    (site / "merge.yaml").write_text(text.replace("reasonCode: {feed: union", "reasonCode: {feed: unite"), "utf-8")
    with pytest.raises(SiteError) as err:
        Site.from_dirs(REPO / "mappings", site)
    assert "merge.yaml:" in str(err.value) and "reasonCode" in str(err.value)
    (site / "merge.yaml").write_text(text.replace("reasonCode: {feed: union", "reasonCode: {lab: union"), "utf-8")
    with pytest.raises(SiteError, match="'lab' is not a source"):
        MergeRules.from_site(Site.from_dirs(REPO / "mappings", site))


def test_a_choice_element_keeps_one_value() -> None:
    stored = {"resourceType": "Observation", "id": "o", "status": "final", "code": {"text": "x"},
              "valueQuantity": {"value": 1.5, "unit": "mmol/L"}, "effectiveDateTime": "2026-03-14"}
    corrected = {"resourceType": "Observation", "id": "o", "status": "corrected", "code": {"text": "x"},
                 "valueString": "haemolysed"}
    assert shipped().combine(stored, corrected, "ORU").resource == {
        "resourceType": "Observation", "id": "o", "status": "corrected", "code": {"text": "x"},
        "valueString": "haemolysed", "effectiveDateTime": "2026-03-14"}
