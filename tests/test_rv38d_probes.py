"""rv38d: review probes of pfix38's merge (a report's status kept as stored keeps everything but its result
references, ``stands_with: {merged: [result]}``; a kept-out P's note added beside the final's; the imaging
document copying the report's text left whole).

Real HL7 v2 through ``POST /hl7v2`` into the real store on each backend (``tests.module_store``), read back over
``/fhir`` (TestClient). Each test uses numbers of its own. A probe that shows a defect is a strict xfail naming its
severity (thirty-eighth round, rv38d).
"""

from __future__ import annotations

import base64

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.hl7_calls import err_lines, module_http, post, written
from tests.module_store import module_eng
from tests.test_notback37_kept_whole import _REDRAWN
from tests.test_notback37_kept_whole import _result as _potassium

__all__ = ["engine", "module_http"]

engine = module_eng

_FINAL = "心肺膈未见明显异常。"
_NODULE = "右肺上叶小结节，建议随访。"


def _xray(tag: str, control: str, stamp: str, obr25: str, impression: str, obx11: str | None = None) -> str:
    """The PACS's chest film report RV38D-``tag`` (OBR-25 ``obr25``; both OBX-11 ``obx11``, else the same),
    MSH-7 ``stamp``: findings and one impression."""
    obx11 = obx11 or obr25
    return "\r".join([
        f"MSH|^~\\&|PACS|FNXRMYY|HUREN|FNYGT|{stamp}||ORU^R01^ORU_R01|RV38D-{control}|P|2.5.1",
        f"PID|1||RV38D-{tag}M^^^FNXRMYY^MR||赵^六||19700305|F",
        f"ORC|RE|RV38D-{tag}^HIS|RV38D-{tag}F^PACS||CM",
        f"OBR|1|RV38D-{tag}^HIS|RV38D-{tag}F^PACS|DR001^胸部正位片^L|||20261202090000|||||||||D2001^吴^强|"
        f"|RV38D-{tag}F||||20261202095000||DX|{obr25}",
        f"OBX|1|TX|FINDINGS^检查所见^L||双肺纹理清晰。||||||{obx11}|||20261202093000",
        f"OBX|2|TX|IMP^诊断意见^L||{impression}||||||{obx11}|||20261202093000"]) + "\r"


def _texts(http: TestClient, report_id: str) -> list[str]:
    """The texts of the imaging report's documents (the copies of its text)."""
    bundle = http.get("/fhir/DocumentReference", params={"related": f"DiagnosticReport/{report_id}"}).json()
    return [base64.b64decode(c["attachment"]["data"]).decode() for e in bundle.get("entry", ())
            for c in e["resource"]["content"] if c["attachment"].get("contentType", "").startswith("text/plain")]


def _final_then(engine: Engine, http: TestClient, tag: str, obx11: str) -> tuple[dict, list[dict], bytes]:
    """The PACS's final film (impression _FINAL), then its later message with OBR-25 P whose results are
    ``obx11`` with the impression _NODULE: the report, its results as read over /fhir, and the second ACK."""
    assert b"MSA|AA" in post(http, _xray(tag, f"{tag}A", "20261202100000", "F", _FINAL))
    (report,) = written(engine, http, f"RV38D-{tag}A", "DiagnosticReport")
    assert _texts(http, report["id"]) == [f"双肺纹理清晰。\n{_FINAL}"]
    ack = post(http, _xray(tag, f"{tag}B", "20261202120000", "P", _NODULE, obx11))
    assert b"MSA|AA" in ack, ack
    after = http.get(f"/fhir/DiagnosticReport/{report['id']}").json()
    results = [http.get(f"/fhir/{r['reference']}").json() for r in after["result"]]
    return after, results, ack


def test_a_corrected_impression_under_obr25_p_reaches_the_reports_words(engine: Engine, http: TestClient) -> None:
    """Final film (心肺膈未见明显异常。), then the PACS's correction of the impression (OBX-11 C) sent with
    OBR-25 P: the results are corrected (not a step back: they are stored), the report's status stays final
    (its results are not taken back) -- but the report's conclusion, its presentedForm and the document copying
    it must say the corrected impression its results now hold, as before pfix38. Now ``stands_with``'s
    inverted form keeps them as stored: the report and its document tell the clinician 'no abnormality'
    beside a corrected result reading nodule."""
    after, results, ack = _final_then(engine, http, "C1", "C")
    assert [(o["status"], o.get("valueString")) for o in results] == [
        ("corrected", "双肺纹理清晰。"), ("corrected", _NODULE)], results  # (the results took the correction)
    assert after["conclusion"] == _NODULE, (after, err_lines(ack))
    assert _texts(http, after["id"]) == [f"双肺纹理清晰。\n{_NODULE}"]


def test_a_final_impression_restated_under_obr25_p_reaches_the_reports_words(engine: Engine, http: TestClient) -> None:
    """Final film, then the PACS's message with OBR-25 P whose results are final (OBX-11 F) with another
    impression: the results are stored final with the new words (a final over a final), the report stays
    final -- and its conclusion and document must be those final results' words; they stay the old ones."""
    after, results, ack = _final_then(engine, http, "F1", "F")
    assert [(o["status"], o.get("valueString")) for o in results] == [
        ("final", "双肺纹理清晰。"), ("final", _NODULE)], results
    assert after["conclusion"] == _NODULE, (after, err_lines(ack))
    assert _texts(http, after["id"]) == [f"双肺纹理清晰。\n{_NODULE}"]


def test_a_kept_out_draft_leaves_report_and_document_and_names_them(engine: Engine, http: TestClient) -> None:
    """The guard beside the two above: a draft re-read (OBX-11 P, OBR-25 P) after the final film is kept out
    of the results, and so of the report's words and its document, and the W at OBR-25 names the text."""
    after, results, ack = _final_then(engine, http, "P1", "P")
    assert [(o["status"], o.get("valueString")) for o in results] == [
        ("final", "双肺纹理清晰。"), ("final", _FINAL)], results
    assert (after["status"], after["conclusion"]) == ("final", _FINAL), after
    assert _texts(http, after["id"]) == [f"双肺纹理清晰。\n{_FINAL}"]
    (warned,) = [e for e in err_lines(ack) if "DiagnosticReport.status" in e]
    assert "OBR^1^25" in warned and "conclusion" in warned and _NODULE in warned, warned


def test_a_kept_out_ps_empty_note_deletes_nothing_of_the_finals(engine: Engine, http: TestClient) -> None:
    """F 4.1 noted 危急值已电话通知张医生, then the LIS's later P of a re-drawn tube whose NTE-3 is ``""``: the
    final's note stays (the P's note is added beside, never in its place -- nor is an empty one a delete)."""
    assert b"MSA|AA" in post(http, _potassium("RV38D-N1A", "20261203100000", "RV38DN1", "4.1", "F",
                                              tube="RV38DSN1A", note="危急值已电话通知张医生"))
    (obs,) = written(engine, http, "RV38D-N1A", "Observation")
    ack = post(http, _potassium("RV38D-N1B", "20261203120000", "RV38DN1", "5.0", "P", tube="RV38DSN1B",
                                **{**_REDRAWN, "note": '""'}))
    assert b"MSA|AA" in ack, ack
    after = http.get(f"/fhir/Observation/{obs['id']}").json()
    assert (after["status"], after["valueQuantity"]["value"]) == ("final", 4.1), after
    assert [n["text"] for n in after["note"]] == ["危急值已电话通知张医生"], after


def test_a_new_final_results_tube_joins_the_report_it_is_listed_in(engine: Engine, http: TestClient) -> None:
    """F potassium of tube A, then the LIS's message (OBR-25 P) of tube B: potassium P 5.0 (kept out) and sodium
    F 140 (a final result new to the report, stored, listed by the report). The report's specimen list must
    name tube B, sodium's specimen, beside tube A: the report now rests on it. ``stands_with``'s inverted form
    merges only the result references, so the report lists a result whose specimen it does not name."""
    assert b"MSA|AA" in post(http, _potassium("RV38D-S1A", "20261203100000", "RV38DS1", "4.1", "F", tube="RV38DSS1A"))
    (report,) = written(engine, http, "RV38D-S1A", "DiagnosticReport")
    lines = _potassium("RV38D-S1B", "20261203120000", "RV38DS1", "5.0", "P", tube="RV38DSS1B", **_REDRAWN).split("\r")
    at = next(i for i, line in enumerate(lines) if line.startswith("OBX|1|"))
    lines.insert(at + 1, "OBX|2|NM|NA^钠^L||140|mmol/L|135-145|N|||F")
    ack = post(http, "\r".join(lines))
    assert b"MSA|AA" in ack, ack
    sodium = next(o for o in written(engine, http, "RV38D-S1B", "Observation") if o["code"]["coding"][0]["code"] == "NA")
    after = http.get(f"/fhir/DiagnosticReport/{report['id']}").json()
    assert after["status"] == "final" and {"reference": f"Observation/{sodium['id']}"} in after["result"], after
    assert sodium["status"] == "final" and sodium["specimen"] in after["specimen"], (sodium["specimen"], after["specimen"])


def test_a_correction_under_obr25_p_names_who_signed_it(engine: Engine, http: TestClient) -> None:
    """F 4.1 signed by 张三 (OBR-32), then the LIS's correction 4.3 (OBX-11 C) signed by 李四, sent with OBR-25 P:
    the result is corrected (stored), the report stays final (its results are not taken back) -- and the report
    must name 李四, who signed the value it now lists (as before pfix38). The inverted ``stands_with`` treats
    the whole message as kept out: 张三 stays, and the W says 李四 was not stored."""
    first = _potassium("RV38D-I1A", "20261203100000", "RV38DI1", "4.1", "F", tube="RV38DSI1A")
    assert b"MSA|AA" in post(http, _signed(first, "D001&张&三"))
    (report,) = written(engine, http, "RV38D-I1A", "DiagnosticReport")
    (obs,) = written(engine, http, "RV38D-I1A", "Observation")
    later = _potassium("RV38D-I1B", "20261203120000", "RV38DI1", "4.3", "C", tube="RV38DSI1A", obr25="P")
    ack = post(http, _signed(later, "D002&李&四"))
    assert b"MSA|AA" in ack, ack
    corrected = http.get(f"/fhir/Observation/{obs['id']}").json()
    assert (corrected["status"], corrected["valueQuantity"]["value"]) == ("corrected", 4.3), corrected
    after = http.get(f"/fhir/DiagnosticReport/{report['id']}").json()
    assert [r.get("display") for r in after.get("resultsInterpreter", ())] == ["李四"], (after, err_lines(ack))


def _signed(message: str, interpreter: str) -> str:
    """``message`` with OBR-32 (the principal result interpreter, NDL: ID&family&given) stated."""
    lines = message.split("\r")
    at = next(i for i, line in enumerate(lines) if line.startswith("OBR|"))
    lines[at] += "|" * 7 + interpreter
    return "\r".join(lines)
