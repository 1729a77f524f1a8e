"""The write hooks' shortcuts of the sixteenth round, through a real MLLP socket into the real store:
the MPI no longer merges again the new record whose links its statement stated (only the
person's earlier records are rewritten), and the recognition hook passes over a group of Patient
versions that keep their national ID (the index's link-only versions) without its group pass.

A resident comes back to the lab three times, each time under a new hospital record (a new MRN:
a new Patient linked to the earlier ones), the last two with a repeated liver test. Sent in two
arrival orders, the links, the versions each record got and the flags must be the same."""

from __future__ import annotations

import pytest

from engine.engine import Engine
from tests.conftest import mllp_send, running_mllp

NID = "110101198001017212"  # valid check character, born 1980-01-01, male


def lab(n: int, day: str) -> bytes:
    """An ALT result of the resident under record MRN ``n``, taken on ``day`` (YYYYMMDD)."""
    text = (
        f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|{day}091500||ORU^R01^ORU_R01|H16{n:06d}|P|2.5.1|||AL|NE||UNICODE UTF-8\r"
        f"PID|1||{NID}^^^^NNCHN~MRN{n:07d}^^^FNXRMYY^MR||张^三||19800101|M|||江苏省盐城市阜宁县^^阜宁^江苏^224400||13800000000\r"
        f"PV1|1|O|内科门诊^^^FNXRMYY||||D001^李^医生\r"
        f"ORC|RE|ORD{n:06d}|LAB{n:06d}\r"
        f"OBR|1|ORD{n:06d}|LAB{n:06d}|GAN^肝功能^L|||{day}083000|||||||{day}083500|BLD^血液|D001^李^医生||||||{day}091000|||F\r"
        f"OBX|1|NM|ALT^丙氨酸氨基转移酶^L||25|U/L|9-50|N|||F|||{day}090000\r"
        f"OBX|2|NM|WBC^白细胞计数^L||6.2|10\\S\\9/L|3.5-9.5|N|||F|||{day}090000\r"
    )
    return text.encode("utf-8")


MESSAGES = {1: lab(1, "20261101"), 2: lab(2, "20261104"), 3: lab(3, "20261106")}


def _outcome(settings, order: list[int]) -> dict:
    with Engine(settings) as engine, running_mllp(engine) as port:
        for n in order:
            ack = mllp_send(port, MESSAGES[n])
            assert "MSA|AA" in ack or "MSA|CA" in ack, ack
        repo = engine.repository
        ids = {}
        for patient in repo.search("Patient", [("_count", "50")]).resources:
            for n in (1, 2, 3):
                if any(i.get("value") == f"MRN{n:07d}" for i in patient.get("identifier", [])):
                    ids[n] = patient["id"]
        assert len(ids) == 3
        name = {v: k for k, v in ids.items()}
        out: dict = {"links": {}, "versions": {}, "first": {}, "index": {}}
        for n, pid in ids.items():
            current = repo.read("Patient", pid)
            out["links"][n] = sorted((link["type"], name[link["other"]["reference"].split("/", 1)[1]])
                                     for link in current.get("link", []))
            out["versions"][n] = int(current["meta"]["versionId"])
            first = repo.vread("Patient", pid, "1")
            out["first"][n] = sorted(name[link["other"]["reference"].split("/", 1)[1]] for link in first.get("link", []))
            doc = engine.identity.record(pid)
            out["index"][n] = (doc["status"], doc["person"] is not None)
        persons = {engine.identity.record(pid)["person"] for pid in ids.values()}
        assert len(persons) == 1
        flags = engine.store.collection("recognition_flags").find({})
        out["flags"] = sorted((f["status"], f["item"], f["day"], f["prior_day"]) for f in flags
                              if f["status"] != "void")
        return out


@pytest.mark.parametrize("order", [[1, 2, 3], [3, 1, 2], [2, 3, 1]])
def test_returning_resident_links_versions_and_flags(settings, order):
    got = _outcome(settings, order)
    # every record links the other two, and the index holds all three linked to one person
    assert got["links"] == {1: [("seealso", 2), ("seealso", 3)], 2: [("seealso", 1), ("seealso", 3)],
                            3: [("seealso", 1), ("seealso", 2)]}
    assert set(got["index"].values()) == {("linked", True)}
    # a new record states its links to the earlier ones in its first version; each earlier record
    # gets one version more per record after it, and no record a version of nothing new
    arrived = {n: i for i, n in enumerate(order)}
    assert got["versions"] == {n: 3 - arrived[n] for n in order}
    assert got["first"] == {n: sorted(m for m in order if arrived[m] < arrived[n]) for n in order}
    # each repeat of the liver test within its window is flagged against the test before it, in
    # whichever order the messages came (a prior arriving late decides its repeat again)
    assert got["flags"] == [("flagged", "LFT", "2026-11-04", "2026-11-01"),
                            ("flagged", "LFT", "2026-11-06", "2026-11-04")]


def _mpi_state(engine, ids: list[str]) -> dict:
    out = {}
    for pid in ids:
        current = engine.repository.read("Patient", pid)
        out[pid] = (current["meta"]["versionId"], [link["other"]["reference"] for link in current.get("link", [])],
                    engine.identity.record(pid)["status"])
    return out


def test_the_index_link_version_is_not_classified_again_and_changes_still_are(engine, monkeypatch):
    """The patient index's own version of an earlier record (its links alone changed) is not
    classified again; a record whose content changes in the same write group as a new record of
    its person -- the index rewrites it before its own hook ran -- still is: a birth date against
    its ID number leaves the person, a new ID number moves it to another (the same links, versions
    and index entries as the code before this round gave)."""
    from tests.test_identity_mpi import WANG, ZHANG, patient

    repo, mpi = engine.repository, engine.identity
    repo.update(patient("fn-1", ZHANG))
    classified: list[str] = []
    real = mpi._classify_members
    monkeypatch.setattr(mpi, "_classify_members", lambda p, *a: classified.append(p["id"]) or real(p, *a))
    repo.update(patient("fm-2", ZHANG))
    assert classified == ["fm-2"]  # by its statement; fn-1's version with the link to it is not
    assert _mpi_state(engine, ["fn-1", "fm-2"]) == {"fn-1": ("2", ["Patient/fm-2"], "linked"),
                                                    "fm-2": ("1", ["Patient/fn-1"], "linked")}
    issues = [r.issues for r in repo.write_many([patient("fz-7", ZHANG), patient("fn-1", ZHANG, birth="1990-01-02")])]
    assert issues[0] == [] and "birthDate" in issues[1][0]["diagnostics"]
    assert _mpi_state(engine, ["fn-1", "fm-2", "fz-7"]) == {
        "fn-1": ("5", [], "conflict"), "fm-2": ("3", ["Patient/fz-7"], "linked"),
        "fz-7": ("2", ["Patient/fm-2"], "linked")}
    repo.write_many([patient("fy-3", ZHANG), patient("fm-2", WANG, name="王五", gender="female", birth="1985-06-15")])
    assert _mpi_state(engine, ["fm-2", "fz-7", "fy-3"]) == {
        "fm-2": ("6", [], "linked"), "fz-7": ("4", ["Patient/fy-3"], "linked"),
        "fy-3": ("2", ["Patient/fz-7"], "linked")}
    assert mpi.person_compartment("fm-2") == {"fm-2"}
