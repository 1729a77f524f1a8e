"""A grant given on a record with no ID number, once the record is given one (nineteenth round, fam19).

孙伟 is given family access (at the desk) to his newborn daughter's record (孙宝宝, NB2026000001,
no ID number yet: born 2026-11-01, female). famlast18 ended such a grant once the record was given
*any* number -- her own too, so the father had to go back to the desk. The grant now records a keyed
digest of the name, sex and birth date the record stated when granted; given a number, it binds that
number's person while the index links the record there and the record still states those
particulars. Her own number with her own particulars: it holds (and opens her later records under
that number). Another person's number with his particulars (the famlast18 leak), her number with
another name, a number held in conflict: it stops, saying so. Real path: HL7 v2 over ``POST
/hl7v2``, the desk's ``$family-grant``, the sign-in pages, ``/auth/token``, introspection,
userinfo, ``/fhir``; SQLite and mongomock.
"""

from __future__ import annotations

from tests import test_famfix18_grant_person as famfix18
from tests.test_famfix18_grant_person import _refused
from tests.test_famlast18_newborn_grant import FILED, _a08, _newborn_grant, _says_filed
from tests.test_fammend18_grant_survivor import BABY, _holds, _send
from tests.test_resident_family import bearer, subjects
from tests.test_resident_record_ui import QIAN, lab, pid

world = famfix18.world


def test_her_own_number_with_her_own_particulars_keeps_the_grant(world):
    engine, http, tools = world
    baby, token = _newborn_grant(engine, http, tools)
    _send(http, tools, _a08(BABY, "孙^宝宝", "20261101", "F", "RM-A08-NB-OWN"))
    assert engine.identity.record(baby)["status"] == "linked"
    token = _holds(http, engine, tools, token, {baby})  # read, introspection, userinfo, refresh, offered
    # her later record at another hospital, under her number, joins her person: it opens too
    _send(http, tools, lab("FNZYY", "ZY-LIS-NB", "20261120", pid(BABY, "ZY2026NB0001", "FNZYY", "孙宝宝", "20261101", "F"),
                           ("XCG", "血常规"), ("HGB", "血红蛋白", "150", "g/L", "110-160", "N")))
    later = set(engine.identity.patients_for_number(BABY))
    assert baby in later and len(later) == 2
    r = http.get("/fhir/Observation?_count=100", headers=bearer(token["access_token"]))
    assert r.status_code == 200 and subjects(r.json()) == later, r.text


def test_another_persons_number_and_particulars_still_end_it(world):
    """The famlast18 leak stays shut: the particulars of grant time are not his."""
    engine, http, tools = world
    baby, token = _newborn_grant(engine, http, tools)
    qian = set(engine.identity.patients_for_number(QIAN))
    _send(http, tools, _a08(QIAN, "钱^多多", "19510711", "M", "RM-A08-NB-QIAN"))
    assert baby in engine.identity.person_compartment(sorted(qian)[0])
    _says_filed(http, token)
    _refused(http, engine, tools, token, qian, words=FILED)


def test_her_number_given_with_another_name_ends_it(world):
    """Number and name changed together: whether it is still the child the grant was given for
    cannot be told from the record (a twin's number and name would look the same), so it stops."""
    engine, http, tools = world
    baby, token = _newborn_grant(engine, http, tools)
    _send(http, tools, _a08(BABY, "孙^悦", "20261101", "F", "RM-A08-NB-NAMED"))
    assert engine.identity.record(baby)["status"] == "linked"
    _says_filed(http, token)
    # and once the name is back, the record states the particulars of grant time again: it holds
    _send(http, tools, _a08(BABY, "孙^宝宝", "20261101", "F", "RM-A08-NB-BACK"))
    _holds(http, engine, tools, token, {baby})


def test_a_grant_records_the_particulars_as_a_digest_only(world):
    engine, http, tools = world
    baby, _ = _newborn_grant(engine, http, tools)
    (consent,) = engine.repository.search("Consent", [("patient", f"Patient/{baby}")]).resources
    ident = consent["patient"]["identifier"]
    assert ident["value"] == "grk-none"
    (ext,) = ident["extension"]
    assert ext["url"] == "urn:huren:family-grant-particulars" and ext["valueString"].startswith("grp-")
    assert not any(v in str(consent) for v in ("宝宝", "2026-11-01", "20261101", "female"))
