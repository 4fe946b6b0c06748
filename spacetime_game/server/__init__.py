"""The embedded development server (not implemented yet)."""

__all__: list[str] = []
