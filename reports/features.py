"""``python -m reports.features STUDY ROW BASELINE [--seed 0] [--video I]``: the paper's Fig. 9 for two rows.

Both rows' trained networks see the same validation clip. Drawn:

- **Stage-4 feature maps** (``--stage``): the output of the stage *after its block* (the EAB or baseline
  block that follows it, if any) and *before any SOI-Tr* there, the paper's "feature map output from Stage4
  (before the inserting of the SOI-Tr)"; stage k is ``layer{k-1}`` of the ResNet (stage 4 = layer3, 14 x 14
  at 224 px). Per frame, the mean over the channels at each position, (T, h, w), drawn as a heat map over the
  frame; each network on its own colour scale (min to max over its frames). EAN row above, baseline below.
- **Per-frame score of the true class**: the network's head applied to each frame alone. The head of an
  ``EAN`` averages the last stage's feature map (after the SOI-Tr, which adds one clip-level vector to every
  frame) over the positions and then over the T frames (TSN consensus), and applies the classifier ``fc``
  (dropout is off in eval). The per-frame score of frame t is ``softmax(fc(mean_hw F5[t]))[true class]``:
  the same head without the mean over frames. Because ``fc`` is linear, the mean of the T per-frame logits
  is exactly the clip's logit; the clip's score (the dashed line) is ``softmax(that mean)[true class]``, not
  the mean of the per-frame probabilities. Frame t's features depend on the other frames (temporal
  convolutions, EABs, SOI-Tr), so a per-frame score says how much of the evidence sits in frame t, not what
  the network would answer for frame t alone.

Features are read with a forward hook (no change to the model). The figure goes to
``<out>/figures/<study>_features_<row>_vs_<baseline>_seed<seed>_video<I>.{png,pdf}`` (``--out`` default
``outputs/reports/<study>``, where ``reports.make`` writes).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from reports.clips import Clip, validation_clip
from reports.figures import features_figure, save_figure
from reports.trained import base_parser, checked_client, figure_stem, run_figure_command, trained
from study.find import find_spec
from study.spec import SpecError, load_spec


@dataclass
class FeatureResult:
    """What ``stage_features`` read for one clip.

    Attributes:
        features: (T, C, h, w), the stage's output after its block, before any SOI-Tr.
        frame_logits: (T, K), the head applied to each frame's last-stage features.
        clip_logits: (K,), the network's output for the clip (the mean of ``frame_logits``).
    """

    features: np.ndarray
    frame_logits: np.ndarray
    clip_logits: np.ndarray

    @property
    def channel_mean(self) -> np.ndarray:
        """(T, h, w): the mean over channels at each position, the map drawn."""
        return self.features.mean(axis=1)

    def frame_scores(self, label: int) -> np.ndarray:
        """(T,): each frame's probability of class ``label``."""
        return _softmax(self.frame_logits)[:, label]

    def clip_score(self, label: int) -> float:
        """The clip's probability of class ``label``."""
        return float(_softmax(self.clip_logits)[label])


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def stage_module(model: nn.Module, stage: int) -> nn.Module:
    """The module whose output is stage ``stage``'s features after its block: the block, else ``layer{k-1}``.

    Raises:
        ValueError: ``stage`` is not 2-5.
    """
    if stage not in (2, 3, 4, 5):
        raise ValueError(f"stage must be 2-5 (stage k is the ResNet's layer{{k-1}}), got {stage}")
    key = str(stage)
    return model.blocks[key] if key in model.blocks else getattr(model.backbone, f"layer{stage - 1}")


@torch.no_grad()
def stage_features(model: nn.Module, clip: torch.Tensor, stage: int = 4) -> FeatureResult:
    """Stage ``stage``'s feature map and the per-frame and clip logits of ``model`` for one clip.

    Args:
        model: an ``EAN``.
        clip: (1, T, L, 3, H, W), normalised.
        stage: 2-5.
    """
    if clip.shape[0] != 1:
        raise ValueError(f"one clip at a time: got a batch of {clip.shape[0]}")
    captured: dict[str, torch.Tensor] = {}
    hook = stage_module(model, stage).register_forward_hook(lambda m, args, out: captured.setdefault("x", out))
    try:
        last = model.eval().features(clip)  # (T, C5, h5, w5)
    finally:
        hook.remove()
    frame_logits = model.fc(last.mean(dim=(2, 3)))  # (T, K): the head without the mean over frames
    return FeatureResult(
        features=captured["x"].float().numpy(),
        frame_logits=frame_logits.float().numpy(),
        clip_logits=frame_logits.float().mean(dim=0).numpy(),
    )


def features_report(
    networks: dict[str, nn.Module],
    clip: Clip,
    out: str | Path,
    stage: int = 4,
    title: str = "",
    clips: dict[str, Clip] | None = None,
) -> tuple[list[Path], dict[str, FeatureResult]]:
    """Draws Fig. 9 for ``networks`` (label -> model; the EAN first, then the baseline) on ``clip`` to ``out``.

    Args:
        networks: label -> model, drawn top to bottom.
        clip: the clip (its frames are drawn; its label is the true class).
        out: the output path without suffix.
        stage: the stage of the feature maps.
        title: the figure title.
        clips: label -> that network's own sampling of the same video, where its input differs (e.g. 5 frames
            per segment for LMC); by default every network gets ``clip``.

    Returns:
        The paths written and, per label, what was drawn.
    """
    clips = clips or {}
    results = {label: stage_features(m, clips.get(label, clip).input(), stage) for label, m in networks.items()}
    first = next(iter(networks.values()))
    heading = (
        f"{title + ': ' if title else ''}video {clip.index} ({Path(clip.path).name}), "
        f"frames {', '.join(str(int(i)) for i in clip.frame_indices[:, clip.frame_indices.shape[1] // 2])} "
        f"of {clip.num_frames}"
    )
    fig = features_figure(
        clip.rgb_frames(getattr(first, "rgb_frame", None)),
        {label: r.channel_mean for label, r in results.items()},
        {label: r.frame_scores(clip.label) for label, r in results.items()},
        {label: r.clip_score(clip.label) for label, r in results.items()},
        clip.class_name,
        stage,
        heading,
    )
    return save_figure(fig, out), results


def same_clip(clips: dict[str, Clip]) -> None:
    """Checks that the rows' clips show the same video and frames (the middle frame of each segment).

    Raises:
        ValueError: they differ (another dataset, another number of segments or another crop).
    """
    (first_label, first), *others = clips.items()
    for label, clip in others:
        mine, theirs = first.frame_indices, clip.frame_indices
        same_frames = mine.shape[0] == theirs.shape[0] and np.array_equal(
            mine[:, mine.shape[1] // 2], theirs[:, theirs.shape[1] // 2]
        )
        if clip.path != first.path or not same_frames or clip.frames.shape[-2:] != first.frames.shape[-2:]:
            raise ValueError(
                f"{first_label} and {label} do not see the same clip (video {first.path} frames "
                f"{mine[:, 0].tolist()} at {tuple(first.frames.shape[-2:])} px against {clip.path} frames "
                f"{theirs[:, 0].tolist()} at {tuple(clip.frames.shape[-2:])} px): compare rows of the same "
                "dataset, number of segments and crop size"
            )


def _draw(args: argparse.Namespace) -> list[Path]:
    """Draws Fig. 9 for the parsed command line; returns the files written."""
    spec = load_spec(find_spec(args.study))
    client = checked_client(args)  # --mlflow-uri and --out checked first
    if args.row == args.baseline:
        raise SpecError(f"ROW and BASELINE are both {args.row!r}: name two rows of {spec.name}")
    trials = {row: trained(client, spec, row, args.seed, args.dataset, args.out) for row in (args.row, args.baseline)}
    clips = {row: validation_clip(t.config["data"], args.video) for row, t in trials.items()}
    same_clip(clips)
    labels = {row: spec.row(row).label for row in trials}
    networks = {labels[row]: t.model() for row, t in trials.items()}
    pair = f"{trials[args.row].file_row}_vs_{args.baseline}"
    out = figure_stem(trials[args.row].folder, spec.name, "features", pair, args.seed, args.video)
    paths, _ = features_report(
        networks,
        clips[args.row],
        out,
        args.stage,
        f"{spec.name}, seed {args.seed}",
        clips={labels[row]: c for row, c in clips.items()},
    )
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = base_parser("python -m reports.features", __doc__)
    parser.add_argument("baseline", help="the row id of the baseline drawn below (e.g. only_soitr)")
    parser.add_argument("--stage", type=int, default=4, help="the stage of the feature maps, 2-5 (default 4)")
    args = parser.parse_args(argv)
    return run_figure_command(lambda: _draw(args))


if __name__ == "__main__":
    sys.exit(main())
