"""Public HL7 v2 messages, sent as a sender sends them, read back field by field (thirtieth round,
convcheck30).

Each message is a file of ``tests/data/hl7v2/`` (source and licence in its README): NIST's ORU^R01
test case 1 (a US-government work), the HL7 v2-to-FHIR IG's ORU_R01 and MDM_T02 benchmark messages
(CC0), the HL7 normative glucose example as python-hl7 keeps it (BSD-3-Clause) and CDC's
immunization guide's VXU example 1 (a US-government work), MIE's DFT^P03 example as node-hl7-complete
keeps it (MIT). Each goes through ``POST /hl7v2`` into
the real store of an engine whose site registers the samples' senders (``tests.conftest.
sample_site``); what a client reads back over ``/fhir`` is compared with what the message said:
codes and their systems, identifiers and their systems, values with their precision, units,
reference ranges, flags, dates with their precision and zone, notes, performers, specimen, order
links, and the ``\\.br\\`` escape decoded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from adapters.hl7v2.header import extract_header
from engine.engine import Engine
from engine.messages import message_id
from engine.settings import Settings
from tests.conftest import SAMPLES, declare_training_senders, sample_site
from tests.hl7_calls import module_http, post  # noqa: F401  (``http``: a hospital system's client of ``engine``)

NIST_LEAD = SAMPLES / "node-hl7-complete" / "nist_ORU_R01_2.5.1_SampleTestCase1.hl7"
IG_ORU = SAMPLES / "hl7-v2-to-fhir-ig" / "IG-test_conversions_ORU_R01.hl7"
IG_MDM = SAMPLES / "hl7-v2-to-fhir-ig" / "IG-test_conversions_MDM_T02.hl7"
GLUCOSE = SAMPLES / "python-hl7" / "py01_ORU_R01_sample_hl7.hl7"
CDC_VXU = SAMPLES / "cdc-iz-ig" / "vxu_example_1_basic_message.hl7"
MIE_DFT = SAMPLES / "node-hl7-complete" / "mieweb_dft-example_1.hl7"
FILES = (NIST_LEAD, IG_ORU, IG_MDM, GLUCOSE, CDC_VXU, MIE_DFT)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """An engine over a real store whose site registers every sample's sending facility."""
    root = tmp_path_factory.mktemp("convcheck30")
    site = root / "site"
    site.mkdir()
    sample_site(site)
    declare_training_senders(site, [p.read_bytes() for p in FILES])
    with Engine(Settings(data_dir=root / "var", http_port=0, mllp_port=0, site=site)) as eng:
        yield eng


@pytest.fixture(scope="module")
def sent(engine: Engine, http: TestClient) -> dict[Path, bytes]:
    """Each file posted once, as published; its ACK."""
    return {path: post(http, path.read_bytes()) for path in FILES}


def read_back(engine: Engine, http: TestClient, path: Path, rtype: str) -> list[dict[str, Any]]:
    """The ``rtype`` resources the message in ``path`` wrote, as a client reads them."""
    head = extract_header(path.read_bytes())[0]
    doc = engine.ingestor.messages.get(message_id(head.facility_code, head.control_id))
    assert doc is not None, path.name
    return [http.get(f"/fhir/{r}").json() for r in doc.get("resources") or [] if r.startswith(rtype + "/")]


def by_id(http: TestClient, ref: dict[str, Any]) -> dict[str, Any]:
    return http.get("/fhir/" + ref["reference"]).json()


def test_every_message_is_accepted(sent: dict[Path, bytes]) -> None:
    assert {p.name: ack_code_of(a) for p, a in sent.items()} == {p.name: "AA" for p in FILES}


def test_nist_lead_result_reads_back_as_sent(engine: Engine, http: TestClient, sent: dict[Path, bytes]) -> None:
    """NIST ORU^R01 test case 1 (blood lead): OBX, OBR, SPM and the ordering provider."""
    (obs,) = read_back(engine, http, NIST_LEAD, "Observation")
    assert obs["code"]["coding"] == [{"system": "http://loinc.org", "code": "10368-9", "display": "Lead BldC-mCnc"}]
    assert obs["valueQuantity"] == {"value": 50, "unit": "micro-gram per deci-liter",
                                    "system": "http://unitsofmeasure.org", "code": "ug/dL"}
    assert obs["referenceRange"] == [{"text": "<9 mcg/dL:  Acceptable background lead exposure"}]
    assert obs["interpretation"][0]["coding"][0]["code"] == "H"
    assert obs["status"] == "final"
    assert obs["effectiveDateTime"] == "2008-08-15T10:30:00-07:00"  # OBX-14, minutes and the sender's zone
    assert by_id(http, obs["performer"][0])["identifier"][0]["value"] == "Lab"  # OBX-23
    specimen = by_id(http, obs["specimen"])
    assert specimen["type"]["coding"] == [
        {"system": "http://snomed.info/sct", "code": "122554006", "display": "Capillary blood specimen",
         "version": "20080131"},
        {"system": "http://terminology.hl7.org/CodeSystem/v2-0070", "code": "BLDC", "display": "Blood capillary",
         "version": "2.5.1"}]
    (report,) = read_back(engine, http, NIST_LEAD, "DiagnosticReport")
    assert report["result"] == [{"reference": f"Observation/{obs['id']}"}]
    (order,) = read_back(engine, http, NIST_LEAD, "ServiceRequest")
    assert report["basedOn"] == [{"reference": f"ServiceRequest/{order['id']}"}]
    assert order["identifier"][0]["system"] == "urn:oid:2.16.840.1.113883.19.3.1.6"  # OBR-3 EI-3/EI-4
    assert order["identifier"][0]["value"] == "9700123"
    assert order["reasonCode"][0]["coding"] == [{"system": "http://hl7.org/fhir/sid/icd-9-cm", "code": "787.91",
                                                 "display": "DIARRHEA"}]
    assert order["note"] == [{"text": "Diarrhea"}]  # OBR-13, relevant clinical information
    doctor = by_id(http, order["requester"])
    # OBR-16 ``1234^Admit^Alan^^^^^^ABC Medical Center&2.16.840.1.113883.19.4.6&ISO``: the assigning
    # authority's OID is the identifier's system, as it is for CX-4 and EI (``datatypes.hd_system``)
    assert doctor["identifier"] == [{"system": "urn:oid:2.16.840.1.113883.19.4.6", "value": "1234"}]
    assert doctor["name"][0]["family"] == "Admit" and doctor["name"][0]["given"] == ["Alan"]
    (patient,) = read_back(engine, http, NIST_LEAD, "Patient")
    assert (patient["birthDate"], patient["gender"]) == ("2007-05-26", "male")
    assert patient["name"] == [{"family": "Johnson", "given": ["Philip"]}]


def test_ig_lab_result_keeps_decimals_comparators_ranges_and_notes(engine: Engine, http: TestClient,
                                                                    sent: dict[Path, bytes]) -> None:
    """The v2-to-FHIR IG's ORU_R01: three IgE results, an NTE, PLAC/FILL numbers with OIDs."""
    values = {o["code"]["coding"][0]["code"]: o for o in read_back(engine, http, IG_ORU, "Observation")}
    assert values["6153-1"]["valueQuantity"]["value"] == 3.9
    assert values["6041-8"]["valueQuantity"]["value"] == 0.59
    assert values["6265-3"]["valueQuantity"] == {"value": 0.1, "comparator": "<", "unit": "kU/L",
                                                 "system": "http://unitsofmeasure.org", "code": "kU/L"}
    for o in values.values():
        assert o["referenceRange"][0]["text"] == "<0.10"
        assert o["referenceRange"][0]["high"]["value"] == 0.1
        assert o["effectiveDateTime"] == "2015-06-01T16:08:00-04:00"
    assert [c["code"] for o in values.values() for c in o["interpretation"][0]["coding"]] == ["A", "A", "N"]
    assert by_id(http, values["6153-1"]["performer"][1])["name"][0]["family"] == "Observer"  # OBX-16
    (order,) = read_back(engine, http, IG_ORU, "ServiceRequest")
    assert {(i["system"], i["value"]) for i in order["identifier"]} == {("urn:oid:2.3.4.4", "ORD777888"),
                                                                        ("urn:huren:id:LabFac", "LAB4432")}
    assert order["requisition"]["value"] == "GORD874244"
    assert order["note"] == [{"text": "Allergy test interpretations are subjective."}]
    (patient,) = read_back(engine, http, IG_ORU, "Patient")
    assert patient["_birthDate"]["extension"][0]["valueDateTime"] == "1970-06-01T09:12:00-04:00"  # PID-7 minutes
    assert patient["name"][0]["period"] == {"start": "2000-09-09", "end": "2030-12-31"}


def test_normative_glucose_example_reads_back_as_sent(engine: Engine, http: TestClient,
                                                      sent: dict[Path, bytes]) -> None:
    """The HL7 normative edition's glucose ORU: SN ``^182`` mg/dl, range ``70_105``, flag H."""
    sn, _ = sorted(read_back(engine, http, GLUCOSE, "Observation"), key=lambda o: o["code"]["coding"][0]["code"],
                   reverse=True)
    assert sn["code"]["coding"][0]["code"] == "1554-5"
    assert sn["valueQuantity"] == {"value": 182, "unit": "mg/dl", "system": "http://unitsofmeasure.org",
                                   "code": "mg/dL"}
    assert sn["referenceRange"] == [{"text": "70_105"}]
    assert sn["interpretation"][0]["coding"][0]["code"] == "H"
    assert sn["effectiveDateTime"] == "2002-02-15T07:30:00-05:00"  # OBR-7 to the minute, the site's zone
    (patient,) = read_back(engine, http, GLUCOSE, "Patient")
    assert patient["name"] == [{"use": "official", "family": "EVERYWOMAN", "given": ["EVE", "E"]}]
    assert "birthDate" not in patient  # PID-7 '196203520' is no date: left out, not guessed


def test_mdm_formatted_text_decodes_line_breaks(engine: Engine, http: TestClient, sent: dict[Path, bytes]) -> None:
    """The IG's MDM_T02: an FT OBX's ``\\.br\\`` escapes are line breaks in what a client reads."""
    texts = {o["code"].get("text"): o.get("valueString") for o in read_back(engine, http, IG_MDM, "Observation")}
    text = texts["Critical Values - Text"]
    assert text.startswith("Critical Values Entered On:  08/22/2023 2:11 EDT \n Performed On:")
    assert "\\" not in text and "Lab Values :    1.27" in text
    (doc,) = read_back(engine, http, IG_MDM, "DocumentReference")
    assert doc["masterIdentifier"]["value"] == "3738931392" and doc["docStatus"] == "final"


def test_cdc_vxu_reads_back_as_sent(engine: Engine, http: TestClient, sent: dict[Path, bytes]) -> None:
    """CDC's VXU example 1: CVX codes, doses, lots, expiry, route and site, and the MVX manufacturer."""
    shots = {i["vaccineCode"]["coding"][0]["code"]: i for i in read_back(engine, http, CDC_VXU, "Immunization")}
    assert set(shots) == {"85", "110", "48"}
    assert all(i["vaccineCode"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/cvx" for i in shots.values())
    assert shots["85"]["primarySource"] is False and shots["85"]["occurrenceDateTime"] == "2011-04-15"
    dtap = shots["110"]
    assert dtap["doseQuantity"] == {"value": 0.5, "unit": "mL", "system": "http://unitsofmeasure.org", "code": "mL"}
    assert (dtap["lotNumber"], dtap["expirationDate"], dtap["occurrenceDateTime"]) == ("xy3939", "2014-12-12",
                                                                                       "2012-01-13")
    assert dtap["site"]["coding"][0] == {"system": "http://terminology.hl7.org/CodeSystem/v2-0163", "code": "RT",
                                         "display": "Right Thigh"}
    assert dtap["route"]["coding"][0]["code"] == "C28161"
    # RXA-17 ``SKB^GlaxoSmithKline^MVX``: MVX is CDC's national manufacturer code system, not DCS's own
    assert dtap["manufacturer"] == {"display": "GlaxoSmithKline",
                                    "identifier": {"system": "http://hl7.org/fhir/sid/mvx", "value": "SKB"}}
    assert shots["48"]["manufacturer"]["identifier"] == {"system": "http://hl7.org/fhir/sid/mvx", "value": "PMC"}


def test_dft_codes_keep_the_coding_method_the_segment_names(engine: Engine, http: TestClient,
                                                            sent: dict[Path, bytes]) -> None:
    """MIE's DFT^P03: ``PR1|1|CPT|73630|`` and ``DG1|1|ICD9|V76.12|``: a code with no CWE-3 whose
    segment names its coding method (PR1-2, DG1-2, table 0089/0053) is a code of that system, not one
    of the sender's own local codes (``urn:huren:code:SENDING_FAC`` said it was)."""
    (procedure,) = read_back(engine, http, MIE_DFT, "Procedure")
    assert procedure["code"]["coding"] == [{"system": "http://www.ama-assn.org/go/cpt", "code": "73630"}]
    assert procedure["performedDateTime"] == "2008-05-28T11:47:00-04:00"
    conditions = {c["code"]["coding"][0]["code"]: c for c in read_back(engine, http, MIE_DFT, "Condition")}
    assert set(conditions) == {"V76.12", "959.7"}
    for condition in conditions.values():
        assert condition["code"]["coding"][0]["system"] == "http://terminology.hl7.org/CodeSystem/icd9"
    assert conditions["959.7"]["note"] == [{"text": "Foot injury"}]  # DG1-4
    (charge,) = read_back(engine, http, MIE_DFT, "ChargeItem")
    assert (charge["status"], charge["quantity"], charge["occurrenceDateTime"]) == (
        "billable", {"value": 1}, "2008-05-28T11:47:00-04:00")
