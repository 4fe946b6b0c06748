"""Code generation: a module schema to a ``module_bindings`` package (``spacetime-game generate``)."""

from ._generate import generate_package, write_package

__all__ = ["generate_package", "write_package"]
