"""low46 (forty-sixth round): (1) the registrations table's rows when another process writes under a key between a
read and its conditional write, every try (``MessageStore._rekey`` bounded by ``_REKEY_TRIES``): the upgrade pass
still marks itself done and leaves the row under its old key, and the filing that meets it keys it and writes its own
registration (``note_registrations``). (2) med46's one behaviour change pinned -- a registrar with an EMPTY MSH-3 (registrar
``""``) is no one's word (``applications.same_code("", "")`` is False), so a man it registered and numbered, whose sex
a FHIR client then set female, gets his result refused AE 205 at PID-3 where string equality of whole registrars
(before med46) had filed it AA. The deliberate safe direction: a wrong filing is worse than a refusal.

Real HL7 v2.5.1 bytes over ``POST /hl7v2`` into one engine a module on each backend (``module_eng``: SQLite,
mongomock), read back over ``/fhir``."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import _REKEY_TRIES, MessageStore, message_id
from engine.settings import Settings
from mappings.site import Site, SiteError
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import engine_and_client
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_idlow41_identity import _set
from tests.test_med46_registrations_pass import _marker_off, _mongo_only
from tests.test_reg45_registrar_hd import _as_the_release_before, _rows
from tests.test_rv46c_probes import OID47, _site
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


def test_a_row_whose_move_lost_every_try_is_keyed_by_the_filing_that_meets_it(
        both: tuple[Engine, TestClient], monkeypatch: pytest.MonkeyPatch) -> None:
    """``^HIS^DNS`` registered the record under the release before (its row ``record|HIS``, keyed by the code). Each
    time ``_rekey`` reads the key it moves the row to (``record|^HIS^DNS``), another process writes a later
    registration there before its conditional write -- ``_REKEY_TRIES`` times. The pass marks itself done (no later
    pass looks again) and the row stays, unmarked, under ``record|HIS``. Then ``HIS`` itself registers the record
    and its filing's move of that row loses every try the same way: the filing asks again (keys the row, the
    first registration kept under ``record|^HIS^DNS``) and writes HIS's own row -- it had compared HIS's
    registration with the DNS's row it failed to move, taken that as HIS's first, and written none."""
    engine, http = both
    _mongo_only(engine)
    tag = "L46R"
    _as_the_release_before(engine, http, monkeypatch, (tag, "^HIS^DNS"))
    ((_, first),) = _rows(engine, http, tag).items()
    messages: MessageStore = _marker_off(engine)
    table, key = messages.registrations, f"{first['record']}|^HIS^DNS"
    get, meanwhile = table.get, []

    def written_meanwhile(doc_id: str) -> object:
        read = get(doc_id)
        if doc_id == key and len(meanwhile) < _REKEY_TRIES:  # another process's later registration, each time
            meanwhile.append(doc_id)
            table.replace({"_id": key, "record": first["record"], "application": "^HIS^DNS", "whole": True,
                           "received_at": f"9999-12-31T00:00:0{len(meanwhile)}Z", "message": f"m-{len(meanwhile)}"})
        return read

    with monkeypatch.context() as during:
        during.setattr(table, "get", written_meanwhile)
        assert messages.registrars_whole() == 0 and len(meanwhile) == _REKEY_TRIES  # (lost every try)
        assert messages.registrars_whole() is None  # (marked done all the same)
        rows = _rows(engine, http, tag)
        assert rows["HIS"]["message"] == first["message"] and not rows["HIS"].get("whole"), rows
        meanwhile.clear()
        ack = post(http, adt(f"{tag}b", f"{tag}^^^FNXRMYY^MR", "丁^一", "19801020", "F", app="HIS"))
    assert ack_code_of(ack) == "AA" and len(meanwhile) == _REKEY_TRIES, err_lines(ack)
    rows = _rows(engine, http, tag)
    assert sorted(rows) == ["HIS", "^HIS^DNS"] and rows["^HIS^DNS"]["message"] == first["message"], rows
    assert rows["HIS"]["message"] != first["message"] and rows["HIS"].get("whole"), rows


def test_a_registration_every_write_of_which_lost_is_refused_then_filed_on_replay(
    both: tuple[Engine, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """low46b (rv46c LOW 5; mongomock, a MongoDB without transactions): the EMR registers 丁二; the HIS's A04 registers
    her too, and before its first conditional write under ``record|HIS`` and after each loss another process writes a
    later registration there (9999-...), every try of both rounds (the batch's, then the ingest's redo of a failed
    batch message by message: one such round lost is retried so -- rv46c's probe is filed AA by it). The A04 is not answered AA for a registration the table lacks:
    AE 207 (``note_registrations``' ``Conflict``), the filing undone -- no HIS row of it. Replayed once the other
    writes stop (the raw kept), it is filed AA and its row is the table's, the first registration of the HIS."""
    engine, http = both
    _mongo_only(engine)
    tag = "L46W"
    ack = post(http, adt(f"{tag}a", f"{tag}^^^FNXRMYY^MR", "丁^二", "19801020", "F", app="EMR"))
    assert ack_code_of(ack) == "AA", err_lines(ack)
    (record,) = patients(http, f"{MRN}|{tag}")
    table = engine.ingestor.messages.registrations
    key, doc_id = f"Patient/{record['id']}|HIS", message_id("FNXRMYY", f"{tag}b")
    find, get, meanwhile = table.find, table.get, []

    def later() -> None:
        meanwhile.append(key)
        table.replace(
            {
                "_id": key,
                "record": f"Patient/{record['id']}",
                "application": "HIS",
                "whole": True,
                "received_at": f"9999-12-31T00:00:0{len(meanwhile)}Z",
                "message": f"m-{len(meanwhile)}",
            }
        )

    def found_meanwhile(query: dict, *args: object, **kwargs: object) -> object:
        read = find(query, *args, **kwargs)
        if key in str(query):  # (each round: the batch's, then its redo message by message)
            later()
        return read

    def got_meanwhile(one: str) -> object:
        read = get(one)
        if one == key and meanwhile:
            later()
        return read

    with monkeypatch.context() as during:
        during.setattr(table, "find", found_meanwhile)
        during.setattr(table, "get", got_meanwhile)
        ack = post(http, adt(f"{tag}b", f"{tag}^^^FNXRMYY^MR", "丁^一", "19801020", "F", app="HIS"))
    assert len(meanwhile) > _REKEY_TRIES  # (the premise: every try lost)
    assert ack_code_of(ack) == "AE" and any("|207^" in x for x in err_lines(ack)), err_lines(ack)
    doc = engine.ingestor.messages.get(doc_id)
    assert doc is not None and doc["status"] != "processed" and doc.get("raw"), doc
    assert (table.get(key) or {}).get("message") != doc_id
    ops = {"Authorization": "Bearer " + engine.auth.issue_system_token("ops", "system/MessageHeader.cr")}
    r = http.post(f"/admin/quarantine/{doc_id}/replay", headers=ops)
    assert r.status_code == 200 and r.json()["ack_code"] == "AA", r.text
    row = table.get(key) or {}
    assert row.get("message") == doc_id and row.get("control_id") == f"{tag}b", row


@pytest.mark.parametrize(
    "first, second", [(f"urn:oid:{OID47}", f"^{OID47}^ISO"), (f"^{OID47}^ISO", f"^urn:oid:{OID47}^URI")]
)
def test_one_universal_id_in_two_spellings_in_two_groups_stops_the_site_load(
    tmp_path: Path, first: str, second: str
) -> None:
    """low46b (rv46c LOW 4): ``states`` reads a bare ``urn:oid:<OID>`` and ``^urn:oid:<OID>^URI`` as the universal id
    ``^<OID>^ISO``, so the site naming it in two alias groups names one application twice: refused at the load,
    naming the second group's form (``mistakes`` asks ``one_code``). The bare ``urn:oid:`` had loaded beside
    ``^<OID>^ISO``; the typed pair (``same_hd`` reads both as systems) is the control, refused before too."""
    site = _site(tmp_path / "site", [["EMR", first], ["PAS", second]])
    with pytest.raises(SiteError) as raised:
        Site.load(Settings(site=site))
    assert "application_aliases.FNXRMYY[1][1]" in str(raised.value), str(raised.value)
