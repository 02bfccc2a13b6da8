"""Reading configuration YAML: safe parsing with source marks, then interpolation.

Parsing goes through PyYAML's node API (``SafeLoader.get_single_node``) rather than
``yaml.safe_load`` so every value keeps the line and column it came from: an error anywhere
later (a bad type, an unknown key, a missing variable) can point at ``file:line:column``.
Only the safe constructors run; anchors, aliases and ``<<`` merge keys work as in YAML 1.1;
a duplicated key is an error (``safe_load`` would silently keep the last one).

Interpolation, in string values only:

``${env:VAR}``            the environment variable ``VAR``; unset is an error naming the key
``${env:VAR,default}``    ``VAR``, or ``default`` (may be empty) when it is unset
``${ref:a.b.c}``          the (resolved) value at dotted path ``a.b.c`` in this document,
                          else the schema default there
``$${``                   a literal ``${``

A string that is exactly one ``${ref:...}`` takes the referenced value with its type (a number
stays a number); inside a longer string the value is spliced as text. Environment values are
always text; validation converts them to the field's type. References are resolved lazily with
a stack, so a cycle is reported with its whole path (``a -> b -> a``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from system0.errors import ConfigError, InvalidArgument


@dataclass(frozen=True)
class Mark:
    """A place in a source file; ``line`` and ``column`` count from 1."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass
class Source:
    """A parsed document and where each of its values came from (by dotted path)."""

    data: dict[str, Any]
    file: str
    marks: dict[str, Mark] = field(default_factory=dict)
    key_marks: dict[str, Mark] = field(default_factory=dict)
    node_count: int = 0

    def where(self, path: str, *, key: bool = False) -> str:
        """``file:line:column`` of the value at ``path`` (of its key when ``key``), or of the
        nearest marked ancestor, else just the file."""
        probe = path
        while probe:
            mark = (self.key_marks if key else self.marks).get(probe) or self.marks.get(probe)
            if mark is not None:
                return str(mark)
            probe = parent_path(probe)
        return self.file


def join_path(base: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{base}[{key}]"
    return f"{base}.{key}" if base else key


def parent_path(path: str) -> str:
    if path.endswith("]"):
        return path[: path.rindex("[")]
    return path.rpartition(".")[0]


_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def split_path(path: str) -> list[str | int]:
    """``"a.b[2].c"`` -> ``["a", "b", 2, "c"]``; raises :class:`ValueError` when malformed."""
    parts: list[str | int] = []
    pos = 0
    while pos < len(path):
        if parts and path[pos] == ".":
            pos += 1
        m = _SEGMENT.match(path, pos)
        if m is None:
            raise InvalidArgument(f"malformed dotted path {path!r} at character {pos + 1}")
        parts.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    if not parts:
        raise InvalidArgument("empty dotted path")
    return parts


def iter_paths(value: Any, base: str = "") -> Iterator[str]:
    """Every dotted path in a nested dict/list value, containers included."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            p = join_path(base, str(k))
            yield p
            yield from iter_paths(v, p)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            p = join_path(base, i)
            yield p
            yield from iter_paths(v, p)


# -- parsing ---------------------------------------------------------------------------------


def _mark(file: str, m: yaml.Mark | None) -> Mark:
    return Mark(file, m.line + 1, m.column + 1) if m is not None else Mark(file, 0, 0)


def parse(text: str, file: str) -> Source:
    """Parse YAML ``text`` (named ``file`` in messages) into a :class:`Source`."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise ConfigError(f"{file}: the file is empty; expected a mapping of sections")
        src = Source({}, file)
        data = _build(loader, root, "", src, set())
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        what = e.problem or e.context or "cannot parse"
        if e.context and e.problem:
            what += f" ({e.context} at {_mark(file, e.context_mark)})"
        raise ConfigError(f"{_mark(file, mark)}: malformed YAML: {what}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{file}: malformed YAML: {e}") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError(
            f"{_mark(file, root.start_mark)}: the top level is a {type(data).__name__}; "
            "expected a mapping of sections (model:, inference:, ...)"
        )
    src.data = data
    return src


_MAX_NODES = 100_000
_MERGE_TAG = "tag:yaml.org,2002:merge"


def _build(
    loader: yaml.SafeLoader, node: yaml.Node, path: str, src: Source, active: set[int]
) -> Any:
    # Aliases share nodes: one that contains itself would recurse forever, and a few nested
    # ones expand exponentially ("billion laughs"); both are refused instead.
    if id(node) in active:
        raise ConfigError(f"{_mark(src.file, node.start_mark)}: {path}: an alias refers to itself")
    src.node_count += 1
    if src.node_count > _MAX_NODES:
        raise ConfigError(
            f"{_mark(src.file, node.start_mark)}: more than {_MAX_NODES} values after expanding "
            "aliases; a configuration is never that large"
        )
    if path:
        src.marks[path] = _mark(src.file, node.start_mark)
    if isinstance(node, yaml.MappingNode):
        active.add(id(node))
        try:
            return _build_mapping(loader, node, path, src, active)
        finally:
            active.discard(id(node))
    if isinstance(node, yaml.SequenceNode):
        active.add(id(node))
        try:
            return [
                _build(loader, item, join_path(path, i), src, active)
                for i, item in enumerate(node.value)
            ]
        finally:
            active.discard(id(node))
    return loader.construct_object(node, deep=True)


def _build_mapping(
    loader: yaml.SafeLoader, node: yaml.MappingNode, path: str, src: Source, active: set[int]
) -> dict[str, Any]:
    # A key written twice is an error; a key written once that overrides one merged in
    # through '<<' is what merge keys are for, so duplicates are checked before merging.
    seen: dict[str, yaml.Mark] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue
        key = _key(loader, key_node, path, src)
        if key in seen:
            raise ConfigError(
                f"{_mark(src.file, key_node.start_mark)}: duplicate key "
                f"{join_path(path, key)!r} (first defined at {_mark(src.file, seen[key])}); "
                "keep one"
            )
        seen[key] = key_node.start_mark
    loader.flatten_mapping(node)  # merged pairs come first, so later (explicit) ones win
    out: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = _key(loader, key_node, path, src)
        src.key_marks[join_path(path, key)] = _mark(src.file, key_node.start_mark)
        out[key] = _build(loader, value_node, join_path(path, key), src, active)
    return out


def _key(loader: yaml.SafeLoader, key_node: yaml.Node, path: str, src: Source) -> str:
    key = loader.construct_object(key_node, deep=True)
    if not isinstance(key, str):
        raise ConfigError(
            f"{_mark(src.file, key_node.start_mark)}: key {key!r} at "
            f"{path or 'top level'} is a {type(key).__name__}; keys must be strings"
        )
    return key


def parse_scalar(text: str) -> Any:
    """A command-line value as YAML reads it: ``3`` -> 3, ``true`` -> True, ``[a, b]`` -> list."""
    try:
        return yaml.safe_load(text) if text.strip() else text
    except yaml.YAMLError:
        return text


# -- interpolation ---------------------------------------------------------------------------

_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MISSING = object()


def interpolate(
    src: Source, env: Mapping[str, str], defaults: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Return ``src.data`` with every ``${...}`` resolved (``src`` itself is unchanged)."""
    resolver = _Resolver(src, env, defaults or {})
    out = resolver.resolve_node("", src.data)
    assert isinstance(out, dict)
    return out


class _Resolver:
    def __init__(self, src: Source, env: Mapping[str, str], defaults: Mapping[str, Any]) -> None:
        self.src = src
        self.env = env
        self.defaults = defaults
        self.done: dict[str, Any] = {}
        self.stack: list[str] = []

    def fail(self, path: str, message: str) -> ConfigError:
        return ConfigError(f"{self.src.where(path)}: {path}: {message}")

    def resolve_node(self, path: str, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self.resolve_node(join_path(path, k), v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve_node(join_path(path, i), v) for i, v in enumerate(value)]
        if isinstance(value, str) and "${" in value:
            return self.resolve_string(path, value)
        return value

    def resolve_string(self, path: str, text: str) -> Any:
        if path in self.done:
            return self.done[path]
        if path in self.stack:
            cycle = [*self.stack[self.stack.index(path) :], path]
            raise self.fail(
                path,
                "circular reference: " + " -> ".join(cycle) + "; break the cycle with a literal",
            )
        self.stack.append(path)
        try:
            whole = _TOKEN.fullmatch(text)
            if whole is not None and whole.group(1) is not None:
                result = self.expand(path, whole.group(1))
            else:
                result = _TOKEN.sub(lambda m: self.splice(path, m), text)
        finally:
            self.stack.pop()
        self.done[path] = result
        return result

    def splice(self, path: str, m: re.Match[str]) -> str:
        if m.group(0) == "$${":
            return "${"
        if m.group(1) is None:
            raise self.fail(path, "unterminated '${': close it with '}' or write '$${'")
        value = self.expand(path, m.group(1))
        if isinstance(value, dict | list):
            raise self.fail(
                path,
                f"'${{{m.group(1)}}}' is a {type(value).__name__}; only a whole value "
                "can be a reference to a section or a list",
            )
        if isinstance(value, bool):
            return "true" if value else "false"
        return "null" if value is None else str(value)

    def expand(self, path: str, body: str) -> Any:
        scheme, sep, arg = body.partition(":")
        if not sep:
            raise self.fail(
                path, f"'${{{body}}}' has no scheme; write ${{env:VAR}} or ${{ref:a.b}}"
            )
        if scheme == "env":
            name, comma, default = arg.partition(",")
            name = name.strip()
            if not _ENV_NAME.fullmatch(name):
                raise self.fail(path, f"'{name}' is not a valid environment variable name")
            if name in self.env:
                return self.env[name]
            if comma:
                return default
            raise self.fail(
                path,
                f"environment variable {name} is not set and has no default; set it or write "
                f"${{env:{name},<default>}}",
            )
        if scheme == "ref":
            return self.reference(path, arg.strip())
        raise self.fail(path, f"unknown interpolation '{scheme}:' in '${{{body}}}'; use env or ref")

    def reference(self, path: str, target: str) -> Any:
        try:
            parts = split_path(target)
        except ValueError as e:
            raise self.fail(path, f"bad reference: {e}") from None
        found = _lookup(self.src.data, parts)
        if found is not _MISSING:
            return self.resolve_node(target, found)
        found = _lookup(self.defaults, parts)
        if found is not _MISSING:
            return found
        known = sorted(set(iter_paths(self.src.data)) | set(iter_paths(self.defaults)))
        near = difflib.get_close_matches(target, known, n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise self.fail(path, f"reference to '{target}', which is not a key of the config{hint}")


def _lookup(root: Any, parts: list[str | int]) -> Any:
    node = root
    for part in parts:
        if isinstance(part, int) and isinstance(node, list | tuple) and 0 <= part < len(node):
            node = node[part]
        elif isinstance(part, str) and isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            return _MISSING
    return node


__all__ = [
    "Mark",
    "Source",
    "interpolate",
    "iter_paths",
    "join_path",
    "parent_path",
    "parse",
    "parse_scalar",
    "split_path",
]
