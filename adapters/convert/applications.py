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
(``canonical``), every form matches an MSH-3 by ``same_hd(one_table=True)``. This module is the one place that
decides it: the converter's "the filler number names the sender" (``results._not_the_orders``: ``forms``) and the
merge's "the same application stored the number" (``merge_rules._same_application`` compares the Stamps'
``application``, which ingest makes ``canonical``) both ask it (fortieth round, ord40).
"""

from __future__ import annotations

from typing import Any

from adapters.convert.datatypes import same_hd

HD = tuple[str, str, str]


def hd_of(text: str) -> HD:
    """An HD as the site writes it (``namespace^universal id^type``, any part empty) as a triple."""
    parts = [p.strip() for p in str(text).split("^")[:3]] + ["", ""]
    return parts[0], parts[1], parts[2]


def _groups(institution: str, site: Any) -> list[list[HD]]:
    table = (getattr(site, "tables", None) or {}).get("senders") or {}
    groups = (table.get("application_aliases") or {}).get(institution) or ()
    return [[hd_of(form) for form in group] for group in groups]


def forms(institution: str, hd: HD, site: Any) -> tuple[HD, ...]:
    """``hd`` (an MSH-3 as sent), then every other form the site's alias group holding it lists for the
    ``institution``: what a number's assigning authority may name to be this application's."""
    for group in _groups(institution, site):
        if any(same_hd(hd, form, one_table=True) for form in group):
            return (hd, *(form for form in group if form != hd))
    return (hd,)


def canonical(institution: str, hd: HD, site: Any) -> HD:
    """The name of the application ``hd`` (an MSH-3 as sent) is: the first form of the site's alias group
    holding it, else ``hd`` itself -- two MSH-3s of one group are one application to ``same_hd``."""
    for group in _groups(institution, site):
        if any(same_hd(hd, form, one_table=True) for form in group):
            return group[0]
    return hd


def one_application(institution: str, one: HD, other: HD, site: Any) -> bool:
    """Whether two MSH-3s of ``institution`` name one application: ``same_hd(one_table=True)`` of their
    ``canonical`` names."""
    return same_hd(canonical(institution, one, site), canonical(institution, other, site), one_table=True)
