"""privleft28: a refused V message's reason on the quarantine list is scrubbed as ``show`` scrubs it.

privfix27 masked OBX-5 and NTE-3 of a refused message whose TXA-18 label is withheld from the caller
on ``GET /admin/quarantine/{id}`` and in the replay's answer, and scrubbed the quoted values from the
reasons there; the list (``GET /admin/quarantine``, which the operator's page ``/ui/quarantine``
shows first) gave every stored reason as it was. And the scrubber knew one quoting only, Python's
(``'阳性' is not a number``): the repository's refusal of what a coded OBX-5 became quotes as JSON
does (``"HIV  POS" is not a valid code``), so ``show`` gave that too.

Real path: a V discharge summary (MDM^T02, TXA-18 V, made-up person and text) from a registered
hospital whose coded OBX-5 is no valid FHIR code, refused (AE) over real HTTP (``POST /hl7v2``); an
operator's page session lists and reads it. The site's own unbound system reads the reason whole, and
a normal (U) copy's reason is shown whole to the operator.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.settings import Settings
from tests.refused_documents import mdm as _mdm
from tests.refused_documents import refused
from tests.test_rvrvops26_quarantine_access import _quarantined, _session

CODE = "HIV  POS"  # two spaces: no valid FHIR code, refused by the repository quoting it
SHOWN = "阳性弱反应"


def _refused(control: str, label: str) -> bytes:
    return (_mdm(control, label, "FNXRMYY").replace(b"OBX|2|NM|", b"OBX|2|CWE|")
            .replace(SHOWN.encode(), f"{CODE}^{SHOWN}^L".encode()))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, TestClient]]:
    bodies = (_refused(control, label) for control, label in (("PL28-V", "V"), ("PL28-U", "U")))
    with refused(Settings(data_dir=tmp_path_factory.mktemp("privleft28q") / "var", http_port=0, mllp_port=0), bodies,
                 ("AE",)) as world:
        yield world


def test_the_list_scrubs_a_v_message_reason_quoting_its_obx5(world: Any) -> None:
    engine, http = world
    stored = _quarantined(engine, "PL28-V")
    assert f'"{CODE}"' in stored["reason"], stored["reason"]  # guard: the stored reason quotes OBX-5
    cookies, _ = _session(engine, "operator", name="it.pl28")
    listed = http.get("/admin/quarantine", cookies=cookies)
    assert listed.status_code == 200, listed.text[:300]
    (item,) = [i for i in listed.json()["items"] if i["control_id"] == "PL28-V"]
    assert CODE not in str(item) and SHOWN not in str(item), item["reason"]
    assert "is not a valid code" in item["reason"] and item["errors"][0]["code"] == "207", item
    shown = http.get(f"/admin/quarantine/{stored['_id']}", cookies=cookies)
    assert shown.status_code == 200 and CODE not in shown.text and SHOWN not in shown.text, shown.json()["reason"]
    # the site's own system (no label withheld) reads the reason whole, on the list and shown
    site = {"Authorization": "Bearer " + engine.auth.issue_system_token("site", "system/*.cruds")}
    whole = [i for i in http.get("/admin/quarantine", headers=site).json()["items"] if i["control_id"] == "PL28-V"]
    assert f'"{CODE}"' in whole[0]["reason"]
    # a normal document's reason is the operator's to read whole
    (normal,) = [i for i in listed.json()["items"] if i["control_id"] == "PL28-U"]
    assert f'"{CODE}"' in normal["reason"], normal["reason"]
