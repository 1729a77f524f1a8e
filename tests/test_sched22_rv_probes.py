"""rvs22: review probes of sched22 (SIU action codes by set id, thin S15, SCH times/durations).
Real HL7 bytes over MLLP (``send``), the real store, read back through /fhir."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.test_conv20_fidelity import appointment
from tests.test_convert11_thinner import fhir, send  # noqa: F401  (the reader fixture)
from tests.test_convmend20_probes import PID, siu, valid
from tests.test_sched22_changes import AN, AT, D01, D03, SCH, _actors, _names, _show, _text

D05 = "D05^孙^力^^^^^^FNXRMYY"
D07 = "D07^周^平^^^^^^FNXRMYY"
D09 = "D09^吴^军^^^^^^FNXRMYY"


def _roles(p: dict[str, Any]) -> list[str]:
    return [c["code"] for t in p.get("type", []) for c in t.get("coding", [])]


def _unnamed(appt: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted(("/".join(_roles(p)), p["status"]) for p in appt["participant"] if "actor" not in p)


def _run(engine: Engine, fhir: TestClient, stem: str, first: list[str], *later: list[str]) -> tuple[dict[str, Any], list[bytes]]:  # noqa: F811
    messages = [siu(f"{stem}1", "S12", SCH.format(c=stem), PID, "RGS|1|A", *first)]
    messages += [siu(f"{stem}{n}", "S14", SCH.format(c=stem), PID, "RGS|1|A", *segs) for n, segs in enumerate(later, 2)]
    acks = send(engine, *messages)
    assert [ack_code_of(a) for a in acks] == ["AA"] * len(messages), [_text(a) for a in acks]
    return valid(appointment(engine, fhir, f"{stem}{len(messages)}")), acks


# --- FINDINGS -------------------------------------------------------------------------------------

def test_rvrvs22_a_of_another_role_under_an_unnamed_roles_set_id_keeps_that_role(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S12 books an anaesthetist slot with no one named (``AIP|2|||AN``, needs-action). An S14
    ``AIP|2|A|||AT`` is an *add* under set id 2 of a different role: an A under a set id holding
    another resource is refused by ``_changes`` -- but ``who()`` of both unnamed slots is "", so
    ``named == held`` and the A *replaces* the anaesthetist slot: the needed role is gone."""
    appt, (_, ack) = _run(engine, fhir, "QA", [f"AIP|1||{D01}|{AT}||20261205083000", f"AIP|2|||{AN}||20261205083000"],
                          [f"AIP|2|A||{AT}||20261205083000"])
    assert ("AN", "needs-action") in _unnamed(appt), (_show(appt["participant"]), _text(ack))


def test_rvrvs22_two_set_ids_each_given_twice_no_later_u_replaces_both(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """``_set_ids_once`` keys the duplicated set ids by segment system in a dict: with AIP set id 1
    AND set id 2 each given twice, only the last (2) is stripped; the two set-id-1 doctors keep
    their set id and a later ``AIP|1|U|D03`` replaces both of them (the case the function exists for)."""
    appt, acks = _run(engine, fhir, "QT", [f"AIP|1||{D01}|{AT}||20261205083000", f"AIP|1||{D05}|{AN}||20261205083000",
                                           f"AIP|2||{D07}|{AT}||20261205083000", f"AIP|2||{D09}|{AN}||20261205083000"],
                      [f"AIP|1|U|{D03}|{AT}||20261205083000"])
    assert {"王明", "孙力"} <= set(_names(appt)), (_show(appt["participant"]), [_text(a) for a in acks])
    assert "刘芳" not in _names(appt), _show(appt["participant"])


def test_rvrvs22_a_huge_duration_is_said_not_a_crash(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """SCH-9 ``1e40``-sized (all digits, valid NM): ``_seconds`` gives a Decimal, ``seconds % 60``
    raises decimal.InvalidOperation (DivisionImpossible, past the 28-digit context) -- uncaught.
    Expect an ACK that says the duration at SCH-9 (AA/AE), the appointment stored."""
    sch = "SCH|AP-QH|BK-QH||||||NORMAL|1" + "0" * 40 + "|min|^^^20261205083000||||||||||||||Booked"
    (ack,) = send(engine, siu("QH1", "S12", sch, PID, "RGS|1|A", f"AIP|1||{D01}|{AT}||20261205083000"))
    assert ack_code_of(ack) in ("AA", "AE"), _text(ack)
    assert "SCH^1^9" in _text(ack) or "SCH-9" in _text(ack), _text(ack)
    appt = valid(appointment(engine, fhir, "QH1"))
    assert _names(appt) == ["王明"]


def test_rvrvs22_x_of_a_doctor_never_booked_does_not_book_him(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """X is "no change" (table 0206): a segment saying a doctor's booking is unchanged when he is
    not booked is a mismatch, not a booking. ``_changes`` adds him, accepted, without a word."""
    appt, (_, ack) = _run(engine, fhir, "QX", [f"AIP|1||{D01}|{AT}||20261205083000"],
                          [f"AIP|1|X|{D01}|{AT}||20261205083000", f"AIP|2|X|{D03}|{AN}||20261205083000"])
    assert _names(appt) == ["王明"] or "AIP^2^1" in _text(ack), (_show(appt["participant"]), _text(ack))


def test_rvrvs22_a_thinner_u_of_the_same_doctor_keeps_his_role(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """``AIP|1|U|D01|||<new time>`` updates D01's booking with AIP-4 left empty (v2: not present =
    no change). ``_changes`` replaces the whole entry, so the attending role the S12 stated is erased."""
    appt, (_, ack) = _run(engine, fhir, "QU", [f"AIP|1||{D01}|{AT}||20261205083000"],
                          [f"AIP|1|U|{D01}|||20261205090000"])
    (doc,) = _actors(appt, "Practitioner")
    assert _roles(doc) == ["AT"], (_show(appt["participant"]), _text(ack))


def test_rvrvs22_a_under_a_set_id_in_another_role_does_not_re_role_the_doctor(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """Set id 1 holds D01 as attending; ``AIP|1|A|D01|AN`` is an add of an anaesthetist part under
    it. The A-by-set-id check compares who (actor) only, not the role: the attending part is
    replaced by the anaesthetist one, unsaid (the sched21 class: a doctor in two roles loses one)."""
    appt, (_, ack) = _run(engine, fhir, "QB", [f"AIP|1||{D01}|{AT}||20261205083000"],
                          [f"AIP|1|A|{D01}|{AN}||20261205083000"])
    roles = sorted("/".join(_roles(p)) for p in _actors(appt, "Practitioner") if p["status"] == "accepted")
    assert "AT" in roles or "AIP^1^1" in _text(ack), (_show(appt["participant"]), _text(ack))


def test_rvrvs22_x_naming_another_doctor_than_its_set_id_holds_is_said(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """``AIP|1|X|D03`` while set id 1 holds D01: "no change" of a booking the sender sees otherwise --
    a D or A so mismatched is refused and said; the X passes unsaid."""
    appt, (_, ack) = _run(engine, fhir, "QY", [f"AIP|1||{D01}|{AT}||20261205083000"],
                          [f"AIP|1|X|{D03}|{AT}||20261205083000"])
    assert _names(appt) == ["王明"], _show(appt["participant"])
    assert "AIP^1^1" in _text(ack), _text(ack)


def test_rvrvs22_an_a_of_a_second_unnamed_slot_of_a_role_adds_it(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """S12 needs one anaesthetist (``AIP|2|||AN``); an S14 ``AIP|3|A|||AN`` adds a second one under a
    new set id. ``_changes`` finds the stored AN slot "by the role" and replaces it: the list needs
    one anaesthetist where the scheduler's needs two, and the ACK says nothing."""
    appt, (_, ack) = _run(engine, fhir, "QN", [f"AIP|1||{D01}|{AT}||20261205083000", f"AIP|2|||{AN}||20261205083000"],
                          [f"AIP|3|A||{AN}||20261205083000"])
    assert _unnamed(appt) == [("AN", "needs-action"), ("AN", "needs-action")] or "AIP^1^1" in _text(ack), (
        _show(appt["participant"]), _text(ack))


# --- GUARDS (expected to pass) --------------------------------------------------------------------

def test_rvrvs22_replayed_coded_s14_is_idempotent(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    """The same coded S14 sent twice (a resend with a new control id): the same list, no entry doubled."""
    change = [f"AIP|1|U|{D03}|{AT}||20261205083000", f"AIP|3|A|{D05}|{AN}||20261205083000", "AIL|1|D"]
    appt, acks = _run(engine, fhir, "QR", [f"AIP|1||{D01}|{AT}||20261205083000", "AIL|1||US^201^1^FNXRMYY|||20261205083000"],
                      change, change)
    assert _names(appt) == ["刘芳", "孙力"], (_show(appt["participant"]), [_text(a) for a in acks])
    assert [p["status"] for p in _actors(appt, "Location")] == ["declined"]
    assert appt["participant"][0]["actor"]["reference"].startswith("Patient/")


def test_rvrvs22_d_of_an_unnamed_role_by_set_id_declines_only_it(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    appt, _ = _run(engine, fhir, "QD", [f"AIP|1||{D01}|{AT}||20261205083000", f"AIP|2|||{AN}||20261205083000",
                                        f"AIP|3|||{AT}||20261205083000"],
                   [f"AIP|2|D||{AN}||20261205083000"])
    assert _unnamed(appt) == [("AN", "declined"), ("AT", "needs-action")], _show(appt["participant"])
    assert _names(appt) == ["王明"]


def test_rvrvs22_a_coded_message_of_services_alone_keeps_every_participant(engine: Engine, fhir: TestClient) -> None:  # noqa: F811
    appt, _ = _run(engine, fhir, "QS", [f"AIP|1||{D01}|{AT}||20261205083000", "AIL|1||US^201^1^FNXRMYY|||20261205083000",
                                        "AIS|1||US1^腹部B超^L|20261205083000"],
                   ["AIS|2|A|CT1^胸部CT^L|20261205083000"])
    assert _names(appt) == ["王明"] and len(_actors(appt, "Location")) == 1, _show(appt["participant"])
    assert [c["code"] for s in appt["serviceType"] for c in s["coding"]] == ["US1", "CT1"]


def test_rvrvs22_fhir_put_still_states_the_participants_whole(engine: Engine, fhir: TestClient, http: TestClient) -> None:  # noqa: F811
    """The new patient slice must not make a REST client's PUT (replace) keep a doctor it left out."""
    (ack,) = send(engine, siu("QP1", "S12", SCH.format(c="QP"), PID, "RGS|1|A", f"AIP|1||{D01}|{AT}||20261205083000",
                              "AIL|1||US^201^1^FNXRMYY|||20261205083000"))
    assert ack_code_of(ack) == "AA"
    appt = appointment(engine, fhir, "QP1")
    http.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("client", "system/*.cruds")
    appt["participant"] = [p for p in appt["participant"] if not p["actor"]["reference"].startswith("Practitioner/")]
    appt.pop("meta", None)
    assert http.put(f"/fhir/Appointment/{appt['id']}", json=appt).status_code == 200
    got = http.get(f"/fhir/Appointment/{appt['id']}").json()
    assert not _actors(got, "Practitioner") and len(_actors(got, "Location")) == 1, _show(got["participant"])
    assert got["participant"][0]["actor"]["reference"].startswith("Patient/")
