"""Reading site files (institutions, code maps, HL7 tables, recognition rules) with positions, so
every mistake names file, line and field.

This is the one reader of site files: ``mappings.site`` and ``engine.recognition.rules`` both call
it. The files are data an operator edits: a wrong file must stop start-up with a message a
hospital integrator can act on, e.g. ``qc.yaml:7: [2].until: '2026-13-01' is not a 'date'``. YAML is composed into nodes first
(they keep their marks), then constructed into plain data and validated with jsonschema; a
validation error's path is walked back through the nodes to the line it came from.
"""

from __future__ import annotations

import functools
import json
import pickle
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jsonschema import Draft202012Validator


class SiteError(ValueError):
    """A site file is missing, unreadable or wrong: names the file, the line and the field."""

    def __init__(self, path: Path | str, line: int | None, where: str, problem: str) -> None:
        self.path = str(path)
        self.line = line
        self.where = where
        self.problem = problem
        loc = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{loc}: {where + ': ' if where else ''}{problem}")


# The recognition rules are site files too; the name stays for callers that speak of rules.
RulesError = SiteError


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps dates as the strings the operator wrote (validated by the schema's
    ``format: date``), so a wrong date is reported rather than silently turned into something."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


# libyaml's scanner and parser (PyYAML's C extension), with the same Python constructor and resolvers: the
# data is the same objects as the pure-Python reader's (checked on every YAML file of the repository, by
# pickle), ~8x cheaper to parse. Every process that opens an Engine parsed ~100 site files (~0.5 s of CPU:
# each test worker, and each server, CLI or recognition subprocess a test starts; twenty-eighth round,
# suitecut28). A text libyaml refuses is parsed again by the Python reader, so a mistake is reported in its
# words and at its line, as before. Without the extension (a PyYAML built without libyaml) the Python reader.
class _CLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """``_Loader``'s resolvers (dates kept as text) on libyaml's parser."""


_CLoader.yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers
_FAST: dict[type, type] = {yaml.SafeLoader: getattr(yaml, "CSafeLoader", yaml.SafeLoader), _Loader: _CLoader}


@dataclass
class YamlDocument:
    """A parsed site file: its data, and its text for line numbers. The node tree is composed only
    when a line is asked for (a mistake being reported): the data alone is what every load needs."""

    path: Path
    data: Any
    text: str
    loader: type[yaml.SafeLoader]

    @functools.cached_property
    def root(self) -> yaml.Node | None:
        return yaml.compose(self.text, Loader=self.loader)

    def line_of(self, path: Sequence[str | int]) -> int | None:
        """1-based line of the node at ``path`` (the deepest node that exists on the way)."""
        node = self.root
        line = node.start_mark.line + 1 if node is not None else None
        for step in path:
            if isinstance(node, yaml.MappingNode):
                nxt = next((v for k, v in node.value if str(k.value) == str(step)), None)
                if nxt is None:
                    key = next((k for k, _ in node.value if str(k.value) == str(step)), None)
                    return key.start_mark.line + 1 if key is not None else line
                node = nxt
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
                node = node.value[step]
            else:
                break
            line = node.start_mark.line + 1
        return line


def _stringify_keys(value: Any) -> Any:
    """Mapping keys as strings: an unquoted local code like ``1001:`` is a code, not a number."""
    if isinstance(value, dict):
        return {str(k): _stringify_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify_keys(v) for v in value]
    return value


def read_yaml(path: Path, *, plain: bool = False) -> YamlDocument:
    """Parse ``path`` keeping node positions. By default dates stay the text the operator wrote
    (checked by the schema) and mapping keys are strings; ``plain`` gives PyYAML's safe types
    unchanged (the HL7 mapping tables rely on them)."""
    loader = yaml.SafeLoader if plain else _Loader
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SiteError(path, None, "", f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise SiteError(path, None, "", f"not UTF-8 text: {exc}") from exc
    try:
        data = _copy_of_parse(text, loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise SiteError(path, mark.line + 1 if mark else None, "", f"YAML syntax: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise SiteError(path, None, "", f"YAML syntax: {exc}") from exc
    return YamlDocument(path, data, text, loader)


# Texts up to this size are parsed once per process (the shipped files are <= 15 KB); a larger one (a
# big code map) is parsed at each read, so that old versions of it, edited and reloaded again and
# again, do not stay in memory for the life of the server.
_CACHED_TEXT = 128 * 1024


@functools.lru_cache(maxsize=256)
def _parsed(text: str, loader: type[yaml.SafeLoader]) -> bytes:
    """The text's data, parsed once per process for the same text and kept pickled: PyYAML's
    pure-Python parser took ~0.7 s of CPU for the ~100 site files every Engine reads (most of an
    Engine's start, measured). Every caller unpickles its own copy (sets and tuples included: some
    callers change what they read). A text that fails to parse raises every time."""
    return pickle.dumps(_data(text, loader), pickle.HIGHEST_PROTOCOL)


def safe_load(text: str) -> Any:
    """``yaml.safe_load(text)``, parsed once per process for the same text (as ``read_yaml``): for a
    shipped data file read at every Engine's start; the caller gets a copy of its own."""
    return _copy_of_parse(text, yaml.SafeLoader)


def _copy_of_parse(text: str, loader: type[yaml.SafeLoader]) -> Any:
    """The cached parse handed out as a copy of its own (unpickled: ~4x cheaper than copy.deepcopy, and
    as faithful for YAML's safe types: shared nodes stay shared, sets and dates stay what they are); a
    text above ``_CACHED_TEXT`` parsed anew."""
    return pickle.loads(_parsed(text, loader)) if len(text) <= _CACHED_TEXT else _data(text, loader)


def _data(text: str, loader: type[yaml.SafeLoader]) -> Any:
    try:
        data = yaml.load(text, Loader=_FAST.get(loader, loader))
    except yaml.YAMLError:  # reported as the Python reader words it (its problem, its line)
        data = yaml.load(text, Loader=loader)
    return data if loader is yaml.SafeLoader else _stringify_keys(data)


@functools.lru_cache(maxsize=64)
def _schema(name: str) -> dict[str, Any]:
    """A recognition rules schema, read once per process (the shipped package's files; ~70 reads and
    parses at every Engine's start before). Shared: ``check`` only reads it."""
    return json.loads(resources.files("engine.recognition").joinpath("schemas").joinpath(name).read_text("utf-8"))


def check(doc: YamlDocument, schema: dict[str, Any]) -> Any:
    """Validate against ``schema``; raise a ``SiteError`` for the first (by line) error."""
    key = _valid_key(doc.data, schema)
    if key is not None and key in _VALID:
        return doc.data
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(doc.data), key=lambda e: (doc.line_of(list(e.absolute_path)) or 0))
    if errors:
        err: jsonschema.ValidationError = errors[0]
        steps = list(err.absolute_path)
        raise SiteError(doc.path, doc.line_of(steps), field_path(steps), err.message)
    if key is not None:
        with _VALID_LOCK:
            _VALID[key] = None
            while len(_VALID) > _VALID_KEPT:
                del _VALID[next(iter(_VALID))]
    return doc.data


# Values found valid, each with its schema, both pickled: validating the ~100 site files against
# their schemas was ~6 ms of an Engine's ~100 ms start (jsonschema in pure Python), the same files
# against the same schemas at every start. A value is looked up by its pickle, which tells 1 from
# 1.0 from True and an int key from a str one, so a value found here was validated as it is (a
# caller that changed its copy before checking it gets its own pickle, validated anew). Only valid
# values are kept (a mistake is reported in full every time); a few hundred small ones at most.
_VALID: dict[tuple[bytes, bytes], None] = {}
_VALID_LOCK = threading.Lock()
_VALID_KEPT = 512
_VALID_SIZE = 64 * 1024


def _valid_key(data: Any, schema: dict[str, Any]) -> tuple[bytes, bytes] | None:
    try:
        key = pickle.dumps(data, pickle.HIGHEST_PROTOCOL), pickle.dumps(schema, pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 -- not a plain value: validate it every time
        return None
    return key if len(key[0]) + len(key[1]) <= _VALID_SIZE else None


def load_checked(path: Path, schema: dict[str, Any], *, plain: bool = False) -> tuple[Any, YamlDocument]:
    """Parse a site file (YAML, line marks kept) and check it against ``schema``: the one way every
    part of huren reads its data files, so every mistake names file, line and field alike."""
    doc = read_yaml(path, plain=plain)
    check(doc, schema)
    return doc.data, doc


def field_path(path: Iterable[str | int]) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


def validate(doc: YamlDocument, schema_name: str) -> Any:
    """Validate against a recognition rules schema (``engine/recognition/schemas/<name>``)."""
    return check(doc, _schema(schema_name))


def locate(doc: YamlDocument, steps: Sequence[str | int], message: str) -> RulesError:
    """An error about a value that passed the schema but breaks a cross-file rule (unknown item...)."""
    return SiteError(doc.path, doc.line_of(steps), field_path(steps), message)


def find_file(name: str, folders: Sequence[Path]) -> Path:
    """The site overlay wins by file name: the last folder holding ``name`` provides it."""
    found = [folder / name for folder in folders if (folder / name).is_file()]
    if not found:
        raise SiteError(name, None, "", f"missing: not found in {', '.join(str(f) for f in folders)}")
    return found[-1]
