"""Review rv36e (thirty-sixth round): probes of the changes merged this round -- ui36's ``/ui/me/wards``,
link36's re-link and ward naming, evfix36's evidence order line, the lead's one-Authorization-field rule.

Real bytes through the real path: HL7 v2 by ``POST /hl7v2``, the pages' JSON and ``/auth`` through
FastAPI's TestClient, the module's real store. A probe that shows a defect is a strict xfail naming its
severity; one that passes guards what it names."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from tests.module_store import module_eng  # noqa: F401
from tests.test_resident_record_ui import hl7, msh, pid
from tests.test_resident_ui import nid

ER7 = "x-application/hl7-v2+er7"
STAMP = "20261125080000"
WEI = nid("32092319760606004")
HAN = nid("32092319810909007")


def _visit(patient: str, control: str, number: str, pl: str, inst: str = "FNXRMYY", when: str = STAMP) -> bytes:
    """An admission (ADT^A01) of visit ``number`` at ``pl`` (PV1-3), sent by ``inst``."""
    pv1 = ["PV1", "1", "I", pl, "R"] + [""] * 14 + [f"{number}^^^{inst}^VN"] + [""] * 24 + [when]
    return hl7(msh("HIS", inst, when, "ADT^A01^ADT_A01", control), f"EVN|A01|{when}", patient, "|".join(pv1))


def _people() -> tuple[str, str]:
    return (pid(WEI, "ZY2026036E01", "FNXRMYY", "魏^兰", "19760606", "F", "13700036E01"),
            pid(HAN, "ZY2026036E02", "FNXRMYY", "韩^军", "19810909", "M", "13700036E02"))


def _system(engine: Engine) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("his-rv36e", "system/*.cruds")}


@pytest.fixture(scope="module")
def fed(module_eng: Engine) -> Iterator[tuple[Engine, TestClient]]:  # noqa: F811
    wei, han = _people()
    messages = [
        # the county hospital's HIS registers Wei's visit at a member's ward (PL-4 FNZYY, the county
        # traditional-medicine hospital), named by PL-9; the county hospital's own NEI is 心内科病区 in
        # its table (mappings/wards.yaml)
        _visit(wei, "RV36E-1", "RV36E-V1", "NEI^5^1^FNZYY^^^^^中医院脑病科病区"),
        # the county hospital's own ZXK ward, named 肿瘤科病区 (Han's visit) ...
        _visit(han, "RV36E-2", "RV36E-V2", "ZXK^8^3^FNXRMYY^^^^^肿瘤科病区", when="20261126080000"),
        # ... and the member's ZXK ward, 针灸科病区, where Wei was
        _visit(wei, "RV36E-3", "RV36E-V3", "ZXK^6^2^FNZYY^^^^^针灸科病区", when="20261127080000"),
        # and a visit at the county hospital's own ward, named as the table names it (the guard's case)
        _visit(wei, "RV36E-4", "RV36E-V4", "NEI^302^01^FNXRMYY^^^^^心内科一病区", when="20261128080000"),
    ]
    with TestClient(create_app(module_eng)) as http:
        for message in messages:
            r = http.post("/hl7v2", content=message, headers={"Content-Type": ER7, **_system(module_eng)})
            assert r.status_code == 200 and b"MSA|AA" in r.content, r.content
        yield module_eng, http


def _resident(engine: Engine, http: TestClient, mrn: str) -> dict[str, str]:
    [patient] = [e["resource"] for e in http.get("/fhir/Patient", params={"identifier": mrn},
                                                  headers=_system(engine)).json()["entry"]]
    token, _ = engine.auth.issue_token(subject="person-" + patient["id"], kind="patient", client_id="huren-me",
                                       scopes=["patient/*.rs"], patient=patient["id"])
    return {"Authorization": "Bearer " + token}


def _places(http: TestClient, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Her visits' numbers -> their first location (reference and display), as /fhir gives them to her."""
    found = http.get("/fhir/Encounter", params={"_count": "50"}, headers=headers).json().get("entry") or []
    return {next(i["value"] for i in e["resource"]["identifier"]): e["resource"]["location"][0]["location"]
            for e in found}


# ---- ui36: /ui/me/wards -----------------------------------------------------------------------------------

def test_a_ward_at_a_member_facility_is_not_named_as_the_senders_ward_of_that_code(
        fed: tuple[Engine, TestClient]) -> None:
    engine, http = fed
    wei = _resident(engine, http, "ZY2026036E01")
    places = _places(http, wei)
    assert set(places) == {"RV36E-V1", "RV36E-V3", "RV36E-V4"}, places
    wards = http.get("/ui/me/wards", headers=wei).json()["wards"]
    # what the record states for those visits (the Encounter's display, the feed's PL-9 name)
    assert places["RV36E-V1"]["display"].startswith("中医院脑病科病区"), places
    assert places["RV36E-V3"]["display"].startswith("针灸科病区"), places
    # the answer either leaves a place it cannot name rightly out (the page shows the record's
    # display) or names the member's ward -- never the county hospital's ward of the same code
    v1 = wards.get(places["RV36E-V1"]["reference"])
    v3 = wards.get(places["RV36E-V3"]["reference"])
    assert v1 is None or v1["name"] == "中医院脑病科病区", v1
    assert v3 is None or v3["name"] == "针灸科病区", v3


def test_her_own_wards_answer_names_her_senders_ward_by_its_table_and_nothing_of_his(
        fed: tuple[Engine, TestClient]) -> None:
    """Guard: the sender's own ward by its table (心内科病区 over PL-9's 心内科一病区), the room and bed
    after it; Han's ward (肿瘤科病区, the same code ZXK as one of hers) is in his answer, never in hers."""
    engine, http = fed
    wei = _resident(engine, http, "ZY2026036E01")
    places = _places(http, wei)
    wards = http.get("/ui/me/wards", headers=wei).json()["wards"]
    assert wards[places["RV36E-V4"]["reference"]] == {"name": "心内科病区", "code": "NEI", "rest": "302房 01床"}
    assert set(wards) <= {p["reference"] for p in places.values()}, wards
    han = _resident(engine, http, "ZY2026036E02")
    his_places = _places(http, han)
    his = http.get("/ui/me/wards", headers=han).json()["wards"]
    assert list(his) == [his_places["RV36E-V2"]["reference"]], his
    assert his[his_places["RV36E-V2"]["reference"]]["name"] == "肿瘤科病区", his
    assert not set(his) & set(wards)


def test_the_wards_answer_refuses_a_staff_token_and_a_forged_patient_claim(fed: tuple[Engine, TestClient]) -> None:
    """Guard: a staff/system caller is not a resident (403 OperationOutcome); a token whose signature is
    not the engine's gets 401 -- the route takes the caller only from a verified token."""
    engine, http = fed
    refused = http.get("/ui/me/wards", headers=_system(engine))
    assert refused.status_code == 403 and refused.json()["resourceType"] == "OperationOutcome", refused.text
    wei = _resident(engine, http, "ZY2026036E01")
    head, body, sig = wei["Authorization"].removeprefix("Bearer ").split(".")
    forged = {"Authorization": "Bearer " + ".".join([head, body, sig[:-4] + ("AAAA" if sig[-4:] != "AAAA" else "BBBB")])}
    assert http.get("/ui/me/wards", headers=forged).status_code == 401


# ---- the lead's c4b0fcd5: one Authorization field at the OAuth endpoints ----------------------------------

def test_two_credentials_folded_into_one_authorization_field_authenticate_nobody(fed: tuple[Engine, TestClient]
                                                                                   ) -> None:
    """Guard: a proxy that folds its Basic credential into the client's field ("Basic a, Basic b": one
    field, so ``getlist`` sees one) is still refused -- the Basic value is decoded strictly, so neither
    credential is taken (no token issued)."""
    engine, http = fed
    good = base64.b64encode(b"his-rv36e:nope").decode()
    other = base64.b64encode(b"someone:else").decode()
    r = http.post("/auth/token", content="grant_type=client_credentials&scope=system%2FPatient.rs",
                  headers={"Content-Type": "application/x-www-form-urlencoded",
                           "Authorization": f"Basic {good}, Basic {other}"})
    assert r.status_code in (400, 401) and "access_token" not in r.text, r.text
    assert r.json()["error"] in ("invalid_client", "invalid_request"), r.text


# ---- ui36: /ui/me/wards and the audit trail ----------------------------------------------------------------

def _who(http: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    r = http.get("/ui/me/who-looked", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["entries"]


def test_a_family_members_read_of_her_visit_wards_is_in_her_who_looked(module_eng: Engine) -> None:  # noqa: F811
    from tests.test_prb22_own_entries import son_acting_for_zhao
    with TestClient(create_app(module_eng)) as http:
        me, son = son_acting_for_zhao(module_eng, http)
        zhao = me.removeprefix("Patient/")
        token, _ = module_eng.auth.issue_token(subject="person-" + zhao, kind="patient", client_id="huren-me",
                                               scopes=["patient/*.rs"], patient=zhao)
        her = {"Authorization": "Bearer " + token}
        before = [e for e in _who(http, her) if e["role"] == "family"]
        w = http.get("/ui/me/wards", headers=son)
        assert w.status_code == 200, w.text
        # her visits' places: the son was told where she was (guard: only her visits, each by its ward)
        encounters = http.get("/fhir/Encounter", params={"_count": "50"}, headers=her).json().get("entry") or []
        hers = {loc["location"]["reference"] for e in encounters for loc in e["resource"].get("location") or ()}
        assert w.json()["wards"] and set(w.json()["wards"]) <= hers, (w.text, hers)
        after = [e for e in _who(http, her) if e["role"] == "family"]
        assert len(after) == len(before) + 1, after
        assert "Encounter" in after[0]["resource_types"], after
