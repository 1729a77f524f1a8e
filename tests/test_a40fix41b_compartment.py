"""a40fix41b: the survivor a merge carried her number onto is in her compartment while the merge stands (rv41n MED
5), and out of it once the A37 parts the two; an A47 onto a record in use carries the number as a merge does, and
the A37 gives it back (rv41n HIGH 3). Real HL7 v2 over ``POST /hl7v2``, the resident's real SMART launch, her reads
over ``/fhir``; both backends. The two live tests share one engine a module and backend (``shared``: tests.module_store's
``module_backend_opened`` on ``module_backend_eng``, the store ``opened`` starts on; suite44c), each with records, numbers, controls and result codes
of its own; the carry pass's test starts an engine of its own on an old release's store."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine import carried_numbers
from engine.engine import Engine
from engine.settings import Settings
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import read_patient, unlink
from tests.module_store import module_backend_eng
from tests.module_store import module_backend_opened as shared
from tests.test_a40b41_carried import BING, _as_an_earlier_release_left_it, old_release, opened
from tests.test_a40fix41_signin import _signed_in
from tests.test_idlow41_identity import _a47
from tests.test_rv41n_probes import _his, _nids, _reads
from tests.test_rvidentity32_probes import MRN, _nid, merge, oru, patients

__all__ = ["module_backend_eng", "shared"]


def test_the_a37_takes_the_carried_survivor_out_of_her_compartment(shared: tuple[Engine, TestClient]) -> None:
    """Her number on R1 (FNXRMYY) and on her record at 阜宁县中医院 (linked); R1 merged into R2 (numberless, a result
    under it): her token reads R2's result. The A37 of R2 and R1 then parts them: the number goes back to R1, and
    her token reads R2's result no more -- R2 is another person's as far as anyone knows."""
    number = _nid("32092319620303410")
    engine, http = shared
    _his(http, "ZQ41X", "ZQ41Xa", f"~{number}^^^^NNCHN", "13700007771", facility="FNZYY")
    one = _his(http, "R141X", "R141Xa", f"~{number}^^^^NNCHN", "13700007772")
    two = _his(http, "R241X", "R241Xa", "", "13700007773")
    assert ack_code_of(post(http, oru("R241Xb", "R241X^^^FNXRMYY^MR", *BING, "R2X41OBS"))) == "AA"
    assert ack_code_of(post(http, merge("R341X", "R241X^^^FNXRMYY^MR", *BING, "R141X^^^FNXRMYY^MR"))) == "AA"
    assert _reads(http, _signed_in(http, engine, number), "R2X41OBS") == [f"Patient/{two}"]
    ack = post(http, unlink("R441X", ("R241X", *BING), ("R141X", *BING)))
    assert ack_code_of(ack) == "AA", err_lines(ack)
    assert number in _nids(read_patient(http, one)) and number not in _nids(read_patient(http, two))
    token = _signed_in(http, engine, number)
    assert _reads(http, token, "R2X41OBS") == [], (token["patient"], two)


def test_an_a47_onto_a_record_in_use_carries_the_number_marked(shared: tuple[Engine, TestClient]) -> None:
    """The HIS's A47 names HB (in use, a result on it) in PID-3 and HA (her number) in MRG-1: the number goes to HB
    marked carried-from HA (a merge of two records in use), so while it stands her token reads HB's result, and the
    A37 that parts them gives the number back to HA alone."""
    number = _nid("32092319620303436")
    engine, http = shared
    one = _his(http, "HA41X", "HA41Xa", f"~{number}^^^^NNCHN", "13700008881")
    two = _his(http, "HB41X", "HB41Xa", "", "13700008882")
    assert ack_code_of(post(http, oru("HB41Xb", "HB41X^^^FNXRMYY^MR", *BING, "HB41XOBS"))) == "AA"
    assert ack_code_of(post(http, _a47("HC41X", "HB41X", BING, "HA41X"))) == "AA"
    held = read_patient(http, two)
    assert any(i.get("value") == number and any(str((e.get("valueReference") or {}).get("reference")).endswith(one)
                                                for e in i.get("extension") or ())
               for i in held.get("identifier") or ()), held
    assert _reads(http, _signed_in(http, engine, number), "HB41XOBS") == [f"Patient/{two}"]
    ack = post(http, unlink("HD41X", ("HB41X", *BING), ("HA41X", *BING)))
    assert ack_code_of(ack) == "AA", err_lines(ack)
    assert number in _nids(read_patient(http, one)) and number not in _nids(read_patient(http, two))
    token = _signed_in(http, engine, number)
    assert token["patient"] == one and _reads(http, token, "HB41XOBS") == []


def _carried_from(record: dict, number: str) -> list[str]:
    """The records the carried-from marks on ``record``'s ID number ``number`` name."""
    return [str((e.get("valueReference") or {}).get("reference")) for i in record.get("identifier") or ()
            if i.get("value") == number for e in i.get("extension") or () if "carried-from" in str(e.get("url"))]


@pytest.mark.parametrize("backend_settings", ["sqlite", "mongomock"], indirect=True)
def test_the_pass_carries_an_old_a47_onto_a_record_in_use_as_a_merge(backend_settings: Settings,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Filed by a release before id40's carry: an A47 onto HB (in use) from HA (her number), and an A47 onto a record
    it makes (RN) from RA (another number). The once-per-store pass carries as the live carry now does: her number on
    HB marked carried-from HA (a merge: the A37 takes it back); RA's on RN unmarked (a renumbering)."""
    number, moved = _nid("32092319620303444"), _nid("32092319620303452")
    with opened(backend_settings) as (engine, http):
        with old_release(monkeypatch):
            one = _his(http, "HA41Y", "HA41Ya", f"~{number}^^^^NNCHN", "13700009991")
            two = _his(http, "HB41Y", "HB41Ya", "", "13700009992")
            assert ack_code_of(post(http, _a47("HC41Y", "HB41Y", BING, "HA41Y"))) == "AA"
            _his(http, "RA41Y", "RA41Ya", f"~{moved}^^^^NNCHN", "13700009993")
            assert ack_code_of(post(http, _a47("RC41Y", "RN41Y", BING, "RA41Y"))) == "AA"
        _as_an_earlier_release_left_it(engine)
        done = carried_numbers.backfill(engine.repository, engine.audit, "a40fix41b", engine.site)
        assert done is not None, done
        assert _carried_from(read_patient(http, two), number) == [f"Patient/{one}"], read_patient(http, two)
        (renumbered,) = patients(http, f"{MRN}|RN41Y")
        assert moved in _nids(renumbered) and _carried_from(renumbered, moved) == [], renumbered
