"""Reviewer's probes of visitlast20's newborn rule (rv-visitlast20): PID-7 with a time and a zone,
MSH-7 with a zone, twins, a newborn named by the mother's ID number. Real HL7 over MLLP, both backends."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from datetime import UTC

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.test_placer19_two_patients import nid
from tests.test_recognition_policy_e2e import msh, ts
from tests.test_visit20_reused_numbers import (  # noqa: F401 -- fixtures
    accepted,
    adt,
    engine,
    fhir,
    one_visit_numbered,
    pv1,
    read,
    send,
)

MOTHER = ("MRN-M", 2, "王^二")


def _result(control: str, born: str, mother_field: str, when: str, mrn: str = "MRN-NB", msh7: str = "") -> str:
    fields = [""] * 22
    fields[1], fields[3], fields[5], fields[7], fields[8], fields[21] = (
        "1", f"{mrn}^^^HOSPA^MR", "王二之子", born, "M", mother_field)
    return (msh("HOSPA", "LIS", "ORU^R01^ORU_R01", msh7 or when, control) + "PID|" + "|".join(fields[1:]) + "\n"
            + pv1("V100", when) + f"ORC|RE|B{control}^HIS|F{control}^LIS\n"
            + f"OBR|1|B{control}^HIS|F{control}^LIS|58410-2^CBC^LN|||{when}|||||||||D7^张^医生||||||{when}|||F\n"
            + f"OBX|1|NM|WBC^白细胞^L||16.1|10*9/L|||||F|||{when}\n")


def test_pid7_with_time_and_zone_and_msh7_with_zone(engine: Engine, mllp: int, fhir: TestClient) -> None:
    accepted(mllp, adt("A01", "A01-M", MOTHER, "V100", ts(10)))
    visit = one_visit_numbered(fhir, "V100")
    when = ts(1)
    code, errs = send(mllp, _result("TZ1", ts(3)[:12] + "+0800", "MRN-M^^^HOSPA^MR", when, msh7=when + "+0800"))
    assert code == "AA", errs
    (report,) = read(fhir, "DiagnosticReport")
    assert report["encounter"]["reference"] == f"Encounter/{visit['id']}"


def test_twins_both_under_the_mothers_visit(engine: Engine, mllp: int, fhir: TestClient) -> None:
    accepted(mllp, adt("A01", "A01-M", MOTHER, "V100", ts(10)))
    visit = one_visit_numbered(fhir, "V100")
    when = ts(1)
    for control, mrn in (("TW1", "MRN-NB1"), ("TW2", "MRN-NB2")):
        code, errs = send(mllp, _result(control, ts(2)[:8], "MRN-M^^^HOSPA^MR", when, mrn=mrn))
        assert code == "AA", (control, errs)
    reports = read(fhir, "DiagnosticReport")
    assert len(reports) == 2 and {r["encounter"]["reference"] for r in reports} == {f"Encounter/{visit['id']}"}
    assert len({r["subject"]["reference"] for r in reports}) == 2


def test_newborn_naming_the_mother_by_her_id_number(engine: Engine, mllp: int, fhir: TestClient) -> None:
    """PID-21 names the mother by her (valid) ID number, the visit's record by MRN + ID: one person."""
    accepted(mllp, adt("A01", "A01-M", MOTHER, "V100", ts(10)))
    visit = one_visit_numbered(fhir, "V100")
    when = ts(1)
    code, errs = send(mllp, _result("NID", ts(2)[:8], f"{nid(2)}^^^公安部^NNCHN", when))
    assert code == "AA", errs
    (report,) = read(fhir, "DiagnosticReport")
    assert report["encounter"]["reference"] == f"Encounter/{visit['id']}"


def test_newborn_without_msh7_time_is_not_a_500(engine: Engine, mllp: int, fhir: TestClient) -> None:
    accepted(mllp, adt("A01", "A01-M", MOTHER, "V100", ts(10)))
    when = ts(1)
    text = _result("NOMSH7", ts(2)[:8], "MRN-M^^^HOSPA^MR", when).replace(f"|{when}||ORU", "|||ORU", 1)
    code, errs = send(mllp, text)
    assert code in ("AA", "AE", "AR"), errs


def test_born_today_message_stamped_in_utc(engine: Engine, mllp: int, fhir: TestClient) -> None:
    """Born today (local date, PID-7 +0800) at 01:00; the LIS stamps MSH-7 in UTC (+0000): the
    message time is yesterday's date in UTC but the same instant order -- born before the message.
    ``_newborn`` compares the first 8 characters of each, ignoring the zones: age -1, refused."""
    from datetime import datetime, timedelta, timezone

    accepted(mllp, adt("A01", "A01-M", MOTHER, "V100", ts(10)))
    visit = one_visit_numbered(fhir, "V100")
    local = datetime.now(timezone(timedelta(hours=8))).replace(hour=3, minute=0, second=0, microsecond=0)
    born = local.replace(hour=1).strftime("%Y%m%d%H%M") + "+0800"
    sent = local.astimezone(UTC).strftime("%Y%m%d%H%M%S") + "+0000"
    obr_when = local.strftime("%Y%m%d%H%M%S")
    code, errs = send(mllp, _result("UTC", born, "MRN-M^^^HOSPA^MR", obr_when, msh7=sent))
    reports = read(fhir, "DiagnosticReport")
    assert code == "AA" and reports and reports[0]["encounter"]["reference"] == f"Encounter/{visit['id']}", errs
