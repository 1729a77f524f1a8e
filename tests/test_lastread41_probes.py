"""lastread41: a probe found reading the round's change -- the registrar's word on a number its merge carried read
by arrival, where its word on the record's own fields is read by its own clock (``persons._newest_sent``).

Real HL7 v2 through ``POST /hl7v2``, a FHIR client's edit over ``/fhir``, the real store on each backend."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import engine_and_client, read_patient, registered
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_idlow41_identity import _set
from tests.test_rv41g_probes import _at
from tests.test_rvidentity32_probes import _nid, adt, merge, oru, subjects

both = engine_and_client("lastread41")
MAN = _nid("32092319710303013")  # born 1971-03-03, male


def test_a_carried_number_the_registrar_took_off_by_its_own_clock_is_not_its_word(
        both: tuple[Engine, TestClient]) -> None:
    """The HIS registers 汤申 twice: LR1 with the man's number (M, no PID-7) and LR2 without it; its A08 sent 11:15
    takes the number off LR1 (PID-3 ``""^^^^NNCHN``); its A08 sent 10:15 (still stating it) arrives after (a queue
    replayed); it merges LR1 into LR2 (A40: the number carried). A FHIR client sets LR2 female. By the HIS's own
    clock its last word on LR1's number is none: as in idfix41b's guard (the HIS never stated it), the result naming
    LR2 with the number (汤申申, M) is refused, AE at PID-3."""
    _, http = both
    registered(http, "LR1", "LRa", "汤^申", "", "M", f"~{MAN}^^^^NNCHN")
    survivor = registered(http, "LR2", "LRb", "汤^申", "", "M")
    off = post(http, _at(adt("LRc", 'LR1^^^FNXRMYY^MR~""^^^^NNCHN', "汤^申", "", "M", event="A08"), "20261201111500"))
    assert ack_code_of(off) == "AA", err_lines(off)
    stale = post(http, _at(adt("LRd", f"LR1^^^FNXRMYY^MR~{MAN}^^^^NNCHN", "汤^申", "", "M", event="A08"),
                           "20261201101500"))
    assert ack_code_of(stale) == "AA", err_lines(stale)
    assert ack_code_of(post(http, merge("LRe", "LR2^^^FNXRMYY^MR", "汤^申", "", "M", "LR1^^^FNXRMYY^MR"))) == "AA"
    assert MAN in str(read_patient(http, survivor["id"]).get("identifier")), "the A40 carried no number"
    _set(http, survivor["id"], gender="female")
    ack = post(http, oru("LRf", f"LR2^^^FNXRMYY^MR~{MAN}^^^^NNCHN", "汤^申申", "", "M", "LROBS"))
    assert ack_code_of(ack) == "AE" and subjects(http, "LROBS") == [], err_lines(ack)
