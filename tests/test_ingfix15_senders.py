"""The idempotency key per sending system (MSH-3 + MSH-4 + MSH-10): what ing15's merge left open,
through the real path (an MLLP socket, the real store, both backends).

- a message with NO application (empty MSH-3, or only MSH-3.3) whose pair another application took
  is a sender of its own: it never writes over the first application's resources;
- the same bytes the code before quarantined as a conflict of another application's pair are one
  message with that quarantined document: a resend and an operator's replay process it once.
"""

from __future__ import annotations

import hashlib

import pytest

from adapters.hl7v2.errors import DUPLICATE_KEY_IDENTIFIER, HL7Error
from engine.engine import Engine
from engine.messages import PROCESSED, QUARANTINED, conflict_id, message_id, sender_id
from engine.settings import Settings
from tests.conftest import mllp_send, running_mllp
from tests.test_ing15_senders import adt, msa, provenance_v1, versions


@pytest.mark.parametrize("application", ["", "^^ISO"])
def test_no_application_after_another_is_a_sender_of_its_own(backend_settings: Settings, application: str) -> None:
    with Engine(backend_settings) as engine, running_mllp(engine) as port:
        messages = engine.ingestor.messages
        assert msa(mllp_send(port, adt("HIS", "5")))[1] == "AA"
        his = messages.get(message_id("FNXRMYY", "5"))
        ack = mllp_send(port, adt(application, "5", name="李^四", mrn="MRN0002", national="110101197505120139"))
        assert msa(ack)[1] == "AA"
        other = messages.get(sender_id("FNXRMYY", "", "5"))
        assert other is not None and other["status"] == PROCESSED and len(versions(engine)) == 2
        mine = provenance_v1(engine, his)  # was version 2: the empty application's Provenance
        assert mine != provenance_v1(engine, other)
        def own(doc: dict[str, object]) -> set[str]:
            return {r for r in doc["resources"] if r.startswith(("Encounter/", "Provenance/"))}  # type: ignore[attr-defined]
        assert len(own(his) | own(other)) == 4
        outcome = engine.ingestor.replay(other["_id"], actor="op")  # a replay keys it the same way
        assert outcome is not None and outcome.code == "AA"
        assert provenance_v1(engine, his) == mine and messages.count() == 2


def _quarantined_as_before(engine: Engine, raw: bytes, control: str) -> str:
    """``raw`` stored as the code before MSH-3 was in the key stored it: a conflict of ``plain``
    (another application's pair), quarantined, with no ``application`` field."""
    messages, sha, plain = engine.ingestor.messages, hashlib.sha256(raw).hexdigest(), message_id("FNXRMYY", control)
    err = HL7Error("message control id was already received with different content", segment="MSH", sequence=1,
                   field=10, code=DUPLICATE_KEY_IDENTIFIER, ack_code="AE")
    doc = messages.new_document(conflict_id(plain, sha), raw, sha, facility="FNXRMYY", control_id=control,
                                channel="mllp", peer="p", message_type="ADT^A01", version="2.5.1", codec="utf-8",
                                status=QUARANTINED, errors=[err], ack_code="AE", conflict_of=plain)
    doc.pop("application")
    with engine.store.transaction():
        messages.insert_many([doc])
    return str(doc["_id"])


def test_a_conflict_quarantined_before_is_processed_once(backend_settings: Settings) -> None:
    with Engine(backend_settings) as engine, running_mllp(engine) as port:
        messages = engine.ingestor.messages
        old = {}
        for control in ("8", "9"):
            assert msa(mllp_send(port, adt("HIS", control)))[1] == "AA"
            lis = adt("LIS", control, name="李^四", mrn="MRN0002", national="110101197505120139")
            old[control] = (lis, _quarantined_as_before(engine, lis, control))
        # 8: the sender resends first (processed where it lies), then the operator replays it
        lis, doc_id = old["8"]
        ack = mllp_send(port, lis)
        assert msa(ack)[1] == "AA" and "ERR" not in ack  # was processed a second time, as a new document
        assert messages.get(doc_id)["status"] == PROCESSED and messages.count() == 4
        assert messages.get(sender_id("FNXRMYY", "LIS", "8")) is None
        outcome = engine.ingestor.replay(doc_id, actor="op")
        assert outcome is not None and outcome.code == "AA" and messages.count() == 4
        # 9: the operator replays first, then the sender's resend gets its recorded answer
        lis, doc_id = old["9"]
        outcome = engine.ingestor.replay(doc_id, actor="op")
        assert outcome is not None and outcome.code == "AA"
        stored = versions(engine)
        assert msa(mllp_send(port, lis))[1] == "AA" and messages.count() == 4 and versions(engine) == stored
        assert messages.get(sender_id("FNXRMYY", "LIS", "9")) is None
        for control in ("8", "9"):
            his, lis_doc = messages.get(message_id("FNXRMYY", control)), messages.get(old[control][1])
            (theirs,) = [r for r in lis_doc["resources"] if r.startswith("Provenance/")]
            assert provenance_v1(engine, his) != theirs  # the replay re-made LIS's own, never HIS's


def test_msh3_is_matched_as_msh4_is(backend_settings: Settings) -> None:
    """MSH-3 by the rule MSH-4 is matched by (``Header._hd_id``): decoded, then trimmed, case kept."""
    with Engine(backend_settings) as engine, running_mllp(engine) as port:
        messages = engine.ingestor.messages
        assert msa(mllp_send(port, adt("HIS", "3")))[1] == "AA"
        # UTF-8 宠 is E5 AE A0: trimmed before decoding, its 0xA0 went and MSH-3 was stored as mojibake
        assert msa(mllp_send(port, adt("检验宠", "3", name="李^四")))[1] == "AA"
        assert messages.get(sender_id("FNXRMYY", "检验宠", "3"))["application"] == "检验宠"
        # an ideographic space around it is trimmed, as around MSH-4: the same sender, other bytes
        ack = mllp_send(port, adt("\u3000检验宠\u3000", "3", name="赵^六"))
        assert msa(ack)[1] == "AE" and "|MSH^1^10|205^" in ack  # was AA: a third sender
        # HL7 ids are case-sensitive, as the site's institutions are matched: lis is not LIS
        assert [msa(mllp_send(port, adt(app, "3", name="钱^七")))[1] for app in ("LIS", "lis")] == ["AA", "AA"]
        assert messages.count() == 5
