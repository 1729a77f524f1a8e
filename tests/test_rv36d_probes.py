"""rv36d: review probes of the thirty-sixth round's merged changes (priv36, perfi36, perfr36).

Real HL7 through ``POST /hl7v2`` into the real store on each backend, the operator's replay through
``/admin/quarantine/{id}/replay``, FHIR searches through ``/fhir`` -- the shared set-up of
``tests/test_priv36_refusals.py`` (its module ``world``: an engine alerting every 3 refusals)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from engine.repository.search import split_values, token_value
from tests.hl7_calls import post
from tests.test_idfix35_merges import _zy
from tests.test_priv36_refusals import _fidelity, _lis, _refusal_records, world  # noqa: F401  (the module fixture)
from tests.test_rvidentity32_probes import adt, oru


def _refused(engine: Engine) -> int:
    return len(_refusal_records(engine))


def _count(engine: Engine, http: TestClient, key: str) -> int:
    return int(_fidelity(engine, http, "FNXRMYY").get("member_refused", {}).get(key, 0))


def test_an_operators_replay_is_not_counted_as_the_senders_probe(world: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """FNZYY's LIS is refused once (AE 205) for naming FNXRMYY's RV1 for another person: counted once. FNZYY's
    operator replays the stored message (say, after asking FNXRMYY): the replay is the operator's act, not the
    sender's message arriving again -- the sender's count and its audit trail of refusals should not grow; it
    does (each replay one more "refusal" with FNZYY as agent, three replays an alert on FNZYY/LIS)."""
    engine, http = world
    assert ack_code_of(post(http, adt("RV1A", "RV1^^^FNXRMYY^MR", "陈^四", "19920303", "F"))) == "AA"
    before, audited = _count(engine, http, "FNZYY/LIS"), _refused(engine)
    assert ack_code_of(post(http, _lis(oru("RV1B", "RV1^^^FNXRMYY^MR", "张^三", "", "M", "RVGLU1")))) == "AE"
    assert _count(engine, http, "FNZYY/LIS") == before + 1 and _refused(engine) == audited + 1
    operator = {"Authorization": "Bearer " + engine.auth.issue_system_token("operator", "system/*.cruds")}
    doc_id = message_id("FNZYY", "RV1B")
    for _ in range(3):
        r = http.post(f"/admin/quarantine/{doc_id}/replay", headers=operator)
        assert r.status_code == 200 and r.json()["ack_code"] == "AE", r.text  # refused again, rightly
    assert _count(engine, http, "FNZYY/LIS") == before + 1
    assert _refused(engine) == audited + 1


def test_an_identical_resend_is_answered_again_not_counted_again(world: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """The same refused message sent again unchanged (same MSH-10) is answered from the message store: the same AE,
    nothing new learnt by the sender, so not another refusal counted or audited."""
    engine, http = world
    assert ack_code_of(post(http, adt("RV2A", "RV2^^^FNXRMYY^MR", "陈^四", "19920303", "F"))) == "AA"
    refused = _lis(oru("RV2B", "RV2^^^FNXRMYY^MR", "张^三", "", "M", "RVGLU2"))
    assert ack_code_of(post(http, refused)) == "AE"
    counted, audited = _count(engine, http, "FNZYY/LIS"), _refused(engine)
    assert ack_code_of(post(http, refused)) == "AE"
    assert _count(engine, http, "FNZYY/LIS") == counted and _refused(engine) == audited


def test_the_same_persons_referral_is_never_counted_as_a_refusal(world: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """Guard against over-counting: FNZYY's result for FNXRMYY's own person (same name and sex) is AA and neither
    counted nor audited as a refusal, whatever the birth date left out."""
    engine, http = world
    assert ack_code_of(post(http, adt("RV3A", "RV3^^^FNXRMYY^MR", "陈^四", "19920303", "F"))) == "AA"
    counted, audited = _count(engine, http, "FNZYY/LIS"), _refused(engine)
    assert ack_code_of(post(http, _lis(oru("RV3B", "RV3^^^FNXRMYY^MR", "陈^四", "", "F", "RVGLU3")))) == "AA"
    assert _count(engine, http, "FNZYY/LIS") == counted and _refused(engine) == audited


@pytest.mark.parametrize("raw, values", [
    ("a,b", ["a", "b"]),
    ("a\\,b", ["a,b"]),
    ("a\\\\,b", ["a\\", "b"]),  # an escaped backslash does not escape the comma after it
    ("a\\$b,c\\|d", ["a$b", "c|d"]),
    (",", ["", ""]),
    ("", [""]),
    ("R6\\\\", ["R6\\"]),  # a value ending in an escaped backslash
    ("a\\|b", ["a|b"]),
])
def test_split_values_follows_fhir_escaping_with_and_without_the_fast_path(raw: str, values: list[str]) -> None:
    """priv36's fast path (no backslash: ``str.split``) and the escaping loop give FHIR R4's reading of a value list
    (search.html#escaping): ``\\,`` ``\\$`` ``\\|`` ``\\\\``."""
    from engine.repository.search import _unescape
    assert [_unescape(v) for v in split_values(raw)] == values


def _patient(http: TestClient, value: str, family: str) -> str:
    body: dict[str, Any] = {"resourceType": "Patient", "name": [{"family": family}],
                            "identifier": [{"system": "urn:rv36d:mrn", "value": value}]}
    r = http.post("/fhir/Patient", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_an_escaped_identifier_search_finds_exactly_its_record(world: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """Through /fhir: identifiers holding ``,`` ``$`` ``|`` ``\\`` are each found by their escaped token
    (``token_value``, what the owner's put-back now searches) and only theirs; the unescaped comma is two values."""
    _, http = world
    ids = {v: _patient(http, v, f"RV36D{n}") for n, v in enumerate(["R6,1", "R6$2", "R6|3", "R6\\4", "R6\\", "R6", "1"])}
    for value, rid in ids.items():
        r = http.get("/fhir/Patient", params={"identifier": token_value("urn:rv36d:mrn", value)})
        assert r.status_code == 200, r.text
        assert [e["resource"]["id"] for e in r.json().get("entry", [])] == [rid], (value, r.json())
    r = http.get("/fhir/Patient", params={"identifier": "urn:rv36d:mrn|R6,1"})  # unescaped: R6 OR urn-less 1
    found = {e["resource"]["id"] for e in r.json().get("entry", [])}
    assert ids["R6"] in found and ids["R6,1"] not in found, r.json()


def test_a_sender_rotating_msh3_still_raises_the_alert(world: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """FNZYY sends three results (the engine alerts every 3 refusals) under FNXRMYY's RV4..RV6, each for another
    person than FNXRMYY registered, each with another MSH-3 (PRB1, PRB2, PRB3): refused AE 205 each, all three
    accepted as senders. One institution probed three numbers; the alert should fire for FNZYY -- none does, each
    count_key (FNZYY/PRB1, ...) stays at 1."""
    engine, http = world
    for k in (4, 5, 6):
        assert ack_code_of(post(http, adt(f"RV{k}A", f"RV{k}^^^FNXRMYY^MR", "陈^四", "19920303", "F"))) == "AA"
    audited = _refused(engine)
    for k in (4, 5, 6):
        ack = post(http, _lis(oru(f"RV{k}B", f"RV{k}^^^FNXRMYY^MR", "张^三", "", "M", f"RVGLU{k}", app=f"PRB{k - 3}")))
        assert ack_code_of(ack) == "AE", ack
    records = _refusal_records(engine)[audited:]
    assert len(records) == 3 and {r["details"]["sender"] for r in records} == {"FNZYY/PRB1", "FNZYY/PRB2", "FNZYY/PRB3"}
    mine = _fidelity(engine, http, "FNXRMYY")
    assert any(r["details"].get("alert") for r in records) or any(k.startswith("FNZYY/PRB") for k in mine.get("alerts", {}))


@pytest.mark.parametrize("thin", [True, False])
def test_a_merge_of_the_members_persons_duplicate_into_the_same_persons_record_is_filed(
        world: tuple[Engine, TestClient], thin: bool) -> None:  # noqa: F811
    """Guard of priv36's survivor rule against over-refusal: FNZYY's record keyed by FNXRMYY's number and its own
    ZRM record are both 陈四 (F, 1992), FNXRMYY's person. FNZYY's A40 merging the former into ZRM -- its PID of the
    name alone, or in full -- is the same person's duplicate cleaned up: AA, not refused, not counted as a probe."""
    engine, http = world
    n = "RM1" if thin else "RM2"
    assert ack_code_of(post(http, adt(f"{n}A", f"{n}^^^FNXRMYY^MR", "陈^四", "19920303", "F"))) == "AA"
    assert ack_code_of(post(http, _lis(adt(f"{n}B", f"{n}^^^FNXRMYY^MR", "陈^四", "19920303", "F", "A01")))) == "AA"
    assert ack_code_of(post(http, _lis(adt(f"{n}C", f"Z{n}^^^FNZYY^MR", "陈^四", "19920303", "F")))) == "AA"
    counted, audited = _count(engine, http, "FNZYY/HIS"), _refused(engine)
    ack = post(http, _zy(f"{n}D", "A40", f"Z{n}^^^FNZYY^MR", "陈^四", "" if thin else "19920303", "" if thin else "F",
                         f"{n}^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AA", ack
    assert _count(engine, http, "FNZYY/HIS") == counted and _refused(engine) == audited


def test_the_refusal_record_names_the_authenticated_client(world: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """Over POST /hl7v2 the poster is a system client (here subject ``priv36``); MSH-4 is only what the message
    claims. The Security Alert record of a refusal should carry who was authenticated, so the alert can be traced
    to a credential, not only to the institution a message names."""
    engine, http = world
    assert ack_code_of(post(http, adt("RV7A", "RV7^^^FNXRMYY^MR", "陈^四", "19920303", "F"))) == "AA"
    audited = _refused(engine)
    assert ack_code_of(post(http, _lis(oru("RV7B", "RV7^^^FNXRMYY^MR", "张^三", "", "M", "RVGLU7")))) == "AE"
    (record,) = _refusal_records(engine)[audited:]
    assert "priv36" in repr({k: v for k, v in record.items() if k != "details"}) + repr(record["details"]), record
