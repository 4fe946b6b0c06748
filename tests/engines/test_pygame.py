"""pygame headless (``SDL_VIDEODRIVER=dummy``), in both flavours: a display surface drawn on and read back,
custom events posted from a thread, and the differences between pygame-ce and classic pygame that the
pygame adapter must absorb, each asserted per flavour so that a release that changes one is noticed.

This module runs in-process under pygame-ce and, through its last line, once more under classic pygame.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from ._support import classic_pygame_rerun, expected_pygame_flavour, import_pygame, pygame_flavour

BACKGROUND = (0, 0, 40)
RED = (255, 0, 0)


@pytest.fixture
def pygame() -> Iterator[ModuleType]:
    """pygame with a 64x48 display on the dummy video driver, shut down afterwards."""
    pg = import_pygame()
    pg.display.init()
    try:
        pg.display.set_mode((64, 48))
        yield pg
    finally:
        pg.quit()
    assert not pg.display.get_init()


def test_the_flavour_is_the_one_this_run_is_for(pygame: ModuleType) -> None:
    flavour = pygame_flavour(pygame)
    assert flavour == expected_pygame_flavour(), f"pygame {pygame.version.ver} at {pygame.__file__}"
    major, minor = (int(part) for part in pygame.version.ver.split(".")[:2])
    assert (major, minor) >= (2, 5)


def _aacircle(pygame: ModuleType, surface: Any, color: tuple[int, int, int], center: Any, r: int) -> None:
    """An anti-aliased filled circle: ``pygame.draw.aacircle`` where it exists (pygame-ce 2.5+), else
    ``pygame.gfxdraw`` (an anti-aliased outline over a filled disc)."""
    if hasattr(pygame.draw, "aacircle"):
        pygame.draw.aacircle(surface, color, center, r)
    else:
        import pygame.gfxdraw

        pygame.gfxdraw.aacircle(surface, *center, r, color)
        pygame.gfxdraw.filled_circle(surface, *center, r, color)


def test_an_anti_aliased_circle_is_drawn_and_read_back(pygame: ModuleType) -> None:
    # draw.aacircle is pygame-ce's (2.5+); classic pygame has only gfxdraw for it
    assert hasattr(pygame.draw, "aacircle") == (pygame_flavour(pygame) == "ce")
    screen = pygame.display.get_surface()
    assert screen is not None and screen.get_size() == (64, 48)
    screen.fill(BACKGROUND)
    _aacircle(pygame, screen, RED, (32, 24), 12)
    pygame.display.flip()

    assert tuple(screen.get_at((32, 24)))[:3] == RED
    assert tuple(screen.get_at((32 + 8, 24 - 8)))[:3] == RED  # inside (distance 11.3)
    assert tuple(screen.get_at((1, 1)))[:3] == BACKGROUND
    assert tuple(screen.get_at((32 + 10, 24 - 10)))[:3] == BACKGROUND  # outside (distance 14.1)
    # on the rim: pixels blended between the circle and the background
    rim = [
        tuple(screen.get_at((x, y)))[:3]
        for x in range(64)
        for y in range(48)
        if 11.0 <= math.hypot(x - 32, y - 24) <= 13.0
    ]
    blended = [c for c in rim if 0 < c[0] < 255]
    assert len(blended) >= 8, rim


def test_custom_events_posted_from_a_thread_arrive_in_order_with_their_objects(pygame: ModuleType) -> None:
    kind = pygame.event.custom_type()
    assert pygame.USEREVENT <= kind < pygame.NUMEVENTS
    payloads = [object() for _ in range(500)]

    def post() -> None:
        for seq, payload in enumerate(payloads):
            pygame.event.post(pygame.event.Event(kind, seq=seq, payload=payload))

    poster = threading.Thread(target=post, name="poster")
    poster.start()
    got: list[Any] = []
    deadline = time.monotonic() + 30
    while len(got) < len(payloads) and time.monotonic() < deadline:
        got += pygame.event.get(kind)
        time.sleep(0.001)
    poster.join(10)
    assert not poster.is_alive()
    assert [e.seq for e in got] == list(range(len(payloads)))
    assert all(e.payload is p for e, p in zip(got, payloads, strict=True))
    assert all(e.type == kind for e in got)


# ---- the differences the adapter relies on --------------------------------------------------------------


def test_userevent_value(pygame: ModuleType) -> None:
    userevent, numevents = pygame.USEREVENT, pygame.NUMEVENTS
    assert userevent == {"ce": 32865, "classic": 32866}[pygame_flavour(pygame)]
    assert numevents == 65535


def test_frect_exists_only_in_pygame_ce(pygame: ModuleType) -> None:
    if pygame_flavour(pygame) == "ce":
        r = pygame.FRect(1.25, 2.5, 3.75, 4.0)
        assert (r.x, r.y, r.w, r.h) == (1.25, 2.5, 3.75, 4.0)
    else:
        assert not hasattr(pygame, "FRect")


def test_group_draw_background_keyword(pygame: ModuleType) -> None:
    """``Group.draw``'s background argument is ``bgd`` in pygame-ce and ``bgsurf`` in pygame: pass it
    positionally, which both accept."""
    screen = pygame.display.get_surface()
    background = pygame.Surface((64, 48))
    background.fill(BACKGROUND)
    sprite = pygame.sprite.Sprite()
    sprite.image = pygame.Surface((4, 4))
    sprite.image.fill(RED)
    sprite.rect = sprite.image.get_rect(topleft=(10, 10))
    group = pygame.sprite.Group(sprite)

    screen.fill((0, 0, 0))
    group.draw(screen, background)  # positional: both flavours
    assert tuple(screen.get_at((11, 11)))[:3] == RED
    assert tuple(screen.get_at((20, 20)))[:3] == (0, 0, 0)

    keyword, other = ("bgd", "bgsurf") if pygame_flavour(pygame) == "ce" else ("bgsurf", "bgd")
    group.draw(screen, **{keyword: background})
    with pytest.raises(TypeError):
        group.draw(screen, **{other: background})


def test_rect_float_conversion(pygame: ModuleType) -> None:
    """Both flavours truncate floats toward zero in the constructor and in ``move``; assigning a float to
    an attribute truncates in pygame-ce but rounds (halves away from zero) in classic pygame. A sprite's
    float position must therefore never live in its ``Rect``."""
    assert tuple(pygame.Rect(1.7, 2.5, 3.9, -1.7)) == (1, 2, 3, -1)
    assert tuple(pygame.Rect(0, 0, 10, 10).move(1.7, -1.7)) == (1, -1, 10, 10)

    rect = pygame.Rect(0, 0, 10, 10)
    rect.x, rect.y = 1.7, -1.7
    rect.center = (5.7, 5.5)
    rounded = pygame_flavour(pygame) == "classic"
    assert (rect.centerx, rect.centery) == ((6, 6) if rounded else (5, 5))
    rect.topleft = (1.5, -2.5)
    assert rect.topleft == ((2, -3) if rounded else (1, -2))


def test_event_queue_holds_65535_events_then_post_raises(pygame: ModuleType) -> None:
    """Why the adapter coalesces: the queue is bounded and a full queue makes ``post`` raise."""
    kind = pygame.event.custom_type()
    pygame.event.clear()
    posted = 0
    with pytest.raises(pygame.error, match="full"):
        while posted <= 70_000:
            pygame.event.post(pygame.event.Event(kind, n=posted))
            posted += 1
    pending = len(pygame.event.get(kind))
    assert pending == posted
    assert 65_000 < posted <= 65_535


test_this_module_under_classic_pygame = classic_pygame_rerun("tests/engines/test_pygame.py")
