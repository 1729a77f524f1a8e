"""A replacement order for another test inherits no re-test reason (nineteenth round, convmend19).

conv19 let a replacement order (ORC-1 RO) stating no ORC-16 take the reason of the order it replaces;
a reason is given for one test, and an RO for a CBC replacing an ALT's order took the ALT's R01: the
CBC repeat under it passed as justified. Only a replacement for the same test (a shared code, or one
recognition item) inherits; another test takes nothing, and a warning at its ORC-16 says why.
Over MLLP, the community's recognition flags read back."""

from __future__ import annotations

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from tests.test_ingest_durability import err_fields
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import ALT, CBC, LFT, engine, msh, order, pid, result, ts  # noqa: F401

REASON = "urn:huren:recognition-reason"


def test_a_replacement_for_another_test_does_not_take_the_replaced_orders_reason(
        engine: Engine, mllp: int) -> None:  # noqa: F811
    hl7 = Sender(mllp)
    hl7.send(result("HOSPA", "A1", CBC, ts(6)))  # a CBC six days ago elsewhere: a repeat today
    hl7.send(order("HOSPB", "B1", ALT, ts(0), reason="R01^病情变化^HUREN"))  # R01 given for the ALT
    when = ts(0, 9)
    replaced = (msh("HOSPB", "HIS", "ORM^O01^ORM_O01", when, "HOSPB-ORM-B1-RP") + pid("HOSPB")
                + f"ORC|RP|B1^HIS|||||||{when}|||D7^张^医生\n" + f"OBR|1|B1^HIS||{ALT}|||{when}\n"
                + f"ORC|RO|B2^HIS|||||||{when}|||D7^张^医生\n" + f"OBR|2|B2^HIS||{CBC}|||{when}\n")
    ack = hl7.send(replaced)
    assert ack_code_of(ack.encode()) == "AA", ack
    # said at the RO's ORC-16, the field the reason would have been in
    warned = [e for e in err_fields(ack.encode()) if e[2].startswith("ORC^2^16")]
    assert warned and warned[0][4] == "W", ack
    hl7.send(result("HOSPB", "B2", CBC, ts(0, 10)))
    flags = engine.recognition.flags.find({})
    # was 'justified' by R01, the ALT's reason
    assert [f for f in flags if f["status"] == "flagged"], [(f["status"], f.get("reason")) for f in flags]




def test_a_replacement_for_the_same_recognition_item_under_another_code_inherits(
        engine: Engine, mllp: int) -> None:  # noqa: F811
    # the liver panel ordered with R01, replaced by its ALT (another LOINC, one recognition item, LFT)
    hl7 = Sender(mllp)
    hl7.send(order("HOSPB", "B1", LFT, ts(0), reason="R01^病情变化^HUREN"))
    when = ts(0, 9)
    replaced = (msh("HOSPB", "HIS", "ORM^O01^ORM_O01", when, "HOSPB-ORM-B1-RP") + pid("HOSPB")
                + f"ORC|RP|B1^HIS|||||||{when}|||D7^张^医生\n" + f"OBR|1|B1^HIS||{LFT}|||{when}\n"
                + f"ORC|RO|B2^HIS|||||||{when}|||D7^张^医生\n" + f"OBR|2|B2^HIS||{ALT}|||{when}\n")
    ack = hl7.send(replaced)
    assert not [e for e in err_fields(ack.encode()) if e[2].startswith("ORC^2^16")], ack
    doc = engine.ingestor.messages.get(message_id("HOSPB", "HOSPB-ORM-B1-RP"))
    assert doc is not None
    orders = [engine.repository.read("ServiceRequest", r.split("/")[1]) for r in doc["resources"]
              if r.startswith("ServiceRequest/")]
    (replacement,) = [o for o in orders if o.get("replaces")]
    assert [c["code"] for x in replacement.get("reasonCode", ()) for c in x.get("coding", ())
            if c["system"] == REASON] == ["R01"], replacement.get("reasonCode")
