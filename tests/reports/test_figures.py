"""Figures: what they draw (checked on the Figure objects) and that PNG and PDF files are written."""

from __future__ import annotations

import matplotlib.colors
import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from reports.figures import (
    VARIANT_COLORS,
    accuracy_vs_flops_figure,
    class_improvements_figure,
    kernel_weights_figure,
    most_improved_classes,
    plot_kernel_weights,
)

WEIGHTS = {
    "anchor": {"spatial": np.array([0.9, 1.2, 0.9]), "temporal": np.array([0.8, 1.3, 0.9])},
    "zoom_1.6x": {"spatial": np.array([1.5, 1.0, 0.5]), "temporal": np.array([0.8, 1.2, 1.0])},
    "fps_2x": {"spatial": np.array([0.9, 1.1, 1.0]), "temporal": np.array([1.6, 0.9, 0.5])},
}


def bar_heights(ax) -> list[float]:
    return [round(p.get_height(), 6) for p in ax.patches]


def test_kernel_weights_draw_each_variant_on_both_axes():
    fig = kernel_weights_figure(WEIGHTS)
    spatial, temporal = fig.axes
    assert [t.get_text() for t in spatial.get_xticklabels()] == ["S-1", "S-3", "S-5"]
    assert [t.get_text() for t in temporal.get_xticklabels()] == ["T-1", "T-3", "T-5"]
    assert bar_heights(spatial) == [h for w in WEIGHTS.values() for h in w["spatial"].tolist()]
    assert bar_heights(temporal) == [h for w in WEIGHTS.values() for h in w["temporal"].tolist()]
    colors = [matplotlib.colors.to_hex(spatial.patches[i * 3].get_facecolor()) for i in range(3)]
    assert colors == [VARIANT_COLORS["anchor"], VARIANT_COLORS["zoom"], VARIANT_COLORS["fps"]]
    assert [t.get_text() for t in temporal.get_legend().get_texts()] == list(WEIGHTS)


def test_plot_kernel_weights_writes_png_and_pdf(tmp_path):
    png, pdf = plot_kernel_weights(WEIGHTS, tmp_path / "fig10")
    assert png.name == "fig10.png" and pdf.name == "fig10.pdf"
    image = matplotlib.image.imread(png)
    assert image.shape[0] > 300 and image.shape[1] > 800 and image.std() > 0.05  # not blank
    assert pdf.read_bytes().startswith(b"%PDF")


@pytest.mark.parametrize(
    "weights, message",
    [
        ({}, "no video variants"),
        ({"anchor": {"spatial": np.ones(3)}}, "lacks 'temporal'"),
        ({"anchor": {"spatial": np.ones(2), "temporal": np.ones(3)}}, r"shape \(2,\), expected \(3,\)"),
    ],
)
def test_kernel_weights_reject_bad_input(weights, message):
    with pytest.raises(ValueError, match=message):
        kernel_weights_figure(weights)


def test_most_improved_classes_orders_by_gain_and_puts_nan_last():
    row = np.array([50.0, 80.0, np.nan, 70.0, 60.0])
    base = np.array([40.0, 50.0, 10.0, 60.0, 60.0])
    assert most_improved_classes(row, base, top=5) == [1, 0, 3, 4, 2]
    assert most_improved_classes(row, base, top=2) == [1, 0]


def test_class_improvements_show_the_top_classes_largest_first():
    names = ["c0", "c1", "c2", "c3", "c4", "c5"]
    row, base = np.array([60, 70, 40, 30, 90, 55.0]), np.array([60, 30, 40, 10, 70, 50.0])
    fig = class_improvements_figure(names, row, base, "+EAB", "Only SOI-Tr", top=3)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[::-1] == ["c1", "c3", "c4"]  # drawn bottom-up: the largest gain is on top
    assert [t.get_text() for t in ax.texts][::-1] == ["+40.0", "+20.0", "+20.0"]
    with pytest.raises(ValueError, match="same length"):
        class_improvements_figure(names[:2], row, base, "a", "b")


def test_accuracy_vs_flops_plots_finished_rows_with_area_by_params():
    frame = pd.DataFrame(
        {
            "label": ["A", "B", "C"],
            "flops_mean": [33.8e9, 36.1e9, 36.5e9],
            "params_mean": [30e6, 60e6, 31e6],
            "top1_mean": [49.3, 51.9, np.nan],
            "top1_std": [0.2, 0.1, np.nan],
        }
    )
    fig = accuracy_vs_flops_figure(frame)
    ax = fig.axes[0]
    points = ax.collections[0]
    np.testing.assert_allclose(points.get_offsets(), [[33.8, 49.3], [36.1, 51.9]])
    np.testing.assert_allclose(points.get_sizes(), [200.0, 400.0])  # area proportional to params
    assert [t.get_text() for t in ax.texts] == ["A (30.0M)", "B (60.0M)"]
    assert "Not plotted (no finished run or no FLOPs): C" in [t.get_text() for t in fig.texts]


def test_accuracy_vs_flops_stacks_the_labels_of_points_at_the_same_place():
    frame = pd.DataFrame(
        {
            "label": ["S", "L", "X"],
            "flops_mean": [1.0e9, 1.0e9, 2.0e9],
            "params_mean": [11e6, 11e6, 12e6],
            "top1_mean": [20.0, 20.0, 20.0],
            "top1_std": [0.0, 0.0, 0.0],
        }
    )
    ax = accuracy_vs_flops_figure(frame).axes[0]
    offsets = [t.xyann for t in ax.texts]
    assert offsets == [(6, 6), (6, 17), (6, 6)]


def test_accuracy_vs_flops_without_params_uses_a_fixed_marker():
    frame = pd.DataFrame(
        {"label": ["A"], "flops_mean": [33.8e9], "params_mean": [np.nan], "top1_mean": [49.3], "top1_std": [0.2]}
    )
    ax = accuracy_vs_flops_figure(frame).axes[0]
    np.testing.assert_allclose(ax.collections[0].get_sizes(), [100.0])
    assert [t.get_text() for t in ax.texts] == ["A"]


def test_report_figures_are_written_from_the_fixture_store(fixture_report):
    report, out = fixture_report
    figures = sorted(p.name for p in (out / "figures").iterdir() if not p.name.startswith("."))  # not the manifest
    stems = ["top1_vs_gflops"] + [f"classes_{r}" for r in ("s_block", "l_block", "incep_block", "eab")]
    assert figures == sorted(f"fixture_blocks_{stem}.{e}" for stem in stems for e in ("png", "pdf"))
    assert report.warnings == ["no per-class figure for 'dead_block': no finished run with scores of its classes"]
