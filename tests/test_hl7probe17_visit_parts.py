"""A discharge never erases what the admission stated (hl7probe17), sent over MLLP, read via ``/fhir``.

An A03 carrying PV1-45 (discharge time) and PV1-36 (disposition) but not PV1-44 (admit time) nor PV1-14
(admit source) replaced the stored ``Encounter.period`` and ``hospitalization`` whole: the visit was
stored with an end and no start, and without its admit source -- a thinner message erased what an
earlier one stated. Both are now ``parts`` elements (``mappings/merge.yaml``): each part is kept unless
the message states it. An A13 (cancel discharge) takes the discharge back: ``period.end`` and the
disposition go, the admission stays.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)


def adt(control: str, event: str, **fields: str) -> bytes:
    pv1 = {1: "1", 2: "I", 19: "V17^^^FNXRMYY^VN"} | {int(k[1:]): v for k, v in fields.items()}
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||ADT^{event}^ADT_A01|{control}|P|2.5.1\r"
            f"EVN|{event}|20261201091500\rPID|1||ZY17V^^^FNXRMYY^MR||王^建国||19850412|M\r"
            + "PV1|" + "|".join(pv1.get(n, "") for n in range(1, max(pv1) + 1)) + "\r").encode()


def test_a_discharge_keeps_the_admission_and_a_cancel_takes_the_discharge_back(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    admit = adt("V1", "A01", f14="7^急诊入院", f44="20261130080000")
    discharge = adt("V2", "A03", f36="01^回家", f45="20261201080000")
    acks = send(engine, admit, discharge)
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    (visit,) = written(engine, fhir, "V2", "Encounter")
    assert visit["status"] == "finished"
    assert visit["period"] == {"start": "2026-11-30T08:00:00+08:00", "end": "2026-12-01T08:00:00+08:00"}
    assert visit["hospitalization"]["admitSource"]["coding"][0]["code"] == "7"
    assert visit["hospitalization"]["dischargeDisposition"]["coding"][0]["code"] == "01"

    (ack,) = send(engine, adt("V3", "A13"))  # cancel discharge: PV1-45 empty
    assert ack_code_of(ack) == "AA", ack
    (visit,) = written(engine, fhir, "V3", "Encounter")
    assert visit["status"] == "in-progress"
    assert visit["period"] == {"start": "2026-11-30T08:00:00+08:00"}
    assert visit["hospitalization"] == {"admitSource": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0023",
                                                                    "code": "7", "display": "急诊入院"}],
                                                        "text": "急诊入院"}}


def test_a_later_admit_time_still_replaces_the_stored_one(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, adt("W1", "A01", f44="20261130080000", f19="V18^^^FNXRMYY^VN"),
                adt("W2", "A08", f44="20261130083000", f19="V18^^^FNXRMYY^VN"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    (visit,) = written(engine, fhir, "W2", "Encounter")
    assert visit["period"] == {"start": "2026-11-30T08:30:00+08:00"}


def test_the_visit_fields_the_ig_maps_are_kept(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """PV1-5 (preadmit number), PV1-13 (re-admission), PV1-16 (VIP), PV1-38 (diet), PV1-42 (pending
    location) and PV1-52 (other provider) were dropped; the IG maps each to the Encounter."""
    (ack,) = send(engine, adt("P1", "A01", f3="内科^301^2", f5="PRE77^^^FNXRMYY", f13="R^再入院", f16="VIP^贵宾",
                              f19="V19^^^FNXRMYY^VN", f38="LS^低盐饮食", f42="外科^201^1", f44="20261201080000",
                              f52="D007^周^医生"))
    assert ack_code_of(ack) == "AA", ack
    (visit,) = written(engine, fhir, "P1", "Encounter")
    stay = visit["hospitalization"]
    assert stay["preAdmissionIdentifier"]["value"] == "PRE77"
    assert [c["code"] for c in stay["reAdmission"]["coding"]] == ["R"]
    assert [c["coding"][0]["code"] for c in stay["specialCourtesy"]] == ["VIP"]
    assert [c["text"] for c in stay["dietPreference"]] == ["低盐饮食"]
    assert [(entry["status"], entry["location"]["display"]) for entry in visit["location"]] == [
        ("active", "内科 301房 2床"), ("reserved", "外科 201房 1床")]
    (other,) = [p for p in visit["participant"] if p["type"][0]["coding"][0]["code"] == "PART"]
    assert other["individual"]["display"] == "周医生"
