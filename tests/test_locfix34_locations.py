"""locfix34: a later message that sends a ward by its code alone does not rename the stored Location.

deptfix34 found it (its report, "Noticed, left alone"): an A01 names the bed's ward in PV1-3 PL-9
(``XYK^301^02^FNXRMYY^^^^^血液科病区``); a later A08 or result message sends the point of care alone
(``XYK^301^02^FNXRMYY``), and the ward Location was renamed "XYK", the room "XYK 301房", the bed
"XYK 301房 02床", and the visit's location said the code where it had said the name. The name made
from the codes alone is the converter's assumption, not what the message stated: it fills only a
Location stored without a name (``Said.assumed``), and the visit's display of that place follows
(``merge.yaml`` Encounter.location ``displays``). A later message that states another name (PL-9
血液内科) renames the ward; the old name stays in the Location's ``_history``.

Real HL7 over ``POST /hl7v2``, read back over ``/fhir``, on SQLite and mongomock (one engine a module and
backend; each test its own ward code, patient and visit)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from tests.hl7_calls import module_http, post
from tests.module_store import module_eng

__all__ = ["module_eng", "module_http"]


@pytest.fixture(scope="module")
def engine(module_eng: Engine) -> Iterator[Engine]:
    """``module_http``'s engine: the module's, on each backend."""
    yield module_eng


def _adt(control: str, event: str, n: str, pl: str, stamp: str = "20261203080000") -> str:
    pv1 = ["PV1", "1", "I", pl] + [""] * 15 + [f"LF34V{n}"]
    return "\r".join([
        f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|{stamp}||ADT^{event}^ADT_A01|{control}|P|2.5.1",
        f"EVN|{event}|{stamp}",
        f"PID|1||LF34P{n}^^^FNXRMYY^MR||钱^七||19600101|M",
        "|".join(pv1),
    ]) + "\r"


def _oru(control: str, n: str, pl: str) -> str:
    pv1 = ["PV1", "1", "I", pl] + [""] * 15 + [f"LF34V{n}"]
    return "\r".join([
        f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261203100000||ORU^R01^ORU_R01|{control}|P|2.5.1",
        f"PID|1||LF34P{n}^^^FNXRMYY^MR||钱^七||19600101|M",
        "|".join(pv1),
        f"OBR|1|O{control}|L{control}|GLU^血糖^L|||20261203083000||||G|||20261203083500|BLD||||||||20261203091000|||F",
        "OBX|1|NM|GLU^血糖^L||5.6|mmol/L|||||F|||20261203090000",
    ]) + "\r"


def _accepted(http: TestClient, message: str) -> None:
    ack = post(http, message)
    assert b"MSA|AA" in ack, ack


def _visit(http: TestClient, n: str) -> dict[str, Any]:
    found = http.get("/fhir/Encounter", params={"identifier": f"LF34V{n}"}).json().get("entry") or []
    assert len(found) == 1, found
    return found[0]["resource"]


def _chain(http: TestClient, n: str) -> list[dict[str, Any]]:
    """The visit's active place and the Locations above it (bed, room, ward), each read over /fhir."""
    [place] = [p for p in _visit(http, n)["location"] if p.get("status") == "active"]
    ref: str | None = place["location"]["reference"]
    out = []
    while ref:
        loc = http.get(f"/fhir/{ref}")
        assert loc.status_code == 200, loc.text
        out.append(loc.json())
        ref = (loc.json().get("partOf") or {}).get("reference")
    return out


def _names(http: TestClient, n: str) -> list[str]:
    return [loc["name"] for loc in _chain(http, n)]


def _display(http: TestClient, n: str) -> str:
    [place] = [p for p in _visit(http, n)["location"] if p.get("status") == "active"]
    return place["location"]["display"]


NAMED = ["血液科病区 301房 02床", "血液科病区 301房", "血液科病区"]


@pytest.mark.parametrize("later", ["A08", "ORU"])
def test_a_later_message_sending_the_code_alone_keeps_the_wards_name(http: TestClient, later: str) -> None:
    n = "1" if later == "A08" else "2"
    ward = f"XY{n}"
    _accepted(http, _adt(f"LF34-{n}a", "A01", n, f"{ward}^301^02^FNXRMYY^^^^^血液科病区"))
    assert _names(http, n) == NAMED
    assert _display(http, n) == "血液科病区 301房 02床"
    thin = f"{ward}^301^02^FNXRMYY"
    _accepted(http, _adt(f"LF34-{n}b", "A08", n, thin, "20261203090000") if later == "A08"
              else _oru(f"LF34-{n}b", n, thin))
    chain = _chain(http, n)
    assert [loc["name"] for loc in chain] == NAMED, chain
    assert chain[-1]["alias"] == [ward], chain[-1]  # the point of care's code is kept beside the name
    # the visit (and the resident page, which reads this display) still names the ward
    assert _display(http, n) == "血液科病区 301房 02床"


def test_the_ward_sent_alone_by_its_code_keeps_its_name(http: TestClient) -> None:
    _accepted(http, _adt("LF34-3a", "A01", "3", "XY3^^^FNXRMYY^^^^^血液科病区"))
    _accepted(http, _adt("LF34-3b", "A08", "3", "XY3^^^FNXRMYY", "20261203090000"))
    [ward] = _chain(http, "3")
    assert (ward["name"], ward["alias"]) == ("血液科病区", ["XY3"]), ward
    assert _display(http, "3") == "血液科病区"


def test_a_place_first_sent_by_code_is_named_when_a_later_message_names_it(http: TestClient) -> None:
    _accepted(http, _adt("LF34-4a", "A01", "4", "XY4^301^02^FNXRMYY"))
    assert _names(http, "4") == ["XY4 301房 02床", "XY4 301房", "XY4"]
    assert _display(http, "4") == "XY4 301房 02床"
    _accepted(http, _adt("LF34-4b", "A08", "4", "XY4^301^02^FNXRMYY^^^^^血液科病区", "20261203090000"))
    assert _names(http, "4") == NAMED
    assert _display(http, "4") == "血液科病区 301房 02床"


def test_a_later_stated_name_renames_the_ward_and_history_keeps_the_old_one(http: TestClient) -> None:
    _accepted(http, _adt("LF34-5a", "A01", "5", "XY5^301^02^FNXRMYY^^^^^血液科病区"))
    _accepted(http, _adt("LF34-5b", "A08", "5", "XY5^301^02^FNXRMYY^^^^^血液内科", "20261203090000"))
    renamed = ["血液内科 301房 02床", "血液内科 301房", "血液内科"]
    assert _names(http, "5") == renamed
    assert _display(http, "5") == "血液内科 301房 02床"
    # then the code alone again: the new name stays
    _accepted(http, _adt("LF34-5c", "A08", "5", "XY5^301^02^FNXRMYY", "20261203100000"))
    assert _names(http, "5") == renamed
    assert _display(http, "5") == "血液内科 301房 02床"
    ward = _chain(http, "5")[-1]
    versions = http.get(f"/fhir/Location/{ward['id']}/_history").json()["entry"]
    assert sorted({v["resource"]["name"] for v in versions}) == ["血液内科", "血液科病区"], versions


def test_a_chinese_point_of_care_sent_alone_keeps_the_name_pl9_gave_it(http: TestClient) -> None:
    _accepted(http, _adt("LF34-6a", "A01", "6", "血液六^301^02^FNXRMYY^^^^^血液科六病区"))
    _accepted(http, _adt("LF34-6b", "A08", "6", "血液六^301^02^FNXRMYY", "20261203090000"))
    assert _names(http, "6") == ["血液科六病区 301房 02床", "血液科六病区 301房", "血液科六病区"]
    assert _display(http, "6") == "血液科六病区 301房 02床"


def test_building_and_floor_stay_when_a_later_message_leaves_them_out(http: TestClient) -> None:
    _accepted(http, _adt("LF34-7a", "A01", "7", "XY7^301^02^FNXRMYY^^^3^5^血液科病区"))
    assert _chain(http, "7")[0]["description"] == "3号楼 5层"
    _accepted(http, _adt("LF34-7b", "A08", "7", "XY7^301^02^FNXRMYY", "20261203090000"))
    bed = _chain(http, "7")[0]
    assert (bed["name"], bed["description"]) == ("血液科病区 301房 02床", "3号楼 5层"), bed


@pytest.mark.parametrize("order", ["code-first", "named-first"])
def test_one_message_naming_the_ward_in_one_field_names_it(http: TestClient, order: str) -> None:
    """An A02 whose PV1-3 (the new bed) sends the ward by code and whose PV1-6 (the bed left) names it,
    or the other way round: the message states the ward's name, and it is stored -- also over a name
    stored before (a rename), which a code-only field of the same message does not hold back."""
    n = "8" if order == "code-first" else "9"
    ward, named, bare = f"XY{n}", f"XY{n}^301^02^FNXRMYY^^^^^血液内科", f"XY{n}^302^01^FNXRMYY"
    _accepted(http, _adt(f"LF34-{n}a", "A01", n, f"XY{n}^301^02^FNXRMYY^^^^^血液科病区"))
    now, before = (bare, named) if order == "code-first" else (named, bare)
    pv1 = ["PV1", "1", "I", now, "", "", before] + [""] * 12 + [f"LF34V{n}"]
    _accepted(http, "\r".join([
        f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261203090000||ADT^A02^ADT_A02|LF34-{n}b|P|2.5.1",
        "EVN|A02|20261203090000",
        f"PID|1||LF34P{n}^^^FNXRMYY^MR||钱^七||19600101|M",
        "|".join(pv1),
    ]) + "\r")
    chain = _chain(http, n)
    assert chain[-1]["name"] == "血液内科" and chain[-1]["alias"] == [ward], chain[-1]
    # the bed PV1-6 named is the ward's renamed bed; history keeps the first name
    versions = http.get(f"/fhir/Location/{chain[-1]['id']}/_history").json()["entry"]
    assert sorted({v["resource"]["name"] for v in versions}) == ["血液内科", "血液科病区"], versions


def test_a_site_merge_file_from_before_displays_keeps_the_visits_ward_name(tmp_path: Path) -> None:
    """A site's merge.yaml copied before locfix34 names Encounter.location without ``displays``: the key
    is carried from the shipped rule (``mappings.site.CARRIED_KEYS``), as ``history`` is, so its A08s
    sending the ward by code do not rename the visit's bed either. (SQLite: the rule is read at load.)"""
    shipped = (Path(__file__).resolve().parents[1] / "mappings" / "merge.yaml").read_text("utf-8")
    assert shipped.count("               displays: [location],\n") == 1
    site = tmp_path / "site"
    site.mkdir()
    (site / "merge.yaml").write_text(shipped.replace("               displays: [location],\n", ""), "utf-8")
    with Engine(Settings(data_dir=tmp_path / "var", http_port=0, mllp_port=0, site=site)) as eng, \
            TestClient(create_app(eng)) as http:
        http.headers["Authorization"] = "Bearer " + eng.auth.issue_system_token("hl7-tests", "system/*.cruds")
        _accepted(http, _adt("LF34-10a", "A01", "10", "XYA^301^02^FNXRMYY^^^^^血液科病区"))
        _accepted(http, _adt("LF34-10b", "A08", "10", "XYA^301^02^FNXRMYY", "20261203090000"))
        assert _names(http, "10") == NAMED
        assert _display(http, "10") == "血液科病区 301房 02床"
