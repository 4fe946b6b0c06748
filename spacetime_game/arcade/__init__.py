"""The Arcade adapter (not implemented yet)."""

__all__: list[str] = []
