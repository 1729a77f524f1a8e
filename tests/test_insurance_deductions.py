"""The monthly deduction list: upheld flags only, CSV and a signed Bundle over real HTTP, offline
verification that catches any alteration, and the CLI."""

from __future__ import annotations

import base64
import copy
import csv
import io
import json
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from engine import cli, fhirjson
from engine.audit.keys import KEY_NAME, AuditKeys
from engine.insurance.deductions import verify_bundle
from tests import test_reports_duplicates
from tests.test_recognition_world import A, B
from tests.test_reports_duplicates import bearer

MONTH = "2026-03"
county = test_reports_duplicates.county  # the duplicate report's small county: two flags at B


def upheld(engine: Any, http: Any) -> list[dict[str, Any]]:
    """Uphold both flags at B (CBC 20.00, LFT 60.00); the justified LFT re-test stays out."""
    rows = http.get("/reports/duplicates?status=flagged", headers=bearer(engine)).json()["rows"]
    assert len(rows) == 2
    for r in rows:
        res = http.post(f"/reports/duplicates/{r['id']}/review",
                        json={"decision": "upheld", "reason": "复核属实 confirmed repeat"}, headers=bearer(engine))
        assert res.status_code == 200, res.text
    return rows


def public_keys(http: Any) -> AuditKeys:
    """What the hospital holds: the published PEMs only, no private key."""
    published = http.get("/audit/public-key").json()
    return AuditKeys.from_public_pems(KEY_NAME, [k["pem"].encode() for k in published["keys"]])


def deductions(engine: Any, http: Any, **params: str) -> Any:
    q = {"institution": B, "month": MONTH, **params}
    return http.get("/reports/deductions", params=q, headers=bearer(engine, "system/DetectedIssue.rs"))


def test_signed_bundle_lists_the_upheld_flags_and_verifies_offline(engine: Any, county: dict[str, Any]) -> None:
    http = county["http"]
    rows = upheld(engine, http)
    res = deductions(engine, http)
    assert res.status_code == 200, res.text
    assert res.headers["content-type"].startswith("application/fhir+json")
    bundle = fhirjson.loads(res.content)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds == ["List", "DetectedIssue", "DetectedIssue", "Binary"]
    dlist = bundle["entry"][0]["resource"]
    ext = {e["url"]: e for e in dlist["extension"][0]["extension"]}
    assert D(str(ext["total"]["valueMoney"]["value"])) == D("80.00")
    assert ext["institution"]["valueIdentifier"]["value"] == B
    assert ext["period"]["valuePeriod"] == {"start": "2026-03-01", "end": "2026-03-31"}
    amounts = sorted(D(str(next(x for x in e["extension"][0]["extension"] if x["url"] == "amount")["valueMoney"]["value"]))
                     for e in dlist["entry"])
    assert amounts == [D("20.00"), D("60.00")]
    assert {e["item"]["reference"] for e in dlist["entry"]} == {f"DetectedIssue/{r['id']}" for r in rows}
    policies = [next(x for x in e["extension"][0]["extension"] if x["url"] == "policy")["valueString"]
                for e in dlist["entry"]]
    assert all(p.startswith("医保不予支付：") and A in p and "互认有效期内" in p for p in policies)
    issues = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DetectedIssue"]
    assert all(i["mitigation"][-1]["action"]["coding"][0]["code"] == "upheld" for i in issues)
    # the Bundle (signature included) and the List in it are valid R4
    engine.validator.validate(dlist)
    engine.validator.validate(bundle)
    assert bundle["entry"][0]["fullUrl"].startswith("urn:uuid:")
    assert bundle["entry"][1]["fullUrl"].endswith(f"/fhir/DetectedIssue/{bundle['entry'][1]['resource']['id']}")

    keys = public_keys(http)
    assert not keys.can_sign
    assert verify_bundle(res.content, keys)
    assert bundle["signature"]["sigFormat"] == "application/jose"

    # the CSV inside the signed Bundle is the CSV the API serves
    csv_text = base64.b64decode(bundle["entry"][-1]["resource"]["data"]).decode("utf-8")
    served = deductions(engine, http, _format="csv")
    assert served.status_code == 200 and served.headers["content-type"].startswith("text/csv")
    assert served.content.decode("utf-8") == csv_text
    table = list(csv.reader(io.StringIO(csv_text.lstrip("\ufeff"))))
    # Chinese headers, each code beside its name (fifteenth round)
    assert table[0][:5] == ["清单编号", "机构代码", "机构", "月份", "标记编号"]
    body = [r for r in table[1:] if r and r[0] != "合计"]
    assert sorted(r[9] for r in body) == ["20.00", "60.00"]
    assert all(r[23] == "auditor-zhang" or r[23].endswith("auditor-zhang") for r in body)
    assert table[-1][:2] == ["合计", B] and table[-1][3:] == [MONTH, "2", "80.00", "CNY"]


@pytest.mark.parametrize("alteration", ["amount", "total", "drop-row", "csv", "evidence", "other-key"])
def test_an_altered_list_does_not_verify(engine: Any, county: dict[str, Any], alteration: str) -> None:
    http = county["http"]
    upheld(engine, http)
    original = deductions(engine, http).content
    keys = public_keys(http)
    bundle = fhirjson.loads(original)
    forged = copy.deepcopy(bundle)
    dlist = forged["entry"][0]["resource"]
    if alteration == "amount":
        dlist["entry"][0]["extension"][0]["extension"][0]["valueMoney"]["value"] = 2.0
    elif alteration == "total":
        dlist["extension"][0]["extension"][2]["valueMoney"]["value"] = 60
    elif alteration == "drop-row":
        del dlist["entry"][1]
        del forged["entry"][2]
    elif alteration == "csv":
        text = base64.b64decode(forged["entry"][-1]["resource"]["data"]).decode().replace("60.00", "6.00")
        forged["entry"][-1]["resource"]["data"] = base64.b64encode(text.encode()).decode()
    elif alteration == "evidence":
        forged["entry"][1]["resource"]["detail"] += " (disputed)"
    else:  # a list signed by someone else's key
        stranger = AuditKeys.load(engine.settings.with_(data_dir=engine.settings.data_dir / "stranger"))
        from engine.insurance.deductions import sign_bundle

        forged = fhirjson.loads(sign_bundle(bundle, stranger))
        assert verify_bundle(forged, stranger)
    assert verify_bundle(bundle, keys)
    assert not verify_bundle(fhirjson.dumps(forged), keys)


def test_only_upheld_flags_of_the_month_and_institution(engine: Any, county: dict[str, Any]) -> None:
    http = county["http"]
    # nothing upheld yet: an empty list, still signed
    empty = fhirjson.loads(deductions(engine, http).content)
    assert "entry" not in empty["entry"][0]["resource"] and empty["entry"][0]["resource"]["emptyReason"]
    rows = upheld(engine, http)
    http.post(f"/reports/duplicates/{rows[0]['id']}/review", json={"decision": "overturned", "reason": "合理"},
              headers=bearer(engine))
    one = fhirjson.loads(deductions(engine, http).content)
    assert len(one["entry"][0]["resource"]["entry"]) == 1
    assert fhirjson.loads(deductions(engine, http, month="2026-04").content)["entry"][0]["resource"].get("entry") is None
    assert fhirjson.loads(deductions(engine, http, institution=A).content)["entry"][0]["resource"].get("entry") is None


def test_bad_requests_and_access(engine: Any, county: dict[str, Any]) -> None:
    http = county["http"]
    assert deductions(engine, http, month="2026-13").status_code == 400
    assert deductions(engine, http, month="March").status_code == 400
    assert deductions(engine, http, _format="xml").status_code == 400
    assert http.get("/reports/deductions", params={"institution": B, "month": MONTH}).status_code == 401
    res = http.get("/reports/deductions", params={"institution": B, "month": MONTH},
                   headers=bearer(engine, "system/ChargeItem.rs"))
    assert res.status_code == 403 and res.json()["resourceType"] == "OperationOutcome"


def test_cli_writes_and_verifies_offline(engine: Any, county: dict[str, Any], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    http = county["http"]
    upheld(engine, http)
    pem = tmp_path / "huren-audit.pub.pem"
    pem.write_text(http.get("/audit/public-key").json()["keys"][0]["pem"])
    settings = engine.settings
    engine.close()
    monkeypatch.setenv("HUREN_DATA_DIR", str(settings.data_dir))
    out = tmp_path / "deductions.json"
    assert cli.main(["deductions", "list", B, MONTH, "--out", str(out)]) == 0
    assert "2 deductions, CNY 80.00" in capsys.readouterr().err
    assert cli.main(["deductions", "verify", str(out), "--public-key", str(pem)]) == 0
    assert "signature valid" in capsys.readouterr().out
    forged = json.loads(out.read_text("utf-8"))
    forged["entry"][0]["resource"]["title"] += " (amended)"
    out.write_text(json.dumps(forged, ensure_ascii=False), "utf-8")
    assert cli.main(["deductions", "verify", str(out), "--public-key", str(pem)]) == 1
    assert "SIGNATURE INVALID" in capsys.readouterr().out
    assert cli.main(["deductions", "list", B, MONTH, "--format", "csv"]) == 0
    assert "80.00" in capsys.readouterr().out


def test_the_billed_charge_line_is_the_amount_deducted(engine: Any, county: dict[str, Any]) -> None:
    """A ChargeItem posted over FHIR for the repeated CBC (``service`` → its report) makes the
    deduction that line's amount (recognition's money at stake), not the catalogue price."""
    http = county["http"]
    rows = http.get("/reports/duplicates?status=flagged&item=CBC", headers=bearer(engine)).json()["rows"]
    (cbc_flag,) = rows
    line = {"resourceType": "ChargeItem", "id": "ci-cbc", "status": "billed",
            "code": {"coding": [{"system": "urn:huren:code:price", "code": "250101015", "display": "血细胞分析"}]},
            "subject": {"reference": cbc_flag["patient"]}, "occurrenceDateTime": "2026-03-03T09:00:00+08:00",
            "performingOrganization": {"identifier": {"system": "urn:huren:institution", "value": B}},
            "priceOverride": {"value": 23.5, "currency": "CNY"}, "service": [{"reference": cbc_flag["result"]}]}
    system = {"Authorization": "Bearer " + engine.auth.issue_system_token("his", "system/*.cruds")}
    assert http.put("/fhir/ChargeItem/ci-cbc", json=line, headers=system).status_code in (200, 201)
    upheld(engine, http)
    text = deductions(engine, http, _format="csv").content.decode("utf-8").lstrip("\ufeff")
    table = [r for r in csv.reader(io.StringIO(text)) if r and r[0] not in ("清单编号", "合计")]
    cbc = next(r for r in table if r[6] == "CBC")
    assert (cbc[9], cbc[11], cbc[12]) == ("23.50", "charge", "收费明细")
    expected = "ChargeItem/ci-cbc" if engine.repository.params.get("ChargeItem", "service") is not None else ""
    assert cbc[13] == expected
    assert text.splitlines()[-1].startswith(f"合计,{B},") and text.splitlines()[-1].endswith(f",{MONTH},2,83.50,CNY")
