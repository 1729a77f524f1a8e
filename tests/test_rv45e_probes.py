"""rv45e: review probes of reg45b's merge (43b5802f) and the lead's commits after it (fcdda156, 5f345edf).

Real HL7 v2.5.1 bytes over ``POST /hl7v2`` into the real store on each backend (SQLite, mongomock), read back over
``/fhir``; one engine a module and backend (``module_eng`` / ``undeclared_eng``). A probe that shows a defect is a
STRICT xfail naming its severity; see /work/team/reports45/rv45e.md."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import _EPOCH, _REGISTRARS, MessageStore
from engine.repository import mongo_store
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import engine_and_client
from tests.module_store import module_eng, undeclared_eng, undeclared_eng_http  # noqa: F401
from tests.test_idlow41_identity import _set
from tests.test_reg45_registrar_hd import _as_the_release_before, _rows
from tests.test_rvidentity32_probes import MRN, _nid, adt, oru, patients, subjects

both = engine_and_client("rv45e")

OID = "1.2.156.112604.1.1.7"
MOTHER = _nid("32092319890606122")  # (a woman's number: the twins registered under it, DOMAIN.md)


def _correction(uhttp: TestClient, tag: str, registers: str, corrects: str) -> bytes:
    """The record ``tag`` registered by ``registers`` (A04: 甲一 F 1980-10-18); an A08 from ``corrects`` restating the
    person (乙二 M 1975-01-01). The A08's ACK."""
    pid3 = f"{tag}^^^FNXRMYY^MR"
    assert ack_code_of(post(uhttp, adt(f"{tag}a", pid3, "甲^一", "19801018", "F", app=registers))) == "AA"
    return post(uhttp, adt(f"{tag}b", pid3, "乙^二", "19750101", "M", event="A08", app=corrects))


def test_guard_another_oid_under_the_registrars_name_is_refused(uhttp: TestClient) -> None:
    """Guard (low44c LOW 2, kept by reg45b): ``HIS^<OID2>^ISO`` states no record ``HIS^<OID1>^ISO`` registered."""
    ack = _correction(uhttp, "E45A", f"HIS^{OID}^ISO", "HIS^1.2.156.999.9^ISO")
    assert ack_code_of(ack) == "AE" and any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    assert patients(uhttp, f"{MRN}|E45A")[0]["gender"] == "female"


# (fixed by the lead: two universal ids same_hd cannot read, both sent and different, are two applications)
def test_another_dns_id_under_the_registrars_name_is_refused(uhttp: TestClient) -> None:
    """MED: the same with two DNS universal ids under one HD-1 -- another application by HL7 v2.5.1 2.A.33 as two
    OIDs are -- is taken as the registrar's own correction and rewrites her name, sex and birth date."""
    ack = _correction(uhttp, "E45B", "HIS^his.a.example^DNS", "HIS^his.b.example^DNS")
    assert ack_code_of(ack) == "AE" and any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    assert patients(uhttp, f"{MRN}|E45B")[0]["gender"] == "female"


# (fixed by the lead: two universal ids same_hd cannot read, both sent and different, are two applications)
def test_another_dns_id_under_the_registrars_name_does_not_replace_her_number(uhttp: TestClient) -> None:
    """HIGH: record registered by ``HIS^his.a.example^DNS`` with her number; ``HIS^his.b.example^DNS``'s A08 states
    another woman's number: it must not replace hers unheld (AE or the W 205 held for the operator)."""
    hers, other = _nid("32092319801015160"), _nid("32092319801015164")
    pid3 = "E45G^^^FNXRMYY^MR"
    assert ack_code_of(post(uhttp, adt("E45Ga", f"{pid3}~{hers}^^^^NNCHN", "甲^一", "19801015", "F",
                                       app="HIS^his.a.example^DNS"))) == "AA"
    ack = post(uhttp, adt("E45Gb", f"{pid3}~{other}^^^^NNCHN", "甲^一", "19801015", "F", event="A08",
                          app="HIS^his.b.example^DNS"))
    numbers = str(patients(uhttp, f"{MRN}|E45G")[0]["identifier"])
    assert hers in numbers and other not in numbers, "her number replaced by another application's A08"
    held = any("held for the operator" in x for x in err_lines(ack))
    assert ack_code_of(ack) == "AE" or held, err_lines(ack)


def test_guard_another_oid_under_the_registrars_name_does_not_replace_her_number(uhttp: TestClient) -> None:
    """Guard: the same with two OIDs -- ``HIS^<OID2>^ISO`` does not replace the number ``HIS^<OID1>^ISO`` gave."""
    hers, other = _nid("32092319801015170"), _nid("32092319801015174")
    pid3 = "E45H^^^FNXRMYY^MR"
    assert ack_code_of(post(uhttp, adt("E45Ha", f"{pid3}~{hers}^^^^NNCHN", "甲^一", "19801015", "F",
                                       app=f"HIS^{OID}^ISO"))) == "AA"
    ack = post(uhttp, adt("E45Hb", f"{pid3}~{other}^^^^NNCHN", "甲^一", "19801015", "F", event="A08",
                          app="HIS^1.2.156.999.9^ISO"))
    numbers = str(patients(uhttp, f"{MRN}|E45H")[0]["identifier"])
    assert hers in numbers and other not in numbers, "her number replaced by another application's A08"
    held = any("held for the operator" in x for x in err_lines(ack))
    assert ack_code_of(ack) == "AE" or held, err_lines(ack)


@pytest.mark.parametrize("where, stays", [({"message": "m1"}, False), ({"message": "m0"}, True),
                                          ({"message": "m1", "received_at": "2026-12-01"}, False),
                                          ({"message": "m1", "received_at": "2026-12-02"}, True),
                                          ({"gone": None}, False), ({"message": None}, True)],
                         ids=["as-read", "changed", "two-fields", "one-changed", "absent-none", "present-none"])
def test_delete_if_answers_alike_on_both_backends(undeclared_eng: Engine, where: dict, stays: bool) -> None:
    """``Collection.delete_if`` (reg45b): a row matching ``where`` deleted (True), one that no longer matches kept
    (False), a row gone False -- the same on SQLite and mongomock, the None condition read as Mongo reads it."""
    table = undeclared_eng.store.collection("registrations")
    doc_id = f"rv45e|{len(str(where))}|{stays}|{sorted(where)}"
    table.replace({"_id": doc_id, "message": "m1", "received_at": "2026-12-01"})
    assert table.delete_if(doc_id, where) is (not stays)
    assert (table.get(doc_id) is not None) is stays
    table.delete(doc_id)
    assert table.delete_if(doc_id, {"message": "m1"}) is False


def _man_numbered_by_the_registrars_other_form(http: TestClient, tag: str, registers: str, gives: str) -> bytes:
    """idfix41's man (``persons._as_registered``): the HIS registers 许子 M without his number (A04 from
    ``registers``); its own A08 (from ``gives``: its other MSH-3 form) gives his male resident ID number, M; a FHIR
    client (the ward) then sets female; the LIS's result names him M with his number. The result's ACK."""
    man = _nid("32092319700101011")
    mrn = f"{tag}^^^FNXRMYY^MR"
    assert ack_code_of(post(http, adt(f"{tag}A", mrn, "许^子", "", "M", app=registers))) == "AA"
    ack = post(http, adt(f"{tag}B", f"{mrn}~{man}^^^^NNCHN", "许^子", "", "M", event="A08", app=gives))
    assert ack_code_of(ack) == "AA", err_lines(ack)
    (him,) = patients(http, f"{MRN}|{tag}")
    _set(http, him["id"], gender="female")
    result = post(http, oru(f"{tag}C", f"{mrn}~{man}^^^^NNCHN", "许^子子", "", "M", f"{tag}OBS"))
    assert subjects(http, f"{tag}OBS") in ([], [f"Patient/{him['id']}"])
    return result


def test_control_the_man_numbered_by_his_registrar_keeps_his_result(both: tuple[Engine, TestClient]) -> None:
    """Control: the A04 and the A08 both from ``HIS^<OID>^ISO`` -- his result is his (AA, filed)."""
    _, http = both
    ack = _man_numbered_by_the_registrars_other_form(http, "E45C", f"HIS^{OID}^ISO", f"HIS^{OID}^ISO")
    assert ack_code_of(ack) == "AA" and subjects(http, "E45COBS"), err_lines(ack)


# (fixed by med46: persons._its_own asks applications.same_code, no longer string equality of whole registrars)
@pytest.mark.parametrize("registers, gives", [(f"HIS^{OID}^ISO", "HIS"), ("HIS", f"HIS^{OID}^ISO"), ("HIS", "his")],
                         ids=["oid-then-name", "name-then-oid", "case"])
def test_the_man_numbered_by_his_registrars_other_form_keeps_his_result(both: tuple[Engine, TestClient],
                                                                       registers: str, gives: str) -> None:
    """The same, the A08 in the HIS's other MSH-3 form (taken as its own by ``applications.states``)."""
    _, http = both
    tag = {"HIS": "E45D", "his": "E45E"}.get(gives, "E45F")
    ack = _man_numbered_by_the_registrars_other_form(http, tag, registers, gives)
    assert ack_code_of(ack) == "AA" and subjects(http, f"{tag}OBS"), err_lines(ack)


class _Killed(Exception):
    """The process dying at a write of the upgrade pass."""


@pytest.mark.parametrize("write, nth", [("replace_if", 1), ("delete_if", 1), ("delete_if", 2), ("cursor", 1),
                                        ("cursor", 2), ("done", 1)],
                         ids=["after-new-key", "after-delete", "after-second-delete", "at-first-cursor",
                              "at-second-cursor", "at-done"])
def test_an_upgrade_pass_killed_at_a_write_resumes_to_the_same_rows(undeclared_eng: Engine, uhttp: TestClient,
                                                                   monkeypatch: pytest.MonkeyPatch, write: str,
                                                                   nth: int) -> None:
    """reg45b's resumption (``registrars_whole_from``) and conditional delete: rows the release before keyed by the
    code (``^HIS^DNS``'s and ``HIS^<OID>^ISO``'s registrations, both ``record|HIS``), the pass one row a page killed
    at its ``nth`` write of a kind -- on SQLite the page's transaction rolls back; on mongomock (no transactions) a
    dead process runs no undo, its writes stay half done. The next open's pass leaves each registration one row,
    keyed whole, and is then done."""
    messages: MessageStore = undeclared_eng.ingestor.messages
    tags = (f"E45K{write[:2]}{nth}", f"E45L{write[:2]}{nth}")
    _as_the_release_before(undeclared_eng, uhttp, monkeypatch, (tags[0], "^HIS^DNS"), (tags[1], f"HIS^{OID}^ISO"))
    census = undeclared_eng.store.collection("hl7_census")  # the marker off, as a store the release before made
    census.replace({k: v for k, v in census.get(_EPOCH).items() if k not in (_REGISTRARS, "registrars_whole_from")})
    messages._epoch = None
    table, seen = messages.registrations, {"n": 0}

    def killing(name: str, real: object, applies: object) -> object:
        def wrapped(*args: object, **kw: object) -> object:
            out = real(*args, **kw)  # type: ignore[operator]
            if applies(*args):  # type: ignore[operator]
                seen["n"] += 1
                if seen["n"] == nth:
                    raise _Killed(name)
            return out
        return wrapped

    with monkeypatch.context() as dying:
        dying.setattr("engine.messages._CENSUS_PAGE", 1)
        dying.setattr(mongo_store._Undo, "undo", lambda self, exc: None)  # (a dead process puts nothing back)
        if write in ("replace_if", "delete_if"):  # (the new key written conditionally since med46: replace_if)
            dying.setattr(table, write, killing(write, getattr(table, write), lambda *a: True))
        else:
            field = "registrars_whole_from" if write == "cursor" else _REGISTRARS
            # (the pass writes the epoch conditionally since med46: ``update_if``, its fields third)
            dying.setattr(messages.census, "update_if", killing(write, messages.census.update_if,
                                                                lambda _id, where, fields: field in fields
                                                                and fields[field] is not None))
        with pytest.raises(_Killed):
            messages.registrars_whole()
    messages._epoch = None  # the next open
    messages.registrars_whole()
    assert list(_rows(undeclared_eng, uhttp, tags[0])) == ["^HIS^DNS"]
    assert list(_rows(undeclared_eng, uhttp, tags[1])) == [f"HIS^{OID}^ISO"]
    assert all(row.get("whole") for tag in tags for row in _rows(undeclared_eng, uhttp, tag).values())
    messages._epoch = None
    assert messages.registrars_whole() is None
