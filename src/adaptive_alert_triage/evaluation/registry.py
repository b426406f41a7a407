"""Agents by name, and user agents by ``module:attribute``."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from ..tasks import reset_policy


def _builtin(name: str) -> Callable[[], Any]:
    from .. import agents

    if name == "llm":
        from ..agents.llm import LLMAgent

        return LLMAgent
    if name == "ppo":
        return _ppo_agent
    return {
        "random": agents.RandomAgent,
        "rule": agents.RuleBasedAgent,
        "correlation": agents.CorrelationAwareAgent,
        "oracle": agents.OracleAgent,
    }[name]


def _ppo_agent() -> Any:
    """The trained policy of whichever task the agent is bound to. A missing
    ``[train]`` extra is a ValueError here, so the CLI reports it as a bad agent."""
    from ..agents.learned import PPOAgent

    try:
        return PPOAgent()
    except ImportError as exc:
        raise ValueError(f"agent 'ppo': {exc}") from exc


#: Built-in agent names. ``oracle`` is privileged (reads the hidden truth): the
#: graders' upper reference, not a competitor. ``llm`` needs the ``[llm]`` extra
#: and an endpoint (``API_BASE_URL``, ``MODEL_NAME``, ``OPENAI_API_KEY``).
#: ``ppo`` needs the ``[train]`` extra and ``policies/ppo_<task>.zip`` (or the
#: directory in ``ALERT_TRIAGE_POLICIES``); see docs/training.md.
AGENT_NAMES = ("random", "rule", "correlation", "oracle", "llm", "ppo")
DEFAULT_AGENTS = ("random", "rule", "correlation", "oracle")


def agent_label(spec: str) -> str:
    """The name an agent gets in tables and results: a built-in name, or the
    attribute name of a ``module:attribute`` spec."""
    return spec.rsplit(":", 1)[-1] if ":" in spec else spec


def load_agent(spec: str) -> Any:
    """A fresh agent from a built-in name or ``package.module:Attribute``.

    The attribute may be a class or factory (called with no arguments) or a
    ready agent object. Anything that cannot give an object with ``act``
    (including a constructor that raises) is a ValueError that says what was
    wrong, so the CLI reports a bad module instead of a traceback.
    """
    if not isinstance(spec, str) or not spec:
        raise TypeError(f"agent spec must be a non-empty string, got {spec!r}")
    if ":" not in spec:
        if spec not in AGENT_NAMES:
            raise ValueError(
                f"unknown agent {spec!r}; built-in agents are {list(AGENT_NAMES)}, "
                "or give your own as package.module:Attribute"
            )
        try:
            return _builtin(spec)()
        except ImportError as exc:  # a missing extra: a bad agent for the CLI, not a crash
            raise ValueError(f"agent {spec!r}: {exc}") from exc
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"agent module {spec!r} must look like package.module:Attribute")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import agent module {module_name!r}: {exc}") from exc
    try:
        target = getattr(module, attribute)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no attribute {attribute!r}") from None
    if inspect.isclass(target) or inspect.isfunction(target):
        try:
            agent = target()
        except Exception as exc:  # a user's constructor may fail in any way; say whose
            raise ValueError(
                f"agent {spec!r} could not be made: {attribute}() raised "
                f"{type(exc).__name__}: {exc}"
            ) from exc
    else:
        agent = target
    if not callable(getattr(agent, "act", None)):
        raise ValueError(
            f"{spec!r} gave {type(agent).__name__}, which has no act(observation) method"
        )
    return agent


def reset_agent(agent: Any, seed: int) -> None:
    """Call the agent's ``reset``, passing the episode seed when it takes one
    (the rule `tasks.run_episodes` follows too)."""
    reset_policy(agent, seed)
