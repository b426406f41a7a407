"""Adaptive Alert Triage: a PettingZoo parallel environment.

A team of investigators (``investigator_0`` .. ``investigator_{n-1}``) and an
escalation desk (``escalation_desk``) work one noisy, partially observable alert
queue and contend for the K investigations allowed per time step. A hidden
service dependency graph turns neglected critical incidents into cascading
failures.

| | |
|---|---|
| Import | ``from adaptive_alert_triage.multiagent import parallel_env`` |
| Registered | ``pettingzoo.make("parallel", "AdaptiveAlertTriage-v0")`` (and ``"aec"``) |
| Agents | ``n_investigators + 1`` (task default: easy 3, medium 4, hard 5) |
| Action space | ``Discrete(1 + n_slots * 4)``; 0 is NOOP, ``1 + slot*4 + verb`` |
| Verbs | 0 INVESTIGATE, 1 IGNORE, 2 ESCALATE, 3 DELAY |
| Observation | ``Dict(observation=Box(0, 1, (obs_dim,)), action_mask=Box(0, 1, (n_actions,)))`` |
| dtypes | observation float32, action_mask int8 |
| State | ``Box(0, 1, (state_dim,), float32)``; includes hidden truth (see ``state()``) |

Observation layout (all in [0, 1]): for each of ``n_slots`` visible queue
slots, in arrival order (slot 0 is the oldest alert): present, visible
severity, confidence, alert type one-hot (6), age / max_steps, service index /
(n_services - 1), share of other visible alerts on the same service. Then 7
global features: system load, queue length / capacity, alerts queued beyond the
visible slots / capacity, time remaining / max_steps, budget left at decision
time / K, K / team size, failures / (threshold + 1). Then one "down" flag per
service. Last, the role one-hot: [investigator, escalation desk].

Masks: NOOP is always legal; a verb on a slot is legal when the slot holds an
alert and the agent's role may use the verb (investigators: INVESTIGATE, IGNORE,
DELAY; the desk: ESCALATE, IGNORE, DELAY). Masks do not encode the shared K
budget: agents decide simultaneously and claims beyond K are denied by the
arbitration rule documented in ``adaptive_alert_triage.sim.engine``.

Rewards: ``reward_mode="team"`` gives every agent the team reward;
``"individual"`` credits each agent with the components its own decisions
earned (an escalation's later resolution goes to the agent that escalated) and
splits system-failure penalties equally, so individual rewards sum to the team
reward.

Illegal input raises ``ValueError``/``TypeError``/``RuntimeError`` with a
clear message: an unknown agent, a non-integer or out-of-range action, a step
before ``reset()`` or after the episode ended, and by default a masked action.
``masked_action="noop"`` turns masked actions into NOOPs instead; the agent's
info then reports status ``masked``.

Real alerts (``adaptive_alert_triage.ingest``): ``scenario={"trace": ...}``
replays a recorded alert stream as a deterministic episode (the synthetic
incident and noise processes are off unless ``"trace_synthetic": True``), and
``reset(options={"live_alerts": True})`` mixes what a ``live_source`` (a
``LiveFeed`` over an ``AlertStore``) receives into the queue as it arrives.
"""

from __future__ import annotations

import operator
import warnings
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec_wrapper
from pettingzoo.utils.wrappers import OrderEnforcingWrapper

from .sim.config import ACTION_TYPES, resolve_config
from .sim.engine import (
    D_OUTCOME,
    D_SLOT,
    D_STATUS,
    D_VERB,
    DENIAL_REASONS,
    N_FAILED,
    N_TERMINATED,
    N_TRUNCATED,
    OUTCOME_NAMES,
    STATUS_NAMES,
    StepOutcome,
    check_seed,
    format_alert_id,
)
from .sim.fast import FastAlertSim
from .sim.render import render_frame
from .sim.select import make_sim

REWARD_MODES = ("team", "individual")
MASKED_ACTION_MODES = ("raise", "noop")


class AlertTriageParallelEnv(ParallelEnv):
    """The shared alert system. See the module docstring for the card."""

    metadata: ClassVar[dict[str, Any]] = {
        "name": "adaptive_alert_triage_v0",
        "render_modes": ["human", "ansi", "rgb_array"],
        "render_fps": 2,
        "is_parallelizable": True,
    }

    def __init__(
        self,
        task_id: str = "medium",
        seed: int | None = None,
        render_mode: str | None = None,
        max_cycles: int | None = None,
        reward_mode: str = "team",
        masked_action: str = "raise",
        scenario: Any = None,
        backend: str = "auto",
        live_source: Any = None,
        **overrides: Any,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode {render_mode!r} is not supported; allowed "
                f"{self.metadata['render_modes']} or None"
            )
        if reward_mode not in REWARD_MODES:
            raise ValueError(f"reward_mode {reward_mode!r} is not one of {REWARD_MODES}")
        if masked_action not in MASKED_ACTION_MODES:
            raise ValueError(f"masked_action {masked_action!r} is not one of {MASKED_ACTION_MODES}")
        seed = check_seed(seed)  # here, not at the first reset()
        if max_cycles is not None:
            # PettingZoo's name for the horizon; two different horizons is a
            # mistake to report, not to settle silently.
            if "max_steps" in overrides and overrides["max_steps"] != max_cycles:
                raise ValueError(
                    f"max_cycles={max_cycles!r} and max_steps={overrides['max_steps']!r} "
                    f"conflict; pass one of them (or equal values)"
                )
            overrides["max_steps"] = max_cycles
        trace_spec, trace_options, scenario = _split_trace(scenario)
        if trace_spec is not None:
            # The rest of a trace scenario adjusts the task, as overrides do.
            for key, value in (scenario or {}).items():
                overrides.setdefault(key, value)
            scenario = None
        if trace_spec is not None and not trace_options.get("trace_synthetic", False):
            # A replay is the recorded stream, not the stream plus made-up storms.
            overrides.setdefault("base_incident_rate", 0.0)
            overrides.setdefault("noise_rate", 0.0)
        self.config = resolve_config(task_id, scenario, **overrides)
        self.trace = None
        if trace_spec is not None:
            from .ingest.feed import load_trace

            self.trace = load_trace(
                trace_spec, self.config.max_steps, trace_options.get("trace_step_seconds")
            )
        if live_source is not None and not (
            callable(getattr(live_source, "start", None))
            and callable(getattr(live_source, "poll", None))
        ):
            raise TypeError(
                "live_source must have start() and poll() methods (e.g. "
                f"ingest.LiveFeed(AlertStore(path))), got {type(live_source).__name__}"
            )
        self.live_source = live_source
        self.feed = None  # the external alerts of the running episode, if any
        self.last_injection = None
        self.render_mode = render_mode
        self.reward_mode = reward_mode
        self.masked_action = masked_action
        self._seed = seed
        self.sim = make_sim(self.config, batch_size=1, backend=backend)
        self.backend = "numba" if isinstance(self.sim, FastAlertSim) else "numpy"
        n = self.config.n_investigators
        self.possible_agents = [f"investigator_{i}" for i in range(n)] + ["escalation_desk"]
        self.agents: list[str] = []
        self._index = {agent: i for i, agent in enumerate(self.possible_agents)}
        self._observation_spaces = {
            agent: spaces.Dict(
                {
                    "observation": spaces.Box(0.0, 1.0, (self.sim.obs_dim,), np.float32),
                    "action_mask": spaces.Box(0, 1, (self.sim.n_actions,), np.int8),
                }
            )
            for agent in self.possible_agents
        }
        self._action_spaces = {
            agent: spaces.Discrete(self.sim.n_actions) for agent in self.possible_agents
        }
        self.state_space = spaces.Box(0.0, 1.0, (self.sim.state_dim,), np.float32)
        self._last_outcome: StepOutcome | None = None  # the sim's reused records
        self._last_copy: StepOutcome | None = None
        self._started = False

    # ------------------------------------------------------------------ spaces
    def _check_agent(self, agent: str) -> int:
        try:
            return self._index[agent]
        except (KeyError, TypeError):
            raise ValueError(
                f"unknown agent {agent!r}; agents are {self.possible_agents}"
            ) from None

    def observation_space(self, agent: str) -> spaces.Dict:
        return self._observation_spaces[self.possible_agents[self._check_agent(agent)]]

    def action_space(self, agent: str) -> spaces.Discrete:
        return self._action_spaces[self.possible_agents[self._check_agent(agent)]]

    # ------------------------------------------------------------------ API
    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict[str, Any]]]:
        live = False
        if options is not None:
            if not isinstance(options, dict):
                raise TypeError(f"options must be a dict or None, got {type(options).__name__}")
            options = dict(options)
            live = check_live_option(options.pop("live_alerts", False))
            if options:
                warnings.warn(
                    f"reset options {sorted(options)} are not used by this environment",
                    stacklevel=2,
                )
        self.reset_arrays(seed, live_alerts=live)
        infos = {agent: {} for agent in self.agents}
        if self.render_mode == "human":
            self.render()
        return self._observations(self.sim.observe()[0], self.sim.legal[0].copy()), infos

    def step(self, actions: dict[str, Any]):
        if not isinstance(actions, dict):
            raise TypeError(f"actions must be a dict of agent -> int, got {type(actions).__name__}")
        row = self._action_row(actions)
        agents = self.agents
        out = self.step_arrays(row, observe=True)
        # `item` and whole-array `tolist` read env 0's values without making a
        # numpy scalar or a row view first (the env is a batch of one).
        if self.reward_mode == "team":
            rewards = dict.fromkeys(agents, out.reward.item(0))
        else:
            rewards = dict(zip(agents, out.agent_reward.tolist()[0]))
        counts = out.counts.tolist()[0]
        terminations = dict.fromkeys(agents, counts[N_TERMINATED] > 0)
        truncations = dict.fromkeys(agents, counts[N_TRUNCATED] > 0)
        infos = self._infos(out, counts[N_FAILED])
        observations = self._observations(out.observations[0], out.action_masks[0])
        if self.render_mode == "human":
            self.render()
        return observations, rewards, terminations, truncations, infos

    def _action_row(self, actions: dict[str, Any]) -> np.ndarray:
        """The (1, n_agents) int64 row of a dict of actions, every entry checked
        (absent agents and None, as the AEC wrapper passes it, are NOOPs)."""
        n_actions = self.sim.n_actions
        index = self._index
        values = [0] * len(index)
        for agent, action in actions.items():
            try:
                i = index[agent]
            except (KeyError, TypeError):
                i = self._check_agent(agent)  # raises the clear error
            if action is None:
                continue
            # The fast path takes only exact ints in range; the rest is checked.
            if type(action) is not int or not 0 <= action < n_actions:
                action = self._action_value(agent, action)
            values[i] = action
        return np.fromiter(values, np.int64, len(values))[None]

    def _action_value(self, agent: str, action: Any) -> int:
        """``action`` as an int of the action space, or the clear error. Bools
        are refused although Python counts them as ints: ``True`` is no action
        anyone means (and the gym faces refuse bool arrays too)."""
        n_actions = self.sim.n_actions
        if type(action) is not int:
            if isinstance(action, (bool, np.bool_)):
                raise TypeError(
                    f"action for {agent} must be an int in [0, {n_actions}), got the bool "
                    f"{action!r}"
                )
            try:
                action = operator.index(action)
            except TypeError:
                raise TypeError(
                    f"action for {agent} must be an int in [0, {n_actions}), got {action!r}"
                ) from None
        if not 0 <= action < n_actions:
            raise ValueError(
                f"action {action} for {agent} is out of range; allowed 0..{n_actions - 1}"
            )
        return action

    def check_action(self, agent: str, action: Any) -> None:
        """Raise the error `step` would raise for ``agent`` taking ``action`` now
        (an unknown agent, a non-integer or out-of-range action, and with
        ``masked_action="raise"`` a masked one); None is a NOOP. The AEC env
        checks each action with it on the call that supplies it."""
        i = self._check_agent(agent)
        if action is None:
            return
        value = self._action_value(agent, action)
        if self.masked_action == "raise" and self.agents and not self.sim.legal[0, i, value]:
            raise self._masked_error(agent, value)

    @staticmethod
    def _masked_error(agent: str, action: int) -> ValueError:
        return ValueError(
            f"masked action for {agent}: action {action} is not allowed by its action_mask "
            f"(pass masked_action='noop' to turn such actions into NOOPs)"
        )

    def reset_arrays(self, seed: int | None = None, live_alerts: bool = False) -> None:
        """The core of `reset` without building per-agent dicts (options are
        checked by `reset`)."""
        if live_alerts and self.live_source is None:
            raise ValueError(
                "live_alerts needs a source of ingested alerts: construct the env with "
                "live_source=LiveFeed(AlertStore(path)) (the server does this for its sessions)"
            )
        if seed is None and not self._started:
            seed = self._seed
        self.sim.reset(None if seed is None else [seed])  # None: the next episode
        self._started = True
        self.agents = list(self.possible_agents)
        self._last_outcome = self._last_copy = None
        self.feed = None
        self.last_injection = None
        self._live = bool(live_alerts)
        if self.trace is None and not self._live:
            return
        from .ingest.feed import EpisodeFeed, merge_into_reset

        self.feed = EpisodeFeed(self.sim)
        events = list(self.trace.at(0)) if self.trace is not None else []
        if self._live:
            events += self.live_source.start()
        injection = self.feed.apply(events, now=self._now())
        merge_into_reset(self.sim, injection)
        self.last_injection = injection

    def renew(self) -> None:
        """Play the next episode as a newly built env would: its seed is the
        constructor's, and a seedless reset draws a stream from fresh OS
        entropy instead of continuing this one. A server hands the env of a
        closed session to a new one this way: building an env costs several
        resets."""
        self._started = False
        self.agents = []
        self.sim.forget_streams()

    def _now(self) -> float | None:
        return (
            self.live_source.clock() if self._live and hasattr(self.live_source, "clock") else None
        )

    def _feed_step(self, out: StepOutcome, observe: bool | str) -> None:
        """After a step: queue the external alerts that arrived during it."""
        from .ingest.feed import merge_into_outcome

        events = list(self.trace.at(int(self.sim.t[0]))) if self.trace is not None else []
        if self._live:
            events += self.live_source.poll()
        injection = self.feed.apply(events, now=self._now())
        self.last_injection = injection
        if not injection.counters:
            return
        merge_into_outcome(out, injection)
        if observe:
            out.observations = self.sim.observe(team=observe == "team")
            out.action_masks = self.sim.legal.copy()

    def step_arrays(self, actions: np.ndarray, observe: bool = False) -> StepOutcome:
        """The same step as `step`, with a (1, n_agents) int array in (columns in
        `possible_agents` order) and the outcome records out, without building
        per-agent dicts. Faces that need arrays (the single-agent wrapper) use it.

        The records are the sim's reused buffers (``reuse_records``): read them
        before the next step, or keep `last_outcome`, which is a copy."""
        if not self._started:
            raise RuntimeError("step() called before reset()")
        if not self.agents:
            raise RuntimeError("step() called after the episode ended; call reset()")
        try:
            out = self.sim.step(
                actions, on_illegal=self.masked_action, observe=observe, reuse_records=True
            )
        except ValueError as exc:
            if "is masked" not in str(exc):
                raise
            legal = self.sim.legal[0]
            bad = next(a for i, a in enumerate(self.possible_agents) if not legal[i, actions[0, i]])
            raise self._masked_error(bad, int(actions[0, self._index[bad]])) from None
        if self.feed is not None and not self.sim.n_needing_reset:
            self._feed_step(out, observe)
        self._last_outcome, self._last_copy = out, None
        if self.sim.n_needing_reset:
            self.agents = []
        return out

    @property
    def last_outcome(self) -> StepOutcome | None:
        """The last step's outcome records (None before the first step of an
        episode), as arrays the env's later steps never overwrite: copied from
        the sim's reused buffers on the first read after a step."""
        if self._last_copy is None and self._last_outcome is not None:
            self._last_copy = self._last_outcome.copy()
        return self._last_copy

    def _observations(self, obs: np.ndarray, masks: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
        """Per-agent dicts of views into fresh arrays (never into live state)."""
        return {
            agent: {"observation": o, "action_mask": m}
            for agent, o, m in zip(self.possible_agents, obs, masks)
        }

    def _infos(self, out: StepOutcome, failures: int) -> dict[str, dict[str, Any]]:
        """Every agent's info: its action as applied, its decision, and the fate of it."""
        infos = {}
        # Whole-array `tolist` (a batch of one): cheaper than slicing env 0's
        # rows first; a decision row starts with slot, verb, status, outcome.
        for agent, action, d, raw in zip(
            self.possible_agents,
            out.actions.tolist()[0],
            out.decisions.tolist()[0],
            out.alert_id.tolist()[0],
        ):
            slot, status = d[D_SLOT], d[D_STATUS]
            infos[agent] = {
                "action": action,
                "decision": None
                if slot < 0
                else {
                    "slot": slot,
                    "action_type": ACTION_TYPES[d[D_VERB]],
                    "alert_id": format_alert_id(raw),
                },
                "status": STATUS_NAMES[status],
                "reason": DENIAL_REASONS[status],
                "outcome": OUTCOME_NAMES[d[D_OUTCOME]],
                "team_failures": failures,
            }
        return infos

    def state(self) -> np.ndarray:
        """Global state for centralised critics. It includes hidden truth (true
        severities, noise flags, incident damage, the dependency graph), so use
        it for critics, never as a policy input at execution time."""
        if not self._started:
            raise RuntimeError("state() called before reset()")
        return self.sim.global_state()[0]

    def render(self) -> str | np.ndarray | None:
        if self.render_mode is None:
            warnings.warn(
                "render() called without a render_mode; pass render_mode='ansi', "
                "'rgb_array' or 'human' to the constructor",
                stacklevel=2,
            )
            return None
        if not self._started:
            raise RuntimeError("render() called before reset()")
        return render_frame(self.sim, self.render_mode)

    def close(self) -> None:
        pass


def check_live_option(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"reset option live_alerts must be true or false, got {value!r}")
    return value


def _split_trace(scenario: Any) -> tuple[Any, dict[str, Any], Any]:
    """(trace spec, trace options, the rest of the scenario) of a scenario
    mapping; a scenario without a trace passes through untouched."""
    if not isinstance(scenario, dict) or "trace" not in scenario:
        for key in ("trace_step_seconds", "trace_synthetic"):
            if isinstance(scenario, dict) and key in scenario:
                raise ValueError(f"scenario option {key!r} needs a 'trace' in the same scenario")
        return None, {}, scenario
    rest = dict(scenario)
    spec = rest.pop("trace")
    options = {
        key: rest.pop(key) for key in ("trace_step_seconds", "trace_synthetic") if key in rest
    }
    if not isinstance(options.get("trace_synthetic", False), bool):
        raise TypeError(
            f"trace_synthetic must be true or false, got {options['trace_synthetic']!r}"
        )
    return spec, options, rest


def parallel_env(
    task_id: str = "medium",
    seed: int | None = None,
    render_mode: str | None = None,
    max_cycles: int | None = None,
    **overrides: Any,
) -> AlertTriageParallelEnv:
    """The parallel environment. Overrides are `TaskConfig` fields, plus
    ``reward_mode``, ``masked_action`` and ``scenario`` (a TaskConfig, a mapping
    or a JSON/YAML path)."""
    return AlertTriageParallelEnv(
        task_id=task_id, seed=seed, render_mode=render_mode, max_cycles=max_cycles, **overrides
    )


class AlertTriageAECEnv(parallel_to_aec_wrapper):
    """PettingZoo's parallel-to-AEC conversion, with each action checked on the
    call that supplies it.

    The stock wrapper stores whatever it is given and hands the actions to the
    parallel step after the last agent's turn: a bad action then fails there,
    on someone else's call, and stays stored, so every later step fails until
    reset(). Here a bad action (unknown type, out of range, masked when the env
    raises on masked actions, or anything but None from an agent that is done)
    raises before anything is stored: a rejected call changes nothing.
    """

    def step(self, action: Any) -> None:
        if not hasattr(self, "_actions"):
            raise RuntimeError("step() called before reset()")
        agent = self.agent_selection
        if agent not in self.terminations:
            raise RuntimeError("step() called after the episode ended; call reset()")
        if self.terminations[agent] or self.truncations[agent]:
            if action is not None:
                raise ValueError(f"{agent} is done: its action must be None, got {action!r}")
        else:
            self.env.check_action(agent, action)
        super().step(action)


def raw_env(**kwargs: Any) -> AlertTriageAECEnv:
    """The AEC version without PettingZoo's order-enforcing wrapper."""
    return AlertTriageAECEnv(parallel_env(**kwargs))


def env(**kwargs: Any) -> OrderEnforcingWrapper:
    """The AEC version (agents act in turn; the step resolves after the last,
    each action checked on its own call)."""
    return OrderEnforcingWrapper(AlertTriageAECEnv(parallel_env(**kwargs)))
