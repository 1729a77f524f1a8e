"""Every public sample message converts to valid FHIR R4 or is refused with an HL7Error that says why.

The samples' sending facilities are registered through a HUREN_SITE folder (the real overlay
path), with a US time zone as their timestamps suggest.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.convert import Conversion, convert
from adapters.hl7v2.errors import HL7Error
from adapters.hl7v2.parser import parse
from mappings.site import Site
from tests.conftest import SAMPLES, sample_files
from tests.conftest import sample_site as registered_sample_site
from tests.test_convert import assert_valid_bundle, one

FILES = sample_files()
# what each refused sample lacks, by file-name prefix: (segment, field, 0357 code)
REFUSED = {
    "18_": ("PID", 3, "101"),  # PID-3, -2, -4, -19, -20 empty: no patient to file the result under
    "ssmix2_PPR-01_": ("MSH", 9, "201"),  # PPR^ZD1, a Japanese Z event: refused by name, not guessed
    "23_": ("PID", 3, "101"),
}
# accepted with a located warning for what was repaired or left out, by file-name prefix
WARNED = {
    "res_sample_": ("MSH", 2, "102"),  # MSH-2 '^~\\\\&' (doubled escape) read as '^~\\&'
    "py01_": ("PID", 7, "102"),  # PID-7 '196203520' (no 52nd day of a month): birth date left out
    # MSH-10 empty: known by a digest of the content instead
    **{prefix: ("MSH", 10, "101") for prefix in ("09_", "12_", "14_", "37_", "38_", "39_", "40_")},
}


def _sending_facility(path: Path) -> str:
    try:
        return parse(path.read_text(encoding="utf-8")).msh.sending_facility
    except HL7Error:
        return "?"  # unreadable: its own refusal is what is expected


@pytest.fixture(scope="module")
def sample_site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return registered_sample_site(tmp_path_factory.mktemp("site"))


def test_the_shared_samples_are_there() -> None:
    """The parametrised test below would pass vacuously on an empty folder: fail loudly instead."""
    assert len(FILES) >= 50, f"expected the public HL7 v2 samples under {SAMPLES}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_sample_converts_or_is_refused_precisely(path: Path, sample_site: Site) -> None:
    name = path.name
    expected = next((v for k, v in REFUSED.items() if name.startswith(k)), None)
    if expected is None and not _sending_facility(path):
        expected = ("MSH", 4, "103")  # MSH-4 empty: no registered sender (this site binds none)
    try:
        conv = convert(parse(path.read_text(encoding="utf-8")), sample_site)
    except HL7Error as err:
        assert expected is not None, f"unexpected refusal: {err}"
        assert (err.segment, err.field, err.code) == expected, str(err)
        assert err.message
        return
    assert expected is None, f"expected refusal {expected}"
    assert_valid_bundle(conv)
    warned = next((v for k, v in WARNED.items() if name.startswith(k)), None)
    if warned is not None:
        assert warned in {(w.segment, w.field, w.code) for w in conv.warnings}, conv.warnings
    if name.startswith("py01_"):
        assert "birthDate" not in one(conv, "Patient")  # the result is kept, the bad date is not
    for warning in conv.warnings:
        assert warning.severity == "W" and warning.segment and warning.message
    for gap in conv.unmapped:
        assert gap["institution"] and gap["kind"] and ("code" in gap or "segment" in gap)


def _ig_adt(sample_site: Site) -> Conversion:
    return convert(
        parse((SAMPLES / "hl7-v2-to-fhir-ig" / "IG-test_conversions_ADT_A01.hl7").read_text()), sample_site
    )


def test_ig_adt_a01_matches_the_ig_authors_bundle(sample_site: Site) -> None:
    ours = _ig_adt(sample_site)
    theirs = json.loads((SAMPLES / "hl7-v2-to-fhir-ig-expected" / "FHIR_bundle.hl7_ADT_A01.json").read_text())
    their_types = {e["resource"]["resourceType"] for e in theirs["entry"]}
    our_types = {r["resourceType"] for r in ours.resources}
    # MessageHeader is message-level metadata we keep in Provenance
    assert their_types - our_types == {"MessageHeader"}
    their_patient = next(e["resource"] for e in theirs["entry"] if e["resource"]["resourceType"] == "Patient")
    patient = one(ours, "Patient")
    assert patient["gender"] == their_patient["gender"]
    assert patient["birthDate"] == their_patient["birthDate"][:10]
    assert [n["family"] for n in patient["name"]] == [n["family"] for n in their_patient["name"]]
    assert [n.get("use") for n in patient["name"]] == [n.get("use") for n in their_patient["name"]]
    assert patient["name"][0]["given"] == their_patient["name"][0]["given"]
    assert patient["name"][0]["period"] == their_patient["name"][0]["period"]
    their_ids = {i["value"] for i in their_patient["identifier"]}
    assert {"1032702", "N09204074"} <= their_ids & {i["value"] for i in patient["identifier"]}
    assert (
        patient["maritalStatus"]["coding"][0]["code"] == their_patient["maritalStatus"]["coding"][0]["code"]
    )
    assert [a.get("city") for a in patient["address"]] == [
        a["city"].strip() for a in their_patient["address"]
    ]
    their_enc = next(e["resource"] for e in theirs["entry"] if e["resource"]["resourceType"] == "Encounter")
    enc = one(ours, "Encounter")
    assert enc["class"]["code"] == their_enc["class"]["code"] == "EMER"
    height = one(ours, "Observation")
    assert height["valueQuantity"]["value"] == 190 and height["valueQuantity"]["code"] == "cm"
    assert one(ours, "AllergyIntolerance")["criticality"] == "low"  # MO (moderate) → low, per the IG map


def test_unmapped_segments_are_reported(sample_site: Site) -> None:
    conv = _ig_adt(sample_site)
    assert not [u for u in conv.unmapped if u["kind"] == "segment"]  # every segment of it is mapped
    coverage = one(conv, "Coverage")  # IN1 with its IN3
    assert coverage["payor"]
    text = (SAMPLES / "hl7-v2-to-fhir-ig" / "IG-test_conversions_ADT_A01.hl7").read_text()
    local = convert(parse(text.rstrip("\r\n") + "\rZPV|1|local visit data\r"), sample_site)
    assert [u["segment"] for u in local.unmapped if u["kind"] == "segment"] == ["ZPV"]
    patient = one(conv, "Patient")
    assert patient["generalPractitioner"][0]["display"] == "Gordon Smith"  # PD1-4
