"""``institutions.yaml`` ``mrn_authorities`` naming another member institution is refused at site load
(the lead, thirty-second round): ``authority_of`` reads a CX-4 naming a member as that member's own
record number, so such a declaration would file one institution's numbers as the other's. Checked
through the real site loader on a copy of the shipped site file."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from mappings.site import Site
from mappings.sitefiles import SiteError

REPO_ROOT = Path(__file__).resolve().parents[1]


def _site_with(tmp_path: Path, authorities: list[str]) -> Path:
    members = yaml.safe_load((REPO_ROOT / "mappings" / "institutions.yaml").read_text(encoding="utf-8"))
    other = next(m for m in members if m["code"] != "FNXRMYY")
    for member in members:
        if member["code"] == "FNXRMYY":
            member["mrn_authorities"] = [a.replace("<OTHER_CODE>", other["code"]).replace("<OTHER_NAME>", other["name"])
                                         for a in authorities]
    (tmp_path / "institutions.yaml").write_text(yaml.safe_dump(members, allow_unicode=True), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("name", ["<OTHER_CODE>", "<OTHER_NAME>"])
def test_an_authority_naming_another_member_is_refused_at_load(tmp_path: Path, name: str) -> None:
    site = _site_with(tmp_path, ["HIS", name])
    with pytest.raises(SiteError) as refused:
        Site.load(_settings(site))
    text = str(refused.value)
    assert "institutions.yaml" in text and "mrn_authorities[1]" in text and "member institution" in text, text


def test_its_own_names_and_another_system_load(tmp_path: Path) -> None:
    site = _site_with(tmp_path, ["HIS", "FNXRMYY", "2.16.156.10011.1.1"])
    loaded = Site.load(_settings(site))
    assert loaded.institutions["FNXRMYY"].mrn_authorities == ("HIS", "FNXRMYY", "2.16.156.10011.1.1")


def _settings(site: Path):  # noqa: ANN202 -- engine.settings.Settings
    from engine.settings import Settings

    return Settings(data_dir=site / "var", site=site)


def test_the_census_keeps_one_authority_a_line() -> None:
    """``huren identity authorities`` prints tab-separated lines; a CX-4 is the sender's text, so a tab,
    line break or backslash in it is escaped (rvidfix32, LOW): the line still has five cells."""
    from engine.identity.cli import _cell

    line = "\t".join(_cell(v) for v in ("FNXRMYY", "LIS", "A\tB\nC\\D", "3", "apart"))
    assert "\n" not in line and line.split("\t") == ["FNXRMYY", "LIS", "A\\tB\\nC\\\\D", "3", "apart"]


def test_the_census_pages_through_every_kept_message_once(tmp_path: Path) -> None:
    """The census reads the kept messages a page at a time by ``_id`` (after the last read, not by an
    offset): across page boundaries every message comes once, on the real SQLite collection."""
    from engine.identity.authorities import _raws
    from engine.repository.sqlite_store import SqliteStore

    store = SqliteStore(tmp_path / "m.db")
    try:
        kept = store.collection("hl7_messages")
        for i in range(23):
            raw = f"MSH|^~\\&|HIS|FNXRMYY|||||ADT^A04|{i}|P|2.5.1".encode()
            kept.insert({"_id": f"m-{i:03d}", "raw": base64.b64encode(raw).decode(), "codec": "utf-8"})
        read = [raw for raw, _ in _raws(kept, 5)]
        assert len(read) == 23 and len(set(read)) == 23
    finally:
        store.close()
