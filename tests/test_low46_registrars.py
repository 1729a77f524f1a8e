"""low46 (forty-sixth round): med46's one behaviour change pinned -- a registrar with an EMPTY MSH-3 (registrar
``""``) is no one's word (``applications.same_code("", "")`` is False), so a man it registered and numbered, whose sex
a FHIR client then set female, gets his result refused AE 205 at PID-3 where string equality of whole registrars
(before med46) had filed it AA. The deliberate safe direction: a wrong filing is worse than a refusal.

Real HL7 v2.5.1 bytes over ``POST /hl7v2`` into one engine a module on each backend (``module_eng``: SQLite,
mongomock), read back over ``/fhir``."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import engine_and_client
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_idlow41_identity import _set
from tests.test_rvidentity32_probes import MRN, _nid, adt, oru, patients, subjects

both = engine_and_client("low46")


def test_a_number_an_empty_msh3_gave_is_no_ones_word(both: tuple[Engine, TestClient]) -> None:
    """rv45e's man (``persons._as_registered`` -> ``_versions_stated_by`` -> ``_its_own``) registered and numbered by a
    sender with an empty MSH-3: both filings AA, the number on him; a client sets female; the LIS's result names him M
    with that number. An empty registrar names no application, so the number is not the registrar's word and the
    record's female stands against it: refused AE 205 at PID-3, nothing filed (med46; before it, AA)."""
    _, http = both
    tag = "L46E"
    man = _nid("32092319700101091")
    mrn = f"{tag}^^^FNXRMYY^MR"
    a04 = post(http, adt(f"{tag}A", mrn, "许^子", "", "M", app=""))
    assert ack_code_of(a04) == "AA", err_lines(a04)
    a08 = post(http, adt(f"{tag}B", f"{mrn}~{man}^^^^NNCHN", "许^子", "", "M", event="A08", app=""))
    assert ack_code_of(a08) == "AA", err_lines(a08)
    (him,) = patients(http, f"{MRN}|{tag}")
    assert man in str(him.get("identifier")), him  # (the premise: the number the empty MSH-3 gave is on him)
    _set(http, him["id"], gender="female")
    ack = post(http, oru(f"{tag}C", f"{mrn}~{man}^^^^NNCHN", "许^子子", "", "M", f"{tag}OBS"))
    assert ack_code_of(ack) == "AE" and any("|205^" in x and "PID^1^3" in x for x in err_lines(ack)), err_lines(ack)
    assert subjects(http, f"{tag}OBS") == []
