"""ACK contents over a real MLLP socket (twenty-first round, hl7probe21).

- MSA-2 must echo MSH-10 as sent: it was escaped a second time, so ``CTL\\E\\7`` came back as
  ``CTL\\E\\E\\E\\7`` and ``CTL^7`` as ``CTL\\S\\7``: the sender matches MSA-2 against the MSH-10 it
  sent, and such an ACK answers no message it knows of;
- a v2.7 message declaring the truncation character (MSH-2 ``^~\\&#``) got its ``#`` back bare in
  ERR-8, where it reads "the value was truncated here": it is ``\\P\\`` now;
- MSH-11 was never looked at: a processing id outside HL7 table 0103 (``X``), or a processing
  mode outside table 0207, was stored as production data with an ``AA``; chapter 2's "accept and
  validate" rejects it: ``AR``, ERR ``MSH^1^11`` code ``202``, the raw message kept (reverted by the
  lead that round, decided again in the twenty-ninth: ``adapters.hl7v2.processing``);
- the ERR-8 of a bad MSH-2 showed the characters sent through ``repr``: ``^^\\&`` came back as
  ``^^\\\\&`` (escaped: two escape sequences for the one backslash sent);
- a version id that is not numbers and dots was read by its leading digits, and one with no digits
  at all (``Z9``) as 2.5.1: accepted with ``AA`` as a version it does not name; ``AR`` ``203`` now.
"""

from __future__ import annotations

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import QUARANTINED, message_id
from engine.settings import Settings
from tests.hl7_calls import mllp


def adt(control: str, *, msh2: str = "^~\\&", version: str = "2.5.1", msg_type: str = "ADT^A01^ADT_A01",
        processing: str = "P") -> bytes:
    return (f"MSH|{msh2}|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||{msg_type}|{control}|{processing}|{version}\r"
            "EVN|A01|20261201091500\r"
            "PID|1||P21A^^^FNXRMYY^MR||张^三||19850412|M\rPV1|1|I\r").encode()


def exchange(settings: Settings, *messages: bytes) -> tuple[Engine, list[bytes]]:
    engine = Engine(settings)
    return engine, mllp(engine, *messages)


def segment(ack: bytes, name: str) -> list[str]:
    (seg,) = [s for s in ack.decode().split("\r") if s.startswith(name)]
    return seg.split("|")


def test_msa2_echoes_msh10_exactly_as_sent(settings: Settings) -> None:
    engine, acks = exchange(settings, adt("CTL\\E\\7"), adt("CTL^8"), adt("CTL9"))
    try:
        assert [segment(a, "MSA")[1:3] for a in acks] == [["AA", "CTL\\E\\7"], ["AA", "CTL^8"], ["AA", "CTL9"]]
    finally:
        engine.close()


def test_truncation_character_is_escaped_in_err8(settings: Settings) -> None:
    engine, (ack,) = exchange(settings, adt("TR1", msh2="^~\\&#", version="2.7", msg_type="ADT^Z#9"))
    try:
        assert segment(ack, "MSH")[1] == "^~\\&#"
        err = segment(ack, "ERR")
        assert err[3].startswith("201^") and "Z\\P\\9" in err[8] and "#" not in err[8], ack
    finally:
        engine.close()


def test_msh11_is_judged(settings: Settings) -> None:
    """MSH-11 was not validated (the lead, twenty-first round); the twenty-ninth round's decision
    (hl7mode29) is chapter 2's: the node accepts P, a mode of table 0207 beside it, an empty MSH-11 read
    as P with a W 101; anything else AR 202."""
    engine, acks = exchange(settings, adt("PX1", processing="X"), adt("PX2", processing="P^Q"),
                            adt("PX3", processing="T"), adt("PX4", processing="P^I"), adt("PX5", processing=""))
    try:
        assert [ack_code_of(a) for a in acks] == ["AR", "AR", "AR", "AA", "AA"]
        assert segment(acks[1], "ERR")[2] == "MSH^1^11^^2" and segment(acks[4], "ERR")[2:5] == [
            "MSH^1^11", "101^Required field missing^HL70357", "W"]
    finally:
        engine.close()


def test_a_version_id_that_names_no_version_is_rejected(settings: Settings) -> None:
    engine, acks = exchange(settings, adt("VZ1", version="Z9"), adt("VZ2", version="V2.5"),
                            adt("VZ3", version="2.5.1x"), adt("VZ4", version="2.5.1"), adt("VZ5", version="2.3.1"))
    try:
        assert [ack_code_of(a) for a in acks] == ["AR", "AR", "AR", "AA", "AA"]
        for ack in acks[:3]:
            assert segment(ack, "ERR")[2:4] == ["MSH^1^12", "203^Unsupported version id^HL70357"], ack
        doc = engine.ingestor.messages.get(message_id("FNXRMYY", "VZ1"))
        assert doc is not None and doc["status"] == QUARANTINED and doc["ack_code"] == "AR"
    finally:
        engine.close()


def test_a_bad_msh2_is_named_as_sent(settings: Settings) -> None:
    engine, (ack,) = exchange(settings, adt("E21", msh2="^^\\&"))
    try:
        err = segment(ack, "ERR")
        assert ack_code_of(ack) == "AR" and err[2] == "MSH^1^2"
        assert "'\\S\\\\S\\\\E\\\\T\\'" in err[8], err[8]  # ^^\& escaped: S S E T, one E
    finally:
        engine.close()
