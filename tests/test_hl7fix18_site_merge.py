"""A site ``merge.yaml`` is its truth at the level it names it (review of the eighteenth round).

hl7probe18 laid a site's ``merge.yaml`` over the shipped one group by group and mode by mode, so a
shipped source group the site never named came back and moved the site's writers out of its own
groups. Two sites whose file alone gave the right answer then got another:

- a copy from before the ``referral`` group (``tests/fixtures/site_merge_e86655b``: REF in no group,
  ``other``, keep-if-absent) put REF in the shipped ``referral`` group with no mode in the site's
  defaults -- ``replace``: a thinner REF^I13 erased the referral's receiving institution, its note
  and its reason;
- a site grouping every feed as ``hl7`` with ``replace`` and ``reject`` got the shipped ``feed``'s
  keep-if-absent and ``warn`` (the smaller group is asked first): a conflicting write it chose to
  refuse was accepted.

The site's sources and defaults are now its own, whole; only the shipped element rules are laid under
its resources (those naming a group the site does not define left out). Sent over MLLP, read back
through ``/fhir``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from adapters.hl7v2.ack import ack_code_of
from engine.api.app import create_app
from engine.engine import Engine
from engine.settings import Settings
from mappings.site import Site
from tests.test_convert11_thinner import send

OLD_SITE = Path(__file__).parent / "fixtures" / "site_merge_e86655b"
TOWN, COUNTY = "FNYLWSY", "FNXRMYY"


def referral(control: str, event: str, *, receiver: str = "", reason: str = "", note: str = "") -> bytes:
    segments = [
        f"MSH|^~\\&|HIS|{TOWN}|HUREN|FUNING|20261125091500||REF^{event}^REF_{event}|{control}|P|2.5.1"
        "|||AL|NE|CHN|UNICODE UTF-8",
        f"RF1|P^^HL70283|S^^HL70280|ZZ01^上转会诊^L|||ZZ-2026-18^{TOWN}|20261125|20261225||{reason}",
        "PRD|RP^转出医生^HL70286|王^医生|||||T001",
        f"PRD|RT^接收医生^HL70286|周^主任||{'^^^' + receiver if receiver else ''}|||C900",
        f"PID|1||32092319850412001X^^^公安部^NNCHN~YL100^^^{TOWN}^MR||王^建国||19850412|M",
        "PV1|1|O|全科^^^FNYLWSY",
        *([f"NTE|1||{note}"] if note else []),
    ]
    return ("\r".join(segments) + "\r").encode("utf-8")


def reader(engine: Engine) -> TestClient:
    client = TestClient(create_app(engine))
    client.headers["Authorization"] = "Bearer " + engine.auth.issue_system_token("reader", "system/*.rs")
    return client


def test_a_site_copy_from_before_the_referral_group_keeps_what_an_earlier_referral_stated(
        settings: Settings) -> None:
    assert "referral" not in (OLD_SITE / "merge.yaml").read_text("utf-8").split("resources:")[0]
    with Engine(settings.with_(site=OLD_SITE)) as engine:
        acks = send(engine, referral("R1", "I12", receiver=COUNTY, reason="R07.4^胸痛^I10", note="胸痛两天"),
                    referral("R2", "I13"))  # the modification states no receiver, reason or note
        assert [ack_code_of(a) for a in acks] == ["AA", "AA"], acks
        with reader(engine) as http:
            (sr,) = [e["resource"] for e in http.get("/fhir/ServiceRequest").json()["entry"]]
    assert [p["identifier"]["value"] for p in sr["performer"] if "identifier" in p] == [COUNTY], sr
    assert "胸痛" in str(sr.get("reasonCode")), sr
    assert [n["text"] for n in sr.get("note", ())] == ["胸痛两天"], sr


# the shipped privacy rows name ``feed``: a site without that group names them itself, or is refused
# at load (``mappings.site.laid_over``, twentieth round, mdmmend20)
_HL7_META = "{hl7: parts, stands: {hl7: [V, R]}, yields_to: [V]}"
_PRIVACY = (f"    meta: {_HL7_META}\n  DiagnosticReport:\n    meta: {_HL7_META}\n"
            "  DocumentReference:\n    securityLabel: {stands: {hl7: [V, R]}, yields_to: [V]}\n")

HL7_GROUP = ("sources:\n  hl7: [ADT, ORM, OML, OMG, ORU, OUL, MDM, PPR, REF, RRI, SIU]\n  api: [api]\n"
             "defaults:\n  modes: {hl7: replace, api: replace, other: keep-if-absent}\n"
             "  conflict: {hl7: reject, api: reject, other: warn}\n"
             "resources:\n  Observation:\n    status: {stands: {hl7: [final]}}\n" + _PRIVACY)


def result(control: str, status: str) -> bytes:
    return (f"MSH|^~\\&|LIS|{COUNTY}|HUREN|FNYGT|20261201091500||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
            f"PID|1||ZY18S^^^{COUNTY}^MR||王^建国||19850412|M\r"
            f"OBR|1|ORD-S1|LAB-S1|GLU^血糖^L|||20261201083000||||||||BLD||||||||20261201091000|||{status}\r"
            f"OBX|1|NM|GLU^血糖^L||5.6|mmol/L|3.9-6.1||||{status}\r").encode()


def test_a_site_that_rejects_conflicting_writes_of_its_own_group_still_rejects_them(
        settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "merge.yaml").write_text(HL7_GROUP, "utf-8")
    with Engine(settings.with_(site=tmp_path)) as engine:
        acks = send(engine, result("S1", "F"), result("S2", "P"))
        with reader(engine) as http:
            (obs,) = [e["resource"] for e in http.get("/fhir/Observation").json()["entry"]]
    assert ack_code_of(acks[0]) == "AA", acks
    # a final result taken back to preliminary: a conflict the site refuses (was AA with a warning)
    assert ack_code_of(acks[1]) == "AE", acks[1]
    assert obs["status"] == "final" and obs["meta"]["versionId"] == "1"


def test_the_site_names_its_sources_and_defaults_whole(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "merge.yaml").write_text(HL7_GROUP, "utf-8")
    shipped = Site.load(settings).merge
    site = Site.load(settings.with_(site=tmp_path)).merge
    assert site["sources"] == {"hl7": ["ADT", "ORM", "OML", "OMG", "ORU", "OUL", "MDM", "PPR", "REF", "RRI", "SIU"],
                               "api": ["api"]}
    assert site["defaults"] == {"modes": {"hl7": "replace", "api": "replace", "other": "keep-if-absent"},
                                "conflict": {"hl7": "reject", "api": "reject", "other": "warn"}}
    # shipped rules naming only what the site knows are laid under; those naming its absent groups are not
    # (``meta``, a label not lowered, names ``feed``, a group this site does not define: the site names
    # it itself, as it must -- a privacy row, ``laid_over``; ``performer``, by-key for ``feed`` since convfid27, and
    # ``valueQuantity``, keeping a unit for ``feed`` since conv42, too)
    assert site["resources"]["Observation"] == {**{k: v for k, v in shipped["resources"]["Observation"].items()
                                                   if k not in ("meta", "performer", "valueQuantity")},
                                                "status": {"stands": {"hl7": ["final"]}},
                                                "meta": {"hl7": "parts", "stands": {"hl7": ["V", "R"]},
                                                         "yields_to": ["V"]}}
    # the visit guard (``another_person`` alone names the groups it lacks) is laid with their writers (ident38)
    guard = {w: "reject" for w in ("ADT", "ORM", "OML", "OMG", "ORU", "OUL", "MDM", "PPR", "REF", "RRI", "other")}
    assert site["resources"]["Encounter"] == {"location": shipped["resources"]["Encounter"]["location"],
                                              "subject": {"another_person": guard}}
    assert "*" not in site["resources"]
