"""The demo study (studies/demo.yaml, issue 17) shows a real effect through the real runner.

Runs the demo as it is (2 rows x seeds 0, 1, 2; about 4 minutes on 2 CPU cores, data generation included) in a
fresh folder and checks the report CSV: the temporal-conv row beats TSN, with the paired 95% interval over the
seeds wholly above zero. Not reduced to 2 seeds: with n = 2 the t-interval's half-width is 12.7 / sqrt(2)
times the spread of the per-seed differences, so even a 30-point gain fails whenever two seeds' gains
differ by 5 points.
"""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from tests.runners.conftest import REPO, run_subprocess

SPEC = REPO / "studies" / "demo.yaml"


@pytest.mark.slow
def test_demo_temporal_conv_beats_tsn(tmp_path):
    seeds = yaml.safe_load(SPEC.read_text())["seeds"]
    args = [str(SPEC), "--mlflow-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--storage", str(tmp_path / "runs")]
    result = run_subprocess(tmp_path, args, timeout=840)  # data/demo and outputs/ land under tmp_path
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    table = pd.read_csv(tmp_path / "outputs" / "reports" / "demo" / "demo.csv").set_index("row")
    tsn, temporal = table.loc["tsn"], table.loc["temporal_conv"]
    shown = table[["top1_mean", "top1_std", "top1_delta", "top1_delta_low", "top1_delta_high"]].to_string()
    assert tsn["seeds_finished"] == temporal["seeds_finished"] == len(seeds), shown
    assert tsn["num_classes"] == temporal["num_classes"] == 4, shown
    assert temporal["top1_mean"] > tsn["top1_mean"], shown
    assert temporal["top1_delta_n"] == len(seeds) and temporal["top1_delta_low"] > 0, shown
