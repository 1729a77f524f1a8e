"""Review of fam19: a grant given on a record with no ID number ends once the record is given any
number, twins or not (nineteenth round, fammend19).

孙伟 is given family access (at the desk) to his newborn daughter's record (孙宝宝, NB2026000001,
no ID number: born 2026-11-01, female). Her twin sister's record at the same hospital carries the
twin's number under the same placeholder name, sex and birth date. fam19 let such a grant follow
the record to the person of the number it was later given, while the record still stated the name,
sex and birth date of grant time: an ADT^A08 putting the TWIN's number on 孙宝宝's record (a slip at
the desk) linked it into the twin's person, and 孙伟's token read the twin's results (200; ff2954a
403). Placeholder particulars do not tell twins apart, so the eighteenth round's rule is back: once
the record is given any number, the grant stops holding (``policy.FILED``), and the resident grants
again. Real path: HL7 v2 over ``POST /hl7v2``, the desk's ``$family-grant``, the sign-in pages,
``/auth/token``, introspection, userinfo, ``/fhir``; SQLite and mongomock.
"""

from __future__ import annotations

from tests import test_famfix18_grant_person as famfix18
from tests.test_famfix18_grant_person import _refused
from tests.test_famlast18_newborn_grant import FILED, _a08, _newborn_grant, _says_filed
from tests.test_fammend18_grant_survivor import BABY, _send
from tests.test_resident_family import SUN, proxy_sign_in
from tests.test_resident_record_ui import lab, pid
from tests.test_resident_ui import nid

world = famfix18.world
TWIN = nid("32092320261101004")  # her twin sister: the same birth date, female


def _twin(engine, http, tools) -> set[str]:
    """The twin's record at the same hospital: her own number, the same placeholder name."""
    _send(http, tools, lab("FNXRMYY", "RM-LIS-TW", "20261103",
                           pid(TWIN, "NB2026000002", "FNXRMYY", "孙宝宝", "20261101", "F"),
                           ("XCG", "血常规"), ("HGB", "血红蛋白", "99", "g/L", "145-225", "L")))
    twin = set(engine.identity.patients_for_number(TWIN))
    assert len(twin) == 1
    return twin


def _not_offered(http, engine) -> None:
    _, offered = proxy_sign_in(http, engine, SUN, None)
    assert not any("孙宝宝" in o for o in offered), offered


def test_an_a08_putting_the_twins_number_on_her_record_does_not_open_the_twins_results(world):
    """The reviewer's leak: on 7f6ef8a 孙伟's token read the twin's results (200)."""
    engine, http, tools = world
    baby, token = _newborn_grant(engine, http, tools)
    twin = _twin(engine, http, tools)
    _send(http, tools, _a08(TWIN, "孙^宝宝", "20261101", "F", "RM-A08-NB-TWIN"))  # the wrong twin's number
    assert baby in engine.identity.person_compartment(sorted(twin)[0])  # the index linked it into her person
    _says_filed(http, token)
    _refused(http, engine, tools, token, twin, words=FILED)
    _not_offered(http, engine)


def test_her_own_number_then_the_twins_number_opens_nothing(world):
    """Her own number first (fam19 held the grant and bound it to her person), then an A08
    'corrects' it to the twin's: the binding had followed the number the record carries now."""
    engine, http, tools = world
    baby, token = _newborn_grant(engine, http, tools)
    twin = _twin(engine, http, tools)
    _send(http, tools, _a08(BABY, "孙^宝宝", "20261101", "F", "RM-A08-NB-OWN"))
    assert engine.identity.record(baby)["status"] == "linked"
    _says_filed(http, token)  # her own number ends it too: whose the number is cannot be told
    _send(http, tools, _a08(TWIN, "孙^宝宝", "20261101", "F", "RM-A08-NB-TWIN2"))
    assert baby in engine.identity.person_compartment(sorted(twin)[0])
    _says_filed(http, token)
    _refused(http, engine, tools, token, twin, words=FILED)
    _not_offered(http, engine)


def test_a_grant_records_no_particulars(world):
    """fam19's digest of name, sex and birth date is gone from the Consent: only ``grk-none``."""
    engine, http, tools = world
    baby, _ = _newborn_grant(engine, http, tools)
    (consent,) = engine.repository.search("Consent", [("patient", f"Patient/{baby}")]).resources
    assert consent["patient"]["identifier"] == {"system": "urn:huren:family-grant", "value": "grk-none"}
