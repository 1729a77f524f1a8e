"""rv40c: review probes of ofix39 (who owns an order's numbers: the placer is the first order message stating
PLAC, NW/RO/RP judged, OID-only MSH-3 judged, no new order taking another's filler number, ``same_hd`` HD-1
agreeing for two MSH-3s).

Real HL7 v2 over ``POST /hl7v2`` into the real store on each backend (``tests.module_store``), read back over
``/fhir`` and ``/admin``. Each test uses order numbers of its own. A probe showing a defect is a strict xfail
naming its severity."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from engine.messages import message_id
from tests.module_store import module_eng
from tests.test_cdfix38_fixes import OID
from tests.test_code37_ris_change import CHEST, HEAD
from tests.test_codedoc38_order_owner import _codes
from tests.test_codefix36_order_code import _errs
from tests.test_probepay26_windows import msh, pid
from tests.test_srfix35_order_code import ORDERED, RESULTED, B, http, send

__all__ = ["http", "module_eng"]

OTHER = "FNXRMYY"  # another member of the demo site's community


def _order(app: str, placer: str, ns: str, control: str = "NW", item: str = HEAD, filler: str = "",
           inst: str = B, msh4: str = "") -> str:
    """An order message from MSH-3 ``app`` at ``inst``: ORC-1 ``control`` under ``<placer>^<ns>`` (and the filler
    number ``filler`` as sent), the test ``item``; MSH-4 ``msh4`` when given."""
    message = (msh(inst, app, "ORM^O01^ORM_O01", ORDERED) + pid(inst)
               + f"ORC|{control}|{placer}^{ns}|{filler}||IP\n" + f"OBR|1|{placer}^{ns}|{filler}|{item}|||{ORDERED}\n")
    return message.replace(f"|{inst}|HUREN|", f"|{msh4}|HUREN|", 1) if msh4 else message


def _report(app: str, placer: str, ns: str, filler: str, inst: str = B) -> str:
    """The RIS's final report (head CT) under ``<placer>^<ns>`` (none when ``placer`` is empty) and ``filler``."""
    number = f"{placer}^{ns}" if placer else ""
    return (msh(inst, app, "ORU^R01^ORU_R01", RESULTED) + pid(inst)
            + f"ORC|RE|{number}|{filler}||CM\n"
            + f"OBR|1|{number}|{filler}|{HEAD}|||{RESULTED}||||||||||||||{RESULTED}|||F\n"
            + f"OBX|1|TX|{HEAD}||未见异常||||||F\n")


def _orders(http: TestClient, system: str, value: str) -> list[dict[str, Any]]:
    found = http.get("/fhir/ServiceRequest", params={"identifier": f"{system}|{value}"}).json()
    return [e["resource"] for e in found.get("entry") or ()]


def _one(http: TestClient, system: str, value: str) -> dict[str, Any]:
    (order,) = _orders(http, system, value)
    return order


def _fillers(order: dict[str, Any]) -> list[str]:
    return [f"{i.get('system')}|{i.get('value')}" for i in order.get("identifier") or ()
            if any(c.get("code") == "FILL" for c in (i.get("type") or {}).get("coding") or ())]


def _held_at_obr4(ack: str) -> list[list[str]]:
    return [e for e in _errs(ack) if e[2] == "OBR^1^4" and e[4] == "W" and e[3].split("^")[0] == "204"]


# --- the hospital's OID in every HD: the namespace shortcut lets the OID alone decide ----------------------------


def test_an_lis_sharing_the_hospital_oid_does_not_recode_the_ris_order(http: TestClient) -> None:
    """The HIS orders head CT; the RIS (``RIS^<OID>^ISO``) reports under ``F<n>^RIS^<OID>^ISO``; the LIS
    (``LIS^<OID>^ISO``, the same hospital OID, as rv39g LOW 5's site puts it in every MSH-3) sends XX to chest CT
    under the RIS's number: held (W 204 at OBR-4), the order still head CT."""
    placer = "RV40C-LIS"
    filler = f"F{placer}^RIS^{OID}^ISO"
    assert "MSA|AA" in send(http, _order("HIS", placer, "HIS"))
    assert "MSA|AA" in send(http, _report(f"RIS^{OID}^ISO", placer, "HIS", filler))
    ack = send(http, _order(f"LIS^{OID}^ISO", placer, "HIS", "XX", CHEST, filler))
    assert "MSA|AA" in ack, ack
    codes = _codes(_one(http, "urn:huren:id:HIS", placer))
    assert "3002" in codes and "3001" not in codes, codes
    assert len(_held_at_obr4(ack)) == 1, ack


def test_an_emr_sharing_the_hospital_oid_does_not_recode_the_his_order(http: TestClient) -> None:
    """The county HIS (MSH-3 ``HIS``) places head CT under ``<n>^HIS^<OID>^ISO``; the RIS reports; the EMR
    (``EMR^<OID>^ISO``) sends XO to chest CT under the HIS's number: held, the order still head CT."""
    placer = "RV40C-EMR"
    ns = f"HIS^{OID}^ISO"
    assert "MSA|AA" in send(http, _order("HIS", placer, ns))
    assert "MSA|AA" in send(http, _report("RIS", placer, ns, f"F{placer}^RIS"))
    ack = send(http, _order(f"EMR^{OID}^ISO", placer, ns, "XO", CHEST, f"F{placer}^RIS"))
    codes = _codes(_one(http, f"urn:oid:{OID}", placer))
    assert "3002" in codes and "3001" not in codes, codes
    assert len(_held_at_obr4(ack)) == 1, ack


def test_the_his_after_an_upgrade_to_an_oid_in_msh3_changes_its_own_order(http: TestClient) -> None:
    """Guard: the county HIS (MSH-3 ``HIS``) places head CT under ``<n>^HIS^<OID>^ISO``; after an upgrade it sends
    ``HIS^<OID>^ISO`` in MSH-3: its XO to chest CT is its own -- AA without a W at OBR-4, the order chest CT. So is
    an HIS whose MSH-3 (``HISAPP``) is not its placer namespace (plain ``HIS``), judged by the history: its own
    change after the upgrade (``HISAPP^<OID>^ISO``) is taken."""
    placer = "RV40C-UPG"
    ns = f"HIS^{OID}^ISO"
    assert "MSA|AA" in send(http, _order("HIS", placer, ns))
    assert "MSA|AA" in send(http, _report("RIS", placer, ns, f"F{placer}^RIS"))
    ack = send(http, _order(f"HIS^{OID}^ISO", placer, ns, "XO", CHEST, f"F{placer}^RIS"))
    assert "MSA|AA" in ack and not _held_at_obr4(ack), ack
    assert "3001" in _codes(_one(http, f"urn:oid:{OID}", placer))
    placer = "RV40C-UPG2"
    assert "MSA|AA" in send(http, _order("HISAPP", placer, "HIS"))
    assert "MSA|AA" in send(http, _report("RIS", placer, "HIS", f"F{placer}^RIS"))
    ack = send(http, _order(f"HISAPP^{OID}^ISO", placer, "HIS", "XO", CHEST, f"F{placer}^RIS"))
    assert "MSA|AA" in ack and not _held_at_obr4(ack), ack
    assert "3001" in _codes(_one(http, "urn:huren:id:HIS", placer))


# --- MED 4 (a new order taking another's filler number): judged across institutions, and skipped for a placer
# --- whose number's namespace names it ---------------------------------------------------------------------------


def test_another_hospitals_accession_does_not_strip_ours(http: TestClient) -> None:
    """FNZYY's HISAPP places, its RIS reports under ``ACC-<n>^RIS``. At FNXRMYY (another member, its RIS also
    called RIS) HISAPP places a new order under ``<n>B^HIS`` carrying its own RIS's accession ``ACC-<n>^RIS``: the
    order keeps it, and the ACK names nothing of FNZYY's."""
    placer, accession = "RV40C-X", "ACC-RV40C-X"
    assert "MSA|AA" in send(http, _order("HISAPP", placer, "HIS"))
    assert "MSA|AA" in send(http, _report("RIS", placer, "HIS", f"{accession}^RIS"))
    ours = _one(http, "urn:huren:id:HIS", placer)
    ack = send(http, _order("HISAPP", placer + "B", "HIS", "NW", CHEST, f"{accession}^RIS", inst=OTHER))
    assert "MSA|AA" in ack, ack
    assert ours["id"] not in ack and B not in ack.split("\r", 1)[1], ack
    theirs = _one(http, "urn:huren:id:HIS", placer + "B")
    assert _fillers(theirs) == [f"urn:huren:id:RIS|{accession}"], theirs


def test_the_elsewhere_warning_says_what_was_stored(http: TestClient) -> None:
    """FNZYY's order holds ``ACC-<n>^RIS``; FNXRMYY's HISAPP places ``<n>B^HIS``, its RIS reports under its own
    ``ACC-<n>^RIS``, then HISAPP's XO to chest CT: the order is chest CT -- and no W at OBR-4 tells the HIS its
    test was not stored."""
    placer, accession = "RV40C-W", "ACC-RV40C-W"
    assert "MSA|AA" in send(http, _order("HISAPP", placer, "HIS"))
    assert "MSA|AA" in send(http, _report("RIS", placer, "HIS", f"{accession}^RIS"))
    assert "MSA|AA" in send(http, _order("HISAPP", placer + "B", "HIS", inst=OTHER))
    assert "MSA|AA" in send(http, _report("RIS", placer + "B", "HIS", f"{accession}^RIS", inst=OTHER))
    ack = send(http, _order("HISAPP", placer + "B", "HIS", "XO", CHEST, f"{accession}^RIS", inst=OTHER))
    assert "3001" in _codes(_one(http, "urn:huren:id:HIS", placer + "B"))
    assert not any("test is kept only for an order not stored yet" in e[8] for e in _held_at_obr4(ack)), ack


def test_a_placer_under_its_own_namespace_does_not_take_another_orders_filler_number(http: TestClient) -> None:
    """The HIS places head CT, the RIS reports under ``F<n>^RIS``; the EMR's NW of a new order under ``<n>E^EMR``
    naming ``F<n>^RIS``: made without that number (W 204), so the RIS's number finds one order."""
    placer = "RV40C-OWNNS"
    assert "MSA|AA" in send(http, _order("HIS", placer, "HIS"))
    assert "MSA|AA" in send(http, _report("RIS", placer, "HIS", f"F{placer}^RIS"))
    ours = _one(http, "urn:huren:id:HIS", placer)
    ack = send(http, _order("EMR", placer + "E", "EMR", "NW", CHEST, f"F{placer}^RIS"))
    assert "MSA|AA" in ack, ack
    assert [o["id"] for o in _orders(http, "urn:huren:id:RIS", f"F{placer}")] == [ours["id"]]
    assert len(_held_at_obr4(ack)) == 1, ack


def test_the_placers_own_order_after_a_filler_only_report_keeps_the_accession(http: TestClient) -> None:
    """The RIS reports first under ``F<n>^RIS`` alone (no placer number: it makes an order keyed by the filler
    number); HISAPP's NW under ``<n>^HIS`` naming the same accession: the order it makes keeps ``F<n>^RIS`` and the
    ACK holds nothing at OBR-4."""
    placer = "RV40C-STUB"
    assert "MSA|AA" in send(http, _report("RIS", "", "", f"F{placer}^RIS"))
    ack = send(http, _order("HISAPP", placer, "HIS", "NW", HEAD, f"F{placer}^RIS"))
    assert "MSA|AA" in ack, ack
    assert _fillers(_one(http, "urn:huren:id:HIS", placer)) == [f"urn:huren:id:RIS|F{placer}"]
    assert not _held_at_obr4(ack), ack


def test_a_third_apps_ru_under_the_fillers_number_is_held_as_its_xx(http: TestClient) -> None:
    """The HIS orders head CT, the RIS reports under ``F<n>^RIS``; the LIS sends ORC-1 RU (replaced unsolicited)
    naming chest CT under the RIS's numbers: held as its XX is (W 204 at OBR-4), the order still head CT."""
    placer = "RV40C-RU"
    assert "MSA|AA" in send(http, _order("HIS", placer, "HIS"))
    assert "MSA|AA" in send(http, _report("RIS", placer, "HIS", f"F{placer}^RIS"))
    ack = send(http, _order("LIS", placer, "HIS", "RU", CHEST, f"F{placer}^RIS"))
    codes = _codes(_one(http, "urn:huren:id:HIS", placer))
    assert "3002" in codes and "3001" not in codes, codes
    assert len(_held_at_obr4(ack)) == 1, ack


def test_a_new_order_does_not_take_another_orders_filler_number_holding_a_comma(http: TestClient) -> None:
    """As ofix39's MED 4 test, the RIS's accession ``ACC,<n>-9^RIS`` (a comma is no HL7 delimiter): the EMR's XO under
    ``<n>^OTHER`` naming it makes its order without that number, so the RIS's number finds one order."""
    placer = "RV40C-COMMA"
    accession = f"ACC,{placer}-9"
    assert "MSA|AA" in send(http, _order("HISAPP", placer, "HIS"))
    assert "MSA|AA" in send(http, _report("RIS", placer, "HIS", f"{accession}^RIS"))
    ours = _one(http, "urn:huren:id:HIS", placer)
    ack = send(http, _order("EMR", placer, "OTHER", "XO", CHEST, f"{accession}^RIS"))
    assert "MSA|AA" in ack, ack
    found = http.get("/fhir/ServiceRequest", params={"identifier": f"urn:huren:id:RIS|ACC\\,{placer}-9"}).json()
    assert [e["resource"]["id"] for e in found.get("entry") or ()] == [ours["id"]], found
    assert len(_held_at_obr4(ack)) == 1, ack


# --- the placer number: two owners of which field it is ----------------------------------------------------------


def test_a_third_apps_xo_is_held_when_orc2_and_obr2_differ(http: TestClient) -> None:
    """HISAPP's NW: ORC-2 ``REQ-<n>^HIS`` (the request form), OBR-2 ``<n>^HIS``; the RIS reports; the EMR's XO to
    chest CT with the same numbers: held, the order still head CT."""
    placer = "RV40C-ORC2"

    def message(app: str, control: str, item: str) -> str:
        return (msh(B, app, "ORM^O01^ORM_O01", ORDERED) + pid(B)
                + f"ORC|{control}|REQ-{placer}^HIS|||IP\n" + f"OBR|1|{placer}^HIS||{item}|||{ORDERED}\n")

    assert "MSA|AA" in send(http, message("HISAPP", "NW", HEAD))
    assert "MSA|AA" in send(http, _report("RIS", placer, "HIS", f"F{placer}^RIS"))
    ack = send(http, message("EMR", "XO", CHEST))
    codes = _codes(_one(http, "urn:huren:id:HIS", placer))
    assert "3002" in codes and "3001" not in codes, codes
    assert len(_held_at_obr4(ack)) == 1, ack


# --- a held message: kept, but can the operator find it? --------------------------------------------------------


def test_a_held_change_is_shown_to_the_operator(http: TestClient) -> None:
    """HISAPP places, the RIS reports; the EMR's XO is held (W 204). The operator can open that message at
    /admin with its raw text."""
    placer = "RV40C-SEEN"
    assert "MSA|AA" in send(http, _order("HISAPP", placer, "HIS"))
    assert "MSA|AA" in send(http, _report("RIS", placer, "HIS", f"F{placer}^RIS"))
    ack = send(http, _order("EMR", placer, "HIS", "XO", CHEST, f"F{placer}^RIS"))
    assert len(_held_at_obr4(ack)) == 1, ack
    control = next(s for s in ack.split("\r") if s.startswith("MSA|")).split("|")[2]
    shown = http.get(f"/admin/quarantine/{message_id(B, control)}")
    assert shown.status_code == 200, shown.text
    assert f"ORC|XO|{placer}^HIS" in shown.json()["text"]


# --- the 403 page to a resident ----------------------------------------------------------------------------------


def test_a_residents_refusal_does_not_invite_her_to_ask_for_the_operators_role(module_eng: Any,
                                                                             http: TestClient) -> None:
    """A resident's token at /ui/quarantine: 403, in Chinese, no staff header and no "back to your pages" (as
    lead39 has it) -- and no advice to have an operator's role opened for her."""
    assert "MSA|AA" in send(http, msh(B, "HIS", "ADT^A04^ADT_A01", ORDERED) + f"EVN|A04|{ORDERED}\n" + pid(B)
                            + "PV1|1|O\n")
    from tests.test_probepay26_windows import WANG

    patient = module_eng.identity.patients_for_number(WANG)[0]
    token, _ = module_eng.auth.issue_token(subject="person-rv40c", kind="patient", client_id="phr",
                                           scopes=["patient/*.rs"], patient=patient)
    r = http.get("/ui/quarantine", headers={"Authorization": f"Bearer {token}", "Accept": "text/html"})
    assert r.status_code == 403 and "您无权查看" in r.text, r.text
    assert 'id="who"' not in r.text and 'id="back"' not in r.text, r.text
    assert "运维人员角色" not in r.text and 'href="/ui/me/"' in r.text, r.text
