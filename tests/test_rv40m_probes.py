"""rv40m's probes of the fortieth round's three merges (regfix40 ``persons._may_renumber``, stfix40 ``unchanged``,
kfix40 revoked/split groups): real HL7 into a real store on each backend (``module_eng``: SQLite, mongomock) --
``POST /hl7v2`` or the ingestor's batch (one transaction, as an MLLP BHS batch) -- read back over ``/fhir``."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.messages import MessageStore, message_id
from tests.hl7_calls import post
from tests.identity39_calls import NNCHN_SYSTEM, engine_and_client, registered, tokens
from tests.module_store import Names, module_eng, names
from tests.module_store import engine_mllp as mllp
from tests.module_store import module_community as engine
from tests.test_money20_reason_change import prior
from tests.test_recognition_policy_e2e import CBC, order, ts
from tests.test_rv40k_probes import _checks, _hospb, _lis, _order, _request, _split
from tests.test_rvidentity32_probes import MRN, _nid, adt, oru, patients
from tests.test_st40_status_leftovers import _hospa, _report_of
from tests.test_stfix40_status_made_by import _interpreted

both = engine_and_client("rv40m")

# fixtures: one engine a module on each backend (module_eng); the policy community and its listener (suite44b)
__all__ = ["engine", "mllp", "module_eng", "names"]


def test_a_lis_walk_in_a04_stating_another_persons_number(both: tuple[Engine, TestClient]) -> None:
    """Site declaring nothing: the HIS registers two women of one name and birth date, MA (number A) and MB (number
    B); the LIS then sends a walk-in A04 under MA's MRN stating B (the clerk picked the wrong 甲一 from the list).
    MA must keep A, and MA must not become MB's person (linked, found by B)."""
    _, http = both
    a, b = _nid("32092319700101002"), _nid("32092319700101012")
    registered(http, "MA", "MA1", "甲^一", "19700101", "F", f"~{a}^^^^NNCHN")
    registered(http, "MB", "MB1", "甲^一", "19700101", "F", f"~{b}^^^^NNCHN")
    post(http, adt("MA2", f"MA^^^FNXRMYY^MR~{b}^^^^NNCHN", "甲^一", "19700101", "F", app="LIS"))
    (rec,) = patients(http, f"{MRN}|MA")
    assert f"{NNCHN_SYSTEM}|{a}" in tokens(rec) and f"{NNCHN_SYSTEM}|{b}" not in tokens(rec), tokens(rec)
    assert not rec.get("link") and len(patients(http, f"{NNCHN_SYSTEM}|{b}")) == 1


_CONTROL = re.compile(r"^(MSA\|\w\w\|)\w+")


def _answers(outcomes: list) -> list[list[str]]:
    """Each ACK's MSA code and ERR segments, the run's prefix taken out of MSA-2 and the texts."""
    return [[_CONTROL.sub(r"\1", seg) for seg in o.ack.decode("utf-8").split("\r") if seg.startswith(("MSA|", "ERR|"))]
            for o in outcomes]


def _numbers(run: str) -> list[str]:
    """Three valid numbers of a woman born 1971-03-15, unique to the run (its last digit)."""
    return [_nid(f"32092319710315{run[-1]}{k}2") for k in range(3)]


def _scenario(name: str, run: str) -> list[str]:
    """The messages of scenario ``name``, under MRN ``run``+"X" and numbers unique to the run."""
    mrn = f"{run}X"
    n = _numbers(run)
    pid = f"{mrn}^^^FNXRMYY^MR"
    walk = [adt(f"{run}1", f"{pid}~{n[0]}^^^^NNCHN", "乙^丙", "19710315", "F", app="LIS"),
            adt(f"{run}2", f"{pid}~{n[1]}^^^^NNCHN", "乙^丙", "19710315", "F", event="A08"),
            adt(f"{run}3", f"{pid}~{n[1]}^^^^NNCHN", "乙^丙", "19710315", "F"),
            adt(f"{run}4", f'{pid}~""^^^^NNCHN', "乙^丙", "19710315", "F", event="A08")]
    lis_over_his = [adt(f"{run}1", f"{pid}~{n[0]}^^^^NNCHN", "乙^丙", "19710315", "F"),
                    adt(f"{run}2", f"{pid}~{n[1]}^^^^NNCHN", "乙^丙", "19710315", "F", event="A08",
                        app="LIS"),
                    adt(f"{run}3", f"{pid}~{n[2]}^^^^NNCHN", "乙^丙", "19710315", "F", app="LIS"),
                    adt(f"{run}4", f"{pid}~{n[1]}^^^^NNCHN", "乙^丙", "19710315", "F", event="A08",
                        app="LIS"),
                    adt(f"{run}5", f'{pid}~""^^^^NNCHN', "乙^丙", "19710315", "F", event="A08", app="LIS")]
    placeholder = [oru(f"{run}1", pid, "乙^丙", "19710315", "F", "GLU"),
                   adt(f"{run}2", f"{pid}~{n[0]}^^^^NNCHN", "乙^丙", "19710315", "F", event="A08",
                       app="LIS"),
                   adt(f"{run}3", f"{pid}~{n[1]}^^^^NNCHN", "乙^丙", "19710315", "F", event="A08"),
                   adt(f"{run}4", f"{pid}~{n[2]}^^^^NNCHN", "乙^丙", "19710315", "F"),
                   adt(f"{run}5", f"{pid}~{n[0]}^^^^NNCHN", "乙^丙", "19710315", "F", event="A08",
                       app="LIS")]
    return {"walk": walk, "lis_over_his": lis_over_his, "placeholder": placeholder}[name]


def _plain(answers: list[list[str]], run: str) -> list[list[str]]:
    """The answers with the run's MRN/controls and numbers said as <run> and n0..n2."""
    out = []
    for lines in answers:
        for k, number in enumerate(_numbers(run)):
            lines = [x.replace(number, f"n{k}") for x in lines]
        out.append([x.replace(run, "<run>") for x in lines])
    return out


def _state(http: TestClient, run: str) -> list[str]:
    """The record's ID numbers, as the index of the run's numbers (k), and its active flag."""
    (rec,) = patients(http, f"{MRN}|{run}X")
    return sorted(f"n{_numbers(run).index(t.split('|')[1])}" if t.startswith(NNCHN_SYSTEM) else "mrn"
                  for t in tokens(rec))


@pytest.mark.parametrize("name, runs", [("walk", ("RW1", "RW2")), ("lis_over_his", ("RW3", "RW4")),
                                        ("placeholder", ("RW5", "RW6"))])
def test_renumbering_in_a_batch_decides_as_one_by_one(both: tuple[Engine, TestClient], name: str,
                                                       runs: tuple[str, str]) -> None:
    """The same messages one by one and as one batch: the same ACKs (MSA code, ERR lines) and the same ID number
    on the record (hooks19's rule) -- a LIS walk-in then the HIS's A08/A04/null; the HIS's A04 then the LIS's
    A08/A04/A08/null; a result's placeholder then LIS A08, HIS A08, HIS A04, LIS A08."""
    engine, http = both
    single, batch = runs
    one = [o for raw in _scenario(name, single) for o in engine.ingestor.process([(raw.encode(), "mllp", "t")])]
    many = engine.ingestor.process([(raw.encode(), "mllp", "t") for raw in _scenario(name, batch)])
    strip, stripb = _plain(_answers(one), single), _plain(_answers(many), batch)
    assert stripb == strip
    assert _state(http, batch) == _state(http, single)


# --- kfix40: revoked standing against RL, split groups -- one batch decides as one by one -------------------------

# the policy tests' community once a module and backend (``engine``, ``mllp``), each test under names of its own
# (``module_store.Names``) reading its own rows (suite44b: each had opened a community and an MLLP listener of its own)


def _batch(engine: Engine, texts: list[str], names: Names) -> list[str]:
    """``texts`` processed as one batch (one transaction, as a BHS batch over MLLP) under ``names``: each ACK."""
    outcomes = engine.ingestor.process([(names.hl7(t).replace("\n", "\r").encode(), "mllp", "t") for t in texts])
    return [o.ack.decode() for o in outcomes]


def test_cancel_release_then_the_labs_final_in_one_batch(engine: Engine, mllp: int, names: Names) -> None:
    """kfix40's CA, RL, lab F (test_the_his_cancelled_order_stays_revoked_said_and_its_check_recognised) as one
    batch after the prior: the RL is answered with the W naming the revoked status, the final completes the
    order, the repeat is flagged not payable -- as one by one."""
    prior(names.sender(mllp))
    acks = _batch(engine, [order("HOSPB", "B1", CBC, ts(1)), _request("HIS", "CA", 0), _request("HIS", "RL", 1),
                           _lis("HOSPB", "B1", ts(1, 14), "f", obr25="F", obx11="F")], names)
    assert all("MSA|AA" in a for a in acks), acks
    assert '"revoked", stated earlier, stands' in acks[2], acks[2]
    assert _order(engine, names.number("B1"))["status"] == "completed"
    assert _checks(engine, names=names) != ["recognised"], _checks(engine, names=names)
    assert [s for s, _ in _hospb(engine, names)] == ["flagged"], _hospb(engine, names)


@pytest.mark.parametrize("first, second", [("W", "F"), ("F", "W")])
def test_split_groups_in_one_batch_with_the_order(
        engine: Engine, mllp: int, names: Names, first: str, second: str) -> None:
    """The order and the LIS's ORU whose blood count is split over two groups of the order (one W, one F, ORC-5
    CM) in one batch: completed, no ORC^2^5 W, HOSPB flagged -- as kfix40's one-by-one tests have it."""
    prior(names.sender(mllp))
    acks = _batch(engine, [order("HOSPB", "B1", CBC, ts(1)), _split("CM", first, second)], names)
    assert all("MSA|AA" in a for a in acks), acks
    assert "ORC^2^5" not in acks[1] and "ORC^1^5" not in acks[1], acks[1]
    assert _order(engine, names.number("B1"))["status"] == "completed"
    assert [s for s, _ in _hospb(engine, names)] == ["flagged"], _hospb(engine, names)


# --- stfix40: a message filed before ``unchanged`` existed ---------------------------------------------------------

def test_a_resend_filed_before_unchanged_existed_no_longer_dates_the_older_version(
        engine: Engine, mllp: int, names: Names, monkeypatch: pytest.MonkeyPatch) -> None:
    """stfix40's first test, the 10:00 re-send filed as the release before stfix40 filed it (its document has no
    ``unchanged``: ``MessageStore.mark_processed`` given none), then the upgrade: the 12:00 P, the late F of 09:00.
    The final report must name 王五 as it does when the re-send was filed by this release: the re-send was received
    after the 08:00 P's version was written, so it did not make it (``message_time.written_before_receipt``; it
    was a strict xfail, rv40m MED 3, until st41)."""
    real = MessageStore.mark_processed

    def old_for_the_resend(self: MessageStore, doc_id: str, **kw: Any) -> Any:
        if doc_id == message_id("HOSPA", names.control("HOSPA-ORU-A1-Pp2")):
            kw["unchanged"] = None  # (the release before stfix40 kept no such list: no field on the document)
        return real(self, doc_id, **kw)

    hl7 = names.sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(_interpreted(_hospa("P", "P", 8, "p1"), "D003&王&五"))
    first = _report_of(engine, names.control("HOSPA-ORU-A1-Pp1"))
    monkeypatch.setattr(MessageStore, "mark_processed", old_for_the_resend)
    time.sleep(0.002)  # (a resend comes minutes later; one received in the P's own millisecond is not told)
    hl7.send(_interpreted(_hospa("P", "P", 10, "p2"), "D003&王&五"))
    monkeypatch.setattr(MessageStore, "mark_processed", real)
    resent = engine.ingestor.messages.get(message_id("HOSPA", names.control("HOSPA-ORU-A1-Pp2")))
    assert resent is not None and "unchanged" not in resent, resent.get("unchanged")
    hl7.send(_interpreted(_hospa("P", "P", 12, "p3", wbc="6.5"), "D002&李&四"))
    ack = hl7.send(_hospa("F", "F", 9, "f", wbc="6.2"))
    final = _report_of(engine, names.control("HOSPA-ORU-A1-Ff"))
    assert final["status"] == "final", final
    assert final.get("resultsInterpreter") == first["resultsInterpreter"], (final, ack)



@pytest.mark.parametrize("how", ["late", "replay"])
def test_an_older_p_does_not_rename_the_newer_ps_interpreter(
        engine: Engine, mllp: int, names: Names, how: str) -> None:
    """HOSPA's P of 12:00 interpreted by 李四 is filed; the P of 08:00 by 王五 then arrives late -- or, already
    filed before the 12:00 one, is replayed plainly by the operator. Its value is kept out (W: older); its
    interpreter must be too: the report's results are 李四's 12:00 ones, and a replay that changes nothing
    leaves the report's version as it was."""
    hl7 = names.sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    if how == "replay":
        hl7.send(_interpreted(_hospa("P", "P", 8, "p1"), "D003&王&五"))
    hl7.send(_interpreted(_hospa("P", "P", 12, "p3", wbc="6.5"), "D002&李&四"))
    newer = _report_of(engine, names.control("HOSPA-ORU-A1-Pp3"))
    if how == "replay":
        again = engine.ingestor.replay(message_id("HOSPA", names.control("HOSPA-ORU-A1-Pp1")), actor="rv40m")
        assert again is not None and b"MSA|AA" in again.ack and b"older statement" in again.ack, again
    else:
        ack = hl7.send(_interpreted(_hospa("P", "P", 8, "p1"), "D003&王&五"))
        assert "older statement" in ack, ack
    now = _report_of(engine, names.control("HOSPA-ORU-A1-Pp3"))
    assert now.get("resultsInterpreter") == newer["resultsInterpreter"], now.get("resultsInterpreter")
    assert now["meta"]["versionId"] == newer["meta"]["versionId"]
