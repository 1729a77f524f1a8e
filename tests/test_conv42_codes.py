"""conv42: rv42b's two HIGHs of conversion, through the real path (``POST /hl7v2`` one message a request, or
one BHS/BTS batch body, into the real store of each backend; the FHIR read back over ``/fhir``).

HIGH 1 -- a code of a coding system huren does not know (OBX-3 ``WBC^Wound Bed Classification^WOUNDSYS``,
OBR-4 ``XCG^Foreign panel^ZZLAB``) was filed under the hospital's own local system, so its code map gave it
the hospital's WBC's LOINC and its blood count's recognition item: now kept as sent, untranslated, under
``urn:huren:unknown-code-system:<sender>:<name>``, never an item, the ACK saying so at the field.

HIGH 2 -- a thinner restatement (the LIS's later final restating 130 with OBX-6 and OBX-14 empty) erased
the stored unit and moved the result's time to OBR-7's fallback: the same value keeps its unit, a time
taken from OBR-7 fills only a result stored without one; another value (a correction) states the whole.

The tests share one engine a module and backend (``module_eng``, suite44c): each sends under control IDs, orders
and a patient (``C42<order>``) of its own -- a parameter's tag in them -- and reads back only what its messages
wrote. ``engine`` and ``http`` (an engine a test) stay for the probe modules that import them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.messages import message_id
from engine.recognition.coding import item_for
from engine.settings import Settings
from tests.module_store import module_eng, system_client

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ER7 = "x-application/hl7-v2+er7"

__all__ = ["module_eng"]


@pytest.fixture
def engine(backend_settings: Settings) -> Iterator[Engine]:
    with Engine(backend_settings) as eng:
        yield eng


@pytest.fixture
def http(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as client:
        client.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("conv42", "system/*.cruds")
        yield client


@pytest.fixture(scope="module")
def lis(module_eng: Engine) -> Iterator[TestClient]:
    """``module_eng``'s client (the LIS posting), as ``http`` is ``engine``'s."""
    with system_client(module_eng, "conv42") as client:
        yield client


def oru(control: str, order: str, obr4: str, *obx: str, msh7: str = "20261201091500+0800") -> str:
    """阜宁县人民医院's LIS result message ``control`` of order ``order`` (placer P<order>, filler F<order>;
    OBR-7 08:30, OBR-22 09:10, OBR-25 F) with the OBX segments ``obx``."""
    obr = ["OBR", "1", "P" + order, "F" + order, obr4, "", "", "20261201083000"] + [""] * 18
    obr[15], obr[22], obr[25] = "BLD", "20261201091000", "F"
    return (f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|{msh7}||ORU^R01^ORU_R01|{control}|P|2.5.1|||AL|NE|CHN|UNICODE UTF-8\r"
            f"PID|1||C42{order}^^^FNXRMYY^MR||王^芳||19900101|F\r" + "|".join(obr) + "\r" + "".join(obx))


def send(http: TestClient, *messages: str, batch: bool) -> list[bytes]:
    """The messages one ``POST /hl7v2`` each, or all in one BHS/BTS batch body: the ACK of each."""
    if not batch:
        acks = []
        for message in messages:
            r = http.post("/hl7v2", content=message.encode("utf-8"), headers={"Content-Type": ER7})
            assert r.status_code == 200, r.text
            acks.append(r.content)
        return acks
    body = ("BHS|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201091500||||C42B\r" + "".join(messages)
            + f"BTS|{len(messages)}\r").encode("utf-8")
    r = http.post("/hl7v2", content=body, headers={"Content-Type": ER7})
    assert r.status_code == 200, r.text
    segments = r.content.split(b"\r")
    starts = [i for i, s in enumerate(segments) if s.startswith(b"MSH|")]
    return [b"\r".join(segments[a:b]) for a, b in zip(starts, [*starts[1:], len(segments)], strict=True)]


def written(engine: Engine, http: TestClient, control: str, rtype: str) -> list[dict]:
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", control))
    assert doc is not None, control
    return [http.get(f"/fhir/{ref}").json() for ref in doc.get("resources") or [] if ref.startswith(rtype + "/")]


def errs(ack: bytes) -> list[str]:
    return [s for s in ack.decode("utf-8").split("\r") if s.startswith("ERR")]


# ---- HIGH 1: a code of an unknown coding system is no code of the hospital's ------------------------------------


@pytest.mark.parametrize("batch", [False, True], ids=["one-by-one", "batch"])
def test_a_code_of_an_unknown_system_is_kept_as_sent_untranslated_and_never_an_item(
        module_eng: Engine, lis: TestClient, batch: bool) -> None:
    """Beside the hospital's own HGB (``L``: its code map's LOINC 718-7), a wound-bed score ``WBC`` of
    ``WOUNDSYS`` and a foreign panel ``XCG`` of ``ZZLAB`` keep their codes under a system naming the sender's
    coding system as sent, no LOINC, no recognition item (recognition reads none: not the blood count), and
    the ACK warns at OBR-4 and OBX-3 component 3 (table 0396's name)."""
    run = "C42U1" + ("B" if batch else "S")
    msg = oru(run, run, "XCG^Foreign panel^ZZLAB",
              "OBX|1|NM|WBC^Wound Bed Classification^WOUNDSYS||3|{score}|||||F|||20261201090000\r"
              "OBX|2|NM|HGB^血红蛋白^L||130|g/L|||||F|||20261201090000\r")
    (ack,) = send(lis, msg, batch=batch)
    assert ack_code_of(ack) == "AA", ack
    warned = errs(ack)
    assert any("|OBR^1^4^^3|" in e and "'ZZLAB' is not known" in e and "|W|" in e for e in warned), warned
    assert any("|OBX^1^3^^3|" in e and "'WOUNDSYS' is not known" in e and "'WBC'" in e for e in warned), warned
    results = {o["code"]["coding"][0]["code"]: o for o in written(module_eng, lis, run, "Observation")}
    assert results["WBC"]["code"]["coding"] == [{
        "system": "urn:huren:unknown-code-system:FNXRMYY:WOUNDSYS", "code": "WBC",
        "display": "Wound Bed Classification"}], results["WBC"]["code"]
    assert {c["system"]: c["code"] for c in results["HGB"]["code"]["coding"]} == {
        "urn:huren:code:FNXRMYY": "HGB", LOINC: "718-7"}  # the hospital's own code: its map, as before
    ((report,), (order,)) = (written(module_eng, lis, run, "DiagnosticReport"),
                             written(module_eng, lis, run, "ServiceRequest"))
    for resource in (report, order):
        assert resource["code"]["coding"] == [{"system": "urn:huren:unknown-code-system:FNXRMYY:ZZLAB",
                                               "code": "XCG", "display": "Foreign panel"}], resource["code"]
        assert item_for(resource, module_eng.recognition.rules, "FNXRMYY") is None
    assert item_for(results["WBC"], module_eng.recognition.rules, "FNXRMYY") is None


def test_the_sites_own_codes_still_map(module_eng: Engine, lis: TestClient) -> None:
    """Guard: no system, ``L`` and a 99zzz (table 0396's local forms: the sender's own lists) are still read
    through codes/FNXRMYY.yaml -- XCG the blood count (LOINC 58410-2, item CBC) -- and say nothing in the ACK."""
    msg = oru("C42L1", "C42L1", "XCG^血常规^99LIS",
              "OBX|1|NM|WBC^白细胞^||6.1|10*9/L|||||F|||20261201090000\r"
              "OBX|2|NM|HGB^血红蛋白^L||130|g/L|||||F|||20261201090000\r")
    (ack,) = send(lis, msg, batch=False)
    assert ack_code_of(ack) == "AA" and not any("is not known" in e for e in errs(ack)), ack
    (report,) = written(module_eng, lis, "C42L1", "DiagnosticReport")
    assert {c["system"]: c["code"] for c in report["code"]["coding"]} == {
        "urn:huren:code:FNXRMYY:99LIS": "XCG", LOINC: "58410-2", "urn:huren:recognition-item": "CBC"}
    assert item_for(report, module_eng.recognition.rules, "FNXRMYY") == "CBC"
    loincs = sorted(c["code"] for o in written(module_eng, lis, "C42L1", "Observation")
                    for c in o["code"]["coding"] if c["system"] == LOINC)
    assert loincs == ["6690-2", "718-7"]


# ---- HIGH 2: a thinner restatement never erases ------------------------------------------------------------------


FIRST = "OBX|1|NM|HGB^血红蛋白^L||130|g/L|120-160|N|||F|||20261201090000\r"


def hgb(engine: Engine, http: TestClient, control: str) -> dict:
    (obs,) = written(engine, http, control, "Observation")
    return obs


@pytest.mark.parametrize("batch", [False, True], ids=["one-by-one", "batch"])
def test_a_thinner_restatement_keeps_the_unit_and_the_stated_time(
        module_eng: Engine, lis: TestClient, batch: bool) -> None:
    """The LIS's final HGB 130 g/L, OBX-14 09:00; an hour later it restates 130 (F) with OBX-6 and OBX-14
    empty: the stored result keeps g/L (its UCUM code and system) and 09:00 -- OBR-7's 08:30 is the converter's
    fallback, not a time the message stated. The same in one batch as one by one."""
    tag = "B" if batch else "S"
    later = oru("C42T2" + tag, "C42T1" + tag, "CBC^血常规^L", "OBX|1|NM|HGB^血红蛋白^L||130||||||F\r",
                msh7="20261201101500+0800")
    acks = send(lis, oru("C42T1" + tag, "C42T1" + tag, "CBC^血常规^L", FIRST), later, batch=batch)
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    obs = hgb(module_eng, lis, "C42T2" + tag)
    assert obs["valueQuantity"] == {"value": 130, "unit": "g/L", "system": UCUM, "code": "g/L"}, obs
    assert obs["effectiveDateTime"] == "2026-12-01T09:00:00+08:00", obs
    assert obs["referenceRange"][0]["low"]["unit"] == "g/L"


@pytest.mark.parametrize("batch", [False, True], ids=["one-by-one", "batch"])
def test_another_value_states_the_whole_quantity(module_eng: Engine, lis: TestClient, batch: bool) -> None:
    """A correction (OBX-11 C) of 130 g/L to 13.0 stating no unit states the whole quantity: no g/L is left
    beside a value the lab did not give in g/L; and a restatement of 130 in another unit written as text alone
    (OBX-6 ``^克每升``, no code) takes no stored UCUM code of g/L beside it."""
    tag = "B" if batch else "S"
    corrected = oru("C42V2" + tag, "C42V1" + tag, "CBC^血常规^L",
                    "OBX|1|NM|HGB^血红蛋白^L||13.0||||||C|||20261201090000\r", msh7="20261201101500+0800")
    acks = send(lis, oru("C42V1" + tag, "C42V1" + tag, "CBC^血常规^L", FIRST), corrected, batch=batch)
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    assert hgb(module_eng, lis, "C42V2" + tag)["valueQuantity"] == {"value": 13.0}

    texted = oru("C42W2" + tag, "C42W1" + tag, "CBC^血常规^L",
                 "OBX|1|NM|HGB^血红蛋白^L||130|^克每升|||||F|||20261201090000\r", msh7="20261201101500+0800")
    acks = send(lis, oru("C42W1" + tag, "C42W1" + tag, "CBC^血常规^L", FIRST), texted, batch=batch)
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
    assert hgb(module_eng, lis, "C42W2" + tag)["valueQuantity"] == {"value": 130, "unit": "克每升"}


def test_a_stated_time_replaces_a_fallback_one(module_eng: Engine, lis: TestClient) -> None:
    """Guard: a result first sent with OBX-14 empty is dated by OBR-7 (08:30); the LIS's later
    message stating OBX-14 09:00 replaces it -- only the fallback is an assumption."""
    first = oru("C42F1", "C42F1", "CBC^血常规^L", "OBX|1|NM|HGB^血红蛋白^L||130|g/L|||||F\r")
    later = oru("C42F2", "C42F1", "CBC^血常规^L", FIRST, msh7="20261201101500+0800")
    (ack,) = send(lis, first, batch=False)
    assert ack_code_of(ack) == "AA", ack
    assert hgb(module_eng, lis, "C42F1")["effectiveDateTime"] == "2026-12-01T08:30:00+08:00"
    (ack,) = send(lis, later, batch=False)
    assert ack_code_of(ack) == "AA", ack
    assert hgb(module_eng, lis, "C42F2")["effectiveDateTime"] == "2026-12-01T09:00:00+08:00"
