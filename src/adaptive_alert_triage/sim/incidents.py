"""The incident process, alert emission and false-positive noise.

Randomness for one step is one block of uniforms per env, from that env's own
counter-based stream (`rng`), in a fixed layout (`DrawLayout`): every draw has
its own address, so nothing an agent, a renderer or another env does can shift
an env's random stream.
"""

from __future__ import annotations

import math

import numpy as np

from .config import ALERT_TYPES, TaskConfig

N_TYPES = len(ALERT_TYPES)
CPU, MEMORY, DISK, NETWORK, APPLICATION, SECURITY = range(N_TYPES)

#: Root incidents by type: applications and hosts fail most, breaches are rare.
ROOT_TYPE_WEIGHTS = np.array([0.20, 0.18, 0.15, 0.17, 0.22, 0.08])
#: Incidents that cascade down a dependency edge show up as symptoms downstream.
CASCADE_TYPE_WEIGHTS = np.array([0.10, 0.05, 0.0, 0.30, 0.55, 0.0])
#: Flapping monitors are mostly threshold checks on hosts.
NOISE_TYPE_WEIGHTS = np.array([0.28, 0.20, 0.22, 0.12, 0.15, 0.03])
#: A secondary alert of an incident fires on a related signal.
RELATED_TYPE = np.array([APPLICATION, CPU, APPLICATION, APPLICATION, NETWORK, NETWORK])

# Severity and confidence ranges (true severity of a false positive is 0).
CRITICAL_LEVEL = 0.7  # an incident is critical iff its true severity >= this
CRITICAL_SEVERITY = (0.7, 1.0)
CASCADE_SEVERITY = (0.75, 1.0)
MINOR_SEVERITY = (0.15, 0.65)
REAL_CONFIDENCE = (0.45, 1.0)
NOISE_SEVERITY = (0.2, 0.9)
NOISE_CONFIDENCE = (0.15, 0.85)


def _cdf(weights: np.ndarray) -> np.ndarray:
    c = np.cumsum(weights / weights.sum())
    c[-1] = 1.0 + 1e-12  # a uniform of exactly 1.0 still maps inside the range
    return c[:-1]


ROOT_TYPE_CDF = _cdf(ROOT_TYPE_WEIGHTS)
CASCADE_TYPE_CDF = _cdf(CASCADE_TYPE_WEIGHTS)
NOISE_TYPE_CDF = _cdf(NOISE_TYPE_WEIGHTS)


def categorical(u: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    """Map uniforms to category indices through an inner CDF (len = k - 1)."""
    return (u[..., None] >= cdf).sum(-1)


def poisson_cdf(rate: float, cap: int) -> np.ndarray:
    """Inner CDF of a Poisson(rate) truncated at ``cap`` (len = cap)."""
    return np.cumsum([_poisson_pmf(rate, k) for k in range(cap)])


def _poisson_pmf(rate: float, k: int) -> float:
    """P(Poisson(rate) = k). The direct formula wherever it is finite, so every
    CDF it has ever made keeps its bits (and the trajectories their draws);
    where ``rate**k`` or ``k!`` is beyond a float (k >= 171, or a large rate) it
    raises OverflowError, and the log-space form takes over."""
    try:
        return math.exp(-rate) * rate**k / math.factorial(k)
    except OverflowError:
        if rate == 0:
            return 0.0  # k > 0 here: log(0) has no float, the probability is 0
        return math.exp(k * math.log(rate) - rate - math.lgamma(k + 1))


def uniform(u: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    lo, hi = bounds
    return lo + (hi - lo) * u


class DrawLayout:
    """Named slices into one step's block of uniforms."""

    def __init__(self, config: TaskConfig) -> None:
        s, m, q, a = (
            config.n_services,
            config.max_noise_per_step,
            config.queue_capacity,
            config.n_agents,
        )
        sizes = {
            "priority": a,
            "arrive": s,
            "critical": s,
            "severity": s,
            "incident_type": s,
            "emit": s,
            "alert_type": s,
            "confidence": s,
            "self_resolve": s,
            "cascade": s,
            "cascade_delay": s,
            "noise_count": 1,
            "noise_service": m,
            "noise_type": m,
            "noise_severity": m,
            "noise_confidence": m,
            "noise_clear": q,
            "severity_noise": 4 * s,  # four uniforms per normal (rng.normal_from_uniforms)
        }
        start = 0
        self.slices: dict[str, slice] = {}
        for name, size in sizes.items():
            self.slices[name] = slice(start, start + size)
            start += size
        self.n_uniform = start

    def __getitem__(self, name: str) -> slice:
        return self.slices[name]
