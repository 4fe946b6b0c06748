"""spacetime-game: multiplayer PyGame and Arcade games on SpacetimeDB."""

__version__ = "0.1.0"
__all__ = ["__version__"]
