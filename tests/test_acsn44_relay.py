"""A listed relay that stored an order is its placer by the history (forty-fourth round, acsn44; note43).

senders.yaml ``relay_applications`` names an integration platform (``ESB``) that writes its own MSH-3 on every
message it forwards. acsn43c made a relay number nothing: an accession it forwards bare records no assigner, so a
report names the order by it only coded as the order's test -- the safe side of the accession rule. acsn43d asked
whether a relay should then place nothing either (ord40's owner rule reads MSH-3 as sent, so an order the relay
stored first holds every other application's change at OBR-4). Decided: no. Behind a relay the engine cannot know
which application placed the order; an order whose history names no placer takes every application's change (the
owner rule's "nothing in the history to hold it by"), so "a relay places nothing" would let a third application --
the LIS's XO naming chest CT over the head CT -- recode an order the relay forwarded, silently (rv37c, codedoc38).
Held, the change waits for the operator's decision (ord40) with its W 204 -- the safe side of the owner rule. Real
HL7 v2 over ``POST /hl7v2``, the order read back over FHIR, on SQLite and mongomock."""

# ruff: noqa: F811 -- the fixture imported is the tests' argument

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.convert.common import DCM
from tests.test_acsn43_accession import _omi, _order
from tests.test_acsn43d_assigner import _sent, relayed  # noqa: F401 -- a site listing ESB a relay, each backend
from tests.test_rv43e_probes import _as

HELD = [["OBR^1^4", "204^Unknown key identifier^HL70357"]]


def _codes(order: dict) -> list[str]:
    return [c["code"] for c in order["code"]["coding"] if c.get("system") != DCM]


def test_a_relay_that_stored_the_order_is_its_placer(relayed: TestClient) -> None:
    """ESB forwards the order (head CT, CT009). The LIS's XO recoding it (chest CT, CT020) is held at OBR-4 (W 204),
    the order still CT009 -- read as "placed by nobody", the relay's order would have taken it. The relay's own XO
    (the placer's change forwarded) is the order's: CT020."""
    mrn, placer, number = "ACSN44Y", "ACSN44PY", "20261206001"
    omi = _omi("ACSN44Y1", mrn, placer, number, "20261206090000", "1.2.156.4448.1")
    assert _sent(relayed, _as("ESB", omi)) == []
    xo = omi.replace("ORC|NW|", "ORC|XO|").replace("CT009^头颅CT平扫^L", "CT020^胸部CT平扫^L")
    assert [e.split("|")[2:4] for e in _sent(relayed, _as("LIS", xo.replace("|ACSN44Y1|", "|ACSN44Y2|")))] == HELD
    assert _codes(_order(relayed, placer)) == ["CT009"]
    assert _sent(relayed, _as("ESB", xo.replace("|ACSN44Y1|", "|ACSN44Y3|"))) == []
    assert _codes(_order(relayed, placer)) == ["CT020"]


def test_the_placers_change_of_an_imaging_test_replaces_the_test(relayed: TestClient) -> None:
    """Found by acsn44 (MED): the RIS's own XO changing head CT (CT009) to chest CT (CT020) is a change of test,
    stated whole -- the order's test is CT020 alone. ``pacs`` adds the DICOM modality (``DCM CT``) to both, and the
    merge's "same test" for an order message (a coding in common) read the modality as one: the codings were
    unioned and the order named two tests (``merge_rules._modality``)."""
    mrn, placer, number = "ACSN44Z", "ACSN44PZ", "20261206002"
    omi = _omi("ACSN44Z1", mrn, placer, number, "20261206090000", "1.2.156.4448.2")
    assert _sent(relayed, omi) == []
    xo = omi.replace("ORC|NW|", "ORC|XO|").replace("CT009^头颅CT平扫^L", "CT020^胸部CT平扫^L")
    assert _sent(relayed, xo.replace("|ACSN44Z1|", "|ACSN44Z2|")) == []
    assert _codes(_order(relayed, placer)) == ["CT020"]
