"""Percentiles read from the totals' completion-time histogram, against the exact ones."""

from __future__ import annotations

import math
import random

import pytest

from db.models import LATENCY_BOUNDS_MS, LATENCY_COLUMNS
from db.totals import latency_bucket
from db.usage_queries import percentile_ms


def percentile_cont(values: list[int], fraction: float) -> float:
    """PostgreSQL's percentile_cont: linear interpolation between the closest ranks."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def within_a_bucket(estimate: float | None, exact: float) -> bool:
    """The README's bound on a percentile read from the totals' histogram.

    Within one bucket's width: 25 % (a hair more between 62 and 98 ms, whose bounds are
    rounded to whole ms), or 50 ms in the first bucket, [0, 50) ms.
    """
    assert estimate is not None
    return abs(estimate - exact) <= max(0.26 * exact, 50)


def histogram(durations: list[int]) -> list[int]:
    counts = [0] * len(LATENCY_COLUMNS)
    for ms in durations:
        counts[latency_bucket(ms)] += 1
    return counts


def test_an_empty_histogram_has_no_percentile() -> None:
    assert percentile_ms([0] * len(LATENCY_COLUMNS), 0.5) is None


def test_linear_within_the_bucket() -> None:
    # Four requests in [1137, 1421): the median is half-way through the bucket.
    assert percentile_ms(histogram([1200] * 4), 0.5) == pytest.approx(1137 + (1421 - 1137) / 2)
    # The first bucket starts at zero.
    assert percentile_ms(histogram([10, 20]), 0.5) == pytest.approx(25)
    # The last has no upper bound: its lower one is all it can say.
    assert percentile_ms(histogram([10**7] * 3), 0.95) == LATENCY_BOUNDS_MS[-1] == 587_747
    # Ranks skip the empty buckets in between.
    assert percentile_ms(histogram([100, 100, 5000, 5000]), 0.95) == pytest.approx(
        4337 + (5421 - 4337) * 1.8 / 2
    )


@pytest.mark.parametrize("seed", range(20))
def test_within_a_bucket_of_the_exact_percentile(seed: int) -> None:
    """Many requests, times spread as model answers are (a long tail), as the README says."""
    rng = random.Random(seed)
    durations = [int(rng.lognormvariate(math.log(2000), 1.2)) for _ in range(2000)]
    durations += [rng.randrange(50) for _ in range(20)]  # a few instant failures
    counts = histogram(durations)
    for fraction in (0.5, 0.95):
        exact = percentile_cont(durations, fraction)
        assert within_a_bucket(percentile_ms(counts, fraction), exact), (fraction, exact)
