"""rv46c: review probes of ``applications.same_code`` as it stands at d3905783 (med46's ``persons._its_own`` asking
it, e9fa2946's ``_two_universal_ids``, d3905783's ``as_sent``-first and ``_universal_hd``), after rv46a and rv46b.

A site declaring alias groups of FNXRMYY the load (``applications.mistakes``) accepts: two applications both named
``HIS`` by HD-1, told apart by their OIDs (HL7 v2.5.1 2.A.33: two applications), each with a second interface that
sends its own OID alone (``[HIS^<OID1>^ISO, ^<OIDA>^ISO]``, ``[HIS^<OID2>^ISO, ^<OIDB>^ISO]``); an HIS that moved to
a URI (``[HISU, ^http://his.example/app^URI]``); one that moved to an OID (``[HISN, ^<OID47>^ISO]``). Real HL7 v2.5.1
bytes over ``POST /hl7v2`` into the real store (SQLite, one engine for the module), read back over ``/fhir``, through
rv46b's two cases (``_man_numbered_by``: a number the registrar gave, ``_versions_stated_by``; ``_copy_of_a_version
_written_by``: a day-old copy of a version it wrote, ``_stated_by``). A probe that shows a defect is a STRICT xfail
naming its severity; controls pass plainly. See rv46c's report."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.settings import Settings
from tests.hl7_calls import err_lines, post
from tests.module_store import alias_site, system_client
from tests.test_rv46b_probes import _copy_of_a_version_written_by, _filed_on, _man_numbered_by, _nothing_filed
from tests.test_rvidentity32_probes import MRN, adt, patients

OID1, OID2 = "1.2.156.112604.1.3.1", "1.2.156.112604.1.3.2"  # two HIS applications (HD-1 HIS both)
OIDA, OIDB = "1.2.156.112604.1.3.11", "1.2.156.112604.1.3.12"  # each one's second interface, its OID alone
OID47 = "2.16.840.1.113883.19.4.47"
OID48 = (
    "2.16.840.1.113883.19.4.48"  # the HIS HISM's OID, and (by the site's mistake) an EMR2 interface's MSH-3.1
)
URI = "http://his.example/app"
GROUPS = [
    [f"HIS^{OID1}^ISO", f"^{OIDA}^ISO"],
    [f"HIS^{OID2}^ISO", f"^{OIDB}^ISO"],
    ["HISU", f"^{URI}^URI"],
    ["HISN", f"^{OID47}^ISO"],
    ["EMR2", OID48],
]
# (rv46c had HISM's group [HISM, ^<OID48>^ISO] here too: since the lead's fix the load refuses the two together --
# test_a_bare_oid_in_one_group_and_a_universal_id_in_another_stops_the_site_load -- so the module's site leaves it
# out and the EMR2 probes below ask HISM as an application the site lists in no group)


def _site(folder: Path, groups: list[list[str]]) -> Path:
    return alias_site(folder, {"FNXRMYY": groups})


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, TestClient]]:
    """The shipped site plus ``GROUPS`` as FNXRMYY's ``application_aliases``, on mongomock (a MongoDB without
    transactions: the registrations probe's race is only possible there; rv46b saw its findings on both backends)."""
    tmp = tmp_path_factory.mktemp("rv46c")
    settings = Settings(
        data_dir=tmp / "var",
        http_port=0,
        mllp_port=0,
        base_url="https://huren.example",
        site=_site(tmp / "site", GROUPS),
        mongodb_uri="mongomock://",
    )
    with Engine(settings) as engine, system_client(engine, "rv46c") as client:
        yield engine, client


@pytest.fixture(scope="module")
def aliased(both: tuple[Engine, TestClient]) -> TestClient:
    """``both``'s client."""
    return both[1]


# --- MED: a bare stored HIS is stated by a form of each of two groups; the first group listed wins

_FIRST_GROUP = (
    "MED: applications.same_code -- group() returns the FIRST alias group one of whose forms states a code, and a "
    "registrar stored as bare HIS (its MSH-3 HIS alone) is stated by HIS^<OID1>^ISO and by HIS^<OID2>^ISO (HD-1 "
    "decides where one side has no universal id) -- two applications by 2.A.33, two groups mistakes() accepts. "
    "So ^<OIDA>^ISO (group 0's other interface) is the bare HIS's word by the order of senders.yaml alone (group 1's "
    "^<OIDB>^ISO is refused), and its number/version filed against the record's sex; the direct path "
    "(sends_as/forms, as_sent) reads an MSH-3 HIS as no form of either group"
)

AMBIGUOUS = [("HIS", f"^{OIDA}^ISO"), (f"^{OIDA}^ISO", "HIS")]
AMBIGUOUS_IDS = ["bare-his-registers-oida-gives", "oida-registers-bare-his-gives"]


@pytest.mark.parametrize("registers, gives", AMBIGUOUS, ids=AMBIGUOUS_IDS)
def test_a_bare_his_stated_by_two_groups_is_no_one_groups_word(
    aliased: TestClient, registers: str, gives: str
) -> None:
    at = AMBIGUOUS.index((registers, gives))
    tag = f"R46CA{at}"
    ack, _ = _man_numbered_by(aliased, tag, 201 + 2 * at, registers, gives)
    _nothing_filed(aliased, ack, tag, "OBS")


def test_a_copy_of_group_0s_version_is_not_the_word_of_a_bare_his(aliased: TestClient) -> None:
    ack, _ = _copy_of_a_version_written_by(aliased, "R46CB", "HIS", f"^{OIDA}^ISO")
    _nothing_filed(aliased, ack, "R46CB", "GLU")


def test_control_the_second_groups_interface_is_not_a_bare_his(aliased: TestClient) -> None:
    """Control (the other half of the defect): group 1's ``^<OIDB>^ISO`` gives the bare HIS's record his number:
    refused AE 205 -- as the probe above says group 0's should be, the two groups being alike but for their order."""
    ack, _ = _man_numbered_by(aliased, "R46CC", 211, "HIS", f"^{OIDB}^ISO")
    _nothing_filed(aliased, ack, "R46CC", "OBS")


OWN = [
    (f"HIS^{OID1}^ISO", f"^{OIDA}^ISO"),
    (f"^{OIDB}^ISO", f"HIS^{OID2}^ISO"),
    (f"HIS^{OID1}^ISO", "HIS"),
]
OWN_IDS = ["group0-name-then-interface", "group1-interface-then-name", "his-oid1-then-bare-his"]


@pytest.mark.parametrize("registers, gives", OWN, ids=OWN_IDS)
def test_control_each_groups_own_interfaces_are_one_application(
    aliased: TestClient, registers: str, gives: str
) -> None:
    """Control: two forms of one group (d3905783: as the site wrote them), and HL7's rule (the registrar
    ``HIS^<OID1>^ISO``'s correction sent as ``HIS``, no universal id: HD-1 decides) -- filed (AA)."""
    at = OWN.index((registers, gives))
    tag = f"R46CD{at}"
    ack, him = _man_numbered_by(aliased, tag, 221 + 2 * at, registers, gives)
    _filed_on(aliased, ack, tag, "OBS", him)


APART = [
    (f"HIS^{OID1}^ISO", f"^{OIDB}^ISO"),
    (f"^{OIDA}^ISO", f"HIS^{OID2}^ISO"),
    (f"^{OIDA}^ISO", f"^{OIDB}^ISO"),
]
APART_IDS = ["his-oid1-then-oidb", "oida-then-his-oid2", "oida-then-oidb"]


@pytest.mark.parametrize("registers, gives", APART, ids=APART_IDS)
def test_control_the_two_groups_stay_two_applications(
    aliased: TestClient, registers: str, gives: str
) -> None:
    """Control: a form of one group against a form of the other (both with universal ids): refused AE 205."""
    at = APART.index((registers, gives))
    tag = f"R46CE{at}"
    ack, _ = _man_numbered_by(aliased, tag, 241 + 2 * at, registers, gives)
    _nothing_filed(aliased, ack, tag, "OBS")


# --- LOW: _two_universal_ids compares two readable universal ids with != (case counts), same_hd with same_text

_CASE = (
    "LOW: applications._two_universal_ids compares the systems universal_system reads with != while same_hd (and "
    "the text branch beside it) compare case aside (same_text): the registrar's URI/OID with only its scheme and "
    "host (RFC 3986) or the URN prefix (RFC 8141) in capitals -- one id by every other reader -- is 'two "
    "applications', the moved interface's own number refused AE 205, where PAS^PAS.A.EXAMPLE^dns (a DNS id in "
    "another case) is taken (rv46b's control)"
)

SPELLED = [
    (f"^{URI}^URI", "HISU^HTTP://HIS.EXAMPLE/app^URI"),
    (f"^{OID47}^ISO", f"HISN^URN:OID:{OID47}^URI"),
]
SPELLED_IDS = ["uri-scheme-host-in-capitals", "urn-oid-prefix-in-capitals"]


@pytest.mark.parametrize("registers, gives", SPELLED, ids=SPELLED_IDS)
def test_the_registrars_universal_id_in_capitals_gives_its_number(
    aliased: TestClient, registers: str, gives: str
) -> None:
    at = SPELLED.index((registers, gives))
    tag = f"R46CF{at}"
    ack, him = _man_numbered_by(aliased, tag, 261 + 2 * at, registers, gives)
    _filed_on(aliased, ack, tag, "OBS", him)


SPELLED_CONTROL = [
    (f"^{URI}^URI", f"HISU^{URI}^URI"),
    (f"^{OID47}^ISO", f"HISN^urn:oid:{OID47}^URI"),
    (f"^{OID47}^ISO", OID47),
]
SPELLED_CONTROL_IDS = ["uri-as-written", "urn-oid-lower", "bare-oid-msh3-1"]


@pytest.mark.parametrize("registers, gives", SPELLED_CONTROL, ids=SPELLED_CONTROL_IDS)
def test_control_the_registrars_universal_id_as_written_gives_its_number(
    aliased: TestClient, registers: str, gives: str
) -> None:
    """Control: the group's name with the registrar's universal id as written (or as ``urn:oid:``, or its OID as
    MSH-3.1 alone): its number, filed (AA)."""
    at = SPELLED_CONTROL.index((registers, gives))
    tag = f"R46CG{at}"
    ack, him = _man_numbered_by(aliased, tag, 281 + 2 * at, registers, gives)
    _filed_on(aliased, ack, tag, "OBS", him)


_AS_TEXT = (
    "LOW: applications.states compares a universal id as text (same_text of HD-2s, and a bare universal code against "
    "HD-2), never as the system universal_system reads (d3905783 compares systems only in _two_universal_ids, a veto, "
    "never to say 'one'): the registrar ^<OID47>^ISO's own id sent without a name as ^urn:oid:<OID47>^URI, or as "
    "the bare MSH-3.1 urn:oid:<OID47>, is no form of its group and no one_code -- its number refused AE 205, where "
    "HISN^urn:oid:<OID47>^URI (with the group's name) is taken. Fix: states/one_code to compare universal ids by "
    "universal_system (same_hd's rule), a bare universal code by _universal_hd"
)

URN = [(f"^{OID47}^ISO", f"^urn:oid:{OID47}^URI"), (f"^{OID47}^ISO", f"urn:oid:{OID47}")]
URN_IDS = ["nameless-urn-uri", "bare-urn-msh3-1"]


@pytest.mark.parametrize("registers, gives", URN, ids=URN_IDS)
def test_the_registrars_oid_as_a_nameless_urn_gives_its_number(
    aliased: TestClient, registers: str, gives: str
) -> None:
    at = URN.index((registers, gives))
    tag = f"R46CN{at}"
    ack, him = _man_numbered_by(aliased, tag, 341 + 2 * at, registers, gives)
    _filed_on(aliased, ack, tag, "OBS", him)


URI_APART = [
    (f"^{URI}^URI", "HISU^http://his.example/APP^URI"),  # (a URI's path is case-sensitive: another resource)
    (f"^{URI}^URI", f"urn:oid:{OID47}"),  # (a URN spelled as a bare MSH-3.1: another universal id)
    (f"^{OID47}^ISO", f"urn:oid:{OID1}"),
    (f"^{OID47}^ISO", f"HISN^{OID47}^L"),  # (HD-3 L: a local id, not the ISO OID by HL7's HD rule)
    (f"^{OID47}^ISO", f"HISN^{OID47}^DNS"),
]
URI_APART_IDS = [
    "uri-path-in-capitals",
    "bare-urn-of-another-id",
    "bare-urn-of-another-oid",
    "oid-digits-type-l",
    "oid-digits-type-dns",
]


@pytest.mark.parametrize("registers, gives", URI_APART, ids=URI_APART_IDS)
def test_control_another_universal_id_stays_apart(aliased: TestClient, registers: str, gives: str) -> None:
    """Control: another resource (a URI's path in capitals), a bare ``urn:oid:`` of another OID: refused AE 205."""
    at = URI_APART.index((registers, gives))
    tag = f"R46CH{at}"
    ack, _ = _man_numbered_by(aliased, tag, 301 + 2 * at, registers, gives)
    _nothing_filed(aliased, ack, tag, "OBS")


# --- MED: a bare OID name form in one group, that OID as a universal id in another: the load takes it, same_code
# reads the bare OID as the first group's

_OID_TWICE = (
    "MED: applications.mistakes asks same_hd(one_table=True), which never reads a bare OID name form (EMR2's "
    "2.16.840.1.113883.19.4.48, an MSH-3.1) as the universal id ^<OID48>^ISO of HISM's group, while states "
    "(universal_code) and _universal_hd (d3905783) do: the site loads, and same_code's group() puts the stored bare "
    "OID -- which the site wrote as EMR2's (declared(), as_sent) -- in HISM's group too (the first listed), so the "
    "EMR2 interface's number is HISM's word and the man's result filed against the record's sex; sends_as reads "
    "the MSH-3 as EMR2 only. Fix: mistakes() to refuse a form one_code/states reads as another group's form"
)


def test_an_interface_the_site_names_emr2_is_not_the_his_by_its_oid(aliased: TestClient) -> None:
    ack, _ = _man_numbered_by(aliased, "R46CK", 321, "HISM", OID48)
    _nothing_filed(aliased, ack, "R46CK", "OBS")


def test_a_bare_oid_the_site_names_emr2_does_not_take_the_his_number(aliased: TestClient) -> None:
    ack, _ = _man_numbered_by(aliased, "R46CL", 323, OID48, "HISM")
    _nothing_filed(aliased, ack, "R46CL", "OBS")


def test_a_bare_oid_in_one_group_and_a_universal_id_in_another_stops_the_site_load(tmp_path: Path) -> None:
    from mappings.site import Site, SiteError

    site = _site(tmp_path / "site", [["HISM", f"^{OID48}^ISO"], ["EMR2", OID48]])
    with pytest.raises(SiteError) as raised:
        Site.load(Settings(site=site))
    assert "application_aliases.FNXRMYY[1][1]" in str(raised.value), str(raised.value)


def test_control_the_site_named_emr2_interface_is_emr2(aliased: TestClient) -> None:
    """Control: the bare OID and EMR2, one group as the site wrote them: its number is EMR2's word (filed)."""
    ack, him = _man_numbered_by(aliased, "R46CM", 325, "EMR2", OID48)
    _filed_on(aliased, ack, "R46CM", "OBS", him)


# --- the load: a nameless form of a type same_hd does not read names nothing; one OID in two groups is refused


def test_control_a_nameless_dns_form_stops_the_site_load(tmp_path: Path) -> None:
    """Control: ``^emr.a.example^DNS`` (no HD-1, a universal id of a type no comparison reads) names no application:
    refused at the load -- so one such form cannot sit in two groups unseen (``mistakes``' same_hd reads it as
    naming nothing, form_mistake refuses it first)."""
    from mappings.site import Site, SiteError

    site = _site(tmp_path / "site", [["EMR", "^emr.a.example^DNS"], ["PAS", "^EMR.A.EXAMPLE^DNS"]])
    with pytest.raises(SiteError) as raised:
        Site.load(Settings(site=site))
    assert "application_aliases.FNXRMYY[0][1]" in str(raised.value), str(raised.value)


def test_control_one_oid_in_two_groups_stops_the_site_load(tmp_path: Path) -> None:
    """Control: one OID (a type same_hd reads) in two groups, case aside: refused, naming the second group's form."""
    from mappings.site import Site, SiteError

    site = _site(tmp_path / "site", [["EMR", f"^{OID47}^ISO"], ["PAS", f"^{OID47}^iso"]])
    with pytest.raises(SiteError) as raised:
        Site.load(Settings(site=site))
    assert "application_aliases.FNXRMYY[1][1]" in str(raised.value), str(raised.value)


# --- LOW: low46's note_registrations -- every try lost, the message is AA and its registration is in no row

_LOST = (
    "LOW: engine.messages.MessageStore.note_registrations -- when all _REKEY_TRIES conditional writes lose (another "
    "process writes a LATER registration of the same record and registrar under its key each time: a MongoDB "
    "without transactions), it logs a warning and returns: the message is filed and ACKed AA while the table holds "
    "the later registration as this registrar's first -- its docstring's 'the ACK never answers for a registration "
    "the table lacks' broken. Fix: on exhaustion raise (the ingest's retryable failure: no AA), or keep reading "
    "until _first_stands or the conditional write succeeds (each loss is a newer row; ours is older and wins)"
)


def test_a_registration_acked_aa_is_the_tables_row_when_every_try_loses(
    both: tuple[Engine, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The EMR registers 丁一 (A04); the HIS's A04 registers her too. Between the HIS's filing reading its key
    (``record|HIS``) and each conditional write, another process writes there a registration of the HIS received
    LATER (9999-...), ``_REKEY_TRIES`` times and once before the first write. The HIS's A04 is the first registration
    received of that registrar: if it is answered AA, its row must be the table's."""
    from engine.messages import _REKEY_TRIES

    engine, http = both
    tag = "R46CR"
    ack = post(http, adt(f"{tag}a", f"{tag}^^^FNXRMYY^MR", "丁^一", "19801020", "F", app="EMR"))
    assert ack_code_of(ack) == "AA", err_lines(ack)
    (record,) = patients(http, f"{MRN}|{tag}")
    table = engine.ingestor.messages.registrations
    key = f"Patient/{record['id']}|HIS"
    find, get, meanwhile = table.find, table.get, []

    def later() -> None:
        meanwhile.append(key)
        table.replace(
            {
                "_id": key,
                "record": f"Patient/{record['id']}",
                "application": "HIS",
                "whole": True,
                "received_at": f"9999-12-31T00:00:0{len(meanwhile)}Z",
                "message": f"m-{len(meanwhile)}",
            }
        )

    def found_meanwhile(query: dict, *args: object, **kwargs: object) -> object:
        read = find(query, *args, **kwargs)
        if key in str(query) and not meanwhile:
            later()
        return read

    def got_meanwhile(doc_id: str) -> object:
        read = get(doc_id)
        if doc_id == key and 0 < len(meanwhile) <= _REKEY_TRIES:
            later()
        return read

    with monkeypatch.context() as during:
        during.setattr(table, "find", found_meanwhile)
        during.setattr(table, "get", got_meanwhile)
        ack = post(http, adt(f"{tag}b", f"{tag}^^^FNXRMYY^MR", "丁^一", "19801020", "F", app="HIS"))
    assert len(meanwhile) > _REKEY_TRIES  # (the premise: every try lost)
    row = table.get(key) or {}
    assert ack_code_of(ack) != "AA" or row.get("control_id") == f"{tag}b", (err_lines(ack), row)
