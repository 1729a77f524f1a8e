"""st41: the status and merge-rule tidy of the forty-first round, behaviour kept where it was right.

1. One settle step for the W at ORC-5 ("ORC-5 'CM' (completed) was not stored ..."): kfix40 took it back inside the
   converter when a later group of the message completed the order, stfix40 against the store; now
   ``convert.settle_completion`` reads the message's own final status of the order, else (the status only
   assumed) the store and the batch. Its one change: a group after the completing one that leaves the order in
   process (ORC-5 IP, a preliminary result) -- the order is active as the message leaves it, and the W that its
   CM was not stored is true; kfix40 had taken it back when the middle group completed the order.
2. ``merge.yaml``'s ``placer:`` mark is ``held:`` (a site copy naming the old key is refused at its line).
3. A message filed before its document kept ``unchanged`` (rv40m MED 3): a version written before such a message
   was received is none of its making (``message_time.written_before_receipt``); a message received before the
   version was written stays its maker.

Real HL7 v2 over MLLP into the real store, both backends: the policy community once a module and backend
(``shared_worlds44.community_eng``, suite44c), each test sending as a person of its own (``OwnSender``: her ID
number, records, order numbers and control IDs) and reading only what its messages wrote; the test of a first
message's empty ``unchanged`` keeps a store of its own (``test_stfix40_status_made_by.community``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from engine.engine import Engine
from engine.message_time import aware_instant, written_before_receipt
from engine.messages import MessageStore, message_id
from mappings.site import DEFAULTS_DIR, load_merge_file
from mappings.sitefiles import SiteError
from tests import test_stfix40_status_made_by
from tests.conftest import running_mllp
from tests.shared_worlds44 import OwnSender, community_eng, community_mllp, own, theirs
from tests.test_money20_reason_change import prior
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, msh, order, pid, ts
from tests.test_rv40k_probes import _split
from tests.test_st40_status_leftovers import _hospa, _report_of
from tests.test_stfix40_status_made_by import _interpreted

__all__ = ["community_eng", "community_mllp"]

community = test_stfix40_status_made_by.community  # a store of its own, for the test whose whole store matters
_W = "ORC-5 'CM' (completed) was not stored"  # (st40's W, its words as the ACK's ERR-8 says them)


# --- 1. the ORC-5 W: one settle step -----------------------------------------------------------------------------


def _three_groups(third_orc5: str, third_obr25: str, third_obx11: str) -> str:
    """HOSPB's LIS's one ORU of order B1 over three groups naming the same order: HGB W (ORC-5 CM), WBC F (ORC-5
    CM), then PLT at ``third_obx11`` under ORC-5 ``third_orc5`` and OBR-25 ``third_obr25``."""
    when = ts(1, 10)

    def group(n: int, orc5: str, obr25: str, code: str, value: str, unit: str, status: str) -> str:
        return (f"ORC|RE|B1^HIS|FB1^LIS||{orc5}\n"
                f"OBR|{n}|B1^HIS|FB1^LIS|{CBC}|||{when}|||||||||D7^张^医生||||||{when}|||{obr25}\n"
                f"OBX|1|NM|{code}||{value}|{unit}|||||{status}|||{when}\n")

    return (msh("HOSPB", "LIS", "ORU^R01^ORU_R01", when, f"HOSPB-ORU-B1-three{third_orc5}") + pid("HOSPB")
            + group(1, "CM", "F", "HGB^血红蛋白^L", "135", "g/L", "W")
            + group(2, "CM", "F", "WBC^白细胞^L", "6.1", "10*9/L", "F")
            + group(3, third_orc5, third_obr25, "PLT^血小板^L", "210", "10*9/L", third_obx11))


def test_a_later_group_leaving_the_order_in_process_keeps_the_w_that_its_cm_was_not_stored(
        community_eng: Engine, community_mllp: int, request: pytest.FixtureRequest) -> None:
    """HGB W (CM), WBC F (CM), PLT P (IP), one order: the order is as far as its least advanced group -- active, in
    process (kfix40). The first group's W ("ORC-5 'CM' (completed) was not stored ... the order stays as it
    stands") is true of the order as the message leaves it, and stays; kfix40 took it back as the second group
    completed the order, and the ACK then said nothing of a CM the order does not hold. Fails before st41."""
    run = own(request, "ST41-1")
    hl7 = OwnSender(community_mllp, run)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    ack = hl7.send(_three_groups("IP", "P", "P"))
    assert "MSA|AA" in ack, ack
    assert theirs(community_eng, run)[0]["status"] == "active", ack
    assert "ERR||ORC^1^5" in ack, ack
    assert _W in ack and "ORC^2^5" not in ack and "ORC^3^5" not in ack, ack


def test_a_later_group_completing_the_order_still_takes_the_w_back(
        community_eng: Engine, community_mllp: int, request: pytest.FixtureRequest) -> None:
    """Control (kfix40, now read from the message's final status): HGB W, WBC F, PLT F, ORC-5 CM on all three --
    the order is completed as the message leaves it, and the W at ORC^1^5 is taken back."""
    run = own(request, "ST41-2")
    hl7 = OwnSender(community_mllp, run)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    ack = hl7.send(_three_groups("CM", "F", "F"))
    assert "MSA|AA" in ack and "ERR||ORC^1^5" not in ack and _W not in ack, ack
    sr, _, flags = theirs(community_eng, run)
    assert sr["status"] == "completed", ack
    assert [s for s, _ in flags] == ["flagged"], (flags, ack)


def test_the_w_after_the_final_is_still_taken_back_against_the_store(
        community_eng: Engine, community_mllp: int, request: pytest.FixtureRequest) -> None:
    """Control (stfix40, the other half of the one step): WBC F and HGB F filed (the order completed); then the
    LIS's message withdrawing both (ORC-5 CM on each): the message leaves the order as it stands, it stands
    completed -- no W at ORC-5; the order stays completed."""
    run = own(request, "ST41-3")
    hl7 = OwnSender(community_mllp, run)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(_split("CM", "F", "F"))
    withdrawn = _split("CM", "W", "W").replace("HOSPB-ORU-B1-splitCM", "HOSPB-ORU-B1-withdrawn")
    ack = hl7.send(withdrawn)
    assert "MSA|AA" in ack and "ERR||ORC^1^5" not in ack and _W not in ack, ack
    assert theirs(community_eng, run)[0]["status"] == "completed", ack


# --- 2. merge.yaml's ``held:`` -------------------------------------------------------------------------------------


def test_a_site_merge_file_naming_the_old_placer_key_is_refused_with_the_new_name(tmp_path: Path) -> None:
    """A site's copy of merge.yaml made in the fortieth round marks ServiceRequest ``code`` with ``placer: true``:
    refused at that line, naming ``held`` -- the schema alone read ``placer`` as a writer group ("True is not one
    of ['replace', ...]"). The shipped file loads, and marks the order's status ``held`` too."""
    shipped = (DEFAULTS_DIR / "merge.yaml").read_text("utf-8")
    assert "status: {stands: {order: [completed, revoked]}, yields_to: [entered-in-error], held: true}" in shipped
    assert "placer: true" not in shipped and "placer: {" not in shipped
    load_merge_file(DEFAULTS_DIR / "merge.yaml")
    old = tmp_path / "merge.yaml"
    old.write_text(shipped.replace("held: true}", "placer: true}"), "utf-8")
    line = shipped[:shipped.index("held: true}")].count("\n") + 1
    with pytest.raises(SiteError) as raised:
        load_merge_file(old)
    assert f"merge.yaml:{line}" in str(raised.value) and "'placer' is now held" in str(raised.value), raised.value


# --- 3. a resend filed before ``unchanged`` was kept ---------------------------------------------------------------


def _filed_by_the_old_release(doc_ids: set[str]) -> Any:
    """``MessageStore.mark_processed`` as the release before stfix40 filed ``doc_ids``: no ``unchanged`` field."""
    real = MessageStore.mark_processed

    def old(self: MessageStore, doc_id: str, **kw: Any) -> Any:
        if doc_id in doc_ids:
            kw["unchanged"] = None
        return real(self, doc_id, **kw)

    return old


def test_a_maker_filed_by_the_old_release_is_still_the_maker(community_eng: Engine, community_mllp: int,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             request: pytest.FixtureRequest) -> None:
    """Control: the 08:00 P by 王五 itself filed by the old release (no ``unchanged``), its 10:00 resend by this one,
    then the 12:00 P by 李四 and the late F of 09:00. The 08:00 P was received before the version it wrote: still
    its maker, so the final keeps 王五 -- the receipt rule takes no maker away that wrote after its receipt."""
    run = own(request, "ST41-4")
    hl7 = OwnSender(community_mllp, run)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    monkeypatch.setattr(MessageStore, "mark_processed",
                        _filed_by_the_old_release({message_id("HOSPA", f"{run}-HOSPA-ORU-A1-Pp1")}))
    hl7.send(_interpreted(_hospa("P", "P", 8, "p1"), "D003&王&五"))
    monkeypatch.undo()
    first = _report_of(community_eng, f"{run}-HOSPA-ORU-A1-Pp1")
    made = community_eng.ingestor.messages.get(message_id("HOSPA", f"{run}-HOSPA-ORU-A1-Pp1"))
    assert made is not None and "unchanged" not in made, made.get("unchanged")
    time.sleep(0.002)
    hl7.send(_interpreted(_hospa("P", "P", 10, "p2"), "D003&王&五"))
    resent = community_eng.ingestor.messages.get(message_id("HOSPA", f"{run}-HOSPA-ORU-A1-Pp2"))
    assert resent is not None and f"DiagnosticReport/{first['id']}" in resent.get("unchanged", ()), resent
    hl7.send(_interpreted(_hospa("P", "P", 12, "p3", wbc="6.5"), "D002&李&四"))
    ack = hl7.send(_hospa("F", "F", 9, "f", wbc="6.2"))
    final = _report_of(community_eng, f"{run}-HOSPA-ORU-A1-Ff")
    assert final["status"] == "final", final
    assert final.get("resultsInterpreter") == first["resultsInterpreter"], (final, ack)


def test_the_old_releases_resend_replayed_after_the_upgrade_is_still_no_maker(
        community_eng: Engine, community_mllp: int, monkeypatch: pytest.MonkeyPatch,
        request: pytest.FixtureRequest) -> None:
    """rv40m MED 3's re-send (filed by the old release: no ``unchanged``) replayed plainly by the operator after the
    upgrade, before the 12:00 P and the late F: its replay finds the 08:00 P's version unchanged and its document
    says nothing of what its first processing made -- the version was written before the re-send was received, so
    it is kept in ``unchanged`` (``engine.ingest._unchanged``), and the final keeps 王五. Before, a replay took
    everything such a document named as its own making."""
    run = own(request, "ST41-5")
    hl7 = OwnSender(community_mllp, run)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(_interpreted(_hospa("P", "P", 8, "p1"), "D003&王&五"))
    first = _report_of(community_eng, f"{run}-HOSPA-ORU-A1-Pp1")
    resend = message_id("HOSPA", f"{run}-HOSPA-ORU-A1-Pp2")
    monkeypatch.setattr(MessageStore, "mark_processed", _filed_by_the_old_release({resend}))
    time.sleep(0.002)
    hl7.send(_interpreted(_hospa("P", "P", 10, "p2"), "D003&王&五"))
    monkeypatch.undo()
    again = community_eng.ingestor.replay(resend, actor="st41")
    assert again is not None and b"MSA|AA" in again.ack, again
    replayed = community_eng.ingestor.messages.get(resend)
    assert replayed is not None and f"DiagnosticReport/{first['id']}" in replayed.get("unchanged", ()), replayed
    hl7.send(_interpreted(_hospa("P", "P", 12, "p3", wbc="6.5"), "D002&李&四"))
    ack = hl7.send(_hospa("F", "F", 9, "f", wbc="6.2"))
    final = _report_of(community_eng, f"{run}-HOSPA-ORU-A1-Ff")
    assert final["status"] == "final", final
    assert final.get("resultsInterpreter") == first["resultsInterpreter"], (final, ack)


def test_a_message_filed_with_nothing_unchanged_keeps_an_empty_list(community: Engine) -> None:
    """This release keeps ``unchanged`` on every document it files, empty too: a document without it is one filed
    before the list was kept (it was left out when empty, and the two could not be told apart). A store of its own:
    in a shared one the order's organization and doctor are written already, so unchanged."""
    with running_mllp(community) as port:
        hl7 = Sender(port)
        hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    doc = community.ingestor.messages.get(message_id("HOSPA", "HOSPA-ORM-A1-NW"))
    assert doc is not None and doc.get("status") == "processed", doc
    assert doc.get("unchanged") == [], doc.get("unchanged")


@pytest.mark.parametrize(("received", "written", "told"), [
    ("2026-12-05T10:00:00.123456Z", "2026-12-05T10:00:00.122Z", True),  # (a millisecond before the receipt's)
    ("2026-12-05T10:00:00.123456Z", "2026-12-05T10:00:00.123Z", False),  # (the receipt's own millisecond)
    ("2026-12-05T10:00:00.123456Z", "2026-12-05T10:00:01.000Z", False),  # (after: it may be its own)
    (None, "2026-12-05T10:00:00.000Z", False),  # (no receipt kept)
])
def test_written_before_receipt_tells_only_a_version_before_the_receipts_millisecond(
        received: str | None, written: str, told: bool) -> None:
    """``lastUpdated`` is kept to the millisecond and never before the write; ``received_at`` to the microsecond: a
    version of the receipt's own millisecond may be the message's own write, and is not told."""
    assert written_before_receipt(aware_instant(received), aware_instant(written)) is told
