"""Formatted text's ``\\.sp n\\`` skips n lines (nineteenth round, conv19); over MLLP, read via ``/fhir``.

HL7 v2 chapter 2 (escape sequences in FT): ``.sp <number>`` ends the output line and skips
<number> vertical spaces. huren made one line break of it whatever the number (and kept
``\\.sp 2\\``, the standard's spelling with a space, literally), so the blank lines an imaging
report or a discharge note puts between its sections were lost or garbled.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_conv13_orders import written
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_hl7probe18_values import lab


def test_sp_n_skips_n_lines(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    sent = {
        "SP1": ("所见：肝脏大小正常\\.sp 2\\印象：未见异常", "所见：肝脏大小正常\n\n印象：未见异常"),
        "SP2": ("第一行\\.sp3\\第四行", "第一行\n\n\n第四行"),
        "SP3": ("第一行\\.sp\\第二行", "第一行\n第二行"),
        "SP4": ("第一行\\.sp+2\\第三行", "第一行\n\n第三行"),
        # not a number of lines a report skips: kept as sent, not blown up into a million breaks
        "SP5": ("第一行\\.sp 999999\\第二行", "第一行\\.sp 999999\\第二行"),
        "SP6": ("第一行\\.sp -1\\第二行", "第一行\\.sp -1\\第二行"),
    }
    acks = send(engine, *(lab(control, f"OBX|1|FT|X1^报告^L||{text}|||||F\r") for control, (text, _) in sent.items()))
    assert [ack_code_of(a) for a in acks] == ["AA"] * len(sent), acks
    for control, (_, expected) in sent.items():
        (result,) = written(engine, fhir, control, "Observation")
        assert result["valueString"] == expected, control
