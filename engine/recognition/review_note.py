"""复核提示: why the records contradict a flag's re-test reason, as an auditor reads it -- in the
site's words (``review_notes`` of ``mappings/insurance/words.yaml``), its times in the institution's
zone (Beijing's for the shipped site) and written as a person reads them (2025年3月14日 10:30:05).

The decision (``engine.recognition.decision._apply``) records the contradiction as one English
sentence with UTC instants (``reason contradicted by records: huren held DiagnosticReport/x since
2026-03-14T02:30:05.123456Z, before the order was placed (...)``); the flag's ``contradicted`` field
keeps that sentence as recorded (what the JSON API, the DetectedIssue and a review's comparison
read). This module only says it for people: the evidence page (``GET /reports/duplicates/{id}``
adds ``contradicted_note`` beside it) and the duplicates CSV (its last column, 复核提示). A
sentence of a form it does not know is still said -- the site's ``other`` words around it, each
ISO instant in it turned into local time -- never dropped."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from mappings.site import DEFAULT_ZONE

PREFIX = "reason contradicted by records: "
# the decision's sentences (decision._apply), one pattern each, keyed as in the words' review_notes
_FORMS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("age", re.compile(r"the prior result was (?P<age>-?\d+) days old, not older than (?P<limit>[0-9.e+-]+) "
                       r"of the item's (?P<window>\d+)-day window")),
    ("qc", re.compile(r"(?P<place>.+?) had passed quality control for (?P<item>.+?) on (?P<day>\d{4}-\d{2}-\d{2})")),
    ("held", re.compile(r"huren held (?P<ref>\S+) since (?P<held>\S+), before the order was placed "
                        r"\((?P<placed>[^()]*)\)")),
)
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?")
_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def local_words(value: str, tz: str = DEFAULT_ZONE) -> str:
    """An ISO instant as a person in ``tz`` reads it: 2025年3月14日 10:30:05 (seconds kept: the two
    times of a note can be moments apart). A time without an offset is already local; what does
    not read as a time is returned as it came."""
    local = _moment(value, tz)
    if local is None:
        return value
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M:%S}"


def _moment(value: str, tz: str) -> datetime | None:
    """The instant in ``tz`` (one without an offset as it came, one beyond the zone's range as it
    came); None when ``value`` does not read as a time."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    try:
        return moment.astimezone(ZoneInfo(tz)) if moment.tzinfo is not None else moment
    except (OverflowError, ValueError):
        return moment


def apart_words(first: str, then: str, tz: str = DEFAULT_ZONE) -> tuple[str, str]:
    """Two instants of a note, each as ``local_words`` says it -- unless that says both alike (the
    same second: the result stored moments before the order came): then to the millisecond
    (10:30:05.120), and to the microsecond if the milliseconds are alike too, so that the note still
    shows which came first."""
    a, b = local_words(first, tz), local_words(then, tz)
    if a != b:
        return a, b
    ma, mb = _moment(first, tz), _moment(then, tz)
    if ma is None or mb is None or ma == mb:
        return a, b
    digits = 3 if ma.microsecond // 1000 != mb.microsecond // 1000 else 6
    return tuple(f"{w}.{m.microsecond:06d}"[: len(w) + 1 + digits] for w, m in ((a, ma), (b, mb)))  # type: ignore[return-value]


# what a held reference names, for people (the decision holds a report, a result or a study)
_KINDS = {"DiagnosticReport": "检验检查报告", "Observation": "检验结果", "ImagingStudy": "影像检查"}


def ref_words(value: str) -> str:
    """DiagnosticReport/p-1 as 检验检查报告 p-1 (the id kept whole: the auditor looks it up by it)."""
    kind, _, rid = value.rpartition("/")
    if not kind or not rid:
        return value
    return f"{_KINDS.get(kind.rsplit('/', 1)[-1], kind)} {rid}"


def day_words(value: str) -> str:
    """2025-03-13 as 2025年3月13日."""
    try:
        d = date.fromisoformat(value)
    except ValueError:
        return value
    return f"{d.year}年{d.month}月{d.day}日"


def _number(value: str) -> str:
    try:
        return f"{float(value):g}"
    except ValueError:
        return value


def review_note(text: str | None, names: Mapping[str, Any], tz: str | None = None) -> str:
    """The note for ``text`` (a flag's ``contradicted``), "" for none. ``names`` are the site's
    (``engine.api.ui_words.site_names``): ``review_notes`` give the sentence, ``places`` and
    ``items`` name the codes in it."""
    if not text:
        return ""
    tz = tz or DEFAULT_ZONE
    words: Mapping[str, str] = names.get("review_notes") or {}
    places: Mapping[str, str] = names.get("places") or {}
    items: Mapping[str, str] = names.get("items") or {}
    body = text.removeprefix(PREFIX)
    values: dict[str, Callable[[str], str]] = {
        "held": lambda v: local_words(v, tz), "placed": lambda v: local_words(v, tz), "day": day_words,
        "limit": _number, "ref": ref_words,
        "place": lambda v: f"{places[v]}（{v}）" if places.get(v) else v,
        "item": lambda v: f"{items[v]}（{v}）" if items.get(v) else v,
    }
    for key, form in _FORMS:
        m = form.fullmatch(body)
        if m and words.get(key):
            said = {k: values.get(k, str)(v) for k, v in m.groupdict().items()}
            if key == "held":  # the two times apart even within one second
                said["held"], said["placed"] = apart_words(m["held"], m["placed"], tz)
            try:
                return words[key].format(**said)
            except (KeyError, IndexError, ValueError):  # a site's words naming what the sentence has not
                break
    plain = _INSTANT.sub(lambda m: local_words(m.group(0), tz), body)
    plain = _DAY.sub(lambda m: day_words(m.group(0)), plain)
    other = words.get("other") or "{text}"
    try:
        return other.format(text=plain)
    except (KeyError, IndexError, ValueError):
        return plain
