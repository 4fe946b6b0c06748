"""The PyGame adapter: a SpacetimeDB game in a plain ``while running:`` loop, with pygame-ce or classic
pygame (2.5 and later). Besides ``spacetime_game.arcade``, the only package that imports an engine.

- :class:`Bridge`: ``bridge.tick(dt)`` once per frame applies what arrived (within a time budget),
  moves the synced sprites and posts the SDK's events into pygame's queue; ``bridge.close()`` at the end
  leaves no thread.
- :class:`SpriteSync` (``bridge.sprites(module_bindings.Player, factory)``): a ``pygame.sprite.Group``
  kept in sync with a table, each sprite holding its row and its interpolated float position
  (``rect.center`` is set from the floats, rounded, in the tick that moves the sprite); despawn can wait
  for an animation; the local player can be predicted. :class:`SpriteSyncOptions`: the keyword arguments
  that ``bridge.sprites`` passes on, typed.
- Event types, allocated once per process: :data:`CONNECTED`, :data:`DISCONNECTED`, :data:`ROW_INSERT`,
  :data:`ROW_UPDATE`, :data:`ROW_DELETE`, :data:`ROWS_CHANGED` (a frame's bulk changes of one table,
  summarised), :data:`REDUCER_RESULT`, :data:`SUBSCRIPTION_APPLIED`, :data:`SUBSCRIPTION_ERROR`.
- :class:`Overlay`: the network debug overlay (F3).
- :func:`circle_image`: an anti-aliased circle sprite image in either pygame.

See ``docs/pygame.md`` for a complete example.
"""

import os

# the library never prints: pygame's greeting line too (a game that wants it imports pygame first)
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from ._bridge import Bridge
from ._events import (
    CONNECTED,
    DISCONNECTED,
    EVENT_TYPES,
    REDUCER_RESULT,
    ROW_DELETE,
    ROW_INSERT,
    ROW_UPDATE,
    ROWS_CHANGED,
    SUBSCRIPTION_APPLIED,
    SUBSCRIPTION_ERROR,
    EventPoster,
)
from ._overlay import Overlay
from ._sprites import SpriteSync, SpriteSyncOptions, circle_image

__all__ = [
    "CONNECTED",
    "DISCONNECTED",
    "EVENT_TYPES",
    "REDUCER_RESULT",
    "ROWS_CHANGED",
    "ROW_DELETE",
    "ROW_INSERT",
    "ROW_UPDATE",
    "SUBSCRIPTION_APPLIED",
    "SUBSCRIPTION_ERROR",
    "Bridge",
    "EventPoster",
    "Overlay",
    "SpriteSync",
    "SpriteSyncOptions",
    "circle_image",
]
