"""rvident35: probes of ident35 (the owner's re-key named by its own Provenance, the number back by a member's
result, A45 naming a member's number, ``persons.batch_version``).

Real HL7 through ``POST /hl7v2`` into the real store on each backend (SQLite, mongomock), read back over ``/fhir``.
A probe showing a defect was a strict xfail naming its severity (rkfix35 fixed the four and removed their marks;
the HIGH 2 probe's set-up rewritten so that it still reaches ``_agreed`` after idfix35); the others guard what ident35
got right."""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.convert import persons
from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import err_lines, post
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_ident35_members import _a45, _pid, _pv1, _rekeyed_by_the_owner, _visit_subject, _zy
from tests.test_mfix34_members import APART, FNZYY_MRN, _fnzyy, _tokens, both  # noqa: F401
from tests.test_rvidentity32_probes import MRN, adt, oru, patients
from tests.test_rvregistry34_probes import _answers

Both = tuple[Engine, TestClient, dict[str, str]]


def _batch(*messages: str) -> str:
    return ("FHS|^~\\&|HIS|FNZYY\rBHS|^~\\&|HIS|FNZYY\r" + "".join(messages)
            + f"BTS|{len(messages)}\rFTS|1\r")


def _codes(ack: bytes) -> list[str]:
    return [line.split("|")[1] for line in ack.decode().replace("\n", "\r").split("\r") if line.startswith("MSA|")]


def _owner_rekeyed_then_agreeing(http: TestClient, n: str) -> str:
    """FNXRMYY: 冯三 under <n>; FNZYY: its own Z<n>, <n> beside (冯三, the same person); FNXRMYY restates <n> as
    陈四 (FNZYY's record re-keyed at once); FNZYY's HIS restates its record (<n> kept apart in its statement: the
    record's version FNZYY's own), then FNXRMYY restates <n> as 冯三 again -- which puts back only what an owner's
    re-key left (idfix35), so the number stays apart until FNZYY's next message (``persons._agreed``): ident35's
    set-up (``_rekeyed_by_the_owner``; rkfix35: before idfix35 the owner's agreeing A08 alone left it there).
    Returns FNZYY's PID-3."""
    return _rekeyed_by_the_owner(http, n)


def _wang_wu_rekeyed_then_owner_says_feng_san(http: TestClient, n: str) -> str:
    """FNXRMYY: 王五 (F 1980) under <n>; FNZYY: its own Z<n> of 王五 with <n> beside (a referral, the same person);
    FNXRMYY's registering HIS restates <n> as 冯三 (M 1961): FNZYY's record of 王五 is re-keyed, <n> kept apart.
    The owner now agrees with 冯三 -- never with 王五. Returns FNZYY's PID-3."""
    assert ack_code_of(post(http, adt(f"{n}A", f"{n}^^^FNXRMYY^MR", "王^五", "19800505", "F"))) == "AA"
    pid3 = f"Z{n}^^^FNZYY^MR~{n}^^^FNXRMYY^MR"
    assert ack_code_of(post(http, _fnzyy(adt(f"{n}B", pid3, "王^五", "19800505", "F")))) == "AA"
    assert ack_code_of(post(http, adt(f"{n}C", f"{n}^^^FNXRMYY^MR", "冯^三", "19610101", "M", "A08"))) == "AA"
    (own,) = patients(http, f"{FNZYY_MRN}|Z{n}")
    assert f"{APART}|{n}" in _tokens(own) and f"{MRN}|{n}" not in _tokens(own), own
    return pid3


# --- the number back (persons._agreed): never onto another person's record -------------------------------------


def test_a_thin_result_does_not_put_the_owners_number_on_another_persons_record(both: Both) -> None:  # noqa: F811
    """FNZYY's record of 王五 (F, 1980) keeps PA1 apart: FNXRMYY's record of PA1 is 冯三 (M, 1961). FNZYY's LIS
    result for Z-PA1 names PA1 beside, its PID stating the name 王五 only (no sex, no birth date: common for a
    lab's PID). It contradicts neither record, so the guard files it -- but the record the re-key writes is
    王五's, which contradicts 冯三 in name, sex and birth date: the number must stay apart. It came back under
    FNXRMYY's MRN: a clinician searching FNXRMYY's PA1 (冯三) is answered FNZYY's 王五 and her results."""
    _, http, clinician = both
    pid3 = _wang_wu_rekeyed_then_owner_says_feng_san(http, "PA1")
    ack = post(http, _fnzyy(oru("PA1E", pid3, "王^五", "", "", "PAGLU")))
    assert ack_code_of(ack) == "AA", ack
    (own,) = patients(http, f"{FNZYY_MRN}|ZPA1")
    assert own["gender"] == "female" and own["birthDate"] == "1980-05-05", own
    assert f"{MRN}|PA1" not in _tokens(own) and f"{APART}|PA1" in _tokens(own), own["identifier"]
    found = http.get("/fhir/Patient", params={"identifier": f"{MRN}|PA1"}, headers=clinician).json()
    assert [e["resource"]["gender"] for e in found.get("entry", [])] == ["male"], found


def test_a_full_result_of_the_other_person_keeps_the_number_apart(both: Both) -> None:  # noqa: F811
    """The same record, FNZYY's result stating 王五 in full (F, 1980): it contradicts FNXRMYY's 冯三 -- filed under
    FNZYY's record with the W, PA2 stays apart; the search by FNXRMYY's MRN answers 冯三 alone."""
    _, http, clinician = both
    pid3 = _wang_wu_rekeyed_then_owner_says_feng_san(http, "PA2")
    ack = post(http, _fnzyy(oru("PA2E", pid3, "王^五", "19800505", "F", "PBGLU")))
    assert ack_code_of(ack) == "AA" and {e.split("|")[4] for e in err_lines(ack)} == {"W"}, ack
    (own,) = patients(http, f"{FNZYY_MRN}|ZPA2")
    assert f"{MRN}|PA2" not in _tokens(own) and f"{APART}|PA2" in _tokens(own), own["identifier"]
    found = http.get("/fhir/Patient", params={"identifier": f"{MRN}|PA2"}, headers=clinician).json()
    assert [e["resource"]["gender"] for e in found.get("entry", [])] == ["male"], found


def test_two_people_kept_apart_the_owner_agreeing_with_one_the_number_goes_back_to_that_one_only(
        both: Both) -> None:  # noqa: F811
    """FNZYY holds two records naming FNXRMYY's PB1: ZPB1W (王五, filed while FNXRMYY's PB1 was 王五) and ZPB1F
    (冯三, filed once FNXRMYY restated PB1 as 冯三; ZPB1W re-keyed then). FNXRMYY restates PB1 as 陈四 (ZPB1F
    re-keyed too), then as 冯三 again. FNZYY's results for both, each in full: 冯三's record gets PB1 back, 王五's
    keeps it apart (W); the search by FNXRMYY's MRN answers FNXRMYY's and FNZYY's records of 冯三 only."""
    _, http, clinician = both
    pid_w = _wang_wu_rekeyed_then_owner_says_feng_san(http, "PB1")
    pid_f = "ZPB1F^^^FNZYY^MR~PB1^^^FNXRMYY^MR"
    assert ack_code_of(post(http, _fnzyy(adt("PB1F", pid_f, "冯^三", "19610101", "M")))) == "AA"
    assert ack_code_of(post(http, adt("PB1G", "PB1^^^FNXRMYY^MR", "陈^四", "19920303", "F", "A08"))) == "AA"
    assert ack_code_of(post(http, adt("PB1H", "PB1^^^FNXRMYY^MR", "冯^三", "19610101", "M", "A08"))) == "AA"
    ack_w = post(http, _fnzyy(oru("PB1I", pid_w, "王^五", "19800505", "F", "PCGLU")))
    ack_f = post(http, _fnzyy(oru("PB1J", pid_f, "冯^三", "19610101", "M", "PDGLU")))
    assert ack_code_of(ack_w) == "AA" and {e.split("|")[4] for e in err_lines(ack_w)} == {"W"}, ack_w
    assert ack_code_of(ack_f) == "AA" and not err_lines(ack_f), ack_f
    (wang,) = patients(http, f"{FNZYY_MRN}|ZPB1")
    (feng,) = patients(http, f"{FNZYY_MRN}|ZPB1F")
    assert f"{APART}|PB1" in _tokens(wang) and f"{MRN}|PB1" not in _tokens(wang), wang["identifier"]
    assert f"{MRN}|PB1" in _tokens(feng) and f"{APART}|PB1" not in _tokens(feng), feng["identifier"]
    found = http.get("/fhir/Patient", params={"identifier": f"{MRN}|PB1"}, headers=clinician).json()
    assert sorted(e["resource"]["gender"] for e in found.get("entry", [])) == ["male", "male"], found
    assert wang["id"] not in {e["resource"]["id"] for e in found.get("entry", [])}


# --- batches answering as singly ---------------------------------------------------------------------------------


def test_a_batch_after_a_thin_result_moving_the_number_back_still_refuses_another_person(both: Both) -> None:  # noqa: F811
    """FNZYY's batch: a result for ZPC1 naming PC1 beside, its PID the name 冯三 only (the owner agrees: the
    number goes back, ``_agreed``); then a result under ZPC1 alone for 王五 (F, 1980). Sent singly the second is
    refused (the stored record is 冯三, M, 1961: all three differ). In the batch it must be refused too; it is
    filed under 冯三's record, because the first result's thin Patient is read as the version the batch leaves.
    (rkfix35: the set-up rewritten so that the first result still reaches ``_agreed`` after idfix35 -- FNZYY's
    own A08 since the owner's re-key, which the owner's agreeing A08 leaves to FNZYY; asserted below.)"""
    _, http, _ = both
    pid3 = _owner_rekeyed_then_agreeing(http, "PC1")
    ack = post(http, _batch(_fnzyy(oru("PC1E", pid3, "冯^三", "", "", "PEGLU1")),
                            _fnzyy(oru("PC1F", "ZPC1^^^FNZYY^MR", "王^五", "19800505", "F", "PEGLU2"))))
    assert _codes(ack)[0] == "AA", ack
    (own,) = patients(http, f"{FNZYY_MRN}|ZPC1")
    assert f"{MRN}|PC1" in _tokens(own) and f"{APART}|PC1" not in _tokens(own), own["identifier"]  # _agreed ran
    assert _codes(ack) == ["AA", "AE"], ack
    obs = http.get("/fhir/Observation", params={"code": "PEGLU2"}).json()
    assert not obs.get("entry"), obs


def test_singly_the_other_persons_result_is_refused(both: Both) -> None:  # noqa: F811
    """The control of the batch probe: the same two results sent one by one -- AA (the number back), then AE."""
    _, http, _ = both
    pid3 = _owner_rekeyed_then_agreeing(http, "PD1")
    assert ack_code_of(post(http, _fnzyy(oru("PD1E", pid3, "冯^三", "", "", "PFGLU1")))) == "AA"
    ack = post(http, _fnzyy(oru("PD1F", "ZPD1^^^FNZYY^MR", "王^五", "19800505", "F", "PFGLU2")))
    assert ack_code_of(ack) == "AE", ack
    (own,) = patients(http, f"{FNZYY_MRN}|ZPD1")
    assert f"{MRN}|PD1" in _tokens(own), own["identifier"]


# --- A45 -----------------------------------------------------------------------------------------------------------


def test_an_ordinary_a45_under_the_senders_own_numbers_is_still_filed(both: Both) -> None:  # noqa: F811
    """FNZYY's visit ZYP1 under its ZPE1 (冯三), moved by an A45 to its ZPE2 (冯三 again, a duplicate record):
    MRG-1 names the sender's own MRN -- AA, the visit under ZPE2's record."""
    _, http, _ = both
    admitted = _zy("PE1A", "A01", "ADT_A01", _pid("ZPE1^^^FNZYY^MR", "冯^三", "19610101", "M") + _pv1("ZYP1"))
    assert ack_code_of(post(http, admitted)) == "AA"
    assert ack_code_of(post(http, _fnzyy(adt("PE1B", "ZPE2^^^FNZYY^MR", "冯^三", "19610101", "M")))) == "AA"
    ack = post(http, _a45("PE1C", "ZPE2^^^FNZYY^MR", "冯^三", "19610101", "M", "ZPE1^^^FNZYY^MR", "ZYP1"))
    assert ack_code_of(ack) == "AA" and not [e for e in err_lines(ack) if e.split("|")[4] == "E"], ack
    (two,) = patients(http, f"{FNZYY_MRN}|ZPE2")
    assert _visit_subject(http, "ZYP1") == f"Patient/{two['id']}"


def test_an_a45_off_a_record_keyed_by_a_member_number_the_member_never_assigned_is_filed(both: Both) -> None:  # noqa: F811
    """FNZYY admitted 冯三 under FNXRMYY's PF1 alone, FNXRMYY holding no PF1 (nothing to contradict): its A45
    moving that visit to its own ZPF1 is filed, AA."""
    _, http, _ = both
    admitted = _zy("PF1A", "A01", "ADT_A01", _pid("PF1^^^FNXRMYY^MR", "冯^三", "19610101", "M") + _pv1("ZYQ1"))
    assert ack_code_of(post(http, admitted)) == "AA"
    assert ack_code_of(post(http, _fnzyy(adt("PF1B", "ZPF1^^^FNZYY^MR", "冯^三", "19610101", "M")))) == "AA"
    ack = post(http, _a45("PF1C", "ZPF1^^^FNZYY^MR", "冯^三", "19610101", "M", "PF1^^^FNXRMYY^MR", "ZYQ1"))
    assert ack_code_of(ack) == "AA" and not [e for e in err_lines(ack) if e.split("|")[4] == "E"], ack
    (own,) = patients(http, f"{FNZYY_MRN}|ZPF1")
    assert _visit_subject(http, "ZYQ1") == f"Patient/{own['id']}"


def test_an_a45_moving_a_visit_off_a_stale_member_keyed_record_corrects_the_owners_search(both: Both) -> None:  # noqa: F811
    """FNZYY admitted 冯三 under FNXRMYY's PG1 alone (FNXRMYY then held no PG1); FNXRMYY registers PG1 as 陈四.
    FNZYY's stale record answers FNXRMYY's MRN PG1 with 冯三's visit. FNZYY's A45 moves the visit off it to its
    own ZPG1 (冯三): nothing is filed under the stale record, the visit stops answering 陈四's number -- AA, and
    the clinician's visit search by the stale record finds nothing."""
    _, http, _ = both
    admitted = _zy("PG1A", "A01", "ADT_A01", _pid("PG1^^^FNXRMYY^MR", "冯^三", "19610101", "M") + _pv1("ZYR1"))
    assert ack_code_of(post(http, admitted)) == "AA"
    stale = _visit_subject(http, "ZYR1")
    assert ack_code_of(post(http, adt("PG1B", "PG1^^^FNXRMYY^MR", "陈^四", "19920303", "F"))) == "AA"
    assert ack_code_of(post(http, _fnzyy(adt("PG1C", "ZPG1^^^FNZYY^MR", "冯^三", "19610101", "M")))) == "AA"
    ack = post(http, _a45("PG1D", "ZPG1^^^FNZYY^MR", "冯^三", "19610101", "M", "PG1^^^FNXRMYY^MR", "ZYR1"))
    assert ack_code_of(ack) == "AA", ack
    (own,) = patients(http, f"{FNZYY_MRN}|ZPG1")
    assert _visit_subject(http, "ZYR1") == f"Patient/{own['id']}" != stale


# --- the re-key's Provenance registers nothing ---------------------------------------------------------------------


def test_the_rekey_provenance_does_not_make_the_owner_registrar_of_a_record_its_lis_made(both: Both) -> None:  # noqa: F811
    """FNZYY's lab result makes a placeholder ZPH1 naming FNXRMYY's PH1 for 冯三 while FNXRMYY holds none;
    FNXRMYY's LIS A04 registers PH1 as 陈四 (a registration event from an undeclared application): FNZYY's
    placeholder is re-keyed, but neither FNXRMYY's HIS nor LIS is its registrar -- a LIS A08 of FNZYY restating
    its record stays open as for any unregistered record, and no registration row names FNXRMYY."""
    engine, http, _ = both
    result = _fnzyy(oru("PH1A", "ZPH1^^^FNZYY^MR~PH1^^^FNXRMYY^MR", "冯^三", "19610101", "M", "PHGLU"))
    assert ack_code_of(post(http, result)) == "AA"
    assert ack_code_of(post(http, adt("PH1B", "PH1^^^FNXRMYY^MR", "陈^四", "19920303", "F", app="LIS"))) == "AA"
    (own,) = patients(http, f"{FNZYY_MRN}|ZPH1")
    ref = f"Patient/{own['id']}"
    assert f"{APART}|PH1" in _tokens(own), own["identifier"]
    assert _answers(engine, ref) == (persons._UNREGISTERED, persons._UNREGISTERED)
    rows = engine.ingestor.messages.registrations_of(ref)
    assert not rows, rows


# --- a batch mixing the owner's re-key and the member's next message (ownfix34's re-key, read by batch_version) ---


def test_a_batch_after_the_owners_rekey_still_refuses_another_person_under_the_members_record(both: Both) -> None:  # noqa: F811
    """One batch (a regional relay forwarding both members' feeds): FNXRMYY's A08 restating PK1 as 陈四 (FNZYY's
    record ZPK1 of 冯三 re-keyed in that write), then FNZYY's result under ZPK1 alone naming 王五 (F, 1980). Sent
    singly the result is refused -- the stored record is 冯三 (M, 1961). In the batch the record as the A08 leaves
    it is the re-key's Patient, which states no name, sex nor birth date: nothing to contradict, the result of
    王五 filed under 冯三's record."""
    _, http, _ = both
    assert ack_code_of(post(http, adt("PK1A", "PK1^^^FNXRMYY^MR", "冯^三", "19610101", "M"))) == "AA"
    pid3 = "ZPK1^^^FNZYY^MR~PK1^^^FNXRMYY^MR"
    assert ack_code_of(post(http, _fnzyy(adt("PK1B", pid3, "冯^三", "19610101", "M")))) == "AA"
    ack = post(http, _batch(adt("PK1C", "PK1^^^FNXRMYY^MR", "陈^四", "19920303", "F", "A08"),
                            _fnzyy(oru("PK1D", "ZPK1^^^FNZYY^MR", "王^五", "19800505", "F", "PKGLU"))))
    assert _codes(ack)[0] == "AA", ack
    (own,) = patients(http, f"{FNZYY_MRN}|ZPK1")
    assert f"{APART}|PK1" in _tokens(own), own["identifier"]  # the re-key was filed
    assert _codes(ack)[1] == "AE", ack
    obs = http.get("/fhir/Observation", params={"code": "PKGLU"}).json()
    assert not obs.get("entry"), obs


def test_singly_the_result_after_the_owners_rekey_is_refused(both: Both) -> None:  # noqa: F811
    """The control: the same two messages one by one -- the re-key filed, then AE for 王五's result."""
    _, http, _ = both
    assert ack_code_of(post(http, adt("PL1A", "PL1^^^FNXRMYY^MR", "冯^三", "19610101", "M"))) == "AA"
    pid3 = "ZPL1^^^FNZYY^MR~PL1^^^FNXRMYY^MR"
    assert ack_code_of(post(http, _fnzyy(adt("PL1B", pid3, "冯^三", "19610101", "M")))) == "AA"
    assert ack_code_of(post(http, adt("PL1C", "PL1^^^FNXRMYY^MR", "陈^四", "19920303", "F", "A08"))) == "AA"
    ack = post(http, _fnzyy(oru("PL1D", "ZPL1^^^FNZYY^MR", "王^五", "19800505", "F", "PLGLU")))
    assert ack_code_of(ack) == "AE", ack


# --- a resident of a re-keyed record ---------------------------------------------------------------------------------


def test_a_resident_of_one_rekeyed_record_never_reads_the_other_records_the_rekey_names(both: Both) -> None:  # noqa: F811
    """FNZYY holds two records naming FNXRMYY's PM1 (ZPM1 and ZPM2, two registrations of 冯三 its index has not
    linked); FNXRMYY's A08 restating PM1 as 陈四 re-keys both, one Provenance naming the two. The resident bound to
    ZPM1 reads her record (PM1 kept apart) and her Provenances: ZPM2's id is in no answer, before or after."""
    engine, http, _ = both
    assert ack_code_of(post(http, adt("PM1A", "PM1^^^FNXRMYY^MR", "冯^三", "19610101", "M"))) == "AA"
    for own in ("ZPM1", "ZPM2"):
        pid3 = f"{own}^^^FNZYY^MR~PM1^^^FNXRMYY^MR"
        assert ack_code_of(post(http, _fnzyy(adt(f"PM1{own}", pid3, "冯^三", "19610101", "M")))) == "AA"
    (one,) = patients(http, f"{FNZYY_MRN}|ZPM1")
    (two,) = patients(http, f"{FNZYY_MRN}|ZPM2")
    token, _ = engine.auth.issue_token(subject="person-zpm1", kind="patient", client_id="phr",
                                       scopes=["patient/*.rs"], patient=one["id"])
    me = {"Authorization": f"Bearer {token}"}

    def answers() -> list[str]:
        out = []
        for path in (f"/fhir/Patient/{one['id']}", "/fhir/Provenance", f"/fhir/Provenance?target=Patient/{one['id']}",
                     f"/fhir/Patient/{one['id']}/_history"):
            r = http.get(path, headers=me)
            assert r.status_code in (200, 403, 404), (path, r.text)
            out.append(r.text)
        return out

    assert not [a for a in answers() if two["id"] in a]
    assert ack_code_of(post(http, adt("PM1C", "PM1^^^FNXRMYY^MR", "陈^四", "19920303", "F", "A08"))) == "AA"
    prov = [p for p in (e["resource"] for e in http.get("/fhir/Provenance", params={"target": f"Patient/{one['id']}"})
                        .json().get("entry", [])) if persons.rekeys(p)]
    assert len(prov) == 1 and {t["reference"].split("/")[1] for t in prov[0]["target"]} == {one["id"], two["id"]}, prov
    seen = answers()
    assert not [a for a in seen if two["id"] in a]
    mine = http.get(f"/fhir/Patient/{one['id']}", headers=me).json()
    assert f"{APART}|PM1" in _tokens(mine), mine
