"""rvprivprobe27: review of privprobe27's admin remit (``/admin/fidelity``, ``/health``, ``/metrics``).

Real HL7 over ``POST /hl7v2`` from two hospitals, real tokens, real HTTP through FastAPI's app.
"""

from __future__ import annotations

from typing import Any

from engine.messages import QUARANTINED
from tests.test_privprobe27_admin import _unmapped
from tests.test_rvrvops26_quarantine_access import _post, _quarantined, _refused_message

A, B = "FNXRMYY", "FNZYY"


def _bound_system(engine: Any, institution: str, scopes: str = "system/*.cruds") -> dict[str, str]:
    """A hospital system bound to ``institution`` (``huren client add --institution``): the token
    carries the institution as the client-credentials grant writes it; README's example client
    ``his-fnylwsy --scope system/*.cruds --institution FNYLWSY`` holds MessageHeader r and c."""
    token, _ = engine.auth.issue_token(subject=f"his-{institution.lower()}", kind="system",
                                       client_id=f"his-{institution.lower()}", scopes=scopes.split(),
                                       extra={"institution": institution})
    return {"Authorization": f"Bearer {token}"}


def test_a_hospital_bound_system_client_is_kept_to_its_hospital_on_admin(engine: Any, http: Any) -> None:
    """A system client bound to hospital A (another hospital's system as far as B's records go:
    ``confidentiality.withheld_codes`` withholds R/V from it) passes ``require_operator`` with
    ``system/*.cruds`` and ``audit_remit`` is None for every system client, so on /admin it is shown B's
    refused messages (list, raw text with the patient's name), B's unmapped codes with their example
    message ids and B's counts, and may replay B's message. The remit privprobe27 put on fidelity,
    health and metrics (and opsfix26 on the quarantine) holds for a staff session only."""
    _post(engine, http, _unmapped(A, "RVPPA1", "ZZRVA1"))
    _post(engine, http, _unmapped(B, "RVPPB1", "ZZRVB1"))
    assert _post(engine, http, _refused_message(B, "RVPP-B-R", "赵^机密")) == "AE"
    assert _post(engine, http, _refused_message(A, "RVPP-A-R")) == "AE"
    other = _quarantined(engine, "RVPP-B-R")["_id"]
    bound = _bound_system(engine, A)
    seen = {
        "list": {m["facility"] for m in http.get("/admin/quarantine", headers=bound).json()["items"]},
        "show": http.get(f"/admin/quarantine/{other}", headers=bound).status_code,
        "fidelity": set(http.get("/admin/fidelity", headers=bound).json()["institutions"]),
        "health": http.get("/admin/health", headers=bound).json()["checks"]["quarantined"],
        "metrics": http.get("/admin/metrics", headers=bound).json()["messages"][QUARANTINED],
    }
    assert seen == {"list": {A}, "show": 404, "fidelity": {A}, "health": 1, "metrics": 1}, seen
