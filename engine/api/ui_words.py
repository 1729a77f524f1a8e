"""The staff pages' words for codes (``mappings/insurance/words.yaml``, with the sections of
``HUREN_SITE/insurance/words.yaml`` merged over it): settlement steps, insurance types, medical
communities, flag and result statuses, re-test reasons' effects.

One owner for every code name a staff page shows: ``/ui/session`` gives them to the signed-in page
with the site's other names (``site_names`` below), and the pages' scripts hold none of their own.
The file is loaded and checked with the other site files (``mappings.site.Site.words``,
``mappings.pagewords``): a mistake stops start-up; an edit shows at the next page load, and a file
broken while running leaves the last good words in force (logged), never a failed sign-in."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.engine import Engine


def page_words(engine: Engine) -> dict[str, Any]:
    """The words in force for the engine's site."""
    return engine.site.words.current()


def site_names(engine: Engine) -> dict[str, Any]:
    """The site's words for its codes, so a page or an export names what it shows rather than show
    a code: the institutions (and the bodies staff belong to that are no member, the words'
    ``places``: YBJ 医疗保障局), the re-test reasons (R04 急诊急救), the recognition scopes (JS
    江苏省HR), the recognition items (CBC 血常规) and a panel's analytes (ALT 丙氨酸氨基转移酶), the
    staff roles (审核员), each published Measure's title, and the pages' own words file
    (communities, insurance types, statuses, settlement steps, CSV columns). The one owner of code
    names on the staff pages (``/ui/session``) and in the CSV exports (the duplicates report, the
    deduction list). Site rules, not records: the same for every signed-in person."""
    rules = engine.recognition.rules
    words = page_words(engine)
    return {**words,
            # a member institution's name from institutions.yaml wins over the words' places
            "places": {**words.get("places", {}),
                       **{code: inst.name for code, inst in engine.site.institutions.items() if inst.name}},
            "reasons": {code: r.display for code, r in rules.reasons.items()},
            "scopes": {code: sc.name for code, sc in rules.scopes.items()},
            "items": {code: item.name for code, item in rules.items.items()},
            "analytes": {code: name for item in rules.items.values() for code, name in item.analytes.items()},
            "roles": {code: role.label_zh for code, role in engine.staff.roles.items()},
            "measures": {m.url: m.title for m in engine.measures.by_id.values()},
            # each institution's time zone, for times said in words (a review note's, in the CSV)
            "zones": {code: inst.timezone for code, inst in engine.site.institutions.items()},
            # every community an institution belongs to, named in the words or not (a filter takes its code)
            "community_codes": sorted({inst.community for inst in engine.site.institutions.values()})}
