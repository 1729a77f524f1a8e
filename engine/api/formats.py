"""The one representation huren answers in: FHIR JSON.

A client names the representation it wants with ``_format`` (R4 http.html: it overrides the
``Accept`` header) or, without one, with ``Accept``. huren has no XML or Turtle writer, so a
``_format`` that is not JSON is refused with 406 Not Acceptable and an OperationOutcome, on the data
routes as on ``metadata``: answering JSON under a 200 to a client that asked for XML hands it a body
it did not ask for and cannot parse. On the FHIR routes (``/fhir``, ``metadata``) an ``Accept``
that admits no JSON (``application/fhir+xml`` alone; JSON only at ``q=0``) is refused the same way
(``fhir_negotiation``; twenty-fifth round, txmend25); a missing Accept, ``*/*`` or
``application/*`` take JSON. A range's or ``_format``'s ``fhirVersion`` and ``charset`` parameters are read
(``SERVED_PARAMETERS``): R4 (``4.0``) and UTF-8 are what huren has, another version or character set is not
(fortieth round, tidy40); a charset by the name Python's codecs give it, a more specific range's weight over its bare
type's (ffix40). A request body's ``Content-Type`` parameters are read by the same rule on every route that reads
one (``require_body_served``; a body may also be ASCII). ``Accept-Charset`` is honoured: one admitting no UTF-8 is
406 (``require_json_accept``, http41).
"""

from __future__ import annotations

import codecs
import encodings
import encodings.aliases
import re
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs  # here: inside a function each call paid urllib.parse's __getattr__ miss

from fastapi import Request

from engine.errors import FhirError

JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json", "application/json+fhir"})
# R4 http.html#mime-type (3.1.0.1.9) names the generic types a client may put in Accept: application/xml,
# text/json and application/json; the server SHOULD answer in the type asked, with the FHIR JSON body.
# ``Accept: text/json`` was refused 406 (hl7left28). ``_format`` keeps the spec's own list (JSON_FORMATS).
GENERIC_JSON = ("application/json", "text/json")
ACCEPTED_JSON = JSON_FORMATS | frozenset(GENERIC_JSON)


# The media-type parameters whose value says whether a representation huren has is the one named, and the values
# huren answers: R4 http.html#version-parameter -- ``fhirVersion`` is the FHIR release's major.minor, R4's ``4.0``
# (its full versions 4.0.0 and 4.0.1 name the same release, as the CapabilityStatement's fhirVersion does); every
# answer huren writes is UTF-8 (R4 http.html#mime-type). A range or ``_format`` naming another value (``fhirVersion=3.0``,
# ``charset=iso-8859-1``) names a representation huren has not. Other parameters (``version`` of Prometheus's text, any
# a client adds) say nothing huren can tell and are passed over, as before. A charset is compared by the canonical name
# Python's codecs give it (``_charset``), so each label of UTF-8 (``utf8``, ``UTF8``, ``u8``) is UTF-8 (ffix40).
SERVED_PARAMETERS = {"fhirversion": frozenset({"4.0", "4.0.0", "4.0.1"}), "charset": frozenset({"utf-8"})}
# What a request body may be labelled: also ASCII, whose every byte string is the same text read as UTF-8 (a body
# labelled ``charset=us-ascii`` is read right; tidy40 had refused it 415, rv40e LOW 2). Not for Accept: an answer
# holds Chinese names, which a client asking for ASCII alone cannot read -- such a range stays not served (406).
READ_PARAMETERS = {**SERVED_PARAMETERS, "charset": frozenset({"utf-8", "ascii"})}

# Every name Python's codecs know a character set by (its aliases and its codec modules' own names), normalised as
# ``encodings.search_function`` normalises them: a label outside it is one huren cannot read nor write. Asked before
# ``codecs.lookup``, because ``encodings`` caches every name it is asked, the unknown ones too (as None) -- a header's
# invented charsets would otherwise grow that cache without bound.
_CHARSET_NAMES = frozenset(encodings.aliases.aliases) | frozenset(encodings.aliases.aliases.values())


@lru_cache(maxsize=256)  # bounded: a header's label is the sender's; the common few are read once
def _charset(label: str) -> str:
    """The canonical name Python's codecs give a charset ``label`` (``utf8``, ``UTF-8``, ``u8`` -> ``utf-8``;
    ``us-ascii`` -> ``ascii``; ``latin1`` -> ``iso8859-1``), or the label lower-cased when no codec has it (then
    it names nothing huren has)."""
    label = label.strip().strip('"').lower()
    name = encodings.normalize_encoding(label)
    if name not in _CHARSET_NAMES:
        return label
    return codecs.lookup(name).name


def _serves(name: str, value: str, parameters: dict[str, frozenset[str]] = SERVED_PARAMETERS) -> bool:
    """Whether a media range's parameter ``name`` (lower case) ``=value`` admits what huren answers (or, given
    ``READ_PARAMETERS``, reads): one of ``parameters`` has one of its values (case-insensitive, a quoted value
    unquoted, a charset by its canonical name: ``_charset``); any other passes."""
    allowed = parameters.get(name)
    if allowed is None:
        return True
    return (_charset(value) if name == "charset" else value.strip().strip('"').lower()) in allowed


def _served(params: list[str], parameters: dict[str, frozenset[str]] = SERVED_PARAMETERS) -> bool:
    """Whether a media range's or ``_format``'s parameters (each ``name=value``) all admit what huren answers (or,
    given ``READ_PARAMETERS``, reads)."""
    return all(_serves(name.strip().lower(), value, parameters) for name, _, value in (p.partition("=") for p in params))


def body_served(content_type: str) -> bool:
    """Whether a request body's ``Content-Type`` (``type/subtype; name=value...``) names what huren reads: FHIR R4 in
    UTF-8 (or ASCII, the same bytes) when its parameters say which (``READ_PARAMETERS``) -- an STU3 body
    (``fhirVersion=3.0``) or a Latin-1 one would be read as R4 in UTF-8, its meaning or its characters changed (each
    route that reads a body answers it 415: ``require_body_served``)."""
    return _served(content_type.split(";")[1:], READ_PARAMETERS)


def require_body_served(request: Request) -> None:
    """415 with an OperationOutcome, before the body is read, when the request's ``Content-Type`` parameters name a
    FHIR version or character set huren does not read (``body_served``). The one check of every route that reads a
    body: the /fhir router's JSON (``fhir._body``) and its ``_search`` form, and the operations' JSON
    (``identity._parameters``: ``$match``, ``$link``/``$unlink``, ``$login-phone``, the family operations;
    ``$check-recognition``, the CDS hooks, the duplicate review), which had read a ``fhirVersion=3.0`` body as R4
    (rv40e LOW 7). The bare type stays each route's own: a form or JSON."""
    sent = request.headers.get("content-type") or ""
    if not body_served(sent):
        raise FhirError(f"content type {sent[:80]!r} names a FHIR version or character set huren does not read; send "
                        "FHIR R4 (fhirVersion=4.0) in UTF-8", status=415, code="not-supported")


def require_json(value: str | None) -> None:
    """Raise 406 unless ``value`` (a ``_format``; None: not given) names FHIR JSON -- R4's, in UTF-8, when its
    parameters say which (``_served``)."""
    if value is None:
        return
    media, *params = value.split(";")
    if media.strip().lower() not in JSON_FORMATS:
        raise FhirError(f"_format {value!r} is not supported; huren speaks application/fhir+json",
                        status=406, code="not-supported")
    if not _served(params):
        raise FhirError(f"_format {value!r} names a FHIR version or character set huren does not answer in; huren "
                        "speaks FHIR R4 (fhirVersion=4.0) as application/fhir+json in UTF-8",
                        status=406, code="not-supported")


def accepts_json(accept: str) -> bool:
    """Whether an ``Accept`` header (RFC 9110 12.5.1) admits FHIR JSON, the most specific range
    deciding: a JSON media type named in it (its highest q) over ``application/*`` over ``*/*``.
    ``application/fhir+json;q=0, application/json;q=0, */*`` refuses JSON: the wildcard speaks for
    the types not named (it admitted JSON until txfix25). A blank header admits anything; a range
    whose weight cannot be read counts as named, below every weight that can (``quality``)."""
    weights = _weights(accept)
    if not weights:
        return True
    if UNREAD in weights.values():  # a weight not read: ``quality`` reads the naming (the rare header)
        named = [media for media in weights if media in ACCEPTED_JSON]
        return max(quality(accept, media, weights) for media in named or ("application/fhir+json",)) > 0
    # every weight written (the common header, every /fhir request): what ``quality`` gives, without its walk
    written = [q for media, q in weights.items() if media in ACCEPTED_JSON]
    if written:
        return max(written) > 0
    if "application/*" in weights:
        return weights["application/*"] > 0
    wild = [weights[media] for media in ("*/*", "*") if media in weights]
    return bool(wild) and max(wild) > 0


def accept_of(request: Request) -> str:
    """The request's ``Accept`` as one header: fields sent more than once joined by commas (RFC 9110 5.3),
    as every choice of representation here reads it."""
    return ",".join(request.headers.getlist("accept"))


def accepts_utf8(accept_charset: str) -> bool:
    """Whether an ``Accept-Charset`` header (RFC 9110 12.5.2) admits UTF-8, the one character set huren writes: the
    most specific range deciding -- one naming UTF-8 (by its canonical name, ``_charset``: ``utf8``, ``UTF-8``) by
    its highest q, else ``*`` (every charset not named elsewhere); ``q=0`` is "not acceptable", so ``utf-8;q=0, *``
    refuses it. A range whose weight is not a qvalue is named, its preference unknown: it admits (as ``quality``
    reads such a range of Accept). A blank header admits anything; one naming only other charsets refuses."""
    named: dict[str, list[float]] = {}
    for item in accept_charset.split(","):
        label, *params = item.split(";")
        label = label.strip()
        if not label:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                value = value.strip()
                q = float(value) if _QVALUE.fullmatch(value) else UNREAD
        named.setdefault("*" if label == "*" else _charset(label), []).append(q)
    if not named:
        return True
    for label in ("utf-8", "*"):
        weights = named.get(label)
        if weights is not None:
            written = [q for q in weights if q != UNREAD]
            return max(written) > 0 if written else True
    return False


def require_json_accept(request: Request, formats: list[str] | tuple[str, ...] = ()) -> None:
    """406 when the request's ``Accept-Charset`` admits no UTF-8 (``accepts_utf8``), or when it has no ``_format``
    (the query's, or ``formats``: a ``POST _search`` form's), which overrides Accept, and its ``Accept`` admits no
    JSON. *Decided* (http41): Accept-Charset is honoured, not passed over as RFC 9110 12.5.2 allows -- R4
    http.html#mime-type names it beside Accept's ``charset`` as the client's way to ask for a character set, Accept's
    ``charset=iso-8859-1`` is already 406 (tidy40: one answer to one question), and a client reading huren's UTF-8
    as Latin-1 reads every Chinese name wrong under a 200. ``_format`` stands for Accept, not for Accept-Charset."""
    sent = [value for name, value in request.scope["headers"] if name == b"accept-charset"]  # (raw: no Headers view)
    charsets = b",".join(sent).decode("latin-1") if sent else ""
    if charsets and not accepts_utf8(charsets):
        raise FhirError(f"Accept-Charset {charsets[:80]!r} admits no UTF-8; huren answers in UTF-8 only "
                        "(FHIR R4 http.html#mime-type)", status=406, code="not-supported")
    if formats or request.query_params.getlist("_format"):
        return
    accept = accept_of(request)
    if not accepts_json(accept):
        raise FhirError(f"Accept {accept[:80]!r} admits no representation huren has; huren speaks FHIR R4 "
                        "(fhirVersion=4.0) as application/fhir+json", status=406, code="not-supported")


async def json_only(request: Request) -> None:
    """Router dependency: every ``_format`` of the request names JSON."""
    for value in request.query_params.getlist("_format"):
        require_json(value)


async def fhir_negotiation(request: Request) -> None:
    """Router dependency of the FHIR routes: every ``_format`` names JSON, without one the ``Accept`` header admits
    JSON (R4 http.html#mime-type), and ``Accept-Charset`` admits UTF-8 (``require_json_accept``). ``POST _search``
    leaves both to ``negotiate_form``, which its route's form dependency calls (``fhir._search_form``, before the
    caller is known, as this runs): its form body may hold the ``_format`` that overrides Accept."""
    await json_only(request)
    if request.method == "POST" and request.scope["path"].endswith("/_search"):
        return
    require_json_accept(request)


# The label a ``POST _search`` form's ``_format`` chose (``negotiate_form``), kept in the request's scope: the query
# does not carry it, so ``JsonLabel`` (which reads the query and Accept before the route runs) labels every answer of
# the request by it once it is set -- the Bundle and each 4xx OperationOutcome alike (http41; lastread1 LOW: only the
# route's 200 had been relabelled, a refusal kept application/fhir+json).
FORMAT_IN_BODY = "huren.format_in_body"


def negotiate_form(request: Request, formats: list[str]) -> None:
    """Negotiate a ``POST _search`` whose form body holds ``formats`` (its ``_format`` values), read as the query's
    are (rv40e LOW 4: they had been dropped unread): each names FHIR R4 JSON (``require_json``: else 406); a
    ``_format`` in the query still comes first, none at all leaves the ``Accept`` header to decide
    (``require_json_accept``). When the body's ``_format`` decides, its label (``application/json`` or the FHIR type:
    ``json_label``) is set in the scope (``FORMAT_IN_BODY``) for ``JsonLabel`` to label the request's every answer.
    ``Accept-Charset`` is read in each case (``require_json_accept``): ``_format`` stands for Accept only."""
    for value in formats:
        require_json(value)
    if request.query_params.getlist("_format"):
        require_json_accept(request)  # Accept-Charset only: the query's _format overrides Accept
        return
    if formats:
        request.scope[FORMAT_IN_BODY] = json_label("", formats) or FHIR_JSON_TYPE.decode()
    require_json_accept(request, formats)


# --- the label of a JSON answer ------------------------------------------------------------------
# R4 http.html#mime-type: "If a client provides a generic mime type in the Accept header
# (application/xml, text/json, or application/json), the server SHOULD respond with the requested
# mime type, using the XML or JSON formats described in this specification as the best
# representation for the named mime type". The body is the same FHIR JSON; only its label follows
# what the client asked for, so a client that accepts application/json alone is not handed a type
# it did not list (a strict HTTP client refuses such an answer).
FHIR_JSON_TYPE = b"application/fhir+json"
PLAIN_JSON_TYPE = b"application/json"


# RFC 9110 12.4.2: ``qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )``
_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")
# A range whose weight is not a qvalue: the sender named it, its preference cannot be read (``_weights``).
UNREAD = -1.0
# What such a range gives the types it names when no range with a weight that can be read names them: below
# the least weight a sender can write (0.001), above "not acceptable" -- the client listed it (ufix39)
LISTED = 0.0005
# What a header of unreadable ranges only gives a type it does not name: acceptable, as under a blank header
# (ui39), but below what it named, so the answer is a type the client listed whenever one can be had (ufix39)
UNLISTED = 0.0001


def _weights(accept: str) -> dict[str, float]:
    """Each media range of an Accept header with its highest q; a range whose weight is not a qvalue
    (RFC 9110 12.4.2: ``q=abc``, ``q=2``, ``q=-1``, ``q=0.5000``, ``q=nan``) with ``UNREAD`` unless the
    same range is also sent with a weight that can be read. ``float`` had read ``2`` as 2 (above every
    well-formed weight), so one malformed range outranked the rest; ui39 left such a range out as if not
    sent, which answered ``application/json;q=abc`` in ``application/fhir+json``, a type the client did not
    list (rv39c LOW). ``quality`` reads the mark: the range's weight is ignored, its naming is not.

    A range whose parameters name a representation huren has not (``_serves``: ``application/fhir+json;
    fhirVersion=3.0``) matches none huren answers (RFC 9110 12.5.1: a range's parameters are part of what it names):
    it is kept under its whole text, weighed 0, so it decides nothing for the types it names -- a wildcard or another
    range still may -- and a header of such ranges alone is not read as blank (which admits anything). They had been
    read as their bare type: ``fhirVersion=3.0`` was answered R4 JSON under a 200.

    A range whose parameters all admit what huren answers names huren's answer more specifically than its bare type
    does (RFC 9110 12.5.1: "the most specific reference has precedence"), so its weight is its type's over the bare
    range's: ``application/fhir+json;fhirVersion=4.0;q=0, application/fhir+json`` refuses R4 JSON (it had been folded
    into the bare type by the higher q and served, rv40e LOW 6). Between ranges of one type: a readable weight over an
    unread one (``quality`` passes an unread weight over for a less specific range), then the one with more
    parameters, then the higher q, as before."""
    weights: dict[str, float] = {}
    ranks: dict[str, tuple[bool, int]] = {}
    for item in accept.split(","):
        media, *params = item.split(";")
        media = media.strip().lower()
        if not media:
            continue
        q, served, named = 1.0, True, 0
        for param in params:
            name, _, value = param.partition("=")
            name = name.strip().lower()
            if name == "q":
                value = value.strip()
                q = float(value) if _QVALUE.fullmatch(value) else UNREAD
            else:
                named += 1
                if not _serves(name, value):
                    served = False
        if not served:
            weights[item.strip().lower()] = 0.0
            continue
        rank = (q != UNREAD, named)
        held = ranks.get(media)
        if held is None or rank > held:
            weights[media], ranks[media] = q, rank
        elif rank == held:
            weights[media] = max(q, weights[media])
    return weights


def quality(accept: str, media: str, weights: dict[str, float] | None = None) -> float:
    """The q an ``Accept`` header (RFC 9110 12.5.1) gives ``media`` (``type/subtype``, lower case), the most
    specific range naming it deciding: the type itself, else ``type/*``, else ``*/*``; 0 when none names it
    (not acceptable), 1 when the header is blank (anything is). What ``accepts_json`` decides for JSON,
    for any type: every address answering two representations weighs them by it (``prefers``).

    A range whose weight cannot be read (``UNREAD``) is passed over for the next, less specific one; when
    none with a readable weight names ``media``, one that cannot gives it ``LISTED`` (named, preference
    unknown: below every written weight), and a header with no readable weight at all gives a type it does
    not name ``UNLISTED`` (acceptable, as blank, below what it named). So the answer is never a type the
    client did not list when it listed one the address has (ufix39; ui39 kept: the unread weight outranks
    nothing that was written). ``weights``: the header's ``_weights`` when the caller has them."""
    if weights is None:
        weights = _weights(accept)
    if not weights:
        return 1.0
    listed = False
    for media_range in (media, media.split("/", 1)[0] + "/*", "*/*", "*"):
        q = weights.get(media_range)
        if q is None:
            continue
        if q != UNREAD:
            return q
        listed = True
    if listed:
        return LISTED
    return UNLISTED if all(q == UNREAD for q in weights.values()) else 0.0


def prefers(accept: str, media: str, *others: str) -> bool:
    """Whether an ``Accept`` header weighs ``media`` above each of ``others`` (``quality``): the choice of an
    address that answers ``others[0]`` unless asked for ``media`` -- CSV or JSON (``/reports/duplicates``,
    ``/reports/deductions``), Prometheus text or JSON (``/admin/metrics``). A tie, ``*/*`` and a blank header
    keep the address's own; ``text/csv;q=0`` is never CSV (RFC 9110 12.4.2: not acceptable). They had chosen
    by the substring ``text/csv`` in the header, its weight unread (rv39c MED)."""
    weights = _weights(accept)
    q = quality(accept, media, weights)
    return q > 0 and all(q > quality(accept, other, weights) for other in others)


def names(accept: str, media: str) -> bool:
    """Whether an ``Accept`` header writes ``media`` itself (whatever its weight), not through a wildcard."""
    return media in _weights(accept)


def json_label(accept: str, formats: list[str]) -> str | None:
    """The generic type a JSON answer is labelled with instead of ``application/fhir+json``, or None:
    ``_format=application/json`` (it overrides Accept), or, without ``_format``, the generic type
    (``application/json``, ``text/json``: GENERIC_JSON) an Accept names and weighs above whatever admits the
    FHIR type (``application/fhir+json`` or ``application/json+fhir`` if named, else ``application/*``, else
    ``*/*``; ``quality``, an unreadable weight as it reads it). A tie keeps the FHIR type: it is the more
    specific name of the same body; between the two generic types, application/json."""
    if formats:
        return "application/json" if formats[0].split(";")[0].strip().lower() == "application/json" else None
    if "/json" not in accept.lower():
        return None
    weights = _weights(accept)
    named = [t for t in ("application/fhir+json", "application/json+fhir") if t in weights]
    # the most specific range admitting the FHIR type decides (RFC 9110 12.5.1), as in ``accepts_json``
    best_q = max(quality(accept, t, weights) for t in named or ("application/fhir+json",))
    label = None
    for generic in GENERIC_JSON:
        if generic not in weights:  # a generic type is the label only where the client wrote it
            continue
        q = quality(accept, generic, weights)
        if q > 0 and q > best_q:
            label, best_q = generic, q
    return label


def wants_plain_json(accept: str, formats: list[str]) -> bool:
    """Whether a JSON answer is labelled ``application/json`` rather than ``application/fhir+json``
    (``json_label``)."""
    return json_label(accept, formats) == "application/json"


def plain_json_asked(scope: dict) -> str | None:
    """``json_label`` read off an ASGI request's headers and query string; the common request
    (no ``_format``, an Accept not naming application/json) answers without parsing either."""
    query: bytes = scope.get("query_string") or b""
    formats: list[str] = []
    # ``bytes.find``, not ``in``: ``needle in some_bytes`` first tries the needle as an int (a byte value)
    # and raises and drops a TypeError when it is bytes -- three a /fhir request here (attr35)
    # ``_format`` or a name whose escapes may spell it (``%5Fformat``, ``_%66ormat``), read as the router reads its
    # parameters: the raw ``format`` alone had missed ``_%66ormat=application/json``, served as asked but labelled
    # the FHIR type (rv41c LOW 10)
    if query.find(b"format") >= 0 or query.find(b"%") >= 0:
        formats = parse_qs(query.decode("latin-1")).get("_format", [])
    accept = b""
    for name, value in scope["headers"]:  # a loop, not a generator: it runs on every /fhir request
        if name == b"accept":
            accept = accept + b"," + value if accept else value
    if not formats and accept.find(b"/json") < 0 and accept.lower().find(b"/json") < 0:
        return None
    return json_label(accept.decode("latin-1"), formats)


def relabel_plain_json(send: Any, label: str | None = "application/json", scope: dict | None = None) -> Any:
    """``send`` with a FHIR JSON answer's Content-Type named ``label`` (a generic JSON type, its parameters kept) --
    or, once the route has set one in ``scope``, the label a ``POST _search`` form's ``_format`` chose
    (``FORMAT_IN_BODY``: ``negotiate_form``), whichever answer the request gets (the Bundle, a 4xx
    OperationOutcome). ``label`` None: only such a form's label applies. Any other answer (HTML, text) passes as it
    is."""

    async def sending(message: dict) -> None:
        if message["type"] == "http.response.start":
            chosen = label if scope is None else scope.get(FORMAT_IN_BODY, label)
            if chosen is not None and chosen != "application/fhir+json":
                message = _labelled(message, chosen.encode("ascii"))
        await send(message)

    return sending


def _labelled(message: dict, named: bytes) -> dict:
    """An ``http.response.start`` message whose FHIR JSON Content-Type is named ``named`` instead."""
    headers = list(message.get("headers") or ())
    for i, (name, value) in enumerate(headers):
        if name.lower() == b"content-type" and value.lower().startswith(FHIR_JSON_TYPE):
            headers[i] = (name, named + value[len(FHIR_JSON_TYPE):])
            return {**message, "headers": headers}
    return message


class JsonLabel:
    """ASGI middleware around the ``/fhir`` routes (the fast read included): a FHIR JSON answer is
    labelled ``application/json`` when that is what the client asked for (``wants_plain_json``), by the query's
    ``_format`` and Accept or, on a ``POST _search``, by its form body's ``_format`` (``FORMAT_IN_BODY``)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/fhir"):
            label = plain_json_asked(scope)
            if label is not None or (scope["method"] == "POST" and scope["path"].endswith("/_search")):
                send = relabel_plain_json(send, label, scope)
        await self.app(scope, receive, send)
