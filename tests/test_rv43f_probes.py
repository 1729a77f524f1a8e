"""rv43f: review probes of acsn43c (an accession's assigner: relays, defaulted assigners, test codes not the
modality) and time43b (the derived-time mark is the converter's).

Real HL7 v2 bytes through ``POST /hl7v2`` into a real engine and store, read back over ``/fhir``. A probe that shows
a defect is a strict xfail naming its severity; the others guard what the review found sound."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from tests.hl7_calls import err_lines, post
from tests.module_store import module_eng  # noqa: F401 -- the module's engine, on each backend
from tests.test_acsn43_accession import _omi, _order
from tests.test_acsn43b_assigner import _based_on
from tests.test_ord40_owner_decision import _aliased, _client, _engine_on
from tests.test_rv43d_probes import _lab, _marked, _obs
from tests.test_rv43e_probes import _another_test, _as, _assigners, _batch, _imaging


@pytest.fixture(scope="module", params=["sqlite", "mongomock"])
def relayed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A site whose senders.yaml names ``ESB`` a relay of FNXRMYY (``relay_applications``, acsn43c)."""
    site = _aliased(tmp_path_factory.mktemp("rv43f-relay-site"), {})
    senders = site / "hl7v2" / "senders.yaml"
    senders.write_text(senders.read_text(encoding="utf-8").replace(
        "relay_applications: {}", "relay_applications: {FNXRMYY: [ESB]}"), encoding="utf-8")
    with _engine_on(request.param, tmp_path_factory.mktemp("rv43f-relayed"), site) as eng, \
            _client(eng, "rv43f") as client:
        yield client


def test_a_relayed_resend_keeps_the_assigner_the_ris_recorded(relayed: TestClient) -> None:
    """(rv43f MED, fixed by acsn43d.) The RIS sends its OMI itself (assigner RIS), then the platform forwards the
    same order again (MSH-3 ESB, a relay: it numbers nothing). A later or thinner message never erases what an
    earlier one stated: the assigner stays RIS, and the RIS's report of the exam coded otherwise (CT010 for CT009)
    is the order's."""
    mrn, number = "RV43FR", "20261201061"
    omi = _omi("RV43FR1", mrn, "RV43FPR", number, "20261201090000", "1.2.156.4346.1")
    assert ack_code_of(post(relayed, omi)) == "AA"
    assert _assigners(_order(relayed, "RV43FPR")) == ["RIS"]
    ack = post(relayed, _as("ESB", omi.replace("|RV43FR1|", "|RV43FR2|")))
    assert ack_code_of(ack) == "AA", ack
    assert _assigners(_order(relayed, "RV43FPR")) == ["RIS"]
    ack = post(relayed, _imaging("RV43FR3", mrn, number, "RIS", "CT010^头颅CT增强^L", "CT", "未见异常"))
    assert ack_code_of(ack) == "AA" and _another_test(ack), ack
    assert _based_on(relayed, _order(relayed, "RV43FPR")) == ["未见异常"]


def test_a_batch_resend_defaulting_the_assigner_stores_as_one_by_one(relayed: TestClient) -> None:
    """(Guard: settle_assigners over a batch's earlier message, ``_as_left``.) The RIS's OMI and the HIS's re-send
    with the accession bare in one FHS/BHS batch: the assigner stays RIS, as sent one by one
    (``test_rv43e_probes.test_a_later_omi_defaulting_the_assigner_keeps_the_one_stated``)."""
    mrn, number = "RV43FB", "20261201062"
    omi = _omi("RV43FB1", mrn, "RV43FPB", number, "20261201090000", "1.2.156.4346.2")
    ack = post(relayed, _batch(omi, _as("HIS", omi.replace("|RV43FB1|", "|RV43FB2|"))))
    assert ack.count(b"MSA|AA|") == 2, ack
    assert _assigners(_order(relayed, "RV43FPB")) == ["RIS"]


def test_a_report_coded_as_the_test_and_the_modality_behind_a_relay_is_the_orders(relayed: TestClient) -> None:
    """(Guard.) Behind the relay the accession has no assigner; the RIS's forwarded imaging report carrying both
    the order's test code (CT009) and the modality (OBR-24 CT) is filed on the order; the emergency CT system's
    forwarded chest CT (CT020, same modality) of the same number is not."""
    mrn, number = "RV43FM", "20261201063"
    omi = _as("ESB", _omi("RV43FM1", mrn, "RV43FPM", number, "20261201090000", "1.2.156.4346.3"))
    assert ack_code_of(post(relayed, omi)) == "AA"
    ack = post(relayed, _imaging("RV43FM2", mrn, number, "ESB", "CT020^胸部CT平扫^L", "CT", "双肺未见异常"))
    assert ack_code_of(ack) == "AA", ack
    assert _based_on(relayed, _order(relayed, "RV43FPM")) == []
    mrn, number = "RV43FN", "20261201064"
    omi = _as("ESB", _omi("RV43FN1", mrn, "RV43FPN", number, "20261201090000", "1.2.156.4346.4"))
    assert ack_code_of(post(relayed, omi)) == "AA"
    ack = post(relayed, _imaging("RV43FN2", mrn, number, "ESB", "CT009^头颅CT平扫^L", "CT", "未见异常"))
    assert ack_code_of(ack) == "AA" and err_lines(ack) == [], ack
    assert _based_on(relayed, _order(relayed, "RV43FPN")) == ["未见异常"]


def test_a_relay_of_one_institution_is_another_institutions_assigner(relayed: TestClient) -> None:
    """(Guard: relays are per institution.) ``ESB`` is FNXRMYY's relay only: another institution's OMI from an
    application it calls ESB records ESB as the assigner."""
    mrn, number = "RV43FO", "20261201065"
    omi = _as("ESB", _omi("RV43FO1", mrn, "RV43FPO", number, "20261201090000", "1.2.156.4346.5")).replace(
        "|FNXRMYY|HUREN|", "|FNZYY|HUREN|", 1).replace("^^^FNXRMYY^MR", "^^^FNZYY^MR")
    ack = post(relayed, omi)
    assert ack_code_of(ack) == "AA", ack
    found = relayed.get("/fhir/ServiceRequest", params={
        "identifier": "urn:huren:order:FNZYY|RV43FPO"}).json()
    (sr,) = [e["resource"] for e in found.get("entry") or ()]
    assert _assigners(sr) == ["ESB"]


# --- time43b: the derived-time mark is the converter's ----------------------------------------------------------

FHIR_JSON = {"Content-Type": "application/fhir+json"}


@pytest.fixture(scope="module")
def http(module_eng: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(module_eng)) as client:
        client.headers["Authorization"] = "Bearer " + module_eng.auth.issue_system_token("rv43f", "system/*.cruds")
        yield client


def test_a_transactions_conditional_update_and_create_state_their_times(http: TestClient) -> None:
    """(Guard.) One transaction Bundle: a conditional update (``PUT Observation?code=...``) correcting the
    derived 08:30 to 09:15 with the converter's mark kept in the twin, and a conditional create
    (``ifNoneExist``) forging the mark on a time it states: neither stores the mark, and the LIS's later re-send
    (OBX-14 empty, OBR-7 08:40) does not move the client's 09:15."""
    assert ack_code_of(post(http, _lab("RV43FT1", "LRV43FT", "RV43FTC", "20261201083000"))) == "AA"
    o = _obs(http, "RV43FTC")
    assert _marked(o), o
    sent = {k: v for k, v in o.items() if k not in ("meta", "id")} | {"effectiveDateTime": "2026-12-01T09:15:00+08:00"}
    forged = {k: v for k, v in sent.items() if k not in ("identifier",)} | {
        "code": {"text": "glucose, bedside"}, "identifier": [{"system": "urn:example:poct", "value": "RV43F-POCT-1"}],
        "effectiveDateTime": "2026-12-01T07:00:00+08:00", "_effectiveDateTime": o["_effectiveDateTime"]}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": sent, "request": {"method": "PUT",
                                       "url": "Observation?code=RV43FTC"}},
        {"resource": forged, "request": {"method": "POST", "url": "Observation",
                                         "ifNoneExist": "identifier=urn:example:poct|RV43F-POCT-1"}}]}
    r = http.post("/fhir", headers=FHIR_JSON, content=json.dumps(bundle))
    assert r.status_code == 200, r.text
    o = _obs(http, "RV43FTC")
    assert o["effectiveDateTime"] == "2026-12-01T09:15:00+08:00" and not _marked(o), o
    made = http.get("/fhir/Observation", params={"identifier": "urn:example:poct|RV43F-POCT-1"}).json()
    (poct,) = [e["resource"] for e in made.get("entry") or ()]
    assert poct["effectiveDateTime"] == "2026-12-01T07:00:00+08:00" and not _marked(poct), poct
    assert ack_code_of(post(http, _lab("RV43FT2", "LRV43FT", "RV43FTC", "20261201084000"))) == "AA"
    assert _obs(http, "RV43FTC")["effectiveDateTime"] == "2026-12-01T09:15:00+08:00"


def test_a_patch_is_refused_clearly_never_500(http: TestClient) -> None:
    """(Guard.) PATCH of a result (JSON Patch adding the mark) is not supported: a 4xx OperationOutcome, the
    stored result unchanged."""
    assert ack_code_of(post(http, _lab("RV43FP1", "LRV43FP", "RV43FPC", "20261201083000"))) == "AA"
    o = _obs(http, "RV43FPC")
    patch = [{"op": "replace", "path": "/effectiveDateTime", "value": "2026-12-01T07:00:00+08:00"}]
    r = http.patch(f"/fhir/Observation/{o['id']}", content=json.dumps(patch),
                   headers={"Content-Type": "application/json-patch+json"})
    assert 400 <= r.status_code < 500 and r.json()["resourceType"] == "OperationOutcome", r.text
    assert _obs(http, "RV43FPC") == o


def test_an_order_coded_by_its_modality_alone_names_no_relayed_report(relayed: TestClient) -> None:
    """(Guard.) Behind the relay an order whose OBR-4 is empty (IPC-5 CT its only code) has no test code: no
    forwarded report of the number is "coded as the order's test" by the modality both carry (DICOM CT): another
    filler's forwarded exam (US001, OBR-24 CT) is not filed on it. (Fails without acsn43c's ``_test_codings``.)"""
    mrn, number = "RV43FE", "20261201066"
    omi = _as("ESB", _omi("RV43FE1", mrn, "RV43FPE", number, "20261201090000", "1.2.156.4346.6")).replace(
        "|CT009^头颅CT平扫^L|||20261201090000\r", "||||20261201090000\r")
    ack = post(relayed, omi)
    assert ack_code_of(ack) == "AA", ack
    ack = post(relayed, _imaging("RV43FE2", mrn, number, "ESB", "US001^腹部彩超^L", "CT", "未见异常"))
    assert ack_code_of(ack) == "AA", ack
    assert _based_on(relayed, _order(relayed, "RV43FPE")) == []
