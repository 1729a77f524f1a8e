"""regapp33: the review of ``persons._registered`` (which application registered a record) after the lead's
rewrite, and its mends: a Provenance is read as the message that WROTE it (the filed message document of
its institution and MSH-10 listing the Provenance among its resources), never as whichever document holds
the (institution, MSH-10) pair -- a refused message replayed by the operator holds the pair of another
application's registration.

Real HL7 over ``POST /hl7v2`` (and batches), the operator's replay over ``POST /admin/quarantine/{id}/replay``,
into a real store, read back over ``/fhir``; the replay probe also on mongomock (``module_eng``)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from engine.messages import message_id
from tests.hl7_calls import module_engine, module_http, post  # noqa: F401 -- the module's engine and client
from tests.identity39_calls import engine_and_client
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_rvidentity32_probes import MRN, adt, oru, patients


def _ops(engine: Engine) -> dict[str, str]:
    return {"Authorization": "Bearer " + engine.auth.issue_system_token("ops", "system/MessageHeader.cr")}


def _batch(*messages: str, app: str = "LIS") -> str:
    return (f"FHS|^~\\&|{app}|FNXRMYY\rBHS|^~\\&|{app}|FNXRMYY\r" + "".join(messages)
            + f"BTS|{len(messages)}\rFTS|1\r")


def _replay(engine: Engine, http: TestClient, doc_id: str, corrected: str) -> dict:
    r = http.post(f"/admin/quarantine/{doc_id}/replay", content=corrected.encode(), headers=_ops(engine))
    assert r.status_code == 200, r.text
    return r.json()


def _replayed_pair_then_restatements(engine: Engine, http: TestClient, p: str, lis_event: str) -> None:
    """The LIS's message ``<p>1`` is refused (``\\F\\`` in its MRN) and holds the (FNXRMYY, <p>1) pair; the
    HIS registers <p> with the same MSH-10 (its own counter), filed under its own id with a Provenance
    naming MSH-10 alone; the operator replays the LIS's message corrected (another patient): filed.
    Then the LIS's A08 restating <p> as another person is refused, the HIS's accepted with the W."""
    if lis_event == "ORU":
        refused = oru(f"{p}1", f"{p}L\\F\\Z^^^FNXRMYY^MR", "冯^一", "19610101", "M", f"{p}GLU")
        corrected = oru(f"{p}1", f"{p}L^^^FNXRMYY^MR", "冯^一", "19610101", "M", f"{p}GLU")
    else:
        refused = adt(f"{p}1", f"{p}L\\F\\Z^^^FNXRMYY^MR", "冯^一", "19610101", "M", app="LIS")
        corrected = adt(f"{p}1", f"{p}L^^^FNXRMYY^MR", "冯^一", "19610101", "M", app="LIS")
    assert ack_code_of(post(http, refused)) == "AE"
    assert ack_code_of(post(http, adt(f"{p}1", f"{p}^^^FNXRMYY^MR", "陈^二", "19720202", "F"))) == "AA"
    held = engine.ingestor.messages.get(message_id("FNXRMYY", f"{p}1"))
    assert held is not None and held["application"] == "LIS" and held["status"] == "quarantined"
    assert _replay(engine, http, held["_id"], corrected)["ack_code"] == "AA"
    ack = post(http, adt(f"{p}2", f"{p}^^^FNXRMYY^MR", "褚^三", "19930303", "M", event="A08", app="LIS"))
    assert ack_code_of(ack) == "AE" and "did not register" in ack.decode("utf-8"), ack
    assert [r["gender"] for r in patients(http, f"{MRN}|{p}")] == ["female"]
    ack = post(http, adt(f"{p}3", f"{p}^^^FNXRMYY^MR", "褚^三", "19930303", "M", event="A08"))
    assert ack_code_of(ack) == "AA" and "restated as another person" in ack.decode("utf-8"), ack


@pytest.mark.parametrize("lis_event", ["A04", "ORU"])
def test_a_replayed_message_holding_the_pair_is_not_read_as_the_registration(
        engine: Engine, http: TestClient, lis_event: str) -> None:
    """Found (HIGH, the edge the lead saw): the Provenance names MSH-10 alone and ``_registered`` read it as
    the pair's document once that was filed -- the LIS's replayed A04 made the LIS the HIS record's
    registrar (its A08 restating the HIS's patient as another person AA, the HIS's own AE); its
    replayed ORU made the record "unregistered" (anyone's A08 accepted)."""
    _replayed_pair_then_restatements(engine, http, "RGA" + lis_event[0], lis_event)


def test_a_batch_does_not_decide_for_a_stored_record_whose_registration_cannot_be_told(
        engine: Engine, http: TestClient) -> None:
    """Found (MEDIUM): the HIS registered RGB; the operator replayed its A04 corrected into a refusal, so the
    record's registration can no longer be told (its message is not filed). Alone, the LIS's A04 then its
    A08 restating RGB as another person: the A08 refused. In one LIS batch, the batch's A04 made the LIS the
    registrar (``_registered_in_batch`` overrode "cannot be told") and the A08 was accepted."""
    assert ack_code_of(post(http, adt("RGB1", "RGB^^^FNXRMYY^MR", "蒋^四", "19640404", "M"))) == "AA"
    doc_id = message_id("FNXRMYY", "RGB1")
    assert _replay(engine, http, doc_id, adt("RGB1", "RGB\\F\\X^^^FNXRMYY^MR", "蒋^四", "19640404", "M"))[
        "ack_code"] == "AE"
    ack = post(http, _batch(adt("RGB2", "RGB^^^FNXRMYY^MR", "蒋^四", "19640404", "M", app="LIS"),
                            adt("RGB3", "RGB^^^FNXRMYY^MR", "沈^五", "19950505", "F", event="A08", app="LIS")))
    assert b"MSA|AA|RGB2" in ack and b"MSA|AE|RGB3" in ack, ack
    assert [r["gender"] for r in patients(http, f"{MRN}|RGB")] == ["male"]
    # the same two messages sent one by one: the same answers
    assert ack_code_of(post(http, adt("RGB4", "RGB^^^FNXRMYY^MR", "蒋^四", "19640404", "M", app="LIS"))) == "AA"
    ack = post(http, adt("RGB5", "RGB^^^FNXRMYY^MR", "沈^五", "19950505", "F", event="A08", app="LIS"))
    assert ack_code_of(ack) == "AE", ack


def test_a_record_made_over_fhir_is_registered_by_the_batchs_registration(engine: Engine, http: TestClient) -> None:
    """A record no message names (no Provenance: a FHIR client made it, or nothing is stored) is decided by
    the batch's own registration, as the store would answer once that registration is filed: an HIS batch
    registering RGC then restating it as another person: AA with the W."""
    ack = post(http, _batch(adt("RGC1", "RGC^^^FNXRMYY^MR", "韩^六", "19660606", "M"),
                            adt("RGC2", "RGC^^^FNXRMYY^MR", "杨^七", "19970707", "F", event="A08"), app="HIS"))
    assert b"MSA|AA|RGC1" in ack and b"MSA|AA|RGC2" in ack and b"restated as another person" in ack, ack


# --- both backends ----------------------------------------------------------------------------------


both = engine_and_client("rg")


def test_the_replayed_pair_on_each_backend(both: tuple[Engine, TestClient]) -> None:
    """SQLite and mongomock: the replay probe above (the message-store read of a pair's documents by
    institution, MSH-10 and status is a query each backend answers)."""
    engine, http = both
    _replayed_pair_then_restatements(engine, http, "RGM", "A04")


def test_the_oldest_registration_is_the_first_received_not_the_last_rewritten(engine: Engine, http: TestClient) -> None:
    """The HIS registers RGD; the LIS then sends an A04 of the same person (some LIS register their own
    visits); the operator replays the HIS's A04 (a site file reloaded, say), which writes its Provenance
    again. The registrar is still the HIS (the first registration received): the LIS's A08 restating RGD
    as another person refused, the HIS's accepted with the W. Found (MEDIUM): the Provenances were read
    in the order they were last written, so the replay made the LIS's A04 the oldest registration."""
    assert ack_code_of(post(http, adt("RGD1", "RGD^^^FNXRMYY^MR", "秦^八", "19680808", "M"))) == "AA"
    assert ack_code_of(post(http, adt("RGD2", "RGD^^^FNXRMYY^MR", "秦^八", "19680808", "M", app="LIS"))) == "AA"
    r = http.post(f"/admin/quarantine/{message_id('FNXRMYY', 'RGD1')}/replay", headers=_ops(engine))
    assert r.status_code == 200 and r.json()["ack_code"] == "AA", r.text
    ack = post(http, adt("RGD3", "RGD^^^FNXRMYY^MR", "尤^九", "19990909", "F", event="A08", app="LIS"))
    assert ack_code_of(ack) == "AE", ack
    ack = post(http, adt("RGD4", "RGD^^^FNXRMYY^MR", "尤^九", "19990909", "F", event="A08"))
    assert ack_code_of(ack) == "AA" and "restated as another person" in ack.decode("utf-8"), ack


def test_the_registrar_past_a_hundred_results_may_correct_its_record(http: TestClient) -> None:
    """RGE's placeholder is made by a LIS result and 100 more follow before the HIS registers it (the
    registration's Provenance on the second page). Found (MEDIUM): a full page without a registration
    was "cannot be told", so the HIS itself could not correct a long-stay lab patient's record. Now every
    page is read: the LIS's A08 restating RGE as another person refused, the HIS's accepted with the W."""
    for n in range(101):
        assert ack_code_of(post(http, oru(f"RGE{n}", "RGE^^^FNXRMYY^MR", "钱^九", "19700909", "M", "RGEGLU"))) == "AA"
    assert ack_code_of(post(http, adt("RGEA", "RGE^^^FNXRMYY^MR", "钱^九", "19700909", "M"))) == "AA"
    ack = post(http, adt("RGEB", "RGE^^^FNXRMYY^MR", "吴^十", "19881212", "F", event="A08", app="LIS"))
    assert ack_code_of(ack) == "AE", ack
    ack = post(http, adt("RGEC", "RGE^^^FNXRMYY^MR", "吴^十", "19881212", "F", event="A08"))
    assert ack_code_of(ack) == "AA" and "restated as another person" in ack.decode("utf-8"), ack


def test_a_result_replayed_into_a_refusal_does_not_hide_the_registration(engine: Engine, http: TestClient) -> None:
    """The HIS registers RGF, a LIS result follows; the operator replays the result corrected into a refusal
    (its Provenance stays, its message is no longer filed). Its activity (ORU^R01) cannot be a registration,
    so the registration is still told: the HIS's A08 restating RGF accepted with the W, the LIS's refused.
    A registration replayed into a refusal is another matter (``test_a_batch_does_not_decide...``)."""
    assert ack_code_of(post(http, adt("RGF1", "RGF^^^FNXRMYY^MR", "许^一", "19710101", "F"))) == "AA"
    assert ack_code_of(post(http, oru("RGF2", "RGF^^^FNXRMYY^MR", "许^一", "19710101", "F", "RGFGLU"))) == "AA"
    assert _replay(engine, http, message_id("FNXRMYY", "RGF2"),
                   oru("RGF2", "RGF\\F\\Q^^^FNXRMYY^MR", "许^一", "19710101", "F", "RGFGLU"))["ack_code"] == "AE"
    ack = post(http, adt("RGF3", "RGF^^^FNXRMYY^MR", "何^二", "19820202", "M", event="A08", app="LIS"))
    assert ack_code_of(ack) == "AE", ack
    ack = post(http, adt("RGF4", "RGF^^^FNXRMYY^MR", "何^二", "19820202", "M", event="A08"))
    assert ack_code_of(ack) == "AA" and "restated as another person" in ack.decode("utf-8"), ack
