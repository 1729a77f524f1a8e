"""An order's Study Instance UIDs follow the study's rule, and an IPC's extra repetitions are said (forty-third round,
plan43; review rv43a MED 3, LOW 3).

``pacs._dicom_uid`` is the one rule for a Study UID an imaging message sends (IPC-3, ZDS-1, an OBX): a ``urn:oid:``
prefix taken off (huren writes it once), the DICOM UID grammar and 64 characters checked, a bad one left out with a
W 102 at its field. The order (``_order_hook``, every IPC of OMI^O23) had written ``urn:oid:`` before whatever IPC-3
held, unchecked, so one study had two UIDs -- the order's ``urn:oid:urn:oid:...`` and its report's ImagingStudy's.
Real bytes over ``POST /hl7v2`` (阜宁县人民医院's RIS), read back over ``/fhir``.
"""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.settings import Settings
from tests.hl7_calls import err_lines, post
from tests.test_a40b41_carried import opened

HDR = "MSH|^~\\&|RIS|FNXRMYY|HUREN|FNYGT|{stamp}+0800||{kind}|{control}|P|2.5.1|||AL|NE|CHN|UNICODE UTF-8\r"
UID = "urn:dicom:uid"
GOOD = "1.2.156.4343.77"
LONG = "1.2.156." + "1" * 57  # 65 characters


def _omi(control: str, placer: str, *ipc3: str) -> str:
    return (HDR.format(stamp="20261201091500", kind="OMI^O23^OMI_O23", control=control)
            + f"PID|1||{placer}^^^FNXRMYY^MR||赵^乙||19700109|M\rPV1|1|O\r"
            f"ORC|NW|{placer}|||||||20261201090000|||1001^李^医生\r"
            f"OBR|1|{placer}||CT009^胸部CT平扫^L|||20261201090000\r"
            + "".join(f"IPC|{placer}A{n}|RP{n}|{uid}|SPS{n}|CT\r" for n, uid in enumerate(ipc3, 1)))


def _report(control: str, placer: str, ipc3: str) -> str:
    return (HDR.format(stamp="20261201110000", kind="ORU^R01^ORU_R01", control=control)
            + f"PID|1||{placer}^^^FNXRMYY^MR||赵^乙||19700109|M\rPV1|1|O\r"
            f"ORC|RE|{placer}|F{placer}\r"
            f"OBR|1|{placer}|F{placer}|CT009^胸部CT平扫^L|||20261201100000|||||||||1001^李^医生||||||"
            f"20261201105500||CT|F\r"
            f"IPC|{placer}A1|RP1|{ipc3}|SPS1|CT\r"
            f"OBX|1|TX|CT009^胸部CT平扫^L|1|双肺纹理清晰。||||||F\r")


def _uids(http: TestClient, rtype: str, placer: str) -> list[str]:
    params = ({"identifier": f"urn:huren:order:FNXRMYY|{placer}"} if rtype == "ServiceRequest"
              else {"identifier": f"urn:huren:accession:FNXRMYY|{placer}A1"})
    found = http.get(f"/fhir/{rtype}", params=params)
    assert found.status_code == 200, found.text
    (resource,) = [e["resource"] for e in found.json().get("entry") or ()]
    return [i["value"] for i in resource.get("identifier") or () if i.get("system") == UID]


@pytest.mark.parametrize("backend_settings", ["sqlite"], indirect=True)
def test_an_orders_uids_are_checked_each_ipc_and_its_reports_study_has_the_same_uid(
        backend_settings: Settings) -> None:
    """An OMI of three IPCs: ``urn:oid:``-prefixed (kept once, bare under it), a UID with a leading zero, one of 65
    characters -- the two bad ones left out, each a W 102 at its own IPC's field 3 (AA); then the RIS's report
    naming the prefixed UID: its ImagingStudy holds the very UID the order holds."""
    with opened(backend_settings) as (_, http):
        ack = post(http, _omi("P43U1", "P43U", f"urn:oid:{GOOD}", "1.2.156.04343.8", LONG))
        assert ack_code_of(ack) == "AA", ack
        errors = err_lines(ack)
        assert len(errors) == 2, errors
        assert "IPC^2^3^^1" in errors[0] and "'1.2.156.04343.8' is not a DICOM UID" in errors[0], errors
        assert "IPC^3^3^^1" in errors[1] and f"'{LONG}' is not a DICOM UID" in errors[1], errors
        assert all("|W|" in line and "|102^" in line for line in errors), errors
        assert _uids(http, "ServiceRequest", "P43U") == [f"urn:oid:{GOOD}"]
        report = post(http, _report("P43U2", "P43U", f"urn:oid:{GOOD}"))
        assert ack_code_of(report) == "AA", report
        assert [line for line in err_lines(report) if "UID" in line] == [], report  # (IPC in an ORU: W 100 alone)
        assert _uids(http, "ImagingStudy", "P43U") == _uids(http, "ServiceRequest", "P43U") == [f"urn:oid:{GOOD}"]


@pytest.mark.parametrize("backend_settings", ["sqlite"], indirect=True)
def test_a_reports_bad_study_uid_is_said_once(backend_settings: Settings) -> None:
    """A report's IPC-3 is read by its order (``_order_hook``, now checking it) and by its ImagingStudy: no UID on
    either, and one W 102 at IPC-3, not two (a guard: ``Context.warn`` tells one field's warning once)."""
    with opened(backend_settings) as (_, http):
        ack = post(http, _report("P43V1", "P43V", "not a uid"))
        assert ack_code_of(ack) == "AA", ack
        errors = [line for line in err_lines(ack) if "IPC^1^3" in line]
        assert len(errors) == 1 and "'not a uid' is not a DICOM UID" in errors[0], err_lines(ack)
        assert _uids(http, "ServiceRequest", "P43V") == []
        assert _uids(http, "ImagingStudy", "P43V") == []


@pytest.mark.parametrize("backend_settings", ["sqlite"], indirect=True)
def test_an_ipcs_repetitions_on_a_field_that_does_not_repeat_are_said(backend_settings: Settings) -> None:
    """``IPC|A1~A2|RP|uid~uid2|SPS|CT~MR`` (IPC-1, IPC-3, IPC-5 do not repeat in v2.5.1): the first of each is
    read, as before, and each field's others are said left out (W 102 at the field), not dropped with no word."""
    with opened(backend_settings) as (_, http):
        msg = _omi("P43R1", "P43R", f"{GOOD}~1.2.156.4343.78").replace(
            "IPC|P43RA1|", "IPC|P43RA1~P43RA9|").replace("|SPS1|CT\r", "|SPS1|CT~MR\r")
        ack = post(http, msg)
        assert ack_code_of(ack) == "AA", ack
        errors = err_lines(ack)
        assert [line.split("|")[2] for line in errors] == ["IPC^1^1", "IPC^1^3", "IPC^1^5"], errors
        assert all("does not repeat" in line and "|W|" in line and "|102^" in line for line in errors), errors
        assert _uids(http, "ServiceRequest", "P43R") == [f"urn:oid:{GOOD}"]
