"""An order's bad Study UID is said in the order's words (review rv43e LOW 1), and a site's relays are checked at load
(rv43e MED 1; forty-third round, acsn43c).

``pacs._dicom_uid`` is the one rule for a Study UID; what the caller keeps without it is the caller's: an order
makes no study -- it keeps no Study UID -- and a report's ImagingStudy is then keyed by its accession. A report's
order and study read one IPC-3: one W saying both. Real bytes over ``POST /hl7v2``, read back over ``/fhir``.
(rv43e's HIGH 1, HIGH 2 and MED 2 are shown by its own probes, ``tests/test_rv43e_probes.py``, their marks dropped.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.convert import applications
from adapters.hl7v2.ack import ack_code_of
from engine.settings import Settings
from mappings.site import Site, SiteError
from tests.hl7_calls import err_lines, post
from tests.test_a40b41_carried import opened
from tests.test_ord40_owner_decision import _aliased
from tests.test_plan43_study_uid import _omi, _report, _uids


@pytest.mark.parametrize("backend_settings", ["sqlite"], indirect=True)
def test_an_orders_bad_study_uid_says_the_order_keeps_none(backend_settings: Settings) -> None:
    """An OMI whose IPC-3 is ``01.2.3``: W 102 at IPC-3 saying the order keeps no Study UID -- not that "the study
    is keyed by accession" (an order makes no study); the order holds no UID."""
    with opened(backend_settings) as (_, http):
        ack = post(http, _omi("C43U1", "C43U", "01.2.3"))
        assert ack_code_of(ack) == "AA", ack
        (error,) = err_lines(ack)
        assert error == ("ERR||IPC^1^3^^1|102^Data type error^HL70357|W||||IPC-3: '01.2.3' is not a DICOM UID; "
                         "the order keeps no Study UID"), error
        assert _uids(http, "ServiceRequest", "C43U") == []


@pytest.mark.parametrize("backend_settings", ["sqlite"], indirect=True)
def test_a_reports_bad_study_uid_says_both_in_one_warning(backend_settings: Settings) -> None:
    """A report's IPC-3 read by its order and by its ImagingStudy: one W 102 at IPC-3 saying what each keeps."""
    with opened(backend_settings) as (_, http):
        ack = post(http, _report("C43V1", "C43V", "not a uid"))
        assert ack_code_of(ack) == "AA", ack
        errors = [line for line in err_lines(ack) if "IPC^1^3" in line]
        assert errors == ["ERR||IPC^1^3^^1|102^Data type error^HL70357|W||||IPC-3: 'not a uid' is not a DICOM UID; "
                          "the order keeps no Study UID; the study is keyed by accession"], err_lines(ack)
        assert _uids(http, "ServiceRequest", "C43V") == [] and _uids(http, "ImagingStudy", "C43V") == []


def _relays(folder: Path, relays: dict[str, Any]) -> Path:
    """``folder`` made a site folder whose ``senders.yaml`` is the shipped one with these ``relay_applications``."""
    site = _aliased(folder, {})
    senders = site / "hl7v2" / "senders.yaml"
    shipped = yaml.safe_load(senders.read_text(encoding="utf-8"))
    senders.write_text(yaml.safe_dump({**shipped, "relay_applications": relays}, allow_unicode=True),
                       encoding="utf-8")
    return site


@pytest.mark.parametrize(("relays", "said"), [
    ({"FNXRMYY": ["^1.2.3^"]}, "relay_applications.FNXRMYY[0]"),
    ({"FNXRMYY": ["ESB", "^1.2.x^ISO"]}, "no OID"),
    ({"FNNOSUCH": ["ESB"]}, "not in institutions.yaml"),
], ids=["no-name", "bad-oid", "unknown-institution"])
def test_a_mistaken_relay_stops_the_site_load_naming_it(tmp_path: Path, relays: dict[str, Any], said: str) -> None:
    """A relay form naming no MSH-3 (no name, a universal id its type does not allow) or under an institution
    institutions.yaml does not hold: the site load stops naming senders.yaml and the entry (MED 1's list is data a
    typo must not silently empty)."""
    with pytest.raises(SiteError) as raised:
        Site.load(Settings(site=_relays(tmp_path, relays)))
    assert said in str(raised.value) and "senders.yaml" in str(raised.value), raised.value


def test_a_declared_relay_is_read(tmp_path: Path) -> None:
    """(The load keeps the list, and ``applications.relay`` matches an MSH-3 as sent, case aside -- not the same
    name under a universal id, which is another application to the site.)"""
    site = Site.load(Settings(site=_relays(tmp_path, {"FNXRMYY": ["ESB"]})))
    assert applications.relay("FNXRMYY", ("esb", "", ""), site)
    assert not applications.relay("FNXRMYY", ("ESB", "1.2.3", "ISO"), site)
    assert not applications.relay("FNZYY", ("ESB", "", ""), site)
