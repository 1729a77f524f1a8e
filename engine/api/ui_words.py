"""The staff pages' words for codes (``mappings/insurance/words.yaml``, with the sections of
``HUREN_SITE/insurance/words.yaml`` merged over it): settlement steps, insurance types, medical
communities, flag and result statuses, re-test reasons' effects.

One owner for every code name a staff page shows: ``/ui/session`` gives them to the signed-in page
with the site's other names (``ui_signin._names``), and the pages' scripts hold none of their own.
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
