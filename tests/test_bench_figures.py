"""The figures `bench/scale.py` prints about a burst's deliveries, from their instants."""

from __future__ import annotations

import pytest

from bench.scale import busiest, middle_rate


def test_the_middle_rate_leaves_out_the_ramp_and_the_tail() -> None:
    # A slow ramp (one a second for 10 s), then 10 a second for 80 s, then a slow tail.
    ramp = [float(s) for s in range(10)]
    drain = [10.0 + n / 10 for n in range(800)]
    tail = [90.0 + s for s in range(10)]
    instants = ramp + drain + tail
    assert middle_rate(instants) == pytest.approx(10.0, rel=0.01)
    assert len(instants) / (instants[-1] - instants[0]) < 9.0, "the mean is pulled down"
    assert busiest(instants) == 10
    assert middle_rate([]) == 0.0 and middle_rate([1.0]) == 0.0
