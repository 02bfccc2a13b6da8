"""system0: the substrate under game-AI systems.

Every call timed in nanoseconds, every input checked against a contract, every data access
audited, every overload answered with backpressure. A thin Python facade over a Rust core.

How the Python layer wraps a Rust class (one idiom, everywhere):

* **Nothing to add**: re-export it (``QueueStats = _core.QueueStats``,
  ``from system0._core import SigningKey``). Its docs and types live in ``_core.pyi``.
* **Something to add** (awaitables, classmethod constructors, registration): subclass it,
  ``class BoundedQueue(_core.BoundedQueue)``. The Rust ``__new__`` takes and validates the
  constructor's arguments; their names, types and defaults are written in the pyo3
  ``signature`` and in ``_core.pyi`` only. A subclass that must run code at construction
  defines ``__init__(self, *args, **kwargs)`` under ``if not TYPE_CHECKING`` so the type
  checker keeps the stub's signature (see ``core/error_handling.py``).

Each subpackage's ``__init__`` is a facade listing what it offers (``system0.facade``).
"""

from __future__ import annotations

from system0._core import __version__
from system0.errors import Error

__all__ = ["Error", "__version__"]
