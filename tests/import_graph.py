"""The import graph of a Python package, read from its source (AST), for the structure tests.

An edge ``a -> b`` is an import that runs when ``a`` is imported: a module-level ``import`` or
``from ... import`` (inside ``try``/``if`` blocks too), but not one under ``if TYPE_CHECKING``
(never runs) nor one inside a function or class body (runs on call, after every module-level
import has finished). ``from pkg import name`` is an edge to ``pkg.name`` when that is a module
of the package, else to ``pkg``. Parent packages are not edges: Python runs a package's
``__init__`` before its children, and counting that would make every package a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class PrivateUse:
    """``module`` uses the private name ``name`` of ``source`` (line ``line``)."""

    module: str
    line: int
    source: str
    name: str


@dataclass
class Package:
    """Every module of the package under ``root`` (a folder holding ``__init__.py``)."""

    root: Path
    modules: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def scan(cls, root: Path) -> Package:
        pkg = cls(root)
        base = root.parent
        for path in sorted(root.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            pkg.modules[".".join(parts)] = path
        return pkg

    def is_package(self, module: str) -> bool:
        return self.modules[module].name == "__init__.py"

    def _absolute(self, module: str, node: ast.ImportFrom) -> str:
        if node.level == 0:
            return node.module or ""
        base = module.split(".")
        if not self.is_package(module):
            base.pop()
        base = base[: len(base) - (node.level - 1)]
        return ".".join([*base, node.module] if node.module else base)

    def _resolve(self, name: str) -> str | None:
        """``name``, or its nearest enclosing module of this package (None if outside it)."""
        while name and name not in self.modules:
            name = name.rpartition(".")[0]
        return name or None

    def _targets(self, module: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                found = self._resolve(alias.name)
                if found:
                    yield found
            return
        source = self._absolute(module, node)
        for alias in node.names:
            sub = f"{source}.{alias.name}"
            found = sub if sub in self.modules else self._resolve(source)
            if found:
                yield found

    def edges(self) -> dict[str, set[str]]:
        """Module -> the package's modules its import runs."""
        graph: dict[str, set[str]] = {}
        for module, path in self.modules.items():
            tree = ast.parse(path.read_text(), filename=str(path))
            graph[module] = {
                t
                for node in _module_level_imports(tree.body)
                for t in self._targets(module, node)
                if t != module
            }
        return graph

    def private_uses(self, allowed: frozenset[str]) -> list[PrivateUse]:
        """Every use of a ``_name`` of one module by another, anywhere in the source.

        Two forms: ``from x import _name`` and ``alias._name`` where ``alias`` was bound by an
        import of a module of the package. ``allowed`` names modules whose privates are fair
        (the extension ``_core`` is private to the package, not to a module).
        """
        found: list[PrivateUse] = []
        for module, path in self.modules.items():
            tree = ast.parse(path.read_text(), filename=str(path))
            aliases: dict[str, str] = {}
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom):
                    source = self._absolute(module, node)
                    if self._resolve(source) is None:
                        continue
                    for alias in node.names:
                        sub = f"{source}.{alias.name}"
                        if sub in allowed:
                            continue
                        if sub in self.modules:
                            aliases[alias.asname or alias.name] = sub
                            if _private(alias.name) and sub not in allowed:
                                found.append(PrivateUse(module, node.lineno, sub, alias.name))
                        elif _private(alias.name) and source not in allowed:
                            found.append(PrivateUse(module, node.lineno, source, alias.name))
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        if alias.asname and self._resolve(alias.name) == alias.name:
                            aliases[alias.asname] = alias.name
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id in aliases
                    and _private(node.attr)
                    and aliases[node.value.id] not in allowed
                    and aliases[node.value.id] != module
                ):
                    found.append(PrivateUse(module, node.lineno, aliases[node.value.id], node.attr))
        return found


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _module_level_imports(node.body)
            yield from _module_level_imports(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _module_level_imports(block)
            for handler in node.handlers:
                yield from _module_level_imports(handler.body)
        elif isinstance(node, ast.With):
            yield from _module_level_imports(node.body)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        # recursion depth is bounded by the longest import chain, a few dozen modules
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)
