"""rv43d probes (reviewer, forty-third round) of idn43 (who may merge a record away, which applications' results link a
new record by number) and time43 (a result's derived time, its ``time-taken-from`` mark). Real HL7 v2 over
``POST /hl7v2``, reads over ``/fhir``, ``/admin`` and the resident's phone, FHIR writes over ``PUT``; both backends.
A probe showing a defect is a strict xfail naming its severity; the rest guard what the review found sound."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import err_lines, post
from tests.module_store import module_eng, module_eng_http, undeclared_eng, undeclared_eng_http
from tests.owner41_calls import at_fnzyy, decide, nids
from tests.test_decl42b_identity import FNZYY, _held, _merge, _observed
from tests.test_rvidentity32_probes import MRN, _nid, adt, oru, patients

__all__ = ["module_eng", "module_eng_http", "undeclared_eng", "undeclared_eng_http"]  # (``http``, ``uhttp``)

TAKEN_FROM = "urn:huren:StructureDefinition:time-taken-from"


def _one(http: TestClient, token: str) -> dict:
    (record,) = patients(http, token)
    return record


def _links(record: dict) -> list[tuple[str, str]]:
    return [(lk["type"], lk["other"]["reference"]) for lk in record.get("link") or ()]


def _w205(ack: bytes) -> list[str]:
    return [x for x in err_lines(ack) if "|205^" in x]


def _walk_in(http: TestClient, tag: str, name: str, birth: str) -> None:
    """The LIS's walk-in ``<tag>W`` (another name, no number): its result coded ``<tag>OBS``, then its own A04."""
    assert ack_code_of(post(http, oru(f"{tag}Wa", f"{tag}W^^^FNXRMYY^MR", name, birth, "F", f"{tag}OBS"))) == "AA"
    assert ack_code_of(post(http, adt(f"{tag}Wb", f"{tag}W^^^FNXRMYY^MR", name, birth, "F", app="LIS"))) == "AA"


# --- idn43: who may merge a record away, which results link by number ------------------------------------------------


def test_a_held_merge_decided_after_mrg1s_record_was_merged_on_is_not_taken(
        module_eng: Engine, http: TestClient) -> None:
    """The LIS's A40 (PID its walk-in W, MRG-1 the HIS's record H of her) is held. Then the HIS merges H into G, her
    record going on. The operator, shown H and W at the hold, decides: H is no longer the record the hold showed
    (inactive, replaced by G) -- as when the survivor changed (409 "the record changed after the hold"), the decision
    should not be taken for a version not shown, and H's link to G should stand. Taken: H is re-pointed at W (its
    replaced-by G gone) and her resident on G reads the walk-in's result."""
    c = _nid("32092319810107020")
    assert ack_code_of(post(http, adt("R6Ha", f"R6H^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^丑", "19810107", "F"))) == "AA"
    _walk_in(http, "R6", "癸^寅", "19810107")
    assert _w205(post(http, _merge("R6M", "R6W^^^FNXRMYY^MR", "癸^寅", "19810107", "R6H^^^FNXRMYY^MR", "LIS")))
    ack = post(http, _merge("R6N", f"R6G^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^丑", "19810107", "R6H^^^FNXRMYY^MR", "HIS"))
    assert ack_code_of(ack) == "AA" and not _w205(ack), err_lines(ack)
    g = _one(http, f"{MRN}|R6G")
    assert ("replaced-by", f"Patient/{g['id']}") in _links(_one(http, f"{MRN}|R6H"))
    assert "R6M" in _held(http, module_eng)
    r = decide(http, module_eng, "R6M", "rv43d-ops")
    h = _one(http, f"{MRN}|R6H")
    assert ("replaced-by", f"Patient/{g['id']}") in _links(h), h
    assert r.status_code == 409, r.text


def test_the_lis_merging_its_walk_in_the_his_numbered_into_another_name_is_held(
        module_eng: Engine, http: TestClient) -> None:
    """The LIS's walk-in W of her (its A04, her name, no number); the declared HIS's A08 gives W her number (the
    registration's word: W is hers, linked to her record H). The LIS's walk-in V of ANOTHER name with a result; the
    LIS's A40, PID V, MRG-1 W: the LIS registered both, so merge_refused lets it -- yet it moves a number the HIS gave
    onto a record of another name (the undeclared site's test of a number moving to another name is not asked on a
    declared site). Should be held (W 205 at MRG-1): V numberless, her resident reading nothing of V's result."""
    c = _nid("32092319810111020")
    assert ack_code_of(post(http, adt("R9Ha", f"R9H^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^未", "19810111", "F"))) == "AA"
    her = _one(http, f"{MRN}|R9H")
    assert ack_code_of(post(http, adt("R9Wa", "R9W^^^FNXRMYY^MR", "壬^未", "19810111", "F", app="LIS"))) == "AA"
    ack = post(http, adt("R9Wb", f"R9W^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^未", "19810111", "F", event="A08"))
    assert ack_code_of(ack) == "AA" and not _w205(ack), err_lines(ack)
    assert nids(_one(http, f"{MRN}|R9W")) == {c}
    assert ack_code_of(post(http, oru("R9Va", "R9V^^^FNXRMYY^MR", "癸^申", "19810111", "F", "R9OBS"))) == "AA"
    assert ack_code_of(post(http, adt("R9Vb", "R9V^^^FNXRMYY^MR", "癸^申", "19810111", "F", app="LIS"))) == "AA"
    ack = post(http, _merge("R9M", "R9V^^^FNXRMYY^MR", "癸^申", "19810111", "R9W^^^FNXRMYY^MR", "LIS"))
    assert ack_code_of(ack) == "AA", ack
    assert _observed(module_eng, her, "R9OBS") == []
    assert nids(_one(http, f"{MRN}|R9V")) == set() and [x for x in _w205(ack) if x.startswith("ERR||MRG^1^1|")]


def test_undeclared_a_merge_moving_her_number_onto_a_nameless_record_is_held(
        undeclared_eng: Engine, uhttp: TestClient) -> None:
    """Site declaring none: the LIS's result under a new MRN W with PID-5 empty (a glucose meter's, a walk-in's) makes
    a nameless record; the LIS's A40, PID W (PID-5 empty), MRG-1 the HIS's record H of her. Nothing says W is her: the
    rule's own words ("a number moving to another name is another person's record taking her identity"; "a wrong
    answer is worse than no answer") ask for the hold a differing name gets -- W 205 at MRG-1, H in use with her
    number, her resident reading nothing of W's result."""
    c = _nid("32092319810110020")
    assert ack_code_of(post(uhttp, adt("RU4Ha", f"RU4H^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^午", "19810110", "F"))) == "AA"
    her = _one(uhttp, f"{MRN}|RU4H")
    assert ack_code_of(post(uhttp, oru("RU4Wa", "RU4W^^^FNXRMYY^MR", "", "19810110", "F", "RU4OBS"))) == "AA"
    assert "name" not in _one(uhttp, f"{MRN}|RU4W")
    ack = post(uhttp, _merge("RU4M", "RU4W^^^FNXRMYY^MR", "", "19810110", "RU4H^^^FNXRMYY^MR", "LIS"))
    assert ack_code_of(ack) == "AA", ack
    assert _observed(undeclared_eng, her, "RU4OBS") == []
    assert nids(_one(uhttp, f"{MRN}|RU4W")) == set() and [x for x in _w205(ack) if x.startswith("ERR||MRG^1^1|")]


def test_two_held_merges_of_one_record_leave_no_link(module_eng: Engine, http: TestClient) -> None:
    """The LIS's A40 with two groups: PID its walk-in W, MRG-1 the HIS's record H of her; PID its walk-in V, MRG-1 H.
    Both held (W 205 at MRG^1^1 and MRG^2^1); nothing is merged, so neither walk-in may state that it replaces H."""
    c = _nid("32092319810112020")
    assert ack_code_of(post(http, adt("RAHa", f"RAH^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^酉", "19810112", "F"))) == "AA"
    h = _one(http, f"{MRN}|RAH")
    for t in ("RAW", "RAV"):
        assert ack_code_of(post(http, adt(f"{t}b", f"{t}^^^FNXRMYY^MR", "癸^戌", "19810112", "F", app="LIS"))) == "AA"
    ack = post(http, "MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201121500||ADT^A40^ADT_A39|RAM|P|2.5.1\r"
                     "EVN|A40|20261201121500\rPID|1||RAW^^^FNXRMYY^MR||癸^戌||19810112|F\rMRG|RAH^^^FNXRMYY^MR\r"
                     "PID|2||RAV^^^FNXRMYY^MR||癸^戌||19810112|F\rMRG|RAH^^^FNXRMYY^MR\r")
    assert [x[:12] for x in _w205(ack)] == ["ERR||MRG^1^1", "ERR||MRG^2^1"], err_lines(ack)
    assert _one(http, f"{MRN}|RAH").get("active", True) and not _one(http, f"{MRN}|RAH").get("link")
    for t in ("RAV", "RAW"):
        assert f"Patient/{h['id']}" not in json.dumps(_one(http, f"{MRN}|{t}").get("link") or []), t


def test_a_held_merge_decided_after_the_survivor_changed_is_refused(module_eng: Engine, http: TestClient) -> None:
    """Guard: the LIS's A40 merging H into its walk-in W is held; the HIS then merges W into H (the right direction).
    The operator's later decision of the LIS's message is refused 409 (W changed after the hold): no cycle, H in use
    with her number."""
    c = _nid("32092319810106020")
    assert ack_code_of(post(http, adt("R5Ha", f"R5H^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^癸", "19810106", "F"))) == "AA"
    _walk_in(http, "R5", "癸^子", "19810106")
    assert _w205(post(http, _merge("R5M", "R5W^^^FNXRMYY^MR", "癸^子", "19810106", "R5H^^^FNXRMYY^MR", "LIS")))
    ack = post(http, _merge("R5N", f"R5H^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^癸", "19810106", "R5W^^^FNXRMYY^MR", "HIS"))
    assert ack_code_of(ack) == "AA" and not _w205(ack), err_lines(ack)
    r = decide(http, module_eng, "R5M", "rv43d-ops")
    assert r.status_code == 409 and "changed after the hold" in r.text, r.text
    h, w = _one(http, f"{MRN}|R5H"), _one(http, f"{MRN}|R5W")
    assert h.get("active", True) and nids(h) == {c} and ("replaces", f"Patient/{w['id']}") in _links(h), h
    assert w.get("active") is False, w


def test_the_number_linking_lis_result_of_another_name_under_her_number_is_not_linked(
        module_eng: Engine, http: TestClient) -> None:
    """Guard (the LIS now trusted for results at FNXRMYY): its ORU under a new MRN stating the number FNZYY's HIS
    registered on her with ANOTHER name (the birth date the number encodes) is not joined to her: her resident reads
    nothing of it (the index's conflicting-data rule); another birth date is refused AE at PID-7."""
    c = _nid("32092319810101020")
    assert ack_code_of(post(http, at_fnzyy("R1Ea", "R1E", "壬^甲", "19810101", "F", f"~{c}^^^^NNCHN"))) == "AA"
    her = _one(http, f"{FNZYY}|R1E")
    ack = post(http, oru("R1Ka", f"R1K^^^FNXRMYY^MR~{c}^^^^NNCHN", "癸^乙", "19810101", "F", "R1OBS"))
    assert ack_code_of(ack) == "AA" and any("not linked" in x for x in err_lines(ack)), err_lines(ack)
    assert not _one(http, f"{MRN}|R1K").get("link")
    assert _observed(module_eng, her, "R1OBS") == []
    ack = post(http, oru("R1La", f"R1L^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^甲", "19650707", "F", "R1OBS2"))
    assert ack_code_of(ack) == "AE" and any(x.startswith("ERR||PID^1^7") for x in err_lines(ack)), err_lines(ack)
    assert _observed(module_eng, her, "R1OBS2") == []


def test_the_lis_merging_its_walk_in_into_a_new_record_stating_her_number_links_nothing(
        module_eng: Engine, http: TestClient) -> None:
    """Guard: the LIS's A40 merging its own walk-in W into a NEW record N whose PID states the number the HIS
    registered on her (the survivor "not held anywhere" passes merge_refused): the merge of its own record is taken,
    but N's number is held (W 205 at PID-3) -- her resident reads nothing of the walk-in's result."""
    c = _nid("32092319810103020")
    assert ack_code_of(post(http, adt("R3Ha", f"R3H^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^戊", "19810103", "F"))) == "AA"
    her = _one(http, f"{MRN}|R3H")
    _walk_in(http, "R3", "癸^己", "19810103")
    ack = post(http, _merge("R3M", f"R3N^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^戊", "19810103", "R3W^^^FNXRMYY^MR", "LIS"))
    assert ack_code_of(ack) == "AA" and [x for x in _w205(ack) if x.startswith("ERR||PID^1^3|")], err_lines(ack)
    assert nids(_one(http, f"{MRN}|R3N")) == set()
    assert _observed(module_eng, her, "R3OBS") == []


def test_another_members_his_merging_her_record_leaves_it_as_it_was(module_eng: Engine, http: TestClient) -> None:
    """Guard (MRG-1 naming a record at another institution): FNZYY's HIS -- a declared registration application, but
    FNZYY's -- merging FNXRMYY's record H of her into its own record Z of the same name and birth date: H stays in
    use, her number on H alone, Z holding none."""
    c = _nid("32092319810102020")
    assert ack_code_of(post(http, adt("R2Ha", f"R2H^^^FNXRMYY^MR~{c}^^^^NNCHN", "壬^丙", "19810102", "F"))) == "AA"
    h0 = _one(http, f"{MRN}|R2H")
    assert ack_code_of(post(http, at_fnzyy("R2Za", "R2Z", "壬^丙", "19810102", "F", ""))) == "AA"
    post(http, "MSH|^~\\&|HIS|FNZYY|HUREN|FNYGT|20261201121500||ADT^A40^ADT_A39|R2M|P|2.5.1\r"
               "EVN|A40|20261201121500\rPID|1||R2Z^^^FNZYY^MR||壬^丙||19810102|F\rMRG|R2H^^^FNXRMYY^MR\r")
    h, z = _one(http, f"{MRN}|R2H"), _one(http, f"{FNZYY}|R2Z")
    assert h.get("active", True) and nids(h) == {c} and not h.get("link"), h
    assert h["meta"]["versionId"] == h0["meta"]["versionId"]
    assert nids(z) == set() and ("replaces", f"Patient/{h['id']}") not in _links(z), z


# --- time43: a result's derived time -----------------------------------------------------------------------------------


def _lab(control: str, filler: str, code: str, obr7: str, obx14: str = "") -> str:
    """The LIS's ORU^R01 of one result under filler number ``filler``: OBR-7 ``obr7``, OBX-14 ``obx14`` (empty: the
    result's time is derived from OBR-7)."""
    return ("MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201101500||ORU^R01^ORU_R01|" + control + "|P|2.5.1\r"
            "PID|1||RTP^^^FNXRMYY^MR||壬^庚||19810104|F\r"
            f"OBR|1|O{filler}|{filler}|{code}^{code}^L|||{obr7}||||G|||{obr7}|BLD||||||||20261201091000|||F\r"
            f"OBX|1|NM|{code}^{code}^L||5.6|mmol/L|||||F|||{obx14}\r")


def _obs(http: TestClient, code: str) -> dict:
    (o,) = [e["resource"] for e in http.get("/fhir/Observation", params={"code": code}).json().get("entry") or ()]
    return o


def _marked(o: dict) -> bool:
    return any(e.get("url") == TAKEN_FROM for e in (o.get("_effectiveDateTime") or {}).get("extension") or ())


def test_a_clients_put_keeping_the_mark_states_its_time(module_eng: Engine, http: TestClient) -> None:
    """A result whose time was derived from OBR-7 08:30; a FHIR client corrects it to 09:15, PUT back as read (the
    ``_effectiveDateTime`` extension kept -- the R4 rule for extensions a client does not understand). The mark is the
    converter's word that the MESSAGE's field dated the value; the client's value is stated as itself (README: no mark
    = OBX-14 or a FHIR client). The LIS re-sending the report with OBX-14 empty and OBR-7 08:40 must not move it."""
    assert ack_code_of(post(http, _lab("RT2a", "LRT2", "RT2C", "20261201083000"))) == "AA"
    o = _obs(http, "RT2C")
    assert _marked(o) and o["effectiveDateTime"] == "2026-12-01T08:30:00+08:00", o
    sent = {k: v for k, v in o.items() if k != "meta"} | {"effectiveDateTime": "2026-12-01T09:15:00+08:00"}
    r = http.put(f"/fhir/Observation/{o['id']}", content=json.dumps(sent),
                 headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 200, r.text
    assert ack_code_of(post(http, _lab("RT2b", "LRT2", "RT2C", "20261201084000"))) == "AA"
    assert _obs(http, "RT2C")["effectiveDateTime"] == "2026-12-01T09:15:00+08:00"


def test_a_stated_day_is_not_moved_by_a_later_derived_time(module_eng: Engine, http: TestClient) -> None:
    """The result's time derived from OBR-7 2026-12-01 08:30; the LIS then states OBX-14 2026-12-01 (its day: kept as
    the finer 08:30 by not_thinner, still marked OBR-7); a later message re-timing OBR-7 to 2026-12-03 with OBX-14
    empty states no time of the result -- the result must stay on the day OBX-14 stated."""
    assert ack_code_of(post(http, _lab("RT6a", "LRT6", "RT6C", "20261201083000"))) == "AA"
    assert ack_code_of(post(http, _lab("RT6b", "LRT6", "RT6C", "20261201083000", obx14="20261201"))) == "AA"
    assert _obs(http, "RT6C")["effectiveDateTime"].startswith("2026-12-01")
    assert ack_code_of(post(http, _lab("RT6c", "LRT6", "RT6C", "20261203083000"))) == "AA"
    assert _obs(http, "RT6C")["effectiveDateTime"].startswith("2026-12-01"), _obs(http, "RT6C")


def test_the_mark_reads_as_r4_and_a_statement_in_another_zone_stands(module_eng: Engine, http: TestClient) -> None:
    """Guard: the mark is an R4 primitive extension beside its value in a read, a search and $everything; a stated
    OBX-14 of the same instant in UTC replaces the derived time and drops the mark; a stated time is not replaced by
    the same instant derived in another zone (the mark stays off)."""
    assert ack_code_of(post(http, _lab("RT5a", "LRT5", "RT5A", "20261201083000"))) == "AA"
    o = _obs(http, "RT5A")
    read = http.get(f"/fhir/Observation/{o['id']}").json()
    assert read["effectiveDateTime"] == "2026-12-01T08:30:00+08:00" and _marked(read), read
    pid = o["subject"]["reference"].split("/", 1)[1]
    every = http.get(f"/fhir/Patient/{pid}/$everything").json()
    assert any(e["resource"].get("id") == o["id"] and _marked(e["resource"]) for e in every.get("entry") or ())
    assert ack_code_of(post(http, _lab("RT5b", "LRT5", "RT5A", "20261201083000", obx14="20261201003000+0000"))) == "AA"
    o = _obs(http, "RT5A")
    assert o["effectiveDateTime"] == "2026-12-01T00:30:00+00:00" and "_effectiveDateTime" not in o, o
    assert ack_code_of(post(http, _lab("RT5c", "LRT5B", "RT5B", "20261201083000", obx14="20261201083000"))) == "AA"
    assert ack_code_of(post(http, _lab("RT5d", "LRT5B", "RT5B", "20261201003000+0000"))) == "AA"
    o = _obs(http, "RT5B")
    assert o["effectiveDateTime"] == "2026-12-01T08:30:00+08:00" and "_effectiveDateTime" not in o, o
