"""pfix38: a later preliminary (P) kept out of a final result keeps out of its report and note too.

The report's status kept as stored now keeps everything of the report but its result references
(``merge.yaml`` DiagnosticReport.status ``stands_with: {merged: [result]}``, the inverted form): the P's
interpreter (OBR-32), its re-drawn tube (SPM) and its draft impression (the conclusion, the text, the imaging
document copying it) stand as the final stated them, and the W at OBR-25 names each. The P's note is added
beside the final's (``not_back``'s ``merged``: it adds, never replaces). A site's file in the old list form
keeps its meaning (review rv38a HIGH 1-2, MED 3; thirty-eighth round, pfix38).

Real HL7 v2 through ``POST /hl7v2`` (and one over MLLP) into the real store on each backend
(``tests.module_store``), read back over ``/fhir``; the site's file through a real engine over a site folder.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.merge_rules import MergeRules
from mappings.site import DEFAULTS_DIR, SiteError, load_merge_file
from tests.hl7_calls import err_lines, mllp, module_http, post, written
from tests.module_store import module_eng
from tests.performer_site import served
from tests.test_notback37_kept_whole import _REDRAWN
from tests.test_notback37_kept_whole import _result as _potassium
from tests.test_rv38a_probes import _interpreted, _xray

__all__ = ["engine", "module_http"]

engine = module_eng

_SHIPPED = "      stands_with: {merged: [result, identifier, basedOn], taken: [issued, \"effective[x]\"]}\n"  # (pffix38: taken)
_OLD = '      stands_with: [issued, "effective[x]"]\n'  # (notback37's line: the times alone stand)


def _read(http: TestClient, ref: str) -> dict:
    return http.get(f"/fhir/{ref}").json()


def _report_warning(ack: bytes) -> str:
    """The one W of the report whose status stood (at OBR-25)."""
    (warned,) = [e for e in err_lines(ack) if "DiagnosticReport.status" in e]
    assert "|W|" in warned and warned.split("|")[2] == "OBR^1^25", warned
    return warned


def _first(engine, http: TestClient, tag: str, interpreter: str = "D001&张&三", **kw: str) -> dict:
    """The LIS's F 4.1 at 10:00 (tube A) signed by ``interpreter``: its report as read over /fhir."""
    assert b"MSA|AA" in post(http, _interpreted(_potassium(f"PF38-{tag}A", "20261203100000", f"PF38{tag}", "4.1", "F",
                                                           tube=f"PF38S{tag}A", **kw), interpreter))
    (report,) = written(engine, http, f"PF38-{tag}A", "DiagnosticReport")
    return _read(http, f"DiagnosticReport/{report['id']}")


def test_the_final_report_keeps_its_interpreter_and_tube(engine, http: TestClient) -> None:
    """F 4.1 of tube A signed by 张三, then the LIS's later P 5.0 of a re-drawn tube B signed by 李四: the final
    report still names 张三 and tube A alone (the re-drawn tube does not join its specimen list: status38's
    item, the same cause), and the W at OBR^1^25 names both with the P's values it did not store."""
    before = _first(engine, http, "1")
    ack = post(http, _interpreted(_potassium("PF38-1B", "20261203120000", "PF381", "5.0", "P", tube="PF38S1B",
                                             **_REDRAWN), "D002&李&四"))
    assert b"MSA|AA" in ack, ack
    after = _read(http, f"DiagnosticReport/{before['id']}")
    for name in ("status", "resultsInterpreter", "specimen", "effectiveDateTime", "issued", "result"):
        assert after.get(name) == before.get(name), (name, before.get(name), after.get(name))
    (tube,) = written(engine, http, "PF38-1B", "Specimen")
    warned = _report_warning(ack)
    assert "resultsInterpreter" in warned and "李四" in warned and f"Specimen/{tube['id']}" in warned, warned
    assert "result " not in warned and "basedOn" not in warned, warned  # (what did not differ is not named)


def test_a_final_result_new_to_the_report_is_listed(engine, http: TestClient) -> None:
    """F potassium, then the LIS's later message (OBR-25 P) carrying potassium P 5.0 (kept out) and sodium F
    140 (a final result new to the report): the report stays final, and lists the sodium result beside the
    potassium one -- the result references are what a kept-out statement merges."""
    before = _first(engine, http, "3")
    later = _potassium("PF38-3B", "20261203120000", "PF383", "5.0", "P", tube="PF38S3A")
    later = later.rstrip("\r") + "\rOBX|2|NM|NA^钠^L||140|mmol/L|135-145|N|||F\r"
    ack = post(http, later)
    assert b"MSA|AA" in ack, ack
    sodium = next(o for o in written(engine, http, "PF38-3B", "Observation") if o["code"]["coding"][0]["code"] == "NA")
    after = _read(http, f"DiagnosticReport/{before['id']}")
    assert after["status"] == "final", after
    assert after["result"] == [*before["result"], {"reference": f"Observation/{sodium['id']}"}], after["result"]
    assert after["resultsInterpreter"] == before["resultsInterpreter"], after


def _document_text(http: TestClient, report_id: str) -> tuple[str, str, str]:
    """The imaging report's document (the copy of its text): (status, docStatus, its text)."""
    bundle = http.get("/fhir/DocumentReference", params={"related": f"DiagnosticReport/{report_id}"}).json()
    (doc,) = [e["resource"] for e in bundle.get("entry", ())]
    (text,) = [base64.b64decode(c["attachment"]["data"]).decode() for c in doc["content"]
               if c["attachment"].get("contentType", "").startswith("text/plain")]
    return doc["status"], doc.get("docStatus", ""), text


def test_the_imaging_document_keeps_the_final_words_and_a_correction_still_changes_them(
        engine, http: TestClient) -> None:
    """The PACS's final chest film (心肺膈未见明显异常。), its later P (a draft re-read: 右肺上叶结节。): the
    report's conclusion and the document copying its text keep the final's words, the document stays final
    (it was made preliminary with the draft's). Then the radiologist's correction (OBX-11 C, OBR-25 C) of the
    impression: a correction is no step back -- the conclusion and the document take its words."""
    assert b"MSA|AA" in post(http, _xray("PF38-4A", "20261202100000", "F", "心肺膈未见明显异常。"))
    (report,) = written(engine, http, "PF38-4A", "DiagnosticReport")
    before = _read(http, f"DiagnosticReport/{report['id']}")
    document = _document_text(http, report["id"])
    assert document == ("current", "final", "双肺纹理清晰。\n心肺膈未见明显异常。"), document
    ack = post(http, _xray("PF38-4B", "20261202120000", "P", "右肺上叶结节。"))
    assert b"MSA|AA" in ack, ack
    after = _read(http, f"DiagnosticReport/{report['id']}")
    assert (after["status"], after["conclusion"]) == ("final", "心肺膈未见明显异常。"), after
    assert after["presentedForm"] == before["presentedForm"], after
    assert _document_text(http, report["id"]) == document
    warned = _report_warning(ack)
    assert "conclusion" in warned and "右肺上叶结节。" in warned and "presentedForm" in warned, warned
    ack = post(http, _xray("PF38-4C", "20261202130000", "C", "右肺上叶小结节，建议随访。"))
    assert b"MSA|AA" in ack and not [e for e in err_lines(ack) if "DiagnosticReport.status" in e], ack
    corrected = _read(http, f"DiagnosticReport/{report['id']}")
    assert (corrected["status"], corrected["conclusion"]) == ("corrected", "右肺上叶小结节，建议随访。"), corrected
    assert _document_text(http, report["id"])[2] == "双肺纹理清晰。\n右肺上叶小结节，建议随访。"


def test_the_ps_note_is_added_beside_the_finals(engine, http: TestClient) -> None:
    """F 4.1 noted 危急值已电话通知张医生 (the critical value phoned), then the LIS's later P 5.0 noted 溶血: the
    final result keeps its note and has the P's beside it, and the W says so; the same P sent again adds
    nothing (the note is not stated twice, and the W names no note)."""
    tag = "PF385"
    first = _potassium("PF38-5A", "20261203100000", tag, "4.1", "F", tube="PF38S5A", note="危急值已电话通知张医生")
    assert b"MSA|AA" in post(http, first)
    (obs,) = written(engine, http, "PF38-5A", "Observation")
    ack = post(http, _potassium("PF38-5B", "20261203120000", tag, "5.0", "P", tube="PF38S5B", **_REDRAWN))
    assert b"MSA|AA" in ack, ack
    after = _read(http, f"Observation/{obs['id']}")
    assert (after["status"], after["valueQuantity"]["value"]) == ("final", 4.1), after
    assert [n["text"] for n in after["note"]] == ["危急值已电话通知张医生", "溶血"], after["note"]
    (warned,) = [e for e in err_lines(ack) if "taken back only" in e]
    assert "what else it states is stored (Observation.note, beside the note stored, which stays)" in warned, warned
    again = post(http, _potassium("PF38-5C", "20261203123000", tag, "5.0", "P", tube="PF38S5B", **_REDRAWN))
    assert b"MSA|AA" in again, again
    assert _read(http, f"Observation/{obs['id']}")["note"] == after["note"]
    (warned,) = [e for e in err_lines(again) if "taken back only" in e]
    assert "note" not in warned, warned


# --- a site's file: the old list form keeps its meaning, the new form is checked -------------------------------


def _site_text(line: str) -> str:
    text = (DEFAULTS_DIR / "merge.yaml").read_text(encoding="utf-8")
    assert text.count(_SHIPPED) == 1
    return text.replace(_SHIPPED, line)


def test_the_list_form_and_the_inverted_form_as_the_merge_reads_them(tmp_path: Path) -> None:
    """The list names what stands (notback37's meaning, nothing inverted); the mapping what is merged --
    ``merged: []`` (nothing) loads too."""
    for line, stands, merged in ((_OLD, {"issued", "effectiveDateTime", "effectivePeriod"}, None),
                                 (_SHIPPED, set(), {"result", "identifier", "basedOn"}),
                                 ("      stands_with: {merged: []}\n", set(), set())):
        path = tmp_path / "merge.yaml"
        path.write_text(_site_text(line), encoding="utf-8")
        status = MergeRules(load_merge_file(path)).plan("DiagnosticReport", "ORU").elements["status"]
        assert (status.stands_with, status.merged_with) == (stands, merged), (line, status)


@pytest.mark.parametrize("line", ["      stands_with: {merged: result}\n", "      stands_with: {kept: [issued]}\n",
                                  "      stands_with: {}\n"])
def test_an_inverted_form_the_schema_does_not_take_is_refused_at_its_line(tmp_path: Path, line: str) -> None:
    path = tmp_path / "merge.yaml"
    path.write_text(_site_text(line), encoding="utf-8")
    with pytest.raises(SiteError) as refused:
        load_merge_file(path)
    text = path.read_text(encoding="utf-8")
    at = text[:text.index(line)].count("\n") + 1
    assert f"{path}:{at}:" in str(refused.value) and "stands_with" in str(refused.value), refused.value


@pytest.fixture(scope="module")
def old_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, TestClient]]:
    """An engine over a site whose merge.yaml still says ``stands_with: [issued, "effective[x]"]``."""
    root = tmp_path_factory.mktemp("pfix38-old-site")
    site = root / "site"
    site.mkdir()
    (site / "merge.yaml").write_text(_site_text(_OLD), encoding="utf-8")
    with served(root / "var", site) as world:
        yield world


def test_a_sites_old_list_keeps_its_meaning(old_site: tuple[object, TestClient]) -> None:
    """Through a real engine over that site: the report's times stand with its final status, and only they --
    the site's file says nothing else stands, so the P's interpreter is taken as it was before (the site
    decides; its W names the times alone)."""
    eng, http = old_site
    before = _first(eng, http, "6")
    ack = post(http, _interpreted(_potassium("PF38-6B", "20261203120000", "PF386", "5.0", "P", tube="PF38S6A",
                                             **_REDRAWN), "D002&李&四"))
    assert b"MSA|AA" in ack, ack
    after = _read(http, f"DiagnosticReport/{before['id']}")
    assert (after["status"], after["effectiveDateTime"], after["issued"]) == (
        "final", before["effectiveDateTime"], before["issued"]), after
    assert [r.get("display") for r in after["resultsInterpreter"]] == ["李四"], after
    warned = _report_warning(ack)
    assert "effectiveDateTime" in warned and "resultsInterpreter" not in warned, warned


_OBR32 = '  - {field: 32, type: NDL, target: "resultsInterpreter[]"}'


@pytest.fixture(scope="module")
def deleting_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, TestClient]]:
    """An engine over a site whose OBR template makes OBR-32 ``""`` delete the interpreter (``null_deletes``:
    its LIS unsigns a report so) -- no shipped OBR field deletes, so the site's copy of the template does."""
    root = tmp_path_factory.mktemp("pfix38-deleting-site")
    template = (DEFAULTS_DIR / "hl7v2" / "diagnosticreport.yaml").read_text(encoding="utf-8")
    assert template.count(_OBR32) == 1
    (root / "site" / "hl7v2").mkdir(parents=True)
    (root / "site" / "hl7v2" / "diagnosticreport.yaml").write_text(
        template.replace(_OBR32, _OBR32[:-1] + ", null_deletes: true}"), encoding="utf-8")
    with served(root / "var", root / "site") as world:
        yield world


def test_a_kept_out_p_deleting_the_interpreter_keeps_it(deleting_site: tuple[object, TestClient]) -> None:
    """Over MLLP. The control: F signed by 张三, then the LIS's later F with OBR-32 ``""``: the site's delete is
    taken (the report names no interpreter). Then F signed by 张三 and the LIS's later P with OBR-32 ``""``: a
    statement kept out deletes nothing either -- 张三 stays, and the W names the delete it did not take."""
    eng, http = deleting_site
    before = _first(eng, http, "7")
    (ack,) = mllp(eng, _interpreted(_potassium("PF38-7B", "20261203120000", "PF387", "4.1", "F", tube="PF38S7A"),
                                    '""').encode())
    assert b"MSA|AA" in ack, ack
    assert "resultsInterpreter" not in _read(http, f"DiagnosticReport/{before['id']}")
    before = _first(eng, http, "8")
    (ack,) = mllp(eng, _interpreted(_potassium("PF38-8B", "20261203120000", "PF388", "5.0", "P", tube="PF38S8A"),
                                    '""').encode())
    assert b"MSA|AA" in ack, ack
    after = _read(http, f"DiagnosticReport/{before['id']}")
    assert after["resultsInterpreter"] == before["resultsInterpreter"], after
    assert 'resultsInterpreter "" (a delete)' in _report_warning(ack), err_lines(ack)


def test_what_a_site_merges_of_a_kept_out_p_adds_and_never_replaces(tmp_path: Path) -> None:
    """A site's step ``merged: [note, bodySite]`` (notback37's site test's): the merge (``combine``, the rules
    read from the site's file) adds the P's note beside the final's, and keeps the final's body site -- one
    value, nothing to add beside: it stands with the status, and the W names it so (a change of a final is a
    correction's); a body site the final did not state is the P's to fill."""
    text = (DEFAULTS_DIR / "merge.yaml").read_text(encoding="utf-8")
    step = "{from: [final, corrected, amended], to: [registered, preliminary], merged: [note]}"
    assert text.count(step) == 1
    path = tmp_path / "merge.yaml"
    path.write_text(text.replace(step, step.replace("[note]", "[note, bodySite]")), encoding="utf-8")
    rules = MergeRules(load_merge_file(path))
    left, right = {"text": "左臂"}, {"text": "右臂"}
    final = {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "钾"},
             "valueQuantity": {"value": 4.1}, "bodySite": left, "note": [{"text": "危急值已电话通知"}]}
    p = {**final, "status": "preliminary", "valueQuantity": {"value": 5.0}, "bodySite": right, "note": [{"text": "溶血"}]}
    combined = rules.combine(final, p, "ORU")
    out = combined.resource
    assert (out["status"], out["valueQuantity"], out["bodySite"]) == ("final", {"value": 4.1}, left), out
    assert out["note"] == [{"text": "危急值已电话通知"}, {"text": "溶血"}], out
    (warned,) = [i["diagnostics"] for i in combined.issues if "taken back only" in i["diagnostics"]]
    assert warned.startswith("Observation.status, Observation.bodySite, Observation.valueQuantity:"), warned
    unsited = {k: v for k, v in final.items() if k != "bodySite"}
    assert rules.combine(unsited, p, "ORU").resource["bodySite"] == right
