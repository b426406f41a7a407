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
    trusted_pieces,
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
    N_SERVICE_EVENTS,
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
from .tasks import GRADERS, decision_correct, get_grader

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
        if grader is not None and not (isinstance(grader, str) and grader in GRADERS):
            raise ValueError(f"unknown grader {grader!r}; allowed: {sorted(GRADERS)} or None")
        self.grader_id = task_id if grader is None else grader
        self.grader = get_grader(self.grader_id, self.config.failure_threshold)
        self._names = service_names(self.config.n_services)
        self._investigators = list(range(self.config.n_investigators))
        self._desk = self.config.n_investigators
        self._row_shape = (1, self.sim.A)  # the action row's
        self._visible: list[int] = []  # the raw ids of the visible alerts, by slot
        # By raw id: the fields as first seen, and the step the alert arrived.
        self._alert_fields: dict[int, tuple[dict[str, Any], int]] = {}
        self._raw_of: dict[str, int] = {}  # raw ids by alert id
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
        self._reward_parts: list[list[float]] = []  # every step's components, see reward_totals
        self.history: list[list[Action]] = []
        self.grader.begin(self.sim.reset_incidents[0], self.sim.reset_incident_severity[0])
        self._alert_fields = {}
        self._raw_of = {}
        return self._observation()

    def renew(self) -> None:
        """Play the next episode as a newly built env would (see
        `AlertTriageParallelEnv.renew`); ``step()`` needs a ``reset()`` first."""
        self.team.renew()
        self._seed = self.team._seed  # the constructor's (the team was built with it)
        self._started = False
        self._done = True

    @property
    def reward_totals(self) -> dict[str, float]:
        """Each reward component summed over the episode so far (a fresh dict).
        Summed here, in step order from 0.0, rather than on every step: the
        same floats, and a step does not pay for a total nobody reads."""
        totals = dict.fromkeys(REWARD_COMPONENTS, 0.0)
        for parts in self._reward_parts:
            for name, part in zip(REWARD_COMPONENTS, parts):
                totals[name] += part
        return totals

    def step(self, action: Action | list[Action]) -> tuple[Observation, Reward, bool, dict]:
        """Apply one time step of decisions: an `Action` or a list of them, at
        most one per alert and no more than the team has members. Returns
        ``(observation, reward, done, info)``."""
        if self._done:
            if not self._started:
                raise RuntimeError("step() called before reset()")
            raise RuntimeError("the episode is done; call reset() to start another")
        actions, slots = self._parse(action)
        row, members = self._assign(actions, slots)
        out = self.team.step_arrays(row)
        sim = self.sim
        # Env 0's records as Python values, converted once for the grader and
        # info, and only the rows of the members who acted (nobody else decided).
        # The team env is a batch of one, so whole arrays are env 0's rows, and
        # `item` reads a scalar without making a numpy scalar first.
        if len(members) == 1:
            m = members[0]
            decisions = [out.decisions[0, m].tolist()]
            truth = [out.true_severity.item(0, m)]
            raw_ids = [out.alert_id.item(0, m)]
        else:
            rows, severities, ids = (
                out.decisions[0].tolist(),
                out.true_severity[0].tolist(),
                out.alert_id[0].tolist(),
            )
            decisions = [rows[m] for m in members]
            truth = [severities[m] for m in members]
            raw_ids = [ids[m] for m in members]
        counts = out.counts.tolist()[0]
        events = out.service_events.tobytes()
        grader = self.grader
        grader.feed(out, decisions, truth, counts, events)
        # Actions are frozen, but their metadata dicts are the caller's.
        self.history.append([a.model_copy(deep=True) if a.metadata else a for a in actions])
        parts = out.components.tolist()[0]
        value = out.reward.item(0)
        reward = trusted(
            Reward, {"value": value, "components": dict(zip(REWARD_COMPONENTS, parts))}
        )
        self.cumulative_reward += value
        self._reward_parts.append(parts)
        t, failures = sim.t.item(0), sim.failures.item(0)
        score, passed = grader.result()
        info = _info(
            decisions,
            truth,
            raw_ids,
            counts,
            events,
            score,
            passed,
            self._names,
            self.cumulative_reward,
            t,
            failures,
        )
        self._done = info["terminated"] or info["truncated"]
        if self.team.feed is not None:
            info["external_alerts"] = external_info(self.team)
        return self._observation(t, failures), reward, self._done, info

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
            reward_totals=self.reward_totals,  # a fresh dict
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
    def _parse(self, action: Any) -> tuple[list[Action], list[int]]:
        """The decisions of a step, checked, and the queue slot of each one's alert."""
        if type(action) is Action:  # the common case: one decision, already validated
            return [action], [self._slot(action.alert_id)]
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
        slots = []
        for a in actions:
            slots.append(self._slot(a.alert_id))
            if a.alert_id in seen:
                raise ValueError(f"more than one decision for alert {a.alert_id!r} in one step")
            seen.add(a.alert_id)
        if len(actions) > len(self.team.possible_agents):
            raise ValueError(
                f"{len(actions)} decisions in one step, but the team has "
                f"{len(self.team.possible_agents)} members"
            )
        return actions, slots

    def _slot(self, alert_id: str) -> int:
        """The visible queue slot of the alert ``alert_id`` names, or the
        unknown-alert ValueError. Looked up per decision rather than mapping
        every visible alert on every step: a step decides on one alert or few."""
        try:
            return self._visible.index(self._raw_of.get(alert_id))
        except ValueError:
            raise self._unknown_alert(alert_id) from None

    def _unknown_alert(self, alert_id: str) -> ValueError:
        cache = self._alert_fields
        valid = ", ".join(cache[raw][0]["id"] for raw in self._visible) or "none"
        return ValueError(
            f"unknown alert_id {alert_id!r}: it is not in the current observation; "
            f"valid ids are: {valid}"
        )

    def _assign(self, actions: list[Action], slots: list[int]) -> tuple[np.ndarray, list[int]]:
        """Hand each decision to a member who may make it: ESCALATE to the desk,
        INVESTIGATE to an investigator, IGNORE and DELAY to whoever is free.
        Returns the (1, n_agents) action row and the members who act, in order."""
        if len(actions) == 1 and self._investigators:  # the common case, in short
            verb = VERB_OF[actions[0].action_type]
            member = self._desk if verb == ESCALATE else self._investigators[0]
            row = np.zeros(self._row_shape, np.int64)
            row[0, member] = 1 + slots[0] * N_VERBS + verb
            return row, [member]
        row = [0] * self.sim.A
        free_investigators = list(self._investigators)
        desk_free = True
        rest = []
        for a, slot in zip(actions, slots):
            verb = VERB_OF[a.action_type]
            code = 1 + slot * N_VERBS + verb
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
        members = [member for member, code in enumerate(row) if code != 0]
        return np.fromiter(row, np.int64, len(row))[None], members

    def _observation(self, t: int | None = None, failures: int | None = None) -> Observation:
        """What the decision maker sees now: fresh Alert models, built without
        validation from the simulator's visible view. ``step`` passes the clock
        ``t`` and the failure count, which it has read already."""
        if t is None or failures is None:
            t, failures = self.sim.t.item(0), self.sim.failures.item(0)
        _, ids, rows, load, queue_length = self.sim.visible_arrays(0)
        # Per raw alert id, its fields as first seen and the step it arrived:
        # all but the age are fixed for life, so each step copies them and sets
        # the age, and only a new alert's row is read. Every Alert and its
        # field dict are new on every step: no returned model ever changes.
        cache = self._alert_fields
        new, set_dict, set_fields_set, set_extra, set_private, fields_set = _ALERT_PIECES
        alerts: list[Alert] = []
        append = alerts.append
        for slot, raw in enumerate(ids):
            seen = cache.get(raw)  # not try/except: 2-3 alerts a step are new
            if seen is None:
                seen = self._first_seen(raw, rows[slot].tolist(), t)
            first, born = seen
            fields = first.copy()
            fields["age"] = t - born
            alert = new(Alert)
            set_dict(alert, fields)
            set_fields_set(alert, fields_set)
            set_extra(alert, None)
            set_private(alert, None)
            append(alert)
        self._visible = ids  # raw ids by slot, for `_slot`
        down_until = self.sim.down_until.tolist()[0]
        names = self._names
        return trusted(
            Observation,
            {
                "alerts": alerts,
                "system_load": load,
                "queue_length": queue_length,
                "time_remaining": max(self._max_steps - t, 0),
                "episode_step": t,
                "resource_budget": self._budget,
                "services_down": [names[s] for s, until in enumerate(down_until) if until > t]
                if max(down_until) > t
                else [],
                "failures_count": failures,
            },
        )

    def _first_seen(self, raw: int, row: list, t: int) -> tuple[dict[str, Any], int]:
        """Cache the fields of an alert seen for the first time at step ``t``
        (its age is set per step, from the step it arrived) and map its public
        id back to ``raw``."""
        alert_id = format_alert_id(raw)
        self._raw_of[alert_id] = raw
        fields = {
            "id": alert_id,
            "visible_severity": row[0],
            "confidence": row[1],
            "alert_type": ALERT_TYPES[int(row[2])],
            "age": 0,
            "service": self._names[int(row[4])],
        }
        seen = self._alert_fields[raw] = (fields, t - int(row[3]))
        return seen


_ALERT_PIECES = trusted_pieces(Alert)


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
    members = [m for m, d in enumerate(decisions) if d[D_VERB] >= 0 and acted[m]]
    truth = out.true_severity[b].tolist()
    ids = out.alert_id[b].tolist()
    score, passed = grader.result()
    return _info(
        [decisions[m] for m in members],
        [truth[m] for m in members],
        [ids[m] for m in members],
        out.counts[b].tolist(),
        out.service_events[b].tobytes(),
        score,
        passed,
        names,
        cumulative_reward,
        int(sim.t[b]),
        int(sim.failures[b]),
    )


def _info(
    decisions: list[list[int]],
    truth: list[float],
    raw_ids: list[int],
    counts: list[int],
    events: bytes,
    score: float,
    passed: bool,
    names: tuple[str, ...],
    cumulative_reward: float,
    t: int,
    failures_count: int,
) -> dict[str, Any]:
    """`step_info` from one env's records already turned into Python values
    (see `Grader.feed`): the decision rows, true severities and raw alert ids
    of the members who acted, in member order (rows of NOOPs are skipped)."""
    processed, denials, groups = [], [], {}
    correct_flags = []
    for d, severity, raw in zip(decisions, truth, raw_ids):
        verb = d[D_VERB]
        if verb < 0:
            continue
        alert_id = format_alert_id(raw)
        noise = d[D_NOISE] > 0
        status = d[D_STATUS]
        granted = status == STATUS_GRANTED
        correct = decision_correct(verb, noise, severity) if granted else None
        record = {
            "alert_id": alert_id,
            "action_type": ACTION_TYPES[verb],
            "status": STATUS_NAMES[status],
            "reason": DENIAL_REASONS[status],
            "outcome": OUTCOME_NAMES[d[D_OUTCOME]],
            "true_severity": severity,
            "is_false_positive": noise,
            "critical": (not noise) and severity >= CRITICAL_LEVEL,
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
    failures = counts[N_FAILED]
    return {
        "task_score": score,
        "task_passed": passed,
        "processed_alerts": processed,
        "denials": denials,
        "correlation_groups": groups,
        "failures_this_step": failures,
        "cascades_this_step": events[E_CASCADE::N_SERVICE_EVENTS].count(1),
        "system_failure": failures > 0,
        "action_correct": all(correct_flags) if correct_flags else None,
        "cumulative_reward": cumulative_reward,
        "step": t,
        "failures_count": failures_count,
        "terminated": bool(counts[N_TERMINATED]),
        "truncated": bool(counts[N_TRUNCATED]),
    }
