"""idfix35: the number's owner agreeing again puts the member's number back, in its own write (rvid35 MED 1).

FNXRMYY (the number's owner) restating its <n> as another person re-keys FNZYY's records of <n> at once (ownfix34):
the number under FNZYY's kept-apart system, one version named by a non-registering Provenance (ident35). The owner's
next restatement saying the person is the one FNZYY's record is again puts the number back, in the same write:
identifier only, one new version, named by the same kind of Provenance -- but only a record whose version is still
the one an owner's re-key wrote (never one the member stated since), and only while the person agrees. Real HL7
through ``POST /hl7v2`` into the real store on each backend (SQLite, mongomock), read back over ``/fhir``."""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.convert import persons
from adapters.hl7v2.ack import ack_code_of
from engine.audit.provenance import verify_provenance
from engine.engine import Engine
from tests.hl7_calls import err_lines, post
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_mfix34_members import APART, FNZYY_MRN, _fnzyy, _tokens, both  # noqa: F401
from tests.test_rvidentity32_probes import MRN, adt, oru, patients

Both = tuple[Engine, TestClient, dict[str, str]]


def _rekeying(http: TestClient, ref: str) -> list[dict]:
    """The Provenances naming ``ref`` whose reason is the owner's word on the number (``persons.REKEYED``)."""
    found = http.get("/fhir/Provenance", params={"target": ref, "_count": "100"})
    assert found.status_code == 200, found.text
    return [p for p in (e["resource"] for e in found.json().get("entry", [])) if any(
        c.get("code") == persons.REKEYED["code"] for r in p.get("reason") or () for c in r.get("coding") or ())]


def _ids(http: TestClient, token: str, headers: dict[str, str]) -> set[str]:
    found = http.get("/fhir/Patient", params={"identifier": token}, headers=headers)
    assert found.status_code == 200, found.text
    return {e["resource"]["id"] for e in found.json().get("entry", [])}


def _referred(http: TestClient, n: str) -> dict:
    """FNXRMYY registers 冯三 under <n>; FNZYY files its own Z<n> with <n> beside (a referral) and a result."""
    assert ack_code_of(post(http, adt(f"{n}A", f"{n}^^^FNXRMYY^MR", "冯^三", "19610101", "M"))) == "AA"
    assert ack_code_of(post(http, _fnzyy(adt(f"{n}B", f"Z{n}^^^FNZYY^MR~{n}^^^FNXRMYY^MR", "冯^三", "19610101",
                                             "M")))) == "AA"
    assert ack_code_of(post(http, _fnzyy(oru(f"{n}R", f"Z{n}^^^FNZYY^MR", "冯^三", "19610101", "M", f"G{n}")))) == "AA"
    (own,) = patients(http, f"{FNZYY_MRN}|Z{n}")
    assert f"{MRN}|{n}" in _tokens(own), own
    return own


def _restated(http: TestClient, control: str, n: str, name: str, birth: str, sex: str) -> bytes:
    ack = post(http, adt(control, f"{n}^^^FNXRMYY^MR", name, birth, sex, "A08"))
    assert ack_code_of(ack) == "AA", ack
    return ack


def test_the_owner_agreeing_again_puts_the_number_back_named_and_identifier_only(both: Both) -> None:  # noqa: F811
    """陈四, then 冯三 again: FNZYY's record has one new version, the number back under FNXRMYY's MRN system with
    value, type and assigner as kept, nothing else changed; that version is named, signed, by the agreeing A08's
    re-key Provenance (its own Provenance does not name FNZYY's record); the A08's ACK carries no member W
    and names nothing of FNZYY's; a clinician's search by FNXRMYY's MRN finds both records of 冯三 again.
    A third restatement as 冯三 (the same person again) writes nothing more."""
    engine, http, clinician = both
    _referred(http, "IA1")
    _restated(http, "IA1C", "IA1", "陈^四", "19920303", "F")
    (kept,) = patients(http, f"{FNZYY_MRN}|ZIA1")
    assert f"{APART}|IA1" in _tokens(kept) and f"{MRN}|IA1" not in _tokens(kept), kept
    ack = _restated(http, "IA1D", "IA1", "冯^三", "19610101", "M")
    # its own record restated (the registrar's correction: W); nothing of the member's -- neither W nor id
    assert all(e.split("|")[4] == "W" and "member institution" not in e for e in err_lines(ack)), ack
    assert kept["id"].encode() not in ack and b"ZIA1" not in ack, ack
    (back,) = patients(http, f"{FNZYY_MRN}|ZIA1")
    assert int(back["meta"]["versionId"]) == int(kept["meta"]["versionId"]) + 1, back["meta"]
    (was,) = [i for i in kept["identifier"] if i.get("system") == APART]
    (now,) = [i for i in back["identifier"] if i.get("value") == "IA1"]
    assert now == {**was, "system": MRN}, (was, now)
    assert _tokens(back) == (_tokens(kept) - {f"{APART}|IA1"}) | {f"{MRN}|IA1"}, back
    strip = {"meta", "identifier", "text"}
    assert {k: v for k, v in back.items() if k not in strip} == {k: v for k, v in kept.items() if k not in strip}
    ref = f"Patient/{back['id']}"
    provs = {p["id"]: p for p in _rekeying(http, ref)}
    (prov,) = [p for p in provs.values() if p["entity"][0]["what"]["identifier"]["value"] == "IA1D"]
    assert [t["reference"] for t in prov["target"]] == [f"{ref}/_history/{back['meta']['versionId']}"], prov
    assert "again" in prov["reason"][0]["text"], prov["reason"]
    targets = [engine.repository.vread(*t["reference"].split("/")[:2], t["reference"].split("/")[3])
               for t in prov["target"]]
    assert verify_provenance(prov, targets, engine.audit.keys), prov.get("signature")
    own = http.get("/fhir/Provenance", params={"target": ref, "_count": "100"}).json().get("entry", [])
    assert not [e for e in own if e["resource"]["id"] not in provs
                and e["resource"]["entity"][0]["what"]["identifier"]["value"] == "IA1D"], own
    (owner,) = [p["id"] for p in patients(http, f"{MRN}|IA1") if p["id"] != back["id"]]
    assert _ids(http, f"{MRN}|IA1", clinician) == {back["id"], owner}
    # FNZYY's next result naming the number is filed with no ERR and writes nothing
    ack = post(http, _fnzyy(oru("IA1E", "ZIA1^^^FNZYY^MR~IA1^^^FNXRMYY^MR", "冯^三", "19610101", "M", "GIA1E")))
    assert ack_code_of(ack) == "AA" and not err_lines(ack), ack
    _restated(http, "IA1F", "IA1", "冯^三", "19610101", "M")
    (last,) = patients(http, f"{FNZYY_MRN}|ZIA1")
    assert last["meta"] == {**last["meta"], "versionId": back["meta"]["versionId"]}, last["meta"]


def test_an_earlier_owner_messages_rekey_is_put_back_only_when_the_person_agrees(both: Both) -> None:  # noqa: F811
    """陈四 re-keys; a restatement as 王五 (still another person) puts nothing back and writes nothing to FNZYY's
    record; 冯三 again then puts back what the 陈四 message re-keyed."""
    _, http, _ = both
    _referred(http, "IB1")
    _restated(http, "IB1C", "IB1", "陈^四", "19920303", "F")
    (kept,) = patients(http, f"{FNZYY_MRN}|ZIB1")
    _restated(http, "IB1D", "IB1", "王^五", "19770707", "F")
    (still,) = patients(http, f"{FNZYY_MRN}|ZIB1")
    assert still["meta"]["versionId"] == kept["meta"]["versionId"] and f"{APART}|IB1" in _tokens(still), still
    _restated(http, "IB1E", "IB1", "冯^三", "19610101", "M")
    (back,) = patients(http, f"{FNZYY_MRN}|ZIB1")
    assert f"{MRN}|IB1" in _tokens(back) and f"{APART}|IB1" not in _tokens(back), back
    assert int(back["meta"]["versionId"]) == int(kept["meta"]["versionId"]) + 1, back["meta"]


def test_a_record_the_member_stated_since_waits_for_the_members_word(both: Both) -> None:  # noqa: F811
    """After the re-key FNZYY's own HIS restates its record (A08, the number beside: kept apart in its statement):
    that version is FNZYY's word, not the owner's re-key -- the owner agreeing again leaves it as it is (no
    version); FNZYY's next result naming the number puts it back (ident35's ``_agreed``)."""
    _, http, _ = both
    _referred(http, "IC1")
    _restated(http, "IC1C", "IC1", "陈^四", "19920303", "F")
    pid3 = "ZIC1^^^FNZYY^MR~IC1^^^FNXRMYY^MR"
    assert ack_code_of(post(http, _fnzyy(adt("IC1X", pid3, "冯^三", "19610102", "M", "A08")))) == "AA"
    (stated,) = patients(http, f"{FNZYY_MRN}|ZIC1")
    _restated(http, "IC1D", "IC1", "冯^三", "19610101", "M")
    (still,) = patients(http, f"{FNZYY_MRN}|ZIC1")
    assert still["meta"]["versionId"] == stated["meta"]["versionId"] and f"{APART}|IC1" in _tokens(still), still
    ack = post(http, _fnzyy(oru("IC1E", pid3, "冯^三", "19610102", "M", "GIC1E")))
    assert ack_code_of(ack) == "AA" and not err_lines(ack), ack
    (back,) = patients(http, f"{FNZYY_MRN}|ZIC1")
    assert f"{MRN}|IC1" in _tokens(back) and f"{APART}|IC1" not in _tokens(back), back


def test_the_owners_contradiction_and_agreement_in_one_batch_leave_the_number_where_it_was(both: Both) -> None:  # noqa: F811
    """One batch of FNXRMYY's A08 as 陈四 then as 冯三: both AA; FNZYY's record ends carrying the number under
    FNXRMYY's MRN system, as sent singly."""
    _, http, clinician = both
    own = _referred(http, "ID1")
    body = ("FHS|^~\\&|HIS|FNXRMYY\rBHS|^~\\&|HIS|FNXRMYY\r"
            + adt("ID1C", "ID1^^^FNXRMYY^MR", "陈^四", "19920303", "F", "A08")
            + adt("ID1D", "ID1^^^FNXRMYY^MR", "冯^三", "19610101", "M", "A08") + "BTS|2\rFTS|1\r")
    ack = post(http, body)
    assert b"MSA|AA|ID1C" in ack and b"MSA|AA|ID1D" in ack, ack
    (after,) = patients(http, f"{FNZYY_MRN}|ZID1")
    assert f"{MRN}|ID1" in _tokens(after) and f"{APART}|ID1" not in _tokens(after), after
    assert own["id"] in _ids(http, f"{MRN}|ID1", clinician)
