"""rv41b: the forty-first round's review probes of idlow41 (``demographics.own_id_numbers``' registrar's word read by
``persons._two_people``; the A37 chain checks over the batch's links, ``persons._as_left_linked``) and b67f19fb
(``message_time.reason_of`` refusing a lone surrogate).

Real HL7 over ``POST /hl7v2`` (one message, or one batch) into a real store on each backend (``module_eng``), a FHIR
client's edits over ``/fhir``, read back there."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import engine_and_client, registered, unlink
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_idlow41_identity import _a47, _answer, _batch, _set
from tests.test_rvidentity32_probes import MRN, _nid, adt, merge, oru, patients, subjects

both = engine_and_client("rv41b")
MOTHER = _nid("32092319890606122")  # 柳丙, born 1989-06-06, female (17th digit even)
MAN = _nid("32092319700101011")  # born 1970-01-01, male


def test_twin_guard_after_the_wards_mixup_carried_into_a_his_version(both: tuple[Engine, TestClient]) -> None:
    """The HIS registers 柳丁之子 under the mother's number, sex U, no PID-7 (DOMAIN.md). The ward, mixing up the twins,
    records him female over FHIR; the HIS's A08 (his address, PID-8 empty: nothing said of the sex) is filed -- the
    version it writes carries the ward's female; the ward puts him back to male. His twin sister's result under his
    MRN (柳丁之女, F, the mother's number) must be refused as on main: the HIS never stated a sex with the number."""
    _, http = both
    boy = registered(http, "R41A1", "RAA", "柳^丁之子", "", "U", f"~{MOTHER}^^^^NNCHN")
    _set(http, boy["id"], gender="female")
    ack = post(http, adt("RAB", f"R41A1^^^FNXRMYY^MR~{MOTHER}^^^^NNCHN", "柳^丁之子", "", "", event="A08"))
    assert ack_code_of(ack) == "AA", ack
    _set(http, boy["id"], gender="male")
    ack = post(http, oru("RAC", f"R41A1^^^FNXRMYY^MR~{MOTHER}^^^^NNCHN", "柳^丁之女", "", "F", "RAOBS1"))
    assert subjects(http, "RAOBS1") == [], "the sister's result filed under the boy"
    assert ack_code_of(ack) == "AE" and any("PID^1^3" in e for e in err_lines(ack)), ack


def test_a_man_whose_result_comes_after_a_thin_one_in_one_batch_is_filed_as_one_by_one(
        both: tuple[Engine, TestClient]) -> None:
    """idlow41's man (HIS: his MRN, his own number, sex M, no PID-7; a FHIR client then sets female), and two LIS
    results: a thin one naming him 许戊 (no sex) and one naming him 许戊戊 M. One by one (MRN R41B1) both are filed
    under his record (idlow41: his registrar's word). In one batch (MRN R41B2) the second is compared with the first
    message's version of the record, without the registrar's word, and refused as another person."""
    _, http = both
    codes = {}
    for mrn, c, one_by_one in (("R41B1", "RB1", True), ("R41B2", "RB2", False)):
        him = registered(http, mrn, f"{c}A", "许^戊", "", "M", f"~{MAN}^^^^NNCHN")
        _set(http, him["id"], gender="female")
        pid3 = f"{mrn}^^^FNXRMYY^MR~{MAN}^^^^NNCHN"
        thin, named = oru(f"{c}B", pid3, "许^戊", "", "", f"{c}OBS1"), oru(f"{c}C", pid3, "许^戊戊", "", "M", f"{c}OBS2")
        if one_by_one:
            codes[mrn] = [ack_code_of(post(http, thin)), ack_code_of(post(http, named))]
        else:
            ack = post(http, _batch(thin, named))
            codes[mrn] = [_answer(ack, f"{c}B")[0], _answer(ack, f"{c}C")[0]]
    assert codes["R41B1"] == ["AA", "AA"], codes
    assert codes["R41B2"] == codes["R41B1"], codes


def _female(n: int) -> str:
    """A valid resident ID number of a woman born 1962-03-03, sequence ``n`` (0-99)."""
    return _nid(f"32092319620303{n % 100:02d}4")


def _chain_state(http: TestClient, prefix: str, nid: str) -> tuple:
    """Each of the three records (active, links' types) and the records the ID number answers, by MRN suffix."""
    out = []
    for n in (1, 2, 3):
        (rec,) = patients(http, f"{MRN}|{prefix}{n}")
        out.append((rec.get("active", True), sorted(link["type"] for link in rec.get("link", ()))))
    holders = sorted(next(i["value"] for i in p["identifier"] if i.get("system") == MRN)[len(prefix):]
                     for p in patients(http, nid) if p.get("active", True) is not False)
    return tuple(out), holders


def _chain_run(http: TestClient, prefix: str, nid: str, steps: list[tuple[str, ...]], batch: bool) -> tuple:
    """Register R1 (the ID number), R2, R3 under ``prefix``; send ``steps`` (("A40", survivor, prior) or ("A37", a, b),
    by suffix) one by one or as one batch; the MSA codes and ``_chain_state``."""
    person = ("岳^申", "19620303", "F")
    registered(http, f"{prefix}1", f"{prefix}r1", *person, f"~{nid}^^^^NNCHN")
    registered(http, f"{prefix}2", f"{prefix}r2", *person)
    registered(http, f"{prefix}3", f"{prefix}r3", *person)
    texts = []
    for at, (event, a, b) in enumerate(steps):
        control = f"{prefix}m{at}"
        if event == "A40":
            texts.append(merge(control, f"{prefix}{a}^^^FNXRMYY^MR", *person, f"{prefix}{b}^^^FNXRMYY^MR"))
        else:
            texts.append(unlink(control, (f"{prefix}{a}", *person), (f"{prefix}{b}", *person)))
    if batch:
        ack = post(http, _batch(*texts))
        codes = [_answer(ack, f"{prefix}m{at}")[0] for at in range(len(texts))]
    else:
        codes = [ack_code_of(post(http, t)) for t in texts]
    return codes, _chain_state(http, prefix, nid)


# the MRN prefixes (``prefix + named + n``) whose three records' ids sort in each of the six orders
@pytest.mark.parametrize("named, prefix", [("3", p) for p in ("QAA", "QAC", "QAD", "QAG", "QAH", "QAO")]
                         + [("2", p) for p in ("QAA", "QAB", "QAE", "QAF", "QAJ", "QAP")])
def test_an_a37_across_a_batchs_chain_is_refused_whatever_order_the_ids_sort_in(
        both: tuple[Engine, TestClient], prefix: str, named: str) -> None:
    """idlow41's MED (A40 R1->R2, A40 R2->R3, then the A37 of R3 and R1 -- across the chain -- or of R2 and R1 -- the
    number carried on to R3 -- in one batch) with the three records' ids in each of the six orders: refused each time,
    R3 keeping the number. On 14a1342b^1 three of the six orders took the A37 across the chain, and all six the
    carried-on one."""
    _, http = both
    prefix += named
    nid = _female(ord(prefix[2]) - ord("A") + 20 * int(named))
    codes, state = _chain_run(http, prefix, nid, [("A40", "2", "1"), ("A40", "3", "2"), ("A37", named, "1")], True)
    assert codes == ["AA", "AA", "AE"], (codes, state)
    assert state[1] == ["3"], state


@pytest.mark.parametrize("n, steps", enumerate([
    [("A40", "2", "1"), ("A40", "3", "2"), ("A37", "3", "2"), ("A37", "2", "1")],
    [("A40", "2", "1"), ("A37", "2", "1"), ("A40", "3", "2"), ("A37", "3", "1")],
    [("A40", "2", "1"), ("A40", "3", "2"), ("A37", "2", "1"), ("A37", "3", "2"), ("A37", "2", "1")],
    [("A40", "3", "2"), ("A40", "2", "1"), ("A37", "3", "1")],
]), ids=["undo-newest-then-older", "undo-then-remerge", "refused-then-in-order", "chain-built-backwards"])
def test_merges_and_unlinks_in_one_batch_decide_as_one_by_one(both: tuple[Engine, TestClient], n: int,
                                                              steps: list) -> None:
    """The model of ``tests/test_hooks19_batch_hazards.py``: the same A40s and A37s sent one by one and in one
    batch are answered the same, and leave the three records (active, links, who holds the ID number) the same."""
    _, http = both
    runs = [_chain_run(http, f"Z{mode}{n}", _female(80 + 2 * n + batch), steps, batch)
            for mode, batch in (("S", False), ("B", True))]
    assert runs[1] == runs[0], runs


def test_the_registrars_word_is_read_only_where_it_could_decide(both: tuple[Engine, TestClient],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Cost on the normal path (idlow41: "only then is the store read"): ``persons._as_registered`` (the registrar,
    the record's versions, every Provenance naming it) is not asked for a returning patient's result, a newborn's own
    result under the mother's number, nor another person's result under a record stating a day -- and is asked for
    the man whose number disowns the sex a FHIR client set (else the spy proves nothing). The store's reads of each
    message are counted (``FhirRepository.search``/``read_many``/``versions``) and printed for the report."""
    import adapters.convert.persons as persons

    engine, http = both
    asked: list[str] = []
    real = persons._as_registered

    def spy(ref, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202 -- the wrapped function's own signature
        asked.append(ref)
        return real(ref, *args, **kwargs)

    monkeypatch.setattr(persons, "_as_registered", spy)
    reads: list[str] = []
    repo_type = type(engine.ingestor.repository)
    for name in ("search", "read_many", "versions"):
        method = getattr(repo_type, name)

        def counted(self, *args, _m=method, _n=name, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            reads.append(_n)
            return _m(self, *args, **kwargs)

        monkeypatch.setattr(repo_type, name, counted)
    registered(http, "R41C1", "RCA", "钱^己", "19800101", "F")
    boy = registered(http, "R41C2", "RCB", "柳^庚之子", "", "U", f"~{MOTHER}^^^^NNCHN")
    _set(http, boy["id"], gender="male")
    him = registered(http, "R41C3", "RCC", "许^辛", "", "M", f"~{MAN}^^^^NNCHN")
    _set(http, him["id"], gender="female")
    counts = {}
    for label, message, code, wanted in (
            ("returning", oru("RCD", "R41C1^^^FNXRMYY^MR", "钱^己", "19800101", "F", "RCOBS1"), "AA", False),
            ("newborn", oru("RCE", "R41C2^^^FNXRMYY^MR", "柳^庚之子", "", "M", "RCOBS2"), "AA",
             False),
            ("another", oru("RCF", "R41C1^^^FNXRMYY^MR", "孙^壬", "19800101", "M", "RCOBS3"), "AE", False),
            ("man", oru("RCG", f"R41C3^^^FNXRMYY^MR~{MAN}^^^^NNCHN", "许^辛辛", "", "M", "RCOBS4"), "AA", True)):
        asked.clear()
        reads.clear()
        ack = post(http, message)
        counts[label] = len(reads)
        assert ack_code_of(ack) == code, (label, ack)
        assert bool(asked) is wanted, (label, asked)
    print("rv41b store reads per message:", counts)


def test_the_mans_result_after_a_his_update_that_stated_no_sex(both: tuple[Engine, TestClient]) -> None:
    """idlow41's man (HIS: MRN, his male number, sex M, no PID-7; a FHIR client sets female), then the HIS's A08 of his
    address (PID-8 empty). The LIS's result naming him 许癸癸 M with his number is his, as before the A08."""
    _, http = both
    him = registered(http, "R41D1", "RDA", "许^癸", "", "M", f"~{MAN}^^^^NNCHN")
    _set(http, him["id"], gender="female")
    ack = post(http, adt("RDB", f"R41D1^^^FNXRMYY^MR~{MAN}^^^^NNCHN", "许^癸", "", "", event="A08"))
    assert ack_code_of(ack) == "AA", ack
    ack = post(http, oru("RDC", f"R41D1^^^FNXRMYY^MR~{MAN}^^^^NNCHN", "许^癸癸", "", "M", "RDOBS1"))
    assert ack_code_of(ack) == "AA", ack
    assert subjects(http, "RDOBS1") == [f"Patient/{him['id']}"]


def test_the_registrars_word_past_the_pages_read_is_not_an_older_version(both: tuple[Engine, TestClient],
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The HIS registers 柳癸之子 F under the mother's number (its error), no PID-7, then corrects the sex to U (A08);
    the ward records him male. His twin sister's result under his MRN is refused (the newest registrar's version
    states no sex). With a page of one Provenance and one page, the same result must still be refused."""
    import adapters.convert.persons as persons

    _, http = both
    boy = registered(http, "R41E1", "REA", "柳^癸之子", "", "F", f"~{MOTHER}^^^^NNCHN")
    ack = post(http, adt("REB", f"R41E1^^^FNXRMYY^MR~{MOTHER}^^^^NNCHN", "柳^癸之子", "", "U", event="A08"))
    assert ack_code_of(ack) == "AA", ack
    _set(http, boy["id"], gender="male")
    sister = f"R41E1^^^FNXRMYY^MR~{MOTHER}^^^^NNCHN", "柳^癸之女", "", "F"
    assert ack_code_of(post(http, oru("REC", *sister, "REOBS1"))) == "AE"
    monkeypatch.setattr(persons, "_PAGE", 1)
    monkeypatch.setattr(persons, "_PAGES", 1)
    ack = post(http, oru("RED", *sister, "REOBS2"))
    assert subjects(http, "REOBS2") == [], "the sister's result filed under the boy"
    assert ack_code_of(ack) == "AE", ack


def _merged_then_renumbered(http: TestClient, prefix: str, nid: str) -> tuple[str, str, str]:
    """R1 (the ID number) merged into R2 (A40), R2 renumbered R2N (A47), one by one, each AA: the three ids."""
    person = ("岳^酉", "19620303", "F")
    one = registered(http, f"{prefix}1", f"{prefix}a", *person, f"~{nid}^^^^NNCHN")["id"]
    two = registered(http, f"{prefix}2", f"{prefix}b", *person)["id"]
    assert ack_code_of(post(http, merge(f"{prefix}c", f"{prefix}2^^^FNXRMYY^MR", *person,
                                        f"{prefix}1^^^FNXRMYY^MR"))) == "AA"
    assert ack_code_of(post(http, _a47(f"{prefix}d", f"{prefix}2N", person, f"{prefix}2"))) == "AA"
    (renumbered,) = patients(http, f"{MRN}|{prefix}2N")
    return one, two, renumbered["id"]


def test_the_carried_on_refusal_after_an_a47_does_not_ask_for_an_a37_of_the_retired_number(
        both: tuple[Engine, TestClient]) -> None:
    _, http = both
    person = ("岳^酉", "19620303", "F")
    _merged_then_renumbered(http, "R41F", _female(90))
    ack = post(http, unlink("R41Fe", ("R41F2", *person), ("R41F1", *person)))
    (line,) = err_lines(ack)
    assert ack_code_of(ack) == "AE", ack
    assert "the A37 of 'R41F2N' and 'R41F2'" not in line, line


def test_following_the_carried_on_refusal_after_an_a47_keeps_the_number_with_its_person(
        both: tuple[Engine, TestClient]) -> None:
    _, http = both
    person = ("岳^酉", "19620303", "F")
    nid = _female(91)
    one, two, renumbered = _merged_then_renumbered(http, "R41G", nid)
    assert ack_code_of(post(http, unlink("R41Ge", ("R41G2", *person), ("R41G1", *person)))) == "AE"
    codes = [ack_code_of(post(http, unlink("R41Gf", ("R41G2N", *person), ("R41G2", *person)))),
             ack_code_of(post(http, unlink("R41Gg", ("R41G2", *person), ("R41G1", *person))))]
    holders = [p["id"] for p in patients(http, nid)]
    parted = codes == ["AA", "AA"]
    assert not parted or holders == [one], (codes, holders, {"R1": one, "R2": two, "R2N": renumbered})
