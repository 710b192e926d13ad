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

import numpy as np
from gymnasium.envs.box2d import car_racing
from gymnasium.envs.box2d.car_racing import CarRacing

# pygame-ce's Vector2.rotate_rad treats angles within this of a quarter turn as exact quarter turns.
PYGAME_VECTOR_EPSILON = 1e-6
HALF_PI = math.pi / 2
TWO_PI = 2 * math.pi


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


def _grass_polygons() -> np.ndarray:
    """The stock grass checkerboard, in the stock drawing order: (400, 4, 2) world coordinates."""
    size = car_racing.GRASS_DIM
    return np.array([[(size * x + size, size * y + 0), (size * x + 0, size * y + 0),
                      (size * x + 0, size * y + size), (size * x + size, size * y + size)]
                     for x in range(-20, 20, 2) for y in range(-20, 20, 2)], dtype=np.float64)


GRASS_POLYGONS = _grass_polygons()


class FastCarRacing(CarRacing):
    """CarRacing-v3 with a vectorised road renderer; observations, rewards and info are identical."""

    def reset(self, *, seed: int | None = None, options: dict | None = None):
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
        self._draw_colored_polygon(self.surf, field, self.bg_color, zoom, translation, angle, clip=False)
        self._draw_visible(GRASS_POLYGONS, [self.grass_color] * len(GRASS_POLYGONS), zoom, translation, angle)
        road = self._road_geometry()
        if road is None:  # an unusual track shape: fall back to the stock per-polygon path
            for poly, color in self.road_poly:
                self._draw_colored_polygon(self.surf, [(p[0], p[1]) for p in poly], [int(c) for c in color],
                                           zoom, translation, angle)
            return
        self._draw_visible(road, None, zoom, translation, angle)

    def _draw_visible(self, polygons: np.ndarray, colors, zoom, translation, angle) -> None:
        """Transform every polygon at once, then draw those the stock bounds test keeps, in order."""
        from pygame import gfxdraw

        x, y = rotate_like_pygame(polygons[..., 0], polygons[..., 1], angle)
        x = x * zoom + translation[0]
        y = y * zoom + translation[1]
        margin = car_racing.MAX_SHAPE_DIM
        inside = ((-margin <= x) & (x <= car_racing.WINDOW_W + margin)
                  & (-margin <= y) & (y <= car_racing.WINDOW_H + margin))
        screen = np.stack([x, y], axis=-1)
        for index in np.flatnonzero(inside.any(axis=1)):
            points = screen[index].tolist()
            color = colors[index] if colors is not None else [int(c) for c in self.road_poly[index][1]]
            gfxdraw.aapolygon(self.surf, points, color)
            gfxdraw.filled_polygon(self.surf, points, color)
