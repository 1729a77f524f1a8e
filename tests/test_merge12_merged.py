"""A late message naming a merged-away record does not bring it back into use (merge12).

An A40 merges the old record into the survivor: the old one is written inactive with a
``replaced-by`` link. No PID states whether a record is in use, yet the converter writes
``active: true`` for every Patient, and feeds combine ``keep-if-absent``: an A08 still naming the
old MRN (a late or queued message) made the merged-away record active again beside its
``replaced-by`` link. Now only an event that states a record is in use writes it (a merge's
survivor, a link or unlink: ``vocabulary.yaml`` ``patient_active_stated``); any other message's
``true`` is assumed and fills only a Patient stored without it. A merge that makes the old record
the survivor again brings it back (mfix12: a ``stands`` rule refused that too).

Real bytes over MLLP into the real store, read back through ``/fhir``; it failed before.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_ingest_durability import err_fields
from tests.test_merge11_kinds import stored


def adt(control: str, event: str, mrn: str, rest: str = "PV1|1|O\r") -> bytes:
    structure = "ADT_A39" if event == "A40" else "ADT_A01"
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FUNING|20261101090000||ADT^{event}^{structure}|{control}|P|2.5.1\r"
            f"EVN|{event}|20261101090000\r"
            f"PID|1||{mrn}^^^FNXRMYY^MR||郑^十一^^^^^L||19850412|M\r{rest}").encode()


def test_a_late_update_of_a_merged_record_leaves_it_inactive(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, adt("M1", "A01", "MZ1"), adt("M2", "A40", "MZ2", "MRG|MZ1^^^FNXRMYY^MR\r"),
                adt("M3", "A08", "MZ1"), adt("M4", "A08", "MZ2"))
    assert [ack_code_of(a) for a in acks] == ["AA"] * 4
    old, survivor = stored(engine, fhir, "M3", "Patient"), stored(engine, fhir, "M4", "Patient")
    assert old["active"] is False and old["link"] == [
        {"other": {"reference": f"Patient/{survivor['id']}"}, "type": "replaced-by"}]
    assert survivor["active"] is True
    # the A08 states nothing about whether the record is in use: nothing refused, nothing to warn of
    assert not [e for a in acks for e in err_fields(a) if "Patient.active" in e[-1]]
