"""One owner decides whether a name is written in Chinese characters (merge12).

Three checks had three ranges: the merge rules (a name's kind, IDE or ABC) knew CJK Extensions B-I
(𠀋, U+20000 up), the compatibility ideographs and 〇; the converter's XPN/XAD text and the
Practitioner's display knew only U+3400-U+9FFF. A name written in Extension B characters alone
(rare surnames and given names, which national registries do hold) was the Chinese kind for the
merge, yet the converter gave the Patient no ``text`` and the doctor a western display with the
given name first and a space ("𠀋 𡈼"). Now ``engine.merge_rules.ideographic`` is the one check.

Real bytes over MLLP into the real store, read back through ``/fhir``; it failed before.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_merge11_kinds import stored


def adt(control: str, event: str, pid5: str) -> bytes:
    return (
        f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FUNING|20261101090000||ADT^{event}^ADT_A01|{control}|P|2.5.1\r"
        f"EVN|{event}|20261101090000\r"
        f"PID|1||ZY12002^^^FNXRMYY^MR||{pid5}||19850412|M\r"
        "PV1|1|O|||||D12^𡈼^𠀋\r"
    ).encode()


def test_a_name_in_extension_b_is_written_as_a_chinese_name(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, adt("J1", "A01", "𡈼^𠀋^^^^^L~QIU^XI^^^^^L"), adt("J2", "A08", "QIU^XI^^^^^L"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    patient = stored(engine, fhir, "J2", "Patient")
    # family first, no space, as for 张三; the pinyin-only A08 kept it (the same kind to the merge)
    assert patient["name"] == [{"use": "official", "family": "𡈼", "given": ["𠀋"], "text": "𡈼𠀋"},
                               {"use": "official", "family": "QIU", "given": ["XI"]}]
    doctor = stored(engine, fhir, "J1", "Practitioner")
    assert doctor["name"][0]["text"] == "𡈼𠀋"
