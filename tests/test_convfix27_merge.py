"""The mends of the review of convfid27 (twenty-seventh round, convfix27): the neighbours of the
reviewer's tests (tests/test_rvconvfid27_merge.py), each over MLLP and read back through ``/fhir``.

Messages are this file's own (a county hospital, FNXRMYY), shaped after HL7 v2.5.1 chapters 3 and 7.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.merge_rules import API
from engine.settings import Settings
from mappings.site import DEFAULTS_DIR
from tests.test_rvconvfid27_merge import BIRTH_TIME, adt, birth_times, result, send, stored


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, TestClient]]:
    from engine.api.app import create_app

    data = Path(tmp_path_factory.mktemp("convfix27")) / "var"
    with Engine(Settings(data_dir=data, http_port=0, mllp_port=0)) as engine, \
            TestClient(create_app(engine)) as client:
        client.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("reader", "system/*.rs")
        yield engine, client


def test_every_micro_unit_is_listed_with_both_micro_signs() -> None:
    """The Greek mu (U+03BC) and the micro sign (U+00B5) are both written for micro: a spelling listed
    with one and not the other stayed a local unit (``µg/mL``, review of convfid27)."""
    units = yaml.safe_load((Path(DEFAULTS_DIR) / "codes" / "units.yaml").read_text(encoding="utf-8"))
    twins = {"\u03bc": "\u00b5", "\u00b5": "\u03bc"}
    micro = [u for u in units if any(c in u for c in twins)]
    assert micro  # the table has micro spellings to check
    for spelling in micro:
        twin = "".join(twins.get(c, c) for c in spelling)
        assert units.get(twin) == units[spelling], (spelling, twin)


def test_the_same_day_with_another_time_replaces_the_time(served: tuple[Engine, TestClient]) -> None:
    """``when: changed`` keeps the time only for a date alone: the same day with another time (a
    corrected hour) replaces it, and a different day alone still drops it (convfid27's rule)."""
    engine, _ = served
    send(engine, adt("CT1", "A01", "CT01", "20261028083000"))
    send(engine, adt("CT2", "A08", "CT01", "20261028093000", minute="20"))
    (patient,) = stored(served, "CT2", "Patient")
    assert birth_times(patient) == ["2026-10-28T09:30:00+08:00"], patient
    send(engine, adt("CT3", "A08", "CT01", "20261029", minute="25"))
    (patient,) = stored(served, "CT3", "Patient")
    assert patient["birthDate"] == "2026-10-29" and birth_times(patient) == [], patient


def test_a_birth_time_stored_before_the_move_is_kept_by_the_same_day_in_r4s_place(
        served: tuple[Engine, TestClient]) -> None:
    """A Patient stored before convfid27 (the time on Patient.extension) and a date alone of the same
    day: the time is kept, once, on ``_birthDate`` (read there at merge time, ``was``), and the
    other extensions stay on Patient.extension."""
    engine, _ = served
    send(engine, adt("CO1", "A04", "CO01", "19850412083000"))
    (patient,) = stored(served, "CO1", "Patient")
    old = {k: v for k, v in patient.items() if k not in ("_birthDate", "meta")}
    ethnic = {"url": "urn:huren:test:other-extension", "valueString": "汉族"}
    old["extension"] = [{"url": BIRTH_TIME, "valueDateTime": "1985-04-12T08:30:00+08:00"}, ethnic]
    engine.repository.update(old, source=API)  # as 7e6d12a6 stored it
    send(engine, adt("CO2", "A08", "CO01", "19850412", minute="20"))
    (patient,) = stored(served, "CO2", "Patient")
    assert patient["birthDate"] == "1985-04-12"
    assert patient["_birthDate"]["extension"] == [{"url": BIRTH_TIME, "valueDateTime": "1985-04-12T08:30:00+08:00"}]
    assert patient["extension"] == [ethnic], patient


def _performers(obs: dict[str, Any]) -> list[str]:
    return [p.get("reference", "").split("/", 1)[0] or p.get("display", "") for p in obs["performer"]]


def test_obx16_null_keeps_the_performing_organisation_and_an_unreferenced_performer(
        served: tuple[Engine, TestClient]) -> None:
    """OBX-16 ``""`` deletes the observers (Practitioners) alone: the performing organisation stays,
    and so does a performer a FHIR client wrote without a reference (no kind: it is no observer a
    correction's by-``@type`` list replaces)."""
    engine, client = served
    writer = {"Authorization": "Bearer " + engine.auth.issue_system_token("operator", "system/*.cruds")}
    send(engine, result("CP1", "CP01", "OBX|1|NM|CREA^肌酐^L||150|umol/L|57-111|H|||F|||20261101090000||D01^王^明"))
    (obs,) = stored(served, "CP1", "Observation")
    assert sorted(_performers(obs)) == ["Organization", "Practitioner"], obs["performer"]
    obs.pop("meta")
    obs["performer"].append({"display": "检验科 夜班"})
    assert client.put(f"/fhir/Observation/{obs['id']}", json=obs, headers=writer).status_code == 200
    send(engine, result("CP2", "CP01", "OBX|1|NM|CREA^肌酐^L||151|umol/L|57-111|H|||C|||20261101090000",
                        minute="20"))
    (obs,) = stored(served, "CP2", "Observation")
    assert sorted(_performers(obs)) == ["Organization", "Practitioner", "检验科 夜班"], obs["performer"]
    send(engine, result("CP3", "CP01", 'OBX|1|NM|CREA^肌酐^L||152|umol/L|57-111|H|||C|||20261101090000||""',
                        minute="25"))
    (obs,) = stored(served, "CP3", "Observation")
    assert sorted(_performers(obs)) == ["Organization", "检验科 夜班"], obs["performer"]


def test_pv1_7_null_deletes_the_attending_and_keeps_the_other_kinds(served: tuple[Engine, TestClient]) -> None:
    """Keyed on the type's codes, PV1-7 ``""`` still deletes the attending alone (convfid27's
    ``null_deletes``), and a ROL attending of another coding system (table 0443) is another kind."""
    engine, _ = served

    def visit(control: str, event: str, pv1_7: str, minute: str) -> str:
        return (f"MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|2026110109{minute}00||ADT^{event}^ADT_A01|{control}|P|2.5.1\r"
                f"EVN|{event}|2026110109{minute}00\rPID|1||CV01^^^FNXRMYY^MR||张^三||19800101|M\r"
                f"PV1|1|I|W01^101^1^FNXRMYY||||{pv1_7}|D02^李^四|||||||||||VCV01^^^FNXRMYY^VN\r"
                + ("ROL|1|AD|AT^主治医师^HL70443|D03^赵^六\r" if event == "A01" else ""))

    send(engine, visit("CV1", "A01", "D01^王^明", "15"), visit("CV2", "A08", '""', "20"))
    (first,) = stored(served, "CV1", "Encounter")
    (encounter,) = stored(served, "CV2", "Encounter")
    assert encounter["id"] == first["id"]
    kinds = sorted((c["code"], p["individual"]["display"]) for p in encounter["participant"]
                   for t in p.get("type", ()) for c in t.get("coding", ()))
    assert kinds == [("AT", "赵六"), ("REF", "李四")], encounter["participant"]
