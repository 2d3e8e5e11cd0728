"""Champion against challenger: the difference of a figure, its confidence interval
and the test's p-value, from per-arm sums that PostgreSQL computed (counts, sums,
sums of squares and cross products), never from the cases one by one.

- Rates over independent trials (cure rate over cases, right-party-contact rate over
  calls, promise-kept rate over ended promises): the two-proportion z-test (pooled
  standard error for the p-value, unpooled for the interval).
- Means per case (amount recovered per case, days to cure): Welch's t-test, with
  Welch-Satterthwaite degrees of freedom.
- Ratios of sums over cases (recovery rate = recovered / owed, contacts per 1,000
  recovered): the difference of two ratio estimators with delta-method (linearised)
  standard errors, a z-test. The unit of resampling is the case, as the arms are
  assigned per case.

The distributions are scipy's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TWO_PROPORTION = "two-proportion z-test"
WELCH = "Welch's t-test"
RATIO = "difference of ratios, delta-method z-test"


@dataclass(frozen=True)
class Estimate:
    champion: float | None
    challenger: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    test: str
    n_champion: int
    n_challenger: int


def _normal_interval(
    difference: float, se: float, se_null: float, confidence: float
) -> tuple[float, float, float | None]:
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + confidence / 2))
    if se_null > 0:
        p_value: float | None = float(2 * norm.sf(abs(difference) / se_null))
    else:
        p_value = 1.0 if difference == 0 else None
    return difference - z * se, difference + z * se, p_value


def two_proportions(x1: int, n1: int, x2: int, n2: int, confidence: float) -> Estimate:
    """Champion x1 successes of n1, challenger x2 of n2."""
    p1 = x1 / n1 if n1 else None
    p2 = x2 / n2 if n2 else None
    if p1 is None or p2 is None:
        return Estimate(p1, p2, None, None, None, None, TWO_PROPORTION, n1, n2)
    difference = p2 - p1
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    pooled = (x1 + x2) / (n1 + n2)
    se_null = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    low, high, p_value = _normal_interval(difference, se, se_null, confidence)
    return Estimate(p1, p2, difference, low, high, p_value, TWO_PROPORTION, n1, n2)


@dataclass(frozen=True)
class Moments:
    """n values, their sum and their sum of squares."""

    n: int
    total: float
    squares: float

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    @property
    def variance(self) -> float | None:
        """Sample variance (n - 1); None below two values."""
        if self.n < 2:
            return None
        return max(0.0, (self.squares - self.total * self.total / self.n) / (self.n - 1))


def welch(a: Moments, b: Moments, confidence: float) -> Estimate:
    """Mean of champion `a` against challenger `b`."""
    va, vb = a.variance, b.variance
    if a.mean is None or b.mean is None or va is None or vb is None:
        difference = None if a.mean is None or b.mean is None else b.mean - a.mean
        return Estimate(a.mean, b.mean, difference, None, None, None, WELCH, a.n, b.n)
    from scipy.stats import t as student_t

    difference = b.mean - a.mean
    sa, sb = va / a.n, vb / b.n
    se = math.sqrt(sa + sb)
    if se == 0:
        p_value = 1.0 if difference == 0 else None
        return Estimate(
            a.mean, b.mean, difference, difference, difference, p_value, WELCH, a.n, b.n
        )
    df = (sa + sb) ** 2 / (sa * sa / (a.n - 1) + sb * sb / (b.n - 1))
    q = float(student_t.ppf(0.5 + confidence / 2, df))
    p_value = float(2 * student_t.sf(abs(difference) / se, df))
    return Estimate(
        a.mean,
        b.mean,
        difference,
        difference - q * se,
        difference + q * se,
        p_value,
        WELCH,
        a.n,
        b.n,
    )


@dataclass(frozen=True)
class RatioSums:
    """Per case y and x (the ratio is sum y / sum x): n, sums, squares, cross products."""

    n: int
    y: float
    x: float
    yy: float
    xx: float
    xy: float

    @property
    def ratio(self) -> float | None:
        return self.y / self.x if self.x else None

    @property
    def variance(self) -> float | None:
        """Delta-method variance of the ratio: var(y - R x) / (n mean(x)^2)."""
        ratio = self.ratio
        if ratio is None or self.n < 2:
            return None
        residual = self.yy - 2 * ratio * self.xy + ratio * ratio * self.xx
        return max(0.0, residual / (self.n - 1)) * self.n / (self.x * self.x)


def ratios(a: RatioSums, b: RatioSums, confidence: float, scale: float = 1.0) -> Estimate:
    """Ratio of champion `a` against challenger `b`, both multiplied by `scale`."""
    ra, rb = a.ratio, b.ratio
    va, vb = a.variance, b.variance
    if ra is None or rb is None or va is None or vb is None:
        ca = None if ra is None else ra * scale
        cb = None if rb is None else rb * scale
        difference = None if ca is None or cb is None else cb - ca
        return Estimate(ca, cb, difference, None, None, None, RATIO, a.n, b.n)
    difference = (rb - ra) * scale
    se = math.sqrt(va + vb) * scale
    low, high, p_value = _normal_interval(difference, se, se, confidence)
    return Estimate(ra * scale, rb * scale, difference, low, high, p_value, RATIO, a.n, b.n)
