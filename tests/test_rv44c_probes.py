"""rv44c's probes of the forty-fourth round's merges suite44a (a new SQLite store copied from a per-process
template, ``engine.store_template``) and low44b (``applications.sends_as``: a message's MSH-3 matched as sent).

Real Engines on real data directories (the real ``open_store``, the real start), real HL7 v2 over ``POST /hl7v2``,
``/fhir`` over FastAPI, the real store."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine import store_template
from engine.engine import Engine
from engine.settings import Settings
from tests.hl7_calls import err_lines, post
from tests.module_store import system_client
from tests.owner41_calls import decide, nids
from tests.test_idn43_merge import _a47, _links, _merge_held, _one
from tests.test_rvidentity32_probes import MRN, _nid, adt, patients
from tests.test_suite44a_store_template import fresh_template  # noqa: F401 (a fixture: the process's template state reset)

# --- suite44a: a copied store against the store its start makes ---------------------------------------------------


def _settings(tmp_path: Path, name: str) -> Settings:
    return Settings(data_dir=tmp_path / name, http_port=0, mllp_port=0)


def _made_and_copied(tmp_path: Path) -> tuple[Path, Path]:
    """Three Engines in this process on new data directories: the first made as always, the third copied from the
    template the second made (each opened and closed)."""
    for name in ("made", "second", "copied"):
        with Engine(_settings(tmp_path, name)) as engine:
            assert (engine.store in store_template._copied) == (name != "made"), name
    return _settings(tmp_path, "made").sqlite_path, _settings(tmp_path, "copied").sqlite_path


_PRAGMAS = ("page_size", "journal_mode", "user_version", "application_id", "auto_vacuum", "encoding",
            "freelist_count", "page_count", "integrity_check")


def _pragmas(path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    try:
        out: dict[str, Any] = {p: conn.execute(f"PRAGMA {p}").fetchall() for p in _PRAGMAS}
        out["sqlite_internal"] = sorted(conn.execute("SELECT type, name FROM sqlite_master "
                                                     "WHERE name LIKE 'sqlite_%'").fetchall())
    finally:
        conn.close()
    return out


@pytest.mark.usefixtures("fresh_template")
def test_a_copied_store_has_the_made_stores_pragmas_and_no_wal_left(tmp_path: Path) -> None:
    """Guard (passes): what suite44a's own tests do not compare -- the file's page size (16 KiB), WAL mode, layout
    number (user_version), application_id, auto_vacuum, encoding, page and free-list counts, integrity, SQLite's own
    tables (``sqlite_stat1`` from the close's ``PRAGMA optimize``) -- are the made store's, and both are closed with
    no WAL file beside them."""
    made, copied = _made_and_copied(tmp_path)
    assert _pragmas(copied) == _pragmas(made)
    assert _pragmas(copied)["page_size"] == [(16384,)] and _pragmas(copied)["journal_mode"] == [("wal",)]
    for path in (made, copied):
        assert not Path(f"{path}-wal").exists()


@pytest.fixture
def umask_002() -> Iterator[None]:
    """A process umask of 002 (a group-shared deployment's), put back after the test."""
    old = os.umask(0o002)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("fresh_template")
def test_a_copied_stores_file_mode_is_the_made_stores(tmp_path: Path, umask_002: None) -> None:
    made, copied = _made_and_copied(tmp_path)
    assert stat.S_IMODE(os.stat(made).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(copied).st_mode) == stat.S_IMODE(os.stat(made).st_mode)


# --- low44b: a declared application matched as sent ---------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The shipped site as it is (FNXRMYY declaring ``HIS`` its registration application; no aliases)."""
    tmp = tmp_path_factory.mktemp("rv44c")
    with Engine(Settings(data_dir=tmp / "var", http_port=0, mllp_port=0, base_url="https://huren.example")) as engine:
        yield engine


@pytest.fixture(scope="module")
def http(shipped: Engine) -> Iterator[TestClient]:
    with system_client(shipped, "rv44c") as client:
        yield client


def _registered_twice(http: TestClient, tag: str, app: str, day: str) -> bytes:
    """The HIS registers her as ``<tag>A`` with her resident ID number; then MSH-3 ``app`` registers her again as a
    new MRN ``<tag>B`` stating the same number: that ACK."""
    c = _nid(f"320923198010{day}020")
    assert ack_code_of(post(http, adt(f"{tag}a", f"{tag}A^^^FNXRMYY^MR~{c}^^^^NNCHN", "癸^四四", f"198010{day}",
                                      "F"))) == "AA"
    return post(http, adt(f"{tag}b", f"{tag}B^^^FNXRMYY^MR~{c}^^^^NNCHN", "癸^四四", f"198010{day}", "F", app=app))


def test_guard_an_undeclared_application_registering_her_again_is_held(http: TestClient) -> None:
    """Guard (passes): the LIS (not declared) registering her again: W 205, the new record without her number."""
    ack = _registered_twice(http, "RC1", "LIS", "11")
    assert ack_code_of(ack) == "AA" and any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    assert nids(patients(http, f"{MRN}|RC1B")[0]) == set()


def test_a_universal_id_spelling_the_declared_name_is_no_declared_application(http: TestClient) -> None:
    ack = _registered_twice(http, "RC2", "^HIS^DNS", "12")
    found = patients(http, f"{MRN}|RC2B")
    assert not found or nids(found[0]) == set(), nids(found[0])  # (fails here: her number on the second record)
    assert any("|205^" in x for x in err_lines(ack)) or ack_code_of(ack) != "AA", err_lines(ack)


def _indexes(path: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(path)
    try:
        return sorted(conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' "
                                   "AND name NOT LIKE 'sqlite_%'").fetchall())
    finally:
        conn.close()


@pytest.mark.usefixtures("fresh_template")
def test_a_start_asking_a_table_by_another_statement_keeps_its_indexes(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.repository.sqlite_store import SqliteStore

    with Engine(_settings(tmp_path, "first")), Engine(_settings(tmp_path, "second")):
        pass
    assert store_template._template is not None
    ask = SqliteStore._schema_statement

    def referrals_otherwise(self: SqliteStore, name: str, sql: str) -> None:
        # the same table by another statement (as a part's next release, or a setting, would ask it)
        ask(self, name, sql.replace("body TEXT NOT NULL)", "body TEXT NOT NULL )") if name == "doc_referrals" else sql)

    monkeypatch.setattr(SqliteStore, "_schema_statement", referrals_otherwise)
    with Engine(_settings(tmp_path, "other")) as other:
        assert other.store in store_template._copied
    assert store_template._off
    monkeypatch.setattr(store_template, "_template", None)  # the same start without the copy
    with Engine(_settings(tmp_path, "made")):
        pass
    made = _indexes(_settings(tmp_path, "made").sqlite_path)
    assert ("ix_referrals_month", "doc_referrals") in made
    assert _indexes(_settings(tmp_path, "other").sqlite_path) == made


def _versions(http: TestClient, record: dict) -> int:
    return int(http.get(f"/fhir/Patient/{record['id']}/_history").json()["total"])


def test_a_decided_a47_sent_again_files_nothing_twice(shipped: Engine, http: TestClient) -> None:
    """Guard (passes): low44b's held A47 restating her number, decided (200: N filed once holding her number, H
    replaced by N); the LIS sends the same A47 again under a new control id: no second N, no new version of N or H,
    one ``replaced-by`` link on H, her number on one active record."""
    c = _nid("32092319801013030")
    assert ack_code_of(post(http, adt("RC3Ha", f"RC3H^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^四四", "19801013", "F"))) == "AA"
    h = _one(http, "RC3H")
    a47 = _a47("RC3M", f"RC3N^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^四四", "19801013", "RC3H^^^FNXRMYY^MR", "LIS")
    _merge_held(post(http, a47), "LIS")
    r = decide(http, shipped, "RC3M", "rv44c-ops")
    assert r.status_code == 200, r.text[:600]
    n = _one(http, "RC3N")
    before = (_versions(http, n), _versions(http, h))
    again = post(http, a47.replace("|RC3M|", "|RC3M2|"))
    assert ack_code_of(again) in ("AA", "AE"), again
    assert _one(http, "RC3N")["id"] == n["id"]
    assert (_versions(http, n), _versions(http, h)) == before, err_lines(again)
    after = http.get(f"/fhir/Patient/{h['id']}").json()
    assert _links(after).count(("replaced-by", f"Patient/{n['id']}")) == 1
    assert [p["id"] for p in patients(http, c) if p.get("active") is not False] == [n["id"]]


HIS_OID = "^2.16.840.1.113883.19.4.1^ISO"


@pytest.fixture(scope="module")
def aliased(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The shipped site whose senders.yaml names ``HIS`` and ``HIS_OID`` one application of FNXRMYY (low44's)."""
    import yaml

    from mappings.site import DEFAULTS_DIR

    tmp = tmp_path_factory.mktemp("rv44c-alias")
    site = tmp / "site"
    (site / "hl7v2").mkdir(parents=True)
    shipped_senders = yaml.safe_load((DEFAULTS_DIR / "hl7v2" / "senders.yaml").read_text(encoding="utf-8"))
    (site / "hl7v2" / "senders.yaml").write_text(
        yaml.safe_dump({**shipped_senders, "application_aliases": {"FNXRMYY": [["HIS", HIS_OID]]}},
                       allow_unicode=True), encoding="utf-8")
    settings = Settings(data_dir=tmp / "var", http_port=0, mllp_port=0, base_url="https://huren.example", site=site)
    with Engine(settings) as engine, system_client(engine, "rv44c-alias") as client:
        yield client


def test_the_declared_his_form_sent_in_lower_case_is_the_declared_his(aliased: TestClient) -> None:
    ack = _registered_twice(aliased, "RC4", "his", "14")
    assert ack_code_of(ack) == "AA" and not any("|205^" in x for x in err_lines(ack)), err_lines(ack)
