"""A lab result carries a thin PID; it must not overwrite the Patient the ADT feed stored.

The converter lists the Patient/Encounter a result message carries only so its Bundle stands
alone (``Conversion.create_only``); the ingest pipeline writes them only when they are absent.
"""

from __future__ import annotations

from engine.engine import Engine
from engine.repository.ids import deterministic_id
from engine.settings import Settings
from tests.conftest import REPO_ROOT

EXAMPLES = REPO_ROOT / "examples" / "feeds"


def msa1(ack: bytes) -> str:
    msa = next(seg for seg in ack.split(b"\r") if seg.startswith(b"MSA|"))
    return msa.split(b"|")[1].decode()


def test_result_message_does_not_thin_out_the_admitted_patient(settings: Settings) -> None:
    with Engine(settings) as engine:
        adt = (EXAMPLES / "01_FNXRMYY_ADT_A01_admission.hl7").read_bytes()
        oru = (EXAMPLES / "02_FNXRMYY_ORU_R01_blood_count.hl7").read_bytes()
        assert msa1(engine.ingestor.handle(adt, channel="test", peer="test")) == "AA"
        pid = deterministic_id("FNXRMYY", "Patient", "ZY2025000101")
        admitted = engine.repository.read("Patient", pid)
        assert admitted["address"] and admitted["telecom"]  # the ADT feed's richer record

        assert msa1(engine.ingestor.handle(oru, channel="test", peer="test")) == "AA"
        after = engine.repository.read("Patient", pid)
        assert after["address"] == admitted["address"] and after["telecom"] == admitted["telecom"]
        assert after["meta"]["versionId"] == admitted["meta"]["versionId"]
        # ... and the result itself is stored against that patient
        found = engine.repository.search("Observation", [("subject", f"Patient/{pid}")])
        assert found.total and found.total >= 3


def test_result_alone_still_creates_its_patient(settings: Settings) -> None:
    with Engine(settings) as engine:
        oru = (EXAMPLES / "02_FNXRMYY_ORU_R01_blood_count.hl7").read_bytes()
        assert msa1(engine.ingestor.handle(oru, channel="test", peer="test")) == "AA"
        pid = deterministic_id("FNXRMYY", "Patient", "ZY2025000101")
        assert engine.repository.read("Patient", pid)["name"][0]["family"] == "王"
