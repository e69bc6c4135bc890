"""Figures of a study (matplotlib, each saved as PNG and PDF).

- ``plot_accuracy_vs_flops``: top-1 against GFLOPs of the rows, marker area proportional to Param.
- ``plot_class_improvements``: the classes a row improves most over the baseline (the paper's Fig. 6).
- ``plot_kernel_weights``: the EAB's kernel weights for a video and its zoomed and resampled versions
  (the paper's Fig. 10); the weights are computed elsewhere (``ean``), this only draws them.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot), so no global state or display is used.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

#: Colours of the video variants of Fig. 10 (the paper: anchor gray, spatial green, temporal brown).
VARIANT_COLORS = {"anchor": "#8c8c8c", "zoom": "#4a9a4a", "fps": "#8b5a2b"}
_OTHER_COLORS = ("#4c72b0", "#dd8452", "#c44e52", "#8172b3")


def save_figure(fig: Figure, out: str | Path) -> list[Path]:
    """Saves ``fig`` as ``out.png`` (150 dpi) and ``out.pdf``; returns both paths.

    Args:
        fig: the figure.
        out: the path without suffix (a ``.png`` or ``.pdf`` suffix is replaced).
    """
    out = Path(out)
    stem = out.with_suffix("") if out.suffix in (".png", ".pdf") else out
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.parent / f"{stem.name}.png", stem.parent / f"{stem.name}.pdf"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight", metadata={"CreationDate": None})
    return paths


def plot_accuracy_vs_flops(frame: pd.DataFrame, out: str | Path, title: str = "", metric: str = "top1") -> list[Path]:
    """Saves ``accuracy_vs_flops_figure`` as PNG and PDF under ``out``; returns the paths."""
    return save_figure(accuracy_vs_flops_figure(frame, title, metric), out)


def accuracy_vs_flops_figure(frame: pd.DataFrame, title: str = "", metric: str = "top1") -> Figure:
    """Top-1 (mean ± std over seeds) against GFLOPs per row; marker area proportional to Param.

    Args:
        frame: ``reports.results.results_frame`` (columns ``label``, ``flops_mean``, ``params_mean``,
            ``{metric}_mean``, ``{metric}_std``); rows lacking a value are listed under the plot.
        title: the figure title.
        metric: the accuracy column to plot.
    """
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.add_subplot()
    ok = frame[["flops_mean", f"{metric}_mean"]].notna().all(axis=1)
    shown, skipped = frame[ok], frame.loc[~ok, "label"].tolist()
    if not shown.empty:
        gflops, params_m = shown["flops_mean"] / 1e9, shown["params_mean"] / 1e6
        std = shown[f"{metric}_std"].fillna(0.0)
        ax.scatter(gflops, shown[f"{metric}_mean"], s=_areas(params_m), alpha=0.6, edgecolors="k", zorder=2)
        ax.errorbar(gflops, shown[f"{metric}_mean"], yerr=std, fmt="none", ecolor="0.2", capsize=3, zorder=3)
        stacked = _stack_positions(gflops.to_numpy(), shown[f"{metric}_mean"].to_numpy())
        for x, y, label, p, k in zip(gflops, shown[f"{metric}_mean"], shown["label"], params_m, stacked, strict=True):
            text = f"{label} ({p:.1f}M)" if np.isfinite(p) else label
            ax.annotate(text, (x, y), xytext=(6, 6 + 11 * k), textcoords="offset points", fontsize=8)
        _size_legend(ax, params_m)
        ax.margins(x=0.25, y=0.25)
    ax.set_xlabel("GFLOPs (multiply-accumulates per clip)")
    ax.set_ylabel(f"{metric.capitalize()} (%)")
    ax.set_title(title or f"{metric.capitalize()} against GFLOPs (marker area ∝ Param)")
    ax.grid(alpha=0.3)
    if skipped:
        fig.text(0.01, -0.02, "Not plotted (no finished run or no FLOPs): " + ", ".join(skipped), fontsize=8, va="top")
    return fig


def _stack_positions(x: np.ndarray, y: np.ndarray) -> list[int]:
    """For each point, how many earlier points sit at the same place (to 3 significant digits): its label goes
    that many lines up, so rows with identical GFLOPs and accuracy do not print over each other."""
    seen: dict[tuple[float, float], int] = {}
    out = []
    for key in zip(np.round(x, 2), np.round(y, 1), strict=True):
        out.append(seen.get(key, 0))
        seen[key] = out[-1] + 1
    return out


def plot_class_improvements(
    class_names: list[str] | tuple[str, ...],
    row_accuracy: np.ndarray,
    baseline_accuracy: np.ndarray,
    out: str | Path,
    row_label: str,
    baseline_label: str,
    top: int = 5,
) -> list[Path]:
    """Saves ``class_improvements_figure`` as PNG and PDF under ``out``; returns the paths."""
    fig = class_improvements_figure(class_names, row_accuracy, baseline_accuracy, row_label, baseline_label, top)
    return save_figure(fig, out)


def most_improved_classes(row_accuracy: np.ndarray, baseline_accuracy: np.ndarray, top: int = 5) -> list[int]:
    """Indices of the ``top`` classes with the largest gain row - baseline, largest first (ties: lower index).

    Classes where either accuracy is NaN (no videos) come last.
    """
    gain = np.asarray(row_accuracy, float) - np.asarray(baseline_accuracy, float)
    gain = np.where(np.isnan(gain), -np.inf, gain)
    return [int(k) for k in np.argsort(-gain, kind="stable")[:top]]


def class_improvements_figure(
    class_names: list[str] | tuple[str, ...],
    row_accuracy: np.ndarray,
    baseline_accuracy: np.ndarray,
    row_label: str,
    baseline_label: str,
    top: int = 5,
) -> Figure:
    """The ``top`` classes a row improves most over the baseline: per-class accuracy of both, as bars.

    Args:
        class_names: the K class names.
        row_accuracy: (K,) per-class top-1 accuracy of the row in percent (mean over seeds).
        baseline_accuracy: (K,) per-class top-1 accuracy of the baseline in percent.
        row_label: the row's printed name.
        baseline_label: the baseline's printed name.
        top: how many classes to show.
    """
    row_accuracy, baseline_accuracy = np.asarray(row_accuracy, float), np.asarray(baseline_accuracy, float)
    if not (len(class_names) == len(row_accuracy) == len(baseline_accuracy)):
        raise ValueError("class_names, row_accuracy and baseline_accuracy must have the same length")
    gain = row_accuracy - baseline_accuracy
    order = most_improved_classes(row_accuracy, baseline_accuracy, top)[::-1]  # largest gain at the top
    y = np.arange(len(order))
    fig = Figure(figsize=(7.0, 0.7 * len(order) + 1.4), layout="constrained")
    ax = fig.add_subplot()
    ax.barh(y + 0.2, baseline_accuracy[order], height=0.4, color="0.7", label=baseline_label)
    ax.barh(y - 0.2, row_accuracy[order], height=0.4, color="#4c72b0", label=row_label)
    for yi, k in zip(y, order, strict=True):
        ax.text(row_accuracy[k] + 1, yi - 0.2, f"{gain[k]:+.1f}", va="center", fontsize=8)
    ax.set_yticks(y, [textwrap.fill(class_names[k], 40) for k in order], fontsize=8)
    ax.set_xlabel("Per-class top-1 accuracy (%)")
    ax.set_xlim(0, 110)
    ax.set_title(f"Classes most improved by {row_label} over {baseline_label}")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def plot_kernel_weights(
    weights: dict[str, dict[str, np.ndarray]],
    out: str | Path,
    spatial_kernels: tuple[int, ...] = (1, 3, 5),
    temporal_kernels: tuple[int, ...] = (1, 3, 5),
) -> list[Path]:
    """Saves ``kernel_weights_figure`` as PNG and PDF under ``out``; returns the paths.

    Args:
        weights: see ``kernel_weights_figure``.
        out: output path without suffix.
        spatial_kernels: the spatial kernel sizes, in the order of the arrays.
        temporal_kernels: the temporal kernel sizes, in the order of the arrays.
    """
    return save_figure(kernel_weights_figure(weights, spatial_kernels, temporal_kernels), out)


def kernel_weights_figure(
    weights: dict[str, dict[str, np.ndarray]],
    spatial_kernels: tuple[int, ...] = (1, 3, 5),
    temporal_kernels: tuple[int, ...] = (1, 3, 5),
) -> Figure:
    """The EAB's kernel weights (the paper's Fig. 10) for video variants, as grouped bars.

    Each kernel's weight is the sum of the fusion matrix M's entries connected to it (computed in ``ean``).

    Args:
        weights: video variant name (``"anchor"``, ``"zoom_1.6x"``, ``"fps_2x"``) -> ``{"spatial": (3,)
            weights of the 1x1, 3x3, 5x5 kernels, "temporal": (3,) weights of the kernels 1, 3, 5}``.
        spatial_kernels: the spatial kernel sizes, in the order of the arrays.
        temporal_kernels: the temporal kernel sizes, in the order of the arrays.

    Returns:
        A figure with two panels (spatial, temporal); in each, one bar series per variant, in dict order.

    Raises:
        ValueError: no variants, a missing axis, or an array of the wrong length.
    """
    _check_weights(weights, {"spatial": len(spatial_kernels), "temporal": len(temporal_kernels)})
    fig = Figure(figsize=(8.0, 3.4), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    panels = (("spatial", "S", spatial_kernels), ("temporal", "T", temporal_kernels))
    width = 0.8 / len(weights)
    for ax, (axis, prefix, kernels) in zip(axes, panels, strict=True):
        x = np.arange(len(kernels))
        for i, (variant, w) in enumerate(weights.items()):
            offset = (i - (len(weights) - 1) / 2) * width
            ax.bar(x + offset, np.asarray(w[axis], float), width, color=_variant_color(variant, i), label=variant)
        ax.set_xticks(x, [f"{prefix}-{k}" for k in kernels])
        ax.set_title(f"{axis.capitalize()} kernels")
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("Kernel weight (sum of M entries)")
    axes[1].legend(fontsize=8)
    fig.suptitle("EAB kernel weights by video variant")
    return fig


def _check_weights(weights: dict, lengths: dict[str, int]) -> None:
    if not weights:
        raise ValueError("weights has no video variants")
    for variant, w in weights.items():
        for axis, n in lengths.items():
            if axis not in w:
                raise ValueError(f"weights[{variant!r}] lacks {axis!r}; expected keys {sorted(lengths)}")
            if np.asarray(w[axis]).shape != (n,):
                raise ValueError(f"weights[{variant!r}][{axis!r}] has shape {np.shape(w[axis])}, expected ({n},)")


def _variant_color(variant: str, index: int) -> str:
    for prefix, color in VARIANT_COLORS.items():
        if variant.startswith(prefix):
            return color
    return _OTHER_COLORS[index % len(_OTHER_COLORS)]


def _areas(params_m: pd.Series) -> np.ndarray:
    """Marker areas (points^2) proportional to Param: 400 for the largest model; 100 where Param is unknown."""
    values = params_m.to_numpy(float)
    largest = np.nanmax(values) if np.isfinite(values).any() else 1.0
    return np.where(np.isfinite(values), 400.0 * values / (largest if largest > 0 else 1.0), 100.0)


def _size_legend(ax, params_m: pd.Series) -> None:
    if params_m.isna().all():
        return
    largest = float(params_m.max())
    for p in sorted({round(float(params_m.min()), 1), round(largest, 1)}):
        area = 400.0 * p / largest if largest > 0 else 0.0
        ax.scatter([], [], s=area, color="C0", alpha=0.4, edgecolors="k", label=f"{p:.1f}M params")
    ax.legend(loc="lower right", fontsize=8, labelspacing=1.5, borderpad=1.0)
