"""fid37: who sees the member-refusal counts' client details on ``/admin/fidelity``, and whose count an operator's
corrected replay is (rv36g's notes on count36).

Real HL7 through ``POST /hl7v2`` (as a hospital's bound system client and as another system client), a real
plain-MLLP socket and the operator's ``/admin/quarantine/{id}/replay``, into the real store on each backend (priv36's
``world``: an engine alerting every 3 refusals); the view read over HTTP with real tokens of both kinds -- a
hospital's bound system client and a staff session bound to one institution, against the site's own system client
and an operator signed in with no remit."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from adapters.listeners.mllp import frame
from engine.engine import Engine
from engine.messages import message_id
from tests.hl7_calls import mllp_exchange
from tests.test_count36_refusals import _probe, _registered
from tests.test_priv36_refusals import _refusal_records, world  # noqa: F401  (the fixture)
from tests.test_rvprivprobe27_admin import _bound_system
from tests.test_rvrvops26_quarantine_access import _session

# what names a client in the counts (``engine.member_refusals.client_of``): none of it is shown to a bound operator
CLIENT_WORDS = ("http:", "mllp:", "tls:", "replay:", "his-fnzyy", "rot37", "127.0.0.1", "operator37")


def _view(http: TestClient, who: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """``GET /admin/fidelity`` as ``who`` (a token's headers, or a staff session's cookies: sent by a client of the
    same app holding no token, as the signed-in page's browser): the institutions and the response text."""
    if "cookies" in who:
        r = TestClient(http.app, cookies=who["cookies"]).get("/admin/fidelity")
    else:
        r = http.get("/admin/fidelity", **who)
    assert r.status_code == 200, r.text
    return r.json()["institutions"], r.text


def _site_wide(engine: Engine) -> dict[str, Any]:
    return {"headers": {"Authorization": "Bearer " + engine.auth.issue_system_token("ops37", "system/MessageHeader.cr")}}


def _mine(engine: Engine, http: TestClient) -> dict[str, Any]:
    """FNXRMYY's refusal counts as the site's own operator sees them."""
    return _view(http, _site_wide(engine))[0].get("FNXRMYY", {})


def _by(engine: Engine, http: TestClient, by: str, key: str) -> int:
    return int(_mine(engine, http).get("member_refused_by", {}).get(by, {}).get(key, 0))


def _app_row(engine: Engine, http: TestClient, key: str) -> int:
    """FNXRMYY's per-application row of refusals (``member_refused``, e.g. ``FNZYY/LIS``)."""
    return int(_mine(engine, http).get("member_refused", {}).get(key, 0))


def _post_as(http: TestClient, headers: dict[str, str], message: str) -> bytes:
    r = http.post("/hl7v2", content=message.encode(), headers={**headers, "Content-Type": "x-application/hl7-v2+er7"})
    assert r.status_code == 200, r.text
    return r.content


def test_an_operator_bound_to_an_institution_sees_no_clients_of_another(world: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """FNXRMYY's numbers are probed by FNZYY's bound HIS client (``his-fnzyy``), over a plain MLLP connection, and
    by a system client rotating MSH-4 (``rot37``: FNZYY, FNYLWSY, FNYLWSY -- its own count reaches the threshold,
    FNYLWSY's does not). FNXRMYY's operators -- its bound system client and a staff member signed in bound to it --
    see the counts on their numbers by sending institution, whole, and that a client's count is past the threshold,
    but none of the clients (system-client ids, addresses, certificate CNs, operators) nor their counts: those are
    the sending institutions' infrastructure. The site's own operators (an unbound system client, a staff operator
    with no remit) see every client. FNZYY's bound operator sees nothing of FNXRMYY's numbers."""
    engine, http = world
    for n in ("FA1", "FA2", "FB1", "FB2", "FB3"):
        _registered(http, n)
    his = _bound_system(engine, "FNZYY")
    assert ack_code_of(_post_as(http, his, _probe("FA1"))) == "AE"
    (ack,) = mllp_exchange(engine, frame(_probe("FA2", app="HIS").encode()), 1)
    assert ack_code_of(ack) == "AE", ack
    rot = {"Authorization": "Bearer " + engine.auth.issue_system_token("rot37", "system/MessageHeader.c")}
    for n, institution in (("FB1", "FNZYY"), ("FB2", "FNYLWSY"), ("FB3", "FNYLWSY")):
        assert ack_code_of(_post_as(http, rot, _probe(n, institution=institution))) == "AE"

    full, _ = _view(http, _site_wide(engine))
    everyone, _ = _session(engine, "operator", name="it.fid37all")
    assert _view(http, {"cookies": everyone})[0]["FNXRMYY"] == full["FNXRMYY"]
    seen = full["FNXRMYY"]["member_refused_by"]
    assert seen["client"]["http:his-fnzyy"] >= 1 and seen["client"]["mllp:127.0.0.1"] >= 1, seen
    assert seen["client"]["http:rot37"] == 3 and full["FNXRMYY"]["alerts"]["http:rot37"] == 3, full["FNXRMYY"]
    assert seen["institution"]["FNZYY"] >= 3 and seen["institution"]["FNYLWSY"] == 2, seen
    assert "client_alert" not in full["FNXRMYY"]

    staff, _ = _session(engine, "operator", remit="FNXRMYY", name="it.fid37bound")
    for who in ({"headers": _bound_system(engine, "FNXRMYY")}, {"cookies": staff}):
        shown, text = _view(http, who)
        assert set(shown) == {"FNXRMYY"}, shown
        mine = shown["FNXRMYY"]
        assert mine["member_refused_by"] == {"institution": seen["institution"]}, mine["member_refused_by"]
        assert mine["alerts"] == {k: v for k, v in full["FNXRMYY"]["alerts"].items() if ":" not in k}, mine["alerts"]
        assert "FNZYY" in mine["alerts"] and mine.get("client_alert"), mine
        assert mine["member_refused"] == full["FNXRMYY"]["member_refused"]  # the per-application rows, whole
        for word in CLIENT_WORDS:
            assert word not in text, (word, text[:2000])
    theirs, text = _view(http, {"headers": his})
    assert "FNXRMYY" not in theirs and "his-fnzyy" not in text and "member_refused" not in text, text[:2000]


def test_a_corrected_replay_is_the_operators_and_not_the_senders(world: tuple[Engine, TestClient]) -> None:  # noqa: F811
    """FNZYY's LIS is refused (AE 205) for naming FNXRMYY's FC1 for 张三: counted for FNZYY (its institution and its
    LIS row) and the client that posted it. A corrected copy replayed by the site's operator (``operator37``), still
    naming FC1 for another person, is refused again and counted as the operator's question only -- under
    ``replay:<operator>`` -- never adding to FNZYY's institution count or its LIS row, which count what the sender
    sent; its Security Alert record names the operator as the agent, not FNZYY. One replayed by FNZYY's own bound
    client is FNZYY asking: counted under ``replay:his-fnzyy`` and under FNZYY and its LIS row too (fidfix37: fid37
    pinned it as the operator's only; rv37b MED 2). A plain replay is counted nowhere, as count36 made it."""
    engine, http = world
    _registered(http, "FC1")
    fnzyy, lis, audited = _by(engine, http, "institution", "FNZYY"), _app_row(engine, http, "FNZYY/LIS"), \
        len(_refusal_records(engine))
    assert ack_code_of(_post_as(http, _bound_system(engine, "FNZYY"), _probe("FC1"))) == "AE"
    assert (_by(engine, http, "institution", "FNZYY"), _app_row(engine, http, "FNZYY/LIS")) == (fnzyy + 1, lis + 1)
    doc_id = message_id("FNZYY", "FC1B")
    operator = {"Authorization": "Bearer " + engine.auth.issue_system_token("operator37", "system/*.cruds")}
    r = http.post(f"/admin/quarantine/{doc_id}/replay", headers=operator)
    assert r.status_code == 200 and r.json()["ack_code"] == "AE", r.text
    for n, (who, client, senders) in enumerate(((operator, "replay:operator37", 1),
                                                (_bound_system(engine, "FNZYY"), "replay:his-fnzyy", 2)), start=1):
        corrected = _probe("FC1", value=f"5.{7 + n}")
        r = http.post(f"/admin/quarantine/{doc_id}/replay", content=corrected.encode(), headers=who)
        assert r.status_code == 200 and r.json()["ack_code"] == "AE", r.text
        assert _by(engine, http, "client", client) == 1, client
        assert _by(engine, http, "institution", "FNZYY") == fnzyy + senders, "the operator's copy is not FNZYY's probe"
        assert _app_row(engine, http, "FNZYY/LIS") == lis + senders
        (record,) = _refusal_records(engine)[audited + n:]
        assert record["details"]["client"] == client and record["details"]["channel"] == "replay", record
        assert record["details"].get("refusals") == (None if senders == 1 else str(fnzyy + 2)), record
        assert record["details"]["client-refusals"] == "1", record
        assert record["agent"][0]["who"]["identifier"]["value"] == client.removeprefix("replay:"), record["agent"]
