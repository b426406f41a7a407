"""Gymnasium faces: one env, a native batched VectorEnv, and a batched agents view.

All three are thin adapters over the batched core (`AlertSim`, or its numba
twin): the vector envs step every env of the batch in one call, not a Python
loop over envs.

**Observation** (all three): ``Box(0, 1, (D,), float32)``, the team's shared
view, laid out as in the PettingZoo env without the role features: for each
visible queue slot (oldest first) present, visible severity, confidence, type
one-hot (6), age / max_steps, service / (n_services - 1), share of other visible
alerts on the same service; then system load, queue length / capacity, alerts
beyond the visible slots / capacity, time remaining / max_steps, budget left /
K, K / team size, failures / (threshold + 1); then a "down" flag per service.
The agents view appends the role one-hot [investigator, desk].

**Action** (single and vector envs): ``MultiDiscrete([1 + 4 * n_slots] * A)``:
one decision per team member per step, each 0 (NOOP) or ``1 + slot*4 + verb``
(verbs INVESTIGATE, IGNORE, ESCALATE, DELAY). Why not one Discrete decision per
step: a step is one time step, and a team makes up to A decisions in it
(claims up to K); a single Discrete would either waste most of the budget or
need a combinatorial action space. MultiDiscrete keeps the action factored per
member, and ``action_masks()`` gives the concatenated per-member masks that
``sb3_contrib.MaskablePPO`` expects for MultiDiscrete spaces.

Masked actions become NOOPs by default here (``masked_action="noop"``), since
generic RL tooling samples without masks; the outcome reports them as
``masked``. ``masked_action="raise"`` makes them errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from .env import step_info
from .multiagent import MASKED_ACTION_MODES, REWARD_MODES
from .sim.config import REWARD_COMPONENTS, resolve_config
from .sim.engine import check_seed
from .sim.render import render_frame
from .sim.select import make_sim
from .sim.topology import service_names
from .tasks import get_grader

RENDER_MODES = ["ansi", "rgb_array", "human"]


def _check_masked(masked_action: str) -> str:
    if masked_action not in MASKED_ACTION_MODES:
        raise ValueError(f"masked_action {masked_action!r} is not one of {MASKED_ACTION_MODES}")
    return masked_action


class AlertTriageGymEnv(gym.Env):
    """One environment, the whole team as one agent (see the module docstring)."""

    metadata = {"render_modes": RENDER_MODES, "render_fps": 2}  # noqa: RUF012

    def __init__(
        self,
        task_id: str = "medium",
        render_mode: str | None = None,
        masked_action: str = "noop",
        backend: str = "auto",
        grader: str | None = None,
        scenario: Any = None,
        **overrides: Any,
    ) -> None:
        if render_mode is not None and render_mode not in RENDER_MODES:
            raise ValueError(f"render_mode {render_mode!r} is not one of {RENDER_MODES} or None")
        self.config = resolve_config(task_id, scenario, **overrides)
        self.render_mode = render_mode
        self.masked_action = _check_masked(masked_action)
        self.sim = make_sim(self.config, 1, backend)
        self._dim = self.sim.base_dim
        self.observation_space = spaces.Box(0.0, 1.0, (self._dim,), np.float32)
        self.action_space = spaces.MultiDiscrete(np.full(self.sim.A, self.sim.n_actions))
        self.grader = get_grader(grader or task_id, self.config.failure_threshold)
        self._names = service_names(self.config.n_services)
        self._started = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        # Checked here, before Gymnasium's seeding (which raises its own error
        # type and refuses numpy ints): the rule and errors of the other faces.
        seed = check_seed(seed)
        if options:
            raise ValueError(f"unknown reset options {sorted(options)}; none are supported yet")
        super().reset(seed=seed)
        self.sim.reset(None if seed is None else [seed])  # None: the next episode
        self._started = True
        self.cumulative_reward = 0.0
        self.grader.begin(self.sim.reset_incidents[0], self.sim.reset_incident_severity[0])
        if self.render_mode == "human":
            self.render()
        return self.sim.observe(team=True)[0, 0], {"task_score": self.grader.score}

    def step(self, action):
        if not self._started:
            raise RuntimeError("step() called before reset()")
        row = np.asarray(action)
        if row.shape != (self.sim.A,):
            raise ValueError(f"action must have shape {(self.sim.A,)}, got {row.shape}")
        out = self.sim.step(row[None], on_illegal=self.masked_action, observe="team")
        self.grader.update(out)
        reward = float(out.reward[0])
        self.cumulative_reward += reward
        info = step_info(out, row != 0, self.grader, self._names, self.cumulative_reward, self.sim)
        info["reward_components"] = dict(zip(REWARD_COMPONENTS, out.components[0].tolist()))
        if self.render_mode == "human":
            self.render()
        return (
            out.observations[0, 0],
            reward,
            info["terminated"],
            info["truncated"],
            info,
        )

    def action_masks(self) -> np.ndarray:
        """Concatenated per-member masks, (A * n_actions,) bool, for MaskablePPO.
        Before reset() there are none (an all-False mask would mask NOOP too)."""
        if not self._started:
            raise RuntimeError("action_masks() called before reset()")
        return self.sim.legal[0].reshape(-1).astype(bool)

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode")
            return None
        return render_frame(self.sim, self.render_mode)


def _seeds(seed: Any, n: int, rows: int = 1) -> list[int | None]:
    """The per-env seeds of a vector ``reset(seed=...)`` over ``n`` envs: None,
    an int ``s`` (env ``i`` gets ``s + i``, as in Gymnasium), or a sequence of
    one int or None per env; with ``rows > 1`` (an env on ``rows`` rows of the
    vector), also one per row, equal on the rows of each env."""
    if seed is None:
        return [None] * n
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        first = check_seed(seed)
        return [first + i for i in range(n)]
    allowed = "an int, None, or a sequence of " + (
        f"{n} ints/None" if rows == 1 else f"{n} (one per env) or {n * rows} (one per row)"
    )
    if isinstance(seed, (str, bytes)) or not isinstance(seed, (Sequence, np.ndarray)):
        raise TypeError(f"seed must be {allowed}, got {seed!r} ({type(seed).__name__})")
    if isinstance(seed, np.ndarray) and seed.ndim != 1:
        raise ValueError(f"seed must be {allowed}, got an array of shape {seed.shape}")
    seeds = [check_seed(s) for s in seed]
    if rows > 1 and len(seeds) == n * rows:
        per_env = [seeds[b * rows : (b + 1) * rows] for b in range(n)]
        for b, group in enumerate(per_env):
            if any(s != group[0] for s in group):
                raise ValueError(
                    f"seeds {group} of rows {b * rows}..{(b + 1) * rows - 1} disagree: "
                    f"they are the agents of env {b}, which has one seed"
                )
        return [group[0] for group in per_env]
    if len(seeds) != n:
        raise ValueError(f"got {len(seeds)} seeds for {n} envs; seed must be {allowed}")
    return seeds


class _BatchedCore(VectorEnv):
    """Shared machinery: a batch of B envs on one core, NEXT_STEP autoreset."""

    metadata = {  # noqa: RUF012
        "render_modes": ["ansi", "rgb_array"],
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def _setup(
        self, n_envs: int, task_id, masked_action, backend, scenario, render_mode, overrides
    ) -> None:
        if isinstance(n_envs, bool) or not isinstance(n_envs, (int, np.integer)) or n_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {n_envs!r}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(
                f"render_mode {render_mode!r} is not one of {self.metadata['render_modes']} or None"
            )
        self.config = resolve_config(task_id, scenario, **overrides)
        self.masked_action = _check_masked(masked_action)
        self.sim = make_sim(self.config, int(n_envs), backend)
        self.render_mode = render_mode
        self._dim = self.sim.base_dim
        self._started = False

    def _reset_core(self, seed, options, rows: int = 1) -> None:
        seeds = _seeds(seed, self.sim.B, rows)
        if options:
            raise ValueError(f"unknown reset options {sorted(options)}; none are supported yet")
        self.sim.reset(seeds)
        self._started = True

    def _legal(self) -> np.ndarray:
        """The core's masks; before reset() there are none (all False, NOOP
        included, which no policy can act on), so that is an error."""
        if not self._started:
            raise RuntimeError("action_masks() called before reset()")
        return self.sim.legal

    def _step_core(self, actions: np.ndarray, observe="team", records: str = "minimal"):
        """Autoreset what ended last step, step the rest; returns the outcome and
        the mask of envs that stepped. Minimal records by default: the team
        view's infos need only the components and counts (see `AlertSim.step`).
        No copy of the masks: ``action_masks()`` reads them from the core."""
        if not self._started:
            raise RuntimeError("step() called before reset()")
        return self.sim.step_autoreset(
            actions, self.masked_action, observe=observe, records=records, masks=False
        )

    @staticmethod
    def _infos(out, stepped: np.ndarray) -> dict[str, Any]:
        """Outcome records as arrays, each with its ``_key`` mask (False where the
        env was autoreset instead of stepped)."""
        infos: dict[str, Any] = {
            "reward_components": out.components,
            "failures": out.n_failed,
            "denied": out.denied,
            "new_alerts": out.new_alerts,
            "dropped_alerts": out.dropped_alerts,
        }
        for key in list(infos):
            infos[f"_{key}"] = stepped
        return infos

    def render(self):
        if self.render_mode is None:
            return None
        return tuple(render_frame(self.sim, self.render_mode, b) for b in range(self.sim.B))


class AlertTriageVectorEnv(_BatchedCore):
    """``num_envs`` envs stepped together by the batched core.

    Env ``i`` follows exactly the trajectory a lone env seeded like it would
    (``reset(seed=s)`` seeds env ``i`` with ``s + i``; a sequence gives one int or
    None per env); an env that ends is reset
    on the next ``step()`` (NEXT_STEP), which ignores its action there and
    returns its first observation with reward 0.
    """

    def __init__(
        self,
        num_envs: int = 1,
        task_id: str = "medium",
        masked_action: str = "noop",
        backend: str = "auto",
        scenario: Any = None,
        render_mode: str | None = None,
        **overrides: Any,
    ) -> None:
        self._setup(num_envs, task_id, masked_action, backend, scenario, render_mode, overrides)
        self.num_envs = self.sim.B
        self.single_observation_space = spaces.Box(0.0, 1.0, (self._dim,), np.float32)
        self.single_action_space = spaces.MultiDiscrete(np.full(self.sim.A, self.sim.n_actions))
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

    def reset(self, *, seed=None, options=None):
        self._reset_core(seed, options)
        return self.sim.observe(team=True)[:, 0], {}

    def step(self, actions):
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs, self.sim.A):
            raise ValueError(
                f"actions must have shape {(self.num_envs, self.sim.A)}, got {actions.shape}"
            )
        out, stepped = self._step_core(actions)
        return (
            out.observations[:, 0],
            out.reward,
            out.terminated,
            out.truncated,
            self._infos(out, stepped),
        )

    def action_masks(self) -> np.ndarray:
        """(num_envs, A * n_actions) bool: each env's concatenated member masks."""
        return self._legal().reshape(self.num_envs, -1).astype(bool)


class AlertTriageAgentVectorEnv(_BatchedCore):
    """The multi-agent team, batched for parameter sharing: B envs x A agents
    flattened into ``num_envs = B * A`` rows, each a ``Discrete(1 + 4 * n_slots)``
    agent with its own mask (row ``b * A + a`` is agent ``a`` of env ``b``, agents
    in PettingZoo order: the investigators, then the desk).

    Seeds are per env, since an env's rows share one episode: ``reset(seed=s)``
    seeds env ``b`` (rows ``b * A .. b * A + A - 1``) with ``s + b``, like a
    PettingZoo env seeded ``s + b``. A list has Gymnasium's one seed per row
    (``num_envs`` entries; the A rows of each env must carry the same seed, and
    rows that disagree are a ValueError) or one seed per env (B entries).

    Observations carry the role one-hot, so one shared policy can serve both
    roles. Rewards are the team reward on every row (``reward_mode="team"``) or
    each agent's credit (``"individual"``). An env's rows end together, and
    autoreset (NEXT_STEP) resets all of them. Train a shared policy by treating
    the rows as independent envs of one vectorized env (the layout SuperSuit's
    ``pettingzoo_env_to_vec_env_v1``, PufferLib and RLlib's vector entry point
    use), masking logits with ``action_masks()``.
    """

    def __init__(
        self,
        num_envs: int = 1,
        task_id: str = "medium",
        reward_mode: str = "team",
        masked_action: str = "noop",
        backend: str = "auto",
        scenario: Any = None,
        render_mode: str | None = None,
        **overrides: Any,
    ) -> None:
        if reward_mode not in REWARD_MODES:
            raise ValueError(f"reward_mode {reward_mode!r} is not one of {REWARD_MODES}")
        self._setup(num_envs, task_id, masked_action, backend, scenario, render_mode, overrides)
        self.reward_mode = reward_mode
        self.n_agents = self.sim.A
        self.num_envs = self.sim.B * self.sim.A
        self.single_observation_space = spaces.Box(0.0, 1.0, (self.sim.obs_dim,), np.float32)
        self.single_action_space = spaces.Discrete(self.sim.n_actions)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

    def reset(self, *, seed=None, options=None):
        self._reset_core(seed, options, rows=self.sim.A)
        return self.sim.observe().reshape(self.num_envs, -1), {}

    def step(self, actions):
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,):
            raise ValueError(f"actions must have shape {(self.num_envs,)}, got {actions.shape}")
        # The rows' status needs the decisions, which minimal records omit;
        # individual rewards need the per-agent credit, which lean ones omit.
        records = "lean" if self.reward_mode == "team" else "full"
        out, stepped = self._step_core(
            actions.reshape(self.sim.B, self.sim.A), observe=True, records=records
        )
        if self.reward_mode == "team":
            rewards = np.repeat(out.reward, self.sim.A)
        else:
            rewards = out.agent_reward.reshape(-1)
        # Every info's mask is the same array (as in the team view's infos),
        # repeated once for the rows, not once per key.
        stepped_rows = np.repeat(stepped, self.sim.A)
        rows = {
            key: stepped_rows if key.startswith("_") else np.repeat(value, self.sim.A, axis=0)
            for key, value in self._infos(out, stepped).items()
        }
        rows["status"] = out.status.reshape(-1)
        rows["_status"] = stepped_rows
        return (
            out.observations.reshape(self.num_envs, -1),
            rewards,
            np.repeat(out.terminated, self.sim.A),
            np.repeat(out.truncated, self.sim.A),
            rows,
        )

    def action_masks(self) -> np.ndarray:
        """(B * A, n_actions) bool: every agent row's mask."""
        return self._legal().reshape(self.num_envs, -1).astype(bool)


__all__ = ["AlertTriageAgentVectorEnv", "AlertTriageGymEnv", "AlertTriageVectorEnv"]
