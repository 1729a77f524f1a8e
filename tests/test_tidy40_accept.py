"""tidy40: an ``Accept`` range's parameters other than q, and a ``_format``'s, as FHIR R4 reads them; every row of
the fidelity page in both languages.

R4 http.html#version-parameter: ``application/fhir+json; fhirVersion=4.0`` asks for R4 -- served; a range naming
another release (``fhirVersion=3.0``) names a representation huren has not, so unless another range or a wildcard
admits R4 the answer is 406 with an OperationOutcome (it had been R4 JSON under a 200: the parameter was passed
over). ``charset=utf-8`` is what huren writes; another character set is not. The rule is ``engine.api.formats``'
(``SERVED_PARAMETERS``), on the routed /fhir, the fast read and ``metadata`` alike; a body's ``Content-Type`` naming
another release is 415 (``formats.body_served``).

The fidelity page had drawn an unmapped code's and an unknown segment's rows in Chinese alone, every other kind with
its English beneath (``kinds.yaml``).

Real HTTP through FastAPI (TestClient) into the real store on each backend (rv38g's module engine and feed); real
HL7 v2 over ``POST /hl7v2``; the operator signed in with password and TOTP.
"""

from __future__ import annotations

import html
import json
import re
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from engine.api.ui_fidelity import _KINDS, _bilingual
from tests.test_rv38g_probes import HTML, OTHER, _row, fed, http, module_eng, operator
from tests.test_srfix35_order_code import B, oru, send

__all__ = ["fed", "http", "module_eng", "operator"]

R4 = "application/fhir+json"


def _patient_read(http: TestClient) -> str:
    """The address of one stored Patient's read (the fast read: no query string)."""
    found = http.get("/fhir/Patient", params={"_count": "1"}).json()
    return f"/fhir/Patient/{found['entry'][0]['resource']['id']}"


@pytest.mark.parametrize(("accept", "label"), [
    ("application/fhir+json; fhirVersion=4.0", R4),
    ('application/fhir+json;fhirVersion="4.0"', R4),
    ("application/fhir+json; fhirversion=4.0.1", R4),  # R4's full version, as the CapabilityStatement states it
    ("application/json; charset=utf-8", "application/json"),
    ("application/fhir+json; charset=UTF-8; fhirVersion=4.0; q=0.9", R4),
    ("application/fhir+json; fhirVersion=3.0, application/fhir+json; fhirVersion=4.0; q=0.5", R4),
    ("application/fhir+json; fhirVersion=3.0, */*;q=0.1", R4),  # the client takes anything after STU3
    ("application/fhir+json; version=2", R4),  # a parameter that says nothing huren can tell: passed over
])
def test_an_accept_naming_r4_or_utf8_is_served(fed: object, http: TestClient, accept: str, label: str) -> None:
    for address in ("/fhir/metadata", "/fhir/Patient?_count=1", _patient_read(http)):
        r = http.get(address, headers={"Accept": accept})
        assert r.status_code == 200, (address, accept, r.text)
        assert r.headers["content-type"].startswith(label), (address, accept, r.headers["content-type"])
        assert r.json()["resourceType"] in ("CapabilityStatement", "Bundle", "Patient"), r.text


@pytest.mark.parametrize("accept", [
    "application/fhir+json; fhirVersion=3.0",
    "application/fhir+json; fhirVersion=5.0",
    "application/json; fhirVersion=1.0",
    "application/fhir+json; fhirVersion=3.0; q=abc",  # its weight unread: it still names STU3 only
    "application/fhir+json; charset=iso-8859-1",
    "application/fhir+json; fhirVersion=3.0, application/fhir+xml",
])
def test_an_accept_naming_another_fhir_version_is_406(fed: object, http: TestClient, accept: str) -> None:
    for address in ("/fhir/metadata", "/fhir/Patient?_count=1", _patient_read(http)):
        r = http.get(address, headers={"Accept": accept})
        assert r.status_code == 406, (address, accept, r.status_code, r.text)
        outcome = r.json()
        assert outcome["resourceType"] == "OperationOutcome", outcome
        assert outcome["issue"][0]["code"] == "not-supported" and "fhirVersion=4.0" in r.text, outcome


@pytest.mark.parametrize(("fmt", "status"), [
    ("application/fhir+json;fhirVersion=4.0", 200), ("json", 200),
    ("application/fhir+json;fhirVersion=3.0", 406), ("application/json;charset=iso-8859-1", 406),
])
def test_a_format_naming_another_fhir_version_is_406(fed: object, http: TestClient, fmt: str, status: int) -> None:
    """``_format`` overrides Accept (R4 http.html): its parameters are read as a range's."""
    for address in ("/fhir/metadata", "/fhir/Patient"):
        r = http.get(f"{address}?_format={quote(fmt)}")
        assert r.status_code == status, (address, fmt, r.text)
        if status == 406:
            assert r.json()["resourceType"] == "OperationOutcome", r.text


@pytest.mark.parametrize(("content_type", "status"), [
    ("application/fhir+json; fhirVersion=4.0", 201), ("application/fhir+json; charset=utf-8", 201),
    ("application/json;charset=UTF-8;fhirVersion=4.0.1", 201),
    ("application/fhir+json; fhirVersion=3.0", 415), ("application/fhir+json; charset=iso-8859-1", 415),
])
def test_a_body_of_another_fhir_version_is_415(fed: object, http: TestClient, content_type: str, status: int) -> None:
    """A create whose Content-Type names another FHIR release (or character set) is not read as R4 in UTF-8: 415 with
    an OperationOutcome, nothing written; R4 and UTF-8 named are created as a bare type is."""
    family = f"TIDY40-{abs(hash(content_type)) % 10**8}"
    body = json.dumps({"resourceType": "Patient", "name": [{"family": family}], "gender": "female"}).encode()
    r = http.post("/fhir/Patient", content=body, headers={"Content-Type": content_type})
    assert r.status_code == status, (content_type, r.status_code, r.text)
    found = http.get("/fhir/Patient", params={"family": family}).json().get("entry") or []
    if status == 415:
        assert r.json()["resourceType"] == "OperationOutcome" and "fhirVersion=4.0" in r.text, r.text
        assert found == [], found
    else:
        assert [e["resource"]["id"] for e in found] == [r.json()["id"]], found


def test_every_row_of_the_fidelity_page_has_its_english(fed: object, http: TestClient,
                                                        operator: TestClient) -> None:
    """An unmapped code and a segment huren does not read, sent by the county hospital: each row says what it is
    in Chinese, its English beneath, as every other kind's row does."""
    message = oru("TD40-F", item="TD40Q^某项^L").replace(B, OTHER) + "ZTD|1|not read\n"
    assert "MSA|AA" in send(http, message)
    page = operator.get("/admin/fidelity", params={"institution": OTHER}, headers={"Accept": HTML}).text
    for value, english in (("TD40Q", "Code 'TD40Q' is not in the site's code tables"),
                           ("ZTD", "Segment 'ZTD' is not one huren reads")):
        found = re.search(r'<div class="said">(.*?)<small class="en">(.*?)</small>', _row(page, value), re.S)
        assert found is not None and english in html.unescape(found[2]), (value, _row(page, value))
    rows = [r for r in re.findall(r"<tr>(.*?)</tr>", page, re.S) if 'data-label="说明 Detail"' in r]
    assert rows and all('<small class="en">' in r for r in rows), rows


def test_every_kind_of_row_is_worded_in_both_languages() -> None:
    """The shipped words (``kinds.yaml``): each kind's detail is Chinese and then English, but a conversion
    warning's, whose English is the ERR text the sender was answered (shown beneath it)."""
    fill = {"value": "X1", "where": "OBX-3", "at": "OBX-3 的", "kind": "k", "said": "s"}
    kinds = _KINDS["kinds"]  # as the page loaded them (checked against its schema)
    alone = [kind for kind, words in kinds.items()
             if kind != "warning" and not _bilingual(words["detail"].format(**fill))[1]]
    assert alone == [], alone
