"""The PyGame adapter (not implemented yet). The only package besides ``arcade`` that imports an engine."""

__all__: list[str] = []
