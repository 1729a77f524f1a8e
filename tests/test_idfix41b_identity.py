"""idfix41b: rv41g's findings on regfix41 and idfix41 fixed -- the registrar's word read through every message it
sent (up to ``persons._STATEMENTS_READ``), an A47 onto a record in use parted by its A37 in one batch as one by one.
Real HL7 over ``POST /hl7v2`` and through the ingestor, a FHIR client's edits over ``/fhir``, SQLite and mongomock."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import engine_and_client, registered, tokens, unlink
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_idlow41_identity import _a47, _set
from tests.test_recognition_batch import _warnings
from tests.test_regfix41_number_owner import _raws
from tests.test_rv41g_probes import _records
from tests.test_rvidentity32_probes import MRN, _nid, adt, merge, oru, subjects

both = engine_and_client("idfix41b")
MAN = _nid("32092319740505019")  # born 1974-05-05, male


def test_the_man_without_a_birth_date_keeps_his_results_after_100_registrar_messages(
        both: tuple[Engine, TestClient]) -> None:
    """The HIS registers 许申 with his male number, M, never a PID-7; a FHIR client sets female (after each of the
    HIS's 100 A08s again). His own result (许申申, M, his number) is his: the registrar's word read through all its
    messages, the birth date unsaid in every one (rv41g MED 1: at 32 messages "cannot be told", AE 205 at PID-3).
    The refused path's cost is printed (``-s``): the figures in the report."""
    _, http = both
    count = 100
    him = registered(http, "HB1M", "HB1A", "许^申", "", "M", f"~{MAN}^^^^NNCHN")
    pid3 = f"HB1M^^^FNXRMYY^MR~{MAN}^^^^NNCHN"
    for n in range(count):
        assert ack_code_of(post(http, adt(f"HB1B{n}", pid3, "许^申", "", "M", event="A08"))) == "AA"
        _set(http, him["id"], gender="female")
    started = time.perf_counter()
    ack = post(http, oru("HB1C", pid3, "许^申申", "", "M", "HB1OBS"))
    print(f"\nidfix41b: the man's result after {count} registrar messages: {1000 * (time.perf_counter() - started):.0f} ms")
    assert subjects(http, "HB1OBS") == [f"Patient/{him['id']}"], err_lines(ack)


P = ("葛^辰", "19620707", "F")


def test_an_a47_onto_a_record_in_use_is_parted_by_its_a37_in_a_batch_as_one_by_one(
        both: tuple[Engine, TestClient]) -> None:
    """The HIS registers 葛辰 twice (A with her number, B), each gets a result; its A47 names B (a record in use) in
    PID-3 and A in MRG-1; its A37 of B and A parts them: AA, both in use, one by one and in one batch alike (rv41g
    HIGH 2: refused as "one record under a new number"). A true renumbering (C to CN, a number not in use) is still
    refused the A37 with a renumbering's words, both ways alike. Fails without idfix41b's ``persons._in_use``."""
    eng, http = both
    answers, records = {}, {}
    for name, tag in (("single", "HS"), ("batch", "HT")):
        nid = _nid("32092319620707028" if tag == "HS" else "32092319620707044")
        raws = _raws([
            adt(f"{tag}a", f"{tag}A^^^FNXRMYY^MR~{nid}^^^^NNCHN", *P),
            adt(f"{tag}b", f"{tag}B^^^FNXRMYY^MR", *P),
            oru(f"{tag}c", f"{tag}A^^^FNXRMYY^MR", *P, f"{tag}OA"),
            oru(f"{tag}d", f"{tag}B^^^FNXRMYY^MR", *P, f"{tag}OB"),
            _a47(f"{tag}e", f"{tag}B", P, f"{tag}A"),
            unlink(f"{tag}f", (f"{tag}B", *P), (f"{tag}A", *P)),
            adt(f"{tag}g", f"{tag}C^^^FNXRMYY^MR", *P),
            _a47(f"{tag}h", f"{tag}CN", P, f"{tag}C"),
            unlink(f"{tag}i", (f"{tag}CN", *P), (f"{tag}C", *P)),
        ])
        outcomes = ([o for raw in raws for o in eng.ingestor.process([raw])] if name == "single"
                    else eng.ingestor.process(raws))
        answers[name] = [[line.replace(tag, "H?") for line in _warnings(o.ack)] for o in outcomes]
        records[name] = _records(http, f"{tag}A", f"{tag}B")
    assert answers["batch"] == answers["single"] and records["batch"] == records["single"], (answers, records)
    assert [said[0].split("|")[1] for said in answers["single"]] == ["AA"] * 8 + ["AE"], answers["single"]
    assert records["single"] == [(True, []), (True, [])], records
    assert any("one record under a new number" in line for line in answers["single"][-1]), answers["single"][-1]


MAN5 = _nid("32092319750606013")  # born 1975-06-06, male


def test_a_number_the_registrars_merge_carried_is_its_word_only_where_it_stated_it(
        both: tuple[Engine, TestClient]) -> None:
    """Guard of ``persons._carried_as_registered``: the number a merge of the registrar's carried counts as its word
    only where its own messages stated it on the record merged away. The LIS's walk-in registers HB5L with the man's
    number (M, no PID-7); the HIS registers HB5H without it and merges HB5L into HB5H (A40: the number carried); a
    FHIR client sets HB5H female. The HIS never stated the number: the result naming HB5H with it (许酉酉, M) is
    refused as before, AE at PID-3 (taken when any number the HIS's merge carried counted: checked by mutation)."""
    _, http = both
    ack = post(http, adt("HB5a", f"HB5L^^^FNXRMYY^MR~{MAN5}^^^^NNCHN", "许^酉", "", "M", app="LIS"))
    assert ack_code_of(ack) == "AA", err_lines(ack)
    survivor = registered(http, "HB5H", "HB5b", "许^酉", "", "M")
    assert ack_code_of(post(http, merge("HB5c", "HB5H^^^FNXRMYY^MR", "许^酉", "", "M", "HB5L^^^FNXRMYY^MR"))) == "AA"
    _set(http, survivor["id"], gender="female")
    ack = post(http, oru("HB5d", f"HB5H^^^FNXRMYY^MR~{MAN5}^^^^NNCHN", "许^酉酉", "", "M", "HB5OBS"))
    assert ack_code_of(ack) == "AE" and subjects(http, "HB5OBS") == [], ack


def test_the_a37_of_an_a47_onto_a_record_in_use_gives_the_number_back(both: tuple[Engine, TestClient]) -> None:
    """The HIS registers 葛辰 as HB6A with her number and as HB6B; its A47 names HB6B (in use) in PID-3 and HB6A in
    MRG-1 (the number goes to HB6B); its A37 of HB6B and HB6A parts them (AA, both in use). Undoing the merge gives
    back what it carried, as an A40's A37 does (id40): her number on HB6A again, not on HB6B."""
    _, http = both
    nid = _nid("32092319620707060")
    registered(http, "HB6A", "HB6a", *P, f"~{nid}^^^^NNCHN")
    registered(http, "HB6B", "HB6b", *P)
    assert ack_code_of(post(http, _a47("HB6c", "HB6B", P, "HB6A"))) == "AA"
    ack = post(http, unlink("HB6d", ("HB6B", *P), ("HB6A", *P)))
    assert ack_code_of(ack) == "AA", err_lines(ack)
    held = {mrn: sorted(tokens(rec)) for mrn in ("HB6A", "HB6B")
            for rec in [e["resource"] for e in http.get("/fhir/Patient", params={"identifier": f"{MRN}|{mrn}"})
                        .json().get("entry", [])]}
    assert any(nid[:17] in t for t in held["HB6A"]) and not any(nid[:17] in t for t in held["HB6B"]), held
