"""a40b41: merges filed before id40's carry (an earlier release's A40) given it once, at the engine's start
(``engine.carried_numbers``) -- the record merged away's ID number on its survivor, marked carried-from it, by the
merge's own rule (``persons.merge_carries``), audited, reported by ``huren identity carried``; idempotent, and a run
cut short finishes on the next start doubling nothing. The old release's A40 is filed through its code path (real
HL7 over ``POST /hl7v2``): the carry an A40 makes since id40 taken out, as the release before it had none; then the
engine is started again on the same store and the number is searched for over ``/fhir``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.convert import persons
from adapters.hl7v2.ack import ack_code_of
from engine import carried_numbers
from engine.api.app import create_app
from engine.audit.record import event_of
from engine.cli import main as huren
from engine.engine import Engine
from engine.identity.nationalid import CARRIED_FROM_EXT
from engine.settings import Settings
from tests.hl7_calls import post
from tests.identity39_calls import NNCHN_SYSTEM, carried_marks, read_patient, registered, tokens, unlink
from tests.test_rvidentity32_probes import MRN, _nid, merge, patients

BING = ("岳^丙", "19620303", "F")
NID = _nid("32092319620303012")  # 岳丙's: a woman's, born 1962-03-03


@contextlib.contextmanager
def opened(settings: Settings) -> Iterator[tuple[Engine, TestClient]]:
    """An Engine started on ``settings``' store (its once-per-store upgrades run at this start) and a client allowed
    every FHIR interaction."""
    with Engine(settings) as engine, TestClient(create_app(engine)) as http:
        http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("a40b41", "system/*.cruds")
        yield engine, http


@contextlib.contextmanager
def old_release(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The release before id40: a merge of two records carried nothing (``_carried`` then served the renumbering,
    A46/A47, alone) -- its A40 dropped the record merged away's ID number (``unless: replaced-by``) and put it
    nowhere. The carry's one owner, ``persons.merge_carries``, answers as that release did while the block runs."""
    real = persons.merge_carries

    def none_for_a_merge(*args: Any, renumbered: bool = False, **kwargs: Any) -> list[dict[str, Any]] | None:
        return real(*args, renumbered=renumbered, **kwargs) if renumbered else []

    with monkeypatch.context() as patched:
        patched.setattr(persons, "merge_carries", none_for_a_merge)
        yield


def _old_merge(http: TestClient, n: str, one: tuple[str, ...] = BING, two: tuple[str, ...] = BING,
               number: str = NID, sent: tuple[str, ...] | None = None) -> tuple[str, str]:
    """R1 (MRN B41<n>1, ``one``'s name/birth/sex, ID ``number``) merged into R2 (MRN B41<n>2 alone, ``two``'s) by an A40
    stating R2's MRN alone (PID ``sent``, else ``two``), as the old release filed it (inside ``old_release``).
    Returns (R1's id, R2's id)."""
    first = registered(http, f"B41{n}1", f"B{n}A", *one, f"~{number}^^^^NNCHN")
    second = registered(http, f"B41{n}2", f"B{n}B", *two)
    ack = post(http, merge(f"B{n}C", f"B41{n}2^^^FNXRMYY^MR", *(sent or two), f"B41{n}1^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AA", ack
    return first["id"], second["id"]


def _as_an_earlier_release_left_it(engine: Engine) -> None:
    """The pass never ran on this store (an earlier release's): its marker taken out."""
    engine.store.collection(carried_numbers.MARKER_COLLECTION).delete(carried_numbers.DONE)


def _event(engine: Engine, seq: int) -> dict[str, Any]:
    leaf = engine.audit.get(seq)
    assert leaf is not None
    return event_of(leaf["data"])


@pytest.mark.parametrize("backend_settings", ["sqlite", "mongomock"], indirect=True)
def test_an_old_merges_number_is_carried_to_its_survivor_once(backend_settings: Settings,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The old release's A40: the number on no record, the search by it finds nothing. The pass (as the start runs
    it): the survivor holds it, marked carried-from R1, the index keeps the two one person, one signed audit record
    names the survivor's version. Run again: nothing. The A37 then takes back exactly what the pass carried (id40)."""
    with opened(backend_settings) as (engine, http):
        with old_release(monkeypatch):
            one, two = _old_merge(http, "A")
        assert patients(http, NID) == [], "the old release's A40 put the number nowhere"
        _as_an_earlier_release_left_it(engine)
        done = carried_numbers.backfill(engine.repository, engine.audit, "test-node", engine.site)
        assert done is not None and done.carried == 1 and len(done.written) == 1
        assert [p["id"] for p in patients(http, NID)] == [two], "the search by the number finds the survivor"
        survivor = read_patient(http, two)
        assert carried_marks(survivor) == [{"url": CARRIED_FROM_EXT, "valueReference": {"reference": f"Patient/{one}"}}]
        assert tokens(survivor) == {f"{MRN}|B41A2", f"{NNCHN_SYSTEM}|{NID}"}
        assert engine.identity.same_person(one, two)
        # the signed record naming what it did: the survivor's version, its patient, huren itself as the requestor
        (seq,) = done.audited
        event = _event(engine, seq)
        version = f"Patient/{two}/_history/{survivor['meta']['versionId']}"
        assert done.written == [version]
        detail = {d["type"]: d["valueString"] for e in event["entity"] for d in e.get("detail", ())}
        assert detail["versions"] == version and detail["upgrade"] == "carried-numbers", event
        assert "carried to its survivor" in event["outcomeDesc"]
        assert f"Patient/{two}" in {e["what"]["reference"] for e in event["entity"] if "what" in e}
        assert [a["who"]["identifier"]["value"] for a in event["agent"] if a.get("requestor")] == ["huren"]
        assert carried_numbers.report(engine.repository)["written"] == 1
        # again (the marker emptied): the number is held, nothing written, nothing audited
        _as_an_earlier_release_left_it(engine)
        again = carried_numbers.backfill(engine.repository, engine.audit, "test-node", engine.site)
        assert again is not None and again.written == [] and again.held == 1 and again.audited == []
        assert read_patient(http, two)["meta"]["versionId"] == survivor["meta"]["versionId"]
        ack = post(http, unlink("BAD", ("B41A2", *BING), ("B41A1", *BING)))
        assert ack_code_of(ack) == "AA", ack
        assert [p["id"] for p in patients(http, NID)] == [one]
        assert tokens(read_patient(http, two)) == {f"{MRN}|B41A2"}
        assert not carried_marks(read_patient(http, one))


def test_the_engines_start_carries_it_and_the_cli_reports_it(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """SQLite (the store outlives the process's Engine): the old release's store, the engine started on it -- the
    search by the number finds the survivor; ``huren identity carried`` reports what the start did."""
    with opened(settings) as (engine, http):
        with old_release(monkeypatch):
            one, two = _old_merge(http, "S")
        assert patients(http, NID) == []
        _as_an_earlier_release_left_it(engine)
    with opened(settings) as (engine, http):
        assert [p["id"] for p in patients(http, NID)] == [two]
        (seq,) = carried_numbers.report(engine.repository)["audited"]
    for name, value in (("DATA_DIR", str(settings.data_dir)), ("HTTP_PORT", "0"), ("MLLP_PORT", "0")):
        monkeypatch.setenv(f"HUREN_{name}", value)
    capsys.readouterr()
    assert huren(["identity", "carried"]) == 0
    said = capsys.readouterr().out
    assert "merges\t1\t" in said and "written\t1\t" in said and f"audit-{seq}" in said, said


WANG = ("王^丽", "19620303", "F")  # the number's person
ZHANG = ("张^强", "19580101", "M")  # another person: name, sex and day differ
YUE_M = ("岳^丙", "19620303", "M")  # her name and day, registered male: her (female) number contradicts the sex


@pytest.mark.parametrize("backend_settings", ["sqlite", "mongomock"], indirect=True)
def test_the_merges_own_rules_decide_what_the_pass_carries(backend_settings: Settings,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Four old merges, one pass. Two people (王丽 merged into 张强's record): nothing carried, counted. Her number against the survivor's sex (a male record of her name and
    day): not carried, counted. Undone by an A37 before the upgrade: nothing to carry -- the record the A37 separated
    is given back the number the old A40 dropped and the old A37 gave to no record (a40fix41: rv41f HIGH 3). A survivor
    registered with its own number: it keeps its own alone."""
    wang, yue, undone, own = (_nid(f"32092319620303{n}{n}2") for n in (1, 2, 3, 4))
    with opened(backend_settings) as (engine, http):
        with old_release(monkeypatch):
            w1, w2 = _old_merge(http, "W", WANG, ZHANG, number=wang)
            m1, m2 = _old_merge(http, "M", BING, YUE_M, number=yue)
            u1, u2 = _old_merge(http, "U", number=undone)
            ack = post(http, unlink("BUD", ("B41U2", *BING), ("B41U1", *BING)))
            assert ack_code_of(ack) == "AA", ack
            registered(http, "B41O1", "BOA", *BING, f"~{own}^^^^NNCHN")
            second = registered(http, "B41O2", "BOB", *BING, f"~{own}^^^^NNCHN")
            ack = post(http, merge("BOC", f"B41O2^^^FNXRMYY^MR~{own}^^^^NNCHN", *BING, "B41O1^^^FNXRMYY^MR"))
            assert ack_code_of(ack) == "AA", ack
        before = {pid: read_patient(http, pid)["meta"]["versionId"] for pid in (w1, w2, m1, m2, u1, u2, second["id"])}
        assert patients(http, wang) == [] and patients(http, yue) == []
        _as_an_earlier_release_left_it(engine)
        done = carried_numbers.backfill(engine.repository, engine.audit, "test-node", engine.site)
        assert done is not None
        assert (done.carried, done.two_people, done.against, done.held, done.given_back) == (0, 1, 1, 1, 1), done
        # 王丽's number: never on 张强's record
        assert patients(http, wang) == []
        assert tokens(read_patient(http, w2)) == {f"{MRN}|B41W2"}
        # the undone merge: its number back on the record the A37 separated, as its own (no carried-from mark)
        assert [p["id"] for p in patients(http, undone)] == [u1]
        assert done.written == [f"Patient/{u1}/_history/{int(before[u1]) + 1}"] and len(done.audited) == 1
        assert not carried_marks(read_patient(http, u1))
        # the others: not a version written
        before.pop(u1)
        assert {pid: read_patient(http, pid)["meta"]["versionId"] for pid in before} == before
        assert patients(http, yue) == []
        assert [p["id"] for p in patients(http, own)] == [second["id"]]
        assert not carried_marks(read_patient(http, second["id"]))


@pytest.mark.parametrize("backend_settings", ["sqlite", "mongomock"], indirect=True)
def test_a_chain_of_old_merges_carries_on_and_each_a37_takes_back_its_own(backend_settings: Settings,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """R1 into R2, then R2 into R3, both by the old release. The pass walks the chain as the merges were filed: R1's
    number ends on R3, marked carried-from R1 and from R2 -- as id40's two A40s leave it. Then the undo idfix40b
    checks for id40's chain: A37 R3/R2 gives it back to R2 (R1's mark kept), A37 R2/R1 to R1, unmarked."""
    with opened(backend_settings) as (engine, http):
        with old_release(monkeypatch):
            r1, r2 = _old_merge(http, "C")
            r3 = registered(http, "B41C3", "BCD", *BING)["id"]
            ack = post(http, merge("BCE", "B41C3^^^FNXRMYY^MR", *BING, "B41C2^^^FNXRMYY^MR"))
            assert ack_code_of(ack) == "AA", ack
        assert patients(http, NID) == []
        _as_an_earlier_release_left_it(engine)
        done = carried_numbers.backfill(engine.repository, engine.audit, "test-node", engine.site)
        assert done is not None and done.carried == 2 and len(done.written) == 1, done
        assert [p["id"] for p in patients(http, NID)] == [r3]
        assert carried_marks(read_patient(http, r3)) == [
            {"url": CARRIED_FROM_EXT, "valueReference": {"reference": f"Patient/{r1}"}},
            {"url": CARRIED_FROM_EXT, "valueReference": {"reference": f"Patient/{r2}"}}]
        ack = post(http, unlink("BCF", ("B41C3", *BING), ("B41C2", *BING)))
        assert ack_code_of(ack) == "AA", ack
        assert [p["id"] for p in patients(http, NID)] == [r2]
        assert carried_marks(read_patient(http, r2)) == [
            {"url": CARRIED_FROM_EXT, "valueReference": {"reference": f"Patient/{r1}"}}]
        ack = post(http, unlink("BCG", ("B41C2", *BING), ("B41C1", *BING)))
        assert ack_code_of(ack) == "AA", ack
        assert [p["id"] for p in patients(http, NID)] == [r1]
        assert not carried_marks(read_patient(http, r1))


@pytest.mark.parametrize("backend_settings", ["sqlite", "mongomock"], indirect=True)
def test_a_run_cut_between_its_commit_and_its_audit_record_finishes_doubling_nothing(
        backend_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three old merges, one survivor a transaction. The run stops dead after its first commit, before the audit
    record (the log's append raises, as a kill -9 there leaves it). The next run records that commit first, writes the
    other two, each survivor one version, one number each; four runs on, nothing more."""
    numbers = [_nid(f"32092319620303{n}{n}2") for n in (5, 6, 7)]
    with opened(backend_settings) as (engine, http):
        with old_release(monkeypatch):
            pairs = [_old_merge(http, f"K{n}", number=number) for n, number in enumerate(numbers)]
        versions = {two: read_patient(http, two)["meta"]["versionId"] for _, two in pairs}
        _as_an_earlier_release_left_it(engine)
        monkeypatch.setattr(carried_numbers, "_AT_ONCE", 1)
        real = engine.audit.record

        def killed(*_: Any) -> Any:
            raise SystemExit("killed")

        monkeypatch.setattr(engine.audit, "record", killed)
        with pytest.raises(SystemExit):
            carried_numbers.backfill(engine.repository, engine.audit, "test-node", engine.site)
        assert carried_numbers.report(engine.repository) is None
        assert sum(1 for _, two in pairs if carried_marks(read_patient(http, two))) == 1
        monkeypatch.setattr(engine.audit, "record", real)
        done = carried_numbers.backfill(engine.repository, engine.audit, "test-node", engine.site)
        assert done is not None and len(done.written) == 2 and len(done.audited) == 3, done
        named = [_event(engine, seq) for seq in done.audited]
        assert sorted(d["valueString"].split("/")[1] for e in named for x in e["entity"]
                      for d in x.get("detail", ()) if d["type"] == "versions") == sorted(two for _, two in pairs)
        for (one, two), number in zip(pairs, numbers, strict=True):
            survivor = read_patient(http, two)
            assert int(survivor["meta"]["versionId"]) == int(versions[two]) + 1
            assert [p["id"] for p in patients(http, number)] == [two]
            assert carried_marks(survivor) == [{"url": CARRIED_FROM_EXT,
                                                "valueReference": {"reference": f"Patient/{one}"}}]
        report = carried_numbers.report(engine.repository)
        assert report is not None and report["written"] == 3 and report["audited"] == done.audited
        assert carried_numbers.backfill(engine.repository, engine.audit, "test-node", engine.site) is None


# Run in a child process on the store of the test below: the pass one survivor a transaction, a line printed after
# each transaction's audit record, and a pause there -- where the parent kills it (SIGKILL).
_KILLED_RUN = r"""
import sys, time
from pathlib import Path
from engine import carried_numbers
from engine.settings import Settings
carried_numbers._AT_ONCE = 1
real = carried_numbers._audit
def audited(*args, **kwargs):
    real(*args, **kwargs)
    print("committed", flush=True)
    time.sleep(0.3)
carried_numbers._audit = audited
from engine.engine import Engine
Engine(Settings(data_dir=Path(sys.argv[1]), http_port=0, mllp_port=0))
print("finished", flush=True)
"""


def test_a_start_killed_mid_pass_is_finished_by_the_next_doubling_nothing(settings: Settings,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite, a real ``kill -9``: six old merges; an engine's start runs the pass one survivor a transaction and is
    killed after its second. The next start finishes it: each survivor one version more than the old release left
    it, one ID number, one mark; the audit records name the six, the marker counts six."""
    import os
    import signal
    import subprocess
    import sys

    numbers = [_nid(f"32092319620303{n}{n}2") for n in range(6)]
    with opened(settings) as (engine, http):
        with old_release(monkeypatch):
            pairs = [_old_merge(http, f"Z{n}", number=number) for n, number in enumerate(numbers)]
        versions = {two: int(read_patient(http, two)["meta"]["versionId"]) for _, two in pairs}
        _as_an_earlier_release_left_it(engine)
    child = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, str(settings.data_dir)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE,
                             text=True, cwd=str(Path(__file__).resolve().parent.parent))
    assert child.stdout is not None
    lines = [child.stdout.readline(), child.stdout.readline()]
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert lines == ["committed\n"] * 2, (lines, child.stderr.read() if child.stderr else "")
    with opened(settings) as (engine, http):
        done = carried_numbers.report(engine.repository)
        assert done is not None and done["written"] == 6, done
        named = sorted(ref.split("/")[1] for seq in done["audited"] for e in _event(engine, seq)["entity"]
                       for d in e.get("detail", ()) if d["type"] == "versions" for ref in d["valueString"].split())
        assert named == sorted(two for _, two in pairs), named
        for (one, two), number in zip(pairs, numbers, strict=True):
            survivor = read_patient(http, two)
            assert int(survivor["meta"]["versionId"]) == versions[two] + 1
            assert [i["value"] for i in survivor["identifier"] if i["system"] == NNCHN_SYSTEM] == [number]
            assert carried_marks(survivor) == [{"url": CARRIED_FROM_EXT,
                                                "valueReference": {"reference": f"Patient/{one}"}}]
