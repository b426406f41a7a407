"""Stable-Baselines3 over the native batched core.

`TriageVecEnv` is an SB3 `VecEnv` on `AlertTriageVectorEnv`'s core: one SB3
step is one call of the batched core for every env, so training is bounded by
the network, not the simulator.

It resets through the native env but steps ``native.sim`` itself, because SB3
wants *same-step* autoreset (the next episode's first observation at once, the
last one in ``infos[i]["terminal_observation"]``) where the native env resets
on the next step, and because the graders need the raw outcome records the
native infos do not carry.

Actions: ``action_mode="slot"`` (default) is ``MultiDiscrete([5] * n_slots)``,
one choice per visible slot, decoded by `codec.slot_choices_to_members`: it
suits a network that scores every slot with shared weights, and cannot
collide. ``"member"`` is the native per-member ``MultiDiscrete`` and masks.

Reward: ``score_coef`` x the step's change of the task grader's running score
(an episode's deltas sum to its graded score, so the return is what is
graded), plus ``env_coef`` x the env's team reward, minus ``failure_penalty``
per service failure. The score is the default: the env's reward pays nothing
for minor incidents, which easy and medium grade, and on hard it validated
lower (0.90, then drifting) than the score (0.92). The failure penalty is for
easy, whose grader charges a failure at most one wrong decision, so a
score-only policy learns to let the services it is unsure about fail.

Episodes end at ``max_steps`` and the observation carries the time left, so
the horizon is a real terminal: ``TimeLimit.truncated`` stays False unless
``bootstrap_truncation=True``.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._checks import (
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_path,
    check_seed,
)
from ..gym_env import AlertTriageVectorEnv
from ..tasks import get_grader
from . import codec
from ._deps import require_train

require_train()

import torch  # noqa: E402
from gymnasium import spaces  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402
from stable_baselines3.common.vec_env import VecEnv  # noqa: E402

#: Training seeds start here; ``alert-triage evaluate`` uses 0..episodes-1.
TRAIN_SEED = 10_000
#: Validation seeds (model selection) start here, apart from both.
VALIDATION_SEED = 20_000


class TriageVecEnv(VecEnv):
    """``n_envs`` alert-triage envs as one SB3 VecEnv (see the module docstring).

    ``action_masks()`` returns the (n_envs, sum(nvec)) bool masks MaskablePPO
    reads (through ``env_method("action_masks")`` or
    ``sb3_contrib.common.maskable.utils.get_action_masks``). Every episode end
    puts ``task_score`` (the grader's final score), ``task_passed`` and
    ``failures`` in that env's info, beside ``terminal_observation`` and
    ``episode`` (the env's own return and the length, as VecMonitor would).
    """

    def __init__(
        self,
        task_id: str = "hard",
        n_envs: int = 16,
        seed: int | None = TRAIN_SEED,
        action_mode: str = "slot",
        allow_escalate: bool = False,
        env_coef: float = 0.0,
        score_coef: float = 10.0,
        failure_penalty: float = 0.0,
        bootstrap_truncation: bool = False,
        backend: str = "auto",
        **overrides: Any,
    ) -> None:
        # Checked before the env is built: a NaN coefficient would make every
        # reward NaN, and bool("no") is True.
        n_envs = check_int("n_envs", n_envs)
        seed = check_seed(seed, allow_none=True)
        self.action_mode = check_choice("action_mode", action_mode, codec.ACTION_MODES)
        self.allow_escalate = check_bool("allow_escalate", allow_escalate)
        self.env_coef = check_number("env_coef", env_coef)
        self.score_coef = check_number("score_coef", score_coef)
        self.failure_penalty = check_number("failure_penalty", failure_penalty, minimum=0)
        self.bootstrap_truncation = check_bool("bootstrap_truncation", bootstrap_truncation)
        self.task_id = task_id
        self.native = AlertTriageVectorEnv(
            n_envs, task_id=task_id, masked_action="noop", backend=backend, **overrides
        )
        self.sim = self.native.sim
        self.config = self.native.config
        self.graders = [get_grader(task_id, self.config.failure_threshold) for _ in range(n_envs)]
        self._scores = np.zeros(n_envs)
        self._returns = np.zeros(n_envs)
        self._lengths = np.zeros(n_envs, dtype=np.int64)
        self._actions: np.ndarray | None = None
        self._obs: np.ndarray | None = None
        if action_mode == "slot":
            action_space = spaces.MultiDiscrete(np.full(self.config.n_slots, codec.N_CHOICES))
        else:
            action_space = self.native.single_action_space
        self.render_mode = None
        super().__init__(n_envs, self.native.single_observation_space, action_space)
        self.seed(seed)

    # ------------------------------------------------------------------ VecEnv API
    def reset(self) -> np.ndarray:
        seeds = None if all(s is None for s in self._seeds) else list(self._seeds)
        obs, _ = self.native.reset(seed=seeds)
        self._reset_seeds()
        for b in range(self.num_envs):
            self._begin(b)
        self._obs = np.array(obs, dtype=np.float32)
        return self._obs.copy()

    def step_async(self, actions: np.ndarray) -> None:
        # Checked here, before anything is stored: an out-of-range slot choice
        # would otherwise decode to another slot's action, and a cast would
        # truncate 2.7 to 2.
        what, column = (
            ("slot choice", "slot") if self.action_mode == "slot" else ("action", "member")
        )
        actions = codec.check_choices(actions, self.action_space.nvec, what, column)
        if actions.shape[0] != self.num_envs:
            raise ValueError(
                f"{what}s must have shape {(self.num_envs, len(self.action_space.nvec))}, "
                f"got {actions.shape}"
            )
        self._actions = actions

    def step_wait(self):
        if self._obs is None:
            raise RuntimeError("step() called before reset()")
        sim = self.sim
        rows = self.member_actions(self._actions)
        out = sim.step(rows, on_illegal="noop", observe="team")
        rewards = self.env_coef * out.reward - self.failure_penalty * out.n_failed
        scores = np.empty(self.num_envs)
        for b, grader in enumerate(self.graders):
            grader.update(out, b)
            scores[b] = grader.score
        if self.score_coef:
            rewards = rewards + self.score_coef * (scores - self._scores)
        self._scores = scores
        self._returns += out.reward
        self._lengths += 1
        obs = np.array(out.observations[:, 0], dtype=np.float32)
        terminated, truncated = out.terminated, out.truncated
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        ended = np.flatnonzero(dones)
        if len(ended):
            for b in ended.tolist():
                grader = self.graders[b]
                infos[b] = {
                    "terminal_observation": obs[b].copy(),
                    "TimeLimit.truncated": bool(
                        self.bootstrap_truncation and truncated[b] and not terminated[b]
                    ),
                    "task_score": float(grader.score),
                    "task_passed": bool(grader.passed),
                    "failures": int(grader.failures),
                    "episode": {"r": float(self._returns[b]), "l": int(self._lengths[b])},
                }
            sim.reset(None, ended)  # each env goes on to the next episode of its stream
            obs[ended] = sim.observe(team=True)[ended, 0]
            for b in ended.tolist():
                self._begin(b)
        self._obs = obs
        return obs.copy(), rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        self.native.close()

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        value = getattr(self, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs):
        """Per-env results. The envs share one core, so the method runs once and
        its result is split by env when it is batched (``action_masks``)."""
        result = getattr(self, method_name)(*method_args, **method_kwargs)
        rows = list(self._get_indices(indices))
        if method_name == "action_masks":
            return [result[i] for i in rows]
        return [result for _ in rows]

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None for _ in range(self.num_envs)]

    # ------------------------------------------------------------------ the task
    def action_masks(self) -> np.ndarray:
        """(n_envs, sum(nvec)) bool masks for the current observations."""
        if self.action_mode == "slot":
            return codec.slot_masks(self.sim.slot_present(), self.allow_escalate)
        return self.native.action_masks()

    def member_actions(self, actions: np.ndarray) -> np.ndarray:
        """The policy's actions as native (n_envs, A) member actions."""
        if self.action_mode == "slot":
            return codec.slot_choices_to_members(actions, self.sim.slot_present(), self.config)
        return actions

    def _begin(self, b: int) -> None:
        self.graders[b].begin(self.sim.reset_incidents[b], self.sim.reset_incident_severity[b])
        self._scores[b] = self.graders[b].score
        self._returns[b] = 0.0
        self._lengths[b] = 0


def make_vec_env(task: str = "hard", n_envs: int = 16, seed: int = TRAIN_SEED, **kwargs: Any):
    """A `TriageVecEnv` of ``n_envs`` envs seeded ``seed .. seed + n_envs - 1``
    (each later episode continues its env's generator, so training never meets
    the evaluation seeds when ``seed`` is far from them)."""
    return TriageVecEnv(task, n_envs, seed, **kwargs)


def check_vec_env(env: VecEnv, steps: int = 200, seed: int = 0) -> None:
    """The SB3 VecEnv contract, checked by driving ``env`` with random legal
    actions: shapes and dtypes, observations inside the space, masks of the
    right shape that always allow something per dimension, ``get_action_masks``
    agreeing with ``action_masks()``, and on every episode end a
    ``terminal_observation`` inside the space. Raises AssertionError."""
    from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported

    rng = np.random.default_rng(seed)
    space, n = env.observation_space, env.num_envs
    nvec = np.asarray(env.action_space.nvec)
    assert is_masking_supported(env), "MaskablePPO cannot find action_masks"
    obs = env.reset()
    assert obs.shape == (n, *space.shape) and obs.dtype == space.dtype, (obs.shape, obs.dtype)
    ends = 0
    for _ in range(steps):
        assert all(space.contains(o) for o in obs), "an observation left the space"
        masks = get_action_masks(env)
        assert masks.shape == (n, int(nvec.sum())) and masks.dtype == bool, masks.shape
        parts = np.split(masks, np.cumsum(nvec)[:-1], axis=1)
        assert all(p.any(axis=1).all() for p in parts), "a dimension with no legal action"
        actions = np.stack([[rng.choice(np.flatnonzero(p[i])) for p in parts] for i in range(n)])
        obs, rewards, dones, infos = env.step(actions)
        assert rewards.shape == (n,) and dones.shape == (n,) and len(infos) == n
        assert np.isfinite(rewards).all()
        for i in np.flatnonzero(dones).tolist():
            terminal = infos[i]["terminal_observation"]
            assert space.contains(terminal), "terminal_observation left the space"
            ends += 1
    assert ends > 0, f"no episode ended in {steps} steps"


class ScoreCurveCallback(BaseCallback):
    """The learning curve: env steps vs mean task score, as CSV rows.

    Training scores come from the graders of the episodes that ended (sampled
    actions). Every ``eval_every`` steps it also plays ``eval_episodes``
    deterministic episodes on validation seeds (``VALIDATION_SEED`` onwards,
    apart from training and evaluation seeds) and keeps the best model so far,
    which is what ``best_path`` holds at the end.
    """

    COLUMNS = (
        "timesteps",
        "episodes",
        "train_score",
        "train_return",
        "val_score",
        "val_failures",
        "elapsed_s",
    )

    def __init__(
        self,
        csv_path: str | Path,
        task_id: str,
        env_kwargs: dict[str, Any],
        eval_every: int = 50_000,
        eval_episodes: int = 200,
        best_path: str | Path | None = None,
        window: int = 200,
        verbose: int = 1,
    ) -> None:
        super().__init__(verbose)
        self.csv_path = check_path("csv_path", csv_path)
        self.task_id = task_id
        self.env_kwargs = env_kwargs
        # eval_every=0 would validate after every step; a negative count fails
        # only when the first validation comes, after training.
        self.eval_every = check_int("eval_every", eval_every)
        self.eval_episodes = check_int("eval_episodes", eval_episodes, minimum=0)
        self.best_path = check_path("best_path", best_path, allow_none=True)
        self.window = check_int("window", window)
        self.scores: list[float] = []
        self.returns: list[float] = []
        self.rows: list[dict[str, Any]] = []
        self.best_score = -np.inf
        self._next_eval = eval_every
        self._start = time.perf_counter()
        self._eval_time = 0.0

    def _on_training_start(self) -> None:
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        with self.csv_path.open("w", newline="") as f:
            csv.writer(f).writerow(self.COLUMNS)
        self._start = time.perf_counter()

    def _on_step(self) -> bool:
        for info, done in zip(self.locals["infos"], self.locals["dones"]):
            if done and "task_score" in info:
                self.scores.append(info["task_score"])
                self.returns.append(info["episode"]["r"])
        if self.num_timesteps >= self._next_eval:
            self._next_eval += self.eval_every
            self.record(evaluate=True)
        return True

    def _on_training_end(self) -> None:
        if not self.rows or self.rows[-1]["timesteps"] != self.num_timesteps:
            self.record(evaluate=True)

    def record(self, evaluate: bool) -> dict[str, Any]:
        val_score = val_failures = float("nan")
        if evaluate and self.eval_episodes:
            t0 = time.perf_counter()
            result = validate(self.model, self.task_id, self.eval_episodes, **self.env_kwargs)
            self._eval_time += time.perf_counter() - t0
            val_score, val_failures = result["mean_score"], result["mean_failures"]
            if self.best_path is not None and val_score > self.best_score:
                self.best_score = val_score
                self.model.save(self.best_path, include=["triage"])
        recent = self.scores[-self.window :]
        returns = self.returns[-self.window :]
        row = {
            "timesteps": self.num_timesteps,
            "episodes": len(self.scores),
            "train_score": float(np.mean(recent)) if recent else float("nan"),
            "train_return": float(np.mean(returns)) if returns else float("nan"),
            "val_score": val_score,
            "val_failures": val_failures,
            "elapsed_s": round(time.perf_counter() - self._start, 1),
        }
        self.rows.append(row)
        with self.csv_path.open("a", newline="") as f:
            csv.writer(f).writerow([row[c] for c in self.COLUMNS])
        if self.verbose:
            print(
                f"steps {row['timesteps']:>9,}  episodes {row['episodes']:>7,}  "
                f"train score {row['train_score']:.3f}  val score {val_score:.3f}  "
                f"val failures {val_failures:.2f}  {row['elapsed_s']:.0f}s",
                flush=True,
            )
        return row


def validate(
    model: Any, task_id: str, episodes: int = 200, seed: int = VALIDATION_SEED, **env_kwargs: Any
) -> dict[str, float]:
    """Deterministic, masked play of one episode per seed ``seed .. seed +
    episodes - 1``, all in one batch. Env ``i`` of the batch follows the lone
    env seeded ``seed + i``, so these are the episodes ``alert-triage
    evaluate --seed <seed>`` would play with `PPOAgent`."""
    episodes = check_int("episodes", episodes)
    seed = check_seed(seed)
    env = TriageVecEnv(task_id, episodes, seed, **env_kwargs)
    obs = env.reset()
    final = np.full(episodes, np.nan)
    failures = np.zeros(episodes)
    while np.isnan(final).any():
        action, _ = model.predict(obs, deterministic=True, action_masks=env.action_masks())
        obs, _, dones, infos = env.step(action)
        for i in np.flatnonzero(dones & np.isnan(final)).tolist():
            final[i] = infos[i]["task_score"]
            failures[i] = infos[i]["failures"]
    return {"mean_score": float(final.mean()), "mean_failures": float(failures.mean())}


def set_single_thread() -> None:
    """One torch thread: the nets are small, and this machine's cores are shared."""
    torch.set_num_threads(1)


__all__ = [
    "TRAIN_SEED",
    "VALIDATION_SEED",
    "ScoreCurveCallback",
    "TriageVecEnv",
    "check_vec_env",
    "make_vec_env",
    "set_single_thread",
    "validate",
]
