"""link36: a stored room or bed a message names by code alone is shown under its ward's current name.

rvfixmix35 LOW 4: a ward renamed through one bed (an A08's PL-9 血液内科 on 301-01) renamed that bed, its room
and the ward, while the ward's other stored beds kept the old name; a transfer by code alone to 301-02 showed
the visit at "血液科病区 301房 02床" beside the room "血液内科 301房" above it. ``engine.wards.place_under_ward``
is the one rule of a room's or bed's name under its ward (wardfix35's new bed and now a stored one): the ward's
current name, then the parts the codes make. The Locations keep what was stored; only what the code-only message
shows follows. Real HL7 over ``POST /hl7v2``, read back over ``/fhir``, on SQLite and mongomock (one engine a
module and backend: each test its own ward codes and visits)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.wards import place_under_ward
from tests.hl7_calls import module_http
from tests.module_store import module_eng
from tests.test_locfix34_locations import engine
from tests.test_wardfix35_wards import _accepted, _adt, _names, _oru, _place

__all__ = ["engine", "module_eng", "module_http"]


def test_a_transfer_by_code_to_a_bed_stored_before_a_rename_shows_the_wards_new_name(http: TestClient) -> None:
    """Beds 301-02 and 301-01 of LK1 named 血液科病区; an A08 through 301-01 renames the ward 血液内科; an A02 by code
    alone to 301-02: the visit shows 血液内科 301房 02床, the chain's room and ward say 血液内科, and the bed's own
    Location keeps the name it was stored with (the feed's words; nothing stated it anew)."""
    _accepted(http, _adt("LK1a", "A01", "L1a", "LK1^301^02^FNXRMYY^^^^^血液科病区"))
    _accepted(http, _adt("LK1b", "A01", "L1b", "LK1^301^01^FNXRMYY^^^^^血液科病区"))
    _accepted(http, _adt("LK1c", "A08", "L1b", "LK1^301^01^FNXRMYY^^^^^血液内科", stamp="20261203083000"))
    _accepted(http, _adt("LK1d", "A02", "L1b", "LK1^301^02^FNXRMYY", "LK1^301^01^FNXRMYY", stamp="20261203090000"))
    display, chain = _place(http, "L1b")
    assert display == "血液内科 301房 02床", (display, _names(chain))
    assert _names(chain) == ["血液科病区 301房 02床", "血液内科 301房", "血液内科"], _names(chain)


def test_a_bed_stored_by_its_codes_before_the_ward_was_named_shows_the_name(http: TestClient) -> None:
    """Bed 301-02 of LK2 first sent by code alone (stored "LK2 301房 02床"), then another bed's A01 names the ward
    血液科病区; a result making a visit at 301-02 by code: the visit shows 血液科病区 301房 02床 -- the same rule as
    a new bed's (wardfix35) -- not the codes."""
    _accepted(http, _adt("LK2a", "A01", "L2a", "LK2^301^02^FNXRMYY"))
    _accepted(http, _adt("LK2b", "A01", "L2b", "LK2^302^01^FNXRMYY^^^^^血液科病区"))
    _accepted(http, _oru("LK2c", "L2c", "LK2^301^02^FNXRMYY"))
    display, chain = _place(http, "L2c")
    assert display == "血液科病区 301房 02床", (display, _names(chain))
    assert _names(chain)[-1] == "血液科病区"


def test_a_ward_never_named_shows_its_stored_beds_by_their_codes(http: TestClient) -> None:
    """Nothing names LK3: a code-only result at its stored bed shows the bed as stored (no name is guessed)."""
    _accepted(http, _adt("LK3a", "A01", "L3a", "LK3^301^02^FNXRMYY"))
    _accepted(http, _oru("LK3b", "L3b", "LK3^301^02^FNXRMYY"))
    display, chain = _place(http, "L3b")
    assert display == "LK3 301房 02床" and _names(chain) == ["LK3 301房 02床", "LK3 301房", "LK3"], chain


def test_a_message_stating_the_name_still_renames(http: TestClient) -> None:
    """A code-only transfer shows the new name; a later A08 stating PL-9 on that bed renames the bed itself (a
    stated name is the sender's word, locfix34): the Location now says it too."""
    _accepted(http, _adt("LK4a", "A01", "L4a", "LK4^301^02^FNXRMYY^^^^^血液科病区"))
    _accepted(http, _adt("LK4b", "A01", "L4b", "LK4^301^01^FNXRMYY^^^^^血液科病区"))
    _accepted(http, _adt("LK4c", "A08", "L4b", "LK4^301^01^FNXRMYY^^^^^血液内科", stamp="20261203083000"))
    _accepted(http, _adt("LK4d", "A02", "L4b", "LK4^301^02^FNXRMYY", "LK4^301^01^FNXRMYY", stamp="20261203090000"))
    display, chain = _place(http, "L4b")
    assert display == "血液内科 301房 02床" and _names(chain)[0] == "血液科病区 301房 02床"
    _accepted(http, _adt("LK4e", "A08", "L4b", "LK4^301^02^FNXRMYY^^^^^血液内科", stamp="20261203100000"))
    display, chain = _place(http, "L4b")
    assert display == "血液内科 301房 02床" and _names(chain) == ["血液内科 301房 02床", "血液内科 301房", "血液内科"]


def test_the_rule_keeps_a_name_not_made_from_the_point_of_care() -> None:
    """``place_under_ward`` alone: a stored name not ending in the parts the codes make stands (None: nothing to
    show but it); a ward named only by its code names nothing; a new bed takes the ward's name."""
    made = "LK5 301房 02床"
    assert place_under_ward(made, "LK5", "血液内科", "血液科病区 301房 02床") == "血液内科 301房 02床"
    assert place_under_ward(made, "LK5", "血液内科", None) == "血液内科 301房 02床"
    assert place_under_ward(made, "LK5", "血液内科", "血液内科 301房 02床") is None  # already so
    assert place_under_ward(made, "LK5", "血液内科", "特需病床") is None
    assert place_under_ward(made, "LK5", "LK5", None) is None
    assert place_under_ward(made, "LK5", None, "血液科病区 301房 02床") is None
    assert place_under_ward("LK5", "LK5", "血液内科", None) is None  # the ward itself
