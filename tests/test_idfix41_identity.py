"""idfix41: rv41b's findings on idlow41 -- the registrar's word read from what its messages SENT (``persons.
_as_registered``, ``_as_sent``: never a stored version, which carries what a FHIR client set and an A08 left
unsaid), and an A37 of a renumbering refused, the carried-on refusal after an A47 advising its undo by an A47
(``persons._undoes_no_merge``, ``_renumbered``).

Real HL7 over ``POST /hl7v2`` (one message, or one batch) into a real store on each backend (``module_eng``), a FHIR
client's edits over ``/fhir``, read back there."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import carried_marks, engine_and_client, read_patient, registered, unlink
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_idlow41_identity import _a47, _answer, _batch, _set
from tests.test_rvidentity32_probes import MRN, _nid, adt, merge, oru, patients, subjects

both = engine_and_client("idfix41")
MAN = _nid("32092319700101011")  # born 1970-01-01, male
MOTHER = _nid("32092319890606122")  # born 1989-06-06, female
PERSON = ("岳^戌", "19620303", "F")


def test_the_registrars_word_is_each_element_as_its_newest_message_stating_it_sent_it(
        both: tuple[Engine, TestClient]) -> None:
    """The HIS registers 许子 with his MRN, his male number, sex M, no PID-7; a FHIR client sets female; the HIS's A08
    corrects his name to 许子子 saying nothing of the sex (PID-8 empty). The name is the A08's, the sex the A01's --
    each as the newest of the HIS's messages stating it sent it -- so his number is his own and the LIS's result
    naming him 许子子子 M is his. Fails with idlow41's reading (the A08's version: the client's female) and with a
    reading of the newest HIS message alone (it states no sex)."""
    _, http = both
    him = registered(http, "I41A1", "IAA", "许^子", "", "M", f"~{MAN}^^^^NNCHN")
    _set(http, him["id"], gender="female")
    ack = post(http, adt("IAB", f"I41A1^^^FNXRMYY^MR~{MAN}^^^^NNCHN", "许^子子", "", "", event="A08"))
    assert ack_code_of(ack) == "AA", ack
    ack = post(http, oru("IAC", f"I41A1^^^FNXRMYY^MR~{MAN}^^^^NNCHN", "许^子子子", "", "M", "IAOBS1"))
    assert ack_code_of(ack) == "AA", ack
    assert subjects(http, "IAOBS1") == [f"Patient/{him['id']}"]


def test_a_sex_the_registrar_took_back_with_an_explicit_null_owns_nothing(both: tuple[Engine, TestClient]) -> None:
    """The HIS registers 柳丑之子 F under the mother's number (its error), no PID-7, then takes the sex back (A08, PID-8
    ``""``: HL7's delete); the ward records him male. The registrar's newest word on the sex is none, so the number
    is not his own and his twin sister's result under his MRN (柳丑之女, F, the number) is refused at PID-3 -- the A01's
    F is not the registrar's word any more. Guard: the record as its registrar first stated it would own the number."""
    _, http = both
    boy = registered(http, "I41B1", "IBA", "柳^丑之子", "", "F", f"~{MOTHER}^^^^NNCHN")
    ack = post(http, adt("IBB", f"I41B1^^^FNXRMYY^MR~{MOTHER}^^^^NNCHN", "柳^丑之子", "", '""', event="A08"))
    assert ack_code_of(ack) == "AA", ack
    assert "gender" not in read_patient(http, boy["id"])
    _set(http, boy["id"], gender="male")
    ack = post(http, oru("IBC", f"I41B1^^^FNXRMYY^MR~{MOTHER}^^^^NNCHN", "柳^丑之女", "", "F", "IBOBS1"))
    assert subjects(http, "IBOBS1") == [], "the sister's result filed under the boy"
    assert ack_code_of(ack) == "AE" and any("PID^1^3" in e for e in err_lines(ack)), ack


def _merged_then_renumbered(http: TestClient, prefix: str, nid: str) -> list[str]:
    """R1 (the ID number) merged into R2 (A40), R2 renumbered R2N (A47), one by one, each AA: the messages' texts
    after R1 and R2 are registered."""
    registered(http, f"{prefix}1", f"{prefix}a", *PERSON, f"~{nid}^^^^NNCHN")
    registered(http, f"{prefix}2", f"{prefix}b", *PERSON)
    return [merge(f"{prefix}c", f"{prefix}2^^^FNXRMYY^MR", *PERSON, f"{prefix}1^^^FNXRMYY^MR"),
            _a47(f"{prefix}d", f"{prefix}2N", PERSON, f"{prefix}2")]


def _state(http: TestClient, prefix: str, nid: str) -> tuple:
    """Each record (R1, R2, R2N: active, links' types, carried marks) and the records in use the number answers."""
    out = []
    for suffix in ("1", "2", "2N"):
        (rec,) = patients(http, f"{MRN}|{prefix}{suffix}")
        out.append((rec.get("active", True), sorted(link["type"] for link in rec.get("link", ())),
                    len(carried_marks(rec))))
    holders = sorted(next(i["value"] for i in p["identifier"] if i.get("system") == MRN)[len(prefix):]
                     for p in patients(http, nid) if p.get("active", True) is not False)
    return tuple(out), holders


def _undo_after_renumbering(prefix: str) -> list[str]:
    """What the HIS sends after A40 R1->R2 and A47 R2->R2N, following each refusal: the A37 of R2 and R1 (refused:
    renumber back first), the A37 of R2N and R2 (refused: a renumbering), the A47 from R2N back to R2, the A37 of R2
    and R1 (taken), the A47 from R2 to R2N again."""
    return [unlink(f"{prefix}e", (f"{prefix}2", *PERSON), (f"{prefix}1", *PERSON)),
            unlink(f"{prefix}f", (f"{prefix}2N", *PERSON), (f"{prefix}2", *PERSON)),
            _a47(f"{prefix}g", f"{prefix}2", PERSON, f"{prefix}2N"),
            unlink(f"{prefix}h", (f"{prefix}2", *PERSON), (f"{prefix}1", *PERSON)),
            _a47(f"{prefix}i", f"{prefix}2N", PERSON, f"{prefix}2")]


def test_following_the_refusals_after_a_merge_and_a_renumbering_gives_the_number_back(
        both: tuple[Engine, TestClient]) -> None:
    """rv41b HIGH 2 and LOW 1: after A40 R1 (the ID number) into R2 and A47 R2 to R2N, the A37 of R2 and R1 is refused
    naming the renumbering and its undo (an A47 from R2N back to R2, MRG-1 R2N) -- not "the A37 of R2N and R2"; that
    A37 is refused too (AE 204 at PID-3: a renumbering is not a merge). Doing what the refusal says -- the A47 back,
    the A37, the A47 again -- ends with R1 in use holding its number and no mark, R2N in use without it, R2 retired:
    the number answers R1 alone. Before, the A37s were taken: R1 in use without its number, which stayed on R2N."""
    _, http = both
    nid = _nid("32092319620303014")
    for text in _merged_then_renumbered(http, "I41C", nid):
        assert ack_code_of(post(http, text)) == "AA"
    acks = [post(http, text) for text in _undo_after_renumbering("I41C")]
    assert [ack_code_of(a) for a in acks] == ["AE", "AE", "AA", "AA", "AA"], acks
    (first,), (second,) = err_lines(acks[0]), err_lines(acks[1])
    assert "PID^2^3" in first and "an A47, MRG-1 'I41C2N'" in first and "renumbered it 'I41C2N'" in first, first
    assert "the A37 of 'I41C2N'" not in first, first
    assert "PID^2^3" in second and "A47 from 'I41C2N' back to 'I41C2'" in second, second
    state = _state(http, "I41C", nid)
    assert state[1] == ["1"], state
    assert state[0][0] == (True, [], 0), state  # R1: in use, no link, its number no longer marked carried
    assert state[0][1][0] is False and state[0][2][0] is True, state  # R2 retired (renumbered), R2N in use


def test_the_refusals_after_a_merge_and_a_renumbering_in_one_batch_decide_as_one_by_one(
        both: tuple[Engine, TestClient]) -> None:
    """The model of ``tests/test_hooks19_batch_hazards.py``: the A40, the A47 and the five messages after them sent one
    by one and in one batch are answered the same and leave the three records and the number's holder the same."""
    _, http = both
    runs = []
    for prefix, batch in (("I41DS", False), ("I41DB", True)):
        nid = _nid(f"32092319620303{'02' if batch else '03'}4")
        texts = _merged_then_renumbered(http, prefix, nid) + _undo_after_renumbering(prefix)
        if batch:
            ack = post(http, _batch(*texts))
            codes = [_answer(ack, control)[0] for control in (f"{prefix}{c}" for c in "cdefghi")]
        else:
            codes = [ack_code_of(post(http, text)) for text in texts]
        runs.append((codes, _state(http, prefix, nid)))
    assert runs[0][0] == ["AA", "AA", "AE", "AE", "AA", "AA", "AA"], runs
    assert runs[1] == runs[0], runs


def test_an_unlink_naming_the_record_says_nothing_of_its_number(both: tuple[Engine, TestClient]) -> None:
    """The HIS registers 许寅 (his MRN, his male number, M, no PID-7) and a duplicate record of him, merges it into his
    (A40) and parts them again (A37: each PID its MRN alone -- the A37 takes off the marks a merge carried, which is
    no statement of the resident ID number); a FHIR client sets him female. The newest HIS message stating his number
    is still the registration, so the LIS's result naming him 许寅寅 M with the number is his. A guard of this round's
    reading (``persons._as_sent`` counts only a delete of the number): with every identifier delete counted it fails."""
    _, http = both
    person = ("许^寅", "", "M")
    him = registered(http, "I41E1", "IEA", *person, f"~{MAN}^^^^NNCHN")
    registered(http, "I41E2", "IEB", *person)
    assert ack_code_of(post(http, merge("IEC", "I41E1^^^FNXRMYY^MR", *person, "I41E2^^^FNXRMYY^MR"))) == "AA"
    assert ack_code_of(post(http, unlink("IED", ("I41E1", *person), ("I41E2", *person)))) == "AA"
    _set(http, him["id"], gender="female")
    ack = post(http, oru("IEE", f"I41E1^^^FNXRMYY^MR~{MAN}^^^^NNCHN", "许^寅寅", "", "M", "IEOBS1"))
    assert ack_code_of(ack) == "AA", ack
    assert subjects(http, "IEOBS1") == [f"Patient/{him['id']}"]


def test_an_a37_naming_the_renumbered_survivor_advises_the_renumbering_undone_first(
        both: tuple[Engine, TestClient]) -> None:
    """After A40 R1 (the ID number) into R2 and A47 R2 to R2N, the A37 of R2N and R1 (the merge, named by the number
    in use) is refused as before (idlow41: an A37 reading through a renumbering is left), and its advice is the way
    that works -- the A47 from R2N back to R2, then the A37 of R2 and R1 -- not "the A37 of the wrong merge", which
    led to the carried-on refusal. Followed, R1 is in use holding its number, alone."""
    _, http = both
    nid = _nid("32092319620303054")
    for text in _merged_then_renumbered(http, "I41F", nid):
        assert ack_code_of(post(http, text)) == "AA"
    ack = post(http, unlink("I41Fe", ("I41F2N", *PERSON), ("I41F1", *PERSON)))
    (line,) = err_lines(ack)
    assert ack_code_of(ack) == "AE" and "PID^2^3" in line, ack
    assert "the record 'I41F2' (renumbered 'I41F2N' since by an A46/A47) between" in line, line
    assert "Renumber 'I41F2N' back to 'I41F2' first (an A47, MRG-1 'I41F2N'), then send the A37 of 'I41F2' and " \
           "'I41F1'" in line, line
    for text in _undo_after_renumbering("I41F")[2:]:
        assert ack_code_of(post(http, text)) == "AA"
    assert _state(http, "I41F", nid)[1] == ["1"]
