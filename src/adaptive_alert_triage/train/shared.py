"""One parameter-shared MaskablePPO policy for every agent of the multi-agent
env, trained with Stable-Baselines3 through SuperSuit.

SuperSuit turns the PettingZoo parallel env into a vector env with one row
per agent (``pettingzoo_env_to_vec_env_v1``), concatenates ``n_copies`` such
envs (``concat_vec_envs_v1(..., base_class="stable_baselines3")``), and SB3
sees ``n_copies * n_agents`` envs stepped by one policy: parameter sharing.
Investigators and the desk share the weights and tell their roles apart by the
role one-hot at the end of every observation.

The Dict observation goes through SuperSuit unchanged (a dict of stacked
arrays); `MaskedSharedVecEnv`, an SB3 ``VecEnvWrapper`` on top, hands the
policy the ``observation`` vector and keeps the ``action_mask`` rows, which it
serves as ``action_masks()`` to MaskablePPO. So the policy is trained and
plays with the env's real masks: the env keeps ``masked_action="raise"``, and
a masked action would stop training with an error.

`play_shared_episode` plays one episode of the parallel env with a saved or
trained policy and returns the team return.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .._checks import (
    check_bool,
    check_int,
    check_number,
    check_path,
    check_ppo_batches,
    check_seed,
)
from ..multiagent import AlertTriageParallelEnv, parallel_env
from ._deps import require_train

require_train()

try:
    import supersuit as ss
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "parameter sharing through SuperSuit needs supersuit: pip install 'supersuit==3.11.0'"
    ) from exc

import torch  # noqa: E402
from gymnasium import spaces  # noqa: E402
from sb3_contrib import MaskablePPO  # noqa: E402
from stable_baselines3.common.vec_env import VecEnvWrapper  # noqa: E402
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices  # noqa: E402

#: Training seeds start here; ``alert-triage evaluate`` uses 0..episodes-1.
TRAIN_SEED = 10_000
ACTION_MASKS = "action_masks"


class MaskedSharedVecEnv(VecEnvWrapper):
    """The SuperSuit SB3 vec env with the Dict observation split: the policy
    sees ``observation`` (a Box), ``action_masks()`` returns the matching
    ``action_mask`` rows as bools, and every ``terminal_observation`` in the
    infos is cut down to its ``observation`` too.

    ``seed`` seeds the first reset: copy ``i`` of the env plays seed ``seed + i``
    (SuperSuit's concatenated env adds the index), then each copy continues its
    own stream.
    """

    def __init__(self, venv, seed: int | None = None, agents_per_copy: int | None = None) -> None:
        inner = venv.observation_space
        if not isinstance(inner, spaces.Dict) or "action_mask" not in inner.spaces:
            raise TypeError("expected a Dict observation with an 'action_mask'")
        super().__init__(venv, observation_space=inner["observation"])
        self._seed = seed
        self._per_copy = agents_per_copy or self.num_envs
        self._masks = np.ones((self.num_envs, self.action_space.n), dtype=bool)

    def _split(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        self._masks = np.asarray(obs["action_mask"], dtype=bool)
        return np.asarray(obs["observation"], dtype=np.float32)

    def reset(self) -> np.ndarray:
        seed, self._seed = self._seed, None
        if seed is None:
            return self._split(self.venv.reset())
        # SuperSuit's SB3 wrapper drops a reset seed; seed its vector env below.
        obs, self.venv.reset_infos = self.venv.venv.reset(seed=seed)
        return self._split(obs)

    def seed(self, seed: int | None = None) -> list[int | None]:
        """Seed the next reset (SuperSuit's vector env has no ``seed``): copy
        ``i`` of the env then plays seed ``seed + i``."""
        self._seed = seed
        return [None if seed is None else seed + i // self._per_copy for i in range(self.num_envs)]

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        for info in infos:
            terminal = info.get("terminal_observation")
            if isinstance(terminal, dict):
                info["terminal_observation"] = np.asarray(terminal["observation"], np.float32)
        return self._split(obs), rewards, dones, infos

    def action_masks(self) -> np.ndarray:
        """(num_envs, n_actions) bool: the masks of the last observations."""
        return self._masks.copy()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        if attr_name == "render_mode":
            # SuperSuit's vector env has one render_mode; SB3 asks for one per env.
            return [getattr(self.venv, "render_mode", None)] * len(self._get_indices(indices))
        return self.venv.get_attr(attr_name, indices)

    def has_attr(self, attr_name: str) -> bool:
        return attr_name == ACTION_MASKS or self.venv.has_attr(attr_name)

    def env_method(
        self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs
    ) -> list[Any]:
        if method_name == ACTION_MASKS:
            rows = self._get_indices(indices)
            return [self._masks[i].copy() for i in rows]
        return self.venv.env_method(method_name, *method_args, indices=indices, **method_kwargs)

    def _get_indices(self, indices: VecEnvIndices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)


def make_shared_vec_env(
    task_id: str = "hard",
    n_copies: int = 2,
    seed: int | None = TRAIN_SEED,
    **overrides: Any,
) -> MaskedSharedVecEnv:
    """``n_copies`` parallel envs, one SB3 env row per agent of each (see the
    module docstring). ``overrides`` go to `parallel_env` (task fields,
    ``reward_mode``, ``masked_action``...)."""
    n_copies = check_int("n_copies", n_copies)  # 0 used to fail with an IndexError
    seed = check_seed(seed, allow_none=True)
    env = parallel_env(task_id, **overrides)
    vec = ss.pettingzoo_env_to_vec_env_v1(env)
    vec = ss.concat_vec_envs_v1(vec, n_copies, num_cpus=0, base_class="stable_baselines3")
    return MaskedSharedVecEnv(vec, seed=seed, agents_per_copy=len(env.possible_agents))


def train_shared(
    task_id: str = "hard",
    timesteps: int = 50_000,
    out: str | Path | None = None,
    n_copies: int = 2,
    seed: int = TRAIN_SEED,
    n_steps: int = 64,
    batch_size: int = 256,
    n_epochs: int = 4,
    learning_rate: float = 3e-4,
    gamma: float = 0.97,
    ent_coef: float = 0.01,
    hidden: int = 64,
    verbose: int = 0,
    **overrides: Any,
) -> MaskablePPO:
    """Train one MaskablePPO policy shared by every agent; save it to ``out``
    (a ``.zip``) when given. ``timesteps`` counts agent-steps (SB3 env rows),
    ``n_agents`` per env step.

    Every argument is checked before anything is trained or written: a run of
    no steps would save an untrained model."""
    timesteps = check_int("timesteps", timesteps)
    out = check_path("out", out, allow_none=True)
    n_copies = check_int("n_copies", n_copies)
    seed = check_seed(seed)
    n_steps = check_int("n_steps", n_steps)
    batch_size = check_int("batch_size", batch_size, minimum=2)
    n_epochs = check_int("n_epochs", n_epochs)
    learning_rate = check_number("learning_rate", learning_rate, positive=True)
    gamma = check_number("gamma", gamma, minimum=0, maximum=1)
    ent_coef = check_number("ent_coef", ent_coef, minimum=0)
    hidden = check_int("hidden", hidden)
    verbose = check_int("verbose", verbose, minimum=0)
    venv = make_shared_vec_env(task_id, n_copies=n_copies, seed=seed, **overrides)
    rows = venv.num_envs
    try:
        check_ppo_batches(n_steps * rows, batch_size, f"n_steps={n_steps} x {rows} agent rows")
    except ValueError:
        venv.close()
        raise
    torch.manual_seed(seed)
    model = MaskablePPO(
        "MlpPolicy",
        venv,
        n_steps=n_steps,
        batch_size=batch_size,
        n_epochs=n_epochs,
        learning_rate=learning_rate,
        gamma=gamma,
        ent_coef=ent_coef,
        policy_kwargs={"net_arch": [hidden, hidden]},
        seed=seed,
        device="cpu",
        verbose=verbose,
    )
    model.learn(total_timesteps=timesteps)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        model.save(out)
    venv.close()
    return model


def load_shared(path: str | Path) -> MaskablePPO:
    """The shared policy saved at ``path``, or at ``path`` + ``.zip`` (SB3 adds
    the suffix when saving). A missing file is a ValueError naming the path
    given: SB3's own error would name ``path.zip.zip``."""
    given = check_path("path", path)
    for candidate in (given, Path(f"{given}.zip")):
        if candidate.is_file():
            return MaskablePPO.load(candidate, device="cpu")
    raise ValueError(f"policy file {str(path)!r} does not exist (nor with .zip added)")


def shared_actions(
    model: MaskablePPO,
    observations: dict[str, dict[str, np.ndarray]],
    deterministic: bool = True,
) -> dict[str, int]:
    """Every agent's action from the one shared policy, masks applied."""
    agents = list(observations)
    obs = np.stack([observations[a]["observation"] for a in agents]).astype(np.float32)
    masks = np.stack([observations[a]["action_mask"] for a in agents]).astype(bool)
    actions, _ = model.predict(obs, action_masks=masks, deterministic=deterministic)
    return {agent: int(action) for agent, action in zip(agents, actions)}


def play_shared_episode(
    model: MaskablePPO | str | Path,
    task_id: str = "hard",
    seed: int = 0,
    deterministic: bool = True,
    env: AlertTriageParallelEnv | None = None,
    **overrides: Any,
) -> float:
    """Play one episode of the parallel env, every agent acting with the shared
    policy (a model or the path of a saved one), and return the team return
    (the sum of the team rewards, whatever the env's ``reward_mode``).

    The env keeps ``masked_action="raise"`` unless ``overrides`` say otherwise,
    so an illegal action would raise rather than pass as a NOOP."""
    seed = check_seed(seed, allow_none=True)
    deterministic = check_bool("deterministic", deterministic)
    if env is not None and not isinstance(env, AlertTriageParallelEnv):
        raise TypeError(f"env must be an AlertTriageParallelEnv or None, got {env!r}")
    if not isinstance(model, MaskablePPO):
        if not isinstance(model, (str, os.PathLike)):
            raise TypeError(f"model must be a MaskablePPO or a path, got {model!r}")
        model = load_shared(model)
    if env is None:
        env = parallel_env(task_id, **overrides)
    observations, _ = env.reset(seed=seed)
    total = 0.0
    while env.agents:
        observations, *_ = env.step(shared_actions(model, observations, deterministic))
        # The team reward of the step (each agent's share summed, in "individual").
        total += float(env.last_outcome.reward[0])
    return total
