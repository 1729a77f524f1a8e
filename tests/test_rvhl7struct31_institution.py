"""Review of hl7struct31 (rvhl7struct31): a misspelt institution in senders.yaml ``message_structure`` loads.

FINDING (MED): the schema holds the level to strict/standard/lenient, but not the institution it is declared
for. ``sequence.strictness`` looks the message's institution code up as is, so ``FNXRMY: strict`` (a typo of
FNXRMYY) or an MSH-4 alias declares nothing and the site loads with no word: the operator believes the
sender is held strictly while every slip is answered AA and stored, or believes a feed is lenient while its
results keep going to the quarantine. The same defect was found and fixed for the sibling key
``production_marked_training`` (rvhl7mode29 finding 9, ``mappings/site._declared_institutions``), which
refuses an undeclared institution at load; the new key was added beside it without that check.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mappings.site import Site, SiteError
from tests.test_hl7mode29 import write_senders

ROOT = Path(__file__).resolve().parents[1]


def test_a_level_declared_for_an_institution_the_site_does_not_have_stops_the_load(tmp_path: Path) -> None:
    write_senders(tmp_path, {"FNXRMY": "strict"}, key="message_structure")  # FNXRMYY misspelt
    with pytest.raises(SiteError, match="FNXRMY"):
        Site.from_dirs(ROOT / "mappings", tmp_path)


def test_the_same_for_a_per_application_declaration(tmp_path: Path) -> None:
    write_senders(tmp_path, {"FNZY": {"LIS": "lenient"}}, key="message_structure")  # FNZYY misspelt
    with pytest.raises(SiteError, match="FNZY"):
        Site.from_dirs(ROOT / "mappings", tmp_path)
