"""a47fix40: rv40a's A47/deletion findings -- what a merge (A40) or a renumbering (A47) carries onto the record it
leaves, whose ``""^^^^NNCHN`` takes the ID number off, and the filed-as-own mark under a FHIR client's write.

Real HL7 over ``POST /hl7v2`` into a real store on each backend (``module_eng``: SQLite, mongomock), read back over
``/fhir``; the site declaring a second registration application is its own engine (the regapp33 site folder)."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from adapters.convert.persons import FILED_AS_OWN_EXT
from adapters.hl7v2.ack import ack_code_of
from adapters.hl7v2.escapes import unescape
from engine.api.app import create_app
from engine.api.ui_quarantine import WORDS, err_said
from engine.engine import Engine
from engine.settings import Settings
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import NNCHN_SYSTEM, engine_and_client, read_patient, registered, tokens
from tests.module_store import undeclared_eng as module_eng  # noqa: F401 -- a site declaring none (decl42), each backend
from tests.test_regapp33_registration_apps import _site
from tests.test_rvidentity32_probes import MRN, _nid, adt, merge, oru, patients, subjects

both = engine_and_client("a47fix40")
LIS = f"{MRN}:LIS"


def _a47(control: str, new: str, old: str, name: str, birth: str, sex: str) -> str:
    """The HIS's A47: PID-3 ``new`` (further repetitions as sent), MRG-1 the old MRN."""
    return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201121500||ADT^A47^ADT_A30|{control}|P|2.5.1\r"
            f"EVN|A47|20261201121500\rPID|1||{new}||{name}||{birth}|{sex}\rMRG|{old}^^^FNXRMYY^MR\r")


def _zh(engine: Engine, ack: bytes, field: str) -> str:
    """The Chinese the refused-messages page gives the ACK's ERR located at ``field`` (``PID^1^8``)."""
    (line,) = [x for x in err_lines(ack) if field in x]
    parts = line.split("|")
    return err_said(WORDS.current(engine.settings.site), parts[3].split("^")[0], unescape(parts[8]))[0]


def test_an_a40_of_two_people_does_not_give_the_survivor_her_id_number(both: tuple[Engine, TestClient]) -> None:
    """id40's A40 carry had rv40a's HIGH 1 hole: 王丽 F 1985-03-03 (her ID number) under AW merged by an A40 into
    张敏 F 1990-07-07's record AQ stating 张敏's particulars -- filed with _joined's two-people W, and 张敏's record
    then answered 王丽's ID number (marked carried-from, but the FHIR search reads the identifier). Her number stays
    on her record (the merge's rule had dropped it from the record merged away: in no record), and the A37 undoing
    the wrong merge leaves her record in use with it."""
    engine, http = both
    hers = _nid("32092319850303012")
    registered(http, "AW", "AW1", "王^丽", "19850303", "F", f"~{hers}^^^^NNCHN")
    q = registered(http, "AQ", "AQ1", "张^敏", "19900707", "F")
    ack = post(http, merge("AQ2", "AQ^^^FNXRMYY^MR", "张^敏", "19900707", "F", "AW^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AA" and any("MRG^1^1" in x for x in err_lines(ack)), ack
    assert f"{NNCHN_SYSTEM}|{hers}" not in tokens(read_patient(http, q["id"])), ack
    (wang,) = patients(http, f"{MRN}|AW")
    assert [p["id"] for p in patients(http, hers)] == [wang["id"]]  # (kept on her record, not lost)
    ack = post(http, "MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201131500||ADT^A37^ADT_A37|AQ3|P|2.5.1\r"
                     "EVN|A37|20261201131500\rPID|1||AW^^^FNXRMYY^MR||王^丽||19850303|F\r"
                     "PID|2||AQ^^^FNXRMYY^MR||张^敏||19900707|F\r")
    assert ack_code_of(ack) == "AA", ack
    assert [(p["id"], p["active"]) for p in patients(http, hers)] == [(wang["id"], True)]
    assert not engine.identity.same_person(wang["id"], q["id"])


def test_an_a47_of_two_people_leaves_the_lis_number_on_her_record(both: tuple[Engine, TestClient]) -> None:
    """The A47 renumbering 王芳's record onto 张兰's (two people: filed with the W) carries nothing -- and the LIS's
    number remembered on 王芳's record stays there (the renumbering's move of it taken back): her next result under
    it is filed under her record, never under 张兰's."""
    _, http = both
    hers = _nid("32092319850404022")
    old = registered(http, "AX", "AX1", "王^芳", "19850404", "F", f"~{hers}^^^^NNCHN")
    assert ack_code_of(post(http, oru("AX2", "AX^^^LIS^PI", "王^芳", "19850404", "F", "AX2"))) == "AA"
    q = registered(http, "AY", "AY1", "张^兰", "19900808", "F")
    ack = post(http, _a47("AX3", "AY^^^FNXRMYY^MR", "AX", "张^兰", "19900808", "F"))
    assert ack_code_of(ack) == "AA", ack
    assert not {f"{NNCHN_SYSTEM}|{hers}", f"{LIS}|AX"} & tokens(read_patient(http, q["id"]))
    assert f"{LIS}|AX" in tokens(read_patient(http, old["id"]))
    ack = post(http, oru("AX4", "AX^^^LIS^PI", "王^芳", "19850404", "F", "AX4"))
    assert ack_code_of(ack) == "AA" and subjects(http, "AX4") == [f"Patient/{old['id']}"], ack


def test_an_a47_contradicting_the_number_is_refused_as_the_thin_a08_is(both: tuple[Engine, TestClient]) -> None:
    """岳辛 F 1963-08-14 with her ID number; the A47 to AKN states sex M: AE at PID-8 with the kept number's words
    (English and Chinese), nothing filed; the same A47 with the corrected sex is filed and AKN holds the number."""
    engine, http = both
    nid = _nid("32092319630814012")
    registered(http, "AK", "AK1", "岳^辛", "19630814", "F", f"~{nid}^^^^NNCHN")
    ack = post(http, _a47("AK2", "AKN^^^FNXRMYY^MR", "AK", "岳^辛", "19630814", "M"))
    assert ack_code_of(ack) == "AE" and b"PID^1^8" in ack and b"the merge carries it from MRG-1" in ack, ack
    assert "与病历所持居民身份证号不符" in _zh(engine, ack, "PID^1^8")
    assert patients(http, f"{MRN}|AKN") == [] and [p["gender"] for p in patients(http, nid)] == ["female"]
    ack = post(http, _a47("AK3", "AKN^^^FNXRMYY^MR", "AK", "岳^辛", "19630814", "F"))
    assert ack_code_of(ack) == "AA", ack
    (new,) = patients(http, f"{MRN}|AKN")
    assert f"{NNCHN_SYSTEM}|{nid}" in tokens(new)


def test_an_a40_contradicting_the_number_it_carries_is_refused(both: tuple[Engine, TestClient]) -> None:
    """The A40's survivor (same name, sex M) would carry the merged record's female ID number: AE at PID-8 as the
    A47; the registrar's ``""^^^^NNCHN`` in the A40's PID-3 takes the number off instead -- filed, nothing carried."""
    _, http = both
    nid = _nid("32092319630815022")
    registered(http, "AM", "AM1", "岳^庚", "19630815", "F", f"~{nid}^^^^NNCHN")
    survivor = registered(http, "AN", "AN1", "岳^庚", "19630815", "M")
    ack = post(http, merge("AN2", "AN^^^FNXRMYY^MR", "岳^庚", "19630815", "M", "AM^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AE" and b"PID^1^8" in ack, ack
    ack = post(http, merge("AN3", 'AN^^^FNXRMYY^MR~""^^^^NNCHN', "岳^庚", "19630815", "M", "AM^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AA", ack
    assert tokens(read_patient(http, survivor["id"])) == {f"{MRN}|AN"}


def test_the_lis_null_is_answered_and_the_his_null_taken(both: tuple[Engine, TestClient]) -> None:
    """The LIS's A08 with ``""^^^^NNCHN`` in repetition 2: AA, the number kept, ERR W 205 at PID-3 repetition 2
    saying why (English and Chinese); the HIS's, the record's registrar: taken, no such W."""
    engine, http = both
    nid = _nid("32092319630803002")
    rec = registered(http, "AD", "AD1", "岳^乙", "19630803", "F", f"~{nid}^^^^NNCHN")
    ack = post(http, adt("AD2", 'AD^^^FNXRMYY^MR~""^^^^NNCHN', "岳^乙", "19630803", "F", event="A08", app="LIS"))
    assert ack_code_of(ack) == "AA" and f"{NNCHN_SYSTEM}|{nid}" in tokens(read_patient(http, rec["id"])), ack
    (line,) = [x for x in err_lines(ack) if "PID^1^3^2" in x]
    # (reg41: the rule is now the number's registrar's, and the LIS's null is held for the operator)
    assert "|205^" in line and "|W|" in line and "the record's ID number (MSH-3 HIS)" in line, line
    assert "身份证号保留" in _zh(engine, ack, "PID^1^3^2")
    ack = post(http, adt("AD3", 'AD^^^FNXRMYY^MR~""^^^^NNCHN', "岳^乙", "19630803", "F", event="A08"))
    assert ack_code_of(ack) == "AA" and not any("resident ID number" in x for x in err_lines(ack)), ack
    assert tokens(read_patient(http, rec["id"])) == {f"{MRN}|AD"}


def test_only_the_registrar_replaces_the_id_number(both: tuple[Engine, TestClient]) -> None:
    """The LIS's A08 stating another valid ID number (same name, day and sex: the checks pass) over the HIS's
    record: AA, the record keeps its number, ERR W 205 at PID-3 says why (English and Chinese); the HIS's own A08
    stating it replaces the number."""
    engine, http = both
    nid, other = _nid("32092319630806002"), _nid("32092319630806022")
    rec = registered(http, "AR", "AR1", "岳^己", "19630806", "F", f"~{nid}^^^^NNCHN")
    ack = post(http, adt("AR2", f"AR^^^FNXRMYY^MR~{other}^^^^NNCHN", "岳^己", "19630806", "F", event="A08", app="LIS"))
    assert ack_code_of(ack) == "AA" and [p["id"] for p in patients(http, nid)] == [rec["id"]], ack
    assert patients(http, other) == []
    (line,) = [x for x in err_lines(ack) if x.startswith("ERR||PID^1^3|")]  # (beside the area code's W)
    assert "|205^" in line and "|W|" in line and "other than the one the record holds" in line, err_lines(ack)
    assert "身份证号保留" in _zh(engine, ack, "ERR||PID^1^3|")
    ack = post(http, adt("AR3", f"AR^^^FNXRMYY^MR~{other}^^^^NNCHN", "岳^己", "19630806", "F", event="A08"))
    assert ack_code_of(ack) == "AA" and not any("record holds" in x for x in err_lines(ack)), ack
    assert [p["id"] for p in patients(http, other)] == [rec["id"]] and patients(http, nid) == []


def test_a_client_keeping_the_number_keeps_its_mark_and_may_still_remove_it(both: tuple[Engine, TestClient]) -> None:
    """A client's PUT leaving out the filed-as-own extension: the mark stays, and the HIS's next thin A08 keeps the
    LIS's number; a PUT leaving the identifier out takes it off (the identifiers stated whole, the client's right)."""
    _, http = both
    rec = registered(http, "AH", "AH1", "岳^丁", "19630812", "F")
    assert ack_code_of(post(http, oru("AH2", "AH^^^LIS^PI", "岳^丁", "19630812", "F", "AH2"))) == "AA"
    now = read_patient(http, rec["id"])
    body = {k: v for k, v in now.items() if k not in ("meta", "text")}
    body["identifier"] = [{k: v for k, v in i.items() if k != "extension"} for i in now["identifier"]]
    assert http.put(f"/fhir/Patient/{rec['id']}", json=body).status_code == 200
    assert ack_code_of(post(http, adt("AH3", "AH^^^FNXRMYY^MR", "岳^丁", "19630812", "F", event="A08"))) == "AA"
    after = read_patient(http, rec["id"])
    (lis,) = [i for i in after["identifier"] if i.get("system") == LIS]
    assert lis.get("extension") == [{"url": FILED_AS_OWN_EXT, "valueBoolean": True}], lis
    body = {k: v for k, v in after.items() if k not in ("meta", "text")}
    body["identifier"] = [i for i in after["identifier"] if i.get("system") != LIS]
    assert http.put(f"/fhir/Patient/{rec['id']}", json=body).status_code == 200
    assert tokens(read_patient(http, rec["id"])) == {f"{MRN}|AH"}


@pytest.fixture(scope="module")
def declared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """An engine on a site declaring FNXRMYY's registration applications HIS and TJXT (the 体检 system)."""
    root = _site(tmp_path_factory.mktemp("a47fix40-site"), ["HIS", "TJXT"])
    with Engine(Settings(data_dir=root / "var", http_port=0, mllp_port=0, site=root)) as eng, \
            TestClient(create_app(eng)) as client:
        client.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("t", "system/*.cruds")
        yield client


def test_a_declared_registration_application_takes_the_number_off(declared: TestClient) -> None:
    """The HIS registered the record; the 体检 system TJXT, declared beside it, sends ``""^^^^NNCHN``: taken; the
    LIS's on another record of the HIS: kept, with the W."""
    nid, other = _nid("32092319630804002"), _nid("32092319630805002")
    for control, mrn, number, day in (("AT1", "AT", nid, "19630804"), ("AU1", "AU", other, "19630805")):
        assert ack_code_of(post(declared, adt(control, f"{mrn}^^^FNXRMYY^MR~{number}^^^^NNCHN", "岳^戊", day,
                                              "F"))) == "AA"
    ack = post(declared, adt("AT2", 'AT^^^FNXRMYY^MR~""^^^^NNCHN', "岳^戊", "19630804", "F", event="A08", app="TJXT"))
    assert ack_code_of(ack) == "AA" and patients(declared, nid) == [], ack
    ack = post(declared, adt("AU2", 'AU^^^FNXRMYY^MR~""^^^^NNCHN', "岳^戊", "19630805", "F", event="A08", app="LIS"))
    assert ack_code_of(ack) == "AA" and len(patients(declared, other)) == 1, ack
