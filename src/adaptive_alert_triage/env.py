"""The single-agent face: one decision maker for the whole team.

`AdaptiveAlertTriageEnv` follows the OpenEnv contract (``reset`` / ``step`` /
``state``) with pydantic models. It is built on the PettingZoo parallel env:
each `step()` is one time step of that env, with the decisions handed to team
members who may make them, so the K budget binds exactly as it does for a team.

The queue is never empty while an episode runs (a flapping monitor always
fires; see ``ensure_nonempty_queue``), so ``observation.alerts[0]`` is always a
valid alert until ``done``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .models import (
    Action,
    Alert,
    AlertTruth,
    EpisodeState,
    IncidentState,
    Observation,
    Reward,
    trusted,
    trusted_all,
)
from .multiagent import AlertTriageParallelEnv, check_live_option
from .sim.config import ACTION_TYPES, ALERT_TYPES, REWARD_COMPONENTS
from .sim.engine import (
    D_GROUP,
    D_INCIDENT,
    D_NOISE,
    D_OUTCOME,
    D_SERVICE,
    D_STATUS,
    D_TYPE,
    D_VERB,
    DENIAL_REASONS,
    E_CASCADE,
    ESCALATE,
    INVESTIGATE,
    N_FAILED,
    N_TERMINATED,
    N_TRUNCATED,
    N_VERBS,
    OUTCOME_NAMES,
    STATUS_GRANTED,
    STATUS_NAMES,
    StepOutcome,
    format_alert_id,
)
from .sim.incidents import CRITICAL_LEVEL
from .sim.topology import service_names
from .tasks import decision_correct, get_grader

VERB_OF = {name: i for i, name in enumerate(ACTION_TYPES)}


class AdaptiveAlertTriageEnv:
    """Adaptive alert triage for one decision maker.

    ``task_id`` is ``"easy"``, ``"medium"`` or ``"hard"``; ``overrides`` are
    TaskConfig fields (and ``scenario``, ``backend``), as for the parallel env.
    The task's grader scores every episode; ``grader`` picks another one.
    """

    def __init__(
        self,
        task_id: str = "easy",
        seed: int | None = None,
        render_mode: str | None = None,
        grader: str | None = None,
        **overrides: Any,
    ) -> None:
        self.task_id = task_id
        self.team = AlertTriageParallelEnv(
            task_id=task_id, seed=seed, render_mode=render_mode, **overrides
        )
        self.config = self.team.config
        self.sim = self.team.sim
        self.grader_id = grader or task_id
        self.grader = get_grader(self.grader_id, self.config.failure_threshold)
        self._names = service_names(self.config.n_services)
        self._investigators = list(range(self.config.n_investigators))
        self._desk = self.config.n_investigators
        self._slot_of: dict[str, int] = {}
        self._max_steps = self.config.max_steps
        self._budget = self.config.investigation_budget
        self._seed: int | None = seed
        self._done = True
        self._started = False

    # ------------------------------------------------------------------ API
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> Observation:
        """Start an episode and return its first observation."""
        live = live_alerts_option(options)
        self.team.reset_arrays(seed, live_alerts=live)
        self._seed = seed if seed is not None else (self._seed if not self._started else None)
        self._started = True
        self._done = False
        self.cumulative_reward = 0.0
        self.reward_totals = dict.fromkeys(REWARD_COMPONENTS, 0.0)
        self.history: list[list[Action]] = []
        self.grader.begin(self.sim.reset_incidents[0], self.sim.reset_incident_severity[0])
        self._alert_fields: dict[int, dict[str, Any]] = {}
        return self._observation()

    def step(self, action: Action | list[Action]) -> tuple[Observation, Reward, bool, dict]:
        """Apply one time step of decisions: an `Action` or a list of them, at
        most one per alert and no more than the team has members. Returns
        ``(observation, reward, done, info)``."""
        if not self._started:
            raise RuntimeError("step() called before reset()")
        if self._done:
            raise RuntimeError("the episode is done; call reset() to start another")
        actions = self._parse(action)
        row, acted = self._assign(actions)
        out = self.team.step_arrays(row)
        self.grader.update(out)
        self.history.append(actions)
        parts = out.components[0].tolist()
        value = float(out.reward[0])
        reward = trusted(
            Reward, {"value": value, "components": dict(zip(REWARD_COMPONENTS, parts))}
        )
        self.cumulative_reward += value
        totals = self.reward_totals
        for name, part in zip(REWARD_COMPONENTS, parts):
            totals[name] += part
        info = step_info(out, acted, self.grader, self._names, self.cumulative_reward, self.sim)
        self._done = info["terminated"] or info["truncated"]
        if self.team.feed is not None:
            info["external_alerts"] = external_info(self.team)
        return self._observation(), reward, self._done, info

    def state(self) -> EpisodeState:
        """Everything about the episode, hidden truth included. Read-only: it
        never changes the trajectory."""
        if not self._started:
            raise RuntimeError("state() called before reset()")
        sim, names = self.sim, self._names
        queue = [
            AlertTruth(
                id=r["id"],
                visible_severity=r["visible_severity"],
                confidence=r["confidence"],
                alert_type=ALERT_TYPES[r["alert_type"]],
                age=r["age"],
                service=names[r["service"]],
                true_severity=r["true_severity"],
                is_false_positive=r["is_noise"],
                incident=r["incident"],
                correlation_group=r["group"],
            )
            for r in sim.queue_records(0)
        ]
        incidents = [
            IncidentState(
                incident=int(sim.inc_uid[0, s]),
                service=names[s],
                true_severity=float(sim.inc_severity[0, s]),
                critical=bool(sim.inc_critical[0, s]),
                cascade=bool(sim.inc_cascade[0, s]),
                damage=float(sim.inc_damage[0, s]),
                escalated=bool(sim.inc_escalated_until[0, s] >= 0),
                correlation_group=int(sim.inc_group[0, s]),
            )
            for s in np.flatnonzero(sim.inc_active[0]).tolist()
        ]
        u, v = np.nonzero(sim.adj[0])
        return EpisodeState(
            task_id=self.task_id,
            seed=self._seed,
            episode_step=int(sim.t[0]),
            max_steps=self.config.max_steps,
            done=self._done,
            terminated=bool(sim.terminated[0]),
            truncated=bool(sim.truncated[0]),
            cumulative_reward=self.cumulative_reward,
            reward_totals=dict(self.reward_totals),
            task_score=self.grader.score,
            failures_count=int(sim.failures[0]),
            resource_budget=self.config.investigation_budget,
            team=list(self.team.possible_agents),
            services=list(names),
            services_down=[names[s] for s in np.flatnonzero(sim.down()[0]).tolist()],
            dependencies=[(names[a], names[b]) for a, b in zip(u.tolist(), v.tolist())],
            queue=queue,
            incidents=incidents,
            actions=[list(step) for step in self.history],
            config=self.config.to_dict(),
        )

    def render(self):
        return self.team.render()

    def close(self) -> None:
        self.team.close()

    # ------------------------------------------------------------------ helpers
    def _parse(self, action: Any) -> list[Action]:
        if type(action) is Action:  # the common case: one decision, already validated
            if action.alert_id not in self._slot_of:
                raise self._unknown_alert(action.alert_id)
            return [action]
        items = action if isinstance(action, (list, tuple)) else [action]
        actions = []
        for item in items:
            if isinstance(item, Action):
                actions.append(item)
            elif isinstance(item, dict):
                actions.append(Action.model_validate(item))
            else:
                raise TypeError(
                    f"an action must be an Action (or a dict of its fields), got "
                    f"{type(item).__name__}"
                )
        seen: set[str] = set()
        for a in actions:
            if a.alert_id not in self._slot_of:
                raise self._unknown_alert(a.alert_id)
            if a.alert_id in seen:
                raise ValueError(f"more than one decision for alert {a.alert_id!r} in one step")
            seen.add(a.alert_id)
        if len(actions) > len(self.team.possible_agents):
            raise ValueError(
                f"{len(actions)} decisions in one step, but the team has "
                f"{len(self.team.possible_agents)} members"
            )
        return actions

    def _unknown_alert(self, alert_id: str) -> ValueError:
        valid = ", ".join(self._slot_of) or "none"
        return ValueError(
            f"unknown alert_id {alert_id!r}: it is not in the current observation; "
            f"valid ids are: {valid}"
        )

    def _assign(self, actions: list[Action]) -> tuple[np.ndarray, list[bool]]:
        """Hand each decision to a member who may make it: ESCALATE to the desk,
        INVESTIGATE to an investigator, IGNORE and DELAY to whoever is free.
        Returns the (1, n_agents) action row and which members act."""
        if len(actions) == 1 and self._investigators:  # the common case, in short
            a = actions[0]
            verb = VERB_OF[a.action_type]
            member = self._desk if verb == ESCALATE else self._investigators[0]
            row = np.zeros((1, self.sim.A), dtype=np.int64)
            row[0, member] = 1 + self._slot_of[a.alert_id] * N_VERBS + verb
            acted = [False] * self.sim.A
            acted[member] = True
            return row, acted
        row = [0] * self.sim.A
        free_investigators = list(self._investigators)
        desk_free = True
        rest = []
        for a in actions:
            verb = VERB_OF[a.action_type]
            code = 1 + self._slot_of[a.alert_id] * N_VERBS + verb
            if verb == ESCALATE:
                if not desk_free:
                    raise ValueError("only one ESCALATE per step: the team has one escalation desk")
                row[self._desk] = code
                desk_free = False
            elif verb == INVESTIGATE:
                if not free_investigators:
                    raise ValueError(
                        f"more INVESTIGATE decisions than the {len(self._investigators)} "
                        f"investigators of the team"
                    )
                row[free_investigators.pop(0)] = code
            else:
                rest.append(code)
        free = free_investigators + ([self._desk] if desk_free else [])
        if len(rest) > len(free):
            raise ValueError(
                f"{len(rest)} IGNORE/DELAY decisions, but only {len(free)} team members are free"
            )
        for member, code in zip(free, rest):
            row[member] = code
        return np.fromiter(row, np.int64, len(row))[None], [code != 0 for code in row]

    def _observation(self) -> Observation:
        sim = self.sim
        _, ids, rows, load, queue_length = sim.visible_view(0)
        # Per alert id, its fields as first seen: all but the age are fixed for
        # life, so each step copies them and sets the age.
        cache = self._alert_fields
        fields = []
        slot_of = {}
        for slot, (raw, row) in enumerate(zip(ids, rows)):
            first = cache.get(raw)
            if first is None:
                first = cache[raw] = {
                    "id": format_alert_id(raw),
                    "visible_severity": row[0],
                    "confidence": row[1],
                    "alert_type": ALERT_TYPES[int(row[2])],
                    "age": 0,
                    "service": self._names[int(row[4])],
                }
            slot_of[first["id"]] = slot
            alert = first.copy()
            alert["age"] = int(row[3])
            fields.append(alert)
        self._slot_of = slot_of
        t = int(sim.t[0])
        down_until = sim.down_until[0].tolist()
        names = self._names
        return trusted(
            Observation,
            {
                "alerts": trusted_all(Alert, fields),
                "system_load": load,
                "queue_length": queue_length,
                "time_remaining": max(self._max_steps - t, 0),
                "episode_step": t,
                "resource_budget": self._budget,
                "services_down": [names[s] for s, until in enumerate(down_until) if until > t]
                if max(down_until) > t
                else [],
                "failures_count": int(sim.failures[0]),
            },
        )


def live_alerts_option(options: Any) -> bool:
    """The ``live_alerts`` flag of reset options, the one option there is. Every
    face that takes reset options (this env, both HTTP APIs) checks them here."""
    if options is None:
        return False
    if not isinstance(options, dict):
        raise TypeError(f"options must be a dict or None, got {type(options).__name__}")
    unknown = sorted(set(options) - {"live_alerts"})
    if unknown:
        raise ValueError(f"unknown reset options {unknown}; the one allowed is 'live_alerts'")
    return check_live_option(options.get("live_alerts", False))


def external_info(team: AlertTriageParallelEnv) -> dict[str, Any]:
    """What the episode's feed of real alerts has done so far, and which alert
    ids stand for which real alerts (by dedup key) among those queued now."""
    feed = team.feed
    return {
        "stats": dict(feed.stats),
        "queued": {feed.ids[key]: key for key in feed.queued},
    }


def step_info(
    out: StepOutcome,
    acted: np.ndarray,
    grader,
    names: tuple[str, ...],
    cumulative_reward: float,
    sim,
    b: int = 0,
) -> dict[str, Any]:
    """The single-agent ``info`` of env ``b``'s step, from its outcome records:
    every decision of the members in ``acted`` with its hidden truth and fate,
    the denials, the hidden correlation groups of the real alerts decided, the
    failures, and the grader's running score."""
    decisions = out.decisions[b].tolist()
    truth = out.true_severity[b].tolist()
    ids = out.alert_id[b].tolist()
    processed, denials, groups = [], [], {}
    correct_flags = []
    for member, d in enumerate(decisions):
        if d[D_VERB] < 0 or not acted[member]:
            continue
        alert_id = format_alert_id(ids[member])
        verb = d[D_VERB]
        noise = d[D_NOISE] > 0
        granted = d[D_STATUS] == STATUS_GRANTED
        correct = decision_correct(verb, noise, truth[member]) if granted else None
        record = {
            "alert_id": alert_id,
            "action_type": ACTION_TYPES[verb],
            "status": STATUS_NAMES[d[D_STATUS]],
            "reason": DENIAL_REASONS[d[D_STATUS]],
            "outcome": OUTCOME_NAMES[d[D_OUTCOME]],
            "true_severity": truth[member],
            "is_false_positive": noise,
            "critical": (not noise) and truth[member] >= CRITICAL_LEVEL,
            "incident": d[D_INCIDENT],
            "correlation_group": d[D_GROUP],
            "service": names[d[D_SERVICE]] if d[D_SERVICE] >= 0 else None,
            "alert_type": ALERT_TYPES[d[D_TYPE]] if d[D_TYPE] >= 0 else None,
            "correct": correct,
        }
        processed.append(record)
        if granted:
            correct_flags.append(correct)
        else:
            denials.append(
                {
                    "alert_id": alert_id,
                    "action_type": record["action_type"],
                    "reason": record["reason"],
                }
            )
        if not noise and d[D_GROUP] >= 0:
            groups.setdefault(d[D_GROUP], []).append(alert_id)
    counts = out.counts[b].tolist()
    failures = counts[N_FAILED]
    return {
        "task_score": grader.score,
        "task_passed": grader.passed,
        "processed_alerts": processed,
        "denials": denials,
        "correlation_groups": groups,
        "failures_this_step": failures,
        "cascades_this_step": int(np.count_nonzero(out.service_events[b, :, E_CASCADE])),
        "system_failure": failures > 0,
        "action_correct": all(correct_flags) if correct_flags else None,
        "cumulative_reward": cumulative_reward,
        "step": int(sim.t[b]),
        "failures_count": int(sim.failures[b]),
        "terminated": bool(counts[N_TERMINATED]),
        "truncated": bool(counts[N_TRUNCATED]),
    }
