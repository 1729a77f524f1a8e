"""Review probes of memfix34 (a member's number beside the sender's own key; a CX-4 two members declare).

The focus: another member institution's number for another person is never stored on the sender's record,
never leaks the other member's patient, an own-MRN result is never refused for a stale number, and the
shared-CX-4 reading. Real HL7 over ``POST /hl7v2`` into the real store on each backend (SQLite, mongomock),
read back over ``/fhir``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import engine_and_client
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_rvidentity32_probes import MRN, _nid, adt, oru, patients, subjects
from tests.test_rvlast34_probes import _site_sharing_his

FNZYY_MRN = "urn:huren:mrn:FNZYY"
# ERR-2 at PID-3, the repetition (ERL.4) named when it is not the first (rvmemfix34 finding 4)
_AT_PID3 = re.compile(r"\|PID\^1\^3(\^\d+)?\|")


both = engine_and_client("rvmf34")


def _fnzyy(message: str) -> str:
    return message.replace("|FNXRMYY|HUREN|", "|FNZYY|HUREN|", 1)


def _tokens(patient: dict) -> set[str]:
    return {f"{i.get('system')}|{i.get('value')}" for i in patient.get("identifier") or ()}


def _member_tokens(patient: dict) -> set[str]:
    return {t for t in _tokens(patient) if t.startswith(MRN + "|")}


def _refused_at_pid3(ack: bytes) -> str:
    assert ack_code_of(ack) == "AE", ack
    (err,) = err_lines(ack)
    assert _AT_PID3.search(err) and "|205" in err, err
    return err


def _filed_with_w(ack: bytes) -> str:
    assert ack_code_of(ack) == "AA", ack
    (err,) = err_lines(ack)
    assert _AT_PID3.search(err) and "|205" in err and err.split("|")[4] == "W", err
    return err


def _other_person(http: TestClient, n: str) -> None:
    """FNXRMYY registers 郑一 (M, 1960) under its own MRN <n>."""
    assert ack_code_of(post(http, adt(f"{n}X", f"{n}^^^FNXRMYY^MR", "郑^一", "19600101", "M"))) == "AA"


# --- the keyed case: the member's number keys the record, however CX-4 spells the member ----------------


@pytest.mark.parametrize("cx4", ["阜宁县人民医院", "fnxrmyy"])
def test_a_result_keyed_by_the_members_number_under_its_name_or_lowercase_code_is_refused(
        both: tuple[Engine, TestClient], cx4: str) -> None:
    """FNZYY's result whose PID-3 holds only FNXRMYY's number (CX-4: FNXRMYY's name, or its code in lower
    case) for another person: the member's number keys the record, so refused as member33 decided."""
    _, http = both
    n = "RK1" if cx4 == "fnxrmyy" else "RK2"
    _other_person(http, n)
    ack = post(http, _fnzyy(oru(f"{n}A", f"{n}^^^{cx4}^MR", "王^二", "19900202", "F", f"RVMF{n}", app="HIS")))
    err = _refused_at_pid3(ack)
    assert "send this institution's own number" in err, err
    assert subjects(http, f"RVMF{n}") == []


# --- beside: the member's number does not key the record ------------------------------------------------


def test_a_result_listing_the_members_number_before_the_own_mrn_is_filed_without_it(
        both: tuple[Engine, TestClient]) -> None:
    """PID-3 lists FNXRMYY's number first and FNZYY's own MRN second: the own MRN keys the record (the order
    of PID-3 does not matter), so filed with the W and the number not put on the placeholder."""
    _, http = both
    _other_person(http, "RB1")
    ack = post(http, _fnzyy(oru("RB1A", "RB1^^^FNXRMYY^MR~ZRB1^^^FNZYY^MR", "王^二", "19900202", "F", "RVMFB1",
                                app="HIS")))
    assert "without the number" in _filed_with_w(ack)
    (made,) = patients(http, f"{FNZYY_MRN}|ZRB1")
    assert _member_tokens(made) == set(), made
    assert subjects(http, "RVMFB1") == [f"Patient/{made['id']}"]
    assert [p["gender"] for p in patients(http, f"{MRN}|RB1")] == ["male"]


def test_a_result_keyed_by_the_id_number_is_filed_without_the_members_number(
        both: tuple[Engine, TestClient]) -> None:
    """PID-3 holds FNZYY's patient's national ID and FNXRMYY's number (no own MRN): the ID number keys the
    record; filed with the W, the number not put on the record."""
    _, http = both
    _other_person(http, "RN1")
    nid = _nid("32092219900202002")  # female, born 1990-02-02
    ack = post(http, _fnzyy(oru("RN1A", f"{nid}^^^^NNCHN~RN1^^^FNXRMYY^MR", "王^二", "19900202", "F", "RVMFN1",
                                app="HIS")))
    _filed_with_w(ack)
    (subject,) = subjects(http, "RVMFN1")
    record = http.get(f"/fhir/{subject}").json()
    assert _member_tokens(record) == set(), record
    assert [p["gender"] for p in patients(http, f"{MRN}|RN1")] == ["male"]


def test_two_members_numbers_only_the_contradicted_one_is_left_off(both: tuple[Engine, TestClient]) -> None:
    """PID-3: FNZYY's own MRN, FNXRMYY's number (another person there) and FNYLWSY's number (the same person
    there: a referral). Only FNXRMYY's is left off; FNYLWSY's is kept (it names the same person)."""
    _, http = both
    _other_person(http, "RT1")
    same = adt("RT1Y", "YT1^^^FNYLWSY^MR", "王^二", "19900202", "F").replace("|FNXRMYY|HUREN|", "|FNYLWSY|HUREN|", 1)
    assert ack_code_of(post(http, same)) == "AA"
    ack = post(http, _fnzyy(oru("RT1A", "ZRT1^^^FNZYY^MR~RT1^^^FNXRMYY^MR~YT1^^^FNYLWSY^MR", "王^二", "19900202",
                                "F", "RVMFT1", app="HIS")))
    _filed_with_w(ack)
    (made,) = patients(http, f"{FNZYY_MRN}|ZRT1")
    assert _member_tokens(made) == set() and "urn:huren:mrn:FNYLWSY|YT1" in _tokens(made), made


def test_one_batch_the_result_left_off_the_number_then_the_registration_adding_it_is_refused_as_singly(
        both: tuple[Engine, TestClient]) -> None:
    """One batch: FNZYY's result (FNXRMYY's number beside, another person there: the placeholder made
    without it), then FNZYY's A04 of the same record listing the number -- the A04 would newly put it on
    the record: refused, as it is when sent alone after the result."""
    _, http = both
    _other_person(http, "RC1")
    pid3 = "ZRC1^^^FNZYY^MR~RC1^^^FNXRMYY^MR"
    body = ("FHS|^~\\&|HIS|FNZYY\rBHS|^~\\&|HIS|FNZYY\r"
            + _fnzyy(oru("RC1A", pid3, "王^二", "19900202", "F", "RVMFC1", app="HIS"))
            + _fnzyy(adt("RC1B", pid3, "王^二", "19900202", "F"))
            + "BTS|2\rFTS|1\r")
    ack = post(http, body)
    assert b"MSA|AA|RC1A" in ack and b"MSA|AE|RC1B" in ack, ack
    (made,) = patients(http, f"{FNZYY_MRN}|ZRC1")
    assert _member_tokens(made) == set(), made


def test_results_filed_beside_a_stale_number_are_not_found_by_the_members_number(
        both: tuple[Engine, TestClient]) -> None:
    """The stale case filed (memfix34): FNZYY's record keeps FNXRMYY's number as stored, and each new result
    of FNZYY's patient is filed under it. FNXRMYY's clinician (or the region's platform) fetching FNXRMYY's
    patient's results by FNXRMYY's own MRN must get FNXRMYY's patient's results only -- not FNZYY's patient's
    new glucose."""
    _, http = both
    assert ack_code_of(post(http, adt("RS1A", "RS1^^^FNXRMYY^MR", "冯^三", "19610101", "M"))) == "AA"
    pid3 = "ZRS1^^^FNZYY^MR~RS1^^^FNXRMYY^MR"
    assert ack_code_of(post(http, _fnzyy(adt("RS1B", pid3, "冯^三", "19610101", "M")))) == "AA"
    assert ack_code_of(post(http, adt("RS1C", "RS1^^^FNXRMYY^MR", "陈^四", "19920303", "F", "A08"))) == "AA"
    assert ack_code_of(post(http, oru("RS1D", "RS1^^^FNXRMYY^MR", "陈^四", "19920303", "F", "RVMFS1"))) == "AA"
    _filed_with_w(post(http, _fnzyy(oru("RS1E", pid3, "冯^三", "19610101", "M", "RVMFS2", app="HIS"))))
    (theirs,) = [p for p in patients(http, f"{MRN}|RS1") if p["gender"] == "female"]
    found = http.get("/fhir/Observation", params={"subject:Patient.identifier": f"{MRN}|RS1"})
    assert found.status_code == 200, found.text
    got = {e["resource"]["subject"]["reference"] for e in found.json().get("entry", [])}
    assert got == {f"Patient/{theirs['id']}"}, got


def _visit(message: str, number: str) -> str:
    return message.replace("PV1|1|O\r", "PV1|1|I" + "|" * 17 + number + "\r", 1)


def _stale(http: TestClient, n: str) -> str:
    """FNXRMYY registers 冯三 under <n>; FNZYY files its own Z<n> with <n> beside (a referral, the same person);
    FNXRMYY's HIS restates <n> as 陈四 (accepted). Returns FNZYY's PID-3."""
    assert ack_code_of(post(http, adt(f"{n}A", f"{n}^^^FNXRMYY^MR", "冯^三", "19610101", "M"))) == "AA"
    pid3 = f"Z{n}^^^FNZYY^MR~{n}^^^FNXRMYY^MR"
    assert ack_code_of(post(http, _fnzyy(adt(f"{n}B", pid3, "冯^三", "19610101", "M")))) == "AA"
    assert ack_code_of(post(http, adt(f"{n}C", f"{n}^^^FNXRMYY^MR", "陈^四", "19920303", "F", "A08"))) == "AA"
    return pid3


def test_the_refusal_leans_on_the_batch_message_whose_version_of_the_record_it_read(
        both: tuple[Engine, TestClient]) -> None:
    """One batch: FNZYY's admission of its record without the stale number (its correction), refused at its
    write (PV1-19 is another patient's stay), then FNZYY's A08 still listing the number. The A08 was refused
    because the batch's version of the record did not carry the number; that version is never written, the
    stored record carries the number, and alone the A08 is filed with the W. The refusal must lean on the
    message it read (``leaned_on``) so ingest settles it again: AA with the W, as singly."""
    _, http = both
    pid3 = _stale(http, "RL1")
    assert ack_code_of(post(http, _fnzyy(_visit(adt("RL1V", "ZRL0^^^FNZYY^MR", "卫^十", "19800101", "M"),
                                                "VRL7")))) == "AA"
    body = ("FHS|^~\\&|HIS|FNZYY\rBHS|^~\\&|HIS|FNZYY\r"
            + _fnzyy(_visit(adt("RL1D", "ZRL1^^^FNZYY^MR", "冯^三", "19610101", "M", "A01"), "VRL7"))
            + _fnzyy(adt("RL1E", pid3, "冯^三", "19610101", "M", "A08"))
            + "BTS|2\rFTS|1\r")
    ack = post(http, body)
    assert b"MSA|AE|RL1D" in ack, ack  # the admission: refused at its write
    assert b"MSA|AA|RL1E" in ack, ack  # the A08: as alone (the record, as stored, carries the number)
    (own,) = patients(http, f"{FNZYY_MRN}|ZRL1")
    assert f"{FNZYY_MRN}:FNXRMYY|RL1" in _tokens(own), own  # the number, kept apart (mfix34: not under MRN)


def test_an_admission_of_a_record_carrying_the_stale_number_is_filed(both: tuple[Engine, TestClient]) -> None:
    """FNZYY admits (A01, a visit) its patient whose record carries the stale referral number: filed with
    the W and the visit under FNZYY's record; FNXRMYY's record of the number untouched (still 陈四 alone)."""
    _, http = both
    pid3 = _stale(http, "RA1")
    ack = post(http, _fnzyy(_visit(adt("RA1D", pid3, "冯^三", "19610101", "M", "A01"), "VRA1")))
    err = _filed_with_w(ack)
    for word in ("FNXRMYY", "RA1^", "陈", "19920303"):
        assert word not in err, (word, err)
    (own,) = patients(http, f"{FNZYY_MRN}|ZRA1")
    visits = http.get("/fhir/Encounter", params={"identifier": "VRA1"}).json().get("entry", [])
    assert [e["resource"]["subject"]["reference"] for e in visits] == [f"Patient/{own['id']}"]
    theirs = [p for p in patients(http, f"{MRN}|RA1") if p["id"] != own["id"]]
    assert [(p["gender"], p.get("birthDate")) for p in theirs] == [("female", "1992-03-03")]


# --- a CX-4 two members declare ---------------------------------------------------------------------------


def _site_declaring_his(folder: Path, codes: tuple[str, ...]) -> Path:
    """The shipped institutions.yaml with each of ``codes`` declaring ``mrn_authorities: [HIS]``."""
    import yaml

    root = Path(__file__).resolve().parent.parent
    members = yaml.safe_load((root / "mappings" / "institutions.yaml").read_text(encoding="utf-8"))
    for member in members:
        if member["code"] in codes:
            member["mrn_authorities"] = ["HIS"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "institutions.yaml").write_text(yaml.safe_dump(members, allow_unicode=True), encoding="utf-8")
    return folder


def _yl(message: str) -> str:
    return message.replace("|FNXRMYY|HUREN|", "|FNYLWSY|HUREN|", 1)


def test_declaring_a_shared_cx4_does_not_split_a_third_members_records_silently(tmp_path: Path) -> None:
    """FNXRMYY declares HIS; FNYLWSY files a referral result of FNXRMYY's patient keyed by ``RH1^^^HIS^MR``
    (read as FNXRMYY's number: the same person there). The site then declares HIS for FNZYY too. FNYLWSY's
    next result of the same patient, the same PID, lands on the record the first one made -- or, if the
    reading must change, the sender is told (a W)."""
    data = Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0)
    first = _site_declaring_his(tmp_path / "site1", ("FNXRMYY",))
    with Engine(data.with_(site=first)) as eng, TestClient(create_app(eng)) as http:
        http.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("rvmf34", "system/*.cruds")
        assert ack_code_of(post(http, adt("SH1", "RH1^^^HIS^MR", "郑^一", "19600101", "M"))) == "AA"
        assert ack_code_of(post(http, _yl(oru("SH2", "RH1^^^HIS^MR", "郑^一", "19600101", "M", "RVMFH1",
                                              app="HIS")))) == "AA"
        (before,) = subjects(http, "RVMFH1")
    second = _site_declaring_his(tmp_path / "site2", ("FNXRMYY", "FNZYY"))
    with Engine(data.with_(site=second)) as eng, TestClient(create_app(eng)) as http:
        http.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("rvmf34", "system/*.cruds")
        ack = post(http, _yl(oru("SH3", "RH1^^^HIS^MR", "郑^一", "19600101", "M", "RVMFH2", app="HIS")))
        assert ack_code_of(ack) == "AA", ack
        assert subjects(http, "RVMFH2") == [before] or err_lines(ack), (before, subjects(http, "RVMFH2"), ack)


def test_a_third_members_merge_naming_a_shared_cx4_touches_neither_members_record(tmp_path: Path) -> None:
    """FNXRMYY and FNZYY both declare HIS; FNYLWSY merges (A40) the record it keyed by ``RH1^^^HIS^MR`` into its
    own YH1. MRG-1's shared name is no member's: FNYLWSY's record kept apart under its HIS authority is the one
    merged, and neither member's record RH1 is taken out of use or linked."""
    site = _site_sharing_his(tmp_path)
    with Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site)) as eng, \
            TestClient(create_app(eng)) as http:
        http.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("rvmf34", "system/*.cruds")
        assert ack_code_of(post(http, adt("TH1", "RH1^^^HIS^MR", "郑^一", "19600101", "M"))) == "AA"
        assert ack_code_of(post(http, _fnzyy(adt("TH2", "RH1^^^HIS^MR", "王^二", "19900202", "F")))) == "AA"
        assert ack_code_of(post(http, _yl(adt("TH3", "RH1^^^HIS^MR", "卫^六", "19950606", "F")))) == "AA"
        (apart,) = patients(http, "urn:huren:mrn:FNYLWSY:HIS|RH1")
        merge = ("MSH|^~\\&|HIS|FNYLWSY|HUREN|FNYGT|20261201121500||ADT^A40^ADT_A39|TH4|P|2.5.1\r"
                 "EVN|A40|20261201121500\rPID|1||YH1^^^FNYLWSY^MR||卫^六||19950606|F\rMRG|RH1^^^HIS^MR\r")
        ack = post(http, merge)
        assert ack_code_of(ack) == "AA", ack
        gone = http.get(f"/fhir/Patient/{apart['id']}").json()
        assert gone.get("active") is False, gone
        for token in (f"{MRN}|RH1", f"{FNZYY_MRN}|RH1"):
            (member,) = patients(http, token)
            assert member.get("active") is not False and not member.get("link"), member


def test_the_warning_locates_the_repetition_holding_the_members_number(both: tuple[Engine, TestClient]) -> None:
    """PID-3: FNZYY's own MRN, then FNXRMYY's number (another person there) as the second repetition. The W
    names no institution or number, so its location is all that tells the sender which identifier to take
    off: ERR-2 ``PID^1^3^2`` (v2.5.1 2.15.5.2, ERL.4 field repetition)."""
    _, http = both
    _other_person(http, "RE1")
    ack = post(http, _fnzyy(oru("RE1A", "ZRE1^^^FNZYY^MR~RE1^^^FNXRMYY^MR", "王^二", "19900202", "F", "RVMFE1",
                                app="HIS")))
    err = _filed_with_w(ack)
    assert err.split("|")[2] == "PID^1^3^2", err
