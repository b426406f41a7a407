"""Argument checks shared by the faces: the training adapters (SB3, SuperSuit,
TorchRL, RLlib) and the baseline agents.

Why one module: every adapter takes the same kinds of knobs (counts, seeds,
coefficients, switches), and each used to pass them on unchecked to a library
that fails late and far away (a KeyError from a preset table, an
UnboundLocalError from SB3 after zero steps, a RuntimeError from deep inside
torch) or not at all (NaN rewards, an untrained model saved as trained). The
checks run before any work is done or any file is written, and raise
TypeError (wrong kind) or ValueError (wrong value) naming the argument, the
value given and what is allowed. Bools are not numbers here, and NaN or inf
are not valid numbers.

Numpy only, no torch: importing it is cheap. The simulator core keeps its own
checks (``sim``; its seed rule is `sim.engine.check_seed`, which the env faces
use) and does not import this module.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``; numpy ints pass, bools and floats do not
    (``True`` is 1 to Python, and 1.5 iterations would silently become 2)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def check_number(
    name: str,
    value: Any,
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
) -> float:
    """``value`` as a finite float in ``[minimum, maximum]`` (``> 0`` with
    ``positive``); ints pass, bools, strings, NaN and inf do not (a NaN
    coefficient turns every reward or loss into NaN without an error)."""
    allowed = _number_range(minimum, maximum, positive)
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"{name} must be {allowed}, got {value!r} ({type(value).__name__})")
    number = float(value)
    if (
        not math.isfinite(number)
        or (positive and number <= 0)
        or (minimum is not None and number < minimum)
        or (maximum is not None and number > maximum)
    ):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return number


def _number_range(minimum: float | None, maximum: float | None, positive: bool) -> str:
    if positive:
        return "a finite number > 0" + (f" and <= {maximum}" if maximum is not None else "")
    if minimum is not None and maximum is not None:
        return f"a number in [{minimum}, {maximum}]"
    if minimum is not None:
        return f"a finite number >= {minimum}"
    if maximum is not None:
        return f"a finite number <= {maximum}"
    return "a finite number"


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a bool; anything else is refused (``bool("no")`` is True)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def check_seed(value: Any, name: str = "seed", allow_none: bool = False) -> int | None:
    """``value`` as an int >= 0 (or None when allowed); ``True`` is not seed 1."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        allowed = "an int >= 0" + (" or None" if allow_none else "")
        raise TypeError(f"{name} must be {allowed}, got {value!r} ({type(value).__name__})")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return int(value)


def check_choice(name: str, value: Any, allowed: Iterable[str]) -> str:
    """``value``, one of the strings ``allowed``."""
    options = tuple(allowed)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {options}, got {value!r}")
    if value not in options:
        raise ValueError(f"{name} {value!r} is not one of {options}")
    return value


def check_path(name: str, value: Any, allow_none: bool = False) -> Path | None:
    """``value`` (a str or os.PathLike) as a Path; None when allowed."""
    if value is None and allow_none:
        return None
    allowed = "a non-empty path (str or os.PathLike)" + (" or None" if allow_none else "")
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be {allowed}, got {value!r}")
    if value == "":
        raise ValueError(f"{name} must be {allowed}, got ''")
    return Path(value)


def check_mapping(name: str, value: Any, allow_none: bool = True) -> dict[str, Any]:
    """``value`` (a mapping with str keys, or None) as a new dict."""
    if value is None and allow_none:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise TypeError(f"{name} must be a mapping of str keys, got {value!r}")
    return dict(value)


def check_callable(name: str, value: Any) -> Callable[..., Any] | None:
    """``value``, a callable or None."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable or None, got {value!r}")
    return value


def check_ppo_batches(rollout: int, batch_size: int, what: str) -> None:
    """MaskablePPO normalises advantages per minibatch: a minibatch of one sample
    (``batch_size=1``, or a rollout of ``rollout`` samples that leaves one over)
    has no standard deviation, and its loss is NaN."""
    if batch_size < 2:
        raise ValueError(f"batch_size must be >= 2 (advantages are normalised), got {batch_size}")
    if rollout % batch_size == 1:
        raise ValueError(
            f"batch_size={batch_size} leaves a minibatch of 1 sample from the rollout of "
            f"{rollout} ({what}); its advantage cannot be normalised: pick a batch size "
            f"that does not leave 1 over"
        )
