"""ownfix34: the number's owner's accepted restatement re-keys the member's records naming the number at once.

FNXRMYY registers 冯三 under <n>; FNZYY files its own Z<n> with <n>^^^FNXRMYY beside (the same person then);
FNXRMYY's HIS restates <n> as 陈四 over HL7 (accepted, W 205, counted for FNZYY: identity34). The same message
re-keys FNZYY's record: one new version, its identifier alone changed (the entry under FNZYY's kept-apart
system, value, type and assigner kept); a resend writes nothing more. Real HL7 through ``POST /hl7v2`` into the
real store on each backend (SQLite, mongomock), read back over ``/fhir``."""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import err_lines, post
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_mfix34_members import APART, FNZYY_MRN, _fnzyy, _tokens, both  # noqa: F401
from tests.test_rvidentity32_probes import MRN, adt, patients

Both = tuple[Engine, TestClient, dict[str, str]]


def test_the_owners_restatement_rekeys_the_members_record_in_one_version_and_a_resend_writes_nothing(
        both: Both) -> None:  # noqa: F811
    _, http, clinician = both
    assert ack_code_of(post(http, adt("OF1A", "OF1^^^FNXRMYY^MR", "冯^三", "19610101", "M"))) == "AA"
    pid3 = "ZOF1^^^FNZYY^MR~OF1^^^FNXRMYY^MR"
    assert ack_code_of(post(http, _fnzyy(adt("OF1B", pid3, "冯^三", "19610101", "M")))) == "AA"
    (before,) = patients(http, f"{FNZYY_MRN}|ZOF1")
    a08 = adt("OF1C", "OF1^^^FNXRMYY^MR", "陈^四", "19920303", "F", "A08")
    ack = post(http, a08)
    assert ack_code_of(ack) == "AA" and {e.split("|")[4] for e in err_lines(ack)} == {"W"}, ack
    (after,) = patients(http, f"{FNZYY_MRN}|ZOF1")
    assert int(after["meta"]["versionId"]) == int(before["meta"]["versionId"]) + 1, (before["meta"], after["meta"])
    (old,) = [i for i in before["identifier"] if i.get("system") == MRN]
    (kept,) = [i for i in after["identifier"] if i.get("system") == APART]
    assert kept == {**old, "system": APART}, (old, kept)
    assert _tokens(after) == (_tokens(before) - {f"{MRN}|OF1"}) | {f"{APART}|OF1"}, after
    strip = {"meta", "identifier", "text"}
    assert {k: v for k, v in after.items() if k not in strip} == {k: v for k, v in before.items() if k not in strip}
    found = http.get("/fhir/Patient", params={"identifier": f"{MRN}|OF1"}, headers=clinician)
    assert found.status_code == 200, found.text
    assert [e["resource"]["gender"] for e in found.json().get("entry", [])] == ["female"], found.text
    # the same restatement again (a resend under a new MSH-10): the member's record is not written again
    assert ack_code_of(post(http, a08.replace("|OF1C|", "|OF1D|"))) == "AA"
    (again,) = patients(http, f"{FNZYY_MRN}|ZOF1")
    assert again["meta"]["versionId"] == after["meta"]["versionId"], again["meta"]
    # FNZYY's next message meets its record re-keyed already: the same W, nothing written to the record
    ack = post(http, _fnzyy(adt("OF1E", pid3, "冯^三", "19610101", "M", "A08")))
    assert ack_code_of(ack) == "AA" and len(err_lines(ack)) == 1, ack
    (last,) = patients(http, f"{FNZYY_MRN}|ZOF1")
    assert _tokens(last) == _tokens(after), last
