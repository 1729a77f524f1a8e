"""Review probes of the forty-first round (rv41a): pfix40's reads by key (``sqlite_fhir.keyed_rows``), the lead's
identity mends (``persons._placeholder_in_batch`` / ``_batch_registrants``), merge.yaml's
``DiagnosticReport.resultsInterpreter not_from_older``, ``message_time.reason_of``'s refusals and
``results.status_from_report``'s ``progress_warned``.

Every probe goes through the real path: HL7 v2 over ``POST /hl7v2`` or the ingestor's batches into the real store
(SQLite and mongomock), ``/admin`` and ``/fhir`` over FastAPI, the console's ``huren quarantine replay``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.engine import Engine
from engine.identity.nationalid import is_national_id
from engine.messages import message_id
from engine.repository.sqlite_fhir import KEYS_LISTED
from engine.repository.sqlite_rows import id_hash
from engine.settings import Settings
from tests import test_money19_cds_orders, test_stfix40_status_made_by
from tests.conftest import running_mllp
from tests.identity39_calls import engine_and_client
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_code37_ris_change import CHEST, HEAD, _changed, _ordered, _ris
from tests.test_hooks19_batch_hazards import _engine as _hooks19_engine
from tests.test_hooks19_batch_hazards import _number, _pid, _result
from tests.test_ingest_replay import site_env
from tests.test_ord39_order_history import _from
from tests.test_ord40_owner_decision import _control
from tests.test_ord40_owner_decision import _owner as _owner_asking
from tests.test_ordfix40_decision import _ops, engine, http, site_dir  # noqa: F401 (fixtures)
from tests.test_rec14_mixed_batch import _msh
from tests.test_recognition_batch import _state, _warnings
from tests.test_recognition_e2e import Sender
from tests.test_recognition_policy_e2e import CBC, msh, order, pid, ts
from tests.test_rv40f_probes import _held_message
from tests.test_rv40k_probes import _order
from tests.test_srfix35_order_code import B, oru
from tests.test_st40_status_leftovers import _hospa, _report_of
from tests.test_stfix40_status_made_by import _interpreted

__all__ = ["community", "engine", "money_engine", "http", "module_eng", "site_dir", "site_env"]


# --- (4) reason_of: every reason is a 4xx OperationOutcome or kept as typed, never a 500 -------------------------


def _owner_raw(http: TestClient, msg: str, headers: dict[str, str], body: bytes) -> object:
    return http.post(f"/admin/quarantine/{msg}/owner", content=body,
                     headers=headers | {"Content-Type": "application/json"})


@pytest.mark.parametrize("reason", ["同一\u200b系统", "\ufeff同一系统", "同一\u2060系统", "同一\u00ad系统"])
def test_an_invisible_format_character_in_the_reason_is_refused_or_kept_as_typed(
        engine: Engine, http: TestClient, reason: str) -> None:  # noqa: F811
    msg = _held_message(http, f"RV41A-CF{ord(reason[2]) if reason[0] != chr(0xfeff) else 0xfeff:X}")
    r = _owner_asking(http, msg, _ops(engine), reason)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        assert engine.ingestor.messages.get(msg)["decision"]["reason"] == reason
    else:
        assert r.json()["resourceType"] == "OperationOutcome"


def test_a_lone_surrogate_in_the_reason_is_a_400_never_a_500(engine: Engine, http: TestClient) -> None:  # noqa: F811
    msg = _held_message(http, "RV41A-SURR")
    transport = http._transport  # (the server's exception answered as the 500 a caller gets)
    transport.raise_server_exceptions = False  # type: ignore[attr-defined]
    try:
        r = _owner_raw(http, msg, _ops(engine), b'{"reason": "\\u540c\\u4e00\\ud800\\u7cfb\\u7edf"}')
    finally:
        transport.raise_server_exceptions = True  # type: ignore[attr-defined]
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome", r.text
    assert not engine.ingestor.messages.get(msg).get("replays")
    ok = _owner_asking(http, msg, _ops(engine), "同一系统")  # (still decidable with words)
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("reason", [" " * 40, "\u3000\u3000", "理" * 10_000])
def test_a_blank_or_overlong_reason_is_a_400(engine: Engine, http: TestClient, reason: str) -> None:  # noqa: F811
    msg = _held_message(http, f"RV41A-BL{len(reason)}")
    r = _owner_asking(http, msg, _ops(engine), reason)
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome", r.text
    assert not engine.ingestor.messages.get(msg).get("replays")


def test_the_console_refuses_a_reason_its_terminal_did_not_send_as_utf8(
        site_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    from engine.cli import main

    placer = "RV41A-CLI"
    held = _from("EMR", _changed(placer, CHEST))
    for n, message in enumerate((_ordered(placer), _ris(oru(placer, item=HEAD)), held)):
        (tmp_path / f"{n}.hl7").write_bytes(message.replace("\n", "\r").encode("utf-8"))
        assert main(["replay", str(tmp_path / f"{n}.hl7"), "--quiet"]) == 0
    msg = message_id(B, _control(held))
    capsys.readouterr()
    typed = "已核实，同一系统".encode("gbk").decode("utf-8", "surrogateescape")  # (how Python reads a GBK terminal's argv)
    assert any("\udc80" <= c <= "\udcff" for c in typed)
    try:
        code = main(["quarantine", "replay", msg, "--as-owner", typed])
    except Exception as exc:  # (a traceback on the operator's console)
        code = repr(exc)
    assert code == 2, code
    with Engine(site_env) as engine:
        doc = engine.ingestor.messages.get(msg)
        assert not doc.get("replays") and doc["status"] == "processed", doc


# --- (2) the identity mends: a batch decides who may renumber as the same messages sent one by one -----------------

# (number, name, birth date, sex): each number states its birth date and sex; the *2 numbers are the same person's
# demographics under another sequence (a registration desk's typo), the second person another person's
P1 = (_number("32092319800101001"), "赵^一", "19800101", "M")
P1b = (_number("32092319800101011"), "赵^一", "19800101", "M")
P1c = (_number("32092319800101031"), "赵^一", "19800101", "M")
P2 = (_number("32092319810202002"), "钱^二", "19810202", "F")
P2b = (_number("32092319810202022"), "钱^二", "19810202", "F")
P3 = (_number("32092319820303003"), "孙^三", "19820303", "M")
P3b = (_number("32092319820303013"), "孙^三", "19820303", "M")
P4 = (_number("32092319830404004"), "李^四", "19830404", "F")
P4b = (_number("32092319830404024"), "李^四", "19830404", "F")
P5 = (_number("32092319840505005"), "周^五", "19840505", "M")
P6 = (_number("32092319850606006"), "吴^六", "19850606", "F")


def _adt(app: str, event: str, pid: str, control: str) -> str:
    return (_msh("HOSPB", app, f"ADT^{event}^ADT_A01", ts(0), control) + f"EVN|{event}|{ts(0)}\n" + pid
            + "PV1|1|O\n")


def _orm(app: str, pid: str, placer: str) -> str:
    when = ts(1)
    return (_msh("HOSPB", app, "ORM^O01^ORM_O01", when, f"HOSPB-{app}-ORM-{placer}") + pid
            + f"ORC|NW|{placer}^{app}|||||||{when}|||D7^张^医生\n" + f"OBR|1|{placer}^{app}||{CBC}|||{when}\n")


def _identity_feed() -> list[bytes]:
    def pid(who: tuple[str, str, str, str], mrn: str) -> str:
        return _pid("HOSPB", who, mrn)

    texts = [
        # R1: the HIS registers it (A04); a third application's order and the LIS's result in the same batch state
        # another number of the same demographics: not theirs to renumber
        _adt("HIS", "A04", pid(P1, "R1"), "R1-A04"), _orm("EMR", pid(P1b, "R1"), "R1O"),
        _result("HOSPB", pid(P1c, "R1"), "R1O", 1),
        # R2: the LIS's result makes a placeholder; the RIS's A08 (another application) states another number: the
        # placeholder is anyone's to number
        _result("HOSPB", pid(P2, "R2"), "R2O", 1), _adt("RIS", "A08", pid(P2b, "R2"), "R2-A08"),
        # R3: placeholder, the HIS's A04, then the RIS's A08 with another number: the HIS registered it
        _result("HOSPB", pid(P3, "R3"), "R3O", 1), _adt("HIS", "A04", pid(P3, "R3"), "R3-A04"),
        _adt("RIS", "A08", pid(P3b, "R3"), "R3-A08"),
        # R4: the HIS's A04, the LIS's A08 with another number
        _adt("HIS", "A04", pid(P4, "R4"), "R4-A04"), _adt("LIS", "A08", pid(P4b, "R4"), "R4-A08"),
        # R5: two people -- the LIS's placeholder of one, the RIS's A08 naming another person on it
        _result("HOSPB", pid(P5, "R5"), "R5O", 1), _adt("RIS", "A08", pid(P6, "R5"), "R5-A08"),
    ]
    return [t.replace("\n", "\r").encode("utf-8") for t in texts]


def _numbers(engine: Engine) -> dict[str, list[str]]:
    """Each record's (by its MRN) resident ID numbers."""
    out: dict[str, list[str]] = {}
    for mrn in ("R1", "R2", "R3", "R4", "R5"):
        [found] = engine.repository.search("Patient", [("identifier", mrn)]).resources
        out[mrn] = sorted(str(i.get("value")) for i in found.get("identifier") or () if is_national_id(i))
    return out


def _id_engine(tmp_path: Path, backend: str, name: str, declared: bool) -> Engine:
    """hooks19's engine (the same persons' key in every store), HOSPB declaring ``registration_applications: [HIS]``
    when ``declared``."""
    if not declared:
        return _hooks19_engine(tmp_path, backend, name)
    site = tmp_path / "site"
    eng = _hooks19_engine(tmp_path, backend, name)  # (writes the site's file, copies the key)
    eng.close()
    text = (site / "institutions.yaml").read_text("utf-8")
    (site / "institutions.yaml").write_text(text.replace(
        "- {code: HOSPB, name: 县中医院, community: c1, grade: 二级, qc: {passed: all, until: 2099-12-31}}",
        "- {code: HOSPB, name: 县中医院, community: c1, grade: 二级, qc: {passed: all, until: 2099-12-31}, "
        "registration_applications: [HIS]}"), "utf-8")
    assert "registration_applications" in (site / "institutions.yaml").read_text("utf-8")
    settings = Settings(data_dir=tmp_path / name, http_port=0, mllp_port=0, site=site)
    return Engine(settings.with_(mongodb_uri="mongomock://") if backend == "mongomock" else settings)


@pytest.mark.parametrize("declared", [False, True], ids=["undeclared", "declared"])
@pytest.mark.parametrize("backend", ["sqlite", "mongomock"])
def test_a_batch_renumbers_exactly_what_the_same_messages_one_by_one_do(
        tmp_path: Path, backend: str, declared: bool) -> None:
    raws = [(raw, "mllp", "t") for raw in _identity_feed()]
    with _id_engine(tmp_path, backend, "single", declared) as eng:
        reference = [_warnings(o.ack) for raw in raws for o in eng.ingestor.process([raw])]
        expected, numbers = _state(eng), _numbers(eng)
    # decided as meant, one by one: the registered records keep the registration's number
    assert numbers["R1"] == [P1[0]] and numbers["R3"] == [P3[0]] and numbers["R4"] == [P4[0]], numbers
    assert numbers["R2"] == ([P2[0]] if declared else [P2b[0]]), numbers  # (the placeholder: the RIS is no registrar)
    with _id_engine(tmp_path, backend, "batch", declared) as eng:
        batched = [_warnings(o.ack) for o in eng.ingestor.process(raws)]
        assert eng.ingestor.stats.redone_batches == 0
        assert _numbers(eng) == numbers
        assert _state(eng) == expected
    assert batched == reference


# --- (3) DiagnosticReport.resultsInterpreter not_from_older ---------------------------------------------------------

community = test_stfix40_status_made_by.community


def _wbc(community: Engine, report: dict) -> list[str]:  # noqa: F811
    out = []
    for r in report.get("result") or ():
        obs = community.repository.read("Observation", r["reference"].split("/")[1])
        if "6690-2" in json.dumps(obs) or "WBC" in json.dumps(obs, ensure_ascii=False):
            out.append(str((obs.get("valueQuantity") or {}).get("value")))
    return out


def test_a_newer_message_without_an_interpreter_keeps_the_one_stated(community: Engine) -> None:  # noqa: F811
    """The P of 08:00 names 王五 (OBR-32); the P of 12:00 names none: the report keeps 王五 -- a thinner message
    erases nothing."""
    with running_mllp(community) as port:
        hl7 = Sender(port)
        hl7.send(order("HOSPA", "A1", CBC, ts(5)))
        hl7.send(_interpreted(_hospa("P", "P", 8, "p1"), "D003&王&五"))
        first = _report_of(community, "HOSPA-ORU-A1-Pp1")
        assert first.get("resultsInterpreter"), first
        ack = hl7.send(_hospa("P", "P", 12, "p3", wbc="6.5"))
        assert "MSA|AA" in ack, ack
        now = _report_of(community, "HOSPA-ORU-A1-Pp3")
        assert now.get("resultsInterpreter") == first["resultsInterpreter"], now.get("resultsInterpreter")


def test_a_late_final_is_one_message_its_results_and_its_interpreter_alike(community: Engine) -> None:  # noqa: F811
    """The P of 12:00 by 李四 is filed; the F of 09:00 by 王五 (the final, sent late) then arrives. Whatever the
    report keeps of the F's results, its interpreter is the same message's word: the report must not show the
    F's WBC under the P's interpreter, nor the P's WBC under the F's."""
    with running_mllp(community) as port:
        hl7 = Sender(port)
        hl7.send(order("HOSPA", "A1", CBC, ts(5)))
        hl7.send(_interpreted(_hospa("P", "P", 12, "p3", wbc="6.5"), "D002&李&四"))
        ack = hl7.send(_interpreted(_hospa("F", "F", 9, "f", wbc="6.2"), "D003&王&五"))
        assert "MSA|AA" in ack, ack
        final = _report_of(community, "HOSPA-ORU-A1-Ff")
        who = json.dumps(final.get("resultsInterpreter"), ensure_ascii=False)
        wbc = _wbc(community, final)
        assert (wbc == ["6.2"] and "王五" in who) or (wbc == ["6.5"] and "李四" in who), (final["status"], wbc, who)


# --- (1) pfix40's reads by key through _include and $everything, both backends ----------------------------------

both = engine_and_client("rv41a")
_PERFORMERS = ("Practitioner", "Organization", "PractitionerRole")


@pytest.mark.parametrize("n", (KEYS_LISTED - 1, KEYS_LISTED, KEYS_LISTED + 1, 40))
def test_include_and_everything_read_exactly_the_targets_named(both: tuple[Engine, TestClient], n: int) -> None:
    """``n`` Observations of one Patient, each naming a performer of one of three types (``n`` keys: one under, at
    and over ``KEYS_LISTED``, and 40), one performer deleted and one never stored; on SQLite two stored decoys whose
    ``idh`` is the hash of the absent one and of a present one (64-bit collisions made by hand). ``_include`` and
    ``$everything`` answer exactly the stored, current targets -- each once, never a decoy."""
    eng, http = both
    tag = f"rv41a{n}"
    patient = f"{tag}-pat"
    performers = [(_PERFORMERS[j % 3], f"{tag}-{j}") for j in range(n - 1)] + [("Practitioner", f"{tag}-ghost")]
    repo = eng.repository
    repo.write_many([{"resourceType": "Patient", "id": patient, "active": True}]
                    + [{"resourceType": t, "id": i, "active": True} for t, i in performers[:-1]]
                    + [{"resourceType": "Organization", "id": f"{tag}-decoy{k}", "active": True} for k in (0, 1)])
    repo.write_many([{"resourceType": "Observation", "id": f"{tag}-o{j}", "status": "final",
                      "code": {"text": "WBC"}, "effectiveDateTime": "2026-12-01T08:00:00+08:00", "subject": {"reference": f"Patient/{patient}"},
                      "performer": [{"reference": f"{t}/{i}"}]} for j, (t, i) in enumerate(performers)])
    repo.delete(*performers[0])
    store = eng.store
    if hasattr(store, "conn"):  # SQLite: the collisions
        with store.transaction(), store.lock:
            for k, (t, i) in enumerate((performers[-1], performers[1])):
                store.conn.execute("UPDATE fhir_resource SET idh = ? WHERE type = 'Organization' AND id = ?",
                                   (id_hash(t, i), f"{tag}-decoy{k}"))
    wanted = sorted({f"{t}/{i}" for t, i in performers[1:-1]})
    r = http.get("/fhir/Observation", params={"subject": f"Patient/{patient}", "_count": "100",
                                              "_include": "Observation:performer"})
    assert r.status_code == 200, r.text
    entries = r.json().get("entry") or []
    included = [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in entries
                if e["search"]["mode"] == "include"]
    assert sorted(included) == wanted, included
    r = http.get(f"/fhir/Patient/{patient}/$everything", params={"_count": "100"})
    assert r.status_code == 200, r.text
    got = sorted(f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in r.json().get("entry") or []
                 if e["resource"]["resourceType"] in _PERFORMERS or "decoy" in e["resource"]["id"])
    assert got == wanted, got


# --- (5) status_from_report: the ORC-5 W a later group takes back (progress_warned = said) ------------------------

money_engine = test_money19_cds_orders.engine


def _groups(orc5: str, statuses: tuple[str, ...], control: str) -> str:
    """HOSPB's LIS's one ORU of order B1, its blood count split over ``len(statuses)`` groups naming the same order,
    each one result at its OBX-11 status, OBR-25 F, ORC-5 ``orc5`` on every ORC (rv40k's ``_split``, n groups)."""
    when = ts(1, 10)
    group = (f"ORC|RE|B1^HIS|FB1^LIS||{orc5}\n"
             f"OBR|{{n}}|B1^HIS|FB1^LIS|{CBC}|||{when}|||||||||D7^张^医生||||||{when}|||F\n"
             f"OBX|1|NM|{{code}}||{{value}}|{{unit}}|||||{{status}}|||{when}\n")
    tests = (("WBC^白细胞^L", "6.1", "10*9/L"), ("HGB^血红蛋白^L", "135", "g/L"), ("PLT^血小板^L", "210", "10*9/L"))
    return (msh("HOSPB", "LIS", "ORU^R01^ORU_R01", when, control) + pid("HOSPB")
            + "".join(group.format(n=n + 1, code=c, value=v, unit=u, status=s)
                      for n, ((c, v, u), s) in enumerate(zip(tests, statuses, strict=False))))


@pytest.mark.parametrize("statuses", [("W", "W", "F"), ("W", "F", "W"), ("W",)])
def test_the_orc5_w_stands_only_where_no_later_group_completes_the_order(
        money_engine: Engine, statuses: tuple[str, ...]) -> None:
    """One ORU naming order B1 in several groups, ORC-5 CM on each: withdrawn groups then a final one (or a final
    one between them) -- the order is completed and no ORC-5 W is left in the ACK (the final group's CM stands);
    a withdrawn group alone -- the W stands, the order not completed."""
    with running_mllp(money_engine) as port:
        hl7 = Sender(port)
        hl7.send(order("HOSPB", "B1", CBC, ts(1)))
        ack = hl7.send(_groups("CM", statuses, "HOSPB-ORU-B1-" + "".join(statuses)))
    assert "MSA|AA" in ack, ack
    said = re.findall(r"ORC\^\d\^5", ack)
    if "F" in statuses:
        assert not said and _order(money_engine, "B1")["status"] == "completed", (said, ack)
    else:
        assert said == ["ORC^1^5"] and _order(money_engine, "B1")["status"] != "completed", (said, ack)


def _fhir_made(eng: Engine, patient: dict) -> None:
    """``patient`` PUT over ``/fhir`` by a FHIR client (no message names it: ``_UNSPOKEN``)."""
    with TestClient(create_app(eng)) as client:
        token = eng.auth.issue_system_token("rv41a-emr", "system/*.cruds")
        r = client.put(f"/fhir/Patient/{patient['id']}", json=patient, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code in (200, 201), r.text


def test_a_result_naming_a_fhir_clients_record_does_not_open_it_to_renumbering(tmp_path: Path) -> None:
    """A record a FHIR client made (number N1), no message naming it. The LIS's result names it (its PID
    create-only: the record is not written), then the RIS's A08 states another number of the same demographics.
    The A08 is no registration, and no registration spoke for the record: the number stays (W 205), one by one
    and in one batch alike (``_placeholder_in_batch`` must not read the result, which made nothing, as a
    placeholder's maker)."""
    texts = [_result("HOSPB", _pid("HOSPB", P1, "R7"), "R7O", 1), _adt("RIS", "A08", _pid("HOSPB", P1b, "R7"), "R7-A08")]
    raws = [(t.replace("\n", "\r").encode("utf-8"), "mllp", "t") for t in texts]
    with _hooks19_engine(tmp_path, "sqlite", "scratch") as eng:  # the record's id and identifiers, as a message keys them
        eng.ingestor.process(raws[:1])
        [made] = eng.repository.search("Patient", [("identifier", "R7")]).resources
    made = {k: v for k, v in made.items() if k not in ("meta", "text")}
    answers, numbers = {}, {}
    for name, batches in (("single", [raws[:1], raws[1:]]), ("batch", [raws])):
        with _hooks19_engine(tmp_path, "sqlite", name) as eng:
            _fhir_made(eng, made)
            answers[name] = [_warnings(o.ack) for batch in batches for o in eng.ingestor.process(batch)]
            [rec] = eng.repository.search("Patient", [("identifier", "R7")]).resources
            numbers[name] = sorted(str(i.get("value")) for i in rec.get("identifier") or () if is_national_id(i))
    assert answers["batch"] == answers["single"] and numbers["batch"] == numbers["single"], (answers, numbers)
    assert numbers["single"] == [P1[0]], (numbers, answers)  # (not the RIS's to renumber)


def test_the_console_refuses_a_blank_overlong_or_invisible_reason(
        site_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    """``huren quarantine replay ID --as-owner``: spaces only, ideographic spaces only and 10,000 characters exit 2
    with nothing replayed, and so does a reason holding U+200B, U+FEFF or U+2060 (invisible format characters:
    http41 refuses them, the words read would not be the words kept); the words without them are taken and kept
    exactly as typed -- the API's rule (``reason_of``)."""
    from engine.cli import main

    placer = "RV41A-CLI2"
    held = _from("EMR", _changed(placer, CHEST))
    for n, message in enumerate((_ordered(placer), _ris(oru(placer, item=HEAD)), held)):
        (tmp_path / f"{n}.hl7").write_bytes(message.replace("\n", "\r").encode("utf-8"))
        assert main(["replay", str(tmp_path / f"{n}.hl7"), "--quiet"]) == 0
    msg = message_id(B, _control(held))
    for bad in (" " * 40, "\u3000\u3000", "理" * 10_000, "同一\u200b系统", "同一系统\ufeff已核实", "已\u2060核实"):
        capsys.readouterr()
        assert main(["quarantine", "replay", msg, "--as-owner", bad]) == 2
        assert capsys.readouterr().err
    with Engine(site_env) as eng:
        assert not eng.ingestor.messages.get(msg).get("replays")
    typed = "同一系统已核实"
    assert main(["quarantine", "replay", msg, "--as-owner", typed]) == 0
    with Engine(site_env) as eng:
        assert eng.ingestor.messages.get(msg)["decision"]["reason"] == typed
