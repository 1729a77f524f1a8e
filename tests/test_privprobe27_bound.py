"""privprobe27: what a client some labels are withheld from -- a hospital's system bound to another
institution, a clinician's page session -- learns of an R-labelled result through the records citing it.

The example feeds in by real HL7 (``tests/privprobe27_world.py``); one of 李秀英's results is then
re-sent R-labelled by her hospital's system (real HTTP). It reads 404 to the bound client, as a
made-up id does. The unlabelled records citing it -- her own DiagnosticReport (from the feed), and
the records a hospital wrote citing it (``hasMember``, ``derivedFrom``, ``evidence.detail``) -- were
shown with its id, and a search by it (``has-member=``, ``derived-from=``, ``evidence-detail=``)
answered 1 where a made-up id answers 0. Records built from others (``confidentiality.DERIVED``: the
flag and the Provenance) are withheld whole, as before.
"""

from __future__ import annotations

import json

import pytest

from tests.privprobe27_world import build
from tests.test_rvrvops26_quarantine_access import _session

SEC = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
LEFT = ("left (privprobe27, MEDIUM): an unlabelled record citing an R/V record (a DiagnosticReport's result, "
        "an Observation's hasMember/derivedFrom, a Condition's evidence) shows its id to a caller the label "
        "withholds it from who is not a resident (a bound hospital system, a clinician's session), and a "
        "search by that reference confirms it (1 against 0 for a made-up id). A read-time mend (the "
        "reference taken out, SUBSETTED; the search value matching nothing) was written and withdrawn "
        "for its cost: a report read 56 -> ~200 us, a search of 50 reports ~2.5x (README)")


@pytest.fixture(scope="module")
def w(tmp_path_factory):
    for world in build(tmp_path_factory):
        sysh = world.system()
        rid = world.b_refs["Observation"][0]
        obs = world.http.get(f"/fhir/Observation/{rid}", headers=sysh).json()
        obs["meta"] = {"security": [{"system": SEC, "code": "R"}]}
        assert world.http.put(f"/fhir/Observation/{rid}", json=obs, headers=sysh).status_code == 200
        world.r_obs = rid
        world.r_reports = [d["id"] for d in world.engine.repository.search(
            "DiagnosticReport", [("_count", "500")]).resources if f"Observation/{rid}" in json.dumps(d)]
        assert world.r_reports, "the feed's report cites the result"
        yield world


def _bound(w):
    token, _ = w.engine.auth.issue_token(subject="his-fnzyy", kind="system", client_id="his-fnzyy",
                                         scopes=["system/*.rs"], extra={"institution": "FNZYY"})
    return {"headers": w.h(token)}


def _clinician(w):
    cookies, _ = _session(w.engine, "clinician", name="dr.pp27")
    return {"cookies": cookies}


WHO = [pytest.param(_bound, id="bound-system"), pytest.param(_clinician, id="clinician")]


@pytest.mark.parametrize("who", WHO)
def test_the_r_result_and_the_records_built_from_it_read_as_missing(w, who):
    """Guard (holds before and after): the result itself, the flag and the Provenance citing it."""
    how = who(w)
    r = w.http.get(f"/fhir/Observation/{w.r_obs}", **how)
    m = w.http.get("/fhir/Observation/zz-missing-0", **how)
    assert r.status_code == m.status_code == 404
    assert r.text.replace(w.r_obs, "X") == m.text.replace("zz-missing-0", "X")
    for path in ("DetectedIssue/pp27-flag-ab", "Provenance/pp27-prov-ab"):  # (403: a type the role does not read)
        assert w.http.get(f"/fhir/{path}", **how).status_code in (403, 404), path
    for query in (f"Provenance?target=Observation/{w.r_obs}", f"DetectedIssue?implicated=Observation/{w.r_obs}"):
        r = w.http.get(f"/fhir/{query}&_summary=count", **how)
        assert r.status_code == 403 or r.json()["total"] == 0, query



@pytest.mark.xfail(strict=True, reason=LEFT)
@pytest.mark.parametrize("who", WHO)
def test_records_citing_the_r_result_do_not_show_its_id(w, who):
    how = who(w)
    paths = [f"DiagnosticReport/{w.r_reports[0]}", "Observation/pp27-obs-member", "Observation/pp27-obs-derived",
             "Condition/pp27-cond-ab", f"DiagnosticReport?_id={w.r_reports[0]}&_include=DiagnosticReport:result",
             f"Patient/{w.b[0]}/$everything"]
    shown = {p: w.http.get(f"/fhir/{p}", **how) for p in paths}
    shown = {p: r for p, r in shown.items() if r.status_code != 403}  # a type the role does not read
    assert len(shown) >= 4 and all(r.status_code == 200 for r in shown.values()), {p: r.status_code for p, r in shown.items()}
    assert [p for p, r in shown.items() if w.r_obs in r.text] == []



@pytest.mark.xfail(strict=True, reason=LEFT)
@pytest.mark.parametrize("who", WHO)
def test_a_search_by_the_r_results_id_answers_as_for_a_made_up_one(w, who):
    how = who(w)
    totals = {}
    for param, rtype in (("has-member", "Observation"), ("derived-from", "Observation"),
                         ("evidence-detail", "Condition")):
        real = w.http.get(f"/fhir/{rtype}?{param}=Observation/{w.r_obs}&_summary=count", **how)
        fake = w.http.get(f"/fhir/{rtype}?{param}=Observation/zz-missing-0&_summary=count", **how)
        if real.status_code == fake.status_code == 403:  # a type the role does not search
            continue
        totals[param] = (real.json()["total"], fake.json()["total"])
    assert len(totals) >= 2
    assert all(real == fake for real, fake in totals.values()), totals


def test_a_writer_cannot_tell_the_r_result_by_citing_it_and_reading_back(w):
    """Guard for any mend of the above (holds at this tip; the read-time mend of commit "scoped:
    citations of withheld records taken out…" broke it: the reference taken out, SUBSETTED, told a
    guessed id was a withheld record). A writer some labels are withheld from cites the R result and
    a made-up id: both read back alike."""
    token, _ = w.engine.auth.issue_token(subject="his-fnzyy-w", kind="system", client_id="his-fnzyy-w",
                                         scopes=["system/*.cruds"], extra={"institution": "FNZYY"})
    h = w.h(token)
    model = w.http.get(f"/fhir/Observation/{w.b_refs['Observation'][1]}", headers=w.system()).json()
    back = {}
    for name, cited in (("real", w.r_obs), ("fake", "zz-missing-0")):
        body = {"resourceType": "Observation", "id": f"pp27-w-{name}", "status": "final", "code": {"text": "血常规"},
                "subject": model["subject"], "effectiveDateTime": model["effectiveDateTime"],
                "performer": model["performer"], "hasMember": [{"reference": f"Observation/{cited}"}]}
        assert w.http.put(f"/fhir/Observation/pp27-w-{name}", json=body, headers=h).status_code == 201
        got = w.http.get(f"/fhir/Observation/pp27-w-{name}", headers=h).json()
        back[name] = (sorted(t.get("code", "") for t in got["meta"].get("tag", [])), len(got.get("hasMember", [])))
    assert back["real"] == back["fake"], back
