"""rv43e: review probes of plan43 (a compiled plan says again the deletes its first conversion said) and acsn43b
(an accession's assigner).

Real HL7 v2 bytes through ``POST /hl7v2`` into a real engine and store, read back over ``/fhir``. A probe that shows
a defect is a strict xfail naming its severity; the others guard what the review found sound."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.convert import Conversion
from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.messages import message_id
from engine.settings import Settings
from tests.hl7_calls import err_lines, post
from tests.module_store import module_eng  # noqa: F401 -- the module's engine, on each backend
from tests.test_a40b41_carried import opened
from tests.test_acsn43_accession import HDR, _kind, _omi, _order, _report
from tests.test_acsn43b_assigner import _based_on
from tests.test_ord40_owner_decision import _aliased, _client, _engine_on
from tests.test_order35_as_later import _operator
from tests.test_plan43_deletes import (
    DIRECTOR,
    OBSERVER,
    PANEL,
    _captured,
    _message,
    _observations_said,
    _stored,
)

BOTH = pytest.mark.parametrize("backend_settings", ["sqlite", "mongomock"], indirect=True)
SQLITE = pytest.mark.parametrize("backend_settings", ["sqlite"], indirect=True)


def _elsewhere(settings: Settings, name: str) -> Settings:
    """Another store (a fresh site's plans: another Engine, another site object) beside ``settings``'."""
    return settings.with_(data_dir=settings.data_dir.with_name(name),
                          **({"mongodb_db": f"rv43e_{name}"} if settings.mongodb_uri else {}))


def _pair(http: TestClient, made: list[Conversion], mrn: str, n: int, final: dict[int, str],
          correction: dict[int, str]) -> Conversion:
    """``mrn``'s final then its correction (control ids by ``n``), both AA; the correction's conversion."""
    for status, fields, stamp in (("F", final, "091500"), ("C", correction, "101500")):
        ack = post(http, _message(f"RV43E{status}{n}{stamp}", mrn, status, fields))
        assert ack_code_of(ack) == "AA", ack
    return made[-1]


def _planned(conversion: Conversion) -> list[str]:
    return [r for r in conversion.planned if r.startswith("Observation/")]


# --- plan43: plan vs general path over corrections with "" in other fields ---------------------------------------

# final's fields, correction's fields
NULLS: dict[str, tuple[dict[int, str], dict[int, str]]] = {
    "obx6-null": ({}, {6: '""'}),
    "obx16-obx6-null": ({16: OBSERVER}, {6: '""', 16: '""'}),
    "obx16-obx17-null": ({16: OBSERVER, 17: "ISE^离子选择电极^L"}, {16: '""', 17: '""'}),
    "obx25-obx8-null": ({8: "H", 25: DIRECTOR}, {8: '""', 25: '""'}),
    "obx16-null-obx25-named-new": ({16: OBSERVER, 25: DIRECTOR}, {16: '""', 25: "2002^李^主任"}),
    "obx16-null-repeated": ({16: OBSERVER}, {16: '""~""'}),
}


@BOTH
@pytest.mark.parametrize("case", sorted(NULLS))
def test_plan_and_general_path_store_and_say_the_same_with_nulls_in_other_fields(
        backend_settings: Settings, case: str) -> None:
    """As plan43's differential, over ``""`` in fields its corpus did not put beside OBX-16/25: the stored versions
    and ``Conversion.said`` equal whether the correction's shape was met before (two patients) or not."""
    final, correction = NULLS[case]
    with opened(backend_settings) as (engine, http):
        made = _captured(engine)
        ordinary = _pair(http, made, "RV43EX", 9, final, correction)
        assert not _planned(ordinary), case
        general = _stored(http, "RV43EX")
    with opened(_elsewhere(backend_settings, "learnt")) as (engine, http):
        made = _captured(engine)
        for n, mrn in enumerate(("RV43ET1", "RV43ET2")):
            _pair(http, made, mrn, n, final, correction)
        learnt = _pair(http, made, "RV43EX", 9, final, correction)
        compiled = _stored(http, "RV43EX")
    assert len(_planned(learnt)) == (2 if 8 in correction else len(PANEL)), case  # (compared: the plan path)
    assert general == compiled, case
    assert _observations_said(learnt) == _observations_said(ordinary), case


@BOTH
def test_a_plan_learnt_from_a_null_never_deletes_for_a_message_without_it(backend_settings: Settings) -> None:
    """The site learns the shape of a correction sending OBX-16 ``""`` (the observer withdrawn) from two patients;
    then a third patient's correction names no observer (OBX-16 empty: nothing said of it) -- its stored observer
    stays, exactly as on a site that never learnt the ``""`` shape. And the reverse: a plan learnt from corrections
    leaving OBX-16 empty, then one sending ``""``, deletes."""
    observer = {16: OBSERVER}
    with opened(backend_settings) as (engine, http):
        made = _captured(engine)
        for n, mrn in enumerate(("RV43EL1", "RV43EL2")):  # (the "" shape learnt)
            _pair(http, made, mrn, n, observer, {16: '""'})
        first_thin = _pair(http, made, "RV43EL3", 3, observer, {})  # (another key: the ordinary path)
        assert not _planned(first_thin)
        for n, mrn in enumerate(("RV43EM1", "RV43EM2"), 4):  # (the empty shape learnt too)
            _pair(http, made, mrn, n, observer, {})
        thin = _pair(http, made, "RV43EL4", 6, observer, {})
        deleting = _pair(http, made, "RV43EM3", 7, observer, {16: '""'})
        assert _planned(thin) and _planned(deleting)
        stored = _stored(http, "RV43EL3") + _stored(http, "RV43EL4")
        withdrawn = _stored(http, "RV43EM3")
    for versions in stored:
        assert [p["reference"] for p in versions[-1]["performer"] if p["reference"].startswith("Practitioner/")], \
            versions[-1]
    for versions in withdrawn:
        assert not [p for p in versions[-1].get("performer") or () if p["reference"].startswith("Practitioner/")], \
            versions[-1]


def _batch(*messages: str) -> str:
    return ("FHS|^~\\&|LIS|FNXRMYY\rBHS|^~\\&|LIS|FNXRMYY\r" + "".join(messages)
            + f"BTS|{len(messages)}\rFTS|1\r")


@BOTH
def test_a_batch_of_finals_and_corrections_with_nulls_stores_as_one_by_one(backend_settings: Settings) -> None:
    """Three patients' finals and corrections (OBX-16 and OBX-25 ``""``) in one FHS/BHS batch -- the third's planned
    from the shape the first two taught within the batch -- store every version as the same messages sent one by
    one on a site that never met the shape."""
    final, correction = {16: OBSERVER, 25: DIRECTOR}, {16: '""', 25: '""'}
    messages = []
    for n, mrn in enumerate(("RV43EB1", "RV43EB2", "RV43EB3")):
        messages += [_message(f"RV43EBF{n}091500", mrn, "F", final), _message(f"RV43EBC{n}101500", mrn, "C", correction)]
    with opened(backend_settings) as (engine, http):
        for message in messages:
            assert ack_code_of(post(http, message)) == "AA"
        one_by_one = [_stored(http, mrn) for mrn in ("RV43EB1", "RV43EB2", "RV43EB3")]
    with opened(_elsewhere(backend_settings, "batch")) as (engine, http):
        made = _captured(engine)
        ack = post(http, _batch(*messages))
        assert ack.count(b"MSA|AA|") == len(messages), ack
        batched = [_stored(http, mrn) for mrn in ("RV43EB1", "RV43EB2", "RV43EB3")]
    assert any(_planned(c) for c in made), "nothing planned in the batch: the probe compares the ordinary path"
    assert batched == one_by_one
    for versions in batched[2]:
        assert [len(v.get("performer") or ()) for v in versions][-1] <= 1, versions  # (the lab's org at most)


@SQLITE
def test_two_sites_in_one_process_keep_their_own_plans(backend_settings: Settings) -> None:
    """Two engines (two sites) in one process: the first learns the OBX-16 ``""`` shape; the second, which never
    met it, deletes on its own first conversion and stores what the first stores."""
    final, correction = {16: OBSERVER}, {16: '""'}
    with opened(backend_settings) as (one, http_one), opened(_elsewhere(backend_settings, "two")) as (two, http_two):
        made_one, made_two = _captured(one), _captured(two)
        for n, mrn in enumerate(("RV43ES1", "RV43ES2")):
            _pair(http_one, made_one, mrn, n, final, correction)
        planned = _pair(http_one, made_one, "RV43ESX", 9, final, correction)
        fresh = _pair(http_two, made_two, "RV43ESX", 9, final, correction)
        assert _planned(planned) and not _planned(fresh)
        assert _stored(http_one, "RV43ESX") == _stored(http_two, "RV43ESX")
        assert len(PANEL) == len(_stored(http_two, "RV43ESX"))


# --- acsn43b: an accession's assigner --------------------------------------------------------------------------

HOSPITAL_OID = "1.2.156.112604.1.2.4343"  # the hospital's OID, which this site's every MSH-3 and EI carries


@pytest.fixture(scope="module")
def http(module_eng: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(module_eng)) as client:
        client.headers["Authorization"] = "Bearer " + module_eng.auth.issue_system_token("rv43e", "system/*.cruds")
        yield client


def _as(app: str, message: str) -> str:
    """``message`` (MSH-3 RIS) as application ``app`` sends it."""
    return message.replace("MSH|^~\\&|RIS|", f"MSH|^~\\&|{app}|", 1)


def _imaging(control: str, mrn: str, number: str, app: str, code: str = "US001^腹部彩超^L", modality: str = "US",
             text: str = "肝胆脾未见异常") -> str:
    """An imaging filler's report (OBR-24 ``modality``) of its exam coded ``code`` by its number alone (OBR-3)."""
    return (HDR.format(app=app, stamp="20261201110000", kind="ORU^R01^ORU_R01", control=control)
            + f"PID|1||{mrn}^^^FNXRMYY^MR||孙^丙||19700109|M\r"
            f"OBR|1||{number}|{code}|||20261201100000|||||||||||||||20261201110000||{modality}|F\r"
            f"OBX|1|TX|{code}||{text}||||||F|||20261201110000\r")


def _another_test(ack: bytes) -> bool:
    """The ACK's one ERR is the W that the report, filed on the order, is coded as another test than ordered."""
    (err,) = err_lines(ack)
    return err.startswith("ERR||OBR^1^4|0^") and "names another test than ordered" in err


def _assigners(order: dict[str, Any]) -> list[Any]:
    return [(i.get("assigner") or {}).get("identifier", {}).get("value") for i in order["identifier"]
            if _kind(i) == "ACSN"]


def test_an_oid_alone_in_obr3_is_not_the_assigning_ris(http: TestClient) -> None:
    """(rv43e HIGH 2, fixed by acsn43c.) At a site whose every HD carries the hospital's OID, the ultrasound
    system's report under its own number ``<n>^^<OID>^ISO`` is not filed on the head CT order the RIS
    (``RIS^<OID>^ISO``) assigned ``<n>`` to: an OID alone names no application (``applications.names_one``)."""
    mrn, number = "RV43EO", "20261201031"
    omi = _as(f"RIS^{HOSPITAL_OID}^ISO", _omi("RV43EO1", mrn, "RV43EPO", number, "20261201090000", "1.2.156.4345.1"))
    assert ack_code_of(post(http, omi)) == "AA"
    assert _assigners(_order(http, "RV43EPO")) == [f"RIS^{HOSPITAL_OID}^ISO"]
    ack = post(http, _imaging("RV43EO2", mrn, f"{number}^^{HOSPITAL_OID}^ISO", f"USIS^{HOSPITAL_OID}^ISO"))
    assert ack_code_of(ack) == "AA", ack
    assert _based_on(http, _order(http, "RV43EPO")) == []


def test_an_oid_alone_in_ipc1_still_takes_the_ris_report_by_its_code(http: TestClient) -> None:
    """(Guard.) The HIS's order whose IPC-1 names the hospital's OID alone: the RIS's report of the ordered test
    by the accession alone is the order's."""
    mrn, number = "RV43EI", "20261201032"
    omi = _as("HIS", _omi("RV43EI1", mrn, "RV43EPI", number, "20261201090000", "1.2.156.4345.2")).replace(
        f"IPC|{number}|", f"IPC|{number}^^{HOSPITAL_OID}^ISO|")
    assert ack_code_of(post(http, omi)) == "AA"
    ack = post(http, _report("RV43EI2", mrn, number, "20261201093000", "F", "未见异常", "20261201110000"))
    assert ack_code_of(ack) == "AA" and err_lines(ack) == [], ack
    assert _based_on(http, _order(http, "RV43EPI")) == ["未见异常"]


def test_a_later_omi_defaulting_the_assigner_keeps_the_one_stated(http: TestClient) -> None:
    """(rv43e MED 2, fixed by acsn43c.) The HIS re-sending the RIS's order with the accession bare -- held at OBR-4
    as not the order's placer -- leaves the assigner RIS: a defaulted assigner never replaces a recorded one
    (``settle_assigners``)."""
    mrn, number = "RV43ED", "20261201033"
    omi = _omi("RV43ED1", mrn, "RV43EPD", number, "20261201090000", "1.2.156.4345.3")
    assert ack_code_of(post(http, omi)) == "AA"
    assert _assigners(_order(http, "RV43EPD")) == ["RIS"]
    ack = post(http, _as("HIS", omi.replace("|RV43ED1|", "|RV43ED2|")))
    # (the HIS's re-send states nothing the order does not hold: with the assigner kept it changes nothing, and
    # no W is owed -- before acsn43c its defaulted assigner HIS was written over the RIS and the OMI was held at
    # OBR-4 for the rest)
    assert ack_code_of(ack) == "AA" and err_lines(ack) == [], ack
    assert _assigners(_order(http, "RV43EPD")) == ["RIS"]
    # the HIS's re-send stating another test: held at OBR-4 as not the order's placer, the assigner still the RIS
    ack = post(http, _as("HIS", omi.replace("|RV43ED1|", "|RV43ED3|").replace("CT009^头颅CT平扫", "CT010^头颅CT增强")))
    assert ack_code_of(ack) == "AA" and "W||||OBR-4: ORC-1 NW is the placer's statement" in err_lines(ack)[0], ack
    assert _assigners(_order(http, "RV43EPD")) == ["RIS"]
    # a stated assigner is the message's word: IPC-1 <n>^RIS2 (the RIS renamed) replaces it
    ack = post(http, omi.replace("|RV43ED1|", "|RV43ED4|").replace(f"IPC|{number}|", f"IPC|{number}^RIS2|"))
    assert ack_code_of(ack) == "AA", ack
    assert _assigners(_order(http, "RV43EPD")) == ["RIS2"]


def test_the_ris_report_coded_otherwise_names_the_order_it_assigned(http: TestClient) -> None:
    """(Guard of the drift probe's premise.) Without the HIS's re-send, the RIS's imaging report coded CT010 by the
    accession alone is the CT009 order's (acsn43's rule for the assigner)."""
    mrn, number = "RV43EC", "20261201034"
    assert ack_code_of(post(http, _omi("RV43EC1", mrn, "RV43EPC", number, "20261201090000",
                                       "1.2.156.4345.4"))) == "AA"
    ack = post(http, _imaging("RV43EC3", mrn, number, "RIS", "CT010^头颅CT增强^L", "CT", "未见异常"))
    assert ack_code_of(ack) == "AA" and _another_test(ack), ack
    assert _based_on(http, _order(http, "RV43EPC")) == ["未见异常"]


def test_the_ipc1_namespace_in_another_case_is_the_reporting_ris(http: TestClient) -> None:
    """IPC-1 ``<n>^ris`` (HIS's OMI) and the RIS's report (MSH-3 ``RIS``) coded otherwise: one application (HD-1
    case aside), the order's."""
    mrn, number = "RV43EK", "20261201035"
    omi = _as("HIS", _omi("RV43EK1", mrn, "RV43EPK", number, "20261201090000", "1.2.156.4345.5")).replace(
        f"IPC|{number}|", f"IPC|{number}^ris|")
    assert ack_code_of(post(http, omi)) == "AA"
    ack = post(http, _imaging("RV43EK2", mrn, number, "RIS", "CT010^头颅CT增强^L", "CT", "未见异常"))
    assert ack_code_of(ack) == "AA" and _another_test(ack), ack
    assert _based_on(http, _order(http, "RV43EPK")) == ["未见异常"]


@pytest.fixture(scope="module", params=["sqlite", "mongomock"])
def relayed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A site whose senders.yaml names ``ESB`` a relay of FNXRMYY (``relay_applications``, acsn43c)."""
    site = _aliased(tmp_path_factory.mktemp("rv43e-relay-site"), {})
    senders = site / "hl7v2" / "senders.yaml"
    senders.write_text(senders.read_text(encoding="utf-8").replace(
        "relay_applications: {}", "relay_applications: {FNXRMYY: [ESB]}"), encoding="utf-8")
    with _engine_on(request.param, tmp_path_factory.mktemp("rv43e-relayed"), site) as eng, \
            _client(eng, "rv43e") as client:
        yield client


def test_behind_a_relay_another_fillers_number_is_not_the_orders_accession(relayed: TestClient) -> None:
    """(rv43e MED 1, fixed by acsn43c where the site names its relay.) Behind an integration platform writing its
    own MSH-3 (ESB) on every message, the ultrasound system's report of its own exam under its own bare number is
    not filed on the head CT order whose accession the platform forwarded: a relay (senders.yaml
    ``relay_applications``) numbers nothing, so the accession is stored with no assigner and only a report coded as
    the order's test names the order by it -- the RIS's report of CT009, forwarded, does."""
    mrn, number = "RV43ER", "20261201036"
    omi = _as("ESB", _omi("RV43ER1", mrn, "RV43EPR", number, "20261201090000", "1.2.156.4345.6"))
    assert ack_code_of(post(relayed, omi)) == "AA"
    assert _assigners(_order(relayed, "RV43EPR")) == [None]
    ack = post(relayed, _imaging("RV43ER2", mrn, number, "ESB"))
    assert ack_code_of(ack) == "AA", ack
    assert _based_on(relayed, _order(relayed, "RV43EPR")) == []
    # (another order: after the ultrasound's report its bare number is the institution's -- acsn43b's known MED)
    mrn, number = "RV43EQ", "20261201038"
    omi = _as("ESB", _omi("RV43EQ1", mrn, "RV43EPQ", number, "20261201090000", "1.2.156.4345.8"))
    assert ack_code_of(post(relayed, omi)) == "AA"
    ack = post(relayed, _as("ESB", _report("RV43EQ2", mrn, number, "20261201093000", "F", "未见异常",
                                           "20261201110000")))
    assert ack_code_of(ack) == "AA" and err_lines(ack) == [], ack
    assert _based_on(relayed, _order(relayed, "RV43EPQ")) == ["未见异常"]


def test_another_ct_fillers_own_number_is_not_the_ris_orders_accession(http: TestClient) -> None:
    """(rv43e HIGH 1, fixed by acsn43c.) Another CT filler's chest CT under its own bare number of the RIS's
    accession's value is not the head CT order's: "coded as the order's test" compares the test codes, never
    the DICOM modality both carry (``_test_codings``)."""
    mrn, number = "RV43EM", "20261201037"
    assert ack_code_of(post(http, _omi("RV43EM1", mrn, "RV43EPM", number, "20261201090000",
                                       "1.2.156.4345.7"))) == "AA"
    ack = post(http, _imaging("RV43EM2", mrn, number, "ERCT", "CT020^胸部CT平扫^L", "CT", "双肺未见异常"))
    assert ack_code_of(ack) == "AA", ack
    assert _based_on(http, _order(http, "RV43EPM")) == []


ALIAS_OID = "1.2.156.112604.1.2.4343.9"  # the RIS's universal id since its interface moved (the site's alias)


@pytest.fixture(scope="module")
def aliased(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A site whose senders.yaml names ``RIS`` and ``^<ALIAS_OID>^ISO`` one application of FNXRMYY (SQLite)."""
    site = _aliased(tmp_path_factory.mktemp("rv43e-site"), {"FNXRMYY": [["RIS", f"^{ALIAS_OID}^ISO"]]})
    with _engine_on("sqlite", tmp_path_factory.mktemp("rv43e-aliased"), site) as eng, _client(eng, "rv43e") as client:
        yield client


@pytest.mark.parametrize("ordering, reporting", [("RIS", f"^{ALIAS_OID}^ISO"), (f"^{ALIAS_OID}^ISO", "RIS")],
                         ids=["name-then-oid", "oid-then-name"])
def test_an_alias_of_the_assigner_reports_by_the_accession(aliased: TestClient, ordering: str, reporting: str) -> None:
    """The accession assigned under one of the RIS's forms (MSH-3, bare IPC-1) and its report of the exam coded
    otherwise (CT010 for CT009) by the accession alone under the other form: one application (the site's alias
    group), the order's. (Guard: passes.)"""
    n = "1" if ordering == "RIS" else "2"
    mrn, number, placer = f"RV43EA{n}", f"2026120105{n}", f"RV43EPA{n}"
    assert ack_code_of(post(aliased, _as(ordering, _omi(f"{placer}1", mrn, placer, number, "20261201090000",
                                                         f"1.2.156.4345.9{n}")))) == "AA"
    ack = post(aliased, _imaging(f"{placer}3", mrn, number, reporting, "CT010^头颅CT增强^L", "CT", "未见异常"))
    assert ack_code_of(ack) == "AA" and _another_test(ack), ack
    assert _based_on(aliased, _order(aliased, placer)) == ["未见异常"]


def test_the_held_ultrasound_report_replayed_naming_its_application_is_its_own(module_eng: Engine,
                                                                                http: TestClient) -> None:
    """acsn43b's left MED (a bare filler number is the institution's): the ultrasound system's bare report after the
    RIS's report by the accession is refused AE 205, bytes kept. The operator's remedy -- the replay of a corrected
    copy naming its application in OBR-3 (``<n>^USIS``, same MSH-4/MSH-10) -- files it as the ultrasound's own exam
    and leaves the CT order its one report; a plain replay refuses it again. (Guard: passes.)"""
    mrn, number = "RV43EH", "20261201038"
    assert ack_code_of(post(http, _omi("RV43EH1", mrn, "RV43EPH", number, "20261201090000",
                                       "1.2.156.4345.10"))) == "AA"
    ack = post(http, _report("RV43EH2", mrn, number, "20261201093000", "F", "未见异常", "20261201110000"))
    assert ack_code_of(ack) == "AA" and err_lines(ack) == [], ack
    held = _imaging("RV43EH3", mrn, number, "USIS")
    ack = post(http, held)
    assert ack_code_of(ack) == "AE" and any("|205^" in e for e in err_lines(ack)), ack
    url = f"/admin/quarantine/{message_id('FNXRMYY', 'RV43EH3')}/replay"
    plain = http.post(url, headers=_operator(module_eng, "system/MessageHeader.cr", "rv43e-ops"))
    assert plain.status_code == 200 and plain.json()["ack_code"] == "AE", plain.text
    corrected = http.post(url, content=held.replace(f"OBR|1||{number}|", f"OBR|1||{number}^USIS|").encode(),
                          headers=_operator(module_eng, "system/MessageHeader.cr", "rv43e-ops"))
    assert corrected.status_code == 200 and corrected.json()["ack_code"] == "AA", corrected.text
    ct = _order(http, "RV43EPH")
    assert _based_on(http, ct) == ["未见异常"]
    assert _assigners(ct) == ["RIS"]
    reports = {r["resource"]["id"]: r for r in http.get("/fhir/DiagnosticReport", params={
        "subject": ct["subject"]["reference"]}).json().get("entry") or ()}
    assert len(reports) == 2, reports
