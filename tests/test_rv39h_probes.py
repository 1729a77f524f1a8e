"""rv39h's probes (thirty-ninth round review). Real bytes through the real path.

- The lead's 484b7827 changed writer30's replay test so a FHIR client's edit is a telephone, not the sex: the
  scenario it had tested -- the HIS's own message, the same MRN and the same resident ID number, its sex as it
  always stated (and as the ID number's sex digit says), a corrected name -- is now refused as "another
  person" once a client has set the stored sex otherwise (nbfix39's name+sex rule weighs the client's edit
  against the feed). Kept as a strict xfail (LOW): the sender is told (AE, raw kept, an A08 goes through),
  nothing is mis-filed.
- msgfix34's second "cannot be told" ERR (OBR^1^25, DiagnosticReport.status over the stored corrected) is
  the message's report status honestly refused beside its result's: guarded (both ERRs, each at its field).
- The lead's 403 staff header (ui_shared.refused): a resident's or a system client's token refused an
  operator's page gets no staff header and no script, under the staff pages' CSP (the lead's test names the
  resident in its docstring but drives only an auditor).
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.hl7_calls import err_lines, module_http, post
from tests.module_store import module_eng
from tests.test_msgfix34_cross_sender import _by, _correction, _line, _refused, _three, _withdrawal
from tests.test_msgtime33_withdrawal_time import _status
from tests.test_writer30_marks import _auth, _ids, adt

__all__ = ["engine", "module_http"]

engine = module_eng


def test_a_withdrawal_refused_over_a_corrected_report_names_both_fields(engine: Engine, http: TestClient) -> None:
    """Guard (484b7827's msgfix34 change): the PACS's withdrawal over the RIS's correction is refused at the
    result's OBX-11 AND at the report's OBR-25 -- two ERRs, each naming its own field, the stored status and
    the other sender; nothing written."""
    assert b"MSA|AA" in post(http, _by("RIS", _three("RV39H-6", "RV39H-X6")))
    obs_id = _line(engine, http, "RV39H-6")
    assert b"MSA|AA" in post(http, _by("RIS", _correction("RV39H-6C", "RV39H-X6", "20261202120000")))
    ack = post(http, _withdrawal("RV39H-6W", "RV39H-X6", "20261202130000"))
    told = [e for e in err_lines(ack) if "cannot be told" in e]
    assert sorted(e.split("|")[2] for e in told) == ["OBR^1^25", "OBX^1^11"], told
    obx = _refused(engine, ack, "RV39H-6W", "OBX^1^11", "RIS", "MSH-7 20261202120000")
    obr = _refused(engine, ack, "RV39H-6W", "OBR^1^25", "RIS", "MSH-7 20261202120000")
    assert "Observation.status" in obx and "DiagnosticReport.status" in obr and '"corrected"' in obr, (obx, obr)
    assert _status(http, obs_id) == "corrected"


def test_the_feeds_name_correction_after_a_clients_sex_edit_is_taken(settings: Settings) -> None:
    with Engine(settings) as eng, TestClient(create_app(eng)) as http:
        (out,) = eng.ingestor.process([(adt("RV39H-W2"), "mllp", "peer")])
        assert out.code == "AA"
        [patient] = _ids(eng, "Patient")
        stored = http.get(f"/fhir/Patient/{patient}", headers=_auth(eng)).json()
        stored["gender"] = "female"
        assert http.put(f"/fhir/Patient/{patient}", json=stored, headers=_auth(eng)).status_code == 200
        again = eng.ingestor.replay(out.message_id, actor="operator-rv39h", raw=adt("RV39H-W2", name="王^芳芳"))
        assert again is not None and again.code == "AA", again and again.ack
        assert "芳芳" in str(eng.repository.read("Patient", patient)["name"])


@pytest.mark.parametrize("path", ["/ui/quarantine", "/admin/fidelity"])
def test_a_residents_token_gets_no_staff_header(settings: Settings, path: str) -> None:
    """Guard (lead39's refused header): a resident's token refused an operator's page gets a 403 without the
    staff header (no #who, no 退出登录, no nav, no script fetching /ui/session); the page, when one is
    answered, in Chinese naming her role, under the staff pages' CSP, frame refusal and no-store. (The lead's
    test names the resident in its docstring but drives only an auditor.)"""
    with Engine(settings) as eng, TestClient(create_app(eng)) as http:
        resident, _ = eng.auth.issue_token(subject="person-rv39h", kind="patient", client_id="huren-me",
                                           scopes=["patient/*.rs"], patient="p-rv39h", person="person-rv39h")
        r = http.get(path, headers={"Authorization": "Bearer " + resident, "Accept": "text/html"})
        assert r.status_code == 403, (path, r.status_code, r.text[:300])
        body = r.text
        for staff_only in ('id="who"', "退出登录", "<script", 'id="signout"', "<nav", "/ui/session"):
            assert staff_only not in body, (path, staff_only)
        if r.headers["content-type"].startswith("text/html"):
            assert "您无权查看" in body and "居民" in body, body[:400]
            csp = r.headers.get("content-security-policy", "")
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, csp
            assert r.headers.get("cache-control") == "no-store"
