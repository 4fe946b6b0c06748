"""Code generation: a module schema to a ``module_bindings`` package (not implemented yet)."""

__all__: list[str] = []
