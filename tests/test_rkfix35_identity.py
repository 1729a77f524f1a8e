"""rkfix35: the member's number back only onto the owner's person, never on the owner's silence; an A45 off a
member's stale record filed with a warning, a move onto the member's number still refused.

*The number back (``persons._agreed``):* FNZYY's record keeps FNXRMYY's number apart once FNXRMYY registered it as
another person. A later FNZYY result naming the number moves it back only when neither its PID NOR the record it
writes contradicts FNXRMYY's record (the same-person rule of the re-key), and only while FNXRMYY holds a record of
the number: a lab's PID of the name alone, or a wrong sex, contradicts no one; FNXRMYY's record deleted is silence.
*A45:* the move off a record FNZYY keyed by FNXRMYY's number alone, stale since FNXRMYY registered the number as
another person, is filed (ERR W 205 at MRG-1, counted for FNZYY's operator); a move onto a record FNXRMYY's number
keys, the PID another person than FNXRMYY's record, is still refused (AE at PID-3). Real HL7 through
``POST /hl7v2`` into the real store on each backend (SQLite, mongomock), read back over ``/fhir``."""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from tests.hl7_calls import err_lines, post
from tests.module_store import undeclared_eng as module_eng  # noqa: F401 -- a site declaring none (decl42), each backend
from tests.test_ident35_members import _a45, _pid, _pv1, _rekeyed_by_the_owner, _visit_subject, _zy
from tests.test_mfix34_members import APART, FNZYY_MRN, _fnzyy, _tokens, both  # noqa: F401
from tests.test_rvident35_probes import _wang_wu_rekeyed_then_owner_says_feng_san
from tests.test_rvidentity32_probes import MRN, adt, oru, patients

Both = tuple[Engine, TestClient, dict[str, str]]


def _errors(ack: bytes, severity: str) -> list[str]:
    return [e for e in err_lines(ack) if e.split("|")[4] == severity]


def test_a_result_of_a_wrong_sex_does_not_put_the_owners_number_on_another_persons_record(both: Both) -> None:  # noqa: F811
    """FNZYY's record of 王五 (F, 1980) keeps RA1 apart (FNXRMYY's RA1 is 冯三, M, 1961). FNZYY's result names RA1
    beside, its PID 王五, M, no birth date -- against 冯三 only the name differs: the PID contradicts no one, but the
    record the number would go back onto is 王五 (F, 1980): RA1 stays apart, the result is filed under her record,
    one version of it (nothing written to it); FNXRMYY's MRN answers 冯三 alone."""
    _, http, clinician = both
    pid3 = _wang_wu_rekeyed_then_owner_says_feng_san(http, "RA1")
    (before,) = patients(http, f"{FNZYY_MRN}|ZRA1")
    ack = post(http, _fnzyy(oru("RA1E", pid3, "王^五", "", "M", "RAGLU")))
    assert ack_code_of(ack) == "AA" and not _errors(ack, "E"), ack
    (own,) = patients(http, f"{FNZYY_MRN}|ZRA1")
    assert own["meta"]["versionId"] == before["meta"]["versionId"], own["meta"]
    assert f"{MRN}|RA1" not in _tokens(own) and f"{APART}|RA1" in _tokens(own), own["identifier"]
    obs = http.get("/fhir/Observation", params={"code": "RAGLU"}).json()
    assert [e["resource"]["subject"]["reference"] for e in obs.get("entry", [])] == [f"Patient/{own['id']}"], obs
    found = http.get("/fhir/Patient", params={"identifier": f"{MRN}|RA1"}, headers=clinician).json()
    assert [e["resource"]["gender"] for e in found.get("entry", [])] == ["male"], found


def test_a_batch_of_a_thin_result_leaves_the_number_apart_on_another_persons_record(both: Both) -> None:  # noqa: F811
    """The same in one batch of two FNZYY results for 王五's record, the first of the name alone, the second in full:
    AA, AA (the second with its W: 王五 contradicts FNXRMYY's 冯三), RA2 apart throughout, nothing written to the
    record -- the batch answers as the two sent singly."""
    _, http, _ = both
    pid3 = _wang_wu_rekeyed_then_owner_says_feng_san(http, "RA2")
    (before,) = patients(http, f"{FNZYY_MRN}|ZRA2")
    body = ("FHS|^~\\&|HIS|FNZYY\rBHS|^~\\&|HIS|FNZYY\r" + _fnzyy(oru("RA2E", pid3, "王^五", "", "", "RBGLU1"))
            + _fnzyy(oru("RA2F", pid3, "王^五", "19800505", "F", "RBGLU2")) + "BTS|2\rFTS|1\r")
    ack = post(http, body)
    assert b"MSA|AA|RA2E" in ack and b"MSA|AA|RA2F" in ack and not _errors(ack, "E"), ack
    assert len(_errors(ack, "W")) == 1, ack
    (own,) = patients(http, f"{FNZYY_MRN}|ZRA2")
    assert own["meta"]["versionId"] == before["meta"]["versionId"], own["meta"]
    assert f"{MRN}|RA2" not in _tokens(own) and f"{APART}|RA2" in _tokens(own), own["identifier"]


def test_the_owner_holding_no_record_of_the_number_is_not_its_agreement(both: Both) -> None:  # noqa: F811
    """FNZYY's record of 冯三 keeps RB1 apart (FNXRMYY's re-key, then FNZYY's own A08); FNXRMYY's record of RB1 is
    then deleted over FHIR. FNZYY's result naming RB1 beside for 冯三: filed, but the number stays apart -- no record
    of FNXRMYY says RB1 is 冯三 (rvident35 LOW: it had gone back, answering FNXRMYY's MRN with FNZYY's record
    until FNXRMYY registered RB1 again)."""
    _, http, _ = both
    pid3 = _rekeyed_by_the_owner(http, "RB1")
    (owner,) = [p for p in patients(http, f"{MRN}|RB1")]
    gone = http.delete(f"/fhir/Patient/{owner['id']}")
    assert gone.status_code in (200, 204), gone.text
    assert not patients(http, f"{MRN}|RB1")
    ack = post(http, _fnzyy(oru("RB1E", pid3, "冯^三", "19610101", "M", "RCGLU")))
    assert ack_code_of(ack) == "AA" and not _errors(ack, "E"), ack
    (own,) = patients(http, f"{FNZYY_MRN}|ZRB1")
    assert f"{MRN}|RB1" not in _tokens(own) and f"{APART}|RB1" in _tokens(own), own["identifier"]
    assert not patients(http, f"{MRN}|RB1")


def test_the_owner_agreeing_with_the_record_and_the_pid_still_puts_it_back(both: Both) -> None:  # noqa: F811
    """The guard of the rule: FNZYY's record of 冯三 (the owner agreeing again) and a result whose PID is the name
    alone -- neither contradicts FNXRMYY's 冯三: RB2 back under FNXRMYY's MRN system, no ERR."""
    _, http, _ = both
    pid3 = _rekeyed_by_the_owner(http, "RB2")
    ack = post(http, _fnzyy(oru("RB2E", pid3, "冯^三", "", "", "RDGLU")))
    assert ack_code_of(ack) == "AA" and not err_lines(ack), ack
    (own,) = patients(http, f"{FNZYY_MRN}|ZRB2")
    assert f"{MRN}|RB2" in _tokens(own) and f"{APART}|RB2" not in _tokens(own), own["identifier"]


# --- A45 -----------------------------------------------------------------------------------------------------------


def test_an_a45_off_a_stale_member_keyed_record_is_filed_with_a_warning_counted_for_the_sender(both: Both) -> None:  # noqa: F811
    """FNZYY admitted 冯三 under FNXRMYY's RC1 alone; FNXRMYY registers RC1 as 陈四. FNZYY's A45 moving the visit
    off that record to its own ZRC1 (冯三): AA, one ERR, W 205 at MRG-1 naming nothing of 陈四's; the visit under
    ZRC1's record, nothing written to the stale one; FNZYY's fidelity counts it under FNXRMYY
    (``member_contradicted``)."""
    engine, http, _ = both
    admitted = _zy("RC1A", "A01", "ADT_A01", _pid("RC1^^^FNXRMYY^MR", "冯^三", "19610101", "M") + _pv1("ZYRC1"))
    assert ack_code_of(post(http, admitted)) == "AA"
    stale = _visit_subject(http, "ZYRC1")
    assert ack_code_of(post(http, adt("RC1B", "RC1^^^FNXRMYY^MR", "陈^四", "19920303", "F"))) == "AA"
    assert ack_code_of(post(http, _fnzyy(adt("RC1C", "ZRC1^^^FNZYY^MR", "冯^三", "19610101", "M")))) == "AA"
    before = http.get(f"/fhir/{stale}").json()
    counted = _counted(engine)
    ack = post(http, _a45("RC1D", "ZRC1^^^FNZYY^MR", "冯^三", "19610101", "M", "RC1^^^FNXRMYY^MR", "ZYRC1"))
    assert ack_code_of(ack) == "AA", ack
    (err,) = err_lines(ack)
    fields = err.split("|")
    assert fields[2] == "MRG^1^1" and fields[3].startswith("205") and fields[4] == "W", err
    for word in ("陈", "19920303", "RC1"):
        assert word not in fields[8], (word, err)
    (own,) = patients(http, f"{FNZYY_MRN}|ZRC1")
    assert _visit_subject(http, "ZYRC1") == f"Patient/{own['id']}" != stale
    after = http.get(f"/fhir/{stale}").json()
    assert after["meta"]["versionId"] == before["meta"]["versionId"], after["meta"]
    assert _counted(engine) == counted + 1
    doc = engine.ingestor.messages.get(message_id("FNZYY", "RC1D"))
    assert doc is not None and doc["status"] == "processed", doc


def _counted(engine: Engine) -> int:
    return sum(int(w.get("count") or 1) for w in engine.ingestor.messages.fidelity.find({"institution": "FNZYY"})
               if w.get("count_as") == "member_contradicted" and w.get("count_key") == "FNXRMYY")


def test_an_a45_moving_a_visit_onto_a_record_the_members_number_keys_for_another_person_is_refused(
        both: Both) -> None:  # noqa: F811
    """FNXRMYY registers RD1 as 陈四. FNZYY's A45 moves its visit ZYRD1 (of its ZRD1, 冯三) onto the record FNXRMYY's
    RD1 alone keys, its PID 冯三: that says 冯三's visit is the patient of FNXRMYY's number -- the PID's hold
    (member33), AE 205 at PID-3, nothing written: the visit stays under ZRD1's record."""
    _, http, _ = both
    assert ack_code_of(post(http, adt("RD1A", "RD1^^^FNXRMYY^MR", "陈^四", "19920303", "F"))) == "AA"
    admitted = _zy("RD1B", "A01", "ADT_A01", _pid("ZRD1^^^FNZYY^MR", "冯^三", "19610101", "M") + _pv1("ZYRD1"))
    assert ack_code_of(post(http, admitted)) == "AA"
    (own,) = patients(http, f"{FNZYY_MRN}|ZRD1")
    ack = post(http, _a45("RD1C", "RD1^^^FNXRMYY^MR", "冯^三", "19610101", "M", "ZRD1^^^FNZYY^MR", "ZYRD1"))
    assert ack_code_of(ack) == "AE", ack
    (err,) = _errors(ack, "E")
    assert err.split("|")[2].startswith("PID^1^3") and err.split("|")[3].startswith("205"), err
    assert _visit_subject(http, "ZYRD1") == f"Patient/{own['id']}"


# --- the batch's registrar: the owner's re-key registers nothing in a batch either -----------------------------


def _placeholder_then_batch(http: TestClient, n: str, *messages: str) -> bytes:
    """FNZYY's result makes a placeholder Z<n> naming FNXRMYY's <n> (冯三) while FNXRMYY holds none; then one batch
    (a relay): FNXRMYY's HIS A04 registering <n> as 陈四 (re-keying the placeholder, its identifier alone), then
    ``messages``."""
    result = _fnzyy(oru(f"{n}A", f"Z{n}^^^FNZYY^MR~{n}^^^FNXRMYY^MR", "冯^三", "19610101", "M", f"{n}GLU"))
    assert ack_code_of(post(http, result)) == "AA"
    owner = adt(f"{n}B", f"{n}^^^FNXRMYY^MR", "陈^四", "19920303", "F")
    return post(http, "FHS|^~\\&|HIS|FNZYY\rBHS|^~\\&|HIS|FNZYY\r" + owner + "".join(messages)
                + f"BTS|{len(messages) + 1}\rFTS|1\r")


def test_in_a_batch_the_owners_rekey_does_not_register_the_members_placeholder(both: Both) -> None:  # noqa: F811
    """After the owner's A04 of the batch, FNZYY's LIS restates its placeholder ZRE1 as 王五 (an A08: accepted with
    the restatement's W, the record unregistered) and back as 冯三 (another A08). Sent singly the second meets a
    record no registration spoke for -- the owner's re-key registers nothing (``registered_by``): AA with the W. The
    batch answers alike: ``_registered_in_batch`` had read the owner's A04, which wrote the placeholder's identifier
    alone, as the record's registration -- FNXRMYY's HIS its registrar -- and refused FNZYY's LIS (AE)."""
    _, http, _ = both
    ack = _placeholder_then_batch(http, "RE1",
                                  _fnzyy(adt("RE1C", "ZRE1^^^FNZYY^MR", "王^五", "19800505", "F", "A08", app="LIS")),
                                  _fnzyy(adt("RE1D", "ZRE1^^^FNZYY^MR", "冯^三", "19610101", "M", "A08", app="LIS")))
    codes = [line.split("|")[1] for line in ack.decode().split("\r") if line.startswith("MSA|")]
    assert codes == ["AA", "AA", "AA"], ack
    (own,) = patients(http, f"{FNZYY_MRN}|ZRE1")
    assert own["gender"] == "male" and own["birthDate"] == "1961-01-01", own


def test_singly_the_members_restatements_of_its_placeholder_are_accepted(both: Both) -> None:  # noqa: F811
    """The control: the owner's A04 alone in the batch, FNZYY's two A08s sent singly after it -- AA, AA."""
    _, http, _ = both
    assert ack_code_of(_placeholder_then_batch(http, "RE2")) == "AA"
    for control, name, birth, sex in (("RE2C", "王^五", "19800505", "F"), ("RE2D", "冯^三", "19610101", "M")):
        ack = post(http, _fnzyy(adt(control, "ZRE2^^^FNZYY^MR", name, birth, sex, "A08", app="LIS")))
        assert ack_code_of(ack) == "AA", ack
