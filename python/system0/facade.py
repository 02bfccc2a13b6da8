"""How a subpackage's ``__init__`` says what it offers without importing all of it.

A facade lists its public names, each with the module that defines it, and imports a module
the first time one of its names is used (PEP 562). So ``system0 --help`` does not load
pyarrow, and importing ``system0.core.telemetry`` does not load the configuration's pydantic
models, yet ``from system0.data import GameState`` and ``system0.core.AIConfig`` work. Each
facade also imports its names under ``TYPE_CHECKING``, for the type checker (which never runs
``__getattr__``); ``tests/test_structure.py`` checks that the two lists agree.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, tuple[str, ...]]
) -> tuple[list[str], Callable[[str], object], Callable[[], list[str]]]:
    """``(__all__, __getattr__, __dir__)`` for the facade ``package``.

    ``exports`` maps each module (absolute name) to the public names it defines.
    """
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> object:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return sorted(where), __getattr__, __dir__
