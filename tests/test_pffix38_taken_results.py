"""pffix38: a report kept final under OBR-25 P keeps out only what its kept-out results alone stated.

pfix38 inverted the report's rule (``merge.yaml`` DiagnosticReport.status ``stands_with: {merged: [result]}``):
every element but the result references stood with a final status kept as stored. That is right when every
result the message lists was kept out (a P after the F: ``not_back``), but the branch is also reached when the
message's results were stored -- a correction (OBX-11 C), a final restated with other words, a new final result
-- and the report then kept its old conclusion, text, document, interpreter and tubes beside results that had
changed (review rv38d HIGH 1-2, MED 3-4). Now the inverted form's ``taken`` (the times) alone stands when some of
the message's results were stored; the words a kept-out result stated are not the report's lines; entries only
the kept-out results named (a re-drawn tube) stay out. A site's file naming an element its resource does not
have under ``stands_with``/``not_back`` is refused at its line (rv38d LOW). Thirty-eighth round, pffix38.

Real HL7 v2 through ``POST /hl7v2`` into the real store on each backend (``tests.module_store``), read back over
``/fhir``; the site files through the real loader.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from mappings.site import DEFAULTS_DIR, SiteError, load_merge_file
from tests.hl7_calls import err_lines, module_http, post, written
from tests.module_store import module_eng
from tests.test_notback37_kept_whole import _REDRAWN
from tests.test_notback37_kept_whole import _result as _potassium
from tests.test_rv38d_probes import _texts

__all__ = ["engine", "module_http"]

engine = module_eng

_FINDINGS, _FINAL = "双肺纹理清晰。", "心肺膈未见明显异常。"


def _film(tag: str, control: str, stamp: str, obr25: str, findings: tuple[str, str], impression: tuple[str, str],
          placer: bool = True) -> str:
    """The PACS's chest film report PF38X-``tag``, MSH-7 ``stamp``, OBR-25 ``obr25``: findings and impression
    each as (words, OBX-11). ``placer``: ORC-2/OBR-2 stated (else the filler's number alone)."""
    number = f"PF38X-{tag}^HIS" if placer else ""
    return "\r".join([
        f"MSH|^~\\&|PACS|FNXRMYY|HUREN|FNYGT|{stamp}||ORU^R01^ORU_R01|PF38X-{control}|P|2.5.1",
        f"PID|1||PF38X-{tag}M^^^FNXRMYY^MR||孙^七||19680412|M",
        f"ORC|RE|{number}|PF38X-{tag}F^PACS||CM",
        f"OBR|1|{number}|PF38X-{tag}F^PACS|DR001^胸部正位片^L|||20261204090000|||||||||D2001^吴^强|"
        f"|PF38X-{tag}F||||20261204095000||DX|{obr25}",
        f"OBX|1|TX|FINDINGS^检查所见^L||{findings[0]}||||||{findings[1]}|||20261204093000",
        f"OBX|2|TX|IMP^诊断意见^L||{impression[0]}||||||{impression[1]}|||20261204093000"]) + "\r"


def _report_warning(ack: bytes) -> str:
    (warned,) = [e for e in err_lines(ack) if "DiagnosticReport.status" in e]
    assert "|W|" in warned and warned.split("|")[2] == "OBR^1^25", warned
    return warned


def test_a_correction_beside_a_kept_out_draft_reaches_the_words_and_the_draft_does_not(
        engine: Engine, http: TestClient) -> None:
    """Final film, then the PACS's message under OBR-25 P correcting the findings (OBX-11 C: 右肺纹理增粗。) and
    sending a draft re-read of the impression (OBX-11 P: 右肺上叶结节。). The correction is stored and reaches the
    report's text and its document; the draft is kept out of the impression result and so of the conclusion and
    the text (its words are no line of them), and the report stays final with its times."""
    assert b"MSA|AA" in post(http, _film("M1", "M1A", "20261204100000", "F", (_FINDINGS, "F"), (_FINAL, "F")))
    (report,) = written(engine, http, "PF38X-M1A", "DiagnosticReport")
    ack = post(http, _film("M1", "M1B", "20261204120000", "P", ("右肺纹理增粗。", "C"), ("右肺上叶结节。", "P")))
    assert b"MSA|AA" in ack, ack
    after = http.get(f"/fhir/DiagnosticReport/{report['id']}").json()
    results = [http.get(f"/fhir/{r['reference']}").json() for r in after["result"]]
    assert sorted((o["status"], o["valueString"]) for o in results) == [
        ("corrected", "右肺纹理增粗。"), ("final", _FINAL)], results
    assert (after["status"], after["conclusion"]) == ("final", _FINAL), after
    assert after["issued"] == report["issued"], (after, report)
    text = base64.b64decode(after["presentedForm"][0]["data"]).decode()
    assert text == f"右肺纹理增粗。\n{_FINAL}", text
    assert _texts(http, after["id"]) == [text]
    warned = _report_warning(ack)
    assert "conclusion" not in warned and "presentedForm" not in warned, warned
    (draft,) = [e for e in err_lines(ack) if e.split("|")[2] == "OBX^2^11"]
    assert "Observation.valueString" in draft and "|W|" in draft, draft


def test_a_correction_under_obr25_p_is_said_and_the_times_stand(engine: Engine, http: TestClient) -> None:
    """F 4.1 of tube A signed by 张三, then the LIS's correction 4.3 (OBX-11 C) under OBR-25 P, signed by 李四,
    with a later OBR-22: the report takes 李四 (who signed what it now lists) and keeps its final status and
    its times (the status stands, so do they: ``taken``); the W at OBR-25 names the times alone -- not the
    interpreter, which was stored."""
    first = _potassium("PF38-C1A", "20261204100000", "PF38C1", "4.1", "F", tube="PF38SC1A")
    assert b"MSA|AA" in post(http, _signed(first, "D001&张&三"))
    (report,) = written(engine, http, "PF38-C1A", "DiagnosticReport")
    later = _potassium("PF38-C1B", "20261204120000", "PF38C1", "4.3", "C", tube="PF38SC1A", obr25="P",
                       issued="20261204115000")
    ack = post(http, _signed(later, "D002&李&四"))
    assert b"MSA|AA" in ack, ack
    after = http.get(f"/fhir/DiagnosticReport/{report['id']}").json()
    assert [r.get("display") for r in after["resultsInterpreter"]] == ["李四"], after
    assert (after["status"], after["issued"]) == ("final", report["issued"]), after
    warned = _report_warning(ack)
    assert "issued" in warned and "resultsInterpreter" not in warned, warned


def test_a_kept_out_p_alone_still_keeps_everything_but_its_results(engine: Engine, http: TestClient) -> None:
    """The guard of pfix38's rule beside the above: the P alone (every result it lists kept out) leaves the
    interpreter and the tube list as the final stated them, and the W names both."""
    first = _potassium("PF38-K1A", "20261204100000", "PF38K1", "4.1", "F", tube="PF38SK1A")
    assert b"MSA|AA" in post(http, _signed(first, "D001&张&三"))
    (report,) = written(engine, http, "PF38-K1A", "DiagnosticReport")
    later = _potassium("PF38-K1B", "20261204120000", "PF38K1", "5.0", "P", tube="PF38SK1B", **_REDRAWN)
    ack = post(http, _signed(later, "D002&李&四"))
    assert b"MSA|AA" in ack, ack
    after = http.get(f"/fhir/DiagnosticReport/{report['id']}").json()
    assert [r.get("display") for r in after["resultsInterpreter"]] == ["张三"], after
    assert after["specimen"] == report["specimen"], after
    warned = _report_warning(ack)
    assert "resultsInterpreter" in warned and "specimen" in warned, warned


def _signed(message: str, interpreter: str) -> str:
    """``message`` with OBR-32 (the principal result interpreter, NDL: ID&family&given) stated."""
    lines = message.split("\r")
    at = next(i for i, line in enumerate(lines) if line.startswith("OBR|"))
    lines[at] += "|" * 7 + interpreter
    return "\r".join(lines)


_SHIPPED = '      stands_with: {merged: [result, identifier, basedOn], taken: [issued, "effective[x]"]}\n'
_STEP = "{from: [final, corrected, amended], to: [registered, preliminary], merged: [note]}"


@pytest.mark.parametrize(("old", "new", "name"), [
    (_SHIPPED, '      stands_with: {merged: [reslt], taken: [issued, "effective[x]"]}\n', "reslt"),
    (_SHIPPED, '      stands_with: {merged: [result], taken: [isued]}\n', "isued"),
    (_SHIPPED, '      stands_with: [issued, "efective[x]"]\n', "efective[x]"),
    (_SHIPPED, '      stands_with: [issued, _issued]\n', "_issued"),
    (_STEP, "{from: [final, corrected, amended], to: [registered, preliminary], merged: [notes]}", "notes")])
def test_a_site_naming_an_element_its_resource_lacks_is_refused_at_its_line(
        tmp_path: Path, old: str, new: str, name: str) -> None:
    """A site's merge.yaml whose ``stands_with`` (either form) or ``not_back`` ``merged`` names an element the
    R4 resource does not have is refused at load, naming the file, the line and the name: ``merged: [reslt]``
    had silently made every element stand, new final results unlisted too (review rv38d LOW)."""
    text = (DEFAULTS_DIR / "merge.yaml").read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path = tmp_path / "merge.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(SiteError) as refused:
        load_merge_file(path)
    at = text[:text.index(old)].count("\n") + 1
    assert f"{path}:{at}:" in str(refused.value) and repr(name) in str(refused.value), refused.value


def test_the_shipped_names_and_a_sites_right_ones_load(tmp_path: Path) -> None:
    """The control: the shipped file, and a site's with other real names (``value[x]`` a choice), load."""
    load_merge_file(DEFAULTS_DIR / "merge.yaml")
    text = (DEFAULTS_DIR / "merge.yaml").read_text(encoding="utf-8")
    path = tmp_path / "merge.yaml"
    path.write_text(text.replace(_SHIPPED, '      stands_with: {merged: [result, specimen], taken: ["effective[x]"]}\n')
                    .replace(_STEP, "{from: [final], to: [preliminary], merged: [note, \"value[x]\"]}"), encoding="utf-8")
    rules = load_merge_file(path)
    assert rules["resources"]["DiagnosticReport"]["status"]["stands_with"] == {
        "merged": ["result", "specimen"], "taken": ["effective[x]"]}



@pytest.mark.parametrize("later", ["F", "P"])
def test_a_kept_out_ps_placer_number_links_the_report_to_its_order(engine: Engine, http: TestClient, later: str) -> None:
    """A final film stored without a placer number (ORC-2/OBR-2 empty), then the PACS's later message stating
    one: a final (the control) or a draft kept out (OBR-25 P, both OBX-11 P). The order the placer number names
    is stored either way, and the report is linked to it (``basedOn``) either way: which order a report answers
    is who asked for it, not part of the statement kept out (``merged: [result, identifier, basedOn]``; review
    rv38d LOW) -- a kept-out P had left the report linked to none but the filler's order, while its own words,
    interpreter and tubes stand as before (the W at OBR-25 does not name the link)."""
    tag = f"L{later}"
    assert b"MSA|AA" in post(http, _film(tag, f"{tag}A", "20261204100000", "F", (_FINDINGS, "F"), (_FINAL, "F"),
                                         placer=False))
    (report,) = written(engine, http, f"PF38X-{tag}A", "DiagnosticReport")
    ack = post(http, _film(tag, f"{tag}B", "20261204120000", later, (_FINDINGS, later), ("右肺上叶结节。", later)))
    assert b"MSA|AA" in ack, ack
    (order,) = [o for o in written(engine, http, f"PF38X-{tag}B", "ServiceRequest")
                if any(i["value"] == f"PF38X-{tag}" for i in o.get("identifier", ()))]
    after = http.get(f"/fhir/DiagnosticReport/{report['id']}").json()
    assert {"reference": f"ServiceRequest/{order['id']}"} in after["basedOn"], (order["id"], after)
    assert all(ref in after["basedOn"] for ref in report["basedOn"]), after
    if later == "P":
        assert (after["status"], after["conclusion"]) == ("final", _FINAL), after
        warned = _report_warning(ack)
        assert "conclusion" in warned and "basedOn" not in warned, warned



def _two_groups(control: str, stamp: str, tag: str, potassium: tuple[str, str, str], sodium: tuple[str, str, str],
                signer: str, **kw: str) -> str:
    """The LIS's message of filler number NB37F``tag``, two groups: potassium and sodium, each (value, OBX-11
    and OBR-25, its tube's SPM-2), both signed by ``signer`` (OBR-32)."""
    k, k_status, k_tube = potassium
    lines = _signed(_potassium(control, stamp, tag, k, k_status, tube=k_tube, **kw), signer).rstrip("\r").split("\r")
    obr = next(line for line in lines if line.startswith("OBR|")).split("|")
    na, na_status, na_tube = sodium
    obr[1], obr[4], obr[25] = "2", "NA^钠^L", na_status
    lines += ["|".join(obr), f"OBX|1|NM|NA^钠^L||{na}|mmol/L|135-145|N|||{na_status}",
              f"SPM|1|{na_tube}^LIS||BLD^全血^L|||||||||||||{obr[7]}"]
    return "\r".join(lines) + "\r"


def test_a_kept_out_ps_tube_stays_out_beside_a_correction_of_another_tube(engine: Engine, http: TestClient) -> None:
    """Potassium and sodium final on tube A (one filler number, two groups), then the LIS's message: potassium P
    of a re-drawn tube B (kept out) and a correction of sodium (OBX-11 C) measured on tube C. The report lists
    both corrected and kept results, takes tube C (the corrected result's specimen) and not tube B, which only
    the kept-out P named, and names 李四, who signed the correction (OBR-32), though the P's OBX-16 named him
    too; the W at OBR-25 names tube B as not stored."""
    assert b"MSA|AA" in post(http, _two_groups("PF38-T1A", "20261204100000", "PF38T1", ("4.1", "F", "PF38ST1A"),
                                               ("140", "F", "PF38ST1A"), "D001&张&三"))
    (report,) = written(engine, http, "PF38-T1A", "DiagnosticReport")
    assert len(report["result"]) == 2 and len(report["specimen"]) == 1, report
    ack = post(http, _two_groups("PF38-T1B", "20261204120000", "PF38T1", ("5.0", "P", "PF38ST1B"),
                                 ("138", "C", "PF38ST1C"), "D002&李&四",
                                 **{k: v for k, v in _REDRAWN.items() if k != "note"}))
    assert b"MSA|AA" in ack, ack
    after = http.get(f"/fhir/DiagnosticReport/{report['id']}").json()
    results = {o["code"]["coding"][0]["code"]: o for o in (http.get(f"/fhir/{r['reference']}").json()
                                                            for r in after["result"])}
    assert (results["K"]["status"], results["NA"]["status"]) == ("final", "corrected"), results
    tubes = {s["reference"]: http.get(f"/fhir/{s['reference']}").json()["identifier"][0]["value"]
             for s in after["specimen"]}
    assert sorted(tubes.values()) == ["PF38ST1A", "PF38ST1C"], (tubes, after)
    assert results["NA"]["specimen"] in after["specimen"], (results["NA"], after)
    assert after["status"] == "final", after
    # (李四 signed the correction too: the kept-out P's OBX-16 naming him takes nothing of that away)
    assert [r.get("display") for r in after["resultsInterpreter"]] == ["李四"], after
    warned = _report_warning(ack)
    assert "specimen" in warned and "kept out alone" in warned and "resultsInterpreter" not in warned, warned
