"""Review of convperf29 (twenty-ninth round, rvconvperf29): the A12 bed rule as data.

convperf29 moved "an A12's PV1-6 is no past bed" from code (``_PRIOR_BED_CANCELLED``, applied to
every site) into the shipped ``merge.yaml`` (``Encounter.location`` ``history_taken_back_by: [A12]``).
A site's ``merge.yaml`` is laid over the shipped one element by element, and "an element the site
names is its rule, whole" (``mappings.site.laid_over``). A site whose copy names ``Encounter.location``
(every copy made from the eighteenth round on: the element has been shipped since 2c3e5d11) lacks
the new key, so its A12s store the cancelled transfer's bed again as a bed the patient left -- on
bd6a96da the same site file dropped it. Old site files must behave as before.

And the schema takes any text as an event: a misspelt rule is silently no rule.

Real HL7 over MLLP into the real store (SQLite). Each test fails on bd89d024.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.engine import Engine
from engine.settings import Settings
from mappings.site import Site, SiteError
from tests.test_convleft28_performer import mllp

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_RULE = ("history: [completed], history_unless: [cancelled, entered-in-error], "
                "history_taken_back_by: [A12]}")
# the Encounter.location rule as site copies of merge.yaml hold it: made in the twenty-eighth round
# (bd6a96da's shipped line), and made from the eighteenth to the twenty-seventh round (status_follows alone)
OLD_COPIES = {
    "copy-of-round-28": "history: [completed], history_unless: [cancelled, entered-in-error]}",
    "copy-of-rounds-18-27": "}",
}


def adt(control: str, event: str, pv1_3: str, pv1_6: str, minute: str, visit: str) -> str:
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|2026110109{minute}00||ADT^{event}^ADT_A01|{control}|P|2.5.1\n"
            f"EVN|{event}|2026110109{minute}00\nPID|1||M{visit}^^^FNXRMYY^MR||张^三||19800101|M\n"
            f"PV1|1|I|{pv1_3}|||{pv1_6}|D01^王^明||||||||||||{visit}^^^FNXRMYY^VN\n")


def a12_beds(engine: Engine, prefix: str, visit: str) -> list[tuple[str, str]]:
    """A01 to bed 101, A02 to 102, A12 back to 101 (PV1-6 naming 102, the bed the cancelled transfer
    went to) over MLLP, controls ``prefix`` 1-3; the visit's stored beds, (display, status) sorted.
    The scenario convfix29 runs on its own site rules too (one copy, suitedup31)."""
    mllp(engine,
         adt(f"{prefix}1", "A01", "W01^101^1^FNXRMYY", "", "10", visit),
         adt(f"{prefix}2", "A02", "W01^102^1^FNXRMYY", "W01^101^1^FNXRMYY", "15", visit),
         adt(f"{prefix}3", "A12", "W01^101^1^FNXRMYY", "W01^102^1^FNXRMYY", "20", visit))
    [encounter] = engine.repository.search("Encounter", [("identifier", visit)]).resources
    return sorted((e["location"]["display"], e["status"]) for e in encounter.get("location", ()))


def _site_with_merge(root: Path, merge_text: str) -> Path:
    site = root / "site"
    site.mkdir(parents=True)
    (site / "merge.yaml").write_text(merge_text, "utf-8")
    return site


@pytest.fixture(scope="module", params=sorted(OLD_COPIES))
def old_site_engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    shipped = (ROOT / "mappings" / "merge.yaml").read_text("utf-8")
    assert shipped.count(SHIPPED_RULE) == 1
    root = tmp_path_factory.mktemp(request.param)
    site = _site_with_merge(root, shipped.replace(SHIPPED_RULE, OLD_COPIES[request.param]))
    with Engine(Settings(data_dir=root / "var", http_port=0, mllp_port=0, site=site)) as engine:
        yield engine


def test_an_old_site_merge_file_keeps_the_cancelled_transfers_bed_out_of_history(old_site_engine: Engine) -> None:
    """MED. A01 to 101, A02 to 102, A12 (back to 101; PV1-6 names 102, the bed the cancelled
    transfer went to). On bd6a96da the site below stored 101 alone; on bd89d024 its merge.yaml (made
    before the key existed) names Encounter.location, so the A12 rule is gone: 102 is stored
    ``completed`` -- a bed the patient never lay in, under a cancelled transfer."""
    beds = a12_beds(old_site_engine, "R", "VR1")
    assert beds == [("W01 101房 1床", "active")], beds


# ``[A12 ]`` as first written is ["A12"] (a YAML flow sequence strips the space: a valid rule); the
# stray space is kept only quoted (convfix29)
@pytest.mark.parametrize("bad", ["[ADT^A12]", "[a12]", '["A12 "]'])
def test_the_site_schema_refuses_a_rule_naming_no_trigger_event(tmp_path: Path, bad: str) -> None:
    """LOW. ``history_taken_back_by`` is a list of trigger events the converter compares to the
    message's event as is; the schema (``_NAMES``) takes any non-empty text, so a site writing the
    message type, lower case or a stray space loads fine and the rule silently never applies.
    Integrators edit these files by hand: the file should be refused at load, naming the field."""
    shipped = (ROOT / "mappings" / "merge.yaml").read_text("utf-8")
    site = _site_with_merge(tmp_path, shipped.replace("history_taken_back_by: [A12]", f"history_taken_back_by: {bad}"))
    with pytest.raises(SiteError, match="history_taken_back_by"):
        Site.load(Settings(data_dir=tmp_path / "var", site=site))
