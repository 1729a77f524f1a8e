"""rvsuitecut27: the kept site reading (mappings/site.py ``_KEPT``) must see every file the site reads.

``_overlay`` finds the files with ``Path.glob`` (which goes through a symlinked ``codes/`` or
``hl7v2/`` folder); ``_stamps`` lists them with ``os.walk`` (``followlinks=False``: a symlinked folder
is not entered). A site whose code maps live in a shared folder linked in (``codes -> /srv/shared``)
is edited, reloaded (SIGHUP, ``POST /admin/reload``): the old map stays in force, silently.
Real files, the real settling time (no patching of ``_SETTLED_NS``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import yaml

from mappings.site import DEFAULTS_DIR, Site


def test_an_edit_in_a_symlinked_codes_folder_is_seen_on_reload(tmp_path: Path) -> None:
    site = tmp_path / "site"
    shared = tmp_path / "shared_codes"
    site.mkdir()
    shared.mkdir()
    entries = [{"code": "KEPTLAB", "name": "县医院检验科", "community": "kept", "timezone": "Asia/Shanghai"}]
    (site / "institutions.yaml").write_text(yaml.safe_dump(entries, allow_unicode=True), encoding="utf-8")
    (shared / "KEPTLAB.yaml").write_text("codes: {}\nunits:\n  mgdl: mg/dL\n", encoding="utf-8")
    os.symlink(shared, site / "codes", target_is_directory=True)
    time.sleep(2.2)  # every file settled: this reading is kept

    first = Site.from_dirs(DEFAULTS_DIR, site)
    assert first.ucum("KEPTLAB", "mgdl") == "mg/dL"
    Site.from_dirs(DEFAULTS_DIR, site)  # the kept reading

    # the operator corrects the map (mmol/L, not mg/dL) and reloads
    (shared / "KEPTLAB.yaml").write_text("codes: {}\nunits:\n  mgdl: mmol/L\n", encoding="utf-8")
    assert Site.from_dirs(DEFAULTS_DIR, site).ucum("KEPTLAB", "mgdl") == "mmol/L"
