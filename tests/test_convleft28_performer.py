"""OBX-23, the organisation that performed a test, decides whose QC recognition reads (twenty-eighth
round, convleft28).

DOMAIN.md: a result is recognisable when its institution had passed QC for the item on the result's
date, and the institution whose QC counts is the one that *performed* the test. A county hospital
sends results a regional or member lab performed (OBX-23, XON; the v2-to-FHIR IG maps it to
Observation.performer(Organization)): huren read every result as the sender's, so a test a lab
without QC performed was recognisable on the sender's QC, and a HOSPB repeat of it was flagged not
payable. Now: OBX-23 naming a member institution (by XON-10, as senders are named) is that
institution's result; naming one huren does not know, it is never recognisable (QC unknown: a wrong
"recognisable" costs a hospital money); no OBX-23, the sender's, as before.

Everything goes over MLLP (a real socket) into the store; the order-time check is
``$check-recognition`` over HTTP, the repeat's flag the recognition service's row.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.engine import Engine
from engine.recognition.decision import QC_NOT_PASSED, assess
from tests.performer_site import ROOT, checked, mllp, performer_site, served
from tests.test_hooks11_policy_edges import flag_of
from tests.test_recognition_policy_e2e import CBC, order, ts


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Engine, TestClient]]:
    # the site declares that LABX sends results HOSPC performed, HOSPA results LABX did (the lead's decision, convfix28: only
    # a declared member lends a sender's result its QC); the rest of senders.yaml as shipped
    with performer_site(tmp_path, performers="{LABX: [HOSPC], HOSPA: [LABX]}") as world:
        yield world


def performed(inst: str, placer: str, when: str, obx23: str) -> str:
    """``inst``'s blood count result whose OBX-23 is ``obx23`` (XON)."""
    from tests.test_recognition_policy_e2e import msh, pid
    return (msh(inst, "LIS", "ORU^R01^ORU_R01", when, f"{inst}-ORU-{placer}") + pid(inst)
            + f"OBR|1|{placer}^HIS|F{placer}^LIS|{CBC}|||{when}|||||||||D7^张^医生||||||{when}|||F\n"
            + f"OBX|1|NM|WBC^白细胞^L||6.1|10*9/L|||||F|||{when}|||||||||{obx23}\n")


def prior(engine: Engine, sender: str, obx23: str) -> None:
    """``sender``'s blood count five days ago, performed by whom ``obx23`` names."""
    mllp(engine, order(sender, "A1", CBC, ts(5)), performed(sender, "A1", ts(5, 10), obx23))


def repeat(engine: Engine) -> None:
    """HOSPB's order and blood count today (the repeat the prior may make not payable)."""
    from tests.test_hooks11_policy_edges import result
    mllp(engine, order("HOSPB", "B1", CBC, ts(0, 7)), result("HOSPB", "B1", CBC, ts(0, 9)))


def performers(engine: Engine) -> list[dict[str, object]]:
    found = engine.repository.search("Observation", [("code", "WBC")]).resources
    return [o["performer"][0] for o in found]  # the organisation that performed it stands first


def test_a_member_lab_without_qc_performed_it_not_recognisable(world: tuple[Engine, TestClient]) -> None:
    """HIGH (a payment flag on a result whose performer had no QC): HOSPA sent it, LABX did it."""
    engine, http = world
    prior(engine, "HOSPA", "县临床检验中心^^^^^^XX^^^LABX")
    [who] = performers(engine)
    assert (who["display"], who["identifier"]) == ("县临床检验中心", {"system": "urn:huren:institution",
                                                                      "value": "LABX"})
    assert checked(http, engine, "HOSPB") == []  # was ["HOSPA"]: the sender's QC
    repeat(engine)
    assert flag_of(engine) is None, "HOSPB's repeat of a test LABX performed without QC is payable"


def test_a_member_with_qc_performed_it_recognisable_as_that_member(world: tuple[Engine, TestClient]) -> None:
    """LABX sends (no QC for the blood count), HOSPC performed it (QC passed) and the site declares
    that LABX sends HOSPC's results (senders.yaml ``performers``): HOSPC's result, named by its
    identifier (XON-10; XON-6 is only the identifier's assigning authority, convfix28)."""
    engine, http = world
    prior(engine, "LABX", "镇卫生院^^^^^^XX^^^HOSPC")
    assert checked(http, engine, "HOSPB") == ["HOSPC"]  # was []: LABX's QC
    repeat(engine)
    assert flag_of(engine) is not None


def test_an_unknown_performer_is_never_recognisable(world: tuple[Engine, TestClient]) -> None:
    """An organisation huren does not know (a commercial lab in another city): its QC is unknown."""
    engine, http = world
    prior(engine, "HOSPA", "金域医学检验所^^^^^^XX^^^KINGMED01")
    [who] = performers(engine)
    assert who["display"] == "金域医学检验所"
    assert who["identifier"] == {"system": "urn:huren:performing-organization", "value": "HOSPA|KINGMED01"}
    org = engine.repository.read("Organization", str(who["reference"]).split("/", 1)[1])
    assert org["name"] == "金域医学检验所"
    assert checked(http, engine, "HOSPB") == []
    repeat(engine)
    assert flag_of(engine) is None
    # the reason recognition gives: QC not passed (unknown), for the institution it read
    reports = engine.repository.search("DiagnosticReport", [("_count", "50")]).resources
    [report] = [r for r in reports if r["performer"][0].get("display") == "金域医学检验所"]
    facts = engine.recognition.facts.result(report)
    assert facts is not None and facts.institution == "unknown-performer:HOSPA|KINGMED01"
    orders = engine.repository.search("ServiceRequest", [("_count", "50")]).resources
    [b1] = [o for o in orders if any(i.get("value") == "B1" for i in o.get("identifier", ()))]
    assert assess(engine.recognition.facts.order(b1), facts, engine.recognition.rules) == QC_NOT_PASSED


def test_without_obx23_the_sender_performed_it(world: tuple[Engine, TestClient]) -> None:
    """As before: the sender's result, recognisable on its QC, the repeat flagged."""
    engine, http = world
    prior(engine, "HOSPA", "")
    [who] = performers(engine)
    assert who["display"] == "县人民医院" and "identifier" not in who
    assert checked(http, engine, "HOSPB") == ["HOSPA"]
    repeat(engine)
    assert flag_of(engine) is not None


# --- a sender's local coding systems (table 0396's 99zzz) ---------------------------------------

# Run by main's code before this round (PYTHONPATH=that code): 阜宁县人民医院's blood count five days
# ago, its test named by the local code XCG under the local system its LIS calls 99LIS.
OLD_STORE = r"""
import sys
from pathlib import Path
from engine.engine import Engine
from engine.settings import Settings
from tests.test_convleft28_performer import local_result

with Engine(Settings(data_dir=Path(sys.argv[1]), http_port=0, mllp_port=0, site=Path(sys.argv[2]))) as engine:
    ack = engine.ingestor.handle(local_result("FNXRMYY", "X1", 5).encode(), channel="mllp", peer="test")
    assert b"MSA|AA" in ack, ack
"""
BEFORE = "2f173b69"  # main at the start of the twenty-eighth round (every 99zzz under urn:huren:code:<INST>)


def local_result(inst: str, placer: str, days: int, code: str = "XCG^血常规^99LIS") -> str:
    from tests.test_recognition_policy_e2e import msh, pid
    when = ts(days, 10)
    return (msh(inst, "LIS", "ORU^R01^ORU_R01", when, f"{inst}-ORU-{placer}") + pid(inst)
            + f"OBR|1|{placer}^HIS|F{placer}^LIS|{code}|||{when}|||||||||D7^张^医生||||||{when}|||F\n"
            + f"OBX|1|NM|WBC^白细胞计数^99LIS||6.1|10*9/L|||||F|||{when}\n").replace("\n", "\r")


def test_a_senders_default_local_system_keeps_its_uri_and_old_stores_still_count(tmp_path: Path) -> None:
    """A site names 99LIS as 阜宁县人民医院's own code list (``senders.yaml`` ``local_code_systems``):
    its codes stay under urn:huren:code:FNXRMYY, mapped by codes/FNXRMYY.yaml (XCG: the blood count),
    so a result main stored before this round still counts for a repeat ordered now, and a new one
    is coded as the old one is. Another 99zzz of the same sender gets a URI of its own."""
    import os
    import subprocess
    import sys

    from tests.test_moneylast19_charges import code_at

    site = tmp_path / "site"
    site.mkdir()
    shipped = (ROOT / "mappings" / "hl7v2" / "senders.yaml").read_text("utf-8")
    (site / "hl7v2").mkdir()
    (site / "hl7v2" / "senders.yaml").write_text(
        shipped.replace("local_code_systems: {}", "local_code_systems: {FNXRMYY: [99LIS]}"), "utf-8")
    data = tmp_path / "var"
    base = code_at(BEFORE, tmp_path)
    for name in ("test_convleft28_performer.py", "performer_site.py"):  # local_result, as this round writes it
        (base / "tests" / name).write_text((ROOT / "tests" / name).read_text("utf-8"), "utf-8")
    done = subprocess.run([sys.executable, "-c", OLD_STORE, str(data), str(site)], cwd=base, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(base)}, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    with served(data, site) as (engine, http):
        [old] = engine.repository.search("DiagnosticReport", [("_count", "5")]).resources
        assert old["code"]["coding"][0]["system"] == "urn:huren:code:FNXRMYY"
        r = http.post("/fhir/ServiceRequest/$check-recognition", json={"resourceType": "Parameters", "parameter": [
            {"name": "patient", "valueReference": old["subject"]},
            {"name": "code", "valueCoding": {"system": "http://loinc.org", "code": "58410-2"}},
            {"name": "institution", "valueString": "FNZYY"}]})
        assert r.status_code == 200, r.text
        assert [q["valueString"] for p in r.json()["parameter"] if p["name"] == "recognisable"
                for q in p["part"] if q["name"] == "institution"] == ["FNXRMYY"]
        mllp(engine, local_result("FNXRMYY", "X2", 1), local_result("FNXRMYY", "X3", 1, "01^A型^99ABO"))
        reports = {r["basedOn"][0]["display"] if r.get("basedOn") and "display" in r["basedOn"][0] else r["id"]:
                   r["code"]["coding"][0]["system"]
                   for r in engine.repository.search("DiagnosticReport", [("_count", "5")]).resources}
        assert sorted(set(reports.values())) == ["urn:huren:code:FNXRMYY", "urn:huren:code:FNXRMYY:99ABO"]
