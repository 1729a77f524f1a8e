"""Site data: the institutions of a deployment, their code maps and the HL7 mapping tables.

Shipped defaults live in this folder; a deployment's ``HUREN_SITE`` folder holds files with the
same names that replace the defaults file by file (``institutions.yaml``, ``codes/<CODE>.yaml``,
``codes/units.yaml``, ``hl7v2/<table>.yaml``, ``merge.yaml``). Replacing whole files, rather than merging keys,
keeps what is in force easy to see: the site's file is the truth for that file.
Three exceptions. The staff pages' display words (``insurance/words.yaml``, ``mappings.pagewords``):
a site names only the words it changes, merged over the shipped ones. ``merge.yaml``'s resource rules are laid
over the shipped ones element by element, its sources and defaults its own (``laid_over``). And ``hl7v2/vocabulary.yaml``,
a file of many tables, is replaced table by table (``VOCABULARY``): a site copy made before a release
added a table (``observation_absent_reason``, ``encounter_undoes_by_event``) lacked it, and every
message needing it was refused (or, for the tables read as optional, silently converted otherwise).
A table the site names is the truth for that table, whole; one it does not name is the shipped one.

Integrators edit these files by hand, so every file is checked against a JSON schema at start-up
and an error names the file, the line and the field (``institutions.yaml:7: [1].qc.until: ...``).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from adapters.hl7v2.tables import trigger_events
from engine.recognition.qc import DeclaredQc
from mappings.frozen import FrozenDict, frozen
from mappings.pagewords import PageWords
from mappings.sitefiles import SiteError, YamlDocument, check, load_checked, locate, read_yaml

DEFAULTS_DIR = Path(__file__).resolve().parent
OTHER_GROUP = "other"  # merge.yaml: the group of any writer no group names (engine.merge_rules.OTHER)
VOCABULARY = "hl7v2/vocabulary.yaml"  # laid over the shipped file table by table, not replacing it whole
NATIONAL_ID_TYPE = "NNCHN"
# An institution's time zone when institutions.yaml names none: the one place this default is written.
# The recognition rules, the insurance reports (``engine.insurance.charges``) and the referral rows read
# it from here, so an institution without a ``timezone`` has one zone everywhere (money25).
DEFAULT_ZONE = "Asia/Shanghai"


@lru_cache(maxsize=4096)
def urn_part(text: str) -> str:
    """``text`` made safe inside a URN (facility ids such as "NIST Lab" contain spaces)."""
    return quote(text.strip(), safe="-._~")


LOCAL_CODE_PREFIX = "urn:huren:code:"


def local_code_system(system: str, prefix: str = LOCAL_CODE_PREFIX) -> tuple[str, str | None] | None:
    """(institution, 99zzz or None) of a local-code system URI, None for any other system.

    The one reader of the two forms the converters write (``Institution.code_system`` and
    ``adapters.convert.tables.coding_system``): ``urn:huren:code:<INST>`` (codes with no system,
    ``L``, a site-declared default 99zzz, and every 99zzz in stores written before the twenty-eighth
    round) and ``urn:huren:code:<INST>:<99zzz>``. Both are codes of the institution's one code map
    (codes/<INST>.yaml), so every reader of local codes (the converter's code map, recognition's item
    and analyte look-ups, the institution a code names) calls this and old and new stores match the
    same item. The institution part is URN-quoted (``urn_part``): returned unquoted, as the site names it.
    """
    if not system.startswith(prefix) or len(system) == len(prefix):
        return None
    inst, _, local = system[len(prefix):].partition(":")
    if not inst:
        return None
    return unquote(inst), (unquote(local) or None)


# An institution's ``qc`` is the standing QC status it declares (qc.passed up to qc.until): a
# ``DeclaredQc`` of engine.recognition.qc, the one module that answers QC questions.
GRADES = ("三级", "二级", "一级")  # 一级 includes primary care (基层)


@dataclass(frozen=True)
class Institution:
    code: str  # matched against MSH-4.1
    name: str
    community: str
    timezone: str = DEFAULT_ZONE
    qc: DeclaredQc = field(default_factory=lambda: DeclaredQc(frozenset()))
    grade: str | None = None  # 三级 / 二级 / 一级 (基层 reads as 一级): who must recognise whom
    identifier_type: str = NATIONAL_ID_TYPE  # PID-3.5 type code of the national resident ID
    mrn_system: str = ""  # Identifier.system of this institution's MRNs
    mrn_type: str = "MR"
    # further names (PID-3 CX-4.1, or CX-4.2's universal id) under which a sender states this
    # institution's own record numbers, besides its code, its name and its MSH-4 aliases (the HIS's
    # application name when its PID-3 says ``123^^^HIS^MR``): ``adapters.convert.common`` decides
    mrn_authorities: tuple[str, ...] = ()
    # the sending applications (MSH-3.1) that register this institution's persons -- its HIS and, at a
    # site with one, a separate physical-exam (体检) registration system: an ADT A08/A31 from any of them
    # may restate a record another of them registered (``adapters.convert.persons``); none declared,
    # only the record's own registering application may
    registration_applications: tuple[str, ...] = ()
    # the sending applications (MSH-3.1) whose results and orders may make a NEW record that states a resident ID
    # number another record holds -- the patient index then joins the two as one person's: a LIS whose patients come
    # from the HIS's orders restates the HIS's registration. On a site declaring ``registration_applications``, any
    # other application's result or order making a new record with such a number has it held (filed unlinked, W 205:
    # ``adapters.convert.persons.new_record_linked``); the registration applications always may
    number_linking_applications: tuple[str, ...] = ()

    @property
    def code_system(self) -> str:
        """System of this institution's local codes (items, orders, studies)."""
        return f"{LOCAL_CODE_PREFIX}{urn_part(self.code)}"

    @property
    def organization_system(self) -> str:
        return "urn:huren:institution"


@dataclass(frozen=True)
class CodeEntry:
    local: str
    display: str = ""
    loinc: str = ""
    loinc_display: str = ""
    item: str = ""  # recognition item code, when the site maps one


@dataclass(frozen=True)
class CodeMap:
    """One institution's local item code → standard code map, and its unit spellings → UCUM."""

    institution: str
    codes: Mapping[str, CodeEntry] = field(default_factory=dict)
    units: Mapping[str, str] = field(default_factory=dict)

    def lookup(self, local: str) -> CodeEntry | None:
        return self.codes.get(local)


@dataclass(frozen=True)
class Site:
    institutions: Mapping[str, Institution]
    code_maps: Mapping[str, CodeMap]
    units: Mapping[str, str]  # site-wide unit spellings → UCUM (codes/units.yaml)
    tables: Mapping[str, Any]  # hl7v2 mapping tables by file stem
    sources: tuple[str, ...] = ()  # files read, for diagnostics
    merge: Mapping[str, Any] = field(default_factory=dict)  # merge.yaml (compiled by engine.merge_rules)
    merge_file: str = ""  # where merge.yaml was read from, for error messages
    # the staff pages' words for codes (insurance/words.yaml, the site's sections merged over the shipped)
    words: PageWords = field(default_factory=lambda: PageWords(None), compare=False)

    @classmethod
    def load(cls, settings: Any) -> Site:
        """Shipped defaults overlaid by ``settings.site`` (the HUREN_SITE folder) when set."""
        site_dir = getattr(settings, "site", None)
        return cls.from_dirs(DEFAULTS_DIR, Path(site_dir) if site_dir else None)

    @classmethod
    def from_dirs(cls, defaults: Path, site_dir: Path | None = None) -> Site:
        """The site read from ``defaults`` overlaid by ``site_dir``. Its tables are read-only
        (``mappings.frozen``) and shared: every call on files of the same bytes (any folders: a test's
        site folder written again, a reload of an unchanged site) gets this process's one reading of them
        (``_READINGS``, by the files' content), so the converter's tables compiled for it (by identity)
        serve every Engine. Files whose stamps are unchanged and settled are not read again to be
        hashed (``_KEPT``); any other load hashes them; new bytes are read and checked anew."""
        if site_dir is not None and not site_dir.is_dir():
            raise SiteError(site_dir, None, "", "HUREN_SITE is not a folder")
        key = (str(defaults), str(site_dir) if site_dir is not None else None)
        stamps = _stamps(defaults, site_dir)
        kept = _KEPT.get(key)
        if kept is not None and stamps is not None and kept[0] == stamps:
            digest: bytes | None = kept[1]
        else:
            digest = _digest(stamps, defaults, site_dir)
        reading = _READINGS.get(digest) if digest is not None else None
        if reading is None:
            site = cls._read(defaults, site_dir)
            reading = _Reading.of(site, defaults, site_dir)
            # kept only when the bytes hashed before the reading are still the bytes after it (a file
            # edited while it was read would otherwise file the new reading under the old bytes)
            if digest is not None and digest == _digest(_stamps(defaults, site_dir), defaults, site_dir):
                _READINGS[digest] = reading
                while len(_READINGS) > _KEPT_MAX:
                    del _READINGS[next(iter(_READINGS))]
            else:
                digest = None
        settled = time.time_ns() - _SETTLED_NS
        if digest is not None and stamps is not None and all(max(s[3], s[4]) < settled for s in stamps):
            _KEPT[key] = (stamps, digest)
            while len(_KEPT) > _KEPT_MAX:
                del _KEPT[next(iter(_KEPT))]
        return reading.site(cls, defaults, site_dir)

    @classmethod
    def _read(cls, defaults: Path, site_dir: Path | None) -> Site:
        files = _overlay(defaults, site_dir)
        sources: list[str] = []

        inst_path = files.get("institutions.yaml")
        if inst_path is None:
            raise SiteError(defaults / "institutions.yaml", None, "", "institutions.yaml is missing")
        institutions = _load_institutions(inst_path)
        sources.append(str(inst_path))

        units: dict[str, str] = {}
        if "codes/units.yaml" in files:
            path = files["codes/units.yaml"]
            data, _ = load_checked(path, _UNITS_SCHEMA)
            units = {str(k): str(v) for k, v in (data or {}).items()}
            sources.append(str(path))

        code_maps: dict[str, CodeMap] = {}
        for rel, path in sorted(files.items()):
            if not rel.startswith("codes/") or rel == "codes/units.yaml":
                continue
            code = Path(rel).stem
            if code not in institutions and path.is_relative_to(defaults):
                continue  # a shipped map for a demo institution the site does not list
            cmap = _load_code_map(path, code)
            if code not in institutions:
                raise SiteError(path, 1, "", f"code map for {code!r}, which is not in institutions.yaml")
            code_maps[code] = cmap
            sources.append(str(path))

        tables: dict[str, Any] = {}
        for rel, path in sorted(files.items()):
            if rel.startswith(("hl7v2/", "referral/")):
                data, node = load_checked(path, _TABLE_SCHEMAS.get(rel, _TABLE), plain=True)
                if rel == "hl7v2/senders.yaml":
                    _declared_institutions(path, node, data, institutions)
                    _check_registration_applications(inst_path, institutions, data, path)
                if rel == VOCABULARY and not path.is_relative_to(defaults) and (defaults / rel).is_file():
                    data = {**load_checked(defaults / rel, {"type": "object"}, plain=True)[0], **data}
                    sources.append(str(defaults / rel))
                # message templates (hl7v2/messages/ADT_A01.yaml) are "messages/ADT_A01"
                # ... and the remote reading centres "referral/remote_reading"
                tables[rel[len("hl7v2/"):-len(".yaml")] if rel.startswith("hl7v2/messages/")
                       else rel[:-len(".yaml")] if rel.startswith("referral/") else Path(rel).stem] = data
                sources.append(str(path))

        merge: dict[str, Any] = {}
        merge_path = files.get("merge.yaml")
        if merge_path is not None:
            shipped = defaults / "merge.yaml"
            if not merge_path.is_relative_to(defaults) and shipped.is_file():
                ours = load_merge_file(shipped)
                merge = laid_over(ours, load_merge_file(merge_path, _taken_back(ours)), merge_path)
                sources.append(str(shipped))
            else:
                merge = load_merge_file(merge_path)
            sources.append(str(merge_path))
        words = PageWords(site_dir)  # checked here with the rest: a mistake stops start-up (or reload)
        return cls(institutions, code_maps, units, tables, tuple(sources), merge,
                   str(merge_path) if merge_path else "", words)

    def institution(self, code: str) -> Institution | None:
        return self.institutions.get(code)

    def code_map(self, code: str) -> CodeMap:
        return self.code_maps.get(code) or CodeMap(code)

    def ucum(self, institution: str, unit: str) -> str | None:
        """UCUM code for a unit as the institution wrote it, or None when not mappable."""
        cmap = self.code_maps.get(institution)
        if cmap and unit in cmap.units:
            return cmap.units[unit]
        return self.units.get(unit)


# --- loading ---------------------------------------------------------------------------------


def load_merge_file(path: Path, known: frozenset[str] = frozenset()) -> dict[str, Any]:
    """``merge.yaml`` (the merge rules) checked against its schema; errors name file and line.
    ``history_taken_back_by`` is refused off the element that reads it (``TAKEN_BACK_ON``), and
    naming an event HL7's table 0003 does not list -- checked for a site's events other than
    ``known`` (the shipped file's): reading the table costs hl7apy's table modules (~0.7 s for
    every version, once a process), so the shipped file's events, which a test checks against the
    table (``tests/test_convfix29_site_rules.py``), and a site copy's same events do not pay it."""
    doc = read_yaml(path)
    _no_reserved_sources(doc)
    _no_renamed_keys(doc)
    check(doc, _MERGE_SCHEMA)
    data = doc.data
    shipped = path.is_relative_to(DEFAULTS_DIR)
    for rtype, rules in (data.get("resources") or {}).items():
        for element, rule in rules.items():
            for steps, named in _element_lists(rule):
                for n, name in enumerate(named):
                    if not _is_element(rtype, name):
                        raise locate(doc, ["resources", rtype, element, *steps, n],
                                     f"{name!r} is not an element of an R4 {rtype} (a misspelt name here would "
                                     "make every other element stand, or none; pffix38)")
            events = rule.get("history_taken_back_by")
            if events is None:
                continue
            where = ["resources", rtype, element, "history_taken_back_by"]
            if (rtype, element) != TAKEN_BACK_ON:
                raise locate(doc, where, f"read only on {'.'.join(TAKEN_BACK_ON)} (the beds an event takes "
                             "back); on this element it would be no rule")
            for n, event in enumerate(events):
                if not shipped and event not in known and event not in trigger_events():
                    raise locate(doc, [*where, n], f"{event!r} is not a trigger event of HL7 table 0003 "
                                 "(the event as MSH-9.2 and EVN-1 name it, e.g. A12)")
    return data


# element-rule keys merge.yaml once had -> their name now: a site's copy made before the rename is refused naming the
# new key (the schema alone said "True is not one of ['replace', ...]", reading the old key as a writer group)
_RENAMED_KEYS = {"placer": "held (forty-first round: it marks what a held statement writes none of, the order's "
                           "status among it, not only the placer's parts)"}


def _no_renamed_keys(doc: YamlDocument) -> None:
    """A site's ``merge.yaml`` naming an element-rule key by a name it no longer has (``_RENAMED_KEYS``) is refused at
    that key's line with the name it has now, before the schema reads the old one as a writer group."""
    data = doc.data if isinstance(doc.data, Mapping) else {}
    for rtype, rules in (data.get("resources") or {}).items():
        for element, rule in (rules or {}).items() if isinstance(rules, Mapping) else ():
            for old in _RENAMED_KEYS.keys() & (rule.keys() if isinstance(rule, Mapping) else set()):
                raise locate(doc, ["resources", rtype, element, old], f"{old!r} is now {_RENAMED_KEYS[old]}")


def _no_reserved_sources(doc: YamlDocument) -> None:
    """A ``sources:`` group, or a source it lists, named like an element-rule key (``_MERGE_ELEMENT``'s, or one
    renamed: ``_RENAMED_KEYS``) is refused at its line, before either check reads a rule: in an element rule that
    name is read as the key, never as the group's mode -- a group ``held`` given a mode on ServiceRequest
    ``status`` was read as the held mark (refused by the schema with no word of why), a group ``placer`` (a natural
    name for the ORM senders) was told "'placer' is now held" (review rv41e LOW 3; forty-first round, stfix41)."""
    data = doc.data if isinstance(doc.data, Mapping) else {}
    sources = data.get("sources")
    for group, members in sources.items() if isinstance(sources, Mapping) else ():
        listed = members if isinstance(members, list) else []
        for at, name in [(["sources", group], group), *((["sources", group, n], m) for n, m in enumerate(listed))]:
            if isinstance(name, str) and (name in _MERGE_ELEMENT["properties"] or name in _RENAMED_KEYS):
                key = "a key" if name in _MERGE_ELEMENT["properties"] else "the old name of a key (refused there)"
                raise locate(doc, at, f"a source or source group may not be named {name!r}: {name!r} is {key} of an "
                             "element rule (resources.<type>.<element>), where a group of that name could be given "
                             "no mode; name it otherwise")


def _element_lists(rule: Mapping[str, Any]) -> list[tuple[list[str | int], list[str]]]:
    """The lists of element names an element rule names (``stands_with`` in either form, each ``not_back``
    step's ``merged``, ``with`` and ``unless_states``, ``withdrawal_keeps``, ``over_value_with``), each with its steps from the rule."""
    found: list[tuple[list[str | int], list[str]]] = []
    if rule.get("withdrawal_keeps"):
        found.append((["withdrawal_keeps"], list(rule["withdrawal_keeps"])))
    if rule.get("over_value_with"):
        found.append((["over_value_with"], list(rule["over_value_with"])))
    stands = rule.get("stands_with")
    if isinstance(stands, Mapping):
        found += [(["stands_with", key], list(stands[key])) for key in ("merged", "taken") if stands.get(key)]
    elif stands:
        found.append((["stands_with"], list(stands)))
    back = rule.get("not_back")
    steps: list[tuple[list[str | int], Mapping[str, Any]]] = (
        [(["not_back"], back)] if isinstance(back, Mapping) else [(["not_back", i], b) for i, b in enumerate(back or ())])
    for at, step in steps:
        found += [([*at, key], list(step[key])) for key in ("merged", "with", "unless_states") if step.get(key)]
    return found


def _is_element(rtype: str, name: str) -> bool:
    """Whether ``name`` (``value[x]``: a choice) is a top-level element of an R4 ``rtype``, as the R4 schema the
    validator uses lists them (a type the schema does not know: not judged here)."""
    from conformance.validate import load_schema  # (loaded once a process: the merge rules read it too)

    definition = load_schema().get("definitions", {}).get(rtype)
    if not isinstance(definition, dict):
        return True
    names = definition.get("properties") or {}
    if name.endswith("[x]"):
        stem = name[:-3]
        return any(n.startswith(stem) and n[len(stem):len(stem) + 1].isupper() for n in names)
    return name in names and not name.startswith("_")


def laid_over(shipped: Mapping[str, Any], site: Mapping[str, Any], origin: Path | str = "merge.yaml") -> dict[str, Any]:
    """A site's ``merge.yaml`` over the shipped one. What the site names is its truth, whole, at the
    level it names it: its ``sources`` (every group) and its ``defaults`` (every mode and conflict
    treatment) are the site's alone; ``resources`` are laid type by type and element by element --
    an element the site names is its rule, whole; one it does not name keeps the shipped rule
    (replacing the file whole left a copy made before a round without that round's rules: at c48f504
    it lacked ``Encounter.period`` by parts, and a discharge erased the admission time, eighteenth
    round). A shipped element rule naming a group the site does not define is left out: the site's
    file alone said nothing of that element -- unless those names are only in its ``another_person``
    guard, which is laid with them named by their writers (``_guard_laid``, ident38). Why not group by group (review of the eighteenth round):
    a shipped group the site never named came back and moved writers out of the site's groups -- a
    copy from before ``referral`` (REF in ``other``, keep-if-absent) put REF in a group with no mode in
    the site's defaults (``replace``: a thinner REF^I13 erased the performer, notes and reasons); and
    defaults mode by mode gave a site's ``hl7: replace``/``reject`` the shipped ``feed``'s
    keep-if-absent and ``warn`` (the smaller group first): a site refusing conflicting writes
    silently accepted them.

    A shipped rule listed under ``privacy`` (a confidentiality label a feed never lowers: a V
    document's ``securityLabel``, its text's ``meta``) is never left out that way: a site that
    does not define a group it names and does not name the element itself is refused at load,
    naming the element. Left out, a site grouping its feeds as ``hl7`` let an edit stating U
    take a V document and its text down to the resident, without a word (twentieth round,
    mdmmend20). Nor is a privacy row kept by its group's NAME alone: a site whose ``feed`` no longer
    holds a family the shipped ``feed`` held (MDM moved to a ``docs`` group) kept the row, which then
    covered no document message -- an edit stating U lowered a V document. The row, which the site
    does not name, now names those families beside the group, with the group's treatment, as shipped
    (refusing such a site would have stopped every site copied before a group grew -- REF and RRI
    joined ``feed`` in the eighteenth round). A family the site's file names nowhere is in its
    ``other`` group and cannot be named by a rule (``MergeRules`` refuses unknown names, to catch a
    misspelt group): it takes ``other``'s treatment, as before (twenty-fifth round, lead)."""
    groups = site["sources"]
    known = {OTHER_GROUP, *groups, *(name for members in groups.values() for name in members)}
    private = set(shipped.get("privacy") or ())
    resources: dict[str, dict[str, Any]] = {}
    for rtype, rules in shipped["resources"].items():
        kept = {element: laid for element, rule in rules.items()
                if (laid := rule if rule_names(rule) <= known else _guard_laid(rule, known, shipped["sources"]))}
        for element, rule in rules.items():
            if f"{rtype}.{element}" not in private or element in (site["resources"].get(rtype) or {}):
                continue
            if element not in kept:
                missing = ", ".join(sorted(rule_names(rule) - known))
                raise SiteError(origin, None, f"resources.{rtype}.{element}",
                                f"the shipped rule keeping this confidentiality label against feeds names "
                                f"{missing}, a source group this site does not define: define it, or name "
                                f"{rtype}.{element} in the site's merge.yaml (its privacy rule would be lost)")
            for group in rule_names(rule) & set(groups):
                lost = (_writers({group}, shipped["sources"]) - _writers({group}, groups) - rule_names(rule)) & known
                if lost:
                    kept[element] = _also_for(kept[element], group, sorted(lost))
        if kept:
            resources[rtype] = kept
    for rtype, rules in site["resources"].items():
        laid = resources[rtype] = {**resources.get(rtype, {}), **rules}
        for element, rule in rules.items():
            ours = (shipped["resources"].get(rtype) or {}).get(element) or {}
            carried = {k: ours[k] for k in CARRIED_KEYS if k in ours and k not in rule}
            if carried:
                laid[element] = {**rule, **carried}
    return {"sources": dict(groups), "defaults": site["defaults"], "resources": resources}


def _guard_laid(rule: Mapping[str, Any], known: set[str], shipped_groups: Mapping[str, list[str]]) -> dict[str, Any] | None:
    """A shipped row whose only names a site does not define are in its ``another_person`` map (a refusal of
    another patient's write under one number, ``Encounter.subject``) laid for that site, else None (left out
    as any other row naming them). Each group the site lacks is named by the writers the shipped group held
    that the site's file names (the shipped treatment for them, as ``_also_for`` keeps a privacy row); a
    writer the site names nowhere is in its ``other`` group and takes ``other``'s treatment. Why not left
    out whole: the guard is a refusal, like a privacy row -- naming ``problem`` (PPR's patient 2 under patient
    1's visit number, visitlast20) dropped the visit guard from every site merge.yaml without that group, and
    ``feed``'s ADT, ORM and ORU wrote another patient over a stored visit there (ident38). None when nothing
    the site knows is left to name (then the site's file alone says nothing of the element)."""
    guard = rule.get("another_person") or {}
    rest = {key: value for key, value in rule.items() if key != "another_person"}
    if not guard or not rule_names(rest) <= known:
        return None
    laid = {name: treatment for name, treatment in guard.items() if name in known}
    for name, treatment in guard.items():
        if name not in known:
            for writer in sorted(_writers({name}, shipped_groups) & known):
                laid.setdefault(writer, treatment)
    return {**rest, "another_person": laid} if laid else None


def _taken_back(merge: Mapping[str, Any]) -> frozenset[str]:
    """The events ``merge``'s ``history_taken_back_by`` names (``load_merge_file``'s ``known``)."""
    rtype, element = TAKEN_BACK_ON
    rule = (merge["resources"].get(rtype) or {}).get(element) or {}
    return frozenset(rule.get("history_taken_back_by") or ())


# keys of an element rule a site's rule takes from the shipped rule of that element when it leaves
# them out (``laid_over``): keys added to an element sites had long copied, whose absence from a
# site's copy means "written before the key existed", not "none" -- a site wanting none writes the
# key empty. ``history_taken_back_by`` (convperf29) moved a rule that held for every site out of
# code: a copy of ``Encounter.location`` made from the eighteenth round on lacked it, and its A12s
# stored the cancelled transfer's bed as a bed the patient left (review of convperf29; convfix29).
# ``history`` and ``history_unless`` (twenty-eighth round) likewise: a copy from before them would
# let a thinner A08 erase the beds the patient left -- a later, thinner message never erases what an
# earlier one stated (the lead, twenty-ninth round). ``displays`` (locfix34) likewise: a copy from before
# it let an A08 sending the ward by code alone rename the visit's bed. Every other key is the site's,
# whole, as before.
CARRIED_KEYS = ("history", "history_unless", "history_taken_back_by", "displays")
# where ``history_taken_back_by`` is read (``adapters.convert.common._history_taken_back``): the one
# element a message's event takes its own past entries back from; anywhere else it is refused at load
TAKEN_BACK_ON = ("Encounter", "location")


def _writers(names: set[str], groups: Mapping[str, list[str]]) -> set[str]:
    """The writers (message families, ``api``, ``index``) the names stand for under ``groups``:
    a group is its members, all the way down; a name no group defines is itself."""
    found: set[str] = set()
    todo, seen = list(names), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in groups:
            todo.extend(groups[name])
        elif name != OTHER_GROUP:
            found.add(name)
    return found


def _also_for(rule: Any, group: str, writers: list[str]) -> Any:
    """``rule`` with each place naming ``group`` (a mode key, ``stands``/``another`` key, an owner
    list) naming ``writers`` alike: the shipped treatment for writers the site's group no longer holds."""
    if isinstance(rule, dict):
        out = {key: _also_for(value, group, writers) for key, value in rule.items()}
        if group in rule:
            out.update({w: out[group] for w in writers if w not in out})
        return out
    if isinstance(rule, list):
        out_list = [_also_for(item, group, writers) for item in rule]
        return out_list + [w for w in writers if w not in rule] if group in rule else out_list
    return rule


def rule_names(rule: Mapping[str, Any]) -> set[str]:
    """The writers and source groups an element rule of ``merge.yaml`` names (its mode keys, owners,
    ``stands``, ``another``, ``another_person``, ``states``, ``beside`` and its slices' owners and modes)."""
    names = {key for key in rule if key not in _MERGE_ELEMENT["properties"]}
    names.update(rule.get("owner") or (), rule.get("stands") or {}, rule.get("another") or {},
                 rule.get("another_person") or {}, rule.get("states") or (), rule.get("beside") or {})
    for sl in rule.get("slices") or ():
        names.update(sl.get("owner") or (), sl.get("modes") or {})
    return names


# The readings of this process by the bytes of the site's files (``_digest``): ``Site.from_dirs`` took
# ~8 ms of CPU a call (~105 YAML files found, read, unpickled from ``sitefiles``' parse cache and
# checked), the same shipped files at every Engine's start, and the suite opens ~7,000 Engines. Until
# trim42b a hit was an unpickled copy of its own per Engine (~3.2 ms), which the converter compiled
# again (its caches key by the table's identity: up to 256 compiled sets kept, ~140,000 closures'
# cells in a test worker's heap); a test's site folder written just before was read in full each time
# (~19 ms). Now one read-only reading per distinct content, shared.
_READINGS: dict[bytes, _Reading] = {}
# The stamps of each pair of folders' files and their digest, so an unchanged site is not read again to
# be hashed. Kept only when every file is older than ``_SETTLED_NS``: a file's mtime is the kernel's
# coarse clock (a few ms), so a file written twice, same size, within one tick would look unchanged to
# stamps taken between the two writes; one settled that long before is past that. A site folder being
# edited (a test's, an operator's just before ``reload``) is thus hashed anew each time.
_KEPT: dict[tuple[str, str | None], tuple[tuple[tuple[str, int, int, int, int], ...], bytes]] = {}
_SETTLED_NS = 2_000_000_000
_KEPT_MAX = 8  # readings (and pairs of folders) kept


@dataclass(frozen=True)
class _Reading:
    """One checked reading, its parts read-only (``frozen``), its file names relative to the folder read
    from (0: defaults, 1: the site folder), so that the same bytes in another folder name that folder."""

    parts: tuple[Any, ...]  # institutions, code_maps, units, tables, merge
    sources: tuple[tuple[int | None, str], ...]
    merge_file: tuple[int | None, str]
    # (defaults, site folder) -> the file names in them (``site``): each Engine's load named the ~100 files
    # again through pathlib (~0.4 ms of CPU a test's Engine; forty-fourth round, suite44a)
    named: dict[tuple[Path, Path | None], tuple[tuple[str, ...], str]] = field(
        default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, site: Site, defaults: Path, site_dir: Path | None) -> _Reading:
        def rel(name: str) -> tuple[int | None, str]:
            if not name:
                return None, ""
            path = Path(name)
            for index, base in ((1, site_dir), (0, defaults)):
                if base is not None and path.is_relative_to(base):
                    return index, path.relative_to(base).as_posix()
            return None, name

        code_maps = FrozenDict({code: replace(cmap, codes=FrozenDict(cmap.codes), units=FrozenDict(cmap.units))
                                for code, cmap in site.code_maps.items()})
        return cls((FrozenDict(site.institutions), code_maps, frozen(site.units), frozen(site.tables),
                    frozen(site.merge)), tuple(rel(s) for s in site.sources), rel(site.merge_file))

    def site(self, cls: type[Site], defaults: Path, site_dir: Path | None) -> Site:
        def name(part: tuple[int | None, str]) -> str:
            base = (defaults, site_dir)[part[0]] if part[0] is not None else None
            return str(base / part[1]) if base is not None else part[1]

        institutions, code_maps, units, tables, merge = self.parts
        folders = (defaults, site_dir)
        named = self.named.get(folders)
        if named is None:
            if len(self.named) >= _KEPT_MAX:
                self.named.clear()
            named = self.named[folders] = (tuple(name(s) for s in self.sources), name(self.merge_file))
        return cls(institutions, code_maps, units, tables, named[0], merge, named[1], PageWords(site_dir))


def _digest(stamps: tuple[tuple[str, int, int, int, int], ...] | None, defaults: Path,
            site_dir: Path | None) -> bytes | None:
    """A hash of every YAML file the stamps list: which folder, its name there, its bytes. None when
    a file cannot be read (removed meanwhile): such a reading is not shared."""
    if stamps is None:
        return None
    bases = [(0, str(defaults))] + ([(1, str(site_dir))] if site_dir is not None else [])
    h = hashlib.blake2b(digest_size=32)
    try:
        for stamp in stamps:
            path = stamp[0]
            # the site folder first: a site folder inside the defaults' folder is the site's
            index, base = next(((i, b) for i, b in reversed(bases) if path.startswith(b + os.sep)), (None, ""))
            data = Path(path).read_bytes()
            name = path[len(base) + 1:] if index is not None else path
            h.update(f"{index}\0{name}\0{len(data)}\0".encode())
            h.update(data)
    except OSError:
        return None
    return h.digest()


def _stamps(defaults: Path, site_dir: Path | None) -> tuple[tuple[str, int, int, int, int], ...] | None:
    """(path, size, inode, mtime_ns, ctime_ns) of every YAML file under the two folders (any file the
    site could read, a new or removed one included); None when a folder cannot be listed.

    Symlinked folders are followed, as ``_overlay``'s glob follows them: a site linking a shared code
    map folder (``codes -> /srv/shared_codes``) and edited there was read from it but never stamped,
    so a reload kept the old mapping (rvsuitecut27); a folder reached twice (a link cycle) is walked once."""
    out: list[tuple[str, int, int, int, int]] = []
    seen: set[str] = set()
    try:
        for base in (defaults, site_dir):
            if base is None:
                continue
            for root, dirs, names in os.walk(base, followlinks=True):
                real = os.path.realpath(root)
                if real in seen:
                    dirs[:] = []
                    continue
                seen.add(real)
                for name in names:
                    if name.endswith((".yaml", ".yml")):
                        path = os.path.join(root, name)
                        st = os.stat(path)
                        out.append((path, st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns))
    except OSError:
        return None
    out.sort()
    return tuple(out)


def _overlay(defaults: Path, site_dir: Path | None) -> dict[str, Path]:
    """Relative file name → the file in force (site folder first, then defaults)."""
    files: dict[str, Path] = {}
    for base in (defaults, site_dir):
        if base is None:
            continue
        for path in (
            list(base.glob("*.yaml"))
            + list(base.glob("codes/*.yaml"))
            + list(base.glob("hl7v2/*.yaml"))
            + list(base.glob("hl7v2/messages/*.yaml"))
            + list(base.glob("referral/remote_reading.yaml"))  # the converter links remote reads
        ):
            files[path.relative_to(base).as_posix()] = path
    return files


_TABLE: dict[str, Any] = {"type": "object"}
# the parts of a mapping table checked at load, so a mistake names its file and line instead of being
# read as "not declared": senders.yaml ``production_marked_training`` (``adapters.hl7v2.processing``)
_TABLE_SCHEMAS: dict[str, dict[str, Any]] = {
    "hl7v2/senders.yaml": {"type": "object", "properties": {"production_marked_training": {
        "type": ["object", "null"],
        "additionalProperties": {"oneOf": [
            {"const": "*"},
            {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
        ]},
    }, "application_aliases": {  # ``adapters.convert.applications``: an institution's MSH-3s that are one application
        "type": ["object", "null"],
        "additionalProperties": {"type": "array", "items": {
            "type": "array", "minItems": 2, "uniqueItems": True,
            "items": {"type": "string", "pattern": r"^[^|~\\&\r\n]*[^|~\\&\s^][^|~\\&\r\n]*$"}}},
    }, "relay_applications": {  # ``adapters.convert.applications.relay``: MSH-3s that number nothing
        "type": ["object", "null"],
        "additionalProperties": {"type": "array", "uniqueItems": True,
                                 "items": {"type": "string", "pattern": r"^[^|~\\&\r\n]*[^|~\\&\s^][^|~\\&\r\n]*$"}},
    }, "message_structure": {  # ``adapters.hl7v2.sequence``: a misspelt level must not read as "standard"
        "type": ["object", "null"],
        "additionalProperties": {"oneOf": [
            {"enum": ["strict", "standard", "lenient"]},
            {"type": "object", "minProperties": 1,
             "additionalProperties": {"enum": ["strict", "standard", "lenient"]}},
        ]},
    }}},
    "hl7v2/structure.yaml": {"type": "object", "properties": {"refuse_without": {
        "type": ["object", "null"],
        "additionalProperties": {"type": "array", "items": {"type": "string", "pattern": "^[A-Z][A-Z0-9]{2}$"}},
    }, "unchecked": {"type": ["array", "null"], "items": {"type": "string", "pattern": "^[A-Z0-9]{3}_[A-Z0-9]{3}$"}}}},
}

# the senders.yaml keys whose entries are institutions' codes (``adapters.hl7v2.processing``,
# ``adapters.hl7v2.sequence``): each checked by ``_declared_institutions``
_INSTITUTION_KEYED = ("production_marked_training", "message_structure", "application_aliases", "relay_applications")


def _declared_institutions(path: Path, node: Any, data: Any, institutions: Mapping[str, Institution]) -> None:
    """Each institution ``senders.yaml`` declares (under ``production_marked_training``, ``message_structure``)
    is one of institutions.yaml, by its code: a misspelt code (or an MSH-4 alias, which the message's
    institution is resolved from before the declaration is looked up) declared nothing, and that sender's
    ``T`` messages were refused AR (rvhl7mode29 finding 9), or its strictness read as ``standard``
    (rvhl7struct31 finding 2), with no word at load."""
    for key in _INSTITUTION_KEYED:
        declared = (data or {}).get(key) or {}
        for code in declared:
            if str(code) not in institutions:
                raise SiteError(path, node.line_of([key, code]), f"{key}.{code}",
                                f"institution {str(code)!r} is not in institutions.yaml (declare an institution "
                                f"by its code, one of {', '.join(sorted(institutions)[:8])}"
                                f"{', ...' if len(institutions) > 8 else ''})")
    from adapters.convert.applications import (  # (the module that owns the rule: one rule, one owner)
        form_mistake,
        hd_of,
        mistakes,
    )

    for code, groups in ((data or {}).get("application_aliases") or {}).items():
        for i, j, why in mistakes([[str(form) for form in group] for group in groups or ()]):
            raise SiteError(path, node.line_of(["application_aliases", code, i, j]),
                            f"application_aliases.{code}[{i}][{j}]", why)
    for code, relays in ((data or {}).get("relay_applications") or {}).items():
        for j, form in enumerate(relays or ()):
            if why := form_mistake(hd_of(str(form))):
                raise SiteError(path, node.line_of(["relay_applications", code, j]),
                                f"relay_applications.{code}[{j}]", f"{str(form)!r} {why}")


_CODE = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
# MSH-4.1 namespace ids: any text without HL7 delimiters or edge spaces (senders use "NIST Lab")
_FACILITY = r"^[^\s|^~\\&]([^|^~\\&]*[^\s|^~\\&])?$"

_INSTITUTIONS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["code", "name", "community"],
        "additionalProperties": False,
        "properties": {
            "code": {"type": "string", "pattern": _FACILITY},
            "name": {"type": "string", "minLength": 1},
            "community": {"type": "string", "minLength": 1},
            "timezone": {"type": "string", "minLength": 1},
            "identifier_type": {"type": "string", "pattern": r"^[A-Z0-9]{1,10}$"},
            "mrn_system": {"type": "string", "minLength": 1},
            "mrn_type": {"type": "string", "pattern": r"^[A-Z0-9]{1,10}$"},
            "mrn_authorities": {"type": "array", "items": {"type": "string", "pattern": _FACILITY}},
            "registration_applications": {"type": "array", "items": {"type": "string", "pattern": _FACILITY}},
            "number_linking_applications": {"type": "array", "items": {"type": "string", "pattern": _FACILITY}},
            "grade": {"enum": [*GRADES, "基层"]},
            "qc": {
                "type": "object",
                "required": ["passed"],
                "additionalProperties": False,
                "properties": {
                    "passed": {
                        "oneOf": [
                            {"const": "all"},
                            {"type": "array", "items": {"type": "string", "pattern": _CODE}},
                        ]
                    },
                    "until": {},  # a YAML date or YYYY-MM-DD text; checked in _load_institutions
                },
            },
        },
    },
}

_CODE_MAP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "institution": {"type": "string", "pattern": _CODE},
        "codes": {
            "type": "object",
            "propertyNames": {"minLength": 1},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "display": {"type": "string"},
                    "loinc": {"type": "string", "pattern": r"^\d{1,7}-\d$"},
                    "loinc_display": {"type": "string"},
                    "item": {"type": "string", "pattern": _CODE},
                },
            },
        },
        "units": {"type": "object", "additionalProperties": {"type": "string", "minLength": 1}},
    },
}

_UNITS_SCHEMA: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "string", "minLength": 1}}


def _load_institutions(path: Path) -> dict[str, Institution]:
    data, node = load_checked(path, _INSTITUTIONS_SCHEMA)
    out: dict[str, Institution] = {}
    for i, entry in enumerate(data):
        code = entry["code"]
        if code in out:
            raise SiteError(
                path, node.line_of([i, "code"]), f"[{i}].code", f"duplicate institution code {code!r}"
            )
        tz = entry.get("timezone", DEFAULT_ZONE)
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise SiteError(
                path, node.line_of([i, "timezone"]), f"[{i}].timezone", f"unknown time zone {tz!r}"
            ) from None
        qc_data = entry.get("qc") or {"passed": []}
        until = qc_data.get("until")
        if until is not None and not isinstance(until, _dt.date):
            try:
                until = _dt.date.fromisoformat(str(until))
            except ValueError:
                raise SiteError(
                    path,
                    node.line_of([i, "qc", "until"]),
                    f"[{i}].qc.until",
                    f"{until!r} is not a date (YYYY-MM-DD)",
                ) from None
        passed = qc_data["passed"]
        qc = DeclaredQc(frozenset(["all"]) if passed == "all" else frozenset(passed), until)
        out[code] = Institution(
            code=code,
            name=entry["name"],
            community=entry["community"],
            timezone=tz,
            qc=qc,
            identifier_type=entry.get("identifier_type", NATIONAL_ID_TYPE),
            mrn_system=entry.get("mrn_system", f"urn:huren:mrn:{urn_part(code)}"),
            mrn_type=entry.get("mrn_type", "MR"),
            mrn_authorities=tuple(entry.get("mrn_authorities") or ()),
            registration_applications=tuple(str(a).strip() for a in entry.get("registration_applications") or ()),
            number_linking_applications=tuple(str(a).strip() for a in entry.get("number_linking_applications") or ()),
            grade="一级" if entry.get("grade") == "基层" else entry.get("grade"),
        )
    _check_mrn_authorities(path, node, data, out)
    return out


def _check_mrn_authorities(path: Path, node: Any, data: list[dict[str, Any]], out: dict[str, Institution]) -> None:
    """An ``mrn_authorities`` name that is another member institution's code or name is refused at
    load: ``adapters.convert.common.authority_of`` reads such a CX-4 as that member's own record
    number, so declaring it for this institution would file one institution's numbers as the other's
    (the lead, thirty-second round, from idfix32's report)."""
    others = {str(n).strip().casefold(): inst.code for inst in out.values() for n in (inst.code, inst.name)}
    for i, entry in enumerate(data):
        for j, name in enumerate(entry.get("mrn_authorities") or ()):
            member = others.get(str(name).strip().casefold())
            if member is not None and member != entry["code"]:
                raise SiteError(
                    path, node.line_of([i, "mrn_authorities", j]), f"[{i}].mrn_authorities[{j}]",
                    f"{name!r} names the member institution {member!r}: a CX-4 naming it is that member's record "
                    "number, not this institution's",
                )


def _check_registration_applications(inst_path: Path, institutions: Mapping[str, Institution], senders: Any,
                                     senders_path: Path) -> None:
    """An institution's ``registration_applications`` and ``number_linking_applications`` (institutions.yaml) checked
    against senders.yaml: a name its ``applications`` gives another institution is refused (that MSH-3.1 is the
    other member's sender, as an ``mrn_authorities`` naming another member is refused). Nothing else is checked: no file
    lists an institution's every application (``charsets`` and ``message_structure`` name only the
    applications that differ from the default), so a name absent from them is no misspelling (the lead,
    thirty-third round: regapp33 had refused a site naming only its LIS's charset and declaring its HIS)."""
    table = senders or {}
    owner = {str(app).strip(): str(code) for app, code in (table.get("applications") or {}).items()}
    for code, inst in institutions.items():
        for key in ("registration_applications", "number_linking_applications"):
            for j, name in enumerate(getattr(inst, key)):
                other = owner.get(name)
                if other is not None and other != code:
                    at = [list(institutions).index(code), key, j]
                    raise SiteError(inst_path, _line_of(inst_path, at), f"[{at[0]}].{key}[{j}]",
                                    f"{name!r} is the sending application of institution {other!r} (senders.yaml "
                                    f"applications, {senders_path}), not of {code!r}")


def _line_of(path: Path, at: list[Any]) -> int | None:
    """The line of ``at`` in institutions.yaml, read again only to name it in an error."""
    return load_checked(path, _INSTITUTIONS_SCHEMA)[1].line_of(at)


def _load_code_map(path: Path, code: str) -> CodeMap:
    data, node = load_checked(path, _CODE_MAP_SCHEMA)
    data = data or {}
    declared = data.get("institution")
    if declared and declared != code:
        raise SiteError(
            path,
            node.line_of(["institution"]),
            "institution",
            f"file is named for {code!r} but declares institution {declared!r}",
        )
    codes = {
        str(local): CodeEntry(
            local=str(local),
            display=entry.get("display", ""),
            loinc=entry.get("loinc", ""),
            loinc_display=entry.get("loinc_display", ""),
            item=entry.get("item", ""),
        )
        for local, entry in (data.get("codes") or {}).items()
    }
    units = {str(k): str(v) for k, v in (data.get("units") or {}).items()}
    return CodeMap(code, codes, units)

_MERGE_MODE: dict[str, Any] = {"enum": ["replace", "keep-if-absent", "union", "by-key", "keep-stored", "parts"]}
_NAMES: dict[str, Any] = {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}}
# entries of a list matched by dotted path -> a value or values (one ending in ``*``: a prefix)
_WHERE: dict[str, Any] = {"type": "object", "minProperties": 1,
                          "additionalProperties": {"anyOf": [{"type": "string", "minLength": 1}, _NAMES]}}
_NOT_BACK: dict[str, Any] = {"type": "object", "required": ["from", "to"], "additionalProperties": False,
                             "properties": {"from": _NAMES, "to": _NAMES, "with": _NAMES, "whole": {"type": "boolean"},
                                            "why": {"type": "string", "minLength": 1}, "merged": _NAMES,
                                            "unless_states": _NAMES}}
_MERGE_ELEMENT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "key": {"type": "array", "minItems": 1,
                "items": {"type": "string", "pattern": r"^([A-Za-z][A-Za-z0-9.]*|@representation|@type)$"}},
        "follows": {"type": "string", "pattern": r"^[a-z][A-Za-z0-9]*(\[x\])?$"},
        "when": {"enum": ["changed"]},  # ``follows`` only an incoming value that changes the followed one
        # list element -> {path: values}: its entries that are this ``_element``'s extensions, where older
        # code stored them (moved into ``_element.extension`` before combining)
        "was": {"type": "object", "additionalProperties": {"type": "object", "minProperties": 1,
                "additionalProperties": {"type": "array", "minItems": 1, "items": {"type": "string"}}}},
        "owner": _NAMES,
        "stands": {"type": "object", "additionalProperties": {  # source group -> stored values that stand
            "type": "array", "minItems": 1, "items": {"type": ["string", "boolean"]}}},
        "yields_to": {"type": "array", "minItems": 1,  # incoming values no ``stands`` value stands against
                      "items": {"type": ["string", "boolean"]}},
        "unless_deletes": _NAMES,  # a message deleting one of these elements: ``stands`` does not hold it
        # ``stands`` only against a message not later than the one that stored the value (msgtime33)
        # (a list: the elements dated with it, ``value[x]`` -- a correction over a correction, tfix34)
        "until_later": {"anyOf": [{"type": "boolean"}, _NAMES]},
        # not written by the same sender's older message (a report's times: ordfix36)
        "not_from_older": {"type": "boolean"},
        # a result's time the message does not move when its ``status`` is one of ``by`` (a correction) over a
        # stored ``status`` of ``over`` (a final result): the exam's time, never a correction's (prior42)
        # ``unless_new``: a message naming an entry of these the stored version does not (a re-drawn tube) is of
        # another specimen, its time taken
        "exam_time": {"type": "object", "required": ["over", "by"], "additionalProperties": False,
                      "properties": {"over": _NAMES, "by": _NAMES, "unless_new": _NAMES,
                                     # the statuses are its report's (an ImagingStudy: time43)
                                     "of": {"enum": ["report"]}}},
        # ``yields``: a value the converter took from another field (its twin marked ``TAKEN_FROM_EXT``: a result's
        # OBR-7 where OBX-14 is empty) never replaces one stated as itself; over a derived one it is written (time43)
        "derived": {"enum": ["yields"]},
        # a restatement of the stored instant at a coarser precision is not written (a result's time: time43)
        "not_thinner": {"type": "boolean"},
        # a stored status ``from`` the writer does not take back ``to`` (a final result's P: ordfix36);
        # ``with``: elements describing the observation kept out, kept out too (its time: pdate36);
        # ``whole``: nothing of the message's statement written (over a withdrawal); ``why``: the W's
        # reason. A list of such steps says what one pair of sets cannot: X, but not over W (status37);
        # ``merged``: the only elements of the message merged, every other kept out too (notback37)
        # ``unless_states``: a message stating one of these is no such step (a value over W: statfix37)
        "not_back": {"anyOf": [_NOT_BACK, {"type": "array", "minItems": 1, "items": _NOT_BACK}]},
        "placeholders": _NAMES,  # values a converter writes where the message states nothing
        # what a statement held as not the order's placer's or filler's (``merge_rules.Owned``) writes none of on a
        # stored order (``true``: the element; a ``where``: its entries that match): the placer's parts (ofix40b) and
        # the status (ofix40c); ``placer`` until the forty-first round (st41)
        "held": {"anyOf": [{"const": True}, _WHERE]},
        # elements kept as stored with an ``as_far_as`` status that stands (a report's times: notback37);
        # ``{merged: [...]}``: every element but these stands (pfix38; the list form keeps its meaning)
        "stands_with": {"anyOf": [_NAMES, {"type": "object", "required": ["merged"], "additionalProperties": False,
                                           "properties": {"merged": {"type": "array", "items": {
                                               "type": "string", "minLength": 1}}, "taken": _NAMES}}]},
        # stored values a placeholder's restatement (no status stated) is not written into (status36)
        "withdrawn": _NAMES,
        # writer -> rules naming the stored entries of a list it replaces that are not its to take away (``where``),
        # kept unless it states an entry of their ``kind``; not over an incoming version ``unless`` matches (ident39)
        "beside": {"type": "object", "additionalProperties": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["kind", "where"], "additionalProperties": False,
            "properties": {"kind": _NAMES, "where": _WHERE, "unless": _WHERE}}}},
        # a reason's statuses (as merged) beside which it replaces a stored value: cancelled (X; stat39)
        "over_value": _NAMES,
        # what describes the value and goes with it there: its interpretation, its reference range (sfix39)
        "over_value_with": _NAMES,
        # elements a message withdrawing the resource (to a ``withdrawn`` status) leaves as stored (stat39)
        "withdrawal_keeps": _NAMES,
        # a status no further than the resources a list element references, in ``progress`` order
        "as_far_as": {"type": "string", "minLength": 1},
        "progress": {"type": "object", "minProperties": 1, "additionalProperties": {"type": "integer"}},
        # status -> result statuses: every listed result, as merged, of one of them (withdrawn, not
        # obtained) gives the status its key names, the first that holds (status38)
        "all_results": {"type": "object", "minProperties": 1, "additionalProperties": _NAMES},
        "names_all_of": {"type": "string", "minLength": 1},  # a concept naming every referenced test
        # text whose lines the resources a list element references say (a report's conclusion)
        "lines_of": {"type": "string", "minLength": 1},
        # a document's text copying a report's, the report named by a dotted reference path (docref32)
        "text_of": {"type": "string", "pattern": "^[a-z][A-Za-z]*(\\.[a-z][A-Za-z]*)*$"},
        "another": {"type": "object", "additionalProperties": {"enum": ["warn", "reject"]}},  # recoding
        # the writers that state a CodeableConcept ``union`` combines (an order's code: the order message)
        "states": _NAMES,
        # a reference to a Patient the patient index does not hold for the stored one's person
        "another_person": {"type": "object", "additionalProperties": {"enum": ["warn", "reject"]}},
        "another_if": {"type": "object", "minProperties": 1, "additionalProperties": {
            "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}},
        # a list's entry status -> the resource statuses that give it (Encounter.location by the visit's)
        "status_follows": {"type": "object", "minProperties": 1, "additionalProperties": _NAMES},
        # parts of a keyed entry (``by-key``, ``union``) a feed's thinner statement of the same entry does
        # not erase (an Encounter.diagnosis re-sent by a discharge with DG1-15 empty keeps its rank)
        "keeps": _NAMES,
        # statuses of a ``status_follows`` list's past entries (a bed left: completed) a message stating
        # the list keeps for the places it does not state (``engine.merge_rules._with_history``)
        # (empty: none -- a site's copy leaving the key out takes the shipped one: ``CARRIED_KEYS``)
        "history": {**_NAMES, "minItems": 0},
        # the resource's statuses under which that list keeps no past (a cancelled visit had no stay)
        "history_unless": {**_NAMES, "minItems": 0},
        # trigger events whose message's own past entries of that list are no past (A12's PV1-6: the bed
        # the cancelled transfer went to); the converter drops them (``adapters.convert.common``)
        # (empty: none; checked against HL7 table 0003 and the element at load: ``load_merge_file``)
        "history_taken_back_by": {"type": "array", "items": {"type": "string", "pattern": r"^[A-Z][A-Z0-9]{2}$"}},
        # references in a list's entries (dotted paths) whose display copies their target's name: kept
        # from the stored entry where the message only assumed that name (a PL without PL-9; locfix34)
        # (empty: none -- a site's copy leaving the key out takes the shipped one: ``CARRIED_KEYS``)
        "displays": {"type": "array", "items": {"type": "string", "pattern": "^[a-z][A-Za-z]*(\\.[a-z][A-Za-z]*)*$"}},
        # entries in one coding system taken from the resources a reference list names (a replacement
        # order's re-test reason from the order it replaces) when the resource states none of its own
        "inherits": {"type": "object", "required": ["through", "system"], "additionalProperties": False,
                     "properties": {"through": {"type": "string", "minLength": 1},
                                    "system": {"type": "string", "minLength": 1}}},
        "slices": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "where", "owner"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "why": {"type": "string"},
                    "where": {"type": "object", "minProperties": 1, "additionalProperties": {
                        "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}},
                    "owner": _NAMES,
                    "modes": {"type": "object", "additionalProperties": _MERGE_MODE},
                    # parts of an entry a feed's thinner statement of the same entry does not erase
                    "keeps": {"type": "array", "items": {"type": "string", "minLength": 1}},
                    "first": {"type": "boolean"},  # its entries listed before the others
                },
            },
        },
    },
    "additionalProperties": _MERGE_MODE,  # source group -> mode
}
_MERGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["sources", "defaults", "resources"],
    "additionalProperties": False,
    "properties": {
        "sources": {"type": "object", "additionalProperties": _NAMES},
        "defaults": {
            "type": "object",
            "required": ["modes", "conflict"],
            "additionalProperties": False,
            "properties": {
                "modes": {"type": "object", "additionalProperties": _MERGE_MODE},
                "conflict": {"type": "object", "additionalProperties": {"enum": ["warn", "reject"]}},
            },
        },
        "resources": {"type": "object", "additionalProperties": {
            "type": "object", "additionalProperties": _MERGE_ELEMENT}},
        # shipped element rules no site may lose by the overlay (``laid_over``): "Type.element"
        "privacy": {"type": "array", "items": {"type": "string", "pattern": r"^[A-Z][A-Za-z]*\.[a-z][A-Za-z]*$"}},
    },
}
