"""rvprivleft28: the quarantine scrubber misses an OBX-5 the sender wrote with HL7 escapes.

privfix27/privleft28 scrub from a withheld message's reasons every value of the masked fields
quoted as Python or JSON writes it. The values are taken from the raw ER7 text, but the reason
quotes the value the parser read, i.e. with HL7 escapes (``\\T\\`` = ``&``) resolved: a coded
OBX-5 ``HIV\\T\\  POS`` in the text is ``"HIV&  POS" is not a valid code`` in the reason, and the
scrubber, looking for the escaped form, leaves it to the operator (privleft28's own case, its
code written with an escape).

Real path: a V discharge summary (MDM^T02, TXA-18 V, made-up person and text, privfix27's message)
from a registered hospital, its coded OBX-5 no valid FHIR code, refused (AE) over real HTTP; an operator's page session lists and reads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.settings import Settings
from tests.refused_documents import QUOTED, refused
from tests.refused_documents import mdm as _mdm
from tests.test_rvrvops26_quarantine_access import _quarantined, _session

ESCAPED = "HIV\\T\\  POS"  # ER7 for "HIV&  POS" (two spaces: no valid FHIR code)
READ = "HIV&  POS"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, TestClient]]:
    body = (_mdm("RVPL28-V", "V", "FNXRMYY").replace(b"OBX|2|NM|", b"OBX|2|CWE|")
            .replace(QUOTED.encode(), f"{ESCAPED}^{QUOTED}^L".encode()))
    with refused(Settings(data_dir=tmp_path_factory.mktemp("rvprivleft28q") / "var", http_port=0, mllp_port=0), [body],
                 ("AE",)) as world:
        yield world


def test_an_escaped_obx5_quoted_in_the_reason_is_scrubbed(world: Any) -> None:
    engine, http = world
    stored = _quarantined(engine, "RVPL28-V")
    cookies, _ = _session(engine, "operator", name="it.rvpl28")
    shown = http.get(f"/admin/quarantine/{stored['_id']}", cookies=cookies)
    assert shown.status_code == 200, shown.text[:300]
    listed = http.get("/admin/quarantine", cookies=cookies)
    (item,) = [i for i in listed.json()["items"] if i["control_id"] == "RVPL28-V"]
    # guard: the stored reasons do quote the value as read (the site's own system sees them whole)
    assert READ in str(stored), str(stored)[:600]
    assert READ not in shown.text and "HIV&" not in shown.text, shown.json().get("reason")
    assert READ not in str(item) and "HIV&" not in str(item), item.get("reason")
