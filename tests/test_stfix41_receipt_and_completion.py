"""stfix41: the fixes of rv41e's review of st41 (forty-first round).

1. The receipt rule (a version written before a message filed by the release before stfix40 was received is none of
   its making) only chooses among the old messages naming a version (``merge_rules._made_by``): of those it cannot
   tell, the first by arrival; where it tells them all (the host's clock stepped back between receipt and write),
   still the first by arrival, never none -- rv41e's two probes (``tests/test_rv41e_probes.py``) and, here, both
   rules at once: an old batch's P and its re-send on a host whose clock stepped back.
2. ``merge.yaml``: a source group (or a source it lists) named like an element-rule key -- ``held``, the old
   ``placer``, any other -- refused at its line with that reason (rv41e LOW 3).
3. The ORC-5 W ("ORC-5 'CM' (completed) was not stored ...") is taken back only where the message's write leaves the
   order completed (``convert.settle_completion``, asked of the write): after a third application's statement of
   completion that the merge held (W 204) in the same BHS batch it is kept, as one by one (rv41e LOW 4).

Real HL7 v2 over MLLP into the real store, both backends: for 3 the policy community once a module and backend
(``shared_worlds44.community_eng``, suite44c), each test sending as a person of its own (``OwnSender``) and reading
her order; for 1 a community of its own (``test_stfix40_status_made_by.community``: rv41e's helpers read the
scenario's fixed control IDs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.engine import Engine
from engine.messages import MessageStore, message_id
from mappings.site import DEFAULTS_DIR, load_merge_file
from mappings.sitefiles import SiteError
from tests import test_stfix40_status_made_by
from tests.conftest import running_mllp
from tests.shared_worlds44 import OwnSender, community_eng, community_mllp, own, theirs
from tests.test_money20_reason_change import prior
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, msh, order, pid, ts
from tests.test_rv41e_probes import (
    _filed_by_the_old_release,
    _late_final_after_the_newer_p,
    _past_the_stepped_receipts,
    _receipts_ahead,
)
from tests.test_st40_status_leftovers import _hospa, _report_of
from tests.test_stfix40_status_made_by import _interpreted

__all__ = ["community_eng", "community_mllp"]

community = test_stfix40_status_made_by.community
_W = "ORC-5 'CM' (completed) was not stored"

_WBC = ("WBC^白细胞^L", "6.1", "10*9/L")
_HGB = ("HGB^血红蛋白^L", "135", "g/L")


# --- 1. the receipt rule chooses, never leaves a version makerless --------------------------------------------------


def test_an_old_batchs_p_and_resend_on_a_clock_stepped_back_still_leave_the_p_the_maker(
        community: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The LIS's BHS batch of the release before stfix40 held the 08:00 P by 王五 and its unchanged 10:00 re-send, on
    a host whose clock stepped back a second between the batch's receipt and its write: each receipt stamped after
    the 08:00 version's write, so the receipt rule tells both -- neither made it, by the rule. One version has one
    maker, the first by arrival of the old messages naming it (the 08:00 P): after the upgrade the 12:00 P by 李四
    and the late 09:00 F, the final keeps 王五 (the re-send dating the version 10:00, or no maker read as a
    client's version written over the order's, would each lose him or take 李四). A guard: on st41's rule (no
    maker) ``_before_later`` read the version as a client's written over the order's and kept him too."""
    p1, p2 = message_id("HOSPA", "HOSPA-ORU-A1-Pp1"), message_id("HOSPA", "HOSPA-ORU-A1-Pp2")
    with running_mllp(community) as port:
        hl7 = Sender(port)
        hl7.send(order("HOSPA", "A1", CBC, ts(5)))
        monkeypatch.setattr(MessageStore, "mark_processed", _filed_by_the_old_release({p1, p2}))
        _receipts_ahead(monkeypatch)
        batch = ("BHS|^~\\&|LIS|HOSPA|HUREN|C1|" + ts(5, 10) + "||||SF41\n"
                 + _interpreted(_hospa("P", "P", 8, "p1"), "D003&王&五")
                 + _interpreted(_hospa("P", "P", 10, "p2"), "D003&王&五") + "BTS|2\n")
        ack = hl7.send(batch)
        monkeypatch.undo()
        assert ack.count("MSA|AA") == 2, ack
        first = _report_of(community, "HOSPA-ORU-A1-Pp1")
        for doc_id in (p1, p2):
            doc = community.ingestor.messages.get(doc_id)
            assert doc is not None and "unchanged" not in doc, doc
            assert doc["received_at"] > first["meta"]["lastUpdated"], (doc["received_at"], first["meta"])
        _past_the_stepped_receipts()
        final, ack = _late_final_after_the_newer_p(hl7, community)
        assert final.get("resultsInterpreter") == first["resultsInterpreter"], (final, ack)


# --- 2. merge.yaml: a source group named like an element-rule key ---------------------------------------------------


@pytest.mark.parametrize(("name", "key"), [("held", "a key"), ("placer", "the old name of a key"),
                                           ("when", "a key")])
def test_a_source_group_named_like_an_element_rule_key_is_refused_at_its_line(
        tmp_path: Path, name: str, key: str) -> None:
    """A site's merge.yaml naming its order senders' group ``held`` (st41's mark), ``placer`` (its old name, the
    natural one for ORM senders) or ``when`` (another key) -- in an element rule the name would be read as the key,
    never as the group's mode. Refused at the group's line, saying so; ``placer`` used as a mode key was told
    "'placer' is now held", ``held`` a schema message reading it as the held mark."""
    shipped = (DEFAULTS_DIR / "merge.yaml").read_text("utf-8")
    group = "  order: [ORM, OML, OMG, OMI]"
    assert group in shipped
    site = shipped.replace(group, f"  {name}: [ORM, OML, OMG, OMI]", 1).replace(
        "feed: [registration, order,", f"feed: [registration, {name},", 1)
    site = site.replace("    authoredOn: {owner: [order, api], held: true}",
                        f"    authoredOn: {{owner: [{name}, api], held: true, {name}: replace}}", 1)
    assert site.count(f"{name}: replace") == 1
    path = tmp_path / "merge.yaml"
    path.write_text(site, "utf-8")
    line = site[:site.index(f"  {name}: [ORM")].count("\n") + 1
    with pytest.raises(SiteError) as raised:
        load_merge_file(path)
    said = str(raised.value)
    assert f"merge.yaml:{line}" in said and f"may not be named {name!r}" in said and key in said, said


def test_a_source_a_group_lists_named_like_an_element_rule_key_is_refused_too(tmp_path: Path) -> None:
    """A writer listed in a group (``api: [api, held]``) is a name a rule may give a mode as well: refused at its
    entry's line. The shipped file still loads."""
    load_merge_file(DEFAULTS_DIR / "merge.yaml")
    shipped = (DEFAULTS_DIR / "merge.yaml").read_text("utf-8")
    site = shipped.replace("  api: [api]", "  api: [api,\n        held]", 1)
    path = tmp_path / "merge.yaml"
    path.write_text(site, "utf-8")
    line = site[:site.index("        held]")].count("\n") + 1
    with pytest.raises(SiteError) as raised:
        load_merge_file(path)
    assert f"merge.yaml:{line}" in str(raised.value) and "may not be named 'held'" in str(raised.value), raised.value


# --- 3. the ORC-5 W against the order as the write leaves it --------------------------------------------------------


def _groups(app: str, kind: str, orc1: str, control: str, hour: int,
            *groups: tuple[str, str, tuple[str, str, str], str]) -> str:
    """HOSPB's ``app``'s message ``kind`` of order B1 (placer B1^HIS, filler FB1^LIS): one group (ORC-1 ``orc1``,
    ORC-5, OBR-25, a result and its OBX-11) per entry."""
    when = ts(1, hour)
    out = msh("HOSPB", app, kind, when, control) + pid("HOSPB")
    for n, (orc5, obr25, (code, value, unit), obx11) in enumerate(groups, 1):
        out += (f"ORC|{orc1}|B1^HIS|FB1^LIS||{orc5}\n"
                f"OBR|{n}|B1^HIS|FB1^LIS|{CBC}|||{when}|||||||||D7^张^医生||||||{when}|||{obr25}\n"
                f"OBX|1|NM|{code}||{value}|{unit}|||||{obx11}|||{when}\n")
    return out


def _placed_and_accepted(hl7: Sender) -> None:
    """The HIS's order B1, the LIS's SC giving it its number FB1^LIS (ORC-5 IP): the order active."""
    when = ts(1, 9)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    ack = hl7.send(msh("HOSPB", "LIS", "ORM^O01^ORM_O01", when, "HOSPB-SC-B1") + pid("HOSPB")
                   + f"ORC|SC|B1^HIS|FB1^LIS||IP||||{when}|||D7^张^医生\n" + f"OBR|1|B1^HIS|FB1^LIS|{CBC}|||{when}\n")
    assert "MSA|AA" in ack, ack


@pytest.mark.parametrize("how", ["one-by-one", "batch"])
def test_the_w_stays_after_a_held_statement_of_completion_one_by_one_and_in_a_batch(
        community_eng: Engine, community_mllp: int, how: str, request: pytest.FixtureRequest) -> None:
    """The EMR (neither the order's placer nor its filler) sends an SC under B1^HIS / FB1^LIS stating the order
    completed (ORC-5 CM): the merge holds it (W 204 "held with it ... status"), the order stays active. Then the
    LIS's withdrawal of HGB under ORC-5 CM, which leaves the order as it stands: active, so its W that the CM was
    not stored is true and stays. One by one it did; in one BHS batch the step read the EMR's stated completed as
    the order's status and took the W back -- the batch now answers as one by one, from the write."""
    run = own(request, "SF41-3A")
    hl7 = OwnSender(community_mllp, run)
    _placed_and_accepted(hl7)
    when = ts(1, 10)
    held = (msh("HOSPB", "EMR", "ORM^O01^ORM_O01", when, "SF41-EMR") + pid("HOSPB")
            + f"ORC|SC|B1^HIS|FB1^LIS||CM||||{when}|||D7^张^医生\n" + f"OBR|1|B1^HIS|FB1^LIS|{CBC}|||{when}\n")
    withdrawal = _groups("LIS", "ORU^R01^ORU_R01", "RE", "SF41-W", 11, ("CM", "F", _HGB, "W"))
    if how == "batch":
        ack = hl7.send("BHS|^~\\&|ESB|HOSPB|HUREN|C1|" + ts(1, 11) + "||||SF41\n" + held + withdrawal + "BTS|2\n")
        assert ack.count("MSA|AA") == 2, ack
        first, second = ack[:ack.index(f"MSA|AA|{run}-SF41-W")], ack[ack.index(f"MSA|AA|{run}-SF41-W"):]
    else:
        first = hl7.send(held)
        second = hl7.send(withdrawal)
    assert "|204^" in first and "status" in first, first
    assert "ERR||ORC^1^5" in second and _W in second, second
    assert theirs(community_eng, run)[0]["status"] == "active", (first, second)


def test_the_w_is_still_taken_back_where_the_lis_completes_the_order_in_the_same_batch(
        community_eng: Engine, community_mllp: int, request: pytest.FixtureRequest) -> None:
    """Control: the LIS's own message (no hold) with HGB withdrawn under ORC-5 CM beside WBC final under CM, then
    its withdrawal of HGB alone, in one BHS batch: the write leaves the order completed, both Ws are taken back
    (kfix40's case and stfix40's, read now from the write)."""
    run = own(request, "SF41-3B")
    hl7 = OwnSender(community_mllp, run)
    _placed_and_accepted(hl7)
    final = _groups("LIS", "ORU^R01^ORU_R01", "RE", "SF41-F", 10, ("CM", "F", _HGB, "W"), ("CM", "F", _WBC, "F"))
    withdrawal = _groups("LIS", "ORU^R01^ORU_R01", "RE", "SF41-W", 11, ("CM", "F", _HGB, "W"))
    ack = hl7.send("BHS|^~\\&|LIS|HOSPB|HUREN|C1|" + ts(1, 11) + "||||SF41\n" + final + withdrawal + "BTS|2\n")
    assert ack.count("MSA|AA") == 2 and _W not in ack and "ERR||ORC^1^5" not in ack, ack
    assert theirs(community_eng, run)[0]["status"] == "completed", ack


def test_the_replay_of_an_old_placers_order_on_a_clock_stepped_back_still_holds_a_third_apps_xo(
        community_eng: Engine, community_mllp: int, monkeypatch: pytest.MonkeyPatch,
        request: pytest.FixtureRequest) -> None:
    """HOSPB's order B1 with R01 filed by the release before stfix40 on a host whose clock stepped back a second
    between its receipt and its write. After the upgrade the operator replays the NW (a recovery), then the LIS's SC:
    the replay finds its own version unchanged, which ``_unchanged`` reads as written before its receipt -- none of its
    making -- and writes ``unchanged`` naming the order. The EMR's XO under B1^HIS / FB1^LIS must still be held
    (W 204): the order's placer is the HIS, whose NW made the version holding B1."""
    from tests.test_recognition_policy_e2e import LFT
    from tests.test_rv40d_probes import R01
    from tests.test_rv41e_probes import _filed_by_the_old_release as old_release

    run = own(request, "SF41-3C")
    hl7 = OwnSender(community_mllp, run)
    prior(hl7)
    nw = message_id("HOSPB", f"{run}-HOSPB-ORM-B1-NW")
    monkeypatch.setattr(MessageStore, "mark_processed", old_release({nw}))
    _receipts_ahead(monkeypatch)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    monkeypatch.undo()
    again = community_eng.ingestor.replay(nw, actor="stfix41")
    assert again is not None and b"MSA|AA" in again.ack, again
    _past_the_stepped_receipts()
    when = ts(1, 9)
    ack = hl7.send(msh("HOSPB", "LIS", "ORM^O01^ORM_O01", when, "HOSPB-SC-B1") + pid("HOSPB")
                   + f"ORC|SC|B1^HIS|FB1^LIS||IP||||{when}|||D7^张^医生\n" + f"OBR|1|B1^HIS|FB1^LIS|{CBC}|||{when}\n")
    assert "MSA|AA" in ack, ack
    ack = hl7.send(msh("HOSPB", "EMR", "ORM^O01^ORM_O01", when, "HOSPB-XO-B1") + pid("HOSPB")
                   + f"ORC|XO|B1^HIS|FB1^LIS||IP||||{when}|||D9^李^医生||||\"\"\n"
                   + f"OBR|1|B1^HIS|FB1^LIS|{LFT}|||{when}\n")
    assert "MSA|AA" in ack, ack
    stored = theirs(community_eng, run)[0]
    assert "|204^" in ack and (stored.get("requester") or {}).get("display") == "张医生", (
        ack, stored.get("requester"), community_eng.ingestor.messages.get(nw).get("unchanged"))
