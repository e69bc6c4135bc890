"""Figures of a study (matplotlib, each saved as PNG and PDF).

- ``plot_accuracy_vs_flops``: top-1 against GFLOPs of the rows, marker area proportional to Param.
- ``plot_class_improvements``: the classes a row improves most over the baseline (the paper's Fig. 6).
- ``plot_kernel_weights``: the EAB's kernel weights for a video and its zoomed and resampled versions
  (the paper's Fig. 10); the weights are computed elsewhere (``ean``), this only draws them.
- ``saliency_figure``: the SOI-Tr's saliency maps O over a clip's frames and its attention weights (Fig. 7).
- ``features_figure``: two networks' feature maps over a clip's frames and their per-frame score of the
  true class (Fig. 9).

Figures are built with ``matplotlib.figure.Figure`` (no pyplot), so no global state or display is used; they
are drawn with the Agg canvas, and PDFs embed their fonts as TrueType (``pdf.fonttype`` 42, no Type 3 fonts).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ean.files_write import atomic_path

#: Colours of the video variants of Fig. 10 (the paper: anchor gray, spatial green, temporal brown).
VARIANT_COLORS = {"anchor": "#8c8c8c", "zoom": "#4a9a4a", "fps": "#8b5a2b"}
_OTHER_COLORS = ("#4c72b0", "#dd8452", "#c44e52", "#8172b3")
#: Settings every figure file is written with: TrueType fonts in PDF and PS (42), not Type 3 (3).
SAVE_RC = {"pdf.fonttype": 42, "ps.fonttype": 42}


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
    FigureCanvasAgg(fig)  # the Agg canvas, whatever backend pyplot would pick
    with matplotlib.rc_context(SAVE_RC), atomic_path(paths[0]) as png, atomic_path(paths[1]) as pdf:
        fig.savefig(png, dpi=150, bbox_inches="tight")
        fig.savefig(pdf, bbox_inches="tight", metadata={"CreationDate": None})
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
    matrix: str = "M",
    title: str = "",
) -> list[Path]:
    """Saves ``kernel_weights_figure`` as PNG and PDF under ``out``; returns the paths.

    Args:
        weights, spatial_kernels, temporal_kernels, matrix, title: see ``kernel_weights_figure``.
        out: output path without suffix.
    """
    return save_figure(kernel_weights_figure(weights, spatial_kernels, temporal_kernels, matrix, title), out)


def kernel_weights_figure(
    weights: dict[str, dict[str, np.ndarray]],
    spatial_kernels: tuple[int, ...] = (1, 3, 5),
    temporal_kernels: tuple[int, ...] = (1, 3, 5),
    matrix: str = "M",
    title: str = "",
) -> Figure:
    """The EAB's kernel weights (the paper's Fig. 10) for video variants, as grouped bars.

    Each kernel's weight is the sum of the fusion matrix M's entries connected to it (computed in ``ean``).

    Args:
        weights: video variant name (``"anchor"``, ``"zoom_1.6x"``, ``"fps_2x"``) -> ``{"spatial": (3,)
            weights of the 1x1, 3x3, 5x5 kernels, "temporal": (3,) weights of the kernels 1, 3, 5}``.
        spatial_kernels: the spatial kernel sizes, in the order of the arrays.
        temporal_kernels: the temporal kernel sizes, in the order of the arrays.
        matrix: how the summed matrix is named in the axis label (``"M"``, or ``"M − I"`` for its learned part).
        title: the figure title (default: "EAB kernel weights by video variant").

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
        ax.axhline(0.0, color="0.3", linewidth=0.8)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(f"Kernel weight (sum of {matrix} entries)")
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))  # outside: never over a bar
    fig.suptitle(title or "EAB kernel weights by video variant")
    return fig


def saliency_figure(
    frames: np.ndarray,
    saliency: np.ndarray,
    attention: np.ndarray,
    focus: int,
    anchor_frame: int,
    title: str = "",
) -> Figure:
    """The SOI-Tr's saliency maps and attention weights for one clip (the paper's Fig. 7).

    Tokens are ordered frame-major: token ``t * R + r`` is object ``r`` of frame ``t``.

    Args:
        frames: (T, S, S, 3) uint8, the frames the network saw.
        saliency: (T, R, h, w), the saliency map O of each object in each frame (each map sums to 1).
        attention: (T*R, T*R), attention weights (rows: queries, each summing to 1).
        focus: the object whose tokens the bar panel follows (the most concentrated one).
        anchor_frame: the frame of the anchor token (``anchor_frame * R + focus``) whose attention vector
            alpha over every token the bar panel shows.
        title: the figure title.

    Returns:
        A figure: R rows x T columns of frames with each object's saliency map as a heat map over it; below,
        the attention matrix and the anchor token's attention vector as bars (coloured by object).

    Raises:
        ValueError: inconsistent shapes.
    """
    frames, saliency, attention = np.asarray(frames), np.asarray(saliency, float), np.asarray(attention, float)
    if saliency.ndim != 4 or frames.shape[0] != saliency.shape[0]:
        raise ValueError(f"saliency must be (T, R, h, w) for T = {frames.shape[0]} frames, got {saliency.shape}")
    t, r = saliency.shape[:2]
    if attention.shape != (t * r, t * r):
        raise ValueError(f"attention has shape {attention.shape}, expected ({t * r}, {t * r}) for T={t}, R={r}")
    if not (0 <= focus < r and 0 <= anchor_frame < t):
        raise ValueError(f"focus {focus} / anchor_frame {anchor_frame} outside R={r} / T={t}")
    fig = Figure(figsize=(max(8.0, 1.25 * t + 1.5), 1.25 * r + 3.6), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.25 * r, 3.2])
    grid = np.atleast_2d(top.subplots(r, t, squeeze=False))
    low, high = float(saliency.min()), float(saliency.max())  # one scale for every map, labelled on its bar
    high = high if high > low else low + 1e-6
    for k in range(r):
        for j in range(t):
            ax = grid[k, j]
            image = _heat_over_frame(ax, frames[j], saliency[j, k], low, high, "inferno")
            if k == 0:
                ax.set_title(f"frame {j + 1}" + (" (anchor)" if j == anchor_frame else ""), fontsize=8)
        label = f"object {k + 1}" + ("\n(most\nconcentrated)" if k == focus else "")
        grid[k, 0].set_ylabel(label, fontsize=8)
    h, w = saliency.shape[2:]
    bar_label = f"saliency O (uniform: 1/(h·w) = {1 / (h * w):.3g})"
    top.colorbar(image, ax=grid.ravel().tolist(), shrink=0.8, label=bar_label)
    top.suptitle(f"Saliency maps O (Saliency-Net, {h}×{w} positions) over the frames", fontsize=10)
    matrix_ax, bars_ax = bottom.subplots(1, 2, width_ratios=[1, 2])
    shown = matrix_ax.imshow(attention, cmap="viridis", interpolation="nearest")
    ticks = np.arange(t) * r + (r - 1) / 2
    matrix_ax.set_xticks(ticks, [str(j + 1) for j in range(t)], fontsize=7)
    matrix_ax.set_yticks(ticks, [str(j + 1) for j in range(t)], fontsize=7)
    for edge in np.arange(1, t) * r - 0.5:
        matrix_ax.axhline(edge, color="w", linewidth=0.4)
        matrix_ax.axvline(edge, color="w", linewidth=0.4)
    matrix_ax.set_xlabel("key token (by frame)", fontsize=8)
    matrix_ax.set_ylabel("query token (by frame)", fontsize=8)
    matrix_ax.set_title("Attention, mean over heads", fontsize=9)
    cax = matrix_ax.inset_axes([1.05, 0.0, 0.06, 1.0])
    colorbar = bottom.colorbar(shown, cax=cax)
    colorbar.set_label(f"uniform: 1/(T·R) = {1 / (t * r):.3g}", fontsize=7)
    colorbar.ax.tick_params(labelsize=7)
    anchor = anchor_frame * r + focus
    alpha = attention[anchor]
    x = np.arange(t * r)
    colors = [_OTHER_COLORS[i % r % len(_OTHER_COLORS)] for i in x]
    bars_ax.bar(x, alpha, color=colors, width=0.85)
    bars_ax.bar([anchor], [alpha[anchor]], color="none", edgecolor="k", linewidth=1.2, width=0.85)
    handles = [Patch(color=_OTHER_COLORS[k % len(_OTHER_COLORS)], label=f"object {k + 1}") for k in range(r)]
    uniform = bars_ax.axhline(1.0 / (t * r), color="k", linestyle=":", linewidth=1, label="uniform 1/(T·R)")
    bars_ax.set_xticks(ticks, [str(j + 1) for j in range(t)], fontsize=7)
    for edge in np.arange(1, t) * r - 0.5:
        bars_ax.axvline(edge, color="0.8", linewidth=0.6)
    bars_ax.set_xlabel("frame of the key token", fontsize=8)
    bars_ax.set_ylabel("attention α", fontsize=8)
    bars_ax.set_title(f"Attention vector α of object {focus + 1} in frame {anchor_frame + 1} (outlined)", fontsize=9)
    bars_ax.legend(handles=[*handles, uniform], fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    bars_ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def features_figure(
    frames: np.ndarray,
    maps: dict[str, np.ndarray],
    scores: dict[str, np.ndarray],
    clip_scores: dict[str, float],
    class_name: str,
    stage: int = 4,
    title: str = "",
) -> Figure:
    """Networks' feature maps over a clip's frames and their per-frame score of the true class (Fig. 9).

    Args:
        frames: (T, S, S, 3) uint8, the frames.
        maps: network label -> (T, h, w) map drawn over each frame (each network on its own colour scale).
        scores: network label -> (T,) per-frame probability of the true class.
        clip_scores: network label -> the clip's probability of the true class (drawn dashed).
        class_name: the true class.
        stage: the stage the maps come from (for the labels).
        title: the figure title.

    Raises:
        ValueError: no networks, or maps or scores of other lengths than the frames.
    """
    frames = np.asarray(frames)
    t = frames.shape[0]
    if not maps or set(maps) != set(scores):
        raise ValueError("maps and scores must name the same networks (at least one)")
    for label in maps:
        if np.asarray(maps[label]).ndim != 3 or len(maps[label]) != t or np.shape(scores[label]) != (t,):
            raise ValueError(
                f"{label}: maps must be (T, h, w) and scores (T,) for T = {t}, got {np.shape(maps[label])} "
                f"and {np.shape(scores[label])}"
            )
    n = len(maps)
    fig = Figure(figsize=(max(8.0, 1.3 * t + 1.5), 1.3 * (n + 1) + 3.0), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.3 * (n + 1), 2.8])
    grid = top.subplots(n + 1, t, squeeze=False)
    for j in range(t):
        grid[0, j].imshow(frames[j])
        grid[0, j].set_title(f"frame {j + 1}", fontsize=8)
        grid[0, j].set_axis_off()
    grid[0, 0].set_axis_on()
    grid[0, 0].set_xticks([])
    grid[0, 0].set_yticks([])
    grid[0, 0].set_ylabel("input", fontsize=8)
    for i, (label, values) in enumerate(maps.items(), start=1):
        values = np.asarray(values, float)
        low, high = float(values.min()), float(values.max())
        for j in range(t):
            image = _heat_over_frame(grid[i, j], frames[j], values[j], low, high if high > low else low + 1, "jet")
        grid[i, 0].set_ylabel(textwrap.fill(label, 14), fontsize=8)
        cax = grid[i, -1].inset_axes([1.06, 0.0, 0.06, 1.0])  # beside the row: the rows stay aligned
        top.colorbar(image, cax=cax, label="channel mean")
    grids = "; ".join(dict.fromkeys(f"{np.shape(v)[1]}×{np.shape(v)[2]}" for v in maps.values()))
    top.suptitle(
        f"Stage-{stage} features ({grids} positions): mean over channels per position (each network on its own scale)",
        fontsize=10,
    )
    ax = bottom.subplots()
    x = np.arange(1, t + 1)
    for i, label in enumerate(scores):
        color = _OTHER_COLORS[i % len(_OTHER_COLORS)]
        ax.plot(x, np.asarray(scores[label], float), marker="o", color=color, label=f"{label} (frame)")
        if label in clip_scores:
            ax.axhline(clip_scores[label], color=color, linestyle="--", linewidth=1, label=f"{label} (clip)")
    ax.set_xticks(x)
    ax.set_xlabel("frame")
    ax.set_ylabel(textwrap.fill(f"P({class_name})", 40), fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_title(textwrap.fill(f"Per-frame score of the true class: {class_name}", 90), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def _heat_over_frame(ax, frame: np.ndarray, heat: np.ndarray, vmin: float, vmax: float, cmap: str):
    """Draws ``frame`` (S, S', 3) with ``heat`` (h, w) stretched over it, half transparent; returns the heat
    image (for a colour bar)."""
    height, width = frame.shape[:2]
    ax.imshow(frame)
    image = ax.imshow(
        heat,
        cmap=cmap,
        alpha=0.55,
        vmin=vmin,
        vmax=vmax,
        extent=(-0.5, width - 0.5, height - 0.5, -0.5),
        interpolation="bilinear",
    )
    ax.set_xticks([])
    ax.set_yticks([])
    return image


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
