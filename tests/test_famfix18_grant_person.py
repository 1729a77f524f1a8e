"""A family grant is consent about one person (eighteenth round, famfix18: the leak id18 proved).

At the county hospital's desk 孙伟 is given access to his daughter 孙小宝's record; she has two
records (FNXRMYY, FNZYY), linked by her ID number. The grant names one of them. Before this round
a family token opened ``person_compartment(that record)`` -- whatever person the record belonged
to *now*: once the desk linked it into 赵桂兰's person, 孙伟 read 赵桂兰's results; once an A08
corrected it to 钱多多's number, 钱多多's. The grant now binds the person it was given for (the
subject's ID-number person key, recorded in the Consent; for an older grant derived from the
number the record carried when the grant was made), and a family token opens nothing while its
record is another person's: every FHIR read, search, ``$everything``, ``_include`` and Bundle
``GET``, introspection, userinfo and refresh say so. Undone, the grant holds again. Real path:
HL7 v2 over ``POST /hl7v2``, the sign-in pages, ``/auth/token``, ``/fhir``, the desk's
``$link``/``$unlink``; SQLite and mongomock.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.auth.family import person_key
from engine.auth.secret_file import SecretJsonFile
from tests.module_store import fed_copy
from tests.operator_calls import before_linkmend26
from tests.test_regapp33_registration_apps import _site
from tests.test_resident_family import (
    SUN,
    XIAO,
    bearer,
    family_feeds,
    ids_of,
    params,
    proxy_sign_in,
    subjects,
)
from tests.test_resident_record_ui import QIAN, ZHAO, hl7, lab, msh, pid

MOVED = "归入他人名下"
PHR = ("phr", "https://phr.example/cb", "launch/patient openid fhirUser offline_access patient/*.rs")


def declared_site(folder: Path) -> Path:
    """A site folder declaring 阜宁县人民医院's HIS its registration application (``registration_applications:
    [HIS]``) and no other member's, as a hospital whose HIS registers patients configures it: its A08 numbering a
    record is the registrar's word (on a site declaring nothing, where nothing tells the HIS from a LIS, the same A08
    is held -- reg41..decl42 -- so the index would never link the records these tests' grants must not follow). The
    shipped site declares every member's HIS since decl42; this one keeps the tests' world as it was built."""
    return _site(folder, ["HIS"])


# The clients file the module's first world registered (``registry.add``), and its resource server's secret
_REGISTERED: dict[str, Any] = {}


def _clients(engine) -> str:
    """The desk, the phone app and the resource server registered in ``engine``; the resource server's secret.

    The module's first world registers them (``registry.add``: each secret's scrypt, ~40 ms of CPU); each later
    world starts from a copy of the clients file that wrote (``SecretJsonFile.write``, the registry's own atomic
    owner-only write, re-read by the registry as a file ``huren client add`` wrote): the same three clients, the
    same scopes and redirect URI, the secret checked by its scrypt hash at introspection as before -- ~80 ms of a
    world's ~0.25 s of setup CPU (warm, measured) once a module instead (forty-sixth round, suite46b)."""
    registry = engine.auth.registry
    if _REGISTERED:
        SecretJsonFile(registry.path, dict, dict).write(_REGISTERED["file"])
        return _REGISTERED["secret"]
    registry.add("fnxrmyy-desk", scopes=["system/Consent.cru", "system/RelatedPerson.cru"], kind="system")
    registry.add("phr", scopes=["launch/patient", "openid", "fhirUser", "offline_access", "patient/*.rs"],
                 kind="patient-app", redirect_uris=["https://phr.example/cb"], public=True)
    secret = registry.add("resource-server", scopes=["system/*.rs"], kind="system")
    _REGISTERED.update(file=json.loads(registry.path.read_bytes()), secret=secret)
    return secret


def _feed(http: TestClient, sender: dict[str, str]) -> None:
    """The family's feeds over HL7 v2 (``POST /hl7v2``), with 孙小宝's second record at FNZYY."""
    xiao_zy = pid(XIAO, "MZ2026009002", "FNZYY", "孙小宝", "20200606", "F")
    for message in [*family_feeds(), lab("FNZYY", "ZY-LIS-XIAO", "20261005", xiao_zy, ("XCG", "血常规"),
                                         ("PLT", "血小板", "250", "10*9/L", "125-350", "N"))]:
        assert http.post("/hl7v2", content=message, headers=sender).headers["x-hl7-ack-code"] == "AA"


def _sender(engine) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("his-gw", "system/MessageHeader.c"),
            "Content-Type": "x-application/hl7-v2+er7"}


def _fed(settings) -> None:
    """An engine on ``settings`` (SQLite) fed as ``world`` feeds one, its clients registered, then closed: the
    folder each SQLite world opens a copy of (``module_store.fed_copy``)."""
    from engine.engine import Engine

    with Engine(settings) as engine, TestClient(create_app(engine)) as http:
        _feed(http, _sender(engine))
        _clients(engine)


@pytest.fixture
def world(backend_settings, tmp_path, tmp_path_factory):
    """The engine (SQLite, mongomock) fed over HL7 v2, with 孙小宝's second record at FNZYY, a desk
    that records grants, an operator, a resource server for introspection and a phone app; the HIS declared
    the registration application (``declared_site``).

    On SQLite the engine opens a copy of the data folder the process's first SQLite world fed (``_fed``, ``fed_copy``:
    the same messages through the same path, then closed -- the store, its audit log and keys, the clients file),
    as a server restarted on the fed store; on mongomock (and a real MongoDB) each world is fed as before. The
    seven modules using this world (~36 worlds in the suite) had fed every one (~0.15 s of CPU each, warm) and
    hashed two secrets (~80 ms): forty-sixth round, suite46b."""
    from engine.engine import Engine

    settings = backend_settings.with_(site=declared_site(tmp_path / "site"),
                                      extra={"resident_auth": {"sends_per_id_source": 20, "sends_per_source": 40}})
    if settings.mongodb_uri is None:
        fed_copy("famfix18-world", lambda folder: _fed(settings.with_(data_dir=folder)), settings.data_dir,
                 tmp_path_factory)
    engine = Engine(settings)
    with TestClient(create_app(engine)) as http:
        sender = _sender(engine)
        if settings.mongodb_uri is not None:
            _feed(http, sender)
        rs_secret = _clients(engine)
        tools = {
            "sender": sender,
            "desk": bearer(engine.auth.issue_system_token("fnxrmyy-desk", "system/Consent.cru system/RelatedPerson.cru")),
            "operator": bearer(engine.auth.issue_system_token("desk-mpi", "system/Patient.rus")),
            "rs": ("resource-server", rs_secret),
        }
        yield engine, http, tools
    engine.close()


def _grant(http, tools, **extra) -> dict:
    r = http.post("/fhir/Patient/$family-grant", headers=tools["desk"], json=params(
        nationalId=XIAO, proxyNationalId=SUN, proxyName="孙伟", relationship="PRN", idCardChecked=True, **extra))
    assert r.status_code == 201, r.text
    return {p["name"]: p["resource"] for p in r.json()["parameter"]}["consent"]


def _operate(http, tools, op: str, source: str, target: str | None = None, type_: str | None = None) -> None:
    ps = [{"name": "source", "valueReference": {"reference": f"Patient/{source}"}},
          {"name": "reason", "valueString": "checked at the desk"}]
    if target:
        ps.append({"name": "target", "valueReference": {"reference": f"Patient/{target}"}})
    if type_:
        ps.append({"name": "type", "valueCode": type_})
    r = http.post(f"/fhir/Patient/${op}", headers=tools["operator"], json={"resourceType": "Parameters", "parameter": ps})
    assert r.status_code == 200, r.text


def _refused(http, engine, tools, token: dict, others: set[str], words: str = MOVED) -> None:
    """Everything the token could reach is refused with the reason (``words``); nothing of ``others`` shows."""
    as_father = bearer(token["access_token"])
    other = sorted(others)[0]
    answers = [
        http.get("/fhir/Observation?_count=100", headers=as_father),
        http.get(f"/fhir/Observation?subject=Patient/{other}&_include=Observation:subject", headers=as_father),
        http.get(f"/fhir/Patient/{other}", headers=as_father),
        http.get(f"/fhir/Patient/{token['patient']}", headers=as_father),
        http.get(f"/fhir/Patient/{other}/$everything", headers=as_father),
        http.post("/fhir", headers=as_father, json={"resourceType": "Bundle", "type": "batch", "entry": [
            {"request": {"method": "GET", "url": f"Observation?subject=Patient/{other}"}},
            {"request": {"method": "GET", "url": f"Patient/{other}"}}]}),
    ]
    for r in answers:
        assert r.status_code == 403 and words in r.json()["issue"][0]["diagnostics"], r.text
        assert not any(p in r.text for p in others)
    assert http.post("/auth/introspect", data={"token": token["access_token"]}, auth=tools["rs"]).json() == {"active": False}
    assert http.get("/auth/userinfo", headers=as_father).status_code == 401
    refreshed = http.post("/auth/token", data={"grant_type": "refresh_token", "client_id": "phr",
                                               "refresh_token": token["refresh_token"]})
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    _, offered = proxy_sign_in(http, engine, SUN, None)
    assert not any("孙小宝" in o for o in offered)  # no longer offered at sign-in


def test_a_grant_opens_nothing_of_the_person_its_record_was_linked_into(world):
    """Data changed in the twenty-sixth round (linkmend26): the desk's ``$link`` of a record of 孙小宝's
    number into 赵桂兰's person is refused now; the two such links here are ones stored before the
    rule (``before_linkmend26``): the grant must still open nothing of hers through them."""
    engine, http, tools = world
    zhao = set(engine.identity.patients_for_number(ZHAO))
    xiao = set(engine.identity.patients_for_number(XIAO))
    assert len(xiao) == 2 and len(zhao) == 3
    consent = _grant(http, tools)
    granted = consent["patient"]["reference"].removeprefix("Patient/")
    other = (xiao - {granted}).pop()
    # both of the child's records open
    token, offered = proxy_sign_in(http, engine, SUN, "孙小宝", app=PHR)
    assert subjects(http.get("/fhir/Observation", headers=bearer(token["access_token"])).json()) == xiao

    # the desk links the granted record into 赵桂兰's person: the grant opens nothing of hers
    with before_linkmend26(engine):
        _operate(http, tools, "link", granted, sorted(zhao)[0])
    assert granted in engine.identity.person_compartment(sorted(zhao)[0])
    _refused(http, engine, tools, token, zhao)
    # nor can a new grant be made for that record while it is someone else's
    r = http.post("/fhir/Patient/$family-grant", headers=tools["desk"], json=params(
        patient={"reference": f"Patient/{granted}"}, proxyNationalId=SUN, proxyName="孙伟", relationship="PRN",
        idCardChecked=True))
    assert r.status_code == 422 and "暂不能授权" in r.text, r.text

    # the link undone: the record is out of every person by hand, so still not hers to open
    _operate(http, tools, "unlink", granted, sorted(zhao)[0])
    again, offered = proxy_sign_in(http, engine, SUN, None)
    assert not any("孙小宝" in o for o in offered)
    # the desk puts it back with her other record: the grant holds again, for her records only
    _operate(http, tools, "link", granted, other)
    token, offered = proxy_sign_in(http, engine, SUN, "孙小宝", app=PHR)
    as_father = bearer(token["access_token"])
    assert subjects(http.get("/fhir/Observation", headers=as_father).json()) == xiao
    assert http.post("/auth/introspect", data={"token": token["access_token"]}, auth=tools["rs"]).json()["active"] is True
    for z in zhao:
        assert http.get(f"/fhir/Patient/{z}", headers=as_father).status_code == 404

    # the Consent records the person it was given for: a key for grants alone (fammend18: not her
    # person id, her own tokens' ``sub``), never her number
    assert consent["patient"]["identifier"] == {"system": "urn:huren:family-grant",
                                                "value": engine.auth.resident.family.grant_key(
                                                    person_key(engine.identity.nid_key(XIAO)))}
    assert XIAO not in json.dumps(consent)

    # her *other* record moved into 赵桂兰's person: the granted one alone still opens
    with before_linkmend26(engine):
        _operate(http, tools, "link", other, sorted(zhao)[0])
    assert subjects(http.get("/fhir/Observation", headers=as_father).json()) == {granted}
    assert http.get(f"/fhir/Patient/{other}", headers=as_father).status_code == 404
    assert not ids_of(http.get(f"/fhir/Observation?subject=Patient/{sorted(zhao)[0]}", headers=as_father).json())


def _old_grant(engine, http, tools, patient: str) -> dict:
    """A grant 赵桂兰 (the grandmother) holds for a record of 孙小宝's, as the code before this
    round recorded it: no person in the Consent."""
    r = http.post("/fhir/Patient/$family-grant", headers=tools["desk"], json=params(
        patient={"reference": f"Patient/{patient}"}, proxyNationalId=ZHAO, proxyName="赵桂兰", relationship="GRPRN",
        idCardChecked=True))
    assert r.status_code == 201, r.text
    old = engine.repository.read("Consent", {p["name"]: p["resource"] for p in r.json()["parameter"]}["consent"]["id"])
    old["patient"] = {"reference": f"Patient/{patient}"}
    engine.repository.update(old)
    return old


def test_a_merge_an_a08_to_another_number_and_a_grant_recorded_before_this_round(world):
    """Data changed in the twenty-sixth round (linkmend26): the desk's merge into 赵桂兰's record is
    refused now; the merge here is one stored before the rule (``before_linkmend26``), undone."""
    engine, http, tools = world
    qian = set(engine.identity.patients_for_number(QIAN))
    xiao = set(engine.identity.patients_for_number(XIAO))
    consent = _grant(http, tools)
    granted = consent["patient"]["reference"].removeprefix("Patient/")
    other = (xiao - {granted}).pop()
    # the grandmother's two old grants, one for each of the child's records (not used before the A08)
    _old_grant(engine, http, tools, granted)
    _old_grant(engine, http, tools, other)
    token, _ = proxy_sign_in(http, engine, SUN, "孙小宝", app=PHR)
    assert subjects(http.get("/fhir/Observation", headers=bearer(token["access_token"])).json()) == xiao

    # merged by the desk into one of 赵桂兰's records (replaced-by): nothing of hers
    zhao = set(engine.identity.patients_for_number(ZHAO))
    with before_linkmend26(engine):
        _operate(http, tools, "link", granted, sorted(zhao)[0], "replaced-by")
    _refused(http, engine, tools, token, zhao)
    # the merge undone: the record goes back to its number's person, and the grant holds again
    _operate(http, tools, "unlink", granted, sorted(zhao)[0])
    assert engine.identity.person_compartment(granted) == frozenset(xiao)
    token, _ = proxy_sign_in(http, engine, SUN, "孙小宝", app=PHR)
    assert subjects(http.get("/fhir/Observation", headers=bearer(token["access_token"])).json()) == xiao

    # the hospital corrects the granted record to 钱多多's ID number (ADT^A08): it is his now
    a08 = hl7(msh("HIS", "FNXRMYY", "20261006090000", "ADT^A08^ADT_A01", "RM-A08-XIAO"), "EVN|A08|20261006090000",
              pid(QIAN, "ZY2026001002", "FNXRMYY", "钱^多多", "19510711", "M"), "PV1|1|O")
    assert http.post("/hl7v2", content=a08, headers=tools["sender"]).headers["x-hl7-ack-code"] == "AA"
    assert granted in engine.identity.person_compartment(sorted(qian)[0])
    _refused(http, engine, tools, token, qian)
    # the old grants' person is the number each record carried when the grant was made: the one
    # for the corrected record opens nothing of 钱多多, the one for her other record still opens it
    for_child, offered = proxy_sign_in(http, engine, ZHAO, "孙小宝")
    assert len([o for o in offered if "孙小宝" in o]) == 1 and not any("钱多多" in o for o in offered), offered
    as_grandmother = bearer(for_child["access_token"])
    assert for_child["patient"] == other
    assert subjects(http.get("/fhir/Observation", headers=as_grandmother).json()) == {other}
    assert http.get(f"/fhir/Patient/{granted}", headers=as_grandmother).status_code == 404


def test_a_grant_for_a_newborns_record_without_an_id_number(world):
    """A record with no ID number yet (a newborn) binds no person: the grant opens it while it stays
    outside every person, and nothing once the desk links it into someone's."""
    engine, http, tools = world
    newborn = "PID|1||NB2026000001^^^FNXRMYY^MR||孙^宝宝||20261101|F"
    message = lab("FNXRMYY", "RM-LIS-NB", "20261102", newborn, ("XCG", "血常规"), ("HGB", "血红蛋白", "170", "g/L", "145-225", "N"))
    assert http.post("/hl7v2", content=message, headers=tools["sender"]).headers["x-hl7-ack-code"] == "AA"
    found = http.get("/fhir/Patient?identifier=NB2026000001", headers=tools["operator"]).json()["entry"]
    baby = found[0]["resource"]["id"]
    assert engine.identity.record(baby)["status"] == "no-id"
    r = http.post("/fhir/Patient/$family-grant", headers=tools["desk"], json=params(
        patient={"reference": f"Patient/{baby}"}, proxyNationalId=SUN, proxyName="孙伟", relationship="PRN",
        idCardChecked=True))
    assert r.status_code == 201, r.text
    # the Consent says the record had no number (famlast18's review: said when granted, not derived later)
    assert {p["name"]: p["resource"] for p in r.json()["parameter"]}["consent"]["patient"]["identifier"]["value"] == "grk-none"
    token, _ = proxy_sign_in(http, engine, SUN, "孙宝宝", app=PHR)
    assert subjects(http.get("/fhir/Observation", headers=bearer(token["access_token"])).json()) == {baby}

    zhao = set(engine.identity.patients_for_number(ZHAO))
    _operate(http, tools, "link", baby, sorted(zhao)[0])
    _refused(http, engine, tools, token, zhao, words="无法确认仍是授权所指的本人")  # fammend18: not "他人", unknown
