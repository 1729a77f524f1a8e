"""``/ui/quarantine``: the operator's page of refused messages (运维: find one, read why, replay it).

A small static app like the auditors' pages (``ui_duplicates``): one HTML file, one script, one
stylesheet, no build step. It holds no data: its script calls the operator's API, ``/admin/quarantine``
(the list, newest first, by institution and received date), ``/admin/quarantine/{id}`` (one message:
its ERRs and raw text) and ``POST /admin/quarantine/{id}/replay`` with the page session's cookie,
echoing the session's CSRF token on the replay -- so the access rule (``require_operator``, the one
place), the audit record of every read and of the replay, and the replay itself are the API's, as
for a system client. What an ERR says is put in Chinese on the page from a data table,
``mappings/quarantine/words.yaml`` (HL7 table 0357 codes, huren's own reasons as patterns over ERR-8,
segment and field names), served here at ``/ui/quarantine/words``; a site's
``HUREN_SITE/quarantine/words.yaml`` merges over it.

A message refused because its order against a stored result cannot be told (ERR-3 206) is offered the
operator's decision, 按较新处理 (take as later: ``POST /admin/quarantine/{id}/replay?as=later``), with a
one-line explanation and a confirmation saying that the operator is recorded as the one who decided; a
message whose own MSH-7 is unusable (102) is not (thirty-fifth round, order35). The answer says
whether the decision was used (``decided.used``): one that answered nothing -- the sender's own time
showing the message older -- is said as not used, never as taken; a 409 because the result was written
again after the refusal (the decision is bound to the versions the refusal showed) is said in Chinese,
and the message shown again with its refusal naming what is stored now (ordfix35).

A message accepted with its change of an order held (W 204, ``merge_rules.Owned``) is listed beneath the refused
ones (暂未采用的医嘱更改, ``GET /admin/held``); opened, it offers the operator's decision 按号码所有者的更改处理 (take as
the owner's change: ``POST /admin/quarantine/{id}/owner``) with a reason the page asks for before anything is sent,
and a confirmation that says the operator, the time and the reason are recorded (fortieth round, ord40).

Who may open the page is decided by the same rule as the API: a signed-in person whose role may not
read the quarantine (an auditor, a clinician), or a resident's token, is answered 403 with a page
that says so in Chinese; nobody signed in is sent to sign in.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from engine.api.ui_shared import PageFiles, refused, staff_page, staff_templates
from engine.api.ui_signin import current_session, signin_redirect
from engine.auth.caller import Caller
from engine.auth.deps import engine_of
from engine.auth.policy import allowed, require_operator
from engine.errors import FhirError
from mappings.sitefiles import SiteError, check, read_yaml

log = logging.getLogger("huren.site")
STATIC = Path(__file__).resolve().parent / "static" / "quarantine"
WORDS_FILE = "quarantine/words.yaml"
SHIPPED = Path(__file__).resolve().parent.parent.parent / "mappings" / WORDS_FILE

router = APIRouter(include_in_schema=False)
templates = staff_templates(STATIC)  # the page's header is the shared one (ui_shared)

_TEXTS = {"type": "object", "additionalProperties": {"type": "string", "minLength": 1}}
_REASONS = {"type": "array", "items": {
    "type": "object", "additionalProperties": False, "required": ["id", "match", "zh"],
    "properties": {"id": {"type": "string", "minLength": 1}, "match": {"type": "string", "minLength": 1},
                   "zh": {"type": "string", "minLength": 1},
                   # English words a filled {name} may hold -> their Chinese (``_termed``): "name (PID-5) and sex
                   # (PID-8)" said 姓名（PID-5）、性别（PID-8） -- what differs named in Chinese too (id40)
                   "terms": _TEXTS}}}
_PROPERTIES = {"codes": _TEXTS, "reasons": _REASONS, "acks": _TEXTS, "severities": _TEXTS, "segments": _TEXTS,
               "fields": _TEXTS, "messages": _TEXTS, "channels": _TEXTS}
SCHEMA: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": _PROPERTIES,
                          "required": ["codes", "reasons", "acks", "segments", "fields"]}
SITE_SCHEMA: dict[str, Any] = {"type": ["object", "null"], "additionalProperties": False, "properties": _PROPERTIES}


# a reason's {name}: one of its pattern's named groups (checked at load by ``_checked``, filled by ``_filled``)
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _python_pattern(pattern: str) -> str:
    """The page's patterns are JavaScript's (``(?<name>...)``); Python spells a named group ``(?P<name>``."""
    return re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", pattern)


def _checked(words: dict[str, Any], path: Path) -> dict[str, Any]:
    """Every pattern compiles and every {placeholder} is one of its named groups: a typo is said at once
    with the file and the reason's id, not found by an operator reading a half-filled sentence."""
    for reason in words.get("reasons") or []:
        try:
            compiled = re.compile(_python_pattern(reason["match"]))
        except re.error as exc:
            raise SiteError(path, None, f"reasons[{reason['id']}].match", f"not a regular expression: {exc}") from exc
        unknown = set(_PLACEHOLDER.findall(reason["zh"])) - set(compiled.groupindex)
        if unknown:
            raise SiteError(path, None, f"reasons[{reason['id']}].zh",
                            f"names {', '.join(sorted(unknown))}, which the pattern does not capture")
    return words


class QuarantineWords:
    """The shipped words with the site's merged over them; read again when either file changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stamp: tuple[Any, ...] | None = None
        self._words: dict[str, Any] = {}

    @staticmethod
    def _stamp_of(site_file: Path | None) -> tuple[Any, ...]:
        def one(path: Path | None) -> int | None:
            try:
                return path.stat().st_mtime_ns if path is not None else None
            except OSError:
                return None
        return (site_file, one(SHIPPED), one(site_file))

    def current(self, site_dir: Path | None) -> dict[str, Any]:
        site_file = site_dir / WORDS_FILE if site_dir is not None else None
        stamp = self._stamp_of(site_file)
        with self._lock:
            if stamp != self._stamp:
                shipped = _checked(check(read_yaml(SHIPPED), SCHEMA), SHIPPED)
                words = {key: (list(value) if key == "reasons" else dict(value))
                         for key, value in shipped.items()}
                try:
                    site = (_checked(check(read_yaml(site_file), SITE_SCHEMA) or {}, site_file)
                            if site_file is not None and site_file.is_file() else {})
                except SiteError as exc:  # a half-saved edit: the page keeps working on the last good words
                    log.warning("quarantine words not changed, the last good ones stay in force: %s", exc)
                    self._stamp = stamp
                    return self._words or words
                for key, section in site.items():
                    if key == "reasons":  # the site's own reasons are tried first
                        words[key] = list(section or []) + words[key]
                    else:
                        words[key].update(section or {})
                self._words, self._stamp = words, stamp
            return self._words


WORDS = QuarantineWords()


def _filled(zh: str, groups: dict[str, str | None], terms: dict[str, str] | None = None) -> str:
    """A reason's words with {name} filled from its pattern's groups, each value's English ``terms`` said in
    Chinese (``_termed``); a group that took no part stays "{name}", as the script leaves it."""
    return _PLACEHOLDER.sub(lambda m: m[0] if groups.get(m[1]) is None else _termed(str(groups[m[1]]), terms or {}),
                            zh)


def _termed(value: str, terms: dict[str, str]) -> str:
    """``value`` with each of a reason's ``terms`` (English -> Chinese) replaced, the longest first -- what the
    page's script does (``termed`` in ``app.js``)."""
    for english in sorted(terms, key=len, reverse=True):
        value = value.replace(english, terms[english])
    return value


def err_said(words: dict[str, Any], code: str, text: str) -> tuple[str, str]:
    """What an ERR (or a conversion warning: an ERR of severity W) says in Chinese, from the words:
    (the first of huren's own reasons whose pattern matches its English text, {name} filled from the
    pattern's groups -- else "" --, the words of its table-0357 code, "" if the table does not list it).
    What the refused-messages page's script does in the browser (``explain`` in ``app.js``), for a page
    the server draws (``ui_fidelity``)."""
    said = str((words.get("codes") or {}).get(str(code), ""))
    for item in words.get("reasons") or []:
        found = re.search(_python_pattern(item["match"]), text)
        if found is not None:
            return _filled(item["zh"], found.groupdict(), item.get("terms")), said
    return "", said


def _caller(request: Request) -> Caller | None:
    """The page session's person, else a bearer token's caller (a resident's phone app); None: nobody."""
    session = current_session(request)
    if session is not None:
        return session.caller
    fields = request.headers.getlist("authorization")
    if fields:
        try:
            return engine_of(request).auth.authenticate_fields(fields)
        except FhirError:
            return None
    return None


@router.get("/ui/quarantine")
def page(request: Request) -> Response:
    caller = _caller(request)
    if caller is None:  # back to this page, with its filters, after signing in
        query = request.url.query
        return signin_redirect("/ui/quarantine" + (f"?{query}" if query else ""))
    if not allowed(require_operator, caller, "read"):
        return refused(request, caller)
    return staff_page(request, templates, "index.html", "quarantine")


@router.get("/ui/quarantine/words")
def words(request: Request) -> Response:
    """What an ERR says in Chinese (site rules, not records), for a person who may read the quarantine."""
    caller = _caller(request)
    if caller is None:
        return JSONResponse({"error": "not signed in"}, status_code=401, headers={"Cache-Control": "no-store"})
    if not allowed(require_operator, caller, "read"):
        return JSONResponse({"error": "not an operator"}, status_code=403, headers={"Cache-Control": "no-store"})
    return JSONResponse(WORDS.current(engine_of(request).settings.site), headers={"Cache-Control": "no-store"})


def mount_static(app: object) -> None:
    """Serve the page's script and stylesheet under ``/ui/quarantine/static``."""
    app.mount("/ui/quarantine/static", PageFiles(directory=STATIC), name="ui-quarantine-static")  # type: ignore[attr-defined]
