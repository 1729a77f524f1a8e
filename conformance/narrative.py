"""R4 narrative rules for an ``xhtml`` value (``Resource.text.div``, ``Composition.section.text.div``).

Why huren checks it: a narrative is HTML that any FHIR client may render as it is (R4 narrative.html: "the
narrative ... is expected to be displayed to a human"). A client's ``<div><script>...</script></div>`` had been
stored 201 and served back to every reader of the record -- stored cross-site scripting in whichever viewer shows
it, huren's own pages set aside (they render no narrative). The R4 rules (narrative.html §"Narrative" and the
Narrative invariant txt-1) are therefore the server's to keep, not only the clients':

- the value is well-formed XHTML: one root ``div`` in the XHTML namespace, no DOCTYPE, no entity declarations,
  no processing instructions (``<?xml-stylesheet?>`` is an external stylesheet), only the predefined XML
  entities and character references (``&nbsp;`` is written ``&#160;``);
- "only the basic html formatting elements and attributes described in chapters 7-11 (except section 4 of
  chapter 9) and 15 of the HTML 4.0 standard, <a> elements (either name or href), images and internally
  contained style attributes": no ``script``, ``form``, ``iframe``, ``object``, ``style``, ``link``, ``base``,
  SVG or MathML, no event handler (``onclick``...), no attribute of another namespace (``xlink:href``);
- a link or image address is relative, a fragment, or of a scheme that fetches or names (``http``, ``https``,
  ``mailto``, ``tel``, ``urn``), an image also ``data:image/...``: never ``javascript:``, ``vbscript:`` or a
  ``data:`` document -- read as a browser reads it (tabs and line breaks inside the scheme ignored, character
  references decoded by the XML reader first);
- a ``style`` attribute is internally contained: no ``expression(``, ``javascript:``, ``@import``, ``behavior``
  or ``-moz-binding``, and no address of another document -- ``url(``, ``src(``, ``image(``, ``image-set(`` or
  ``cross-fade(`` hold only a ``data:image/...`` address, as an image's ``src`` may. Read as a browser reads it:
  comments dropped, then CSS escapes decoded (``\\75 rl(`` spells ``url(``; ``"\\5B8B\\4F53"`` is how Word
  and Chinese editors write the font 宋体, kept -- http43b).

The element and attribute lists are those of the HL7 FHIR validator's XHTML check (``XhtmlValidator``); its
later structural rules (where a ``tr`` may stand) are layout, not safety, and are not applied.

``problem(div)`` answers None or the first problem in words; ``conformance.validate`` calls it through the R4
schema's ``xhtml`` definition (a JSON Schema ``format``), so every writer -- FHIR create, update, patch,
transaction, operations -- meets the same rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from xml.parsers import expat

XHTML = "http://www.w3.org/1999/xhtml"
_XML = "http://www.w3.org/XML/1998/namespace"

# HTML 4.0 chapters 7-11 and 15, <a>, images (the FHIR validator's list)
ELEMENTS = frozenset((
    "p", "br", "div", "h1", "h2", "h3", "h4", "h5", "h6", "a", "span", "b", "em", "i", "strong", "small", "big", "tt",
    "dfn", "q", "var", "abbr", "acronym", "cite", "blockquote", "hr", "address", "bdo", "kbd", "sub", "sup", "ul",
    "ol", "li", "dl", "dt", "dd", "pre", "table", "caption", "colgroup", "col", "thead", "tr", "tfoot", "tbody", "th",
    "td", "code", "samp", "img", "map", "area",
))
# attributes any of them may carry
ATTRIBUTES = frozenset((
    "title", "style", "class", "id", "lang", "dir", "accesskey", "tabindex",
    "span", "width", "align", "valign", "char", "charoff", "abbr", "axis", "headers", "scope", "rowspan", "colspan",
))
# attributes of one element (element.attribute)
ELEMENT_ATTRIBUTES = frozenset((
    "a.href", "a.name", "a.charset", "a.type", "a.hreflang", "a.rel", "a.rev", "a.shape", "a.coords",
    "img.src", "img.border", "img.alt", "img.longdesc", "img.height", "img.width", "img.usemap", "img.ismap",
    "map.name", "area.shape", "area.coords", "area.href", "area.nohref", "area.alt",
    "blockquote.cite", "q.cite", "table.summary", "table.width", "table.border", "table.frame", "table.rules",
    "table.cellspacing", "table.cellpadding", "pre.space", "td.nowrap",
))
# the attributes holding an address a reader's browser follows or fetches
_ADDRESSES = frozenset(("a.href", "area.href", "img.src", "img.longdesc", "blockquote.cite", "q.cite"))
_SCHEMES = frozenset(("http", "https", "mailto", "tel", "urn"))
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_DATA_IMAGE = re.compile(r"data:image/(png|jpeg|gif|webp);", re.IGNORECASE)
_URL_IGNORED = re.compile(r"[\t\n\r]")  # what a browser's URL parser strips before it reads the scheme
# in a style, once decoded (``_css_decoded``): what runs script or binds behaviour, and the functions that fetch an
# address (CSS Images 3/4: ``image()``, ``image-set()``, ``cross-fade()``; CSS Values 4: ``src()``)
_STYLE_ACTIVE = re.compile(r"@import|expression\s*\(|behavior|-moz-binding|javascript:", re.IGNORECASE)
# a token the pass over a decoded style (``_fetched``) stops at: a fetching function's name and parenthesis (vendor
# prefix or not), a parenthesis, a quote
_CSS_TOKEN = re.compile(r"(?<![\w-])(?:-[A-Za-z]+-)?(url|src|image|image-set|cross-fade)\s*\(|[()\"']", re.IGNORECASE)
_URL_UNQUOTED = re.compile(r"\s*([^\s\"')][^)]*)")  # url()'s argument when not a string: up to its parenthesis
_STRING_END = {'"': re.compile(r"[\"\n\r\f]"), "'": re.compile(r"['\n\r\f]")}  # (a line break ends a bad string)
# what an escape may not stand for in the syntax (CSS Syntax 3: an escaped character is always part of a name or a
# string, never a quote, parenthesis or backslash of the syntax): read as a character of no meaning
_CSS_SYNTAX = frozenset("\"'()\\")
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
# CSS Syntax 3 §4.3.7: a backslash and one to six hex digits (one white space after them belongs to the escape), or
# any other character but a line break; a backslash before a line break is a string's line continuation
_CSS_ESCAPE = re.compile(r"\\(?:([0-9A-Fa-f]{1,6})(?:\r\n|[ \t\n\r\f])?|(\r\n|[\n\r\f])|(.))", re.DOTALL)


class _Refused(Exception):
    """A rule broken: the parse stops at the first."""


def problem(div: str) -> str | None:
    """None when ``div`` keeps the R4 narrative rules, else what breaks them first (English words, naming the
    element or attribute)."""
    parser = expat.ParserCreate(namespace_separator=" ")
    depth = 0
    seen_root = False

    def doctype(*_: object) -> None:
        raise _Refused("a DOCTYPE is not allowed in a narrative (R4: XHTML fragment, no document type)")

    def instruction(target: str, _data: str) -> None:
        raise _Refused(f"the processing instruction <?{target}?> is not allowed in a narrative")

    def start(name: str, attributes: dict[str, str]) -> None:
        nonlocal depth, seen_root
        namespace, _, local = name.rpartition(" ")
        if namespace != XHTML:
            where = f"the namespace {namespace}" if namespace else "no namespace"
            raise _Refused(f"<{local}> is in {where}: a narrative's elements are XHTML ({XHTML})")
        if depth == 0:
            if seen_root:
                raise _Refused("a narrative is one <div> element")
            if local != "div":
                raise _Refused(f"a narrative's root element is <div>, not <{local}>")
            seen_root = True
        elif local not in ELEMENTS:
            raise _Refused(f"<{local}> is not allowed in a narrative (R4 txt-1: basic HTML formatting only -- no "
                           "script, form, frame, object, style or link)")
        depth += 1
        for key, value in attributes.items():
            _attribute(local, key, value)

    def end(_name: str) -> None:
        nonlocal depth
        depth -= 1

    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = doctype
    parser.ProcessingInstructionHandler = instruction
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(div, True)
    except _Refused as refused:
        return str(refused)
    except expat.ExpatError as error:
        return f"is not well-formed XHTML ({expat.ErrorString(error.code)}, line {error.lineno} column {error.offset})"
    except (ValueError, RecursionError):  # (a lone surrogate cannot be encoded for the parser)
        return "is not well-formed XHTML"
    return None


def _attribute(element: str, key: str, value: str) -> None:
    namespace, _, local = key.rpartition(" ")
    if namespace == _XML and local in ("lang", "space"):
        return
    if namespace:
        raise _Refused(f"the attribute {local} of the namespace {namespace} on <{element}> is not allowed in a "
                       "narrative")
    if local.lower().startswith("on"):
        raise _Refused(f"the event handler attribute {local} on <{element}> is not allowed in a narrative (R4: no "
                       "active content)")
    pair = f"{element}.{local}"
    if local not in ATTRIBUTES and pair not in ELEMENT_ATTRIBUTES:
        raise _Refused(f"the attribute {local} on <{element}> is not allowed in a narrative (R4 txt-1)")
    if pair in _ADDRESSES:
        _address(element, local, value)
    elif local == "style":
        _style(element, value)


def _style(element: str, value: str) -> None:
    """A ``style`` attribute internally contained (R4 narrative.html: "internally contained style attributes"), read
    as a browser reads it: comments dropped, then escapes decoded -- so ``\\75 rl(`` is ``url(`` and a font named
    ``"\\5B8B\\4F53"`` is 宋体 (any backslash had been refused: rv43c LOW 2). A fetching function is kept only when
    every address in it is a ``data:image/...`` (inside the attribute itself, nothing fetched)."""
    css = _CSS_COMMENT.sub("", value)
    if (found := _STYLE_ACTIVE.search(_css_decoded(css, syntax=False))) is not None:
        raise _Refused(f"the style on <{element}> holds {found.group()!r}: a narrative's style is internally "
                       "contained (no script, expression(), @import or binding)")
    for function, address in _fetched(_css_decoded(css, syntax=True)):
        if not _DATA_IMAGE.match(address.strip()):
            raise _Refused(f"the style on <{element}> fetches {address[:60]!r} in {function}(): a narrative's style "
                           "is internally contained (an address only data:image/png, jpeg, gif or webp)")


def _css_decoded(css: str, *, syntax: bool) -> str:
    """``css`` with its escapes replaced by the characters they stand for (CSS Syntax 3 §4.3.7): a code point zero,
    a surrogate or beyond U+10FFFF is U+FFFD; a line continuation is nothing. ``syntax``: an escaped quote,
    parenthesis or backslash is U+FFFD too, so that ``_fetched`` reads the strings and functions a browser reads
    (``url\\28 x)`` is a name, not ``url(``; ``"a\\"b"`` one string)."""
    def one(escape: re.Match[str]) -> str:
        digits, _, other = escape.groups()
        if digits is None:
            char = other or ""
        else:
            point = int(digits, 16)
            char = "\ufffd" if point == 0 or 0xD800 <= point <= 0xDFFF or point > 0x10FFFF else chr(point)
        return "\ufffd" if syntax and char in _CSS_SYNTAX else char

    return _CSS_ESCAPE.sub(one, css)


def _fetched(css: str) -> Iterator[tuple[str, str]]:
    """(function, address) for each address a fetching function of ``css`` holds: ``url()``'s and ``src()``'s one
    (a string, or url()'s text up to its parenthesis), and each string inside ``image()``, ``image-set()`` or
    ``cross-fade()`` at any depth. One pass, each character read once (a function's extent found anew for each
    function had taken seconds over a few thousand nested ``image-set(``)."""
    inside: list[str | None] = []  # per open parenthesis: the innermost fetching function it stands in
    at = 0
    while (token := _CSS_TOKEN.search(css, at)) is not None:
        at = token.end()
        text, function = token.group(), token.group(1)
        if function is not None:
            function = function.lower()
            inside.append(function)
            if function in ("url", "src") and (bare := _URL_UNQUOTED.match(css, at)) is not None:
                yield function, bare.group(1)
                at = bare.end()
        elif text == "(":
            inside.append(inside[-1] if inside else None)
        elif text == ")":
            if inside:
                inside.pop()
        else:  # a string, to its closing quote (or a line break, or the end)
            end = _STRING_END[text].search(css, at)
            close = end.start() if end is not None else len(css)
            if inside and inside[-1] is not None:
                yield inside[-1], css[at:close]
            at = close + 1 if end is not None and end.group() == text else close


def _address(element: str, attribute: str, value: str) -> None:
    read = _URL_IGNORED.sub("", value).lstrip("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x11\x12"
                                              "\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f ")
    scheme = _SCHEME.match(read)
    if scheme is None or scheme.group(1).lower() in _SCHEMES:
        return
    if element == "img" and attribute == "src" and _DATA_IMAGE.match(read):
        return
    raise _Refused(f"the {attribute} of <{element}> is a {scheme.group(1).lower()}: address: a narrative links "
                   "only relative, http(s), mailto, tel or urn addresses (R4: no active content)")
