"""RLlib (new API stack) over the alert-triage envs: multi-agent PPO, one policy
per role, with action masking; and single-policy PPO over the native batched
agents view through RLlib's vector entry point.

Two modes:

* ``"multiagent"``: the PettingZoo parallel env wrapped in RLlib's
  ``ParallelPettingZooEnv`` and registered with ``register_env``. Every
  ``investigator_*`` agent maps to the ``"investigator"`` module (shared
  weights), ``escalation_desk`` to the ``"escalation_desk"`` module. Sampling
  runs through RLlib's ``MultiAgentEnvRunner``, which steps its envs one
  after the other (``SyncVectorMultiAgentEnv``).
* ``"vector"``: `AlertTriageAgentVectorEnv` (B envs x A agents flattened into
  ``B * A`` rows of one ``gym.vector.VectorEnv``, stepped by the batched core in
  one call) handed to RLlib's ``SingleAgentEnvRunner`` unvectorized: the
  registered creator returns the VectorEnv itself, and
  ``env_runners(gym_env_vectorize_mode="vector_entry_point",
  num_envs_per_env_runner=B * A)`` makes RLlib call it as gymnasium's
  ``vector_entry_point(num_envs=B * A)`` instead of wrapping B * A single envs
  in a SyncVectorEnv. All rows (both roles, told apart by the role one-hot in
  the observation) train one shared module.

Masks: both modes feed the module ``Dict(observation=Box, action_mask=Box)``
observations (the PettingZoo env's own layout; the vector env gets it from
`MaskedObsVectorEnv`), and `MaskedPPOTorchRLModule` builds RLlib's default PPO
networks on the ``observation`` part and pushes masked logits to the float
minimum, so masked actions are never sampled and carry no gradient. The envs
run with ``masked_action="raise"``: a masked action reaching the env is an
error, not a silent NOOP.

Needs the ``[rllib]`` extra (``ray[rllib]``) and the CPU build of torch.
"""

from __future__ import annotations

import importlib.util
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .._checks import (
    check_callable,
    check_choice,
    check_int,
    check_mapping,
    check_number,
    check_path,
    check_seed,
)
from ..gym_env import AlertTriageAgentVectorEnv
from ..multiagent import parallel_env
from ..sim.config import resolve_config

RLLIB_HINT = (
    "RLlib training needs the [rllib] extra: install the CPU build of torch first "
    "(pip install torch==2.13.0), then pip install 'adaptive-alert-triage[rllib]'"
)

if importlib.util.find_spec("ray") is None or importlib.util.find_spec("torch") is None:
    raise ImportError(RLLIB_HINT)

import torch  # noqa: E402
from ray.rllib.algorithms.ppo import PPOConfig  # noqa: E402
from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import (  # noqa: E402
    DefaultPPOTorchRLModule,
)
from ray.rllib.core import DEFAULT_MODULE_ID  # noqa: E402
from ray.rllib.core.columns import Columns  # noqa: E402
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec  # noqa: E402
from ray.rllib.core.rl_module.rl_module import RLModuleSpec  # noqa: E402
from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv  # noqa: E402
from ray.rllib.utils.metrics import (  # noqa: E402
    ENV_RUNNER_RESULTS,
    EPISODE_MODULE_RETURN_MEAN,
    EPISODE_RETURN_MEAN,
    LEARNER_RESULTS,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_EPISODES_LIFETIME,
)
from ray.tune.registry import register_env  # noqa: E402

MODES = ("multiagent", "vector")
#: Names under which the env creators are registered with ``register_env``.
MULTIAGENT_ENV = "adaptive_alert_triage_parallel"
VECTOR_ENV = "adaptive_alert_triage_agent_vector"
#: Module ids of the multi-agent mode and the one module of the vector mode.
INVESTIGATOR, DESK, SHARED = "investigator", "escalation_desk", DEFAULT_MODULE_ID
OBS_KEY, MASK_KEY = "observation", "action_mask"
#: Training seeds start here, away from ``alert-triage evaluate``'s 0..99.
TRAIN_SEED = 10_000
#: Float minimum for masked logits (exp() of it is 0 in float32).
_MASKED_LOGIT = torch.finfo(torch.float32).min


# --------------------------------------------------------------------- module
class MaskedPPOTorchRLModule(DefaultPPOTorchRLModule):
    """RLlib's default PPO torch module over ``Dict(observation, action_mask)``.

    The encoder, policy and value heads are the defaults for the ``observation``
    Box (sized by ``model_config``, e.g. ``fcnet_hiddens``); every forward pass
    (inference, exploration, training) replaces the logits of actions whose
    mask entry is 0 by the float32 minimum. The value function reads the
    observation only. The module keeps the Dict as its ``observation_space``,
    so RLlib's connectors pass the Dict through untouched.
    """

    def __init__(self, *, observation_space: gym.Space | None = None, **kwargs: Any) -> None:
        if not (
            isinstance(observation_space, spaces.Dict)
            and {OBS_KEY, MASK_KEY} <= set(observation_space.spaces)
        ):
            raise ValueError(
                f"MaskedPPOTorchRLModule needs a Dict observation space with keys "
                f"{OBS_KEY!r} and {MASK_KEY!r}, got {observation_space}"
            )
        # The default networks are built for the observation part alone.
        super().__init__(observation_space=observation_space[OBS_KEY], **kwargs)
        self.observation_space = observation_space

    @staticmethod
    def _split(batch: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        """(the batch with the bare observation as OBS, the mask); the input
        batch is not changed."""
        obs = batch[Columns.OBS]
        if not isinstance(obs, dict):  # already split (e.g. a caller's own batch)
            return batch, None
        inner = dict(batch)
        inner[Columns.OBS] = obs[OBS_KEY]
        return inner, obs[MASK_KEY]

    @staticmethod
    def _mask(out: dict[str, Any], mask: Any) -> dict[str, Any]:
        if mask is not None:
            logits = out[Columns.ACTION_DIST_INPUTS]
            out[Columns.ACTION_DIST_INPUTS] = torch.where(
                mask.bool(), logits, torch.full_like(logits, _MASKED_LOGIT)
            )
        return out

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        inner, mask = self._split(batch)
        return self._mask(super()._forward(inner, **kwargs), mask)

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        inner, mask = self._split(batch)
        return self._mask(super()._forward_train(inner, **kwargs), mask)

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None):
        inner, _ = self._split(batch)
        return super().compute_values(inner, embeddings)


def module_spec(hidden: tuple[int, ...] = (128, 128)) -> RLModuleSpec:
    """The spec of one masked PPO module (spaces are filled in by RLlib)."""
    return RLModuleSpec(
        module_class=MaskedPPOTorchRLModule,
        model_config={"fcnet_hiddens": list(hidden), "vf_share_layers": False},
    )


# ----------------------------------------------------------------------- envs
class MaskedObsVectorEnv(gym.vector.VectorWrapper):
    """A VectorEnv with ``action_masks()`` (like `AlertTriageAgentVectorEnv`)
    seen with ``Dict(observation, action_mask)`` observations, the layout of the
    PettingZoo env, so `MaskedPPOTorchRLModule` serves both modes.

    The mask of row i is the one for the observation of row i returned by the
    same call (the core's ``legal`` after that reset or step).
    """

    def __init__(self, env: gym.vector.VectorEnv) -> None:
        super().__init__(env)
        n_actions = int(env.single_action_space.n)
        self.single_observation_space = spaces.Dict(
            {
                OBS_KEY: env.single_observation_space,
                MASK_KEY: spaces.Box(0, 1, (n_actions,), np.int8),
            }
        )
        self.observation_space = gym.vector.utils.batch_space(
            self.single_observation_space, self.num_envs
        )

    def _with_mask(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        return {OBS_KEY: obs, MASK_KEY: self.env.action_masks().astype(np.int8)}

    def reset(self, *, seed=None, options=None):
        obs, infos = self.env.reset(seed=seed, options=options)
        return self._with_mask(obs), infos

    def step(self, actions):
        obs, rewards, terminated, truncated, infos = self.env.step(actions)
        return self._with_mask(obs), rewards, terminated, truncated, infos


def _env_kwargs(env_config: dict[str, Any]) -> dict[str, Any]:
    """Env constructor arguments from RLlib's env_config (an EnvContext):
    ``task`` plus any env overrides; RLlib's own keys are dropped."""
    kwargs = {k: v for k, v in dict(env_config).items() if k not in ("task", "num_envs")}
    kwargs.setdefault("masked_action", "raise")
    return kwargs


def make_multiagent_env(env_config: dict[str, Any]) -> ParallelPettingZooEnv:
    """The registered multi-agent creator: the PettingZoo parallel env in
    RLlib's ``ParallelPettingZooEnv``."""
    return ParallelPettingZooEnv(
        parallel_env(task_id=env_config.get("task", "medium"), **_env_kwargs(env_config))
    )


def make_vector_env(env_config: dict[str, Any]) -> MaskedObsVectorEnv:
    """The registered vector creator. RLlib (``vector_entry_point`` mode) passes
    ``num_envs`` = rows = B envs x A agents; B is num_envs / A."""
    task = env_config.get("task", "medium")
    kwargs = _env_kwargs(env_config)
    rows = int(env_config.get("num_envs", 1))
    n_agents = agents_per_env(task, **kwargs)
    if rows % n_agents:
        raise ValueError(
            f"num_envs_per_env_runner={rows} is not a multiple of the {n_agents} agents "
            f"of a {task!r} env (each env is {n_agents} rows)"
        )
    return MaskedObsVectorEnv(
        AlertTriageAgentVectorEnv(num_envs=rows // n_agents, task_id=task, **kwargs)
    )


def agents_per_env(task: str, **overrides: Any) -> int:
    """Team size (investigators + the desk) of a task with overrides."""
    env_keys = ("masked_action", "reward_mode", "backend", "render_mode", "scenario")
    cfg_overrides = {k: v for k, v in overrides.items() if k not in env_keys}
    return resolve_config(task, overrides.get("scenario"), **cfg_overrides).n_agents


def register_envs() -> None:
    """Register both creators (idempotent; Ray ships the registry to workers)."""
    register_env(MULTIAGENT_ENV, make_multiagent_env)
    register_env(VECTOR_ENV, make_vector_env)


def policy_for_agent(agent_id: str, *args: Any, **kwargs: Any) -> str:
    """One module per role: investigators share one, the desk has its own."""
    return DESK if agent_id == "escalation_desk" else INVESTIGATOR


# --------------------------------------------------------------------- config
def build_config(
    mode: str = "multiagent",
    task: str = "medium",
    *,
    num_env_runners: int = 0,
    envs_per_runner: int = 8,
    seed: int = TRAIN_SEED,
    train_batch_size: int = 4000,
    minibatch_size: int = 500,
    num_epochs: int = 10,
    lr: float = 3e-4,
    hidden: tuple[int, ...] = (128, 128),
    env_overrides: dict[str, Any] | None = None,
) -> PPOConfig:
    """A PPOConfig for one of `MODES`.

    ``envs_per_runner`` is the number of envs per env runner: in vector mode B,
    each A rows of the one native VectorEnv; in multi-agent mode the number of
    PettingZoo envs RLlib's ``SyncVectorMultiAgentEnv`` steps one after the
    other (their observations batched for the modules).

    Every argument is checked here, the task and env overrides by building one
    env of the mode: RLlib takes 1.5 envs, NaN learning rates or zero epochs
    without a word, and an unknown task would only fail in ``build_algo``.
    """
    check_choice("mode", mode, MODES)
    if not isinstance(task, str):
        raise TypeError(f"task must be a str (a task id), got {task!r}")
    num_env_runners = check_int("num_env_runners", num_env_runners, minimum=0)
    envs_per_runner = check_int("envs_per_runner", envs_per_runner)
    seed = check_seed(seed)
    train_batch_size = check_int("train_batch_size", train_batch_size)
    minibatch_size = check_int("minibatch_size", minibatch_size)
    if minibatch_size > train_batch_size:
        raise ValueError(
            f"minibatch_size={minibatch_size} exceeds train_batch_size={train_batch_size}"
        )
    num_epochs = check_int("num_epochs", num_epochs)
    lr = check_number("lr", lr, positive=True)
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence) or not hidden:
        raise TypeError(f"hidden must be a non-empty sequence of layer sizes, got {hidden!r}")
    hidden = tuple(check_int(f"hidden[{i}]", size) for i, size in enumerate(hidden))
    overrides = check_mapping("env_overrides", env_overrides)
    reserved = sorted({"task", "num_envs"} & set(overrides))
    if reserved:
        raise ValueError(
            f"env_overrides may not set {reserved}: pass the task as task= and the "
            f"env count as envs_per_runner="
        )
    env_config = {"task": task, **overrides}
    # One throwaway env of the mode: the task, its fields and the env options
    # are checked now, in the caller's process, not in an env runner later.
    if mode == "multiagent":
        make_multiagent_env(env_config).close()
    else:
        make_vector_env({**env_config, "num_envs": agents_per_env(task, **overrides)}).close()
    register_envs()
    # RLlib's env pre-check steps random actions from the action space, masks
    # ignored, which a masked_action="raise" env rightly refuses: skip it when
    # masks are enforced.
    check_env = env_config.get("masked_action", "raise") != "raise"
    config = (
        PPOConfig()
        .framework("torch")
        .debugging(seed=seed)
        .training(
            train_batch_size_per_learner=train_batch_size,
            minibatch_size=minibatch_size,
            num_epochs=num_epochs,
            lr=lr,
            gamma=0.99,
            lambda_=0.95,
            entropy_coeff=0.01,
        )
        .learners(num_learners=0)
    )
    if mode == "multiagent":
        config = (
            config.environment(
                MULTIAGENT_ENV, env_config=env_config, disable_env_checking=not check_env
            )
            .env_runners(num_env_runners=num_env_runners, num_envs_per_env_runner=envs_per_runner)
            .multi_agent(policies={INVESTIGATOR, DESK}, policy_mapping_fn=policy_for_agent)
            .rl_module(
                rl_module_spec=MultiRLModuleSpec(
                    rl_module_specs={INVESTIGATOR: module_spec(hidden), DESK: module_spec(hidden)}
                )
            )
        )
    else:
        rows = envs_per_runner * agents_per_env(task, **(env_overrides or {}))
        config = (
            config.environment(
                VECTOR_ENV, env_config=env_config, disable_env_checking=not check_env
            )
            .env_runners(
                num_env_runners=num_env_runners,
                num_envs_per_env_runner=rows,
                gym_env_vectorize_mode="vector_entry_point",
            )
            .rl_module(rl_module_spec=module_spec(hidden))
        )
    return config


# ---------------------------------------------------------------------- train
def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """The few numbers of one ``algo.train()`` result worth printing: RLlib's
    mean episode return (in multi-agent mode the sum over all agents, i.e. team
    size x the team return in the default ``reward_mode="team"``; in vector mode
    one row's return, i.e. the team return), the mean episode return per module
    (summed over the agents it plays), env steps and episodes so far, and each
    module's total loss."""
    runners = result.get(ENV_RUNNER_RESULTS, {})
    learners = result.get(LEARNER_RESULTS, {})
    losses = {
        module: float(stats["total_loss"])
        for module, stats in learners.items()
        if isinstance(stats, dict) and "total_loss" in stats
    }
    ret = runners.get(EPISODE_RETURN_MEAN, math.nan)
    return {
        "iteration": int(result.get("training_iteration", 0)),
        "episode_return_mean": float(ret) if ret is not None else math.nan,
        "module_returns": {
            module: float(value)
            for module, value in runners.get(EPISODE_MODULE_RETURN_MEAN, {}).items()
        },
        "env_steps": int(runners.get(NUM_ENV_STEPS_SAMPLED_LIFETIME, 0)),
        "episodes": int(runners.get(NUM_EPISODES_LIFETIME, 0)),
        "losses": losses,
    }


def _line(summary: dict[str, Any]) -> str:
    def pairs(values: dict[str, float]) -> str:
        return " ".join(f"{k}={v:.3f}" for k, v in sorted(values.items()))

    line = (
        f"iter {summary['iteration']:3d}  return {summary['episode_return_mean']:8.3f}"
        f"  env_steps {summary['env_steps']:8d}  episodes {summary['episodes']:6d}"
        f"  {summary['wall_s']:5.1f}s"
    )
    if summary["module_returns"]:
        line += f"  module returns {pairs(summary['module_returns'])}"
    return line + f"  loss {pairs(summary['losses'])}"


def train(
    config: PPOConfig,
    iterations: int,
    out: str | Path | None = None,
    log: Callable[[str], None] | None = print,
) -> list[dict[str, Any]]:
    """Build the algorithm, run ``iterations`` training iterations (logging one
    line each), save a checkpoint to ``out`` if given, and return the per-
    iteration summaries. Ray must be initialized (or is started locally).

    ``iterations`` must be an int >= 1: none would save an untrained checkpoint."""
    if not isinstance(config, PPOConfig):
        raise TypeError(f"config must be a PPOConfig (see build_config), got {config!r}")
    iterations = check_int("iterations", iterations)
    out = check_path("out", out, allow_none=True)
    log = check_callable("log", log)
    algo = config.build_algo()
    summaries = []
    try:
        for _ in range(iterations):
            start = time.perf_counter()
            summary = summarize(algo.train())
            summary["wall_s"] = time.perf_counter() - start
            summaries.append(summary)
            if log is not None:
                log(_line(summary))
        if out is not None:
            path = out.resolve()
            path.mkdir(parents=True, exist_ok=True)
            algo.save_to_path(str(path))
            if log is not None:
                log(f"checkpoint: {path}")
    finally:
        algo.stop()
    return summaries


__all__ = [
    "DESK",
    "INVESTIGATOR",
    "MODES",
    "MULTIAGENT_ENV",
    "RLLIB_HINT",
    "SHARED",
    "TRAIN_SEED",
    "VECTOR_ENV",
    "MaskedObsVectorEnv",
    "MaskedPPOTorchRLModule",
    "agents_per_env",
    "build_config",
    "make_multiagent_env",
    "make_vector_env",
    "policy_for_agent",
    "register_envs",
    "summarize",
    "train",
]
