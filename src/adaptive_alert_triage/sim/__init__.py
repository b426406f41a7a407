"""The simulator core: pure numpy, batched over a leading env axis.

It imports only numpy and the standard library; every face (PettingZoo,
Gymnasium, pydantic models, the server) imports it, never the other way round.
"""

from .config import (
    ACTION_TYPES,
    ALERT_TYPES,
    DEFAULT_REWARDS,
    REWARD_COMPONENTS,
    TASKS,
    TaskConfig,
    get_task,
    resolve_config,
)
from .engine import AlertSim, StepOutcome

__all__ = [
    "ACTION_TYPES",
    "ALERT_TYPES",
    "DEFAULT_REWARDS",
    "REWARD_COMPONENTS",
    "TASKS",
    "AlertSim",
    "StepOutcome",
    "TaskConfig",
    "get_task",
    "resolve_config",
]
