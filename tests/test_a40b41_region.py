"""a40b41: an ID number whose area code python-stdnum's division table lists without a county (320905 in 1962) --
the registration stating it was answered AE 207 "conversion failed: KeyError: 'county'" (found building the bench's
store). Now read as any number of an area the table does not know (``nationalid._region_known``)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.identity.nationalid import parse
from engine.settings import Settings
from tests.hl7_calls import post
from tests.test_rvidentity32_probes import _nid, adt, patients

NUMBER = _nid("32090519620303012")


def test_a_number_of_an_area_listed_without_a_county_is_filed(settings: Settings) -> None:
    assert parse(NUMBER).number == NUMBER
    with Engine(settings) as engine, TestClient(create_app(engine), raise_server_exceptions=False) as http:
        http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("a40b41", "system/*.cruds")
        ack = post(http, adt("RG1", f"RG1^^^FNXRMYY^MR~{NUMBER}^^^^NNCHN", "岳^丙", "19620303", "F"))
        assert ack_code_of(ack) == "AA", ack
        assert len(patients(http, NUMBER)) == 1
