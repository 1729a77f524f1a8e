"""rv45b: review probes of reg45 (cc410cb8: a registrar is its MSH-3 whole; the registrations table keyed so and
upgraded once a store). Real HL7 v2 bytes over ``POST /hl7v2`` into the real store, read back over ``/fhir``, on a
site declaring no registration application (``tests.module_store.undeclared_eng``: where a record's resident ID
number belongs to the application that registered it, ``persons._may_renumber``), one engine a module and backend.

Each probe that shows a defect is a STRICT xfail naming its severity; see /work/team/reports45/rv45b.md."""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import _EPOCH, _REGISTRARS, MessageStore
from tests.hl7_calls import err_lines, post
from tests.module_store import undeclared_eng, undeclared_eng_http
from tests.owner41_calls import nids
from tests.test_reg45_registrar_hd import _as_the_release_before, _rows
from tests.test_rvidentity32_probes import MRN, _nid, adt, patients

__all__ = ["undeclared_eng", "undeclared_eng_http"]

OID = "2.16.840.1.113883.19.4.21"


def _held(ack: bytes) -> bool:
    """AA with the W 205 of a renumbering held for the operator (``persons._held_words``)."""
    return ack_code_of(ack) == "AA" and any("|205^" in x and "|W|" in x and "held for the operator" in x
                                            for x in err_lines(ack))


def _lis_takes_her_number(uhttp: TestClient, tag: str, body: str, registers: str, updates: str) -> bytes:
    """The HIS registers record ``tag`` (A04 from ``registers``, no number yet), then gives her resident ID number in
    an A08 from ``updates`` (the same HIS: its interface sends its OID on some messages only, or writes its name in
    another case); the LIS's walk-in A04 restates the record with that very number; then the LIS's A08 states
    another woman's number (the clerk picked the wrong 甲一). The LIS's A08's ACK."""
    hers, other = _nid(f"320923198010{body}0"), _nid(f"320923198010{body}4")
    pid3 = f"{tag}^^^FNXRMYY^MR"
    assert ack_code_of(post(uhttp, adt(f"{tag}a", pid3, "甲^一", "19801015", "F", app=registers))) == "AA"
    assert ack_code_of(post(uhttp, adt(f"{tag}b", f"{pid3}~{hers}^^^^NNCHN", "甲^一", "19801015", "F", event="A08",
                                       app=updates))) == "AA"
    assert nids(patients(uhttp, f"{MRN}|{tag}")[0]) == {hers}
    assert ack_code_of(post(uhttp, adt(f"{tag}c", f"{pid3}~{hers}^^^^NNCHN", "甲^一", "19801015", "F",
                                       app="LIS"))) == "AA"
    ack = post(uhttp, adt(f"{tag}d", f"{pid3}~{other}^^^^NNCHN", "甲^一", "19801015", "F", event="A08", app="LIS"))
    assert nids(patients(uhttp, f"{MRN}|{tag}")[0]) == {hers}, "the LIS replaced the number the HIS gave"
    return ack


def test_guard_the_his_number_is_held_against_the_lis_when_it_sends_one_msh3(uhttp: TestClient) -> None:
    """Guard (held before reg45 and after): the HIS sending ``HIS^<OID>^ISO`` on its A04 and its A08 alike owns the
    number its A08 gave; the LIS's walk-in echo makes no second owner and the LIS's A08 is held (W 205)."""
    ack = _lis_takes_her_number(uhttp, "RVBG", "1521", f"HIS^{OID}^ISO", f"HIS^{OID}^ISO")
    assert _held(ack), err_lines(ack)


# (HIGH, a regression of reg45, fixed by low45: the number's owner compared by applications' rules)
@pytest.mark.parametrize("registers, updates", [(f"HIS^{OID}^ISO", "HIS"), ("HIS", f"HIS^{OID}^ISO")],
                         ids=["oid-registers", "name-registers"])
def test_the_his_update_under_its_other_msh3_form_leaves_her_number_to_the_lis(uhttp: TestClient, registers: str,
                                                                              updates: str) -> None:
    tag, body = ("RVBA", "1522") if registers != "HIS" else ("RVBB", "1523")
    ack = _lis_takes_her_number(uhttp, tag, body, registers, updates)
    assert _held(ack), err_lines(ack)


# (HIGH, older than reg45, fixed by low45)
def test_the_his_update_in_another_case_leaves_her_number_to_the_lis(uhttp: TestClient) -> None:
    ack = _lis_takes_her_number(uhttp, "RVBC", "1524", "HIS", "his")
    assert _held(ack), err_lines(ack)


@pytest.mark.parametrize("updates", ["HIS", f"HIS^{OID}"], ids=["name-alone", "no-hd3"])
def test_the_registrars_own_correction_without_its_oid_is_taken(uhttp: TestClient, updates: str) -> None:
    """MED 1 (reg45b mended): a record ``HIS^<OID>^ISO`` registered takes its own correction sent as ``HIS`` or
    ``HIS^<OID>`` (no HD-3: no universal id) -- HL7 v2.5.1 2.A.33 as ``datatypes.same_hd(one_table=True)`` reads two
    MSH-3s, one side without a universal id compared by HD-1 (``applications.states``); reg45 refused it AE 205."""
    tag = "RVBD" if updates == "HIS" else "RVBE"
    pid3 = f"{tag}^^^FNXRMYY^MR"
    assert ack_code_of(post(uhttp, adt(f"{tag}a", pid3, "甲^一", "19801018", "F", app=f"HIS^{OID}^ISO"))) == "AA"
    ack = post(uhttp, adt(f"{tag}b", pid3, "乙^二", "19750101", "M", event="A08", app=updates))
    assert ack_code_of(ack) == "AA" and any("|205^" in x and "|W|" in x for x in err_lines(ack)), err_lines(ack)
    assert patients(uhttp, f"{MRN}|{tag}")[0]["gender"] == "male"


def test_a_registration_written_during_the_upgrade_pass_is_kept(undeclared_eng: Engine, uhttp: TestClient,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """MED 2 (reg45b mended): on a MongoDB without transactions another process registers the record between the
    pass's check of an old row and its delete -- its own ``_rekey`` moves the old row, then it writes its own
    registration under the old key; the pass deletes the old key only as it read it (``Collection.delete_if``), so
    the HIS's registration stays a row (reg45's plain delete removed it, the table's word then wrong)."""
    if undeclared_eng.settings.mongodb_uri is None:
        pytest.skip("SQLite runs each page of the pass in one BEGIN IMMEDIATE: no other writer between")
    messages: MessageStore = undeclared_eng.ingestor.messages
    _as_the_release_before(undeclared_eng, uhttp, monkeypatch, ("RVBF", "^HIS^DNS"))
    assert list(_rows(undeclared_eng, uhttp, "RVBF")) == ["HIS"]
    census = undeclared_eng.store.collection("hl7_census")  # the marker off: the next open's pass
    census.replace({k: v for k, v in census.get(_EPOCH).items() if k != _REGISTRARS})
    messages._epoch = None
    table = messages.registrations
    delete = table.delete_if
    meanwhile: list[bytes] = []
    pass_thread = threading.get_ident()  # (the ingest's own deletes run on its worker thread: passed through)

    def interleaved(doc_id: str, where: dict[str, object]) -> bool:
        if threading.get_ident() == pass_thread and doc_id.endswith("|HIS") and not meanwhile:
            # another process registers the record between the pass's check of the row and its delete
            meanwhile.append(post(uhttp, adt("RVBFb", "RVBF^^^FNXRMYY^MR", "丁^一", "19801020", "F", app="HIS")))
        return delete(doc_id, where)

    monkeypatch.setattr(table, "delete_if", interleaved)
    messages.registrars_whole()
    monkeypatch.undo()
    assert meanwhile and ack_code_of(meanwhile[0]) == "AA"
    assert sorted(_rows(undeclared_eng, uhttp, "RVBF")) == ["HIS", "^HIS^DNS"]
