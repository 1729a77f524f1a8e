"""An operator's merge (``$link`` type ``replaced-by``) of a record carrying another resident's ID
number joins the record to the survivor's person, not the two persons (seventeenth round, id17).

At FNXRMYY 张三 was registered a second time (O) from the ID card of a relative, 张小明, whose own
record at FNZYY carries that number: O was linked to 张小明's person. The desk merges O into
张三's record S. The index kept O in 张小明's person (by hand now) and the compartment follows
merges through persons: 张三 read every record of 张小明 at every hospital, and 张小明 read
张三's. Now the record merged takes the survivor's person (as an HL7 merge leaves it: an A40 writes
the old record with its MRN alone, out of every person); undoing the merge (``$unlink`` of the two)
takes it out of both. And whatever links two persons' records by a merge (a late ADT^A08 of the
merged-away MRN carrying the relative's number re-links it to the relative's person), the compartment
spans one person: it no longer follows a merge into another. Real path: ``POST /hl7v2`` and
``/fhir/Patient/$link`` / ``$unlink`` over HTTP.
"""

from __future__ import annotations

from stdnum.cn import ric

from tests import test_id17_revisit as revisit
from tests.operator_calls import before_linkmend26, operate
from tests.test_id17_revisit import ER7, NID, _message

world = revisit.world  # the fixture: the engine, HTTP and an HL7 feed

RELATIVE = "32092319900101125"
RELATIVE += ric.calc_check_digit(RELATIVE + "0")  # born 1990-01-01, male: another resident


def _merge(http, source: str, target: str) -> None:
    r = http.post("/fhir/Patient/$link", json={"resourceType": "Parameters", "parameter": [
        {"name": "source", "valueReference": {"reference": f"Patient/{source}"}},
        {"name": "target", "valueReference": {"reference": f"Patient/{target}"}},
        {"name": "type", "valueCode": "replaced-by"},
        {"name": "reason", "valueString": "duplicate registration made from a relative's ID card"}]})
    assert r.status_code == 200, r.text


def _old_merge(engine, http, source: str, target: str) -> None:
    """``_merge`` of two ID numbers' records as the code before the twenty-sixth round took it (refused
    since, linkmend26): the state such an old merge left, for the tests of its undo."""
    with before_linkmend26(engine):
        _merge(http, source, target)


def test_a_merged_record_of_another_number_joins_the_survivors_person_only(world):
    """Data changed in the twenty-sixth round (linkmend26): the desk's merge of O (the relative's number)
    into S (张三's) is refused now (422, nothing changed: DOMAIN, one person is one ID number); what
    this test built -- the merged record in the survivor's person only, and the undo giving it back
    to its number -- is kept for a merge made before the rule (``_old_merge``)."""
    engine, http, send = world
    s = send("FNXRMYY", "A04", "张三")
    o = send("FNZXYY", "A04", "张小明", RELATIVE)
    relative = send("FNZYY", "A04", "张小明", RELATIVE)
    assert engine.identity.person_compartment(relative) == {o, relative}
    r = http.post("/fhir/Patient/$link", json={"resourceType": "Parameters", "parameter": [
        {"name": "source", "valueReference": {"reference": f"Patient/{o}"}},
        {"name": "target", "valueReference": {"reference": f"Patient/{s}"}},
        {"name": "type", "valueCode": "replaced-by"},
        {"name": "reason", "valueString": "duplicate registration made from a relative's ID card"}]})
    assert r.status_code == 422 and "身份证号不同" in r.text and RELATIVE not in r.text, r.text
    assert engine.identity.person_compartment(s) == {s}
    assert engine.identity.person_compartment(relative) == {o, relative}
    _old_merge(engine, http, o, s)
    assert engine.identity.person_compartment(s) == {s, o}
    assert engine.identity.person_compartment(relative) == {relative}
    assert engine.identity.patients_for_number(RELATIVE) == [relative]
    assert [link["type"] for link in http.get(f"/fhir/Patient/{relative}").json().get("link", [])] == []
    operate(http, "unlink", o, s)  # the merge undone: O goes back to its number, as a re-send would (id18)
    assert engine.identity.person_compartment(s) == {s}
    assert engine.identity.person_compartment(relative) == {relative, o}
    assert engine.identity.record(o)["status"] == "linked"


def test_a_merge_within_one_person_keeps_it(world):
    engine, http, send = world
    s = send("FNXRMYY", "A04", "张三")
    o = send("FNZXYY", "A04", "张三")
    other = send("FNZYY", "A04", "张三")
    _merge(http, o, s)
    assert engine.identity.person_compartment(s) == engine.identity.person_compartment(other) == {s, o, other}
    assert engine.identity.patients_for_number(NID) == sorted([s, o, other])



def _a40(survivor_mrn: str, old_mrn: str) -> bytes:
    return "\r".join([
        "MSH|^~\\&|HIS|FNXRMYY|HUREN|FUNING|20261201090000||ADT^A40^ADT_A39|FNXRMYY-A40-1|P|2.5.1",
        "EVN|A40|20261201090000",
        f"PID|1||{NID}^^^公安部^NNCHN~{survivor_mrn}^^^FNXRMYY^MR||张^三||19900101|M",
        f"MRG|{old_mrn}^^^FNXRMYY^MR"]).encode() + b"\r"


def test_a_late_a08_of_the_merged_record_does_not_join_the_two_persons(world):
    engine, http, send = world
    s = send("FNXRMYY", "A04", "张三")
    o = send("FNZXYY", "A04", "张小明", RELATIVE)
    relative = send("FNZYY", "A04", "张小明", RELATIVE)
    r = http.post("/hl7v2", content=_a40("ZY0001", "ZY0004"), headers={"Content-Type": ER7})
    # twenty-fifth round (mergemend25): an A40 of two records carrying two valid ID numbers is refused
    # at MRG-1 (this test pinned its AA, the merged record leaving the relative's number, on purpose);
    # nothing is merged, and the late A08 below changes nothing either
    assert r.headers["x-hl7-ack-code"] == "AE" and "|MRG^1^1|" in r.text, r.text
    assert engine.identity.person_compartment(s) == {s}
    assert engine.identity.person_compartment(relative) == {relative, o}
    # an A08 of the old MRN sent before the merge, delivered after it: the relative's number again
    r = http.post("/hl7v2", content=_message("FNZXYY", "A08", "张小明", RELATIVE), headers={"Content-Type": ER7})
    assert r.headers["x-hl7-ack-code"] == "AA", r.text
    assert not engine.identity.record(o).get("replaced_by") and engine.identity.record(o)["status"] == "linked"
    assert engine.identity.person_compartment(s) == {s}
    assert engine.identity.person_compartment(relative) == {relative, o}
