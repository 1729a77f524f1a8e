"""Literal references inside a resource: found (``$everything``'s referenced resources) and
rewritten in place (a Bundle's ``urn:uuid`` entries; the HL7 converter's re-keyed resources)."""

from __future__ import annotations

from typing import Any


def rewrite_references(node: Any, mapping: dict[str, str]) -> None:
    """Every ``reference`` in ``node`` that ``mapping`` names now points where it says, in place
    (a Bundle's urn:uuid entries; the HL7 converter's re-keyed resources)."""
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and ref in mapping:
            node["reference"] = mapping[ref]
        for value in node.values():
            if isinstance(value, (dict, list)):
                rewrite_references(value, mapping)
    elif isinstance(node, list):
        for value in node:
            rewrite_references(value, mapping)



def is_conditional(reference: str) -> bool:
    """A conditional reference (``Patient?identifier=…``): a search standing for the one record it
    matches, which R4 allows in a transaction only (http.html, transaction processing)."""
    head, sep, _ = reference.partition("?")
    return bool(sep) and head.isalpha() and head[:1].isupper()


def references_in(node: Any, out: list[str]) -> list[str]:
    """Every literal ``reference`` string in ``node`` (depth first), appended to ``out``."""
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str):
            out.append(ref)
        for value in node.values():
            if isinstance(value, (dict, list)):
                references_in(value, out)
    elif isinstance(node, list):
        for value in node:
            references_in(value, out)
    return out
