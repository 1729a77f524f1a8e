"""rv42d review probes of decl42 (the held linking renumbering, the shipped site declaring its HIS) and fam42 (OMI^O23,
OMP^O09, ORU^R30, OBX-18/19/25): real HL7 v2 over ``POST /hl7v2`` into a real engine and store on both backends,
read back over ``/fhir`` (system token) and as the resident's phone (SMART patient token)."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from functools import partial

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import err_lines, post
from tests.module_store import module_eng, module_eng_http, observed, undeclared_eng, undeclared_eng_http  # noqa: F401 -- both sites' engines, clients
from tests.owner41_calls import at_fnzyy, nids
from tests.test_rvidentity32_probes import MRN, _nid, adt, oru, patients

_observed = partial(observed, client_id="rv42d-phone")  # (what her phone reads)


def _registered(http: TestClient, mrn: str, control: str, name: str, birth: str, ids: str = "") -> dict:
    assert ack_code_of(post(http, adt(control, f"{mrn}^^^FNXRMYY^MR{ids}", name, birth, "F"))) == "AA"
    (rec,) = patients(http, f"{MRN}|{mrn}")
    return rec


def _merge(control: str, pid3: str, name: str, birth: str, mrg1: str, app: str) -> str:
    return (f"MSH|^~\\&|{app}|FNXRMYY|HUREN|FNYGT|20261201121500||ADT^A40^ADT_A39|{control}|P|2.5.1\r"
            f"EVN|A40|20261201121500\rPID|1||{pid3}||{name}||{birth}|F\rMRG|{mrg1}\r")


# --- decl42: the privacy boundary on the shipped (declared) site and on an undeclared one -------------------------


def test_a_lis_walk_in_a04_new_record_with_her_number_does_not_open_it_to_her(
        module_eng: Engine, http: TestClient) -> None:
    """Guard (shipped declared site): the LIS's walk-in A04 creating a NEW record with the number the HIS registered
    on another woman of the same birth date and sex but another name: the index does not link the two (name
    differs), so her resident reads nothing of the walk-in's result. (A walk-in stating her name too is linked as a
    returning patient -- the index's rule, decl42 "not covered".)"""
    c = _nid("32092319800701020")
    name, birth = "庚^一", "19800701"
    her = _registered(http, "RD42W", "RD42Wa", name, birth, f"~{c}^^^^NNCHN")
    ack = post(http, adt("RD42La", f"RD42L^^^FNXRMYY^MR~{c}^^^^NNCHN", "辛^一", "19800701", "F", app="LIS"))
    assert ack_code_of(ack) == "AA", ack
    (walk_in,) = patients(http, f"{MRN}|RD42L")
    assert not walk_in.get("link"), walk_in
    assert ack_code_of(post(http, oru("RD42Lb", "RD42L^^^FNXRMYY^MR", "辛^一", "19800701", "F", "RD42OBS"))) == "AA"
    assert _observed(module_eng, her, "RD42OBS") == []


def test_a_lis_a08_onto_her_number_on_the_shipped_site_is_not_taken(module_eng: Engine, http: TestClient) -> None:
    """Guard (declared shipped site): the LIS's A08 of the HIS's record HA (holding b) stating c, the HIS's
    registration of another woman: HA keeps b, is not linked, her resident reads nothing of HA's."""
    b, c = _nid("32092319800702012"), _nid("32092319800702020")
    her = _registered(http, "RD42X", "RD42Xa", "庚^二", "19800702", f"~{c}^^^^NNCHN")
    ha = _registered(http, "RD42H", "RD42Ha", "辛^二", "19800702", f"~{b}^^^^NNCHN")
    assert ack_code_of(post(http, oru("RD42Hb", "RD42H^^^FNXRMYY^MR", "辛^二", "19800702", "F", "RD42HOBS"))) == "AA"
    ack = post(http, adt("RD42Hc", f"RD42H^^^FNXRMYY^MR~{c}^^^^NNCHN", "辛^二", "19800702", "F", event="A08",
                         app="LIS"))
    assert ack_code_of(ack) in ("AA", "AE") and any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    after = patients(http, f"{MRN}|RD42H")[0]
    assert nids(after) == {b} and not after.get("link"), after
    assert _observed(module_eng, her, "RD42HOBS") == []
    assert ha["id"] == after["id"]


def test_a_lis_a40_giving_its_placeholder_her_number_is_held_on_an_undeclared_site(
        undeclared_eng: Engine, uhttp: TestClient) -> None:
    """HIGH 1 (undeclared site; fixed, decl42b): the LIS's A40 whose PID gives its own placeholder the number the HIS
    registered on another woman (MRG a second LIS placeholder) is held like its A08: her resident reads nothing."""
    c = _nid("32092319800703020")
    name, birth = "庚^三", "19800703"
    her = _registered(uhttp, "RD42Y", "RD42Ya", name, birth, f"~{c}^^^^NNCHN")
    assert ack_code_of(post(uhttp, oru("RD42Pa", "RD42P^^^FNXRMYY^MR", "辛^三", "19800703", "F", "RD42POBS"))) == "AA"
    assert ack_code_of(post(uhttp, adt("RD42Pb", "RD42P^^^FNXRMYY^MR", "辛^三", "19800703", "F", app="LIS"))) == "AA"
    assert ack_code_of(post(uhttp, oru("RD42Qa", "RD42Q^^^FNXRMYY^MR", "辛^三", "19800703", "F", "RD42QOBS"))) == "AA"
    post(uhttp, _merge("RD42Pc", f"RD42P^^^FNXRMYY^MR~{c}^^^^NNCHN", name, birth,
                       "RD42Q^^^FNXRMYY^MR", "LIS"))
    assert _observed(undeclared_eng, her, "RD42POBS") == []


def test_the_same_pid_in_a_lis_a08_is_held_on_the_shipped_site(module_eng: Engine, http: TestClient) -> None:
    """Control of the A40 finding below: the LIS's A08 giving its walk-in record her name and number (no merge) is
    held W 205 on the shipped site, and her resident reads nothing of the record's result."""
    c = _nid("32092319800705020")
    name, birth = "庚^五", "19800705"
    her = _registered(http, "RD42V", "RD42Va", name, birth, f"~{c}^^^^NNCHN")
    assert ack_code_of(post(http, oru("RD42Ta", "RD42T^^^FNXRMYY^MR", "辛^五", birth, "F", "RD42TOBS"))) == "AA"
    assert ack_code_of(post(http, adt("RD42Tb", "RD42T^^^FNXRMYY^MR", "辛^五", birth, "F", app="LIS"))) == "AA"
    ack = post(http, adt("RD42Tc", f"RD42T^^^FNXRMYY^MR~{c}^^^^NNCHN", name, birth, "F", event="A08", app="LIS"))
    assert any("|205^" in x for x in err_lines(ack)), err_lines(ack)
    assert _observed(module_eng, her, "RD42TOBS") == []


def test_a_lis_a40_giving_its_record_her_number_on_the_shipped_site(module_eng: Engine, http: TestClient) -> None:
    """HIGH 1 (shipped declared site; fixed, decl42b): the LIS's A40 giving its walk-in record her name and number is
    held like the same PID in an A08: a merge exempts only what it carries (``persons._merge_carried``)."""
    c = _nid("32092319800704020")
    name, birth = "庚^四", "19800704"
    her = _registered(http, "RD42Z", "RD42Za", name, birth, f"~{c}^^^^NNCHN")
    assert ack_code_of(post(http, oru("RD42Ra", "RD42R^^^FNXRMYY^MR", "辛^四", "19800704", "F", "RD42ROBS"))) == "AA"
    assert ack_code_of(post(http, adt("RD42Rb", "RD42R^^^FNXRMYY^MR", "辛^四", "19800704", "F", app="LIS"))) == "AA"
    assert ack_code_of(post(http, oru("RD42Sa", "RD42S^^^FNXRMYY^MR", "辛^四", "19800704", "F", "RD42SOBS"))) == "AA"
    post(http, _merge("RD42Rc", f"RD42R^^^FNXRMYY^MR~{c}^^^^NNCHN", name, birth, "RD42S^^^FNXRMYY^MR", "LIS"))
    assert _observed(module_eng, her, "RD42ROBS") == []


def test_a_lis_a40_cannot_link_its_record_to_her_record_at_another_member(module_eng: Engine, http: TestClient) -> None:
    """HIGH 1 across members (fixed, decl42b): FNXRMYY's LIS's A40 cannot link its record to her FNZYY record."""
    c = _nid("32092319800707020")
    name, birth = "庚^七", "19800707"
    assert ack_code_of(post(http, at_fnzyy("RD42Fa", "RD42F", name, birth, "F", f"~{c}^^^^NNCHN"))) == "AA"
    (her,) = patients(http, "urn:huren:mrn:FNZYY|RD42F")
    assert ack_code_of(post(http, oru("RD42Na", "RD42N^^^FNXRMYY^MR", "辛^七", birth, "F", "RD42NOBS"))) == "AA"
    assert ack_code_of(post(http, adt("RD42Nb", "RD42N^^^FNXRMYY^MR", "辛^七", birth, "F", app="LIS"))) == "AA"
    assert ack_code_of(post(http, oru("RD42Ma", "RD42M^^^FNXRMYY^MR", "辛^七", birth, "F", "RD42MOBS"))) == "AA"
    post(http, _merge("RD42Nc", f"RD42N^^^FNXRMYY^MR~{c}^^^^NNCHN", name, birth, "RD42M^^^FNXRMYY^MR", "LIS"))
    assert _observed(module_eng, her, "RD42NOBS") == []


def test_a_lis_walk_in_a04_new_record_does_not_link_to_her_record_at_another_member(
        module_eng: Engine, http: TestClient) -> None:
    """HIGH 2 (fixed, decl42b): on the declared shipped site the LIS's walk-in A04 creating a NEW record with her name,
    birth date and number (her record at another member) is held W 205, not linked."""
    c = _nid("32092319800708020")
    name, birth = "庚^八", "19800708"
    assert ack_code_of(post(http, at_fnzyy("RD42Ea", "RD42E", name, birth, "F", f"~{c}^^^^NNCHN"))) == "AA"
    (her,) = patients(http, "urn:huren:mrn:FNZYY|RD42E")
    assert ack_code_of(post(http, adt("RD42Ka", f"RD42K^^^FNXRMYY^MR~{c}^^^^NNCHN", name, birth, "F",
                                      app="LIS"))) == "AA"
    assert ack_code_of(post(http, oru("RD42Kb", "RD42K^^^FNXRMYY^MR", name, birth, "F", "RD42KOBS"))) == "AA"
    assert _observed(module_eng, her, "RD42KOBS") == []


# --- fam42: OMI / OMP / ORU^R30 ------------------------------------------------------------------------------------

HDR = "MSH|^~\\&|{app}|FNXRMYY|HUREN|FNYGT|{stamp}+0800||{kind}|{control}|P|2.5.1|||AL|NE|CHN|UNICODE UTF-8\r"
ACSN = "urn:huren:accession:FNXRMYY"
UID = "urn:dicom:uid"


def _omi(control: str, mrn: str, stamp: str, body: str) -> str:
    return (HDR.format(app="RIS", stamp=stamp, kind="OMI^O23^OMI_O23", control=control)
            + f"PID|1||{mrn}^^^FNXRMYY^MR||赵^九||19700109|M\rPV1|1|O\r" + body)


def _orders(http: TestClient, placer: str) -> list[dict]:
    found = http.get("/fhir/ServiceRequest", params={"identifier": f"urn:huren:order:FNXRMYY|{placer}"}).json()
    return [e["resource"] for e in found.get("entry") or ()]


def _ident(resource: dict, system: str) -> list[str]:
    return sorted(i["value"] for i in resource.get("identifier") or () if i.get("system") == system)


def _msh9(ack: bytes) -> str:
    return ack.decode("utf-8").split("\r")[0].split("|")[8]


def test_a_later_thinner_omi_keeps_the_accession_and_study_uid(http: TestClient) -> None:
    """Guard: OMI NW with IPC (accession with an escaped '&', Study UID), then OMI XO of the same placer number with no
    IPC: the order keeps the accession exactly as sent and the Study UID; the ACK is ACK^O23^ACK."""
    first = _omi("RD42O1a", "RD42O1", "20261201091500",
                 "ORC|NW|RD42P1|||||||20261201090000|||1001^李^医生\rTQ1|1||||||20261201100000\r"
                 "OBR|1|RD42P1||CT001^胸部CT平扫^L|||20261201090000\rIPC|RD\\T\\ACC1|RP1|1.2.156.4242.1|SPS1|CT\r")
    ack = post(http, first)
    assert ack_code_of(ack) == "AA" and _msh9(ack) == "ACK^O23^ACK", ack
    thin = _omi("RD42O1b", "RD42O1", "20261201101500",
                "ORC|XO|RD42P1|||||||20261201100000|||1001^李^医生\rOBR|1|RD42P1||CT001^胸部CT平扫^L|||20261201090000\r")
    assert ack_code_of(post(http, thin)) == "AA"
    (sr,) = _orders(http, "RD42P1")
    assert _ident(sr, ACSN) == ["RD&ACC1"], sr
    assert _ident(sr, UID) == ["urn:oid:1.2.156.4242.1"], sr


def test_an_omi_order_of_two_ipcs_keeps_both_studies_or_counts_the_second(http: TestClient) -> None:
    msg = _omi("RD42O2", "RD42O2", "20261201091500",
               "ORC|NW|RD42P2|||||||20261201090000|||1001^李^医生\rTQ1|1||||||20261201100000\r"
               "OBR|1|RD42P2||CT002^胸腹CT平扫^L|||20261201090000\r"
               "IPC|RD42ACC2|RP2|1.2.156.4242.21|SPS21|CT\rIPC|RD42ACC2|RP2|1.2.156.4242.22|SPS22|CT\r")
    ack = post(http, msg)
    assert ack_code_of(ack) == "AA", ack
    (sr,) = _orders(http, "RD42P2")
    assert "urn:oid:1.2.156.4242.22" in _ident(sr, UID) or err_lines(ack), (sr, ack)


def test_the_acks_of_omp_and_oru_r30_name_their_trigger(http: TestClient) -> None:
    """Guard: OMP^O09 is answered ACK^O09^ACK and files the RXO dose; ORU^R30 ACK^R30^ACK and files its result."""
    omp = (HDR.format(app="HIS", stamp="20261201091500", kind="OMP^O09^OMP_O09", control="RD42M1")
           + "PID|1||RD42MP^^^FNXRMYY^MR||赵^十||19700110|M\rPV1|1|O\r"
           "ORC|NW|RD42MP1|||||||20261201090000|||1001^李^医生\rRXO|A001^阿莫西林胶囊^L|0.5||g\r")
    ack = post(http, omp)
    assert ack_code_of(ack) == "AA" and _msh9(ack) == "ACK^O09^ACK", ack
    r30 = (HDR.format(app="LIS", stamp="20261201101500", kind="ORU^R30^ORU_R30", control="RD42M2")
           + "PID|1||RD42MP^^^FNXRMYY^MR||赵^十||19700110|M\rPV1|1|O\r"
           "ORC|NW|RD42MP2|RD42MF2||||||20261201100000\r"
           "OBR|1|RD42MP2|RD42MF2|GLU^血糖^L|||20261201100000\r"
           "OBX|1|NM|GLU^血糖^L||6.1|mmol/L|3.9-6.1|N|||F|||20261201100500\r")
    ack = post(http, r30)
    assert ack_code_of(ack) == "AA" and _msh9(ack) == "ACK^R30^ACK", ack
    found = http.get("/fhir/Observation", params={"code": "GLU"}).json().get("entry") or ()
    assert [e["resource"]["valueQuantity"]["value"] for e in found] == [6.1], found


def _director_oru(control: str, director: str, stamp: str) -> str:
    obx = ["OBX", "1", "NM", "RD42K^钾^L", "", "4.1", "mmol/L", "3.5-5.5", "N", "", "", "C" if director == '""' else "F",
           "", "", "20261201090000", "", "", "", "", "", "", "", "", "阜宁县人民医院", "", director]
    return (HDR.format(app="LIS", stamp=stamp, kind="ORU^R01^ORU_R01", control=control)
            + "PID|1||RD42D^^^FNXRMYY^MR||王^十一||19900111|F\r"
            "OBR|1|PRD42D|FRD42D|RD42K^钾^L|||20261201083000||||||||BLD|||||||20261201091000|||F\r"
            + "|".join(obx) + "\r")


def test_obx_25_null_in_a_correction_takes_the_director_off(http: TestClient) -> None:
    assert ack_code_of(post(http, _director_oru("RD42D1", "2001^周^主任", "20261201091500"))) == "AA"
    assert ack_code_of(post(http, _director_oru("RD42D2", '""', "20261201101500"))) == "AA"
    (obs,) = [e["resource"] for e in http.get("/fhir/Observation", params={"code": "RD42K"}).json()["entry"]]
    assert not [p for p in obs.get("performer") or () if p["reference"].startswith("PractitionerRole/")], obs


def test_an_accession_two_omis_reuse_files_the_report_on_its_patients_order(http: TestClient) -> None:
    """The RIS's OMI for patient A and, later, for patient B (another placer number) both under accession
    RD42ACC; B's ORU naming RD42ACC in OBR-3 files its report on B, based on B's order (not A's)."""
    def omi(control: str, mrn: str, name: str, placer: str, uid: str, stamp: str) -> str:
        return (HDR.format(app="RIS", stamp=stamp, kind="OMI^O23^OMI_O23", control=control)
                + f"PID|1||{mrn}^^^FNXRMYY^MR||{name}||19700109|M\rPV1|1|O\r"
                f"ORC|NW|{placer}|||||||20261201090000|||1001^李^医生\r"
                f"OBR|1|{placer}||CT009^胸部CT平扫^L|||20261201090000\rIPC|RD42ACC|RP|{uid}|SPS|CT\r")
    assert ack_code_of(post(http, omi("RD42A1", "RD42AA", "赵^甲", "RD42PA", "1.2.156.4242.90",
                                      "20261201091500"))) == "AA"
    assert ack_code_of(post(http, omi("RD42B1", "RD42BB", "钱^乙", "RD42PB", "1.2.156.4242.91",
                                      "20261201101500"))) == "AA"
    report = (HDR.format(app="RIS", stamp="20261201111500", kind="ORU^R01^ORU_R01", control="RD42B2")
              + "PID|1||RD42BB^^^FNXRMYY^MR||钱^乙||19700109|M\r"
              "OBR|1||RD42ACC|CT009^胸部CT平扫^L|||20261201090000|||||||||||||||20261201110000|||F\r"
              "OBX|1|TX|CT009^胸部CT平扫^L||未见异常||||||F|||20261201110000\r")
    assert ack_code_of(post(http, report)) == "AA"
    (b_order,) = _orders(http, "RD42PB")
    (dr,) = [e["resource"] for e in http.get("/fhir/DiagnosticReport", params={"code": "CT009"}).json()["entry"]]
    assert dr["subject"] == b_order["subject"], dr
    assert dr.get("basedOn") == [{"reference": f"ServiceRequest/{b_order['id']}"}], dr


def _device_oru(control: str, stamp: str, value: str, device: str, analysis: str) -> str:
    obx = ["OBX", "1", "NM", "RD42NA^钠^L", "", value, "mmol/L", "137-147", "N", "", "", "F" if device else "C",
           "", "", "20261201090000", "", "", "", device, analysis]
    return (HDR.format(app="LIS", stamp=stamp, kind="ORU^R01^ORU_R01", control=control)
            + "PID|1||RD42DV^^^FNXRMYY^MR||王^十二||19900112|F\r"
            "OBR|1|PRD42DV|FRD42DV|RD42NA^钠^L|||20261201083000||||||||BLD|||||||20261201091000|||F\r"
            + "|".join(obx) + "\r")


def test_a_thinner_correction_keeps_the_device_and_analysis_time(http: TestClient) -> None:
    """Guard (a later thinner message never erases): the LIS's result stating OBX-18 (analyser) and OBX-19 (analysis
    time), then its correction (OBX-11 C, a new value) stating neither: the device and the analysis-time extension
    stay, the value is the correction's."""
    assert ack_code_of(post(http, _device_oru("RD42V1", "20261201091500", "140", "VITEK-42^^L",
                                              "20261201085500"))) == "AA"
    assert ack_code_of(post(http, _device_oru("RD42V2", "20261201101500", "141", "", ""))) == "AA"
    (obs,) = [e["resource"] for e in http.get("/fhir/Observation", params={"code": "RD42NA"}).json()["entry"]]
    assert obs["valueQuantity"]["value"] == 141, obs
    assert obs.get("device", {}).get("identifier", {}).get("value") == "VITEK-42", obs
    assert [x.get("valueDateTime") for x in obs.get("extension") or () if x["url"].endswith("analysis-date-time")] \
        == ["2026-12-01T08:55:00+08:00"], obs
