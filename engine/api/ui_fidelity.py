"""``/admin/fidelity`` opened in a browser: the same report as a page an operator reads in Chinese.

The route (``engine.api.admin.fidelity``) stays the one place that builds the report and decides who
may read it -- for a program and a person alike: ``get_caller`` (a bearer token, or the page session's
cookie; the caller left on the request, so the audit names who read it) and ``require_operator``. A
person opening the address had been shown the raw JSON -- ``{"institutions":{}}`` when nothing was
unmapped -- and an auditor an OperationOutcome in English (thirty-eighth round, ui38). Here the
report is rendered server-side (no script: the page only shows what the route answered), and a
refusal is said as the refused-messages page says it: nobody signed in is sent to sign in and back, a
signed-in person whose role may not read it is told so in Chinese (403), as on ``/ui/quarantine``.

Which answer a request gets is content negotiation (RFC 9110 12.5.1): the page when the request's
``Accept`` weighs ``text/html`` above JSON (``formats.quality``: a browser's own navigation), else the
JSON; a bearer token always gets the JSON. Both answers say ``Vary: Accept`` and ``no-store``.

What each row is comes from ``static/fidelity/kinds.yaml`` (words as data): a code the maps do not
know, a field the sender left empty, a unit, a coding system, a vocabulary value, and codedoc38's
mapping gaps, which are said in their stored words (the JSON's). The first page had said every row
but a segment or a warning was a code missing from the code table (review rv38g, fixed by ufix38).
A conversion warning -- the English ERR text the sender was answered -- is said in Chinese first by
the words of the ERR texts (``mappings/quarantine/words.yaml``, the refused-messages page's), its
English and ERR-3 code after it, smaller (ui39).

The page's header is the staff pages' one (``ui_shared``: who is signed in, 退出登录, the links to the
other staff pages), filled by the same script as theirs (ui39: it had a link to the refused messages
only, and no way to see who was signed in or to sign out).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi import Request
from starlette.responses import Response

from engine.api.formats import accept_of, names, prefers
from engine.api.ui_quarantine import WORDS as QUARANTINE_WORDS
from engine.api.ui_quarantine import err_said
from engine.api.ui_shared import STAFF_PAGE_HEADERS, refused, staff_page, staff_templates
from engine.api.ui_signin import signin_redirect
from engine.auth.caller import Caller
from engine.auth.deps import engine_of, state_of
from engine.errors import FhirError, Forbidden
from engine.messages import GAP_ROWS
from engine.recognition.review_note import local_words
from mappings.site import DEFAULT_ZONE
from mappings.sitefiles import check, read_yaml

STATIC = Path(__file__).resolve().parent / "static" / "fidelity"
templates = staff_templates(STATIC)  # the staff pages' header and refusal are ui_shared's

TITLE_ZH, TITLE_EN = "未映射代码统计", "Unmapped codes"
# one address, two representations chosen by Accept: every answer of it says so (RFC 9110 12.5.5), so no cache
# hands the page to a program or the JSON to a browser
NEGOTIATED = {"Vary": "Accept"}
# what a program asks the JSON by; ``text/json`` (R4's generic type) only where it is written: through
# ``text/*`` it had tied the page, so a client asking any text was told 401 in JSON (rv39b LOW)
JSON_TYPES = ("application/json", "application/fhir+json")
PAGE_HEADERS = {**STAFF_PAGE_HEADERS, **NEGOTIATED}

_WORDS = {"type": "object", "additionalProperties": False, "required": ["kind"],
          "properties": {"kind": {"type": "string", "minLength": 1}, "detail": {"type": "string", "minLength": 1}}}
_SCHEMA = {"type": "object", "additionalProperties": False, "required": ["kinds", "gaps", "counts"],
           "properties": {"kinds": {"type": "object", "additionalProperties": {**_WORDS, "required": ["kind", "detail"]},
                                    "required": ["code", "segment", "absent", "vocabulary", "warning"]},
                          "gaps": {"type": "object", "additionalProperties": _WORDS, "required": ["default"]},
                          "counts": {"type": "object", "additionalProperties": {"type": "string", "minLength": 1}}}}
KINDS_FILE = STATIC / "kinds.yaml"
_KINDS: dict[str, Any] = check(read_yaml(KINDS_FILE), _SCHEMA)  # shipped words: a mistake stops the start, with its line

# a bilingual text's English part: "…。(English …)" -- shown smaller, under the Chinese
_ENGLISH = re.compile(r"(?<=[。；])\s*(?=\()")


def wants_page(request: Request) -> bool:
    """A browser's own GET of the address: no bearer token, and an ``Accept`` weighing ``text/html`` above
    JSON (RFC 9110 12.5.1, q values counted: Chromium's ``text/html,…,*/*;q=0.8`` does;
    ``application/json, text/html;q=0.1``, ``*/*`` and no Accept do not). A program keeps the JSON, named by
    any of its types (``JSON_TYPES``: a FHIR client's ``application/fhir+json`` too -- rv38k; ``text/json``
    where the header writes it). ``text/*`` asks for any text, the page among them: it is sent to sign in."""
    if request.method != "GET" or request.headers.getlist("authorization"):
        return False
    accept = accept_of(request)
    return prefers(accept, "text/html", *JSON_TYPES, *(("text/json",) if names(accept, "text/json") else ()))


def refusal(request: Request, exc: FhirError) -> Response:
    """A refusal the route's access check raised, said to a person's browser: a person signed in whose role
    may not read the report is told so in Chinese (403, the caller ``get_caller`` left on the request);
    anyone else -- no session, an expired one -- is sent to sign in and back here with the filter."""
    caller = state_of(request).get("caller")
    if isinstance(exc, Forbidden) and isinstance(caller, Caller):
        answer: Response = refused(request, caller, (TITLE_ZH, TITLE_EN), headers=PAGE_HEADERS)
    else:
        query = request.url.query
        answer = signin_redirect(request.url.path + (f"?{query}" if query else ""))
    answer.headers.update(NEGOTIATED)
    return answer


def _words(item: dict[str, Any], err_words: dict[str, Any]) -> tuple[str, str, str]:
    """A row's kind, and its detail in Chinese and in English (``kinds.yaml``; "" no English). A mapping
    gap's detail is its stored message; an unmapped code's or segment's stored text is English ("unmapped
    code 'ZN9' at OBX-3") and says nothing the row's columns do not. A conversion warning's stored text is
    the English the sender was answered: said in Chinese first by ``_warning``."""
    kind, value, where = str(item.get("kind") or ""), str(item.get("value") or ""), str(item.get("where") or "")
    fill = {"value": value, "where": where or "?", "at": f"{where} 的" if where else "", "kind": kind}
    if kind == "warning":
        return (_KINDS["kinds"]["warning"]["kind"], *_warning(item, fill, err_words))
    gap = str(item.get("gap") or "")
    if gap in GAP_ROWS:  # (a gap with no words of its own yet is still no "unmapped code")
        said = str(item.get("message") or "") or GAP_ROWS[gap].format(value=value, where=where or "?")
        return ((_KINDS["gaps"].get(gap) or _KINDS["gaps"]["default"])["kind"].format(**fill), *_bilingual(said))
    words = _KINDS["kinds"].get(kind) or _KINDS["kinds"]["vocabulary"]
    return (words["kind"].format(**fill), *_bilingual(words["detail"].format(**fill)))


def _warning(item: dict[str, Any], fill: dict[str, str], err_words: dict[str, Any]) -> tuple[str, str]:
    """A conversion warning's (Chinese, English): its text as written when it is in both languages (a row
    worded for another institution's operator, ``Tally.text``); else the Chinese of the ERR texts
    (``ui_quarantine.err_said`` over ``mappings/quarantine/words.yaml``), of the identity's count
    (``kinds.yaml`` ``counts``), or of its table-0357 code -- with the English text and its ERR-3 code after
    it. The page had shown the English alone (ui39)."""
    text, code = str(item.get("message") or ""), str(item.get("code") or "")
    zh, en = _bilingual(text)
    if en:
        return zh, en
    reason, code_words = err_said(err_words, code, text)
    count = _KINDS["counts"].get(str(item.get("count_as") or ""))
    if not reason and count is not None:
        reason = count.format(key=str(item.get("count_key") or "?"))
    if not reason:
        reason = _KINDS["kinds"]["warning"]["detail"].format(**fill, said=code_words or f"错误代码 {code}")
    return reason, (f"ERR-3 {code}{' ' + code_words if code_words else ''} · {text}" if code else text)


def _bilingual(text: str) -> tuple[str, str]:
    """(Chinese, English) of a text written "中文。(English)", else (the text, "")."""
    parts = _ENGLISH.split(text, maxsplit=1)
    return (parts[0], parts[1]) if len(parts) == 2 else (text, "")


def _named(site: Any, codes: list[str]) -> str:
    """Institutions as the site names them: "阜宁县中医院（FNZYY）"."""
    return "、".join(f"{known.name}（{code}）" if (known := site.institution(code)) is not None else code
                    for code in codes)


def render(request: Request, report: dict[str, Any], institution: str | None,
           remit: frozenset[str] | None) -> Response:
    """The report, institution by institution, named as the site names them, times in the site's zone.

    ``remit`` (``admin._remit``: None, every institution) is the reader's own: an institution asked for
    outside it is said to be outside it -- not "nothing unmapped", which the page cannot know and would
    state of another hospital (rv38g)."""
    engine = engine_of(request)
    site, err_words = engine.site, QUARANTINE_WORDS.current(engine.settings.site)
    blocks = []
    for code in sorted(report["institutions"]):
        inst = report["institutions"][code]
        known = site.institution(code)
        zone = known.timezone if known is not None else DEFAULT_ZONE
        rows = []
        for item in inst["items"]:
            kind_words, zh, en = _words(item, err_words)
            rows.append({**item, "kind_words": kind_words, "detail": zh, "detail_en": en,
                         "records": [str(r) for r in item.get("records") or ()],
                         "last": local_words(str(item.get("last_seen") or ""), zone)})
        advice = sorted({text for by_key in (inst.get("advice") or {}).values() for text in by_key.values()})
        blocks.append({"code": code, "name": known.name if known is not None else "", "unmapped": inst["unmapped"],
                       "warnings": inst["warnings"], "rows": rows, "advice": advice,
                       "alerts": sorted(inst.get("alerts") or {}), "client_alert": inst.get("client_alert")})
    outside = bool(institution) and remit is not None and institution not in remit
    context = {"blocks": blocks, "institution": institution or "", "outside": outside,
               "remit": _named(site, sorted(remit)) if remit is not None else ""}
    return staff_page(request, templates, "index.html", "fidelity", context, headers=PAGE_HEADERS)
