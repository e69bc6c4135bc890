"""Statistics over seeds: mean, standard deviation and count; paired differences with a 95% t-interval.

A row and the baseline are compared on the seeds both finished: the difference of each shared seed,
then the mean difference with a two-sided 95% Student-t interval (n - 1 degrees of freedom). Pairing by
seed removes the variation the seed causes in both rows alike (data order, initialisation).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Two-sided 95% quantiles of Student's t (t_{0.975, df}) for df = 1..30.
_T975 = (
    12.706205,
    4.302653,
    3.182446,
    2.776445,
    2.570582,
    2.446912,
    2.364624,
    2.306004,
    2.262157,
    2.228139,
    2.200985,
    2.178813,
    2.160369,
    2.144787,
    2.131450,
    2.119905,
    2.109816,
    2.100922,
    2.093024,
    2.085963,
    2.079614,
    2.073873,
    2.068658,
    2.063899,
    2.059539,
    2.055529,
    2.051831,
    2.048407,
    2.045230,
    2.042272,
)
_Z975 = 1.959963984540054


@dataclass(frozen=True)
class Summary:
    """Mean and sample standard deviation (ddof=1; NaN for fewer than 2 values) of ``n`` values."""

    mean: float
    std: float
    n: int


@dataclass(frozen=True)
class PairedDifference:
    """Mean of per-seed differences (row - baseline) with its 95% interval.

    Attributes:
        mean: the mean difference (NaN when no seed is shared).
        low: lower end of the 95% interval (NaN for fewer than 2 shared seeds).
        high: upper end of the 95% interval (NaN for fewer than 2 shared seeds).
        n: the number of shared seeds.
        seeds: the shared seeds, sorted.
    """

    mean: float
    low: float
    high: float
    n: int
    seeds: tuple[int, ...]

    @property
    def excludes_zero(self) -> bool:
        """Whether the 95% interval lies entirely above or below zero (False without an interval)."""
        return self.n >= 2 and (self.low > 0 or self.high < 0)


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (table to 30, then an expansion).

    Above 30 degrees of freedom the Cornish-Fisher expansion around the normal quantile is used; it is
    accurate to about 1e-5 there.
    """
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


def summarize(values: Iterable[float]) -> Summary:
    """Mean, sample standard deviation and count of the finite values (NaNs are ignored)."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(xs)
    if n == 0:
        return Summary(math.nan, math.nan, 0)
    mean = sum(xs) / n
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else math.nan
    return Summary(mean, std, n)


def paired_difference(row: Mapping[int, float], baseline: Mapping[int, float]) -> PairedDifference:
    """Paired difference row - baseline over the seeds both have a finite value for.

    Args:
        row: metric value by seed for the row.
        baseline: metric value by seed for the baseline.

    Returns:
        The mean difference with a two-sided 95% t-interval over the shared seeds.
    """
    seeds = tuple(sorted(s for s in row if s in baseline and _finite(row[s]) and _finite(baseline[s])))
    diffs = [float(row[s]) - float(baseline[s]) for s in seeds]
    s = summarize(diffs)
    if s.n < 2:
        return PairedDifference(s.mean, math.nan, math.nan, s.n, seeds)
    half = t_quantile_975(s.n - 1) * s.std / math.sqrt(s.n)
    return PairedDifference(s.mean, s.mean - half, s.mean + half, s.n, seeds)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(float(value))
