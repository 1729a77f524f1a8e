"""last43: probes from the round's last read (idn43's ``number_linking_applications``; time43's study start).

Real bytes through the real path: HL7 v2 over ``POST /hl7v2`` into the real store (SQLite; the study's probe on each
backend), ``/fhir`` over FastAPI, the site read from a folder as ``huren serve`` reads it.
"""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.settings import Settings
from mappings.site import DEFAULTS_DIR
from tests.hl7_calls import err_lines, post
from tests.module_store import module_eng, system_client
from tests.owner41_calls import at_fnzyy, nids
from tests.test_codefix36_order_code import _errs
from tests.test_decl42b_identity import FNZYY
from tests.test_rv41k_probes import HEAD, T24_LATER, _ct, _old_exam
from tests.test_rvidentity32_probes import MRN, _nid, oru, patients
from tests.test_srfix35_order_code import http, send

__all__ = ["http", "module_eng"]

# FNXRMYY's LIS after its interface moved to the NIST/IHE form of MSH-3 (its OID), the site saying both are one
# application (senders.yaml ``application_aliases``, ord40)
LIS_OID = "^2.16.840.1.113883.19.4.6^ISO"


@pytest.fixture
def aliased(tmp_path: Path) -> Iterator[tuple[Engine, TestClient]]:
    """An engine on the shipped site whose senders.yaml names FNXRMYY's ``LIS`` and ``LIS_OID`` one application."""
    site = tmp_path / "site"
    (site / "hl7v2").mkdir(parents=True)
    shipped = yaml.safe_load((DEFAULTS_DIR / "hl7v2" / "senders.yaml").read_text(encoding="utf-8"))
    (site / "hl7v2" / "senders.yaml").write_text(
        yaml.safe_dump({**shipped, "application_aliases": {"FNXRMYY": [["LIS", LIS_OID]]}}, allow_unicode=True),
        encoding="utf-8")
    settings = Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, base_url="https://huren.example",
                        site=site)
    with Engine(settings) as engine, system_client(engine, "last43") as http:
        yield engine, http


def _her_and_the_lis_result(http: TestClient, tag: str, app: str) -> bytes:
    """FNZYY's HIS registers her with her number; FNXRMYY's LIS (MSH-3 ``app``) sends her result under a new MRN
    stating her name, birth date and number: the ACK."""
    c = _nid("32092319800905020" if app == "LIS" else "32092319800906020")
    birth = c[6:14]  # (the number's own birth date: another is refused AE)
    assert ack_code_of(post(http, at_fnzyy(f"{tag}Ea", f"{tag}E", "壬^九五", birth, "F", f"~{c}^^^^NNCHN"))) == "AA"
    assert patients(http, f"{FNZYY}|{tag}E")
    return post(http, oru(f"{tag}Ka", f"{tag}K^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^九五", birth, "F", f"{tag}OBS",
                          app=app))


def test_guard_the_declared_lis_by_its_name_links_her_result(aliased: tuple[Engine, TestClient]) -> None:
    """Guard: MSH-3 ``LIS`` (declared in FNXRMYY's ``number_linking_applications``): AA, no W 205, the record holds
    her number."""
    _, http = aliased
    ack = _her_and_the_lis_result(http, "LQ1", "LIS")
    assert ack_code_of(ack) == "AA" and not any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    assert nids(patients(http, f"{MRN}|LQ1K")[0])


def test_the_declared_lis_under_its_aliased_oid_links_her_result(aliased: tuple[Engine, TestClient]) -> None:
    """FNXRMYY's LIS sending MSH-3 ``^2.16.840.1.113883.19.4.6^ISO``, which the site's senders.yaml names the same
    application as ``LIS``: its result is the declared LIS's -- AA, no W 205, the new record holds her number."""
    _, http = aliased
    ack = _her_and_the_lis_result(http, "LQ2", LIS_OID)
    assert ack_code_of(ack) == "AA" and not any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    assert nids(patients(http, f"{MRN}|LQ2K")[0])


def test_a_corrections_study_start_read_from_obr6_is_warned_at_obr6(module_eng: Engine, http: TestClient) -> None:
    """The RIS's head CT of 2024-03-12 corrected 210 days later, OBR-6 the correction's time and OBR-7 no time
    (``2024X1008``, its own W 102): the study's start stands (``exam_time`` ``of: report``), and the W saying so
    stands at OBR-6, the field the start was read from -- as it stands at OBR-6 when OBR-7 is empty."""
    acc = _old_exam(http, "L43B")
    msg = _ct("L43B1", acc, sent=T24_LATER, obr7="", status="C", text="右肺上叶小结节")
    ack = send(http, msg.replace(f"|{HEAD}|||", f"|{HEAD}||{T24_LATER}|2024X1008", 1))
    assert "MSA|AA" in ack, ack
    (study,) = [e["resource"] for e in http.get("/fhir/ImagingStudy", params={"identifier": acc}).json()["entry"]]
    assert study["started"].startswith("2024-03-12T08:00:00"), study
    warned = [e for e in _errs(ack) if e[4] == "W" and e[8].startswith("ImagingStudy.started")]
    assert [e[2] for e in warned] == ["OBR^1^6"], _errs(ack)


def test_guard_a_corrections_study_start_from_obr6_alone_is_warned_at_obr6(module_eng: Engine,
                                                                           http: TestClient) -> None:
    """Guard: OBR-7 empty, OBR-6 the correction's time: the study's start stands, the W at OBR-6."""
    acc = _old_exam(http, "L43A")
    msg = _ct("L43A1", acc, sent=T24_LATER, obr7="", status="C", text="右肺上叶小结节")
    ack = send(http, msg.replace(f"|{HEAD}|||", f"|{HEAD}||{T24_LATER}|", 1))
    assert "MSA|AA" in ack, ack
    warned = [e for e in _errs(ack) if e[4] == "W" and e[8].startswith("ImagingStudy.started")]
    assert [e[2] for e in warned] == ["OBR^1^6"], _errs(ack)
