"""``python -m reports.saliency STUDY ROW [--seed 0] [--video I]``: the paper's Fig. 7 for a trained trial.

For one validation clip, draws the SOI-Tr's saliency maps O (the Saliency-Net's R object maps per frame, each a
softmax over the feature map's positions) as heat maps over the clip's frames, and the attention weights of
the SOI-Tr's Transformer over its T*R object tokens: the matrix (mean over heads) and, as bars, the attention
vector alpha of the anchor token (the most concentrated object in the anchor frame, the paper's "4th frame").

Only for rows whose model has ``regions=saliency``. Both are read from the model with forward hooks (no change
to the model): O is the output of the SOI-Tr's ``regions`` module; the attention weights are recomputed from
the input of the chosen Transformer layer's ``attn`` module, softmax(q k^T / sqrt(head_dim)), exactly as
``F.scaled_dot_product_attention`` weights them (checked against the layer's output on every call).

The figure goes to ``<out>/figures/<study>_saliency_<row>_seed<seed>_video<I>.{png,pdf}`` (``--out`` default
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
from reports.figures import saliency_figure, save_figure
from reports.trained import base_parser, checked_client, figure_stem, qualifying_rows, run_figure_command, trained
from study.find import find_spec
from study.spec import SpecError, load_spec

REGIONS = "saliency"


@dataclass
class SaliencyResult:
    """What ``saliency_and_attention`` read from the model for one clip.

    Attributes:
        saliency: (T, R, h, w), the saliency map O of each object in each frame.
        attention: (T*R, T*R), the chosen layer's attention weights, mean over heads (tokens frame-major:
            token ``t * R + r`` is object r of frame t).
        head_attention: (heads, T*R, T*R), per head.
        focus: the most concentrated object: the largest peak of its maps, averaged over the frames.
        anchor_frame: the frame whose ``focus`` token is the anchor.
        stage: the stage the SOI-Tr follows.
        layer: the Transformer layer.
        probabilities: (K,) the clip's class probabilities.
    """

    saliency: np.ndarray
    attention: np.ndarray
    head_attention: np.ndarray
    focus: int
    anchor_frame: int
    stage: int
    layer: int
    probabilities: np.ndarray

    @property
    def focus_map(self) -> np.ndarray:
        """(T, h, w): the most concentrated object's saliency map in each frame."""
        return self.saliency[:, self.focus]

    @property
    def alpha(self) -> np.ndarray:
        """(T*R,): the anchor token's attention vector."""
        return self.attention[self.anchor_frame * self.saliency.shape[1] + self.focus]


def saliency_stage(model: nn.Module, stage: int | None = None) -> int:
    """The stage whose SOI-Tr to read: ``stage``, or the last one with a SOI-Tr.

    Raises:
        ValueError: the model has no SOI-Tr there, or its regions are not the Saliency-Net.
    """
    from ean.models.soi.regions.saliency import SaliencyRegions

    stages = sorted(int(k) for k in model.sois)
    if not stages:
        raise ValueError(f"the model has no SOI-Tr (regions={REGIONS} puts one after the region stages)")
    if stage is None:
        stage = stages[-1]
    if stage not in stages:
        raise ValueError(f"the model has no SOI-Tr after stage {stage}; SOI-Tr stages: {stages}")
    regions = model.sois[str(stage)].regions
    if not isinstance(regions, SaliencyRegions):
        raise ValueError(
            f"the SOI-Tr after stage {stage} has regions {type(regions).__name__}, not the Saliency-Net "
            f"(regions={REGIONS}): it has no saliency map O"
        )
    return stage


@torch.no_grad()
def saliency_and_attention(
    model: nn.Module, clip: torch.Tensor, stage: int | None = None, layer: int = 0, anchor_frame: int | None = None
) -> SaliencyResult:
    """The saliency maps O and attention weights of a model's SOI-Tr for one clip.

    Args:
        model: an ``EAN`` with a SOI-Tr whose regions are the Saliency-Net (``regions=saliency``).
        clip: (1, T, L, 3, H, W), normalised.
        stage: the SOI-Tr's stage (default: the last one).
        layer: the Transformer layer whose attention to read (0: the first, on the object tokens themselves).
        anchor_frame: the anchor token's frame (default: the 4th frame, as the paper, or the last if T < 4).

    Raises:
        ValueError: the model has no Saliency-Net SOI-Tr at ``stage``, or ``layer`` / ``anchor_frame`` is out
            of range.
        RuntimeError: the recomputed attention does not reproduce the layer's output (its code changed).
    """
    if clip.shape[0] != 1:
        raise ValueError(f"one clip at a time: got a batch of {clip.shape[0]}")
    stage = saliency_stage(model, stage)
    soi = model.sois[str(stage)]
    if not 0 <= layer < len(soi.transformer):
        raise ValueError(f"layer {layer} out of range: the SOI-Tr's Transformer has {len(soi.transformer)} layers")
    attn = soi.transformer[layer].attn
    captured: dict[str, torch.Tensor] = {}
    hooks = [
        soi.regions.register_forward_hook(lambda m, args, out: captured.setdefault("saliency", out)),
        attn.register_forward_hook(lambda m, args, out: captured.update(tokens=args[0], out=out)),
    ]
    try:
        logits = model.eval()(clip)
    finally:
        for hook in hooks:
            hook.remove()
    weights = _attention_weights(attn, captured["tokens"], captured["out"])  # (1, heads, L, L)
    saliency = captured["saliency"][0].float()  # (T, R, h, w)
    t = saliency.shape[0]
    anchor = min(3, t - 1) if anchor_frame is None else anchor_frame
    if not 0 <= anchor < t:
        raise ValueError(f"anchor frame {anchor} out of range: the clip has {t} frames")
    focus = int(saliency.flatten(2).amax(dim=2).mean(dim=0).argmax())
    return SaliencyResult(
        saliency=saliency.numpy(),
        attention=weights[0].mean(dim=0).numpy(),
        head_attention=weights[0].numpy(),
        focus=focus,
        anchor_frame=anchor,
        stage=stage,
        layer=layer,
        probabilities=logits[0].float().softmax(-1).numpy(),
    )


def _attention_weights(attn: nn.Module, tokens: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) of ``ean.models.soi.transformer.Attention`` for its input ``tokens`` (N, L, D):
    (N, heads, L, L). Checks that the weights reproduce the module's output ``out``."""
    n, length, _ = tokens.shape
    qkv = attn.qkv(tokens).view(n, length, 3, attn.heads, attn.head_dim).permute(2, 0, 3, 1, 4).float()
    q, k, v = qkv[0], qkv[1], qkv[2]
    weights = (q @ k.transpose(-1, -2) * attn.head_dim**-0.5).softmax(dim=-1)
    mixed = (weights @ v).transpose(1, 2).reshape(n, length, attn.heads * attn.head_dim)
    again = attn.proj(mixed.to(tokens.dtype))
    if not torch.allclose(again.float(), out.float(), rtol=1e-3, atol=1e-4 * (1 + out.abs().max().item())):
        raise RuntimeError("the recomputed attention weights do not reproduce the SOI-Tr layer's output")
    return weights


def saliency_report(
    model: nn.Module,
    clip: Clip,
    out: str | Path,
    title: str = "",
    stage: int | None = None,
    layer: int = 0,
    anchor_frame: int | None = None,
) -> tuple[list[Path], SaliencyResult]:
    """Draws Fig. 7 of ``model`` for ``clip`` to ``out`` (.png, .pdf); returns the paths and what was drawn."""
    result = saliency_and_attention(model, clip.input(), stage, layer, anchor_frame)
    predicted = int(result.probabilities.argmax())
    heading = (
        f"{title + ': ' if title else ''}SOI-Tr after stage {result.stage}, Transformer layer {result.layer + 1}; "
        f"video {clip.index} ({Path(clip.path).name}), class: {clip.class_name}\n"
        f"P(true class) = {result.probabilities[clip.label]:.2f}, predicted class {predicted} "
        f"(P = {result.probabilities[predicted]:.2f})"
    )
    fig = saliency_figure(
        clip.rgb_frames(getattr(model, "rgb_frame", None)),
        result.saliency,
        result.attention,
        result.focus,
        result.anchor_frame,
        heading,
    )
    return save_figure(fig, out), result


def _draw(args: argparse.Namespace) -> list[Path]:
    """Draws Fig. 7 for the parsed command line; returns the files written."""
    spec = load_spec(find_spec(args.study))
    client = checked_client(args)  # --mlflow-uri and --out checked first
    trial = trained(client, spec, args.row, args.seed, args.dataset, args.out)
    regions = trial.model_config()["regions"]
    if regions != REGIONS:
        rows = qualifying_rows(client, spec, lambda model: model["regions"] == REGIONS)
        raise SpecError(
            f"row {args.row!r} of {spec.name} has regions={regions}; Fig. 7 needs regions={REGIONS} (a "
            f"Saliency-Net). Rows of {spec.name} with a finished regions={REGIONS} run: "
            f"{', '.join(rows) if rows else 'none'}"
        )
    clip = validation_clip(trial.config["data"], args.video)
    out = figure_stem(trial.folder, spec.name, "saliency", trial.file_row, args.seed, args.video)
    label = f"{spec.row(args.row).label} (seed {args.seed})"
    paths, _ = saliency_report(trial.model(), clip, out, label, args.stage, args.layer, args.anchor_frame)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = base_parser("python -m reports.saliency", __doc__)
    parser.add_argument("--stage", type=int, default=None, help="the SOI-Tr's stage (default: the last one)")
    parser.add_argument("--layer", type=int, default=0, help="Transformer layer, 0-based (default 0, the first)")
    parser.add_argument("--anchor-frame", type=int, default=None, help="0-based (default 3: the 4th frame)")
    args = parser.parse_args(argv)
    return run_figure_command(lambda: _draw(args))


if __name__ == "__main__":
    sys.exit(main())
