"""ord40: the operator's decision on a held change of an order, and a site's aliases of one application.

(1) An application that is not the one the order's history names for a number sends its change under it: AA,
W 204 at OBR-4, the order as it was (ord39, ofix39). An interface analyst who knows it is the owner (the LIS moved
to another MSH-3, a relay was added) decides it as an integration engine's error queue asks a person to:
``POST /admin/quarantine/{id}/owner`` with a reason, for one held message (listed by ``GET /admin/held``). It is
applied once (asked again: the decision applied, nothing written again), bound to the order version the hold left
(written since: 409 until a plain replay holds it again), audited with who, when and why (the request's record and
the replay's, in the signed log; the Provenance's verifier agent; the message's replay entry and ``decision``). A
resident, a clinician, a read-only client: 403. No reason: 400.

(2) ``senders.yaml`` ``application_aliases``: an institution's MSH-3s that are one application, decided by
``adapters.convert.applications`` and asked by the converter (the filler number names the sender) and the merge
(the history's storer is the sender).

Real HL7 v2 over ``POST /hl7v2`` into the real store on each backend, ``/admin`` and ``/fhir`` over FastAPI's
TestClient with real tokens and staff sessions. Each test uses order numbers of its own.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from adapters.convert.applications import canonical, forms, one_application
from engine.api.app import create_app
from engine.cli import main
from engine.engine import Engine
from engine.messages import message_id
from engine.settings import Settings
from mappings.site import DEFAULTS_DIR, Site, SiteError
from tests.conftest import _BACKENDS, settings_for_backend
from tests.test_cdfix38_fixes import OID
from tests.test_code37_ris_change import CHEST, HEAD, _changed, _ordered, _ris
from tests.test_codedoc38_order_owner import _codes, _warned_at_obr4
from tests.test_ingest_replay import site_env
from tests.test_ord39_order_history import _from, _held, _placed_by, _taken, _xo
from tests.test_order35_as_later import _audited_replays, _details, _operator
from tests.test_rvrvops26_quarantine_access import _session
from tests.test_srfix35_order_code import B, history, oru, send, the_order

__all__ = ["site_env"]

ALIAS_OID = "1.2.156.112604.1.2.40"  # the RIS's universal id since its interface moved (the site's alias)
REASON = "放射科 RIS 自 12 月 1 日起 MSH-3 改为 ^1.2.156.112604.1.2.3^ISO（接口厂商更换），与原 RIS 为同一系统"
ABDOMEN = "3003^腹部CT平扫^L"


def _senders(aliases: dict[str, Any]) -> str:
    shipped = yaml.safe_load((DEFAULTS_DIR / "hl7v2" / "senders.yaml").read_text(encoding="utf-8"))
    return yaml.safe_dump({**shipped, "application_aliases": aliases}, allow_unicode=True)


def _aliased(folder: Path, aliases: dict[str, Any]) -> Path:
    """``folder`` made a site folder whose ``senders.yaml`` is the shipped one with these ``application_aliases``."""
    (folder / "hl7v2").mkdir(parents=True)
    (folder / "hl7v2" / "senders.yaml").write_text(_senders(aliases), encoding="utf-8")
    return folder


@contextmanager
def _engine_on(backend: str, root: Path, site_dir: Path) -> Iterator[Engine]:
    """An engine on ``backend`` storing under ``root``, its site read from ``site_dir``."""
    settings = Settings(data_dir=root / "var", http_port=0, mllp_port=0, base_url="https://huren.example",
                        site=site_dir)
    with settings_for_backend(backend, settings) as chosen, Engine(chosen) as eng:
        yield eng


@contextmanager
def _client(engine: Engine, subject: str) -> Iterator[TestClient]:
    """The app over FastAPI's TestClient with the token of system client ``subject`` (``system/*.cruds``)."""
    with TestClient(create_app(engine)) as client:
        client.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token(subject, "system/*.cruds")
        yield client


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _aliased(tmp_path_factory.mktemp("ord40site"), {B: [["RIS", f"^{ALIAS_OID}^ISO"]]})


@pytest.fixture(scope="module", params=_BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, site_dir: Path) -> Iterator[Engine]:
    with _engine_on(request.param, tmp_path_factory.mktemp("ord40"), site_dir) as eng:
        yield eng


@pytest.fixture(scope="module")
def http(engine: Engine) -> Iterator[TestClient]:
    with _client(engine, "ord40") as client:
        yield client


def _control(message: str) -> str:
    return message.split("\n", 1)[0].split("|")[9]


def _held_message(http: TestClient, placer: str, app: str = f"^{OID}^ISO") -> str:
    """The HIS orders head CT, the RIS reports it under ``F<placer>^RIS``; ``app`` sends XX to chest CT: held
    (AA, W 204 naming the RIS). Returns the held message's id."""
    send(http, _ordered(placer))
    assert "MSA|AA" in send(http, _ris(oru(placer, item=HEAD)))
    message = _from(app, _changed(placer, CHEST))
    _held(http, placer, send(http, message), f"history names RIS of {B}")
    return message_id(B, _control(message))


def _owner(http: TestClient, msg: str, headers: dict[str, str], reason: Any = REASON, *, ascii_only: bool = True,
           **kw: Any) -> Any:
    """``POST /admin/quarantine/{msg}/owner`` with ``{"reason": reason}`` (None: no body); ``ascii_only`` False
    sends the reason's own UTF-8 bytes rather than JSON's ``\\u`` escapes."""
    body = json.dumps({"reason": reason}, ensure_ascii=ascii_only) if reason is not None else ""
    return http.post(f"/admin/quarantine/{msg}/owner", content=body,
                     headers=headers | {"Content-Type": "application/json"}, **kw)


def _provenances_of(engine: Engine, http: TestClient, msg: str) -> list[dict[str, Any]]:
    doc = engine.ingestor.messages.get(msg)
    return [http.get(f"/fhir/{r}").json() for r in doc.get("resources") or [] if r.startswith("Provenance/")]


# --- (1) the operator's decision ------------------------------------------------------------------------------


def test_a_held_change_is_listed_and_taken_as_the_owners_once_with_who_when_and_why(
        engine: Engine, http: TestClient) -> None:
    placer = "O40-OWN"
    msg = _held_message(http, placer)
    ops = _operator(engine, "system/MessageHeader.cr", "ops-desk")
    listed = http.get("/admin/held", headers=ops).json()
    (item,) = [i for i in listed["items"] if i["id"] == msg]
    received = engine.ingestor.messages.get(msg)["received_at"]  # (the quarantine's date filters: instants with offset)
    later = http.get("/admin/held", headers=ops, params={"since": received[:-1] + "+00:00"}).json()["items"]
    earlier = http.get("/admin/held", headers=ops, params={"before": received[:-1] + "+00:00"}).json()["items"]
    assert msg in [i["id"] for i in later] and msg not in [i["id"] for i in earlier]
    assert http.get("/admin/held", headers=ops, params={"since": "2026-12-01"}).status_code == 400
    order = the_order(http, placer)
    (claim,) = item["held_claims"]
    assert claim["claim"] == f"FILL|urn:huren:id:RIS|F{placer}" and claim["resource"] == f"ServiceRequest/{order['id']}"
    assert claim["elsewhere"] is False and claim["versionId"] == order["meta"]["versionId"], claim
    assert claim["at"] == "OBR[1]-4" and claim["element"] == "code", claim
    assert http.get(f"/admin/quarantine/{msg}", headers=ops).json()["text"].startswith("MSH|")  # (shown as refused ones)

    # who may not: no reason (400), a read-only client, a resident, a clinician (403) -- nothing written
    assert _owner(http, msg, ops, reason=None).status_code == 400
    assert _owner(http, msg, ops, reason="   ").status_code == 400
    assert _owner(http, msg, _operator(engine, "system/MessageHeader.r", "ops-reader")).status_code == 403
    resident, _ = engine.auth.issue_token(subject="person-wang", kind="patient", client_id="huren-me",
                                          scopes=["patient/*.rs"], patient="pt-wang")
    assert _owner(http, msg, {"Authorization": f"Bearer {resident}"}).status_code == 403
    page = TestClient(http.app)  # (a session, not the module client's system token)
    clinician, csrf = _session(engine, "clinician", name="dr.li40")
    assert _owner(page, msg, {"X-CSRF-Token": csrf}, cookies=clinician).status_code == 403
    # an operator bound to another hospital: not listed, 404 as an unknown message (the quarantine's remit rule)
    elsewhere, csrf = _session(engine, "operator", remit="FNXRMYY", name="it.a40")
    assert msg not in [i["id"] for i in page.get("/admin/held", cookies=elsewhere).json()["items"]]
    assert _owner(page, msg, {"X-CSRF-Token": csrf}, cookies=elsewhere).status_code == 404
    assert not engine.ingestor.messages.get(msg).get("replays")
    assert "3002" in _codes(the_order(http, placer))

    r = _owner(http, msg, ops)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["already"] is False and answer["ack_code"] == "AA" and answer["as"] == "owner", answer
    assert answer["decided"]["by"] == "ops-desk" and answer["decided"]["reason"] == REASON, answer["decided"]
    assert answer["decided"]["used"] is True and answer["held_claims"] == [], answer
    assert not [e for e in answer["errors"] if e["code"] == "204"], answer["errors"]
    _taken(http, placer, "MSA|AA")  # (the order is chest CT now)
    # who, when, why: the Provenance's verifier, the message's record, both audit records in the signed log
    (prov,) = _provenances_of(engine, http, msg)
    verifier = prov["agent"][-1]
    assert verifier["type"]["coding"][0]["code"] == "verifier", prov["agent"]
    # (the reason is the staff's: kept on the message and in the audit log, not in what the patient reads -- ordfix40)
    assert verifier["who"]["identifier"]["value"] == "ops-desk" and REASON not in verifier["role"][0]["text"]
    assert "owner's" in verifier["role"][0]["text"] and "audit log" in verifier["role"][0]["text"], verifier
    doc = engine.ingestor.messages.get(msg)
    assert doc["decision"] == {"at": answer["decided"]["at"], "by": "ops-desk", "used": True, "as": "owner",
                               "reason": REASON}, doc["decision"]
    assert [(e["as"], e["reason"], e["by"]) for e in doc["replays"]] == [("owner", REASON, "ops-desk")]
    assert doc["held_claims"] == [] and not [i for i in http.get("/admin/held", headers=ops).json()["items"]
                                             if i["id"] == msg]
    decided = [_details(e) for e in _audited_replays(engine, msg) if _details(e).get("as") == "owner"]
    assert len(decided) == 2 and all(d["reason"] == REASON and d["decided-by"] == "ops-desk" for d in decided), decided

    # asked again (a double click, a retry): the decision applied is the answer, nothing written again
    versions = len(history(http, the_order(http, placer)))
    again = _owner(http, msg, ops, reason="再次确认")
    assert again.status_code == 200 and again.json()["already"] is True, again.text
    assert again.json()["decided"]["reason"] == REASON and again.json()["decided"]["by"] == "ops-desk"
    assert len(engine.ingestor.messages.get(msg)["replays"]) == 1
    assert len(history(http, the_order(http, placer))) == versions
    assert len([e for e in _audited_replays(engine, msg) if _details(e).get("already") == "true"]) == 1


def test_an_order_written_after_the_hold_is_409_until_a_plain_replay_holds_it_again(
        engine: Engine, http: TestClient) -> None:
    """Held against version n; the RIS's own XX (abdomen CT) writes n+1. The decision would be about a version the
    operator was not shown: 409, nothing written. A plain replay holds it again against n+1; then decided: taken."""
    placer = "O40-CHANGED"
    msg = _held_message(http, placer)
    assert "MSA|AA" in (ack := send(http, _changed(placer, ABDOMEN))) and not _warned_at_obr4(ack), ack
    ops = _operator(engine, "system/MessageHeader.cr", "ops-desk")
    r = _owner(http, msg, ops)
    assert r.status_code == 409 and r.json()["resourceType"] == "OperationOutcome", r.text
    assert "changed after the hold" in r.json()["issue"][0]["diagnostics"], r.text
    assert "3003" in _codes(the_order(http, placer)) and not engine.ingestor.messages.get(msg).get("replays")
    replayed = http.post(f"/admin/quarantine/{msg}/replay", headers=ops).json()
    assert replayed["ack_code"] == "AA" and "204" in [e["code"] for e in replayed["errors"] if e["severity"] == "W"], \
        replayed["errors"]
    assert engine.ingestor.messages.get(msg)["held_claims"][0]["versionId"] == the_order(http, placer)["meta"]["versionId"]
    r = _owner(http, msg, ops)
    assert r.status_code == 200 and r.json()["decided"]["used"] is True, r.text
    assert "3001" in _codes(the_order(http, placer))


def test_nothing_held_or_another_orders_number_is_not_decided(engine: Engine, http: TestClient) -> None:
    """The RIS's own report (accepted, nothing held), the EMR's XO held under another order's filler number (a new
    order carrying it would be a second order with the RIS's accession), a refused message: 409, nothing replayed."""
    placer = "O40-NONE"
    ops = _operator(engine, "system/MessageHeader.cr", "ops-desk")
    assert "MSA|AA" in send(http, _placed_by("HISAPP", placer))
    report = _ris(oru(placer, item=HEAD))
    assert "MSA|AA" in send(http, report)
    r = _owner(http, message_id(B, _control(report)), ops)
    assert r.status_code == 409 and "nothing of it was held" in r.text, r.text
    elsewhere = _xo("EMR", placer, CHEST).replace(f"|{placer}^HIS|", f"|{placer}^OTHER|")
    ack = send(http, elsewhere)
    assert "MSA|AA" in ack and _warned_at_obr4(ack), ack
    msg = message_id(B, _control(elsewhere))
    assert engine.ingestor.messages.get(msg)["held_claims"][0]["elsewhere"] is True
    r = _owner(http, msg, ops)
    assert r.status_code == 409 and "another order's number" in r.text, r.text
    assert not engine.ingestor.messages.get(msg).get("replays")
    refused = report.replace(f"|{B}|", "|FNNOSUCH|", 1)  # (MSH-4 an institution the site does not know: AR)
    assert "MSA|AR" in send(http, refused)
    r = _owner(http, message_id("FNNOSUCH", _control(refused)), ops)
    assert r.status_code == 409 and "nothing to decide" in r.text, r.text


# --- (2) one application under several MSH-3s: the site's aliases ----------------------------------------------


def test_an_aliased_msh3_is_the_application_it_names_for_the_converter_and_the_history(
        engine: Engine, http: TestClient) -> None:
    """The RIS reported as plain ``RIS``; its interface now sends ``^<ALIAS_OID>^ISO`` (aliased in senders.yaml):
    its XX under ``F<n>^RIS`` is taken (the converter: the number names the application by its alias), and under a
    number whose namespace names neither (``F<n>^RADNUM``) it is taken by the history (the merge: the storer RIS and
    the sender are one application). The same XX from an MSH-3 not aliased (``^<OID>^ISO``) is held."""
    placer = "O40-ALIAS"
    send(http, _ordered(placer))
    assert "MSA|AA" in send(http, _ris(oru(placer, item=HEAD)))
    _taken(http, placer, send(http, _from(f"^{ALIAS_OID}^ISO", _changed(placer, CHEST))))

    def radnum(message: str, p: str) -> str:
        return message.replace(f"F{p}^RIS", f"F{p}^RADNUM")

    for placer, app, held in (("O40-ALIASH", f"^{ALIAS_OID}^ISO", False), ("O40-NOALIASH", f"^{OID}^ISO", True)):
        send(http, _ordered(placer))
        assert "MSA|AA" in send(http, radnum(_ris(oru(placer, item=HEAD)), placer))
        ack = send(http, radnum(_from(app, _changed(placer, CHEST)), placer))
        if held:
            _held(http, placer, ack, f"history names RIS of {B}")
        else:
            _taken(http, placer, ack)


def test_the_alias_module_decides_by_same_hd_within_the_institution(site_dir: Path) -> None:
    site = Site.load(Settings(site=site_dir))
    ris, oid = ("RIS", "", ""), ("", ALIAS_OID, "ISO")
    assert canonical(B, oid, site) == ris and canonical(B, ("ris", "", ""), site) == ris
    # (a form matches as sent, ordfix40: an MSH-3 the site did not list stays itself, which HL7's rule still finds
    # to be the RIS by its name)
    assert canonical(B, ("RIS", ALIAS_OID, "ISO"), site) == ("RIS", ALIAS_OID, "ISO")
    assert one_application(B, ("RIS", ALIAS_OID, "ISO"), oid, site)
    assert forms(B, oid, site) == (oid, ris) and forms(B, ("EMR", "", ""), site) == (("EMR", "", ""),)
    assert one_application(B, ris, oid, site) and not one_application("FNXRMYY", ris, oid, site)
    assert not one_application(B, ("EMR", "", ""), oid, site)
    assert not one_application(B, ris, ("", OID, "ISO"), site)


@pytest.mark.parametrize(("aliases", "said"), [
    ({B: [["RIS", "^1.2.3^ISO"], ["ris", "EMR"]]}, "in group 0 as well"),
    ({B: [["RIS", "^1.2.3^"]]}, "names no application"),
    ({"FNNOSUCH": [["RIS", "RADIOLOGY"]]}, "not in institutions.yaml"),
    ({B: [["RIS"]]}, "is too short"),
], ids=["two-groups", "no-name", "unknown-institution", "one-form"])
def test_a_mistaken_alias_stops_the_site_load_naming_it(tmp_path: Path, aliases: dict[str, Any], said: str) -> None:
    with pytest.raises(SiteError) as raised:
        Site.load(Settings(site=_aliased(tmp_path, aliases)))
    assert said in str(raised.value) and "senders.yaml" in str(raised.value), raised.value


def test_the_console_takes_a_held_change_as_the_owners_once(site_env: Settings, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """``huren quarantine replay ID --as-owner REASON``: the same decision from the server's console (its account
    named), applied once; without words, with --all or --as-later: 2. SQLite only: the CLI opens the store anew
    each time, which an in-process mongomock does not keep (as order35's console test)."""
    placer = "O40-CLI"
    held = _from(f"^{OID}^ISO", _changed(placer, CHEST))
    for n, message in enumerate((_ordered(placer), _ris(oru(placer, item=HEAD)), held)):
        (tmp_path / f"{n}.hl7").write_bytes(message.replace("\n", "\r").encode("utf-8"))
        assert main(["replay", str(tmp_path / f"{n}.hl7"), "--quiet"]) == 0
    msg = message_id(B, _control(held))
    capsys.readouterr()
    assert main(["quarantine", "replay", msg, "--as-owner", "  "]) == 2
    assert main(["quarantine", "replay", "--all", "--as-owner", REASON]) == 2
    assert main(["quarantine", "replay", msg, "--as-later", "--as-owner", REASON]) == 2
    assert main(["quarantine", "replay", msg, "--as-owner", REASON]) == 0
    assert f"{msg}: AA processed taken as the owner's" in capsys.readouterr().out
    assert main(["quarantine", "replay", msg, "--as-owner", "再次"]) == 0
    assert f"{msg}: already taken as the owner's by cli:{getpass.getuser()}" in capsys.readouterr().out
    with Engine(site_env) as engine:
        doc = engine.ingestor.messages.get(msg)
        assert [(r["by"], r["as"], r["reason"]) for r in doc["replays"]] == [(f"cli:{getpass.getuser()}", "owner", REASON)]
        (order_ref,) = [r for r in doc["resources"] if r.startswith("ServiceRequest/")]
        assert "3001" in _codes(engine.repository.read(*order_ref.split("/")))
