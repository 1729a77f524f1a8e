"""rv38e: probes of ident38 (a number under an undeclared CX-4 authority filed under the institution's own
bare-MRN record when positively the same person; the fidelity ``filed_as_own`` count).

Real HL7 over ``POST /hl7v2`` into a real store on each backend, read back over ``/fhir`` and
``/admin/fidelity``. A probe showing a defect is a strict xfail naming its severity; a probe that passes
guards behaviour worth keeping."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import engine_and_client
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_lead20_visitlast_newborn import _result
from tests.test_placer19_two_patients import nid
from tests.test_recognition_policy_e2e import ts
from tests.test_rvidentity32_probes import MRN, adt, merge, oru, patients, subjects
from tests.test_visit20_reused_numbers import accepted, engine, fhir, read, send  # noqa: F401 -- fixtures
from tests.test_visit20_reused_numbers import adt as adt20

both = engine_and_client("rv38e")


def _kept_apart(ack: bytes) -> bool:
    return any("kept apart" in e for e in err_lines(ack))


@pytest.mark.parametrize("n, name, birth, sex", [
    (1, "柳^二", "19610303", "F"),  # a twin: same birth date and sex, another given name
    (2, "LIU^SAN", "19610303", "F"),  # the name in pinyin: not positively her
    (3, "柳^三", "19610303", "M"),  # another sex
])
def test_a_twin_or_another_script_is_kept_apart(both: tuple[Engine, TestClient], n: int, name: str, birth: str,
                                                sex: str) -> None:
    """Her bare record 柳三 F 1961-03-03; a result under ``^^^LIS^PI`` of her twin sister, of a name in pinyin,
    or of another sex: never filed under her record (kept apart, the kept-apart W)."""
    engine, http = both
    number = f"R38T{n}"
    assert ack_code_of(post(http, adt(f"T{n}A", f"{number}^^^FNXRMYY^MR", "柳^三", "19610303", "F"))) == "AA"
    (old,) = patients(http, f"{MRN}|{number}")
    ack = post(http, oru(f"T{n}B", f"{number}^^^LIS^PI", name, birth, sex, f"T{n}GLU"))
    assert ack_code_of(ack) == "AA" and _kept_apart(ack), ack
    assert f"Patient/{old['id']}" not in subjects(http, f"T{n}GLU")
    assert len(subjects(http, f"T{n}GLU")) == 1


def test_a_bare_record_without_birth_date_is_not_joined(both: tuple[Engine, TestClient]) -> None:
    """The bare record was registered without a birth date (a lab's thin placeholder): nothing positive to
    join on; the number under ``^^^HIS^MR`` stays apart."""
    engine, http = both
    assert ack_code_of(post(http, oru("NBA", "R38NB^^^FNXRMYY^MR", "柳^四", "", "F", "NBA"))) == "AA"
    (old,) = patients(http, f"{MRN}|R38NB")
    ack = post(http, oru("NBB", "R38NB^^^HIS^MR", "柳^四", "19610404", "F", "NBB"))
    assert ack_code_of(ack) == "AA" and _kept_apart(ack), ack
    assert subjects(http, "NBB") != [f"Patient/{old['id']}"]


def test_a_birth_year_alone_is_not_positive_agreement(both: tuple[Engine, TestClient]) -> None:
    """The HIS's record 张伟 M 1961-05-05 under MRN R38Y; the LIS (many county LIS send an age, the year
    derived) files its own number R38Y for 张伟 M born '1961' -- the most common name in China. A year agrees
    with every day of that year, so nothing shows the two are one person: the result should stay apart (as a
    result with no birth date does), not join the HIS's patient."""
    engine, http = both
    assert ack_code_of(post(http, adt("YA", "R38Y^^^FNXRMYY^MR", "张^伟", "19610505", "M"))) == "AA"
    (old,) = patients(http, f"{MRN}|R38Y")
    ack = post(http, oru("YB", "R38Y^^^LIS^PI", "张^伟", "1961", "M", "YGLU"))
    assert ack_code_of(ack) == "AA", ack
    assert subjects(http, "YGLU") != [f"Patient/{old['id']}"]


def test_another_institutions_bare_record_is_never_the_one_filed_to(both: tuple[Engine, TestClient]) -> None:
    """FNXRMYY's bare record R38X of 柳五; FNZYY's HIS sends ``R38X^^^HIS^MR`` for 柳五, same particulars: the
    number is FNZYY's system's (MRNs never cross institutions) -- never filed under FNXRMYY's record, and
    FNXRMYY's record does not take FNZYY's identifier."""
    engine, http = both
    assert ack_code_of(post(http, adt("XA", "R38X^^^FNXRMYY^MR", "柳^五", "19610505", "F"))) == "AA"
    (old,) = patients(http, f"{MRN}|R38X")
    other = oru("XB", "R38X^^^HIS^MR", "柳^五", "19610505", "F", "XGLU").replace("|FNXRMYY|", "|FNZYY|", 1)
    ack = post(http, other)
    assert ack_code_of(ack) == "AA", ack
    assert subjects(http, "XGLU") and f"Patient/{old['id']}" not in subjects(http, "XGLU")
    now = http.get(f"/fhir/Patient/{old['id']}").json()
    assert all("FNZYY" not in (i.get("system") or "") for i in now["identifier"]), now["identifier"]


def test_after_a_merge_the_number_as_sent_follows_the_bare_number(both: tuple[Engine, TestClient]) -> None:
    """R38M1 and R38M2 are one woman's duplicate bare records; the HIS's A40 merges R38M1 into R38M2. Her LIS's
    later result under ``R38M1^^^HIS^MR`` must land where the same result under the bare R38M1 lands (or be
    refused as it is): never on a record the merge retired while the bare number goes elsewhere."""
    engine, http = both
    for c, number in (("MA", "R38M1"), ("MB", "R38M2")):
        assert ack_code_of(post(http, adt(c, f"{number}^^^FNXRMYY^MR", "柳^六", "19610606", "F"))) == "AA"
    ack = post(http, merge("MC", "R38M2^^^FNXRMYY^MR", "柳^六", "19610606", "F", "R38M1^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AA", ack
    bare = post(http, oru("MD", "R38M1^^^FNXRMYY^MR", "柳^六", "19610606", "F", "MDGLU"))
    sent = post(http, oru("ME", "R38M1^^^HIS^MR", "柳^六", "19610606", "F", "MEGLU"))
    assert ack_code_of(sent) == ack_code_of(bare), (bare, sent)
    assert subjects(http, "MEGLU") == subjects(http, "MDGLU")


def test_a_merge_under_the_undeclared_authority_names_no_other_record(both: tuple[Engine, TestClient]) -> None:
    """After her result under ``R38N1^^^HIS^MR`` was filed under her bare record R38N1, the HIS's A40 under the
    same authority merges R38N1 into R38N2: the bare record R38N1 (where her result is) must not stay live
    with its results while a phantom ``HIS|R38N1`` record is merged -- either the merge reaches R38N1, or it
    is refused/warned; never AA with nothing merged."""
    engine, http = both
    for c, number in (("NA", "R38N1"), ("NB", "R38N2")):
        assert ack_code_of(post(http, adt(c, f"{number}^^^FNXRMYY^MR", "柳^七", "19610707", "F"))) == "AA"
    assert ack_code_of(post(http, oru("NC", "R38N1^^^HIS^MR", "柳^七", "19610707", "F", "NCGLU"))) == "AA"
    (one,) = patients(http, f"{MRN}|R38N1")
    assert subjects(http, "NCGLU") == [f"Patient/{one['id']}"]
    ack = post(http, merge("ND", "R38N2^^^HIS^MR", "柳^七", "19610707", "F", "R38N1^^^HIS^MR"))
    code = ack_code_of(ack)
    after = http.get(f"/fhir/Patient/{one['id']}").json()
    merged = after.get("active") is False or any(link.get("type") == "replaced-by" for link in after.get("link", ()))
    survivor = http.get(f"/fhir/Patient/{patients(http, f'{MRN}|R38N2')[0]['id']}").json()
    replaced = [link["other"]["reference"] for link in survivor.get("link", ()) if link.get("type") == "replaces"]
    assert replaced in ([], [f"Patient/{one['id']}"]), (replaced, one["id"])
    assert code != "AA" or merged or any("MRG" in e for e in err_lines(ack)), (ack, after)


def test_the_warning_and_fidelity_echo_no_person(both: tuple[Engine, TestClient]) -> None:
    """The filed-as-own W names the authority, never the number, name or birth date; the fidelity row the
    record id only, and an operator whose remit is another institution does not see it."""
    engine, http = both
    assert ack_code_of(post(http, adt("WA", "R38W^^^FNXRMYY^MR", "柳^八", "19610808", "F"))) == "AA"
    ack = post(http, oru("WB", "R38W^^^HIS^MR", "柳^八", "19610808", "F", "WGLU"))
    assert ack_code_of(ack) == "AA", ack
    (err,) = err_lines(ack)
    assert "|W|" in err and all(s not in err for s in ("R38W", "柳", "1961")), err
    ops = {"Authorization": "Bearer " + engine.auth.issue_system_token("ops", "system/MessageHeader.cr")}
    body = http.get("/admin/fidelity", params={"institution": "FNXRMYY"}, headers=ops).text
    assert "柳" not in body and "R38W" not in body and "19610808" not in body


def test_another_person_under_a_lis_number_filed_as_hers(both: tuple[Engine, TestClient]) -> None:
    """Her LIS number R38L was filed under her bare record (positively her); the LIS then sends R38L for a man
    of another name, sex and birth date: one LIS number, two people -- refused (AE at PID-3) as the guard
    refused it before ident38 (the LIS's R38L record then held her); her own next result under R38L is still
    hers (AA, under her record)."""
    engine, http = both
    assert ack_code_of(post(http, adt("LA", "R38L^^^FNXRMYY^MR", "柳^九", "19610909", "F"))) == "AA"
    (old,) = patients(http, f"{MRN}|R38L")
    assert ack_code_of(post(http, oru("LB", "R38L^^^LIS^PI", "柳^九", "19610909", "F", "LBGLU"))) == "AA"
    assert subjects(http, "LBGLU") == [f"Patient/{old['id']}"]
    his = post(http, oru("LC", "R38L^^^LIS^PI", "李^九", "19900909", "M", "LCGLU"))
    hers = post(http, oru("LD", "R38L^^^LIS^PI", "柳^九", "19610909", "F", "LDGLU"))
    assert f"Patient/{old['id']}" not in subjects(http, "LCGLU"), his
    assert ack_code_of(his) != "AA", his
    assert ack_code_of(hers) == "AA" and subjects(http, "LDGLU") == [f"Patient/{old['id']}"], hers


def test_a_thin_message_does_not_split_her_record_again(both: tuple[Engine, TestClient]) -> None:
    """Her bare record R38S; her HIS^MR result (all particulars) is filed under it; one result without a birth
    date (keyed apart, as ident38 keeps it); then her next result with all particulars again: under her
    record, as the first was -- one record."""
    engine, http = both
    assert ack_code_of(post(http, adt("SA", "R38S^^^FNXRMYY^MR", "柳^十", "19611010", "F"))) == "AA"
    (old,) = patients(http, f"{MRN}|R38S")
    assert ack_code_of(post(http, oru("SB", "R38S^^^HIS^MR", "柳^十", "19611010", "F", "SBGLU"))) == "AA"
    assert ack_code_of(post(http, oru("SC", "R38S^^^HIS^MR", "柳^十", "", "F", "SCGLU"))) == "AA"
    assert ack_code_of(post(http, oru("SD", "R38S^^^HIS^MR", "柳^十", "19611010", "F", "SDGLU"))) == "AA"
    assert subjects(http, "SDGLU") == subjects(http, "SBGLU") == [f"Patient/{old['id']}"]


def test_her_result_is_never_filed_under_another_woman_after_her_number_was_filed_as_own(
        both: tuple[Engine, TestClient]) -> None:
    """Her bare record 柳十一 F 1961-11-11 under R38H; her LIS result under ``R38H^^^LIS^PI`` is filed under it
    (positively her). The LIS's R38H then comes for 李十一 F 1990 (a number reused, or the LIS's error):
    kept apart, a new ``LIS|R38H`` record. Her next LIS result, exactly her particulars, must be filed under
    her record (or refused) -- never under 李十一's."""
    engine, http = both
    assert ack_code_of(post(http, adt("HA", "R38H^^^FNXRMYY^MR", "柳^十一", "19611111", "F"))) == "AA"
    (old,) = patients(http, f"{MRN}|R38H")
    assert ack_code_of(post(http, oru("HB", "R38H^^^LIS^PI", "柳^十一", "19611111", "F", "HBGLU"))) == "AA"
    assert subjects(http, "HBGLU") == [f"Patient/{old['id']}"]
    post(http, oru("HC", "R38H^^^LIS^PI", "李^十一", "19901111", "F", "HCGLU"))
    others = [s for s in subjects(http, "HCGLU") if s != f"Patient/{old['id']}"]
    ack = post(http, oru("HD", "R38H^^^LIS^PI", "柳^十一", "19611111", "F", "HDGLU"))
    assert not set(others) & set(subjects(http, "HDGLU")), (ack, others, subjects(http, "HDGLU"))


@pytest.mark.parametrize("mother_field", ["MRN-F^^^HOSPA^MR", f"{nid(3)}^^^公安部^NNCHN"])
def test_a_man_is_not_the_mother_named_in_pid_21(engine: Engine, mllp: int, fhir: TestClient,
                                                 mother_field: str) -> None:
    """PID-21 is the MOTHER's identifier (v2.5.1 3.4.1.21): a newborn's result naming a man -- by his MRN, or by
    his ID number (odd sequence digit: male), the form ident38's ``_keyed_by_its_number`` newly resolves --
    under his inpatient visit is not rooming-in: refused at PV1-19, nothing filed under his visit."""
    accepted(mllp, adt20("A01", "F1", ("MRN-F", 3, "李^三"), "V100", ts(10)))
    code, errs = send(mllp, _result("F1N", ts(2)[:8], mother_field, ts(1)))
    assert code == "AE" and any(e[2] == "PV1^1^19" for e in errs), (code, errs)
    assert read(fhir, "DiagnosticReport") == []
