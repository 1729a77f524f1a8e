"""rv37e: review probes of the thirty-seventh round's status37 (``not_back`` steps, a withdrawn result, the
kept-out P's warning, one location for an older P, the site schema) and perfx37 (``sqlite_fhir.insert_many``:
a put's rows in multi-row INSERTs of 64/16/4).

Real HL7 v2 through ``POST /hl7v2`` into the real store on each backend (``tests.module_store``), read back
over ``/fhir``; the site file through the real loader; the SQLite index rebuild on a real store file.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.merge_rules import Back, MergeRules
from engine.settings import Settings
from mappings.site import DEFAULTS_DIR, load_merge_file
from tests.hl7_calls import err_lines, module_http, post, written
from tests.module_store import module_eng
from tests.test_ordfix36_final_back import report_of

__all__ = ["engine", "module_http"]

engine = module_eng


def _msg(control: str, stamp: str, mrn: str, order: str, obx: list[tuple[str, str]], *, report: str | None = None,
         note: str = "", app: str = "LIS") -> str:
    """One ORU: OBX n is potassium-like test ``K{n}`` with (value, OBX-11) ``obx[n-1]``; OBR-25 ``report``
    (None: the one a lab sends beside the first OBX's status, ``report_of``; OBR-24 the section -- status38)."""
    lines = [f"MSH|^~\\&|{app}|FNXRMYY|HUREN|FNYGT|{stamp}||ORU^R01^ORU_R01|{control}|P|2.5.1",
             f"PID|1||{mrn}^^^FNXRMYY^MR||郑^七||19750621|M",
             f"ORC|RE|{order}P^HIS|{order}^LIS||CM",
             f"OBR|1|{order}P^HIS|{order}^LIS|CHEM^生化^L|||20261203080000|||||||||||||||||CH|{report_of(obx[0][1]) if report is None else report}"]
    for n, (value, status) in enumerate(obx, 1):
        lines.append(f"OBX|{n}|NM|K{n}^K{n}^L||{value}|mmol/L|3.5-5.5|N|||{status}|||20261203083000")
        if note and n == len(obx):
            lines.append(f"NTE|1||{note}")
    return "\r".join(lines) + "\r"


def _obs(http: TestClient, obs_id: str) -> dict:
    return http.get(f"/fhir/Observation/{obs_id}").json()


def _withdrawn(engine: Engine, http: TestClient, tag: str, n: int = 1) -> list[dict]:
    """``n`` results F 4.1 (10:00), then W for all (11:00): the withdrawn Observations as stored."""
    assert b"MSA|AA" in post(http, _msg(f"RV7-{tag}A", "20261203100000", f"RV7M{tag}", f"RV7P{tag}",
                                        [("4.1", "F")] * n))
    obs = written(engine, http, f"RV7-{tag}A", "Observation")
    assert len(obs) == n
    assert b"MSA|AA" in post(http, _msg(f"RV7-{tag}B", "20261203110000", f"RV7M{tag}", f"RV7P{tag}",
                                        [("4.1", "W")] * n))
    stored = [_obs(http, o["id"]) for o in obs]
    assert {s["status"] for s in stored} == {"entered-in-error"}, stored
    return sorted(stored, key=lambda s: s["code"]["coding"][0]["code"])


def _warned(ack: bytes) -> list[str]:
    return [e for e in err_lines(ack) if "|W|" in e and "|OBX^" in e]


# -- status37: table 0085 sequences ------------------------------------------------------------------


@pytest.mark.parametrize("status", ["U", "F", "A"])
def test_a_status_only_final_over_a_withdrawal_does_not_revive_its_value(
        engine: Engine, http: TestClient, status: str) -> None:
    """F 4.1, W (posted as wrong), then the LIS's U (or F) at 12:00 with no OBX-5: it states no result (U:
    "results already sent as preliminary" made final) -- the withdrawn 4.1 must not come back as a final
    result: a withdrawn result comes back only by a message stating its result (status37's own rule)."""
    tag = f"1{status}"
    (before,) = _withdrawn(engine, http, tag)
    ack = post(http, _msg(f"RV7-{tag}C", "20261203120000", f"RV7M{tag}", f"RV7P{tag}", [("", status)], report="F"))
    assert b"MSA|AA" in ack or b"MSA|AE" in ack, ack
    after = _obs(http, before["id"])
    assert after["status"] == "entered-in-error" or "valueQuantity" not in after, after


def test_a_registered_over_a_withdrawal_with_a_note_writes_nothing(engine: Engine, http: TestClient) -> None:
    """F 4.1, W, then the LIS's I (specimen in lab) at 12:00 with a note: the whole step (``to`` has
    registered) -- the withdrawn version unchanged, no note, one W at OBX^1^11."""
    (before,) = _withdrawn(engine, http, "2")
    ack = post(http, _msg("RV7-2C", "20261203120000", "RV7M2", "RV7P2", [("", "I")], note="复查"))
    assert b"MSA|AA" in ack, ack
    after = _obs(http, before["id"])
    assert after["meta"]["versionId"] == before["meta"]["versionId"], after
    assert (after["status"], after["valueQuantity"]["value"], after.get("note")) == ("entered-in-error", 4.1, None)
    assert [e.split("|")[2] for e in _warned(ack) if "comes back only" in e] == ["OBX^1^11"], err_lines(ack)


def _provenances(http: TestClient, obs_id: str) -> set[str]:
    got = http.get(f"/fhir/Provenance?target=Observation/{obs_id}&_count=50").json()
    return {e["resource"]["id"] for e in got.get("entry", ())}


def test_a_cancel_held_over_a_withdrawal_is_named_by_no_provenance(engine: Engine, http: TestClient) -> None:
    """F 4.1, W, then the LIS's X 5.0 at 12:00 (held whole): the message's Provenance names no version of the
    held Observation (``_hold``) -- the Provenances targeting it are the two earlier messages' only."""
    (before,) = _withdrawn(engine, http, "7")
    provs = _provenances(http, before["id"])
    assert provs, before
    assert b"MSA|AA" in post(http, _msg("RV7-7C", "20261203120000", "RV7M7", "RV7P7", [("5.0", "X")]))
    assert _obs(http, before["id"])["meta"]["versionId"] == before["meta"]["versionId"]
    assert _provenances(http, before["id"]) == provs


def test_a_preliminary_deleting_the_value_over_a_withdrawal_deletes_nothing(engine: Engine, http: TestClient) -> None:
    """F 4.1, W, then the LIS's P with OBX-5 ``""`` and OBX-8 ``""``: held whole -- the withdrawn value
    stays (it is the record of what was withdrawn), no "deleted" information."""
    (before,) = _withdrawn(engine, http, "3")
    text = _msg("RV7-3C", "20261203120000", "RV7M3", "RV7P3", [('""', "P")]).replace("|3.5-5.5|N|", '|3.5-5.5|""|')
    ack = post(http, text)
    assert b"MSA|AA" in ack, ack
    after = _obs(http, before["id"])
    assert after["meta"]["versionId"] == before["meta"]["versionId"], after
    assert after["valueQuantity"] == before["valueQuantity"] and after.get("interpretation") == before.get(
        "interpretation"), after
    assert not [e for e in err_lines(ack) if "deleted" in e], err_lines(ack)


def test_an_older_final_over_a_withdrawal_is_held(engine: Engine, http: TestClient) -> None:
    """F 4.1 (10:00), W (11:00), then the LIS's F 4.1 of 10:30 arriving last (a re-send the W overtook):
    the same sender's older statement -- the withdrawal stands."""
    (before,) = _withdrawn(engine, http, "4")
    ack = post(http, _msg("RV7-4C", "20261203103000", "RV7M4", "RV7P4", [("4.1", "F")]))
    assert b"MSA|AA" in ack, ack
    assert _obs(http, before["id"])["status"] == "entered-in-error"
    assert [e.split("|")[2] for e in _warned(ack) if "older" in e] == ["OBX^1^11"], err_lines(ack)


def test_a_cancel_over_a_withdrawn_second_result_is_located_at_its_obx(engine: Engine, http: TestClient) -> None:
    """Two results: K1 F 4.1, K2 F 4.1 (10:00); K2 alone W (11:00); then X for both (12:00): K1 is
    cancelled (a lab's cancel after F), K2 stays withdrawn, the one W located at OBX^2^11 (not OBX^1^11)."""
    tag = "5"
    assert b"MSA|AA" in post(http, _msg(f"RV7-{tag}A", "20261203100000", "RV7M5", "RV7P5", [("4.1", "F")] * 2))
    k1, k2 = sorted(written(engine, http, f"RV7-{tag}A", "Observation"), key=lambda o: o["code"]["coding"][0]["code"])
    assert b"MSA|AA" in post(http, _msg(f"RV7-{tag}B", "20261203110000", "RV7M5", "RV7P5",
                                        [("4.1", "F"), ("4.1", "W")], report="C"))
    assert _obs(http, k2["id"])["status"] == "entered-in-error"
    ack = post(http, _msg(f"RV7-{tag}C", "20261203120000", "RV7M5", "RV7P5", [("", "X"), ("", "X")]))
    assert b"MSA|AA" in ack, ack
    assert _obs(http, k1["id"])["status"] == "cancelled"
    after = _obs(http, k2["id"])
    assert (after["status"], after["valueQuantity"]["value"]) == ("entered-in-error", 4.1), after
    assert [e.split("|")[2] for e in _warned(ack) if "comes back only" in e] == ["OBX^2^11"], err_lines(ack)


def test_a_later_preliminary_over_a_second_final_is_located_at_its_obx(engine: Engine, http: TestClient) -> None:
    """K1 P 4.0, K2 F 4.1 (10:00), then P 5.0 for both with a note (12:00): K1 takes 5.0, K2 stays final 4.1
    (its note taken), the kept-out W at OBX^2^11 naming what stood."""
    assert b"MSA|AA" in post(http, _msg("RV7-6A", "20261203100000", "RV7M6", "RV7P6", [("4.0", "P"), ("4.1", "F")]))
    k1, k2 = sorted(written(engine, http, "RV7-6A", "Observation"), key=lambda o: o["code"]["coding"][0]["code"])
    ack = post(http, _msg("RV7-6B", "20261203120000", "RV7M6", "RV7P6", [("5.0", "P"), ("5.0", "P")], note="溶血"))
    assert b"MSA|AA" in ack, ack
    assert (_obs(http, k1["id"])["valueQuantity"]["value"]) == 5.0
    after = _obs(http, k2["id"])
    assert (after["status"], after["valueQuantity"]["value"]) == ("final", 4.1), after
    (warned,) = [e for e in _warned(ack) if "taken back only" in e]
    assert warned.split("|")[2] == "OBX^2^11" and "Observation.valueQuantity" in warned.split("what else")[0], warned


# -- status37: a site file of the thirty-sixth round -------------------------------------------------

_ROUND36 = ('{from: [final, corrected, amended, entered-in-error], to: [registered, preliminary], '
            'with: ["effective[x]"]}')


def test_a_round36_single_step_site_file_means_one_step_as_before(tmp_path: Path) -> None:
    """The shipped Observation.status rule of round 36 (one mapping, ``entered-in-error`` in ``from``) in a
    site's merge.yaml: loads, and compiles to exactly one step -- the same sets, ``with`` read as every
    ``effective[x]`` choice, not whole, no reason of its own."""
    start, end = "             not_back: [", "             withdrawn: [entered-in-error]}"
    text = (DEFAULTS_DIR / "merge.yaml").read_text(encoding="utf-8")
    path = tmp_path / "merge.yaml"
    path.write_text(text[:text.index(start)] + f"             not_back: {_ROUND36},\n" + text[text.index(end):],
                    encoding="utf-8")
    (step,) = MergeRules(load_merge_file(path)).plan("Observation", "feed").elements["status"].not_back
    assert isinstance(step, Back)
    assert step.over == {"final", "corrected", "amended", "entered-in-error"}, step
    assert step.to == {"registered", "preliminary"}, step
    assert {"effectiveDateTime", "effectivePeriod"} <= step.kept and not step.whole and not step.why, step


# -- perfx37: insert_many on the real put paths --------------------------------------------------------


def _many(control: str, mrn: str, order: str, n: int, value: str, stamp: str) -> str:
    return _msg(control, stamp, mrn, order, [(value, "F")] * n)


@pytest.mark.parametrize("n", [69, 85])
def test_a_message_of_many_results_is_stored_and_found_whole(engine: Engine, http: TestClient, n: int) -> None:
    """One ORU of ``n`` OBX (more than one 64-row statement of fhir_resource and of each index table, and a
    remainder): every Observation stored, each found by its code and by its value; a re-send with other
    values (a later C for all) replaces every one's index rows (the old value found no more)."""
    mrn, order = f"RV7MANY{n}", f"RV7ORD{n}"
    assert b"MSA|AA" in post(http, _many(f"RV7-M{n}A", mrn, order, n, "4.1", "20261203100000"))
    obs = written(engine, http, f"RV7-M{n}A", "Observation")
    assert len(obs) == n
    (patient,) = {o["subject"]["reference"] for o in obs}

    def found(query: str) -> set[str]:
        got = http.get(f"/fhir/Observation?subject={patient}&{query}&_count=200&_elements=id").json()
        return {e["resource"]["id"] for e in got.get("entry", ())}

    assert len(found("value-quantity=4.1")) == n
    by_code = {o["code"]["coding"][0]["code"]: o["id"] for o in obs}
    for code, oid in by_code.items():
        assert found(f"code={code}") == {oid}, code
    text = _msg(f"RV7-M{n}B", "20261203120000", mrn, order, [("4.7", "C")] * n)
    assert b"MSA|AA" in post(http, text)
    assert found("value-quantity=4.1") == set()
    assert found("value-quantity=4.7") == set(by_code.values())
    assert found("status=corrected") == set(by_code.values())


def _client(eng: Engine) -> TestClient:
    """A client of ``eng`` with a hospital system's token, as ``tests.hl7_calls.module_http``'s."""
    client = TestClient(create_app(eng))
    client.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("hl7-tests", "system/*.cruds")
    return client


def test_the_sqlite_index_rebuild_writes_every_row(tmp_path: Path) -> None:
    """The third SQLite caller of ``insert_many``: the rebuild of the search index when the parameter list
    changed (``_reindex``, 500 resources a batch). A store with an 85-result message: its index tables'
    rows read, the signature changed in the real file, the store opened again -- the same rows, row for
    row, and the same answers."""
    settings = Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, base_url="https://huren.example")
    tables = ("ix_hash", "ix_date", "ix_string", "ix_quantity")

    def rows(db: Path) -> dict[str, list[tuple]]:
        with sqlite3.connect(db) as conn:
            return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in tables}  # noqa: S608

    with Engine(settings) as eng, _client(eng) as http:
        assert b"MSA|AA" in post(http, _many("RV7-R1", "RV7MREIX", "RV7OREIX", 85, "4.1", "20261203100000"))
        obs = written(eng, http, "RV7-R1", "Observation")
    db = settings.sqlite_path
    before = rows(db)
    assert sum(map(len, before.values())) > 500, {t: len(r) for t, r in before.items()}
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE fhir_meta SET value = 'rv37e' WHERE key = 'indexed-by'")
    with Engine(settings) as eng, _client(eng) as http:
        got = http.get("/fhir/Observation?value-quantity=4.1&_count=200&_elements=id").json()
        assert {e["resource"]["id"] for e in got["entry"]} == {o["id"] for o in obs}
    assert rows(db) == before
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT value FROM fhir_meta WHERE key = 'indexed-by'").fetchone()[0] != "rv37e"



def _older_over_final(engine: Engine, http: TestClient, tag: str, status: str, value: str) -> tuple[dict, bytes]:
    """F 4.1 (10:00), then the same sender's ``status`` with ``value`` of 09:30 arriving last: the
    Observation as stored after it, and the ACK."""
    assert b"MSA|AA" in post(http, _msg(f"RV7-{tag}A", "20261203100000", f"RV7M{tag}", f"RV7P{tag}", [("4.1", "F")]))
    (obs,) = written(engine, http, f"RV7-{tag}A", "Observation")
    ack = post(http, _msg(f"RV7-{tag}B", "20261203093000", f"RV7M{tag}", f"RV7P{tag}", [(value, status)]))
    assert b"MSA|AA" in ack, ack
    return _obs(http, obs["id"]), ack


def test_an_older_preliminary_over_a_final_is_held_at_its_status(engine: Engine, http: TestClient) -> None:
    """status37's decision 3 guarded: an older P 5.0 -- held, final 4.1 stands, W at OBX^1^11."""
    after, ack = _older_over_final(engine, http, "8P", "P", "5.0")
    assert (after["status"], after["valueQuantity"]["value"]) == ("final", 4.1), after
    assert [e.split("|")[2] for e in _warned(ack) if "older" in e] == ["OBX^1^11"], err_lines(ack)


def test_an_older_cancel_restating_the_value_leaves_the_final(engine: Engine, http: TestClient) -> None:
    """F 4.1 (10:00), then the LIS's X 4.1 of 09:30 arriving last (an older message changing only the
    status): the final must stand as an older restatement does (tfix35) -- it is cancelled instead."""
    after, ack = _older_over_final(engine, http, "8X41", "X", "4.1")
    assert (after["status"], after["valueQuantity"]["value"]) == ("final", 4.1), after


def test_an_older_cancel_over_a_final_is_held_at_its_status(engine: Engine, http: TestClient) -> None:
    """F 4.1 (10:00), then the LIS's X 5.0 of 09:30 arriving last: held, final 4.1 stands (it does), the W
    located at OBX^1^11 as an older P's (it is at OBX^1^5). (An X with no OBX-5 is held too, its W naming
    dataAbsentReason at OBX^1^5 when its module runs alone and at OBX^1^11 after the module's earlier
    tests: the location depends on what the process converted before -- not pinned here, see the report.)"""
    after, ack = _older_over_final(engine, http, "8X50", "X", "5.0")
    assert (after["status"], after["valueQuantity"]["value"]) == ("final", 4.1), after
    assert [e.split("|")[2] for e in _warned(ack) if "older" in e] == ["OBX^1^11"], err_lines(ack)
