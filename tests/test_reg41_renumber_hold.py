"""reg41: on a site declaring no ``registration_applications`` (the shipped default), the application that registered
a record's resident ID number alone replaces or takes it off (``persons._may_renumber``, ``_number_owners``); another
application's registration -- a LIS walk-in A04 stating another woman's number under the HIS's MRN -- is held: AA,
W 205 at PID-3 naming both applications (never a number), the record keeping its number, the message listed for
ord40's operator decision (``GET /admin/held``, ``POST /admin/quarantine/{id}/owner``) whose replay takes it.

Real HL7 over ``POST /hl7v2`` (or the ingestor's one-transaction batch) into a real store on each backend
(``module_eng``: SQLite, mongomock), read back over ``/fhir`` and ``/admin`` with real tokens; the declared site and
the aliased site are engines of their own site folders."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.messages import message_id
from engine.settings import Settings
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import NNCHN_SYSTEM, engine_and_client, registered, tokens
from tests.module_store import undeclared_eng as module_eng  # noqa: F401 -- a site declaring none (decl42), each backend
from tests.test_a47fix40_identity import _zh
from tests.test_ord40_owner_decision import _senders
from tests.test_order35_as_later import _operator
from tests.test_regapp33_registration_apps import _site
from tests.test_rvidentity32_probes import MRN, _nid, adt, patients

both = engine_and_client("reg41")

REASON = "已核对居民身份证：检验科自助登记时误选了同名同出生日期的另一位居民，HIS 登记的号码正确"


def _held_line(ack: bytes) -> str:
    (line,) = [x for x in err_lines(ack) if x.startswith("ERR||PID^1^3|") and "|205^" in x]
    return line


def _owner(http: TestClient, engine: Engine, control: str, reason: str = REASON) -> dict:
    """The operator's decision (a system client other than the sender, ``MessageHeader`` read and create) that the
    held message ``control``'s change is the number's owner's: 200, its answer."""
    r = http.post(f"/admin/quarantine/{message_id('FNXRMYY', control)}/owner",
                  headers={**_operator(engine, "system/MessageHeader.cr", "reg41-ops"), "Content-Type": "application/json"},
                  content=json.dumps({"reason": reason}))
    assert r.status_code == 200, r.text
    return r.json()


def _held(http: TestClient, engine: Engine) -> dict[str, dict]:
    r = http.get("/admin/held", headers=_operator(engine, "system/MessageHeader.cr", "reg41-ops"))
    assert r.status_code == 200, r.text
    return {m["control_id"]: m for m in r.json()["items"]}


def test_a_lis_walk_in_stating_another_womans_number_is_held(both: tuple[Engine, TestClient]) -> None:
    """The HIS registers MA (number A) and MB (number B), one name and birth date; the LIS's walk-in A04 under MA's
    MRN states B: AA, W 205 at PID-3 naming MSH-3 HIS (who registered the number) and MSH-3 LIS -- no number in
    the ACK --, in Chinese on the operator's page; MA keeps A, is not linked to MB, B finds MB alone; the message is
    listed as held (the record's ID number, kind id-number, no number in the claim)."""
    engine, http = both
    a, b = _nid("32092319700202002"), _nid("32092319700202012")
    ma = registered(http, "GA", "GA1", "甲^二", "19700202", "F", f"~{a}^^^^NNCHN")
    registered(http, "GB", "GB1", "甲^二", "19700202", "F", f"~{b}^^^^NNCHN")
    ack = post(http, adt("GA2", f"GA^^^FNXRMYY^MR~{b}^^^^NNCHN", "甲^二", "19700202", "F", app="LIS"))
    assert ack_code_of(ack) == "AA", ack
    line = _held_line(ack)
    assert "|W|" in line and "(MSH-3 HIS) replaces it" in line and "(MSH-3 LIS) is another" in line, line
    assert a.encode() not in ack and b.encode() not in ack, ack
    zh = _zh(engine, ack, "ERR||PID^1^3|")
    assert "暂未采用" in zh and "由 MSH-3 HIS 登记" in zh and "MSH-3 LIS" in zh and "按号码所有者的更改处理" in zh, zh
    (rec,) = patients(http, f"{MRN}|GA")
    assert f"{NNCHN_SYSTEM}|{a}" in tokens(rec) and f"{NNCHN_SYSTEM}|{b}" not in tokens(rec), tokens(rec)
    assert not rec.get("link") and len(patients(http, f"{NNCHN_SYSTEM}|{b}")) == 1
    held = _held(http, engine)["GA2"]
    (claim,) = held["held_claims"]
    assert claim["kind"] == "id-number" and claim["resource"] == f"Patient/{ma['id']}" and not claim["elsewhere"]
    assert a not in json.dumps(claim) and b not in json.dumps(claim), claim


def test_the_his_after_a_lis_walk_in_is_held_and_the_operator_takes_it(both: tuple[Engine, TestClient]) -> None:
    """A LIS walk-in A04 with a wrong valid number makes the LIS the number's registrar: the HIS's A04 with the right
    one is held (W 205 naming LIS and HIS), then taken by the operator's decision with a reason -- the record holds
    the right number, the Provenance names the operator as verifier (not the reason), the message leaves the held
    list, asked again it is ``already``. The HIS then registered the number: its null is taken, the LIS's A08
    restating the wrong one is held."""
    engine, http = both
    wrong, right = _nid("32092319700203002"), _nid("32092319700203022")
    assert ack_code_of(post(http, adt("GC1", f"GC^^^FNXRMYY^MR~{wrong}^^^^NNCHN", "甲^三", "19700203", "F",
                                      app="LIS"))) == "AA"
    ack = post(http, adt("GC2", f"GC^^^FNXRMYY^MR~{right}^^^^NNCHN", "甲^三", "19700203", "F"))
    line = _held_line(ack)
    assert "(MSH-3 LIS) replaces it" in line and "(MSH-3 HIS) is another" in line, line
    assert "GC2" in _held(http, engine)
    decided = _owner(http, engine, "GC2")
    assert decided["ack_code"] == "AA" and decided["decided"]["used"] is True and decided["held_claims"] == [], decided
    (rec,) = patients(http, f"{MRN}|GC")
    assert f"{NNCHN_SYSTEM}|{right}" in tokens(rec) and f"{NNCHN_SYSTEM}|{wrong}" not in tokens(rec), tokens(rec)
    provs = http.get("/fhir/Provenance", params={"target": f"Patient/{rec['id']}"}).json()
    agents = [ag for e in provs.get("entry") or () for ag in e["resource"].get("agent") or ()]
    verifier = [ag for ag in agents if any(c.get("code") == "verifier" for c in (ag.get("type") or {}).get("coding") or ())]
    assert verifier and REASON not in json.dumps(verifier, ensure_ascii=False), agents
    assert "GC2" not in _held(http, engine)
    assert _owner(http, engine, "GC2")["already"] is True
    ack = post(http, adt("GC3", f"GC^^^FNXRMYY^MR~{wrong}^^^^NNCHN", "甲^三", "19700203", "F", event="A08",
                         app="LIS"))
    assert "(MSH-3 HIS) replaces it" in _held_line(ack), ack
    ack = post(http, adt("GC4", 'GC^^^FNXRMYY^MR~""^^^^NNCHN', "甲^三", "19700203", "F", event="A08"))
    assert ack_code_of(ack) == "AA" and not any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    assert patients(http, right) == [] and patients(http, wrong) == []


def test_a_decision_on_a_record_written_since_is_not_taken(both: tuple[Engine, TestClient]) -> None:
    """The decision is bound to the record's version the hold left (as ord40's to the order's): the HIS's A08 writes
    the record after the hold -- 409 naming the record, nothing written; a plain replay holds it again against what
    is stored now, and that hold is then taken."""
    engine, http = both
    wrong, right = _nid("32092319700212002"), _nid("32092319700212022")
    assert ack_code_of(post(http, adt("GL1", f"GL^^^FNXRMYY^MR~{wrong}^^^^NNCHN", "甲^十二", "19700212", "F",
                                      app="LIS"))) == "AA"
    _held_line(post(http, adt("GL2", f"GL^^^FNXRMYY^MR~{right}^^^^NNCHN", "甲^十二", "19700212", "F")))
    assert ack_code_of(post(http, adt("GL3", "GL^^^FNXRMYY^MR", "甲^十贰", "19700212", "F", event="A08"))) == "AA"
    ops = {**_operator(engine, "system/MessageHeader.cr", "reg41-ops"), "Content-Type": "application/json"}
    msg = message_id("FNXRMYY", "GL2")
    refused = http.post(f"/admin/quarantine/{msg}/owner", headers=ops, content=json.dumps({"reason": REASON}))
    assert refused.status_code == 409 and "the record changed after the hold" in refused.text, refused.text
    (rec,) = patients(http, f"{MRN}|GL")
    assert f"{NNCHN_SYSTEM}|{wrong}" in tokens(rec), tokens(rec)
    replayed = http.post(f"/admin/quarantine/{msg}/replay", headers=ops)
    assert replayed.status_code == 200 and replayed.json()["ack_code"] == "AA", replayed.text
    assert "GL2" in _held(http, engine)
    assert _owner(http, engine, "GL2")["decided"]["used"] is True
    (rec,) = patients(http, f"{MRN}|GL")
    assert f"{NNCHN_SYSTEM}|{right}" in tokens(rec) and f"{NNCHN_SYSTEM}|{wrong}" not in tokens(rec), tokens(rec)


def test_the_registering_application_itself_still_renumbers(both: tuple[Engine, TestClient]) -> None:
    """The HIS re-sending its A08, then its A04, each with a corrected number: taken, no W 205."""
    _, http = both
    first, second, third = (_nid(f"32092319700204{k}02") for k in range(3))
    registered(http, "GD", "GD1", "甲^四", "19700204", "F", f"~{first}^^^^NNCHN")
    for control, number, event in (("GD2", second, "A08"), ("GD3", third, "A04")):
        ack = post(http, adt(control, f"GD^^^FNXRMYY^MR~{number}^^^^NNCHN", "甲^四", "19700204", "F", event=event))
        assert ack_code_of(ack) == "AA" and not any("|205^" in x for x in err_lines(ack)), err_lines(ack)
        (rec,) = patients(http, f"{MRN}|GD")
        assert {t for t in tokens(rec) if t.startswith(NNCHN_SYSTEM)} == {f"{NNCHN_SYSTEM}|{number}"}, tokens(rec)


def test_a_lis_null_is_held_too(both: tuple[Engine, TestClient]) -> None:
    """The LIS's walk-in A04 under the HIS's record with ``""^^^^NNCHN``: the number kept, W 205 at that repetition
    naming both applications, held for the operator."""
    engine, http = both
    nid = _nid("32092319700205002")
    registered(http, "GE", "GE1", "甲^五", "19700205", "F", f"~{nid}^^^^NNCHN")
    ack = post(http, adt("GE2", 'GE^^^FNXRMYY^MR~""^^^^NNCHN', "甲^五", "19700205", "F", app="LIS"))
    (line,) = [x for x in err_lines(ack) if "PID^1^3^2" in x]
    assert "(MSH-3 HIS) takes it off" in line and "(MSH-3 LIS) is another" in line, line
    assert "暂未采用" in _zh(engine, ack, "PID^1^3^2")
    assert f"{NNCHN_SYSTEM}|{nid}" in tokens(patients(http, f"{MRN}|GE")[0])
    assert _held(http, engine)["GE2"]["held_claims"][0]["at"] == "PID[1]-3[2]"


def test_one_batch_decides_as_one_by_one(both: tuple[Engine, TestClient]) -> None:
    """The HIS's two registrations and the LIS's walk-in A04 stating the other woman's number, one by one and as one
    batch (one transaction): the same answers, the same numbers, held alike."""
    engine, http = both
    numbers = {}
    for run in ("GF", "GG"):
        born = "19700206" if run == "GF" else "19700207"
        a, b = _nid(f"320923{born}002"), _nid(f"320923{born}012")
        numbers[run] = (a, b)
        texts = [adt(f"{run}1", f"{run}A^^^FNXRMYY^MR~{a}^^^^NNCHN", "甲^六", born, "F"),
                 adt(f"{run}2", f"{run}B^^^FNXRMYY^MR~{b}^^^^NNCHN", "甲^六", born, "F"),
                 adt(f"{run}3", f"{run}A^^^FNXRMYY^MR~{b}^^^^NNCHN", "甲^六", born, "F", app="LIS")]
        raws = [(t.encode(), "mllp", "t") for t in texts]
        outcomes = ([o for raw in raws for o in engine.ingestor.process([raw])] if run == "GF"
                    else engine.ingestor.process(raws))
        numbers[run] += ([ack_code_of(o.ack) for o in outcomes],
                         _held_line(outcomes[2].ack).replace(run, "<run>"))
    assert numbers["GF"][2:] == numbers["GG"][2:], numbers
    for run in ("GF", "GG"):
        a, b = numbers[run][:2]
        (rec,) = patients(http, f"{MRN}|{run}A")
        assert f"{NNCHN_SYSTEM}|{a}" in tokens(rec) and f"{NNCHN_SYSTEM}|{b}" not in tokens(rec)
        assert f"{run}3" in _held(http, engine)


@pytest.fixture(scope="module")
def declared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, TestClient]]:
    """A site declaring its HIS the registration application (``registration_applications: [HIS]``)."""
    root = _site(tmp_path_factory.mktemp("reg41-declared"), ["HIS"])
    with Engine(Settings(data_dir=root / "var", http_port=0, mllp_port=0, site=root)) as eng, \
            TestClient(create_app(eng)) as client:
        client.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("t", "system/*.cruds")
        yield eng, client


def test_a_declaring_site_keeps_its_rule(declared: tuple[Engine, TestClient]) -> None:
    """Declared: the LIS's walk-in A04 is answered by the declared rule (W 205 naming registration_applications, not
    held), and the HIS's A04 after a LIS walk-in takes the number, as before."""
    engine, http = declared
    a, b = _nid("32092319700208002"), _nid("32092319700208012")
    registered(http, "GH", "GH1", "甲^八", "19700208", "F", f"~{a}^^^^NNCHN")
    ack = post(http, adt("GH2", f"GH^^^FNXRMYY^MR~{b}^^^^NNCHN", "甲^八", "19700208", "F", app="LIS"))
    line = _held_line(ack)
    assert "registration_applications" in line and "is another" not in line, line
    assert "GH2" not in _held(http, engine)
    wrong, right = _nid("32092319700209002"), _nid("32092319700209012")
    assert ack_code_of(post(http, adt("GI1", f"GI^^^FNXRMYY^MR~{wrong}^^^^NNCHN", "甲^九", "19700209", "F",
                                      app="LIS"))) == "AA"
    ack = post(http, adt("GI2", f"GI^^^FNXRMYY^MR~{right}^^^^NNCHN", "甲^九", "19700209", "F"))
    assert ack_code_of(ack) == "AA" and not any("|205^" in x for x in err_lines(ack)), err_lines(ack)


@pytest.fixture(scope="module")
def aliased(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A site whose HIS moved to MSH-3 HIS5 (senders.yaml application_aliases: one application), declaring none."""
    root = tmp_path_factory.mktemp("reg41-aliased")
    _site(root, None, senders=_senders({"FNXRMYY": [["HIS", "HIS5"]]}))
    with Engine(Settings(data_dir=root / "var", http_port=0, mllp_port=0, site=root)) as eng, \
            TestClient(create_app(eng)) as client:
        client.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("t", "system/*.cruds")
        yield client


def test_an_aliased_msh3_is_the_application_that_registered_the_number(aliased: TestClient) -> None:
    """The number the HIS registered: HIS5 (the site's alias of HIS) corrects it by A04; the LIS's A04 is held."""
    a, b, c = (_nid(f"32092319700210{k}02") for k in range(3))
    registered(aliased, "GJ", "GJ1", "甲^十", "19700210", "F", f"~{a}^^^^NNCHN")
    ack = post(aliased, adt("GJ2", f"GJ^^^FNXRMYY^MR~{b}^^^^NNCHN", "甲^十", "19700210", "F", app="HIS5"))
    assert ack_code_of(ack) == "AA" and not any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    ack = post(aliased, adt("GJ3", f"GJ^^^FNXRMYY^MR~{c}^^^^NNCHN", "甲^十", "19700210", "F", app="LIS"))
    assert "(MSH-3 HIS5) replaces it" in _held_line(ack) or "(MSH-3 HIS) replaces it" in _held_line(ack), ack
    (rec,) = patients(aliased, f"{MRN}|GJ")
    assert {t for t in tokens(rec) if t.startswith(NNCHN_SYSTEM)} == {f"{NNCHN_SYSTEM}|{b}"}, tokens(rec)
