"""Typed stubs of the Rust extension ``system0._core`` (checked by mypy.stubtest)."""

__version__: str
