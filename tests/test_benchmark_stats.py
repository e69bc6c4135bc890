"""The statistics ``benchmarks/model_step.py`` prints: paired per-round ratios and the median's interval."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "model_step.py"


@pytest.fixture(scope="module")
def model_step():
    spec = importlib.util.spec_from_file_location("model_step", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("n", "ranks"), [(5, None), (6, (1, 6)), (9, (2, 8)), (15, (4, 12)), (20, (6, 15))])
def test_median_interval_is_the_order_statistics_of_the_binomial_table(model_step, n, ranks):
    values = [10.0 * i for i in range(n, 0, -1)]  # unsorted on purpose
    bounds = model_step.median_interval(values)
    assert bounds == (None if ranks is None else (10.0 * ranks[0], 10.0 * ranks[1]))


@pytest.mark.parametrize("n", [6, 10, 15, 20, 31])
def test_median_interval_covers_at_least_95_percent(model_step, n):
    bounds = model_step.median_interval([float(i) for i in range(1, n + 1)])
    k = int(bounds[0])
    below = sum(math.comb(n, j) for j in range(k)) / 2**n  # P(the median lies below the k-th smallest)
    assert 2 * below <= 0.05
    assert 2 * (below + math.comb(n, k) / 2**n) > 0.05  # the narrowest such interval


def test_paired_ratios_divide_by_the_reference_of_the_same_round(model_step):
    times = {"ref": [2.0, 4.0, 3.0], "model": [3.0, 4.0, 6.0]}
    assert model_step.paired_ratios(times) == {"ref": [1.0, 1.0, 1.0], "model": [1.5, 1.0, 2.0]}
