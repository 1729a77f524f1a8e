"""mergemend25: a merge joins the records of ONE person (twenty-fifth round).

DOMAIN "Matching": the same person is document type + number; v2.5.1 ch. 3 A40 "merge patient -
patient identifier list": the two records are one person. So a merge of two records carrying two
different valid national ID numbers is refused -- by every merge a sender states: an HL7 merge (A40,
A34, A47; AE with ERR at MRG-1, the raw message kept for replay), or an A08 giving a record merged
with another number's its own (PID-3) -- and a record merged away is followed (a resident's token bound to it reads the survivor)
only while the survivor is of the number it carried. Merges of one number's records, or of a record
with no number, go on as before. Real path: ``POST /hl7v2``, real HTTP reads with resident tokens,
the real store.
"""

from __future__ import annotations

import itertools

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.identity.nationalid import check_character
from tests.feed_calls import post_hl7v2
from tests.operator_calls import before_linkmend26

A_NID = "32092319900101123" + check_character("32092319900101123")  # male, 1990-01-01
B_NID = "32092319921120004" + check_character("32092319921120004")  # female, 1992-11-20
_seq = itertools.count()
STRUCTURE = {"A40": "ADT_A39", "A39": "ADT_A39", "A34": "ADT_A30", "A47": "ADT_A30", "A08": "ADT_A01",
             "A04": "ADT_A01",
             "A37": "ADT_A37"}


def _msg(trigger: str, pid: str, extra: str = "") -> bytes:
    control = f"MM{next(_seq)}"
    return ("MSH|^~\\&|HIS|FNXRMYY|HUREN|COUNTY|20260920080000||ADT^" + trigger + "^" + STRUCTURE[trigger]
            + "|" + control + "|P|2.5\rEVN|" + trigger + "|20260920080000\r" + pid + extra).encode()


def _pid(mrn: str, nid: str | None, name: str, born: str = "", sex: str = "") -> str:
    if nid:
        born, sex = nid[6:14], "M" if int(nid[16]) % 2 else "F"
    ids = f"{mrn}^^^FNXRMYY^MR" + (f"~{nid}^^^公安部^NNCHN" if nid else "")
    return f"PID|1||{ids}||{name}||{born}|{sex}\r"


@pytest.fixture
def world(tmp_path):
    from engine.engine import Engine
    from engine.settings import Settings

    engine = Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0))
    with TestClient(create_app(engine)) as http:
        def send(trigger: str, pid: str, extra: str = "") -> str:
            return post_hl7v2(engine, http, _msg(trigger, pid, extra)).text

        def register(mrn: str, nid: str | None, name: str, born: str = "", sex: str = "") -> str:
            ack = send("A04", _pid(mrn, nid, name, born, sex), "PV1|1|O|内科^^^FNXRMYY||||||||||||||||V-" + mrn + "\r")
            assert ack_code_of(ack) == "AA", ack
            return patient_of(mrn)

        def patient_of(mrn: str) -> str:
            token = engine.auth.issue_system_token("his-a", "system/*.rs")
            b = http.get("/fhir/Patient", params={"identifier": f"urn:huren:mrn:FNXRMYY|{mrn}"},
                         headers={"Authorization": f"Bearer {token}"}).json()
            (found,) = [e["resource"]["id"] for e in b.get("entry", []) if e.get("search", {}).get("mode") == "match"]
            return found

        engine.mm = (http, send, register)
        yield engine
    engine.close()


def _resident(engine, pid: str) -> dict[str, str]:
    token, _ = engine.auth.issue_token(subject=f"person-{pid}", kind="patient", client_id="phr",
                                       scopes=["patient/*.rs"], patient=pid)
    return {"Authorization": f"Bearer {token}"}


def _operator(engine) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("his-gw", "system/*.cruds")}


def _err(ack: str) -> list[str]:
    return next((seg.split("|") for seg in ack.replace("\n", "\r").split("\r") if seg.startswith("ERR|")), [])


@pytest.mark.parametrize("trigger", ["A40", "A34", "A47"])
def test_a_merge_of_two_national_id_numbers_is_refused_at_mrg1(world, trigger):
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    b = register("MRN-B", B_NID, "钱^秘密")
    hb = _resident(world, b)
    ack = send(trigger, _pid("MRN-A", A_NID, "赵^一"), "MRG|MRN-B^^^FNXRMYY^MR\r")
    assert ack_code_of(ack) == "AE", ack
    err = _err(ack)
    assert err[2] == "MRG^1^1" and err[3].startswith("205"), ack
    assert "national ID" in err[8], ack
    # kept for replay, as every AE is
    assert any(d.get("control_id", "").startswith("MM") or d.get("ack_code") == "AE"
               for d in world.ingestor.messages.quarantined()), world.ingestor.messages.quarantined()
    # nothing merged: B's record is as it was, B's token reads B and never A
    stored_b = http.get(f"/fhir/Patient/{b}", headers=hb)
    assert stored_b.status_code == 200 and B_NID in stored_b.text and '"replaced-by"' not in stored_b.text
    for path in (f"/fhir/Patient/{a}", f"/fhir/Patient/{a}/$everything", "/fhir/Encounter", "/fhir/Patient"):
        r = http.get(path, headers=hb)
        assert A_NID not in r.text and "赵" not in r.text, (path, r.status_code, r.text[:400])
    ev = http.get(f"/fhir/Patient/{a}/$everything", headers=_resident(world, a))
    assert ev.status_code == 200 and B_NID not in ev.text and "秘密" not in ev.text
    assert world.identity.person_compartment(a) == {a}
    assert world.identity.person_compartment(b) == {b}


def test_a_merge_of_one_numbers_two_records_still_merges_and_the_old_token_follows(world):
    http, send, register = world.mm
    c = register("MRN-C", A_NID, "赵^一")
    d = register("MRN-D", A_NID, "赵^一")
    ack = send("A40", _pid("MRN-C", A_NID, "赵^一"), "MRG|MRN-D^^^FNXRMYY^MR\r")
    assert ack_code_of(ack) == "AA", ack
    assert world.identity.person_compartment(d) == {c, d} == world.identity.person_compartment(c)
    r = http.get(f"/fhir/Patient/{c}", headers=_resident(world, d))
    assert r.status_code == 200 and A_NID in r.text


def test_a_record_with_no_number_merges_into_a_numbered_one(world):
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    u = register("MRN-U", None, "无名^氏", "19900101", "M")  # an unidentified emergency record
    ack = send("A40", _pid("MRN-A", A_NID, "赵^一"), "MRG|MRN-U^^^FNXRMYY^MR\r")
    assert ack_code_of(ack) == "AA", ack
    assert world.identity.person_compartment(a) == {a, u}


def test_another_number_for_a_record_merged_with_hers_is_refused_at_pid3(world):
    """B's record (her number) merged into U, an unidentified record: the hospital says they are one
    (nothing contradicts it), and B's old token reads U. An A08 then gives U another resident's
    number (A's, with A's name, sex and birth date): U would be A's record, merged with B's -- the two
    persons joined. Refused (AE at PID-3: undo the merge first, A37); B's token never reads A's number."""
    http, send, register = world.mm
    b = register("MRN-B", B_NID, "钱^秘密")
    u = register("MRN-U", None, "无名^氏")
    hb = _resident(world, b)
    ack = send("A40", _pid("MRN-U", None, "无名^氏"), "MRG|MRN-B^^^FNXRMYY^MR\r")
    assert ack_code_of(ack) == "AA", ack
    assert http.get(f"/fhir/Patient/{u}", headers=hb).status_code == 200  # followed: one person, as said
    ack = send("A08", _pid("MRN-U", A_NID, "赵^一"))
    assert ack_code_of(ack) == "AE", ack
    assert _err(ack)[2] == "PID^1^3", ack
    assert world.identity.patients_for_number(A_NID) == []
    for path in (f"/fhir/Patient/{u}", f"/fhir/Patient/{u}/$everything", "/fhir/Patient", "/fhir/Encounter"):
        r = http.get(path, headers=hb)
        assert A_NID not in r.text and "赵" not in r.text, (path, r.status_code, r.text[:400])
    # undone first (A37), the new number is taken: U is A's, and B's token stops at her own record
    ack = send("A37", _pid("MRN-U", None, "无名^氏"), _pid("MRN-B", None, "钱^秘密").replace("PID|1|", "PID|2|"))
    assert ack_code_of(ack) == "AA", ack
    ack = send("A08", _pid("MRN-U", A_NID, "赵^一"))
    assert ack_code_of(ack) == "AA", ack
    r = http.get(f"/fhir/Patient/{u}", headers=hb)
    assert A_NID not in r.text, r.text[:400]


def test_an_old_records_token_does_not_follow_its_merge_into_another_persons_records(world):
    """B's record merged into U (no number: accepted, one person as the hospital says); the desk then
    links U to A's record as A's (``$link`` seealso: U is A's record). B's merged-away record carried
    B's number: the merge is not followed into A's person -- B's old token does not read A's visit,
    and A's does not read B's (her visit, filed under her merged-away record).
    Data changed in the twenty-sixth round (linkmend26): that ``$link`` (U holds B's merged record, A
    carries another number) is refused now (422); the rest is asserted of such a link stored before
    the rule (``before_linkmend26``)."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    b = register("MRN-B", B_NID, "钱^秘密")
    u = register("MRN-U", None, "无名^氏")
    ack = send("A40", _pid("MRN-U", None, "无名^氏"), "MRG|MRN-B^^^FNXRMYY^MR\r")
    assert ack_code_of(ack) == "AA", ack
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "source", "valueReference": {"reference": f"Patient/{a}"}},
        {"name": "target", "valueReference": {"reference": f"Patient/{u}"}},
        {"name": "reason", "valueString": "the emergency patient is A"}]}
    r = http.post("/fhir/Patient/$link", headers=_operator(world), json=params)
    assert r.status_code == 422 and "身份证号不同" in r.text and B_NID not in r.text, r.text
    assert a not in world.identity.person_compartment(u)
    with before_linkmend26(world):
        r = http.post("/fhir/Patient/$link", headers=_operator(world), json=params)
    assert r.status_code == 200, r.text
    assert a in world.identity.person_compartment(u)
    assert b not in world.identity.person_compartment(a)
    assert a not in world.identity.person_compartment(b)
    enc_b = http.get("/fhir/Encounter", headers=_resident(world, b))
    assert "V-MRN-A" not in enc_b.text, enc_b.text[:600]
    enc_a = http.get("/fhir/Encounter", headers=_resident(world, a))
    assert enc_a.status_code == 200 and "V-MRN-B" not in enc_a.text and "V-MRN-A" in enc_a.text, enc_a.text[:600]


def test_a_fhir_clients_patient_merged_into_another_numbers_record_is_refused(world):
    """A guard (it passed before): a FHIR client states no merge at all (``merge.yaml``: the index's)."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    b = register("MRN-B", B_NID, "钱^秘密")
    ops = _operator(world)
    stored = http.get(f"/fhir/Patient/{b}", headers=ops).json()
    stored.pop("meta", None)
    stored["link"] = [{"other": {"reference": f"Patient/{a}"}, "type": "replaced-by"}]
    r = http.put(f"/fhir/Patient/{b}", json=stored, headers=ops)
    assert r.status_code == 422 and r.json()["resourceType"] == "OperationOutcome", r.text
    assert world.identity.person_compartment(b) == {b} and world.identity.person_compartment(a) == {a}
