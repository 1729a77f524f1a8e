"""id40: identity leftovers of the thirty-ninth round -- what a merge (A40) carries onto the survivor and what an
unlink (A37) takes back, what a renumbering (A47) moves, a thin A08's ID number corrected or deleted, ``""`` for
another authority's number. Real HL7 over ``POST /hl7v2`` into a real store on each backend, read back over
``/fhir`` and through the patient index."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from adapters.hl7v2.escapes import unescape
from engine.api.ui_quarantine import WORDS, err_said
from engine.engine import Engine
from engine.identity.nationalid import CARRIED_FROM_EXT
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import (
    NNCHN_SYSTEM,
    carried_marks,
    engine_and_client,
    read_patient,
    registered,
    tokens,
    unlink,
)
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_rvidentity32_probes import MRN, _nid, adt, merge, oru, patients, subjects

both = engine_and_client("id40")
BING = ("岳^丙", "19620303", "F")  # the person of the A37s' records


def test_an_a37_takes_back_exactly_what_the_a40_carried(both: tuple[Engine, TestClient]) -> None:
    """R1 (MRN + ID number) merged into R2 (MRN alone) by an A40 stating R2's MRN alone: the number answers on R2,
    marked as carried from R1 (HL7 v2.5.1 3.3.40). The A37 undoing the merge takes it off R2 and gives it back to R1
    (3.3.37: two distinct records), unmarked -- R2 is as it was before the merge, and the index joins them no more."""
    engine, http = both
    nid = _nid("32092319620303012")
    one = registered(http, "I40A1", "IAA", "岳^丙", "19620303", "F", f"~{nid}^^^^NNCHN")
    two = registered(http, "I40A2", "IAB", "岳^丙", "19620303", "F")
    ack = post(http, merge("IAC", "I40A2^^^FNXRMYY^MR", "岳^丙", "19620303", "F", "I40A1^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AA", ack
    assert [p["id"] for p in patients(http, nid)] == [two["id"]]
    survivor = read_patient(http, two["id"])
    assert carried_marks(survivor) == [{"url": CARRIED_FROM_EXT, "valueReference": {"reference": f"Patient/{one['id']}"}}]
    assert engine.identity.same_person(one["id"], two["id"])
    ack = post(http, unlink("IAD", ("I40A2", *BING), ("I40A1", *BING)))
    assert ack_code_of(ack) == "AA", ack
    assert [p["id"] for p in patients(http, nid)] == [one["id"]]
    assert tokens(read_patient(http, two["id"])) == {f"{MRN}|I40A2"}
    back = read_patient(http, one["id"])
    assert tokens(back) == {f"{MRN}|I40A1", f"{NNCHN_SYSTEM}|{nid}"}, back["identifier"]
    assert not carried_marks(back) and not back.get("link"), back
    assert not engine.identity.same_person(one["id"], two["id"])


def test_an_a37_leaves_a_number_the_survivor_was_registered_with(both: tuple[Engine, TestClient]) -> None:
    """The same merge where R2 states the same ID number itself: nothing is carried (the kind is stated), and the
    A37 takes nothing off R2 -- only what the merge carried goes back."""
    engine, http = both
    nid = _nid("32092319620303022")
    one = registered(http, "I40B1", "IBA", "岳^丙", "19620303", "F", f"~{nid}^^^^NNCHN")
    two = registered(http, "I40B2", "IBB", "岳^丙", "19620303", "F", f"~{nid}^^^^NNCHN")
    ack = post(http, merge("IBC", f"I40B2^^^FNXRMYY^MR~{nid}^^^^NNCHN", "岳^丙", "19620303", "F", "I40B1^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AA", ack
    assert not carried_marks(read_patient(http, two["id"]))
    ack = post(http, unlink("IBD", ("I40B2", *BING), ("I40B1", *BING)))
    assert ack_code_of(ack) == "AA", ack
    assert f"{NNCHN_SYSTEM}|{nid}" in tokens(read_patient(http, two["id"]))
    assert one["id"] != two["id"]


def test_a_fhir_client_cannot_write_the_carried_mark(both: tuple[Engine, TestClient]) -> None:
    """The carried-from mark names what an A37 takes off a record: huren's to set. A client's PUT marking R's own ID
    number as carried from another record is stored without the mark, and an A37 naming the two takes nothing."""
    engine, http = both
    nid = _nid("32092319620303032")
    mine = registered(http, "I40C1", "ICA", "岳^丙", "19620303", "F", f"~{nid}^^^^NNCHN")
    other = registered(http, "I40C2", "ICB", "岳^丙", "19620303", "F")
    now = read_patient(http, mine["id"])
    body = {k: v for k, v in now.items() if k not in ("meta", "text")}
    mark = {"url": CARRIED_FROM_EXT, "valueReference": {"reference": f"Patient/{other['id']}"}}
    body["identifier"] = [dict(i, extension=[mark]) if i.get("value") == nid else i for i in now["identifier"]]
    assert http.put(f"/fhir/Patient/{mine['id']}", json=body).status_code == 200
    assert not carried_marks(read_patient(http, mine["id"]))
    assert ack_code_of(post(http, unlink("ICD", ("I40C1", *BING), ("I40C2", *BING)))) == "AA"
    assert [p["id"] for p in patients(http, nid)] == [mine["id"]]


def test_an_a47_moves_the_remembered_number_to_the_new_record(both: tuple[Engine, TestClient]) -> None:
    """P (MRN, ID number, her LIS number remembered) renumbered Q by an A47 stating Q's MRN alone: HL7 v2.5.1 3.3.47,
    the identifier moves -- the LIS number and the ID number are on the new record only (they were on both), the
    LIS's next result under it is filed there (it went to the renumbered record), and the patient index holds the ID
    number as the new record's alone (the renumbered record's entry keeps it as the chain's ``merged_key``)."""
    engine, http = both
    nid = _nid("32092319620707012")
    old = registered(http, "I40D1", "IDA", "岳^庚", "19620707", "F", f"~{nid}^^^^NNCHN")
    assert ack_code_of(post(http, oru("IDB", "I40D1^^^LIS^PI", "岳^庚", "19620707", "F", "IDB"))) == "AA"
    ack = post(http, "MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201121500||ADT^A47^ADT_A30|IDC|P|2.5.1\r"
               "EVN|A47|20261201121500\rPID|1||I40D2^^^FNXRMYY^MR||岳^庚||19620707|F\rMRG|I40D1^^^FNXRMYY^MR\r")
    assert ack_code_of(ack) == "AA", ack
    (new,) = patients(http, f"{MRN}|I40D2")
    assert [p["id"] for p in patients(http, f"{MRN}:LIS|I40D1")] == [new["id"]]
    assert [p["id"] for p in patients(http, nid)] == [new["id"]]
    assert tokens(read_patient(http, old["id"])) == {f"{MRN}|I40D1"}
    ack = post(http, oru("IDD", "I40D1^^^LIS^PI", "岳^庚", "19620707", "F", "IDD"))
    assert ack_code_of(ack) == "AA", ack
    assert subjects(http, "IDD") == [f"Patient/{new['id']}"]
    assert engine.identity.record(old["id"])["nid_key"] is None
    assert engine.identity.record(new["id"])["nid_key"] == engine.identity.nid_key(nid)
    assert engine.identity.same_person(old["id"], new["id"])


def test_a_thin_a08_refused_over_a_wrong_kept_number_is_mended_by_stating_the_number_or_deleting_it(
        both: tuple[Engine, TestClient]) -> None:
    """Her record keeps an ID number whose sex digit is a man's (mistyped at registration, no sex stated then). The
    HIS's thin A08 with sex F is refused at PID-8 (idfix39: the record as it leaves it contradicts the number), and
    the ERR says how to mend it: state the corrected number -- which is taken, the wrong one gone (NNCHN replaced
    whatever its system) -- or send ``""^^^^NNCHN`` (HL7 v2.5 2.5.3), which deletes it though it contradicts the
    PID's sex (nothing is left to contradict)."""
    engine, http = both
    wrong, right = _nid("32092319620808011"), _nid("32092319620808022")
    for number, c in (("I40E1", "IEA"), ("I40E2", "IEB")):
        registered(http, number, c, "岳^辛", "19620808", "", f"~{wrong}^^^^NNCHN")
    ack = post(http, adt("IEC", "I40E1^^^FNXRMYY^MR", "岳^辛", "19620808", "F", event="A08"))
    assert ack_code_of(ack) == "AE" and b"PID^1^8" in ack and b"State the corrected ID number" in ack, ack
    ack = post(http, adt("IED", f"I40E1^^^FNXRMYY^MR~{right}^^^公安部^NNCHN", "岳^辛", "19620808", "F", event="A08"))
    assert ack_code_of(ack) == "AA", ack
    (one,) = patients(http, f"{MRN}|I40E1")
    assert [i["value"] for i in one["identifier"] if i.get("type", {}).get("coding", [{}])[0].get("code") == "NNCHN"] \
        == [right], one["identifier"]
    assert one["gender"] == "female"
    ack = post(http, adt("IEE", 'I40E2^^^FNXRMYY^MR~""^^^^NNCHN', "岳^辛", "19620808", "F", event="A08"))
    assert ack_code_of(ack) == "AA", ack
    (two,) = patients(http, f"{MRN}|I40E2")
    assert tokens(two) == {f"{MRN}|I40E2"} and two["gender"] == "female", two
    assert [p["id"] for p in patients(http, wrong)] == []


def test_an_explicit_null_of_another_authoritys_number(both: tuple[Engine, TestClient]) -> None:
    """PID-3 ``""^^^<authority>^MR`` (HL7 v2.5 2.5.3: delete that value). The number of another member (FNZYY) that
    the HIS listed on its own record is its own to take back: gone, AA, no word; FNZYY's own record of the number is
    not this message's. The LIS number huren remembered on the record (filed-as-own: the HIS never stated it) is
    not the HIS's to delete: kept, AA with ERR W 205 at that repetition, in English and Chinese."""
    engine, http = both
    rec = registered(http, "I40F", "IFA", "岳^壬", "19620909", "F", "~Z40F^^^FNZYY^MR")
    assert ack_code_of(post(http, oru("IFB", "I40F^^^LIS^PI", "岳^壬", "19620909", "F", "IFB"))) == "AA"
    assert tokens(read_patient(http, rec["id"])) == {f"{MRN}|I40F", "urn:huren:mrn:FNZYY|Z40F", f"{MRN}:LIS|I40F"}
    ack = post(http, adt("IFC", 'I40F^^^FNXRMYY^MR~""^^^FNZYY^MR', "岳^壬", "19620909", "F", event="A08"))
    assert ack_code_of(ack) == "AA" and not err_lines(ack), ack
    assert tokens(read_patient(http, rec["id"])) == {f"{MRN}|I40F", f"{MRN}:LIS|I40F"}
    ack = post(http, adt("IFD", 'I40F^^^FNXRMYY^MR~""^^^LIS^PI', "岳^壬", "19620909", "F", event="A08"))
    assert ack_code_of(ack) == "AA", ack
    (line,) = err_lines(ack)
    assert line.split("|")[2:5] == ["PID^1^3^2", "205^Duplicate key identifier^HL70357", "W"], line
    assert "'LIS'" in line and "is kept" in line, line
    zh, _ = err_said(WORDS.current(engine.settings.site), "205", unescape(line.split("|")[8]))
    assert "第 2 个重复" in zh and "“LIS”" in zh and "予以保留" in zh, zh
    assert tokens(read_patient(http, rec["id"])) == {f"{MRN}|I40F", f"{MRN}:LIS|I40F"}


def test_a_stored_sex_its_own_id_number_contradicts_is_no_second_person(both: tuple[Engine, TestClient]) -> None:
    """rv39h LOW over ``POST /hl7v2``: his record (MRN, his valid ID number, sex M); a FHIR client sets the stored sex
    to female; the HIS's A01 with his name corrected (same MRN, same number, M) is taken -- the stored sex his own
    number contradicts is not a differing sex (``demographics.sex_disowned``). Guard: where the stored sex agrees
    with its number, a name and a sex both differing still name two people (a result refused at PID-3)."""
    engine, http = both
    nid = _nid("11010119750512011")
    rec = registered(http, "I40G", "IGA", "王^芳", nid[6:14], "M", f"~{nid}^^^^NNCHN")
    body = {k: v for k, v in read_patient(http, rec["id"]).items() if k not in ("meta", "text")}
    assert http.put(f"/fhir/Patient/{rec['id']}", json={**body, "gender": "female"}).status_code == 200
    ack = post(http, adt("IGB", f"I40G^^^FNXRMYY^MR~{nid}^^^^NNCHN", "王^芳芳", nid[6:14], "M", event="A01"))
    assert ack_code_of(ack) == "AA", ack
    assert "芳芳" in str(read_patient(http, rec["id"])["name"])
    registered(http, "I40H", "IHA", "王^芳", nid[6:14], "M", f"~{nid}^^^^NNCHN")
    ack = post(http, oru("IHB", "I40H^^^FNXRMYY^MR", "李^丽", nid[6:14], "F", "IHB", app="HIS"))
    assert ack_code_of(ack) == "AE" and b"PID^1^3" in ack and subjects(http, "IHB") == [], ack


def test_a_survivor_written_back_as_read_keeps_the_carried_mark(both: tuple[Engine, TestClient]) -> None:
    """A FHIR client writing the survivor back as read -- an extension's keys in another order -- keeps the mark, so
    the A37 still takes the carried number back."""
    engine, http = both
    nid = _nid("32092319620303042")
    one = registered(http, "I40J1", "IJA", "岳^丙", "19620303", "F", f"~{nid}^^^^NNCHN")
    two = registered(http, "I40J2", "IJB", "岳^丙", "19620303", "F")
    ack = post(http, merge("IJC", "I40J2^^^FNXRMYY^MR", "岳^丙", "19620303", "F", "I40J1^^^FNXRMYY^MR"))
    assert ack_code_of(ack) == "AA", ack
    now = read_patient(http, two["id"])
    body = {k: v for k, v in now.items() if k not in ("meta", "text")}
    body["identifier"] = [dict(i, extension=[dict(reversed(list(e.items()))) for e in i["extension"]])
                          if i.get("extension") else i for i in now["identifier"]]
    assert http.put(f"/fhir/Patient/{two['id']}", json=body).status_code == 200
    assert len(carried_marks(read_patient(http, two["id"]))) == 1
    assert ack_code_of(post(http, unlink("IJD", ("I40J2", *BING), ("I40J1", *BING)))) == "AA"
    assert [p["id"] for p in patients(http, nid)] == [one["id"]]
