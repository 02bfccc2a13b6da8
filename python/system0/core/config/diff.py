"""Structured and readable differences between two resolved configurations.

Both sides are compared as their canonical JSON values, leaf by leaf, so a difference is
always a dotted path with an old and a new value. Maps (per-model thresholds) are walked key
by key, giving ``added`` and ``removed`` entries; lists are compared whole, since an element
of a list has no stable name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from system0.core.config.yaml_source import join_path

if TYPE_CHECKING:
    from system0.core.config.aiconfig import AIConfig

ChangeKind = Literal["added", "removed", "changed"]


@dataclass(frozen=True)
class Change:
    """One difference: ``path`` went from ``old`` to ``new`` (``None`` when absent)."""

    path: str
    kind: ChangeKind
    old: Any = None
    new: Any = None

    def render(self) -> str:
        if self.kind == "added":
            return f"+ {self.path}: {_show(self.new)}"
        if self.kind == "removed":
            return f"- {self.path}: {_show(self.old)}"
        return f"~ {self.path}: {_show(self.old)} -> {_show(self.new)}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class ConfigDiff:
    """The changes from ``a`` to ``b``, sorted by path; empty when they are equal."""

    a_hash: str
    b_hash: str
    changes: tuple[Change, ...]

    def __bool__(self) -> bool:
        return bool(self.changes)

    def __len__(self) -> int:
        return len(self.changes)

    def __iter__(self) -> Iterator[Change]:
        return iter(self.changes)

    def paths(self) -> list[str]:
        return [c.path for c in self.changes]

    def render(self) -> str:
        """A readable report: a header with both hashes, then one line per change."""
        head = f"--- {self.a_hash}\n+++ {self.b_hash}\n"
        if not self.changes:
            return head + "(no differences)\n"
        n = len(self.changes)
        body = "".join(c.render() + "\n" for c in self.changes)
        return head + body + f"{n} change{'s' if n != 1 else ''}\n"

    def to_json(self) -> str:
        doc = {
            "a": self.a_hash,
            "b": self.b_hash,
            "changes": [c.to_dict() for c in self.changes],
        }
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def diff_values(a: Mapping[str, Any], b: Mapping[str, Any], base: str = "") -> list[Change]:
    """The leaf-level changes from JSON value ``a`` to JSON value ``b``."""
    out: list[Change] = []
    for key in sorted(set(a) | set(b)):
        path = join_path(base, key)
        if key not in b:
            out.append(Change(path, "removed", old=a[key]))
        elif key not in a:
            out.append(Change(path, "added", new=b[key]))
        else:
            old, new = a[key], b[key]
            if isinstance(old, Mapping) and isinstance(new, Mapping):
                out.extend(diff_values(old, new, path))
            elif old != new or type(old) is not type(new):
                out.append(Change(path, "changed", old=old, new=new))
    return out


def diff(a: AIConfig, b: AIConfig, *, include_lineage: bool = False) -> ConfigDiff:
    """What changed from ``a`` to ``b``: a :class:`ConfigDiff` of :class:`Change` entries
    (dotted path, kind, old, new) with ``render()`` for people and ``to_json()`` for tools.
    Lineage is left out unless ``include_lineage``; the hashes in the header cover it.
    """
    da, db = a.to_dict(), b.to_dict()
    if not include_lineage:
        da.pop("lineage", None)
        db.pop("lineage", None)
    return ConfigDiff(a.content_hash, b.content_hash, tuple(diff_values(da, db)))


__all__ = ["Change", "ConfigDiff", "diff", "diff_values"]
