"""A message of one patient repeats that patient's PID exactly, or is refused (a review of
convlast19); real bytes over MLLP, read back through ``/fhir``.

convlast19 let a later PID through when its identifiers were the first's: a second PID with the
same MRN but another name, birth date and sex (张三 1985 M, then 李四 1960 F) filed 李四's result
under 张三 with AA; and a second group naming another visit (PV1-19 V002) linked its result to the
first group's visit V001, V002 never created. A later PID or PV1 that says anything else than the
first is refused (AE at that segment, the message kept for replay). And an OBX sub-id of digits
``int`` cannot read (``①``, ``²``) crashed the conversion (AE 207 "invalid literal for int()").
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_conv19_hunt import adt
from tests.test_convert11_thinner import fhir, send  # noqa: F401
from tests.test_convlast19_review import oru, stored
from tests.test_convmend19_review import err_fields, refused_at_second_pid


def test_the_same_identifiers_with_another_persons_particulars_are_refused(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    (ack,) = send(engine, oru("SP1", "PID|2||ZYA^^^FNXRMYY^MR||李^四||19600101|F\r"))
    refused_at_second_pid(ack)  # was AA, 李四's glucose filed under 张三
    assert stored(fhir, "GLU") == []


def test_a_second_visit_in_one_message_is_refused(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    text = oru("SV1", "PID|2||ZYA^^^FNXRMYY^MR||张^三||19850412|M\rPV1|2|I|||||||||||||||||V002\r")
    text = text.replace(b"M\rOBR|1|ORD-A1", b"M\rPV1|1|O|||||||||||||||||V001\rOBR|1|ORD-A1", 1)
    (ack,) = send(engine, text)
    assert ack_code_of(ack) == "AE", ack  # was AA, the V002 result linked to visit V001
    assert [e for e in err_fields(ack) if e[2].startswith("PV1^2") and e[4] == "E"], ack
    assert stored(fhir, "GLU") == []


def test_the_same_visit_repeated_passes(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    text = oru("SV2", "PID|2||ZYA^^^FNXRMYY^MR||张^三||19850412|M\rPV1|2|O|||||||||||||||||V001\r")
    text = text.replace(b"M\rOBR|1|ORD-A1", b"M\rPV1|1|O|||||||||||||||||V001\rOBR|1|ORD-A1", 1)
    (ack,) = send(engine, text)
    assert ack_code_of(ack) == "AA", ack
    assert [v for v, _ in stored(fhir, "GLU")] == [5.1, 5.6]


def test_sub_ids_of_other_digits_do_not_crash(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    tp = "NM|TP^总蛋白^L|{sub}|{value}|g/dL|||||F|||20261201090000"
    (ack,) = send(engine, adt("UD1", tp.format(sub="①", value="7.3"), tp.format(sub="²", value="6.4")))
    assert ack_code_of(ack) == "AA", ack  # was AE 207: invalid literal for int()
    assert [v for v, _ in stored(fhir, "TP")] == [6.4, 7.3]


def test_a_pid_or_pv1_repeated_with_less_passes(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """(a review of the lead's mend) Repeats that say less, or the same with trailing separators,
    are the same patient and visit: refusing them refused good traffic."""
    for n, (second, first_pv1) in enumerate((
            ("PID|2||ZYA^^^FNXRMYY^MR~||张^三^^^||19850412|M\r", ""),  # trailing separators
            ("PID|2||ZYA^^^FNXRMYY^MR\r", ""),  # only PID-3 repeated
            ("PID|2||ZYA^^^FNXRMYY^MR||张^三||19850412|M\rPV1|2||||||||||||||||||V001\r",  # only the visit
             "PV1|1|O|W1^101^1||||D7^张^医生||||||||||||V001\r"))):
        text = oru(f"RL{n}", second)
        if first_pv1:
            text = text.replace(b"M\rOBR|1|ORD-A1", b"M\r" + first_pv1.encode() + b"OBR|1|ORD-A1", 1)
        (ack,) = send(engine, text)
        assert ack_code_of(ack) == "AA", ack


def test_a_visit_named_only_by_a_later_group_is_refused(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """(a review of the lead's mend) The first group names no visit and the second names V002: the
    one visit read (the message's first PV1) was linked to the first group's result too."""
    (ack,) = send(engine, oru("RV1", "PID|2||ZYA^^^FNXRMYY^MR||张^三||19850412|M\rPV1|2|I|||||||||||||||||V002\r"))
    assert ack_code_of(ack) == "AE", ack
    assert [e for e in err_fields(ack) if e[2].startswith("PV1^1") and e[4] == "E"], ack
    assert stored(fhir, "GLU") == []
