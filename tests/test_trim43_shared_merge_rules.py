"""trim43: a process compiles the same merge rules once (``engine.merge_rules._COMPILED``), and a site's own
``merge.yaml`` still gets its own.

Every Engine's open built a ``MergeRules`` of its site's rules and compiled again each plan (resource type x writer)
its messages met, ~0.2 ms each. The compiled tables are now shared by every ``MergeRules`` of the same rules (a
digest of the rules as read), read-only; what is an instance's own stays its own: the message being written on each
thread (``saying``) and the engine's ``same_test``. Real HL7 v2 over ``POST /hl7v2`` into real engines and stores: a
site whose ``merge.yaml`` refuses a result's step back answers AE where the shipped rules answer AA, a second site of
other institutions but the same ``merge.yaml`` bytes compiles nothing again, and the shipped site's rules are others."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine import merge_rules
from engine.api.app import create_app
from engine.engine import Engine
from engine.merge_rules import MergeRules, Said, shipped
from engine.settings import Settings
from tests.hl7_calls import post
from tests.module_store import undeclared_site
from tests.test_hl7fix18_site_merge import HL7_GROUP, result


def _acks(engine: Engine) -> tuple[list[str], list[dict[str, Any]]]:
    """A final result, then the same result preliminary (a step back), over ``POST /hl7v2``; the ACK codes and the
    Observations stored."""
    with TestClient(create_app(engine)) as http:
        http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("trim43", "system/*.cruds")
        codes = [ack_code_of(post(http, result(c, s))) for c, s in (("T43F", "F"), ("T43P", "P"))]
        found = http.get("/fhir/Observation").json()
    return codes, [e["resource"] for e in found.get("entry") or ()]


def test_a_sites_own_merge_yaml_gets_its_own_rules_and_the_same_bytes_compile_once(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one, other = tmp_path / "one", undeclared_site(tmp_path / "other")  # other institutions, the same merge.yaml
    one.mkdir()
    for folder in (one, other):
        (folder / "merge.yaml").write_text(HL7_GROUP, "utf-8")
    # the process's shared tables as a process that has met no rules yet has them: another test of this worker may
    # have compiled these very rules (test_hl7fix18_site_merge's HL7_GROUP), and "the first engine compiles" would
    # then find them compiled (ci179, after file_costs put the two files in one worker)
    monkeypatch.setattr(merge_rules, "_COMPILED", {})
    monkeypatch.setattr(merge_rules, "_READ_AS", {})
    compiled: list[str] = []
    element = MergeRules._element
    monkeypatch.setattr(MergeRules, "_element", lambda self, rule, *a: compiled.append("x") or element(self, rule, *a))
    with Engine(settings.with_(data_dir=tmp_path / "a", site=one)) as a:
        codes, (obs,) = _acks(a)
        # the site's rule (``conflict: {hl7: reject}``): a final taken back to preliminary is refused
        assert codes == ["AA", "AE"] and obs["status"] == "final" and obs["meta"]["versionId"] == "1", (codes, obs)
        assert compiled, "the first engine compiles the rules its messages meet"
        compiled.clear()
        with Engine(settings.with_(data_dir=tmp_path / "b", site=other)) as b:
            assert a.site.merge is not b.site.merge and a.site.institutions != b.site.institutions  # two readings
            codes, (obs,) = _acks(b)
            assert codes == ["AA", "AE"] and obs["status"] == "final", (codes, obs)
            assert compiled == [], "the same merge.yaml bytes: nothing compiled again"
            assert b.repository.merge._plans is a.repository.merge._plans
            # what is an engine's own stays its own: its rules object, its recognition's same-test reading
            assert b.repository.merge is not a.repository.merge
            assert a.repository.merge.same_test == a._same_item and b.repository.merge.same_test == b._same_item
    with Engine(settings.with_(data_dir=tmp_path / "c")) as c:  # the shipped site: the shipped rules, not the site's
        codes, observations = _acks(c)
        assert codes == ["AA", "AA"], codes  # a step back warned, not refused (``conflict: warn``)
        assert c.repository.merge._plans is not a.repository.merge._plans
        assert [o["status"] for o in observations] == ["final"], observations  # (the final stands: the shipped rule)


def test_the_shared_rules_are_read_only_and_a_callers_own_mapping_stays_its_own() -> None:
    data = shipped().data
    mine = {**data, "resources": {**data["resources"], "ServiceRequest": {
        **data["resources"]["ServiceRequest"], "authoredOn": {"ORU": "replace"}}}}
    rules = MergeRules(mine, "a site's merge.yaml")
    assert rules.plan("ServiceRequest", "ORU").elements["authoredOn"].mode == "replace"
    assert shipped().plan("ServiceRequest", "ORU").elements["authoredOn"].mode == "keep-stored"
    with pytest.raises(TypeError):
        rules._resources["ServiceRequest"]["authoredOn"]["ORU"] = "keep-stored"  # type: ignore[index]
    with pytest.raises(TypeError):
        rules._groups["feed"] = frozenset()  # type: ignore[index]
    # the caller changes its own mapping after: the rules compiled from it do not change; a MergeRules of the
    # changed mapping is other rules, compiled as such
    mine["resources"]["ServiceRequest"] = {**mine["resources"]["ServiceRequest"], "authoredOn": {"ORU": "keep-stored"}}
    assert rules.plan("ServiceRequest", "ORU").elements["authoredOn"].mode == "replace"
    assert MergeRules(mine).plan("ServiceRequest", "ORU").elements["authoredOn"].mode == "keep-stored"
    # one process, one compiled set for equal rules; each MergeRules's message on this thread its own
    again = MergeRules({**mine})
    assert again._plans is MergeRules(mine)._plans and again is not rules
    said = {"Patient/p1": Said()}
    with again.saying(said):
        assert again.said_of("Patient/p1") is said["Patient/p1"]
        assert MergeRules(mine).said_of("Patient/p1") is None and shipped().said_of("Patient/p1") is None
    assert len(merge_rules._COMPILED) <= 16
