"""rv39b: probes of the person guard after nbfix38 (``demographics.contradicts_all``: name AND a full birth date both
differing mean two people, whatever the sex) and of ``/admin/fidelity``'s negotiation (``ui_fidelity.wants_page``).

Real HL7 over ``POST /hl7v2`` into a real store on each backend (``module_eng``), read back over ``/fhir``; real HTTP
through FastAPI for the admin address."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from adapters.hl7v2.escapes import unescape
from engine.api.app import create_app
from engine.api.ui_quarantine import WORDS, err_said
from engine.engine import Engine
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import engine_and_client, registered
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_mfix34_members import _fnzyy
from tests.test_rvidentity32_probes import MRN, _nid, adt, merge, oru, patients, subjects

BASE = "https://huren.example"  # module_eng's public base (the session cookie is Secure)


both = engine_and_client("rv39b")


def test_twins_of_the_other_sex_one_result_under_the_others_mrn(both: tuple[Engine, TestClient]) -> None:
    """Twins born the same day, a girl and a boy, each registered; the LIS sends the boy's result under his sister's
    MRN (name and sex both differ, the day of birth the same). Name AND sex stated male/female on both sides is the
    guard's own reading of two people -- but a birth date that agrees cancels it, so the boy's glucose is filed
    under the girl."""
    _, http = both
    girl = registered(http, "TW1", "TW1A", "王^大妹", "20261101", "F")
    registered(http, "TW2", "TW2A", "王^二弟", "20261101", "M")
    ack = post(http, oru("TW1B", "TW1^^^FNXRMYY^MR", "王^二弟", "20261101", "M", "TW1GLU"))
    assert subjects(http, "TW1GLU") != [f"Patient/{girl['id']}"], ack
    assert ack_code_of(ack) == "AE", ack


def test_same_sex_twins_told_apart_by_their_id_numbers(both: tuple[Engine, TestClient]) -> None:
    """Same-sex twins (王大丫, 王二丫, born 2010-03-01) each registered with her own resident ID number; the LIS sends
    the second's result under the first's MRN with the second's name AND ID number. Name and ID number both differ
    -- the one datum that tells same-sex twins apart names another person -- yet nothing of it is weighed: the
    result is filed under the first twin, no ERR."""
    _, http = both
    first, second = _nid("32092320100301002"), _nid("32092320100301024")
    ack = post(http, adt("TW3A", f"TW3^^^FNXRMYY^MR~{first}^^^^NNCHN", "王^大丫", "20100301", "F"))
    assert ack_code_of(ack) == "AA", ack
    (record,) = patients(http, f"{MRN}|TW3")
    ack = post(http, adt("TW4A", f"TW4^^^FNXRMYY^MR~{second}^^^^NNCHN", "王^二丫", "20100301", "F"))
    assert ack_code_of(ack) == "AA", ack
    ack = post(http, oru("TW3B", f"TW3^^^FNXRMYY^MR~{second}^^^^NNCHN", "王^二丫", "20100301", "F", "TW3GLU"))
    assert subjects(http, "TW3GLU") != [f"Patient/{record['id']}"], ack
    assert ack_code_of(ack) == "AE", ack


def test_a_lis_result_with_the_demographics_the_registrar_just_corrected(both: tuple[Engine, TestClient]) -> None:
    """The HIS registered 柳庚 born 1970-01-01 and corrected both (刘庚, 1970-10-01) by its own A08 (accepted with
    the warning); the LIS, whose copy of the registration is a day old, sends her result with the old name and day
    of birth under the same MRN. The same woman (the registrar's correction is on record as this record's history),
    refused now -- before nbfix38 (name AND sex) filed; the refusal's advice ("have the registering system correct
    the record") was already done."""
    _, http = both
    record = registered(http, "ST1", "ST1A", "柳^庚", "19700101", "F")
    ack = post(http, adt("ST1B", "ST1^^^FNXRMYY^MR", "刘^庚", "19701001", "F", event="A08"))
    assert ack_code_of(ack) == "AA", ack
    ack = post(http, oru("ST1C", "ST1^^^FNXRMYY^MR", "柳^庚", "19700101", "F", "ST1GLU"))
    assert ack_code_of(ack) == "AA" and subjects(http, "ST1GLU") == [f"Patient/{record['id']}"], ack


def test_a40_merging_a_duplicate_registered_with_a_homophone_name_and_a_mistyped_day(
        both: tuple[Engine, TestClient]) -> None:
    """The commonest duplicate a county HIS makes: the same woman registered twice, once as 王丽 born 1980-01-01,
    once as 王莉 born 1980-01-10 (a homophone and a mistyped day). The HIS's A40 merges the duplicate into the
    right record -- the very correction merges exist for."""
    _, http = both
    survivor = registered(http, "MG1", "MG1A", "王^丽", "19800101", "F")
    registered(http, "MG2", "MG2A", "王^莉", "19800110", "F")
    ack = post(http, merge("MG1B", "MG1^^^FNXRMYY^MR", "王^丽", "19800101", "F", "MG2^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AA", (ack, err_lines(ack))
    assert [p["id"] for p in patients(http, f"{MRN}|MG1")] == [survivor["id"]]


def test_a_referral_with_a_homophone_name_and_a_lunar_birthday(both: tuple[Engine, TestClient]) -> None:
    """Rural registrations take the birthday as the person says it (lunar) and the name as heard: FNXRMYY
    registered 王丽 born 1980-03-01 (her ID card); FNZYY, a member, registers her on referral under its own number
    with FNXRMYY's beside it, as 王莉 born 19800115 (lunar 1980 正月十五, the same day). The lead's decision (nbfix39):
    the refusal stands -- name and a full birth date both differ and nothing else ties them; a wrong filing costs a
    resident her privacy, a refusal keeps the raw message for replay. The AE names the fields (PID-5, PID-7) and
    says what an operator can do (replay once corrected, or a corrected copy)."""
    _, http = both
    registered(http, "LN1", "LN1A", "王^丽", "19800301", "F")
    ack = post(http, _fnzyy(adt("LN1B", "ZL1^^^FNZYY^MR~LN1^^^FNXRMYY^MR", "王^莉", "19800115", "F")))
    assert ack_code_of(ack) == "AE", ack
    (said,) = err_lines(ack)
    assert "|205" in said and "PID-5" in said and "PID-7" in said, said
    assert "operator" in said and "replays" in said and "corrected copy" in said, said
    assert patients(http, "urn:huren:mrn:FNZYY|ZL1") == []


def test_the_member_refusal_says_what_differs(both: tuple[Engine, TestClient]) -> None:
    """The member-number guard's answers name what differs (id40; the premise of this probe -- its texts said "name
    and sex differ" of two women -- was outdated since lastread1 wrote the rule's three readings instead): the W of a
    result filed beside (two women: name and birth date), the AE of a registration (a man under a woman's number:
    name and sex), in English and, through the words the operator's pages show, in Chinese."""
    engine, http = both
    words = WORDS.current(engine.settings.site)
    registered(http, "LN2", "LN2A", "王^丽", "19800301", "F")
    ack = post(http, _fnzyy(oru("LN2B", "ZL2^^^FNZYY^MR~LN2^^^FNXRMYY^MR", "陈^四", "19920303", "F", "LN2GLU")))
    (said,) = err_lines(ack)
    assert "|205" in said and "|W|" in said, said
    assert "its name (PID-5) and birth date (PID-7) differ from this PID's" in said and "sex (PID-8) and" not in said
    zh, _ = err_said(words, "205", unescape(said.split("|")[8]))
    assert "其姓名、出生日期与本消息不符" in zh, zh
    registered(http, "LN3", "LN3A", "王^丽", "19800301", "F")
    ack = post(http, _fnzyy(adt("LN3B", "ZL3^^^FNZYY^MR~LN3^^^FNXRMYY^MR", "陈^四", "19800301", "M")))
    (said,) = err_lines(ack)
    assert ack_code_of(ack) == "AE" and "its name (PID-5) and sex (PID-8) differ from this PID's" in said, said
    zh, _ = err_said(words, "205", unescape(said.split("|")[8]))
    assert "其姓名、性别与本消息不符" in zh and "消息未处理" in zh, zh


def test_the_restatement_warning_says_what_changed(both: tuple[Engine, TestClient]) -> None:
    """nbfix38 made a name and a day of birth both differing (sex the same) a restatement; persons._restated's
    texts still say all three changed -- the operator reading the fidelity view is told a sex change that was not
    sent."""
    _, http = both
    registered(http, "WT1", "WT1A", "柳^辛", "19610101", "F")
    refused = post(http, adt("WT1B", "WT1^^^FNXRMYY^MR", "吴^辛", "19700505", "F", event="A08", app="LIS"))
    ack = post(http, adt("WT1C", "WT1^^^FNXRMYY^MR", "吴^辛", "19700505", "F", event="A08"))
    assert ack_code_of(refused) == "AE" and ack_code_of(ack) == "AA", (refused, ack)
    for said in (err_lines(refused)[0], err_lines(ack)[0]):
        assert "sex" not in said.split("(PID")[0] or "name and day of birth" in said, said


def test_a40_of_a_newborn_into_the_mothers_record_is_refused(both: tuple[Engine, TestClient]) -> None:
    """The wrong merge -- the HIS's A40 naming the mother's record as survivor and her daughter's as
    MRG-1 (another name, another full birth date, the same sex) -- is not filed silently: not AA without a word."""
    _, http = both
    registered(http, "MG5", "MG5A", "柳^壬", "19900101", "F")
    registered(http, "MG6", "MG6A", "柳壬之女", "20261130", "F")
    ack = post(http, merge("MG5B", "MG5^^^FNXRMYY^MR", "柳^壬", "19900101", "F", "MG6^^^FNXRMYY^MR"))
    assert ack_code_of(ack) != "AA" or err_lines(ack), (ack, patients(http, f"{MRN}|MG6"))


def test_a_client_asking_any_text_is_not_answered_in_fhir_json(module_eng: Engine) -> None:
    with TestClient(create_app(module_eng), base_url=BASE) as anon:
        r = anon.get("/admin/fidelity", headers={"Accept": "text/*"}, follow_redirects=False)
    assert "accept" in r.headers.get("vary", "").lower(), dict(r.headers)
    assert r.status_code == 303 or r.headers.get("content-type", "").startswith("text/"), (r.status_code, r.headers)


@pytest.mark.parametrize(("accept", "page"), [
    (None, False), ("*/*", False), ("application/json;q=0.9, text/html", True), ("text/html;q=abc", True),
    ("text/html;q=nan, application/json;q=0.1", False), ("application/fhir+json, text/html;q=0.5", False),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True)])
def test_every_refusal_of_the_fidelity_address_varies_by_accept(module_eng: Engine, accept: str | None,
                                                                page: bool) -> None:
    """Real clients' Accept headers, unauthenticated: a browser's is sent to sign in (303), a program's told 401 in
    JSON; each says Vary: Accept, never a 500."""
    with TestClient(create_app(module_eng), base_url=BASE) as anon:
        r = anon.get("/admin/fidelity", headers={"Accept": accept} if accept else {}, follow_redirects=False)
    assert r.status_code == (303 if page else 401), (accept, r.status_code)
    assert "accept" in r.headers.get("vary", "").lower(), dict(r.headers)
