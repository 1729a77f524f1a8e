"""regfix41d: a result's placeholder given, by an application no declared registration application, a resident ID
number another record holds is held (W 205), not taken and linked (rv41n HIGH 1); the HIS's registration then parts
what an earlier placeholder numbering joined (rv41n HIGH 2). Real HL7 v2 over ``POST /hl7v2`` into the real store on
each backend; the other woman's reads through her own token over ``/fhir``."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import err_lines, post
from tests.identity39_calls import engine_and_client, registered
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_rv41n_probes import _nids, _reads
from tests.test_rvidentity32_probes import MRN, _nid, adt, oru, patients

both = engine_and_client("regfix41d")


def _her_reads(engine: Engine, http: TestClient, record: dict, code: str) -> list[str]:
    """What the resident of ``record`` reads of results ``code`` with her own token."""
    token, _ = engine.auth.issue_token(subject=f"Patient/{record['id']}", kind="patient", client_id="regfix41d",
                                       scopes=["patient/*.rs"], patient=record["id"])
    return _reads(http, {"access_token": token}, code)


def test_the_lis_walk_in_on_a_placeholder_is_held_and_its_resend_too(both: tuple[Engine, TestClient]) -> None:
    """The LIS's A04 on its own result's placeholder stating the number another woman holds: W 205, held, nothing
    linked; the LIS sending it again (its held walk-in is no registration of the number) is held alike."""
    engine, http = both
    b = _nid("32092319700521012")
    nb = registered(http, "RD1B", "RD1Ba", "丁^一", "19700521", "F", f"~{b}^^^^NNCHN")
    assert ack_code_of(post(http, oru("RD1Pa", "RD1P^^^FNXRMYY^MR", "丁^一", "19700521", "F", "RD1OBS"))) == "AA"
    for control in ("RD1Pb", "RD1Pc"):
        ack = post(http, adt(control, f"RD1P^^^FNXRMYY^MR~{b}^^^^NNCHN", "丁^一", "19700521", "F", app="LIS"))
        assert ack_code_of(ack) == "AA", ack
        assert any("|205^" in e and "|W|" in e for e in err_lines(ack)), (control, err_lines(ack))
        (np_,) = patients(http, f"{MRN}|RD1P")
        assert not _nids(np_) and not np_.get("link"), (control, np_)
        assert _her_reads(engine, http, nb, "RD1OBS") == [], control


def test_a_placeholder_numbered_before_the_other_woman_came_is_parted_by_the_his(
        both: tuple[Engine, TestClient]) -> None:
    """Records numbered before this fix (or by a placeholder's number nobody held then): the LIS's A04 gave its
    placeholder NQ the number b; the HIS then registered NC with b, and the index linked the two. The HIS's own A04
    of NQ with her true number c is the registration's word on NQ's number -- the LIS's walk-in on a placeholder
    makes it no owner over it: NQ holds c, and NC's resident reads nothing of NQ's."""
    engine, http = both
    b, c = _nid("32092319700522012"), _nid("32092319700522020")
    assert ack_code_of(post(http, oru("RD2Qa", "RD2Q^^^FNXRMYY^MR", "丁^二", "19700522", "F", "RD2OBS"))) == "AA"
    ack = post(http, adt("RD2Qb", f"RD2Q^^^FNXRMYY^MR~{b}^^^^NNCHN", "丁^二", "19700522", "F", app="LIS"))
    assert ack_code_of(ack) == "AA" and not [e for e in err_lines(ack) if "|205^" in e], ack  # (nobody held b)
    nc = registered(http, "RD2C", "RD2Ca", "丁^二", "19700522", "F", f"~{b}^^^^NNCHN")
    ack = post(http, adt("RD2Qc", f"RD2Q^^^FNXRMYY^MR~{c}^^^^NNCHN", "丁^二", "19700522", "F"))
    (nq,) = patients(http, f"{MRN}|RD2Q")
    assert _nids(nq) == {c}, (_nids(nq), err_lines(ack))
    assert _her_reads(engine, http, nc, "RD2OBS") == [], err_lines(ack)


def test_the_walk_in_and_its_resend_in_one_batch_as_one_by_one(module_eng: Engine) -> None:
    """The HIS's A04 of NB with b, the LIS's result under NP, the LIS's A04 on NP with b and the same A04 again: one
    by one and in one ingestor batch, the same ACK codes, the same W 205s, nothing linked and no number on NP."""
    from engine.api.app import create_app

    with TestClient(create_app(module_eng)) as http:
        http.headers["Authorization"] = "Bearer " + module_eng.auth.issue_system_token("regfix41d", "system/*.cruds")
        seen = {}
        for how, tag, b in (("single", "RS", _nid("32092319700523012")), ("batch", "RT", _nid("32092319700523020"))):
            msgs = [adt(f"{tag}1", f"{tag}NB^^^FNXRMYY^MR~{b}^^^^NNCHN", "丁^三", "19700523", "F"),
                    oru(f"{tag}2", f"{tag}NP^^^FNXRMYY^MR", "丁^三", "19700523", "F", f"{tag}OBS"),
                    adt(f"{tag}3", f"{tag}NP^^^FNXRMYY^MR~{b}^^^^NNCHN", "丁^三", "19700523", "F", app="LIS"),
                    adt(f"{tag}4", f"{tag}NP^^^FNXRMYY^MR~{b}^^^^NNCHN", "丁^三", "19700523", "F", app="LIS")]
            raws = [(m.encode(), "mllp", "t") for m in msgs]
            outs = ([o for r in raws for o in module_eng.ingestor.process([r])] if how == "single"
                    else module_eng.ingestor.process(raws))
            (np_,) = patients(http, f"{MRN}|{tag}NP")
            seen[how] = ([ack_code_of(o.ack) for o in outs],
                         [sum("|205^" in e for e in err_lines(o.ack)) for o in outs],
                         bool(np_.get("link")), bool(_nids(np_)))
        assert seen["single"] == (["AA"] * 4, [0, 0, 1, 1], False, False), seen
        assert seen["batch"] == seen["single"], seen
