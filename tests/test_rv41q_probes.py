"""rv41q probes of a40fix41b's compartment addition (a resident's compartment takes in the survivor a merge carried
her number onto) as a privacy boundary. Real HL7 v2 over ``POST /hl7v2``, the resident's real SMART launch, her
reads over ``/fhir``; both backends."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

import pytest

from adapters.hl7v2.ack import ack_code_of
from engine.settings import Settings
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import read_patient
from tests.test_a40b41_carried import BING, opened
from tests.test_a40fix41_signin import _signed_in
from tests.test_rv41n_probes import _his, _nids, _reads
from tests.test_rvidentity32_probes import _nid, merge, oru


@pytest.mark.parametrize("backend_settings", ["sqlite", "mongomock"], indirect=True)
def test_a_survivor_carrying_two_womens_numbers_is_in_neither_compartment(backend_settings: Settings) -> None:
    """A (number a, a record at 阜宁县中医院 too) and B (number b, a result on her record BX) are two women; the HIS
    merges A's AX into R2 (numberless: R2 now holds a carried) and then B's BX into R2. The second merge is refused
    (W 205 at MRG-1: two valid numbers), so R2 never carries both numbers and A's token does not read B's result.
    Guards a40fix41b's compartment addition: ``_carried_to(key, anchor)`` checks only the survivor's own ``nid_key``
    and person, not other carried numbers, and relies on this refusal."""
    a, b = _nid("32092319620303468"), _nid("32092319620303488")
    with opened(backend_settings) as (engine, http):
        _his(http, "ZQ41Q", "ZQ41Qa", f"~{a}^^^^NNCHN", "13700006661", facility="FNZYY")
        _his(http, "AX41Q", "AX41Qa", f"~{a}^^^^NNCHN", "13700006662")
        bx = _his(http, "BX41Q", "BX41Qa", f"~{b}^^^^NNCHN", "13700006663")
        two = _his(http, "R241Q", "R241Qa", "", "13700006664")
        assert ack_code_of(post(http, oru("BX41Qb", "BX41Q^^^FNXRMYY^MR", *BING, "BX41QOBS"))) == "AA"
        first = post(http, merge("M141Q", "R241Q^^^FNXRMYY^MR", *BING, "AX41Q^^^FNXRMYY^MR"))
        second = post(http, merge("M241Q", "R241Q^^^FNXRMYY^MR", *BING, "BX41Q^^^FNXRMYY^MR"))
        held = read_patient(http, two)
        assert ack_code_of(first) == "AA", err_lines(first)
        assert ack_code_of(second) == "AE" and any("MRG^1" in line for line in err_lines(second)), second
        assert _nids(held) == {a}, held
        seen = _reads(http, _signed_in(http, engine, a), "BX41QOBS")
        assert seen == [], ("A reads B's result", seen, bx)
