"""rv40g: review probes of id40 (merged as 1e2db661) -- what an A40 carries, what an A37 gives back, the carried
mark as readers see it, the sex a record's own ID number disowns. Real HL7 over ``POST /hl7v2`` into a real store on
each backend (``module_eng``), read back over ``/fhir`` with system and resident tokens and through the patient
index."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import (
    NNCHN_SYSTEM,
    carried_marks,
    engine_and_client,
    read_patient,
    registered,
    tokens,
    unlink,
)
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_mfix34_members import _fnzyy
from tests.test_rvidentity32_probes import MRN, _nid, adt, merge, oru, patients, subjects

both = engine_and_client("rv40g")
def resident(engine: Engine, pid: str) -> dict[str, str]:
    """Headers of a resident (the PHR app's patient token) bound to record ``pid``."""
    token, _ = engine.auth.issue_token(subject=f"person-{pid}", kind="patient", client_id="phr",
                                       scopes=["patient/*.rs", "openid", "fhirUser"], patient=pid)
    return {"Authorization": f"Bearer {token}"}


def everything(http: TestClient, pid: str, headers: dict[str, str]) -> set[str]:
    """``Patient/<pid>/$everything`` as the holder of ``headers`` reads it: the references of its entries."""
    got = http.get(f"/fhir/Patient/{pid}/$everything", headers=headers)
    assert got.status_code == 200, got.text
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in got.json().get("entry", [])}


def test_an_a40_chain_and_its_a37s_give_each_record_back_exactly_its_number(both: tuple[Engine, TestClient]) -> None:
    """R1 (ID number) merged into R2, R2 merged into R3 (two A40s, each PID-3 the survivor's MRN alone): the number
    answers on R3 only, marked from both. The A37 of R3 and R2 gives R2 the number (still marked from R1: R1 is
    merged into R2 yet); the A37 of R2 and R1 gives it to R1 unmarked. Then A40 R1 into R2 again carries it once.
    Guard: passes on main (1e2db661)."""
    engine, http = both
    nid = _nid("32092319620303112")
    person = ("岳^丙", "19620303", "F")
    one = registered(http, "G40A1", "GAA", *person, f"~{nid}^^^^NNCHN")
    two = registered(http, "G40A2", "GAB", *person)
    three = registered(http, "G40A3", "GAC", *person)
    assert ack_code_of(post(http, merge("GAD", "G40A2^^^FNXRMYY^MR", *person, "G40A1^^^FNXRMYY^MR"))) == "AA"
    assert ack_code_of(post(http, merge("GAE", "G40A3^^^FNXRMYY^MR", *person, "G40A2^^^FNXRMYY^MR"))) == "AA"
    assert [p["id"] for p in patients(http, nid)] == [three["id"]]
    assert {m["valueReference"]["reference"] for m in carried_marks(read_patient(http, three["id"]))} == {
        f"Patient/{one['id']}", f"Patient/{two['id']}"}
    assert ack_code_of(post(http, unlink("GAF", ("G40A3", *person), ("G40A2", *person)))) == "AA"
    assert [p["id"] for p in patients(http, nid)] == [two["id"]]
    assert tokens(read_patient(http, three["id"])) == {f"{MRN}|G40A3"}
    assert [m["valueReference"]["reference"] for m in carried_marks(read_patient(http, two["id"]))] == [f"Patient/{one['id']}"]
    assert ack_code_of(post(http, unlink("GAG", ("G40A2", *person), ("G40A1", *person)))) == "AA"
    assert [p["id"] for p in patients(http, nid)] == [one["id"]]
    assert not carried_marks(read_patient(http, one["id"])) and tokens(read_patient(http, two["id"])) == {f"{MRN}|G40A2"}
    assert ack_code_of(post(http, merge("GAH", "G40A2^^^FNXRMYY^MR", *person, "G40A1^^^FNXRMYY^MR"))) == "AA"
    assert [p["id"] for p in patients(http, nid)] == [two["id"]]
    assert len(carried_marks(read_patient(http, two["id"]))) == 1
    assert engine.identity.same_person(one["id"], two["id"]) and not engine.identity.same_person(two["id"], three["id"])


def test_an_a40_of_two_records_each_with_its_own_valid_number_is_refused(both: tuple[Engine, TestClient]) -> None:
    """Two men of the same name and birth date (张伟, common), each registered with his own valid ID number: an A40
    merging them is refused AE at MRG-1 (one person is one number), and neither record takes the other's number.
    Guard: passes on main (1e2db661)."""
    engine, http = both
    n1, n2 = _nid("32092319800101111"), _nid("32092319800101131")
    one = registered(http, "G40B1", "GBA", "张^伟", "19800101", "M", f"~{n1}^^^^NNCHN")
    two = registered(http, "G40B2", "GBB", "张^伟", "19800101", "M", f"~{n2}^^^^NNCHN")
    ack = post(http, merge("GBC", "G40B2^^^FNXRMYY^MR", "张^伟", "19800101", "M", "G40B1^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AE" and any("MRG^1" in e for e in err_lines(ack)), ack
    assert [p["id"] for p in patients(http, n1)] == [one["id"]] and [p["id"] for p in patients(http, n2)] == [two["id"]]
    assert not carried_marks(read_patient(http, two["id"])) and not read_patient(http, one["id"]).get("link")
    assert not engine.identity.same_person(one["id"], two["id"])


def test_an_a40_huren_calls_two_people_does_not_give_the_survivor_her_id_number(
        both: tuple[Engine, TestClient]) -> None:
    """王丽 F 1985 (ID number) merged by an A40 into 张敏 F 1990 (no number): huren files the merge as the HIS's
    instruction with a W naming two people. Her ID number must not answer as 张敏's record, nor be shown to 张敏's
    resident as 张敏's identifier (a number -- and a mark naming a record -- of another person)."""
    engine, http = both
    nid = _nid("32092319850303112")
    her = registered(http, "G40C1", "GCA", "王^丽", "19850303", "F", f"~{nid}^^^^NNCHN")
    other = registered(http, "G40C2", "GCB", "张^敏", "19900707", "F")
    ack = post(http, merge("GCC", "G40C2^^^FNXRMYY^MR", "张^敏", "19900707", "F", "G40C1^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AA" and any("two people" in e for e in err_lines(ack)), ack
    assert other["id"] not in [p["id"] for p in patients(http, nid)]
    got = http.get(f"/fhir/Patient/{other['id']}", headers=resident(engine, other["id"]))
    assert got.status_code == 200, got.text
    assert nid not in {i.get("value") for i in got.json().get("identifier", ())}
    assert her["id"]


def test_an_a37_undoing_a_wrong_a40_leaves_each_resident_exactly_her_records(both: tuple[Engine, TestClient]) -> None:
    """王丽 (ID number, her result) wrongly merged into 张敏 by an A40, then the A37 (each PID its own person):
    the number is 王丽's record's again, 张敏's record holds no mark naming 王丽's record, and each resident's
    ``$everything`` holds her own records and results only. Guard of the A37 path."""
    engine, http = both
    nid = _nid("32092319850404112")
    wang, zhang = ("王^红", "19850404", "F"), ("张^芳", "19900808", "F")
    her = registered(http, "G40E1", "GEA", *wang, f"~{nid}^^^^NNCHN")
    other = registered(http, "G40E2", "GEB", *zhang)
    assert ack_code_of(post(http, oru("GEO", "G40E1^^^FNXRMYY^MR", *wang, "GEOBS"))) == "AA"
    assert ack_code_of(post(http, merge("GEC", "G40E2^^^FNXRMYY^MR", *zhang, "G40E1^^^FNXRMYY^MR"))) == "AA"
    ack = post(http, unlink("GED", ("G40E2", *zhang), ("G40E1", *wang)))
    assert ack_code_of(ack) == "AA", ack
    assert [p["id"] for p in patients(http, nid)] == [her["id"]]
    assert not carried_marks(read_patient(http, other["id"])) and not carried_marks(read_patient(http, her["id"]))
    (obs,) = subjects(http, "GEOBS")
    assert obs == f"Patient/{her['id']}"
    mine = everything(http, her["id"], resident(engine, her["id"]))
    theirs = everything(http, other["id"], resident(engine, other["id"]))
    assert f"Patient/{other['id']}" not in mine and f"Patient/{her['id']}" not in theirs, (mine, theirs)
    assert not any(r.startswith("Observation/") for r in theirs), theirs
    assert not engine.identity.same_person(her["id"], other["id"])


def test_an_a37_naming_two_records_never_merged_changes_no_identifier(both: tuple[Engine, TestClient]) -> None:
    """An A37 of two records no merge joined: AA, each keeps exactly its identifiers (nothing taken, nothing given).
    Guard."""
    engine, http = both
    n1 = _nid("32092319700101112")
    p1, p2 = ("岳^丁", "19700101", "F"), ("岳^戊", "19710202", "F")
    one = registered(http, "G40F1", "GFA", *p1, f"~{n1}^^^^NNCHN")
    two = registered(http, "G40F2", "GFB", *p2)
    assert ack_code_of(post(http, unlink("GFC", ("G40F2", *p2), ("G40F1", *p1)))) == "AA"
    assert tokens(read_patient(http, one["id"])) == {f"{MRN}|G40F1", f"{NNCHN_SYSTEM}|{n1}"}
    assert tokens(read_patient(http, two["id"])) == {f"{MRN}|G40F2"}
    assert engine is not None


def test_a_newborn_under_the_mothers_number_keeps_the_twin_guard(both: tuple[Engine, TestClient]) -> None:
    """The HIS registers 柳甲之子 (sex U, no PID-7) with the mother's ID number (contradicts_all's own docstring: a
    newborn is often registered under the mother's number). The ward records his sex male over FHIR. The LIS's
    result for his twin sister 柳甲之女 F under his MRN (a wrong wristband) names another name and sex: two people,
    refused AE (rv39b HIGH 1) -- her result must not be filed as his. Passes since idfix40b (only the record's own
    number -- its birth date the record's day -- disowns its sex: ``demographics.own_id_numbers``)."""
    engine, http = both
    mother = _nid("32092319880505122")
    boy = registered(http, "G40D1", "GDA", "柳^甲之子", "", "U", f"~{mother}^^^^NNCHN")
    body = read_patient(http, boy["id"])
    body["gender"] = "male"
    assert http.put(f"/fhir/Patient/{boy['id']}", json=body).status_code == 200
    assert read_patient(http, boy["id"])["gender"] == "male"
    ack = post(http, oru("GDB", "G40D1^^^FNXRMYY^MR", "柳^甲之女", "20261130", "F", "GDOBS"))
    assert ack_code_of(ack) == "AE", ack
    assert f"Patient/{boy['id']}" not in subjects(http, "GDOBS")
    assert engine is not None


def test_another_members_a40_naming_this_hospitals_record_carries_nothing(both: tuple[Engine, TestClient]) -> None:
    """FNZYY's A40 whose MRG-1 names FNXRMYY's record number (FNXRMYY's record holds the ID number): FNXRMYY's record
    keeps its number and is not merged away, and FNZYY's survivor takes no number of it -- another member's record is
    never this message's to change. Guard."""
    engine, http = both
    nid = _nid("32092319660606112")
    p = ("岳^己", "19660606", "F")
    x = registered(http, "G40H1", "GHA", *p, f"~{nid}^^^^NNCHN")
    ack = post(http, _fnzyy(adt("GHB", "Z40H2^^^FNZYY^MR", *p)))
    assert ack_code_of(ack) == "AA", ack
    ack = post(http, _fnzyy(merge("GHC", "Z40H2^^^FNZYY^MR", *p, "G40H1^^^FNXRMYY^MR")))
    assert ack_code_of(ack) in ("AA", "AE"), ack
    mine = read_patient(http, x["id"])
    assert tokens(mine) == {f"{MRN}|G40H1", f"{NNCHN_SYSTEM}|{nid}"} and not mine.get("link"), mine
    (theirs,) = patients(http, "urn:huren:mrn:FNZYY|Z40H2")
    assert tokens(theirs) == {"urn:huren:mrn:FNZYY|Z40H2"} and not carried_marks(theirs), theirs
    assert [q["id"] for q in patients(http, nid)] == [x["id"]]
    assert engine is not None


def test_an_a40_deleting_the_id_number_leaves_the_survivor_without_it(both: tuple[Engine, TestClient]) -> None:
    """The registrar merges R1 (ID number) into R2 and, in the same A40, takes the number off (HL7 v2.5 2.5.3 ``""``):
    R2 must hold no ID number after the merge."""
    engine, http = both
    nid = _nid("32092319670707112")
    p = ("岳^庚", "19670707", "F")
    registered(http, "G40I1", "GIA", *p, f"~{nid}^^^^NNCHN")
    two = registered(http, "G40I2", "GIB", *p)
    ack = post(http, merge("GIC", 'G40I2^^^FNXRMYY^MR~""^^^^NNCHN', *p, "G40I1^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AA", ack
    assert tokens(read_patient(http, two["id"])) == {f"{MRN}|G40I2"}
    assert two["id"] not in [q["id"] for q in patients(http, nid)]
    assert engine is not None


def test_an_a37_two_merges_back_leaves_the_survivor_its_number(both: tuple[Engine, TestClient]) -> None:
    """R1 (ID number) merged into R2, R2 into R3; the HIS then unlinks R3 and R1 (no merge joined those two
    directly: huren keeps R1 -> R2 -> R3). Either both stay as the chain is -- R3, in use, answers the number -- or
    the chain is cut and R1 holds its number unmarked; never the number on R1 merged away with another record's
    mark. Passes since idfix40b, which refuses the A37 (AE at the second PID's PID-3: no merge joined the two
    directly, which of the chain's was wrong the message does not say -- ``persons._undoes_no_merge``): the chain
    stands as it was."""
    engine, http = both
    nid = _nid("32092319620303212")
    person = ("岳^辛", "19620303", "F")
    one = registered(http, "G40J1", "GJA", *person, f"~{nid}^^^^NNCHN")
    registered(http, "G40J2", "GJB", *person)
    three = registered(http, "G40J3", "GJC", *person)
    assert ack_code_of(post(http, merge("GJD", "G40J2^^^FNXRMYY^MR", *person, "G40J1^^^FNXRMYY^MR"))) == "AA"
    assert ack_code_of(post(http, merge("GJE", "G40J3^^^FNXRMYY^MR", *person, "G40J2^^^FNXRMYY^MR"))) == "AA"
    ack = post(http, unlink("GJF", ("G40J3", *person), ("G40J1", *person)))
    assert ack_code_of(ack) in ("AA", "AE"), ack
    if ack_code_of(ack) == "AE":
        assert any("PID^2^3" in e for e in err_lines(ack)), ack
    r1 = read_patient(http, one["id"])
    (holder,) = patients(http, nid)
    if holder["id"] == three["id"]:
        return  # the chain stands, and its survivor answers the number
    assert holder["id"] == one["id"] and not r1.get("link") and not carried_marks(r1), r1
    assert engine is not None
