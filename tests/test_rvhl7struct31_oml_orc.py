"""Review of hl7struct31 (rvhl7struct31): "after an ORC alone the OBX is that order's, warned" holds for ORU only.

FINDING (LOW): the README row (mappings/hl7v2/README.md) and ``structure.yaml`` say an OBX with neither ORC
nor OBR before it is refused, and that "after an ORC alone it is that order's (a bare ORC group, kept as
before) and warned W 100". In an ``OML^O21`` (v2.4+), an ask-at-order-entry ``OBX`` right after its ``ORC``
(before the ``OBR``) is refused AE 100 "OBX has no OBR (nor any segment of its group
OML_O21_OBSERVATION_REQUEST) before it", because ``_judged`` computes ``alone`` from the innermost group
(OBSERVATION_REQUEST is not ORC's group) while in ``ORU_R01`` ORC and OBR share ORDER_OBSERVATION. The
converter (``results.groups``) attaches this OBX to the ORC's order exactly as it does in the ORU case; on
main (75c4d315) the message was AA and stored. The same shape gets two different answers by structure, and
the stated rule is not what runs. Real MLLP bytes, real engine.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.settings import Settings
from tests.test_hl7mode29 import errs, mllp


@pytest.fixture(scope="module")
def eng(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    root = tmp_path_factory.mktemp("rvstruct31oml")
    with Engine(Settings(data_dir=root / "var", http_port=0, mllp_port=0)) as engine:
        yield engine


def test_an_obx_after_an_orc_alone_in_an_oml_is_warned_as_in_an_oru(eng: Engine) -> None:
    body = ("MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261201091500||OML^O21^OML_O21|OM1|P|2.5.1\r"
            "PID|1||RVOM1^^^FNXRMYY^MR||李^四||19700101|F\rPV1|1|O\r"
            "ORC|NW|POM1\rOBX|1|ST|Q1^fasting^L||yes||||||F\r"
            "OBR|1|POM1||58410-2^CBC panel^LN|||20261201070000\r").encode()
    (ack,) = mllp(eng, body)
    structure = [(e[2], e[4]) for e in errs(ack) if e[3].startswith("100")]
    assert ack_code_of(ack) == "AA" and structure == [("OBX^1", "W")], ack  # now: AE, [("OBX^1", "E")]
