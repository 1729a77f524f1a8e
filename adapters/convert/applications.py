"""Which MSH-3s name one sending application: HL7's rule (``datatypes.same_hd``) and the site's aliases.

HL7 v2.5.1 2.A.33: an HD names an application by a local name (HD-1) or a universal id (HD-2/HD-3), and two
MSH-3s are compared by the universal ids where both carry one, else by their HD-1 (``same_hd(one_table=True)``).
A local name and a universal id are never compared: nothing in a message says that ``LIS`` and
``^2.16.840.1.113883.19.4.6^ISO`` are one system. So an LIS whose interface moved from plain ``LIS`` to the
NIST/IHE form ``^<OID>^ISO`` (or to another name after a vendor change) is a third application to the order
history until it has sent both once -- its own change of the order held (AA, W 204: ``merge_rules.Owned``;
ofix39's left). The site knows; it says so as data, ``senders.yaml`` ``application_aliases``::

    application_aliases:
      FNZYY:                                   # the institution (MSH-4, as resolved)
        - [LIS, "^2.16.840.1.113883.19.4.6^ISO"]   # one application, its MSH-3s as sent

Each group is one application of that institution: its first form is how the application is named
(``canonical``), and a form matches an MSH-3 as sent (``as_sent``: its three components, case aside) -- not by
``same_hd``, under which a bare ``^<OID>^ISO`` form would be every MSH-3 carrying that OID, and a site that puts
the hospital's OID in each application's MSH-3 (``EMR^<OID>^ISO``) would have named its EMR the RIS (rv40c MED 1
again through site data: rv40f MED 3, ordfix40). What the canonical names then are to each other is HL7's rule
(``one_application``: ``same_hd``), so the site's load asks ``mistakes`` -- this module -- whether two groups are
one application by it, and whether a form can name any MSH-3 at all (rv40f MED 4, LOW 8). This module is the one place that
decides it: the converter's "the filler number names the sender" (``results._not_the_orders``: ``forms``) and the
merge's "the same application stored the number" (``merge_rules._same_application`` compares the Stamps'
``application``, which ingest makes ``canonical``) both ask it (fortieth round, ord40).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

from adapters.convert.datatypes import same_hd, same_text, universal_system

HD = tuple[str, str, str]


def hd_of(text: str) -> HD:
    """An HD as the site writes it (``namespace^universal id^type``, any part empty) as a triple."""
    parts = [p.strip() for p in str(text).split("^")[:3]] + ["", ""]
    return parts[0], parts[1], parts[2]


# ``same_text`` (case aside, imported above) is this module's one case rule, owned by ``datatypes`` -- below this
# module, which imports it -- so that ``same_hd`` asks the same function (fix44 had spelled it twice; reg45)


def as_sent(one: HD, other: HD) -> bool:
    """Whether an MSH-3 is an alias form as the site wrote it: all three components equal (``same_text``: case
    aside)."""
    return all(same_text(a, b) for a, b in zip(one, other, strict=True))


def form_mistake(hd: HD) -> str:
    """Why an alias form can name no MSH-3 (""  when it can): neither a name (HD-1) nor a universal id with its
    type; or a universal id its type does not allow (``datatypes.universal_system``: an ISO OID of digits and dots,
    a URI without spaces -- ``^1.2.156.x^ISO``, a typo, would match an MSH-3 that no comparison reads as an OID,
    and the moved interface stays held with no word: rv40f LOW 8)."""
    name, universal, kind = hd
    if universal and kind.upper() in ("ISO", "OID", "URI", "URL") and universal_system(universal, kind) is None:
        return (f"its universal id {universal!r} is no {'OID (digits and dots)' if kind.upper() in ('ISO', 'OID') else 'URI'}"
                f" of type {kind}")
    if not name and not (universal and universal_system(universal, kind)):
        return ("names no application: an MSH-3 is a name (HD-1), or a universal id with its type "
                "(^2.16.840.1.113883.19.4.6^ISO)")
    return ""


def mistakes(groups: Sequence[Sequence[str]]) -> Iterator[tuple[int, int, str]]:
    """The site's alias groups of one institution as written (each a list of MSH-3 texts), checked by this module's
    rules: (group, form, why) for a form that names nothing (``form_mistake``), and for a form that is, by
    ``same_hd(one_table=True)`` -- what ``one_application`` compares the groups' names by -- an application of an
    earlier group too (``RIS`` in one group and ``RIS^<OID>^ISO`` in another: one application to HL7's rule, so
    the second group's applications would be the first's: rv40f MED 4), or by ``one_code`` -- what ``same_code``
    places a stored code in a group by -- (a bare OID ``2.16.840.x`` in one group and ``^2.16.840.x^ISO`` in another:
    the other group's interface had given the first's numbers, rv46c MED 2). The load (``mappings.site``) says each
    with the file and the line."""
    seen: list[tuple[int, HD, str]] = []
    for i, group in enumerate(groups):
        for j, text in enumerate(group):
            hd = hd_of(text)
            if why := form_mistake(hd):
                yield i, j, f"{text!r} {why}"
                continue
            other = next((k for k, form, code in seen
                          if k != i and (same_hd(hd, form, one_table=True) or one_code(text.strip(), code))), None)
            if other is not None:
                yield i, j, (f"{text!r} is in group {other} as well (one application to HL7's rule, same_hd): an "
                             "MSH-3 names one application")
            seen.append((i, hd, text.strip()))


def _groups(institution: str, site: Any) -> list[list[HD]]:
    table = (getattr(site, "tables", None) or {}).get("senders") or {}
    groups = (table.get("application_aliases") or {}).get(institution) or ()
    return [[hd_of(form) for form in group] for group in groups]


def _holding(groups: Sequence[Sequence[HD]], hd: HD) -> int | None:
    """Which of the site's alias ``groups`` lists ``hd`` as one of its forms as written (``as_sent``): the one
    reading of "the group an MSH-3 is a form of" (``forms``, ``canonical``, ``same_code``)."""
    return next((i for i, group in enumerate(groups) if any(as_sent(hd, form) for form in group)), None)


def forms(institution: str, hd: HD, site: Any) -> tuple[HD, ...]:
    """``hd`` (an MSH-3 as sent), then every other form the site's alias group holding it lists for the
    ``institution`` (``hd`` one of its forms as sent): what a number's assigning authority may name to be this
    application's."""
    groups = _groups(institution, site)
    if (i := _holding(groups, hd)) is None:
        return (hd,)
    return (hd, *(form for form in groups[i] if not as_sent(form, hd)))


def canonical(institution: str, hd: HD, site: Any) -> HD:
    """The name of the application ``hd`` (an MSH-3 as sent) is: the first form of the site's alias group
    holding it (``as_sent``), else ``hd`` itself -- two MSH-3s of one group are one application to ``same_hd``."""
    groups = _groups(institution, site)
    return hd if (i := _holding(groups, hd)) is None else groups[i][0]


def one_application(institution: str, one: HD, other: HD, site: Any) -> bool:
    """Whether two MSH-3s of ``institution`` name one application: ``same_hd(one_table=True)`` of their
    ``canonical`` names."""
    return same_hd(canonical(institution, one, site), canonical(institution, other, site), one_table=True)


APPLICATION_SYSTEM = "urn:huren:application:"  # + the institution's urn code: its applications as MSH-3 names them


def assigner(hd: HD, urn_code: str) -> dict[str, Any] | None:
    """The application that assigned a number (an HD: IPC-1's EI-2..4, else the sending MSH-3) as the number's
    ``Identifier.assigner``: a logical reference whose identifier is the HD as sent (``namespace^universal id^type``,
    the form ``hd_of`` reads) under the institution's applications (``APPLICATION_SYSTEM``), its display the name.
    None for an HD naming nothing. Why kept: one institution's applications keep their own counters -- the RIS's
    accession and the ultrasound system's filler number may be one value (review rv43b HIGH 1) -- and only the
    application that assigned an accession reports an exam under it (``assigned_by``, ``adapters.convert
    ._names_the_order``; forty-third round, acsn43b)."""
    if not (hd[0] or hd[1]):
        return None
    text = "^".join(hd).rstrip("^")
    return {"identifier": {"system": f"{APPLICATION_SYSTEM}{urn_code}", "value": text}, "display": hd[0] or hd[1]}


def numbering(authority: HD, ctx: Any) -> tuple[HD, bool]:
    """The application that numbered an EI (an accession IPC-1, a filler number OBR-3) and whether the message
    stated it: the EI's assigning authority (EI-2..4, v2.5.1 2.A.24, ``authority``) where any part is sent, else the
    sending application (MSH-3 of ``ctx.message``; an OBR-18 is ST and names none) -- IHE RAD Scheduled Workflow has
    the RIS send the OMI holding the accession it assigned. An MSH-3 the site lists as a relay (``relay``) names no
    application that numbered anything: ``("", "", "")``. The one owner of the rule: the order's accession
    (``pacs._accession_identifier``, its assigner) and the report's number (``results``, ``Filled.numbered_by``)
    both ask it (review rv43e LOW 2). ``stated`` False: defaulted from MSH-3, which an assigner already recorded on
    the order outranks (``adapters.convert.settle_assigners``; rv43e MED 2; forty-third round, acsn43c)."""
    if any(authority):
        return authority, True
    sender = sender_of(ctx.message.msh)
    if relay(getattr(ctx.institution, "code", ""), sender, ctx.site):
        return ("", "", ""), False
    return sender, False


def relay(institution: str, hd: HD, site: Any) -> bool:
    """Whether ``hd`` (an MSH-3 as sent) is one of the ``institution``'s relays -- senders.yaml
    ``relay_applications``: an integration platform writing its own MSH-3 on every message it forwards, the RIS's
    OMI and the ultrasound system's reports alike. Its name is no numbering application's: behind it the accession
    is stored with no assigner and a report names the order by it only coded as the order's test, else every
    forwarded report was "from the assigner" and the ultrasound's own number was filed on the CT order (review rv43e
    MED 1; forty-third round, acsn43c). Matched as sent (``as_sent``), as an alias form is."""
    table = (getattr(site, "tables", None) or {}).get("senders") or {}
    return any(as_sent(hd, hd_of(form)) for form in (table.get("relay_applications") or {}).get(institution) or ())


def assigned_by(identifier: dict[str, Any]) -> HD | None:
    """The HD of the application that assigned ``identifier`` as ``assigner`` recorded it; None when it records
    none (an accession stored before the forty-third round's acsn43b, or by a FHIR client)."""
    named = ((identifier.get("assigner") or {}).get("identifier") or {}) if isinstance(identifier, dict) else {}
    system, value = str(named.get("system") or ""), str(named.get("value") or "")
    return hd_of(value) if system.startswith(APPLICATION_SYSTEM) and value else None


def names_one(one: HD, forms_: Sequence[HD]) -> bool:
    """Whether the HD ``one`` (an accession's ``assigned_by``) names the application of ``forms_`` (an HD and its
    site aliases, ``forms``). By name: both carry an HD-1 and they are ``same_hd(one_table=True)`` -- the HD-1s
    agreeing, so a site putting the hospital's OID in every application's HD tells them apart by name (rv39g LOW 5,
    rv41d HIGH 3). Or as a form the site's alias group declares (``as_sent``; ``forms`` lists more than the HD as
    sent only from a group, which holds that HD too): ``[RIS, ^<OID>^ISO]``. An HD with no name that no group lists
    names no application, however its OID agrees -- under the hospital's OID the ultrasound system's
    ``<n>^^<OID>^ISO`` had named the RIS ``RIS^<OID>^ISO`` and its exam was filed on the RIS's order (review rv43e
    HIGH 2; forty-third round, acsn43c)."""
    declared = forms_ if len(forms_) > 1 else ()
    return (any(as_sent(one, form) for form in declared)
            or bool(one[0]) and any(form[0] and same_hd(one, form, one_table=True) for form in forms_))


def sender_of(msh: Any) -> HD:
    """A message's sending application (MSH-3) as sent: its three components, trimmed -- what an alias form is
    matched against (``as_sent``)."""
    return msh.value(3).strip(), msh.value(3, comp=2).strip(), msh.value(3, comp=3).strip()


def same_code(institution: str, one: str, other: str, site: Any) -> bool:
    """Whether two STORED application codes of ``institution`` (``registrar``: a name, or a universal id with its
    type; a bare code stored before it, ``Header.application_code``'s HD-1 else HD-2) name one application: one code (``one_code``), or each stated
    by a form of one alias group: two forms as the site wrote them (``as_sent``), else stated (``states``) --
    but never two codes each carrying a universal id and differing (``_two_universal_ids``). A code cannot be matched as sent: it
    holds no more. So a message's own application is never asked here -- it is an HD, matched as sent
    (``sends_as``); this answers only where both sides are stored (``persons._may_restate``: whether a record's
    registrar is a declared registration application)."""
    if one_code(one, other):
        return True
    groups = _groups(institution, site)
    found = _holding(groups, hd_of(one))
    if found is not None and found == _holding(groups, hd_of(other)):
        return True  # two forms of one group as the site wrote them: one application by the site's word
    if _two_universal_ids(_universal_hd(one), _universal_hd(other)):
        return False
    def stating(code: str) -> set[int]:
        return {i for i, forms_ in enumerate(groups) if any(states(form, code) for form in forms_)}
    # one group stating each, the same: a bare ``HIS`` is stated by ``HIS^<OID1>^ISO``'s group and by
    # ``HIS^<OID2>^ISO``'s (two applications), and is neither's word -- the first listed had decided (rv46c MED 1)
    found = stating(one)
    return len(found) == 1 and found == stating(other)


def _universal_hd(code: str) -> HD:
    """A stored code as the HD it is: a bare code that is a universal id by its own form (``universal_code``: an OID,
    a URI -- a code stored before ``registrar``, or an interface sending its OID as MSH-3.1) as that universal id
    with its type; any other code as written (``hd_of``)."""
    if "^" not in code and universal_code(code):
        return "", code, "ISO" if universal_system(code, "ISO") else "URI"
    return hd_of(code)


def _same_system(one: str, other: str) -> bool:
    """Whether two systems (``universal_system``'s: ``urn:oid:<OID>`` or a URI) are one by RFC 3986/8141: the scheme,
    a URN's namespace id and a URL's host case aside, the rest as written -- ``URN:OID:<OID>`` and
    ``HTTP://HIS.EXAMPLE/app`` are the registrar's ids (rv46c LOW 3), ``http://his.example/APP`` another's."""
    try:
        a, b = urlsplit(one), urlsplit(other)
    except ValueError:  # (an unclosed "[": no URI to compare by parts -- one only as written; rv46e HIGH 1)
        return one == other
    if not same_text(a.scheme, b.scheme):
        return False
    if a.scheme.lower() == "urn":
        (nid, _, nss), (nid2, _, nss2) = a.path.partition(":"), b.path.partition(":")
        return same_text(nid, nid2) and nss == nss2
    return same_text(a.netloc, b.netloc) and (a.path, a.query, a.fragment) == (b.path, b.query, b.fragment)


def _two_universal_ids(one: HD, other: HD) -> bool:
    """Whether two HDs each carry a universal id with its type (HD-2 and HD-3) and the two differ: two applications
    by HL7 v2.5.1 2.A.33, whatever alias group a form stating either by its HD-1 alone sits in -- the rule ``states``
    applies to two HDs. Compared as systems where ``universal_system`` reads both (``^<OID>^ISO`` is
    ``HIS^urn:oid:<OID>^URI``), else as text (``same_text``). Without it ``same_code`` placed ``HIS^b.example^DNS``
    and ``HIS^a.example^DNS`` in one group by the group's bare ``HIS`` (HD-1 decides where one side has no universal
    id), and a number the other application gave was taken as the registrar's word (rv46a HIGH); a registrar sending
    its OID as MSH-3.1 (stored bare) is that universal id here (``_universal_hd``; rv46b HIGH). Two forms the site
    wrote into one group are one application before this is asked (``same_code``; rv46b MED). (forty-sixth round)"""
    return all(one[1:]) and all(other[1:]) and not _one_universal_id(one, other)


def _one_universal_id(one: HD, other: HD) -> bool:
    """Whether the universal ids (HD-2 with HD-3) of two HDs are one: as systems where ``universal_system`` reads
    both (``_same_system``: ``^<OID>^ISO`` is ``^urn:oid:<OID>^URI``, ``^URN:OID:<OID>^URI`` too), else as text with
    its type (``same_text``: ``^a.example^DNS`` is ``^A.EXAMPLE^dns``, no ``^a.example^L``). The one comparison of two
    universal ids: ``_two_universal_ids`` (the veto of ``same_code`` and ``states``) and ``states`` (a code that is
    a universal id alone) ask it, so that what one reader takes as one id no other reads as two (rv46c LOW 4)."""
    if one[1:] == other[1:]:
        return True  # (spelled alike: one id under any reading; the common case, without parsing)
    systems = universal_system(one[1], one[2]), universal_system(other[1], other[2])
    if all(systems):
        return _same_system(*systems)
    return same_text(one[1], other[1]) and same_text(one[2], other[2])


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")


def universal_code(code: str) -> bool:
    """Whether a bare application code (no ``^``: a declared name, or a stored code older than ``registrar``) is a
    universal id by its own form: an ISO OID (digits and dots) or an absolute URI (a scheme, no white space) -- the
    two kinds ``datatypes.universal_system`` reads. Anything else (``HIS``, ``falcon.example.org``) is a name,
    whatever an MSH-3's HD-3 says of the same letters."""
    if "." not in code and ":" not in code:
        return False  # (an OID has its dots, a URI its scheme's colon: a name such as HIS is read no further)
    return universal_system(code, "ISO") is not None or bool(_SCHEME.match(code))


def registrar(hd: HD) -> str:
    """An application as a registrar or a number's owner is kept and compared: its MSH-3 as sent, whole, as the site
    writes an HD (``hd_of`` reads it back) -- ``HIS`` for HD-1 alone (the code every release stored, so every code
    stored before reads the same), ``HIS^1.2.3^ISO`` with its universal id, ``^his2.fnx.example^DNS`` for a universal
    id alone. An HD-3 without an HD-2 types nothing and is not kept (``HIS^^ISO`` is ``HIS``). Why whole: the code
    kept before (``Header.application_code``, HD-1 else HD-2) kept no HD-3, so ``his2.fnx.example`` could not say
    whether it was a name or a DNS id and its own A08 was refused AE 205 (last44 MED 2; low44c kept the kind); and it
    kept no HD-2 beside an HD-1, so ``HIS^1.2.3^ISO`` and ``HIS^9.9.9^ISO`` -- two applications by HL7 v2.5.1 2.A.33,
    their universal ids differing -- were one registrar ``HIS`` and either restated what the other registered
    (low44c LOW 2). Kept whole, a registrar is stated only as ``states`` reads a code written as an HD: ``^HIS^DNS``
    is no ``HIS`` (rv44c MED 1), ``HIS^9.9.9^ISO`` no ``HIS^1.2.3^ISO`` (as sent), and the registrations table keys
    its rows by it (``engine.messages.registrar_of``: ``HIS`` and ``^HIS^DNS`` are two rows, low44c LOW 1).
    (forty-fourth round, low44c; forty-fifth round, reg45)"""
    name, universal, kind = hd
    return "^".join((name, universal, kind if universal else "")).rstrip("^")


def filed_registrar(code: str, hd: HD) -> str:
    """``registrar`` of a message as filed: a name (HD-1 sent) is ``code``, the code as filed (the ingest decoded it
    in the set the site declares for the sender, which a re-read of the raw does not know), beside the universal id
    read from ``hd`` (its MSH-3 as sent); an HD without a name is kept as sent. The one rule of it, for a stored
    message (``engine.messages.registrar_of``) and a batch's earlier conversion (``persons._registrar_of``)."""
    return registrar((code, hd[1], hd[2]) if hd[0] else hd)


def states(hd: HD, code: str) -> bool:
    """Whether the HD ``hd`` (an MSH-3 as sent, or an alias form) states the application ``code`` -- a declared
    code (institutions.yaml) or a stored one (``registrar``) -- by the HD component that states the same kind of
    thing: the one rule of it.
    - A code written as an HD (``^`` in it: a ``registrar`` of an MSH-3 sending a universal id, or a declared
      ``^<id>^<type>``): with an HD-1, by an HD with that HD-1 as HL7's HD rule reads two MSH-3s
      (``datatypes.same_hd(one_table=True)``): where both carry a universal id, they and the HD-1s must agree --
      ``HIS^9.9.9^ISO`` states no registrar ``HIS^1.2.3^ISO`` (low44c LOW 2) --, where one side has none, the HD-1
      decides: the registrar ``HIS^1.2.3^ISO``'s own correction sent as ``HIS`` or ``HIS^1.2.3`` (no HD-3: no
      universal id) is its own, as ``one_application``, ``names_one``, the site check ``mistakes`` and the take-over
      (``same_code``) read them (reg45 had matched it as sent and refused it AE 205: rv45b MED 1; forty-fifth round,
      reg45b). Two universal ids of a type ``same_hd`` does not read (``DNS``, ``UUID``, a local type) both sent and
      different are two applications whatever their HD-1s: ``HIS^b.example^DNS`` states no registrar
      ``HIS^a.example^DNS`` (rv45e HIGH: it had replaced her number as the registrar). An HD without an HD-1 states no such code, however its OID agrees (under a site putting the
      hospital's OID in every MSH-3, ``^<OID>^ISO`` is every application). With no HD-1 in the code, a universal
      id with its type, stated by an HD whose HD-1 is empty and whose HD-2 and HD-3 are the code's.
    - A bare code: a name, stated by HD-1 -- and that alone for a code that is no universal id by its form:
      ``^HIS^DNS`` states no ``HIS`` (a universal id ``HIS`` of another type, another application by HL7 v2.5.1
      2.A.33; rv44c MED 1). A bare code that is an OID or a URI (``universal_code``) is also stated as that
      universal id: HD-2 with HD-1 empty and an HD-3 making it one (``universal_system``). institutions.yaml
      documents its lists as MSH-3.1 names, so a declared HIS whose interface writes its OID as MSH-3.1
      (``2.16.840.1.113883.19.4.1|FNXRMYY|``) is the declared HIS; fix44 had asked such a code of HD-2 only and
      held her second registration W 205, the new record filed without her number (last44 MED 1).
    An HD-2 beside an HD-1 states no application here (a site putting the hospital's OID in every application's
    MSH-3, ``EMR^<OID>^ISO``: rv40c MED 1). What an alias group's forms are is ``forms``'s, matched as sent, so
    ``HISV2^<another OID>^ISO`` is no form of ``[HIS, HISV2^<OID>^ISO]`` (rv44a MED 1). (forty-fourth round,
    fix44; low44c)
    Two universal ids with their types are compared as ``_two_universal_ids`` compares them (``_one_universal_id``:
    as systems where ``universal_system`` reads both, else as text), and a bare code that is a universal id by its
    form as that id (``_universal_hd``, as ``same_code`` reads it): the
    registrar ``^<OID>^ISO`` sending its own id without a name as ``^urn:oid:<OID>^URI``, or as the bare MSH-3.1
    ``urn:oid:<OID>`` (stored bare: ``one_code`` asks ``^<OID>^ISO`` whether it states it), had been refused AE 205
    where ``HISN^urn:oid:<OID>^URI`` was taken (rv46c LOW 4). A URI differing only in the case of its path is another
    universal id here as in the veto (RFC 3986; rv46c LOW 3): beside an HD-1, ``same_hd`` (case aside) had read it as
    one, and ``one_code`` answered so before ``same_code``'s veto was asked. An HD-1 is still a name: an MSH-3.1
    ``2.16.840.x`` states no registrar ``^2.16.840.x^ISO`` (``one_code`` reads the two as one from the other side).
    (forty-sixth round, low46b)"""
    if "^" in code:
        own = hd_of(code)
        if own[0]:  # (HL7's HD rule: a universal id missing on one side is no disagreement; rv45b MED 1)
            if _two_universal_ids(hd, own):
                return False  # (two universal ids, DNS/UUID/... as text: stated apart, not one; rv45e HIGH)
            return bool(hd[0]) and same_hd(hd, own, one_table=True)
        return not hd[0] and bool(own[1]) and _one_universal_id(hd, own)
    if hd[0]:
        return same_text(hd[0], code)
    # (a bare code has no type: stated as the id it is by its form, under an HD-3 that reads the HD-2 -- its text
    # alone, case aside, had taken http://his.example/APP for a bare http://his.example/app: rv46e HIGH 3)
    return universal_code(code) and universal_system(hd[1], hd[2]) is not None and _one_universal_id(
        hd, _universal_hd(code))


def one_code(one: str, other: str) -> bool:
    """Whether two application codes (``registrar``'s or declared, no alias group asked) name one application:
    either states the other (``states`` of the HD a code is, ``hd_of``) -- a registrar ``^<OID>^ISO`` is the declared
    bare ``<OID>``, a registrar ``^HIS^DNS`` no declared ``HIS``. The one equality of stored and declared codes
    (``same_code``; the registrar picked from the declared: ``persons._registered``, ``_with_batch``)."""
    return states(hd_of(one), other) or states(hd_of(other), one)


def listed(code: str, codes: Sequence[str]) -> bool:
    """Whether ``code`` (a ``registrar``) is one of ``codes`` (a declared list) by ``one_code``."""
    return any(one_code(code, one) for one in codes)


def sends_as(institution: str, hd: HD, code: str, site: Any) -> bool:
    """Whether this message's MSH-3 ``hd`` (as sent, ``sender_of``) names the application of ``code`` (a stored
    code: a record's registrar, a number's owner, a declared application of institutions.yaml): its own code is
    ``code``, or the site's alias group holding ``hd`` AS SENT (``forms``: every component the form states) lists a
    form whose code is ``code`` -- a LIS whose interface moved from ``LIS`` to ``^<OID>^ISO`` is the application that
    registered the record (reg41). Never by ``hd``'s code alone against a form: with the group ``[HIS,
    HISV2^<OID>^ISO]``, ``HISV2^<another OID>^ISO`` is another application (HL7 v2.5.1 2.A.33: another universal id)
    and no form of the group, and an MSH-3 whose name is the OID's text is a name, never compared with a universal
    id -- matched by code, either passed as the declared HIS and linked her resident ID number on its word (rv44a
    MED 1, LOW; forty-fourth round, low44b). Each HD -- ``hd`` itself and each form of its group, ``forms`` -- is
    asked whether it ``states`` the code, by what it states (a name as HD-1, a universal id as HD-2 with HD-3):
    ``^HIS^DNS`` is no ``HIS`` (rv44c MED 1), and ``his``, the group's ``HIS`` form case aside, is its
    application here as to every reader of the group (``same_text``; rv44c LOW 4). The one rule of "this message's
    application is that one"."""
    return any(states(form, code) for form in forms(institution, hd, site))


def is_declared(institution: str, hd: HD, codes: Sequence[str], site: Any) -> bool:
    """Whether this message's MSH-3 ``hd`` (as sent) is one of ``codes``, a list the site declares by application --
    institutions.yaml ``registration_applications``, ``number_linking_applications`` -- by ``sends_as``: a declared
    LIS whose interface moved to the form ``^<OID>^ISO`` the site's ``application_aliases`` name with ``LIS`` is
    still the declared LIS (compared by equality, its result under the OID was held W 205 as an undeclared
    application's: last43 LOW; low44), and only as that form is sent (rv44a MED 1; low44b)."""
    return any(sends_as(institution, hd, one, site) for one in codes)


def code_declared(institution: str, code: str, codes: Sequence[str], site: Any) -> bool:
    """Whether a STORED application code (a record's registrar) is one of the declared ``codes``, by ``same_code``
    (a code holds no more than its name or universal id: see there)."""
    return any(same_code(institution, code, one, site) for one in codes)
