"""system0: the substrate under game-AI systems.

Every call timed in nanoseconds, every input checked against a contract, every data access
audited, every overload answered with backpressure. A thin Python facade over a Rust core.
"""

from __future__ import annotations

from system0._core import __version__
from system0.errors import Error

__all__ = ["Error", "__version__"]
