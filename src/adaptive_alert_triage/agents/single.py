"""Single-agent policies: ``act(observation) -> Action | list[Action]``.

They are the references the graders are calibrated against: degenerate
policies (always one verb, uniform random), a visible-signal threshold policy
and the privileged oracle.
"""

from __future__ import annotations

import numpy as np

from ..models import Action, Observation
from ..sim.config import ACTION_TYPES
from ..sim.incidents import CRITICAL_LEVEL


class SingleAgentPolicy:
    def reset(self) -> None:
        """Called at the start of every episode."""

    def act(self, observation: Observation) -> Action | list[Action]:
        raise NotImplementedError


class TeamAwarePolicy(SingleAgentPolicy):
    """A policy that sizes its decisions to the team; `bind(env)` reads it."""

    def __init__(self, team_size: int = 4, investigators: int = 3) -> None:
        self.team_size = team_size
        self.investigators = investigators

    def bind(self, env) -> None:
        self.team_size = env.config.n_agents
        self.investigators = env.config.n_investigators


class RandomPolicy(SingleAgentPolicy):
    """One uniformly random decision on one uniformly random visible alert."""

    def __init__(self, seed: int | None = 0) -> None:
        self._seed = seed
        self.rng = np.random.default_rng(seed)

    def reset(self) -> None:
        pass  # the stream runs on across episodes, reproducibly from the seed

    def act(self, observation):
        alert = observation.alerts[int(self.rng.integers(len(observation.alerts)))]
        return Action(alert_id=alert.id, action_type=ACTION_TYPES[int(self.rng.integers(4))])


class AlwaysPolicy(TeamAwarePolicy):
    """The same verb on the oldest visible alerts: as many as the team can take
    (``greedy``) or only the first one (as in the earlier Quick Start)."""

    def __init__(
        self, action_type: str, greedy: bool = True, team_size: int = 4, investigators: int = 3
    ) -> None:
        super().__init__(team_size, investigators)
        self.action_type = action_type
        self.greedy = greedy

    def act(self, observation):
        if not self.greedy:
            return Action(alert_id=observation.alerts[0].id, action_type=self.action_type)
        limit = {"INVESTIGATE": self.investigators, "ESCALATE": 1}.get(
            self.action_type, self.team_size
        )
        return [
            Action(alert_id=a.id, action_type=self.action_type) for a in observation.alerts[:limit]
        ]


class ThresholdPolicy(TeamAwarePolicy):
    """Visible signals only: claim up to K alerts whose severity and confidence
    clear thresholds (most severe first, one per service), DELAY the middling
    ones and IGNORE the faint ones with the members left."""

    def __init__(
        self,
        claim_severity: float = 0.62,
        claim_confidence: float = 0.45,
        ignore_below: float = 0.3,
        team_size: int = 4,
        investigators: int = 3,
    ) -> None:
        super().__init__(team_size, investigators)
        self.claim_severity = claim_severity
        self.claim_confidence = claim_confidence
        self.ignore_below = ignore_below

    def act(self, observation):
        budget = min(observation.resource_budget, self.investigators)
        ranked = sorted(observation.alerts, key=lambda a: -a.visible_severity * a.confidence)
        actions, services = [], set()
        for a in ranked:
            if len(actions) >= budget:
                break
            if (
                a.visible_severity >= self.claim_severity
                and a.confidence >= self.claim_confidence
                and a.service not in services
            ):
                actions.append(Action(alert_id=a.id, action_type="INVESTIGATE"))
                services.add(a.service)
        chosen = {x.alert_id for x in actions}
        for a in observation.alerts:
            if len(actions) >= self.team_size:
                break
            if a.id not in chosen and a.visible_severity * a.confidence < self.ignore_below:
                actions.append(Action(alert_id=a.id, action_type="IGNORE"))
        return actions


class OraclePolicy(SingleAgentPolicy):
    """Privileged upper reference: reads the hidden truth through ``env.state()``.
    It investigates critical incidents first (most damaged first), then minor
    ones while budget remains, one claim per incident, and ignores false
    positives. Not a fair competitor; bind it to its env with ``bind(env)``."""

    def __init__(self) -> None:
        self.env = None

    def bind(self, env) -> None:
        self.env = env

    def act(self, observation):
        state = self.env.state()
        visible = {a.id for a in observation.alerts}
        damage = {i.incident: i.damage for i in state.incidents}
        team, investigators = len(state.team), len(state.team) - 1
        budget = min(state.resource_budget, investigators)
        queue = [a for a in state.queue if a.id in visible]
        real = [a for a in queue if not a.is_false_positive]
        real.sort(key=lambda a: (a.true_severity < CRITICAL_LEVEL, -damage.get(a.incident, 0.0)))
        actions, incidents = [], set()
        for a in real:
            if len(actions) >= budget:
                break
            if a.incident not in incidents:
                actions.append(Action(alert_id=a.id, action_type="INVESTIGATE"))
                incidents.add(a.incident)
        for a in queue:
            if len(actions) >= team:
                break
            if a.is_false_positive:
                actions.append(Action(alert_id=a.id, action_type="IGNORE"))
        return actions
