"""privleft26: a family grant is judged by the index's one merge chain (twenty-sixth round).

孙伟 holds a grant for 孙小宝's FNXRMYY record. The hospital merges that record into an unidentified
emergency record U (ADT^A40: no number on U, so nothing contradicts it), and the desk then merges U
into 赵桂兰's record (``$link`` ``replaced-by``). Family access no longer walks ``replaced_by`` itself:
it asks the index's chain (``IdentityService.merge_chain``), which stops at the step into another ID
number's record -- the grant is refused as moved to another person, and nothing of 赵桂兰's is shown.
A guard: the compartment already stopped there before (it passed on the base). Real path: HL7 v2
over ``POST /hl7v2``, the desk's ``$link``, the sign-in pages and ``/fhir``.
"""

from __future__ import annotations

from tests import test_famfix18_grant_person as famfix18
from tests.operator_calls import before_linkmend26
from tests.test_famfix18_grant_person import PHR, _grant, _operate, _refused
from tests.test_resident_family import SUN, bearer, proxy_sign_in, subjects
from tests.test_resident_record_ui import ZHAO, hl7, msh

world = famfix18.world


def _send(http, tools, message: bytes) -> None:
    r = http.post("/hl7v2", content=message, headers=tools["sender"])
    assert r.headers["x-hl7-ack-code"] == "AA", r.text


def test_a_granted_record_merged_on_into_another_numbers_record_opens_nothing_of_it(world):
    """Data changed in the twenty-sixth round (linkmend26): the desk's merge of U (holding the granted
    record, 孙小宝's number) into 赵桂兰's record is refused now (422); the grant is judged for such
    a merge stored before the rule (``before_linkmend26``)."""
    engine, http, tools = world
    zhao = set(engine.identity.patients_for_number(ZHAO))
    consent = _grant(http, tools)
    granted = consent["patient"]["reference"].removeprefix("Patient/")
    token, _ = proxy_sign_in(http, engine, SUN, "孙小宝", app=PHR)
    before = subjects(http.get("/fhir/Observation", headers=bearer(token["access_token"])).json())
    assert granted in before and not before & zhao
    mrn = next(i["value"] for i in engine.repository.read("Patient", granted)["identifier"]
               if i.get("system") == "urn:huren:mrn:FNXRMYY")
    unknown = "PID|1||ZY2026009999^^^FNXRMYY^MR||无名^氏||20200606|F"
    _send(http, tools, hl7(msh("HIS", "FNXRMYY", "20261201080000", "ADT^A04^ADT_A01", "RM-A04-U"), "EVN|A04|20261201080000",
                           unknown, "PV1|1|E"))
    u = http.get("/fhir/Patient?identifier=ZY2026009999", headers=tools["operator"]).json()["entry"][0]["resource"]["id"]
    _send(http, tools, hl7(msh("HIS", "FNXRMYY", "20261201090000", "ADT^A40^ADT_A39", "RM-A40-U"), "EVN|A40|20261201090000",
                           unknown, f"MRG|{mrn}^^^FNXRMYY^MR"))
    assert engine.identity.record(granted)["replaced_by"] == u
    r = http.post("/fhir/Patient/$link", headers=tools["operator"], json={"resourceType": "Parameters", "parameter": [
        {"name": "source", "valueReference": {"reference": f"Patient/{u}"}},
        {"name": "target", "valueReference": {"reference": f"Patient/{sorted(zhao)[0]}"}},
        {"name": "type", "valueCode": "replaced-by"}, {"name": "reason", "valueString": "checked at the desk"}]})
    assert r.status_code == 422 and "身份证号不同" in r.text and ZHAO not in r.text, r.text
    with before_linkmend26(engine):
        _operate(http, tools, "link", u, sorted(zhao)[0], "replaced-by")
    assert engine.identity.merge_chain(granted) is None  # into another number's record: not one person's chain
    assert engine.identity.kept_record(granted) is None
    _refused(http, engine, tools, token, zhao)
