"""Another member institution's number: what the thirty-third round left (identity34).

- The converse of member33: FNXRMYY (the number's owner) registers, under its own number, a person
  other than the one FNZYY's record already names under ``<n>^^^FNXRMYY^MR``. Filed (the owner's
  number is the owner's to give), under FNXRMYY's own record -- the two records stay two -- with ERR W
  at PID-3 naming no other institution, number nor person, and counted for FNZYY's operator
  (``/admin/fidelity`` ``member_contradicted``, per owner): FNZYY's reference is the one to correct.
- A merge (A40, A18, A34) whose MRG-1 names another member's number is held as a PID naming it is:
  the PID's person against the member's own record of the number; and a merge whose PID names a
  member's number holds MRG-1's record (as stored) against it. Another person: AE 205 at MRG-1,
  nothing written, the raw kept.
- The kept-apart warning for a member's code no longer advises declaring it (site load refuses that).
- The fidelity view counts from fields the warning stores (``count_as``, ``count_key``); a row written
  before them is still counted from its text.

Real HL7 over ``POST /hl7v2`` into the real store on each backend (SQLite, mongomock), read back over
``/fhir``, ``/admin/fidelity`` and the message store."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import engine_and_client
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_rvidentity32_probes import MRN, adt, merge, oru, patients, subjects

FNZYY_MRN = "urn:huren:mrn:FNZYY"


both = engine_and_client("i34")


def _fnzyy(message: str) -> str:
    return message.replace("|FNXRMYY|HUREN|", "|FNZYY|HUREN|", 1)


def _fidelity(engine: Engine, http: TestClient, institution: str) -> dict:
    """``/admin/fidelity``'s JSON row of ``institution`` as an operator's system token reads it ({} if none): the
    round-34/36 identity tests' (idfix34_owner, rvidentity34, priv36_refusals import it)."""
    ops = engine.auth.issue_system_token("ops", "system/MessageHeader.cr")
    r = http.get("/admin/fidelity", params={"institution": institution}, headers={"Authorization": f"Bearer {ops}"})
    assert r.status_code == 200, r.text
    return r.json()["institutions"].get(institution, {})


def _warnings(ack: bytes) -> list[str]:
    assert ack_code_of(ack) == "AA", ack
    return [e for e in err_lines(ack) if "|W|" in e or e.split("|")[4:5] == ["W"]]


def _refused_at_mrg1(engine: Engine, ack: bytes, control: str) -> None:
    assert ack_code_of(ack) == "AE", ack
    (err,) = err_lines(ack)
    assert "|MRG^1^1|" in err and "|205" in err, err
    kept = engine.ingestor.messages.get(message_id("FNZYY", control))
    assert kept is not None and kept["status"] == "quarantined"
    assert "MRG|" in base64.b64decode(kept["raw"]).decode("utf-8")


# --- 1. the number's owner registers another person under it ---------------------------------------


def test_the_owner_registering_another_person_under_its_number_is_filed_and_counted_for_the_member(
        both: tuple[Engine, TestClient]) -> None:
    """FNZYY filed 王二 under FNXRMYY's RVA (FNXRMYY held no record of it); FNXRMYY then registers 郑一 under
    RVA: AA with W 205 at PID-3 (no number, name nor institution echoed), two records under the MRN, not
    linked; FNZYY's operator counts it (per owner), FNXRMYY's does not; FNZYY's next message naming RVA
    for 王二 is now refused (member33's rule), and FNXRMYY's own result files under its record."""
    engine, http = both
    before = _fidelity(engine, http, "FNZYY").get("member_contradicted", {}).get("FNXRMYY", 0)
    assert ack_code_of(post(http, _fnzyy(adt("RA1", "RVA^^^FNXRMYY^MR", "王^二", "19900202", "F")))) == "AA"
    ack = post(http, adt("RA2", "RVA^^^FNXRMYY^MR", "郑^一", "19600101", "M"))
    (warning,) = _warnings(ack)
    assert "|PID^1^3|" in warning and "|205" in warning, warning
    assert "RVA" not in warning and "王" not in warning and "FNZYY" not in warning, warning
    # FNZYY's reference re-keyed by the owner's registration under FNZYY's kept-apart system (ownfix34):
    # two records, not linked, and the owner's MRN answers the owner's person only
    found = patients(http, f"{MRN}|RVA") + patients(http, "urn:huren:mrn:FNZYY:FNXRMYY|RVA")
    assert len(found) == 2 and [p["gender"] for p in found] == ["male", "female"], found
    assert not any(p.get("link") for p in found), found
    assert _fidelity(engine, http, "FNZYY")["member_contradicted"]["FNXRMYY"] == before + 1
    assert "FNXRMYY" not in _fidelity(engine, http, "FNXRMYY").get("member_contradicted", {})
    (row,) = [i for i in _fidelity(engine, http, "FNZYY")["items"] if i["code"] == "205" and "also named" in i["message"]]
    assert row["example_message"] == "", row  # FNXRMYY's message is not FNZYY's to open
    ack = post(http, _fnzyy(oru("RA3", "RVA^^^FNXRMYY^MR", "王^二", "19900202", "F", "I34GLU", app="HIS")))
    assert ack_code_of(ack) == "AE" and "|PID^1^3|" in err_lines(ack)[0], ack
    assert ack_code_of(post(http, oru("RA4", "RVA^^^FNXRMYY^MR", "郑^一", "19600101", "M", "I34GLU"))) == "AA"
    (his,) = [p for p in found if p["gender"] == "male"]
    assert subjects(http, "I34GLU") == [f"Patient/{his['id']}"]


def test_the_owner_registering_the_same_person_or_a_number_no_member_named_is_not_warned(
        both: tuple[Engine, TestClient]) -> None:
    """The referral's way: FNZYY filed 冯三 under FNXRMYY's RVB, FNXRMYY registers 冯三: nothing to tell.
    A number no other member named: nothing either."""
    _, http = both
    assert ack_code_of(post(http, _fnzyy(adt("RB1", "RVB^^^FNXRMYY^MR", "冯^三", "19610101", "M")))) == "AA"
    assert _warnings(post(http, adt("RB2", "RVB^^^FNXRMYY^MR", "冯^三", "19610101", "M"))) == []
    assert _warnings(post(http, adt("RB3", "RVC^^^FNXRMYY^MR", "陈^四", "19620101", "F"))) == []


def test_the_owner_s_correction_to_another_person_is_warned_too(both: tuple[Engine, TestClient]) -> None:
    """FNXRMYY's record RVD was 沈八 when FNZYY filed him under it; FNXRMYY's registering HIS restates RVD
    as 韩九 (its correction, A08): filed with the restatement's W and the member's."""
    engine, http = both
    before = _fidelity(engine, http, "FNZYY").get("member_contradicted", {}).get("FNXRMYY", 0)
    assert ack_code_of(post(http, adt("RD1", "RVD^^^FNXRMYY^MR", "沈^八", "19750808", "M"))) == "AA"
    assert ack_code_of(post(http, _fnzyy(adt("RD2", "RVD^^^FNXRMYY^MR", "沈^八", "19750808", "M")))) == "AA"
    warnings = _warnings(post(http, adt("RD3", "RVD^^^FNXRMYY^MR", "韩^九", "19990909", "F", "A08")))
    assert len(warnings) == 2 and all("|PID^1^3|" in w for w in warnings), warnings
    assert _fidelity(engine, http, "FNZYY")["member_contradicted"]["FNXRMYY"] == before + 1


# --- 2. a merge naming another member's number ------------------------------------------------------


@pytest.mark.parametrize("event", ["A40", "A18", "A34"])
def test_a_merge_of_a_member_s_number_into_another_person_is_refused(
        both: tuple[Engine, TestClient], event: str) -> None:
    """FNXRMYY's MG<e> is 郑一; FNZYY merges MRG-1 ``MG<e>^^^FNXRMYY^MR`` into its 王二: AE 205 at MRG-1, nothing
    written (王二's record replaces nothing), the raw kept quarantined."""
    engine, http = both
    number, own = f"MG{event}", f"ZG{event}"
    assert ack_code_of(post(http, adt(f"G1{event}", f"{number}^^^FNXRMYY^MR", "郑^一", "19600101", "M"))) == "AA"
    assert ack_code_of(post(http, _fnzyy(adt(f"G2{event}", f"{own}^^^FNZYY^MR", "王^二", "19900202", "F")))) == "AA"
    ack = post(http, _fnzyy(merge(f"G3{event}", f"{own}^^^FNZYY^MR", "王^二", "19900202", "F",
                                  f"{number}^^^FNXRMYY^MR", event)))
    _refused_at_mrg1(engine, ack, f"G3{event}")
    text = ack.decode("utf-8")
    assert "郑" not in text and "19600101" not in text, text
    (ours,) = patients(http, f"{FNZYY_MRN}|{own}")
    assert not ours.get("link"), ours


def test_a_merge_of_a_member_s_number_into_the_same_person_is_filed(both: tuple[Engine, TestClient]) -> None:
    """The referral's merge: FNZYY first filed 冯三 under FNXRMYY's MH1, then gives him its own ZH1 and merges
    the first record into it: AA, the record of MH1 replaced by ZH1's."""
    _, http = both
    assert ack_code_of(post(http, adt("H1", "MH1^^^FNXRMYY^MR", "冯^三", "19610101", "M"))) == "AA"
    assert ack_code_of(post(http, _fnzyy(adt("H2", "MH1^^^FNXRMYY^MR", "冯^三", "19610101", "M")))) == "AA"
    assert ack_code_of(post(http, _fnzyy(adt("H3", "ZH1^^^FNZYY^MR", "冯^三", "19610101", "M")))) == "AA"
    ack = post(http, _fnzyy(merge("H4", "ZH1^^^FNZYY^MR", "冯^三", "19610101", "M", "MH1^^^FNXRMYY^MR")))
    assert ack_code_of(ack) == "AA", ack
    (ours,) = patients(http, f"{FNZYY_MRN}|ZH1")
    assert any(link["type"] == "replaces" for link in ours.get("link") or ()), ours


def test_a_merge_of_another_person_into_a_member_s_number_is_refused(both: tuple[Engine, TestClient]) -> None:
    """FNZYY's merge whose PID names FNXRMYY's MI1 (褚五, as FNXRMYY's record) and whose MRG-1 names FNZYY's
    own ZI1 (卫六): the merge would make 卫六 FNXRMYY's patient -- AE 205 at MRG-1, ZI1 untouched."""
    engine, http = both
    assert ack_code_of(post(http, adt("I1", "MI1^^^FNXRMYY^MR", "褚^五", "19700505", "M"))) == "AA"
    assert ack_code_of(post(http, _fnzyy(adt("I2", "ZI1^^^FNZYY^MR", "卫^六", "19950606", "F")))) == "AA"
    ack = post(http, _fnzyy(merge("I3", "MI1^^^FNXRMYY^MR", "褚^五", "19700505", "M", "ZI1^^^FNZYY^MR")))
    _refused_at_mrg1(engine, ack, "I3")
    (ours,) = patients(http, f"{FNZYY_MRN}|ZI1")
    assert ours.get("active") is not False and not ours.get("link"), ours


def test_a_merge_refused_in_a_batch_against_the_member_s_record_the_batch_writes(
        both: tuple[Engine, TestClient]) -> None:
    """One batch: FNXRMYY registers MJ1 (郑一), then FNZYY merges MJ1^^^FNXRMYY into its 王二: the merge is
    held to the version the first message writes (nothing stored yet) and refused."""
    _, http = both
    assert ack_code_of(post(http, _fnzyy(adt("J0", "ZJ1^^^FNZYY^MR", "王^二", "19900202", "F")))) == "AA"
    body = ("FHS|^~\\&|HIS|FNXRMYY\rBHS|^~\\&|HIS|FNXRMYY\r"
            + adt("J1", "MJ1^^^FNXRMYY^MR", "郑^一", "19600101", "M")
            + _fnzyy(merge("J2", "ZJ1^^^FNZYY^MR", "王^二", "19900202", "F", "MJ1^^^FNXRMYY^MR"))
            + "BTS|2\rFTS|1\r")
    ack = post(http, body)
    assert b"MSA|AA|J1" in ack and b"MSA|AE|J2" in ack, ack


# --- 3. the kept-apart advice for a member's code ---------------------------------------------------


def test_the_kept_apart_warning_for_a_member_s_code_does_not_advise_declaring_it(
        both: tuple[Engine, TestClient]) -> None:
    """FNZYY holds its own record MK1; its message names MK1^^^FNXRMYY^MR (FNXRMYY's number, kept apart): the
    W no longer says to declare the authority in mrn_authorities (site load refuses a member's code), it
    says what can be done; counted per authority. A LIS's authority keeps the declaring advice."""
    engine, http = both
    before = _fidelity(engine, http, "FNZYY").get("kept_apart", {}).get("FNXRMYY", 0)
    assert ack_code_of(post(http, _fnzyy(adt("K1", "MK1^^^FNZYY^MR", "蒋^七", "19800707", "F")))) == "AA"
    (warning,) = _warnings(post(http, _fnzyy(adt("K2", "MK1^^^FNXRMYY^MR", "蒋^七", "19800707", "F"))))
    assert "|PID^1^3|" in warning and "'FNXRMYY'" in warning, warning
    assert "declare it in institutions.yaml" not in warning and "cannot be declared" in warning, warning
    assert "PID-3.4 empty" in warning, warning
    fid = _fidelity(engine, http, "FNZYY")
    assert fid["kept_apart"]["FNXRMYY"] == before + 1
    advice = fid["advice"]["kept_apart"]["FNXRMYY"]  # the operator's, Chinese first
    assert advice.startswith("该号码是另一成员机构的病案号") and "mrn_authorities 中声明。" not in advice, advice
    (lis,) = _warnings(post(http, _fnzyy(oru("K3", "MK1^^^LISZ^PI", "蒋^七", "19800707", "F", "I34K"))))
    assert "declare it in institutions.yaml mrn_authorities" in lis, lis


# --- 5. the fidelity view counts from the warning's own fields ---------------------------------------


def test_the_fidelity_rows_carry_their_count_and_old_text_rows_are_still_counted(
        both: tuple[Engine, TestClient]) -> None:
    """(L2 without a birth date: not positively the record's person, so kept apart -- ident38.) A kept-apart warning's row stores ``count_as``/``count_key``; a row a release before wrote (text
    only, for a kept-apart and a taken-over warning) is counted from its text as before."""
    engine, http = both
    assert ack_code_of(post(http, adt("L1", "ML1^^^FNXRMYY^MR", "杨^十", "19650110", "M"))) == "AA"
    assert _warnings(post(http, oru("L2", "ML1^^^LISL^PI", "杨^十", "", "M", "I34L")))
    rows = [d for d in engine.ingestor.messages.fidelity_report("FNXRMYY") if d.get("count_key") == "LISL"]
    assert [(d["count_as"], d["count"]) for d in rows] == [("kept_apart", 1)], rows
    messages = engine.ingestor.messages
    with engine.store.transaction():
        for n, text in enumerate((
                "PID-3 record number under assigning authority 'OLDK' (PID-3.4) kept apart from the institution's "
                "own record of the same number (another system's number, keyed by its authority). If this "
                "authority is the institution's own record numbering, declare it in institutions.yaml "
                "mrn_authorities",
                "PV1-19 names a visit a lab's message made (written only because none was stored) under a record "
                "of assigning authority 'OLDT' (PID-3.4) that no registration has spoken for: taken over by this "
                "registration: the visit is filed under this message's patient")):
            messages.fidelity.replace({"_id": f"f-old{n}", "institution": "FNXRMYY", "kind": "warning", "value": "",
                                       "where": "PID-3", "code": "205", "message": text, "count": 3,
                                       "first_seen": "2026-01-01T00:00:00Z", "last_seen": "2026-01-01T00:00:00Z",
                                       "example_message": ""})
    fid = _fidelity(engine, http, "FNXRMYY")
    assert fid["kept_apart"]["OLDK"] == 3 and fid["taken_over"]["OLDT"] == 3 and fid["kept_apart"]["LISL"] == 1
