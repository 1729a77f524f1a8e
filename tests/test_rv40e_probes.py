"""rv40e: review of tidy40 (fae8eca0) -- the Accept / ``_format`` / Content-Type parameters (``engine.api.formats``,
``fhir._body``), probed with the headers real clients send and the bodies they post.

Real HTTP through FastAPI (TestClient) into the real store on each backend (``module_eng``: SQLite, mongomock); a
Patient created over ``POST /fhir/Patient`` and one registered by the HIS's ADT^A04 over ``POST /hl7v2``. A probe
that shows a defect is a strict xfail naming its severity; a probe that passes guards what tidy40's parameter rule
must not break (the headers of a browser, curl and HAPI; a body labelled as most clients label it).
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.identity39_calls import engine_and_client, registered
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend

both = engine_and_client("rv40e")

FORM = "application/x-www-form-urlencoded"
# Chromium's navigation, curl's default, HAPI FHIR's client (R4: the non-legacy header, and the legacy one it sends
# when asked to accept both encodings)
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
HAPI = "application/fhir+json;q=1.0, application/json+fhir;q=0.9"
HAPI_BOTH = ("application/fhir+xml;q=1.0, application/fhir+json;q=1.0, application/xml+fhir;q=0.9, "
             "application/json+fhir;q=0.9")


def _created(http: TestClient, family: str, content_type: str = "application/fhir+json") -> tuple[int, str]:
    """``POST /fhir/Patient`` of a Patient named ``family`` under ``content_type``: (status, the stored id or "")."""
    body = json.dumps({"resourceType": "Patient", "name": [{"family": family}], "gender": "female"},
                      ensure_ascii=False).encode()
    r = http.post("/fhir/Patient", content=body, headers={"Content-Type": content_type})
    return r.status_code, (r.json().get("id", "") if r.status_code == 201 else "")


def _families(bundle: dict) -> list[str]:
    return [e["resource"]["name"][0]["family"] for e in bundle.get("entry") or ()]


# --- guards: what real clients send is served --------------------------------------------------------------------


@pytest.mark.parametrize("accept", [BROWSER, "*/*", HAPI, HAPI_BOTH], ids=["browser", "curl", "hapi", "hapi_both"])
def test_real_clients_accept_headers_are_answered_r4_json(both: tuple[Engine, TestClient], accept: str) -> None:
    """tidy40 reads each range's parameters: the headers a browser, curl and HAPI send (no fhirVersion, no charset)
    still get FHIR JSON under a 200 on the fast read, a search and metadata."""
    _, http = both
    status, pid = _created(http, "RV40E-CLIENT")
    assert status == 201
    for address in (f"/fhir/Patient/{pid}", "/fhir/Patient?family=RV40E-CLIENT", "/fhir/metadata"):
        r = http.get(address, headers={"Accept": accept})
        assert r.status_code == 200, (address, accept, r.text)
        assert r.headers["content-type"].startswith("application/fhir+json"), (address, r.headers["content-type"])
        assert r.json()["resourceType"] in ("Patient", "Bundle", "CapabilityStatement"), r.text


@pytest.mark.parametrize("content_type", ["application/json", "application/fhir+json;charset=UTF-8",
                                          'application/fhir+json; charset="utf-8"', "application/json+fhir",
                                          "application/fhir+json; fhirVersion=4.0; charset=utf-8"])
def test_a_body_labelled_bare_or_r4_utf8_is_created_as_sent(both: tuple[Engine, TestClient], content_type: str) -> None:
    """A create labelled ``application/json`` with no charset (R4 asks for one; clients leave it off), an upper-case
    ``UTF-8``, a quoted one, the legacy type, R4 named: created, and read back with the Chinese name as sent."""
    _, http = both
    family = f"柳RV40E-{abs(hash(content_type)) % 10**6}"
    status, pid = _created(http, family, content_type)
    assert status == 201, (content_type, status)
    assert http.get(f"/fhir/Patient/{pid}").json()["name"][0]["family"] == family


def test_a_search_post_of_a_utf8_form_finds_the_registered_patient(both: tuple[Engine, TestClient]) -> None:
    """``POST Patient/_search`` with a form body (percent-encoded UTF-8, labelled ``charset=UTF-8``): the patient the
    HIS registered over HL7 v2 is found by her Chinese family name."""
    _, http = both
    her = registered(http, "RV40E1", "RV40E1", "柳^甲", "19610101", "F")
    r = http.post("/fhir/Patient/_search", content=b"identifier=RV40E1&family=%E6%9F%B3",
                  headers={"Content-Type": f"{FORM}; charset=UTF-8"})
    assert r.status_code == 200, r.text
    assert [e["resource"]["id"] for e in r.json().get("entry") or ()] == [her["id"]], r.text


# --- rv40e's findings, fixed by ffix40 (each was a strict xfail; each fails without ffix40's change) ---------------


@pytest.mark.parametrize("body", [b"family=\xff\xfe", "family=M\u00fcller".encode("latin-1"), b"family=M%FCller"],
                         ids=["ff", "latin1", "escaped_latin1"])
def test_a_search_post_whose_form_body_is_not_utf8_is_a_4xx_outcome(both: tuple[Engine, TestClient],
                                                                     body: bytes) -> None:
    """MED 1: a form body that is not UTF-8 -- raw bytes (0xFF; Latin-1 ``M\xfcller`` unescaped) or a percent-escape
    of a byte UTF-8 has not (``%FC``) -- is a 400 OperationOutcome naming the parameter (``fhir._form``; http42). The raw bytes had
    been a 500 text/plain; the escape had been searched for as U+FFFD, an empty Bundle under a 200."""
    engine, http = both
    with TestClient(create_app(engine), raise_server_exceptions=False) as plain:
        r = plain.post("/fhir/Patient/_search", content=body,
                       headers={"Content-Type": FORM, "Authorization": http.headers["Authorization"]})
    assert r.status_code == 400, (r.status_code, r.text)
    assert r.json()["resourceType"] == "OperationOutcome", r.text
    # http42: named by its parameter, as the same in the query is (url_utf8's one reader; it had named the body)
    assert r.json()["issue"][0]["expression"] == ["family"] and "not UTF-8" in r.json()["issue"][0]["diagnostics"], r.text


def test_a_latin1_form_search_is_refused_or_read_as_latin1(both: tuple[Engine, TestClient]) -> None:
    """LOW 3, decided 415 (ffix40): a ``_search`` form labelled ``charset=ISO-8859-1`` is refused before it is read,
    as every body naming another charset is (``formats.require_body_served``) -- R4 http.html#mime-type reads FHIR's
    bodies in UTF-8 only, and the WHATWG URL Standard gives the form type no charset. It had been read as UTF-8 and
    answered an empty Bundle under a 200 although Müller is stored."""
    _, http = both
    status, pid = _created(http, "Müller-RV40E")
    assert status == 201 and pid
    r = http.post("/fhir/Patient/_search", content=b"family=M%FCller-RV40E",
                  headers={"Content-Type": f"{FORM}; charset=ISO-8859-1"})
    assert r.status_code == 415 and r.json()["resourceType"] == "OperationOutcome", (r.status_code, r.text)
    found = http.post("/fhir/Patient/_search", content=b"family=M%C3%BCller-RV40E",
                      headers={"Content-Type": f"{FORM}; charset=utf8"})  # the same name in UTF-8, another label of it
    assert [e["resource"]["id"] for e in found.json().get("entry") or ()] == [pid], found.text


@pytest.mark.parametrize("charset", ["utf8", "UTF8", "us-ascii"])
def test_a_body_in_another_label_of_utf8_is_created(both: tuple[Engine, TestClient], charset: str) -> None:
    """LOW 2 (tidy40's regression): a body labelled ``utf8``/``UTF8`` (UTF-8 by Python's codecs) or ``us-ascii`` (its
    bytes are the same text in UTF-8) is created again. In Accept, the two labels of UTF-8 are served; ``us-ascii``
    is not (ffix40's decision: an answer holds Chinese names, which a client asking for ASCII alone cannot read), 406."""
    _, http = both
    status, pid = _created(http, f"RV40E-{charset}", f"application/fhir+json; charset={charset}")
    assert status == 201, (charset, status)
    r = http.get(f"/fhir/Patient/{pid}", headers={"Accept": f"application/fhir+json; charset={charset}"})
    assert r.status_code == (406 if charset == "us-ascii" else 200), r.text
    assert r.json()["resourceType"] == ("OperationOutcome" if charset == "us-ascii" else "Patient"), r.text


def test_a_fhir_answer_names_its_charset(both: tuple[Engine, TestClient]) -> None:
    """LOW 5: R4 http.html#mime-type -- "responses SHALL explicitly set the character encoding to UTF-8 using the
    charset parameter": the read, the search, metadata and an OperationOutcome say ``charset=utf-8``; an answer
    labelled ``application/json`` for the client keeps it."""
    _, http = both
    status, pid = _created(http, "RV40E-LABEL")
    assert status == 201
    for address in (f"/fhir/Patient/{pid}", "/fhir/Patient?family=RV40E-LABEL", "/fhir/metadata", "/fhir/Patient/none"):
        r = http.get(address)
        assert r.headers["content-type"] == "application/fhir+json; charset=utf-8", (address, r.headers["content-type"])
    plain = http.get(f"/fhir/Patient/{pid}", headers={"Accept": "application/json"})
    assert plain.headers["content-type"] == "application/json; charset=utf-8", plain.headers["content-type"]


def test_r4_weighed_zero_by_its_own_range_is_not_served(both: tuple[Engine, TestClient]) -> None:
    """LOW 6: RFC 9110 12.5.1 -- the more specific range decides: R4 at q=0 beside the bare type is 406; the bare type
    at q=0 beside R4 named is served."""
    _, http = both
    r = http.get("/fhir/metadata", headers={"Accept": "application/fhir+json;fhirVersion=4.0;q=0, application/fhir+json"})
    assert r.status_code == 406, (r.status_code, r.text[:200])
    r = http.get("/fhir/metadata", headers={"Accept": "application/fhir+json;q=0, application/fhir+json;fhirVersion=4.0"})
    assert r.status_code == 200, (r.status_code, r.text[:200])


@pytest.mark.parametrize("fmt", [b"xml", b"application/fhir%2Bjson;fhirVersion=3.0"], ids=["xml", "stu3"])
def test_a_format_in_the_search_form_body_is_read_as_in_the_query(both: tuple[Engine, TestClient], fmt: bytes) -> None:
    """LOW 4: a ``_format`` in the ``_search`` form body is read as the query's: not FHIR R4 JSON, 406."""
    _, http = both
    in_query = http.post(f"/fhir/Patient/_search?_format={fmt.decode()}", content=b"family=RV40E-FMT",
                         headers={"Content-Type": FORM})
    assert in_query.status_code == 406, in_query.text
    in_body = http.post("/fhir/Patient/_search", content=b"family=RV40E-FMT&_format=" + fmt,
                        headers={"Content-Type": FORM})
    assert in_body.status_code == 406, (in_body.status_code, in_body.text[:200])
    assert in_body.json()["resourceType"] == "OperationOutcome", in_body.text


def test_a_json_format_in_the_search_form_body_labels_the_answer(both: tuple[Engine, TestClient]) -> None:
    """LOW 4: ``_format=application/json`` in the form body labels the Bundle ``application/json`` as in the query
    (``formats.json_label``); ``_format=json`` keeps the FHIR type."""
    _, http = both
    for fmt, label in ((b"application/json", "application/json"), (b"json", "application/fhir+json")):
        r = http.post("/fhir/Patient/_search", content=b"family=RV40E-FMT&_format=" + fmt,
                      headers={"Content-Type": FORM})
        assert r.status_code == 200 and r.json()["resourceType"] == "Bundle", r.text
        assert r.headers["content-type"] == f"{label}; charset=utf-8", (fmt, r.headers["content-type"])


@pytest.mark.parametrize(("accept", "fmt", "status", "label"), [
    ("application/fhir+xml", b"json", 200, "application/fhir+json"),  # the body's _format overrides Accept
    ("application/json", b"application/fhir%2Bjson", 200, "application/fhir+json"),  # not relabelled by Accept
    ("application/fhir+xml", b"", 406, None),  # no _format anywhere: the Accept decides, as on GET
    ("application/json", b"", 200, "application/json"),  # Accept's generic label, as on GET
])
def test_the_search_form_bodys_format_overrides_accept(both: tuple[Engine, TestClient], accept: str, fmt: bytes,
                                                       status: int, label: str | None) -> None:
    """LOW 4: R4 http.html#mime-type -- ``_format`` overrides Accept; a form body's as the query's (ffix40's
    ``formats.negotiate_form``), and without one the Accept header decides as for any request."""
    _, http = both
    body = b"family=RV40E-FMT" + (b"&_format=" + fmt if fmt else b"")
    r = http.post("/fhir/Patient/_search", content=body, headers={"Content-Type": FORM, "Accept": accept})
    assert r.status_code == status, (accept, fmt, r.status_code, r.text[:200])
    if label is not None:
        assert r.headers["content-type"] == f"{label}; charset=utf-8", (accept, fmt, r.headers["content-type"])
    else:
        assert r.json()["resourceType"] == "OperationOutcome", r.text
