"""Review of convleft28 (twenty-eighth round, rvconvleft28): OBX-23 performers and each 99zzz its
own local URI. Every test sends real HL7 over MLLP into the real store; the order-time check is
``$check-recognition`` over HTTP, the repeat's flag the recognition service's row. Each fails on
ceaf4a4b.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.performer_site import checked, mllp, performer_site
from tests.test_hooks11_policy_edges import flag_of
from tests.test_recognition_policy_e2e import CBC, msh, order, pid, ts


@pytest.fixture
def shipped(tmp_path: Path) -> Iterator[tuple[Engine, TestClient]]:
    """The shipped demo community (阜宁: FNXRMYY, FNZYY, FNYLWSY and their code maps), nothing declared
    in senders.yaml ``local_code_systems`` (its shipped default ``{}``)."""
    with performer_site(tmp_path, None) as world:
        yield world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Engine, TestClient]]:
    """The author's community: LABX has no QC for the blood count, HOSPA/B/C have all."""
    with performer_site(tmp_path) as world:
        yield world


def lab(inst: str, placer: str, item: str, when: str, obx3: str = "WBC^白细胞^L", obx23: str = "",
        status: str = "F") -> str:
    """``inst``'s result of ``item`` (OBR-4) whose OBX-23 is ``obx23``; ``status`` in OBR-25 and OBX-11."""
    return (msh(inst, "LIS", "ORU^R01^ORU_R01", when, f"{inst}-ORU-{placer}-{status}") + pid(inst)
            + f"OBR|1|{placer}^HIS|F{placer}^LIS|{item}|||{when}|||||||||D7^张^医生||||||{when}|||{status}\n"
            + f"OBX|1|NM|{obx3}||6.1|10*9/L|||||{status}|||{when}|||||||||{obx23}\n")


# --- 1. a sender's 99zzz code list is no longer read through its code map -----------------------

def test_a_99zzz_coded_result_of_the_shipped_site_is_still_recognisable(shipped: tuple[Engine, TestClient]) -> None:
    """HIGH. 阜宁县人民医院's LIS names its item codes' system 99LIS (table 0396's local form). Before
    this round every 99zzz was urn:huren:code:FNXRMYY, read through codes/FNXRMYY.yaml (XCG: the blood
    count, LOINC 58410-2). Now, unless the site lists it in senders.yaml ``local_code_systems`` (shipped
    empty), it is urn:huren:code:FNXRMYY:99LIS, which neither the converter's code map
    (``common._coded_item`` takes only ``system == ctx.local_system``) nor recognition's
    (``coding.item_for`` looks up ``maps.local["FNXRMYY:99LIS"]``) reads: the result is no recognition
    item, the order-time check at 阜宁县中医院 finds nothing, a repeat is paid."""
    engine, http = shipped
    item = "XCG^血常规^99LIS"
    mllp(engine, order("FNXRMYY", "X1", item, ts(3)), lab("FNXRMYY", "X1", item, ts(3, 10), "WBC^白细胞计数^99LIS"))
    [report] = engine.repository.search("DiagnosticReport", [("_count", "5")]).resources
    systems = {c.get("system") for c in report["code"]["coding"]}
    assert "http://loinc.org" in systems, report["code"]  # the code map's LOINC second coding
    assert checked(http, engine, "FNZYY") == ["FNXRMYY"]


def test_a_99zzz_coded_order_still_finds_the_prior(shipped: tuple[Engine, TestClient]) -> None:
    """HIGH (the order side of 1, and the old store: a prior stored under urn:huren:code:<INST> -- as
    main stored every 99zzz before -- or in LOINC). 阜宁县中医院's blood count two days ago; 阜宁县
    益林镇中心卫生院 orders and does it again today, its HIS coding the order XCG^血常规^99HIS: the
    order is no recognition item any more, so the repeat is not flagged (was flagged)."""
    engine, _ = shipped
    mllp(engine, order("FNZYY", "Z1", CBC, ts(2)), lab("FNZYY", "Z1", CBC, ts(2, 10)))
    item = "XCG^血常规^99HIS"
    mllp(engine, order("FNYLWSY", "Y1", item, ts(0, 7)), lab("FNYLWSY", "Y1", item, ts(0, 9)))
    assert flag_of(engine, "FNYLWSY") == "flagged"


# --- 2. OBX-23: who may name whom ------------------------------------------------------------------

def test_xon6_alone_is_the_identifiers_authority_not_the_organisation(world: tuple[Engine, TestClient]) -> None:
    """MED. XON-6 is the assigning authority of the organisation's identifier (XON-10), not the
    organisation (the v2-to-FHIR IG: Organization.identifier.assigner). 县人民医院 sends a blood count a
    commercial lab performed, the lab named with no identifier and the hospital's own code as the
    authority of its (absent) id: huren reads it as HOSPA's own result (XON-6 matched the sender) and
    HOSPA's QC makes it recognisable, the name 金域医学检验所 ignored. A performer huren does not know
    must never be recognisable (the author's own rule for unknown labs)."""
    engine, http = world
    mllp(engine, order("HOSPA", "A1", CBC, ts(5)), lab("HOSPA", "A1", CBC, ts(5, 10), obx23="金域医学检验所^^^^^HOSPA"))
    [obs] = engine.repository.search("Observation", [("code", "WBC")]).resources
    assert obs["performer"][0].get("display") == "金域医学检验所", obs["performer"]
    assert checked(http, engine, "HOSPB") == []


def test_a_sender_without_qc_cannot_lend_itself_another_members_qc(world: tuple[Engine, TestClient]) -> None:
    """MED (a trust question the lead asked; contradicts the author's
    ``test_a_member_with_qc_performed_it_recognisable_as_that_member``). LABX has no QC for the blood
    count. Its message says (OBX-23) that 县人民医院 performed it: nothing checks that HOSPA did (HOSPA
    never sent it; no site data says LABX reports HOSPA's tests), yet it is recognisable on HOSPA's QC,
    listed to HOSPB's doctor as HOSPA's, and HOSPB's repeat is flagged not payable. A wrong
    "recognisable" costs a hospital money: the conservative answer is the sender's QC as well (or a
    site-declared relation), so here: not recognisable, repeat not flagged."""
    engine, http = world
    mllp(engine, order("LABX", "L1", CBC, ts(5)), lab("LABX", "L1", CBC, ts(5, 10), obx23="县人民医院^^^^^^XX^^^HOSPA"))
    assert checked(http, engine, "HOSPB") == []


def test_a_correction_without_obx23_keeps_the_performing_lab(world: tuple[Engine, TestClient]) -> None:
    """MED. An unknown lab performed HOSPA's blood count (never recognisable). The LIS corrects the
    value (OBX-11 C) and leaves OBX-23 empty -- an empty field states nothing (v2 ch. 2; only ""
    deletes). The converter writes the sender as performer and Observation.performer's by-key
    (@type Organization) rule replaces the lab by it; the report's performer is replaced whole: the
    corrected result is now HOSPA's, recognisable on HOSPA's QC."""
    engine, http = world
    lab23 = "金域医学检验所^^^^^^XX^^^KINGMED01"
    mllp(engine, order("HOSPA", "A1", CBC, ts(5)), lab("HOSPA", "A1", CBC, ts(5, 10), obx23=lab23))
    assert checked(http, engine, "HOSPB") == []
    mllp(engine, lab("HOSPA", "A1", CBC, ts(5, 10), status="C"))
    [obs] = engine.repository.search("Observation", [("code", "WBC")]).resources
    assert obs["status"] == "corrected"
    assert [p.get("display") for p in obs["performer"]][:1] == ["金域医学检验所"], obs["performer"]
    assert checked(http, engine, "HOSPB") == []


# --- 3. Encounter.location history [completed] and the cancel events ---------------------------------

def adt(control: str, event: str, pv1_3: str, pv1_6: str, minute: str, visit: str) -> str:
    mrn = "M" + visit
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|2026110109{minute}00||ADT^{event}^ADT_A01|{control}|P|2.5.1\n"
            f"EVN|{event}|2026110109{minute}00\nPID|1||{mrn}^^^FNXRMYY^MR||张^三||19800101|M\n"
            f"PV1|1|I|{pv1_3}|||{pv1_6}|D01^王^明||||||||||||{visit}^^^FNXRMYY^VN\n")


def beds(engine: Engine, visit: str) -> list[tuple[str, str]]:
    [encounter] = engine.repository.search("Encounter", [("identifier", visit)]).resources
    return sorted((e["location"]["display"], e["status"]) for e in encounter.get("location", ()))


def test_a_cancelled_transfers_bed_is_not_kept_as_history(shipped: tuple[Engine, TestClient]) -> None:
    """LOW (a bed the patient never lay in, kept for good). A12 cancels the transfer to 102; its PV1-6
    names the cancelled location (as senders write it), which the converter stores ``completed`` --
    "the patient was in 102". Before this round the next A08 (PV1-3 alone) replaced the list and the
    false bed went; ``history: [completed]`` now keeps it under every later message."""
    engine, _ = shipped
    mllp(engine, adt("T1", "A01", "W01^101^1^FNXRMYY", "", "10", "VT1"),
         adt("T2", "A02", "W01^102^1^FNXRMYY", "W01^101^1^FNXRMYY", "15", "VT1"),
         adt("T3", "A12", "W01^101^1^FNXRMYY", "W01^102^1^FNXRMYY", "20", "VT1"),
         adt("T4", "A08", "W01^101^1^FNXRMYY", "", "25", "VT1"))
    assert beds(engine, "VT1") == [("W01 101房 1床", "active")]


def test_a_cancelled_admission_keeps_no_occupied_past_bed(shipped: tuple[Engine, TestClient]) -> None:
    """LOW. A01 to 201, A02 to 202 (201 completed), then A11: the admission did not take place, the
    visit is ``cancelled`` and its bed ``planned`` -- yet the history rule keeps 201 ``completed`` (a bed
    occupied by a visit that never was; before this round the A11's list replaced it)."""
    engine, _ = shipped
    mllp(engine, adt("K1", "A01", "W02^201^1^FNXRMYY", "", "10", "VK1"),
         adt("K2", "A02", "W02^202^1^FNXRMYY", "W02^201^1^FNXRMYY", "15", "VK1"),
         adt("K3", "A11", "W02^202^1^FNXRMYY", "", "20", "VK1"))
    assert ("W02 201 1", "completed") not in beds(engine, "VK1")


# --- 4. the performer's Organization ---------------------------------------------------------------

def test_one_member_institution_one_organization(world: tuple[Engine, TestClient]) -> None:
    """MED (a record of an institution made twice). HOSPA names 县中医院 (HOSPB) in OBX-23: the
    converter puts an Organization for HOSPB at an id keyed by the *sender* (``Context.put``: (HOSPA,
    Organization, HOSPB)), beside the one HOSPB's own messages make (HOSPB, Organization, HOSPB): two
    Organizations with identifier urn:huren:institution|HOSPB, so a search by the identifier (and a
    client's conditional create or update on it: 412) no longer finds one."""
    engine, http = world
    mllp(engine, order("HOSPA", "A1", CBC, ts(5)), lab("HOSPA", "A1", CBC, ts(5, 10), obx23="县中医院^^^^^^XX^^^HOSPB"),
         order("HOSPB", "B1", CBC, ts(1)), lab("HOSPB", "B1", CBC, ts(1, 10)))
    r = http.get("/fhir/Organization", params={"identifier": "urn:huren:institution|HOSPB"})
    assert r.status_code == 200, r.text
    assert r.json().get("total", len(r.json().get("entry", ()))) == 1, [e["resource"]["id"] for e in r.json()["entry"]]


# --- 5. the report's performer: read as the first result's ---------------------------------------

def test_a_panel_partly_performed_by_a_lab_without_qc_is_not_recognisable_whole(
        world: tuple[Engine, TestClient]) -> None:
    """MED (left by the author in the README, with no strict xfail). HOSPA's blood count: the
    leukocytes HOSPA counted, the erythrocytes LABX did (OBX-23; LABX has no QC for the blood count).
    The DiagnosticReport lists [HOSPA, LABX] and recognition reads a report as its first performer's:
    the whole panel is recognisable on HOSPA's QC and HOSPB's repeat is flagged not payable, though
    part of it was never quality-controlled."""
    engine, http = world
    when = ts(5, 10)
    message = (msh("HOSPA", "LIS", "ORU^R01^ORU_R01", when, "HOSPA-ORU-MIX") + pid("HOSPA")
               + f"OBR|1|A1^HIS|FA1^LIS|{CBC}|||{when}|||||||||D7^张^医生||||||{when}|||F\n"
               + f"OBX|1|NM|WBC^白细胞^L||6.1|10*9/L|||||F|||{when}\n"
               + f"OBX|2|NM|RBC^红细胞^L||4.5|10*12/L|||||F|||{when}|||||||||县临床检验中心^^^^^^XX^^^LABX\n")
    mllp(engine, order("HOSPA", "A1", CBC, ts(5)), message)
    [report] = engine.repository.search("DiagnosticReport", [("_count", "5")]).resources
    assert len(report["performer"]) == 2, report["performer"]
    assert checked(http, engine, "HOSPB") == []
