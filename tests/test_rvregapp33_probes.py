"""rvregapp33's probes of regapp33 (who may restate a person: ``persons._registered``, ``_writers``,
``check_persons``, ``_may_restate``, ``MessageStore.filed``, ``institutions.yaml``
``registration_applications``) and of the lead's follow-ups on main (``persons.unregistered`` asked by
the take-over, ``site._check_registration_applications``).

Real HL7 over ``POST /hl7v2`` (and batches), the operator's replay over ``POST /admin/quarantine/{id}/replay``,
FHIR over ``/fhir``, into real stores (SQLite; the mongomock store where marked). A probe showing a defect
is a strict xfail naming its severity; a probe that passes guards behaviour worth keeping."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import conflict_id, message_id
from tests.hl7_calls import module_engine, module_http, post  # noqa: F401 -- the module's engine and client
from tests.identity39_calls import engine_and_client
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_regapp33_registration_apps import declared  # noqa: F401 -- the site declaring [HIS, TJXT]
from tests.test_rvidentity32_probes import MRN, adt, merge, oru, patients

REPO_ROOT = Path(__file__).resolve().parents[1]


def _ops(engine: Engine) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("ops", "system/MessageHeader.cr")}


def _replay(engine: Engine, http: TestClient, doc_id: str, corrected: str | None = None) -> dict:
    r = http.post(f"/admin/quarantine/{doc_id}/replay", headers=_ops(engine),
                  **({"content": corrected.encode()} if corrected is not None else {}))
    assert r.status_code == 200, r.text
    return r.json()


def _msg(control: str, pid3: str, name: str, birth: str, sex: str, *, event: str = "A08", app: str = "HIS",
         facility: str = "FNXRMYY", msh9: str | None = None) -> str:
    """An ADT of ``facility``'s application ``app`` (MSH-9 ``msh9`` as sent, else ADT^<event>^ADT_A01)."""
    kind = msh9 if msh9 is not None else f"ADT^{event}^ADT_A01"
    return (f"MSH|^~\\&|{app}|{facility}|HUREN|FNYGT|20261201091500||{kind}|{control}|P|2.5.1\r"
            f"EVN|{event}|20261201091500\rPID|1||{pid3}||{name}||{birth}|{sex}\rPV1|1|O\r")


def _gender(http: TestClient, number: str) -> list[str]:
    return [p.get("gender") for p in patients(http, f"{MRN}|{number}")]


# --- another member institution's application of the same name ---------------------------------------


def test_another_institutions_his_never_restates_this_institutions_record(http: TestClient) -> None:
    """FNXRMYY's HIS registers RVX (its own MRN). FNZYY's HIS -- another member hospital, whose registration
    system is also called "HIS" (the usual name) -- sends an A08 naming FNXRMYY's number (PID-3 CX-4
    FNXRMYY) with another person's name, sex and birth date. ``_registered`` now reads the institution
    from the Provenance (not the sender) and compares applications by MSH-3 alone, so the two "HIS" would
    compare equal: what keeps this safe is that a record's key is institution-local
    (``common.patient_key``), so FNZYY's message never resolves to FNXRMYY's record. Guarded: FNXRMYY's
    record is not restated."""
    assert ack_code_of(post(http, adt("RVX1", "RVX^^^FNXRMYY^MR", "郑^一", "19600101", "M"))) == "AA"
    (his,) = patients(http, f"{MRN}|RVX")
    post(http, _msg("RVX2", "RVX^^^FNXRMYY^MR", "王^二", "19900202", "F", facility="FNZYY"))
    now = http.get(f"/fhir/Patient/{his['id']}").json()
    assert now["gender"] == "male" and now["name"][0]["text"] == "郑一", now


# --- the operator's replay of a corrected message ---------------------------------------------------


def test_a_registration_replayed_with_its_msh9_corrected_is_read_as_a_registration(
        engine: Engine, http: TestClient) -> None:
    """The HIS's A04 of RVT is sent with a typo in MSH-9 (``ADT^A4``): AR, kept. The operator replays it
    corrected (``ADT^A04``, same MSH-3/4/10 as the replay requires): filed, the record registered by the
    HIS. A LIS result follows. The LIS's A08 restating RVT as another person must be refused (the HIS
    registered it); the HIS's own accepted with the W."""
    sent = _msg("RVT1", "RVT^^^FNXRMYY^MR", "冯^一", "19610101", "M", event="A04", msh9="ADT^A4^ADT_A01")
    assert ack_code_of(post(http, sent)) == "AR"
    fixed = _msg("RVT1", "RVT^^^FNXRMYY^MR", "冯^一", "19610101", "M", event="A04")
    assert _replay(engine, http, message_id("FNXRMYY", "RVT1"), fixed)["ack_code"] == "AA"
    assert ack_code_of(post(http, oru("RVT2", "RVT^^^FNXRMYY^MR", "冯^一", "19610101", "M", "RVTGLU"))) == "AA"
    ack = post(http, _msg("RVT3", "RVT^^^FNXRMYY^MR", "褚^三", "19930303", "F", app="LIS"))
    assert ack_code_of(ack) == "AE", ack
    assert _gender(http, "RVT") == ["male"]


def _conflict_replayed(engine: Engine, http: TestClient, p: str) -> None:
    """The probe below, records ``<p>C`` and ``<p>D``."""
    assert ack_code_of(post(http, adt(f"{p}C1", f"{p}C^^^FNXRMYY^MR", "蒋^四", "19640404", "M"))) == "AA"
    assert ack_code_of(post(http, oru(f"{p}C2", f"{p}C^^^FNXRMYY^MR", "蒋^四", "19640404", "M", f"{p}GLU"))) == "AA"
    second = adt(f"{p}C1", f"{p}D^^^FNXRMYY^MR", "沈^五", "19950505", "F")
    assert ack_code_of(post(http, second)) == "AE"
    conflict = engine.ingestor.messages.get(conflict_id(message_id("FNXRMYY", f"{p}C1"),
                                                         hashlib.sha256(second.encode()).hexdigest()))
    assert conflict is not None and conflict["status"] == "quarantined", conflict
    assert _replay(engine, http, conflict["_id"])["ack_code"] == "AA"
    ack = post(http, _msg(f"{p}C3", f"{p}C^^^FNXRMYY^MR", "韩^六", "19660606", "F", app="LIS"))
    assert ack_code_of(ack) == "AE", ack
    assert _gender(http, f"{p}C") == ["male"]


def test_a_conflict_replayed_by_the_operator_does_not_unregister_the_first_messages_record(
        engine: Engine, http: TestClient) -> None:
    """The HIS registers RVC (MSH-10 RVC1), a LIS result follows. The HIS's counter restarts: its next A04
    (another patient, RVD) reuses MSH-10 RVC1 -- a conflict, kept. The operator replays the conflict
    (it is a real registration): filed. RVC's registration is still the HIS's A04: the LIS's A08
    restating RVC as another person must be refused."""
    _conflict_replayed(engine, http, "RV")


# --- the Provenance a FHIR client changes -----------------------------------------------------------


def _registration_provenance(engine: Engine, control: str) -> str:
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
    assert doc is not None
    (prov,) = [r for r in doc["resources"] if r.startswith("Provenance/")]
    return prov


def test_a_registration_provenance_deleted_over_fhir_does_not_open_the_record_to_any_application(
        engine: Engine, http: TestClient) -> None:
    """The HIS registers RVF, a LIS result follows. A FHIR client deletes the registration's Provenance
    (a system token's ``DELETE /fhir/Provenance/<id>``). The record is the HIS's registration still
    (its Patient was written by ADT^A04): the LIS's A08 restating RVF as another person refused."""
    assert ack_code_of(post(http, adt("RVF1", "RVF^^^FNXRMYY^MR", "许^一", "19710101", "M"))) == "AA"
    assert ack_code_of(post(http, oru("RVF2", "RVF^^^FNXRMYY^MR", "许^一", "19710101", "M", "RVFGLU"))) == "AA"
    r = http.delete(f"/fhir/{_registration_provenance(engine, 'RVF1')}")
    assert r.status_code in (200, 204), r.text
    ack = post(http, _msg("RVF3", "RVF^^^FNXRMYY^MR", "何^二", "19820202", "F", app="LIS"))
    assert ack_code_of(ack) == "AE", ack
    assert _gender(http, "RVF") == ["male"]


def test_a_registration_provenance_retargeted_over_fhir_does_not_make_the_his_another_records_registrar(
        engine: Engine, http: TestClient) -> None:
    """The HIS registers RVG, then the LIS registers RVH (some LIS send their own A04 under the
    institution's number). A FHIR client PUTs the HIS's registration Provenance with RVH as its target. The HIS
    did not register RVH: its A08 restating RVH as another person must be refused (only the LIS may)."""
    assert ack_code_of(post(http, adt("RVG1", "RVG^^^FNXRMYY^MR", "吕^一", "19710101", "M"))) == "AA"
    assert ack_code_of(post(http, adt("RVH0", "RVH^^^FNXRMYY^MR", "施^二", "19720202", "M", app="LIS"))) == "AA"
    (rvh,) = patients(http, f"{MRN}|RVH")
    ref = _registration_provenance(engine, "RVG1")
    prov = http.get(f"/fhir/{ref}").json()
    prov["target"] = [{"reference": f"Patient/{rvh['id']}"}]
    r = http.put(f"/fhir/{ref}", json=prov)
    assert r.status_code in (200, 201), r.text
    ack = post(http, _msg("RVH1", "RVH^^^FNXRMYY^MR", "张^三", "19930303", "F"))
    assert ack_code_of(ack) == "AE", ack
    assert _gender(http, "RVH") == ["male"]


# --- how the Provenance names its message -----------------------------------------------------------


@pytest.mark.parametrize("control", ["RVS1 ", "RV\\T\\S2", "RVS3^X"], ids=["trailing-space", "escape", "component"])
def test_the_registrar_restates_its_record_whatever_its_msh10_looks_like(http: TestClient, control: str) -> None:
    """The HIS registers a record under an MSH-10 the header reads otherwise than the parser (trailing
    space trimmed, an escape or a component kept raw): its own A08 restating the record as another
    person is accepted with the W -- the registration is found."""
    number = "RVS" + str(len(control))
    assert ack_code_of(post(http, adt(control, f"{number}^^^FNXRMYY^MR", "孔^一", "19610101", "M"))) == "AA"
    ack = post(http, _msg(f"{number}B", f"{number}^^^FNXRMYY^MR", "曹^二", "19920202", "F"))
    assert ack_code_of(ack) == "AA" and b"restated as another person" in ack, ack


def test_the_registrar_sending_under_its_msh4_alias_restates_its_record(http: TestClient) -> None:
    """MSH-4 the institution's name (senders.yaml facility_aliases): the document's facility and the
    Provenance's institution are both the resolved code, so the HIS's A08 finds its registration."""
    assert ack_code_of(post(http, _msg("RVA1", "RVA^^^FNXRMYY^MR", "严^一", "19610101", "M", event="A04",
                                       facility="阜宁县人民医院"))) == "AA"
    ack = post(http, _msg("RVA2", "RVA^^^FNXRMYY^MR", "华^二", "19920202", "F", facility="阜宁县人民医院"))
    assert ack_code_of(ack) == "AA" and b"restated as another person" in ack, ack
    ack = post(http, _msg("RVA3", "RVA^^^FNXRMYY^MR", "金^三", "19930303", "M", app="LIS", facility="阜宁县人民医院"))
    assert ack_code_of(ack) == "AE", ack


# --- a site declaring its registration applications ------------------------------------------------


def test_a_declared_site_never_lets_an_undeclared_lis_restate_a_record_the_his_registered(
        declared: TestClient) -> None:  # noqa: F811 -- the imported fixture
    """Some LIS send their own A04 under the institution's number (a lab walk-in before the HIS's
    registration reaches huren). The site declared [HIS, TJXT] as the systems saying who a person is:
    the LIS's later A08 restating RVL as another person is refused, the HIS's accepted with the W."""
    assert ack_code_of(post(declared, adt("RVL1", "RVL^^^FNXRMYY^MR", "魏^一", "19610101", "M", app="LIS"))) == "AA"
    assert ack_code_of(post(declared, adt("RVL2", "RVL^^^FNXRMYY^MR", "魏^一", "19610101", "M"))) == "AA"
    ack = post(declared, adt("RVL3", "RVL^^^FNXRMYY^MR", "陶^二", "19920202", "F", event="A08", app="LIS"))
    assert ack_code_of(ack) == "AE", ack
    assert _gender(declared, "RVL") == ["male"]
    ack = post(declared, adt("RVL4", "RVL^^^FNXRMYY^MR", "陶^二", "19920202", "F", event="A08"))
    assert ack_code_of(ack) == "AA" and b"restated as another person" in ack, ack


def test_a_declared_site_refuses_an_undeclared_restatement_of_a_placeholder_in_a_batch(
        declared: TestClient) -> None:  # noqa: F811 -- the imported fixture
    """A LIS result made RVP's placeholder; one LIS batch then sends a result and an A08 restating RVP as
    another person: refused as alone (the batch's result registers nothing), the record unchanged."""
    assert ack_code_of(post(declared, oru("RVP1", "RVP^^^FNXRMYY^MR", "姜^一", "19610101", "M", "RVPGLU"))) == "AA"
    batch = ("FHS|^~\\&|LIS|FNXRMYY\rBHS|^~\\&|LIS|FNXRMYY\r"
             + oru("RVP2", "RVP^^^FNXRMYY^MR", "姜^一", "19610101", "M", "RVPGLU")
             + adt("RVP3", "RVP^^^FNXRMYY^MR", "戚^二", "19920202", "F", event="A08", app="LIS")
             + "BTS|2\rFTS|1\r")
    ack = post(declared, batch)
    assert b"MSA|AA|RVP2" in ack and b"MSA|AE|RVP3" in ack, ack
    assert _gender(declared, "RVP") == ["male"]


# --- both backends ----------------------------------------------------------------------------------


both = engine_and_client("rv")


def test_the_first_registration_received_across_applications_on_each_backend(
        both: tuple[Engine, TestClient]) -> None:
    """SQLite and mongomock: ``MessageStore.filed`` answers every application's filed document of a pair
    (the HIS's under ``message_id``, the LIS's under ``sender_id`` -- both used MSH-10 RVB1) and a refused
    one is not among them. The HIS registers RVB with RVB1; the LIS registers its own RVE with RVB1 too.
    RVB's registrar is the HIS, RVE's the LIS: each restates its own record only."""
    engine, http = both
    assert ack_code_of(post(http, adt("RVB1", "RVB^^^FNXRMYY^MR", "邹^一", "19610101", "M"))) == "AA"
    assert ack_code_of(post(http, adt("RVB1", "RVE^^^FNXRMYY^MR", "喻^二", "19620202", "F", app="LIS"))) == "AA"
    ack = post(http, adt("RVB2", "RVB^^^FNXRMYY^MR", "柏^三", "19930303", "F", event="A08", app="LIS"))
    assert ack_code_of(ack) == "AE", ack
    ack = post(http, adt("RVB3", "RVE^^^FNXRMYY^MR", "水^四", "19940404", "M", event="A08"))
    assert ack_code_of(ack) == "AE", ack
    ack = post(http, adt("RVB4", "RVE^^^FNXRMYY^MR", "水^四", "19940404", "M", event="A08", app="LIS"))
    assert ack_code_of(ack) == "AA" and b"restated as another person" in ack, ack
    ack = post(http, adt("RVB5", "RVB^^^FNXRMYY^MR", "柏^三", "19930303", "F", event="A08"))
    assert ack_code_of(ack) == "AA" and b"restated as another person" in ack, ack


def test_the_replayed_conflict_on_each_backend(both: tuple[Engine, TestClient]) -> None:
    engine, http = both
    _conflict_replayed(engine, http, "RVK")


# --- the take-over's question (``persons.unregistered``, the lead's follow-up) ----------------------


def _pv1(visit: str, kind: str = "O") -> str:
    return "|".join(["PV1", "1", kind] + [""] * 16 + [visit]) + "\r"


def _visit_msg(control: str, pid3: str, visit: str, *, msh9: str, kind: str = "O") -> str:
    event = msh9.split("^")[1]
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||{msh9}|{control}|P|2.5.1\r"
            f"EVN|{event}|20261201091500\rPID|1||{pid3}||卫^一||19610101|M\r" + _pv1(visit, kind))


def test_a_record_registered_by_a_corrected_replay_is_not_a_placeholder_to_take_over(
        engine: Engine, http: TestClient) -> None:
    """The HIS registers the LIS-numbered RVQL (A04 sent as ``ADT^A4``, AR, replayed corrected), a LIS result
    names RVQL under visit RVQV1, then the HIS admits its own record RVQM under RVQV1: a registered record's
    visit is not a lab's stand-in (visit33's ``test_a_registered_record_is_not_taken_over``): AE at PV1-19,
    the visit stays RVQL's."""
    lab = "RVQL^^^LIS^PI"
    assert ack_code_of(post(http, _visit_msg("RVQ1", lab, "RVQV9", msh9="ADT^A4^ADT_A01"))) == "AR"
    fixed = _visit_msg("RVQ1", lab, "RVQV9", msh9="ADT^A04^ADT_A01")
    assert _replay(engine, http, message_id("FNXRMYY", "RVQ1"), fixed)["ack_code"] == "AA"
    result = (oru("RVQ2", lab, "卫^一", "19610101", "M", "RVQGLU").replace("\rOBR|", "\r" + _pv1("RVQV1") + "OBR|", 1))
    assert ack_code_of(post(http, result)) == "AA"
    ack = post(http, _visit_msg("RVQ3", "RVQM^^^FNXRMYY^MR", "RVQV1", msh9="ADT^A01^ADT_A01", kind="I"))
    assert ack_code_of(ack) == "AE" and b"PV1^1^19" in ack, ack


def test_a_registered_lab_numbered_record_is_not_taken_over(engine: Engine, http: TestClient) -> None:
    """The control of the probe above, through this module's messages: the A04 sent right the first time,
    the admission of another record under the result's visit refused at PV1-19; and with no A04 at all
    (a placeholder), the take-over happens -- so the probe above can fail only on the registration."""
    lab = "RVWL^^^LIS^PI"
    assert ack_code_of(post(http, _visit_msg("RVW1", lab, "RVWV9", msh9="ADT^A04^ADT_A01"))) == "AA"
    result = oru("RVW2", lab, "卫^一", "19610101", "M", "RVWGLU").replace("\rOBR|", "\r" + _pv1("RVWV1") + "OBR|", 1)
    assert ack_code_of(post(http, result)) == "AA"
    ack = post(http, _visit_msg("RVW3", "RVWM^^^FNXRMYY^MR", "RVWV1", msh9="ADT^A01^ADT_A01", kind="I"))
    assert ack_code_of(ack) == "AE" and b"PV1^1^19" in ack, ack
    placeholder = "RVYL^^^LIS^PI"
    result = oru("RVY2", placeholder, "卫^一", "19610101", "M", "RVYGLU").replace(
        "\rOBR|", "\r" + _pv1("RVYV1") + "OBR|", 1)
    assert ack_code_of(post(http, result)) == "AA"
    ack = post(http, _visit_msg("RVY3", "RVYM^^^FNXRMYY^MR", "RVYV1", msh9="ADT^A01^ADT_A01", kind="I"))
    assert ack_code_of(ack) == "AA", ack


# --- a record merged (A40) --------------------------------------------------------------------------


def test_the_survivor_of_the_his_merge_is_not_open_to_the_lis(http: TestClient) -> None:
    """The HIS registers RVMO, then merges it (A40, MRG-1 RVMO) into RVMN, a number the merge first names:
    the survivor is the HIS's record, its person stated by the HIS's registration and merge. The LIS's
    A08 restating RVMN as another person must be refused; the HIS's own accepted with the W."""
    assert ack_code_of(post(http, adt("RVM1", "RVMO^^^FNXRMYY^MR", "章^一", "19610101", "M"))) == "AA"
    assert ack_code_of(post(http, merge("RVM2", "RVMN^^^FNXRMYY^MR", "章^一", "19610101", "M",
                                        "RVMO^^^FNXRMYY^MR"))) == "AA"
    ack = post(http, _msg("RVM3", "RVMN^^^FNXRMYY^MR", "鲁^二", "19920202", "F", app="LIS"))
    assert ack_code_of(ack) == "AE", ack
    ack = post(http, _msg("RVM4", "RVMN^^^FNXRMYY^MR", "鲁^二", "19920202", "F"))
    assert ack_code_of(ack) == "AA" and b"restated as another person" in ack, ack
