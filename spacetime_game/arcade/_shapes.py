"""Smooth shapes as sprites: textures drawn with Pillow at four times their size and scaled down, so
their edges are anti-aliased whatever the window's multisampling."""

from __future__ import annotations

import functools
from typing import Any

import arcade
from PIL import Image, ImageDraw

__all__ = ["circle_sprite", "circle_texture"]

_SUPERSAMPLE = 4


@functools.lru_cache(maxsize=256)
def circle_texture(
    radius: int,
    color: tuple[int, ...],
    outline: tuple[int, ...] | None = None,
    outline_width: int = 3,
) -> arcade.Texture:
    """A texture of a disc of ``radius`` pixels in ``color`` (RGB or RGBA), with an ``outline`` ring of
    ``outline_width`` pixels if given; anti-aliased, transparent around it, cached by its arguments."""
    if radius < 1:
        raise ValueError(f"radius must be at least 1 pixel, got {radius}")
    size = 2 * radius + 2
    big = size * _SUPERSAMPLE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    box = (_SUPERSAMPLE, _SUPERSAMPLE, big - _SUPERSAMPLE - 1, big - _SUPERSAMPLE - 1)
    fill = tuple(color) if len(color) == 4 else (*color, 255)
    if outline is None:
        draw.ellipse(box, fill=fill)
    else:
        ring = tuple(outline) if len(outline) == 4 else (*outline, 255)
        draw.ellipse(box, fill=ring)
        inset = outline_width * _SUPERSAMPLE
        inner = (box[0] + inset, box[1] + inset, box[2] - inset, box[3] - inset)
        draw.ellipse(inner, fill=fill)
    small = image.resize((size, size), Image.Resampling.LANCZOS)
    name = f"spacetime_game.circle:{radius}:{fill}:{outline}:{outline_width}"
    return arcade.Texture(small, hash=name)


def circle_sprite(
    radius: int,
    color: tuple[int, ...],
    *,
    outline: tuple[int, ...] | None = None,
    outline_width: int = 3,
    **kwargs: Any,
) -> arcade.Sprite:
    """An ``arcade.Sprite`` showing an anti-aliased disc (see :func:`circle_texture`); ``kwargs`` go to
    ``arcade.Sprite`` (``center_x``, ``center_y``, ``scale``, ...)."""
    return arcade.Sprite(circle_texture(radius, tuple(color), outline, outline_width), **kwargs)
