"""An explicit XTN-2 decides a number's use; a field's ``""`` never erases what another field
stated; a name said again is not stored twice whatever the stored order (uses11, a reviewer's
findings on kinds11).

kinds11 gave each PID phone field its own uses (PID-13 home, mobile, temp; PID-14 work) so that its
``""`` deleted only its own numbers -- by overriding the sender's explicit XTN-2: PID-13 ``^WPN``
was stored as home, PID-14 ``^PRN`` as work. And PID-40 states numbers of every use, so PID-13's
``""`` erased PID-40's mobile, PID-14's its work number. The stored Patient cannot tell which field
a number came from: a PID phone field's ``""`` then deleted no number (conv14: it deletes the
numbers of its field's use, ``test_a_phone_field_null_deletes_the_numbers_of_its_use``). Real bytes over MLLP into the real store, read back through ``/fhir``; each failed before.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.merge_rules import shipped
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_kinds11_reviewed import adt, phone
from tests.test_merge11_kinds import stored


def test_an_explicit_use_code_decides_the_field_default_only_fills_an_empty_one(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    (ack,) = send(engine, adt("U1", "A01", pid13="^WPN^PH^^^^333~^VHN^PH^^^^335~^NET^Internet^wang@example.cn"
                                          "~^^PH^^^^336",
                              pid14="^PRN^PH^^^^444~^^PH^^^^445~^BPN^BP^^^^446"))
    assert ack_code_of(ack) == "AA"
    telecom = stored(engine, fhir, "U1", "Patient")["telecom"]
    assert [(t["value"], t.get("use")) for t in telecom] == [
        ("333", "work"), ("335", "temp"), ("wang@example.cn", "home"), ("336", "home"),
        ("444", "home"), ("445", "work"), ("446", "work")]


def test_a_phone_field_null_deletes_the_numbers_of_its_use(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """conv14: PID-13 ``""`` deletes the stored home numbers, PID-14 ``""`` the work ones (it had
    deleted none); a mobile stays. The stored Patient cannot tell which field a number came from,
    so PID-40's work number goes with PID-14's ``""`` too -- the price, said in the README."""
    acks = send(engine, adt("V1", "A01", pid13="^PRN^PH^^^^111", pid14="^WPN^PH^^^^222",
                            pid40="^PRN^CP^^^^13800000000~^WPN^PH^^^^555"),
                adt("V2", "A08", pid13='""'))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    assert stored(engine, fhir, "V2", "Patient")["telecom"] == [
        phone("222", "work"), phone("13800000000", "mobile"), phone("555", "work")]
    (ack,) = send(engine, adt("V3", "A08", pid14='""'))
    assert ack_code_of(ack) == "AA"
    assert stored(engine, fhir, "V3", "Patient")["telecom"] == [phone("13800000000", "mobile")]


def test_a_work_mobile_stated_by_pid14_survives_pid13_null(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """A CP in PID-14 is stored as ``use: mobile`` (as versions before kinds11 stored it): PID-13's
    ``""`` cannot tell it from a PID-13 mobile and leaves it."""
    acks = send(engine, adt("W1", "A01", pid14="^WPN^CP^^^^13900000000"), adt("W2", "A08", pid13='""'))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    assert stored(engine, fhir, "W2", "Patient")["telecom"] == [phone("13900000000", "mobile")]


def test_a_name_said_again_is_stored_once_whatever_the_stored_order(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """PID-5 ``ZHANG^SAN`` (no use) after ``LI^SI~ZHANG^SAN^^^^^L``: the name without a use replaces
    the stored one without a use (LI SI) and is the official ZHANG SAN said again -- also when the
    name without a use is stored first."""
    for tag, first in (("X", "LI^SI~ZHANG^SAN^^^^^L"), ("Y", "ZHANG^SAN^^^^^L~LI^SI")):
        acks = send(engine, adt(f"{tag}1", "A01", first).replace(b"ZY11001", f"ZY11{tag}".encode()),
                    adt(f"{tag}2", "A08", "ZHANG^SAN").replace(b"ZY11001", f"ZY11{tag}".encode()))
        assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
        names = stored(engine, fhir, f"{tag}2", "Patient")["name"]
        assert [(n.get("use"), n["family"]) for n in names] == [("official", "ZHANG")], tag
        (ack,) = send(engine, adt(f"{tag}3", "A08", "ZHANG^SAN").replace(b"ZY11001", f"ZY11{tag}".encode()))
        assert ack_code_of(ack) == "AA"  # a resend changes nothing
        assert stored(engine, fhir, f"{tag}3", "Patient")["name"] == names, tag


def test_a_name_is_said_again_only_of_a_stored_name_that_stays() -> None:
    """The official 张三 replaced by the official 李四 of the same message: that message's 张三
    without a use is said again of nothing that stays, so it is stored (dropping it would erase a
    name the message states)."""
    zhang = {"family": "张", "given": ["三"], "text": "张三"}
    li = {"use": "official", "family": "李", "given": ["四"], "text": "李四"}
    for names in ([{"use": "official", **zhang}], [{"family": "王"}, {"use": "official", **zhang}]):
        out = shipped().combine({"resourceType": "Patient", "id": "p", "name": names},
                                {"resourceType": "Patient", "id": "p", "name": [zhang, li]}, "ADT").resource
        assert li in out["name"] and zhang in out["name"], names
