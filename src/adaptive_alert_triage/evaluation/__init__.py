"""Evaluation: agents over seeded episodes, statistics, results files and plots."""

from .registry import AGENT_NAMES, DEFAULT_AGENTS, agent_label, load_agent, reset_agent
from .runner import (
    SCHEMA_VERSION,
    AgentError,
    AgentSetupError,
    bind_agent,
    evaluate,
    format_table,
    play_episode,
    run_cell,
    summarise,
)
from .stats import bootstrap_ci

__all__ = [
    "AGENT_NAMES",
    "DEFAULT_AGENTS",
    "SCHEMA_VERSION",
    "AgentError",
    "AgentSetupError",
    "agent_label",
    "bind_agent",
    "bootstrap_ci",
    "evaluate",
    "format_table",
    "load_agent",
    "play_episode",
    "reset_agent",
    "run_cell",
    "summarise",
]
