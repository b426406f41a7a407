"""Graders for the three tasks, fed by per-step outcome records.

`get_grader(task_id)` returns a fresh grader; `run_episodes` plays seeded
episodes of a single-agent policy and returns their task scores.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

from ..sim.config import get_task
from .base import CORRECT_VERBS, Grader, decision_correct, truth_class
from .easy import EasyGrader
from .hard import HardGrader
from .medium import MediumGrader

GRADERS: dict[str, type[Grader]] = {"easy": EasyGrader, "medium": MediumGrader, "hard": HardGrader}


def get_grader(task_id: str, failure_threshold: int | None = None) -> Grader:
    """A fresh grader for ``task_id``; the failure threshold defaults to the task's."""
    if not isinstance(task_id, str) or task_id not in GRADERS:
        raise ValueError(f"unknown task_id {task_id!r}; allowed: {sorted(GRADERS)}")
    if failure_threshold is None:
        failure_threshold = get_task(task_id).failure_threshold
    return GRADERS[task_id](failure_threshold=failure_threshold)


def reset_policy(policy: Any, seed: int) -> None:
    """Call the policy's ``reset``, if it has one, passing the episode seed when
    it takes one (a ``seed`` parameter or ``**kwargs``)."""
    reset = getattr(policy, "reset", None)
    if reset is None:
        return
    try:
        parameters = inspect.signature(reset).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        parameters = {}
    if "seed" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        reset(seed=seed)
    else:
        reset()


def run_episodes(policy: Any, task_id: str, seeds: Iterable[int], **overrides: Any) -> list[float]:
    """Play one episode per seed with ``policy`` (``act(observation)`` returning an
    Action or a list of them; optional ``reset()``, given the episode's seed when
    it takes a ``seed`` argument, so that a stochastic policy plays each seed the
    same way whatever ran before; an optional ``bind(env)`` for privileged
    policies) and return the final task scores."""
    from ..env import AdaptiveAlertTriageEnv  # the env imports this package

    env = AdaptiveAlertTriageEnv(task_id=task_id, **overrides)
    if hasattr(policy, "bind"):
        policy.bind(env)
    scores = []
    for seed in seeds:
        observation = env.reset(seed=seed)
        reset_policy(policy, seed)
        done = False
        info: dict[str, Any] = {"task_score": 0.0}
        while not done:
            observation, _, done, info = env.step(policy.act(observation))
        scores.append(info["task_score"])
    return scores


__all__ = [
    "CORRECT_VERBS",
    "GRADERS",
    "EasyGrader",
    "Grader",
    "HardGrader",
    "MediumGrader",
    "decision_correct",
    "get_grader",
    "reset_policy",
    "run_episodes",
    "truth_class",
]
