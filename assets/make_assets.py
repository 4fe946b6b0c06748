"""Make the arena's assets from scratch: its font, its sounds and its window icon. Everything in this
folder besides this script and ``LICENSE`` is this script's output (checked in, so that nobody needs
to run it to play).

    pip install fonttools pillow && python assets/make_assets.py

- ``arena-sans.ttf``: "Arena Sans", a rounded monoline font drawn here as strokes on a small grid (each
  stroke becomes a band with round ends, the overlaps filled by the non-zero rule): ASCII letters,
  digits and the usual punctuation.
- ``eat.wav``, ``split.wav``, ``eaten.wav``, ``spawn.wav``: short synthesised effects (16-bit mono).
- ``icon.png``: the window icon, three discs in the game's palette, anti-aliased by supersampling.

The output is deterministic: the same script makes the same files.
"""

from __future__ import annotations

import itertools
import math
import struct
import wave
from collections.abc import Iterable
from pathlib import Path

HERE = Path(__file__).resolve().parent
Point = tuple[float, float]
Stroke = list[Point]

# ----- the font -----------------------------------------------------------------------------------------
#: Font units per grid unit: capitals are 7 units tall (700 of the 1000 units per em).
UNIT = 100
#: Half the stroke width, in grid units.
HALF = 0.5
#: Space on each side of a glyph, in grid units.
SIDE = 0.75
#: The font's creation date, in seconds since 1904 (TrueType's epoch): 2026-12-02.
CREATED = 3_881_779_200


def arc(cx: float, cy: float, rx: float, a0: float, a1: float, ry: float | None = None) -> Stroke:
    """Points along an ellipse from angle ``a0`` to ``a1`` (degrees, counter-clockwise when a1 > a0)."""
    ry = rx if ry is None else ry
    steps = max(4, int(abs(a1 - a0) / 10))
    return [
        (
            cx + rx * math.cos(math.radians(a0 + (a1 - a0) * i / steps)),
            cy + ry * math.sin(math.radians(a0 + (a1 - a0) * i / steps)),
        )
        for i in range(steps + 1)
    ]


def ring(cx: float, cy: float, rx: float, ry: float | None = None) -> Stroke:
    return arc(cx, cy, rx, 0, 360, ry)


def dot(x: float, y: float) -> Stroke:
    return [(x, y)]


def mirror(strokes: list[Stroke]) -> list[Stroke]:
    return [[(-x, y) for x, y in s] for s in strokes]


def glyphs() -> dict[str, list[Stroke]]:
    """Every glyph as strokes, on a grid with the baseline at 0, x-height 5, capitals 7, descenders -2."""
    b_top = [(0, 3.6), (0, 7), (2.3, 7), *arc(2.3, 5.3, 1.7, 90, -90), (0, 3.6)]
    b_bottom = [(0, 3.6), (2.5, 3.6), *arc(2.5, 1.8, 1.8, 90, -90), (0, 0), (0, 3.6)]
    p_bowl = [(0, 0), (0, 7), (2.3, 7), *arc(2.3, 5.2, 1.8, 90, -90), (0, 3.4)]
    paren = [arc(2.2, 2.8, 2.2, 112, 248, 4.9)]
    g: dict[str, list[Stroke]] = {
        "A": [[(0, 0), (2.1, 7), (4.2, 0)], [(0.75, 2.5), (3.45, 2.5)]],
        "B": [b_top, b_bottom],
        "C": [arc(2.3, 3.5, 2.3, 48, 312, 3.5)],
        "D": [[(0, 0), (0, 7), (1.6, 7), *arc(1.6, 3.5, 2.5, 90, -90, 3.5), (0, 0)]],
        "E": [[(3.8, 7), (0, 7), (0, 0), (3.8, 0)], [(0, 3.6), (3, 3.6)]],
        "F": [[(3.8, 7), (0, 7), (0, 0)], [(0, 3.6), (3, 3.6)]],
        "G": [[*arc(2.3, 3.5, 2.3, 45, 360, 3.5), (4.6, 3.2), (2.7, 3.2)]],
        "H": [[(0, 0), (0, 7)], [(4, 0), (4, 7)], [(0, 3.6), (4, 3.6)]],
        "I": [[(0, 0), (0, 7)]],
        "J": [[(3, 7), (3, 1.8), *arc(1.5, 1.8, 1.5, 0, -180)]],
        "K": [[(0, 0), (0, 7)], [(3.9, 7), (0, 2.6)], [(1.4, 4.1), (4, 0)]],
        "L": [[(0, 7), (0, 0), (3.6, 0)]],
        "M": [[(0, 0), (0, 7), (2.5, 2.6), (5, 7), (5, 0)]],
        "N": [[(0, 0), (0, 7), (4, 0), (4, 7)]],
        "O": [ring(2.4, 3.5, 2.4, 3.5)],
        "P": [p_bowl],
        "Q": [ring(2.4, 3.5, 2.4, 3.5), [(2.9, 1.4), (4.8, -0.5)]],
        "R": [p_bowl, [(2.1, 3.4), (4, 0)]],
        "S": [[*arc(2.0, 5.3, 1.9, 25, 270, 1.7), *arc(2.0, 1.8, 2.0, 90, -155, 1.8)]],
        "T": [[(0, 7), (4.2, 7)], [(2.1, 7), (2.1, 0)]],
        "U": [[(0, 7), (0, 2.1), *arc(2, 2.1, 2, 180, 360, 2.1), (4, 7)]],
        "V": [[(0, 7), (2.1, 0), (4.2, 7)]],
        "W": [[(0, 7), (1.3, 0), (2.6, 5), (3.9, 0), (5.2, 7)]],
        "X": [[(0, 7), (4, 0)], [(4, 7), (0, 0)]],
        "Y": [[(0, 7), (2.1, 3.5), (4.2, 7)], [(2.1, 3.5), (2.1, 0)]],
        "Z": [[(0, 7), (4, 7), (0, 0), (4, 0)]],
        "a": [ring(1.9, 2.5, 1.9, 2.5), [(3.8, 5), (3.8, 0)]],
        "b": [[(0, 7.2), (0, 0)], ring(1.9, 2.5, 1.9, 2.5)],
        "c": [arc(2, 2.5, 2, 45, 315, 2.5)],
        "d": [ring(1.9, 2.5, 1.9, 2.5), [(3.8, 7.2), (3.8, 0)]],
        "e": [[(0.05, 2.5), (3.9, 2.5), *arc(1.95, 2.5, 1.95, 0, 315, 2.5)]],
        "f": [[*arc(2.6, 5.9, 1.2, 30, 180), (1.4, 0)], [(0.2, 5), (2.9, 5)]],
        "g": [ring(1.9, 2.5, 1.9, 2.5), [(3.8, 5), (3.8, -0.3), *arc(1.9, -0.3, 1.9, 0, -160, 1.7)]],
        "h": [[(0, 0), (0, 7.2)], [(0, 3.1), *arc(1.9, 3.1, 1.9, 180, 0, 1.9), (3.8, 0)]],
        "i": [[(0, 0), (0, 5)], dot(0, 6.7)],
        "j": [[(1.2, 5), (1.2, -0.8), *arc(0.2, -0.8, 1.0, 0, -130)], dot(1.2, 6.7)],
        "k": [[(0, 0), (0, 7.2)], [(3.4, 5), (0, 1.8)], [(1.2, 2.9), (3.6, 0)]],
        "l": [[(0, 7.2), (0, 0)]],
        "m": [
            [(0, 0), (0, 5)],
            [(0, 3.6), *arc(1.4, 3.6, 1.4, 180, 0, 1.4), (2.8, 0)],
            [(2.8, 3.6), *arc(4.2, 3.6, 1.4, 180, 0, 1.4), (5.6, 0)],
        ],
        "n": [[(0, 0), (0, 5)], [(0, 3.1), *arc(1.9, 3.1, 1.9, 180, 0, 1.9), (3.8, 0)]],
        "o": [ring(1.95, 2.5, 1.95, 2.5)],
        "p": [[(0, 5), (0, -2)], ring(1.9, 2.5, 1.9, 2.5)],
        "q": [ring(1.9, 2.5, 1.9, 2.5), [(3.8, 5), (3.8, -2)]],
        "r": [[(0, 0), (0, 5)], [(0, 3.1), *arc(2.0, 3.1, 2.0, 180, 50, 1.9)]],
        "s": [[*arc(1.8, 3.75, 1.7, 25, 270, 1.25), *arc(1.8, 1.25, 1.8, 90, -155, 1.25)]],
        "t": [[(1.2, 6.4), (1.2, 1.1), *arc(2.4, 1.1, 1.2, 180, 300)], [(0, 5), (2.9, 5)]],
        "u": [[(0, 5), (0, 1.9), *arc(1.9, 1.9, 1.9, 180, 360, 1.9)], [(3.8, 5), (3.8, 0)]],
        "v": [[(0, 5), (1.8, 0), (3.6, 5)]],
        "w": [[(0, 5), (1.15, 0), (2.35, 3.6), (3.55, 0), (4.7, 5)]],
        "x": [[(0, 5), (3.6, 0)], [(3.6, 5), (0, 0)]],
        "y": [[(0, 5), (1.9, 0.4)], [(3.8, 5), (1.5, -1.5), (0.5, -2)]],
        "z": [[(0, 5), (3.6, 5), (0, 0), (3.6, 0)]],
        "0": [ring(2, 3.5, 2, 3.5), [(0.9, 1.6), (3.1, 5.4)]],
        "1": [[(0.6, 5.6), (2, 7), (2, 0)]],
        "2": [[*arc(2, 5, 2, 160, -30, 2), (0, 0), (4, 0)]],
        "3": [[*arc(2, 5.3, 1.9, 150, -90, 1.7), *arc(2, 1.8, 2, 90, -150, 1.8)]],
        "4": [[(3, 0), (3, 7), (0, 2), (4.2, 2)]],
        "5": [[(3.8, 7), (0.4, 7), (0.2, 3.8), *arc(2, 2.2, 2, 125, -150, 2.2)]],
        "6": [ring(2, 2.2, 2, 2.2), [(3.3, 7), (1.4, 5.1), (0.1, 2.6)]],
        "7": [[(0, 7), (4, 7), (1.3, 0)]],
        "8": [ring(2, 5.35, 1.7, 1.65), ring(2, 1.85, 2, 1.85)],
        "9": [ring(2, 4.8, 2, 2.2), [(0.7, 0), (2.6, 1.9), (3.9, 4.4)]],
        ".": [dot(0, 0)],
        ",": [[(0.35, 0.1), (0, -1.3)]],
        ":": [dot(0, 0), dot(0, 4)],
        ";": [[(0.35, 0.1), (0, -1.3)], dot(0.35, 4)],
        "!": [[(0, 7), (0, 2.3)], dot(0, 0)],
        "?": [[*arc(1.9, 5.3, 1.9, 160, -60, 1.7), (1.9, 2.3)], dot(1.9, 0)],
        "'": [[(0, 7), (0, 5.3)]],
        '"': [[(0, 7), (0, 5.3)], [(1.3, 7), (1.3, 5.3)]],
        "-": [[(0, 2.8), (2.6, 2.8)]],
        "_": [[(0, -0.9), (4, -0.9)]],
        "(": paren,
        ")": mirror(paren),
        "[": [[(1.5, 7.4), (0, 7.4), (0, -1.2), (1.5, -1.2)]],
        "]": mirror([[(1.5, 7.4), (0, 7.4), (0, -1.2), (1.5, -1.2)]]),
        "/": [[(0, -1), (3.2, 7.4)]],
        "\\": [[(3.2, -1), (0, 7.4)]],
        "|": [[(0, 7.4), (0, -1.6)]],
        "+": [[(0, 2.8), (3.6, 2.8)], [(1.8, 1), (1.8, 4.6)]],
        "=": [[(0, 1.9), (3.4, 1.9)], [(0, 3.7), (3.4, 3.7)]],
        "<": [[(3.2, 5), (0, 2.8), (3.2, 0.6)]],
        ">": [[(0, 5), (3.2, 2.8), (0, 0.6)]],
        "*": [[(1.7, 3.2), (1.7, 7)], [(0, 6.1), (3.4, 4.1)], [(0, 4.1), (3.4, 6.1)]],
        "#": [[(1.3, 0), (2.1, 7)], [(3.1, 0), (3.9, 7)], [(0.3, 2.3), (4.6, 2.3)], [(0.6, 4.7), (4.9, 4.7)]],
        "%": [ring(1, 5.8, 1, 1.2), ring(4, 1.2, 1, 1.2), [(0.2, 0), (4.8, 7)]],
        "$": [[*arc(2.0, 5.0, 1.9, 25, 270, 1.5), *arc(2.0, 2.0, 2.0, 90, -155, 1.5)], [(2, 7.4), (2, -0.4)]],
        "&": [
            [
                (4.2, 0),
                (0.9, 4.6),
                *arc(1.8, 5.6, 1.2, 220, -30, 1.4),
                (0.6, 2.6),
                *arc(1.9, 1.5, 1.7, 150, 300, 1.5),
                (4.2, 3.2),
            ]
        ],
        "@": [
            ring(3, 3, 1.2, 1.5),
            [(4.2, 4.5), (4.2, 2.0), *arc(5.0, 2.0, 0.8, 180, 360), *arc(3.1, 3, 2.7, 0, 320, 3.3)],
        ],
        "^": [[(0, 4.8), (1.7, 7), (3.4, 4.8)]],
        "~": [[*arc(1, 3, 1, 180, 0, 0.7), *arc(3, 3, 1, 180, 360, 0.7)]],
        "`": [[(0, 7.2), (1, 6.0)]],
        "{": [[(2, 7.4), *arc(2, 6.2, 1, 90, 180), (1, 3.8), (0, 3.2), (1, 2.6), *arc(2, 0, 1, 180, 270)]],
        "}": mirror(
            [[(2, 7.4), *arc(2, 6.2, 1, 90, 180), (1, 3.8), (0, 3.2), (1, 2.6), *arc(2, 0, 1, 180, 270)]]
        ),
    }
    return g


def _polygons(strokes: Iterable[Stroke]) -> list[list[Point]]:
    """Each stroke as a band: a quad per segment and a disc at each point (round ends and joins)."""
    polys: list[list[Point]] = []
    for stroke in strokes:
        radius = HALF * 1.25 if len(stroke) == 1 else HALF
        for x, y in stroke:
            polys.append(
                [
                    (x + radius * math.cos(a * math.tau / 20), y + radius * math.sin(a * math.tau / 20))
                    for a in range(20)
                ]
            )
        for (ax, ay), (bx, by) in itertools.pairwise(stroke):
            length = math.hypot(bx - ax, by - ay)
            if length == 0:
                continue
            nx, ny = -(by - ay) / length * HALF, (bx - ax) / length * HALF
            polys.append([(ax + nx, ay + ny), (bx + nx, by + ny), (bx - nx, by - ny), (ax - nx, ay - ny)])
    return [p if _area(p) < 0 else p[::-1] for p in polys]  # all clockwise (TrueType's outer contours)


def _area(poly: list[Point]) -> float:
    return sum(ax * by - bx * ay for (ax, ay), (bx, by) in zip(poly, poly[1:] + poly[:1], strict=True)) / 2


def make_font(path: Path) -> None:
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.ttGlyphPen import TTGlyphPen

    table = glyphs()
    names = {c: ("space" if c == " " else f"uni{ord(c):04X}") for c in [" ", *table]}
    order = [".notdef", *names.values()]
    fb = FontBuilder(1000, isTTF=True)
    fb.setupGlyphOrder(order)
    fb.setupCharacterMap({ord(c): n for c, n in names.items()})
    built = {}
    metrics = {}
    pen = TTGlyphPen(None)  # .notdef: an outlined box (a clockwise outside, a counter-clockwise hole)
    for poly in ([(50, 0), (50, 700), (450, 700), (450, 0)], [(130, 80), (370, 80), (370, 620), (130, 620)]):
        pen.moveTo(poly[0])
        for p in poly[1:]:
            pen.lineTo(p)
        pen.closePath()
    built[".notdef"] = pen.glyph()
    metrics[".notdef"] = (500, 50)
    for char, name in names.items():
        pen = TTGlyphPen(None)
        strokes = table.get(char, [])
        if strokes:
            left = min(x for s in strokes for x, _ in s)
            right = max(x for s in strokes for x, _ in s)
            shift = SIDE + HALF - left
            for poly in _polygons([[(x + shift, y) for x, y in s] for s in strokes]):
                pen.moveTo((round(poly[0][0] * UNIT), round(poly[0][1] * UNIT)))
                for x, y in poly[1:]:
                    pen.lineTo((round(x * UNIT), round(y * UNIT)))
                pen.closePath()
            advance = round((right - left + 2 * (SIDE + HALF)) * UNIT)
        else:
            advance = 280  # the space
        glyph = pen.glyph()
        built[name] = glyph
        metrics[name] = (advance, 0)
    fb.setupGlyf(built)
    for name, (advance, _) in list(metrics.items()):
        glyph = built[name]
        glyph.recalcBounds(fb.font["glyf"])
        metrics[name] = (advance, getattr(glyph, "xMin", 0))
    fb.setupHorizontalMetrics(metrics)
    fb.setupHorizontalHeader(ascent=820, descent=-260)
    fb.setupNameTable(
        {
            "familyName": "Arena Sans",
            "styleName": "Regular",
            "uniqueFontIdentifier": "spacetime-game: Arena Sans",
            "fullName": "Arena Sans",
            "psName": "ArenaSans-Regular",
            "version": "Version 1.000",
            "copyright": "Made for spacetime-game by assets/make_assets.py; CC0 1.0",
        }
    )
    fb.setupOS2(
        sTypoAscender=820, sTypoDescender=-260, sTypoLineGap=80, usWinAscent=900, usWinDescent=300,
        sxHeight=500, sCapHeight=700, usWeightClass=400, achVendID="STGM",
    )  # fmt: skip
    fb.setupPost()
    fb.updateHead(created=CREATED, modified=CREATED)  # (a fixed date: the same script, the same file)
    fb.save(str(path))


# ----- the sounds ----------------------------------------------------------------------------------------
RATE = 22050


def _write_wav(path: Path, samples: list[float]) -> None:
    peak = max(1e-9, max(abs(s) for s in samples))
    scale = 0.8 * 32767 / peak
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(b"".join(struct.pack("<h", int(s * scale)) for s in samples))


def _tone(
    seconds: float, f0: float, f1: float, *, attack: float = 0.005, decay: float = 8.0, harmonics: float = 0.3
) -> list[float]:
    """A sweep from ``f0`` to ``f1`` Hz with a fast attack and an exponential fade (and a soft octave)."""
    n = int(seconds * RATE)
    out = []
    phase = 0.0
    for i in range(n):
        t = i / RATE
        f = f0 + (f1 - f0) * (i / n)
        phase += math.tau * f / RATE
        env = min(1.0, t / attack) * math.exp(-decay * t)
        out.append(env * (math.sin(phase) + harmonics * math.sin(2 * phase)))
    return out


def make_sounds(out: Path) -> None:
    _write_wav(out / "eat.wav", _tone(0.09, 620, 980, decay=30))
    split = _tone(0.16, 300, 180, decay=14, harmonics=0.5)
    _write_wav(
        out / "split.wav",
        [a + 0.6 * b for a, b in zip(split, [0.0] * 900 + _tone(0.16, 420, 260, decay=14), strict=False)],
    )
    _write_wav(out / "eaten.wav", _tone(0.45, 520, 90, decay=5, harmonics=0.6))
    notes = [_tone(0.12, f, f, decay=10) for f in (523.25, 659.25, 783.99)]
    spawn = [0.0] * int(0.3 * RATE)
    for k, note in enumerate(notes):
        start = int(k * 0.07 * RATE)
        for i, v in enumerate(note):
            spawn[start + i] += v
    _write_wav(out / "spawn.wav", spawn)


# ----- the icon ------------------------------------------------------------------------------------------
def make_icon(path: Path) -> None:
    from PIL import Image, ImageDraw

    big = 256
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    for (cx, cy, r), color in (
        ((150, 140, 88), (255, 169, 77)),
        ((70, 80, 44), (77, 171, 247)),
        ((70, 200, 30), (105, 219, 124)),
    ):
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(*color, 255))
    image.resize((64, 64), Image.Resampling.LANCZOS).save(path)


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Make the arena's assets.")
    parser.add_argument("--out", type=Path, default=HERE, help="where to write them (default: this folder)")
    out = parser.parse_args(argv).out
    out.mkdir(parents=True, exist_ok=True)
    make_font(out / "arena-sans.ttf")
    make_sounds(out)
    make_icon(out / "icon.png")
    print(f"wrote the assets into {out}")


if __name__ == "__main__":
    main()
