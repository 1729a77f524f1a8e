"""rv41g: review probes of regfix41 (who owns a record's ID number) and idfix41 (the registrar's word as its
messages sent it). Real HL7 over ``POST /hl7v2`` into the real store on each backend, a FHIR client's edits over
``/fhir``."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import engine_and_client, read_patient, registered
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_idlow41_identity import _set
from tests.test_rvidentity32_probes import _nid, adt, oru, subjects

both = engine_and_client("rv41g")
MOTHER = _nid("32092319890606122")  # born 1989-06-06, female
MAN = _nid("32092319700101011")  # born 1970-01-01, male


def _at(text: str, when: str) -> str:
    """``text`` with its MSH-7 and EVN-2 at ``when`` (YYYYMMDDHHMMSS)."""
    return text.replace("20261201091500", when)


def test_probe_out_of_order_registrar_a08(both: tuple[Engine, TestClient]) -> None:
    """HIS registers the boy F under the mother's number (no PID-7); its A08 at 11:15 takes the sex back (PID-8 ""),
    its A08 at 10:15 (stating F again) arrives after it. Ward sets male. The sister's result under his MRN."""
    _, http = both
    boy = registered(http, "G1B1", "G1A", "柳^寅之子", "", "F", f"~{MOTHER}^^^^NNCHN")
    pid3 = f"G1B1^^^FNXRMYY^MR~{MOTHER}^^^^NNCHN"
    late = post(http, _at(adt("G1B", pid3, "柳^寅之子", "", '""', event="A08"), "20261201111500"))
    stale = post(http, _at(adt("G1C", pid3, "柳^寅之子", "", "F", event="A08"), "20261201101500"))
    print("late", late, "stale", stale)
    print("stored", read_patient(http, boy["id"]).get("gender"))
    _set(http, boy["id"], gender="male")
    ack = post(http, oru("G1D", pid3, "柳^寅之女", "", "F", "G1OBS1"))
    print(ack)
    assert subjects(http, "G1OBS1") == [], "the sister's result filed under the boy"


import pytest  # noqa: E402


@pytest.mark.parametrize("count", [3, 33])
def test_probe_man_after_33_registrar_messages(both: tuple[Engine, TestClient], count: int) -> None:
    """idlow41/idfix41's man: registered with his number, M, no PID-7; a client sets female; then 33 HIS A08s
    (each stating the same PID, no PID-7). His own result (M, his number)."""
    import time
    _, http = both
    him = registered(http, f"G2M{count}", f"G2A{count}", "许^卯", "", "M", f"~{MAN}^^^^NNCHN")
    _set(http, him["id"], gender="female")
    pid3 = f"G2M{count}^^^FNXRMYY^MR~{MAN}^^^^NNCHN"
    for n in range(count):
        assert ack_code_of(post(http, adt(f"G2B{count}{n}", pid3, "许^卯", "", "M", event="A08"))) == "AA"
        _set(http, him["id"], gender="female")
    t0 = time.perf_counter()
    ack = post(http, oru(f"G2C{count}", pid3, "许^卯卯", "", "M", f"G2OBS{count}"))
    print("seconds", time.perf_counter() - t0, ack)
    assert subjects(http, f"G2OBS{count}") == [f"Patient/{him['id']}"], err_lines(ack)


from pathlib import Path  # noqa: E402

from tests.test_hooks19_batch_hazards import _engine, _number, _pid, _result  # noqa: E402
from tests.test_regfix41_number_owner import _held, _numbers, _raws, _w205  # noqa: E402
from tests.test_recognition_batch import _warnings  # noqa: E402
from tests.test_rv41a_probes import _adt  # noqa: E402

G3 = (_number("32092319930415001"), "韩^三", "19930415", "M")
G3b = (_number("32092319930415011"), "韩^三", "19930415", "M")
G4 = (_number("32092319940516002"), "杨^四", "19940516", "F")
G4b = (_number("32092319940516022"), "杨^四", "19940516", "F")


@pytest.mark.parametrize("backend", ["sqlite"])
def test_probe_two_numbers_and_merge(tmp_path: Path, backend: str) -> None:
    two = f"PID|1||{G3[0]}^^^公安部^NNCHN~{G3b[0]}^^^公安部^NNCHN~G3^^^HOSPB^MR||{G3[1]}||{G3[2]}|{G3[3]}\n"
    raws = _raws([
        _adt("HIS", "A04", two, "G3-A04"),
        _adt("LIS", "A04", _pid("HOSPB", G3, "G3"), "G3-LIS"),
        _adt("LIS", "A08", _pid("HOSPB", G3b, "G3"), "G3-LIS8"),
        _adt("HIS", "A04", f"PID|1||G4^^^HOSPB^MR||{G4[1]}||{G4[2]}|{G4[3]}\n", "G4-A04"),
        _adt("HIS", "A04", _pid("HOSPB", G4, "G4X"), "G4X-A04"),
        _adt("HIS", "A40", f"PID|1||G4^^^HOSPB^MR||{G4[1]}||{G4[2]}|{G4[3]}\n", "G4-A40").replace(
            "ADT^A40^ADT_A01", "ADT^A40^ADT_A39").replace("PV1|1|O\n", "MRG|G4X^^^HOSPB^MR\n"),
        _adt("LIS", "A04", _pid("HOSPB", G4b, "G4"), "G4-LIS"),
    ])
    answers, held, numbers = {}, {}, {}
    for name in ("single", "batch"):
        with _engine(tmp_path, backend, name) as eng:
            outcomes = ([o for raw in raws for o in eng.ingestor.process([raw])] if name == "single"
                        else eng.ingestor.process(raws))
            answers[name] = {(said := _warnings(o.ack))[0].split("|")[2]: said for o in outcomes}
            held[name] = _held(eng)
            numbers[name] = {mrn: _numbers(eng, mrn) for mrn in ("G3", "G4")}
    import pprint
    pprint.pprint((answers, held, numbers, G3, G3b, G4, G4b))
    assert answers["batch"] == answers["single"] and held["batch"] == held["single"], (answers, held)
    assert numbers["batch"] == numbers["single"], numbers
    assert False


MAN2 = _nid("32092319710202013")  # born 1971-02-02, male


@pytest.mark.parametrize("how", ["msh18", "http-charset"])
def test_probe_registrar_message_in_gb18030(both: tuple[Engine, TestClient], how: str) -> None:
    _, http = both
    n = {"msh18": "1", "http-charset": "2"}[how]
    pid3 = f"G5M{n}^^^FNXRMYY^MR~{MAN2}^^^^NNCHN"
    text = adt(f"G5A{n}", pid3, "许^辰", "", "M", event="A01")
    if how == "msh18":
        text = text.replace("|P|2.5.1\r", "|P|2.5.1||||||GB18030\r", 1)
        ack = post(http, text, codec="gb18030")
    else:
        ack = post(http, text, content_type="application/hl7-v2; charset=GB18030", codec="gb18030")
    assert ack_code_of(ack) == "AA", ack
    (him,) = [e["resource"] for e in http.get("/fhir/Patient", params={"identifier": f"G5M{n}"}).json()["entry"]]
    assert him["name"][0].get("text") == "许辰" or him["name"][0].get("family") == "许", him
    _set(http, him["id"], gender="female")
    ack = post(http, oru(f"G5C{n}", pid3, "许^辰辰", "", "M", f"G5OBS{n}"))
    assert subjects(http, f"G5OBS{n}") == [f"Patient/{him['id']}"], err_lines(ack)
