"""The package's structure: every module imports alone, no import cycles, no friend modules.

These hold the architecture in place as the tree changes (issue 16): a module that only works
after another one was imported, a cycle between two modules, or a module that reaches into
another's private names is a failure here, with the modules named.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from import_graph import Package, cycles

import system0

ROOT = Path(system0.__file__).parent
# The extension is private to the package, not to a module: every module may use its names.
PRIVATE_OK = frozenset({"system0._core"})

# Imports each module in turn with every system0 module but the extension forgotten first, so
# each one runs as if it were the first import of a fresh interpreter. The extension stays:
# a PyO3 module can be initialized only once per process (and holds no import-order state).
ALONE = textwrap.dedent(
    """
    import importlib, json, sys
    names = json.loads(sys.argv[1])
    failed, missing = {}, {}
    for name in names:
        for loaded in [m for m in sys.modules if m.split(".")[0] == "system0"]:
            if loaded != "system0._core":
                del sys.modules[loaded]
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if (e.name or "").split(".")[0] == "system0":
                failed[name] = f"{type(e).__name__}: {e}"
            else:
                missing[name] = e.name  # an optional extra that is not installed here
        except Exception as e:
            failed[name] = f"{type(e).__name__}: {e}"
    print(json.dumps({"failed": failed, "missing": missing}))
    """
)


def test_every_module_imports_alone() -> None:
    names = sorted(Package.scan(ROOT).modules)
    assert "system0.data.storage.router" in names and "system0.core.config.fork" in names
    out = subprocess.run(
        [sys.executable, "-c", ALONE, json.dumps(names)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["failed"] == {}, "modules that fail when imported first:\n" + "\n".join(
        f"  {m}: {why}" for m, why in result["failed"].items()
    )
    # An optional dependency may be absent (the light install), but never more than a few
    # modules' worth: the whole package must not hinge on one.
    assert len(result["missing"]) < len(names) // 4, result["missing"]


def test_no_import_cycles() -> None:
    found = cycles(Package.scan(ROOT).edges())
    assert found == [], "import cycles among system0 modules:\n" + "\n".join(
        "  " + " <-> ".join(c) for c in found
    )


def test_no_module_uses_another_modules_private_names() -> None:
    uses = Package.scan(ROOT).private_uses(PRIVATE_OK)
    assert uses == [], "private names used across modules:\n" + "\n".join(
        f"  {u.module}:{u.line} uses {u.source}.{u.name}" for u in uses
    )


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_the_cycle_check_sees_a_cycle_and_ignores_what_never_runs(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from pkg import b\n",
            "b.py": "from pkg.c import thing\n",
            "c.py": "import pkg.a\nthing = 1\n",
            "d.py": """
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from pkg import e
                def later():
                    from pkg import e
            """,
            "e.py": "from . import d\n",
        },
    )
    assert cycles(Package.scan(root).edges()) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_the_private_check_sees_both_forms(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "_secret = 1\ndef _helper(): ...\n",
            "b.py": "from pkg.a import _secret\n",
            "c.py": "from pkg import a as m\ndef f():\n    return m._helper()\n",
            "d.py": "from pkg.a import __doc__\n_own = 1\nx = _own\n",
        },
    )
    uses = Package.scan(root).private_uses(frozenset())
    assert [(u.module, u.source, u.name) for u in uses] == [
        ("pkg.b", "pkg.a", "_secret"),
        ("pkg.c", "pkg.a", "_helper"),
    ]


@pytest.mark.parametrize(
    ("facade", "name"),
    [
        ("system0.data.storage", "ScalableStorage"),
        ("system0.core.config", "AIConfig"),
    ],
)
def test_the_public_paths_of_the_moved_modules_still_work(facade: str, name: str) -> None:
    module = __import__(facade, fromlist=[name])
    assert name in module.__all__ and getattr(module, name).__name__ == name


LAZY_FACADES = [
    "system0.core",
    "system0.data",
    "system0.data.storage",
    "system0.game",
    "system0.security",
    "system0.utils",
]


def _facade_tables(path: Path) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(names imported under TYPE_CHECKING, names given to lazy_exports), by module."""
    import ast

    tree = ast.parse(path.read_text())
    typed: dict[str, set[str]] = {}
    lazy: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.module
                for alias in imp.names:
                    assert alias.asname == alias.name, "re-export as `X as X`"
                    typed.setdefault(imp.module, set()).add(alias.name)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            table = ast.literal_eval(node.value.args[1])
            lazy = {module: set(names) for module, names in table.items()}
    return typed, lazy


@pytest.mark.parametrize("facade", LAZY_FACADES)
def test_a_facade_types_what_it_exports_and_loads_it_on_use(facade: str) -> None:
    path = Package.scan(ROOT).modules[facade]
    typed, lazy = _facade_tables(path)
    assert typed == lazy and lazy, f"{path}: the TYPE_CHECKING imports and the table differ"
    code = textwrap.dedent(
        f"""
        import importlib, sys, types
        facade = importlib.import_module({facade!r})
        members = {sorted(lazy)!r}
        early = [m for m in members if m in sys.modules and m != {facade!r}]
        for name in facade.__all__:
            value = getattr(facade, name)
            assert not isinstance(value, types.ModuleType), name
        assert sorted(facade.__all__) == facade.__all__
        assert set(facade.__all__) <= set(dir(facade))
        try:
            facade.no_such_name
        except AttributeError as e:
            assert "no_such_name" in str(e)
        else:
            raise AssertionError("an unknown name resolved")
        print(len(facade.__all__), early)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr
    count, early = out.stdout.split(" ", 1)
    assert int(count) == sum(len(v) for v in lazy.values())
    assert early.strip() == "[]", f"importing {facade} loaded {early.strip()} before any use"
