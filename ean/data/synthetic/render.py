"""Drawing synthetic frames: a cluttered background, moving distractors, the acting object(s).

Frames are uint8 arrays of shape (H, W, 3), drawn with numpy masks on the bounding boxes of the shapes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ean.data.synthetic.scenes import Action

COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (40, 80, 230),
    "yellow": (235, 210, 40),
    "purple": (150, 60, 200),
    "orange": (245, 140, 30),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
}
SHAPES = ("ball", "box")


@dataclass
class Distractor:
    """A small shape moving at constant velocity and bouncing off the frame's edges."""

    x: float
    y: float
    vx: float
    vy: float
    radius: float
    colour: tuple[int, int, int]
    shape: str

    def step(self, width: int, height: int) -> None:
        self.x, self.y = self.x + self.vx, self.y + self.vy
        if not 0 <= self.x <= width:
            self.vx = -self.vx
        if not 0 <= self.y <= height:
            self.vy = -self.vy


def background(height: int, width: int, rng: np.random.Generator, clutter: float = 1.0) -> np.ndarray:
    """Clutter: a base colour, 15-30 random rectangles and ellipses, and pixel noise. uint8 (H, W, 3).

    ``clutter`` in [0, 1] scales the number of shapes and the noise (0: a plain background).
    """
    frame = np.empty((height, width, 3), dtype=np.float32)
    frame[:] = rng.uniform(60, 200, size=3)
    yy, xx = np.mgrid[0:height, 0:width]
    for _ in range(round(int(rng.integers(15, 31)) * clutter)):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(0.03, 0.25) * height, rng.uniform(0.03, 0.25) * width
        if rng.random() < 0.5:
            mask = (np.abs(yy - cy) <= ry) & (np.abs(xx - cx) <= rx)
        else:
            mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        frame[mask] = 0.5 * frame[mask] + 0.5 * rng.uniform(0, 255, size=3)
    frame += clutter * rng.normal(0, 8, size=frame.shape)
    return np.clip(frame, 0, 255).astype(np.uint8)


def draw(frame: np.ndarray, x: float, y: float, radius: float, colour: tuple[int, int, int], shape: str) -> None:
    """Draws a filled ball or box centred at (x, y) in place (clipped to the frame)."""
    height, width = frame.shape[:2]
    top, bottom = max(int(y - radius), 0), min(int(y + radius) + 1, height)
    left, right = max(int(x - radius), 0), min(int(x + radius) + 1, width)
    if top >= bottom or left >= right:
        return
    yy, xx = np.ogrid[top:bottom, left:right]
    if shape == "ball":
        mask = (yy - y) ** 2 + (xx - x) ** 2 <= radius**2
    else:
        mask = (np.abs(yy - y) <= radius) & (np.abs(xx - x) <= radius)
    frame[top:bottom, left:right][mask] = colour


def distractors(height: int, width: int, rng: np.random.Generator, clutter: float = 1.0) -> list[Distractor]:
    """2-4 small shapes (times ``clutter``) with random speeds (0.3-3 px per frame) and directions."""
    out = []
    for _ in range(round(int(rng.integers(2, 5)) * clutter)):
        speed, angle = rng.uniform(0.3, 3.0), rng.uniform(0, 2 * np.pi)
        colour = COLOURS[str(rng.choice(list(COLOURS)))]
        out.append(
            Distractor(
                rng.uniform(0, width),
                rng.uniform(0, height),
                speed * np.cos(angle),
                speed * np.sin(angle),
                rng.uniform(0.03, 0.08) * height,
                colour,
                str(rng.choice(SHAPES)),
            )
        )
    return out


def render_clip(
    action: Action,
    radius: float,
    objects: list[tuple[tuple[int, int, int], str]],
    num_frames: int,
    event: tuple[int, int],
    height: int,
    width: int,
    rng: np.random.Generator,
    clutter: float = 1.0,
) -> np.ndarray:
    """All frames of one clip: uint8 (num_frames, H, W, 3). ``event`` = (first, last) frame of the action.

    ``clutter`` in [0, 1] scales the background's shapes and noise and the number of moving distractors.
    """
    base, movers = background(height, width, rng, clutter), distractors(height, width, rng, clutter)
    table = action.label == 6
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for t in range(num_frames):
        frame = base.copy()
        p = float(np.clip((t - event[0]) / max(event[1] - event[0], 1), 0.0, 1.0))
        states = action.states(p)
        if table:
            edge = action.start[0] + action.direction[0] * 0.3 * action.travel
            left, right = (0, int(edge)) if action.direction[0] > 0 else (int(edge), width)
            frame[int(action.start[1] + radius) : int(action.start[1] + radius) + 4, left:right] = (90, 60, 30)
        for mover in movers:
            draw(frame, mover.x, mover.y, mover.radius, mover.colour, mover.shape)
            mover.step(width, height)
        for state, (colour, shape) in zip(states, objects, strict=True):
            draw(frame, state.x, state.y, radius * state.scale, colour, shape)
        frames[t] = frame
    return frames
