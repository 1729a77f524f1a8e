"""priv36: the re-key's Provenance trusted only from the feed; a merge naming a member's number judged on the survivor
as it leaves it; the owner's put-back searching its own number's systems.

*A client's Provenance with the re-key's reason* (rvident35 LOW): the registrar walk passed over any Provenance
carrying ``member-number-contradicted`` -- one a FHIR client wrote too, where every other client Provenance naming a
record makes its registrar "cannot be told" (a restatement as another person then refused). The owner's put-back
trusted such a Provenance naming its message as an owner's re-key and moved a number back. Both now ask the writer
mark. *A merge's person* (rvfixid35 LOW): an A40 whose MRG-1 names another member's number was held with the PID as
sent: a PID of the name alone contradicts no one, so the merge of the member's person's record into another person's
record was filed AA, and a stale record merged that way kept answering the member's MRN. *The put-back's search*:
the owner's restatement read every record of the bare value (every institution's own MRN of it) and split a value
holding a comma into two. Real HL7 through ``POST /hl7v2`` into the real store on each backend (SQLite, mongomock),
read back over ``/fhir``."""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import HL7V2_MESSAGE_SYSTEM, message_id
from engine.repository.search import token_value
from tests.hl7_calls import err_lines, post
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_idfix35_merges import _owners, _stale, _zy
from tests.test_mfix34_members import APART, FNZYY_MRN, _fnzyy, _tokens, both  # noqa: F401
from tests.test_rkfix35_identity import _counted
from tests.test_rvidentity32_probes import MRN, adt, oru

Both = tuple[Engine, TestClient, dict[str, str]]


def _patients(http: TestClient, system: str, value: str) -> list[dict]:
    found = http.get("/fhir/Patient", params={"identifier": token_value(system, value)})
    assert found.status_code == 200, found.text
    return [e["resource"] for e in found.json().get("entry", [])]


def _client_rekey_provenance(http: TestClient, target: str, entity: list[dict] | None = None) -> None:
    """A FHIR client's Provenance carrying the owner's re-key reason and agent type (what ``persons.rekeys`` and the
    put-back's search look for), naming ``target``."""
    body = {"resourceType": "Provenance", "target": [{"reference": target}], "recorded": "2026-12-01T10:00:00+08:00",
            "reason": [{"coding": [{"system": "urn:huren:provenance-reason", "code": "member-number-contradicted"}]}],
            "agent": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                                            "code": "assembler"}]},
                       "who": {"display": "a client"}}]}
    if entity:
        body["entity"] = entity
    made = http.post("/fhir/Provenance", json=body)
    assert made.status_code == 201, made.text


# --- the walk ------------------------------------------------------------------------------------------------------


def test_a_client_provenance_with_the_rekey_reason_makes_the_registrar_unknown_as_any_client_provenance(
        both: Both) -> None:  # noqa: F811
    """FNZYY's HIS registers ZPA1 (冯三); a FHIR client writes a Provenance naming the record with the re-key's reason
    and no message. The HIS's A08 restating ZPA1 as 王五 is then refused (AE 205 at PID-3, nothing written): the walk
    cannot tell the registrar, as with any client Provenance naming the record (the control below). It had passed
    the Provenance over, and the A08 was accepted."""
    _, http, _ = both
    assert ack_code_of(post(http, _fnzyy(adt("PA1A", "ZPA1^^^FNZYY^MR", "冯^三", "19610101", "M")))) == "AA"
    (own,) = _patients(http, FNZYY_MRN, "ZPA1")
    _client_rekey_provenance(http, f"Patient/{own['id']}")
    ack = post(http, _fnzyy(adt("PA1B", "ZPA1^^^FNZYY^MR", "王^五", "19800505", "F", "A08")))
    assert ack_code_of(ack) == "AE", ack
    (err,) = err_lines(ack)
    assert err.split("|")[2] == "PID^1^3" and err.split("|")[3].startswith("205"), err
    (after,) = _patients(http, FNZYY_MRN, "ZPA1")
    assert after["meta"]["versionId"] == own["meta"]["versionId"] and after["gender"] == "male", after


def test_without_the_client_provenance_the_registrars_restatement_is_accepted(both: Both) -> None:  # noqa: F811
    """The control: the same A08 of the registering HIS, no client Provenance: AA with the restatement's W."""
    _, http, _ = both
    assert ack_code_of(post(http, _fnzyy(adt("PA2A", "ZPA2^^^FNZYY^MR", "冯^三", "19610101", "M")))) == "AA"
    ack = post(http, _fnzyy(adt("PA2B", "ZPA2^^^FNZYY^MR", "王^五", "19800505", "F", "A08")))
    assert ack_code_of(ack) == "AA" and [e.split("|")[4] for e in err_lines(ack)] == ["W"], ack
    (after,) = _patients(http, FNZYY_MRN, "ZPA2")
    assert after["gender"] == "female", after


# --- the owner's put-back: the feed's re-key only --------------------------------------------------------------------


def _kept_apart_by_the_members_result(http: TestClient, n: str) -> tuple[dict, str]:
    """FNXRMYY registers <n> as 冯三; FNZYY files its own Z<n> with <n> beside (the same person); FNXRMYY's record of
    <n> restated as 陈四 over FHIR; FNZYY's result then keeps <n> apart on Z<n> (its own re-key, mfix34: no owner's
    re-key Provenance names that version). Returns FNZYY's record and its PID-3."""
    assert ack_code_of(post(http, adt(f"{n}A", f"{n}^^^FNXRMYY^MR", "冯^三", "19610101", "M"))) == "AA"
    pid3 = f"Z{n}^^^FNZYY^MR~{n}^^^FNXRMYY^MR"
    assert ack_code_of(post(http, _fnzyy(adt(f"{n}B", pid3, "冯^三", "19610101", "M")))) == "AA"
    (theirs,) = [p for p in _patients(http, MRN, n) if not any(i.get("system") == FNZYY_MRN for i in p["identifier"])]
    restated = {k: v for k, v in theirs.items() if k not in ("meta", "text")}
    restated.update(name=[{"family": "陈", "given": ["四"], "text": "陈四"}], gender="female", birthDate="1992-03-03")
    assert http.put(f"/fhir/Patient/{theirs['id']}", json=restated).status_code == 200
    ack = post(http, _fnzyy(oru(f"{n}C", pid3, "冯^三", "19610101", "M", f"{n}GLU", app="HIS")))
    assert ack_code_of(ack) == "AA", ack
    (own,) = _patients(http, FNZYY_MRN, f"Z{n}")
    assert f"{APART}|{n}" in _tokens(own) and f"{MRN}|{n}" not in _tokens(own), own["identifier"]
    return own, pid3


def test_a_client_provenance_naming_the_owners_message_does_not_move_the_number_back(both: Both) -> None:  # noqa: F811
    """FNZYY's record keeps PB1 apart by its own result. A FHIR client writes a Provenance with the re-key's reason and
    agent type naming that version and FNXRMYY's message. FNXRMYY's A08 then says 冯三 again: the put-back moves back
    only what an owner's re-key wrote -- the client's Provenance is not one -- so PB1 stays apart (it had gone back,
    FNXRMYY's MRN answering FNZYY's record on a client's word)."""
    _, http, _ = both
    own, _ = _kept_apart_by_the_members_result(http, "PB1")
    entity = [{"role": "source", "what": {"identifier": {"system": f"{HL7V2_MESSAGE_SYSTEM}:FNXRMYY", "value": "PB1A"}}}]
    _client_rekey_provenance(http, f"Patient/{own['id']}/_history/{own['meta']['versionId']}", entity)
    assert ack_code_of(post(http, adt("PB1D", "PB1^^^FNXRMYY^MR", "冯^三", "19610101", "M", "A08"))) == "AA"
    (after,) = _patients(http, FNZYY_MRN, "ZPB1")
    assert f"{APART}|PB1" in _tokens(after) and f"{MRN}|PB1" not in _tokens(after), after["identifier"]


def test_the_owners_own_rekey_is_still_put_back(both: Both) -> None:  # noqa: F811
    """The control: FNXRMYY's own A08 as 陈四 re-keys FNZYY's record of PB2 (its re-key Provenance), its next A08 as
    冯三 puts the number back."""
    _, http, _ = both
    assert ack_code_of(post(http, adt("PB2A", "PB2^^^FNXRMYY^MR", "冯^三", "19610101", "M"))) == "AA"
    assert ack_code_of(post(http, _fnzyy(adt("PB2B", "ZPB2^^^FNZYY^MR~PB2^^^FNXRMYY^MR", "冯^三", "19610101",
                                             "M")))) == "AA"
    assert ack_code_of(post(http, adt("PB2C", "PB2^^^FNXRMYY^MR", "陈^四", "19920303", "F", "A08"))) == "AA"
    (apart,) = _patients(http, FNZYY_MRN, "ZPB2")
    assert f"{APART}|PB2" in _tokens(apart), apart["identifier"]
    assert ack_code_of(post(http, adt("PB2D", "PB2^^^FNXRMYY^MR", "冯^三", "19610101", "M", "A08"))) == "AA"
    (back,) = _patients(http, FNZYY_MRN, "ZPB2")
    assert f"{MRN}|PB2" in _tokens(back) and f"{APART}|PB2" not in _tokens(back), back["identifier"]


# --- a merge naming a member's number: the survivor as the merge leaves it ---------------------------------------


def test_a_thin_merge_of_the_members_persons_record_into_another_persons_is_refused(both: Both) -> None:  # noqa: F811
    """FNZYY's record keyed by FNXRMYY's PC1 is 陈四 (F, 1992), as FNXRMYY's is (not stale); FNZYY's own ZPC1 is 冯三
    (M, 1961). FNZYY's A40 merging the PC1 record into ZPC1 with a PID of the name alone: the survivor as the merge
    leaves it is 冯三 (M, 1961), another person than FNXRMYY's -- AE 205 at MRG-1, nothing written (it was AA: the
    thin PID contradicted no one, and FNXRMYY's number came to name 冯三's record)."""
    engine, http, _ = both
    assert ack_code_of(post(http, adt("PC1A", "PC1^^^FNXRMYY^MR", "陈^四", "19920303", "F"))) == "AA"
    assert ack_code_of(post(http, _fnzyy(adt("PC1B", "PC1^^^FNXRMYY^MR", "陈^四", "19920303", "F", "A01")))) == "AA"
    assert ack_code_of(post(http, _fnzyy(adt("PC1C", "ZPC1^^^FNZYY^MR", "冯^三", "19610101", "M")))) == "AA"
    ack = post(http, _zy("PC1D", "A40", "ZPC1^^^FNZYY^MR", "冯^三", "", "", "PC1^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AE", ack
    (err,) = [e for e in err_lines(ack) if e.split("|")[4] == "E"]
    assert err.split("|")[2] == "MRG^1^1" and err.split("|")[3].startswith("205"), err
    for word in ("陈", "19920303"):
        assert word not in err, (word, err)
    doc = engine.ingestor.messages.get(message_id("FNZYY", "PC1D"))
    assert doc is not None and doc["status"] != "processed", doc
    (own,) = _patients(http, FNZYY_MRN, "ZPC1")
    assert not own.get("link") and own["gender"] == "male", own


def test_a_thin_merge_of_a_stale_record_into_its_person_is_the_correction_and_unkeys_the_stale_copy(
        both: Both) -> None:  # noqa: F811
    """FNZYY's record of 冯三 keyed by FNXRMYY's PD1 is stale (FNXRMYY registered PD1 as 陈四), and still carries PD1
    under FNXRMYY's MRN system (a store older than the owner's re-key; put back so over FHIR). FNZYY's A40 merges it
    into its own ZPD1 (冯三) with a PID of the name alone: the correction -- AA, W 205 at MRG-1 counted for FNZYY's
    operator, the stale copy kept apart, FNXRMYY's MRN answering 陈四 alone. It had been AA with no ERR, the merged
    record still answering FNXRMYY's MRN with 冯三's record."""
    engine, http, _ = both
    stale = _stale(http, "PD1")
    record = http.get(f"/fhir/Patient/{stale['id']}").json()
    record["identifier"] = [{**i, "system": MRN} if i.get("value") == "PD1" else i for i in record["identifier"]]
    assert http.put(f"/fhir/Patient/{stale['id']}", json=record).status_code == 200
    counted = _counted(engine)
    ack = post(http, _zy("PD1D", "A40", "ZPD1^^^FNZYY^MR", "冯^三", "", "", "PD1^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AA", ack
    (err,) = err_lines(ack)
    assert err.split("|")[2] == "MRG^1^1" and err.split("|")[4] == "W", err
    assert _counted(engine) == counted + 1
    merged = http.get(f"/fhir/Patient/{stale['id']}").json()
    assert f"{APART}|PD1" in _tokens(merged) and f"{MRN}|PD1" not in _tokens(merged), merged["identifier"]
    assert [p["id"] for p in _patients(http, MRN, "PD1")] == [p["id"] for p in _owners(http, "PD1")]


# --- the owner's search: its number's systems, exactly ----------------------------------------------------------


def test_a_number_holding_a_comma_is_rekeyed_away_and_back(both: Both) -> None:  # noqa: F811
    """FNXRMYY's number ``PE,1`` (a comma is no HL7 delimiter) beside FNZYY's own ZPE1, the same person. FNXRMYY's A08
    as 陈四 re-keys FNZYY's record away; its next as 冯三 puts it back. The owner's searches had sent the value unescaped
    -- two alternatives, ``PE`` and ``1`` -- and found neither record: FNZYY's record went on answering FNXRMYY's MRN
    for 陈四, uncounted."""
    _, http, _ = both
    assert ack_code_of(post(http, adt("PE1A", "PE,1^^^FNXRMYY^MR", "冯^三", "19610101", "M"))) == "AA"
    ack = post(http, _fnzyy(adt("PE1B", "ZPE1^^^FNZYY^MR~PE,1^^^FNXRMYY^MR", "冯^三", "19610101", "M")))
    assert ack_code_of(ack) == "AA", ack
    assert ack_code_of(post(http, adt("PE1C", "PE,1^^^FNXRMYY^MR", "陈^四", "19920303", "F", "A08"))) == "AA"
    (apart,) = _patients(http, FNZYY_MRN, "ZPE1")
    assert f"{APART}|PE,1" in _tokens(apart) and f"{MRN}|PE,1" not in _tokens(apart), apart["identifier"]
    assert [p["gender"] for p in _patients(http, MRN, "PE,1")] == ["female"]
    assert ack_code_of(post(http, adt("PE1D", "PE,1^^^FNXRMYY^MR", "冯^三", "19610101", "M", "A08"))) == "AA"
    (back,) = _patients(http, FNZYY_MRN, "ZPE1")
    assert f"{MRN}|PE,1" in _tokens(back) and f"{APART}|PE,1" not in _tokens(back), back["identifier"]


def test_another_members_own_record_of_the_same_value_is_left_alone(both: Both) -> None:  # noqa: F811
    """FNZYY's own patient 冯三 under its own MRN PF1 -- the same value as FNXRMYY's PF1, another authority's. FNXRMYY's
    PF1 goes 冯三, 陈四, 冯三 again: FNZYY's record is not FNXRMYY's number's (no identifier under FNXRMYY's systems)
    and is never written by the owner's re-key either way (one version)."""
    _, http, _ = both
    assert ack_code_of(post(http, _fnzyy(adt("PF1A", "PF1^^^FNZYY^MR", "冯^三", "19610101", "M")))) == "AA"
    (own,) = _patients(http, FNZYY_MRN, "PF1")
    for control, name, birth, sex, event in (("PF1B", "冯^三", "19610101", "M", "A04"),
                                              ("PF1C", "陈^四", "19920303", "F", "A08"),
                                              ("PF1D", "冯^三", "19610101", "M", "A08")):
        assert ack_code_of(post(http, adt(control, "PF1^^^FNXRMYY^MR", name, birth, sex, event))) == "AA"
    (after,) = _patients(http, FNZYY_MRN, "PF1")
    assert after["meta"]["versionId"] == own["meta"]["versionId"] and _tokens(after) == _tokens(own), after
