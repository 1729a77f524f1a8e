"""MSH-11 ``D`` (debugging) on a node that declares it (thirtieth round, hl7struct30).

The twenty-ninth round's README left "the processing ID D cannot be declared in HUREN_PROCESSING_IDS" as a
question. Checked here: ``processing.parse_ids`` takes every id of HL7 table 0103 (``P``, ``T``, ``D``), so a
debugging node (``HUREN_PROCESSING_IDS=D``) or one that takes both (``P,D``) can be declared; the default
node (``P``) still refuses ``D`` with AR 202 at ``MSH^1^11``. Real HL7 over a real MLLP socket."""

from __future__ import annotations

from pathlib import Path

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.settings import Settings
from tests.hl7_calls import mllp
from tests.test_hl7mode29 import adt, errs


def node(tmp_path: Path, ids: str | None) -> Engine:
    env = {"HUREN_DATA_DIR": str(tmp_path / "var")}
    if ids is not None:
        env["HUREN_PROCESSING_IDS"] = ids
    return Engine(Settings.from_env(env).with_(http_port=0, mllp_port=0))


def test_a_node_declaring_d_accepts_debugging_messages(tmp_path: Path) -> None:
    with node(tmp_path, "P,D") as eng:
        debugging, production, training = mllp(eng, adt("D1", "D"), adt("D2", "P"), adt("D3", "T"))
    assert (ack_code_of(debugging), ack_code_of(production), ack_code_of(training)) == ("AA", "AA", "AR")


def test_the_default_node_refuses_d(tmp_path: Path) -> None:
    with node(tmp_path, None) as eng:
        (debugging,) = mllp(eng, adt("D4", "D"))
    assert ack_code_of(debugging) == "AR", debugging
    (err,) = errs(debugging)
    assert err[2].startswith("MSH^1^11") and err[3].split("^")[0] == "202", err


def _with(message: bytes, *lines: str) -> bytes:
    return message + "".join(f"{line}\r" for line in lines).encode()


def test_a_segment_outside_the_structure_is_accepted_with_a_warning(tmp_path: Path) -> None:
    with node(tmp_path, None) as eng:
        (ack,) = mllp(eng, _with(adt("S1"), "RXA|0|1|20261201|20261201|08^HepB^CVX|1"))
    assert ack_code_of(ack) == "AA", ack
    assert [e[2].split("^")[0] for e in errs(ack) if e[4] == "W"] == ["RXA"], ack
