"""acsn43: OBX-18 (equipment instance) repetitions after the first -- Observation.device is 0..1, the first
analyser is kept -- are counted for the operator (``/admin/fidelity``, kind ``field``, ``OBX-18(2)``), on the
ordinary path and from a compiled plan alike; they had been dropped without a count (fam42, rv42d LOW).

FNXRMYY's LIS potassium, real bytes over ``POST /hl7v2`` into a real engine and store on each backend
(``module_eng``: SQLite, mongomock), read back over ``/fhir`` and ``/admin/fidelity``."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from tests.hl7_calls import err_lines, post
from tests.module_store import module_eng, module_eng_http  # noqa: F401 -- the module's engine and client, each backend

HDR = "MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|{stamp}+0800||ORU^R01^ORU_R01|{control}|P|2.5.1|||AL|NE|CHN|UNICODE UTF-8\r"


def _elr(control: str, mrn: str, value: str, device: str) -> str:
    return (HDR.format(stamp="20261201091500", control=control)
            + f"PID|1||{mrn}^^^FNXRMYY^MR||王^十四||19900114|F\r"
            f"OBR|1|P{mrn}|F{mrn}|ACSN43K^钾^L|||20261201083000||||||||BLD|||||||20261201091000|||F\r"
            f"OBX|1|NM|ACSN43K^钾^L||{value}|mmol/L|3.5-5.5|N|||F|||20261201083000||||{device}\r")


def _counted(http: TestClient) -> int:
    r = http.get("/admin/fidelity", params={"institution": "FNXRMYY"})
    assert r.status_code == 200, r.text
    inst = r.json()["institutions"].get("FNXRMYY") or {}  # (none until the institution's first message)
    return int((inst.get("codes") or {}).get("field", {}).get("OBX-18(2)", 0))


def test_a_second_analyser_is_counted_not_dropped_without_a_word(http: TestClient) -> None:
    before = _counted(http)
    # one analyser: nothing counted
    assert ack_code_of(post(http, _elr("ACSN43D0", "ACSN43D0", "4.0", "AU5800-1^LIS"))) == "AA"
    assert _counted(http) == before
    # two: the first is the result's device, the second counted -- the same shape again (a plan learnt by now)
    for n, (control, value) in enumerate((("ACSN43D1", "4.1"), ("ACSN43D2", "4.2"), ("ACSN43D3", "4.3")), 1):
        ack = post(http, _elr(control, control, value, "AU5800-1^LIS~AU5800-2^LIS"))
        assert ack_code_of(ack) == "AA" and err_lines(ack) == [], ack
        assert _counted(http) == before + n
        found = http.get("/fhir/Observation", params={"code": "ACSN43K", "value-quantity": value}).json()
        (obs,) = [e["resource"] for e in found["entry"] if e["resource"]["subject"]["reference"].startswith("Pat")
                  and e["resource"]["valueQuantity"]["value"] == float(value)]
        assert obs["device"]["identifier"]["value"] == "AU5800-1", obs
