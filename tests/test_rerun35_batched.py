"""rerun35: a re-run panel's results are dated with one Provenance search for all of them (``MergeRules.
_provenances``: ``target=A,B,...``, read once per message write), and a result's value, range and flag
are located at OBX-5/7/8 only when a warning names them (``Said.later``). Neither may change an answer:
each result is still dated by the messages that stated *its* stored version, and the warning names the
very OBX field that stated what was held.

Every test sends real HL7 through ``POST /hl7v2`` into the real store on each backend
(``tests.module_store``) and reads back over ``/fhir``.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.hl7_calls import err_lines, module_http, post, written
from tests.module_store import module_eng

__all__ = ["engine", "module_http"]

engine = module_eng  # each test its own filler numbers and control ids (RR35-...)

# (code, name, unit, range) of the panel's three results
_TESTS = (("GLU", "葡萄糖", "mmol/L", "3.9-6.1"), ("K", "钾", "mmol/L", "3.5-5.3"), ("NA", "钠", "mmol/L", "137-147"))


def _panel(control: str, stamp: str, values: dict[str, tuple[str, str]], order: str,
           ranges: dict[str, str] | None = None) -> str:
    """The LIS's chemistry report of 吴^九 under filler ``order`` at ``stamp``: one OBX per result of
    ``values`` (code -> (value, flag)), in the panel's order, each final."""
    lines = [f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|{stamp}||ORU^R01^ORU_R01|{control}|P|2.5.1",
             f"PID|1||{order}^^^FNXRMYY^MR||吴^九||19680412|M",
             f"ORC|RE|{order}P^HIS|{order}^LIS||CM",
             f"OBR|1|{order}P^HIS|{order}^LIS|CHEM^生化^L|||20261203080000||||||||||||||||CH|F"]
    n = 0
    for code, name, unit, normal in _TESTS:
        if code in values:
            n += 1
            value, flag = values[code]
            normal = (ranges or {}).get(code, normal)
            lines.append(f"OBX|{n}|NM|{code}^{name}^L||{value}|{unit}|{normal}|{flag}|||F|||20261203083000")
    return "\r".join(lines) + "\r"


def _value(http: TestClient, obs_id: str) -> float:
    return http.get(f"/fhir/Observation/{obs_id}").json()["valueQuantity"]["value"]


def _ids(engine: Engine, http: TestClient, control: str) -> dict[str, str]:
    return {o["code"]["coding"][0]["code"]: o["id"] for o in written(engine, http, control, "Observation")}


def test_each_result_of_a_batched_read_is_dated_by_its_own_messages(engine: Engine, http: TestClient) -> None:
    """The panel reported at 10:00; the potassium alone re-run at 12:00; the whole panel re-run by a
    message of 11:00 arriving last. One search reads the three results' Provenances: glucose and sodium,
    stated last at 10:00, take the 11:00 values; potassium, stated at 12:00, is held -- AA, one W at
    OBX^2^5 (its OBX in this message) naming the 12:00 message, its 12:00 value kept."""
    post(http, _panel("RR35-1A", "20261203100000", {"GLU": ("5.6", "N"), "K": ("4.1", "N"), "NA": ("140", "N")},
                      "RR35P1"))
    ids = _ids(engine, http, "RR35-1A")
    assert b"MSA|AA" in post(http, _panel("RR35-1C", "20261203120000", {"K": ("5.6", "H")}, "RR35P1"))
    assert _value(http, ids["K"]) == 5.6
    ack = post(http, _panel("RR35-1B", "20261203110000",
                            {"GLU": ("6.4", "H"), "K": ("4.4", "N"), "NA": ("145", "N")}, "RR35P1"))
    assert b"MSA|AA" in ack, ack
    (err,) = [e for e in err_lines(ack) if "not later" in e]
    f = err.split("|")
    assert f[2] == "OBX^2^5" and f[4] == "W" and "RR35-1C" in err and "20261203120000" in err, err
    assert (_value(http, ids["GLU"]), _value(http, ids["K"]), _value(http, ids["NA"])) == (6.4, 5.6, 145)


def test_a_range_alone_held_is_located_at_its_obx_7(engine: Engine, http: TestClient) -> None:
    """Value and flag the same, the sodium range revised at 12:00; the 10:00 report resent last restates
    the old range: held at OBX^3^7 (the field that stated it), the revised range kept."""
    values = {"GLU": ("5.6", "N"), "K": ("4.1", "N"), "NA": ("140", "N")}
    post(http, _panel("RR35-2A", "20261203100000", values, "RR35P2"))
    ids = _ids(engine, http, "RR35-2A")
    assert b"MSA|AA" in post(http, _panel("RR35-2C", "20261203120000", values, "RR35P2", ranges={"NA": "135-145"}))
    revised = http.get(f"/fhir/Observation/{ids['NA']}").json()
    ack = post(http, _panel("RR35-2R", "20261203100000", values, "RR35P2"))
    assert b"MSA|AA" in ack, ack
    (err,) = [e for e in err_lines(ack) if "not later" in e]
    assert err.split("|")[2] == "OBX^3^7" and "RR35-2C" in err, err
    assert http.get(f"/fhir/Observation/{ids['NA']}").json() == revised


def test_a_later_rerun_of_the_whole_panel_is_taken_without_a_warning(engine: Engine, http: TestClient) -> None:
    """The 12:00 re-run of every result over the 10:00 report: each result later than its own message --
    AA, no warning, every value taken (the batched read finds every result's stamp, none held)."""
    post(http, _panel("RR35-3A", "20261203100000", {"GLU": ("5.6", "N"), "K": ("4.1", "N"), "NA": ("140", "N")},
                      "RR35P3"))
    ids = _ids(engine, http, "RR35-3A")
    ack = post(http, _panel("RR35-3B", "20261203120000",
                            {"GLU": ("6.6", "H"), "K": ("3.2", "L"), "NA": ("150", "H")}, "RR35P3"))
    assert b"MSA|AA" in ack and not err_lines(ack), ack
    assert (_value(http, ids["GLU"]), _value(http, ids["K"]), _value(http, ids["NA"])) == (6.6, 3.2, 150)
