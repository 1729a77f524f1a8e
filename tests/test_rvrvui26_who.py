"""rvui26: "谁看过我的档案" after uimend26 -- an app with no registered name is no longer mentioned.

Renders the page's own who.js (with its real i18n.js and beijing.js) in node over the entry the
server builds for an app registered without a name (``via_app_name`` is then "")."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parent.parent / "engine" / "api" / "static"

HARNESS = r"""
const vm = require("vm"); const fs = require("fs");
const [shared, me, entriesJson] = process.argv.slice(1);
const text = (n) => typeof n === "string" ? n : (n.children || []).map(text).join("");
const ctx = { console, Date, Math, Object, Array, Set, Intl, JSON, String, Number };
ctx.window = ctx; vm.createContext(ctx);
vm.runInContext(fs.readFileSync(shared + "/beijing.js", "utf8"), ctx);
vm.runInContext(fs.readFileSync(me + "/i18n.js", "utf8"), ctx);
vm.runInContext(`
  const WORDS = window.MeI18n.WORDS; let lang = "zh-CN"; const W = () => WORDS[lang];
  const $ = () => null; const dayTime = (v) => v; const say = () => {}; const status = () => {};
  const state = { audit: ${entriesJson}, unread: new Set(), refused: new Set() };
  function el(tag, attrs, ...children) {
    return { tag, children: children.flat().filter((c) => c !== null && c !== undefined && c !== false && c !== ""),
             querySelector: () => ({ addEventListener() {} }), addEventListener() {} };
  }
`, ctx);
vm.runInContext(fs.readFileSync(me + "/who.js", "utf8"), ctx);
const out = vm.runInContext("renderWho()", ctx);
process.stdout.write(out.map(text).join("\n"));
"""


def _render(entries: list[dict]) -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node not installed")
    done = subprocess.run([node, "-e", HARNESS, str(STATIC / "shared"), str(STATIC / "me"),
                           json.dumps(entries, ensure_ascii=False)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_rvrvui26_unnamed_app_still_registers_with_an_empty_name(engine) -> None:
    """GUARD for the input: a client added without a name (the CLI's default) has name "", which
    /ui/me/who-looked passes on as via_app_name ""."""
    engine.auth.registry.add("ehr-viewer", scopes=["user/*.rs"], kind="user", redirect_uris=["https://v.example/cb"],
                             public=True)
    assert engine.auth.registry.get("ehr-viewer").name == ""


def test_rvrvui26_who_looked_still_says_an_unnamed_app_was_used() -> None:
    """FINDING (MED): a health worker reading the resident's record through a third-party app that
    was registered without a display name (or has since been removed: registry.get is None, name "")
    is now shown exactly like a read on the staff pages -- "林看（医务人员）查看了您的..." -- the app
    is erased. Before de1a4ab the line said （通过「ehr-viewer」）."""
    entry = {"when": "2026-03-14T02:30:00Z", "who": "dr-lin", "who_name": "林看", "role": "user", "what": "read",
             "resource_types": ["Observation"], "outcome": "success", "via_app": "ehr-viewer", "via_app_name": "",
             "record": "fn-li"}
    said = _render([entry])
    assert "林看" in said, said  # the harness renders the line at all
    assert "ehr-viewer" in said or "通过" in said, said
