"""FastCarRacing-v3: gymnasium's CarRacing-v3, drawing the same pixels several times faster.

Stock CarRacing spends most of a step in Python: every frame it rotates, scales and bounds-checks
each vertex of ~800 grass and track polygons one `pygame.math.Vector2` at a time, although fewer
than a hundred are on screen.  This subclass does that transform for all polygons at once with
numpy, reproducing pygame's arithmetic bit for bit (the same `fmod`, `cos`, `sin`, products and
sums in the same order, and pygame's exact quarter-turn special case), applies the same
visibility test, and hands the visible polygons to the same `gfxdraw` calls in the same order.
Physics, rewards, colours (read every frame, so tiles recoloured by the contact listener and
domain randomisation show up), the car, indicators and scaling are the stock code.
"""

from __future__ import annotations

import math
import threading

import numpy as np
from gymnasium.envs.box2d import car_racing
from gymnasium.envs.box2d.car_racing import CarRacing

STOCK_ENV_ID = "CarRacing-v3"
FAST_ENV_ID = "FastCarRacing-v3"
# gymnasium releases whose CarRacing this renderer was checked against, pixel for pixel (tests pin it).
CHECKED_GYMNASIUM_VERSIONS = ("1.4.0",)



def checked_against_installed_gymnasium() -> bool:
    """Whether the installed gymnasium's CarRacing is one this renderer was verified against."""
    import gymnasium

    return gymnasium.__version__ in CHECKED_GYMNASIUM_VERSIONS


# pygame-ce's Vector2.rotate_rad treats angles within this of a quarter turn as exact quarter turns.
PYGAME_VECTOR_EPSILON = 1e-6
HALF_PI = math.pi / 2
TWO_PI = 2 * math.pi
COVER_MARGIN_PIXELS = 4.0  # the anti-aliased outline reaches one pixel past an edge; keep well clear


def rotate_like_pygame(x: np.ndarray, y: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """`pygame.math.Vector2((x, y)).rotate_rad(angle)` for whole arrays, bit-identical."""
    angle = math.fmod(angle, TWO_PI)
    if angle < 0:
        angle += TWO_PI
    if math.fmod(angle + PYGAME_VECTOR_EPSILON, HALF_PI) < 2 * PYGAME_VECTOR_EPSILON:
        quarter = int((angle + PYGAME_VECTOR_EPSILON) / HALF_PI) % 4
        return ((x, y), (-y, x), (-x, -y), (y, -x))[quarter]
    cos, sin = math.cos(angle), math.sin(angle)
    return cos * x - sin * y, sin * x + cos * y


def to_screen(points: np.ndarray, zoom: float, translation, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """World points (..., 2) -> window x and y, as stock `_draw_colored_polygon` computes them."""
    x, y = rotate_like_pygame(points[..., 0], points[..., 1], angle)
    return x * zoom + translation[0], y * zoom + translation[1]


def _grass_polygons() -> np.ndarray:
    """The stock grass checkerboard, in the stock drawing order: (400, 4, 2) world coordinates."""
    size = car_racing.GRASS_DIM
    return np.array([[(size * x + size, size * y + 0), (size * x + 0, size * y + 0),
                      (size * x + 0, size * y + size), (size * x + size, size * y + size)]
                     for x in range(-20, 20, 2) for y in range(-20, 20, 2)], dtype=np.float64)


GRASS_POLYGONS = _grass_polygons()


class _CachedFonts:
    """`pygame.font` as the stock renderer sees it during a FastCarRacing frame: `Font(name, size)`
    returns one font object per (name, size) instead of a new one per frame, whose empty glyph cache
    made drawing the score cost as much as drawing the whole track."""

    def __init__(self):
        self._fonts: dict = {}

    def Font(self, name, size):  # noqa: N802 (pygame's name)
        import pygame

        font = self._fonts.get((name, size))
        try:
            if font is not None:
                font.size("0")  # raises if pygame.font was quit and re-initialised since
                return font
        except pygame.error:
            pass
        font = self._fonts[(name, size)] = pygame.font.Font(name, size)
        return font

    def __getattr__(self, name: str):
        import pygame

        return getattr(pygame.font, name)


class _PygameForFastRender:
    """The `pygame` module with `font` replaced by `_CachedFonts`; everything else is pygame itself."""

    def __init__(self):
        self.font = _CachedFonts()

    def __getattr__(self, name: str):
        import pygame

        return getattr(pygame, name)


_FAST_PYGAME = _PygameForFastRender()
_RENDER_LOCK = threading.RLock()


class FastCarRacing(CarRacing):
    """CarRacing-v3 with a vectorised road renderer; observations, rewards and info are identical."""

    def _render(self, mode: str):
        # The stock method is reused as is; only the `pygame` it looks up is swapped for the frame.
        with _RENDER_LOCK:
            stock = car_racing.pygame
            car_racing.pygame = _FAST_PYGAME
            try:
                return super()._render(mode)
            finally:
                car_racing.pygame = stock

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        self._road_polygons = None  # the track is rebuilt: drop the cached geometry
        return super().reset(seed=seed, options=options)

    def _road_geometry(self) -> np.ndarray | None:
        """All track polygons as one (n, 4, 2) array, built once per track; None if not all quads."""
        cached = getattr(self, "_road_polygons", None)
        if cached is None or len(cached) != len(self.road_poly):
            if any(len(poly) != 4 for poly, _ in self.road_poly):
                return None
            cached = np.array([poly for poly, _ in self.road_poly], dtype=np.float64).reshape(-1, 4, 2)
            self._road_polygons = cached
        return cached

    def _render_road(self, zoom, translation, angle):
        bounds = car_racing.PLAYFIELD
        field = [(bounds, bounds), (bounds, -bounds), (-bounds, -bounds), (-bounds, bounds)]
        if self._covers_screen(np.array(field, dtype=np.float64), zoom, translation, angle):
            # Every pixel is inside the playfield and its edges are off screen: the polygon fill
            # and its anti-aliased outline come down to this fill, at a fifth of the cost.
            self.surf.fill(self.surf.map_rgb(self.bg_color))
        else:
            self._draw_colored_polygon(self.surf, field, self.bg_color, zoom, translation, angle, clip=False)
        self._draw_visible(GRASS_POLYGONS, [self.grass_color] * len(GRASS_POLYGONS), zoom, translation, angle)
        road = self._road_geometry()
        if road is None:  # an unusual track shape: fall back to the stock per-polygon path
            for poly, color in self.road_poly:
                self._draw_colored_polygon(self.surf, [(p[0], p[1]) for p in poly], [int(c) for c in color],
                                           zoom, translation, angle)
            return
        self._draw_visible(road, None, zoom, translation, angle)

    @staticmethod
    def _covers_screen(polygon: np.ndarray, zoom, translation, angle) -> bool:
        """True when a convex polygon contains the whole window with a few pixels to spare."""
        x, y = to_screen(polygon, zoom, translation, angle)
        spare = COVER_MARGIN_PIXELS
        corners = np.array([(-spare, -spare), (car_racing.WINDOW_W + spare, -spare),
                            (car_racing.WINDOW_W + spare, car_racing.WINDOW_H + spare),
                            (-spare, car_racing.WINDOW_H + spare)], dtype=np.float64)
        edges_x, edges_y = np.roll(x, -1) - x, np.roll(y, -1) - y
        # sign of the cross product of each edge with each corner: all equal <=> every corner inside
        cross = edges_x[:, None] * (corners[None, :, 1] - y[:, None]) - edges_y[:, None] * (corners[None, :, 0] - x[:, None])
        return bool(np.all(cross > 0) or np.all(cross < 0))

    def _draw_visible(self, polygons: np.ndarray, colors, zoom, translation, angle) -> None:
        """Transform every polygon at once, then draw those the stock bounds test keeps, in order."""
        from pygame import gfxdraw

        x, y = to_screen(polygons, zoom, translation, angle)
        margin = car_racing.MAX_SHAPE_DIM
        inside = ((-margin <= x) & (x <= car_racing.WINDOW_W + margin)
                  & (-margin <= y) & (y <= car_racing.WINDOW_H + margin))
        screen = np.stack([x, y], axis=-1)
        for index in np.flatnonzero(inside.any(axis=1)):
            points = screen[index].tolist()
            color = colors[index] if colors is not None else [int(c) for c in self.road_poly[index][1]]
            gfxdraw.aapolygon(self.surf, points, color)
            gfxdraw.filled_polygon(self.surf, points, color)
