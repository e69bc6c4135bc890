"""``python -m reports.kernels STUDY ROW [--seed 0] [--video I] [--stage 4]``: the paper's Fig. 10 for a trial.

Loads the trial's resolved config and last checkpoint (found through its MLflow run, ``reports.trained``),
takes a validation video, and plots the EAB's kernel weights (``ean.models.kernel_weights``: sums of the
fusion matrix over each kernel's channels) for three versions of it:

- ``anchor``: the usual centre test clip;
- ``zoom_1.6x``: the anchor clip zoomed in 1.6x about its centre;
- ``fps_2x``: the video sampled again at twice the frame rate (``reports.clips.FrameRateSampler``: the T
  segments cover the central half of the video, half the anchor's stride apart), so its frames are new frames
  of the video rather than repeated ones. A video with fewer than 2T frames cannot give T distinct frames; the
  command then warns.

Fig. 10 shows M's learned part: where the fusion adds the identity (``dynamic`` with ``identity_init``, the
default: M = I + ESP-Net output) the weights are those of M - I, and the title says so; otherwise (``static``,
or ``identity_init=false``) those of M. Only for rows whose block is ``eab`` with a ``dynamic`` or ``static``
fusion after ``--stage``, or any block with a fusion matrix (``ean.models.kernel_weights.has_matrix``: a
registered fusion that has one counts too).

The figure goes to ``<out>/figures/<study>_kernels_<row>_seed<seed>_video<I>.{png,pdf}`` (``--out`` default
``outputs/reports/<study>``, where ``reports.make`` writes).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient
from torch import nn

from ean.models.kernel_weights import config_has_matrix
from reports.clips import Clip, validation_clip
from reports.figures import plot_kernel_weights
from reports.trained import (  # noqa: F401  (find_run, checkpoint_of: this module's names before reports.trained)
    base_parser,
    checked_client,
    checkpoint_of,
    figure_stem,
    find_run,
    qualifying_rows,
    run_figure_command,
    tracking_uri,
    trained,
)
from study.find import find_spec
from study.spec import SpecError, load_spec

MATRIX_FUSIONS = ("dynamic", "static")  # the project's fusions with a matrix, named in messages
STAGES = (1, 2, 3, 4, 5)


@dataclass
class KernelResult:
    """What ``kernels_report`` drew.

    Attributes:
        weights: variant -> {"spatial": (3,), "temporal": (3,)}, the weights drawn (of M - I where
            ``minus_identity``, else of M).
        raw: the same for M itself.
        minus_identity: whether the fusion adds I, so that M - I was drawn.
    """

    weights: dict[str, dict[str, np.ndarray]]
    raw: dict[str, dict[str, np.ndarray]]
    minus_identity: bool


def kernels_report(
    model: nn.Module, anchor: Clip, fast: Clip, out: str | Path, stage: int = 4, title: str = ""
) -> tuple[list[Path], KernelResult]:
    """Draws Fig. 10 of ``model`` to ``out`` (.png, .pdf); returns the paths and what was drawn.

    Args:
        model: an ``EAN`` with an EAB of matrix fusion after ``stage``.
        anchor: the anchor clip.
        fast: the same video sampled at twice the frame rate (``validation_clip(..., rate=2)``).
        out: the output path without suffix.
        stage: the EAB's stage.
        title: the start of the figure title (row, seed).
    """
    from ean.models.kernel_weights import adds_identity, kernel_weight_variants

    if fast.path != anchor.path:
        raise ValueError(f"the 2x frame-rate clip is of {fast.path}, the anchor of {anchor.path}")
    minus_identity = adds_identity(model, stage)
    x, x_fast = anchor.input(), fast.input()
    weights, raw = (_arrays(kernel_weight_variants(model, x, x_fast, stage, sub)) for sub in (minus_identity, False))
    matrix = "M − I" if minus_identity else "M"
    part = "M − I, the learned part (the fusion adds I)" if minus_identity else "M"
    heading = (
        f"{title + ': ' if title else ''}EAB kernel weights after stage {stage}, of {part}\n"
        f"video {anchor.index} ({Path(anchor.path).name}, {anchor.num_frames} frames), class: {anchor.class_name}\n"
        f"frames: anchor {_frames(anchor)}, fps_2x {_frames(fast)}"
    )
    paths = plot_kernel_weights(weights, out, matrix=matrix, title=heading)
    return paths, KernelResult(weights, raw, minus_identity)


def _frames(clip: Clip) -> str:
    """The video frame numbers the RGB path sees (the middle frame of each segment)."""
    return ", ".join(str(int(i)) for i in clip.frame_indices[:, clip.frame_indices.shape[1] // 2])


def _arrays(weights: dict[str, dict[str, list]]) -> dict[str, dict[str, np.ndarray]]:
    return {variant: {axis: np.asarray(w) for axis, w in axes.items()} for variant, axes in weights.items()}


def has_matrix_eab(model_cfg: dict, stage: int) -> bool:
    """Whether a resolved model config has a block with a fusion matrix after ``stage`` (an EAB with a dynamic
    or static M, or a variant whose fusion has a matrix)."""
    return _has_matrix(model_cfg) and stage in model_cfg["block_stages"]


def _has_matrix(model_cfg: dict) -> bool:
    options = model_cfg.get("block_options")
    return config_has_matrix(model_cfg["block"], model_cfg["fusion"], options if isinstance(options, dict) else None)


def _check_row(client: MlflowClient, spec, row: str, model_cfg: dict, stage: int) -> None:
    """SpecError unless the row's model has an EAB of matrix fusion after ``stage``, naming the valid choices."""
    if has_matrix_eab(model_cfg, stage):
        return
    if _has_matrix(model_cfg):
        stages = sorted(set(model_cfg["block_stages"]))
        raise SpecError(
            f"row {row!r} of {spec.name} has no EAB after stage {stage}; its EABs follow stages "
            f"{', '.join(map(str, stages))} (block_stages): give --stage one of them"
        )
    rows = qualifying_rows(client, spec, _has_matrix)
    raise SpecError(
        f"row {row!r} of {spec.name} has block={model_cfg['block']}, fusion={model_cfg['fusion']}, "
        f"block_stages={model_cfg['block_stages']}; Fig. 10 needs a block with a fusion matrix M, an "
        f"EAB (block=eab) with fusion {' or '.join(MATRIX_FUSIONS)} (and --stage one of its block_stages). "
        f"Rows of {spec.name} with a finished run of such a block: {', '.join(rows) if rows else 'none'}"
    )


def _draw(args: argparse.Namespace) -> list[Path]:
    """Draws Fig. 10 for the parsed command line; returns the files written."""
    spec = load_spec(find_spec(args.study))
    client = checked_client(args)
    trial = trained(client, spec, args.row, args.seed, args.dataset, args.out)
    _check_row(client, spec, args.row, trial.model_config(), args.stage)
    anchor = validation_clip(trial.config["data"], args.video)
    fast = validation_clip(trial.config["data"], args.video, rate=2.0)
    repeated = len(np.unique(fast.frame_indices[:, 0])) < len(fast.frame_indices)
    if repeated:
        print(
            f"warning: video {anchor.index} has {fast.num_frames} frames, too few for "
            f"{len(fast.frame_indices)} distinct frames at 2x the frame rate: the fps_2x clip repeats frames",
            file=sys.stderr,
        )
    out = figure_stem(trial.folder, spec.name, "kernels", trial.file_row, args.seed, args.video)
    label = f"{spec.row(args.row).label} (seed {args.seed})"
    paths, _ = kernels_report(trial.model(), anchor, fast, out, args.stage, label)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = base_parser("python -m reports.kernels", __doc__)
    parser.add_argument(
        "--stage", type=int, choices=STAGES, default=4, help="the EAB after this stage, 1-5 (default 4)"
    )
    args = parser.parse_args(argv)
    return run_figure_command(lambda: _draw(args))


if __name__ == "__main__":
    sys.exit(main())
