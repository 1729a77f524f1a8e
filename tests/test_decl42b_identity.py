"""decl42b: rv42d's two privacy HIGHs on decl42's identity rules. (1) A merge (A40...) exempts from the hold only the
resident ID numbers it carries from the record it merges away (``persons._merge_carried``, ``merge_carries``'
reading); a number the survivor's PID newly states, another record holding it, from an application that is not a
declared registration application, is held W 205 like the same PID in an A08. (2) On a site that declares its
registration applications, a NEW record's number another active record holds, stated by another application (the
LIS's walk-in A04), is held W 205 (listed for the operator), not linked; the declared HIS's new record is still the
index's (a returning patient), a walk-in whose number nobody holds is taken, and on a site declaring none the
index's rule stays. Real HL7 v2 over ``POST /hl7v2`` and the ingestor (one by one and in one batch), reads over
``/fhir``, ``/admin`` and the resident's phone; both backends."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import json
from functools import partial

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import err_lines, post
from tests.module_store import module_eng, module_eng_http, observed, undeclared_eng, undeclared_eng_http  # noqa: F401 -- both sites' engines, clients
from tests.owner41_calls import at_fnzyy, decide, held_w, nids, operator
from tests.test_rvidentity32_probes import MRN, _nid, adt, oru, patients

_observed = partial(observed, client_id="decl42b-phone")  # (what her phone reads)
LINKS = "PID-3 gives the record a resident ID number another record holds: not taken"
FNZYY = "urn:huren:mrn:FNZYY"


def _links_held(ack: bytes, app: str) -> None:
    """AA with the W 205 at PID-3 of a number another record holds (``_hold_linking``) naming MSH-3 ``app``."""
    assert held_w(ack), ack
    (line,) = [x for x in err_lines(ack) if x.startswith("ERR||PID^1^3|") and "|205^" in x]
    assert LINKS in line and f"(MSH-3 {app}) is held for the operator" in line, line


def _held(http: TestClient, engine: Engine) -> set[str]:
    """The control IDs the operator's list of held messages (``GET /admin/held``) names."""
    r = http.get("/admin/held", headers=operator(engine, "decl42b-ops"))
    assert r.status_code == 200, r.text
    return {m["control_id"] for m in r.json()["items"]}


def _merge(control: str, pid3: str, name: str, birth: str, mrg1: str, app: str) -> str:
    return (f"MSH|^~\\&|{app}|FNXRMYY|HUREN|FNYGT|20261201121500||ADT^A40^ADT_A39|{control}|P|2.5.1\r"
            f"EVN|A40|20261201121500\rPID|1||{pid3}||{name}||{birth}|F\rMRG|{mrg1}\r")


# --- (1) a merge exempts only what it carries -----------------------------------------------------------------------


def test_the_lis_a40_giving_its_record_her_number_is_held_and_listed(module_eng: Engine, http: TestClient) -> None:
    """Shipped (declared) site: the LIS's walk-in record W1 (registered by its A04, no number), a second LIS placeholder
    W2; the LIS's A40 whose PID gives W1 her name and the number c the HIS registered on her, MRG W2: AA with W 205
    naming MSH-3 LIS, W1 holds no number and is linked to no record of hers, the message is on the operator's list,
    whose decision is refused 409 while her record holds c; her resident reads nothing of W1's result. The merge
    itself is held too (idn43: W2 is a placeholder of the LIS's result no registration spoke for -- only a declared
    registration application merges it away), its own W 205 at MRG-1."""
    c = _nid("32092319800801020")
    name, birth = "壬^一", "19800801"
    assert ack_code_of(post(http, adt("DB1Ha", f"DB1H^^^FNXRMYY^MR~{c}^^^^NNCHN", name, birth, "F"))) == "AA"
    (her,) = patients(http, f"{MRN}|DB1H")
    assert ack_code_of(post(http, oru("DB1W1a", "DB1W1^^^FNXRMYY^MR", "癸^一", birth, "F", "DB1OBS"))) == "AA"
    assert ack_code_of(post(http, adt("DB1W1b", "DB1W1^^^FNXRMYY^MR", "癸^一", birth, "F", app="LIS"))) == "AA"
    assert ack_code_of(post(http, oru("DB1W2a", "DB1W2^^^FNXRMYY^MR", "癸^一", birth, "F", "DB1OBS2"))) == "AA"
    ack = post(http, _merge("DB1M", f"DB1W1^^^FNXRMYY^MR~{c}^^^^NNCHN", name, birth, "DB1W2^^^FNXRMYY^MR", "LIS"))
    _links_held(ack, "LIS")
    assert c.encode() not in ack, ack
    (w1,) = patients(http, f"{MRN}|DB1W1")
    assert nids(w1) == set(), w1
    assert her["id"] not in json.dumps(w1.get("link") or []), w1
    assert "DB1M" in _held(http, module_eng)
    assert decide(http, module_eng, "DB1M", "decl42b-ops").status_code == 409
    assert _observed(module_eng, her, "DB1OBS") == [] and _observed(module_eng, her, "DB1OBS2") == []


def test_a_merge_carrying_the_number_the_merged_away_record_held_is_taken(
        undeclared_eng: Engine, uhttp: TestClient) -> None:
    """Guard (undeclared site, where no application is declared and so every merge leans on the exemption): the HIS
    registered DB2A with c and DB2B without; its A40 whose PID states DB2B and c, MRG DB2A (the one woman registered
    twice): taken, no W 205 -- c is what the merge carries from DB2A (``merge_carries``) -- DB2B holds c and her
    resident (by DB2B) reads DB2A's result."""
    c = _nid("32092319800802020")
    name, birth = "壬^二", "19800802"
    assert ack_code_of(post(uhttp, adt("DB2Aa", f"DB2A^^^FNXRMYY^MR~{c}^^^^NNCHN", name, birth, "F"))) == "AA"
    assert ack_code_of(post(uhttp, oru("DB2Ab", "DB2A^^^FNXRMYY^MR", name, birth, "F", "DB2OBS"))) == "AA"
    assert ack_code_of(post(uhttp, adt("DB2Ba", "DB2B^^^FNXRMYY^MR", name, birth, "F"))) == "AA"
    ack = post(uhttp, _merge("DB2M", f"DB2B^^^FNXRMYY^MR~{c}^^^^NNCHN", name, birth, "DB2A^^^FNXRMYY^MR", "HIS"))
    assert ack_code_of(ack) == "AA" and not any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    (survivor,) = patients(uhttp, f"{MRN}|DB2B")
    assert nids(survivor) == {c}, survivor
    assert _observed(undeclared_eng, survivor, "DB2OBS"), "the survivor's resident reads the merged record's result"


def test_the_lis_a40_giving_its_placeholder_her_number_is_held_on_an_undeclared_site(
        undeclared_eng: Engine, uhttp: TestClient) -> None:
    """Undeclared site: the LIS's A40 giving its registered placeholder the number the HIS registered on her (MRG a
    second LIS placeholder holding none) is held W 205 as its A08 is there (decl42): nothing carried, nothing
    exempt."""
    c = _nid("32092319800803020")
    name, birth = "壬^三", "19800803"
    assert ack_code_of(post(uhttp, adt("DB3Ha", f"DB3H^^^FNXRMYY^MR~{c}^^^^NNCHN", name, birth, "F"))) == "AA"
    (her,) = patients(uhttp, f"{MRN}|DB3H")
    assert ack_code_of(post(uhttp, oru("DB3Pa", "DB3P^^^FNXRMYY^MR", "癸^三", birth, "F", "DB3OBS"))) == "AA"
    assert ack_code_of(post(uhttp, adt("DB3Pb", "DB3P^^^FNXRMYY^MR", "癸^三", birth, "F", app="LIS"))) == "AA"
    assert ack_code_of(post(uhttp, oru("DB3Qa", "DB3Q^^^FNXRMYY^MR", "癸^三", birth, "F", "DB3OBS2"))) == "AA"
    ack = post(uhttp, _merge("DB3M", f"DB3P^^^FNXRMYY^MR~{c}^^^^NNCHN", name, birth, "DB3Q^^^FNXRMYY^MR", "LIS"))
    _links_held(ack, "LIS")
    assert nids(patients(uhttp, f"{MRN}|DB3P")[0]) == set()
    assert _observed(undeclared_eng, her, "DB3OBS") == []


# --- (2) a new record's number another record holds ----------------------------------------------------------------


def test_the_lis_walk_in_a04_new_record_with_her_number_at_another_member_is_held(
        module_eng: Engine, http: TestClient) -> None:
    """Shipped site: FNZYY's HIS registered her with c; FNXRMYY's LIS's walk-in A04 creating DB4K with her name, birth
    date and c: AA with W 205 naming MSH-3 LIS, DB4K filed without c and unlinked, the message listed for the
    operator (decision refused 409 while her record holds c); her resident reads nothing of DB4K's result. The
    declared HIS's A08 of DB4K stating c then gives it (the registration's word): linked, her resident reads it."""
    c = _nid("32092319800804020")
    name, birth = "壬^四", "19800804"
    assert ack_code_of(post(http, at_fnzyy("DB4Ea", "DB4E", name, birth, "F", f"~{c}^^^^NNCHN"))) == "AA"
    (her,) = patients(http, f"{FNZYY}|DB4E")
    ack = post(http, adt("DB4Ka", f"DB4K^^^FNXRMYY^MR~{c}^^^^NNCHN", name, birth, "F", app="LIS"))
    _links_held(ack, "LIS")
    (walk_in,) = patients(http, f"{MRN}|DB4K")
    assert nids(walk_in) == set() and not walk_in.get("link"), walk_in
    assert "DB4Ka" in _held(http, module_eng)
    assert decide(http, module_eng, "DB4Ka", "decl42b-ops").status_code == 409
    assert ack_code_of(post(http, oru("DB4Kb", "DB4K^^^FNXRMYY^MR", name, birth, "F", "DB4OBS"))) == "AA"
    assert _observed(module_eng, her, "DB4OBS") == []
    ack = post(http, adt("DB4Kc", f"DB4K^^^FNXRMYY^MR~{c}^^^^NNCHN", name, birth, "F", event="A08"))
    assert ack_code_of(ack) == "AA" and not any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    assert nids(patients(http, f"{MRN}|DB4K")[0]) == {c}
    assert _observed(module_eng, her, "DB4OBS"), "the HIS's word links the walk-in to her"


def test_the_lis_result_making_a_new_record_with_her_number_is_held(module_eng: Engine, http: TestClient) -> None:
    """Shipped site, the same through a result: FNZYY's HIS registered her with c; an ORU^R01 at FNXRMYY under a
    new MRN (no ADT before it) stating her name, birth date and c makes its placeholder: AA with W 205 naming its
    MSH-3, the placeholder filed without c and unlinked, the result filed on it; her resident reads nothing of it.

    idn43 made it the site's data (institutions.yaml ``number_linking_applications``, ``persons.new_record_linked``):
    the shipped site declares FNXRMYY's LIS, whose feed links a returning patient's result by her number
    (examples/feeds/10), so the sender here is an application it declares neither a registration nor a
    number-linking one (MSH-3 POCT); FNXRMYY's LIS on a site that does not declare it is held the same way
    (``tests/test_idn43_results.py::test_the_lis_result_is_held_where_the_site_does_not_declare_it``)."""
    c = _nid("32092319800813020")
    name, birth = "壬^十一", "19800813"
    assert ack_code_of(post(http, at_fnzyy("DB9Ea", "DB9E", name, birth, "F", f"~{c}^^^^NNCHN"))) == "AA"
    (her,) = patients(http, f"{FNZYY}|DB9E")
    ack = post(http, oru("DB9Ka", f"DB9K^^^FNXRMYY^MR~{c}^^^^NNCHN", name, birth, "F", "DB9OBS", app="POCT"))
    _links_held(ack, "POCT")
    (placeholder,) = patients(http, f"{MRN}|DB9K")
    assert nids(placeholder) == set() and not placeholder.get("link"), placeholder
    assert _observed(module_eng, her, "DB9OBS") == []
    found = http.get("/fhir/Observation", params={"code": "DB9OBS"}).json().get("entry") or ()
    assert [e["resource"]["subject"]["reference"] for e in found] == [f"Patient/{placeholder['id']}"], found


def test_a_lis_walk_in_whose_number_nobody_holds_is_taken(module_eng: Engine, http: TestClient) -> None:
    """Guard (the real walk-in): the LIS's A04 creating a new record with a number no record holds is AA without a
    W 205 and the record holds the number."""
    c = _nid("32092319800805020")
    ack = post(http, adt("DB5a", f"DB5^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^五", "19800805", "F", app="LIS"))
    assert ack_code_of(ack) == "AA" and not any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    assert nids(patients(http, f"{MRN}|DB5")[0]) == {c}


def test_the_declared_his_new_record_of_a_returning_patient_is_linked(module_eng: Engine, http: TestClient) -> None:
    """Guard (the returning patient): FNZYY's HIS registered her with c; FNXRMYY's HIS -- declared -- registers a new
    record with her name, birth date and c: AA without W 205, and her FNZYY resident reads its result (the index
    links the two, one number one person)."""
    c = _nid("32092319800806020")
    name, birth = "壬^六", "19800806"
    assert ack_code_of(post(http, at_fnzyy("DB6Ea", "DB6E", name, birth, "F", f"~{c}^^^^NNCHN"))) == "AA"
    (her,) = patients(http, f"{FNZYY}|DB6E")
    ack = post(http, adt("DB6Ka", f"DB6K^^^FNXRMYY^MR~{c}^^^^NNCHN", name, birth, "F"))
    assert ack_code_of(ack) == "AA" and not any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    assert ack_code_of(post(http, oru("DB6Kb", "DB6K^^^FNXRMYY^MR", name, birth, "F", "DB6OBS"))) == "AA"
    assert _observed(module_eng, her, "DB6OBS")


def test_on_an_undeclared_site_a_new_record_with_her_number_stays_the_index_s(
        undeclared_eng: Engine, uhttp: TestClient) -> None:
    """The choice on a site declaring none (nothing there tells the HIS from the LIS, and holding every new record's
    known number would hold each returning patient's registration at another member): a new record stating a
    number another record holds is the index's, as before -- linked, no W 205 (the residual risk is in the README)."""
    c = _nid("32092319800807020")
    name, birth = "壬^七", "19800807"
    assert ack_code_of(post(uhttp, at_fnzyy("DB7Ea", "DB7E", name, birth, "F", f"~{c}^^^^NNCHN"))) == "AA"
    (her,) = patients(uhttp, f"{FNZYY}|DB7E")
    ack = post(uhttp, adt("DB7Ka", f"DB7K^^^FNXRMYY^MR~{c}^^^^NNCHN", name, birth, "F", app="LIS"))
    assert ack_code_of(ack) == "AA" and not any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    assert ack_code_of(post(uhttp, oru("DB7Kb", "DB7K^^^FNXRMYY^MR", name, birth, "F", "DB7OBS"))) == "AA"
    assert _observed(undeclared_eng, her, "DB7OBS")


# --- batch = one by one --------------------------------------------------------------------------------------------


def _outcome(engine: Engine, http: TestClient, messages: list[str], batch: bool, her_mrn: str, code: str) -> tuple:
    """``messages`` one by one or in one ingestor batch: their ACK codes and W 205 counts, and whether her resident
    (``her_mrn``, a Patient identifier token) reads the result coded ``code``."""
    raws = [(m.encode(), "mllp", "t") for m in messages]
    outs = engine.ingestor.process(raws) if batch else [o for r in raws for o in engine.ingestor.process([r])]
    (her,) = patients(http, her_mrn)
    return ([ack_code_of(o.ack) for o in outs], [sum("|205^" in e for e in err_lines(o.ack)) for o in outs],
            bool(_observed(engine, her, code)))


def test_the_two_holds_decide_in_one_batch_as_one_by_one(module_eng: Engine, http: TestClient) -> None:
    """(1) her registration, the LIS's walk-in A04, two results and its A40 giving the walk-in her number; (2) her
    FNZYY registration and the LIS's new-record A04 with her number, then its result -- each sent one by one and in
    one batch: the same ACKs, one W 205 each on the held message, her resident reading nothing."""
    for tag, batch in (("DB8S", False), ("DB8B", True)):
        c = _nid("32092319800808020" if not batch else "32092319800809020")
        birth = "19800808" if not batch else "19800809"
        one = [adt(f"{tag}Ha", f"{tag}H^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^八", birth, "F"),
               oru(f"{tag}Wa", f"{tag}W^^^FNXRMYY^MR", "癸^八", birth, "F", f"{tag}OBS"),
               adt(f"{tag}Wb", f"{tag}W^^^FNXRMYY^MR", "癸^八", birth, "F", app="LIS"),
               oru(f"{tag}Va", f"{tag}V^^^FNXRMYY^MR", "癸^八", birth, "F", f"{tag}OBS2"),
               _merge(f"{tag}M", f"{tag}W^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^八", birth, f"{tag}V^^^FNXRMYY^MR", "LIS")]
        # (the A40: the number held at PID-3, and -- idn43 -- the merge held at MRG-1: V is a placeholder of the
        # LIS's result that no registration spoke for, so only a declared registration application merges it away)
        assert _outcome(module_eng, http, one, batch, f"{MRN}|{tag}H", f"{tag}OBS") == (
            ["AA"] * 5, [0, 0, 0, 0, 2], False), (tag, batch)
        d = _nid("32092319800810020" if not batch else "32092319800811020")
        birth = "19800810" if not batch else "19800811"
        two = [at_fnzyy(f"{tag}Ea", f"{tag}E", "壬^九", birth, "F", f"~{d}^^^^NNCHN"),
               adt(f"{tag}Ka", f"{tag}K^^^FNXRMYY^MR~{d}^^^^NNCHN", "壬^九", birth, "F", app="LIS"),
               oru(f"{tag}Kb", f"{tag}K^^^FNXRMYY^MR", "壬^九", birth, "F", f"{tag}KOBS")]
        assert _outcome(module_eng, http, two, batch, f"{FNZYY}|{tag}E", f"{tag}KOBS") == (
            ["AA"] * 3, [0, 1, 0], False), (tag, batch)
