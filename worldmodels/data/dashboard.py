"""The gauges of CarRacing's indicator bar (true speed, the four wheels' ABS sensors, steering angle,
gyroscope), read back from a frame's pixels.

The paper crops the bar away before V sees the frame (`preprocess`), so C can only infer how fast the car
goes from what M remembers, and the trained agents crash at speed without ever braking
(docs/agent-recipe.md).  `train_controller.py --dashboard 1` gives C these readings as well: they come from
the same 96x96 frame the agent is shown, nothing the player does not see.

The bar is drawn on the 1000x800 window (one gauge unit is 25 px wide or 20 px tall there) and smooth-scaled
to 96x96, so each gauge's value is its bar's area in the frame over the area of one unit.
"""

from __future__ import annotations

import numpy as np

GAUGES = ("speed", "abs_front_left", "abs_front_right", "abs_rear_left", "abs_rear_right", "steering", "gyroscope")
DASHBOARD_DIM = len(GAUGES)
_UNIT = 96 / 40  # one gauge unit in frame pixels, both ways (1000 / 40 px across, 800 / 40 px up, scaled)
_VERTICAL_BASE = 96 - _UNIT  # vertical bars grow up (positive) or down (negative) from this row
_BAR_TOP = 84  # the bar fills rows 84..95
_HORIZONTAL_ROWS = slice(86 - _BAR_TOP, 92 - _BAR_TOP)  # the horizontal bars span rows 86.4..91.2: two units tall
_HORIZONTAL_REACH = 24  # pixels read either side of a horizontal gauge's origin: 10 units
_WHITE, _RED, _GREEN, _BLUE = -1, 0, 1, 2
# What the gauges read while a trained agent drives (1.12 +- 0.22 speed, 1.05 +- 0.2 ABS, -0.3 +- 2.7 steering,
# -0.25 +- 2.0 gyroscope over 3 held-out tracks): C reads them as (reading - TYPICAL) / SPREAD, inputs on z's
# scale, so one CMA-ES step size fits them too and a weight on speed is not also a weight on gas's bias.
TYPICAL = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0], np.float32)
SPREAD = np.array([0.25, 0.25, 0.25, 0.25, 0.25, 2.5, 2.0], np.float32)


def _columns(place: float) -> slice:
    """The pixel columns wholly inside a vertical gauge drawn from `place` to `place + 1` units (the ABS
    gauges touch: a column shared by two would mix them)."""
    return slice(int(np.ceil(place * _UNIT)), int(np.floor((place + 1) * _UNIT)))


# (columns, channel) of each vertical gauge: speed is white at 5 units, the ABS sensors blue at 7..10.
_VERTICAL = tuple((_columns(place), channel) for place, channel in ((5, _WHITE), (7, _BLUE), (8, _BLUE),
                                                                  (9, _BLUE), (10, _BLUE)))
_HORIZONTAL = ((20, _GREEN), (30, _RED))  # steering (green) and gyroscope (red) grow sideways from these units


def read_dashboard(frame: np.ndarray) -> np.ndarray:
    """(96, 96, 3) uint8 frame -> the 7 gauges in the bar's own units (speed 1 is 50, the others about -4..4)."""
    bar = frame[_BAR_TOP:].astype(np.float32) / 255.0
    above_base = np.where(np.arange(_BAR_TOP, 96) + 0.5 < _VERTICAL_BASE, 1.0, -1.0)[:, None]
    readings = []
    for columns, channel in _VERTICAL:
        patch = bar[:, columns].min(axis=2) if channel == _WHITE else bar[:, columns, channel]
        readings.append((patch * above_base).sum() / patch.shape[1] / _UNIT)  # mean column height, in units
    for place, channel in _HORIZONTAL:
        origin = round(place * _UNIT)
        band = bar[_HORIZONTAL_ROWS, :, channel]
        right = band[:, origin:origin + _HORIZONTAL_REACH].sum()
        left = band[:, origin - _HORIZONTAL_REACH:origin].sum()
        readings.append((right - left) / (2 * _UNIT) / _UNIT)  # the bar's length, in units
    return np.asarray(readings, np.float32)


def standardize(gauges):
    """Readings in the bar's units -> C's inputs, about zero-mean and unit-spread (works on arrays and tensors)."""
    return (gauges - TYPICAL) / SPREAD
