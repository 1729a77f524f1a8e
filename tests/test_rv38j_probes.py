"""rv38j: probes of idfix38 (a number under an undeclared CX-4, remembered on the institution's own record).

Real HL7 over ``POST /hl7v2`` into a real store on each backend (``module_eng``), read back over ``/fhir``."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id, raw_of
from tests.hl7_calls import post
from tests.identity39_calls import engine_and_client, registered, tokens
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_idfix38_remembered import _hers
from tests.test_regapp33_registrar import _batch
from tests.test_rvidentity32_probes import MRN, _nid, adt, merge, oru, patients, subjects

both = engine_and_client("rv38j")


def _merged_away(http: TestClient, stem: str, name: str, birth: str, control: str) -> dict:
    """Her record ``<stem>1`` with the LIS's number remembered (``_hers``), then the HIS's second record of her,
    ``<stem>2``, and its A40 merging ``<stem>1`` into it under the bare MRN (both AA): her first record."""
    one = _hers(http, f"{stem}1", name, birth, control)
    assert ack_code_of(post(http, adt(f"{control}X", f"{stem}2^^^FNXRMYY^MR", name, birth, "F"))) == "AA"
    assert ack_code_of(post(http, merge(f"{control}Y", f"{stem}2^^^FNXRMYY^MR", name, birth, "F",
                                        f"{stem}1^^^FNXRMYY^MR"))) == "AA"
    return one


def test_the_remembered_write_keeps_every_identifier_as_stated_in_order(both: tuple[Engine, TestClient]) -> None:
    """The identifier-alone write (``_remember``): her identifiers as the HIS stated them -- MRN and national ID,
    each with its type, use and order -- stay exactly, the LIS's number added after them."""
    engine, http = both
    nid = _nid("32092319610101002")
    old = _hers(http, "J38A", "柳^甲", "19610101", "JA", f"{nid}^^^^NNCHN")
    now = http.get(f"/fhir/Patient/{old['id']}").json()
    assert now["identifier"][:len(old["identifier"])] == old["identifier"], (old["identifier"], now["identifier"])
    assert f"{MRN}:LIS|J38A" in tokens(now)
    assert (now["name"], now["gender"], now["birthDate"]) == (old["name"], old["gender"], old["birthDate"])


def test_a_refused_message_is_kept_raw_and_its_ack_names_no_one(both: tuple[Engine, TestClient]) -> None:
    """Another person's result under her remembered number: AE; the raw message is kept in the message store (for
    an operator's replay) byte for byte; nothing of her (name, birth date, record id) nor of him is in the ACK."""
    engine, http = both
    old = _hers(http, "J38B", "柳^乙", "19610202", "JB")
    sent = oru("JBC", "J38B^^^LIS^PI", "李^乙", "19900202", "M", "JBC")
    ack = post(http, sent)
    assert ack_code_of(ack) == "AE", ack
    text = ack.decode()
    assert all(s not in text for s in ("柳", "乙", "李", "19610202", "1961", "19900202", old["id"])), text
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "JBC"))
    assert doc is not None and raw_of(doc).decode().replace("\n", "\r").rstrip("\r") == sent.rstrip("\r"), doc
    assert subjects(http, "JBC") == []


def test_another_institutions_lis_number_is_not_taken_by_the_remembered_one(both: tuple[Engine, TestClient]) -> None:
    """FNXRMYY remembered its LIS number J38C on her record; the other hospital FNZYY's LIS sends the same value
    ``J38C^^^LIS^PI`` for a man: its own institution's number -- accepted, never filed under her record,
    never refused because of her."""
    engine, http = both
    old = _hers(http, "J38C", "柳^丙", "19610303", "JC")
    other = oru("JCC", "J38C^^^LIS^PI", "李^丙", "19900303", "M", "JCC").replace("|LIS|FNXRMYY|", "|LIS|FNZYY|", 1)
    ack = post(http, other)
    assert ack_code_of(ack) == "AA", ack
    (subject,) = subjects(http, "JCC")
    assert subject != f"Patient/{old['id']}"
    assert [p["id"] for p in patients(http, f"{MRN}:LIS|J38C")] == [old["id"]]


def test_a_result_under_the_remembered_number_after_her_record_was_merged(both: tuple[Engine, TestClient]) -> None:
    """Her remembered record J38F1 merged into J38F2 (A40 under the bare MRN); the LIS's next result under
    ``J38F1^^^LIS^PI`` goes where her result under the bare J38F1 goes -- not a new record of the number."""
    engine, http = both
    one = _merged_away(http, "J38F", "柳^己", "19610606", "JF")
    bare = post(http, oru("JFZ", "J38F1", "柳^己", "19610606", "F", "JFZ", app="HIS"))
    assert ack_code_of(bare) == "AA", bare
    ack = post(http, oru("JFW", "J38F1^^^LIS^PI", "柳^己", "19610606", "F", "JFW"))
    assert ack_code_of(ack) == ack_code_of(bare), (bare, ack)
    assert subjects(http, "JFW") == subjects(http, "JFZ"), (one["id"], bare, ack)


def test_after_her_registration_a_merge_under_the_number_still_moves_her_record(
        both: tuple[Engine, TestClient]) -> None:
    """The HIS's A08 of her bare record (its own identifiers only) leaves the remembered number on it (ident39:
    ``merge.yaml`` ``Patient.identifier`` ``beside``; it had dropped it, idfix38's limit, and this merge was then
    refused at MRG-1): MRG-1 ``J38G1^^^HIS^MR`` names her record, which the merge moves (AA) -- out of use,
    replaced by J38G2 -- never a phantom record of the number as sent."""
    engine, http = both
    for c, number in (("JGA", "J38G1"), ("JGB", "J38G2")):
        assert ack_code_of(post(http, adt(c, f"{number}^^^FNXRMYY^MR", "柳^庚", "19610707", "F"))) == "AA"
    assert ack_code_of(post(http, oru("JGC", "J38G1^^^HIS^MR", "柳^庚", "19610707", "F", "JGC"))) == "AA"
    (one,) = patients(http, f"{MRN}|J38G1")
    (two,) = patients(http, f"{MRN}|J38G2")
    assert ack_code_of(post(http, adt("JGD", "J38G1^^^FNXRMYY^MR", "柳^庚", "19610707", "F", event="A08"))) == "AA"
    assert f"{MRN}:HIS|J38G1" in tokens(http.get(f"/fhir/Patient/{one['id']}").json())
    ack = post(http, merge("JGE", "J38G2^^^HIS^MR", "柳^庚", "19610707", "F", "J38G1^^^HIS^MR"))
    assert ack_code_of(ack) == "AA", ack
    after = http.get(f"/fhir/Patient/{one['id']}").json()
    assert after.get("active") is False, after
    assert {"other": {"reference": f"Patient/{two['id']}"}, "type": "replaced-by"} in after["link"], after["link"]
    assert sorted(p["id"] for p in patients(http, "J38G1")) == [one["id"]]


def test_a_batch_her_result_then_a_thin_one_under_the_number(both: tuple[Engine, TestClient]) -> None:
    """One batch: her result (files as own, remembers), then a thin one (no birth date) under the same number:
    both filed under her record, no record of the number as sent."""
    engine, http = both
    old = registered(http, "J38H", "JHA", "柳^辛", "19610808", "F")
    body = _batch(oru("JHB", "J38H^^^LIS^PI", "柳^辛", "19610808", "F", "JHB"),
                  oru("JHC", "J38H^^^LIS^PI", "柳^辛", "", "F", "JHC"))
    ack = post(http, body)
    assert b"MSA|AA|JHB" in ack and b"MSA|AA|JHC" in ack, ack
    assert subjects(http, "JHB") == subjects(http, "JHC") == [f"Patient/{old['id']}"]
    assert [p["id"] for p in patients(http, "J38H")] == [old["id"]]


def test_a_batch_a_man_first_then_her_under_the_number(both: tuple[Engine, TestClient]) -> None:
    """One batch, nothing remembered yet: a man's result under ``J38K^^^LIS^PI`` (not positively her: kept apart,
    a record of the number as sent), then hers: hers filed under her record, never under his."""
    engine, http = both
    old = registered(http, "J38K", "JKA", "柳^壬", "19610909", "F")
    body = _batch(oru("JKB", "J38K^^^LIS^PI", "李^壬", "19900909", "M", "JKB"),
                  oru("JKC", "J38K^^^LIS^PI", "柳^壬", "19610909", "F", "JKC"))
    ack = post(http, body)
    assert b"MSA|AA|JKC" in ack, ack
    assert subjects(http, "JKC") == [f"Patient/{old['id']}"]
    assert f"Patient/{old['id']}" not in subjects(http, "JKB")


def test_the_number_outlives_a_merge_of_her_record(both: tuple[Engine, TestClient]) -> None:
    """Her remembered record J38L1 merged into J38L2 by the HIS (bare MRG-1): the LIS number stays on the merged
    record, and a man's result under it is refused, never a new record of the number."""
    engine, http = both
    one = _merged_away(http, "J38L", "柳^癸", "19611212", "JL")
    ack = post(http, oru("JLZ", "J38L1^^^LIS^PI", "李^癸", "19901212", "M", "JLZ"))
    assert ack_code_of(ack) == "AE" and subjects(http, "JLZ") == [], ack
    assert f"{MRN}:LIS|J38L1" in tokens(http.get(f"/fhir/Patient/{one['id']}").json())


def test_her_newborns_result_under_her_remembered_number_is_refused(both: tuple[Engine, TestClient]) -> None:
    """A newborn's result labelled with the mother's LIS number (another name and birth date, the same sex; no
    PID-21): refused at PID-3, never filed under the mother's record nor as a record of the number. (Under her
    own MRN the same result is refused too since nbfix38: ``contradicts_all``, name and a day of birth both
    differing, ``tests/test_nbfix38_newborn.py``.)"""
    engine, http = both
    old = _hers(http, "J38M", "柳^子", "19610101", "JM")
    ack = post(http, oru("JMD", "J38M^^^LIS^PI", "柳子之女", "20261130", "F", "JMD"))
    assert ack_code_of(ack) == "AE" and subjects(http, "JMD") == [], ack
    assert [p["id"] for p in patients(http, "J38M")] == [old["id"]]


def test_a_batch_her_result_then_a_merge_under_the_number(both: tuple[Engine, TestClient]) -> None:
    """One batch: her result under ``J38Q1^^^HIS^MR`` (filed under her bare record, remembered as the batch leaves
    it), then the HIS's A40 whose MRG-1 is ``J38Q1^^^HIS^MR``: the merge moves her record, as sent singly."""
    engine, http = both
    for c, number in (("JQA", "J38Q1"), ("JQB", "J38Q2")):
        assert ack_code_of(post(http, adt(c, f"{number}^^^FNXRMYY^MR", "柳^卯", "19610303", "F"))) == "AA"
    (one,) = patients(http, f"{MRN}|J38Q1")
    (two,) = patients(http, f"{MRN}|J38Q2")
    body = _batch(oru("JQC", "J38Q1^^^HIS^MR", "柳^卯", "19610303", "F", "JQC", app="HIS"),
                  merge("JQD", "J38Q2^^^HIS^MR", "柳^卯", "19610303", "F", "J38Q1^^^HIS^MR"), app="HIS")
    ack = post(http, body)
    assert b"MSA|AA|JQC" in ack and b"MSA|AA|JQD" in ack, ack
    assert subjects(http, "JQC") == [f"Patient/{one['id']}"]
    after = http.get(f"/fhir/Patient/{one['id']}").json()
    assert after.get("active") is False, after
    assert {"other": {"reference": f"Patient/{two['id']}"}, "type": "replaced-by"} in after["link"], after["link"]
    assert sorted(p["id"] for p in patients(http, "J38Q1")) == [one["id"]]
