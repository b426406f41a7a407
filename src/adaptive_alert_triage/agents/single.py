"""Single-agent policies: ``act(observation) -> Action | list[Action]``, plus
``reset(seed=None)`` at the start of every episode.

They are the baselines of ``alert-triage evaluate`` and the references the
graders are calibrated against: uniform random, a rule-based threshold agent, a
correlation-aware agent that reads the timing of alerts across services, the
degenerate always-one-verb agents and the privileged oracle (an upper
reference, not a fair competitor).
"""

from __future__ import annotations

import numpy as np

from .._checks import check_int
from ..models import Action, Observation
from ..sim.config import ACTION_TYPES
from ..sim.incidents import CRITICAL_LEVEL


def _unit_interval(name: str, value: float) -> float:
    """A threshold checked to be a number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number in [0, 1], got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return float(value)


class Agent:
    """The single-agent policy interface."""

    def reset(self, seed: int | None = None) -> None:
        """Called at the start of every episode, with the episode's seed when
        the caller knows it (so a stochastic agent can be reproducible per
        episode, whatever order episodes run in)."""

    def act(self, observation: Observation) -> Action | list[Action]:
        raise NotImplementedError


class TeamAwareAgent(Agent):
    """A policy that sizes its decisions to the team; `bind(env)` reads it.

    The team is the investigators plus the escalation desk, so ``team_size``
    must exceed ``investigators``; checked here because a wrong size would
    only show later, as illegal decisions the env rejects."""

    def __init__(self, team_size: int = 4, investigators: int = 3) -> None:
        self.team_size = check_int("team_size", team_size)
        self.investigators = check_int("investigators", investigators)
        if self.investigators >= self.team_size:
            raise ValueError(
                f"investigators ({investigators}) must be fewer than team_size ({team_size}): "
                "the team is the investigators plus the escalation desk"
            )

    def bind(self, env) -> None:
        self.team_size = env.config.n_agents
        self.investigators = env.config.n_investigators


class RandomAgent(Agent):
    """One uniformly random decision on one uniformly random visible alert."""

    def __init__(self, seed: int | None = 0) -> None:
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        # Per-episode stream from (agent seed, episode seed) when the episode seed
        # is known; otherwise one stream runs on across episodes.
        if seed is not None and self.seed is not None:
            self.rng = np.random.default_rng([self.seed, seed])

    def act(self, observation):
        alert = observation.alerts[int(self.rng.integers(len(observation.alerts)))]
        return Action(alert_id=alert.id, action_type=ACTION_TYPES[int(self.rng.integers(4))])


class AlwaysAgent(TeamAwareAgent):
    """The same verb on the oldest visible alerts: as many as the team can take
    (``greedy``) or only the first one (as in the earlier Quick Start)."""

    def __init__(
        self, action_type: str, greedy: bool = True, team_size: int = 4, investigators: int = 3
    ) -> None:
        super().__init__(team_size, investigators)
        if not isinstance(action_type, str):
            raise TypeError(
                f"action_type must be a str, one of {list(ACTION_TYPES)}, got {action_type!r}"
            )
        if action_type not in ACTION_TYPES:
            raise ValueError(f"unknown action_type {action_type!r}; allowed {list(ACTION_TYPES)}")
        if not isinstance(greedy, bool):
            raise TypeError(f"greedy must be a bool, got {greedy!r}")
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


class RuleBasedAgent(TeamAwareAgent):
    """Visible signals only: claim up to K alerts whose severity and confidence
    clear thresholds (most severe first, one per service), IGNORE the faint
    ones with the members left, and leave the rest queued."""

    def __init__(
        self,
        claim_severity: float = 0.62,
        claim_confidence: float = 0.45,
        ignore_below: float = 0.3,
        team_size: int = 4,
        investigators: int = 3,
    ) -> None:
        super().__init__(team_size, investigators)
        self.claim_severity = _unit_interval("claim_severity", claim_severity)
        self.claim_confidence = _unit_interval("claim_confidence", claim_confidence)
        self.ignore_below = _unit_interval("ignore_below", ignore_below)

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
        return actions + self._ignore_faint(observation, {x.alert_id for x in actions}, actions)

    def _ignore_faint(self, observation, chosen: set[str], actions: list[Action]) -> list[Action]:
        """IGNORE decisions for the faint alerts, with the members left."""
        room = self.team_size - len(actions)
        faint = [
            Action(alert_id=a.id, action_type="IGNORE")
            for a in observation.alerts
            if a.id not in chosen and a.visible_severity * a.confidence < self.ignore_below
        ]
        return faint[: max(room, 0)]


class CorrelationAwareAgent(RuleBasedAgent):
    """Visible signals plus their pattern across services and time.

    The dependency graph is hidden, but failures are visible
    (``services_down``) and a failure's cascades alert on other services a few
    steps later. So the agent tracks, per service, when its current burst of
    alerts began. A burst that starts within ``cascade_window`` steps of a
    failure elsewhere is a likely cascade (cascades are critical), and the pair
    is remembered as a suspected dependency: a service with suspected
    dependents is a root whose incident would take others down. Likely
    cascades and roots are ranked first (``pattern_bonus``) and claimed at a
    severity threshold lowered by ``pattern_relief``; older bursts come before
    newer ones (their damage has had longer to grow). Otherwise it is the
    rule-based agent: budget-aware, one claim per service, faint alerts ignored.
    """

    def __init__(
        self,
        claim_severity: float = 0.62,
        claim_confidence: float = 0.45,
        ignore_below: float = 0.3,
        cascade_window: int = 3,
        pattern_relief: float = 0.12,
        pattern_bonus: float = 0.25,
        team_size: int = 4,
        investigators: int = 3,
    ) -> None:
        super().__init__(claim_severity, claim_confidence, ignore_below, team_size, investigators)
        if isinstance(cascade_window, bool) or not isinstance(cascade_window, int):
            raise TypeError(f"cascade_window must be an int >= 1, got {cascade_window!r}")
        if cascade_window < 1:
            raise ValueError(f"cascade_window must be >= 1, got {cascade_window}")
        self.cascade_window = cascade_window
        self.pattern_relief = _unit_interval("pattern_relief", pattern_relief)
        self.pattern_bonus = _unit_interval("pattern_bonus", pattern_bonus)
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        self.burst_start: dict[str, int] = {}  # service -> step its current burst began
        self.last_alert: dict[str, int] = {}  # service -> last step it had a visible alert
        self.failed_at: dict[str, int] = {}  # service -> step it last went down
        self.dependents: dict[str, set[str]] = {}  # suspected upstream -> dependents
        self.suspect_cascade: set[str] = set()  # services whose burst followed a failure
        self.was_down: set[str] = set()

    def _observe(self, observation: Observation) -> None:
        step = observation.episode_step
        down = set(observation.services_down)
        for service in down - self.was_down:
            self.failed_at[service] = step
        self.was_down = down
        for service in {a.service for a in observation.alerts}:
            last = self.last_alert.get(service)
            if last is None or step - last > 2:  # a new burst on this service
                self.burst_start[service] = step
                self.suspect_cascade.discard(service)
                for upstream, failed in self.failed_at.items():
                    if upstream != service and 0 < step - failed <= self.cascade_window:
                        self.suspect_cascade.add(service)
                        self.dependents.setdefault(upstream, set()).add(service)
            self.last_alert[service] = step

    def in_pattern(self, service: str) -> bool:
        """A likely cascade, or a suspected root of one."""
        return service in self.suspect_cascade or bool(self.dependents.get(service))

    def act(self, observation):
        self._observe(observation)
        step = observation.episode_step
        budget = min(observation.resource_budget, self.investigators)

        def urgency(alert) -> float:
            burst_age = step - self.burst_start.get(alert.service, step)
            return (
                alert.visible_severity * alert.confidence
                + self.pattern_bonus * self.in_pattern(alert.service)
                + 0.03 * burst_age
            )

        actions, services = [], set()
        for a in sorted(observation.alerts, key=urgency, reverse=True):
            if len(actions) >= budget:
                break
            relief = self.pattern_relief if self.in_pattern(a.service) else 0.0
            if (
                a.visible_severity >= self.claim_severity - relief
                and a.confidence >= self.claim_confidence
                and a.service not in services
            ):
                actions.append(Action(alert_id=a.id, action_type="INVESTIGATE"))
                services.add(a.service)
        return actions + self._ignore_faint(observation, {x.alert_id for x in actions}, actions)


class OracleAgent(Agent):
    """Privileged upper reference: reads the hidden truth through ``env.state()``.
    It investigates critical incidents first (most damaged first), then minor
    ones while budget remains, one claim per incident, and ignores false
    positives. Not a fair competitor; bind it to its env with ``bind(env)``."""

    def __init__(self) -> None:
        self.env = None

    def bind(self, env) -> None:
        self.env = env

    def act(self, observation):
        if self.env is None:  # PPOAgent says the same when it has no env to read
            raise ValueError(
                "OracleAgent needs bind(env) before act(): it reads the hidden truth "
                "through env.state()"
            )
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
