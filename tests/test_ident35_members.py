"""ident35: a member's result moves a re-keyed number back once the owner agrees; A45 and A47 naming a member's number.

*The number back (rvmfix34 LOW 1):* FNZYY's record of 冯三 carries FNXRMYY's <n> beside its own MRN; FNXRMYY restates <n>
as 陈四 (the record is re-keyed: <n> under FNZYY's kept-apart system), then as 冯三 again. The re-key follows the
member's record: FNZYY's next result naming <n> puts it back under FNXRMYY's MRN system -- its identifier alone, no
W -- as an ADT does by stating the record. *A45 (move visit):* MRG-1 naming the record the visit moves from by the
member's number alone is held: that record, as stored, against the member's record of the number -- another
person (stale), the move filed with ERR W 205 at MRG-1 (rkfix35; ident35 had refused it). *A47 (change
identifier):* the merge handler's hold of MRG-1, as an A40's.
Real HL7 through ``POST /hl7v2`` into the real store on each backend (SQLite, mongomock), read back over ``/fhir``."""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from tests.hl7_calls import err_lines, post
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_mfix34_members import APART, FNZYY_MRN, _fnzyy, _tokens, both  # noqa: F401
from tests.test_rvidentity32_probes import MRN, adt, oru, patients

Both = tuple[Engine, TestClient, dict[str, str]]


def _ids(http: TestClient, token: str, headers: dict[str, str]) -> set[str]:
    found = http.get("/fhir/Patient", params={"identifier": token}, headers=headers)
    assert found.status_code == 200, found.text
    return {e["resource"]["id"] for e in found.json().get("entry", [])}


def _rekeyed_by_the_owner(http: TestClient, n: str) -> str:
    """FNXRMYY: 冯三 under <n>; FNZYY: its own Z<n>, <n> beside (the same person); FNXRMYY restates <n> as 陈四
    (FNZYY's record re-keyed at once, ownfix34); FNZYY's HIS restates its record (its A08, <n> beside: kept apart
    in its statement, mfix34 -- the record's version now FNZYY's own, idfix35), then FNXRMYY restates <n> as 冯三
    again: the owner's message puts back only what an owner's re-key left (idfix35), so this record waits for
    FNZYY's next message. Returns FNZYY's PID-3."""
    assert ack_code_of(post(http, adt(f"{n}A", f"{n}^^^FNXRMYY^MR", "冯^三", "19610101", "M"))) == "AA"
    pid3 = f"Z{n}^^^FNZYY^MR~{n}^^^FNXRMYY^MR"
    assert ack_code_of(post(http, _fnzyy(adt(f"{n}B", pid3, "冯^三", "19610101", "M")))) == "AA"
    assert ack_code_of(post(http, adt(f"{n}C", f"{n}^^^FNXRMYY^MR", "陈^四", "19920303", "F", "A08"))) == "AA"
    (own,) = patients(http, f"{FNZYY_MRN}|Z{n}")
    assert f"{APART}|{n}" in _tokens(own) and f"{MRN}|{n}" not in _tokens(own), own
    assert ack_code_of(post(http, _fnzyy(adt(f"{n}X", pid3, "冯^三", "19610102", "M", "A08")))) == "AA"
    (own,) = patients(http, f"{FNZYY_MRN}|Z{n}")
    assert f"{APART}|{n}" in _tokens(own) and own["birthDate"] == "1961-01-02", own
    assert ack_code_of(post(http, adt(f"{n}D", f"{n}^^^FNXRMYY^MR", "冯^三", "19610101", "M", "A08"))) == "AA"
    (own,) = patients(http, f"{FNZYY_MRN}|Z{n}")
    assert f"{APART}|{n}" in _tokens(own) and f"{MRN}|{n}" not in _tokens(own), own
    return pid3


def test_the_members_next_result_puts_the_number_back_once_the_owner_agrees(both: Both) -> None:  # noqa: F811
    """FNZYY's result naming only its own MRN leaves the record as it is; its result naming OT1 too (FNXRMYY's
    record of OT1 is 冯三 again): AA without ERR, one new version of FNZYY's record, OT1 back under FNXRMYY's
    MRN system with value, type and assigner as kept, nothing under the kept-apart system, every other
    particular as stored; a clinician's search by FNXRMYY's MRN finds both institutions' records of 冯三 again,
    and the result is filed under FNZYY's. The next such result writes nothing to the record."""
    _, http, clinician = both
    pid3 = _rekeyed_by_the_owner(http, "OT1")
    (before,) = patients(http, f"{FNZYY_MRN}|ZOT1")
    ack = post(http, _fnzyy(oru("OT1E", "ZOT1^^^FNZYY^MR", "冯^三", "19610101", "M", "OTGLU1")))
    assert ack_code_of(ack) == "AA" and not err_lines(ack), ack
    (same,) = patients(http, f"{FNZYY_MRN}|ZOT1")
    assert same["meta"]["versionId"] == before["meta"]["versionId"], same
    ack = post(http, _fnzyy(oru("OT1F", pid3, "冯^三", "19610101", "M", "OTGLU2")))
    assert ack_code_of(ack) == "AA" and not err_lines(ack), ack
    (after,) = patients(http, f"{FNZYY_MRN}|ZOT1")
    assert int(after["meta"]["versionId"]) == int(before["meta"]["versionId"]) + 1, after["meta"]
    (kept,) = [i for i in before["identifier"] if i.get("system") == APART]
    (back,) = [i for i in after["identifier"] if i.get("value") == "OT1"]
    assert back == {**kept, "system": MRN}, (kept, back)
    assert _tokens(after) == (_tokens(before) - {f"{APART}|OT1"}) | {f"{MRN}|OT1"}, after
    strip = {"meta", "identifier", "text"}
    assert {k: v for k, v in after.items() if k not in strip} == {k: v for k, v in before.items() if k not in strip}
    owners = [p["id"] for p in patients(http, f"{MRN}|OT1") if p["id"] != after["id"]]
    assert _ids(http, f"{MRN}|OT1", clinician) == {after["id"], *owners} and len(owners) == 1
    obs = http.get("/fhir/Observation", params={"code": "OTGLU2"}).json()
    assert [e["resource"]["subject"]["reference"] for e in obs.get("entry", [])] == [f"Patient/{after['id']}"], obs
    ack = post(http, _fnzyy(oru("OT1G", pid3, "冯^三", "19610101", "M", "OTGLU3")))
    assert ack_code_of(ack) == "AA" and not err_lines(ack), ack
    (last,) = patients(http, f"{FNZYY_MRN}|ZOT1")
    assert last["meta"]["versionId"] == after["meta"]["versionId"], last["meta"]


def test_one_batch_of_two_results_puts_it_back_once(both: Both) -> None:  # noqa: F811
    """The same in one batch of two FNZYY results naming OU1: both AA without ERR, one new version, OU1 under
    FNXRMYY's MRN system (the second reads the record as the first leaves it)."""
    _, http, _ = both
    pid3 = _rekeyed_by_the_owner(http, "OU1")
    (before,) = patients(http, f"{FNZYY_MRN}|ZOU1")
    body = ("FHS|^~\\&|HIS|FNZYY\rBHS|^~\\&|HIS|FNZYY\r"
            + _fnzyy(oru("OU1E", pid3, "冯^三", "19610101", "M", "OUGLU1"))
            + _fnzyy(oru("OU1F", pid3, "冯^三", "19610101", "M", "OUGLU2")) + "BTS|2\rFTS|1\r")
    ack = post(http, body)
    assert b"MSA|AA|OU1E" in ack and b"MSA|AA|OU1F" in ack and not err_lines(ack), ack
    (after,) = patients(http, f"{FNZYY_MRN}|ZOU1")
    assert int(after["meta"]["versionId"]) == int(before["meta"]["versionId"]) + 1, after["meta"]
    assert f"{MRN}|OU1" in _tokens(after) and f"{APART}|OU1" not in _tokens(after), after


# --- A45 (move visit information) and A47 (change patient identifier list) --------------------------------------


def _zy(control: str, event: str, structure: str, body: str) -> str:
    return (f"MSH|^~\\&|HIS|FNZYY|HUREN|FNYGT|20261201091500||ADT^{event}^{structure}|{control}|P|2.5.1\r"
            f"EVN|{event}|20261201091500\r{body}")


def _pid(pid3: str, name: str, birth: str, sex: str) -> str:
    return f"PID|1||{pid3}||{name}||{birth}|{sex}\r"


def _pv1(visit: str) -> str:
    return "PV1|1|I" + "|" * 17 + f"{visit}\r"


def _a45(control: str, pid3: str, name: str, birth: str, sex: str, mrg1: str, visit: str) -> str:
    return _zy(control, "A45", "ADT_A45", _pid(pid3, name, birth, sex) + f"MRG|{mrg1}||||{visit}\r" + _pv1(visit))


def _visit_subject(http: TestClient, visit: str) -> str:
    (enc,) = [e["resource"] for e in http.get("/fhir/Encounter", params={"identifier": visit}).json().get("entry", [])]
    return enc["subject"]["reference"]


def _refused_at_mrg1(engine: Engine, ack: bytes, control: str) -> None:
    assert ack_code_of(ack) == "AE", ack
    (err,) = [e for e in err_lines(ack) if e.split("|")[4] == "E"]
    fields = err.split("|")
    assert fields[2] == "MRG^1^1" and fields[3].startswith("205"), err
    for word in ("陈", "19920303"):  # the member's person is not echoed
        assert word not in err, (word, err)
    doc = engine.ingestor.messages.get(message_id("FNZYY", control))
    assert doc is not None and doc["status"] != "processed", doc


def test_an_a45_off_a_record_keyed_by_a_number_the_owner_gave_another_person_is_filed_with_a_warning(
        both: Both) -> None:  # noqa: F811
    """FNZYY admitted 冯三 under FNXRMYY's OV1 alone (FNXRMYY then held no OV1): its record keyed by that number,
    its visit ZYV1 under it. FNXRMYY registers OV1 as 陈四. FNZYY's A45 moving ZYV1 to its own ZOV1 (冯三) names
    the record the visit moves from by OV1: that record is another person than FNXRMYY's record of OV1 (stale) --
    the move files nothing under it and is FNZYY's one correction over HL7: AA with ERR W 205 at MRG-1, the visit
    under ZOV1's record; the member's person is not echoed. (rkfix35, the lead on rvident35 MED: ident35 refused
    it, AE 205 at MRG-1, the visit left under the stale record.)"""
    _, http, _ = both
    admitted = _zy("OV1A", "A01", "ADT_A01", _pid("OV1^^^FNXRMYY^MR", "冯^三", "19610101", "M") + _pv1("ZYV1"))
    assert ack_code_of(post(http, admitted)) == "AA"
    keyed = _visit_subject(http, "ZYV1")
    assert ack_code_of(post(http, adt("OV1B", "OV1^^^FNXRMYY^MR", "陈^四", "19920303", "F"))) == "AA"
    assert ack_code_of(post(http, _fnzyy(adt("OV1C", "ZOV1^^^FNZYY^MR", "冯^三", "19610101", "M")))) == "AA"
    ack = post(http, _a45("OV1D", "ZOV1^^^FNZYY^MR", "冯^三", "19610101", "M", "OV1^^^FNXRMYY^MR", "ZYV1"))
    assert ack_code_of(ack) == "AA", ack
    (err,) = err_lines(ack)
    fields = err.split("|")
    assert fields[2] == "MRG^1^1" and fields[3].startswith("205") and fields[4] == "W", err
    for word in ("陈", "19920303"):  # the member's person is not echoed
        assert word not in err, (word, err)
    (own,) = patients(http, f"{FNZYY_MRN}|ZOV1")
    assert _visit_subject(http, "ZYV1") == f"Patient/{own['id']}" != keyed


def test_an_a45_off_a_record_keyed_by_the_owners_number_of_the_same_person_moves_the_visit(both: Both) -> None:  # noqa: F811
    """FNXRMYY registers OW1 as 陈四; FNZYY admits 陈四 under OW1 alone (a referral: the same person), visit ZYW1,
    by mistake -- the visit was 冯三's. FNZYY's A45 moves it to its ZOW1 (冯三): MRG-1's record is FNXRMYY's
    person, no contradiction -- AA, the visit under ZOW1's record (the move corrects the PID's person, which
    differs from the member's record: that is not held)."""
    _, http, _ = both
    assert ack_code_of(post(http, adt("OW1A", "OW1^^^FNXRMYY^MR", "陈^四", "19920303", "F"))) == "AA"
    admitted = _zy("OW1B", "A01", "ADT_A01", _pid("OW1^^^FNXRMYY^MR", "陈^四", "19920303", "F") + _pv1("ZYW1"))
    assert ack_code_of(post(http, admitted)) == "AA"
    assert ack_code_of(post(http, _fnzyy(adt("OW1C", "ZOW1^^^FNZYY^MR", "冯^三", "19610101", "M")))) == "AA"
    ack = post(http, _a45("OW1D", "ZOW1^^^FNZYY^MR", "冯^三", "19610101", "M", "OW1^^^FNXRMYY^MR", "ZYW1"))
    assert ack_code_of(ack) == "AA" and not [e for e in err_lines(ack) if e.split("|")[4] == "E"], ack
    (own,) = patients(http, f"{FNZYY_MRN}|ZOW1")
    assert _visit_subject(http, "ZYW1") == f"Patient/{own['id']}"


def _a47(control: str, pid3: str, name: str, birth: str, sex: str, mrg1: str) -> str:
    return _zy(control, "A47", "ADT_A30", _pid(pid3, name, birth, sex) + f"MRG|{mrg1}\r")


def test_an_a47_renumbering_the_owners_number_as_another_person_is_refused_at_mrg1(both: Both) -> None:  # noqa: F811
    """FNXRMYY registers OY1 as 陈四; FNZYY admits 陈四 under OY1 alone (the same person). FNZYY's A47 changing
    that record's identifier to its own ZOY1 for 冯三 says the person of FNXRMYY's OY1 is 冯三: AE 205 at MRG-1,
    nothing written (no ZOY1 record, FNZYY's record of OY1 unlinked)."""
    engine, http, _ = both
    assert ack_code_of(post(http, adt("OY1A", "OY1^^^FNXRMYY^MR", "陈^四", "19920303", "F"))) == "AA"
    admitted = _zy("OY1B", "A01", "ADT_A01", _pid("OY1^^^FNXRMYY^MR", "陈^四", "19920303", "F") + _pv1("ZYY1"))
    assert ack_code_of(post(http, admitted)) == "AA"
    keyed = _visit_subject(http, "ZYY1")
    _refused_at_mrg1(engine, post(http, _a47("OY1C", "ZOY1^^^FNZYY^MR", "冯^三", "19610101", "M",
                                              "OY1^^^FNXRMYY^MR")), "OY1C")
    assert not patients(http, f"{FNZYY_MRN}|ZOY1")
    record = http.get(f"/fhir/{keyed}").json()
    assert not record.get("link") and record.get("active") is not False, record


def test_an_a47_renumbering_the_owners_number_of_the_same_person_is_filed(both: Both) -> None:  # noqa: F811
    """The same A47 for 陈四 herself (FNZYY's own ZOY2 now): AA, FNZYY's record keyed by OY2 replaced by ZOY2's."""
    _, http, _ = both
    assert ack_code_of(post(http, adt("OY2A", "OY2^^^FNXRMYY^MR", "陈^四", "19920303", "F"))) == "AA"
    admitted = _zy("OY2B", "A01", "ADT_A01", _pid("OY2^^^FNXRMYY^MR", "陈^四", "19920303", "F") + _pv1("ZYY2"))
    assert ack_code_of(post(http, admitted)) == "AA"
    keyed = _visit_subject(http, "ZYY2")
    ack = post(http, _a47("OY2C", "ZOY2^^^FNZYY^MR", "陈^四", "19920303", "F", "OY2^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AA", ack
    (own,) = patients(http, f"{FNZYY_MRN}|ZOY2")
    record = http.get(f"/fhir/{keyed}").json()
    assert {"other": {"reference": f"Patient/{own['id']}"}, "type": "replaced-by"} in record.get("link", []), record
