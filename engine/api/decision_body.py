"""A person's decision sent over HTTP: its JSON body, and the reason in it.

Two routes take a decision with a reason: the operator's on a held message (``POST /admin/quarantine/{id}/owner``,
``admin.owner``) and the auditor's review of a duplicate-test flag (``POST /reports/duplicates/{id}/review``,
``reports.review``). Both read their body here, so a reason is read one way (review rv41i, forty-first round): the
review route had taken ``str()`` of whatever JSON value came as the reason -- ``["已核实"]`` was kept as the text
``['已核实']``, ``true`` as ``True``, in the flag, the DetectedIssue, the CSV and the audit log: words the auditor
never wrote -- where the owner route refused a reason that was not a string; the two had parsed with different
parsers (a JSON ``"\\ud800"`` was "Input data was truncated" on one route, the reason rule's "half of a UTF-16 pair"
on the other) and answered the same refusal with and without ``expression: ["reason"]``.

The reason's own rule -- what a kept reason may hold -- is ``message_time.reason_of``'s; this module only takes the
value out of the body (a JSON string, nothing else) and answers every refusal as a 400 OperationOutcome naming
``reason``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from engine.errors import BadRequest
from engine.message_time import reason_of


def decision_body(raw: bytes, *, shape: str) -> dict[str, Any]:
    """The JSON object a decision is sent as (``shape``: the object expected, said in each refusal).

    Read by Python's own parser from UTF-8 text -- not ``fhirjson``'s strict one, which refuses a lone surrogate
    escape (``"\\ud800"``) as a broken document: here it reaches ``reason_of``, which names it in the reason it is
    in. An empty body is an object without fields (the reason is then "required", naming ``reason``). 400 when the
    body is not UTF-8, not one JSON document (an integer past Python's 4,300 digits, or nested past the parser's
    depth: that ``RecursionError`` had been a 500 on the owner route) or not an object; 400 naming the field when
    an object names one field twice (``{"decision": "overturned", ..., "decision": "upheld"}`` had been decided by
    the last, where a proxy or a log keeping the first reads the other decision from the same bytes -- RFC 8259 4:
    names SHOULD be unique, and a receiver's choice is unpredictable: review rv41p MED 1/2), and for ``NaN`` or
    ``Infinity``, which are not JSON (RFC 8259 6; rv41p LOW 3)."""
    if not raw.strip():
        return {}  # (nothing sent: each field is then missing, and said so by its name)
    twice: list[tuple[dict[str, Any], str]] = []
    try:
        data = json.loads(raw.decode("utf-8"), object_pairs_hook=lambda pairs: _once(pairs, twice),
                          parse_constant=_not_json)
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the body is not UTF-8 text (the byte 0x{raw[exc.start]:02X} at {exc.start + 1}): "
                         f"send the JSON object {shape}") from None
    except _NotJson as exc:
        raise BadRequest(f"the body is not JSON ({exc.word} is no JSON value): send the JSON object {shape}") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"the body is not JSON ({exc.msg} at {exc.pos + 1}): send the JSON object {shape}") from None
    except ValueError as exc:  # (an integer of more than 4,300 digits: Python's own bound on reading one)
        raise BadRequest(f"the body cannot be read ({exc}): send the JSON object {shape}") from None
    except RecursionError:
        raise BadRequest(f"the body is nested too deeply to be read: send the JSON object {shape}") from None
    if twice:
        _refuse_twice(data, twice, shape)
    if not isinstance(data, dict):
        raise BadRequest(f"the body must be the JSON object {shape}, not {_kind(data)}") from None
    return data


def _once(pairs: list[tuple[str, Any]], twice: list[tuple[dict[str, Any], str]]) -> dict[str, Any]:
    """A JSON object of ``pairs`` (``json.loads``' ``object_pairs_hook``); a name it holds twice is noted in
    ``twice`` with the object, so that the refusal can tell the body's own field from one of a nested object (the
    hook is called innermost first and knows no path: the object it returns last is the body)."""
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            twice.append((out, name))
        out[name] = value
    return out


def _refuse_twice(data: object, twice: list[tuple[dict[str, Any], str]], shape: str) -> None:
    """400 for a name given twice (review rv42a): the body's own field named in ``expression``; a nested object's
    said as such (it had been reported as the body's field of that name). The name is echoed at most 64 characters
    and as ``ascii()`` writes it, so a lone surrogate escape or a 200 kB name cannot break or swell the answer (a
    surrogate named twice had been a 500: the OperationOutcome could not be encoded); only a printable name is put
    in ``expression``."""
    own = [name for obj, name in twice if obj is data]
    name = own[0] if own else twice[0][1]
    plain = len(name) <= 64 and name.isprintable()  # (a lone surrogate is no printable character)
    said = repr(name) if plain else ascii(name[:64]) + ("..." if len(name) > 64 else "")
    if not own:
        raise BadRequest(f"an object inside the body names the field {said} twice: send each field once, the JSON "
                         f"object {shape} (字段重复)")
    raise BadRequest(f"the body names the field {said} twice: send each field once, the JSON object {shape} "
                     f"(字段{' ' + name if plain else ''} 重复)", expression=[name] if plain else None)


class _NotJson(ValueError):
    """``NaN``, ``Infinity`` or ``-Infinity`` in the body (``_not_json``)."""

    def __init__(self, word: str) -> None:
        super().__init__(word)
        self.word = word


def _not_json(word: str) -> Any:
    """``NaN``, ``Infinity``, ``-Infinity``: Python's parser takes them, JSON has no such values (``parse_constant``;
    the parser gives no position, so the refusal names the word alone)."""
    raise _NotJson(word)


def reason_in(body: Mapping[str, Any], *, why: str) -> str:
    """The reason of a decision's body (``decision_body``) as ``message_time.reason_of`` keeps it; ``why``: what
    the reason is asked for. A JSON string only: a list, an object, a number or ``true`` is refused, never turned
    into text the person did not type. Every refusal -- none, not a string, or one the reason rule refuses -- is a
    400 with ``expression: ["reason"]``, its words ending with the Chinese in brackets (the pages show those)."""
    value = body.get("reason")
    if value is None:
        raise BadRequest(f'a reason is required: {{"reason": "{why}"}} (请填写理由)', expression=["reason"])
    if not isinstance(value, str):
        raise BadRequest(f'the reason must be text, a JSON string, not {_kind(value)}: {{"reason": "{why}"}} '
                         "(理由必须是文字)", expression=["reason"])
    try:
        return reason_of(value, why=why)
    except ValueError as exc:
        raise BadRequest(str(exc), expression=["reason"]) from None


def _kind(value: object) -> str:
    """A JSON value's kind, as a refusal says it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return "a number"
    return {list: "a list", dict: "an object", str: "a string"}.get(type(value), type(value).__name__)
