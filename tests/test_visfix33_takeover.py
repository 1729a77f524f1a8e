"""The take-over of a lab's placeholder visit after its review (thirty-third round, visfix33): the
sender told and the operator counting it, the lab's later results of the stay, and the guards those
results are held to. rvvisit33's probes (``test_rvvisit33_probes``) pin the findings themselves; these
pin what the fixes decided beside them. Real HL7 bytes over MLLP (or the ingest batch and replay),
FHIR reads and ``/admin/fidelity`` over HTTP, the real store (SQLite and mongomock: the ``engine``
fixture of ``test_visit20_reused_numbers``)."""

# ruff: noqa: F811 -- the fixtures imported from test_visit20_reused_numbers are the tests' arguments

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.conftest import running_mllp
from tests.module_store import Names, names  # noqa: F401 -- a fixture
from tests.shared_worlds45d import mine, own_read, own_visit, visit_accepted, visit_send  # noqa: F401 -- own_visit
from tests.shared_worlds45d import visit_eng as engine  # noqa: F401 -- a fixture (once a module and backend)
from tests.shared_worlds45d import visit_fhir as fhir  # noqa: F401 -- a fixture (once a module and backend)
from tests.shared_worlds45d import visit_mllp as mllp  # noqa: F401 -- a fixture (once a module and backend)
from tests.test_recognition_policy_e2e import INSTITUTIONS, msh, ts
from tests.test_visit20_reused_numbers import accepted, adt, one_visit_numbered, patient_id, pv1, read, send
from tests.test_visit33_takeover import ADMITTED, _lab, _refused_at_the_visit_number

# each test sends under names of its own (tests.module_store.Names, through shared_worlds45d.mine) on the module's
# engine and reads back its own visit, records and results: the tests had each opened an engine. The counting test
# (/admin/fidelity's take-overs of the store) keeps a store of its own (own_visit); the declaring site its own site.


def _lis_id(fhir: TestClient, number: str = "L-77", names: Names | None = None) -> str:
    (lis,) = read(fhir, "Patient", identifier=number if names is None else names.number(number))
    return str(lis["id"])


def _taken_over(engine: Engine, http: TestClient) -> dict:
    ops = engine.auth.issue_system_token("ops", "system/MessageHeader.cr")
    r = http.get("/admin/fidelity", params={"institution": "HOSPA"}, headers={"Authorization": f"Bearer {ops}"})
    assert r.status_code == 200, r.text
    return r.json()["institutions"].get("HOSPA", {}).get("taken_over", {})


def _take_over(mllp: int, names: Names, who: str = "李^一||19700101|M") -> None:
    """The lab's result under L-77 and V100, then the HIS's admission of MRN-V1 taking the visit over (under
    ``names``)."""
    visit_accepted(mllp, names, _lab("ORU-L1", "L-77^^^LIS^PI", ts(5), who=who))
    visit_accepted(mllp, names, adt("A01", "A01-1", ADMITTED, "V100", ts(4)))


def test_the_take_over_is_told_to_the_sender_and_counted(own_visit: tuple[Engine, int, TestClient]) -> None:
    """AA with ERR W 205 at PV1-19 naming the lab record's authority (no number, no name), counted per
    authority in the operator's fidelity view; a refused admission and a plain one are not counted. (It counts the
    store's take-overs: a store of its own.)"""
    engine, mllp, fhir = own_visit
    accepted(mllp, _lab("ORU-L1", "L-77^^^LIS^PI", ts(5)))
    code, errs = send(mllp, adt("A01", "A01-1", ADMITTED, "V100", ts(4)))
    assert code == "AA", errs
    (warning,) = [e for e in errs if e[4] == "W"]
    assert warning[2] == "PV1^1^19" and warning[3].startswith("205^"), warning
    assert "'LIS'" in warning[8] and "taken over" in warning[8], warning[8]
    assert "L-77" not in warning[8] and "李" not in warning[8], warning[8]
    assert _taken_over(engine, fhir) == {"LIS": 1}
    # another stay: counted again; the HIS's own admission of a new visit: nothing to tell
    accepted(mllp, _lab("ORU-L2", "L-78^^^LIS^PI", ts(3), visit="V101"))
    accepted(mllp, adt("A01", "A01-2", ("MRN-V2", None, "李^一"), "V101", ts(2)))
    code, errs = send(mllp, adt("A01", "A01-3", ("MRN-V3", None, "王^三"), "V102", ts(2)))
    assert code == "AA" and not [e for e in errs if e[4] == "W"], errs
    # refused (another man under the number): not counted
    accepted(mllp, _lab("ORU-L4", "L-79^^^LIS^PI", ts(3), who="王^二||19800101|M", visit="V103"))
    _refused_at_the_visit_number(mllp, adt("A01", "A01-4", ADMITTED, "V103", ts(1)))
    assert _taken_over(engine, fhir) == {"LIS": 2}


def test_the_stay_s_later_result_is_filed_as_the_lab_stated_it(engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    """After the take-over the LIS's next result under L-77 and V100: AA, its subject the lab's record and
    its encounter the stay (as the first one's); the visit unchanged by it; the admitted person's own
    compartment ($everything) does not carry the lab record's results (the desk's link would)."""
    _take_over(mllp, names)
    taken = one_visit_numbered(fhir, names.number("V100"))
    code, errs = visit_send(mllp, names, _lab("ORU-L2", "L-77^^^LIS^PI", ts(3)))
    assert code == "AA" and not [e for e in errs if e[4] in ("E", "W")], errs
    visit = one_visit_numbered(fhir, names.number("V100"))
    assert visit["meta"]["versionId"] == taken["meta"]["versionId"] and visit["subject"] == taken["subject"]
    lis = _lis_id(fhir, names=names)
    results = own_read(engine, fhir, names, "Observation")
    assert len(results) == 2
    for result in results:
        assert result["subject"]["reference"] == f"Patient/{lis}"
        assert result["encounter"]["reference"] == f"Encounter/{visit['id']}"
    got = fhir.get(f"/fhir/Patient/{patient_id(fhir, names.number('MRN-V1'))}/$everything")
    assert got.status_code == 200, got.text
    kinds = {e["resource"]["resourceType"] for e in got.json().get("entry") or ()}
    assert "Encounter" in kinds and "Observation" not in kinds and "DiagnosticReport" not in kinds, kinds


def test_the_stay_s_later_result_is_refused_once_the_desk_links_the_lab_record_to_another(
        engine: Engine, mllp: int, fhir: TestClient, names: Names, client_token) -> None:
    """After the take-over the desk links the LIS's record to the HIS's namesake 李一 (MRN-C, another
    stay): the record is identified, no stand-in -- its next result under V100 (the admitted MRN-V1's
    stay) is refused at PV1-19, as any other patient's."""
    _take_over(mllp, names, who="李^一|||M")
    when = ts(3, 9)
    visit_accepted(mllp, names, msh("HOSPA", "HIS", "ADT^A01^ADT_A01", when, "A01-C") + f"EVN|A01|{when}\n"
             + "PID|1||MRN-C^^^HOSPA^MR||李^一||19500101|M\n" + pv1("V900", when))
    desk = TestClient(fhir.app)
    desk.headers["Authorization"] = f"Bearer {client_token(engine, 'system/*.cruds', 'desk')}"
    r = desk.post("/fhir/Patient/$link", json={"resourceType": "Parameters", "parameter": [
        {"name": "source", "valueReference": {"reference": f"Patient/{_lis_id(fhir, names=names)}"}},
        {"name": "target", "valueReference": {"reference": f"Patient/{patient_id(fhir, names.number('MRN-C'))}"}},
        {"name": "reason", "valueString": "checked at the desk"}]})
    assert r.status_code == 200, r.text
    _refused_at_the_visit_number(mllp, _lab("ORU-L2", "L-77^^^LIS^PI", ts(2), who="李^一|||M"), names)
    assert len(own_read(engine, fhir, names, "Observation")) == 1


def test_the_stay_s_later_result_is_refused_once_the_his_registers_the_lab_number_for_another(
        engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    """After the take-over the HIS registers its 李一 MRN-C with the LIS's number beside his MRN: the number
    is MRN-C's, its next result under V100 (MRN-V1's stay) is refused."""
    _take_over(mllp, names, who="李^一|||M")
    when = ts(3, 9)
    visit_accepted(mllp, names, msh("HOSPA", "HIS", "ADT^A04^ADT_A01", when, "A04-C") + f"EVN|A04|{when}\n"
             + "PID|1||MRN-C^^^HOSPA^MR~L-77^^^LIS^PI||李^一||19500101|M\n" + pv1("V901", when, "O"))
    _refused_at_the_visit_number(mllp, _lab("ORU-L2", "L-77^^^LIS^PI", ts(2), who="李^一|||M"), names)


def test_a_visit_a_client_re_filed_is_not_a_stay_taken_from_the_lab(
        engine: Engine, mllp: int, fhir: TestClient, names: Names, client_token) -> None:
    """The lab's visit re-filed under the HIS's record by a FHIR client's edit, not a message's take-over:
    the history shows no message taking it from the lab's record, so the lab's next result is refused."""
    visit_accepted(mllp, names, _lab("ORU-L1", "L-77^^^LIS^PI", ts(5)))
    visit_accepted(mllp, names, adt("A04", "A04-1", ADMITTED, "V200", ts(4)))
    visit = one_visit_numbered(fhir, names.number("V100"))
    edited = {k: v for k, v in visit.items() if k != "meta"}
    edited["subject"] = {"reference": f"Patient/{patient_id(fhir, names.number('MRN-V1'))}"}
    client = TestClient(fhir.app)
    client.headers["Authorization"] = f"Bearer {client_token(engine, 'system/*.cruds', 'ward')}"
    r = client.put(f"/fhir/Encounter/{visit['id']}", json=edited)
    assert r.status_code == 200, r.text
    _refused_at_the_visit_number(mllp, _lab("ORU-L2", "L-77^^^LIS^PI", ts(3)), names)


def test_the_stay_s_result_batched_after_the_admission_is_filed(
        engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    """The admission and the lab's next result in one batch: refused here before identity34 (settled
    before the admission was written), while the two sent singly were filed. Now settled against the
    visit as the batch's admission leaves it: both filed, as singly (``test_identity34_batch``)."""
    visit_accepted(mllp, names, _lab("ORU-L1", "L-77^^^LIS^PI", ts(5)))
    one = mine(names, adt("A01", "A01-1", ADMITTED, "V100", ts(4)))
    two = mine(names, _lab("ORU-L2", "L-77^^^LIS^PI", ts(3)))
    outcomes = engine.ingestor.process([(one, "file", "file:1"), (two, "file", "file:2")])
    assert b"MSA|AA|" in outcomes[0].ack and b"MSA|AA|" in outcomes[1].ack, [o.ack for o in outcomes]
    assert len(own_read(engine, fhir, names, "Observation")) == 2


# --- a site whose LIS is one of its declared registration applications ------------------------------


@pytest.fixture
def declaring(tmp_path: Path) -> Iterator[Engine]:
    site = tmp_path / "site"
    site.mkdir()
    text = INSTITUTIONS.replace("qc: {passed: all, until: 2099-12-31}}",
                                "qc: {passed: all, until: 2099-12-31}, registration_applications: [HIS, LIS]}", 1)
    assert "registration_applications" in text
    (site / "institutions.yaml").write_text(text, "utf-8")
    with Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site)) as eng:
        yield eng


def test_an_update_of_a_declared_registration_application_makes_the_visit_the_his_s(
        declaring: Engine, client_token) -> None:
    """The site says its LIS registers persons too (``registration_applications: [HIS, LIS]``): the LIS's
    A08 stating the visit under its record is then a registering system's statement of the visit, and
    the HIS's admission of another record under the number is refused (rvvisit33 LOW 4's other side)."""
    with running_mllp(declaring) as port, TestClient(create_app(declaring)) as http:
        http.headers["Authorization"] = f"Bearer {client_token(declaring, 'system/*.read')}"
        accepted(port, _lab("ORU-L1", "L-77^^^LIS^PI", ts(4)))
        when = ts(3)
        accepted(port, msh("HOSPA", "LIS", "ADT^A08^ADT_A01", when, "A08-L") + f"EVN|A08|{when}\n"
                 + "PID|1||L-77^^^LIS^PI||李^一||19700101|M\n" + pv1("V100", when))
        before = one_visit_numbered(http, "V100")
        _refused_at_the_visit_number(port, adt("A01", "A01-1", ADMITTED, "V100", ts(2)))
        after = one_visit_numbered(http, "V100")
        assert after["subject"] == before["subject"] and after["meta"]["versionId"] == before["meta"]["versionId"]


@pytest.mark.parametrize("batched", [False, True], ids=["alone", "batched"])
def test_the_stay_s_later_result_is_refused_once_the_his_registers_the_lab_record(
        engine: Engine, mllp: int, fhir: TestClient, names: Names, batched: bool) -> None:
    """After the take-over the HIS registers the LIS-numbered record itself (an A04 under another visit):
    a person the HIS registered, no stand-in -- its result under MRN-V1's stay is refused, whether the
    registration was filed before or comes earlier in the result's own batch (not yet in the store)."""
    _take_over(mllp, names)
    when = ts(3)
    a04 = (msh("HOSPA", "HIS", "ADT^A04^ADT_A01", when, "A04-L") + f"EVN|A04|{when}\n"
           + "PID|1||L-77^^^LIS^PI||李^一||19700101|M\n" + pv1("V900", when, "O"))
    result = _lab("ORU-L2", "L-77^^^LIS^PI", ts(2))
    if not batched:
        visit_accepted(mllp, names, a04)
        _refused_at_the_visit_number(mllp, result, names)
        return
    outcomes = engine.ingestor.process([(mine(names, a04), "file", "file:1"),
                                        (mine(names, result), "file", "file:2")])
    assert b"MSA|AA|" in outcomes[0].ack and b"MSA|AE|" in outcomes[1].ack, [o.ack for o in outcomes]
    assert b"PV1^1^19" in outcomes[1].ack, outcomes[1].ack


def test_an_update_of_a_third_application_makes_the_visit_the_his_s(
        engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    """An ADT of an application that sent none of the visit's lab messages (a 体检 system TJXT, not
    declared): it is not the lab restating its own placeholder, so it counts as the HIS side stating
    the visit -- cannot be told apart from the owner, refused (only the lab's own A08 is passed over)."""
    visit_accepted(mllp, names, _lab("ORU-L1", "L-77^^^LIS^PI", ts(4)))
    when = ts(3)
    visit_accepted(mllp, names, msh("HOSPA", "TJXT", "ADT^A08^ADT_A01", when, "A08-T") + f"EVN|A08|{when}\n"
             + "PID|1||L-77^^^LIS^PI||李^一||19700101|M\n" + pv1("V100", when))
    before = one_visit_numbered(fhir, names.number("V100"))
    _refused_at_the_visit_number(mllp, adt("A01", "A01-1", ADMITTED, "V100", ts(2)), names)
    assert one_visit_numbered(fhir, names.number("V100"))["subject"] == before["subject"]
