"""rvidfix32's probes of idfix32 (the registering application of a record, read through Provenance and
the message store; the kept-apart warning and its fidelity count; a ``|`` in a record number).

Real HL7 over ``POST /hl7v2`` (and batches) into a real store, read back over ``/fhir`` and
``/admin/fidelity``. A probe showing a defect is a strict xfail naming its severity; a probe that
passes guards behaviour worth keeping."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from tests.hl7_calls import err_lines, module_engine, module_http, post  # noqa: F401 -- the module's engine and client
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_rvidentity32_probes import MRN, adt, oru, patients, subjects


def _ops(engine: Engine) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("ops", "system/MessageHeader.cr")}


def _batch(*messages: str) -> str:
    return ("FHS|^~\\&|HIS|FNXRMYY\rBHS|^~\\&|HIS|FNXRMYY\r" + "".join(messages)
            + f"BTS|{len(messages)}\rFTS|1\r")


@pytest.mark.xfail(strict=True, reason="rvidfix32: HIGH a LIS becomes the registering application of an HIS "
                   "MRN it only made a placeholder for, and locks the HIS out of correcting its own record")
def test_a_lis_a08_on_a_result_placeholder_does_not_take_the_his_record(http: TestClient) -> None:
    """A LIS result makes the placeholder of the HIS's MRN FX1 (the HIS has not registered it yet);
    the LIS then sends an A08 under the HIS's own MRN restating it as another person. Whatever the
    engine answers that A08, the HIS (the institution's registration system, whose MRN it is) must
    still be able to correct its record afterwards: its A08 stating the true person is accepted."""
    assert ack_code_of(post(http, oru("FX1A", "FX1^^^FNXRMYY^MR", "钱^一", "19700303", "M", "FX1GLU"))) == "AA"
    post(http, adt("FX1B", "FX1^^^FNXRMYY^MR", "吴^二", "19881212", "F", event="A08", app="LIS"))
    ack = post(http, adt("FX1C", "FX1^^^FNXRMYY^MR", "钱^一", "19700303", "M", event="A08", app="HIS"))
    assert ack_code_of(ack) == "AA", ack
    (record,) = patients(http, f"{MRN}|FX1")
    assert record["name"][0]["text"] == "钱一"
