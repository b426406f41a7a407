"""Choosing a backend for the core: the numpy reference or its numba twin."""

from __future__ import annotations

from . import fast
from .config import TaskConfig
from .engine import AlertSim

BACKENDS = ("auto", "numpy", "numba")


def make_sim(config: TaskConfig, batch_size: int = 1, backend: str = "auto") -> AlertSim:
    """``"numpy"``: the reference. ``"numba"``: the compiled twin (needs the
    ``[fast]`` extra). ``"auto"``: numba when installed, else numpy. The two give
    identical trajectories, so the choice changes speed, never results."""
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is not one of {BACKENDS}")
    if backend == "numba" or (backend == "auto" and fast.available()):
        return fast.FastAlertSim(config, batch_size)
    return AlertSim(config, batch_size)
