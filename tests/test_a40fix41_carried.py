"""a40fix41: the once-per-store carry of merges filed before id40's (``engine.carried_numbers``) reads the messages
behind the merges and their undoing, and runs in one process at a time. The old release's messages go over real
``POST /hl7v2`` with the carry taken out (a40b41's ``old_release``); the pass runs as the Engine's start runs it; the
number is searched for over ``/fhir``."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import pytest

from adapters.hl7v2.ack import ack_code_of
from engine import carried_numbers
from engine.settings import Settings
from tests.hl7_calls import post
from tests.identity39_calls import read_patient, registered
from tests.test_a40b41_carried import BING, _as_an_earlier_release_left_it, old_release, opened
from tests.test_rv41f_probes import _merge, _numbers, _unlink
from tests.test_rvidentity32_probes import MRN, _nid, adt, patients


def _aa(http: Any, message: str) -> None:
    ack = post(http, message)
    assert ack_code_of(ack) == "AA", ack


def _unlink_nulling(control: str, two: str, one: str) -> str:
    """The registrar's A37 of ``two`` and ``one`` whose second PID states ``""^^^^NNCHN`` (delete) for ``one``."""
    name, birth, sex = BING
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201131500||ADT^A37^ADT_A37|{control}|P|2.5.1\r"
            f"EVN|A37|20261201131500\rPID|1||{two}^^^FNXRMYY^MR||{name}||{birth}|{sex}\r"
            f'PID|2||{one}^^^FNXRMYY^MR~""^^^^NNCHN||{name}||{birth}|{sex}\r')


@pytest.mark.parametrize("backend_settings", ["sqlite", "mongomock"], indirect=True)
def test_an_undone_merge_whose_a37_deleted_the_number_gets_nothing_back(backend_settings: Settings,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Old A40 R1 into R2, then the old A37 -- one whose PID of R1 states ``""^^^^NNCHN``: the registrar said R1 has
    no number. The pass gives back nothing (beside it, the same pair undone by a plain A37 gets its number back)."""
    nulled, plain = _nid("32092319620303322"), _nid("32092319620303332")
    with opened(backend_settings) as (engine, http):
        with old_release(monkeypatch):
            registered(http, "UNN1", "UNN1A", *BING, f"~{nulled}^^^^NNCHN")
            registered(http, "UNN2", "UNN2A", *BING)
            _aa(http, _merge("UNN3", "UNN2^^^FNXRMYY^MR", BING, "UNN1^^^FNXRMYY^MR", "20261201121500"))
            _aa(http, _unlink_nulling("UNN4", "UNN2", "UNN1"))
            one = registered(http, "UNP1", "UNP1A", *BING, f"~{plain}^^^^NNCHN")["id"]
            registered(http, "UNP2", "UNP2A", *BING)
            _aa(http, _merge("UNP3", "UNP2^^^FNXRMYY^MR", BING, "UNP1^^^FNXRMYY^MR", "20261201121500"))
            _aa(http, _unlink("UNP4", "UNP2", "UNP1", BING, "20261201131500"))
        assert patients(http, nulled) == [] and patients(http, plain) == []
        _as_an_earlier_release_left_it(engine)
        done = carried_numbers.backfill(engine.repository, engine.audit, "a40fix41", engine.site)
        assert done is not None and done.given_back == 1 and len(done.written) == 1, done
        assert patients(http, nulled) == []
        assert [p["id"] for p in patients(http, plain)] == [one]


@pytest.mark.parametrize("backend_settings", ["sqlite", "mongomock"], indirect=True)
def test_a_merge_whose_message_is_gone_is_left_and_counted(backend_settings: Settings,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The old A40's kept message is not in the message store (purged): what its PID-3 deleted cannot be told, so
    the merge is left (``no_message``) -- nothing written -- and the marker counts it; its neighbour, whose A40 is
    kept, is carried."""
    gone, kept = _nid("32092319620303342"), _nid("32092319620303352")
    with opened(backend_settings) as (engine, http):
        with old_release(monkeypatch):
            registered(http, "NMG1", "NMG1A", *BING, f"~{gone}^^^^NNCHN")
            left = registered(http, "NMG2", "NMG2A", *BING)["id"]
            _aa(http, _merge("NMG3", "NMG2^^^FNXRMYY^MR", BING, "NMG1^^^FNXRMYY^MR", "20261201121500"))
            registered(http, "NMK1", "NMK1A", *BING, f"~{kept}^^^^NNCHN")
            two = registered(http, "NMK2", "NMK2A", *BING)["id"]
            _aa(http, _merge("NMK3", "NMK2^^^FNXRMYY^MR", BING, "NMK1^^^FNXRMYY^MR", "20261201121500"))
        messages = engine.store.collection("hl7_messages")
        (doc,) = messages.find({"control_id": "NMG3"})
        assert messages.delete(doc["_id"])
        _as_an_earlier_release_left_it(engine)
        done = carried_numbers.backfill(engine.repository, engine.audit, "a40fix41", engine.site)
        assert done is not None and done.no_message == 1 and done.carried == 1, done
        assert _numbers(read_patient(http, left)) == [] and patients(http, gone) == []
        assert [p["id"] for p in patients(http, kept)] == [two]
        assert carried_numbers.report(engine.repository)["no_message"] == 1


def test_a_run_another_process_holds_is_left_to_it_and_a_dead_ones_is_taken_over(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite. The claim (``-running``) of a live run -- another host's beat within the lease -- makes this start
    leave the pass to it: nothing written, no marker. Its beat past the lease (that host's process died), the next
    start takes the claim over by its conditional write and runs the pass; the claim is let go when it is done."""
    nid = _nid("32092319620303362")
    with opened(settings) as (engine, http):
        with old_release(monkeypatch):
            registered(http, "CLM1", "CLM1A", *BING, f"~{nid}^^^^NNCHN")
            two = registered(http, "CLM2", "CLM2A", *BING)["id"]
            _aa(http, _merge("CLM3", "CLM2^^^FNXRMYY^MR", BING, "CLM1^^^FNXRMYY^MR", "20261201121500"))
        _as_an_earlier_release_left_it(engine)
        coll = engine.store.collection(carried_numbers.MARKER_COLLECTION)
        other = {"_id": carried_numbers.CLAIM, "run": "elsewhere", "host": socket.gethostname() + "-other",
                 "pid": os.getpid(), "beat": time.time()}
        coll.insert(other)
        assert carried_numbers.backfill(engine.repository, engine.audit, "a40fix41", engine.site) is None
        assert carried_numbers.report(engine.repository) is None and _numbers(read_patient(http, two)) == []
        assert coll.get(carried_numbers.CLAIM)["run"] == "elsewhere"
        coll.update(carried_numbers.CLAIM, {"beat": time.time() - carried_numbers._LEASE - 1})
        done = carried_numbers.backfill(engine.repository, engine.audit, "a40fix41", engine.site)
        assert done is not None and len(done.written) == 1, done
        assert _numbers(read_patient(http, two)) == [nid]
        assert coll.get(carried_numbers.CLAIM) is None


@pytest.mark.parametrize("backend_settings", ["sqlite", "mongomock"], indirect=True)
def test_an_undone_merge_then_an_a08_gets_its_number_back_unless_the_a08_deleted_it(
        backend_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Old A40 and A37, then the HIS's A08 of R1 stating its MRN alone (it says nothing of the number): the number is
    still in no record, and the pass gives it back to R1. The same with the A08 stating ``""^^^^NNCHN``: the
    registrar said R1 has no number -- nothing given back."""
    said, nulled = _nid("32092319620303372"), _nid("32092319620303382")
    with opened(backend_settings) as (engine, http):
        with old_release(monkeypatch):
            for tag, number in (("UAS", said), ("UAN", nulled)):
                registered(http, f"{tag}1", f"{tag}1A", *BING, f"~{number}^^^^NNCHN")
                registered(http, f"{tag}2", f"{tag}2A", *BING)
                _aa(http, _merge(f"{tag}3", f"{tag}2^^^FNXRMYY^MR", BING, f"{tag}1^^^FNXRMYY^MR", "20261201121500"))
                _aa(http, _unlink(f"{tag}4", f"{tag}2", f"{tag}1", BING, "20261201131500"))
        _aa(http, adt("UAS5", "UAS1^^^FNXRMYY^MR", *BING, event="A08"))
        _aa(http, adt("UAN5", 'UAN1^^^FNXRMYY^MR~""^^^^NNCHN', *BING, event="A08"))
        assert patients(http, said) == [] and patients(http, nulled) == []
        one = patients(http, f"{MRN}|UAS1")[0]["id"]
        _as_an_earlier_release_left_it(engine)
        done = carried_numbers.backfill(engine.repository, engine.audit, "a40fix41", engine.site)
        assert done is not None and done.given_back == 1, done
        assert [p["id"] for p in patients(http, said)] == [one]
        assert patients(http, nulled) == []
