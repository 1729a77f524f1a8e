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
from engine.messages import message_id
from tests.test_cfix13_orders import two_tests
from tests.test_conv13_orders import PID, written
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)


def test_the_same_test_named_without_its_display_keeps_the_reports_coding(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    same = two_tests("D1", "F", "F").replace("UREA^尿素^L".encode(), b"CREA^^L")
    (ack,) = send(engine, same)
    assert ack_code_of(ack) == "AA"
    (report,) = written(engine, fhir, "D1", "DiagnosticReport")
    assert [(c.get("system"), c["code"]) for c in report["code"]["coding"]][0][1] == "CREA"


def one_test(control: str, number: str, test: str, status: str) -> bytes:
    """One ORU carrying one group of ``two_tests(number, ...)``: the same placer and filler numbers."""
    value = "78|umol/L|57-111" if test.startswith("CREA") else "5|mmol/L|2-8"
    return (f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201101500||ORU^R01^ORU_R01|{control}|P|2.5.1\r" + PID
            + f"ORC|RE|ORD-{number}|LAB-{number}\r"
            + f"OBR|1|ORD-{number}|LAB-{number}|{test}|||20261201083000|||||||20261201083500|BLD"
              f"|||||||20261201101000|||{status}\r"
            + f"OBX|1|NM|{test}||{value}||||{status}|||20261201100000\r").encode()


def test_a_later_message_with_some_groups_neither_advances_nor_recodes_the_shared_report(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, two_tests("K1", "P", "P"), one_test("K1B", "K1", "CREA^肌酐^L", "F"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    (report,) = written(engine, fhir, "K1B", "DiagnosticReport")
    # urea's result is still preliminary: the report is not final, and it is still the panel
    assert report["status"] == "preliminary"
    assert "coding" not in report["code"] and "尿素" in report["code"]["text"]
    assert len(report["result"]) == 2
    # the urea result, sent final now, makes every listed result final: so is the report
    acks = send(engine, two_tests("K1D", "F", "F").replace(b"LAB-K1D", b"LAB-K1").replace(b"ORD-K1D", b"ORD-K1"))
    assert [ack_code_of(a) for a in acks] == ["AA"]
    (report,) = written(engine, fhir, "K1D", "DiagnosticReport")
    assert report["status"] == "final"


def test_a_result_naming_only_another_test_under_the_number_does_not_recode_its_order(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """UREA alone takes the number's key CREA's order holds: refused at OBR-4, nothing written,
    kept for replay; CREA's order and the panel report stand as they were."""
    acks = send(engine, two_tests("K2", "P", "F"), one_test("K2B", "K2", "UREA^尿素^L", "F"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AE"]
    (err,) = [s.decode().split("|") for s in acks[1].split(b"\r") if s.startswith(b"ERR|")]
    assert err[2] == "OBR^1^4" and err[3].startswith("205^") and err[4] == "E"
    assert "another test" in err[8] and "CREA" in err[8] and "UREA" in err[8]
    doc = engine.ingestor.messages.get(message_id("FNXRMYY", "K2B"))
    assert doc is not None and doc["status"] == "quarantined" and not doc.get("resources")
    orders = {c["code"]: o for o in written(engine, fhir, "K2", "ServiceRequest") for c in o["code"]["coding"]}
    assert orders["CREA"]["status"] == "active" and orders["UREA"]["status"] == "completed"
    (report,) = written(engine, fhir, "K2", "DiagnosticReport")
    assert report["status"] == "preliminary" and "coding" not in report["code"]
    # the same result re-sent with both groups is stored
    (ack,) = send(engine, two_tests("K2C", "F", "F").replace(b"LAB-K2C", b"LAB-K2").replace(b"ORD-K2C", b"ORD-K2"))
    assert ack_code_of(ack) == "AA"
    (report,) = written(engine, fhir, "K2C", "DiagnosticReport")
    assert report["status"] == "final"
