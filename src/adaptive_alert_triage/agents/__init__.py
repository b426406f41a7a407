"""Policies for every face of the environment.

Single-agent (``act(observation) -> Action | list[Action]``, ``reset(seed=None)``):
`RandomAgent`, `RuleBasedAgent`, `CorrelationAwareAgent`, the privileged
`OracleAgent` (reads ``env.state()``: the upper reference of the graders) and
`LLMAgent` (``[llm]`` extra, imported lazily). Team policies for the PettingZoo
env (``act(observations, env) -> {agent: action}``): `RandomTeam`, `GreedyTeam`,
`TriageTeam`, `OracleTeam`.
"""

from .llm import LLMAgent  # imports `openai` only when an LLMAgent is made
from .single import (
    Agent,
    AlwaysAgent,
    CorrelationAwareAgent,
    OracleAgent,
    RandomAgent,
    RuleBasedAgent,
    TeamAwareAgent,
)
from .teams import GreedyTeam, OracleTeam, RandomTeam, TeamPolicy, TriageTeam

__all__ = [
    "Agent",
    "AlwaysAgent",
    "CorrelationAwareAgent",
    "GreedyTeam",
    "LLMAgent",
    "OracleAgent",
    "OracleTeam",
    "RandomAgent",
    "RandomTeam",
    "RuleBasedAgent",
    "TeamAwareAgent",
    "TeamPolicy",
    "TriageTeam",
]
