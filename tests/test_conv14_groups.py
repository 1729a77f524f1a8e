"""What a result message's groups say, kept and not altered (conv14).

- Two OBR groups of one order (one placer and filler number, one test: a lab splitting one test's
  results) each with its own order notes (NTE after OBR): the order kept only the first group's
  notes -- ``Context.put`` adds only what the first group's ServiceRequest did not hold. Every
  group's notes are kept, once each, and a re-sent message adds none.
- Two groups of one report (an OGTT's time points) with the same test: the second group's result
  took the first's key and was merged into it, its value lost. Each is its own result.
- A report's status across messages (``merge.yaml`` DiagnosticReport ``status``, the one table the
  converter reads too). The stored results a message does not carry held the report back for good
  even when they were not other tests' results: a report whose preliminary result's id changed
  (OBX-4 sent only with the final result) stayed preliminary, and so did a cancelled report (OBR-25
  X, no results). Now a stored result of the same test as a carried one is that result said again,
  and a message carrying no result whose OBR-25 names every test of the report states it whole.
  Other results not carried still hold it back (gfix13). A re-sent message stating no status (OBR-25
  and OBX-11 empty: the converter's ``unknown``) took a final report to unknown. With OBR-25 empty,
  a result that will not come (OBX-11 X) or was withdrawn (D) held the report at ``partial``.

Real bytes over MLLP into the real store, read back through ``/fhir``; each failed on 1cd55c0.
"""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from adapters.convert import convert
from adapters.hl7v2.ack import ack_code_of
from adapters.hl7v2.parser import parse
from engine.engine import Engine
from engine.settings import Settings
from mappings.site import DEFAULTS_DIR, Site
from tests.test_conv13_orders import PID, written
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)

MSH = "MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201091500||ORU^R01^ORU_R01|{c}|P|2.5.1\r"
OBR = ("OBR|{n}|ORD-{o}|LAB-{o}|{test}|||20261201083000|||||||20261201083500|BLD"
       "|||||||20261201091000|||{status}\r")


def split(control: str, order: str, first_note: str, second_note: str) -> bytes:
    """One test's results in two groups of one order, each group with its order note."""
    return (MSH.format(c=control) + PID
            + f"ORC|RE|ORD-{order}|LAB-{order}\r" + OBR.format(n=1, o=order, test="SGN^肾功能^L", status="F")
            + f"NTE|1|L|{first_note}\r"
            + "OBX|1|NM|CREA^肌酐^L||78|umol/L|57-111||||F|||20261201090000\r"
            + f"ORC|RE|ORD-{order}|LAB-{order}\r" + OBR.format(n=2, o=order, test="SGN^肾功能^L", status="F")
            + f"NTE|1|L|{second_note}\r"
            + "OBX|1|NM|UREA^尿素^L||5|mmol/L|2-8||||F|||20261201090000\r").encode()


def test_every_group_of_one_order_keeps_its_notes_once(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, split("N1", "N", "标本轻度溶血", "已复查"))
    assert [ack_code_of(a) for a in acks] == ["AA"]
    (request,) = written(engine, fhir, "N1", "ServiceRequest")
    assert request["note"] == [{"text": "标本轻度溶血"}, {"text": "已复查"}]
    # the message re-sent under a new control id, and a group repeating the other's note: no note twice
    acks = send(engine, split("N2", "N", "标本轻度溶血", "已复查"), split("N3", "N", "已复查", "已复查"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    (request,) = written(engine, fhir, "N3", "ServiceRequest")
    assert request["note"] == [{"text": "标本轻度溶血"}, {"text": "已复查"}]


def test_a_note_keeps_every_line_it_repeats(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """NTE-3 repeats (FT: a comment's lines); the order's and the result's notes read only its first."""
    message = (MSH.format(c="L1") + PID + "ORC|RE|ORD-L|LAB-L\r"
               + OBR.format(n=1, o="L", test="CREA^肌酐^L", status="F") + "NTE|1|L|标本溶血~已通知临床\r"
               + "OBX|1|NM|CREA^肌酐^L||78|umol/L|57-111||||F|||20261201090000\r"
               + "NTE|1|L|复查一次~结果相符\r").encode()
    (ack,) = send(engine, message)
    assert ack_code_of(ack) == "AA"
    (request,) = written(engine, fhir, "L1", "ServiceRequest")
    assert request["note"] == [{"text": "标本溶血\n已通知临床"}]
    (found,) = written(engine, fhir, "L1", "Observation")
    assert found["note"] == [{"text": "复查一次\n结果相符"}]


def ogtt(control: str) -> bytes:
    """An OGTT's two time points as two groups of one order and report, each with its GLU result."""
    return (MSH.format(c=control) + PID
            + "ORC|RE|ORD-GT|LAB-GT\r" + OBR.format(n=1, o="GT", test="OGTT^糖耐量^L", status="F")
            + "OBX|1|NM|GLU^葡萄糖^L||5.1|mmol/L|3.9-6.1||||F|||20261201080000\r"
            + "ORC|RE|ORD-GT|LAB-GT\r" + OBR.format(n=2, o="GT", test="OGTT^糖耐量^L", status="F")
            + "OBX|1|NM|GLU^葡萄糖^L||9.8|mmol/L|3.9-7.8||||F|||20261201100000\r").encode()


def test_the_same_test_in_two_groups_of_one_report_is_two_results(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Both groups' GLU made one result key: the second was merged into the first (9.8 at 10:00 lost,
    no warning). A re-sent message makes no third."""
    acks = send(engine, ogtt("G1"), ogtt("G2"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    for control in ("G1", "G2"):
        results = written(engine, fhir, control, "Observation")
        assert sorted((o["valueQuantity"]["value"], o["effectiveDateTime"][11:16]) for o in results) == [
            (5.1, "08:00"), (9.8, "10:00")]
        (done,) = written(engine, fhir, control, "DiagnosticReport")
        assert {r["reference"] for r in done["result"]} == {f"Observation/{o['id']}" for o in results}


def result(control: str, status: str, sub: str = "", value: str = "78") -> bytes:
    """One test (CREA), one group, one result; ``sub``: OBX-4."""
    obx = f"OBX|1|NM|CREA^肌酐^L|{sub}|{value}|umol/L|57-111||||{status}|||20261201090000\r" if value else ""
    return (MSH.format(c=control) + PID + "ORC|RE|ORD-ST|LAB-ST\r"
            + OBR.format(n=1, o="ST", test="CREA^肌酐^L", status=status) + obx).encode()


def report(engine: Engine, fhir: TestClient, control: str) -> dict:  # noqa: F811
    (found,) = written(engine, fhir, control, "DiagnosticReport")
    return found


def test_a_final_report_whose_results_ids_changed_is_final(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, result("S1", "P"), result("S2", "F", sub="1"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    done = report(engine, fhir, "S2")
    assert len(done["result"]) == 2  # the preliminary result stays listed (nothing deleted it)
    assert done["status"] == "final"


def test_a_cancelled_report_is_cancelled_across_messages(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """The lab cancels the order after preliminary results (OBR-25 X, no results: R4 ``cancelled``,
    the measurement not completed): the report is cancelled, not held at preliminary by the results
    the cancel did not repeat; a later final report of it is final."""
    acks = send(engine, result("C1", "P").replace(b"-ST", b"-CX"), result("C2", "X", value="").replace(b"-ST", b"-CX"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    assert report(engine, fhir, "C2")["status"] == "cancelled"
    (request,) = written(engine, fhir, "C2", "ServiceRequest")
    assert request["status"] == "revoked"
    (ack,) = send(engine, result("C3", "F").replace(b"-ST", b"-CX"))
    assert ack_code_of(ack) == "AA"
    assert report(engine, fhir, "C3")["status"] == "final"


def test_a_resend_stating_no_status_leaves_a_final_report_final(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, result("U1", "F").replace(b"-ST", b"-UN"), result("U2", "").replace(b"-ST", b"-UN"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    assert report(engine, fhir, "U2")["status"] == "final"


def test_the_converter_weighs_groups_by_the_merge_rules_order(tmp_path: Path) -> None:
    """One table orders report statuses: a site's ``merge.yaml`` ``progress`` decides the groups of
    one message too (``vocabulary.yaml`` had its own copy, which a site could let drift apart)."""
    from tests.test_conv13_orders import two_groups

    message = parse(two_groups("O1", "F", "P").decode())
    shipped = convert(message, Site.load(Settings()))
    site = tmp_path / "site"
    site.mkdir()
    text = (Path(DEFAULTS_DIR) / "merge.yaml").read_text("utf-8")
    (site / "merge.yaml").write_text(text.replace("preliminary: 3,", "preliminary: 6,"), "utf-8")
    reordered = convert(message, Site.load(Settings(site=site)))
    statuses = [[e["resource"]["status"] for e in c.bundle["entry"] if e["resource"]["resourceType"] == "DiagnosticReport"]
                for c in (shipped, reordered)]
    assert statuses == [["preliminary"], ["final"]]


def panel(control: str, obr25: str, *results: tuple[str, str]) -> bytes:
    """One group of test SGN (filler LAB-SG), OBR-25 ``obr25``; ``results``: (OBX-3 code, OBX-11)."""
    obx = "".join(f"OBX|{n}|NM|{code}^{code}^L||5|mmol/L|2-8||||{status}|||20261201090000\r"
                  for n, (code, status) in enumerate(results, 1))
    return (MSH.format(c=control) + PID + "ORC|RE|ORD-SG|LAB-SG\r"
            + OBR.format(n=1, o="SG", test="SGN^肾功能^L", status=obr25) + obx).encode()


def test_a_result_that_will_not_come_does_not_hold_the_report_back(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """OBR-25 empty, the report as far as its results: F, F and X (cannot be obtained) or D (deleted)
    made a ``partial`` report that could never become final."""
    acks = send(engine, panel("X1", "", ("CREA", "F"), ("UREA", "F"), ("UA", "X")),
                panel("X2", "", ("CREA", "F"), ("UREA", "F"), ("UA", "D")).replace(b"-SG", b"-SD"))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    assert report(engine, fhir, "X1")["status"] == "final"
    assert report(engine, fhir, "X2")["status"] == "final"


def test_a_message_carrying_some_results_speaks_for_those(
        engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """A message carrying some of a report's results speaks for those: CREA re-sent final leaves the
    report as far as urea's stored preliminary result, with OBR-25 empty or F (gfix13's rule, one
    test's results); urea re-sent final under a new id (OBX-4) then makes it final."""
    acks = send(engine, panel("Y1", "", ("CREA", "P"), ("UREA", "P")), panel("Y2", "", ("CREA", "F")),
                panel("Y3", "F", ("CREA", "F")))
    assert [ack_code_of(a) for a in acks] == ["AA", "AA", "AA"]
    assert report(engine, fhir, "Y2")["status"] == "preliminary"
    assert report(engine, fhir, "Y3")["status"] == "preliminary"
    (ack,) = send(engine, panel("Y4", "F", ("UREA", "F")).replace(b"|UREA^UREA^L||", b"|UREA^UREA^L|1|"))
    assert ack_code_of(ack) == "AA"
    assert report(engine, fhir, "Y4")["status"] == "final"
