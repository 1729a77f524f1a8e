"""http41: the HTTP edge cases the fortieth round left (ffix40, tidy40 and lastread1's reports).

(1) a ``POST _search`` form body's ``_format`` labels every answer of the request -- the 401, 403 and 400
OperationOutcomes too -- and is negotiated before the caller is known, as the query's is; (2) a URL whose query or
path cannot be read as the UTF-8 text sent (``?family=%FC``, ``%ZZ``, a raw byte) is a 400 OperationOutcome naming
the parameter or the path, not a search for U+FFFD; (3) ``Accept-Charset`` admitting no UTF-8 is 406 (honoured,
``formats.require_json_accept`` says why); (4) an operator's reason with an invisible format character (a zero-width
space, the tags, a BOM, a lone surrogate) is 400 naming the code point, the marks and an emoji's joiner kept.

Real HTTP through FastAPI (TestClient) into the real store on each backend (SQLite, mongomock); the held message real HL7 over ``POST /hl7v2`` (ord40's helpers).
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from engine.api.fhir import _form, _form_formats
from engine.api.url_utf8 import url_refusal
from engine.engine import Engine
from tests.conftest import _BACKENDS
from tests.identity39_calls import engine_and_client
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_ord40_owner_decision import _aliased, _client, _engine_on
from tests.test_order35_as_later import _operator
from tests.test_rv40e_probes import FORM
from tests.test_rv40f_probes import _held_message, _owner

both = engine_and_client("http41")

PLAIN = "application/json; charset=utf-8"
FHIR = "application/fhir+json; charset=utf-8"
FAMILY = "王HTTP41"


@pytest.fixture(scope="module")
def patient(both: tuple[Engine, TestClient]) -> str:
    """A Patient named ``FAMILY`` (Chinese: its escapes are UTF-8), created over HTTP; its id."""
    _, http = both
    r = http.post("/fhir/Patient", json={"resourceType": "Patient", "name": [{"family": FAMILY, "given": ["丽"]}]})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _outcome(r: object, status: int, *said: str) -> dict:
    """``r`` is a ``status`` OperationOutcome whose diagnostics say each of ``said``; its one issue."""
    assert r.status_code == status, (r.status_code, r.text[:400])  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert body["resourceType"] == "OperationOutcome", body
    issue = body["issue"][0]
    for words in said:
        assert words in issue["diagnostics"], issue
    return issue


# --- (1) a form body's _format labels every answer ----------------------------------------------------------------


@pytest.mark.parametrize("who", ["no-token", "other-type-token", "bad-date"])
def test_a_body_format_labels_the_401_403_and_400_as_asked(both: tuple[Engine, TestClient], who: str) -> None:
    """``_format=application/json`` in the form body: the refusal is labelled ``application/json`` whoever asks and
    whatever is refused -- the 401 and 403 are made before the route reads the body (they had kept the FHIR type,
    as the 400 had: lastread1 LOW)."""
    engine, http = both
    headers = {"Content-Type": FORM}
    body = b"family=" + quote(FAMILY).encode() + b"&_format=application/json"
    status = {"no-token": 401, "other-type-token": 403, "bad-date": 400}[who]
    if who == "no-token":
        headers["Authorization"] = ""
    elif who == "other-type-token":
        headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("http41-obs", "system/Observation.rs")
    else:
        body += b"&birthdate=notadate"
    r = http.post("/fhir/Patient/_search", content=body, headers=headers)
    _outcome(r, status)
    assert r.headers["content-type"] == PLAIN, r.headers["content-type"]


def test_a_body_format_decides_before_the_caller_is_known_as_the_querys(both: tuple[Engine, TestClient]) -> None:
    """``_format=xml`` in the form body of an unauthenticated request: 406, as the same ``_format`` in the query is
    (ffix40 had read the body after the caller: a 401). ``_format=application/fhir+json`` in the body over an
    ``Accept: application/json`` keeps the FHIR type on the 400 too (the body's ``_format`` overrides Accept)."""
    _, http = both
    anonymous = {"Content-Type": FORM, "Authorization": ""}
    in_query = http.post("/fhir/Patient/_search?_format=xml", content=b"family=x", headers=anonymous)
    _outcome(in_query, 406, "_format")
    _outcome(http.post("/fhir/Patient/_search", content=b"family=x&_format=xml", headers=anonymous), 406, "_format")
    r = http.post("/fhir/Patient/_search", content=b"birthdate=notadate&_format=application/fhir%2Bjson",
                  headers={"Content-Type": FORM, "Accept": "application/json"})
    _outcome(r, 400)
    assert r.headers["content-type"] == FHIR, r.headers["content-type"]


def test_the_body_format_labels_the_bundle_as_before(both: tuple[Engine, TestClient], patient: str) -> None:
    """Guard: the 200 Bundle found by a Chinese name in the form is labelled by the body's ``_format``."""
    _, http = both
    r = http.post("/fhir/Patient/_search", content=f"family={quote(FAMILY)}&_format=application/json".encode(),
                  headers={"Content-Type": FORM})
    assert r.status_code == 200 and r.headers["content-type"] == PLAIN, (r.status_code, r.headers)
    assert [e["resource"]["id"] for e in r.json()["entry"]] == [patient]


# --- (2) a URL read as the text sent ------------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "said"), [
    ("family=%FC", "0xFC"),  # Latin-1's ü: no character in UTF-8 (had been searched for as U+FFFD, 200 empty)
    ("family=%E7%8E", "0xE7"),  # the first two bytes of 王
    ("family=%ED%A0%80", "0xED"),  # a surrogate, which UTF-8 does not encode
    ("family=50%ZZ", "'%ZZ' is not a percent-escape"),
    ("family=50%", "'%' is not a percent-escape"),
], ids=["latin1", "cut", "surrogate", "not-hex", "bare-percent"])
def test_a_query_not_utf8_is_400_naming_the_parameter(both: tuple[Engine, TestClient], patient: str, query: str,
                                                       said: str) -> None:
    _, http = both
    r = http.get(f"/fhir/Patient?_count=5&{query}")
    issue = _outcome(r, 400, "'family'", said, "another value than the one sent")
    assert issue["expression"] == ["family"], issue
    assert r.headers["content-type"] == FHIR and r.headers["cache-control"] == "no-store", r.headers


def test_the_name_of_a_parameter_and_the_path_are_read_alike(both: tuple[Engine, TestClient], patient: str) -> None:
    """A parameter's name with a bad escape is named as sent; a path's (``/fhir/Patient/%FC``, the fast read's shape,
    and a search type's) is a 400 naming the path, as is the same on another route (the CapabilityStatement)."""
    _, http = both
    _outcome(http.get("/fhir/Patient?fam%FCly=x"), 400, "'fam%FCly'", "name")
    for path in ("/fhir/Patient/%FC", "/fhir/Patient/ab%ZZ", "/fhir/Pat%FCient?family=x"):
        issue = _outcome(http.get(path), 400, "URL path", path.split("?")[0])
        assert issue["expression"] == ["path"], issue
    _outcome(http.get("/fhir/metadata?mode=%FC"), 400, "'mode'")


def test_utf8_escapes_still_search_for_the_name_sent(both: tuple[Engine, TestClient], patient: str) -> None:
    """Guard: the same name escaped in UTF-8 is found (200), in the query and in the path's id."""
    _, http = both
    found = http.get(f"/fhir/Patient?family={quote(FAMILY)}&given=%E4%B8%BD")
    assert found.status_code == 200 and [e["resource"]["id"] for e in found.json()["entry"]] == [patient], found.text
    assert http.get(f"/fhir/Patient/{quote(patient)}").status_code == 200


def test_a_raw_byte_in_the_query_is_refused_by_the_same_rule() -> None:
    """A query's raw byte (a client that did not percent-encode ``王``) is what Starlette would read as Latin-1.
    uvicorn refuses such a target itself, under httptools and h11 alike (400 "Invalid HTTP request received",
    measured), so no HTTP client reaches the app with one; another ASGI server may pass it, and ``url_refusal``
    names the parameter then."""
    refused = url_refusal({"type": "http", "raw_path": b"/fhir/Patient", "query_string": "family=王".encode()})
    assert refused is not None and "'family'" in str(refused) and "0xE7" in str(refused), refused


# --- (3) Accept-Charset ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("charsets", ["iso-8859-1", "ISO-8859-1, us-ascii", "utf-8;q=0, *", "latin1;q=0.9, *;q=0"],
                         ids=["latin1", "ascii", "utf8-q0", "star-q0"])
def test_accept_charset_without_utf8_is_406(both: tuple[Engine, TestClient], patient: str, charsets: str) -> None:
    """On the search, the fast read, ``POST _search`` (also with a body ``_format``: it stands for Accept only) and
    the CapabilityStatement: 406 naming Accept-Charset, never a 200 in bytes the client said it cannot read."""
    _, http = both
    asked = {"Accept-Charset": charsets}
    for r in (http.get("/fhir/Patient", params={"family": FAMILY}, headers=asked),
              http.get(f"/fhir/Patient/{patient}", headers=asked),
              http.post("/fhir/Patient/_search", content=b"family=x&_format=json", headers={**asked, "Content-Type": FORM}),
              http.get("/fhir/metadata", headers=asked)):
        _outcome(r, 406, "Accept-Charset", "UTF-8")


@pytest.mark.parametrize("charsets", ["utf-8", "UTF8", "iso-8859-1, utf-8;q=0.5", "iso-8859-1, *;q=0.1",
                                      "utf-8;q=abc", ""], ids=["utf8", "alias", "second", "star", "unread-q", "blank"])
def test_accept_charset_admitting_utf8_is_served(both: tuple[Engine, TestClient], patient: str, charsets: str) -> None:
    _, http = both
    asked = {"Accept-Charset": charsets}
    assert http.get(f"/fhir/Patient/{patient}", headers=asked).status_code == 200
    assert http.get("/fhir/Patient", params={"family": FAMILY}, headers=asked).json()["total"] == 1
    metadata = http.get("/fhir/metadata", headers=asked)
    assert metadata.status_code == 200 and "Accept-Charset" in metadata.headers["vary"], metadata.headers


# --- (4) the operator's reason: no invisible characters ---------------------------------------------------------------


@pytest.fixture(scope="module", params=_BACKENDS)
def held(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, TestClient]]:
    """An engine on each backend with the shipped site (no aliases), and a client posting its HL7 (ord40's helpers)."""
    site = _aliased(tmp_path_factory.mktemp("http41site"), {})
    with _engine_on(request.param, tmp_path_factory.mktemp("http41"), site) as eng, _client(eng, "http41") as c:
        yield eng, c


def test_an_invisible_character_in_the_reason_is_400_naming_it(held: tuple[Engine, TestClient]) -> None:
    """``POST /admin/quarantine/{id}/owner``: a zero-width space splitting 核实 (a search for it misses), the tags
    spelling "OK" unseen, a BOM at the start, a soft hyphen, a joiner between two words, a lone surrogate sent as
    JSON's escape (no UTF-8 can keep it: not a 500) -- each 400 naming the code point, the change still held; then a
    reason with the marks and a doctor emoji (its joiner) is taken as typed."""
    engine, http = held
    ops = _operator(engine, "system/MessageHeader.cr", "ops-desk")
    msg = _held_message(http, "H41-REASON")
    for reason, said in (("已核\u200b实", "U+200B"), ("同一系统\U000e004f\U000e004b", "U+E004F"),
                         ("\ufeff同一系统", "U+FEFF"), ("同一\u00ad系统", "U+00AD"), ("同一\u200d系统", "U+200D"),
                         ("同一\u2060系统", "U+2060")):
        _outcome(_owner(http, msg, ops, reason=reason), 400, said)
    lone = http.post(f"/admin/quarantine/{msg}/owner", content=b'{"reason": "\\u540c\\u4e00\\ud800"}',
                     headers=ops | {"Content-Type": "application/json"})
    _outcome(lone, 400, "U+D800")
    assert engine.ingestor.messages.get(msg).get("held_claims") and not engine.ingestor.messages.get(msg).get("decision")
    typed = "接口\u200f更换，👩\u200d⚕\ufe0f 已核实"
    r = _owner(http, msg, ops, reason=typed)
    assert r.status_code == 200, r.text
    assert engine.ingestor.messages.get(msg)["decision"]["reason"] == typed


@pytest.mark.parametrize("body", [b"family=x&_format=application/json", b"%5Fformat=xml", b"%5f%66ormat=json", b"_format",
                                  b"a_format=1&_formats=2", b"_format=application%2Ffhir%2Bjson", b"x=1&&_format=json&",
                                  b"_format=a&_format=b", b"_format=json+x", b"family=%E7%8E%8B"])
def test_the_scan_before_the_caller_reads_format_as_the_form_does(body: bytes) -> None:
    """``fhir._form_formats`` (the scan ``_search_form`` makes before the caller is known, so an anonymous client's
    7 MiB form is not parsed on the event loop to be told 401) finds the ``_format`` values ``fhir._form`` (the
    route's parse) reads: plain or escaped names, blank values, repeats (each distinct value once, in the order first
    sent: httpfix41), ``+``; none in a form without one."""
    assert _form_formats(body) == list(dict.fromkeys(v for k, v in _form(body) if k == "_format"))
