"""A result reference that cannot be read loses only itself when a thinner report is merged.

The merge rules' ``as_far_as`` reads the stored results a re-sent report leaves out in one
``read_many`` (fifteenth round). A reference of a type huren does not know -- an absolute
``http://lab/fhir/Observation/9`` a sender's report listed -- made that read raise (NotFound for
the unknown type, where only a bad id was left out), and the whole read came back empty: the
preliminary UREA the report still lists was not seen, and the report went final while one of its
results was preliminary (a final report is a recognisable prior). Real MLLP, the real store.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_rec15_over_reads import TESTS, report


def test_an_unreadable_reference_does_not_hide_the_others(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    (ack,) = send(engine, report("U1", "U1", {TESTS[0]: "P", TESTS[1]: "P"}))
    assert ack_code_of(ack) == "AA"
    (rep,) = written(engine, fhir, "U1", "DiagnosticReport")
    rep["result"].append({"reference": "http://lab/fhir/Observation/9"})  # as a sender's Bundle may list it
    engine.repository.update({k: v for k, v in rep.items() if k != "meta"})
    (ack,) = send(engine, report("U1B", "U1", {TESTS[0]: "F"}))
    assert ack_code_of(ack) == "AA", ack
    (rep,) = written(engine, fhir, "U1B", "DiagnosticReport")
    assert rep["status"] == "preliminary", rep  # the UREA it still lists is preliminary
