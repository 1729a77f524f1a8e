"""idfix38: a number under an undeclared CX-4 authority, once filed under the institution's own record of its
value (ident38's ``persons._filed_as_own``), is remembered there -- its identifier as sent on the record, written
by a result too -- and from then on names that record: a thin message is filed there, another person's refused
(AE at PID-3), never a second record of the number; a merge whose MRG-1 is under the authority moves that record,
or is refused when which record it names cannot be told. Joining needs both birth dates to the day.

Real HL7 over ``POST /hl7v2`` (one batch, one exchange over MLLP) into a real store on each backend, read back
over ``/fhir``."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import err_lines, mllp, post
from tests.identity39_calls import engine_and_client, registered, tokens
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_regapp33_registrar import _batch
from tests.test_rvidentity32_probes import MRN, adt, merge, oru, patients, subjects

both = engine_and_client("idfix38")


def _hers(http: TestClient, number: str, name: str, birth: str, control: str, extra_id: str = "") -> dict:
    """Her bare record, registered by the HIS (``extra_id``: a further PID-3 repetition), and her LIS result under
    ``^^^LIS^PI`` filed under it (the number remembered). rv38j's probes use it too."""
    old = registered(http, number, f"{control}A", name, birth, "F", f"~{extra_id}" if extra_id else "")
    ack = post(http, oru(f"{control}B", f"{number}^^^LIS^PI", name, birth, "F", f"{control}B"))
    assert ack_code_of(ack) == "AA" and subjects(http, f"{control}B") == [f"Patient/{old['id']}"], ack
    return old


def test_a_result_filed_as_own_leaves_the_number_on_her_record(both: tuple[Engine, TestClient]) -> None:
    """A result names the patient only (the ADT feed owns the record), yet the number it was filed under is
    written on her record -- the identifier alone: her name, sex, birth date and MRN stay as the HIS stated them
    -- and a search by the LIS's number finds her record, the only one."""
    engine, http = both
    old = _hers(http, "F38A", "柳^一", "19610101", "FA")
    now = http.get(f"/fhir/Patient/{old['id']}").json()
    assert {f"{MRN}|F38A", f"{MRN}:LIS|F38A"} <= tokens(now), now["identifier"]
    assert (now["name"], now["gender"], now["birthDate"]) == (old["name"], old["gender"], old["birthDate"])
    assert [p["id"] for p in patients(http, f"{MRN}:LIS|F38A")] == [old["id"]]


@pytest.mark.parametrize("n, name, birth, sex", [
    (1, "李^二", "19900202", "M"),  # another name, sex and birth date
    (2, "李^二", "19900202", "F"),  # another woman: same sex, so contradicts_all alone would let her through
    (3, "柳^二", "19700202", "F"),  # her name and sex, another birth date
])
def test_another_person_under_the_remembered_number_is_refused(both: tuple[Engine, TestClient], n: int, name: str,
                                                               birth: str, sex: str) -> None:
    """The number names her record now: a message under it for someone she is not is refused -- AE, ERR at
    PID-3 (205) naming PID-5/8/7, no person echoed -- filed neither under her record nor as a record of the
    number as sent; her next result is still hers."""
    engine, http = both
    number = f"F38B{n}"
    old = _hers(http, number, "柳^二", "19610202", f"FB{n}")
    ack = post(http, oru(f"FB{n}C", f"{number}^^^LIS^PI", name, birth, sex, f"FB{n}C"))
    assert ack_code_of(ack) == "AE", ack
    (err,) = err_lines(ack)
    assert "|PID^1^3|" in err and "205" in err and "PID-5, PID-8, PID-7" in err, err
    assert all(s not in err for s in (number, "柳", "李", "1961", "1990")), err
    assert subjects(http, f"FB{n}C") == []
    assert [p["id"] for p in patients(http, f"{MRN}:LIS|{number}")] == [old["id"]]
    ack = post(http, oru(f"FB{n}D", f"{number}^^^LIS^PI", "柳^二", "19610202", "F", f"FB{n}D"))
    assert ack_code_of(ack) == "AA" and subjects(http, f"FB{n}D") == [f"Patient/{old['id']}"], ack


def test_a_thin_message_under_the_remembered_number_is_hers(both: tuple[Engine, TestClient]) -> None:
    """A result without a birth date (a LIS sending an age) under the remembered number: nothing disagrees, so
    it is filed under her record (AA, the filed-as-own W saying why); no second record of the number."""
    engine, http = both
    old = _hers(http, "F38C", "柳^三", "19610303", "FC")
    ack = post(http, oru("FCC", "F38C^^^LIS^PI", "柳^三", "", "F", "FCC"))
    assert ack_code_of(ack) == "AA", ack
    (err,) = err_lines(ack)
    assert "|W|" in err and "earlier message of this authority" in err, err
    assert subjects(http, "FCC") == [f"Patient/{old['id']}"]
    assert [p["id"] for p in patients(http, "F38C")] == [old["id"]]


def test_her_agreeing_result_goes_to_her_record_not_to_a_thin_split(both: tuple[Engine, TestClient]) -> None:
    """Before anything was filed as hers, a thin result made the record of the number as sent (kept apart: not
    positively her). Her next result, positively her: under her record, not under the thin split record (which
    is not positively her) -- and the number is then remembered on her record."""
    engine, http = both
    old = registered(http, "F38D", "FDA", "柳^四", "19610404", "F")
    assert ack_code_of(post(http, oru("FDB", "F38D^^^LIS^PI", "柳^四", "", "F", "FDB"))) == "AA"
    (split,) = [s for s in subjects(http, "FDB")]
    assert split != f"Patient/{old['id']}"
    ack = post(http, oru("FDC", "F38D^^^LIS^PI", "柳^四", "19610404", "F", "FDC"))
    assert ack_code_of(ack) == "AA" and subjects(http, "FDC") == [f"Patient/{old['id']}"], ack
    assert f"{MRN}:LIS|F38D" in tokens(http.get(f"/fhir/Patient/{old['id']}").json())


@pytest.mark.parametrize("birth", ["1961", "196105"])
def test_a_birth_date_short_of_the_day_does_not_join(both: tuple[Engine, TestClient], birth: str) -> None:
    """张伟 M 1961-05-05 under the HIS's R38; the LIS's 张伟 M born '1961' (or 1961-05) under its own number of
    the value: kept apart (identity32's W), nothing filed under the HIS's record nor remembered on it."""
    engine, http = both
    number = f"F38E{len(birth)}"
    assert ack_code_of(post(http, adt(f"FE{len(birth)}A", f"{number}^^^FNXRMYY^MR", "张^伟", "19610505", "M"))) == "AA"
    (old,) = patients(http, f"{MRN}|{number}")
    ack = post(http, oru(f"FE{len(birth)}B", f"{number}^^^LIS^PI", "张^伟", birth, "M", f"FE{len(birth)}B"))
    assert ack_code_of(ack) == "AA" and any("kept apart" in e for e in err_lines(ack)), ack
    assert f"Patient/{old['id']}" not in subjects(http, f"FE{len(birth)}B")
    assert f"{MRN}:LIS|{number}" not in tokens(http.get(f"/fhir/Patient/{old['id']}").json())


def test_a_merge_under_the_remembered_number_moves_her_record(both: tuple[Engine, TestClient]) -> None:
    """Her result under ``F38G1^^^HIS^MR`` was filed under her bare record F38G1 (remembered there); the HIS's A40
    under the same authority merges F38G1 into F38G2: the bare F38G1 (her results) is the record merged -- out of
    use, replaced by F38G2 -- and no record of the number as sent is made."""
    engine, http = both
    for c, number in (("FGA", "F38G1"), ("FGB", "F38G2")):
        assert ack_code_of(post(http, adt(c, f"{number}^^^FNXRMYY^MR", "柳^七", "19610707", "F"))) == "AA"
    assert ack_code_of(post(http, oru("FGC", "F38G1^^^HIS^MR", "柳^七", "19610707", "F", "FGC"))) == "AA"
    (one,) = patients(http, f"{MRN}|F38G1")
    (two,) = patients(http, f"{MRN}|F38G2")
    ack = post(http, merge("FGD", "F38G2^^^HIS^MR", "柳^七", "19610707", "F", "F38G1^^^HIS^MR"))
    assert ack_code_of(ack) == "AA", ack
    after = http.get(f"/fhir/Patient/{one['id']}").json()
    assert after["active"] is False, after
    assert {"other": {"reference": f"Patient/{two['id']}"}, "type": "replaced-by"} in after["link"], after["link"]
    survivor = http.get(f"/fhir/Patient/{two['id']}").json()
    assert [link["other"]["reference"] for link in survivor["link"] if link["type"] == "replaces"] == \
        [f"Patient/{one['id']}"]
    assert sorted(p["id"] for p in patients(http, "F38G1")) == [one["id"]]


def test_a_merge_naming_a_number_never_filed_as_own_is_refused_at_mrg_1(both: tuple[Engine, TestClient]) -> None:
    """MRG-1 ``F38H1^^^HIS^MR``: the institution holds its bare record F38H1, which nothing under the authority was
    ever filed under, and no record of the number as sent exists -- the phantom merge is refused (AE at MRG-1),
    nothing merged: F38H1 stays in use, the survivor replaces nothing. Over MLLP."""
    engine, http = both
    for c, number in (("FHA", "F38H1"), ("FHB", "F38H2")):
        assert ack_code_of(post(http, adt(c, f"{number}^^^FNXRMYY^MR", "柳^八", "19610808", "F"))) == "AA"
    (one,) = patients(http, f"{MRN}|F38H1")
    (two,) = patients(http, f"{MRN}|F38H2")
    (ack,) = mllp(engine, merge("FHC", "F38H2^^^FNXRMYY^MR", "柳^八", "19610808", "F", "F38H1^^^HIS^MR").encode())
    assert ack_code_of(ack) == "AE", ack
    (err,) = err_lines(ack)
    assert "|MRG^1^1|" in err and "mrn_authorities" in err and "F38H1" not in err, err
    assert http.get(f"/fhir/Patient/{one['id']}").json().get("active") is not False
    assert not [link for link in http.get(f"/fhir/Patient/{two['id']}").json().get("link", ())
                if link["type"] == "replaces"]
    assert sorted(p["id"] for p in patients(http, "F38H1")) == [one["id"]]


def test_in_one_batch_her_result_then_another_persons_under_the_number(both: tuple[Engine, TestClient]) -> None:
    """A batch: her result under ``^^^LIS^PI`` (filed under her bare record, the number remembered as the batch
    leaves it), then the same number for a man: refused as the two sent singly are; hers filed."""
    engine, http = both
    old = registered(http, "F38I", "FIA", "柳^九", "19610909", "F")
    body = _batch(oru("FIB", "F38I^^^LIS^PI", "柳^九", "19610909", "F", "FIB"),
                  oru("FIC", "F38I^^^LIS^PI", "李^九", "19900909", "M", "FIC"))
    ack = post(http, body)
    assert b"MSA|AA|FIB" in ack and b"MSA|AE|FIC" in ack, ack
    assert subjects(http, "FIB") == [f"Patient/{old['id']}"] and subjects(http, "FIC") == []
    assert [p["id"] for p in patients(http, "F38I")] == [old["id"]]


def test_the_number_outlives_her_next_registration(both: tuple[Engine, TestClient]) -> None:
    """After her number was remembered, the HIS's A08 of her bare record (its own identifiers only): a man's
    result under the LIS's number is still refused."""
    engine, http = both
    old = _hers(http, "F38J", "柳^十", "19611010", "FJ")
    assert ack_code_of(post(http, adt("FJC", "F38J^^^FNXRMYY^MR", "柳^十", "19611010", "F", event="A08"))) == "AA"
    ack = post(http, oru("FJD", "F38J^^^LIS^PI", "李^十", "19901010", "M", "FJD"))
    assert ack_code_of(ack) == "AE" and subjects(http, "FJD") == [], ack
    assert [p["id"] for p in patients(http, "F38J")] == [old["id"]]


def test_after_her_registration_her_results_are_still_hers(both: tuple[Engine, TestClient]) -> None:
    """The HIS's A08 of her bare record leaves the remembered number on it (ident39; it had dropped it, and
    another person's result then made the record of the number as sent): another person's result under the
    number is refused, her next result, positively her, is filed under her record, the other's next refused."""
    engine, http = both
    old = _hers(http, "F38K", "柳^十一", "19611111", "FK")
    assert ack_code_of(post(http, adt("FKC", "F38K^^^FNXRMYY^MR", "柳^十一", "19611111", "F", event="A08"))) == "AA"
    ack = post(http, oru("FKD", "F38K^^^LIS^PI", "李^十一", "19901111", "F", "FKD"))
    assert ack_code_of(ack) == "AE" and subjects(http, "FKD") == [], ack
    ack = post(http, oru("FKE", "F38K^^^LIS^PI", "柳^十一", "19611111", "F", "FKE"))
    assert ack_code_of(ack) == "AA" and subjects(http, "FKE") == [f"Patient/{old['id']}"], ack
    ack = post(http, oru("FKF", "F38K^^^LIS^PI", "李^十一", "19901111", "F", "FKF"))
    assert ack_code_of(ack) == "AE" and subjects(http, "FKF") == [], ack
    assert [p["id"] for p in patients(http, "F38K")] == [old["id"]]
