"""Literal references inside a resource: found (``$everything``'s referenced resources) and
rewritten in place (a Bundle's ``urn:uuid`` entries; the HL7 converter's re-keyed resources)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

PLACEHOLDER = "urn:uuid:"


def rewrite_references(node: Any, mapping: Mapping[str, str]) -> None:
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


def placeholder_references(node: Any, path: str, out: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Every ``urn:uuid:`` reference in ``node`` with the path of its element
    (``Observation.subject``), appended to ``out``. A ``urn:uuid`` is a placeholder for an entry of
    the Bundle it was sent in (R4 bundle.html#references): once a Bundle's own are rewritten, one
    left names nothing, ever."""
    return references_at(node, path, lambda ref: ref[:9].lower() == PLACEHOLDER, out)


def references_at(node: Any, path: str, keep: Callable[[str], object],
                  out: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Every literal reference in ``node`` that ``keep`` accepts, with the path of its element
    (``Observation.subject``, ``Observation.performer[1]``), appended to ``out``. A Bundle inside (a
    document) is not looked into: its entries define its references."""
    if isinstance(node, dict):
        if node.get("resourceType") == "Bundle":
            return out
        ref = node.get("reference")
        if isinstance(ref, str) and keep(ref):
            out.append((path, ref))
        for key, value in node.items():
            if isinstance(value, (dict, list)):
                references_at(value, f"{path}.{key}", keep, out)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            references_at(value, f"{path}[{i}]", keep, out)
    return out
