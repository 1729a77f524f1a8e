"""rv41j: review probes of regfix41b (the operator's decision on a held ID-number change refused 409 while another
record holds the number, or the record was merged into another; the page says so in Chinese).

Real HL7 v2 through ``POST /hl7v2``, the real store on each backend, ``/admin`` with an operator's token, ``/fhir``
read back as a resident (the SMART patient token the resident app is given)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.messages import message_id
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import NNCHN_SYSTEM, engine_and_client, registered, tokens
from tests.module_store import module_eng
from tests.test_order35_as_later import _operator
from tests.test_rvidentity32_probes import MRN, _nid, adt, oru, patients

__all__ = ["module_eng"]

both = engine_and_client("rv41j")
REASON = "已核对居民身份证，本消息的号码正确"
OPS = "rv41j-ops"


def _ops(engine: Engine) -> dict[str, str]:
    return _operator(engine, "system/MessageHeader.cr", OPS)


def _decide(http: TestClient, engine: Engine, control: str) -> Any:
    return http.post(f"/admin/quarantine/{message_id('FNXRMYY', control)}/owner",
                     headers={**_ops(engine), "Content-Type": "application/json"},
                     content=json.dumps({"reason": REASON}))


def _shown(http: TestClient, engine: Engine, control: str) -> dict[str, Any]:
    r = http.get(f"/admin/quarantine/{message_id('FNXRMYY', control)}", headers=_ops(engine))
    assert r.status_code == 200, r.text
    return r.json()


def _nids(rec: dict) -> set[str]:
    return {t.split("|", 1)[1] for t in tokens(rec) if t.startswith(NNCHN_SYSTEM)}


def _reads(engine: Engine, resident: dict, urls: list[str]) -> list[str]:
    token, _ = engine.auth.issue_token(subject=f"Patient/{resident['id']}", kind="patient", client_id="rv41j-phone",
                                       scopes=["patient/*.rs"], patient=resident["id"])
    with TestClient(create_app(engine)) as phone:
        return [phone.get(url, headers={"Authorization": f"Bearer {token}"}).text for url in urls]


def _held_w(ack: bytes) -> bool:
    return ack_code_of(ack) == "AA" and any("|205^" in x and "|W|" in x for x in err_lines(ack))


def _at_fnzyy(control: str, mrn: str, name: str, birth: str, sex: str, ids: str) -> str:
    """The HIS of 阜宁县中医院 (FNZYY, another member of the community) registering ``mrn`` there."""
    return (f"MSH|^~\\&|HIS|FNZYY|HUREN|FNYGT|20261201081500||ADT^A04^ADT_A01|{control}|P|2.5.1\r"
            f"EVN|A04|20261201081500\rPID|1||{mrn}^^^FNZYY^MR{ids}||{name}||{birth}|{sex}\rPV1|1|O\r")



# --- regfix41b's left MED: a record holding NO number given a number another record holds -------------------------


@pytest.mark.xfail(strict=True, reason=(
    "HIGH (leak, wrong link; pre-existing, regfix41b's left MED): the LIS's walk-in A04 under JA -- a record the HIS "
    "registered with no ID number -- stating the number JB holds (another woman of one name and birth date) is taken "
    "AA with no W 205, the patient index links JA and JB seealso, and JB's resident reads JA's Patient, her HbA1c and "
    "JA's $everything: the very harm regfix41b bars for the operator's decision, live and without any operator, "
    "whenever the mis-selected record happens to hold no number"))
def test_a_non_registrar_never_gives_a_numberless_record_a_number_another_record_holds(
        both: tuple[Engine, TestClient]) -> None:
    engine, http = both
    b = _nid("32092319700411012")
    ja = registered(http, "JA", "JA1", "乙^一", "19700411", "F")
    jb = registered(http, "JB", "JB1", "乙^一", "19700411", "F", f"~{b}^^^^NNCHN")
    assert ack_code_of(post(http, oru("JA9", "JA^^^FNXRMYY^MR", "乙^一", "19700411", "F", "HBA1C"))) == "AA"
    ack = post(http, adt("JA2", f"JA^^^FNXRMYY^MR~{b}^^^^NNCHN", "乙^一", "19700411", "F", app="LIS"))
    assert ack_code_of(ack) == "AA", ack
    seen = _reads(engine, jb, [f"/fhir/Patient/{ja['id']}", "/fhir/Observation",
                               f"/fhir/Patient/{jb['id']}/$everything"])
    leaked = [t[:300] for t in seen if ja["id"] in t or "HBA1C" in t]
    (now,) = patients(http, f"{MRN}|JA")
    assert not leaked and b not in _nids(now) and _held_w(ack), (leaked, _nids(now), ack)


# --- the other record at ANOTHER member institution ----------------------------------------------------------------


def test_the_operator_is_never_told_the_other_members_mrn_name_or_number(both: tuple[Engine, TestClient]) -> None:
    """阜宁县中医院 (FNZYY) registered ZA (乙^二, number b). At 阜宁县人民医院 the HIS registered JC (number a); the LIS's
    walk-in A04 under JC states b: held. The view's ``unavailable`` and the 409 name neither ZA's MRN, nor a name,
    nor either number; the decision is refused and nothing changes (b on ZA alone, JC keeps a, not linked)."""
    engine, http = both
    a, b = _nid("32092319700412002"), _nid("32092319700412012")
    assert ack_code_of(post(http, _at_fnzyy("ZA1", "ZA", "乙^二", "19700412", "F", f"~{b}^^^^NNCHN"))) == "AA"
    jc = registered(http, "JC", "JC1", "乙^二", "19700412", "F", f"~{a}^^^^NNCHN")
    assert _held_w(post(http, adt("JC2", f"JC^^^FNXRMYY^MR~{b}^^^^NNCHN", "乙^二", "19700412", "F", app="LIS")))
    (claim,) = _shown(http, engine, "JC2")["held_claims"]
    told = json.dumps(claim["unavailable"], ensure_ascii=False)
    decided = _decide(http, engine, "JC2")
    said = decided.json()["issue"][0]["diagnostics"]
    assert decided.status_code == 409, decided.text
    for secret in ("ZA", "乙", a, b):
        assert secret not in told and secret not in said, (secret, told, said)
    (za,) = patients(http, b)
    (jc_now,) = patients(http, f"{MRN}|JC")
    assert _nids(jc_now) == {a} and not jc_now.get("link") and za["id"] != jc["id"], jc_now


@pytest.mark.xfail(strict=True, reason=(
    "MED (wrong but contained; regfix41b): when the number is held at ANOTHER member institution (in the community "
    "the same person's record there is the index's ordinary case) the 409 names the other record by a bare "
    "'Patient/<uuid>, of no MRN at FNXRMYY' (the page: '无本机构病历号的病历 Patient/<uuid>'), which the operator "
    "cannot look up or act on, never which member holds it, and advises 'merge them (A40)', which cannot join "
    "records of two member institutions; it should name the member (阜宁县中医院) and send the operator to the "
    "registration of this hospital (the HIS's A08) or the visit's move"))
def test_a_number_held_at_another_member_is_said_so_with_advice_that_can_be_followed(
        both: tuple[Engine, TestClient]) -> None:
    engine, http = both
    a, b = _nid("32092319700413002"), _nid("32092319700413012")
    assert ack_code_of(post(http, _at_fnzyy("ZB1", "ZB", "乙^三", "19700413", "F", f"~{b}^^^^NNCHN"))) == "AA"
    registered(http, "JD", "JD1", "乙^三", "19700413", "F", f"~{a}^^^^NNCHN")
    assert _held_w(post(http, adt("JD2", f"JD^^^FNXRMYY^MR~{b}^^^^NNCHN", "乙^三", "19700413", "F", app="LIS")))
    (zb,) = patients(http, b)
    decided = _decide(http, engine, "JD2")
    said = decided.json()["issue"][0]["diagnostics"]
    assert decided.status_code == 409, decided.text
    assert ("FNZYY" in said or "阜宁县中医院" in said) and "A40" not in said and zb["id"] not in said, said
