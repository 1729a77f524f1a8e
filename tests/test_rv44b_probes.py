"""Review rv44b (forty-fourth round) of acsn44's merge: a bare filler number is the sending application's
(``adapters.convert._anothers_number``, reverted by acsn44b after these probes' HIGH 1-3 and MED 4: each probe now a
plain test -- HIGH 3 and MED 4 read as what must never happen, whatever the ultrasound's report is acked; the guards
of the split's corrections and batch assert the refusal acsn43b's MED is again), ``versioning.unchanged`` (an
identical re-send in any key order is unchanged), the DICOM modality no test (``merge_rules._modality``). Real HL7 v2 through ``POST /hl7v2`` (one FHS/BHS
batch) and real FHIR PUTs into a real engine and store on each backend (``module_eng``: SQLite, mongomock; one
probe on SQLite with two engines over one store), read back over ``/fhir``."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from tests.hl7_calls import err_lines, post
from tests.module_store import module_eng, module_eng_http  # noqa: F401 -- the module's engine and client, each backend
from tests.test_acsn43_accession import _omi, _order, _report
from tests.test_acsn43b_assigner import _us
from tests.test_ord40_owner_decision import _aliased, _client, _engine_on
from tests.test_rv43e_probes import _batch

AT_OBR4 = [["OBR^1^4", "205^Duplicate key identifier^HL70357"]]
AT_OBR3 = [["OBR^1^3", "205^Duplicate key identifier^HL70357"]]


def _reports(http: TestClient, subject: str) -> list[dict[str, Any]]:
    found = http.get("/fhir/DiagnosticReport", params={"subject": subject, "_count": 50}).json()
    return [e["resource"] for e in found.get("entry") or ()]


def _texts(http: TestClient, subject: str) -> list[tuple[str, str, str]]:
    """Her reports: (the codes of the order each is based on, its status, its result's text), sorted."""
    out = []
    for r in _reports(http, subject):
        (res,) = r["result"]
        (based,) = r["basedOn"]
        order = http.get(f"/fhir/{based['reference']}").json()
        codes = ",".join(c["code"] for c in order["code"]["coding"])
        out.append((codes, r["status"], http.get(f"/fhir/{res['reference']}").json()["valueString"]))
    return sorted(out)


def _his(omi: str) -> str:
    """The HIS's OMI (bare IPC-1: the accession's assigner defaulted to MSH-3, HIS -- rv43f LOW 1)."""
    return omi.replace("MSH|^~\\&|RIS|", "MSH|^~\\&|HIS|", 1)


def _acks(http: TestClient, message: str) -> tuple[str, list[list[str]]]:
    ack = post(http, message)
    return ack_code_of(ack), [e.split("|")[2:4] for e in err_lines(ack)]


def _final_of_another_code(http: TestClient, mrn: str, placer: str, number: str, uid: str, his: bool) -> str:
    """OMI (head CT, CT009; the HIS's or the RIS's), the RIS's preliminary coded CT009 (the order's), then its final
    of the same exam coded CT010 (done with contrast). Her subject."""
    omi = _omi(f"{mrn}1", mrn, placer, number, "20261205090000", uid)
    assert _acks(http, _his(omi) if his else omi) == ("AA", [])
    assert _acks(http, _report(f"{mrn}2", mrn, number, "20261205093000", "P", "初步：未见异常",
                               "20261205100000")) == ("AA", [])
    final = _report(f"{mrn}3", mrn, number, "20261205093000", "F", "未见异常", "20261205110000")
    _acks(http, final.replace("CT009^头颅CT平扫^L", "CT010^头颅CT增强^L"))
    return str(_order(http, placer)["subject"]["reference"])


def test_a_final_of_another_test_after_its_preliminary_is_no_second_report(http: TestClient) -> None:
    """HIGH (rv44b 1; acsn44's split, reverted by acsn44b): over an accession whose recorded assigner is not the
    reporting application (the HIS's bare OMI: defaulted HIS), the RIS's final of the exam whose preliminary is on
    the order, coded with another test (CT010 done with contrast), had been filed AA with no word as a second report
    on a new order (a repeat, not payable). It is refused at OBR-4 (AE 205), the one report kept."""
    subject = _final_of_another_code(http, "RV44BA", "RV44BAP", "20261205101", "1.2.156.4491.1", his=True)
    assert len(_reports(http, subject)) == 1
    assert _texts(http, subject) == [("CT009,CT", "preliminary", "初步：未见异常")]


def test_the_same_with_the_ris_the_assigner_is_refused_as_before(http: TestClient) -> None:
    """Guard, the scope of HIGH 1: the RIS's own OMI (assigner RIS) -- its final of another test over its
    preliminary is refused at OBR-4 (AE 205), one report."""
    mrn, placer, number = "RV44BB", "RV44BBP", "20261205102"
    omi = _omi(f"{mrn}1", mrn, placer, number, "20261205090000", "1.2.156.4491.2")
    assert _acks(http, omi) == ("AA", [])
    assert _acks(http, _report(f"{mrn}2", mrn, number, "20261205093000", "P", "初步：未见异常",
                               "20261205100000")) == ("AA", [])
    final = _report(f"{mrn}3", mrn, number, "20261205093000", "F", "未见异常", "20261205110000")
    assert _acks(http, final.replace("CT009^头颅CT平扫^L", "CT010^头颅CT增强^L")) == ("AE", AT_OBR4)
    assert _texts(http, _order(http, placer)["subject"]["reference"]) == [("CT009,CT", "preliminary", "初步：未见异常")]


def test_a_final_after_the_placers_change_of_test_is_no_second_report(http: TestClient) -> None:
    """HIGH (rv44b 2; acsn44's split, reverted by acsn44b): the HIS's OMI (assigner defaulted HIS) head CT; the RIS's
    preliminary coded CT009 is the order's; the HIS's XO changes the test to CT010; the RIS's final still coded CT009
    (the exam it did) had been filed AA as a second report on a new order. One report of the exam."""
    mrn, placer, number = "RV44BC", "RV44BCP", "20261205103"
    omi = _his(_omi(f"{mrn}1", mrn, placer, number, "20261205090000", "1.2.156.4491.3"))
    assert _acks(http, omi) == ("AA", [])
    assert _acks(http, _report(f"{mrn}2", mrn, number, "20261205093000", "P", "初步：未见异常",
                               "20261205100000")) == ("AA", [])
    xo = omi.replace("ORC|NW|", "ORC|XO|").replace("CT009^头颅CT平扫^L", "CT010^头颅CT增强^L")
    assert _acks(http, xo.replace(f"|{mrn}1|", f"|{mrn}3|"))[0] == "AA"
    _acks(http, _report(f"{mrn}4", mrn, number, "20261205093000", "F", "未见异常", "20261205110000"))
    assert len(_reports(http, _order(http, placer)["subject"]["reference"])) == 1


def test_the_ultrasounds_reused_number_never_overwrites_its_earlier_report(http: TestClient) -> None:
    """HIGH (rv44b 3; acsn44's split, reverted by acsn44b): the ultrasound system's own report under the RIS's bare
    number (2026), then its counter giving the number again for another exam of hers (2027, another exam time and
    finding): the split had filed the first apart and written the 2027 final over it (AA, no word: the 2026 finding
    lost), skipping settle_reused_filler's reused-number checks. Whatever each is acked, nothing stored before the
    2027 final is lost by it -- and today both are refused at OBR-3 (AE 205, acsn43b's MED), the RIS's 2024 report
    left as it was."""
    mrn, placer, number = "RV44BD", "RV44BDP", "00000104"
    assert _acks(http, _omi(f"{mrn}1", mrn, placer, number, "20240206090000", "1.2.156.4491.4")) == ("AA", [])
    assert _acks(http, _report(f"{mrn}2", mrn, number, "20240206093000", "F", "未见异常",
                               "20240206110000")) == ("AA", [])
    us = _us(f"{mrn}3", mrn, number)  # (exam 2026-12-01 10:00)
    assert _acks(http, us) == ("AE", AT_OBR3)
    subject = _order(http, placer)["subject"]["reference"]
    before = _texts(http, subject)
    later = (us.replace(f"|{mrn}3|", f"|{mrn}4|").replace("20261201100000", "20270301100000")
             .replace("20261201110000", "20270301110000").replace("肝胆脾未见异常", "脂肪肝"))
    assert _acks(http, later) == ("AE", AT_OBR3)
    after = _texts(http, subject)
    assert set(before) <= set(after), (before, after)
    assert after == [("CT009,CT", "final", "未见异常")]


def test_a_declared_alias_keeps_the_applications_report(tmp_path: Path) -> None:
    """MED (rv44b 4; acsn44's split, reverted by acsn44b): the split's key was the sender's canonical name (the first
    form of its alias group); a site declaring the ultrasound system's group with its full HD first moved the key,
    and the ultrasound's re-send made a second report of one exam. A re-send after the declaration makes no report
    the first send did not (today both are refused at OBR-3, acsn43b's MED). SQLite, one store, two engines: the
    site's alias declaration between the report and its re-send."""
    mrn, placer, number = "RV44BE", "RV44BEP", "20261205105"
    store = tmp_path / "store"
    with _engine_on("sqlite", store, _aliased(tmp_path / "site1", {})) as eng, _client(eng, "rv44b") as http:
        assert _acks(http, _omi(f"{mrn}1", mrn, placer, number, "20261205090000", "1.2.156.4491.5")) == ("AA", [])
        assert _acks(http, _report(f"{mrn}2", mrn, number, "20261205093000", "F", "未见异常",
                                   "20261205100000")) == ("AA", [])
        assert _acks(http, _us(f"{mrn}3", mrn, number)) == ("AE", AT_OBR3)
        subject = _order(http, placer)["subject"]["reference"]
        before = _texts(http, subject)
    site = _aliased(tmp_path / "site2", {"FNXRMYY": [["USIS^1.2.156.112604.1.2.7^ISO", "USIS"]]})
    with _engine_on("sqlite", store, site) as eng, _client(eng, "rv44b") as http:
        assert _acks(http, _us(f"{mrn}4", mrn, number)) == ("AE", AT_OBR3)
        assert _texts(http, subject) == before == [("CT009,CT", "final", "未见异常")]


def test_the_ris_corrections_after_the_ultrasounds_own_report_are_the_ct_reports(http: TestClient) -> None:
    """Guard: RIS OMI, RIS final, the ultrasound's own final under the same bare number (refused at OBR-3 since
    acsn44b: acsn43b's MED), then the RIS's corrections (OBR-25 C; the second stamping OBR-7 with the report's time,
    rv41k) each correct the CT report; the ultrasound's correction corrects no report of the CT order (refused)."""
    mrn, placer, number = "RV44BF", "RV44BFP", "20261205106"
    assert _acks(http, _omi(f"{mrn}1", mrn, placer, number, "20261205090000", "1.2.156.4491.6")) == ("AA", [])
    assert _acks(http, _report(f"{mrn}2", mrn, number, "20261205093000", "F", "未见异常",
                               "20261205100000")) == ("AA", [])
    assert _acks(http, _us(f"{mrn}3", mrn, number)) == ("AE", AT_OBR3)
    assert _acks(http, _report(f"{mrn}4", mrn, number, "20261205093000", "C", "少量积液", "20261205120000"))[0] == "AA"
    assert _acks(http, _report(f"{mrn}5", mrn, number, "20261205130000", "C", "中量积液", "20261205130000"))[0] == "AA"
    subject = _order(http, placer)["subject"]["reference"]
    assert _texts(http, subject) == [("CT009,CT", "corrected", "中量积液")]
    assert _acks(http, _us(f"{mrn}6", mrn, number).replace("|F\r", "|C\r").replace("肝胆脾未见异常", "脂肪肝")) \
        == ("AE", AT_OBR3)
    assert _texts(http, subject) == [("CT009,CT", "corrected", "中量积液")]


def test_the_ultrasounds_correction_in_the_batch_of_its_original(http: TestClient) -> None:
    """Guard: one FHS/BHS batch -- the OMI, the RIS's report, the ultrasound's own report and its correction: the
    ultrasound's two are refused (AE 205, acsn43b's MED since acsn44b), the CT report left as the RIS stated it."""
    mrn, placer, number = "RV44BG", "RV44BGP", "20261205107"
    us = _us(f"{mrn}3", mrn, number)
    ack = post(http, _batch(_omi(f"{mrn}1", mrn, placer, number, "20261205090000", "1.2.156.4491.7"),
                            _report(f"{mrn}2", mrn, number, "20261205093000", "F", "未见异常", "20261205100000"),
                            us, us.replace(f"|{mrn}3|", f"|{mrn}4|").replace("|F\r", "|C\r")
                            .replace("肝胆脾未见异常", "脂肪肝")))
    assert ack.count(b"MSA|AA|") == 2 and ack.count(b"MSA|AE|") == 2 and ack.count(b"|205^") == 2, ack
    assert _texts(http, _order(http, placer)["subject"]["reference"]) == [("CT009,CT", "final", "未见异常")]


def test_the_placers_changes_of_test_there_and_back_keep_one_test(http: TestClient) -> None:
    """Guard (merge_rules._modality): the RIS's XOs head CT -> chest CT -> head CT, then head MR, then head CT under
    MR: after each the order names one test and one modality, as the last message stated."""
    mrn, placer, number = "RV44BH", "RV44BHP", "20261205108"
    omi = _omi(f"{mrn}1", mrn, placer, number, "20261205090000", "1.2.156.4491.8")
    assert _acks(http, omi) == ("AA", [])
    xo = omi.replace("ORC|NW|", "ORC|XO|")
    steps = [("CT020^胸部CT平扫^L", "CT", ["CT020", "CT"]), ("CT009^头颅CT平扫^L", "CT", ["CT009", "CT"]),
             ("MR009^头颅MR平扫^L", "MR", ["MR009", "MR"]), ("CT009^头颅CT平扫^L", "MR", ["CT009", "MR"])]
    for n, (code, modality, want) in enumerate(steps, 2):
        sent = xo.replace(f"|{mrn}1|", f"|{mrn}{n}|").replace("CT009^头颅CT平扫^L", code) \
            .replace("|SPS|CT\r", f"|SPS|{modality}\r")
        assert _acks(http, sent) == ("AA", [])
        assert [c["code"] for c in _order(http, placer)["code"]["coding"]] == want


def _put(http: TestClient, text: str) -> tuple[str, str]:
    r = http.put("/fhir/Location/rv44b-loc", content=text.encode(), headers={"Content-Type": "application/fhir+json"})
    assert r.status_code in (200, 201), r.text
    return r.json()["meta"]["versionId"], http.get("/fhir/Location/rv44b-loc").text


def test_same_document_is_exact(http: TestClient) -> None:
    """Guard (the write's deep "unchanged", versioning.unchanged): a PUT of the stored document in another key order is
    unchanged; ``1.5`` -> ``1.50``, an array reordered, ``true`` -> ``1`` in an extension are each a new version,
    the decimal stored as sent."""
    a = ('{"resourceType":"Location","id":"rv44b-loc","status":"active","name":"K",'
         '"position":{"longitude":1.5,"latitude":30.25},"alias":["a","b"]}')
    b = ('{"id":"rv44b-loc","alias":["a","b"],"position":{"latitude":30.25,"longitude":1.5},'
         '"name":"K","status":"active","resourceType":"Location"}')
    assert _put(http, a)[0] == "1"
    assert _put(http, b)[0] == "1"
    version, text = _put(http, b.replace("1.5", "1.50"))
    assert version == "2" and '"longitude":1.50' in text
    assert _put(http, a.replace("1.5", "1.50"))[0] == "2"
    assert _put(http, a.replace("1.5", "1.50").replace('"a","b"', '"b","a"'))[0] == "3"
    ext = '"extension":[{"url":"http://x.example/e","valueBoolean":true}],"status"'
    assert _put(http, a.replace('"status"', ext))[0] == "4"
    assert _put(http, a.replace('"status"', ext.replace('"valueBoolean":true', '"valueInteger":1')))[0] == "5"
