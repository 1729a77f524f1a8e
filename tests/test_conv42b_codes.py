"""conv42b: rv42e's findings on conv42's coding systems and thinner restatements, through the real path
(``POST /hl7v2`` into the real store, read back over ``/fhir``): a sender's own list under a non-99 name is
its code map's once the site declares it (senders.yaml ``local_code_systems`` in a site overlay), and only
for that sender; a value restated at another precision keeps its unit and the precision it was restated in.
The precision parameters share one engine a module and backend (``module_eng``, suite44c), each under control IDs
and a patient of its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.recognition.coding import item_for
from tests.module_store import module_eng
from tests.performer_site import ROOT, served
from tests.test_conv42_codes import FIRST, errs, hgb, lis, oru, send, written

__all__ = ["lis", "module_eng"]

LOINC = "http://loinc.org"


def _overlay(tmp_path: Path, declared: str) -> Path:
    site = tmp_path / "site"
    (site / "hl7v2").mkdir(parents=True)
    shipped = (ROOT / "mappings" / "hl7v2" / "senders.yaml").read_text("utf-8")
    assert "local_code_systems: {}" in shipped
    (site / "hl7v2" / "senders.yaml").write_text(
        shipped.replace("local_code_systems: {}", f"local_code_systems: {declared}"), "utf-8")
    return site


def test_a_declared_non_99_list_is_the_senders_code_map_and_is_not_warned(tmp_path: Path) -> None:
    """The site declares ``LIS`` (any case in the message) as 阜宁县人民医院's own list: its HGB maps to
    LOINC 718-7, the report to the CBC item, no W 103; ``LAB``, declared nowhere, stays an unknown system
    with its W -- the declaration names one list of one sender, not every name."""
    site = _overlay(tmp_path, "{FNXRMYY: [LIS]}")
    with served(tmp_path / "var", site) as (eng, client):
        (ack,) = send(client, oru("E42D1", "E42D1", "XCG^血常规^lis",
                                  "OBX|1|NM|HGB^血红蛋白^LIS||130|g/L|||||F|||20261201090000\r"), batch=False)
        assert ack_code_of(ack) == "AA" and not any("is not known" in e for e in errs(ack)), ack
        (obs,) = written(eng, client, "E42D1", "Observation")
        codings = {c["system"]: c["code"] for c in obs["code"]["coding"]}
        assert codings == {"urn:huren:code:FNXRMYY": "HGB", LOINC: "718-7"}, codings
        (report,) = written(eng, client, "E42D1", "DiagnosticReport")
        assert item_for(report, eng.recognition.rules, "FNXRMYY") == "CBC"

        (ack,) = send(client, oru("E42D2", "E42D2", "XCG^血常规^LAB",
                                  "OBX|1|NM|HGB^血红蛋白^LAB||130|g/L|||||F|||20261201090000\r"), batch=False)
        assert ack_code_of(ack) == "AA" and any("'LAB' is not known" in e for e in errs(ack)), ack
        (obs,) = written(eng, client, "E42D2", "Observation")
        assert {c["system"] for c in obs["code"]["coding"]} == {"urn:huren:unknown-code-system:FNXRMYY:LAB"}, obs


@pytest.mark.parametrize(("tag", "first", "again"), [("1", "130", "130.0"), ("2", "6.1", "6.10"),
                                                     ("3", "130.0", "130")])
def test_the_same_value_at_another_precision_keeps_the_unit_and_is_kept_as_restated(
        module_eng: Engine, lis: TestClient, tag: str, first: str, again: str) -> None:
    """130 g/L then ``130.0`` (``6.1``/``6.10``, ``130.0``/``130``), OBX-6 empty: the same value (FHIR
    decimals compare numerically), so the unit stays; the value is the restatement's, its precision as sent."""
    c1, c2 = f"E42Q{tag}a", f"E42Q{tag}b"
    stored = FIRST.replace("||130|", f"||{first}|")
    later = oru(c2, c1, "CBC^血常规^L", f"OBX|1|NM|HGB^血红蛋白^L||{again}||||||F|||20261201090000\r",
                msh7="20261201101500+0800")
    acks = send(lis, oru(c1, c1, "CBC^血常规^L", stored), later, batch=False)
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    r = lis.get(f"/fhir/Observation/{hgb(module_eng, lis, c2)['id']}")
    assert r.status_code == 200
    raw = r.content.decode("utf-8")
    q = r.json()["valueQuantity"]
    assert q.get("unit") == "g/L" and q.get("code") == "g/L", q
    assert f'"value":{again}' in raw.replace(" ", ""), raw
