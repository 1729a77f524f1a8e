"""How ingest files a message: thin Patients never overwrite the ADT record; Provenance is signed.

The converter lists the Patient/Encounter a result message carries only so its Bundle stands
alone (``Conversion.create_only``); the ingest pipeline writes them only when they are absent.
"""

from __future__ import annotations

from engine.engine import Engine
from engine.repository.ids import deterministic_id
from engine.settings import Settings
from tests.conftest import REPO_ROOT
from tests.rfc9162 import root_from_inclusion_path

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


def test_an_auditor_checks_an_ingested_batch_over_http_with_public_tools(engine, http, client_token) -> None:
    """A batch of lab messages and a lone one are ingested; for each Provenance, an auditor with
    only the public key and HTTP reads each target version (vread), hashes the response bytes,
    builds the manifest (RFC 8785), folds the inclusion path (RFC 9162) and verifies the Ed25519
    JWS -- no huren code. Versions a later message replaced keep verifying through the history."""
    import base64
    import hashlib
    import json

    import rfc8785
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from bench.ingest import oru_lab

    def b64url(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    def unb64url(text: str) -> bytes:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

    outcomes = engine.ingestor.process([(oru_lab(n), "mllp", "10.0.0.5:4000") for n in (31, 32, 31 + 499)])
    outcomes.append(engine.ingestor.process([(oru_lab(33), "mllp", "10.0.0.5:4000")])[0])
    assert [o.code for o in outcomes] == ["AA"] * 4
    headers = {"Authorization": f"Bearer {client_token(engine, 'system/*.rs')}"}
    keys = {k["key_id"]: k["pem"] for k in http.get("/audit/public-key").json()["keys"]}
    for outcome in outcomes:
        ref = next(r for r in outcome.resources if r.startswith("Provenance/"))
        prov = http.get(f"/fhir/{ref}", headers=headers).json()
        entries = []
        for target in prov["target"]:
            body = http.get(f"/fhir/{target['reference']}", headers=headers)
            assert body.status_code == 200
            entries.append({"reference": target["reference"], "sha256": hashlib.sha256(body.content).hexdigest()})
        manifest = rfc8785.dumps({"targets": entries})
        [sig] = prov["signature"]
        if sig["sigFormat"] == "application/jose":  # the lone message: a compact JWS over its manifest
            protected, _, signature = base64.b64decode(sig["data"]).decode().split(".")
            payload = manifest
        else:  # the batch: the manifest is a leaf of the tree whose root the one signature covers
            jws = json.loads(base64.b64decode(sig["data"]))
            protected, signature, unprotected = jws["protected"], jws["signature"], jws["header"]
            r = root_from_inclusion_path(
                manifest, unprotected["leaf"], unprotected["leaves"], map(unb64url, unprotected["path"]))
            payload = rfc8785.dumps({"leaves": unprotected["leaves"], "sha256-tree": b64url(r).decode()})
        header = json.loads(unb64url(protected))
        assert header["cty"] in ("huren-manifest+json", "huren-manifest-tree+json")
        load_pem_public_key(keys[header["kid"]].encode()).verify(
            unb64url(signature), protected.encode() + b"." + b64url(payload))
