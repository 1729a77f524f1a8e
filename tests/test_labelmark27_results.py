"""labelmark27: a record citing a confidential result is as confidential as that result (twenty-seventh round).

Real path: the example feeds (``examples/feeds``, the project's own invented messages) go in as HL7 v2
over ``POST /hl7v2`` -- 王建国's admission (01) and his 12-result blood counts at two hospitals (02, 14)
-- into one real SQLite store; his hospital's system (a ``system/*.cruds`` client bound to no
institution) then labels results R or V by a FHIR PUT, as privprobe27 found it does, and writes records
citing results. Readers over real HTTP: a hospital system bound to another institution
(``system/*.rs``, R and V withheld), a clinician's page session (R and V withheld), the resident
himself (R shown, V withheld). The report, the panel and the diagnosis citing a withheld result read
as missing, whole -- a report citing only results they may read is shown as before.
"""

from __future__ import annotations

import json

import pytest

from engine.repository.ids import deterministic_id
from engine.result_labels import ResultLabels, results_cited
from tests.citation_world import (
    FEEDS,
    RYY_FEEDS,
    SEC,
    YL_FEEDS,
    as_missing,
    count,
    labels_of,
    opened,
    settings_in,
)


@pytest.fixture(scope="module")
def w(tmp_path_factory):
    with opened(settings_in(tmp_path_factory, "labelmark27"), RYY_FEEDS + YL_FEEDS) as world:
        yield world


def test_a_result_labelled_r_after_the_feed_takes_its_report_along(w):
    """The finding (privprobe27 2, probep25): the feed's report of a result the hospital labels R
    afterwards now carries R -- withheld whole from a bound system and a clinician (read, search by
    its result, its patient's list, ``$everything``), shown to the resident and the hospital."""
    report = w.report("FNXRMYY-LIS-000201")
    assert labels_of(report) == [] and report["meta"]["versionId"] == "1"  # guard: the feed's, unlabelled
    result = report["result"][7]["reference"]  # PLT 96 (L)
    assert labels_of(w.label(result, "R")) == ["R"]
    ref = f"DiagnosticReport/{report['id']}"
    rid = result.split("/")[1]
    for who in (w.bound(), w.clinician()):
        as_missing(w, who, result)  # the result itself (guard: as before)
        as_missing(w, who, ref)
    bound = w.bound()
    assert count(w, bound, f"DiagnosticReport?result={result}") == \
        count(w, bound, "DiagnosticReport?result=Observation/zz-missing-0") == 0
    subject = report["subject"]["reference"]
    listed = w.http.get(f"/fhir/DiagnosticReport?subject={subject}&_count=100", **bound).json()
    assert report["id"] not in json.dumps(listed) and rid not in json.dumps(listed)
    ev = w.http.get(f"/fhir/{subject}/$everything?_count=1000", **bound)
    assert ev.status_code == 200 and report["id"] not in ev.text and rid not in ev.text
    # the resident reads his R report (R restricts disclosure to others), the hospital its label
    mine = w.http.get(f"/fhir/{ref}", **w.resident())
    assert mine.status_code == 200 and labels_of(mine.json()) == ["R"], mine.text[:300]
    stored = w.http.get(f"/fhir/{ref}", headers=w.his).json()
    assert labels_of(stored) == ["R"] and stored["result"] == report["result"]
    assert stored["meta"]["versionId"] == "2"  # one version more: the label, nothing else changed


def test_the_feed_sending_the_report_again_keeps_its_label(w):
    """A re-sent ORU (new MSH-10) states no label: the report and the result keep R (merge rules:
    a feed never lowers ``meta``), and the report is marked again from its results as written."""
    report = w.report("FNXRMYY-LIS-000201")
    assert labels_of(report) == ["R"]  # (the test above)
    raw = (FEEDS / "02_FNXRMYY_ORU_R01_blood_count.hl7").read_bytes().replace(b"FNXRMYY-LIS-000201", b"LM27-RESEND-1")
    assert w.post(raw) in ("AA", "CA")
    again = w.report("FNXRMYY-LIS-000201")
    assert labels_of(again) == ["R"], again["meta"]
    assert labels_of(w.http.get(f"/fhir/{again['result'][7]['reference']}", headers=w.his).json()) == ["R"]
    as_missing(w, w.bound(), f"DiagnosticReport/{again['id']}")


def test_a_record_written_citing_an_r_result_is_labelled_as_it_is_written(w):
    """The mark: the hospital's panel (``hasMember``), calculated value (``derivedFrom``), report
    (``result``) and diagnosis (``evidence.detail``) written citing an R result are stored R, the
    answer to their write says so, and the bound client and the clinician read them as missing; a
    diagnosis citing the (now R) report is R too. One citing an unlabelled result is not labelled."""
    report = w.report("FNXRMYY-LIS-000201")
    r_result = report["result"][7]["reference"]
    plain = report["result"][0]["reference"]
    model = w.http.get(f"/fhir/{plain}", headers=w.his).json()
    base = {k: model[k] for k in ("status", "code", "subject", "effectiveDateTime", "performer")}
    subject = model["subject"]
    made = [
        {"resourceType": "Observation", "id": "lm27-panel", **base, "hasMember": [{"reference": r_result}]},
        {"resourceType": "Observation", "id": "lm27-derived", **base, "valueString": "见关联",
         "derivedFrom": [{"reference": f"{r_result}/_history/2"}]},  # a versioned reference names it too
        {"resourceType": "DiagnosticReport", "id": "lm27-report", "status": "final", "code": {"text": "血小板复核"},
         "subject": subject, "result": [{"reference": plain}, {"reference": r_result}]},
        {"resourceType": "Condition", "id": "lm27-cond", "subject": subject, "code": {"text": "血小板减少"},
         "evidence": [{"detail": [{"reference": r_result}]}]},
        {"resourceType": "Condition", "id": "lm27-cond-report", "subject": subject, "code": {"text": "血小板减少"},
         "evidence": [{"detail": [{"reference": f"DiagnosticReport/{report['id']}"}]}]},
    ]
    for body in made:
        ref = f"{body['resourceType']}/{body['id']}"
        r = w.http.put(f"/fhir/{ref}", json=body, headers=w.his)
        assert r.status_code == 201, r.text[:400]
        assert labels_of(r.json()) == ["R"], (ref, r.json().get("meta"))
        for who in (w.bound(), w.clinician()):
            as_missing(w, who, ref)
    bound = w.bound()
    for param, rtype in (("has-member", "Observation"), ("derived-from", "Observation"),
                         ("evidence-detail", "Condition"), ("result", "DiagnosticReport")):
        assert count(w, bound, f"{rtype}?{param}={r_result}") == \
            count(w, bound, f"{rtype}?{param}=Observation/zz-missing-0") == 0, param
    # guard: citing only an unlabelled result labels nothing (and a label of another kind stays)
    other = {"resourceType": "Observation", "id": "lm27-plain-panel", **base, "hasMember": [{"reference": plain}],
             "meta": {"security": [{"system": SEC, "code": "N"}]}}
    r = w.http.put("/fhir/Observation/lm27-plain-panel", json=other, headers=w.his)
    assert r.status_code == 201 and labels_of(r.json()) == ["N"], r.text[:300]
    assert w.http.get("/fhir/Observation/lm27-plain-panel", **w.bound()).status_code == 200


def test_a_v_label_rises_through_a_panel_to_the_report_citing_it(w):
    """The rise follows a chain: the hospital's report cites its panel, the panel a result of the
    township's blood count; the result labelled V makes the panel V, and the report V (each a
    derived write, in the label's own write) -- withheld from the resident too, as the feed's
    report citing the result is. Before the rise all three were shown to the bound client."""
    township = w.report(_control("14_FNYLWSY_ORU_R01_blood_count_wang.hl7"))
    result = township["result"][0]["reference"]
    model = w.http.get(f"/fhir/{result}", headers=w.his).json()
    base = {k: model[k] for k in ("status", "code", "subject", "effectiveDateTime", "performer")}
    panel = {"resourceType": "Observation", "id": "lm27-v-panel", **base, "hasMember": [{"reference": result}]}
    top = {"resourceType": "DiagnosticReport", "id": "lm27-v-report", "status": "final", "code": {"text": "汇总"},
           "subject": model["subject"], "result": [{"reference": "Observation/lm27-v-panel"}]}
    for body in (panel, top):
        assert w.http.put(f"/fhir/{body['resourceType']}/{body['id']}", json=body, headers=w.his).status_code == 201
    chain = ["Observation/lm27-v-panel", "DiagnosticReport/lm27-v-report", f"DiagnosticReport/{township['id']}"]
    for ref in chain:
        assert w.http.get(f"/fhir/{ref}", **w.bound()).status_code == 200, ref  # guard: shown before
    assert labels_of(w.label(result, "V")) == ["V"]
    for ref in chain:
        assert labels_of(w.http.get(f"/fhir/{ref}", headers=w.his).json()) == ["V"], ref
        for who in (w.bound(), w.clinician(), w.resident()):
            as_missing(w, who, ref)


def _control(name: str) -> str:
    """MSH-10 of an example feed."""
    return (FEEDS / name).read_bytes().split(b"|")[9].decode()


def test_a_label_is_never_lowered_by_its_result_and_a_put_of_the_record_lowers_it(w):
    """Taking the label off the result leaves the records citing it as they are (explicit, record by
    record); a PUT of the report stating no label then lowers it -- unless it still cites a result
    labelled so (the mark gives it again)."""
    report = w.report("FNXRMYY-LIS-000201")
    result = report["result"][7]["reference"]
    ref = f"DiagnosticReport/{report['id']}"
    assert labels_of(w.label(result, None)) == []
    assert labels_of(w.http.get(f"/fhir/{ref}", headers=w.his).json()) == ["R"]
    as_missing(w, w.bound(), ref)
    # the hospital's own report still cites an R result? label one more, then PUT both reports bare
    second = report["result"][1]["reference"]
    w.label(second, "R")
    mine = w.http.get("/fhir/DiagnosticReport/lm27-report", headers=w.his).json()  # cites results 0 and 7
    assert labels_of(w.label(ref, None)) == ["R"]  # still cites result 1, R: marked again
    assert labels_of(w.label(second, None)) == []
    assert labels_of(w.label(ref, None)) == []
    assert w.http.get(f"/fhir/{ref}", **w.bound()).status_code == 200
    assert labels_of(w.label("DiagnosticReport/lm27-report", None)) == [] and labels_of(mine) == ["R"]


def test_results_cited_reads_the_references_r4_builds_a_record_from():
    """The one reading of what a record takes a result's label from (mark, rise, backfill)."""
    dr = {"resourceType": "DiagnosticReport", "id": "d", "result": [{"reference": "Observation/a"},
                                                                   {"reference": "Observation/a/_history/3"},
                                                                   {"reference": "http://h/fhir/Observation/b"},
                                                                   {"display": "no reference"}]}
    assert results_cited(dr, "http://h/fhir") == [("Observation", "a"), ("Observation", "b")]
    obs = {"resourceType": "Observation", "id": "o", "hasMember": [{"reference": "Observation/o"}],
           "derivedFrom": [{"reference": "DocumentReference/doc"}, {"reference": "Observation/c"}]}
    assert results_cited(obs) == [("Observation", "c")]  # itself and a document (document_labels') left out
    cond = {"resourceType": "Condition", "id": "c", "evidence": [{"code": [{"text": "x"}]},
                                                               {"detail": [{"reference": "DiagnosticReport/d"}]}]}
    assert results_cited(cond) == [("DiagnosticReport", "d")]
    assert results_cited({"resourceType": "Encounter", "id": "e", "partOf": {"reference": "Observation/a"}}) == []


def test_the_backfill_runs_once(w):
    """The marker: a second start does not search again (its answer, 0, and the marker's count)."""
    marker = w.engine.store.collection("result_labels").get("-backfilled")
    assert marker is not None and marker["written"] == 0  # a fresh store: nothing to label
    assert ResultLabels(w.engine.repository).backfill() == 0


def test_a_writer_cannot_tell_a_feeds_r_result_by_citing_it(w):
    token, _ = w.engine.auth.issue_token(subject="his-fnzyy-w", kind="system", client_id="his-fnzyy-w",
                                         scopes=["system/*.cruds"], extra={"institution": "FNZYY"})
    h = w.h(token)
    report = w.report("FNXRMYY-LIS-000201")
    result = report["result"][5]["reference"]
    w.label(result, "R")
    made_up = f"Observation/{deterministic_id('FNXRMYY', 'Observation', 'LM27-NOT-SENT|1')}"
    model = w.http.get(f"/fhir/{report['result'][0]['reference']}", headers=w.his).json()
    back = {}
    for name, cited in (("real", result), ("made-up", made_up)):
        body = {"resourceType": "Observation", "id": f"lm27-w-{name}", "status": "final", "code": {"text": "血常规"},
                "subject": model["subject"], "effectiveDateTime": model["effectiveDateTime"],
                "performer": model["performer"], "hasMember": [{"reference": cited}]}
        put = w.http.put(f"/fhir/Observation/lm27-w-{name}", json=body, headers=h)
        got = w.http.get(f"/fhir/Observation/lm27-w-{name}", headers=h)
        back[name] = (put.status_code, labels_of(put.json()) if put.status_code < 300 else put.text.replace(cited, "X"),
                      got.status_code)
    assert back["real"] == back["made-up"], back
