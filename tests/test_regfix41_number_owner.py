"""regfix41: who may replace a record's resident ID number (``persons._may_renumber``) decides the same one by one and
in one batch, and a result naming a record registers no one.

(1) The number's owner (``_number_owners``) is the first received registering message that stated it: the HIS's A04
registering a LIS placeholder with the very number the result stated leaves the record as stored (stfix40's
``unchanged``) and had not counted one by one -- the LIS's later walk-in A04 stating another woman's number then
replaced it (regfix40's "a registration may"), where the same messages in one batch were held for the operator. A
later echo of the number (the LIS's A04 restating the HIS's) makes no second owner.
(2) A record a FHIR client made with its ID number stays no registration's (``_UNSPOKEN``) when a LIS result names
it: the RIS's A08 stating another number is answered W 205 and the number kept, one by one and in one batch (rv41a
MED 3: the result's naming had opened the number to any application's A08).

Real HL7 through the ingestor (one message a call, or all in one batch: one transaction) into the real store on both
backends; the held list read over ``GET /admin/held`` and the client's record written over ``PUT /fhir`` with real
tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.identity.nationalid import is_national_id
from tests.test_hooks19_batch_hazards import _engine, _number, _pid, _result
from tests.test_order35_as_later import _operator
from tests.test_recognition_batch import _warnings
from tests.test_rv41a_probes import _adt

R8 = (_number("32092319860808001"), "郑^八", "19860808", "M")
R8b = (_number("32092319860808011"), "郑^八", "19860808", "M")
R9 = (_number("32092319870909002"), "王^九", "19870909", "F")
R9b = (_number("32092319870909022"), "王^九", "19870909", "F")
R10 = (_number("32092319881010001"), "冯^十", "19881010", "M")
R10b = (_number("32092319881010011"), "冯^十", "19881010", "M")
R11 = (_number("32092319891111002"), "陈^十一", "19891111", "F")
R11b = (_number("32092319891111022"), "陈^十一", "19891111", "F")


def _raws(texts: list[str]) -> list[tuple[bytes, str, str]]:
    return [(t.replace("\n", "\r").encode("utf-8"), "mllp", "t") for t in texts]


def _owner_feed() -> list[tuple[bytes, str, str]]:
    def pid(who: tuple[str, str, str, str], mrn: str) -> str:
        return _pid("HOSPB", who, mrn)

    return _raws([
        # R8: the LIS's result makes a placeholder with her number; the HIS's A04 registers it stating the same (its
        # write leaves the record as stored); the LIS's walk-in A04 states the other 郑八's number: held, HIS's
        _result("HOSPB", pid(R8, "R8"), "R8O", 1), _adt("HIS", "A04", pid(R8, "R8"), "R8-A04"),
        _adt("LIS", "A04", pid(R8b, "R8"), "R8-LIS"),
        # R9: the HIS registers her; the LIS's A04 echoes the same number (unchanged); the LIS's A08 with another:
        # held, naming the HIS alone -- the echo received later is no owner
        _adt("HIS", "A04", pid(R9, "R9"), "R9-A04"), _adt("LIS", "A04", pid(R9, "R9"), "R9-LIS"),
        _adt("LIS", "A08", pid(R9b, "R9"), "R9-A08"),
        # R10: placeholder, the HIS's A04 of the same number, the HIS's A08 correcting it: the owner's, taken
        _result("HOSPB", pid(R10, "R10"), "R10O", 1), _adt("HIS", "A04", pid(R10, "R10"), "R10-A04"),
        _adt("HIS", "A08", pid(R10b, "R10"), "R10-A08"),
    ])


def _numbers(engine: Engine, mrn: str) -> list[str]:
    [found] = engine.repository.search("Patient", [("identifier", mrn)]).resources
    return sorted(str(i.get("value")) for i in found.get("identifier") or () if is_national_id(i))


def _held(engine: Engine) -> dict[str, list[dict]]:
    """``GET /admin/held``: control id -> its held claims."""
    with TestClient(create_app(engine)) as http:
        r = http.get("/admin/held", headers=_operator(engine, "system/MessageHeader.cr", "regfix41-ops"))
    assert r.status_code == 200, r.text
    return {m["control_id"]: m["held_claims"] for m in r.json()["items"]}


def _w205(lines: list[str]) -> list[str]:
    return [x for x in lines if x.startswith("ERR||PID^1^3|") and "|205^" in x]


@pytest.mark.parametrize("backend", ["sqlite", "mongomock"])
def test_the_registration_restating_a_placeholders_number_owns_it_one_by_one_as_in_a_batch(
        tmp_path: Path, backend: str) -> None:
    raws = _owner_feed()
    answers, held, numbers = {}, {}, {}
    for name in ("single", "batch"):
        with _engine(tmp_path, backend, name) as eng:
            outcomes = ([o for raw in raws for o in eng.ingestor.process([raw])] if name == "single"
                        else eng.ingestor.process(raws))
            answers[name] = [_warnings(o.ack) for o in outcomes]
            held[name] = _held(eng)
            numbers[name] = {mrn: _numbers(eng, mrn) for mrn in ("R8", "R9", "R10")}
    assert answers["batch"] == answers["single"] and held["batch"] == held["single"], (answers, held)
    assert numbers["batch"] == numbers["single"], numbers
    single = dict(zip(["R8O", "R8-A04", "R8-LIS", "R9-A04", "R9-LIS", "R9-A08", "R10O", "R10-A04", "R10-A08"],
                      answers["single"], strict=True))
    # R8: the LIS's walk-in is held for the operator, the record keeps the number the HIS registered
    (line,) = _w205(single["R8-LIS"])
    assert "|W|" in line and "(MSH-3 HIS) replaces it" in line and "(MSH-3 LIS) is another" in line, line
    assert single["R8-LIS"][0] == "MSA|AA|R8-LIS" and numbers["single"]["R8"] == [R8[0]], (single, numbers)
    assert [c["kind"] for c in held["single"]["R8-LIS"]] == ["id-number"], held
    # R9: the owner is the HIS alone -- the LIS's echo received after it made it no second owner
    (line,) = _w205(single["R9-A08"])
    assert "(MSH-3 HIS) replaces it" in line and "(MSH-3 LIS) is another" in line, line
    assert numbers["single"]["R9"] == [R9[0]] and "R9-A08" in held["single"], (numbers, held)
    assert not _w205(single["R9-LIS"]) and "R9-LIS" not in held["single"]
    # R10: the owner's own correction is taken
    assert not _w205(single["R10-A08"]) and numbers["single"]["R10"] == [R10b[0]], (single, numbers)
    assert set(held["single"]) == {"R8-LIS", "R9-A08"}, held


def _fhir_made(eng: Engine, patient: dict) -> None:
    """``patient`` PUT over ``/fhir`` by a FHIR client (a resident archive's): the record's first version is the
    client's."""
    with TestClient(create_app(eng)) as client:
        token = eng.auth.issue_system_token("regfix41-archive", "system/*.cruds")
        r = client.put(f"/fhir/Patient/{patient['id']}", json=patient, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code in (200, 201), r.text


@pytest.mark.parametrize("backend", ["sqlite", "mongomock"])
def test_a_result_naming_a_clients_record_registers_no_one(tmp_path: Path, backend: str) -> None:
    """A record a FHIR client made with her number (R11); the LIS's result names it (create-only: it writes nothing of
    it), then the RIS's A08 states another number of the same demographics: W 205 by the registrants' rule (the
    RIS's A08 is no registration, and no registration spoke for the record), not held, the number kept -- alone,
    after the result one by one, and all in one batch."""
    result = _result("HOSPB", _pid("HOSPB", R11, "R11"), "R11O", 1)
    a08 = _adt("RIS", "A08", _pid("HOSPB", R11b, "R11"), "R11-A08")
    with _engine(tmp_path, backend, "scratch") as eng:  # the record's id and identifiers, as a message keys them
        eng.ingestor.process(_raws([result]))
        [made] = eng.repository.search("Patient", [("identifier", "R11")]).resources
    made = {k: v for k, v in made.items() if k not in ("meta", "text")}
    answers, numbers = {}, {}
    for name, batches in (("alone", [[a08]]), ("single", [[result], [a08]]), ("batch", [[result, a08]])):
        with _engine(tmp_path, backend, name) as eng:
            _fhir_made(eng, made)
            outcomes = [o for batch in batches for o in eng.ingestor.process(_raws(batch))]
            answers[name] = _warnings(outcomes[-1].ack)
            numbers[name] = _numbers(eng, "R11")
            assert not _held(eng), name
    assert answers["single"] == answers["batch"] == answers["alone"], answers
    assert numbers["single"] == numbers["batch"] == numbers["alone"] == [R11[0]], numbers
    (line,) = _w205(answers["single"])
    assert "only a registration (ADT\\S\\A01/A04/A05/A28)" in line and "is another" not in line, line


R12 = (_number("32092319900112001"), "褚^十二", "19900112", "M")
R12b = (_number("32092319900112011"), "褚^十二", "19900112", "M")
R13 = (_number("32092319910213002"), "卫^十三", "19910213", "F")
R13b = (_number("32092319910213022"), "卫^十三", "19910213", "F")
R14 = (_number("32092319920314001"), "蒋^十四", "19920314", "M")
R14b = (_number("32092319920314011"), "蒋^十四", "19920314", "M")


@pytest.mark.parametrize("backend", ["sqlite", "mongomock"])
def test_a_registration_stating_no_number_decides_alike_one_by_one_and_in_a_batch(tmp_path: Path, backend: str) -> None:
    """The LIS's result makes a placeholder with his number; the HIS's A04 registers the record stating no ID number
    (PID-3 its MRN alone: the number kept, ``merge.yaml`` ``beside``) -- R12 writing nothing new (``unchanged``),
    R14 adding his address (a version of its own); the RIS's A08 states another number: held, the HIS's (it
    registered the record holding the number). R13: the HIS registers her number, takes it off (``""^^^^NNCHN``),
    the LIS's walk-in A04 states it again, then the HIS's A08 corrects it: taken (the null's version holds no number
    and is passed over: the HIS registered that number first). One by one and in one batch alike -- the batch had
    passed over every earlier message stating no number, so R14's A08 was held one by one and refused by the
    registrants' rule in a batch (reg41's reading), and R12's once the unchanged A04 counted (regfix41)."""
    thin = f"PID|1||R12^^^HOSPB^MR||{R12[1]}||{R12[2]}|{R12[3]}\n"
    moved = f"PID|1||R14^^^HOSPB^MR||{R14[1]}||{R14[2]}|{R14[3]}|||城关镇幸福路1号^^如皋^江苏^226500\n"
    null = f'PID|1||""^^^^NNCHN~R13^^^HOSPB^MR||{R13[1]}||{R13[2]}|{R13[3]}\n'
    raws = _raws([
        _result("HOSPB", _pid("HOSPB", R12, "R12"), "R12O", 1), _adt("HIS", "A04", thin, "R12-A04"),
        _adt("RIS", "A08", _pid("HOSPB", R12b, "R12"), "R12-A08"),
        _result("HOSPB", _pid("HOSPB", R14, "R14"), "R14O", 1), _adt("HIS", "A04", moved, "R14-A04"),
        _adt("RIS", "A08", _pid("HOSPB", R14b, "R14"), "R14-A08"),
        _adt("HIS", "A04", _pid("HOSPB", R13, "R13"), "R13-A04"), _adt("HIS", "A08", null, "R13-NULL"),
        _adt("LIS", "A04", _pid("HOSPB", R13, "R13"), "R13-LIS"),
        _adt("HIS", "A08", _pid("HOSPB", R13b, "R13"), "R13-A08"),
    ])
    answers, held, numbers = {}, {}, {}
    for name in ("single", "batch"):
        with _engine(tmp_path, backend, name) as eng:
            outcomes = ([o for raw in raws for o in eng.ingestor.process([raw])] if name == "single"
                        else eng.ingestor.process(raws))
            answers[name] = {(said := _warnings(o.ack))[0].split("|")[2]: said for o in outcomes}  # by MSA-2
            held[name] = _held(eng)
            numbers[name] = {mrn: _numbers(eng, mrn) for mrn in ("R12", "R13", "R14")}
    assert answers["batch"] == answers["single"] and held["batch"] == held["single"], (answers, held)
    assert numbers["batch"] == numbers["single"], numbers
    single = answers["single"]
    for mrn in ("R12", "R14"):
        (line,) = _w205(single[f"{mrn}-A08"])
        assert "(MSH-3 HIS) replaces it" in line and "(MSH-3 RIS) is another" in line, line
    assert set(held["single"]) == {"R12-A08", "R14-A08"}, held
    assert numbers["single"] == {"R12": [R12[0]], "R13": [R13b[0]], "R14": [R14[0]]}, numbers
    assert not _w205(single["R13-A08"]) and not _w205(single["R13-LIS"]), single
