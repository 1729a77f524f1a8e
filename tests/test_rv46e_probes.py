"""rv46e: review probes of the round's last read of the engine (``git diff 9ba8185f..HEAD -- adapters engine``):
``applications._one_universal_id`` / ``_same_system`` (systems compared by ``urlsplit``), reached from ``states`` and
``same_code`` and so from ``persons._its_own`` (``_stated_by``, ``_versions_stated_by``) and the site load
(``mistakes`` asking ``one_code``); and what an exception there does to the ingest.

Real HL7 v2.5.1 bytes over ``POST /hl7v2`` into the real store (SQLite, one engine for the module), read back over
``/fhir``, through rv46b's two cases (``_man_numbered_by``: a number the registrar gave, ``_versions_stated_by``;
``_copy_of_a_version_written_by``: a day-old copy of a version it wrote, ``_stated_by``). A probe that shows a defect
is a STRICT xfail naming its severity; controls pass plainly. See rv46e's report."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.convert import applications
from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.settings import Settings
from tests.hl7_calls import err_lines, post
from tests.module_store import alias_site, system_client
from tests.test_rv46b_probes import _copy_of_a_version_written_by, _filed_on, _man_numbered_by, _nothing_filed
from tests.test_rvidentity32_probes import MRN, adt, patients

HIS_URI = "HIS^http://his.example/app^URI"  # the registrar: its MSH-3 with its universal id, a URI
BROKEN = "HIS^http://[his.example/app^URI"  # another universal id (a URI urlsplit cannot split: '[' unclosed)
HOSPITAL = "2.16.840.1.113883.19.4.1"  # a hospital OID every application's MSH-3 carries (a common site)




@pytest.fixture(scope="module")
def engine_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, TestClient]]:
    """The shipped site as it is (no alias groups: the common configuration), SQLite, one engine for the module."""
    tmp = tmp_path_factory.mktemp("rv46e")
    settings = Settings(data_dir=tmp / "var", http_port=0, mllp_port=0, base_url="https://huren.example")
    with Engine(settings) as engine, system_client(engine, "rv46e") as client:
        yield engine, client


@pytest.fixture(scope="module")
def http(engine_http: tuple[Engine, TestClient]) -> TestClient:
    return engine_http[1]


# --- HIGH: a universal id urlsplit cannot split -- the person guard raises, the redo files the message unguarded

_BROKEN_URI = (
    "HIGH: applications._same_system (low46b/27763cb5) calls urllib.parse.urlsplit on any HD-2 universal_system "
    "reads as a URI (no white space), and urlsplit raises ValueError ('Invalid IPv6 URL') on an unclosed '[': "
    "persons._its_own -> same_code -> one_code -> states -> _two_universal_ids -> _one_universal_id raises inside "
    "the person guard (settle_against_store); the one-commit attempt fails, and the two-commit redo (engine/ingest.py "
    "_prepare) skips the item as 'converted and settled before' (converted was set before settle ran), so the "
    "unsettled conversion is written: another application's number/version is the registrar's word and the man's "
    "result is filed AA against the record's sex. At 9ba8185f: AE 205, nothing filed"
)


def test_a_number_under_an_unsplittable_uri_is_not_the_registrars_word(http: TestClient) -> None:
    ack, _ = _man_numbered_by(http, "R46EA", 501, HIS_URI, BROKEN)
    _nothing_filed(http, ack, "R46EA", "OBS")


def test_a_copy_of_a_version_an_unsplittable_uri_wrote_is_not_filed(http: TestClient) -> None:
    ack, _ = _copy_of_a_version_written_by(http, "R46EB", HIS_URI, BROKEN)
    _nothing_filed(http, ack, "R46EB", "GLU")


def test_a_number_given_to_a_registrar_with_an_unsplittable_uri_is_not_anothers_word(
    http: TestClient,
) -> None:
    ack, _ = _man_numbered_by(http, "R46EC", 503, BROKEN, HIS_URI)
    _nothing_filed(http, ack, "R46EC", "OBS")


_FAIL_OPEN = (
    "HIGH (pre-existing, made reachable by the round's urlsplit): engine/ingest.py Ingestor._prepare sets "
    "item.converted/converted_for BEFORE settle_against_store runs and catches only HL7Error around it; any other "
    "exception there fails _one_commit, _fresh keeps the conversion, the redo's _prepare finds the item converted for "
    "the same sender key and writes it as 'settled before' -- the person guard's refusal (AE 205) never asked: the "
    "message is filed AA. Shown with one injected failure of the first comparison (the same path a ValueError from "
    "urlsplit takes)"
)


def test_a_failure_inside_the_person_guard_does_not_file_the_message(
    http: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registrar ``HIS^http://his.example/app^URI``; ``HIS^http://his.example/APP^URI`` (another URI: its path's
    case, RFC 3986 -- refused AE 205 without the fault, rv46c's control) gives the man's number. The first
    comparison of the two systems fails once (a ValueError, as urlsplit's); the message must not be filed AA."""
    real, failed = applications._same_system, []

    def once(one: str, other: str) -> bool:
        if not failed:
            failed.append((one, other))
            raise ValueError("injected: the first comparison fails once")
        return real(one, other)

    with monkeypatch.context() as during:
        during.setattr(applications, "_same_system", once)
        ack, _ = _man_numbered_by(http, "R46ED", 505, HIS_URI, "HIS^http://his.example/APP^URI")
    assert failed  # (the premise: the guard did compare, and failed)
    assert ack_code_of(ack) != "AA", err_lines(ack)


def test_control_without_the_fault_another_uri_path_is_refused(http: TestClient) -> None:
    """Control (the same case without the injected failure): AE 205 at PID-3, nothing filed."""
    ack, _ = _man_numbered_by(http, "R46EE", 507, HIS_URI, "HIS^http://his.example/APP^URI")
    _nothing_filed(http, ack, "R46EE", "OBS")


# --- HIGH: a bare URI code (MSH-3.1) is still compared case aside, where two typed URIs are compared by RFC 3986

_BARE_URI = (
    "HIGH: applications.states' bare-code branch keeps same_text(hd[1], code) (case aside) before "
    "_one_universal_id, so the registrar whose interface sends its URI as MSH-3.1 (stored bare "
    "http://his.example/app) and ^http://his.example/APP^URI -- another universal id by the round's own rule "
    "(_same_system, RFC 3986: rv46c LOW 3; ^...app^URI and ^...APP^URI are refused apart) -- are one_code; since "
    "med46's persons._its_own asks same_code (string equality at 9ba8185f), that application's number/version is "
    "the registrar's word and the man's result is filed AA against the record's sex (AE 205 at 9ba8185f). "
    "Fix: the bare branch by _one_universal_id(hd, _universal_hd(code)) alone"
)

BARE_URI = [
    ("http://his.example/app", "^http://his.example/APP^URI"),
    ("^http://his.example/APP^URI", "http://his.example/app"),
]


@pytest.mark.parametrize("registers, gives", BARE_URI, ids=["bare-registers", "bare-gives"])
def test_a_bare_uri_and_a_uri_differing_in_its_paths_case_are_two_applications(
    http: TestClient, registers: str, gives: str
) -> None:
    at = BARE_URI.index((registers, gives))
    tag = f"R46EH{at}"
    ack, _ = _man_numbered_by(http, tag, 551 + 2 * at, registers, gives)
    _nothing_filed(http, ack, tag, "OBS")


def test_control_two_typed_uris_differing_in_their_paths_case_are_two_applications(http: TestClient) -> None:
    """Control: the same two ids both typed (``^...app^URI``, ``^...APP^URI``): refused AE 205, nothing filed."""
    ack, _ = _man_numbered_by(
        http, "R46EJ", 561, "^http://his.example/app^URI", "^http://his.example/APP^URI"
    )
    _nothing_filed(http, ack, "R46EJ", "OBS")


# --- common configurations: names only, one OID per application -- what the round's callers answer

OWN = [
    ("HIS", "HIS"),
    ("HIS", "his"),  # (a name, case aside: med46's own word)
    (f"HIS^{HOSPITAL}^ISO", "HIS"),  # (one side without a universal id: HD-1 decides, HL7 2.A.33)
    (f"^{HOSPITAL}^ISO", f"^urn:oid:{HOSPITAL}^URI"),  # (low46b: one OID two spellings)
    (HIS_URI, "HIS^HTTP://HIS.EXAMPLE/app^URI"),  # (scheme and host case aside: rv46c LOW 3)
]


@pytest.mark.parametrize(
    "registers, gives", OWN, ids=["name", "name-lower", "oid-then-name", "oid-urn", "uri-host"]
)
def test_control_the_registrars_own_forms_give_its_number(
    http: TestClient, registers: str, gives: str
) -> None:
    at = OWN.index((registers, gives))
    tag = f"R46EF{at}"
    ack, him = _man_numbered_by(http, tag, 511 + 2 * at, registers, gives)
    _filed_on(http, ack, tag, "OBS", him)


APART = [
    ("HIS", "EMR"),
    # (the hospital's OID in every MSH-3: names tell them apart)
    (f"HIS^{HOSPITAL}^ISO", f"EMR^{HOSPITAL}^ISO"),
    # (one name, two OIDs: two applications)
    ("HIS^1.2.156.112604.1.3.1^ISO", "HIS^1.2.156.112604.1.3.2^ISO"),
]


@pytest.mark.parametrize("registers, gives", APART, ids=["two-names", "hospital-oid", "two-oids"])
def test_control_another_application_does_not_give_the_registrars_number(
    http: TestClient, registers: str, gives: str
) -> None:
    at = APART.index((registers, gives))
    tag = f"R46EG{at}"
    ack, _ = _man_numbered_by(http, tag, 531 + 2 * at, registers, gives)
    _nothing_filed(http, ack, tag, "OBS")


# --- the site load


_LOAD = (
    "LOW: mappings.site's application_aliases check -> applications.mistakes -> one_code -> states -> "
    "_same_system: a form whose URI urlsplit cannot split (accepted by form_mistake, loaded at 9ba8185f) beside "
    "another group's URI form stops the load with a bare ValueError traceback instead of a SiteError naming the "
    "file, line and form"
)


def test_an_unsplittable_uri_form_is_loaded_or_refused_by_file_and_line(tmp_path: Path) -> None:
    from mappings.site import Site, SiteError

    site = alias_site(
        tmp_path / "site", {"FNXRMYY": [[HIS_URI, "HISV2"], ["LIS^http://[lis.example/app^URI", "LIS"]]}
    )
    try:  # (loaded, as at 9ba8185f, or refused naming the form: either is an answer; a ValueError is none)
        Site.load(Settings(site=site))
    except SiteError as refused:
        assert "application_aliases.FNXRMYY[1][0]" in str(refused), str(refused)


def test_control_the_documented_and_common_alias_sites_load(tmp_path: Path) -> None:
    """Control: senders.yaml's documented forms (``[LIS, ^<OID>^ISO]``; ``[LIS^<OID>^ISO, LAB^<OID>^ISO]``), one
    OID per application, and a hospital OID every application's MSH-3 carries, load unchanged by the round's new
    refusal (``mistakes`` asking ``one_code``)."""
    from mappings.site import Site

    oid = "2.16.840.1.113883.19.4.6"
    groups = {
        "FNZYY": [["LIS", f"^{oid}^ISO"], [f"LAB^{oid}9^ISO", "LAB"]],
        "FNXRMYY": [
            [f"EMR^{HOSPITAL}^ISO", "EMR"],
            [f"RIS^{HOSPITAL}^ISO", "RIS"],
            [f"LIS^{HOSPITAL}^ISO", f"LAB^{HOSPITAL}^ISO"],
            ["HIS", "^1.2.156.112604.1.3.1^ISO", "^http://his.example/app^URI"],
        ],
    }
    loaded = Site.load(Settings(site=alias_site(tmp_path / "site", groups)))
    assert loaded.tables["senders"]["application_aliases"] == groups


# --- the new Conflict (AE 207) on SQLite


def test_control_on_sqlite_a_registration_over_an_earlier_releases_row_is_no_conflict(
    engine_http: tuple[Engine, TestClient],
) -> None:
    """Control: on SQLite (one writer: a conditional write never loses there) the HIS's A04 meeting, under its key, a
    row an earlier release wrote with neither message nor instant (``_as_read``: both absent) is answered AA -- not
    the new ``Conflict``'s AE 207 -- and the row is keyed whole (``_rekey``), the earlier row standing as the first."""
    from engine.messages import _WHOLE

    engine, http = engine_http
    tag = "R46EK"
    ack = post(http, adt(f"{tag}a", f"{tag}^^^FNXRMYY^MR", "丁^三", "19801020", "F", app="EMR"))
    assert ack_code_of(ack) == "AA", err_lines(ack)
    (record,) = patients(http, f"{MRN}|{tag}")
    table = engine.ingestor.messages.registrations
    key = f"Patient/{record['id']}|HIS"
    table.replace({"_id": key, "record": f"Patient/{record['id']}", "application": "HIS"})
    ack = post(http, adt(f"{tag}b", f"{tag}^^^FNXRMYY^MR", "丁^三", "19801020", "F", app="HIS"))
    assert ack_code_of(ack) == "AA", err_lines(ack)
    assert (table.get(key) or {}).get(_WHOLE) is True, table.get(key)
