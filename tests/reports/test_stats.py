"""Statistics over seeds: summaries, Student-t quantiles and paired differences with 95% intervals."""

from __future__ import annotations

import math

import pytest

from reports.stats import paired_difference, summarize, t_quantile_975


def test_summarize_mean_sample_std_and_count_ignoring_nan():
    s = summarize([49.1, 49.4, float("nan"), 49.4])
    assert s.n == 3
    assert s.mean == pytest.approx(49.3)
    assert s.std == pytest.approx(math.sqrt(0.03))  # ddof = 1
    one = summarize([50.0])
    assert one.n == 1 and one.mean == 50.0 and math.isnan(one.std)
    empty = summarize([])
    assert empty.n == 0 and math.isnan(empty.mean)


@pytest.mark.parametrize("df, expected", [(1, 12.706), (2, 4.303), (4, 2.776), (30, 2.042), (60, 2.000), (120, 1.980)])
def test_t_quantiles_match_tables(df, expected):
    assert t_quantile_975(df) == pytest.approx(expected, abs=1e-3)


def test_t_quantiles_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    for df in [*range(1, 40), 50, 100, 1000]:
        assert t_quantile_975(df) == pytest.approx(stats.t.ppf(0.975, df), abs=2e-5)


def test_t_quantile_rejects_zero_degrees_of_freedom():
    with pytest.raises(ValueError):
        t_quantile_975(0)


def test_paired_difference_uses_shared_seeds_and_a_t_interval():
    base = {0: 49.1, 1: 49.4, 2: 49.4}
    row = {0: 51.7, 1: 52.1, 2: 51.9, 7: 99.0}  # seed 7 has no partner: ignored
    d = paired_difference(row, base)
    assert d.seeds == (0, 1, 2) and d.n == 3
    assert d.mean == pytest.approx(2.6)
    half = 4.302653 * 0.1 / math.sqrt(3)
    assert (d.low, d.high) == (pytest.approx(2.6 - half), pytest.approx(2.6 + half))
    assert d.excludes_zero


def test_interval_that_contains_zero_is_not_marked():
    d = paired_difference({0: 49.3, 1: 49.8, 2: 49.5}, {0: 49.1, 1: 49.4, 2: 49.4})
    assert d.low < 0 < d.high and not d.excludes_zero


def test_pairing_removes_the_seed_effect():
    # Seeds shift both rows alike: unpaired the spread is large, paired the difference is exact.
    base = {0: 40.0, 1: 50.0, 2: 60.0}
    row = {s: v + 1.0 for s, v in base.items()}
    d = paired_difference(row, base)
    assert d.mean == pytest.approx(1.0) and d.low == pytest.approx(1.0) and d.excludes_zero


def test_negative_difference_excluding_zero():
    d = paired_difference({0: 40.0, 1: 41.0, 2: 40.5}, {0: 45.0, 1: 45.5, 2: 45.2})
    assert d.high < 0 and d.excludes_zero


def test_fewer_than_two_shared_seeds_have_no_interval():
    one = paired_difference({0: 50.0, 1: 51.0}, {0: 49.0, 2: 48.0})
    assert one.n == 1 and one.mean == pytest.approx(1.0) and math.isnan(one.low) and not one.excludes_zero
    none = paired_difference({0: 50.0}, {1: 49.0})
    assert none.n == 0 and math.isnan(none.mean) and not none.excludes_zero
    nan = paired_difference({0: float("nan"), 1: 50.0}, {0: 49.0, 1: 49.0})
    assert nan.seeds == (1,)
