"""rv41f: review probes of a40b41's once-per-store pass (``engine.carried_numbers``) giving merges an earlier release
filed (an A40 that dropped the record merged away's ID number and put it nowhere) their carried number. Each files
the old release's messages over real ``POST /hl7v2`` (the carry taken out as a40b41's own tests do:
``tests.test_a40b41_carried.old_release``), runs the pass as the Engine's start runs it, and reads the result over
``/fhir``, the resident sign-in's lookup or the audit verifier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine import carried_numbers
from engine.settings import Settings
from tests.hl7_calls import post
from tests.identity39_calls import NNCHN_SYSTEM, carried_marks, read_patient, registered, tokens
from tests.test_a40b41_carried import BING, _as_an_earlier_release_left_it, _event, old_release, opened
from tests.test_rvidentity32_probes import MRN, _nid, adt, patients

_STRUCTURE = {"A40": "ADT_A39", "A47": "ADT_A30", "A37": "ADT_A37"}


def _merge(control: str, pid3: str, who: tuple[str, str, str], mrg1: str, when: str, event: str = "A40") -> str:
    """The HIS's A40 (or A47) at ``when`` (MSH-7, EVN-2): PID-3 ``pid3`` as sent, MRG-1 ``mrg1``."""
    name, birth, sex = who
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|{when}||ADT^{event}^{_STRUCTURE[event]}|{control}|P|2.5.1\r"
            f"EVN|{event}|{when}\rPID|1||{pid3}||{name}||{birth}|{sex}\rMRG|{mrg1}\r")


def _unlink(control: str, one: str, two: str, who: tuple[str, str, str], when: str) -> str:
    name, birth, sex = who
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|{when}||ADT^A37^ADT_A37|{control}|P|2.5.1\r"
            f"EVN|A37|{when}\rPID|1||{one}^^^FNXRMYY^MR||{name}||{birth}|{sex}\r"
            f"PID|2||{two}^^^FNXRMYY^MR||{name}||{birth}|{sex}\r")


def _aa(http: TestClient, message: str) -> None:
    ack = post(http, message)
    assert ack_code_of(ack) == "AA", ack


def _numbers(patient: dict[str, Any]) -> list[str]:
    return [i["value"] for i in patient.get("identifier", ()) if i.get("system") == NNCHN_SYSTEM]


def _pass(engine: Any) -> carried_numbers.Outcome:
    _as_an_earlier_release_left_it(engine)
    done = carried_numbers.backfill(engine.repository, engine.audit, "rv41f", engine.site)
    assert done is not None
    return done


@pytest.mark.parametrize("backend_settings", ["sqlite", "mongomock"], indirect=True)
def test_an_old_a40_whose_pid3_nulled_the_number_gets_no_number_back(backend_settings: Settings,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The registrar's old A40 states ``""^^^^NNCHN`` in the survivor's PID-3 (HL7 v2.5 2.5.3: delete). Filed today,
    that merge carries nothing (a47fix40); the pass reads the store, not the kept A40, and carries it anyway."""
    nid = _nid("32092319620303112")
    with opened(backend_settings) as (engine, http):
        # live: the null in the A40 leaves the survivor without the number
        registered(http, "RVL1", "RVL1A", *BING, f"~{_nid('32092319620303122')}^^^^NNCHN")
        live = registered(http, "RVL2", "RVL2A", *BING)
        _aa(http, _merge("RVL3", 'RVL2^^^FNXRMYY^MR~""^^^^NNCHN', BING, "RVL1^^^FNXRMYY^MR", "20261201121500"))
        assert _numbers(read_patient(http, live["id"])) == []
        with old_release(monkeypatch):
            registered(http, "RVN1", "RVN1A", *BING, f"~{nid}^^^^NNCHN")
            two = registered(http, "RVN2", "RVN2A", *BING)["id"]
            _aa(http, _merge("RVN3", 'RVN2^^^FNXRMYY^MR~""^^^^NNCHN', BING, "RVN1^^^FNXRMYY^MR", "20261201121500"))
        assert _numbers(read_patient(http, two)) == []
        _pass(engine)
        assert _numbers(read_patient(http, two)) == [], "the pass gave back the number the A40's null took off"


@pytest.mark.parametrize("backend_settings", ["sqlite", "mongomock"], indirect=True)
def test_an_a37_filed_while_the_pass_runs_leaves_the_number_off_the_unlinked_survivor(
        backend_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A start during ingest: the pass has scanned (an old merge of R1 into R2 in force) and the MLLP worker files the
    registrar's A37 undoing that merge before the pass writes. The pass checks the survivor again for an ID number
    only, not that the merge still stands: it writes R1's number, marked carried-from R1, onto R2 -- a record the
    registrar has just said is not R1's person -- while R1 holds it again."""
    nid = _nid("32092319620303132")
    with opened(backend_settings) as (engine, http):
        with old_release(monkeypatch):
            one = registered(http, "RVA1", "RVA1A", *BING, f"~{nid}^^^^NNCHN")["id"]
            two = registered(http, "RVA2", "RVA2A", *BING)["id"]
            _aa(http, _merge("RVA3", "RVA2^^^FNXRMYY^MR", BING, "RVA1^^^FNXRMYY^MR", "20261201121500"))
        real = carried_numbers._carries

        def scanned_then_a37(*args: Any) -> Any:
            planned = real(*args)
            _aa(http, _unlink("RVA4", "RVA2", "RVA1", BING, "20261201131500"))  # the worker's message, mid-pass
            return planned

        monkeypatch.setattr(carried_numbers, "_carries", scanned_then_a37)
        _pass(engine)
        assert _numbers(read_patient(http, two)) == [], "R1's number written on R2 after the A37 split them"
        assert two not in [p["id"] for p in patients(http, nid)]
        assert not engine.identity.same_person(one, two)


@pytest.mark.parametrize("backend_settings", ["sqlite", "mongomock"], indirect=True)
def test_an_old_a40_undone_by_an_a37_gets_its_number_back(backend_settings: Settings,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A40 R1 into R2 then A37, both by the old release: the A40's version of R1 dropped the number, the A37's
    (MRN alone) kept nothing, so the number is in no record at all. Filed today the A37 gives it back (id40). The pass
    passes over the pair ("an undone merge has nothing to carry") and the number stays lost."""
    nid = _nid("32092319620303172")
    with opened(backend_settings) as (engine, http):
        with old_release(monkeypatch):
            one = registered(http, "RVE1", "RVE1A", *BING, f"~{nid}^^^^NNCHN")["id"]
            registered(http, "RVE2", "RVE2A", *BING)
            _aa(http, _merge("RVE3", "RVE2^^^FNXRMYY^MR", BING, "RVE1^^^FNXRMYY^MR", "20261201121500"))
            _aa(http, _unlink("RVE4", "RVE2", "RVE1", BING, "20261201131500"))
        assert patients(http, nid) == []
        _pass(engine)
        assert [p["id"] for p in patients(http, nid)] == [one], "the number lost by the old A40 + A37 stays lost"


@pytest.mark.parametrize("backend_settings", ["sqlite", "mongomock"], indirect=True)
def test_an_old_a40_undone_and_filed_again_is_carried_once(backend_settings: Settings,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A40 R1 into R2, A37, A40 again -- all by the old release. ``before_merge`` reads the version just before the
    second A40 (the A37's, numberless), so the pass carries nothing: the number R1 held stays in no record."""
    nid = _nid("32092319620303142")
    with opened(backend_settings) as (engine, http):
        with old_release(monkeypatch):
            one = registered(http, "RVB1", "RVB1A", *BING, f"~{nid}^^^^NNCHN")["id"]
            two = registered(http, "RVB2", "RVB2A", *BING)["id"]
            _aa(http, _merge("RVB3", "RVB2^^^FNXRMYY^MR", BING, "RVB1^^^FNXRMYY^MR", "20261201121500"))
            _aa(http, _unlink("RVB4", "RVB2", "RVB1", BING, "20261201131500"))
            _aa(http, _merge("RVB5", "RVB2^^^FNXRMYY^MR", BING, "RVB1^^^FNXRMYY^MR", "20261201141500"))
        done = _pass(engine)
        survivor = read_patient(http, two)
        assert _numbers(survivor) == [nid], (done, "the number R1 held before the first A40 is in no record")
        assert [m["valueReference"]["reference"] for m in carried_marks(survivor)] == [f"Patient/{one}"]
        assert [p["id"] for p in patients(http, nid)] == [two]


def _chain_with_an_a47(http: TestClient, tag: str, nid: str) -> tuple[str, str, str]:
    """R1 (the number) merged into R2 by an A40; R2's MRN changed by an A47 (R2 -> its new MRN); the new MRN merged
    into R3 by an A40. Returns (R1, R2, R3) ids (R2: the record the A47 renumbered, whatever id the A47 left)."""
    one = registered(http, f"{tag}1", f"{tag}1A", *BING, f"~{nid}^^^^NNCHN")["id"]
    two = registered(http, f"{tag}2", f"{tag}2A", *BING)["id"]
    _aa(http, _merge(f"{tag}3", f"{tag}2^^^FNXRMYY^MR", BING, f"{tag}1^^^FNXRMYY^MR", "20261201121500"))
    _aa(http, _merge(f"{tag}4", f"{tag}9^^^FNXRMYY^MR", BING, f"{tag}2^^^FNXRMYY^MR", "20261201131500", "A47"))
    three = registered(http, f"{tag}5", f"{tag}5A", *BING)["id"]
    _aa(http, _merge(f"{tag}6", f"{tag}5^^^FNXRMYY^MR", BING, f"{tag}9^^^FNXRMYY^MR", "20261201141500"))
    return one, two, three


@pytest.mark.parametrize("backend_settings", ["sqlite", "mongomock"], indirect=True)
def test_a_chain_with_an_a47_in_the_middle_ends_as_the_live_chain_does(backend_settings: Settings,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The same chain filed today (id40's carry) and by the old release then the pass: the end record holds R1's
    number with the same marks (as references to the records they name), and the A37 of the last merge gives it
    back to the same record."""
    live_nid, old_nid = _nid("32092319620303152"), _nid("32092319620303162")
    with opened(backend_settings) as (engine, http):
        l1, l2, l3 = _chain_with_an_a47(http, "RVC", live_nid)
        with old_release(monkeypatch):
            o1, o2, o3 = _chain_with_an_a47(http, "RVD", old_nid)
        _pass(engine)
        live, old = read_patient(http, l3), read_patient(http, o3)
        assert _numbers(live) == [live_nid] and _numbers(old) == [old_nid]
        ids = {l1: "R1", l2: "R2", l3: "R3", o1: "R1", o2: "R2", o3: "R3"}

        def marks(p: dict[str, Any]) -> list[str]:
            return [ids.get(m["valueReference"]["reference"].split("/")[1], "R2'") for m in carried_marks(p)]

        assert marks(old) == marks(live), (marks(old), marks(live))


@pytest.mark.parametrize("backend_settings", ["sqlite", "mongomock"], indirect=True)
def test_the_residents_sign_in_by_the_number_opens_the_survivor_after_the_carry(
        backend_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The number's holder signs in (``IdentityService.patients_for_number``, what ``/auth/authorize/login`` asks).
    Before the merge her number opens R1. After id40's live merge, and after the old merge plus the pass, the number
    is on the survivor (``Patient?identifier=`` finds it) but opens no record: she is told a code was sent and none
    comes (``ResidentAuth.login`` sends nothing for no record)."""
    live, old = _nid("32092319620303182"), _nid("32092319620303192")
    with opened(backend_settings) as (engine, http):
        ident = engine.identity
        lo = registered(http, "RVF1", "RVF1A", *BING, f"~{live}^^^^NNCHN")["id"]
        assert ident.patients_for_number(live) == [lo]
        lt = registered(http, "RVF2", "RVF2A", *BING)["id"]
        _aa(http, _merge("RVF3", "RVF2^^^FNXRMYY^MR", BING, "RVF1^^^FNXRMYY^MR", "20261201121500"))
        with old_release(monkeypatch):
            registered(http, "RVH1", "RVH1A", *BING, f"~{old}^^^^NNCHN")
            ot = registered(http, "RVH2", "RVH2A", *BING)["id"]
            _aa(http, _merge("RVH3", "RVH2^^^FNXRMYY^MR", BING, "RVH1^^^FNXRMYY^MR", "20261201121500"))
        _pass(engine)
        assert _numbers(read_patient(http, ot)) == [old] and _numbers(read_patient(http, lt)) == [live]
        assert [p["id"] for p in patients(http, old)] == [ot]
        assert lt in ident.patients_for_number(live), "the live merge's survivor: no sign-in by the number"
        assert ot in ident.patients_for_number(old), "the pass's survivor: no sign-in by the number"


def test_the_passs_audit_record_is_verified_offline_by_the_verifier_cli(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """SQLite, the engine's real start runs the pass on an old release's store; the log is exported (``huren audit
    export``) and the export verified offline against the public key (``huren audit verify --export``): 0, and the
    export holds the pass's record naming the survivor's version -- the signature covers what the pass wrote."""
    import orjson

    from engine.cli import main as huren

    nid = _nid("32092319620303242")
    with opened(settings) as (engine, http):
        with old_release(monkeypatch):
            registered(http, "RVJ1", "RVJ1A", *BING, f"~{nid}^^^^NNCHN")
            two = registered(http, "RVJ2", "RVJ2A", *BING)["id"]
            _aa(http, _merge("RVJ3", "RVJ2^^^FNXRMYY^MR", BING, "RVJ1^^^FNXRMYY^MR", "20261201121500"))
        _as_an_earlier_release_left_it(engine)
    with opened(settings) as (engine, http):
        (seq,) = carried_numbers.report(engine.repository)["audited"]
        version = f"Patient/{two}/_history/{read_patient(http, two)['meta']['versionId']}"
        pub = tmp_path / "audit.pub.pem"
        pub.write_bytes(next(iter(engine.audit.keys.public.values())).pem.encode())
    for name, value in (("DATA_DIR", str(settings.data_dir)), ("HTTP_PORT", "0"), ("MLLP_PORT", "0")):
        monkeypatch.setenv(f"HUREN_{name}", value)
    export = tmp_path / "audit.jsonl"
    assert huren(["audit", "checkpoint"]) == 0
    assert huren(["audit", "export", "-o", str(export)]) == 0
    capsys.readouterr()
    assert huren(["audit", "verify", "--export", str(export), "--public-key", str(pub)]) == 0, capsys.readouterr()
    lines = [orjson.loads(line) for line in export.read_bytes().splitlines()]
    assert any(version.encode() in orjson.dumps(line) and line.get("seq", seq) == seq for line in lines), lines[-3:]


def test_two_starts_running_the_pass_at_once_audit_each_version_once(settings: Settings,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite. Start A has committed its transaction and not yet appended its audit record when start B (another
    process: the MLLP worker's, or ``huren identity carried``) runs the pass through. Each version the pass wrote is
    named by one audit record, and the marker lists every record appended."""
    nid = _nid("32092319620303252")
    with opened(settings) as (engine, http):
        with old_release(monkeypatch):
            registered(http, "RVK1", "RVK1A", *BING, f"~{nid}^^^^NNCHN")
            two = registered(http, "RVK2", "RVK2A", *BING)["id"]
            _aa(http, _merge("RVK3", "RVK2^^^FNXRMYY^MR", BING, "RVK1^^^FNXRMYY^MR", "20261201121500"))
        _as_an_earlier_release_left_it(engine)
        real = carried_numbers._audit
        other: list[carried_numbers.Outcome | None] = []

        def b_runs_meanwhile(*args: Any, **kwargs: Any) -> None:
            if not other:
                monkeypatch.setattr(carried_numbers, "_audit", real)
                other.append(carried_numbers.backfill(engine.repository, engine.audit, "start-b", engine.site))
            real(*args, **kwargs)

        monkeypatch.setattr(carried_numbers, "_audit", b_runs_meanwhile)
        first = carried_numbers.backfill(engine.repository, engine.audit, "start-a", engine.site)
        assert first is not None and len(first.written) == 1
        assert _numbers(read_patient(http, two)) == [nid]
        version = first.written[0]
        seqs = [*(first.audited), *(other[0].audited if other and other[0] else [])]
        naming = sorted(s for s in seqs if any(
            d["type"] == "versions" and version in d["valueString"].split()
            for e in _event(engine, s)["entity"] for d in e.get("detail", ())))
        assert len(naming) == 1, naming
        assert sorted(carried_numbers.report(engine.repository)["audited"]) == naming


@pytest.mark.parametrize("backend_settings", ["sqlite", "mongomock"], indirect=True)
def test_a_later_thinner_a08_keeps_the_number_the_pass_carried_as_it_keeps_the_live_carry(
        backend_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """After the pass (writer ``index``) the HIS's A08 of the survivor stating its MRN alone: the carried number and
    its mark stay, as they stay after id40's live carry; the registrar's ``""^^^^NNCHN`` then takes it off."""
    live, old = _nid("32092319620303262"), _nid("32092319620303272")
    with opened(backend_settings) as (engine, http):
        registered(http, "RVM1", "RVM1A", *BING, f"~{live}^^^^NNCHN")
        lt = registered(http, "RVM2", "RVM2A", *BING)["id"]
        _aa(http, _merge("RVM3", "RVM2^^^FNXRMYY^MR", BING, "RVM1^^^FNXRMYY^MR", "20261201121500"))
        with old_release(monkeypatch):
            registered(http, "RVO1", "RVO1A", *BING, f"~{old}^^^^NNCHN")
            ot = registered(http, "RVO2", "RVO2A", *BING)["id"]
            _aa(http, _merge("RVO3", "RVO2^^^FNXRMYY^MR", BING, "RVO1^^^FNXRMYY^MR", "20261201121500"))
        _pass(engine)
        for tag, pid, nid in (("RVM2", lt, live), ("RVO2", ot, old)):
            _aa(http, adt(f"{tag}U", f"{tag}^^^FNXRMYY^MR", *BING, event="A08"))
            kept = read_patient(http, pid)
            assert _numbers(kept) == [nid] and len(carried_marks(kept)) == 1, (tag, kept)
            _aa(http, adt(f"{tag}N", f'{tag}^^^FNXRMYY^MR~""^^^^NNCHN', *BING, event="A08"))
            assert _numbers(read_patient(http, pid)) == [], tag
            assert tokens(read_patient(http, pid)) == {f"{MRN}|{tag}"}


@pytest.mark.parametrize("backend_settings", ["sqlite", "mongomock"], indirect=True)
def test_a_live_a40_filed_while_the_pass_runs_leaves_the_number_on_the_record_in_use(
        backend_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pass has scanned (R1 merged into R2 by the old release) and the worker files today's A40 of R2 into R4
    before the pass writes. The number must end on R4, the record in use; the pass wrote it on R2, now merged away
    (its current version states ``replaced-by`` R4 and had no number to carry), and R4 had none. Since a40fix41 the
    write is left (R2 is not the version scanned), the marker says ``again``, and the next start carries it on along
    the chain R1 -> R2 -> R4 as today's merges would: R4 marked from R1 and from R2."""
    nid = _nid("32092319620303282")
    with opened(backend_settings) as (engine, http):
        with old_release(monkeypatch):
            one = registered(http, "RVP1", "RVP1A", *BING, f"~{nid}^^^^NNCHN")["id"]
            two = registered(http, "RVP2", "RVP2A", *BING)["id"]
            _aa(http, _merge("RVP3", "RVP2^^^FNXRMYY^MR", BING, "RVP1^^^FNXRMYY^MR", "20261201121500"))
        four = registered(http, "RVP4", "RVP4A", *BING)["id"]
        real = carried_numbers._carries

        def scanned_then_a40(*args: Any) -> Any:
            planned = real(*args)
            _aa(http, _merge("RVP5", "RVP4^^^FNXRMYY^MR", BING, "RVP2^^^FNXRMYY^MR", "20261201131500"))
            return planned

        monkeypatch.setattr(carried_numbers, "_carries", scanned_then_a40)
        done = _pass(engine)
        assert done.moved == 1 and done.written == [], done
        assert _numbers(read_patient(http, two)) == [], "written on the record merged away meanwhile"
        assert carried_numbers.report(engine.repository)["again"] is True
        monkeypatch.setattr(carried_numbers, "_carries", real)
        again = carried_numbers.backfill(engine.repository, engine.audit, "rv41f", engine.site)  # the next start
        assert again is not None and again.moved == 0 and len(again.written) == 1, again
        assert _numbers(read_patient(http, two)) == []
        assert _numbers(read_patient(http, four)) == [nid], "the record in use has no number"
        assert [m["valueReference"]["reference"] for m in carried_marks(read_patient(http, four))] == [
            f"Patient/{one}", f"Patient/{two}"]
        assert "again" not in carried_numbers.report(engine.repository)
        assert carried_numbers.backfill(engine.repository, engine.audit, "rv41f", engine.site) is None


@pytest.mark.parametrize("backend_settings", ["sqlite", "mongomock"], indirect=True)
def test_a_number_removed_before_the_old_merge_is_not_carried(backend_settings: Settings,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """rvrvpriv26's case through the pass: R1 registered with a wrong ID number (another woman's), the registrar's
    A08 ``""^^^^NNCHN`` takes it off, then the old release's A40 merges the numberless R1 into R2. At the merge R1 held
    no number: nothing to carry (the live merge carries nothing). Guards ``before_merge``'s new pass over versions
    "the same but their links" (a40b41): the A40's version differs in more than its link (``active`` false, the MRN
    ``use`` old), so the A08's version is the one read, and the removed number is carried nowhere."""
    wrong = _nid("32092319620303292")
    with opened(backend_settings) as (engine, http):
        with old_release(monkeypatch):
            one = registered(http, "RVQ1", "RVQ1A", *BING, f"~{wrong}^^^^NNCHN")["id"]
            two = registered(http, "RVQ2", "RVQ2A", *BING)["id"]
            _aa(http, adt("RVQ3", 'RVQ1^^^FNXRMYY^MR~""^^^^NNCHN', *BING, event="A08"))
            assert _numbers(read_patient(http, one)) == []
            _aa(http, _merge("RVQ4", "RVQ2^^^FNXRMYY^MR", BING, "RVQ1^^^FNXRMYY^MR", "20261201121500"))
        done = _pass(engine)
        assert _numbers(read_patient(http, two)) == [], (done, "the number removed before the merge was carried")
        assert patients(http, wrong) == []
