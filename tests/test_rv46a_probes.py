"""rv46a: review probes of med46 (9ba8185f..2e35475e): ``persons._its_own`` (a filed message is its registrar's word
by ``applications.same_code``) and ``engine.messages``' registrations pass writing conditionally.

Real HL7 v2.5.1 bytes over ``POST /hl7v2`` into the real store, read back over ``/fhir``. A probe that shows a defect
is a STRICT xfail naming its severity; controls pass plainly. See the report (rv46a)."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import _EPOCH, _REGISTRARS, MessageStore, _as_read, _epoch_as_read
from engine.settings import Settings
from tests.hl7_calls import err_lines, post
from tests.module_store import alias_site, system_client, undeclared_site
from tests.test_idlow41_identity import _set
from tests.test_reg45_registrar_hd import _as_the_release_before, _rows
from tests.test_rvidentity32_probes import MRN, _nid, adt, oru, patients, subjects

OID = "1.2.156.112604.1.1.7"
HIS_FORM = "^2.16.840.1.113883.19.4.45^ISO"  # the HIS's new interface as the site names it (low45's alias group)


@pytest.fixture(scope="module")
def aliased_both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, TestClient]]:
    """The shipped site plus senders.yaml ``application_aliases`` naming ``HIS`` and ``HIS_FORM`` one application of
    FNXRMYY -- the site low45 and rv44c test with (SQLite, one engine a module)."""
    tmp = tmp_path_factory.mktemp("rv46a-alias")
    site = alias_site(tmp / "site", {"FNXRMYY": [["HIS", HIS_FORM]]})
    settings = Settings(data_dir=tmp / "var", http_port=0, mllp_port=0, base_url="https://huren.example", site=site)
    with Engine(settings) as engine, system_client(engine, "rv46a") as client:
        yield engine, client


@pytest.fixture(scope="module")
def aliased(aliased_both: tuple[Engine, TestClient]) -> TestClient:
    """``aliased_both``'s client."""
    return aliased_both[1]


def _refused_at_pid3(ack: bytes) -> bool:
    return ack_code_of(ack) == "AE" and any("|205^" in x and "PID^1^3" in x for x in err_lines(ack))


def _man_numbered_by(http: TestClient, tag: str, seq: int, registers: str, gives: str) -> tuple[bytes, dict]:
    """med46's control (``_as_registered`` -> ``_versions_stated_by``): 许子 M registered by ``registers`` without
    his number; ``gives``'s A08 gives his male number; a FHIR client sets female; the LIS's result names him M with
    that number. The result's ACK and the record as it stood before it."""
    man = _nid(f"32092319700101{seq:03d}")
    mrn = f"{tag}^^^FNXRMYY^MR"
    assert ack_code_of(post(http, adt(f"{tag}A", mrn, "许^子", "", "M", app=registers))) == "AA"
    a08 = post(http, adt(f"{tag}B", f"{mrn}~{man}^^^^NNCHN", "许^子", "", "M", event="A08", app=gives))
    (him,) = patients(http, f"{MRN}|{tag}")
    assert man in str(him.get("identifier")), (err_lines(a08), him)  # (the premise: that number is on him)
    _set(http, him["id"], gender="female")
    return post(http, oru(f"{tag}C", f"{mrn}~{man}^^^^NNCHN", "许^子子", "", "M", f"{tag}OBS")), him


ALIAS_OTHERS = [("HIS^his.a.example^DNS", "HIS^his.b.example^DNS"), (f"HIS^{OID}^ISO", "HIS^1.2.156.999.9^ISO"),
                ("HIS^his.a.example^DNS", HIS_FORM)]


@pytest.mark.parametrize("registers, other", ALIAS_OTHERS, ids=["two-dns-ids", "two-oids", "dns-id-and-group-oid"])
def test_on_an_alias_site_a_number_another_application_gave_is_not_the_registrars_word(
        aliased: TestClient, registers: str, other: str) -> None:
    at = ALIAS_OTHERS.index((registers, other))
    tag = f"R46A{at}"
    ack, _ = _man_numbered_by(aliased, tag, 41 + 2 * at, registers, other)
    assert _refused_at_pid3(ack) and subjects(aliased, f"{tag}OBS") == [], err_lines(ack)


def _copy_of_a_version_written_by(http: TestClient, tag: str, registers: str, restates: str) -> bytes:
    """med46's other path (``_formerly`` -> ``_stated_by``): 柳庚 F 1970-01-01 registered by ``registers``;
    ``restates``'s A08 states her 1970-02-02; the registrar corrects her to 刘庚 1970-10-01; the LIS's day-old copy
    names 柳庚 1970-02-02 -- the version ``restates`` wrote. The result's ACK."""
    mrn = f"{tag}^^^FNXRMYY^MR"
    assert ack_code_of(post(http, adt(f"{tag}A", mrn, "柳^庚", "19700101", "F", app=registers))) == "AA"
    a08 = post(http, adt(f"{tag}B", mrn, "柳^庚", "19700202", "F", event="A08", app=restates))
    assert ack_code_of(a08) == "AA", err_lines(a08)  # (the premise: that version is stored)
    a08 = post(http, adt(f"{tag}D", mrn, "刘^庚", "19701001", "F", event="A08", app=registers))
    assert ack_code_of(a08) == "AA", err_lines(a08)
    return post(http, oru(f"{tag}C", mrn, "柳^庚", "19700202", "F", f"{tag}GLU"))


def test_on_an_alias_site_a_copy_of_another_applications_version_is_refused(aliased: TestClient) -> None:
    ack = _copy_of_a_version_written_by(aliased, "R46B", "HIS^his.a.example^DNS", "HIS^his.b.example^DNS")
    assert _refused_at_pid3(ack) and subjects(aliased, "R46BGLU") == [], err_lines(ack)


def test_control_on_an_alias_site_the_registrars_number_in_its_alias_form_is_its_word(aliased: TestClient) -> None:
    """Control (what med46 fixed, through the site's group): ``HIS`` registers him, its new interface (``HIS_FORM``,
    the group's other form) gives his number: the registrar's word -- his result is filed (AA)."""
    ack, him = _man_numbered_by(aliased, "R46C", 61, "HIS", HIS_FORM)
    assert ack_code_of(ack) == "AA" and subjects(aliased, "R46COBS") == [f"Patient/{him['id']}"], err_lines(ack)


APART = [("HIS", "LIS"), ("HIS", "^HIS^DNS"), (f"HIS^{OID}^ISO", f"EMR^{OID}^ISO")]


@pytest.mark.parametrize("registers, other", APART, ids=["another-name", "dns-letters", "hospital-oid"])
def test_control_on_an_alias_site_applications_no_group_form_names_stay_apart(
        aliased: TestClient, registers: str, other: str) -> None:
    """Control: ``LIS``, ``^HIS^DNS`` and ``EMR^<OID>^ISO`` (no form of the group states them) stay apart from the
    registrar on the alias site: refused AE 205 at PID-3, nothing filed."""
    at = APART.index((registers, other))
    tag = f"R46D{at}"
    ack, _ = _man_numbered_by(aliased, tag, 71 + 2 * at, registers, other)
    assert _refused_at_pid3(ack) and subjects(aliased, f"{tag}OBS") == [], err_lines(ack)


# --- the registrations pass's conditional writes (engine.messages) under another process, on a MongoDB without
# transactions (mongomock, one engine a module: on SQLite each page of the pass and each filing is one BEGIN IMMEDIATE,
# no other writer between their steps)

_FROM = "registrars_whole_from"


@pytest.fixture(scope="module")
def mongo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, TestClient]]:
    """An undeclared site (``undeclared_site``: no registration application declared) on mongomock."""
    tmp = tmp_path_factory.mktemp("rv46a-mongo")
    settings = Settings(data_dir=tmp / "var", http_port=0, mllp_port=0, base_url="https://huren.example",
                        site=undeclared_site(tmp / "site"), mongodb_uri="mongomock://")
    with Engine(settings) as engine, system_client(engine, "rv46a") as client:
        yield engine, client


def _marker_off(engine: Engine) -> MessageStore:
    """The pass's marker and cursor off the epoch (a store the release before wrote), the epoch read again."""
    census = engine.store.collection("hl7_census")
    census.replace({k: v for k, v in census.get(_EPOCH).items() if k not in (_REGISTRARS, _FROM)})
    messages: MessageStore = engine.ingestor.messages
    messages._epoch = None
    return messages


def test_a_registration_filed_while_another_process_moves_the_first_keeps_the_first(
        mongo: tuple[Engine, TestClient], monkeypatch: pytest.MonkeyPatch) -> None:
    """``^HIS^DNS`` registered the record under the release before (its row ``record|HIS``, keyed by the code); a
    process of this release opens and its pass runs while another files ``^HIS^DNS``'s later A04: the filing reads
    ``record|^HIS^DNS`` (none), the pass moves the first registration there and deletes ``record|HIS``, the filing
    writes its row. The table keeps the first registration received (``_first_stands``)."""
    engine, http = mongo
    tag = "R46R"
    _as_the_release_before(engine, http, monkeypatch, (tag, "^HIS^DNS"))
    ((_, first),) = _rows(engine, http, tag).items()
    messages = _marker_off(engine)
    find, meanwhile = messages.registrations.find, []

    def interleaved(filter: dict | None = None, **kw: object) -> list[dict]:
        read = find(filter, **kw)
        if "$in" in str((filter or {}).get("_id")) and not meanwhile:
            meanwhile.append(True)  # another process's open: its pass, whole, between this read and its write
            other = threading.Thread(target=messages.registrars_whole)
            other.start()
            other.join()
        return read

    with monkeypatch.context() as during:
        during.setattr(messages.registrations, "find", interleaved)
        later = post(http, adt(f"{tag}b", f"{tag}^^^FNXRMYY^MR", "丁^一", "19801020", "F", app="^HIS^DNS"))
    assert ack_code_of(later) == "AA" and meanwhile, err_lines(later)
    rows = _rows(engine, http, tag)
    assert list(rows) == ["^HIS^DNS"] and rows["^HIS^DNS"]["message"] == first["message"], rows


def test_control_two_passes_at_once_key_every_row_once_keeping_the_first(
        mongo: tuple[Engine, TestClient], monkeypatch: pytest.MonkeyPatch) -> None:
    """Control: rows the release before keyed by the code (``^HIS^DNS``'s, ``HIS^<OID>^ISO``'s, ``HIS^<dns>^DNS``'s), two
    passes started together one row a page (two processes opening at once, switching often): each registration ends
    one row keyed whole with its first message, marked whole, the marker written, neither pass stuck. (Their counts
    may add to more than the rows: a row both moved counts in each -- the log's figure only.)"""
    engine, http = mongo
    apps = [("R46T0", "^HIS^DNS"), ("R46T1", f"HIS^{OID}^ISO"), ("R46T2", "HIS^his.a.example^DNS"),
            ("R46T3", "^HIS^DNS")]
    _as_the_release_before(engine, http, monkeypatch, *apps)
    firsts = {tag: next(iter(_rows(engine, http, tag).values()))["message"] for tag, _ in apps}
    messages = _marker_off(engine)
    start, out, interval = threading.Barrier(2), [], sys.getswitchinterval()

    def one_pass() -> None:
        start.wait()
        out.append(messages.registrars_whole())

    with monkeypatch.context() as paged:
        paged.setattr("engine.messages._CENSUS_PAGE", 1)
        sys.setswitchinterval(1e-5)  # (the two threads switch often: their steps interleave)
        try:
            passes = [threading.Thread(target=one_pass) for _ in range(2)]
            for p in passes:
                p.start()
            for p in passes:
                p.join(timeout=60)
        finally:
            sys.setswitchinterval(interval)
    assert len(out) == 2 and not any(p.is_alive() for p in passes), out
    for tag, app in apps:
        rows = _rows(engine, http, tag)
        assert list(rows) == [app] and rows[app]["message"] == firsts[tag] and rows[app].get("whole"), rows
    messages._epoch = None
    assert messages.registrars_whole() is None


@pytest.mark.parametrize("backend", ["aliased_both", "mongo"], ids=["sqlite", "mongomock"])
def test_control_the_conditions_as_read_answer_alike_on_both_backends(request: pytest.FixtureRequest,
                                                                      backend: str) -> None:
    """Control of med46's conditions (``_as_read`` for ``replace_if``, ``_epoch_as_read`` for ``update_if``) on an
    earlier release's documents lacking the fields: a row with neither message nor instant is written over as read and
    not once another registration stands there; an epoch without ``unseen`` is updated as read and not once rewritten
    -- the same on SQLite and mongomock (None: absent or null to both)."""
    engine: Engine = request.getfixturevalue(backend)[0]
    table, census = engine.store.collection("hl7_registrations"), engine.store.collection("rv46a_census")
    old = {"_id": "Patient/rv46a-c|HIS", "record": "Patient/rv46a-c", "application": "HIS"}
    table.replace(old)
    assert table.replace_if({**old, "whole": True}, _as_read(old)) is True and table.get(old["_id"])["whole"]
    table.replace({**old, "message": "m-since", "received_at": "2026-12-02T00:00:00Z"})
    assert table.replace_if({**old, "whole": True}, _as_read(old)) is False
    assert table.get(old["_id"])["message"] == "m-since"
    epoch = {"_id": "e", "since": "2026-12-01T00:00:00Z", "predates": True}  # (no ``unseen``: an earlier release's)
    census.replace(epoch)
    assert census.update_if("e", _epoch_as_read(epoch), {"marker": 1}) is True
    census.replace({**epoch, "since": "2026-12-03T00:00:00Z", "unseen": "older release"})
    assert census.update_if("e", _epoch_as_read(epoch), {"marker": 2}) is False and "marker" not in census.get("e")
