"""The reviewer's probes of visitmend20 (rv-visitmend20), kept by visitlast20: real HL7 bytes over MLLP,
the real store (SQLite and mongomock), FHIR reads over HTTP. Each test states what must hold. Failing on
52f88f2: the newborn rule taken by an adult, a child of ten and an adult's charge (PID-21 naming the
visit's patient), a mistyped ID number in PID-21 refusing an adult's A01; the others are guards."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.module_store import Names, names  # noqa: F401 -- a fixture
from tests.shared_worlds45d import mine, own_patients, own_read, own_visit_mllp, visit_accepted, visit_send  # noqa: F401
from tests.shared_worlds45d import visit_eng as engine  # noqa: F401 -- a fixture (once a module and backend)
from tests.shared_worlds45d import visit_fhir as fhir  # noqa: F401 -- a fixture (once a module and backend)
from tests.shared_worlds45d import visit_mllp as mllp  # noqa: F401 -- a fixture (once a module and backend)
from tests.test_placer19_two_patients import nid, pid
from tests.test_recognition_policy_e2e import msh, ts
from tests.test_visit20_reused_numbers import (
    ONE,
    TWO,
    accepted,
    adt,
    one_visit_numbered,
    patient_id,
    pv1,
    send,
)

# each test sends under names of its own (tests.module_store.Names, through shared_worlds45d.mine) on the module's
# engine and reads back its own visit (its V100), records and results: the tests had each opened an engine. The three
# that send a mistyped resident ID number keep a store of their own (own_visit_mllp): Names would send a valid one.


def _pid_with_21(who: tuple[str, int | None, str], mother: str, born: str = "19700101") -> str:
    """``pid(*who)`` with PID-21 (mother's identifier) set to ``mother``."""
    fields = pid(*who).rstrip("\n").split("|")
    fields[7] = born
    fields += [""] * (22 - len(fields))
    fields[21] = mother
    return "|".join(fields) + "\n"


# --- the newborn rule (PID-21) as a bypass ------------------------------------------------------


def test_adult_naming_the_visits_patient_in_pid21_is_still_another_patient(
        engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    """Patient 2 -- an adult born 1970 with an ID number of her own -- sends a result under patient
    1's visit number, PID-21 naming patient 1 (a MAN, born the same day) as 'mother'. Nothing here is
    a newborn in rooming-in: it is the reused visit number visit20 refused. Must stay refused, or
    at least not name patient 1's visit."""
    visit_accepted(mllp, names, adt("A01", "A01-1", ONE, "V100", ts(3)))
    visit = one_visit_numbered(fhir, names.number("V100"))
    when = ts(2)
    text = (msh("HOSPA", "LIS", "ORU^R01^ORU_R01", when, "ORU-ADULT") + _pid_with_21(TWO, "MRN-V1^^^HOSPA^MR")
            + pv1("V100", when) + "ORC|RE|B7^HIS|F7^LIS\n"
            + f"OBR|1|B7^HIS|F7^LIS|58410-2^CBC^LN|||{when}|||||||||D7^张^医生||||||{when}|||F\n"
            + f"OBX|1|NM|WBC^白细胞^L||6.1|10*9/L|||||F|||{when}\n")
    code, _ = visit_send(mllp, names, text)
    refs = [r.get("encounter", {}).get("reference") for r in own_read(engine, fhir, names, "DiagnosticReport")]
    assert code == "AE" or f"Encounter/{visit['id']}" not in refs, (code, refs)


def test_adult_charge_naming_the_visits_patient_in_pid21_counts_in_another_admission(
        engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    """The DFT case visitmend20 mended (a charge of patient 2 counted in patient 1's admission),
    re-opened by a PID-21 naming patient 1: an adult's charge is no newborn's."""
    visit_accepted(mllp, names, adt("A01", "A01-1", ONE, "V100", ts(3)))
    visit = one_visit_numbered(fhir, names.number("V100"))
    when = ts(2)
    dft = (msh("HOSPA", "HIS", "DFT^P03^DFT_P03", when, "DFT-ADULT") + f"EVN|P03|{when}\n"
           + _pid_with_21(TWO, "MRN-V1^^^HOSPA^MR") + pv1("V100", when)
           + f"FT1|1|T-5001||{when}||CG|SURG-01^阑尾切除术^L||1|1||99.00&CNY\n")
    code, _ = visit_send(mllp, names, dft)
    refs = [c.get("context", {}).get("reference") for c in own_read(engine, fhir, names, "ChargeItem")]
    assert code == "AE" or f"Encounter/{visit['id']}" not in refs, (code, refs)


def test_ten_year_old_under_the_mothers_old_admission_number(engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    """A child of ten (no newborn) whose PID-21 names the mother; the HIS visit sequence restarted
    and gave the child the number of the mother's admission of long ago. Not rooming-in."""
    mother = ("MRN-M", 2, "王^二")
    visit_accepted(mllp, names, adt("A01", "A01-M", mother, "V100", ts(300)))
    visit = one_visit_numbered(fhir, names.number("V100"))
    when = ts(2)
    child = ("MRN-C", None, "王^小")
    text = (msh("HOSPA", "LIS", "ORU^R01^ORU_R01", when, "ORU-CHILD")
            + _pid_with_21(child, "MRN-M^^^HOSPA^MR", born="20160301") + pv1("V100", when)
            + "ORC|RE|B8^HIS|F8^LIS\n"
            + f"OBR|1|B8^HIS|F8^LIS|58410-2^CBC^LN|||{when}|||||||||D7^张^医生||||||{when}|||F\n"
            + f"OBX|1|NM|WBC^白细胞^L||6.1|10*9/L|||||F|||{when}\n")
    code, _ = visit_send(mllp, names, text)
    refs = [r.get("encounter", {}).get("reference") for r in own_read(engine, fhir, names, "DiagnosticReport")]
    assert code == "AE" or f"Encounter/{visit['id']}" not in refs, (code, refs)


def test_a_bad_id_number_in_pid21_does_not_refuse_an_admission(own_visit_mllp: int) -> None:
    """PID-21 is the MOTHER's identifier; before visitmend20 it was not read at all. An adult's
    admission (own MRN and valid ID number) whose PID-21 holds a mistyped ID number (bad check
    character) must not be refused for it -- at most a warning."""
    bad = nid(9)[:-1] + ("0" if nid(9)[-1] != "0" else "1")
    when = ts(2)
    text = (msh("HOSPA", "HIS", "ADT^A01^ADT_A01", when, "A01-BAD21") + f"EVN|A01|{when}\n"
            + _pid_with_21(TWO, f"{bad}^^^公安部^NNCHN") + pv1("V200", when))
    code, errs = send(own_visit_mllp, text)
    assert code == "AA", errs


def test_a_bad_id_number_in_pid21_without_a_visit_is_accepted(own_visit_mllp: int) -> None:
    """The same PID without PV1-19: whether PID-21 is read must not decide the ACK."""
    bad = nid(9)[:-1] + ("0" if nid(9)[-1] != "0" else "1")
    when = ts(2)
    text = (msh("HOSPA", "HIS", "ADT^A04^ADT_A01", when, "A04-BAD21") + f"EVN|A04|{when}\n"
            + _pid_with_21(TWO, f"{bad}^^^公安部^NNCHN") + "PV1|1|O\n")
    code, errs = send(own_visit_mllp, text)
    assert code == "AA", errs


# --- the ``other`` group: other message kinds --------------------------------------------------


def _siu(control: str, who: tuple[str, int | None, str], visit: str, when: str) -> str:
    return (msh("HOSPA", "HIS", "SIU^S12^SIU_S12", when, control)
            + f"SCH|APT-{control}^HIS|APT-{control}^HIS|||||FU^复诊^L|ROUTINE^常规^HL70276|20|MIN|^^20^20261210090000\n"
            + pid(*who) + pv1(visit, when) + "RGS|1|A\n" + "AIP|1|A|D001^李^医生|D^医生\n")


def test_booking_of_the_same_patient_under_its_visit_passes(engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    visit_accepted(mllp, names, adt("A01", "A01-1", ONE, "V100", ts(3)))
    visit_accepted(mllp, names, _siu("SIU-1", ONE, "V100", ts(2)))
    visit_accepted(mllp, names, _siu("SIU-0", ONE, "", ts(2)))


def test_booking_of_another_patient_under_a_stored_visit_is_refused(engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    visit_accepted(mllp, names, adt("A01", "A01-1", ONE, "V100", ts(3)))
    visit = one_visit_numbered(fhir, names.number("V100"))
    code, _ = visit_send(mllp, names, _siu("SIU-2", TWO, "V100", ts(2)))
    refs = [p.get("actor", {}).get("reference") for a in own_read(engine, fhir, names, "Appointment", by="patient") for p in a.get("participant", ())]
    assert code == "AE" or f"Encounter/{visit['id']}" not in refs, code


def test_vaccination_of_the_same_patient_and_without_a_visit_pass(engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    visit_accepted(mllp, names, adt("A01", "A01-1", ONE, "V100", ts(3)))
    when = ts(2)
    for control, visit in (("VXU-1", pv1("V100", when)), ("VXU-0", "")):
        visit_accepted(mllp, names, msh("HOSPA", "HIS", "VXU^V04^VXU_V04", when, control) + pid(*ONE) + visit
                 + f"ORC|RE|IM-{control}^HIS|IM-{control}^HOSPA||CM\n"
                 + f"RXA|0|1|{when}||CN-FLU^流感疫苗^L|0.5|mL^毫升^UCUM||00^New Record^NIP001|N001^王^护士|||||"
                 + "FL2026-118|20270630|||||CP|A\n")
    assert len(own_read(engine, fhir, names, "Immunization", by="patient")) == 2


def test_a_newborn_vaccination_under_the_mothers_visit(engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    """Rooming-in's commonest message: the newborn's hepatitis B / BCG dose (VXU) under the mother's
    visit, PID-21 naming her -- allowed as the result is."""
    mother = ("MRN-M", 2, "王^二")
    visit_accepted(mllp, names, adt("A01", "A01-M", mother, "V100", ts(3)))
    when = ts(2)
    nb = ("MRN-NB", None, "王二之子")
    visit_accepted(mllp, names, msh("HOSPA", "HIS", "VXU^V04^VXU_V04", when, "VXU-NB")
             + _pid_with_21(nb, "MRN-M^^^HOSPA^MR", born=when[:8]) + pv1("V100", when)
             + "ORC|RE|IM-NB^HIS|IM-NB^HOSPA||CM\n"
             + f"RXA|0|1|{when}||CN-HEPB^乙肝疫苗^L|0.5|mL^毫升^UCUM||00^New Record^NIP001|N001^王^护士|||||"
             + "HB2026-1|20270630|||||CP|A\n")


# --- MRG-1 by the one record key ---------------------------------------------------------------


def test_a47_from_a_record_known_by_its_id_number_to_a_new_mrn(engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    """A township registered 孙七 by ID number alone (keyed nid|); the HIS gives him an MRN and
    says so by A47 (MRG-1 the ID number): the old record is replaced by the new one, and the visit
    stays his (the survivor's A08 passes)."""
    id_only = f"PID|1||{nid(7)}^^^公安部^NNCHN||孙^七||19700101|M\n"
    when = ts(4)
    visit_accepted(mllp, names, msh("HOSPA", "HIS", "ADT^A01^ADT_A01", when, "A01-7") + f"EVN|A01|{when}\n" + id_only
             + pv1("V100", when))
    a47 = (msh("HOSPA", "HIS", "ADT^A47^ADT_A30", ts(3), "A47-7") + f"EVN|A47|{ts(3)}\n"
           + f"PID|1||{nid(7)}^^^公安部^NNCHN~MRN-S7^^^HOSPA^MR||孙^七||19700101|M\n"
           + f"MRG|{nid(7)}^^^公安部^NNCHN\n")
    visit_accepted(mllp, names, a47)
    old = [p for p in own_patients(engine, fhir, names)
           if any(ln.get("type") == "replaced-by" for ln in p.get("link", ()))]
    assert len(old) == 1 and not any(i.get("value") == names.number("MRN-S7") for i in old[0].get("identifier", ())), old
    visit_accepted(mllp, names, adt("A08", "A08-7", ("MRN-S7", 7, "孙^七"), "V100", ts(2)))


def test_mrg1_naming_a_record_by_its_mrn_typed_mrn(engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    """MRG-1 with CX-5 ``MRN`` (PID-3 has always keyed it as the MRN; MRG-1 had keyed it ``id|``)."""
    visit_accepted(mllp, names, adt("A01", "A01-1", ("MRN-V1", None, "李^一"), "V100", ts(4)))
    a40 = (msh("HOSPA", "HIS", "ADT^A40^ADT_A39", ts(3), "A40-M") + f"EVN|A40|{ts(3)}\n"
           + pid("MRN-V3", None, "李^一") + "MRG|MRN-V1^^^HOSPA^MRN\n")
    visit_accepted(mllp, names, a40)
    visit_accepted(mllp, names, adt("A08", "A08-3", ("MRN-V3", None, "李^一"), "V100", ts(2)))
    patients = own_patients(engine, fhir, names)
    assert len(patients) == 2, [p.get("identifier") for p in patients]


def test_a40_with_an_invalid_id_number_beside_a_good_mrn_in_mrg1(own_visit_mllp: int) -> None:
    """MRG-1 names the prior record by its MRN first and a mistyped ID number after it: the MRN
    keys the record; never a 500."""
    bad = nid(1)[:-1] + ("0" if nid(1)[-1] != "0" else "1")
    accepted(own_visit_mllp, adt("A01", "A01-1", ("MRN-V1", None, "李^一"), "V100", ts(4)))
    a40 = (msh("HOSPA", "HIS", "ADT^A40^ADT_A39", ts(3), "A40-B") + f"EVN|A40|{ts(3)}\n"
           + pid("MRN-V3", None, "李^一") + f"MRG|MRN-V1^^^HOSPA^MR~{bad}^^^公安部^NNCHN\n")
    code, errs = send(own_visit_mllp, a40)
    assert code in ("AA", "AE"), errs
    if code == "AE":
        assert any(e[2].startswith("MRG") for e in errs), errs


def test_the_adult_bypass_does_not_show_patient_ones_visit_to_patient_two(
        engine: Engine, mllp: int, fhir: TestClient, http: TestClient, names: Names) -> None:
    """After the adult-naming-'mother' result was accepted under patient 1's visit: patient 2, a
    resident, reads her own report; patient 1's visit must not be read through it. (Patient 2 has
    her own visit, so her record stands whatever the ORU's ACK.)"""
    visit_accepted(mllp, names, adt("A01", "A01-1", ONE, "V100", ts(3)))
    visit_accepted(mllp, names, adt("A01", "A01-2", TWO, "V200", ts(4)))
    visit = one_visit_numbered(fhir, names.number("V100"))
    when = ts(2)
    visit_send(mllp, names, msh("HOSPA", "LIS", "ORU^R01^ORU_R01", when, "ORU-ADULT") + _pid_with_21(TWO, "MRN-V1^^^HOSPA^MR")
         + pv1("V100", when) + "ORC|RE|B7^HIS|F7^LIS\n"
         + f"OBR|1|B7^HIS|F7^LIS|58410-2^CBC^LN|||{when}|||||||||D7^张^医生||||||{when}|||F\n"
         + f"OBX|1|NM|WBC^白细胞^L||6.1|10*9/L|||||F|||{when}\n")
    two = patient_id(fhir, names.number("MRN-V2"))
    token, _ = engine.auth.issue_token(subject="person-two", kind="patient", client_id="phr",
                                       scopes=["patient/*.rs"], patient=two)
    me = {"Authorization": f"Bearer {token}"}
    leaks = []
    for path in (f"/fhir/Encounter/{visit['id']}", "/fhir/DiagnosticReport?_include=DiagnosticReport:encounter",
                 "/fhir/Observation?_include=Observation:encounter", f"/fhir/Patient/{two}/$everything"):
        got = http.get(path, headers=me)
        assert got.status_code < 500, (path, got.text)
        body = got.json()
        entries = [e.get("resource", {}) for e in body.get("entry") or ()] if body.get("resourceType") == "Bundle" \
            else [body]
        if got.status_code == 200 and any(r.get("resourceType") == "Encounter" and r.get("id") == visit["id"]
                                          for r in entries):
            leaks.append(path)
    assert not leaks, leaks


def test_stored_patient_keys_are_unchanged_by_record_key(engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    """``record_key`` must not move a record a PID already keyed (an upgrade would give the patient
    a second record): each PID shape's Patient id is the id of the key it had before -- MRN, nid|,
    id|, pid2| -- on both backends."""
    from engine.repository.ids import deterministic_id

    mrn, own_nid = names.number, names.nid  # the keys of the numbers as this test sent them
    shapes = [
        ("M1^^^HOSPA^MR", "", mrn("M1")),
        (f"{nid(3)}^^^公安部^NNCHN", "", f"nid|{own_nid(nid(3))}"),
        ("X1^^^HOSPA^XX", "", f"id|{mrn('X1')}"),
        ("", "E1", f"pid2|{mrn('E1')}"),
        (f"{nid(5)}^^^公安部^NNCHN~M2^^^HOSPA^MR", "", mrn("M2")),
        ("M3^^^HOSPA^MRN", "", mrn("M3")),
    ]
    for n, (pid3, pid2, key) in enumerate(shapes):
        when = ts(2)
        visit_accepted(mllp, names, msh("HOSPA", "HIS", "ADT^A04^ADT_A01", when, f"A04-K{n}")
                       + f"EVN|A04|{when}\n" + f"PID|1|{pid2}|{pid3}||赵^{n}||19700101|M\n" + "PV1|1|O\n")
        want = deterministic_id("HOSPA", "Patient", key)
        got = fhir.get(f"/fhir/Patient/{want}")
        assert got.status_code == 200, (key, got.status_code)


def test_problem_list_of_another_patient_under_a_stored_visit_number(
        engine: Engine, mllp: int, fhir: TestClient, names: Names) -> None:
    """PPR (group ``problem``) is neither ``feed`` nor ``other``: patient 2's problem under patient 1's
    visit number names patient 1's visit (the README says so and leaves it)."""
    visit_accepted(mllp, names, adt("A01", "A01-1", ONE, "V100", ts(3)))
    visit = one_visit_numbered(fhir, names.number("V100"))
    ppr = (msh("HOSPA", "EMR", "PPR^PC1^PPR_PC1", ts(2), "PPR-2") + pid(*TWO) + pv1("V100", ts(2))
           + f"PRB|AD|{ts(2)}|I10^高血压^ICD10|P-1||2||{ts(2)}\n")
    code, _ = visit_send(mllp, names, ppr)
    refs = [c.get("encounter", {}).get("reference") for c in own_read(engine, fhir, names, "Condition")]
    assert code == "AE" or f"Encounter/{visit['id']}" not in refs, (code, refs)
