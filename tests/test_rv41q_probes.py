"""rv41q probes of a40fix41b's compartment addition (a resident's compartment takes in the survivor a merge carried
her number onto) as a privacy boundary. Real HL7 v2 over ``POST /hl7v2``, the resident's real SMART launch, her
reads over ``/fhir``; both backends. The probes of the compartment share one store a module and backend (``opened_once``,
``module_store.module_backend_opened``: each its own records, numbers, phones, control IDs and result codes; they had opened an engine each, suite44b)."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import engine_and_client, read_patient, registered, unlink
from tests.module_store import module_backend_eng, module_eng  # noqa: F401 -- fixtures (an engine a module)
from tests.module_store import module_backend_opened as opened_once  # noqa: F401 -- a fixture
from tests.test_a40b41_carried import BING
from tests.test_a40fix41_signin import _signed_in
from tests.test_rv41n_probes import _his, _nids, _reads
from tests.test_rvidentity32_probes import MRN, _nid, adt, merge, oru, patients


def test_a_survivor_carrying_two_womens_numbers_is_in_neither_compartment(
        opened_once: tuple[Engine, TestClient]) -> None:
    """A (number a, a record at 阜宁县中医院 too) and B (number b, a result on her record BX) are two women; the HIS
    merges A's AX into R2 (numberless: R2 now holds a carried) and then B's BX into R2. The second merge is refused
    (W 205 at MRG-1: two valid numbers), so R2 never carries both numbers and A's token does not read B's result.
    Guards a40fix41b's compartment addition: ``_carried_to(key, anchor)`` checks only the survivor's own ``nid_key``
    and person, not other carried numbers, and relies on this refusal."""
    a, b = _nid("32092319620303468"), _nid("32092319620303488")
    engine, http = opened_once
    _his(http, "ZQ41Q", "ZQ41Qa", f"~{a}^^^^NNCHN", "13700006661", facility="FNZYY")
    _his(http, "AX41Q", "AX41Qa", f"~{a}^^^^NNCHN", "13700006662")
    bx = _his(http, "BX41Q", "BX41Qa", f"~{b}^^^^NNCHN", "13700006663")
    two = _his(http, "R241Q", "R241Qa", "", "13700006664")
    assert ack_code_of(post(http, oru("BX41Qb", "BX41Q^^^FNXRMYY^MR", *BING, "BX41QOBS"))) == "AA"
    first = post(http, merge("M141Q", "R241Q^^^FNXRMYY^MR", *BING, "AX41Q^^^FNXRMYY^MR"))
    second = post(http, merge("M241Q", "R241Q^^^FNXRMYY^MR", *BING, "BX41Q^^^FNXRMYY^MR"))
    held = read_patient(http, two)
    assert ack_code_of(first) == "AA", err_lines(first)
    assert ack_code_of(second) == "AE" and any("MRG^1" in line for line in err_lines(second)), second
    assert _nids(held) == {a}, held
    seen = _reads(http, _signed_in(http, engine, a), "BX41QOBS")
    assert seen == [], ("A reads B's result", seen, bx)


both = engine_and_client("rv41q")


def _token(engine: Engine, pid: str) -> dict[str, str]:
    token, _ = engine.auth.issue_token(subject=f"Patient/{pid}", kind="patient", client_id="rv41q-phone",
                                       scopes=["patient/*.rs"], patient=pid)
    return {"access_token": token}


def test_the_lis_renumbering_its_placeholder_onto_another_womans_number_is_held(
        both: tuple[Engine, TestClient]) -> None:
    """The LIS's ORU makes placeholder NS; its walk-in A04 gives NS number b (no other holder); the HIS registers NE
    with c; the LIS's second A04 of NS states c. NE's resident must not read NS's result."""
    engine, http = both
    b, c = _nid("32092319700514012"), _nid("32092319700514020")
    name, birth = "丙^卌", "19700514"
    assert ack_code_of(post(http, oru("NS41Qa", "NS41Q^^^FNXRMYY^MR", name, birth, "F", "NS41QOBS"))) == "AA"
    assert ack_code_of(post(http, adt("NS41Qb", f"NS41Q^^^FNXRMYY^MR~{b}^^^^NNCHN", name, birth, "F",
                                      app="LIS"))) == "AA"
    ne = registered(http, "NE41Q", "NE41Qa", name, birth, "F", f"~{c}^^^^NNCHN")
    later = post(http, adt("NS41Qc", f"NS41Q^^^FNXRMYY^MR~{c}^^^^NNCHN", name, birth, "F", app="LIS"))
    (ns,) = patients(http, f"{MRN}|NS41Q")
    seen = _reads(http, _token(engine, ne["id"]), "NS41QOBS")
    assert seen == [], ("NE's resident reads NS's result", seen, sorted(_nids(ns)), err_lines(later))
    assert c not in _nids(ns) and not ns.get("link"), ns


def test_the_lis_renumbering_an_ownerless_placeholder_number_onto_another_womans_number_is_held(
        both: tuple[Engine, TestClient]) -> None:
    """As above, with the HIS registering NB with b after the LIS numbered NR with b (the state regfix41d makes
    ownerless). ND (c)'s resident must not read NR's result."""
    engine, http = both
    b, c = _nid("32092319700513012"), _nid("32092319700513020")
    name, birth = "丙^卅", "19700513"
    assert ack_code_of(post(http, oru("NR41Qa", "NR41Q^^^FNXRMYY^MR", name, birth, "F", "NR41QOBS"))) == "AA"
    assert ack_code_of(post(http, adt("NR41Qb", f"NR41Q^^^FNXRMYY^MR~{b}^^^^NNCHN", name, birth, "F",
                                      app="LIS"))) == "AA"
    registered(http, "NB41Q", "NB41Qa", name, birth, "F", f"~{b}^^^^NNCHN")
    nd = registered(http, "ND41Q", "ND41Qa", name, birth, "F", f"~{c}^^^^NNCHN")
    later = post(http, adt("NR41Qc", f"NR41Q^^^FNXRMYY^MR~{c}^^^^NNCHN", name, birth, "F", app="LIS"))
    (nr,) = patients(http, f"{MRN}|NR41Q")
    seen = _reads(http, _token(engine, nd["id"]), "NR41QOBS")
    assert seen == [], ("ND's resident reads NR's result", seen, sorted(_nids(nr)), err_lines(later))


def test_after_the_a37_her_token_reads_the_parted_survivor_no_more(
        opened_once: tuple[Engine, TestClient]) -> None:
    """a40fix41b's compartment addition, read per request: her number on R1 and at 阜宁县中医院; R1 merged into R2
    (numberless, a result under it). Her token reads R2's $everything while the merge stands; after the A37 parts
    R2 and R1, the SAME token (issued before it) gets 404 for R2's $everything and no result of R2's."""
    number = _nid("32092319620303524")
    engine, http = opened_once
    _his(http, "ZQ41R", "ZQ41Ra", f"~{number}^^^^NNCHN", "13700007781", facility="FNZYY")
    _his(http, "R141R", "R141Ra", f"~{number}^^^^NNCHN", "13700007782")
    two = _his(http, "R241R", "R241Ra", "", "13700007783")
    assert ack_code_of(post(http, oru("R241Rb", "R241R^^^FNXRMYY^MR", *BING, "R2R41OBS"))) == "AA"
    assert ack_code_of(post(http, merge("R341R", "R241R^^^FNXRMYY^MR", *BING, "R141R^^^FNXRMYY^MR"))) == "AA"
    hers = {"Authorization": "Bearer " + _signed_in(http, engine, number)["access_token"]}
    while_merged = http.get(f"/fhir/Patient/{two}/$everything", headers=hers)
    assert while_merged.status_code == 200 and any(
        e["resource"]["resourceType"] == "Observation" for e in while_merged.json().get("entry", [])), \
        while_merged.text[:300]
    ack = post(http, unlink("R441R", ("R241R", *BING), ("R141R", *BING)))
    assert ack_code_of(ack) == "AA", err_lines(ack)
    after = http.get(f"/fhir/Patient/{two}/$everything", headers=hers)
    assert after.status_code == 404, after.text[:300]
    obs = http.get("/fhir/Observation", params={"code": "R2R41OBS"}, headers=hers)
    assert obs.status_code == 200 and not obs.json().get("entry"), obs.text[:300]


def test_the_his_parting_of_a_placeholder_number_in_one_batch_as_one_by_one(module_eng: Engine) -> None:
    """The four messages above one by one and in one ingestor batch: the same ACKs, W 205s, link, numbers and reads."""
    from engine.api.app import create_app

    with TestClient(create_app(module_eng)) as http:
        http.headers["Authorization"] = "Bearer " + module_eng.auth.issue_system_token("rv41q", "system/*.cruds")
        seen = {}
        for how, tag, b, c in (("single", "QS", _nid("32092319700524012"), _nid("32092319700524020")),
                               ("batch", "QT", _nid("32092319700524038"), _nid("32092319700524046"))):
            msgs = [oru(f"{tag}1", f"{tag}NP^^^FNXRMYY^MR", "丁^四", "19700524", "F", f"{tag}OBS"),
                    adt(f"{tag}2", f"{tag}NP^^^FNXRMYY^MR~{b}^^^^NNCHN", "丁^四", "19700524", "F", app="LIS"),
                    adt(f"{tag}3", f"{tag}NB^^^FNXRMYY^MR~{b}^^^^NNCHN", "丁^四", "19700524", "F"),
                    adt(f"{tag}4", f"{tag}NP^^^FNXRMYY^MR~{c}^^^^NNCHN", "丁^四", "19700524", "F")]
            raws = [(m.encode(), "mllp", "t") for m in msgs]
            outs = ([o for r in raws for o in module_eng.ingestor.process([r])] if how == "single"
                    else module_eng.ingestor.process(raws))
            (np_,) = patients(http, f"{MRN}|{tag}NP")
            (nb,) = patients(http, f"{MRN}|{tag}NB")
            seen[how] = ([ack_code_of(o.ack) for o in outs],
                         [sum("|205^" in e for e in err_lines(o.ack)) for o in outs],
                         bool(np_.get("link")), _nids(np_) == {c},
                         _reads(http, _token(module_eng, nb["id"]), f"{tag}OBS") != [])
        assert seen["single"] == (["AA"] * 4, [0, 0, 0, 0], False, True, False), seen  # (NP holds c alone, unlinked)
        assert seen["batch"] == seen["single"], seen


def test_the_survivor_merged_on_again_into_another_womans_record_is_refused(
        opened_once: tuple[Engine, TestClient]) -> None:
    """Her R1 merged into R2 (numberless: R2 holds her number carried); the HIS then merges R2 into R3, which holds
    another woman's number. The second merge is refused (W 205 at MRG-1), R3 keeps only its own number, and her
    token reads nothing of R3's -- the compartment addition never reaches a record of another number this way."""
    number, other = _nid("32092319620303540"), _nid("32092319620303568")
    engine, http = opened_once
    _his(http, "ZQ41S", "ZQ41Sa", f"~{number}^^^^NNCHN", "13700007791", facility="FNZYY")
    _his(http, "R141S", "R141Sa", f"~{number}^^^^NNCHN", "13700007792")
    _his(http, "R241S", "R241Sa", "", "13700007793")
    three = _his(http, "R341S", "R341Sa", f"~{other}^^^^NNCHN", "13700007794")
    assert ack_code_of(post(http, oru("R341Sb", "R341S^^^FNXRMYY^MR", *BING, "R3S41OBS"))) == "AA"
    assert ack_code_of(post(http, merge("M141S", "R241S^^^FNXRMYY^MR", *BING, "R141S^^^FNXRMYY^MR"))) == "AA"
    ack = post(http, merge("M241S", "R341S^^^FNXRMYY^MR", *BING, "R241S^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AE" and any("MRG^1" in line for line in err_lines(ack)), ack
    assert _nids(read_patient(http, three)) == {other}
    assert _reads(http, _signed_in(http, engine, number), "R3S41OBS") == []


def test_the_survivor_merged_on_again_into_a_numberless_record_stays_hers(
        opened_once: tuple[Engine, TestClient]) -> None:
    """Her R1 merged into R2 (numberless), R2 then into R3 (numberless, a result under it): the number is carried on
    to R3 and her token reads R3's result -- the end of the chain is what ``_carried_to`` follows."""
    number = _nid("32092319620303584")
    engine, http = opened_once
    _his(http, "ZQ41T", "ZQ41Ta", f"~{number}^^^^NNCHN", "13700007795", facility="FNZYY")
    _his(http, "R141T", "R141Ta", f"~{number}^^^^NNCHN", "13700007796")
    _his(http, "R241T", "R241Ta", "", "13700007797")
    three = _his(http, "R341T", "R341Ta", "", "13700007798")
    assert ack_code_of(post(http, oru("R341Tb", "R341T^^^FNXRMYY^MR", *BING, "R3T41OBS"))) == "AA"
    assert ack_code_of(post(http, merge("M141T", "R241T^^^FNXRMYY^MR", *BING, "R141T^^^FNXRMYY^MR"))) == "AA"
    ack = post(http, merge("M241T", "R341T^^^FNXRMYY^MR", *BING, "R241T^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AA", err_lines(ack)
    assert _nids(read_patient(http, three)) == {number}
    assert _reads(http, _signed_in(http, engine, number), "R3T41OBS") == [f"Patient/{three}"]
