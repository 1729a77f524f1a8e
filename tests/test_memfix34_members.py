"""Another member's number beside the sender's own (memfix34: rvlast34 findings 1 and 2).

- A PID naming another member institution's number (``<n>^^^FNXRMYY^MR`` in FNZYY's message) for another
  person than FNXRMYY's own record of it is refused only when that number keys the record, or when the
  message states the record (an ADT) and would newly put the number on it. A result or an order (which only
  names the patient) beside FNZYY's own MRN is filed under FNZYY's record, the number not put on it; an ADT
  restating a record that already carries the number (a referral made stale by FNXRMYY's correction) is
  filed and the record keeps it as stored. Either way: ERR W 205 at PID-3 naming no other institution,
  number nor person, counted for FNZYY's operator (``member_contradicted``, per member).
- A CX-4 two members both declare in ``mrn_authorities`` is neither's number when a third member sends it.

Real HL7 over ``POST /hl7v2`` and one MLLP socket into the real store on each backend (SQLite, mongomock),
read back over ``/fhir`` and ``/admin/fidelity``."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.hl7_calls import err_lines, mllp, post
from tests.identity39_calls import engine_and_client
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_rvidentity32_probes import MRN, adt, oru, patients, subjects
from tests.test_rvlast34_probes import _site_sharing_his

FNZYY_MRN = "urn:huren:mrn:FNZYY"


both = engine_and_client("mf34")


def _fnzyy(message: str) -> str:
    return message.replace("|FNXRMYY|HUREN|", "|FNZYY|HUREN|", 1)


def _counted(engine: Engine, http: TestClient) -> tuple[int, list[dict]]:
    """FNZYY's ``member_contradicted`` count for FNXRMYY and its fidelity rows, as its operator reads them."""
    ops = engine.auth.issue_system_token("ops", "system/MessageHeader.cr")
    r = http.get("/admin/fidelity", params={"institution": "FNZYY"}, headers={"Authorization": f"Bearer {ops}"})
    assert r.status_code == 200, r.text
    mine = r.json()["institutions"].get("FNZYY", {})
    return mine.get("member_contradicted", {}).get("FNXRMYY", 0), mine.get("items", [])


def _filed_with_warning(ack: bytes, *unsaid: str) -> str:
    """AA with exactly one ERR: W 205 at PID-3, naming none of ``unsaid`` (the member, its number, its person)."""
    assert ack_code_of(ack) == "AA", ack
    (err,) = err_lines(ack)
    assert re.search(r"\|PID\^1\^3(\^\d+)?\|", err) and "|205" in err and err.split("|")[4] == "W", err
    for word in ("FNXRMYY", *unsaid):
        assert word not in err, (word, err)
    return err


def _refused_at_pid3(ack: bytes) -> str:
    assert ack_code_of(ack) == "AE", ack
    (err,) = err_lines(ack)
    assert re.search(r"\|PID\^1\^3(\^\d+)?\|", err) and "|205" in err, err
    return err


def _tokens(patient: dict) -> set[str]:
    return {f"{i.get('system')}|{i.get('value')}" for i in patient.get("identifier") or ()}


def _stale(http: TestClient, n: str) -> str:
    """FNXRMYY registers 冯三 under M<n>; FNZYY files its own patient Z<n> with M<n> beside (a referral, the
    same person); FNXRMYY's registering HIS then restates M<n> as 陈四 (its correction, accepted). Returns
    FNZYY's PID-3."""
    assert ack_code_of(post(http, adt(f"M{n}A", f"M{n}^^^FNXRMYY^MR", "冯^三", "19610101", "M"))) == "AA"
    pid3 = f"Z{n}^^^FNZYY^MR~M{n}^^^FNXRMYY^MR"
    assert ack_code_of(post(http, _fnzyy(adt(f"M{n}B", pid3, "冯^三", "19610101", "M")))) == "AA"
    assert ack_code_of(post(http, adt(f"M{n}C", f"M{n}^^^FNXRMYY^MR", "陈^四", "19920303", "F", "A08"))) == "AA"
    return pid3


def test_a_result_beside_a_stale_member_number_is_filed_warned_and_counted(both: tuple[Engine, TestClient]) -> None:
    """rvlast34 finding 1: FNZYY's result for its own patient, PID-3 still listing the referral number FNXRMYY
    has since given another person: filed under FNZYY's record, W 205 at PID-3 (no institution, number or
    person of FNXRMYY's), the record as stored (it already carried the number: the result writes nothing
    onto it), one more ``member_contradicted`` for FNZYY's operator, with the message as the row's example."""
    engine, http = both
    pid3 = _stale(http, "S1")
    (own,) = patients(http, f"{FNZYY_MRN}|ZS1")
    before, _ = _counted(engine, http)
    ack = post(http, _fnzyy(oru("MS1D", pid3, "冯^三", "19610101", "M", "MF34GLU1", app="HIS")))
    err = _filed_with_warning(ack, "MS1", "陈", "19920303")
    assert "does not key this record" in err and "already carries" in err, err
    assert subjects(http, "MF34GLU1") == [f"Patient/{own['id']}"]
    (after,) = patients(http, f"{FNZYY_MRN}|ZS1")  # the number kept apart from FNXRMYY's MRN (mfix34)
    assert _tokens(after) == (_tokens(own) - {f"{MRN}|MS1"}) | {f"{FNZYY_MRN}:FNXRMYY|MS1"}, after
    count, items = _counted(engine, http)
    assert count == before + 1
    (row,) = [i for i in items if "does not key this record" in i["message"] and "already carries" in i["message"]]
    assert row["example_message"], row  # FNZYY's own message: FNZYY's operator may open it


def test_a_result_beside_the_own_mrn_does_not_put_the_member_number_on_a_new_record(
        both: tuple[Engine, TestClient]) -> None:
    """The first message of FNZYY's patient is a result whose PID-3 lists FNXRMYY's number, which FNXRMYY's
    record gives another person: filed, the placeholder Patient made without the number (FNXRMYY's MRN
    finds FNXRMYY's patient only); a later result under a stored record of FNZYY's that does not carry the
    number: filed, the record unchanged."""
    _, http = both
    assert ack_code_of(post(http, adt("MN1", "MN1^^^FNXRMYY^MR", "褚^五", "19700505", "M"))) == "AA"
    ack = post(http, _fnzyy(oru("MN2", "ZN2^^^FNZYY^MR~MN1^^^FNXRMYY^MR", "卫^六", "19950606", "F", "MF34GLU2",
                                app="HIS")))
    assert "without the number" in _filed_with_warning(ack, "MN1", "褚", "19700505")
    (made,) = patients(http, f"{FNZYY_MRN}|ZN2")
    assert subjects(http, "MF34GLU2") == [f"Patient/{made['id']}"]
    assert not any(t.startswith(MRN + "|") for t in _tokens(made)), made
    assert [p["gender"] for p in patients(http, f"{MRN}|MN1")] == ["male"]
    # FNZYY's registration of its own record (no member number), then an order's result naming it beside
    assert ack_code_of(post(http, _fnzyy(adt("MN3", "ZN3^^^FNZYY^MR", "蒋^七", "19800707", "F")))) == "AA"
    (stored,) = patients(http, f"{FNZYY_MRN}|ZN3")
    _filed_with_warning(post(http, _fnzyy(oru("MN4", "ZN3^^^FNZYY^MR~MN1^^^FNXRMYY^MR", "蒋^七", "19800707", "F",
                                              "MF34GLU3", app="HIS"))), "MN1", "褚")
    (after,) = patients(http, f"{FNZYY_MRN}|ZN3")
    assert _tokens(after) == _tokens(stored) and subjects(http, "MF34GLU3") == [f"Patient/{stored['id']}"]


def test_an_adt_restating_a_record_with_its_stale_member_number_is_filed_the_same_each_time(
        both: tuple[Engine, TestClient]) -> None:
    """FNZYY's registering HIS restates its record (A08) with the stale referral number still listed: filed
    with the W, the record keeping the number as stored (taken off, the same A08 sent again would newly
    put it on and be refused) -- so the same message sent twice is answered the same."""
    _, http = both
    pid3 = _stale(http, "T1")
    for control in ("MT1D", "MT1E"):
        ack = post(http, _fnzyy(adt(control, pid3, "冯^三", "19610101", "M", "A08")))
        assert "already carries" in _filed_with_warning(ack, "MT1", "陈")
        (own,) = patients(http, f"{FNZYY_MRN}|ZT1")  # the number kept apart from FNXRMYY's MRN (mfix34)
        assert f"{MRN}|MT1" not in _tokens(own) and f"{FNZYY_MRN}:FNXRMYY|MT1" in _tokens(own), own


def test_an_adt_that_would_newly_put_the_member_number_on_the_record_is_refused_with_advice_that_fits(
        both: tuple[Engine, TestClient]) -> None:
    """member33's refusal stands where the message would put the number on FNZYY's record: its advice is
    to take the number off (the sender did send its own number); keyed by the member's number alone, to
    send the institution's own."""
    _, http = both
    assert ack_code_of(post(http, adt("MA1", "MA1^^^FNXRMYY^MR", "沈^八", "19750808", "M"))) == "AA"
    beside = _refused_at_pid3(post(http, _fnzyy(adt("MA2", "ZA2^^^FNZYY^MR~MA1^^^FNXRMYY^MR", "韩^九",
                                                    "19990909", "F"))))
    assert "take the number off" in beside and "send this institution's own number" not in beside, beside
    assert patients(http, f"{FNZYY_MRN}|ZA2") == []
    keyed = _refused_at_pid3(post(http, _fnzyy(adt("MA3", "MA1^^^FNXRMYY^MR", "韩^九", "19990909", "F"))))
    assert "send this institution's own number" in keyed, keyed
    # a result keyed by the member's number alone: refused as before
    _refused_at_pid3(post(http, _fnzyy(oru("MA4", "MA1^^^FNXRMYY^MR", "韩^九", "19990909", "F", "MF34GLU4",
                                           app="HIS"))))
    assert subjects(http, "MF34GLU4") == []


def test_a_merge_into_a_record_carrying_a_stale_member_number_is_filed(both: tuple[Engine, TestClient]) -> None:
    """FNZYY merges its two records of one patient (A40), the survivor carrying the stale referral number:
    the merge puts nothing new on the survivor, so neither the PID nor MRG-1's record is held against
    FNXRMYY's record of the number -- filed with the W."""
    _, http = both
    pid3 = _stale(http, "G1")
    assert ack_code_of(post(http, _fnzyy(adt("MG1E", "ZG2^^^FNZYY^MR", "冯^三", "19610101", "M")))) == "AA"
    merge = ("MSH|^~\\&|HIS|FNZYY|HUREN|FNYGT|20261201121500||ADT^A40^ADT_A39|MG1F|P|2.5.1\r"
             f"EVN|A40|20261201121500\rPID|1||{pid3}||冯^三||19610101|M\rMRG|ZG2^^^FNZYY^MR\r")
    _filed_with_warning(post(http, merge), "MG1", "陈")
    (gone,) = patients(http, f"{FNZYY_MRN}|ZG2")
    assert gone.get("active") is False, gone


def test_one_batch_holds_the_result_to_the_members_correction_earlier_in_it(both: tuple[Engine, TestClient]) -> None:
    """FNXRMYY's correction and FNZYY's result for its patient in one batch: the result is held to the
    version the correction writes (not the stored one, the same person) and filed with the W."""
    _, http = both
    assert ack_code_of(post(http, adt("MB1", "MB1^^^FNXRMYY^MR", "杨^十", "19650110", "M"))) == "AA"
    pid3 = "ZB1^^^FNZYY^MR~MB1^^^FNXRMYY^MR"
    assert ack_code_of(post(http, _fnzyy(adt("MB2", pid3, "杨^十", "19650110", "M")))) == "AA"
    body = ("FHS|^~\\&|HIS|FNXRMYY\rBHS|^~\\&|HIS|FNXRMYY\r"
            + adt("MB3", "MB1^^^FNXRMYY^MR", "朱^一", "19910111", "F", "A08")
            + _fnzyy(oru("MB4", pid3, "杨^十", "19650110", "M", "MF34GLU5", app="HIS"))
            + "BTS|2\rFTS|1\r")
    ack = post(http, body)
    assert b"MSA|AA|MB3" in ack and b"MSA|AA|MB4" in ack, ack
    assert any("|PID^1^3^2|" in e and "|W|" in e for e in err_lines(ack)), ack
    (own,) = patients(http, f"{FNZYY_MRN}|ZB1")
    assert subjects(http, "MF34GLU5") == [f"Patient/{own['id']}"]


def test_over_mllp_the_result_is_filed_with_the_warning(both: tuple[Engine, TestClient]) -> None:
    """The same over a real MLLP socket: AA, W 205 at PID-3, the result under FNZYY's record."""
    engine, http = both
    pid3 = _stale(http, "L1")
    (ack,) = mllp(engine, _fnzyy(oru("ML1D", pid3, "冯^三", "19610101", "M", "MF34GLU6", app="HIS")).encode("utf-8"))
    _filed_with_warning(ack, "ML1", "陈")
    (own,) = patients(http, f"{FNZYY_MRN}|ZL1")
    assert subjects(http, "MF34GLU6") == [f"Patient/{own['id']}"]


# --- a CX-4 two members declare ---------------------------------------------------------------------


def test_a_cx4_two_members_declare_is_neither_members_number(backend_settings: Settings, tmp_path: Path) -> None:
    """FNXRMYY and FNZYY both declare ``mrn_authorities: [HIS]``. Each one's own ``RH1^^^HIS^MR`` is its own
    MRN; a third member's ``RH1^^^HIS^MR`` is no member's number: keyed apart under that sender's HIS
    authority, filed under neither member's MRN system, held against neither member's record. A member's code still names that
    member: ``RH1^^^FNZYY^MR`` is FNZYY's number (the same person: filed under FNZYY's MRN system),
    ``RH1^^^FNXRMYY^MR`` FNXRMYY's (another person: refused)."""
    site = _site_sharing_his(tmp_path)  # (backend_settings keeps its data under tmp_path/var)
    with Engine(backend_settings.with_(site=site)) as eng, TestClient(create_app(eng)) as http:
        http.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("mf34", "system/*.cruds")
        assert ack_code_of(post(http, adt("H1", "RH1^^^HIS^MR", "郑^一", "19600101", "M"))) == "AA"
        assert ack_code_of(post(http, _fnzyy(adt("H2", "RH1^^^HIS^MR", "王^二", "19900202", "F")))) == "AA"
        assert [p["gender"] for p in patients(http, f"{MRN}|RH1")] == ["male"]
        assert [p["gender"] for p in patients(http, f"{FNZYY_MRN}|RH1")] == ["female"]

        def third(control: str, pid3: str, name: str, birth: str, sex: str) -> bytes:
            return post(http, adt(control, pid3, name, birth, sex).replace("|FNXRMYY|HUREN|", "|FNYLWSY|HUREN|", 1))

        # FNZYY's patient (FNXRMYY's RH1 is another person: read as FNXRMYY's number, it was refused)
        ack = third("H3", "RH1^^^HIS^MR", "王^二", "19900202", "F")
        assert ack_code_of(ack) == "AA", ack
        (shared,) = err_lines(ack)  # the name says no institution: the sender told (mfix34, rvmemfix34 finding 2)
        assert "|PID^1^3^^4|" in shared and "|W|" in shared, shared
        (apart,) = patients(http, "urn:huren:mrn:FNYLWSY:HIS|RH1")
        assert apart["gender"] == "female"
        assert [p["gender"] for p in patients(http, f"{MRN}|RH1")] == ["male"]
        assert [p["gender"] for p in patients(http, f"{FNZYY_MRN}|RH1")] == ["female"]
        assert ack_code_of(third("H6", "RH1^^^FNZYY^MR", "王^二", "19900202", "F")) == "AA"
        assert len(patients(http, f"{FNZYY_MRN}|RH1")) == 2
        _refused_at_pid3(third("H7", "RH1^^^FNXRMYY^MR", "王^二", "19900202", "F"))
