"""regfix41c: a resident ID number given to a record that holds none, by an application that did not register the
record, while another record holds that number, is held for the operator (W 205), never taken (rv41j HIGH 1); the
decision on it is barred while the other record holds it; another member's holder is named by its institution.

Real HL7 v2 through ``POST /hl7v2`` and the ingestor's batch, the real store on each backend, ``/admin`` with an
operator's token, ``/fhir`` read back as a resident (the SMART patient token the resident app is given)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from adapters.hl7v2.escapes import unescape
from engine.api.app import create_app
from engine.api.ui_quarantine import WORDS, err_said
from engine.engine import Engine
from engine.settings import Settings
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import engine_and_client, registered
from tests.module_store import module_eng
from tests.owner41_calls import at_fnzyy, decide, held_w, nids, resident_reads, shown
from tests.test_regapp33_registration_apps import _site
from tests.test_rvidentity32_probes import MRN, _nid, adt, oru, patients

__all__ = ["module_eng"]

both = engine_and_client("regfix41c")
OPS = "regfix41c-ops"
_decide = partial(decide, ops=OPS)
_shown = partial(shown, ops=OPS)
_reads = partial(resident_reads, client_id="rf41c-phone")


def test_the_lis_walk_in_on_a_numberless_record_is_held_and_its_decision_barred(
        both: tuple[Engine, TestClient]) -> None:
    """HIS registers NA (no number, an HbA1c) and NB (number b, another woman of one name and birth date). The LIS's
    walk-in A04 under NA states b: held (W 205 naming MSH-3 HIS, listed), NA holds no number, the two not linked,
    NB's resident reads nothing of NA. The view bars the decision naming NB by its MRN; the decision is 409. The HIS
    takes b off NB (it was the wrong one): the decision gives NA b, and says it used the decision."""
    engine, http = both
    b = _nid("32092319700501012")
    na = registered(http, "NA", "NA1", "丙^一", "19700501", "F")
    nb = registered(http, "NB", "NB1", "丙^一", "19700501", "F", f"~{b}^^^^NNCHN")
    assert ack_code_of(post(http, oru("NA9", "NA^^^FNXRMYY^MR", "丙^一", "19700501", "F", "HBA1C"))) == "AA"
    ack = post(http, adt("NA2", f"NA^^^FNXRMYY^MR~{b}^^^^NNCHN", "丙^一", "19700501", "F", app="LIS"))
    assert held_w(ack) and "MSH-3 HIS" in ack.decode() and "MSH-3 LIS" in ack.decode(), ack
    assert b not in ack.decode() and "NB" not in ack.decode(), ack  # (the sender is not told whose number)
    (line,) = [x for x in err_lines(ack) if "|205^" in x]
    zh, _ = err_said(WORDS.current(engine.settings.site), "205", unescape(line.split("|")[8]))
    assert "已属于另一份病历" in zh and "MSH-3 HIS" in zh and "MSH-3 LIS" in zh, zh
    (now,) = patients(http, f"{MRN}|NA")
    assert not nids(now) and not now.get("link"), now
    seen = _reads(engine, nb, [f"/fhir/Patient/{na['id']}", "/fhir/Observation",
                               f"/fhir/Patient/{nb['id']}/$everything"])
    assert not any(na["id"] in t or "HBA1C" in t for t in seen), seen
    (claim,) = _shown(http, engine, "NA2")["held_claims"]
    assert claim["unavailable"] == {"merged": False, "mrn": "NB"}, claim
    decided = _decide(http, engine, "NA2")
    assert decided.status_code == 409 and "(MRN NB at FNXRMYY)" in decided.text, decided.text
    assert ack_code_of(post(http, adt("NB2", 'NB^^^FNXRMYY^MR~""^^^^NNCHN', "丙^一", "19700501", "F"))) == "AA"
    assert "unavailable" not in _shown(http, engine, "NA2")["held_claims"][0]
    decided = _decide(http, engine, "NA2")
    assert decided.status_code == 200 and decided.json()["decided"]["used"] is True, decided.text
    (now,) = patients(http, f"{MRN}|NA")
    assert nids(now) == {b}, nids(now)


@pytest.fixture(scope="module")
def declared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, TestClient]]:
    """A site declaring its HIS the registration application (``registration_applications: [HIS]``)."""
    root = _site(tmp_path_factory.mktemp("regfix41c-declared"), ["HIS"])
    with Engine(Settings(data_dir=root / "var", http_port=0, mllp_port=0, site=root)) as eng, \
            TestClient(create_app(eng)) as client:
        client.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("t", "system/*.cruds")
        yield eng, client


def test_the_registrar_gives_its_numberless_record_a_number_another_record_holds(
        declared: tuple[Engine, TestClient]) -> None:
    """The declared registrar's word (the HIS's A08 on NC, which it registered without the card) stating the number
    ND holds is taken, no hold: the index's rule (one number, one person) -- the HIS registering one person twice, or
    the same person's record at another member, is what the index joins. On a site declaring no registration
    application the same A08 is held (decl42: nothing tells the HIS from a LIS there, and no renumbering joins two
    records -- ``tests/test_decl42_renumber.py``)."""
    engine, http = declared
    b = _nid("32092319700502012")
    registered(http, "NC", "NC1", "丙^二", "19700502", "F")
    nd = registered(http, "ND", "ND1", "丙^二", "19700502", "F", f"~{b}^^^^NNCHN")
    ack = post(http, adt("NC2", f"NC^^^FNXRMYY^MR~{b}^^^^NNCHN", "丙^二", "19700502", "F", event="A08"))
    assert ack_code_of(ack) == "AA" and not held_w(ack), ack
    (now,) = patients(http, f"{MRN}|NC")
    assert nids(now) == {b} and nd["id"] in json.dumps(now.get("link") or []), now


def test_a_number_another_member_holds_is_held_and_the_member_named(both: tuple[Engine, TestClient]) -> None:
    """阜宁县中医院 registered ZN (number b). At 阜宁县人民医院 the LIS's walk-in under NE (no number) states b: held;
    the view names the member (阜宁县中医院), never ZN's MRN nor its record; the 409 says so and advises this
    hospital's registration, never a merge."""
    engine, http = both
    b = _nid("32092319700503012")
    assert ack_code_of(post(http, at_fnzyy("ZN1", "ZN", "丙^三", "19700503", "F", f"~{b}^^^^NNCHN"))) == "AA"
    registered(http, "NE", "NE1", "丙^三", "19700503", "F")
    assert held_w(post(http, adt("NE2", f"NE^^^FNXRMYY^MR~{b}^^^^NNCHN", "丙^三", "19700503", "F", app="LIS")))
    (zn,) = patients(http, b)
    (claim,) = _shown(http, engine, "NE2")["held_claims"]
    assert claim["unavailable"] == {"merged": False, "mrn": "", "member": "阜宁县中医院"}, claim
    decided = _decide(http, engine, "NE2")
    said = decided.json()["issue"][0]["diagnostics"]
    assert decided.status_code == 409 and "a record at 阜宁县中医院, another member institution" in said, said
    assert "this hospital's registration" in said and "A40" not in said, said
    assert zn["id"] not in said and "ZN" not in said and b not in said, said
    (now,) = patients(http, f"{MRN}|NE")
    assert not nids(now), now


def test_one_batch_holds_as_one_by_one(module_eng: Engine) -> None:
    """In one batch: the HIS registers NG (number b) and NF (no number), then the LIS's walk-in under NF states b --
    held as one by one, the holder read as the batch leaves it (not stored yet); b on NG alone."""
    b = _nid("32092319700504012")
    with TestClient(create_app(module_eng)) as http:
        http.headers["Authorization"] = "Bearer " + module_eng.auth.issue_system_token("rf41c", "system/*.cruds")
        batch = [adt("NG1", f"NG^^^FNXRMYY^MR~{b}^^^^NNCHN", "丙^四", "19700504", "F"),
                 adt("NF1", "NF^^^FNXRMYY^MR", "丙^四", "19700504", "F"),
                 adt("NF2", f"NF^^^FNXRMYY^MR~{b}^^^^NNCHN", "丙^四", "19700504", "F", app="LIS")]
        acks = [o.ack for o in module_eng.ingestor.process([(m.encode(), "mllp", "t") for m in batch])]
        assert ack_code_of(acks[0]) == "AA" and ack_code_of(acks[1]) == "AA" and held_w(acks[2]), acks
        (ng,) = patients(http, f"{MRN}|NG")
        assert [p["id"] for p in patients(http, b)] == [ng["id"]]
        (nf,) = patients(http, f"{MRN}|NF")
        assert not nids(nf) and not nf.get("link"), nf
