"""A correction deletes on the compiled plan path what it deletes on the ordinary one (forty-third round, plan43;
review rv43a MED 1/2).

A result's conversion may say a delete beside its content: HL7's explicit null ``""`` in OBX-16 (the observers,
``obx_observation.yaml`` ``null_deletes``) or in OBX-25 (the medical director, ``elr_fields.director``). A compiled
plan makes the content and reports the unmapped codes again, nothing said beside them: since plan42 keyed plans by
OBX-25's text, the first correction of such a shape at a site deleted and every later one (another patient, another
day) kept what the LIS withdrew. Now a plan keeps the deletes its first conversion said of its result and says them
again of each result it makes (``plans.Plan.deletes``): a feed sending ``""`` for an observer it does not name keeps
its plans (not planning such results cost ~2.4x the instructions of the panel).

The differential: each correction of the corpus is sent, after its final (a stored version before), to a site that
never met its shape (the ordinary path) and to one that learnt it from two other patients' finals and corrections
(the plan path, for what is plannable); the stored results (every version's content) and what the conversion said
of them (``Conversion.said``: deletes, located fields) must be equal -- and the plannable cases must be planned
(``Conversion.planned``), or the comparison would compare the ordinary path with itself. Real bytes through
``POST /hl7v2`` into the real store, both backends.

Two sites a module and backend (suite45c: each case had opened both, 60 engines): each case sends under a tag of its
own (``C<n>``) before its test codes, record numbers and control IDs -- a plan is keyed by the test's description
(OBX-3 among it), so a case's shape is one neither site met before it, as on the fresh sites it had.
"""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.convert import Conversion
from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.settings import Settings
from tests.conftest import settings_for_backend
from tests.hl7_calls import post
from tests.test_a40b41_carried import opened
from tests.test_rvidentity32_probes import patients

OBSERVER = "3001^周^技师"
DIRECTOR = "2001^王^主任"
LAB = "金域医学检验所^^^^^^^^^JY001"
# the panel: (code, name, type, final's value, correction's value, unit, range)
PANEL = (
    ("P43K", "钾", "NM", "4.1", "4.3", "mmol/L", "3.5-5.5"),
    ("P43NA", "钠", "NM", "140", "138", "mmol/L", "137-147"),
    ("P43ABO", "血型", "CWE", "A^A型^99ABO", "B^B型^99ABO", "", ""),
    ("P43TXT", "镜检", "ST", "未见异常", "可见少量红细胞", "", ""),
)

# a case: the final's OBX fields, the correction's, and how many of its correction's results are planned on a site
# that learnt the shape (0: a shape the ordinary path keeps -- an observer named beside the director)
Case = tuple[dict[int, str], dict[int, str], int]
CORPUS: dict[str, Case] = {
    "value-corrected": ({}, {}, len(PANEL)),
    "obx16-null": ({16: OBSERVER}, {16: '""'}, len(PANEL)),
    "obx16-null-director-kept": ({16: OBSERVER, 25: DIRECTOR}, {16: '""', 25: DIRECTOR}, len(PANEL)),
    "obx16-null-nothing-stored": ({}, {16: '""'}, len(PANEL)),
    "obx25-null": ({25: DIRECTOR}, {25: '""'}, len(PANEL)),
    "obx25-null-observer-kept": ({16: OBSERVER, 25: DIRECTOR}, {16: OBSERVER, 25: '""'}, 0),
    "obx16-obx25-null": ({16: OBSERVER, 25: DIRECTOR}, {16: '""', 25: '""'}, len(PANEL)),
    "obx25-null-obx23": ({23: LAB, 25: DIRECTOR}, {23: LAB, 25: '""'}, len(PANEL)),
    "obx25-null-obx19": ({19: "20261201085500", 25: DIRECTOR}, {19: "20261201095500", 25: '""'}, len(PANEL)),
    "obx25-changed": ({25: DIRECTOR}, {25: "2002^李^主任"}, len(PANEL)),
    "obx25-not-restated": ({25: DIRECTOR}, {}, len(PANEL)),
    "obx8-null": ({8: "H"}, {8: '""'}, 2),  # (OBX-8 of the numbers alone: the coded and the text planned)
    "obx7-null": ({}, {7: '""'}, len(PANEL)),
    "obx17-null": ({17: "ISE^离子选择电极^L"}, {17: '""'}, len(PANEL)),
    "obx19-null": ({19: "20261201085500"}, {19: '""'}, len(PANEL)),
}


def _message(control: str, mrn: str, status: str, fields: dict[int, str], tag: str = "") -> str:
    """FNXRMYY's LIS panel for MRN ``mrn``: a final (``F``, the first values) or a correction (``C``, the second),
    every OBX with ``fields`` (OBX-8 N unless stated), its test codes ending in ``tag`` (a case's; rv43e's none)."""
    lines = []
    for i, (code, name, vt, final, corrected, unit, rng) in enumerate(PANEL, 1):
        obx = ["OBX", str(i), vt, f"{code}{tag}^{name}^L", "", final if status == "F" else corrected, unit, rng,
               "N" if vt == "NM" else "", "", "", status, "", "", "20261201090000"]
        for n, text in fields.items():
            if n == 8 and vt != "NM":
                continue
            obx += [""] * (n + 1 - len(obx))
            obx[n] = text
        lines.append("|".join(obx))
    return (f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261201{control[-6:]}+0800||ORU^R01^ORU_R01|{control}|P|2.5.1|||AL|"
            f"NE|CHN|UNICODE UTF-8\rPID|1||{mrn}^^^FNXRMYY^MR||王^十三||19900113|F\r"
            f"OBR|1|P{mrn}|F{mrn}|P43PANEL^生化^L|||20261201083000||||||||BLD|||||||20261201091000|||{status}\r"
            + "\r".join(lines) + "\r")


def _captured(engine: Engine) -> list[Conversion]:
    """Every conversion the engine's ingest makes from now on, in order (the ingestor's own ``convert``)."""
    made: list[Conversion] = []
    real: Callable[..., Conversion] = engine.ingestor.convert

    def keeping(*args: Any, **kwargs: Any) -> Conversion:
        conversion = real(*args, **kwargs)
        made.append(conversion)
        return conversion

    engine.ingestor.convert = keeping
    return made


def _corrected(http: TestClient, made: list[Conversion], mrn: str, case: str, n: int) -> Conversion:
    """``mrn``'s final, then its correction (message ``n``'s control ids), both AA, under the case's tag (its record
    number, control ids and test codes); the correction's conversion."""
    final, correction, _ = CORPUS[case]
    tag = _tag(case)
    assert ack_code_of(post(http, _message(f"{tag}P43F{n}091500", tag + mrn, "F", final, tag))) == "AA"
    assert ack_code_of(post(http, _message(f"{tag}P43C{n}101500", tag + mrn, "C", correction, tag))) == "AA"
    return made[-1]


def _tag(case: str) -> str:
    """The case's own tag: ``C`` and its place in the corpus."""
    return f"C{sorted(CORPUS).index(case):02d}"


Site = tuple[Engine, TestClient, list[Conversion]]


@pytest.fixture(scope="module", params=["sqlite", "mongomock"])
def sites(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, Site]]:
    """The module's two sites on the backend ``request.param``: the one that never meets a case's shape before the
    case's own correction (the ordinary path), and the one that learns it from two other patients first (the plan
    path); each with its client and every conversion its ingest made (``_captured``)."""
    root = tmp_path_factory.mktemp("plan43")
    settings = Settings(data_dir=root / "var", http_port=0, mllp_port=0)
    with settings_for_backend(request.param, settings) as chosen:
        other = chosen.with_(data_dir=root / "learnt",
                             **({"mongodb_db": "plan43_learnt"} if chosen.mongodb_uri else {}))
        with opened(chosen) as (engine, http), opened(other) as (learnt, learnt_http):
            yield (engine, http, _captured(engine)), (learnt, learnt_http, _captured(learnt))


def _stored(http: TestClient, mrn: str) -> list[list[dict[str, Any]]]:
    """Every version of each of ``mrn``'s results as stored, oldest first (``lastUpdated`` aside), by code."""
    (patient,) = patients(http, f"urn:huren:mrn:FNXRMYY|{mrn}")
    found = http.get("/fhir/Observation", params={"subject": f"Patient/{patient['id']}"})
    assert found.status_code == 200, found.text
    out = []
    for obs in sorted((e["resource"] for e in found.json()["entry"]), key=lambda o: o["code"]["coding"][0]["code"]):
        history = http.get(f"/fhir/Observation/{obs['id']}/_history")
        assert history.status_code == 200, history.text
        versions = sorted((e["resource"] for e in history.json()["entry"]), key=lambda r: int(r["meta"]["versionId"]))
        for version in versions:
            version["meta"].pop("lastUpdated", None)
        out.append(versions)
    return out


def _observations_said(conversion: Conversion) -> dict[str, Any]:
    return {ref: said for ref, said in conversion.said.items() if ref.startswith("Observation/")}


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_a_correction_is_stored_and_said_the_same_on_the_ordinary_and_the_plan_path(
        sites: tuple[Site, Site], case: str) -> None:
    (_engine, http, made), (_learnt, learnt_http, learnt_made) = sites
    # a site that never met the shape: the ordinary path
    ordinary = _corrected(http, made, "P43X", case, 9)
    assert not [r for r in ordinary.planned if r.startswith("Observation/")], case
    general = _stored(http, _tag(case) + "P43X")
    # the shape learnt from two other patients' corrections
    for n, mrn in enumerate(("P43T1", "P43T2")):
        _corrected(learnt_http, learnt_made, mrn, case, n)
    learnt = _corrected(learnt_http, learnt_made, "P43X", case, 9)
    compiled = _stored(learnt_http, _tag(case) + "P43X")
    assert sorted(learnt.by_reference) == sorted(ordinary.by_reference), case
    assert [len(versions) for versions in general] == [2] * len(PANEL), case
    for before, after in zip(general, compiled, strict=True):
        assert before == after, (case, before, after)
    assert _observations_said(learnt) == _observations_said(ordinary), case
    # (the plannable planned: else the comparison would compare the ordinary path with itself)
    planned = [r for r in learnt.planned if r.startswith("Observation/")]
    assert len([r for r in learnt.by_reference if r.startswith("Observation/")]) == len(PANEL)
    assert len(planned) == CORPUS[case][2], (case, planned)
