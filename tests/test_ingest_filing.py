"""How ingest files a message: thin Patients never overwrite the ADT record; Provenance is signed.

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


def test_each_message_provenance_is_signed_over_the_stored_versions(settings: Settings) -> None:
    """Provenance.target names the exact versions filed; the signature verifies with the audit key."""
    from engine.audit.provenance import verify_provenance

    with Engine(settings) as engine:
        oru = (EXAMPLES / "02_FNXRMYY_ORU_R01_blood_count.hl7").read_bytes()
        assert msa1(engine.ingestor.handle(oru, channel="test", peer="test")) == "AA"
        found = engine.repository.search("Provenance", [])
        assert found.total == 1
        prov = found.resources[0]
        assert prov["signature"][0]["sigFormat"] == "application/jose"
        targets = []
        for t in prov["target"]:
            rtype, rid, _, vid = t["reference"].split("/")
            targets.append(engine.repository.vread(rtype, rid, vid))
        assert len(targets) >= 14  # patient, order, specimen, report and 12 observations
        assert verify_provenance(prov, targets, engine.audit.keys)
        obs = next(i for i, t in enumerate(targets) if t["resourceType"] == "Observation")
        altered = [dict(t) for t in targets]
        altered[obs] = {**altered[obs], "status": "amended"}
        assert not verify_provenance(prov, altered, engine.audit.keys)


def test_a_batch_signs_its_provenances_once_and_each_verifies_alone(settings: Settings) -> None:
    """Several messages committed together: their Provenances share one signature over a Merkle
    tree of their targets' digests, each carrying its own inclusion path; each verifies on its
    own against the versions it names, and none verifies against another's targets."""
    from bench.ingest import oru_lab
    from engine.audit.provenance import JOSE_JSON, verify_provenance

    with Engine(settings) as engine:
        outcomes = engine.ingestor.process([(oru_lab(n), "mllp", "p") for n in range(970, 975)])
        assert [o.code for o in outcomes] == ["AA"] * 5
        provenances = [engine.repository.read("Provenance", ref.split("/")[1])
                       for o in outcomes for ref in o.resources if ref.startswith("Provenance/")]
        assert len(provenances) == 5
        datas = set()
        targets_of = []
        for prov in provenances:
            [sig] = prov["signature"]
            assert sig["sigFormat"] == JOSE_JSON
            datas.add(sig["data"])
            targets = []
            for t in prov["target"]:
                rtype, rid, _, vid = t["reference"].split("/")
                targets.append(engine.repository.vread(rtype, rid, vid))
            assert verify_provenance(prov, targets, engine.audit.keys)
            targets_of.append(targets)
        assert len(datas) == 5  # one signature, five inclusion paths
        assert not verify_provenance(provenances[0], targets_of[1], engine.audit.keys)
        altered = [dict(t) for t in targets_of[2]]
        altered[-1] = {**altered[-1], "status": "amended"}
        assert not verify_provenance(provenances[2], altered, engine.audit.keys)
