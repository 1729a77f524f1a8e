"""wardfix35: a ward's name, as the store holds it, names its next bed and its report row (rvid35 LOW 3, LOW 4).

LOW 3: a PL sent without PL-9 (``XYK^302^05``) only assumes its Locations' names (locfix34). A new bed or room
of a ward stored with a name (血液科病区) -- or named by another PL of the same message (an A02's PV1-6) -- is
named from that name ("血液科病区 302房 05床", not "XYK 302房 05床"), and a visit's display of a place the
message names by code alone is the name the place has stored (``adapters.convert.actors.settle_ward_names``):
an A02 to a new bed, a result making a new visit at a new or a stored bed, one batch naming the ward first.

LOW 4: one owner of a ward's current name for the reports (``engine.wards.ward_name``): the site's ward table,
else the ward Location's current name as stored (a PL-9 rename renames it), else the latest named tally where
no Location is found -- never the first name stored, frozen.

Real HL7 over ``POST /hl7v2`` (or the ingest handler, for the demo feeds the recognition report counts), read
back over ``/fhir`` and ``GET /reports/duplicates``, on SQLite and mongomock."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.hl7_calls import module_http, post
from tests.module_store import module_eng
from tests.test_locfix34_locations import engine
from tests.test_rvlast34_probes import _feed, _rates, _zhao_order

__all__ = ["engine", "module_eng", "module_http"]

STAMP = "20261203080000"


def _adt(control: str, event: str, n: str, pl: str, prior: str = "", inst: str = "FNXRMYY",
         stamp: str = STAMP) -> str:
    """An ADT of visit WF35V<n> (patient WF35P<n>) at ``pl`` (PV1-3), ``prior`` the bed left (PV1-6)."""
    pv1 = ["PV1", "1", "I", pl, "", "", prior] + [""] * 12 + [f"WF35V{n}"]
    structure = "ADT_A02" if event == "A02" else "ADT_A01"
    return "\r".join([
        f"MSH|^~\\&|HIS|{inst}|HUREN|FNYGT|{stamp}||ADT^{event}^{structure}|{control}|P|2.5.1",
        f"EVN|{event}|{stamp}",
        f"PID|1||WF35P{n}^^^{inst}^MR||钱^七||19600101|M",
        "|".join(pv1),
    ]) + "\r"


def _oru(control: str, n: str, pl: str) -> str:
    """A lab result of visit WF35V<n> at ``pl``: the message that makes the visit when no ADT did."""
    pv1 = ["PV1", "1", "I", pl] + [""] * 15 + [f"WF35V{n}"]
    return "\r".join([
        f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261203100000||ORU^R01^ORU_R01|{control}|P|2.5.1",
        f"PID|1||WF35P{n}^^^FNXRMYY^MR||钱^七||19600101|M",
        "|".join(pv1),
        f"OBR|1|O{control}|L{control}|GLU^血糖^L|||20261203083000||||G|||20261203083500|BLD||||||||20261203091000|||F",
        "OBX|1|NM|GLU^血糖^L||5.6|mmol/L|||||F|||20261203090000",
    ]) + "\r"


def _accepted(http: TestClient, message: str) -> bytes:
    ack = post(http, message)
    assert b"MSA|AA" in ack and b"ERR|" not in ack, ack
    return ack


def _place(http: TestClient, n: str) -> tuple[str, list[dict[str, Any]]]:
    """The visit's active place: its display, and the Locations from it up (bed, room, ward) over /fhir."""
    found = http.get("/fhir/Encounter", params={"identifier": f"WF35V{n}"}).json().get("entry") or []
    [visit] = [e["resource"] for e in found]
    [place] = [p for p in visit["location"] if p.get("status") == "active"]
    ref: str | None = place["location"]["reference"]
    chain = []
    while ref:
        loc = http.get(f"/fhir/{ref}")
        assert loc.status_code == 200, loc.text
        chain.append(loc.json())
        ref = (loc.json().get("partOf") or {}).get("reference")
    return place["location"]["display"], chain


def _names(chain: list[dict[str, Any]]) -> list[str]:
    return [loc["name"] for loc in chain]


NEW_BED = ["血液科病区 302房 05床", "血液科病区 302房", "血液科病区"]


# --- LOW 3: the next bed of a named ward ---------------------------------------------------------------


def test_a_code_only_transfer_alone_names_the_new_bed_from_the_stored_ward(http: TestClient) -> None:
    """An A02 whose PV1-3 sends the new bed by code and that names no prior bed: only the store knows the
    ward's name -- the new bed and room take it, the ward keeps its name and code, the visit shows it."""
    _accepted(http, _adt("WF1a", "A01", "1", "WF1^301^02^FNXRMYY^^^^^血液科病区"))
    _accepted(http, _adt("WF1b", "A02", "1", "WF1^302^05^FNXRMYY", stamp="20261203090000"))
    display, chain = _place(http, "1")
    assert _names(chain) == NEW_BED and display == NEW_BED[0], (display, chain)
    assert chain[-1]["alias"] == ["WF1"], chain[-1]
    assert chain[1]["partOf"]["reference"] == f"Location/{chain[-1]['id']}"


def test_a_result_making_a_visit_at_a_new_bed_of_a_named_ward_names_it(http: TestClient) -> None:
    """One patient's A01 names ward WF2; another's result, the first message of her visit, sends a new bed of
    it by code: the visit the result makes shows the ward's name, and so do the new bed and room."""
    _accepted(http, _adt("WF2a", "A01", "2a", "WF2^301^02^FNXRMYY^^^^^血液科病区"))
    _accepted(http, _oru("WF2b", "2b", "WF2^302^05^FNXRMYY"))
    display, chain = _place(http, "2b")
    assert _names(chain) == NEW_BED and display == NEW_BED[0], (display, chain)


def test_a_result_making_a_visit_at_a_stored_bed_shows_the_beds_stored_name(http: TestClient) -> None:
    """A new visit at a bed stored with its name (an earlier visit's A01 named the ward): the result sends it
    by code, and the visit's display is the bed's stored name, not the codes (no stored entry to keep it from)."""
    _accepted(http, _adt("WF3a", "A01", "3a", "WF3^301^02^FNXRMYY^^^^^血液科病区"))
    _accepted(http, _oru("WF3b", "3b", "WF3^301^02^FNXRMYY"))
    display, chain = _place(http, "3b")
    assert display == "血液科病区 301房 02床" and _names(chain)[0] == display, (display, chain)


def test_a_ward_no_message_named_keeps_its_codes_on_the_next_bed(http: TestClient) -> None:
    """Nothing names WF4: the new bed is named by its codes, as before (no name is guessed)."""
    _accepted(http, _adt("WF4a", "A01", "4", "WF4^301^02^FNXRMYY"))
    _accepted(http, _adt("WF4b", "A02", "4", "WF4^302^05^FNXRMYY", "WF4^301^02^FNXRMYY", stamp="20261203090000"))
    display, chain = _place(http, "4")
    assert _names(chain) == ["WF4 302房 05床", "WF4 302房", "WF4"] and display == "WF4 302房 05床", chain


def test_the_next_bed_of_a_renamed_ward_takes_its_new_name(http: TestClient) -> None:
    """血液科病区, then an A08 stating 血液内科 (a rename, locfix34), then a code-only transfer: the new bed is
    血液内科's; the bed left keeps the name it was given."""
    _accepted(http, _adt("WF5a", "A01", "5", "WF5^301^02^FNXRMYY^^^^^血液科病区"))
    _accepted(http, _adt("WF5b", "A08", "5", "WF5^301^02^FNXRMYY^^^^^血液内科", stamp="20261203083000"))
    _accepted(http, _adt("WF5c", "A02", "5", "WF5^302^05^FNXRMYY", stamp="20261203090000"))
    display, chain = _place(http, "5")
    assert _names(chain) == ["血液内科 302房 05床", "血液内科 302房", "血液内科"], chain
    assert display == "血液内科 302房 05床"


def test_one_batch_naming_the_ward_then_moving_to_a_new_bed_by_code(http: TestClient) -> None:
    """One batch: the A01 naming WF6, then the A02 to a new bed by code: nothing is stored yet when the A02 is
    converted -- the ward's name is the one the batch's A01 leaves."""
    body = ("FHS|^~\\&|HIS|FNXRMYY\rBHS|^~\\&|HIS|FNXRMYY\r"
            + _adt("WF6a", "A01", "6", "WF6^301^02^FNXRMYY^^^^^血液科病区")
            + _adt("WF6b", "A02", "6", "WF6^302^05^FNXRMYY", stamp="20261203090000")
            + "BTS|2\rFTS|1\r")
    ack = post(http, body)
    assert b"MSA|AA|WF6a" in ack and b"MSA|AA|WF6b" in ack, ack
    display, chain = _place(http, "6")
    assert _names(chain) == NEW_BED and display == NEW_BED[0], (display, chain)


def test_another_hospitals_name_for_the_same_code_does_not_name_the_bed(http: TestClient) -> None:
    """FNXRMYY names its WF7 血液科病区; FNZYY's WF7 is another ward (PL-4 empty: its own): its new bed by code
    keeps FNZYY's codes."""
    _accepted(http, _adt("WF7a", "A01", "7a", "WF7^301^02^^^^^^血液科病区"))
    _accepted(http, _adt("WF7b", "A01", "7b", "WF7^302^05", inst="FNZYY"))
    display, chain = _place(http, "7b")
    assert _names(chain) == ["WF7 302房 05床", "WF7 302房", "WF7"] and display == "WF7 302房 05床", chain


def test_a_later_name_stated_for_the_new_bed_still_renames_it(http: TestClient) -> None:
    """The new bed's name made from the ward's is still only assumed: a later A08 stating PL-9 for it
    (血液内科) renames ward, room and bed, as any stated name does."""
    _accepted(http, _adt("WF8a", "A01", "8", "WF8^301^02^FNXRMYY^^^^^血液科病区"))
    _accepted(http, _adt("WF8b", "A02", "8", "WF8^302^05^FNXRMYY", stamp="20261203090000"))
    _accepted(http, _adt("WF8c", "A08", "8", "WF8^302^05^FNXRMYY^^^^^血液内科", stamp="20261203100000"))
    display, chain = _place(http, "8")
    assert _names(chain) == ["血液内科 302房 05床", "血液内科 302房", "血液内科"], chain
    assert display == "血液内科 302房 05床"


# --- LOW 4: the report's name for a ward is its Location's, now ----------------------------------------


def _wards(rates: dict[str, Any], *words: str) -> dict[str, int]:
    return {k: r["recognisable"] for k, r in rates.items() if any(w in k for w in words)}


def _renaming_adt(pl: str) -> bytes:
    return _adt("WF9r", "A08", "9", pl, stamp="20250326080000").encode()


def test_a_ward_renamed_after_its_orders_is_reported_under_its_new_name(backend_settings: Any) -> None:
    """Both orders said 血液科病区 (every tally holds that name); an ADT then renames the ward 血液内科: the report
    names it as the EHR does now -- and a code-only order after it counts in the same row."""
    with Engine(backend_settings) as eng:
        _feed(eng, _zhao_order(1, "XYW^501^01^FNXRMYY^^^^^血液科病区", "20250324"),
              _zhao_order(2, "XYW^502^03^FNXRMYY^^^^^血液科病区", "20250325"))
        assert _wards(_rates(eng), "血液", "XYW") == {"阜宁县人民医院 血液科病区": 2}
        assert b"MSA|AA|" in eng.ingestor.handle(_renaming_adt("XYW^503^01^FNXRMYY^^^^^血液内科"),
                                                 channel="file", peer="file:wf35-rename")
        assert _wards(_rates(eng), "血液", "XYW") == {"阜宁县人民医院 血液内科": 2}
        assert b"MSA|AA|" in eng.ingestor.handle(_zhao_order(3, "XYW^504^01^FNXRMYY", "20250327"),
                                                 channel="file", peer="file:wf35-3")
        assert _wards(_rates(eng), "血液", "XYW") == {"阜宁县人民医院 血液内科": 3}
        assert _wards(_rates(eng, **{"from": "2025-03-24", "to": "2025-03-24"}), "血液", "XYW") == {
            "阜宁县人民医院 血液内科": 1}


def test_a_ward_whose_location_is_not_found_is_named_by_its_latest_tally(backend_settings: Any) -> None:
    """PL-4 names the facility otherwise than the sender's code (FNXRMYY-ZY): the ward Location is keyed by
    that facility, and the report does not find it by (institution, code) -- the latest named tally's name,
    血液内科 (its Location's name when that order was checked), not the first, 血液科病区."""
    with Engine(backend_settings) as eng:
        _feed(eng, _zhao_order(1, "XYZ^501^01^FNXRMYY-ZY^^^^^血液科病区", "20250324"),
              _zhao_order(2, "XYZ^502^03^FNXRMYY-ZY^^^^^血液内科", "20250325"))
        assert _wards(_rates(eng), "血液", "XYZ") == {"阜宁县人民医院 血液内科（外部）": 2}  # (wfix38: not one of its own)


def test_the_site_table_names_a_listed_ward_over_its_locations_name(backend_settings: Any, tmp_path: Any) -> None:
    """wards.yaml lists XYT: its name is the official one, whatever the Location says now."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "wards.yaml").write_text("FNXRMYY:\n  NEI: 心内科病区\n  XYT: 血液病区\n", encoding="utf-8")
    with Engine(backend_settings.with_(site=site)) as eng:
        _feed(eng, _zhao_order(1, "XYT^501^01^FNXRMYY^^^^^血液科病区", "20250324"),
              _zhao_order(2, "XYT^502^03^FNXRMYY^^^^^血液内科", "20250325"))
        assert _wards(_rates(eng), "血液", "XYT") == {"阜宁县人民医院 血液病区": 2}
