"""Engine-neutral synchronisation: rows to entities, interpolation, prediction (not implemented yet)."""

__all__: list[str] = []
