"""The Unicode Character Database huren reads a character's properties from when it judges text a person typed.

Python 3.11's ``unicodedata`` is Unicode 14.0 (2021). Characters assigned since read to it as unassigned (``Cn``):
CJK Unified Ideographs Extension H (U+31350-323AF, Unicode 15.0) and I (U+2EBF0-2EE5D, 15.1) -- rare characters of
real Chinese given names, which the national standard GB 18030-2022 and the public-security name lists carry --
new emoji, and new format characters (the Egyptian hieroglyph insertion controls U+13439-1343F, 15.0, Cf). So the
reason rule (``message_time.reason_of``) had refused an operator's reason written in such a name as "no visible
character" and kept a newer invisible format character unseen (httpfix41b LOW). ``unicodedata2`` carries today's
database with the same functions (pyproject); the reason rule reads every character property through this module
only, so one place says which Unicode huren's text rules speak.

Not here: the identity index's name folding (``identity.demographics``) and the search index's accent folding
(``repository.indexing``) normalize stored values, and a key computed under another Unicode would no longer meet the
keys already stored -- moving them is a migration of their own, not a change of this rule's tables.
"""

from __future__ import annotations

import unicodedata2

# the Unicode version of the tables read here (``unicodedata2.unidata_version``: "18.0.0" as installed)
UNICODE_VERSION: str = unicodedata2.unidata_version


def category(c: str) -> str:
    """The General_Category of the one character ``c`` (``Lo``, ``Cf``, ``Cn`` for an unassigned code point ...)."""
    return unicodedata2.category(c)
