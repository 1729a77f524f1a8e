"""rv41e: review probes of st41 (forty-first round) -- the one ORC-5 W step, merge.yaml ``held:``, and the receipt
rule for message documents filed before ``unchanged`` was kept. Real HL7 v2 over MLLP into the real store, both
backends: the policy tests' community once a module and backend (``module_store.module_community``), each test under
names of its own (``module_store.Names``: its resident, record, order and control numbers) reading its own rows
(suite44b: each had opened a community and an MLLP listener of its own)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.engine import Engine
from engine.messages import MessageStore, message_id
from mappings.site import DEFAULTS_DIR, load_merge_file
from mappings.sitefiles import SiteError
from tests import test_money19_cds_orders
from tests.module_store import NamedSender, Names, names
from tests.module_store import engine_mllp as mllp
from tests.module_store import module_community as engine
from tests.test_money20_reason_change import prior
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, msh, order, pid, ts
from tests.test_recognition_policy_e2e import result as oru
from tests.test_rv40k_probes import _hospb, _order
from tests.test_st40_status_leftovers import _hospa, _report_of
from tests.test_st41_status_merge_tidy import _filed_by_the_old_release
from tests.test_stfix40_status_made_by import _interpreted

__all__ = ["engine", "mllp", "names"]
_W = "ORC-5 'CM' (completed) was not stored"

_WBC = ("WBC^白细胞^L", "6.1", "10*9/L")
_HGB = ("HGB^血红蛋白^L", "135", "g/L")
_PLT = ("PLT^血小板^L", "210", "10*9/L")


def _groups(control: str, hour: int, *groups: tuple[str, str, tuple[str, str, str], str]) -> str:
    """HOSPB's LIS's ORU of order B1: one group (ORC-5, OBR-25, test, OBX-11) per entry, all naming the same order
    (same placer and filler number, same OBR-4)."""
    when = ts(1, hour)
    out = msh("HOSPB", "LIS", "ORU^R01^ORU_R01", when, control) + pid("HOSPB")
    for n, (orc5, obr25, (code, value, unit), obx11) in enumerate(groups, 1):
        out += (f"ORC|RE|B1^HIS|FB1^LIS||{orc5}\n"
                f"OBR|{n}|B1^HIS|FB1^LIS|{CBC}|||{when}|||||||||D7^张^医生||||||{when}|||{obr25}\n"
                f"OBX|1|NM|{code}||{value}|{unit}|||||{obx11}|||{when}\n")
    return out


def _batch(*messages: str) -> str:
    """The messages as one BHS batch (HOSPB's LIS)."""
    return ("BHS|^~\\&|LIS|HOSPB|HUREN|C1|" + ts(1, 11) + "||||B41E\n" + "".join(messages)
            + f"BTS|{len(messages)}\n")


# --- 1. the ORC-5 W: one settle step ---------------------------------------------------------------------------


def test_orc5_w_beside_an_ip_group_on_an_order_stored_completed(
        engine: Engine, mllp: int, names: Names) -> None:
    """The order stands completed (WBC F, HGB F filed). The LIS then sends one message: HGB W (ORC-5 CM) and PLT P
    (ORC-5 IP). What the order holds after it, and whether the W at ORC^1^5 is said, must agree: a W saying the CM
    "was not stored ... the order stays as it stands" beside an order that stands completed is stfix40's LOW (read
    as the order taken back)."""
    hl7 = names.sender(mllp)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    hl7.send(_groups("B41E-F", 10, ("CM", "F", _WBC, "F"), ("CM", "F", _HGB, "F")))
    assert _order(engine, names.number("B1"))["status"] == "completed"
    before = [s for s, _ in _hospb(engine, names)]
    ack = hl7.send(_groups("B41E-WIP", 12, ("CM", "F", _HGB, "W"), ("IP", "P", _PLT, "P")))
    status = _order(engine, names.number("B1"))["status"]
    said = _W in ack
    assert said == (status != "completed"), (status, ack)
    assert [s for s, _ in _hospb(engine, names)] == before, (_hospb(engine, names), ack)


@pytest.mark.parametrize("how", ["batch", "one-by-one"])
def test_orc5_w_split_over_two_messages_of_a_batch_as_one_by_one(
        engine: Engine, mllp: int, names: Names, how: str) -> None:
    """The LIS's final WBC (ORC-5 CM), then a message withdrawing HGB (W, ORC-5 CM) beside PLT P under ORC-5 IP --
    in one BHS batch or one by one: the same answer. The second message leaves the order active (its IP stated),
    so its W at ORC^1^5 stays; the repeat's money row is the same as after the final alone."""
    hl7 = names.sender(mllp)
    prior(hl7)
    hl7.send(order("HOSPB", "B1", CBC, ts(1)))
    final = _groups("B41E-F1", 10, ("CM", "F", _WBC, "F"))
    second = _groups("B41E-WIP2", 12, ("CM", "F", _HGB, "W"), ("IP", "P", _PLT, "P"))
    if how == "batch":
        ack = hl7.send(_batch(final, second))
        assert ack.count("MSA|AA") == 2, ack
        answer = ack[ack.index("B41E-WIP2"):]
    else:
        hl7.send(final)
        answer = hl7.send(second)
    assert "ERR||ORC^1^5" in answer and _W in answer, answer
    assert _order(engine, names.number("B1"))["status"] == "active", answer
    assert [s for s, _ in _hospb(engine, names)] == ["flagged"], (_hospb(engine, names), answer)


# --- 3. documents filed before ``unchanged`` was kept: the receipt rule --------------------------------------------


# how far ahead the stepped receipts are: a message's write must end within it for its receipt to be after its
# version, and a message takes more than a second at a load of 25 (stfix41's test failed so, round 42)
AHEAD = 4.0


# the latest instant ``_receipts_ahead``'s clock has stamped (``_past_the_stepped_receipts`` waits past it)
_STAMPED: dict[str, datetime] = {}


def _past_the_stepped_receipts() -> None:
    """Wait until the host's clock is past every receipt ``_receipts_ahead`` stamped (call after its undo): a later
    message's receipt and version are then after them, as on a clock stepped back once. Waited for until the clock
    is past the latest stamp (it had slept ``AHEAD`` from here, which the message's own processing since its
    receipt had already partly passed: forty-sixth round, suite46b)."""
    latest = _STAMPED.pop("latest", None)
    assert latest is not None, "no receipt was stamped ahead"
    while (left := (latest - datetime.now(UTC)).total_seconds()) > -0.002:
        time.sleep(left + 0.003)  # (versions are stamped to the millisecond, rounded down: past it by 2 ms, rv46d LOW)


def _receipts_ahead(monkeypatch: pytest.MonkeyPatch, seconds: float = AHEAD) -> None:
    """The message store's clock ``seconds`` ahead of the version clock: every receipt from now on is stamped as if
    the host's clock stepped back by that much between the message's receipt and its write."""
    import engine.messages as messages_module

    def ahead() -> str:
        stamped = datetime.now(UTC) + timedelta(seconds=seconds)
        _STAMPED["latest"] = max(stamped, _STAMPED.get("latest", stamped))
        return stamped.isoformat(timespec="microseconds")[:-6] + "Z"

    monkeypatch.setattr(messages_module, "now_iso", ahead)


def _late_final_after_the_newer_p(hl7: Sender | NamedSender, community: Engine,
                                  names: Names | None = None) -> tuple[dict, str]:
    """The upgrade's traffic: the 12:00 P by 李四, then the late F of 09:00; the final report and its ACK. ``names``:
    those ``hl7`` sends under (a test on a shared store)."""
    hl7.send(_interpreted(_hospa("P", "P", 12, "p3", wbc="6.5"), "D002&李&四"))
    ack = hl7.send(_hospa("F", "F", 9, "f", wbc="6.2"))
    final = _report_of(community, names.control("HOSPA-ORU-A1-Ff") if names else "HOSPA-ORU-A1-Ff")
    assert final["status"] == "final", final
    return final, ack


def test_an_old_batch_holding_the_p_and_its_resend_no_longer_dates_the_older_version(
        engine: Engine, mllp: int, names: Names, monkeypatch: pytest.MonkeyPatch) -> None:
    """rv40m MED 3 in a batch: the LIS's BHS batch held the 08:00 P by 王五 and its unchanged 10:00 re-send, both
    filed by the release before stfix40 (no ``unchanged``). After the upgrade: the 12:00 P by 李四, the late F of
    09:00. The 08:00 version was made by the 08:00 P alone -- two old documents name it, and only the one processed
    first can have written it -- so the final must keep 王五. st41's receipt rule cannot tell (both received before
    the version was written) and the re-send dates the version 10:00 again."""
    p1, p2 = message_id("HOSPA", names.control("HOSPA-ORU-A1-Pp1")), message_id("HOSPA", names.control("HOSPA-ORU-A1-Pp2"))
    hl7 = names.sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    monkeypatch.setattr(MessageStore, "mark_processed", _filed_by_the_old_release({p1, p2}))
    batch = ("BHS|^~\\&|LIS|HOSPA|HUREN|C1|" + ts(5, 10) + "||||B41E\n"
             + _interpreted(_hospa("P", "P", 8, "p1"), "D003&王&五")
             + _interpreted(_hospa("P", "P", 10, "p2"), "D003&王&五") + "BTS|2\n")
    ack = hl7.send(batch)
    monkeypatch.undo()
    assert ack.count("MSA|AA") == 2, ack
    first = _report_of(engine, names.control("HOSPA-ORU-A1-Pp1"))
    for doc_id in (p1, p2):
        doc = engine.ingestor.messages.get(doc_id)
        assert doc is not None and "unchanged" not in doc, doc
    final, ack = _late_final_after_the_newer_p(hl7, engine, names)
    assert final.get("resultsInterpreter") == first["resultsInterpreter"], (final, ack)


def test_an_old_makers_receipt_stamped_after_its_write_clock_stepped_back(
        engine: Engine, mllp: int, names: Names, monkeypatch: pytest.MonkeyPatch) -> None:
    """The 08:00 P by 王五 filed by the old release, its receipt stamped a second after its own write (the host's
    clock stepped back between the two: NTP on a county server). The receipt rule then reads the P's own version
    as written before its receipt -- none of its making, a client's. Then its 10:00 re-send, the 12:00 P by 李四,
    the late F of 09:00: the final must keep 王五, as it does when the clock did not step (the control in st41)."""
    p1 = message_id("HOSPA", names.control("HOSPA-ORU-A1-Pp1"))
    hl7 = names.sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    monkeypatch.setattr(MessageStore, "mark_processed", _filed_by_the_old_release({p1}))
    _receipts_ahead(monkeypatch)
    hl7.send(_interpreted(_hospa("P", "P", 8, "p1"), "D003&王&五"))
    monkeypatch.undo()
    first = _report_of(engine, names.control("HOSPA-ORU-A1-Pp1"))
    made = engine.ingestor.messages.get(p1)
    assert made is not None and "unchanged" not in made
    assert made["received_at"] > first["meta"]["lastUpdated"], (made["received_at"], first["meta"])
    _past_the_stepped_receipts()
    hl7.send(_interpreted(_hospa("P", "P", 10, "p2"), "D003&王&五"))
    final, ack = _late_final_after_the_newer_p(hl7, engine, names)
    assert final.get("resultsInterpreter") == first["resultsInterpreter"], (final, ack)


def test_an_old_resend_replayed_after_the_newer_p_still_no_maker_of_the_older_version(
        engine: Engine, mllp: int, names: Names, monkeypatch: pytest.MonkeyPatch) -> None:
    """rv40m MED 3's re-send (10:00, filed by the old release: no ``unchanged``), the 12:00 P by 李四 after the
    upgrade, then the operator replays the re-send (a recovery, a plain replay): its replay finds the 12:00 version
    unchanged -- written after the re-send's receipt, so ``_unchanged`` keeps it as the re-send's making -- and
    writes ``unchanged: []``. From then on the document claims every version its Provenances name, the 08:00
    version too, which the receipt rule had told was not its making. The late F of 09:00 must keep 王五, as it does
    without the replay (``test_rv40m_probes``)."""
    resend = message_id("HOSPA", names.control("HOSPA-ORU-A1-Pp2"))
    hl7 = names.sender(mllp)
    hl7.send(order("HOSPA", "A1", CBC, ts(5)))
    hl7.send(_interpreted(_hospa("P", "P", 8, "p1"), "D003&王&五"))
    first = _report_of(engine, names.control("HOSPA-ORU-A1-Pp1"))
    monkeypatch.setattr(MessageStore, "mark_processed", _filed_by_the_old_release({resend}))
    time.sleep(0.002)
    hl7.send(_interpreted(_hospa("P", "P", 10, "p2"), "D003&王&五"))
    monkeypatch.undo()
    hl7.send(_interpreted(_hospa("P", "P", 12, "p3", wbc="6.5"), "D002&李&四"))
    again = engine.ingestor.replay(resend, actor="rv41e")
    assert again is not None and b"MSA|AA" in again.ack, again
    ack = hl7.send(_hospa("F", "F", 9, "f", wbc="6.2"))
    final = _report_of(engine, names.control("HOSPA-ORU-A1-Ff"))
    assert final["status"] == "final", final
    assert final.get("resultsInterpreter") == first["resultsInterpreter"], (
        final, ack, engine.ingestor.messages.get(resend).get("unchanged"))


def test_an_old_placers_order_whose_receipt_is_after_its_write_still_holds_a_third_apps_statement(
        engine: Engine, mllp: int, names: Names, monkeypatch: pytest.MonkeyPatch) -> None:
    """HOSPB's order B1 with R01 and the LIS's SC (its number FB1^LIS), both filed by the release before stfix40
    (no ``unchanged``) on a host whose clock stepped back a second between receipt and write. After the upgrade the
    EMR's RQ under those numbers with ORC-16 ``""`` (a third application's statement: held, W 204) and the result:
    the doctor's R01 decides, the repeat is justified (``test_ofix40b_orders``' a-third-apps-RQ). The receipt rule
    reads each of the old messages' own versions as written before its receipt, so no message stored the numbers
    (``_numbered``: None, a client's) and nothing is held."""
    from tests.test_recognition_policy_e2e import LFT
    from tests.test_rv40d_probes import R01, _reasons

    hl7 = names.sender(mllp)
    prior(hl7)
    when = ts(1, 9)
    nw, sc = message_id("HOSPB", names.control("HOSPB-ORM-B1-NW")), message_id("HOSPB", names.control("HOSPB-SC-B1"))
    monkeypatch.setattr(MessageStore, "mark_processed", _filed_by_the_old_release({nw, sc}))
    _receipts_ahead(monkeypatch)
    hl7.send(order("HOSPB", "B1", CBC, ts(1), reason=R01))
    hl7.send(msh("HOSPB", "LIS", "ORM^O01^ORM_O01", when, "HOSPB-SC-B1") + pid("HOSPB")
             + f"ORC|SC|B1^HIS|FB1^LIS||IP||||{when}|||D7^张^医生\n" + f"OBR|1|B1^HIS|FB1^LIS|{CBC}|||{when}\n")
    monkeypatch.undo()
    _past_the_stepped_receipts()
    for doc_id in (nw, sc):
        filed = engine.ingestor.messages.get(doc_id)
        assert filed is not None and "unchanged" not in filed, filed
    made = _order(engine, names.number("B1"))
    assert engine.repository.vread("ServiceRequest", made["id"], "1")["meta"]["lastUpdated"] < \
        engine.ingestor.messages.get(nw)["received_at"]
    ack = hl7.send(msh("HOSPB", "EMR", "ORM^O01^ORM_O01", when, "HOSPB-XO-B1") + pid("HOSPB")
                   + f"ORC|XO|B1^HIS|FB1^LIS||IP||||{when}|||D9^李^医生||||\"\"\n"
                   + f"OBR|1|B1^HIS|FB1^LIS|{LFT}|||{when}\n")
    assert "MSA|AA" in ack, ack
    stored = _order(engine, names.number("B1"))
    assert "|204^" in ack and (stored.get("requester") or {}).get("display") == "张医生", (ack, stored.get("requester"))
    assert _reasons(stored) == ["R01"] and "58410-2" in str(stored.get("code")), (ack, stored)
    hl7.send(oru("HOSPB", "B1", CBC, ts(1, 10)))
    (flag,) = [f for f in names.rows(engine, test_money19_cds_orders.flags(engine)) if f["inst"] == "HOSPB"]
    assert (flag["status"], flag["reason"]) == ("justified", "R01"), (flag, ack)


# --- 2. merge.yaml ``held:`` ----------------------------------------------------------------------------------------


def test_a_site_merge_file_naming_both_placer_and_held_is_refused_at_the_placer_line(tmp_path: Path) -> None:
    """A site copy half-migrated: ServiceRequest ``status`` marks both ``held: true`` and the old ``placer: true``.
    Refused at the ``placer`` key's own line, naming ``held`` -- not loaded with one of the two silently read."""
    shipped = (DEFAULTS_DIR / "merge.yaml").read_text("utf-8")
    row = "status: {stands: {order: [completed, revoked]}, yields_to: [entered-in-error], held: true}"
    assert row in shipped
    both = shipped.replace(row, row[:-1] + ",\n            placer: true}")
    site = tmp_path / "merge.yaml"
    site.write_text(both, "utf-8")
    line = both[:both.index("placer: true}")].count("\n") + 1
    with pytest.raises(SiteError) as raised:
        load_merge_file(site)
    assert f"merge.yaml:{line}" in str(raised.value) and "'placer' is now held" in str(raised.value), raised.value
