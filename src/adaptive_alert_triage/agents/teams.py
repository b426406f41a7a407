"""Scripted team policies for the PettingZoo parallel env.

A `TeamPolicy` maps the dict of PettingZoo observations to a dict of actions.
The scripted teams coordinate centrally (they are a script, not learners):
they rank the visible alerts, claim at most K of them, route each claim to an
investigator or to the desk, and use the remaining members to IGNORE what
looks like noise.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..sim.config import ALERT_TYPES
from ..sim.engine import (
    AL_ACTIVE,
    AL_NOISE,
    AL_SERVICE,
    AL_TRUE_SEV,
    ESCALATE,
    GLOBAL_FEATURES,
    IGNORE,
    INVESTIGATE,
    N_VERBS,
    SLOT_FEATURES,
)

N_TYPES = len(ALERT_TYPES)


def action_of(slot: int, verb: int) -> int:
    """The Discrete action applying ``verb`` to visible ``slot``."""
    return 1 + slot * N_VERBS + verb


def decode_slots(observation: np.ndarray, n_slots: int) -> dict[str, np.ndarray]:
    """The visible per-slot features of one agent's observation vector."""
    f = observation[: n_slots * SLOT_FEATURES].reshape(n_slots, SLOT_FEATURES)
    return {
        "present": f[:, 0] > 0.5,
        "severity": f[:, 1],
        "confidence": f[:, 2],
        "type": f[:, 3 : 3 + N_TYPES].argmax(axis=1),
        "age": f[:, 3 + N_TYPES],
        "service": f[:, 4 + N_TYPES],
    }


def budget_of(observation: np.ndarray, n_slots: int, n_agents: int) -> int:
    """K, read back from the visible global feature K / team size."""
    g = observation[n_slots * SLOT_FEATURES : n_slots * SLOT_FEATURES + GLOBAL_FEATURES]
    return round(float(g[5]) * n_agents)


class TeamPolicy:
    """Maps PettingZoo observations to one action per live agent."""

    def reset(self, seed: int | None = None) -> None:
        """Called at the start of an episode."""

    def act(self, observations: dict[str, dict[str, np.ndarray]], env: Any) -> dict[str, int]:
        raise NotImplementedError


class RandomTeam(TeamPolicy):
    """Every member picks a uniformly random legal action (NOOP included)."""

    def __init__(self, seed: int | None = None) -> None:
        self._seed = seed
        self.rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(self._seed if seed is None else seed)

    def act(self, observations, env):
        return {
            agent: int(self.rng.choice(np.flatnonzero(obs["action_mask"])))
            for agent, obs in observations.items()
        }


class GreedyTeam(TeamPolicy):
    """Careless: every investigator investigates the oldest alerts it can
    reach and the desk escalates the next one, ignoring K."""

    def act(self, observations, env):
        actions = {}
        for k, (agent, obs) in enumerate(observations.items()):
            legal = np.flatnonzero(obs["action_mask"])
            claims = [a for a in legal if a > 0 and (a - 1) % N_VERBS in (INVESTIGATE, ESCALATE)]
            actions[agent] = int(claims[k % len(claims)]) if claims else 0
        return actions


class _AllocatingTeam(TeamPolicy):
    """Shared machinery: score slots, claim the best K, ignore likely noise.

    Subclasses fill in `assess`, which returns per-slot claim scores (claim
    when > 0) and per-slot ignore flags.
    """

    def assess(self, slots: dict[str, np.ndarray], env: Any) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def act(self, observations, env):
        agents = list(observations)
        if not agents:
            return {}
        first = observations[agents[0]]["observation"]
        n_slots = (observations[agents[0]]["action_mask"].shape[0] - 1) // N_VERBS
        investigators = [a for a in agents if a.startswith("investigator_")]
        desk = [a for a in agents if a == "escalation_desk"]
        budget = budget_of(first, n_slots, len(observations))
        slots = decode_slots(first, n_slots)
        score, ignore = self.assess(slots, env)
        score = np.where(slots["present"], score, -np.inf)
        actions = dict.fromkeys(agents, 0)
        free_inv = list(investigators)
        free_desk = list(desk)
        claimed_services: set[float] = set()
        used = 0
        for slot in np.argsort(-score, kind="stable"):
            if used >= budget or not score[slot] > 0:
                break
            service = float(slots["service"][slot])
            if service in claimed_services:
                continue  # one incident per service: a second claim would be redundant
            # Investigators split the alert types between them; the desk takes
            # what the type's owner cannot reach.
            owner = f"investigator_{int(slots['type'][slot]) % max(len(investigators), 1)}"
            if owner in free_inv:
                free_inv.remove(owner)
                actions[owner] = action_of(int(slot), INVESTIGATE)
            elif free_desk:
                actions[free_desk.pop()] = action_of(int(slot), ESCALATE)
            elif free_inv:
                actions[free_inv.pop(0)] = action_of(int(slot), INVESTIGATE)
            else:
                break
            claimed_services.add(service)
            used += 1
        idle = free_inv + free_desk
        for slot in np.flatnonzero(ignore & slots["present"] & ~(score > 0)):
            if not idle:
                break
            actions[idle.pop(0)] = action_of(int(slot), IGNORE)
        return actions


class TriageTeam(_AllocatingTeam):
    """The scripted team on visible signals only: claim alerts whose visible
    severity and confidence clear thresholds (most severe first), ignore those
    that look like noise."""

    def __init__(
        self,
        severity_threshold: float = 0.62,
        confidence_threshold: float = 0.45,
        ignore_below: float = 0.5,
    ) -> None:
        self.severity_threshold = severity_threshold
        self.confidence_threshold = confidence_threshold
        self.ignore_below = ignore_below

    def assess(self, slots, env):
        sev, conf = slots["severity"], slots["confidence"]
        worth = (sev >= self.severity_threshold) & (conf >= self.confidence_threshold)
        score = np.where(worth, sev * conf + 0.05 * slots["age"], 0.0)
        ignore = (sev * conf < self.ignore_below * self.severity_threshold) | (
            conf < self.confidence_threshold
        )
        return score, ignore


class OracleTeam(_AllocatingTeam):
    """Privileged upper reference: reads the hidden truth from the simulator
    (true severity, noise flags, incident damage). Not a fair competitor."""

    def assess(self, slots, env):
        sim = env.unwrapped.sim
        rows = sim.alerts[0, : sim.N]
        noise = rows[:, AL_NOISE] > 0.5
        svc = rows[:, AL_SERVICE].astype(np.int64)
        critical = (rows[:, AL_TRUE_SEV] >= 0.7) & ~noise & (rows[:, AL_ACTIVE] > 0.5)
        pending = sim.inc_escalated_until[0, svc] >= 0
        urgency = 1.0 + sim.inc_damage[0, svc] + sim.inc_cascade[0, svc]
        score = np.where(critical & ~pending, urgency, 0.0)
        # Dismiss everything that is not critical, so it cannot clog the window.
        return score, ~critical
