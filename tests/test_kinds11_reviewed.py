"""A left-out part of a kind erases no other kind; a field's ``""`` deletes only what that field
stated (kinds11, a reviewer's findings on merge11).

merge11 combined names, phones and addresses by kind, with a part an entry leaves out (XPN-7's
use, XAD-7's type, XTN-2's use) matching anything -- in both directions, so one incoming entry
with a part left out replaced the stored entries of every kind it fitted: an A08's home address
erased the mailing one, a name without a use the maiden and the official names, a PID-40 number
without a use the home and the work phones. And PID-13's ``""`` deleted the mobile PID-14 had
stated (a CP number was ``use: mobile`` whichever field sent it); since uses11 neither field's
``""`` deletes a number (the stored Patient cannot tell which field stated it). Real bytes over MLLP into the real
store, read back through ``/fhir``.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.merge_rules import shipped
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_merge11_kinds import stored


def adt(control: str, event: str, pid5: str = "王^建国^^^^^L", pid13: str = "", pid14: str = "",
        pid11: str = "", pid9: str = "", pid40: str | None = None) -> bytes:
    tail = "|" * (40 - 14) + pid40 if pid40 is not None else ""
    return (
        f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FUNING|20261101090000||ADT^{event}^ADT_A01|{control}|P|2.7\r"
        f"EVN|{event}|20261101090000\r"
        f"PID|1||ZY11001^^^FNXRMYY^MR||{pid5}||19850412|M|{pid9}||{pid11}||{pid13}|{pid14}{tail}\r"
        "PV1|1|O\r"
    ).encode()


def phone(value: str, use: str) -> dict:
    return {"system": "phone", "value": value, "use": use}


def test_a_home_address_alone_keeps_the_mailing_address(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine,
                adt("A1", "A01", pid11="幸福路18号^^阜宁县^江苏省^224400^CHN^H"
                                       "~邮政信箱100号^^盐城市^江苏省^224000^CHN^M"),
                adt("A2", "A08", pid11="建设路5号^^阜宁县^江苏省^224400^CHN^H"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    lines = [a["line"] for a in stored(engine, fhir, "A2", "Patient")["address"]]
    assert lines == [["建设路5号"], ["邮政信箱100号"]]


def test_a_name_without_a_use_keeps_the_maiden_and_the_official_names(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, adt("B1", "A01", "王^建国^^^^^L~WANG^JIANGUO^^^^^L", pid9="李^秀英^^^^^M"),
                adt("B2", "A08", "王^建国"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    names = stored(engine, fhir, "B2", "Patient")["name"]
    # the order's 王建国 is the registration's official 王建国 said again: not stored twice
    assert [(n.get("use"), n.get("text") or n["family"]) for n in names] == [
        ("official", "王建国"), ("official", "WANG"), ("maiden", "李秀英")]
    # another name without a use is a name of no stated kind: added, nothing erased
    (ack,) = send(engine, adt("B3", "A08", "王^建军"))
    assert ack_code_of(ack) == "AA"
    names = stored(engine, fhir, "B3", "Patient")["name"]
    assert [(n.get("use"), n.get("text") or n["family"]) for n in names] == [
        ("official", "王建国"), ("official", "WANG"), ("maiden", "李秀英"), (None, "王建军")]


def test_a_number_without_a_use_keeps_the_home_and_the_work_phones(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, adt("C1", "A01", pid13="^PRN^PH^^^^051288001", pid14="^WPN^PH^^^^051288002"),
                adt("C2", "A08", pid40="^^PH^^^^051288777"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    assert stored(engine, fhir, "C2", "Patient")["telecom"] == [
        phone("051288001", "home"), phone("051288002", "work"), {"system": "phone", "value": "051288777"}]


def test_no_phone_field_deletes_what_another_may_have_stated(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, adt("D1", "A01", pid13="^PRN^PH^^^^051288001~^VHN^PH^^^^051288003~^PRN^CP^^^^13800000000",
                            pid14="^WPN^CP^^^^13900000000"),
                adt("D2", "A08", pid13='""'))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    # uses11: PID-14's work mobile is stored as mobile (a CP), like PID-13's; the stored Patient
    # cannot tell them apart, so neither field's "" deletes a mobile. conv14: PID-13 "" deletes the
    # home number (its field's use), the temporary number stays; PID-14 "" finds no work number
    rest = [phone("051288003", "temp"), phone("13800000000", "mobile"), phone("13900000000", "mobile")]
    assert stored(engine, fhir, "D2", "Patient")["telecom"] == rest
    (ack,) = send(engine, adt("D3", "A08", pid14='""'))
    assert ack_code_of(ack) == "AA"
    assert stored(engine, fhir, "D3", "Patient")["telecom"] == rest


def test_a_home_mobile_is_not_deleted_by_the_work_field(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, adt("E1", "A01", pid13="^PRN^CP^^^^13800000000", pid14="^WPN^PH^^^^051288002"),
                adt("E2", "A08", pid14='""'))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    # the home mobile stays; the work number goes (conv14: PID-14 "" deletes the work numbers)
    assert stored(engine, fhir, "E2", "Patient")["telecom"] == [phone("13800000000", "mobile")]


def test_a_name_in_extension_b_ideographs_is_the_chinese_kind() -> None:
    """𠀋 (U+2000B) and 〇 are Chinese characters: such a name is the Chinese one, replaced by a
    Chinese name and kept beside a pinyin one."""
    pinyin = {"use": "official", "family": "WANG"}
    for text in ("𠀋", "王〇"):
        rare = {"use": "official", "family": text}
        new = {"use": "official", "family": "王"}
        out = shipped().combine({"resourceType": "Patient", "id": "p", "name": [rare, pinyin]},
                                {"resourceType": "Patient", "id": "p", "name": [new]}, "ADT").resource
        assert out["name"] == [new, pinyin], text
