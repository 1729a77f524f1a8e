"""trim42b: one reading of the site's files per process and content, shared read-only by every Engine.

Each Engine used to get an unpickled copy of its own of the site's tables (~3.2 ms an open), which the
converter then compiled again (it compiles a table once by the table's identity), and a site folder
written less than 2 s before was read and checked in full (~19 ms). Now the same bytes, in any folder,
give the same tables, and those refuse to be changed. Real files, a real Engine, real HL7 over POST /hl7v2.
"""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from adapters.convert import engine as convert_engine
from engine.engine import Engine
from engine.settings import Settings
from mappings.frozen import FrozenDict, FrozenList
from mappings.site import DEFAULTS_DIR, Site


def _site_folder(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True)
    entries = yaml.safe_load((DEFAULTS_DIR / "institutions.yaml").read_text(encoding="utf-8"))
    entries[0]["name"] = name
    (folder / "institutions.yaml").write_text(yaml.safe_dump(entries, allow_unicode=True), encoding="utf-8")
    return folder


def test_same_bytes_in_two_folders_are_one_reading_naming_each_folder(tmp_path: Path) -> None:
    """Two site folders just written (younger than the settling time) with the same bytes: one reading,
    each Site naming its own folder's file; other bytes are read apart."""
    one = Site.from_dirs(DEFAULTS_DIR, _site_folder(tmp_path / "a", "县医院检验科"))
    two = Site.from_dirs(DEFAULTS_DIR, _site_folder(tmp_path / "b", "县医院检验科"))
    assert two.tables is one.tables and two.code_maps is one.code_maps and two.merge is one.merge
    assert str(tmp_path / "a" / "institutions.yaml") in one.sources
    assert str(tmp_path / "b" / "institutions.yaml") in two.sources
    assert str(tmp_path / "a" / "institutions.yaml") not in two.sources
    other = Site.from_dirs(DEFAULTS_DIR, _site_folder(tmp_path / "c", "县人民医院检验科"))
    assert other.tables is not one.tables
    code = next(iter(one.institutions))
    assert (one.institutions[code].name, other.institutions[code].name) == ("县医院检验科", "县人民医院检验科")


def test_an_edit_of_the_same_size_within_the_clock_tick_is_read(tmp_path: Path) -> None:
    """Keyed by the bytes, not the stamps alone: a folder rewritten at once (same size, same
    coarse mtime) is hashed again, being younger than the settling time, and its new bytes read."""
    folder = _site_folder(tmp_path / "a", "县医院检验科")
    assert Site.from_dirs(DEFAULTS_DIR, folder).institutions
    text = (folder / "institutions.yaml").read_text(encoding="utf-8")
    (folder / "institutions.yaml").write_text(text.replace("县医院检验科", "市医院检验科"), encoding="utf-8")
    code = next(iter(Site.from_dirs(DEFAULTS_DIR, folder).institutions))
    assert Site.from_dirs(DEFAULTS_DIR, folder).institutions[code].name == "市医院检验科"


def test_a_shared_table_refuses_every_change_and_copies_are_plain() -> None:
    site = Site.from_dirs(DEFAULTS_DIR)
    table = next(t for t in site.tables.values() if isinstance(t, dict) and t)
    assert type(table) is FrozenDict
    with pytest.raises(TypeError, match="shared by every Engine"):
        table["x"] = 1
    with pytest.raises(TypeError):
        table.update(x=1)
    with pytest.raises(TypeError):
        site.merge.setdefault("x", {})
    a_list = next(v for t in site.tables.values() if isinstance(t, dict) for v in t.values() if isinstance(v, list))
    assert type(a_list) is FrozenList
    with pytest.raises(TypeError):
        a_list.append("x")
    some_map = next(iter(site.code_maps.values()))
    with pytest.raises(TypeError):
        some_map.codes["x"] = some_map.codes  # type: ignore[index]
    mine = copy.deepcopy(table)  # a caller's own copy: plain, changeable, equal
    assert type(mine) is dict and mine == table
    mine["x"] = 1
    assert pickle.loads(pickle.dumps(site.tables)) == site.tables  # a child process gets equal tables


ORU = ("MSH|^~\\&|LIS|FNXRMYY|HUREN|HUREN|20260101083000||ORU^R01^ORU_R01|{cid}|P|2.5.1\r"
       "PID|1||M{n}^^^FNXRMYY^MR||测试^患者||19800101|M\r"
       "OBR|1||F{n}^LIS|2345-7^Glucose^LN|||20260101080000\r"
       "OBX|1|NM|2345-7^Glucose^LN||5.6|mmol/L|||||F|||20260101080000\r")


def _post(engine: Engine, n: int) -> str:
    """One ORU^R01 through the real app; the ACK's MSA-1."""
    from engine.api.app import create_app

    with TestClient(create_app(engine)) as http:
        http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("lis", "system/*.cruds")
        ack = http.post("/hl7v2", content=ORU.format(cid=f"T42B{n}", n=n).encode(),
                        headers={"Content-Type": "x-application/hl7-v2+er7"}).text
    return next(line for line in ack.split("\r") if line.startswith("MSA")).split("|")[1]


def test_two_engines_share_one_compiled_set(tmp_path: Path) -> None:
    """The second Engine's conversion compiles nothing new: its tables are the first's."""
    first = Engine(Settings(data_dir=tmp_path / "one", http_port=0, mllp_port=0))
    try:
        second = Engine(Settings(data_dir=tmp_path / "two", http_port=0, mllp_port=0))
        try:
            assert second.site.tables is first.site.tables
            assert _post(first, 1) == "AA"
            compiled = len(convert_engine._COMPILED)
            assert _post(second, 2) == "AA"
            assert len(convert_engine._COMPILED) == compiled
        finally:
            second.close()
    finally:
        first.close()
