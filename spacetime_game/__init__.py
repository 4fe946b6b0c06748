"""spacetime-game: multiplayer PyGame and Arcade games on SpacetimeDB."""

import logging

__version__ = "0.1.0"
__all__ = ["__version__"]

# A library never prints: without the application's own logging set up, Python would show our warnings
# on stderr (its "last resort" handler). Applications that configure logging still get every record.
logging.getLogger(__name__).addHandler(logging.NullHandler())
