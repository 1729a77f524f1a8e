"""FHIR decimals come back exactly as they were sent: over HTTP (create, update, transaction, search,
_history, vread) on every storage backend, and from HL7 v2 NM/SN values. The response TEXT is
checked, never a parsed float, because a float parse is exactly what loses ``1.50``'s last zero."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from adapters.convert.datatypes import decimal as nm
from engine import fhirjson
from engine.api.app import create_app
from engine.engine import Engine
from engine.messages import PROCESSED, message_id
from engine.repository.fhir import FhirRepository
from engine.repository.port import Store
from engine.settings import Settings
from tests.module_store import module_eng

FHIR = "application/fhir+json"
__all__ = ["module_eng"]
# sent as text: a Python float could not even express most of these
TOKENS = ["42.256500", "1.00", "66.899999999999991", "1e2", "2.5E-3", "12345678901234567890123", "0.10"]


@pytest.fixture
def eng(backend_settings: Settings) -> Iterator[Engine]:
    engine = Engine(backend_settings.with_(base_url="https://huren.example"))
    yield engine
    engine.close()


def _client(engine: Engine) -> Iterator[TestClient]:
    """The real app over ``engine``, a system client's token, FHIR JSON sent, Patient/p1 written (201)."""
    with TestClient(create_app(engine)) as client:
        client.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("test-system", "system/*.cruds")
        client.headers["Content-Type"] = FHIR
        patient = {"resourceType": "Patient", "id": "p1", "name": [{"family": "张", "given": ["三"]}]}
        assert client.put("/fhir/Patient/p1", json=patient).status_code == 201
        yield client


@pytest.fixture
def http(eng: Engine) -> Iterator[TestClient]:
    yield from _client(eng)


@pytest.fixture(scope="module")
def tokens_http(module_eng: Engine) -> Iterator[TestClient]:
    """``http`` once per module and backend (``tests.module_store``, suitedup31) for the token test:
    each token's case creates its own Observation and looks for its own token, which no other case
    of that test (nor any other test on this engine) writes."""
    yield from _client(module_eng)


def location(lid: str, longitude: str, latitude: str, altitude: str) -> bytes:
    return (f'{{"resourceType":"Location","id":"{lid}","name":"县医院","position":'
            f'{{"longitude":{longitude},"latitude":{latitude},"altitude":{altitude}}}}}').encode()


def observation(value: str, *, oid: str | None = None, code: str = "2345-7", low: str = "3.90",
                high: str = "6.10") -> str:
    ident = f'"id":"{oid}",' if oid else ""
    return ('{"resourceType":"Observation",' + ident + '"status":"final",'
            f'"code":{{"coding":[{{"system":"http://loinc.org","code":"{code}"}}]}},'
            '"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2026-11-01T09:00:00+08:00",'
            '"performer":[{"reference":"Organization/FNXRMYY"}],'
            f'"valueQuantity":{{"value":{value},"unit":"mmol/L","system":"http://unitsofmeasure.org","code":"mmol/L"}},'
            f'"referenceRange":[{{"low":{{"value":{low}}},"high":{{"value":{high}}}}}]}}')


def has(text: str, key: str, token: str) -> bool:
    """Whether the JSON text holds ``"key":token`` with exactly that number token."""
    return re.search(rf'"{key}":{re.escape(token)}(?=[,}}\]])', text) is not None


# -- FHIR JSON over HTTP ----------------------------------------------------------------------------
def test_put_location_reads_back_every_digit(http: TestClient) -> None:
    put = http.put("/fhir/Location/loc1", content=location("loc1", "42.256500", "1.00", "66.899999999999991"))
    assert put.status_code == 201, put.text
    for response in (put, http.get("/fhir/Location/loc1"), http.get("/fhir/Location/loc1/_history/1")):
        assert has(response.text, "longitude", "42.256500"), response.text
        assert has(response.text, "latitude", "1.00") and has(response.text, "altitude", "66.899999999999991")


@pytest.mark.parametrize("token", TOKENS)
def test_create_then_read_search_and_history_keep_the_token(tokens_http: TestClient, token: str) -> None:
    created = tokens_http.post("/fhir/Observation", content=observation(token))
    assert created.status_code == 201, created.text
    assert has(created.text, "value", token)
    oid = created.json()["id"]
    assert has(tokens_http.get(f"/fhir/Observation/{oid}").text, "value", token)
    search = tokens_http.get("/fhir/Observation", params={"subject": "Patient/p1"})
    assert search.status_code == 200 and has(search.text, "value", token), search.text
    assert has(tokens_http.get(f"/fhir/Observation/{oid}/_history").text, "value", token)
    assert has(tokens_http.get("/fhir/Patient/p1/$everything").text, "value", token)
    assert '"low":{"value":3.90}' in search.text and '"high":{"value":6.10}' in search.text


def test_transaction_and_batch_keep_the_tokens(http: TestClient) -> None:
    entries = ",".join(
        f'{{"fullUrl":"urn:uuid:00000000-0000-4000-8000-00000000000{n}","resource":{observation(token)},'
        '"request":{"method":"POST","url":"Observation"}}'
        for n, token in enumerate(TOKENS)
    )
    response = http.post("/fhir", content=f'{{"resourceType":"Bundle","type":"transaction","entry":[{entries}]}}')
    assert response.status_code == 200, response.text
    locations = [e["response"]["location"] for e in response.json()["entry"]]
    for token, loc in zip(TOKENS, locations, strict=True):
        rid = loc.split("/_history")[0].split("Observation/")[1]
        assert has(http.get(f"/fhir/Observation/{rid}").text, "value", token)
    batch = ",".join(f'{{"request":{{"method":"GET","url":"{loc.split("/_history")[0]}"}}}}' for loc in locations)
    read = http.post("/fhir", content=f'{{"resourceType":"Bundle","type":"batch","entry":[{batch}]}}')
    assert read.status_code == 200
    for token in TOKENS:
        assert has(read.text, "value", token), token


def test_a_change_of_precision_alone_is_a_new_version(http: TestClient) -> None:
    assert http.put("/fhir/Observation/o1", content=observation("1.5", oid="o1")).status_code == 201
    same = http.put("/fhir/Observation/o1", content=observation("1.5", oid="o1"))
    assert same.status_code == 200 and same.headers["ETag"] == 'W/"1"'  # nothing changed, no version
    more = http.put("/fhir/Observation/o1", content=observation("1.50", oid="o1"))
    assert more.headers["ETag"] == 'W/"2"' and has(more.text, "value", "1.50")
    history = http.get("/fhir/Observation/o1/_history").text
    assert has(history, "value", "1.50") and has(history, "value", "1.5")


def test_numeric_search_compares_values_not_text(http: TestClient) -> None:
    for oid, token in (("a", "1.50"), ("b", "1.4"), ("c", "1e2"), ("d", "42.256500")):
        assert http.put(f"/fhir/Observation/{oid}", content=observation(token, oid=oid)).status_code == 201

    def found(value: str) -> list[str]:
        bundle = http.get("/fhir/Observation", params={"value-quantity": value, "_sort": "_id"}).json()
        return [e["resource"]["id"] for e in bundle.get("entry", [])]

    assert found("gt1.4") == ["a", "c", "d"]
    assert found("lt1.5") == ["b"]
    assert found("1.5") == ["a"]  # eq 1.5 is [1.45, 1.55): it holds 1.50
    assert found("1.50") == ["a"]  # [1.495, 1.505)
    assert found("100") == ["c"] and found("ge42.2565") == ["c", "d"]
    assert found("1.5|http://unitsofmeasure.org|mmol/L") == ["a"]


def test_bad_numbers_are_a_clean_400_and_huge_integers_a_422(http: TestClient) -> None:
    for bad in ("NaN", "Infinity", "01.5", "1.", ".5", "+1.5"):
        r = http.post("/fhir/Observation", content=observation(bad))
        assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome", (bad, r.text)
    deep = '{"resourceType":"Observation","extension":' + "[" * 2000 + "1.50" + "]" * 2000 + "}"
    assert http.post("/fhir/Observation", content=deep).status_code == 400
    body = json.loads(observation("1.0"))
    body["valueInteger"] = 0
    del body["valueQuantity"]
    text = json.dumps(body).replace('"valueInteger": 0', '"valueInteger": 12345678901234567890123')
    r = http.post("/fhir/Observation", content=text)
    assert r.status_code == 422 and "valueInteger" in r.text, r.text


def test_each_store_keeps_the_exact_bytes(store: Store) -> None:
    """The storage port itself (SQLite, mongomock, MongoDB when configured) holds the exact text."""
    repo = FhirRepository(store, base_url="http://huren.test/fhir")
    repo.update(fhirjson.loads(location("loc2", "42.256500", "1.00", "66.899999999999991")))
    repo.update(fhirjson.loads(location("loc2", "42.2565", "1.00", "66.899999999999991")))
    body = store.fhir.current("Location", "loc2").body
    assert b'"longitude":42.2565,' in body and b'"latitude":1.00,' in body
    versions = [v.resource["position"]["longitude"] for v in repo.versions("Location", "loc2")]
    assert [str(v) for v in versions] == ["42.2565", "42.256500"]


# -- HL7 v2 -------------------------------------------------------------------------------------
def lab_result(control: str) -> bytes:
    return (
        f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261101091500||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
        "PID|1||110101198001010010^^^^NNCHN~M0001^^^FNXRMYY^MR||张^三||19800101|M\r"
        f"OBR|1|ORD-{control}|LAB-{control}|SGN^肾功能^L|||20261101083000|||||||20261101083500|BLD|D001^李^医生"
        "||||||20261101091000|||F\r"
        "OBX|1|NM|GLU^葡萄糖^L||+01.50|mmol/L|3.90-6.10|N|||F|||20261101090000\r"
        "OBX|2|SN|CREA^肌酐^L||<^50.0|umol/L|57.0-111.0|L|||F|||20261101090000\r"
    ).encode()


def test_hl7_nm_and_sn_keep_the_senders_precision(eng: Engine, http: TestClient) -> None:
    poster = {"Authorization": "Bearer " + eng.auth.issue_system_token("lis-gw", "system/MessageHeader.c"),
              "Content-Type": "x-application/hl7-v2+er7"}
    r = http.post("/hl7v2", content=lab_result("D1"), headers=poster)
    assert r.status_code == 200 and r.headers["x-hl7-ack-code"] == "AA", r.text
    doc = eng.ingestor.messages.get(message_id("FNXRMYY", "D1"))
    assert doc is not None and doc["status"] == PROCESSED
    texts = [http.get(f"/fhir/{ref}").text for ref in doc["resources"] if ref.startswith("Observation/")]
    glucose = next(t for t in texts if "GLU" in t or "葡萄糖" in t)
    creatinine = next(t for t in texts if "CREA" in t or "肌酐" in t)
    assert has(glucose, "value", "1.50") and has(glucose, "value", "3.90") and has(glucose, "value", "6.10"), glucose
    assert has(creatinine, "value", "50.0") and has(creatinine, "value", "111.0"), creatinine
    bundle = http.get("/fhir/Observation", params={"value-quantity": "gt1.4", "code": "GLU"})
    assert bundle.status_code == 200


@pytest.mark.parametrize(("text", "expected"), [
    ("1.50", "1.50"), ("+1.50", "1.50"), (".5", "0.5"), ("-.5", "-0.5"), ("01.5", "1.5"), ("00.50", "0.50"),
    ("1.", "1"), ("007", "7"), ("-3", "-3"), ("42.256500", "42.256500"), ("123456789012345678901234", "123456789012345678901234"),
])
def test_nm_to_fhir_decimal_text(text: str, expected: str) -> None:
    assert fhirjson.dumps(nm(text)).decode() == expected
    assert fhirjson.FHIR_DECIMAL.fullmatch(expected)


# -- the module's own contract ---------------------------------------------------------------------
def test_loads_dumps_round_trip_bytes_exactly() -> None:
    raw = (b'{"a":[1.5,2.50,-0.0,7,1E+2,3e-7,12345678901234567890123,0.1],'
           b'"s":"ratio: 1.50, at 10:00:00.120Z","n":null,"t":true}')
    assert fhirjson.dumps(fhirjson.loads(raw)) == raw
    fast = b'{"a":[1.5,7,0.1,-2.25],"t":"2026-01-01T10:00:00.120Z"}'
    assert fhirjson.dumps(fhirjson.loads(fast)) == fast
    assert all(type(v) in (int, float) for v in fhirjson.loads(fast)["a"])  # the fast path: plain floats
    value = fhirjson.loads(b'{"v":1.50}')["v"]
    assert value == 1.5 and value > 1.4 and str(value) == "1.50" and isinstance(value, float)
    assert not fhirjson.same({"v": 1.5}, fhirjson.loads(b'{"v":1.50}'))
    assert fhirjson.same({"v": 1.5, "w": 1}, {"w": 1, "v": 1.5})
    for bad in (b'{"v":NaN}', b'{"v":1.}', b'{"v":"\\ud800"}', b"[" * 5000 + b"]" * 5000):
        with pytest.raises(fhirjson.DecodeError):
            fhirjson.loads(bad)
