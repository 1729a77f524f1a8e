"""identity27: which patients a stored message names is the patient index's lookup
(``IdentityService.patients_named``), asked by the operator's quarantine routes for the audit.

Real path: registrations and a refused ADT^A40 over ``POST /hl7v2``, the refused message read and
replayed over ``/admin/quarantine`` with a system client's token, the audit as stored."""

from __future__ import annotations

import json

from adapters.hl7v2.ack import ack_code_of
from adapters.hl7v2.parser import parse
from tests import test_mergemend25_merge as mm
from tests.test_mergemend25_merge import A_NID, B_NID, _pid

world = mm.world  # mergemend25's fixture: the engine, POST /hl7v2, registration by A04


def _named(engine, event) -> set[str]:
    return {(x.get("what") or {}).get("reference") for x in event.get("entity") or ()} - {None}


def test_a_refused_message_names_the_patient_by_her_id_number_and_by_the_senders_mrn(world):
    """An A40 merging B's record into a record of A's number (refused: AE, quarantined) names, in its
    PID, A's number and an MRN the store does not know, and in a second PID B's MRN: reading it and
    replaying it are audited against A's record (found by the number) and B's (by the MRN); C, named
    nowhere, is not. The index answers the same for the parsed message."""
    http, send, register = world.mm
    a = register("MRN-A", A_NID, "赵^一")
    b = register("MRN-B", B_NID, "钱^秘密")
    c = register("MRN-C", None, "无名^氏", "19900101", "M")
    extra = "MRG|MRN-B^^^FNXRMYY^MR\r" + _pid("MRN-B", None, "钱^秘密").replace("PID|1|", "PID|2|")
    ack = send("A40", _pid("MRN-NEW", A_NID, "赵^一"), extra)
    assert ack_code_of(ack) == "AE", ack
    (doc,) = world.ingestor.messages.quarantined()
    headers = {"Authorization": "Bearer " + world.auth.issue_system_token("ops", "system/MessageHeader.cr")}
    shown = http.get(f"/admin/quarantine/{doc['_id']}", headers=headers)
    assert shown.status_code == 200, shown.text
    assert http.post(f"/admin/quarantine/{doc['_id']}/replay", headers=headers).status_code == 200
    events = world.audit.events()
    show = [e for e in events if "quarantine-show" in json.dumps(e, ensure_ascii=False)][-1]
    replay = [e for e in events if any(s.get("code") == "replay" for s in e.get("subtype") or ())][-1]
    for event in (show, replay):
        named = _named(world, event)
        assert {f"Patient/{a}", f"Patient/{b}"} <= named and f"Patient/{c}" not in named, named
    site = world.site
    found = world.identity.patients_named(
        parse(shown.json()["text"].replace("\n", "\r")), mrn_system=site.institution("FNXRMYY").mrn_system,
        national_system=site.tables["identifiers"]["national_id_system"])
    assert set(found) == {a, b}, found
    # without the site's systems nothing is looked up
    assert world.identity.patients_named(parse(shown.json()["text"].replace("\n", "\r")),
                                         mrn_system=None, national_system=None) == []
