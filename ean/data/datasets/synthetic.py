"""The synthetic dataset: generated under its root on first use, then read exactly as Something-Something V2.

See :mod:`ean.data.synthetic.generate` for the files and :mod:`ean.data.synthetic.scenes` for the actions.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from typing import Any

from ean.data.annotations import Annotations
from ean.data.datasets.something_v2 import SomethingV2
from ean.data.errors import DataError
from ean.data.registry import DATASETS
from ean.data.synthetic import generate_synthetic
from ean.data.synthetic.generate import existing_synthetic, is_validation

NAME = "synthetic"


@DATASETS.register(NAME)
class Synthetic:
    """Templated actions over cluttered backgrounds, written as mp4 + SSv2 JSON under ``root`` if absent.

    Args:
        root: folder of the dataset (generated there on first use; reused when its parameters match).
        split: ``"train"`` or ``"val"``.
        num_videos: videos in total (4/5 train, the last 1/5 of each class, at least one, validation).
        num_classes: classes (at most 10; 0 and 1 are the mirrored pair "left to right" / "right to left").
        size: frame height in pixels (width = 4/3 of it).
        seed: generation seed.
        min_frames: shortest clip.
        max_frames: longest clip.
        clutter: background clutter and moving distractors, 0 (none: easy) to 1 (default, hard by design).
    """

    CLIP_DEFAULTS = {"resize": (240, 320)}  # as for Something
    GENERATED = True  # its files are written under the root on first use

    def __init__(
        self,
        root: str,
        split: str = "train",
        *,
        num_videos: int = 100,
        num_classes: int = 10,
        size: int = 96,
        seed: int = 0,
        min_frames: int = 24,
        max_frames: int = 48,
        clutter: float = 1.0,
    ):
        self.root, self.split = root, split
        given = locals()
        self.settings = {name: given[name] for name in _settings()}  # the keyword-only arguments above

    def read(self) -> Annotations:
        generate_synthetic(self.root, **self.settings)
        return SomethingV2(self.root, self.split, video_ext=".mp4").read()

    @staticmethod
    def root_problems(data_cfg: dict[str, Any]) -> list[str]:
        """Why the data root cannot take this dataset (nothing is generated): it holds another synthetic dataset,
        or other files. Empty when it holds this one, or nothing yet."""
        settings = _given_settings(data_cfg)
        try:
            existing_synthetic(str(data_cfg.get("root")), settings)
        except DataError as err:
            return [str(err)]
        return []

    @staticmethod
    def fingerprint(data_cfg: dict[str, Any]) -> str:
        """The generator's settings (the videos follow from them): ``"sha256:<16 hex>"``. Numbers are compared as
        numbers: ``clutter: 1`` is the default ``1.0``, ``num_videos: 24.0`` is ``24``."""
        settings = _given_settings(data_cfg)
        digest = hashlib.sha256(NAME.encode())
        digest.update(json.dumps(settings, sort_keys=True).encode())
        return "sha256:" + digest.hexdigest()[:16]

    @staticmethod
    def videos(data_cfg: dict[str, Any], split: str) -> int:
        """How many videos ``split`` has (nothing is generated)."""
        settings = _given_settings(data_cfg)
        n, k = int(settings["num_videos"]), int(settings["num_classes"])
        val = sum(is_validation(i, n, k) for i in range(n))
        return val if split == "val" else n - val

    @staticmethod
    def num_classes(data_cfg: dict[str, Any]) -> int:
        """Its ``num_classes`` setting (nothing is generated)."""
        value = data_cfg.get("num_classes")
        return int(_settings()["num_classes"] if value is None else value)


def _settings() -> dict[str, Any]:
    """The generator's settings with their defaults (the constructor's keyword-only arguments)."""
    params = inspect.signature(Synthetic).parameters.values()
    return {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY}


def _given_settings(data_cfg: dict[str, Any]) -> dict[str, Any]:
    """The generator's settings a data config gives, defaults filled in, each number in one form: a setting equal
    to its default is the default itself (``1`` for ``clutter``'s ``1.0``), another whole float an int (``0.0`` is
    ``0``), so that one dataset has one fingerprint however its numbers were written."""
    out = {}
    for key, default in _settings().items():
        value = data_cfg.get(key)
        if value is None or (_is_number(value) and _is_number(default) and value == default):
            value = default
        elif isinstance(value, float) and value.is_integer():
            value = int(value)
        out[key] = value
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
