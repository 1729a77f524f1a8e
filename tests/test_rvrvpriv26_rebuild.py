"""rvrvpriv26 probes: ``recover_merged_keys`` (run at first start and by ``huren identity rebuild``)
against merges stored by TODAY's code, and the scoped read of a resident's own merged records.
Real path: HL7 over POST /hl7v2, FHIR over the FastAPI app, the real store."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from tests import test_mergemend25_merge as mm
from tests.operator_calls import before_linkmend26
from tests.test_mergemend25_merge import A_NID, B_NID, _operator, _pid, _resident, world  # noqa: F401


@pytest.fixture
def mworld(tmp_path):
    """mergemend25's world on mongomock (the other backend)."""
    from engine.engine import Engine
    from engine.settings import Settings

    engine = Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0).with_(mongodb_uri="mongomock://"))
    with TestClient(create_app(engine)) as http:
        def send(trigger: str, pid: str, extra: str = "") -> str:
            return mm.post_hl7v2(engine, http, mm._msg(trigger, pid, extra)).text

        def register(mrn: str, nid: str | None, name: str, born: str = "", sex: str = "") -> str:
            ack = send("A04", _pid(mrn, nid, name, born, sex), "PV1|1|O|内科^^^FNXRMYY||||||||||||||||V-" + mrn + "\r")
            assert ack_code_of(ack) == "AA", ack
            token = engine.auth.issue_system_token("his-a", "system/*.rs")
            b = http.get("/fhir/Patient", params={"identifier": f"urn:huren:mrn:FNXRMYY|{mrn}"},
                         headers={"Authorization": f"Bearer {token}"}).json()
            return b["entry"][0]["resource"]["id"]

        engine.mm = (http, send, register)
        yield engine
    engine.close()


@pytest.fixture(params=["sqlite", "mongomock"])
def both(request):
    return request.getfixturevalue("world" if request.param == "sqlite" else "mworld")


def test_on_mongomock_rebuild_recovers_an_old_two_number_merge_and_keeps_a_numberless_one(mworld):
    """The other backend: the recovery gives an entry that lost its merged_key (a two-number merge as
    older code stored it) its number back (not followed), and leaves a merge of a record that never
    carried one followed."""
    http, send, register = mworld.mm
    a = register("MRN-A", A_NID, "赵^一")
    u = register("MRN-U", None, "无名^氏", "19900101", "M")
    b = register("MRN-B", B_NID, "钱^秘密")
    ack = send("A40", _pid("MRN-A", A_NID, "赵^一"), "MRG|MRN-U^^^FNXRMYY^MR\r")
    assert ack_code_of(ack) == "AA", ack
    ack = send("A40", _pid("MRN-U2", None, "无名^氏"), "MRG|MRN-B^^^FNXRMYY^MR\r")
    assert ack_code_of(ack) == "AA", ack
    assert mworld.identity.meta.get("merged-keys-recovered") is not None
    assert mworld.identity.record(b).get("merged_key")
    mworld.identity.links.update(b, {"merged_key": None})
    mworld.identity.rebuild()
    assert mworld.identity.record(b).get("merged_key")
    assert mworld.identity.person_compartment(a) == {a, u}
    assert mworld.identity.kept_record(u) == a


def _ids(bundle: dict) -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", []) if e["resource"]["resourceType"] == "Patient"}


def test_a_number_removed_then_a_numberless_merge_survives_identity_rebuild(both):
    """W was registered with B's number by mistake; an operator removes the number (PUT), the hospital
    then merges the now numberless W into A's record (A40: AA, followed -- today's code stores no
    merged_key, W carried no number when merged). ``huren identity rebuild`` must not change that
    answer: nothing in the store changed."""
    http, send, register = both.mm
    a = register("MRN-A", A_NID, "赵^一")
    w = register("MRN-W", B_NID, "钱^秘密")
    ops = _operator(both)
    stored = http.get(f"/fhir/Patient/{w}", headers=ops).json()
    stored.pop("meta", None)
    stored["identifier"] = [i for i in stored["identifier"] if B_NID not in str(i.get("value"))]
    stored["name"] = [{"text": "赵一", "family": "赵", "given": ["一"]}]
    stored["gender"], stored["birthDate"] = "male", "1990-01-01"
    r = http.put(f"/fhir/Patient/{w}", json=stored, headers=ops)
    assert r.status_code == 200, r.text
    assert B_NID not in http.get(f"/fhir/Patient/{w}", headers=ops).text
    assert not both.identity.record(w).get("nid_key")
    ack = send("A40", _pid("MRN-A", A_NID, "赵^一"), "MRG|MRN-W^^^FNXRMYY^MR\r")
    assert ack_code_of(ack) == "AA", ack
    before = both.identity.person_compartment(a)
    assert w in before and both.identity.kept_record(w) == a
    ha = _resident(both, a)
    enc = http.get("/fhir/Encounter", headers=ha)
    assert "V-MRN-W" in enc.text, enc.text[:400]
    both.identity.rebuild()
    # the booking rule (merge_rules._kept_record) asks this: None = "the index does not tell", refused
    assert both.identity.kept_record(w) == a, both.identity.record(w)
    assert both.identity.person_compartment(a) == before, both.identity.record(w)
    enc = http.get("/fhir/Encounter", headers=ha)
    assert "V-MRN-W" in enc.text, enc.text[:400]


def test_her_own_merged_away_records_are_read_and_counted_alike(world):  # noqa: F811
    """A2 (her number) and U (no number) merged into A: A's token reads both by id, and the Patient
    search lists and counts them; A2's old token reads A too."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    a2 = register("MRN-A2", A_NID, "赵^一")
    u = register("MRN-U", None, "无名^氏", "19900101", "M")
    b = register("MRN-B", B_NID, "钱^秘密")
    for mrn in ("MRN-A2", "MRN-U"):
        ack = send("A40", _pid("MRN-A", A_NID, "赵^一"), f"MRG|{mrn}^^^FNXRMYY^MR\r")
        assert ack_code_of(ack) == "AA", ack
    ha = _resident(world, a)
    for pid in (a, a2, u):
        assert http.get(f"/fhir/Patient/{pid}", headers=ha).status_code == 200, pid
    assert http.get(f"/fhir/Patient/{b}", headers=ha).status_code == 404
    page = http.get("/fhir/Patient?_count=50", headers=ha).json()
    assert _ids(page) == {a, a2, u}, page
    assert page.get("total", len(page.get("entry", []))) == 3, page.get("total")
    count = http.get("/fhir/Patient?_summary=count", headers=ha).json()
    assert count["total"] == 3, count
    ev = http.get(f"/fhir/Patient/{a}/$everything", headers=ha)
    assert ev.status_code == 200 and {a, a2, u} <= _ids(ev.json()), ev.text[:400]
    assert http.get(f"/fhir/Patient/{a}", headers=_resident(world, a2)).status_code == 200
    enc = http.get("/fhir/Encounter", headers=ha)
    assert all(f"V-MRN-{m}" in enc.text for m in ("A", "A2", "U")), enc.text[:400]


def _old_desk_link(world, a: str, u: str) -> None:  # noqa: F811
    """The desk links A to U (U holding B's merged record): refused since linkmend26 (two ID numbers
    in one person); the link a store made before the rule is built with it switched off
    (``before_linkmend26``), and what the reads show of that old state is what these tests judge."""
    http = world.mm[0]
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "source", "valueReference": {"reference": f"Patient/{a}"}},
        {"name": "target", "valueReference": {"reference": f"Patient/{u}"}},
        {"name": "reason", "valueString": "the emergency patient is A"}]}
    assert http.post("/fhir/Patient/$link", headers=_operator(world), json=body).status_code == 422
    with before_linkmend26(world):
        r = http.post("/fhir/Patient/$link", headers=_operator(world), json=body)
    assert r.status_code == 200, r.text


def test_a_patient_citing_hers_by_link_is_withheld_in_read_search_and_count_alike(world):  # noqa: F811
    """B's record merged into U (numberless), the desk then links A to U (seealso): B's record names
    U in Patient.link (R4 puts it in U's compartment) but is B's. A's token: not read, not listed,
    not counted, not included; B's own token still reads B's record."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    b = register("MRN-B", B_NID, "钱^秘密")
    u = register("MRN-U", None, "无名^氏")
    ack = send("A40", _pid("MRN-U", None, "无名^氏"), "MRG|MRN-B^^^FNXRMYY^MR\r")
    assert ack_code_of(ack) == "AA", ack
    _old_desk_link(world, a, u)
    ha = _resident(world, a)
    assert http.get(f"/fhir/Patient/{b}", headers=ha).status_code == 404
    page = http.get("/fhir/Patient?_count=50", headers=ha).json()
    listed = _ids(page)
    assert b not in listed and B_NID not in str(page), page
    assert http.get("/fhir/Patient?_summary=count", headers=ha).json()["total"] == len(listed), listed
    for q in (f"/fhir/Patient?link=Patient/{u}", f"/fhir/Patient?_id={b}", f"/fhir/Patient?_id={u}&_revinclude=Patient:link",
              f"/fhir/Patient/{u}/$everything", f"/fhir/Patient/{a}/$everything", "/fhir/Encounter?_include=Encounter:subject"):
        got = http.get(q, headers=ha)
        assert got.status_code in (200, 400) and B_NID not in got.text and "秘密" not in got.text, (q, got.text[:400])


def test_her_own_record_merged_into_a_record_later_linked_to_another_person_stays_hers(world):  # noqa: F811
    """B's record merged into U (numberless), the desk then links A to U: B's token is bound to B's own
    record (her number, her name) and must still read it -- not 'this Patient is not known'."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    b = register("MRN-B", B_NID, "钱^秘密")
    u = register("MRN-U", None, "无名^氏")
    ack = send("A40", _pid("MRN-U", None, "无名^氏"), "MRG|MRN-B^^^FNXRMYY^MR\r")
    assert ack_code_of(ack) == "AA", ack
    _old_desk_link(world, a, u)
    hb = _resident(world, b)
    own = http.get(f"/fhir/Patient/{b}", headers=hb)
    # privfix26: the A40 wrote B's record with its MRN alone (her number is in the version before it):
    # her record names her by her name and MRN; the link to U (now A's person) is not shown
    assert own.status_code == 200 and "秘密" in own.text and "MRN-B" in own.text, own.text[:300]
    assert u not in own.text and a not in own.text, own.text
    assert http.get(f"/fhir/Patient/{a}", headers=hb).status_code == 404
    assert http.get(f"/fhir/Patient/{u}", headers=hb).status_code == 404
    for q in (f"/fhir/Patient/{b}/_history", f"/fhir/Patient/{b}/$everything"):
        got = http.get(q, headers=hb)
        assert got.status_code == 200 and "秘密" in got.text and u not in got.text and a not in got.text, q
    page = http.get("/fhir/Patient?_count=50", headers=hb).json()
    assert _ids(page) == {b}, page
    assert http.get("/fhir/Patient?_summary=count", headers=hb).json()["total"] == 1
    enc = http.get("/fhir/Encounter", headers=hb)
    assert "V-MRN-B" in enc.text and "V-MRN-U" not in enc.text and "V-MRN-A" not in enc.text, enc.text[:400]
