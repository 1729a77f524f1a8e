"""A merge the other way round, or an unlink, brings a merged-away record back into use (mfix12).

merge12 stopped a late A08 naming a merged-away MRN from making that record active again, with a
rule that no feed may change a stored ``active: false``. That rule also refused the one message
that does state it: an A40 that makes the old record the survivor (the registrar merged the wrong
way and merges back), or an A37 unlinking the two records. Now ``active`` is stated only by those
events (``vocabulary.yaml`` ``patient_active_stated``) and assumed by every other.

Real bytes over MLLP into the real store, read back through ``/fhir``; it failed on 6b97b61.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_ingest_durability import err_fields
from tests.test_merge11_kinds import stored

HEAD = "MSH|^~\\&|HIS|FNXRMYY|HUREN|FUNING|20261102090000||ADT^{event}^{structure}|{control}|P|2.5.1\r" \
       "EVN|{event}|20261102090000\r"


def pid(mrn: str) -> str:
    return f"PID|1||{mrn}^^^FNXRMYY^MR||钱^十二^^^^^L||19800101|F\r"


def adt(control: str, event: str, body: str) -> bytes:
    structure = {"A40": "ADT_A39", "A37": "ADT_A37"}.get(event, "ADT_A01")
    return (HEAD.format(event=event, structure=structure, control=control) + body).encode()


def test_a_merge_back_and_an_unlink_bring_the_record_back(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, adt("U1", "A01", pid("UM1") + "PV1|1|O\r"),
                adt("U2", "A40", pid("UM2") + "MRG|UM1^^^FNXRMYY^MR\r"),  # UM1 merged into UM2
                adt("U3", "A08", pid("UM1") + "PV1|1|O\r"))
    assert stored(engine, fhir, "U3", "Patient")["active"] is False  # the late A08 leaves it out of use
    # the registrar merged the wrong way: UM2 into UM1, which survives and is in use again
    acks += send(engine, adt("U4", "A40", pid("UM1") + "MRG|UM2^^^FNXRMYY^MR\r"),
                 adt("U5", "A08", pid("UM1") + "PV1|1|O\r"), adt("U6", "A08", pid("UM2") + "PV1|1|O\r"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 6
    assert not [e for a in acks for e in err_fields(a) if "Patient.active" in e[-1]]
    back = stored(engine, fhir, "U5", "Patient")
    assert back["active"] is True
    assert {"other": {"reference": f"Patient/{stored(engine, fhir, 'U6', 'Patient')['id']}"},
            "type": "replaces"} in back["link"]
    assert stored(engine, fhir, "U6", "Patient")["active"] is False  # merged away in turn
    # an unlink states both records are in use
    (ack,) = send(engine, adt("U7", "A37", pid("UM1") + pid("UM2").replace("PID|1", "PID|2")))
    assert ack_code_of(ack) == "AA"
    (ack,) = send(engine, adt("U8", "A08", pid("UM2") + "PV1|1|O\r"))
    assert stored(engine, fhir, "U8", "Patient")["active"] is True
