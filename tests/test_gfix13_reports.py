"""One report shared by several OBR groups and messages (gfix13, review of cfix13).

- The same test named twice (``CREA^肌酐^L`` then ``CREA^^L``, display left out) is one test: the
  report keeps CREA's coding (recognition reads it), not a panel text without coding.
- A later message carrying only some of a shared report's groups neither advances the report past
  the results it still lists nor replaces the stored panel code with one test's code.
- A later message naming only one test of a number shared by several tests may not recode another
  test's stored order: it is refused (AE, ERR at OBR-4), nothing written, kept for replay.

Real bytes over MLLP into the real store, read back through ``/fhir``; each test failed on 25b7d9b.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_cfix13_orders import two_tests
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)


def test_the_same_test_named_without_its_display_keeps_the_reports_coding(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    same = two_tests("D1", "F", "F").replace("UREA^尿素^L".encode(), b"CREA^^L")
    (ack,) = send(engine, same)
    assert ack_code_of(ack) == "AA"
    (report,) = written(engine, fhir, "D1", "DiagnosticReport")
    assert [(c.get("system"), c["code"]) for c in report["code"]["coding"]][0][1] == "CREA"
