"""Full-width and other Unicode digits where HL7 wants ASCII digits (a reviewer's finding, eleventh
round).

Python's ``\\d`` and ``str.isdigit()`` accept ``０``-``９`` and every other Unicode digit, and ``int()``
reads them. So an NM ``０.１０`` went out as the JSON number ``０.１０`` (the validator refused the
message: AE 207 with no segment or field named), a TM ``０８３０`` became ``valueTime "０８:３０:00"``,
and a national ID written in full-width digits passed its check in a form no ASCII copy of it
matches. Now each is what HL7 and the ID's standard say it is not, a number, time or ID: kept as
text with a warning naming its field (a result's value), refused with the reason (an ID). An empty
repetition around an unescaped ``~`` range in OBX-7 (``57-111~``) no longer hides the bounds.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.identity.nationalid import InvalidNationalId, parse
from tests.conftest import NATIONAL_ID
from tests.test_convert11_values import by_code, fhir, lab, send, stored_observations  # noqa: F401
from tests.test_ingest_durability import err_fields


def _value(obs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obs.items() if k.startswith("value")}


def test_full_width_digits_are_kept_as_text_with_a_warning_naming_obx_5(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    ack = send(engine, lab(
        "FW1",
        "OBX|1|NM|CREA^肌酐^L||０.１０|umol/L|57-111|N|||F|||20261101090000",
        "OBX|2|TM|CLOT^凝固时刻^L||０８３０||||||F|||20261101090000",
        "OBX|3|SN|IGE^IgE^L||<^０.１０|kU/L||N|||F|||20261101090000",
        "OBX|4|NM|GLU^葡萄糖^L||5.60|mmol/L|3.9-6.1~|N|||F|||20261101090000",
        "OBX|5|NM|K^钾^L||4.1|mmol/L|~3.5-5.3|N|||F|||20261101090000",
    ))
    assert ack_code_of(ack) == "AA"
    warned = {(e[2], e[-1]) for e in err_fields(ack)}
    located = sorted(e[2] for e in err_fields(ack))
    assert located == ["OBX^1^5", "OBX^2^5", "OBX^3^5"], warned
    observations = stored_observations(engine, fhir, "FW1")
    assert _value(by_code(observations, "CREA")[0]) == {"valueString": "０.１０"}
    assert _value(by_code(observations, "CLOT")[0]) == {"valueString": "０８３０"}
    assert _value(by_code(observations, "IGE")[0]) == {"valueString": "<^０.１０"}
    for code, low, high in (("GLU", 3.9, 6.1), ("K", 3.5, 5.3)):
        (rng,) = by_code(observations, code)[0]["referenceRange"]
        assert (rng["low"]["value"], rng["high"]["value"]) == (low, high)
        assert rng["low"]["code"] == "mmol/L" and "~" not in rng["text"]


def test_a_full_width_timestamp_is_not_read_as_a_date(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """OBX-14 ``２０２６1101090000`` is not an HL7 DTM: the result keeps the order's time (OBR-7)
    and the ACK names OBX-14."""
    ack = send(engine, lab("FW2", "OBX|1|NM|CREA^肌酐^L||78|umol/L|57-111|N|||F|||２０２６1101090000"))
    assert ack_code_of(ack) == "AA"
    assert [e[2] for e in err_fields(ack)] == ["OBX^1^14"]
    (crea, _), = stored_observations(engine, fhir, "FW2")
    assert crea["effectiveDateTime"] == "2026-11-01T08:30:00+08:00"


def test_a_national_id_in_full_width_digits_is_refused_with_its_reason() -> None:
    full_width = NATIONAL_ID.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789"})
    assert parse(NATIONAL_ID).number == NATIONAL_ID
    with pytest.raises(InvalidNationalId, match="ASCII digits"):
        parse(full_width)
    with pytest.raises(InvalidNationalId, match="ASCII digits"):
        parse(full_width[:17] + "X")
