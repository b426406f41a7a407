"""The ``[train]`` extra, checked in one place with one message."""

from __future__ import annotations

import importlib.util

TRAIN_HINT = (
    "learned policies need the [train] extra: install the CPU build of torch first "
    "(pip install torch==2.13.0), then pip install 'adaptive-alert-triage[train]'"
)


def train_available() -> bool:
    """True when torch, stable-baselines3 and sb3-contrib can be imported."""
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("torch", "stable_baselines3", "sb3_contrib")
    )


def require_train() -> None:
    """Raise an ImportError naming the ``[train]`` extra if it is missing."""
    missing = [
        name
        for name in ("torch", "stable_baselines3", "sb3_contrib")
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        raise ImportError(f"{TRAIN_HINT} (missing: {', '.join(missing)})")
