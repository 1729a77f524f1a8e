"""rv41l: probes of stfix41 (forty-first round) -- ``merge_rules._made_by``'s receipt rule choosing one maker among
the messages filed by the release before stfix40, ``convert.settle_completion`` asked of the write, and the
merge.yaml loader refusing source groups named like element-rule keys. Real HL7 v2 over MLLP into the real store,
both backends: the policy tests' community once a module and backend (``module_store.module_community``), each test
under names of its own (``module_store.Names``: its resident, record, order and control numbers) reading its own rows
(suite44b: each had opened a community and an MLLP listener of its own); the restart's test keeps a store of its
own."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine.engine import Engine
from engine.messages import MessageStore, message_id
from tests import test_money19_cds_orders
from tests.conftest import running_mllp
from tests.module_store import NamedSender, Names, names
from tests.module_store import engine_mllp as mllp
from tests.module_store import module_community as engine
from tests.test_money20_reason_change import prior
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, LFT, msh, order, pid, ts
from tests.test_recognition_policy_e2e import result as oru
from tests.test_rv40d_probes import R01, _reasons
from tests.test_rv40k_probes import _order
from tests.test_rv41e_probes import _filed_by_the_old_release, _late_final_after_the_newer_p
from tests.test_st40_status_leftovers import _hospa, _report_of
from tests.test_stfix40_status_made_by import _interpreted

__all__ = ["engine", "mllp", "names"]


def _old_batch_p_and_resend(hl7: NamedSender, community: Engine, monkeypatch: pytest.MonkeyPatch, control: str,
                            names: Names) -> dict:
    """HOSPA's order A1, then the LIS's BHS batch of the release before stfix40 (no ``unchanged``): the 08:00 P by
    王五 and its unchanged 10:00 re-send (under ``names``). Returns the P's report as first written."""
    p1 = message_id("HOSPA", names.control("HOSPA-ORU-A1-Pp1"))
    p2 = message_id("HOSPA", names.control("HOSPA-ORU-A1-Pp2"))
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    monkeypatch.setattr(MessageStore, "mark_processed", _filed_by_the_old_release({p1, p2}))
    batch = ("BHS|^~\\&|LIS|HOSPA|HUREN|C1|" + ts(5, 10) + f"||||{control}\n"
             + _interpreted(_hospa("P", "P", 8, "p1"), "D003&王&五")
             + _interpreted(_hospa("P", "P", 10, "p2"), "D003&王&五") + "BTS|2\n")
    ack = hl7.send(batch)
    monkeypatch.undo()
    assert ack.count("MSA|AA") == 2, ack
    for doc_id in (p1, p2):
        doc = community.ingestor.messages.get(doc_id)
        assert doc is not None and "unchanged" not in doc, doc
    return _report_of(community, names.control("HOSPA-ORU-A1-Pp1"))


def test_an_old_batchs_resend_replayed_after_the_upgrade_does_not_become_a_second_maker(
        engine: Engine, mllp: int, names: Names, monkeypatch: pytest.MonkeyPatch) -> None:
    """rv41e MED 2's old batch (the 08:00 P by 王五 and its unchanged 10:00 re-send, both filed before stfix40), then
    after the upgrade (a restart) the operator replays the re-send -- a recovery, nothing changed. Then the 12:00 P
    by 李四 and the late F of 09:00: the 08:00 version is the P's alone, so the final keeps 王五, as it does without
    the replay (``test_rv41e_probes``' batch test)."""
    resend = message_id("HOSPA", names.control("HOSPA-ORU-A1-Pp2"))
    hl7 = names.sender(mllp)
    first = _old_batch_p_and_resend(hl7, engine, monkeypatch, "RV41L1", names)
    again = engine.ingestor.replay(resend, actor="rv41l")
    assert again is not None and b"MSA|AA" in again.ack, again
    time.sleep(0.002)
    final, ack = _late_final_after_the_newer_p(hl7, engine, names)
    assert final.get("resultsInterpreter") == first["resultsInterpreter"], (
        final.get("resultsInterpreter"), ack, engine.ingestor.messages.get(resend).get("unchanged"))


def test_an_old_batchs_p_replayed_after_the_upgrade_keeps_it_the_maker(
        engine: Engine, mllp: int, names: Names, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same old batch, the operator replays the P itself (not the re-send) after the upgrade: the P keeps its
    version (its replay finds it unchanged, written after its receipt: its own), the re-send stays old. The late 09:00
    F after the 12:00 P by 李四 keeps 王五."""
    p1 = message_id("HOSPA", names.control("HOSPA-ORU-A1-Pp1"))
    hl7 = names.sender(mllp)
    first = _old_batch_p_and_resend(hl7, engine, monkeypatch, "RV41L2", names)
    again = engine.ingestor.replay(p1, actor="rv41l")
    assert again is not None and b"MSA|AA" in again.ack, again
    final, ack = _late_final_after_the_newer_p(hl7, engine, names)
    assert final.get("resultsInterpreter") == first["resultsInterpreter"], (final.get("resultsInterpreter"), ack)


def test_a_site_copy_declaring_a_group_named_when_is_refused_at_start_at_its_line(tmp_path: Path) -> None:
    """A guard on the start path (``Site.load``: the site copy laid over the shipped file), not ``load_merge_file``
    alone: a site copy of merge.yaml whose order senders' group is renamed ``when`` (an element-rule key: ``follows``'
    ``when: changed``) and referred to by that name in ``feed`` and the ``authoredOn`` owner -- no rule gives it a
    mode, yet in any rule the name would be read as the key. The engine refuses to start, naming the copy's line of
    the group and why, not a schema message about ``when``'s enum."""
    from engine.settings import Settings
    from mappings.site import DEFAULTS_DIR, Site, SiteError
    from tests.test_rvconvperf29_a12_site import _site_with_merge

    shipped = (DEFAULTS_DIR / "merge.yaml").read_text("utf-8")
    assert "  order: [ORM, OML, OMG, OMI]" in shipped and "feed: [registration, order," in shipped
    copy = shipped.replace("  order: [ORM, OML, OMG, OMI]", "  when: [ORM, OML, OMG, OMI]", 1).replace(
        "feed: [registration, order,", "feed: [registration, when,", 1).replace(
        "authoredOn: {owner: [order, api]", "authoredOn: {owner: [when, api]", 1)
    site = _site_with_merge(tmp_path, copy)
    line = copy[:copy.index("  when: [ORM")].count("\n") + 1
    with pytest.raises(SiteError) as raised:
        Site.load(Settings(data_dir=tmp_path / "var", site=site))
    said = str(raised.value)
    assert f"merge.yaml:{line}" in said and "may not be named 'when'" in said and "a key" in said, said


def _sc(control: str = "HOSPB-SC-B1") -> str:
    when = ts(1, 9)
    return (msh("HOSPB", "LIS", "ORM^O01^ORM_O01", when, control) + pid("HOSPB")
            + f"ORC|SC|B1^HIS|FB1^LIS||IP||||{when}|||D7^张^医生\n" + f"OBR|1|B1^HIS|FB1^LIS|{CBC}|||{when}\n")


def _xo_by_the_emr() -> str:
    when = ts(1, 9)
    return (msh("HOSPB", "EMR", "ORM^O01^ORM_O01", when, "HOSPB-XO-B1") + pid("HOSPB")
            + f"ORC|XO|B1^HIS|FB1^LIS||IP||||{when}|||D9^李^医生||||\"\"\n" + f"OBR|1|B1^HIS|FB1^LIS|{LFT}|||{when}\n")


@pytest.mark.parametrize("replayed", ["NW", "SC"])
def test_an_old_nw_or_sc_replayed_after_the_upgrade_a_third_apps_xo_held_and_the_lis_result_paid(
        engine: Engine, mllp: int, names: Names, replayed: str) -> None:
    """HOSPB's order B1 with R01 (a repeat of HOSPA's prior) and the LIS's SC giving it FB1^LIS, both filed by the
    release before stfix40 (no ``unchanged``), one by one. After the upgrade (a restart) the operator replays one of
    them (a recovery). The NW's replay finds the SC's version unchanged, written after the NW's receipt: it keeps it
    as its own making and from then on keeps the list -- a second maker of the version that first holds FB1 beside
    the SC (``_made_by``: known + could[:1]), the first by arrival of the two the HIS. Then the EMR's XO under B1^HIS /
    FB1^LIS (another application's statement: held, W 204, the requester and R01 kept) and the LIS's result (its own
    number: filed, the repeat justified by R01)."""
    hl7 = names.sender(mllp)
    prior(hl7)
    nw, sc = message_id("HOSPB", names.control("HOSPB-ORM-B1-NW")), message_id("HOSPB", names.control("HOSPB-SC-B1"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(MessageStore, "mark_processed", _filed_by_the_old_release({nw, sc}))
        assert "MSA|AA" in hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
        time.sleep(0.002)
        assert "MSA|AA" in hl7.send(_sc())
    again = engine.ingestor.replay(nw if replayed == "NW" else sc, actor="rv41l")
    assert again is not None and b"MSA|AA" in again.ack, again
    ack = hl7.send(_xo_by_the_emr())
    stored = _order(engine, names.number("B1"))
    assert "MSA|AA" in ack and "|204^" in ack, ack
    assert (stored.get("requester") or {}).get("display") == "张医生" and _reasons(stored) == ["R01"], (ack, stored)
    ack = hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    assert "MSA|AA" in ack and "|204^" not in ack, ack
    (flag,) = [f for f in names.rows(engine, test_money19_cds_orders.flags(engine)) if f["inst"] == "HOSPB"]
    assert (flag["status"], flag["reason"]) == ("justified", "R01"), (flag, ack)


@pytest.mark.parametrize("old", [False, True])
def test_the_p_its_resend_the_newer_p_and_the_late_f_in_one_batch_after_an_old_p(
        engine: Engine, mllp: int, names: Names, monkeypatch: pytest.MonkeyPatch, old: bool) -> None:
    """New documents mixed with old: the 08:00 P by 王五 filed one by one (by the release before stfix40, or by this
    one), then after the upgrade one BHS batch of the LIS holding its unchanged 10:00 re-send, the 12:00 P by 李四 and
    the late F of 09:00 (their writes read from the batch's own, ``Dates.pending``). The 08:00 version is the P's:
    the final keeps 王五 either way."""
    p1 = message_id("HOSPA", names.control("HOSPA-ORU-A1-Pp1"))
    hl7 = names.sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    if old:
        monkeypatch.setattr(MessageStore, "mark_processed", _filed_by_the_old_release({p1}))
    assert "MSA|AA" in hl7.send(_interpreted(_hospa("P", "P", 8, "p1"), "D003&王&五"))
    monkeypatch.undo()
    first = _report_of(engine, names.control("HOSPA-ORU-A1-Pp1"))
    time.sleep(0.002)
    batch = ("BHS|^~\\&|LIS|HOSPA|HUREN|C1|" + ts(5, 12) + "||||RV41L3\n"
             + _interpreted(_hospa("P", "P", 10, "p2"), "D003&王&五")
             + _interpreted(_hospa("P", "P", 12, "p3", wbc="6.5"), "D002&李&四")
             + _hospa("F", "F", 9, "f", wbc="6.2") + "BTS|3\n")
    ack = hl7.send(batch)
    assert ack.count("MSA|AA") == 3, ack
    final = _report_of(engine, names.control("HOSPA-ORU-A1-Ff"))
    assert final["status"] == "final", final
    assert final.get("resultsInterpreter") == first["resultsInterpreter"], (final.get("resultsInterpreter"), ack)


@pytest.mark.parametrize("status", ["C", "W"])
def test_a_corrected_or_withdrawn_result_replayed_as_it_was_is_filed_again(
        engine: Engine, mllp: int, names: Names, status: str) -> None:
    """stfix41's unverified note: during a replay the message's own earlier Provenance reads as "no longer kept"
    (``Dates.of`` asks ``MessageStore.filed``, which lists PROCESSED documents only). A value that stands until a later
    message (a corrected result, a withdrawn one: ``settle(stands=True)``) made by the replayed message itself must not
    be weighed against that unknown statement: the operator's replay of the LIS's C (or W), nothing newer since, is
    filed again (AA, no ERR), the result as it was."""
    hl7 = names.sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    assert "MSA|AA" in hl7.send(_hospa("F", "F", 9, "f"))
    ack = hl7.send(_hospa(status, status if status == "C" else "X", 11, "c"))
    assert "MSA|AA" in ack, ack
    label = f"HOSPA-ORU-A1-{status}c"
    before = _report_of(engine, names.control(label))
    again = engine.ingestor.replay(message_id("HOSPA", names.control(label)), actor="rv41l")
    assert again is not None and b"MSA|AA" in again.ack and b"ERR|" not in again.ack, again.ack
    after = _report_of(engine, names.control(label))
    assert after["status"] == before["status"], (before, after)


@pytest.mark.parametrize("how", ["one-by-one", "batch"])
def test_after_the_held_completion_and_the_lis_withdrawal_a_third_apps_xo_is_held_and_the_final_completes(
        engine: Engine, mllp: int, names: Names, how: str) -> None:
    """stfix41's held-completion case (the EMR's SC stating B1 completed, held W 204; the LIS's HGB withdrawal under
    ORC-5 CM, its W kept), then a third application's XO under B1^HIS / FB1^LIS (the EMR again: another requester,
    ORC-16 ``""``) -- held, the order still active, the HIS's requester and R01 kept -- and the LIS's final under CM
    completing it: filed, no ORC-5 W (the write leaves it completed), the repeat justified by R01."""
    from tests.test_stfix41_receipt_and_completion import _HGB, _W, _WBC, _groups

    hl7 = names.sender(mllp)
    prior(hl7)
    assert "MSA|AA" in hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    assert "MSA|AA" in hl7.send(_sc())
    when = ts(1, 10)
    held = (msh("HOSPB", "EMR", "ORM^O01^ORM_O01", when, "RV41L-EMR") + pid("HOSPB")
            + f"ORC|SC|B1^HIS|FB1^LIS||CM||||{when}|||D7^张^医生\n" + f"OBR|1|B1^HIS|FB1^LIS|{CBC}|||{when}\n")
    withdrawal = _groups("LIS", "ORU^R01^ORU_R01", "RE", "RV41L-W", 11, ("CM", "F", _HGB, "W"))
    if how == "batch":
        ack = hl7.send("BHS|^~\\&|ESB|HOSPB|HUREN|C1|" + ts(1, 11) + "||||RV41L\n" + held + withdrawal + "BTS|2\n")
        assert ack.count("MSA|AA") == 2 and _W in ack, ack
    else:
        assert "|204^" in hl7.send(held)
        assert _W in hl7.send(withdrawal)
    ack = hl7.send(_xo_by_the_emr())
    stored = _order(engine, names.number("B1"))
    assert "MSA|AA" in ack and "|204^" in ack and stored["status"] == "active", (ack, stored)
    assert (stored.get("requester") or {}).get("display") == "张医生" and _reasons(stored) == ["R01"], (ack, stored)
    ack = hl7.send(_groups("LIS", "ORU^R01^ORU_R01", "RE", "RV41L-F", 12, ("CM", "F", _WBC, "F")))
    assert "MSA|AA" in ack and _W not in ack and "|204^" not in ack, ack
    assert _order(engine, names.number("B1"))["status"] == "completed", ack
    (flag,) = [f for f in names.rows(engine, test_money19_cds_orders.flags(engine)) if f["inst"] == "HOSPB"]
    assert (flag["status"], flag["reason"]) == ("justified", "R01"), (flag, ack)


def test_an_old_p_on_a_clock_stepped_back_then_a_restart_the_late_final_keeps_its_interpreter(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """rv41e MED 1 across a restart (SQLite: the store outlives the process; nothing the first process cached is
    read): the 08:00 P by 王五 and its 10:00 re-send filed by the release before stfix40, the P's receipt stamped a
    second after its own write (the clock stepped back). The engine is stopped and started again (the upgrade), then
    the 12:00 P by 李四 and the late F of 09:00: the 08:00 version is the P's (the first by arrival of the old
    messages naming it, never none), the final keeps 王五."""
    from engine.settings import Settings
    from tests.test_recognition_policy_e2e import INSTITUTIONS
    from tests.test_rv41e_probes import _receipts_ahead

    site = tmp_path / "site"
    site.mkdir()
    (site / "institutions.yaml").write_text(INSTITUTIONS, "utf-8")
    settings = Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site)
    p1, p2 = message_id("HOSPA", "HOSPA-ORU-A1-Pp1"), message_id("HOSPA", "HOSPA-ORU-A1-Pp2")
    with Engine(settings) as before, running_mllp(before) as port:
        hl7 = Sender(port)
        hl7.send(order("HOSPA", "A1", CBC, ts(5)))
        monkeypatch.setattr(MessageStore, "mark_processed", _filed_by_the_old_release({p1, p2}))
        _receipts_ahead(monkeypatch, 1.0)
        assert "MSA|AA" in hl7.send(_interpreted(_hospa("P", "P", 8, "p1"), "D003&王&五"))
        assert "MSA|AA" in hl7.send(_interpreted(_hospa("P", "P", 10, "p2"), "D003&王&五"))
        monkeypatch.undo()
        first = _report_of(before, "HOSPA-ORU-A1-Pp1")
    time.sleep(1.1)
    with Engine(settings) as after, running_mllp(after) as port:
        final, ack = _late_final_after_the_newer_p(Sender(port), after)
        assert final.get("resultsInterpreter") == first["resultsInterpreter"], (final.get("resultsInterpreter"), ack)
