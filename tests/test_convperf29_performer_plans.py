"""Results naming their performing organisation (OBX-23) are built from compiled plans (twenty-ninth
round, convperf29), byte for byte as the general path builds them.

Until now an OBX with OBX-23 always took the general path (``results._observation``): ~2.5-3x the
convert CPU of the same panel without it, and a LIS that fills OBX-23 fills it on every result. Now
the result loop works out each distinct OBX-23 of a group once (``results.result_performer``) and
the plans key their results by that performer's content. The corpus: XON with and without XON-10,
an id in XON-3, XON-6 as the identifier's assigner (alone, too), the sender itself, a declared and an
undeclared member, repeated OBX-23 values, escapes, an XON naming nothing, and mixed panels (results
with and without OBX-23, different labs in one group), over NM (with a comparator and trailing
zeros), ST and CWE results. Each message is converted on a fresh site -- nothing learnt, every result
converted the general way -- and on a site that met the panel's shapes twice before, where every
result must come from a plan; the two outputs (bundle, warnings, unmapped) are the same bytes.

Recognition answers by plan (``facts.classify_planned``): a plan must never lend one lab's answer to
another's results, so no plan builds results of two performers (``test_one_plan_one_performer``
fails when the plans' key leaves the performer out). Over MLLP into the real store, the same panel
from a declared member, an unknown lab and the sender itself, in turn, reads as each one's result.
And the A12 bed rule, now data in merge.yaml.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.convert import convert
from adapters.hl7v2.parser import parse
from engine.engine import Engine
from engine.settings import Settings
from mappings.site import Site
from tests import test_convert_golden as golden

ROOT = Path(__file__).resolve().parents[1]

# (code, name, type, value, unit, range, flag): a blood count's numbers, a text and a coded answer
TESTS = [
    ("WBC", "白细胞计数", "NM", "6.20", "10\\S\\9/L", "3.5-9.5", "N"),
    ("RBC", "红细胞计数", "NM", "4.8", "10\\S\\12/L", "4.3-5.8", "N"),
    ("HGB", "血红蛋白", "NM", "<5", "g/L", "130-175", "L"),
    ("HCT", "红细胞压积", "NM", "0.430", "L/L", "0.40-0.50", "N"),
    ("PLT", "血小板计数", "NM", "210", "10\\S\\9/L", "125-350", "N"),
    ("ABO", "血型", "CWE", "A^A型^99ABO", "", "", ""),
    ("MORPH", "红细胞形态", "ST", "大小不等\\T\\淡染", "", "", ""),
]

# OBX-23 texts, as LIS send them
UNKNOWN_LAB = "金域医学检验所^^^^^^^^^JY001"
CORPUS = {
    "xon10": [UNKNOWN_LAB] * 7,
    "name-only": ["迪安诊断"] * 7,
    "xon3-id": ["^^KM002"] * 7,
    "xon6-assigner": ["艾迪康^^^^^NJLAB&1.2.3&ISO^^^^ADC01"] * 7,
    "xon6-alone": ["^^^^^NJLAB"] * 7,
    "sender-by-id": ["^^^^^^^^^FNXRMYY"] * 7,
    "sender-by-name": ["阜宁县人民医院"] * 7,
    "declared-member": ["阜宁县中医院^^^^^^^^^FNZYY"] * 7,
    "undeclared-member": ["^^^^^^^^^FNYLWSY"] * 7,
    "repeated": ["金域^^^^^^^^^JY001~迪安^^^^^^^^^DA01"] * 7,
    "escaped": ["A\\T\\B 检验^^^^^^^^^AB01"] * 7,
    "names-nothing": ["^^^^^^^^^"] * 7,
    "mixed": [UNKNOWN_LAB, "", "阜宁县中医院^^^^^^^^^FNZYY", UNKNOWN_LAB, "", "迪安诊断", ""],
}


def message(n: int, performers: list[str]) -> str:
    """A panel of ``TESTS`` from FNXRMYY, message ``n`` (its own ids and times), each result naming
    the performer at its place in ``performers`` ("": none)."""
    obx = "".join(
        f"OBX|{i}|{vt}|{code}^{name}^L||{value}|{unit}|{rng}|{flag}|||F|||2026110109{n % 60:02d}00"
        + (("|" * 9 + who) if who else "") + "\r"
        for i, ((code, name, vt, value, unit, rng, flag), who) in enumerate(zip(TESTS, performers, strict=True), 1))
    return (
        f"MSH|^~\\&|LIS|FNXRMYY|HUREN|FNYGT|20261101091500||ORU^R01^ORU_R01|P29-{n:06d}|P|2.5.1\r"
        f"PID|1||320923198001010011^^^^NNCHN~MRN{n:06d}^^^FNXRMYY^MR||张^三||19800101|M\r"
        f"PV1|1|O|内科门诊^^^FNXRMYY||||D001^李^医生\r"
        f"ORC|RE|ORD{n:06d}|LAB{n:06d}\r"
        f"OBR|1|ORD{n:06d}|LAB{n:06d}|XCG^血常规^L|||20261101083000|||||||||D001^李^医生||||||"
        f"20261101091000|||F\r" + obx)


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped site, declaring that FNXRMYY sends results its member FNZYY performed."""
    site = tmp_path_factory.mktemp("site")
    (site / "hl7v2").mkdir()
    shipped = (ROOT / "mappings" / "hl7v2" / "senders.yaml").read_text("utf-8")
    assert "performers: {}" in shipped
    (site / "hl7v2" / "senders.yaml").write_text(shipped.replace("performers: {}", "performers: {FNXRMYY: [FNZYY]}"),
                                                 "utf-8")
    # the leukocyte count a recognition item of its own (recognition reads a result's answer by plan)
    (site / "codes").mkdir()
    codes = (ROOT / "mappings" / "codes" / "FNXRMYY.yaml").read_text("utf-8")
    wbc = '  WBC: {display: 白细胞计数, '
    assert wbc in codes
    (site / "codes" / "FNXRMYY.yaml").write_text(codes.replace(wbc, wbc + "item: CBC, "), "utf-8")
    return site


def _site(site_dir: Path, tmp: Path) -> Site:
    return Site.load(Settings(data_dir=tmp, site=site_dir))


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_results_naming_a_performer_are_built_from_plans_as_the_general_path_builds_them(
        site_dir: Path, tmp_path: Path, case: str) -> None:
    performers = CORPUS[case]
    text = message(3, performers)
    fresh = _site(site_dir, tmp_path / "fresh")
    general = golden._outcome(text, fresh)
    assert b'"refused"' not in general and general.count(b'"resourceType":"Observation"') == len(TESTS)
    assert not [r for r in convert(parse(message(4, performers)), _site(site_dir, tmp_path / "other")).planned
                if r.startswith("Observation/")]  # a fresh site plans nothing: the general path

    learnt = _site(site_dir, tmp_path / "learnt")
    for n in (1, 2):  # the panel's shapes met twice (a coded answer is planned the second time)
        convert(parse(message(n, performers)), learnt)
    compiled = golden._outcome(text, learnt)
    assert compiled == general
    conv = convert(parse(message(5, performers)), learnt)
    observations = [r for r in conv.by_reference if r.startswith("Observation/")]
    assert len(observations) == len(TESTS)
    assert sorted(r for r in conv.planned if r.startswith("Observation/")) == sorted(observations)
    # each result names its own performer (the general path's choice, checked above), in order
    for obs_ref, who in zip([r["reference"] for r in conv.by_reference[
            next(r for r in conv.by_reference if r.startswith("DiagnosticReport/"))]["result"]], performers,
            strict=True):
        performer = conv.by_reference[obs_ref]["performer"][0]
        if who and case != "names-nothing":
            assert "identifier" in performer, (case, who, performer)
        else:
            assert performer == {"reference": performer["reference"], "display": "阜宁县人民医院"}


def test_the_values_read_back_as_sent(site_dir: Path, tmp_path: Path) -> None:
    """Built from plans, each value keeps its text: decimals' trailing zeros, the comparator, escapes."""
    performers = [CORPUS["escaped"][0], "", *CORPUS["mixed"][2:]]
    learnt = _site(site_dir, tmp_path / "learnt")
    for n in (1, 2):
        convert(parse(message(n, performers)), learnt)
    conv = convert(parse(message(9, performers)), learnt)
    assert len([r for r in conv.planned if r.startswith("Observation/")]) == len(TESTS)
    text = golden._outcome(message(9, performers), learnt).decode()
    for sent in ('"value":6.20,', '"value":0.430,', '"comparator":"<"', '"valueString":"大小不等&淡染"',
                 '"display":"A&B 检验"'):
        assert sent in text, sent


def test_one_plan_one_performer(site_dir: Path, tmp_path: Path) -> None:
    """Recognition answers a planned result by its plan (``facts.classify_planned``, the ingest
    batch's preview): so the results one plan builds must all name the same performer. The same
    panel from a declared member, an unknown lab, the sender itself (by id, and with no OBX-23) and
    mixed, each met twice before: every result is planned, and no plan serves two performers."""
    from engine.fhirjson import dumps

    learnt = _site(site_dir, tmp_path / "learnt")
    cases = ["declared-member", "xon10", "sender-by-id", "names-nothing", "mixed", "undeclared-member"]
    for n in (1, 2):
        for i, case in enumerate(cases):
            convert(parse(message(10 * n + i, CORPUS[case])), learnt)
    served: dict[int, set[bytes]] = {}
    for i, case in enumerate(cases):
        conv = convert(parse(message(50 + i, CORPUS[case])), learnt)
        planned = {r: p for r, p in conv.planned.items() if r.startswith("Observation/")}
        assert len(planned) == len(TESTS), case
        for ref, p in planned.items():
            served.setdefault(id(p.plan), set()).add(dumps(conv.by_reference[ref]["performer"]))
    assert all(len(performers) == 1 for performers in served.values()), served
    assert len({next(iter(p)) for p in served.values()}) >= 5  # FNZYY, JY001, the sender, 迪安, FNYLWSY


@pytest.fixture(scope="module")
def engine(site_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with Engine(Settings(data_dir=tmp_path_factory.mktemp("var"), http_port=0, mllp_port=0, site=site_dir)) as eng:
        yield eng


def test_a_plan_never_lends_one_performers_answer_to_another(engine: Engine) -> None:
    """The same panel, in turn from the declared member, an unknown lab, the sender itself and the
    member again, ingested as one batch (the batch's preview answers planned results by plan):
    each result's recognition entry, and its stored facts, name its own performer."""
    turns = [("阜宁县中医院^^^^^^^^^FNZYY", "FNZYY"), (UNKNOWN_LAB, "unknown-performer:"), ("", "FNXRMYY"),
             ("阜宁县中医院^^^^^^^^^FNZYY", "FNZYY"), (UNKNOWN_LAB, "unknown-performer:")]
    outcomes = engine.ingestor.process([(message(100 + i, [who] * len(TESTS)).encode(), "test", "127.0.0.1:1")
                                        for i, (who, _) in enumerate(turns)])
    assert all(b"MSA|AA|" in o.ack for o in outcomes), [o.ack for o in outcomes]
    for i, (_, institution) in enumerate(turns):
        [report] = engine.repository.search("DiagnosticReport", [("identifier", f"LAB{100 + i:06d}")]).resources
        wbc_ref = report["result"][0]["reference"]
        entry = engine.recognition.index.get(wbc_ref)
        assert entry is not None and entry["inst"].startswith(institution), (i, entry)
        facts = engine.recognition.facts.result(engine.repository.read(*wbc_ref.split("/")))
        assert facts is not None and facts.institution.startswith(institution), (i, facts)


# --- the A12 bed rule as data (merge.yaml Encounter.location ``history_taken_back_by``) -------------

def _a12_beds(site: Site) -> list[tuple[str, str]]:
    """The beds an A12 (back to 101, PV1-6 the cancelled transfer's 102) states, as converted."""
    conv = convert(parse("MSH|^~\\&|HIS|FNXRMYY|HUREN|FNYGT|20261101092000||ADT^A12^ADT_A01|P29A12|P|2.5.1\r"
                         "EVN|A12|20261101092000\rPID|1||MVP29^^^FNXRMYY^MR||张^三||19800101|M\r"
                         "PV1|1|I|W01^101^1^FNXRMYY|||W01^102^1^FNXRMYY|D01^王^明||||||||||||VP29^^^FNXRMYY^VN\r"), site)
    [encounter] = [r for r in conv.by_reference.values() if r["resourceType"] == "Encounter"]
    return sorted((e["location"]["display"], e["status"]) for e in encounter.get("location", ()))


def test_the_cancelled_transfers_bed_rule_is_the_merge_files(site_dir: Path, tmp_path: Path) -> None:
    """A12's PV1-6 (the bed the cancelled transfer went to) is no past bed under the shipped rule;
    a site whose merge.yaml names other events there keeps it as PV1-6 reads (``completed``)."""
    assert _a12_beds(_site(site_dir, tmp_path / "shipped")) == [("W01 101房 1床", "active")]
    other = tmp_path / "other-site"
    (other / "hl7v2").mkdir(parents=True)
    (other / "hl7v2" / "senders.yaml").write_text((site_dir / "hl7v2" / "senders.yaml").read_text("utf-8"), "utf-8")
    shipped = (ROOT / "mappings" / "merge.yaml").read_text("utf-8")
    assert shipped.count("history_taken_back_by: [A12]") == 1
    (other / "merge.yaml").write_text(shipped.replace("history_taken_back_by: [A12]", "history_taken_back_by: [A13]"),
                                      "utf-8")
    assert _a12_beds(_site(other, tmp_path / "other")) == [("W01 101房 1床", "active"), ("W01 102房 1床", "completed")]
