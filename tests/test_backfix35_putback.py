"""backfix35: the owner's put-back of a re-keyed number needs the owner's record, as its message leaves it, to be
positively the member's record's person (``persons._as_stored``, ``_same_person``). Real HL7 through ``POST /hl7v2``
into the real store on each backend (SQLite, mongomock), read back over ``/fhir``; the set-ups of idfix35's tests."""

from __future__ import annotations

from fastapi.testclient import TestClient

from engine.engine import Engine
from tests.module_store import module_eng  # noqa: F401 -- one engine a module on each backend
from tests.test_idfix35_owner import _referred, _restated
from tests.test_mfix34_members import APART, FNZYY_MRN, _tokens, both  # noqa: F401
from tests.test_rvidentity32_probes import MRN, patients

Both = tuple[Engine, TestClient, dict[str, str]]


def _after(http: TestClient, n: str, name: str, birth: str, sex: str) -> tuple[dict, dict]:
    """FNZYY's 冯三 (M 1961) re-keyed apart by FNXRMYY's 陈四 (F 1992); then FNXRMYY's A08 as given. Returns
    (FNZYY's record, FNXRMYY's record) as stored after it."""
    own = _referred(http, n)
    _restated(http, f"{n}C", n, "陈^四", "19920303", "F")
    _restated(http, f"{n}D", n, name, birth, sex)
    (after,) = patients(http, f"{FNZYY_MRN}|Z{n}")
    (owner,) = [p for p in patients(http, f"{MRN}|{n}") if p["id"] != own["id"]]
    return after, owner


def test_the_owners_restatement_deleting_the_sex_leaves_the_record_apart(both: Both) -> None:  # noqa: F811
    """The owner's A08 as 冯三 1961 with PID-8 ``""`` (HL7's delete): its record is left 冯三 1961 with no sex -- not
    positively FNZYY's 冯三 M (the stored F must not be read as still there, nor silence as agreement)."""
    _, http, _ = both
    after, owner = _after(http, "BF1", "冯^三", "19610101", '""')
    assert "gender" not in owner and owner["birthDate"] == "1961-01-01", owner
    assert f"{APART}|BF1" in _tokens(after) and f"{MRN}|BF1" not in _tokens(after), after["identifier"]


def test_the_owners_restatement_of_an_unknown_sex_leaves_the_record_apart(both: Both) -> None:  # noqa: F811
    """The owner's A08 as 冯三 1961, sex U (unknown): no positive agreement with FNZYY's 冯三 M -- left apart."""
    _, http, _ = both
    after, owner = _after(http, "BF2", "冯^三", "19610101", "U")
    assert owner.get("gender") == "unknown", owner
    assert f"{APART}|BF2" in _tokens(after) and f"{MRN}|BF2" not in _tokens(after), after["identifier"]


def test_a_thin_restatement_is_judged_by_the_record_it_leaves(both: Both) -> None:  # noqa: F811
    """The owner's record 陈四 F 1992 (FNZYY's 冯三 M 1961 re-keyed apart); its A08 stating the sex alone (M) leaves
    陈四 M 1992: the record as left is judged, not the PID alone (a sex, no name, no birth date) -- and 陈四 M 1992 is
    not positively 冯三 M 1961 (name and birth date differ; the sex alone in common): the number stays apart.
    Flipped by putback36 (rv36a MED 5, the lead's rule): backfix35 asserted the number went back, the sex agreeing
    and ``contradicts_all`` finding no two people. Since nbfix38 陈四 M 1992-03-03 keys 冯三 M 1961-01-01 apart at
    once (the re-key's rule, ``contradicts_all``: the name and a day of birth both differ, whatever the sex)."""
    _, http, _ = both
    own = _referred(http, "BF3")
    _restated(http, "BF3C", "BF3", "陈^四", "19920303", "M")
    (kept,) = patients(http, f"{FNZYY_MRN}|ZBF3")
    assert f"{APART}|BF3" in _tokens(kept) and f"{MRN}|BF3" not in _tokens(kept), kept["identifier"]
    _restated(http, "BF3D", "BF3", "陈^四", "19920303", "F")
    (apart,) = patients(http, f"{FNZYY_MRN}|ZBF3")
    assert f"{APART}|BF3" in _tokens(apart), apart["identifier"]
    _restated(http, "BF3E", "BF3", "", "", "M")
    (owner,) = [p for p in patients(http, f"{MRN}|BF3") if p["id"] != own["id"]]
    assert owner["name"][0]["family"] == "陈" and owner["birthDate"] == "1992-03-03", owner  # nothing erased
    (left,) = patients(http, f"{FNZYY_MRN}|ZBF3")
    assert f"{APART}|BF3" in _tokens(left) and f"{MRN}|BF3" not in _tokens(left), left["identifier"]
