"""Read-only dicts and lists: the site's tables as every Engine of a process shares them.

``mappings.site`` hands each Engine of a process the same parsed tables when its site files are the
same bytes (trim42b): one reading, and one set of the converter's compiled tables (``adapters.convert``
compiles each table once, by its identity). Shared, a table changed by one caller would change it for
every Engine, so a shared table refuses to be changed: each of these raises ``TypeError`` on any
change, where a test (or a caller) meets it at once rather than as another Engine's wrong mapping.

They stay ``dict`` and ``list`` (subclasses), so a reader's ``isinstance`` checks, ``json`` and
``{**table, ...}`` read them as before; ``copy.copy``/``copy.deepcopy`` and ``dict(table)`` give a
caller a plain copy of its own to change; they pickle (a child process receives plain-equal tables).
"""

from __future__ import annotations

import copy
from typing import Any, NoReturn


def _refuse(self: object, *args: Any, **kwargs: Any) -> NoReturn:
    raise TypeError(f"{type(self).__name__}: a site table is shared by every Engine of the process and never "
                    "changed (copy it first: dict(table), list(table), copy.deepcopy(table))")


class FrozenDict(dict):  # type: ignore[type-arg]
    """A ``dict`` that refuses every change (``_refuse``)."""

    __slots__ = ()
    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __copy__(self) -> dict[Any, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[Any, Any]:
        return {copy.deepcopy(k, memo): copy.deepcopy(v, memo) for k, v in self.items()}

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))


class FrozenList(list):  # type: ignore[type-arg]
    """A ``list`` that refuses every change (``_refuse``)."""

    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return [copy.deepcopy(v, memo) for v in self]

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenList, (list(self),))


def frozen(value: Any) -> Any:
    """``value`` with every dict and list in it (deeply) made read-only; tuples frozen inside; other
    values (strings, numbers, frozen dataclasses) as they are. A dict's keys are kept as they are."""
    if isinstance(value, dict):
        return value if type(value) is FrozenDict else FrozenDict({k: frozen(v) for k, v in value.items()})
    if isinstance(value, list):
        return value if type(value) is FrozenList else FrozenList([frozen(v) for v in value])
    if type(value) is tuple:
        return tuple(frozen(v) for v in value)
    if isinstance(value, set):
        return frozenset(value)
    return value
