"""How long to wait before the next attempt of a failed task."""

from __future__ import annotations

import random

from controlplane.domain.durations import parse_duration
from controlplane.domain.fields import ConstantRetry, ExponentialRetry, RandomRetry

RetryPolicy = ConstantRetry | ExponentialRetry | RandomRetry


def max_attempts(policy: RetryPolicy | None) -> int:
    """Total attempts allowed (the first one included)."""
    if policy is None:
        return 1
    return policy.maxAttempts or 1


def delay_before(policy: RetryPolicy, attempt: int) -> float:
    """Seconds to wait before attempt ``attempt + 1``."""
    if isinstance(policy, ConstantRetry):
        return parse_duration(policy.interval).total_seconds()
    if isinstance(policy, ExponentialRetry):
        base = parse_duration(policy.interval).total_seconds()
        cap = parse_duration(policy.maxInterval).total_seconds()
        return float(min(cap, base * (policy.delayFactor or 2.0) ** (attempt - 1)))
    low = parse_duration(policy.minInterval).total_seconds()
    high = parse_duration(policy.maxInterval).total_seconds()
    return random.uniform(low, high)  # noqa: S311 - jitter, not cryptography
