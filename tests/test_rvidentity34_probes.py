"""Review probes of identity34 (thirty-fourth round, rvidentity34): the owner's registration over another
member's contradicting reference, merges naming a member's number, the fidelity counts, and the take-over
in one batch. Real HL7 over ``POST /hl7v2`` or ``engine.ingestor``'s batch into the real store (SQLite and
mongomock), read back over ``/fhir`` and ``/admin/fidelity``. A probe showing a defect is a strict xfail
(the fixer turns it green); a passing probe guards what is worth guarding."""

# ruff: noqa: F811 -- the fixtures imported from test_visit20_reused_numbers are the tests' arguments

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import engine_and_client
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_identity34_batch import _cr, _filed_in_the_stay
from tests.test_identity34_members import _fidelity
from tests.test_idfix34_owner import _as
from tests.test_recognition_policy_e2e import msh, ts
from tests.test_rvidentity32_probes import MRN, adt, merge, oru, patients
from tests.test_visit20_reused_numbers import (  # noqa: F401 -- fixtures
    accepted,
    engine,
    fhir,
    one_visit_numbered,
    pv1,
    read,
)
from tests.test_visit20_reused_numbers import adt as visit_adt
from tests.test_visit33_takeover import ADMITTED, _lab

both = engine_and_client("rv34")


def _contradicted(engine: Engine, http: TestClient) -> dict[str, int]:
    return dict(_fidelity(engine, http, "FNZYY").get("member_contradicted", {}))


def _warnings(ack: bytes) -> list[str]:
    assert ack_code_of(ack) == "AA", ack
    return [e for e in err_lines(ack) if e.split("|")[4:5] == ["W"]]


# --- the owner's registration over another member's reference ------------------------------------------


def test_two_owners_contradicting_one_members_references_are_counted_per_owner(
        both: tuple[Engine, TestClient]) -> None:
    """FNZYY filed 王二 under FNXRMYY's OA1 and 王三 under FNYLWSY's OB1 (neither owner held a record of its number);
    FNXRMYY then registers 郑一 under OA1, FNYLWSY 郑二 under OB1: FNZYY's operator counts one for each owner."""
    engine, http = both
    before = _contradicted(engine, http)
    assert ack_code_of(post(http, _as("FNZYY", adt("O1", "OA1^^^FNXRMYY^MR", "王^二", "19900202", "F")))) == "AA"
    assert ack_code_of(post(http, _as("FNZYY", adt("O2", "OB1^^^FNYLWSY^MR", "王^三", "19910303", "F")))) == "AA"
    assert len(_warnings(post(http, adt("O3", "OA1^^^FNXRMYY^MR", "郑^一", "19600101", "M")))) == 1
    assert len(_warnings(post(http, _as("FNYLWSY", adt("O4", "OB1^^^FNYLWSY^MR", "郑^二", "19610101", "M"))))) == 1
    after = _contradicted(engine, http)
    assert after.get("FNXRMYY", 0) == before.get("FNXRMYY", 0) + 1, (before, after)
    assert after.get("FNYLWSY", 0) == before.get("FNYLWSY", 0) + 1, (before, after)


def test_the_members_operator_can_find_the_record_to_correct(both: tuple[Engine, TestClient]) -> None:
    """The row FNZYY's operator reads for the owner's contradicting registration names FNZYY's own record
    (its "Patient/id": FNZYY's patient, FNZYY's to open) -- else "FNZYY's record is the one to correct" cannot be
    acted on: the count says neither which record nor which number."""
    engine, http = both
    assert ack_code_of(post(http, _as("FNZYY", adt("P1", "OP1^^^FNXRMYY^MR", "王^四", "19920404", "F")))) == "AA"
    (ours,) = [p for p in patients(http, f"{MRN}|OP1") if p["gender"] == "female"]
    assert len(_warnings(post(http, adt("P2", "OP1^^^FNXRMYY^MR", "郑^四", "19640404", "M")))) == 1
    rows = [i for i in _fidelity(engine, http, "FNZYY")["items"] if "also named" in str(i.get("message"))]
    assert rows and any(ours["id"] in str(row) for row in rows), rows


def test_the_members_row_is_worded_for_the_member(both: tuple[Engine, TestClient]) -> None:
    engine, http = both
    assert ack_code_of(post(http, _as("FNZYY", adt("Q1", "OQ1^^^FNXRMYY^MR", "王^五", "19930505", "F")))) == "AA"
    assert len(_warnings(post(http, adt("Q2", "OQ1^^^FNXRMYY^MR", "郑^五", "19650505", "M")))) == 1
    (row, *_) = [i for i in _fidelity(engine, http, "FNZYY")["items"] if "also named" in str(i.get("message"))]
    assert "this institution's own" not in row["message"], row["message"]


def test_the_owners_registration_completing_a_thin_record_is_held_against_the_members_reference(
        both: tuple[Engine, TestClient]) -> None:
    """FNXRMYY's result made its record OT1 (郑一, no sex, no birth date); FNZYY then filed 王二 (F) under
    OT1^^^FNXRMYY (not contradicted: the sex unknown); FNXRMYY's HIS registers OT1 as 郑一, M, 1960: now
    FNZYY's reference names another person -- the same W and count as a first registration."""
    engine, http = both
    before = _contradicted(engine, http).get("FNXRMYY", 0)
    assert ack_code_of(post(http, oru("T1", "OT1^^^FNXRMYY^MR", "郑^一", "", "", "RV34T"))) == "AA"
    assert ack_code_of(post(http, _as("FNZYY", adt("T2", "OT1^^^FNXRMYY^MR", "王^二", "19900202", "F")))) == "AA"
    warnings = _warnings(post(http, adt("T3", "OT1^^^FNXRMYY^MR", "郑^一", "19600101", "M")))
    assert _contradicted(engine, http).get("FNXRMYY", 0) == before + 1 and warnings, warnings


def test_a_search_by_the_owners_number_tells_the_owners_record_from_the_contradicted_reference(
        both: tuple[Engine, TestClient]) -> None:
    """FNZYY filed 王九 under FNXRMYY's OW1; FNXRMYY registers 郑九 under OW1 (accepted, W). A referral desk or a
    client resolving FNXRMYY's OW1 must not be handed 王九 as readily as 郑九: of the two records carrying the
    number, only the owner's carries it as a current identifier (FNZYY's marked old or ended), or only one is
    found."""
    _, http = both
    assert ack_code_of(post(http, _as("FNZYY", adt("W1", "OW1^^^FNXRMYY^MR", "王^九", "19990909", "F")))) == "AA"
    assert len(_warnings(post(http, adt("W2", "OW1^^^FNXRMYY^MR", "郑^九", "19690909", "M")))) == 1
    current = [p for p in patients(http, f"{MRN}|OW1")
               if any(i.get("system") == MRN and i.get("value") == "OW1" and i.get("use") != "old"
                      and not (i.get("period") or {}).get("end") for i in p.get("identifier") or ())]
    assert [p["gender"] for p in current] == ["male"], current


def test_the_owners_registration_is_warned_when_the_members_record_carries_the_number_beside_its_own(
        both: tuple[Engine, TestClient]) -> None:
    """FNZYY's record ZR1 names FNXRMYY's OR1 beside its own MRN (PID-3 repeats); FNXRMYY registers another
    person under OR1: filed, W, counted for FNZYY; FNZYY's record untouched (its own MRN, no link)."""
    engine, http = both
    before = _contradicted(engine, http).get("FNXRMYY", 0)
    assert ack_code_of(post(http, _as("FNZYY", adt("R1", "ZR1^^^FNZYY^MR~OR1^^^FNXRMYY^MR", "王^六", "19940606",
                                                   "F")))) == "AA"
    (warning,) = _warnings(post(http, adt("R2", "OR1^^^FNXRMYY^MR", "郑^六", "19660606", "M")))
    assert "|PID^1^3|" in warning and "ZR1" not in warning and "王" not in warning, warning
    assert _contradicted(engine, http).get("FNXRMYY", 0) == before + 1
    (ours,) = patients(http, "urn:huren:mrn:FNZYY|ZR1")
    assert ours["gender"] == "female" and not ours.get("link"), ours


# --- merges naming a member's number ---------------------------------------------------------------------


def test_a_members_same_person_merge_of_the_owners_number_leaves_the_owners_record_alone(
        both: tuple[Engine, TestClient]) -> None:
    """FNZYY merges its record of FNXRMYY's OM1 (冯三, filed on referral) into its own ZM1: filed, and what is
    merged away is FNZYY's record only -- FNXRMYY's own record of OM1 stays active, unlinked, as it was."""
    _, http = both
    assert ack_code_of(post(http, adt("M1", "OM1^^^FNXRMYY^MR", "冯^三", "19610101", "M"))) == "AA"
    (owners,) = patients(http, f"{MRN}|OM1")
    assert ack_code_of(post(http, _as("FNZYY", adt("M2", "OM1^^^FNXRMYY^MR", "冯^三", "19610101", "M")))) == "AA"
    assert ack_code_of(post(http, _as("FNZYY", adt("M3", "ZM1^^^FNZYY^MR", "冯^三", "19610101", "M")))) == "AA"
    ack = post(http, _as("FNZYY", merge("M4", "ZM1^^^FNZYY^MR", "冯^三", "19610101", "M", "OM1^^^FNXRMYY^MR")))
    assert ack_code_of(ack) == "AA", ack
    after = http.get(f"/fhir/Patient/{owners['id']}").json()
    assert after.get("active") is not False and not after.get("link"), after
    assert after["meta"]["versionId"] == owners["meta"]["versionId"], after


def test_a_merge_by_the_members_alias_of_the_owner_is_held_too(both: tuple[Engine, TestClient]) -> None:
    """MRG-1's CX-4 naming the owner by its name (senders.yaml facility_aliases) is the owner's number as its
    code is: FNZYY's merge of 阜宁县人民医院's ON1 (郑七) into its 王七 is refused at MRG-1."""
    _, http = both
    assert ack_code_of(post(http, adt("N1", "ON1^^^FNXRMYY^MR", "郑^七", "19670707", "M"))) == "AA"
    assert ack_code_of(post(http, _as("FNZYY", adt("N2", "ZN1^^^FNZYY^MR", "王^七", "19970707", "F")))) == "AA"
    ack = post(http, _as("FNZYY", merge("N3", "ZN1^^^FNZYY^MR", "王^七", "19970707", "F", "ON1^^^阜宁县人民医院^MR")))
    assert ack_code_of(ack) == "AE" and "|MRG^1^1|" in err_lines(ack)[0], ack


# --- the take-over in one batch -------------------------------------------------------------------------


def _the_stay_stays_the_labs(fhir: TestClient) -> None:
    """The V100 stay is still under the record the lab's result named (its Observation's subject), and the
    refused admission wrote nothing (no record of MRN-V1)."""
    (result,) = read(fhir, "Observation")
    assert one_visit_numbered(fhir, "V100")["subject"] == result["subject"]
    assert not read(fhir, "Patient", identifier="MRN-V1")


def test_the_labs_result_the_admission_and_the_next_result_in_one_batch_are_filed_as_singly(
        engine: Engine, fhir: TestClient) -> None:
    outcomes = engine.ingestor.process([(_cr(_lab("ORU-L1", "L-77^^^LIS^PI", ts(5))), "file", "file:1"),
                                        (_cr(visit_adt("A01", "A01-1", ADMITTED, "V100", ts(4))), "file", "file:2"),
                                        (_cr(_lab("ORU-L2", "L-77^^^LIS^PI", ts(3))), "file", "file:3")])
    assert [ack_code_of(o.ack) for o in outcomes] == ["AA", "AA", "AA"], [o.ack for o in outcomes]
    _filed_in_the_stay(fhir, 2)


def test_a_batch_s_placeholder_whose_number_the_his_registered_for_another_record_is_not_taken_over(
        engine: Engine, fhir: TestClient) -> None:
    """rvvisit33 HIGH 2 in one batch: the HIS's A04 of 李一 (MRN-C) names both his MRN and the LIS's L-77; the
    lab's result under L-77 makes the V100 stay; the namesake MRN-V1's admission under V100 must not take
    MRN-C's stay -- with the A04 stored before the batch, and with it in the batch."""
    when = ts(6)
    a04 = (msh("HOSPA", "HIS", "ADT^A04^ADT_A01", when, "A04-C") + f"EVN|A04|{when}\n"
           + "PID|1||MRN-C^^^HOSPA^MR~L-77^^^LIS^PI||李^一||19500101|M\n" + pv1("V901", when, "O"))
    outcomes = engine.ingestor.process([(_cr(a04), "file", "file:0"),
                                        (_cr(_lab("ORU-L1", "L-77^^^LIS^PI", ts(5))), "file", "file:1"),
                                        (_cr(visit_adt("A01", "A01-1", ADMITTED, "V100", ts(4))), "file", "file:2")])
    assert [ack_code_of(o.ack) for o in outcomes] == ["AA", "AA", "AE"], [o.ack for o in outcomes]
    _the_stay_stays_the_labs(fhir)


def test_a_batch_s_placeholder_the_batch_merges_into_a_his_record_is_not_taken_over(
        engine: Engine, fhir: TestClient) -> None:
    """rvvisit33 HIGH 1 in one batch: the HIS's A40 says the LIS's L-77 IS its 李一 (MRN-C); the namesake MRN-V1's
    admission under V100 does not take the stay the lab's result made under L-77."""
    when = ts(6)
    a04 = (msh("HOSPA", "HIS", "ADT^A04^ADT_A01", when, "A04-C") + f"EVN|A04|{when}\n"
           + "PID|1||MRN-C^^^HOSPA^MR||李^一||19500101|M\n" + pv1("V901", when, "O"))
    a40 = (msh("HOSPA", "HIS", "ADT^A40^ADT_A39", ts(5, 9), "A40-C") + f"EVN|A40|{ts(5, 9)}\n"
           + "PID|1||MRN-C^^^HOSPA^MR||李^一||19500101|M\n" + "MRG|L-77^^^LIS^PI\n")
    outcomes = engine.ingestor.process([(_cr(a04), "file", "file:0"),
                                        (_cr(_lab("ORU-L1", "L-77^^^LIS^PI", ts(5))), "file", "file:1"),
                                        (_cr(a40), "file", "file:2"),
                                        (_cr(visit_adt("A01", "A01-1", ADMITTED, "V100", ts(4))), "file", "file:3")])
    codes = [ack_code_of(o.ack) for o in outcomes]
    assert codes == ["AA", "AA", "AA", "AE"], [o.ack for o in outcomes]
    _the_stay_stays_the_labs(fhir)


def test_an_a47_moving_a_members_number_onto_another_person_is_refused(both: tuple[Engine, TestClient]) -> None:
    """A47 (change patient identifier list) goes through the same merge handler: FNZYY re-numbering FNXRMYY's
    OS1 (郑八) as its own 王八 is refused at MRG-1, nothing written."""
    _, http = both
    assert ack_code_of(post(http, adt("S1", "OS1^^^FNXRMYY^MR", "郑^八", "19680808", "M"))) == "AA"
    assert ack_code_of(post(http, _as("FNZYY", adt("S2", "ZS1^^^FNZYY^MR", "王^八", "19980808", "F")))) == "AA"
    a47 = merge("S3", "ZS1^^^FNZYY^MR", "王^八", "19980808", "F", "OS1^^^FNXRMYY^MR", "A34")
    ack = post(http, _as("FNZYY", a47.replace("ADT^A34^", "ADT^A47^").replace("EVN|A34|", "EVN|A47|")))
    assert ack_code_of(ack) == "AE" and "|MRG^1^1|" in err_lines(ack)[0], ack
    (ours,) = patients(http, "urn:huren:mrn:FNZYY|ZS1")
    assert not ours.get("link"), ours


def test_a_batch_s_lab_visit_number_of_the_lis_s_own_is_not_taken_over(engine: Engine, fhir: TestClient) -> None:
    """rvvisit33 LOW 5 in one batch: the lab's PV1-19 ``V100^^^LIS`` is the LIS's number, not the HIS's visit to
    take: the batch's admission under V100 is not a take-over of it."""
    lab = _lab("ORU-L1", "L-77^^^LIS^PI", ts(5)).replace("||V100|", "||V100^^^LIS|")
    assert "V100^^^LIS" in lab
    outcomes = engine.ingestor.process([(_cr(lab), "file", "file:1"),
                                        (_cr(visit_adt("A01", "A01-1", ADMITTED, "V100", ts(4))), "file", "file:2")])
    assert b"taken over" not in outcomes[1].ack, outcomes[1].ack


def test_the_admission_an_update_and_the_next_result_in_one_batch_are_filed_as_singly(
        engine: Engine, mllp: int, fhir: TestClient) -> None:
    accepted(mllp, _lab("ORU-L1", "L-77^^^LIS^PI", ts(5)))
    outcomes = engine.ingestor.process([
        (_cr(visit_adt("A01", "A01-1", ADMITTED, "V100", ts(4))), "file", "file:1"),
        (_cr(visit_adt("A08", "A08-1", ADMITTED, "V100", ts(4, 10))), "file", "file:2"),
        (_cr(_lab("ORU-L2", "L-77^^^LIS^PI", ts(3))), "file", "file:3")])
    assert [ack_code_of(o.ack) for o in outcomes] == ["AA", "AA", "AA"], [o.ack for o in outcomes]
    _filed_in_the_stay(fhir, 2)


def test_the_admission_an_update_and_the_next_result_sent_singly_are_filed(
        engine: Engine, mllp: int, fhir: TestClient) -> None:
    """The single answer the batch probe above is held to."""
    accepted(mllp, _lab("ORU-L1", "L-77^^^LIS^PI", ts(5)))
    accepted(mllp, visit_adt("A01", "A01-1", ADMITTED, "V100", ts(4)))
    accepted(mllp, visit_adt("A08", "A08-1", ADMITTED, "V100", ts(4, 10)))
    accepted(mllp, _lab("ORU-L2", "L-77^^^LIS^PI", ts(3)))
    _filed_in_the_stay(fhir, 2)


def _visit(message: str, number: str) -> str:
    return message.replace("PV1|1|O\r", "PV1|1|I" + "|" * 17 + number + "\r", 1)


def test_the_owners_warning_leans_on_the_batch_s_member_message_it_read(both: tuple[Engine, TestClient]) -> None:
    """One batch: FNZYY's admission of 王二 under FNXRMYY's OX1, refused at its write (its visit number is
    another patient's stay: PV1-19), then FNXRMYY registers 郑一 under OX1. Nothing of FNZYY names OX1: the
    owner's registration is not warned, nothing is counted for FNZYY."""
    engine, http = both
    assert ack_code_of(post(http, _as("FNZYY", _visit(adt("X0", "ZX0^^^FNZYY^MR", "卫^十", "19800101", "M"),
                                                      "VX7")))) == "AA"
    before = _contradicted(engine, http).get("FNXRMYY", 0)
    body = ("FHS|^~\\&|HIS|FNXRMYY\rBHS|^~\\&|HIS|FNXRMYY\r"
            + _as("FNZYY", _visit(adt("X1", "OX1^^^FNXRMYY^MR", "王^二", "19900202", "F", "A01"), "VX7"))
            + adt("X2", "OX1^^^FNXRMYY^MR", "郑^一", "19600101", "M")
            + "BTS|2\rFTS|1\r")
    ack = post(http, body)
    assert b"MSA|AE|X1" in ack and b"MSA|AA|X2" in ack, ack
    assert [p["gender"] for p in patients(http, f"{MRN}|OX1")] == ["male"]
    x2 = ack[ack.index(b"MSA|AA|X2"):]
    assert b"|W|" not in x2.split(b"MSH|")[0], ack
    assert _contradicted(engine, http).get("FNXRMYY", 0) == before


def test_the_kept_apart_advice_for_a_member_named_by_its_alias_is_the_members(both: tuple[Engine, TestClient]) -> None:
    """FNZYY holds its own YK1; its message names YK1^^^阜宁县人民医院^MR (FNXRMYY by its name, which holds no
    record of YK1): kept apart as FNXRMYY's, and the advice is the member's, not 'declare it' (site load
    refuses a member's code in mrn_authorities); counted under FNXRMYY's code."""
    engine, http = both
    before = _fidelity(engine, http, "FNZYY").get("kept_apart", {}).get("FNXRMYY", 0)
    assert ack_code_of(post(http, _as("FNZYY", adt("Y1", "YK1^^^FNZYY^MR", "蒋^八", "19800808", "F")))) == "AA"
    (warning,) = _warnings(post(http, _as("FNZYY", adt("Y2", "YK1^^^阜宁县人民医院^MR", "蒋^八", "19800808", "F"))))
    assert "declare it in institutions.yaml" not in warning and "cannot be declared" in warning, warning
    assert _fidelity(engine, http, "FNZYY")["kept_apart"]["FNXRMYY"] == before + 1
