"""lastread1: what the last read of the thirty-ninth round found in the person guard's words (behaviour left as it is).

Real HL7 over ``POST /hl7v2`` into a real store on each backend (``module_eng``), read back over ``/admin/fidelity``."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import engine_and_client, registered
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_mfix34_members import _fnzyy
from tests.test_rvidentity32_probes import _nid, adt

both = engine_and_client("lastread1")


def test_the_member_operators_row_names_the_id_number_reading_in_chinese(both: tuple[Engine, TestClient]) -> None:
    """FNXRMYY registers 韩梅 (F, 1985-05-05, her ID number) under LR1. FNZYY's HIS registers 韩雪 (F, no birth date,
    her own valid ID number) listing FNXRMYY's LR1: name and ID numbers differ -- two people by ``contradicts_all``'s
    third reading alone (same sex, no day to compare) -- refused AE 205 at PID-3 and counted for FNXRMYY's operator
    (``member_refused``). The row's Chinese must say the reason its English says."""
    engine, http = both
    hers, other = _nid("32092319850505002"), _nid("32092319900909024")
    registered(http, "LR1", "LR1A", "韩^梅", "19850505", "F", f"~{hers}^^^^NNCHN")
    ack = post(http, _fnzyy(adt("LR1B", f"ZLR1^^^FNZYY^MR~LR1^^^FNXRMYY^MR~{other}^^^^NNCHN", "韩^雪", "", "F")))
    assert ack_code_of(ack) == "AE", ack
    (err,) = err_lines(ack)
    assert err.split("|")[2].startswith("PID^1^3") and "resident ID numbers differ" in err, err
    ops = engine.auth.issue_system_token("ops", "system/MessageHeader.cr")
    got = http.get("/admin/fidelity", params={"institution": "FNXRMYY"}, headers={"Authorization": f"Bearer {ops}"})
    assert got.status_code == 200, got.text
    (row,) = [i for i in got.json()["institutions"]["FNXRMYY"]["items"] if i.get("count_as") == "member_refused"]
    chinese = row["message"].split("(A sending", 1)[0]
    assert "resident ID numbers differ" in row["message"], row  # (the English names it)
    assert "身份证" in chinese, row
