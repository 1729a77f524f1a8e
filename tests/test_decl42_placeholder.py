"""decl42 (a): the HIS's parting of a number first given to a LIS placeholder decides in one ingestor batch as one by
one (rv41q HIGH 3: ``persons._placeholders_number`` read only the store). Each case sends the same messages, once one
by one and once with its tail in one ``ingestor.process`` batch, and compares the ACKs, the W 205s, the placeholder's
link and numbers and what the other woman's resident reads over ``/fhir``. Real HL7 v2 bytes through the ingestor;
both backends (one engine a module)."""

# ruff: noqa: F811 -- the fixtures imported are the tests' arguments

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.engine import Engine
from tests.hl7_calls import err_lines
from tests.module_store import undeclared_eng as module_eng  # noqa: F401 -- a site declaring none, each backend
from tests.test_rv41n_probes import _nids, _reads
from tests.test_rvidentity32_probes import MRN, _nid, adt, oru, patients

NAME, BIRTH = "丁^五", "19700525"


@pytest.fixture()
def http(module_eng: Engine) -> Iterator[TestClient]:
    from engine.api.app import create_app

    with TestClient(create_app(module_eng)) as client:
        client.headers["Authorization"] = "Bearer " + module_eng.auth.issue_system_token("decl42", "system/*.cruds")
        yield client


def _token(engine: Engine, pid: str) -> dict[str, str]:
    token, _ = engine.auth.issue_token(subject=f"Patient/{pid}", kind="patient", client_id="decl42-phone",
                                       scopes=["patient/*.rs"], patient=pid)
    return {"access_token": token}


def _outcome(engine: Engine, http: TestClient, tag: str, head: list[str], tail: list[str], batch: bool) -> tuple:
    """``head`` one by one, then ``tail`` one by one or in one batch: the tail's ACK codes and W 205 counts, whether
    the placeholder NP is linked, its ID numbers, and whether NB's resident reads NP's result."""
    for message in head:
        (out,) = engine.ingestor.process([(message.encode(), "mllp", "t")])
        assert ack_code_of(out.ack) == "AA", out.ack
    raws = [(m.encode(), "mllp", "t") for m in tail]
    outs = engine.ingestor.process(raws) if batch else [o for r in raws for o in engine.ingestor.process([r])]
    (np_,) = patients(http, f"{MRN}|{tag}NP")
    (nb,) = patients(http, f"{MRN}|{tag}NB")
    return ([ack_code_of(o.ack) for o in outs], [sum("|205^" in e for e in err_lines(o.ack)) for o in outs],
            bool(np_.get("link")), sorted(_nids(np_)), _reads(http, _token(engine, nb["id"]), f"{tag}OBS") != [])


def _numbered_placeholder(tag: str, b: str) -> list[str]:
    """The LIS's result under MRN ``tag``NP (a placeholder), then its walk-in A04 numbering it ``b``."""
    return [oru(f"{tag}1", f"{tag}NP^^^FNXRMYY^MR", NAME, BIRTH, "F", f"{tag}OBS"),
            adt(f"{tag}2", f"{tag}NP^^^FNXRMYY^MR~{b}^^^^NNCHN", NAME, BIRTH, "F", app="LIS")]


def test_the_other_womans_registration_in_the_batch_parts_a_stored_placeholder_number(
        module_eng: Engine, http: TestClient) -> None:
    """The placeholder numbered b is stored; the HIS's A04 of NB with b and its A04 of NP with her true c come in one
    batch. One by one the HIS's A04 parts them (NP holds c, unlinked, NB's resident reads nothing of NP's); in the
    batch the other holder (NB, an earlier message of the batch) is read as it will be stored -- the same."""
    seen = {}
    for batch, tag, b, c in ((False, "DA", "32092319700525102", "32092319700525110"),
                             (True, "DB", "32092319700525128", "32092319700525136")):
        b, c = _nid(b), _nid(c)
        tail = [adt(f"{tag}3", f"{tag}NB^^^FNXRMYY^MR~{b}^^^^NNCHN", NAME, BIRTH, "F"),
                adt(f"{tag}4", f"{tag}NP^^^FNXRMYY^MR~{c}^^^^NNCHN", NAME, BIRTH, "F")]
        acks, ws, linked, numbers, reads = _outcome(module_eng, http, tag, _numbered_placeholder(tag, b), tail, batch)
        seen[batch] = (acks, ws, linked, numbers == [c], reads)
    assert seen[False] == (["AA", "AA"], [0, 0], False, True, False), seen
    assert seen[True] == seen[False], seen


def test_the_placeholder_numbered_in_the_batch_is_parted_as_one_by_one(module_eng: Engine, http: TestClient) -> None:
    """NB (b) is the HIS's before; the LIS's result and walk-in numbering its placeholder with b -- held then (b is
    NB's) -- and the HIS's A04 of NP with c in one batch: NP holds c, unlinked, one by one and in the batch alike."""
    seen = {}
    for batch, tag, b, c in ((False, "DC", "32092319700525144", "32092319700525152"),
                             (True, "DD", "32092319700525160", "32092319700525178")):
        b, c = _nid(b), _nid(c)
        head = [adt(f"{tag}0", f"{tag}NB^^^FNXRMYY^MR~{b}^^^^NNCHN", NAME, BIRTH, "F")]
        tail = [*_numbered_placeholder(tag, b), adt(f"{tag}4", f"{tag}NP^^^FNXRMYY^MR~{c}^^^^NNCHN", NAME, BIRTH, "F")]
        acks, ws, linked, numbers, reads = _outcome(module_eng, http, tag, head, tail, batch)
        seen[batch] = (acks, ws, linked, numbers == [c], reads)
    assert seen[False] == (["AA", "AA", "AA"], [0, 1, 0], False, True, False), seen
    assert seen[True] == seen[False], seen


def test_the_other_holders_null_earlier_in_the_batch_leaves_the_placeholder_number_owned(
        module_eng: Engine, http: TestClient) -> None:
    """The placeholder numbered b and NB registered with b are stored; NB's number taken off by the HIS
    (``""^^^^NNCHN``) and the HIS's A04 of NP with c come after. Nobody else holds b then, so the LIS's walk-in still
    registered NP's number (rv40m HIGH 1's owner, reg41's cost): the HIS's A04 is held, W 205 -- one by one and in the
    batch alike (the batch reads NB as its null leaves it, not as stored)."""
    seen = {}
    for batch, tag, b, c in ((False, "DE", "32092319700525186", "32092319700525194"),
                             (True, "DF", "32092319700525202", "32092319700525210")):
        b, c = _nid(b), _nid(c)
        head = [*_numbered_placeholder(tag, b), adt(f"{tag}3", f"{tag}NB^^^FNXRMYY^MR~{b}^^^^NNCHN", NAME, BIRTH, "F")]
        tail = [adt(f"{tag}5", f'{tag}NB^^^FNXRMYY^MR~""^^^^NNCHN', NAME, BIRTH, "F", event="A08"),
                adt(f"{tag}4", f"{tag}NP^^^FNXRMYY^MR~{c}^^^^NNCHN", NAME, BIRTH, "F")]
        acks, ws, linked, numbers, reads = _outcome(module_eng, http, tag, head, tail, batch)
        seen[batch] = (acks, ws, numbers == [b])
    assert seen[False] == (["AA", "AA"], [0, 1], True), seen
    assert seen[True] == seen[False], seen
