"""rvlead27: review of 837d89cd (a writer citing a result of huren's form it may not read is refused 422).

The refusal reads the cited results through ``results_cited(new)`` without the server's base URL, while
the mark (``ResultLabels.mark``) reads them with it: an absolute reference on this server to a feed's R
result is not judged by the refusal, yet the mark gives the writer's record R -- the existence oracle
the commit closed (404 read-back against 200) stays open by writing the reference absolute."""

from __future__ import annotations

from engine.repository.ids import deterministic_id
from tests.test_labelmark27_results import labels_of, w  # noqa: F401  (the module world: real HL7 in)


def test_an_absolute_reference_to_a_feeds_r_result_tells_it_from_a_made_up_one(w):  # noqa: F811
    token, _ = w.engine.auth.issue_token(subject="his-fnzyy-w2", kind="system", client_id="his-fnzyy-w2",
                                         scopes=["system/*.cruds"], extra={"institution": "FNZYY"})
    h = w.h(token)
    report = w.report("FNXRMYY-LIS-000201")
    result = report["result"][6]["reference"]
    w.label(result, "R")
    base = w.engine.repository.base_url.rstrip("/")
    made_up = f"Observation/{deterministic_id('FNXRMYY', 'Observation', 'RVL27-NOT-SENT|1')}"
    model = w.http.get(f"/fhir/{report['result'][0]['reference']}", headers=w.his).json()
    back = {}
    for name, cited in (("real", result), ("made-up", made_up)):
        body = {"resourceType": "Observation", "id": f"rvl27-abs-{name}", "status": "final",
                "code": {"text": "血常规"}, "subject": model["subject"],
                "effectiveDateTime": model["effectiveDateTime"], "performer": model["performer"],
                "hasMember": [{"reference": f"{base}/{cited}"}]}
        put = w.http.put(f"/fhir/Observation/rvl27-abs-{name}", json=body, headers=h)
        got = w.http.get(f"/fhir/Observation/rvl27-abs-{name}", headers=h)
        back[name] = (put.status_code,
                      labels_of(put.json()) if put.status_code < 300 else put.text.replace(cited, "X"),
                      got.status_code)
    assert back["real"] == back["made-up"], back
