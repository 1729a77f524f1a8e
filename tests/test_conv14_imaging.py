"""An imaging report's OBR groups under one accession (conv14).

A PACS may send one study's report as several OBR groups of one order (one placer number, one
accession: the chest and the mediastinum read apart), each with its impression. The report kept the
first group's conclusion alone -- every later group's impression was lost -- and the order named the
accession and the DICOM modality once per group (two identical ACSN identifiers, two CT codings).
Real bytes over MLLP into the real store, read back through ``/fhir``; each failed on 1cd55c0.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_conv13_orders import PID, written
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)


def ct_report(control: str, impressions: tuple[str, ...]) -> bytes:
    groups = "".join(
        "ORC|RE|ORD-CT|ACC-CT\r"
        f"OBR|{n}|ORD-CT|ACC-CT|CT01^胸部CT平扫^L|||20261201083000|||||||||||ACC-CT||||20261201100000||CT|F\r"
        f"OBX|1|TX|IMP^印象^L||{text}||||||F|||20261201100000\r"
        for n, text in enumerate(impressions, 1))
    return (f"MSH|^~\\&|PACS|FNXRMYY|HUREN|FNYGT|20261201101500||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
            + PID + groups).encode()


def test_every_groups_impression_is_the_reports_conclusion(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    acks = send(engine, ct_report("I1", ("双肺未见明显异常", "纵隔淋巴结稍大", "双肺未见明显异常")),
                ct_report("I2", ("双肺未见明显异常", "纵隔淋巴结稍大")))  # re-sent: nothing added
    assert [ack_code_of(a) for a in acks] == ["AA", "AA"]
    for control in ("I1", "I2"):
        (report,) = written(engine, fhir, control, "DiagnosticReport")
        assert report["conclusion"] == "双肺未见明显异常\n纵隔淋巴结稍大"
        (order,) = written(engine, fhir, control, "ServiceRequest")
        assert [i["value"] for i in order["identifier"] if i["type"]["coding"][0]["code"] == "ACSN"] == ["ACC-CT"]
        assert [c["code"] for c in order["code"]["coding"]] == ["CT01", "CT"]
