"""reg45: a registrar is the MSH-3 it was sent as, whole -- low44c's and fix44's four LOWs.

(1) The registrations table was keyed ``record|code`` (HD-1, else HD-2): ``HIS`` and the universal id ``^HIS^DNS`` --
two applications by HL7 v2.5.1 2.A.33 -- shared one row, and the second's registration was no row. (2) A registrar
named by HD-1 kept no HD-2: ``HIS^<OID1>^ISO`` and ``HIS^<OID2>^ISO`` were one registrar ``HIS``. (3) The take-over of
a lab's placeholder visit compared the applications of the visit's messages by code equality, not by
``applications``' rules. (4) ``datatypes.same_hd`` spelled the case rule a second time. Rows an earlier release keyed
by the code are keyed whole once per store (``MessageStore.registrars_whole``), on SQLite and MongoDB (mongomock).

Real bytes through the real path: HL7 v2 over ``POST /hl7v2`` into the real store, ``/fhir`` over FastAPI, on a
site declaring no registration application (``tests.module_store.undeclared_eng``: the rules of reg41..decl42 for
such a site), one engine a module and backend.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from adapters.convert import applications, datatypes
from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import _EPOCH, _REGISTRARS, MessageStore, application_of
from tests.hl7_calls import err_lines, post
from tests.module_store import undeclared_eng, undeclared_eng_http
from tests.owner41_calls import nids
from tests.test_code37_ris_change import CHEST, HEAD, _changed, _ordered, _ris
from tests.test_codedoc38_order_owner import _codes, _warned_at_obr4
from tests.test_rvidentity32_probes import MRN, _nid, adt, patients
from tests.test_srfix35_order_code import oru, send, the_order

__all__ = ["undeclared_eng", "undeclared_eng_http"]

OID1, OID2 = "2.16.840.1.113883.19.4.21", "2.16.840.1.113883.19.4.29"


def _aa(ack: bytes) -> bool:
    return ack_code_of(ack) == "AA"


def _refused(ack: bytes) -> bool:
    return ack_code_of(ack) == "AE" and any("|205^" in x for x in err_lines(ack))


def _rows(engine: Engine, http: TestClient, tag: str) -> dict[str, dict]:
    """The registrations table's rows of FNXRMYY's record ``tag``, by registrar (the key's ``record|`` taken off)."""
    (record,) = patients(http, f"{MRN}|{tag}")
    rows = engine.ingestor.messages.registrations_of(f"Patient/{record['id']}")
    return {row["_id"].partition("|")[2]: row for row in rows}


# --- (1) HIS and ^HIS^DNS are two rows ------------------------------------------------------------------------


def test_a_name_and_a_universal_id_of_its_letters_are_two_registrations(undeclared_eng: Engine,
                                                                          uhttp: TestClient) -> None:
    """``^HIS^DNS`` registers a record, then ``HIS`` (HD-1: another application) registers it too -- two rows
    (``record|^HIS^DNS``, ``record|HIS``) -- and ``HIS``'s A08 gives her resident ID number. ``HIS`` registered the
    record, so the number is a registering application's (``_number_owners``: an update of a registrant), and
    ``^HIS^DNS``'s A08 replacing it with another woman's is held (AA, W 205; the record keeps her number). Keyed by
    the code alone the HIS's registration was no row (the DNS's, received first, held ``record|HIS``): the HIS no
    registrant, its number nobody's, and the DNS's A08 replaced it unheld. The W names each application as its
    registrar is kept (``^HIS^DNS``, not the code ``HIS`` beside the owner ``HIS``)."""
    hers, other = _nid("32092319801015020"), _nid("32092319801015040")
    assert _aa(post(uhttp, adt("RGAa", "RGA^^^FNXRMYY^MR", "甲^一", "19801015", "F", app="^HIS^DNS")))
    assert _aa(post(uhttp, adt("RGAb", "RGA^^^FNXRMYY^MR", "甲^一", "19801015", "F", app="HIS")))
    assert _aa(post(uhttp, adt("RGAc", f"RGA^^^FNXRMYY^MR~{hers}^^^^NNCHN", "甲^一", "19801015", "F", event="A08",
                               app="HIS")))
    ack = post(uhttp, adt("RGAd", f"RGA^^^FNXRMYY^MR~{other}^^^^NNCHN", "甲^一", "19801015", "F", event="A08",
                          app="^HIS^DNS"))
    assert _aa(ack) and any("|205^" in x and "|W|" in x for x in err_lines(ack)), err_lines(ack)
    assert any("(MSH-3 HIS) replaces it; this message's application (MSH-3 \\S\\HIS\\S\\DNS) is another" in x
               for x in err_lines(ack)), err_lines(ack)
    assert nids(patients(uhttp, f"{MRN}|RGA")[0]) == {hers}
    assert sorted(_rows(undeclared_eng, uhttp, "RGA")) == ["HIS", "^HIS^DNS"]


# --- (2) HIS^<OID1>^ISO is not HIS^<OID2>^ISO --------------------------------------------------------------------


def test_a_name_under_another_universal_id_is_another_registrar(uhttp: TestClient) -> None:
    """``HIS^<OID1>^ISO`` registers a record; ``HIS^<OID2>^ISO`` -- its universal id another, another application by
    HL7 v2.5.1 2.A.33 -- restates it as another person (A08): refused AE 205, the record unchanged. The registrar
    kept as the code ``HIS`` made either the other's registration's corrector (AA)."""
    assert _aa(post(uhttp, adt("RGBa", "RGB^^^FNXRMYY^MR", "甲^一", "19801016", "F", app=f"HIS^{OID1}^ISO")))
    ack = post(uhttp, adt("RGBb", "RGB^^^FNXRMYY^MR", "乙^二", "19750101", "M", event="A08",
                          app=f"HIS^{OID2}^ISO"))
    assert _refused(ack), err_lines(ack)
    assert patients(uhttp, f"{MRN}|RGB")[0]["gender"] == "female"
    # nor is its universal id without a name that registrar (under a site putting the hospital's OID in every MSH-3,
    # ``^<OID>^ISO`` is every application); the name alone, or with HD-2 and no HD-3, is: its own correction, HL7's
    # HD rule (rv45b MED 1; reg45b: tests/test_rv45b_probes.py)
    ack = post(uhttp, adt("RGBc", "RGB^^^FNXRMYY^MR", "乙^二", "19750101", "M", event="A08", app=f"^{OID1}^ISO"))
    assert _refused(ack), err_lines(ack)


def test_guard_the_registrar_under_its_own_universal_id_corrects_its_registration(uhttp: TestClient) -> None:
    """Guard (held before too): ``HIS^<OID1>^ISO``'s own A08, case aside (``his^<OID1>^iso``), is its registration's
    correction -- AA with the W 205 of a correction, the record the corrected person."""
    assert _aa(post(uhttp, adt("RGCa", "RGC^^^FNXRMYY^MR", "甲^一", "19801017", "F", app=f"HIS^{OID1}^ISO")))
    ack = post(uhttp, adt("RGCb", "RGC^^^FNXRMYY^MR", "乙^二", "19750101", "M", event="A08",
                          app=f"his^{OID1}^iso"))
    assert _aa(ack) and any("|205^" in x and "|W|" in x for x in err_lines(ack)), err_lines(ack)
    assert patients(uhttp, f"{MRN}|RGC")[0]["gender"] == "male"


# --- (3) the take-over compares applications by applications' rules ---------------------------------------------


def _lab(control: str, app: str) -> str:
    """A LIS result under FNXRMYY's visit number ``V<control>`` naming its patient by the LIS's own number."""
    return (f"MSH|^~\\&|{app}|FNXRMYY|HUREN|FNYGT|20261201081500||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
            f"PID|1||L-{control}^^^LIS^PI||李^一||19700101|M\rPV1|1|I|||||||||||||||||V{control}\r"
            f"OBR|1|O{control}|L{control}|GLU^GLU^L|||20261201080000||||G|||20261201080500|BLD"
            "||||||||20261201081000|||F\r"
            f"OBX|1|NM|GLU^GLU^L||5.6|mmol/L|||||F|||20261201081000\r")


def _visit_adt(control: str, event: str, app: str, pid3: str, visit: str, when: str) -> str:
    return (f"MSH|^~\\&|{app}|FNXRMYY|HUREN|FNYGT|{when}||ADT^{event}^ADT_A01|{control}|P|2.5.1\r"
            f"EVN|{event}|{when}\rPID|1||{pid3}||李^一||19700101|M\rPV1|1|I|||||||||||||||||{visit}\r")


def _admitted(uhttp: TestClient, control: str, lab: str, update: str) -> bytes:
    """The lab ``lab``'s result makes a placeholder visit; ``update``'s A08 restates the placeholder under the
    visit; the HIS admits its own record under the visit number: the admission's ACK."""
    assert _aa(post(uhttp, _lab(control, lab)))
    assert _aa(post(uhttp, _visit_adt(f"{control}u", "A08", update, f"L-{control}^^^LIS^PI", f"V{control}",
                                      "20261201083000")))
    return post(uhttp, _visit_adt(f"{control}a", "A01", "HIS", f"M{control}^^^FNXRMYY^MR", f"V{control}",
                                  "20261201090000"))


def _taken_over(ack: bytes) -> bool:
    return _aa(ack) and any("PV1^1^19" in x and "|W|" in x for x in err_lines(ack))


def test_an_update_under_another_universal_id_is_not_the_lab_restating_its_placeholder(uhttp: TestClient) -> None:
    """The lab's results come from ``LIS^<OID1>^ISO``; an A08 of ``LIS^<OID2>^ISO`` (another application) names the
    placeholder under the visit: not the lab restating its own placeholder, so an ADT of another application named
    the visit, and the HIS's admission of another record under the number is refused at PV1-19 (AE 205). By code
    both were ``LIS`` and the visit was taken over -- a stay filed under another person's record."""
    ack = _admitted(uhttp, "RGD", f"LIS^{OID1}^ISO", f"LIS^{OID2}^ISO")
    assert _refused(ack) and any("PV1^1^19" in x for x in err_lines(ack)), err_lines(ack)


def test_the_lab_restating_its_placeholder_in_another_case_is_still_the_lab(uhttp: TestClient) -> None:
    """The lab's results from ``LIS``, its A08 from ``lis`` -- one application, case aside (``same_text``, as every
    other reader of MSH-3): the lab restating its own placeholder, passed over, and the admission takes the visit
    over (AA, the W at PV1-19). Compared by equality, ``lis`` was a third application and the admission refused."""
    ack = _admitted(uhttp, "RGE", "LIS", "lis")
    assert _taken_over(ack), err_lines(ack)


def test_guard_the_lab_restating_its_placeholder_as_sent_is_the_lab(uhttp: TestClient) -> None:
    """Guard (held before too): results and A08 both from ``LIS^<OID1>^ISO``: taken over."""
    ack = _admitted(uhttp, "RGF", f"LIS^{OID1}^ISO", f"LIS^{OID1}^ISO")
    assert _taken_over(ack), err_lines(ack)


# --- (4) one case rule --------------------------------------------------------------------------------------------


def test_the_order_history_and_the_person_checks_ask_one_case_rule(uhttp: TestClient,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """``same_hd`` (the order history's HL7 rule) asks the one case rule ``datatypes.same_text``, the function
    ``applications`` asks too: with the rule made case-sensitive, the RIS's change of its order under the filler
    number ``F...^ris`` sent as ``RIS`` is no longer the sender's own (held, W 204 at OBR-4, the order unchanged) --
    with ``same_hd``'s own ``.lower()`` it was taken whatever the rule said."""
    assert applications.same_text is datatypes.same_text
    sensitive: Callable[[str, str], bool] = lambda one, other: one == other  # noqa: E731
    monkeypatch.setattr(datatypes, "same_text", sensitive)
    placer = "REG45-CASE"
    send(uhttp, _ordered(placer))
    assert "MSA|AA" in send(uhttp, _ris(oru(placer, item=HEAD)))
    ack = send(uhttp, _changed(placer, CHEST).replace(f"F{placer}^RIS|", f"F{placer}^ris|"))
    assert "MSA|AA" in ack and _warned_at_obr4(ack), ack
    codes = _codes(the_order(uhttp, placer))
    assert "3002" in codes and "3001" not in codes, codes


# --- the upgrade: rows an earlier release keyed by the code --------------------------------------------------------


def _as_the_release_before(engine: Engine, http: TestClient, monkeypatch: pytest.MonkeyPatch,
                           *messages: tuple[str, str]) -> None:
    """File ``messages`` (a tag and an MSH-3 each: the tag's A04) as the release before reg45 did: their rows keyed
    and named by the code (``application_of``) and not marked whole."""
    with monkeypatch.context() as old:
        old.setattr("engine.messages.registrar_of", application_of)
        for n, (tag, app) in enumerate(messages):
            assert _aa(post(http, adt(f"{tag}a", f"{tag}^^^FNXRMYY^MR", "丁^一", f"1980102{n}", "F", app=app)))
    kept = engine.store.collection("hl7_registrations")
    for tag, _ in messages:
        for row in _rows(engine, http, tag).values():
            kept.replace({k: v for k, v in row.items() if k != "whole"})


def test_rows_keyed_by_the_code_are_keyed_by_the_registrar_once(undeclared_eng: Engine, uhttp: TestClient,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A store the release before wrote: ``^HIS^DNS``'s and ``HIS^<OID1>^ISO``'s registrations keyed
    ``record|HIS``. The pass (``registrars_whole``) keys them whole (``record|^HIS^DNS``,
    ``record|HIS^<OID1>^ISO``), leaves a row whose key is its registrar already, and reads a row whose message is no
    longer kept as the name it holds; run again (its marker) it moves nothing. Then the HIS's own registration of
    the first record is a row of its own and the number its A08 gives is a registrant's: the DNS's A08 replacing it
    is held (W 205). A row the release before writes after the pass (a rollback; a process of it still running) is
    keyed when a registration meets it: the HIS registering a record the DNS registered under the old key."""
    messages: MessageStore = undeclared_eng.ingestor.messages
    _as_the_release_before(undeclared_eng, uhttp, monkeypatch, ("RGG", "^HIS^DNS"), ("RGH", f"HIS^{OID1}^ISO"),
                           ("RGI", "TJXT"))
    assert list(_rows(undeclared_eng, uhttp, "RGG")) == ["HIS"] and list(_rows(undeclared_eng, uhttp, "RGH")) == ["HIS"]
    (gone,) = _rows(undeclared_eng, uhttp, "RGI").values()
    undeclared_eng.store.collection("hl7_registrations").replace({**gone, "message": "m-no-longer-kept"})
    census = undeclared_eng.store.collection("hl7_census")  # the marker off, as a store the release before made
    census.replace({k: v for k, v in census.get(_EPOCH).items() if k != _REGISTRARS})
    messages._epoch = None  # (read again, as the next open reads it)
    assert messages.registrars_whole() == 2
    assert list(_rows(undeclared_eng, uhttp, "RGG")) == ["^HIS^DNS"]
    assert _rows(undeclared_eng, uhttp, "RGH")[f"HIS^{OID1}^ISO"]["application"] == f"HIS^{OID1}^ISO"
    assert list(_rows(undeclared_eng, uhttp, "RGI")) == ["TJXT"]
    assert messages.registrars_whole() is None
    # a pass stopped half way resumes where it stopped (reg45b, rv45b LOW 1): one row a page, stopped at its second
    # page's read, the next open's pass reads no message the first read again
    table = undeclared_eng.store.collection("hl7_registrations")  # (three rows unmarked: three pages to read)
    for tag in ("RGG", "RGH"):
        for row in _rows(undeclared_eng, uhttp, tag).values():
            table.replace({k: v for k, v in row.items() if k != "whole"})
    census.replace({k: v for k, v in census.get(_EPOCH).items() if k not in (_REGISTRARS, "registrars_whole_from")})
    messages._epoch, read, get_many = None, [], messages.get_many

    def stops(ids: list[str]) -> dict[str, object]:
        if ids and read:
            raise OSError("killed")
        read.extend(ids)
        return get_many(ids)
    with monkeypatch.context() as again:
        again.setattr("engine.messages._CENSUS_PAGE", 1)
        again.setattr(messages, "get_many", stops)
        with pytest.raises(OSError):
            messages.registrars_whole()
        assert len(read) == 1
        messages._epoch, first, read = None, read[0], []
        again.setattr(messages, "get_many", lambda ids: read.extend(ids) or get_many(ids))
        assert messages.registrars_whole() == 0 and read and first not in read, (first, read)
    hers, other = _nid("32092319801020020"), _nid("32092319801020040")
    for control, pid3, app, event in (("RGGb", "RGG^^^FNXRMYY^MR", "HIS", "A04"),
                                      ("RGGc", f"RGG^^^FNXRMYY^MR~{hers}^^^^NNCHN", "HIS", "A08")):
        assert _aa(post(uhttp, adt(control, pid3, "丁^一", "19801020", "F", event=event, app=app)))
    ack = post(uhttp, adt("RGGd", f"RGG^^^FNXRMYY^MR~{other}^^^^NNCHN", "丁^一", "19801020", "F", event="A08",
                          app="^HIS^DNS"))
    assert _aa(ack) and any("|205^" in x and "|W|" in x for x in err_lines(ack)), err_lines(ack)
    assert nids(patients(uhttp, f"{MRN}|RGG")[0]) == {hers}
    _as_the_release_before(undeclared_eng, uhttp, monkeypatch, ("RGJ", "^HIS^DNS"))
    assert list(_rows(undeclared_eng, uhttp, "RGJ")) == ["HIS"]
    assert _aa(post(uhttp, adt("RGJb", "RGJ^^^FNXRMYY^MR", "丁^一", "19801020", "F", app="HIS")))
    rows = _rows(undeclared_eng, uhttp, "RGJ")
    assert sorted(rows) == ["HIS", "^HIS^DNS"] and rows["HIS"]["control_id"] == "RGJb", rows
