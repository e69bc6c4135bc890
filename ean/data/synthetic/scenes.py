"""The synthetic actions: Something-Something-style templates and the motion of their objects.

Each action maps progress ``p`` in [0, 1] through the event to the position and scale of one or two
objects. Events start at a random time and last a random fraction of the clip, and objects differ widely
in size and travel, so speeds vary by an order of magnitude: telling "moving down" (constant speed) from
"falls off" (at rest, then accelerating), or "moving" from "pretending to move" (out and back), needs the
whole event, while fast events are over within a few frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TEMPLATES = (
    "Moving [something] from left to right",
    "Moving [something] from right to left",
    "Moving [something] up",
    "Moving [something] down",
    "Approaching [something] with your camera",
    "Moving away from [something] with your camera",
    "Pushing [something] so that it falls off the table",
    "Moving [something] and [something] closer to each other",
    "Moving [something] and [something] away from each other",
    "Pretending to move [something]",
)


@dataclass(frozen=True)
class ObjectState:
    """Centre (x, y) in pixels and the scale factor of one object at one instant."""

    x: float
    y: float
    scale: float = 1.0


@dataclass(frozen=True)
class Action:
    """One sampled action: its class and the parameters of its trajectories.

    Attributes:
        label: index into TEMPLATES.
        start: (x, y) of the first object when the event begins.
        travel: distance in pixels (or scale change) of the motion.
        direction: unit vector (dx, dy) used by two-object and pretend actions; side (+-1) for falling off.
    """

    label: int
    start: tuple[float, float]
    travel: float
    direction: tuple[float, float]

    def states(self, p: float) -> list[ObjectState]:
        """Object states at progress ``p`` (one object, or two for the pair actions)."""
        x, y = self.start
        d, (ux, uy) = self.travel, self.direction
        moves = {
            0: lambda: [ObjectState(x + d * p, y)],
            1: lambda: [ObjectState(x - d * p, y)],
            2: lambda: [ObjectState(x, y - d * p)],
            3: lambda: [ObjectState(x, y + d * p)],
            4: lambda: [ObjectState(x, y, 1.0 + (d - 1.0) * p)],
            5: lambda: [ObjectState(x, y, 1.0 - (1.0 - d) * p)],
            6: lambda: [_falling(x, y, d, ux, p)],
            7: lambda: _pair(x, y, ux, uy, d * (1.0 - p) + 0.15 * d),
            8: lambda: _pair(x, y, ux, uy, d * p + 0.15 * d),
            9: lambda: [ObjectState(x + ux * d * np.sin(np.pi * p), y + uy * d * np.sin(np.pi * p))],
        }
        return moves[self.label]()


def _falling(x: float, y: float, distance: float, side: float, p: float) -> ObjectState:
    """Pushed along the table for 40% of the event, then free fall (accelerating) out of the frame."""
    push = min(p, 0.4) / 0.4
    fall = max(p - 0.4, 0.0) / 0.6
    return ObjectState(x + side * 0.3 * distance * push, y + 3.0 * distance * fall**2)


def _pair(x: float, y: float, ux: float, uy: float, half_gap: float) -> list[ObjectState]:
    return [ObjectState(x - ux * half_gap, y - uy * half_gap), ObjectState(x + ux * half_gap, y + uy * half_gap)]


def sample_action(label: int, width: int, height: int, radius: float, rng: np.random.Generator) -> Action:
    """Random parameters for action ``label`` in a (height, width) frame, keeping the event in view."""
    margin = radius + 2
    angle = rng.uniform(0, 2 * np.pi)
    direction = (float(np.cos(angle)), float(np.sin(angle)))
    if label in (0, 1):
        travel = rng.uniform(0.25, 0.9) * (width - 2 * margin)
        x0 = rng.uniform(margin, width - margin - travel)
        start = (x0 if label == 0 else width - x0, rng.uniform(margin, height - margin))
    elif label in (2, 3):
        travel = rng.uniform(0.25, 0.9) * (height - 2 * margin)
        y0 = rng.uniform(margin, height - margin - travel)
        start = (rng.uniform(margin, width - margin), height - y0 if label == 2 else y0)
    elif label in (4, 5):
        travel = rng.uniform(1.8, 3.0) if label == 4 else rng.uniform(0.3, 0.55)
        start = (rng.uniform(0.35, 0.65) * width, rng.uniform(0.35, 0.65) * height)
    elif label == 6:
        side = float(rng.choice([-1.0, 1.0]))
        travel = rng.uniform(0.4, 0.8) * height
        start = (rng.uniform(0.3, 0.7) * width, rng.uniform(0.25, 0.5) * height)
        direction = (side, 0.0)
    elif label in (7, 8):
        travel = rng.uniform(0.2, 0.4) * min(width, height)
        start = (rng.uniform(0.4, 0.6) * width, rng.uniform(0.4, 0.6) * height)
    else:
        travel = rng.uniform(0.05, 0.15) * min(width, height)
        start = (rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height)
    return Action(label, (float(start[0]), float(start[1])), float(travel), direction)
