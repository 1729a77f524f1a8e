"""``AuditLog``'s parts state what they need from each other (``engine.audit.parts``), and a real log
has all of it: a method renamed in one part, or state no longer set by ``AuditLog.__init__``, makes
a Protocol state what nothing provides, and this fails."""

from __future__ import annotations

import typing

import pytest

from engine.audit import appends, found, key_index, loading, parts, signing
from engine.audit.keys import AuditKeys
from engine.audit.log import AuditLog
from engine.audit.store import open_audit_store
from engine.settings import Settings

PARTS = {appends.Appends: parts.AppendsNeeds, signing.Signing: parts.SigningNeeds, found.FoundTail: parts.FoundNeeds,
         key_index.KeyIndexing: parts.KeyIndexNeeds, loading.Loading: parts.LoadingNeeds}


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> typing.Iterator[AuditLog]:
    s = Settings(data_dir=tmp_path_factory.mktemp("parts") / "data").with_(audit_seal_seconds=3600)
    s.data_dir.mkdir(parents=True)
    audit = AuditLog(open_audit_store(s), s, AuditKeys.load(s, create=True))
    audit.record({"action": "R", "recorded": "2026-12-01T00:00:00Z"})  # (a record: the state past the load)
    yield audit
    audit.close()


@pytest.mark.parametrize("part", list(PARTS), ids=lambda p: p.__name__)
def test_a_real_log_has_every_member_its_parts_protocol_names(log: AuditLog, part: type) -> None:
    needs = PARTS[part]
    names = parts.members(needs)
    assert names >= parts.members(parts.LogState) and len(names) > len(parts.members(parts.LogState))
    missing = sorted(name for name in names if not hasattr(log, name))
    assert not missing, f"{needs.__name__} names what AuditLog does not have: {missing}"
    for name in names - parts.members(parts.LogState):  # the methods it needs are another part's, not its own
        assert name not in vars(part), f"{part.__name__}.{name} is its own, not a need"
        assert callable(getattr(log, name))


def test_every_method_a_part_calls_on_self_is_its_own_or_named_by_its_protocol() -> None:
    """Read each part's source: every ``self.<name>`` it uses is defined in that part or named by
    its Protocol (so the Protocol is the whole of what it needs)."""
    import ast
    import inspect

    for part, needs in PARTS.items():
        tree = ast.parse(inspect.getsource(part))
        used = {n.attr for n in ast.walk(tree)
                if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "self"}
        own = set(vars(part)) | {n.target.id for n in tree.body[0].body  # type: ignore[attr-defined]
                                 if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
        unstated = sorted(used - own - parts.members(needs))
        assert not unstated, f"{part.__name__} uses {unstated} through self, named by no Protocol"


def test_the_protocols_are_for_the_type_checker_only() -> None:
    """At run time each part is a plain class: ``AuditLog``'s order of resolution has no Protocol."""
    assert not any(getattr(cls, "_is_protocol", False) for cls in AuditLog.__mro__)
    assert all(part.__bases__ == (object,) for part in PARTS)
