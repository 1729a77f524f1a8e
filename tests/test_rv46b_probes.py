"""rv46b: review probes of med46's ``persons._its_own`` and the lead's fix e9fa2946 (``applications.same_code``:
``_two_universal_ids`` -- two stored codes each with a universal id that differ are two applications, whatever alias
group) -- range 9ba8185f..HEAD of adapters/convert/applications.py and persons.py.

A site declaring legitimate alias groups of FNXRMYY (senders.yaml ``application_aliases``, accepted by the load's
``applications.mistakes``): the HIS whose interface moved from its name to its OID (``[HIS, ^<OID45>^ISO]``), an EMPI
whose vendor change gave it another OID (``[EMPI^<OID8>^ISO, EMPI^<OID9>^ISO]``), a PAS that moved from its DNS id to
an OID (``[PAS^pas.a.example^DNS, ^<OID46>^ISO]``), a lab whose OID changed (``[LAB^<OID1>^ISO, LAB^<OID2>^ISO]``). Real HL7 v2.5.1 bytes over ``POST /hl7v2`` into the real store,
read back over ``/fhir``; one engine a module on each backend (SQLite, mongomock). The two paths ``_its_own`` decides:
``_as_registered`` (``_versions_stated_by``: a number the registrar gave) and ``_formerly`` (``_stated_by``: a day-old
copy of a version the registrar wrote). A probe that shows a defect is a STRICT xfail naming its severity; controls
pass plainly. See rv46b's report."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.settings import Settings
from tests.hl7_calls import err_lines, post
from tests.module_store import alias_site, system_client, undeclared_site
from tests.owner41_calls import nids
from tests.test_idlow41_identity import _set
from tests.test_reg45_registrar_hd import _admitted, _taken_over
from tests.test_rvidentity32_probes import MRN, _nid, adt, oru, patients, subjects

OID45 = "2.16.840.1.113883.19.4.45"
HIS_FORM = f"^{OID45}^ISO"  # the HIS's moved interface as the site names it
EMPI_OLD, EMPI_NEW = (
    "EMPI^1.2.156.112604.1.1.8^ISO",
    "EMPI^1.2.156.112604.1.1.9^ISO",
)  # one EMPI, its OID changed
PAS_OLD, PAS_NEW = "PAS^pas.a.example^DNS", "^2.16.840.1.113883.19.4.46^ISO"  # one PAS, DNS id -> OID
ANOTHER = (
    "HIS^1.2.156.999.9^ISO"  # another application by HL7 v2.5.1 2.A.33 (another universal id than HIS_FORM's)
)
LAB_OLD, LAB_NEW = "LAB^1.2.156.112604.1.2.1^ISO", "LAB^1.2.156.112604.1.2.2^ISO"  # one lab, its OID changed
GROUPS = [["HIS", HIS_FORM], [EMPI_OLD, EMPI_NEW], [PAS_OLD, PAS_NEW], [LAB_OLD, LAB_NEW]]


@pytest.fixture(scope="module", params=["sqlite", "mongomock"])
def aliased(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The shipped site plus ``GROUPS`` as FNXRMYY's ``application_aliases``, on ``request.param``'s backend."""
    tmp = tmp_path_factory.mktemp(f"rv46b-{request.param}")
    site = alias_site(tmp / "site", {"FNXRMYY": GROUPS})
    mongo = {"mongodb_uri": "mongomock://"} if request.param == "mongomock" else {}
    settings = Settings(
        data_dir=tmp / "var", http_port=0, mllp_port=0, base_url="https://huren.example", site=site, **mongo
    )
    with Engine(settings) as engine, system_client(engine, "rv46b") as client:
        yield client


def _refused_at_pid3(ack: bytes) -> bool:
    return ack_code_of(ack) == "AE" and any("|205^" in x and "PID^1^3" in x for x in err_lines(ack))


def _man_numbered_by(http: TestClient, tag: str, seq: int, registers: str, gives: str) -> tuple[bytes, dict]:
    """``_as_registered`` -> ``_versions_stated_by`` (med46's and rv46a's case): 许子 M registered by ``registers``
    without his number; ``gives``'s A08 gives his male number; a FHIR client sets female; the LIS's result names him
    M with that number. The number is the registrar's word exactly when ``gives`` is the registrar: then the result
    is his (AA, filed on him), else the record's female stands against it (AE 205 at PID-3, nothing filed). The
    result's ACK and the record as it stood before it."""
    man = _nid(f"32092319700101{seq:03d}")  # (odd: a man's number, one a record)
    mrn = f"{tag}^^^FNXRMYY^MR"
    assert ack_code_of(post(http, adt(f"{tag}A", mrn, "许^子", "", "M", app=registers))) == "AA"
    a08 = post(http, adt(f"{tag}B", f"{mrn}~{man}^^^^NNCHN", "许^子", "", "M", event="A08", app=gives))
    (him,) = patients(http, f"{MRN}|{tag}")
    assert man in str(him.get("identifier")), (err_lines(a08), him)  # (the premise: that number is on him)
    _set(http, him["id"], gender="female")
    return post(http, oru(f"{tag}C", f"{mrn}~{man}^^^^NNCHN", "许^子子", "", "M", f"{tag}OBS")), him


def _copy_of_a_version_written_by(
    http: TestClient, tag: str, registers: str, restates: str
) -> tuple[bytes, dict]:
    """``_formerly`` -> ``_stated_by``: 柳庚 F 1970-01-01 registered by ``registers``; ``restates``'s A08 states her
    1970-02-02; the registrar corrects her to 刘庚 1970-10-01; the LIS's day-old copy names 柳庚 1970-02-02 -- the
    version ``restates`` wrote: filed on her (AA) exactly when ``restates`` is the registrar. The ACK, the record."""
    mrn = f"{tag}^^^FNXRMYY^MR"
    assert ack_code_of(post(http, adt(f"{tag}A", mrn, "柳^庚", "19700101", "F", app=registers))) == "AA"
    (record,) = patients(http, f"{MRN}|{tag}")
    a08 = post(http, adt(f"{tag}B", mrn, "柳^庚", "19700202", "F", event="A08", app=restates))
    assert ack_code_of(a08) == "AA", err_lines(a08)  # (the premise: that version is stored)
    a08 = post(http, adt(f"{tag}D", mrn, "刘^庚", "19701001", "F", event="A08", app=registers))
    assert ack_code_of(a08) == "AA", err_lines(a08)
    return post(http, oru(f"{tag}C", mrn, "柳^庚", "19700202", "F", f"{tag}GLU")), record


def _filed_on(http: TestClient, ack: bytes, tag: str, code: str, record: dict) -> None:
    assert ack_code_of(ack) == "AA" and subjects(http, f"{tag}{code}") == [f"Patient/{record['id']}"], (
        err_lines(ack)
    )


def _nothing_filed(http: TestClient, ack: bytes, tag: str, code: str) -> None:
    assert _refused_at_pid3(ack) and subjects(http, f"{tag}{code}") == [], err_lines(ack)


# --- HIGH: the fix's rule is bypassed by the registrar's OID written as MSH-3.1 (a bare code: ``universal_code``)

_BARE = (
    "HIGH: applications.same_code -- _two_universal_ids reads a bare OID code (the registrar whose MSH-3.1 is its "
    "OID, 2.16.840.1.113883.19.4.45 -- last44 MED 1's form; hd_of makes it an HD-1 name) as no universal id, so "
    "group() puts it in [HIS, ^<OID45>^ISO] by universal_code and HIS^1.2.156.999.9^ISO there by its bare HIS: "
    "another application's number is the registrar's word and the man's result is filed AA against the "
    "record's sex (rv46a's HIGH again; e9fa2946 refuses it for the registrar spelled ^<OID45>^ISO)"
)


def test_a_number_another_oid_gave_is_not_the_word_of_a_registrar_sending_its_oid_as_msh3_1(
    aliased: TestClient,
) -> None:
    ack, _ = _man_numbered_by(aliased, "R46BA", 101, OID45, ANOTHER)
    _nothing_filed(aliased, ack, "R46BA", "OBS")


def test_a_copy_of_another_oids_version_is_refused_for_a_registrar_sending_its_oid_as_msh3_1(
    aliased: TestClient,
) -> None:
    ack, _ = _copy_of_a_version_written_by(aliased, "R46BB", OID45, ANOTHER)
    _nothing_filed(aliased, ack, "R46BB", "GLU")


def test_control_a_number_another_oid_gave_is_not_the_word_of_the_registrar_as_its_group_form(
    aliased: TestClient,
) -> None:
    """Control (what e9fa2946 fixed): the same registrar spelled ``^<OID45>^ISO`` (the group's form): refused."""
    ack, _ = _man_numbered_by(aliased, "R46BC", 103, HIS_FORM, ANOTHER)
    _nothing_filed(aliased, ack, "R46BC", "OBS")


# --- MED: a group the site declares of two forms each with a universal id is no longer one application

_TWO_FORMS = (
    "MED: applications.same_code -- _two_universal_ids answers 'two applications' before the site's alias "
    "group is asked, so a group declaring two forms that both carry a universal id (an EMPI whose OID "
    "changed, a PAS moved from its DNS id to an OID: mistakes() accepts both) is no longer one application "
    "to _its_own: the moved interface's own number/version is no one's word and the man's result refused "
    "AE 205 (accepted at e9fa2946^ by med46's group; sends_as/canonical still read the group as one)"
)

MOVED = [(EMPI_OLD, EMPI_NEW), (PAS_OLD, PAS_NEW), (PAS_NEW, PAS_OLD)]
MOVED_IDS = ["empi-oid-changed", "pas-dns-to-oid", "pas-oid-to-dns"]


@pytest.mark.parametrize("registers, gives", MOVED, ids=MOVED_IDS)
def test_the_moved_interface_of_a_group_of_two_universal_ids_gives_the_registrars_number(
    aliased: TestClient, registers: str, gives: str
) -> None:
    at = MOVED.index((registers, gives))
    tag = f"R46BD{at}"
    ack, him = _man_numbered_by(aliased, tag, 111 + 2 * at, registers, gives)
    _filed_on(aliased, ack, tag, "OBS", him)


@pytest.mark.parametrize("registers, restates", MOVED, ids=MOVED_IDS)
def test_a_copy_of_the_version_the_moved_interface_of_a_group_of_two_universal_ids_wrote_is_filed(
    aliased: TestClient, registers: str, restates: str
) -> None:
    tag = f"R46BE{MOVED.index((registers, restates))}"
    ack, record = _copy_of_a_version_written_by(aliased, tag, registers, restates)
    _filed_on(aliased, ack, tag, "GLU", record)


# --- LOW: one universal id in two spellings HL7's rule reads alike (same_hd), compared as text

_SPELLED = (
    "LOW: applications._two_universal_ids compares HD-2/HD-3 as text (same_text), not as same_hd reads them "
    "(universal_system): HIS^urn:oid:<OID45>^URI is the universal id of the registrar ^<OID45>^ISO, yet two "
    "applications -- its number refused AE 205 (accepted at e9fa2946^ by the group's HIS)"
)


def test_the_registrars_oid_as_a_urn_uri_gives_its_number(aliased: TestClient) -> None:
    ack, him = _man_numbered_by(aliased, "R46BF", 121, HIS_FORM, f"HIS^urn:oid:{OID45}^URI")
    _filed_on(aliased, ack, "R46BF", "OBS", him)


# --- controls: the legitimate group [HIS, ^<OID45>^ISO] is one application, in every form it is sent

OWN = [
    (HIS_FORM, "HIS"),
    (HIS_FORM, "his"),
    (HIS_FORM, f"HIS^{OID45}^ISO"),
    (HIS_FORM, f"^{OID45}^iso"),
    (HIS_FORM, "HIS^1.2.3"),
    ("HIS", f"^{OID45}^iso"),
    (f"HIS^{OID45}^ISO", HIS_FORM),
    (OID45, "HIS"),
    ("HIS", OID45),
    (OID45, HIS_FORM),
    (PAS_OLD, "PAS^PAS.A.EXAMPLE^dns"),
]
OWN_IDS = [
    "oid-then-name",
    "oid-then-lower-name",
    "oid-then-name-with-oid",
    "oid-then-lower-iso",
    "oid-then-hd2-without-hd3",
    "name-then-lower-iso",
    "name-with-oid-then-oid",
    "bare-oid-then-name",
    "name-then-bare-oid",
    "bare-oid-then-oid",
    "dns-id-in-another-case",
]


@pytest.mark.parametrize("registers, gives", OWN, ids=OWN_IDS)
def test_control_the_moved_interfaces_number_is_the_registrars_word(
    aliased: TestClient, registers: str, gives: str
) -> None:
    """Control: the registrar in one form of the group (or HL7's rule of it: a name with or without the group's
    universal id, case aside, an HD-2 without HD-3, its OID as MSH-3.1), the A08 giving his number in another:
    the registrar's word, his result filed on him (AA) -- as at e9fa2946^."""
    at = OWN.index((registers, gives))
    tag = f"R46BG{at}"
    ack, him = _man_numbered_by(aliased, tag, 131 + 2 * at, registers, gives)
    _filed_on(aliased, ack, tag, "OBS", him)


def test_control_a_copy_of_the_version_the_moved_interface_wrote_is_filed(aliased: TestClient) -> None:
    """Control of ``_stated_by``: ``^<OID45>^ISO`` registered her, ``HIS^<OID45>^ISO`` wrote the version: filed."""
    ack, record = _copy_of_a_version_written_by(aliased, "R46BH", HIS_FORM, f"HIS^{OID45}^ISO")
    _filed_on(aliased, ack, "R46BH", "GLU", record)


APART = [
    (EMPI_OLD, "EMPI^1.2.156.112604.1.1.7^ISO"),
    (PAS_OLD, "PAS^pas.b.example^DNS"),
    (PAS_NEW, "^HIS^DNS"),
    (HIS_FORM, f"EMR^{OID45}^ISO"),
    (HIS_FORM, "^1.2.156.999.9^ISO"),
    (OID45, "1.2.156.999.9"),
]
APART_IDS = [
    "third-empi-oid",
    "third-pas-dns",
    "dns-letters",
    "group-oid-under-another-name",
    "another-bare-oid-form",
    "another-bare-oid",
]


@pytest.mark.parametrize("registers, other", APART, ids=APART_IDS)
def test_control_no_form_of_the_registrars_group_stays_apart(
    aliased: TestClient, registers: str, other: str
) -> None:
    """Control: an MSH-3 no form of the registrar's group states (a third OID/DNS id beside the group's two, a
    universal id of the letters of a name, the group's OID under another name, another OID) is another application:
    its number refused AE 205 at PID-3, nothing filed."""
    at = APART.index((registers, other))
    tag = f"R46BJ{at}"
    ack, _ = _man_numbered_by(aliased, tag, 161 + 2 * at, registers, other)
    _nothing_filed(aliased, ack, tag, "OBS")


# --- the take-over (takeover._no_owner_named asks same_code of the lab's applications): the same MED


def test_the_lab_restating_its_placeholder_under_its_new_oid_is_still_the_lab(aliased: TestClient) -> None:
    ack = _admitted(aliased, "R46BK", LAB_OLD, LAB_NEW)
    assert _taken_over(ack), err_lines(ack)


def test_control_an_update_under_a_third_oid_is_not_the_lab_restating_its_placeholder(
    aliased: TestClient,
) -> None:
    """Control: ``LAB^<a third OID>^ISO``'s A08 (no form of the lab's group) names the placeholder: another
    application, the admission under the visit number refused AE 205 at PV1-19."""
    ack = _admitted(aliased, "R46BL", LAB_OLD, "LAB^1.2.156.112604.1.2.3^ISO")
    assert ack_code_of(ack) == "AE" and any("|205^" in x and "PV1^1^19" in x for x in err_lines(ack)), (
        err_lines(ack)
    )


# --- low45's _number_owners (an undeclared site: the registrants' rule) asks same_code too: the same MED, as a write


@pytest.fixture(scope="module")
def undeclared_aliased(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """An undeclared site (``undeclared_site``: no registration application) with ``GROUPS`` (SQLite)."""
    tmp = tmp_path_factory.mktemp("rv46b-undeclared")
    site = alias_site(undeclared_site(tmp / "site"), {"FNXRMYY": GROUPS})
    settings = Settings(
        data_dir=tmp / "var", http_port=0, mllp_port=0, base_url="https://huren.example", site=site
    )
    with Engine(settings) as engine, system_client(engine, "rv46b") as client:
        yield client


def _the_emr_renumbers(http: TestClient, tag: str, seq: int, registers: str, gives: str) -> bytes:
    """low45's case: ``registers`` registers record ``tag`` (A04); ``gives`` gives her resident ID number (A08); the
    EMR registers the record too, restating it (A04); the EMR's A08 then states another woman's number. The number
    is ``registers``'s when ``gives`` is that application: the EMR's change held (AA, W 205), her number kept."""
    hers, other = _nid(f"32092319801015{seq:03d}"), _nid(f"32092319801015{seq + 2:03d}")  # (even: a woman's)
    record = f"{tag}^^^FNXRMYY^MR"
    for ack in (
        post(http, adt(f"{tag}a", record, "甲^一", "19801015", "F", app=registers)),
        post(
            http,
            adt(f"{tag}b", f"{record}~{hers}^^^^NNCHN", "甲^一", "19801015", "F", event="A08", app=gives),
        ),
        post(http, adt(f"{tag}c", f"{record}~{hers}^^^^NNCHN", "甲^一", "19801015", "F", app="EMR")),
    ):
        assert ack_code_of(ack) == "AA" and not any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    assert nids(patients(http, f"{MRN}|{tag}")[0]) == {hers}
    ack = post(
        http, adt(f"{tag}d", f"{record}~{other}^^^^NNCHN", "甲^一", "19801015", "F", event="A08", app="EMR")
    )
    assert ack_code_of(ack) == "AA" and any("|205^" in x and "|W|" in x for x in err_lines(ack)), err_lines(
        ack
    )
    assert nids(patients(http, f"{MRN}|{tag}")[0]) == {hers}
    return ack


def test_the_registrars_number_given_under_its_new_oid_is_its_own(undeclared_aliased: TestClient) -> None:
    _the_emr_renumbers(undeclared_aliased, "R46BM", 62, EMPI_OLD, EMPI_NEW)


def test_control_the_registrars_number_given_under_its_group_form_is_its_own(
    undeclared_aliased: TestClient,
) -> None:
    """Control: ``HIS`` registers, its moved interface ``^<OID45>^ISO`` gives the number: the EMR's A08 held."""
    _the_emr_renumbers(undeclared_aliased, "R46BN", 66, "HIS", HIS_FORM)
