"""MAPPO with TorchRL over the PettingZoo parallel env.

The env is wrapped by `torchrl.envs.libs.pettingzoo.PettingZooWrapper`, grouped
by role: ``"investigators"`` (``investigator_0..n-1``, one tensor of shape
``(n, ...)``) and ``"desk"`` (``escalation_desk``). With ``use_mask=True`` the
wrapper lifts each agent's ``action_mask`` out of the Dict observation into
``(group, "action_mask")`` and writes ``(group, "mask")`` (agents alive); the
observation vector itself sits at ``(group, "observation", "observation")``.

Per group, `build_mappo` makes

* an actor: one MLP shared by the group's agents (``share_params=True``),
  per-agent logits, sampled through `MaskedCategorical` with the group's
  ``action_mask``, so masked actions are never taken;
* a centralised critic: one MLP over the concatenated observations of all the
  group's agents, a value per agent (MAPPO);
* a `ClipPPOLoss` with a GAE estimator on the group's reward and done keys.

`train_mappo` collects with TorchRL's synchronous single-process collector
(``Collector``: torchrl 0.14 folded ``SyncDataCollector`` into it) and optimises
the sum of the groups' losses with one Adam. Needs ``torchrl`` and
``tensordict`` (``torchrl==0.14.1``, ``tensordict==0.14.3``).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

try:
    import torch
    from tensordict.nn import TensorDictModule, TensorDictSequential
    from torch import nn
    from torchrl.collectors import Collector
    from torchrl.envs.libs.pettingzoo import PettingZooWrapper
    from torchrl.envs.utils import check_env_specs
    from torchrl.modules import MaskedCategorical, MultiAgentMLP, ProbabilisticActor
    from torchrl.objectives import ClipPPOLoss, ValueEstimators
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "MAPPO with TorchRL needs torch, torchrl and tensordict: install the CPU build "
        "of torch first (pip install torch==2.13.0), then pip install "
        "'torchrl==0.14.1' 'tensordict==0.14.3'"
    ) from exc

from .._checks import check_callable, check_int, check_mapping, check_number, check_seed
from ..multiagent import parallel_env

INVESTIGATORS = "investigators"
DESK = "desk"
GROUPS = (INVESTIGATORS, DESK)
#: The observation vector's key inside a group's tensordict.
OBS = ("observation", "observation")


def role_group_map(possible_agents: list[str]) -> dict[str, list[str]]:
    """``{"investigators": [investigator_*], "desk": ["escalation_desk"]}``."""
    investigators = [a for a in possible_agents if a.startswith("investigator_")]
    desk = [a for a in possible_agents if a not in investigators]
    return {INVESTIGATORS: investigators, DESK: desk}


def make_env(task_id: str = "hard", seed: int | None = 0, **overrides: Any) -> PettingZooWrapper:
    """The TorchRL env: the parallel env grouped by role, action masks on.

    ``overrides`` go to `parallel_env` (task fields, ``reward_mode``, ...).

    Random actions from its ``action_spec`` respect the masks (the wrapper
    updates the spec's mask every step). A `TransformedEnv` around it keeps a
    copy of the spec that does not follow those updates, so its ``rand()``
    (and `check_env_specs` on it) can draw masked actions; policies that read
    ``(group, "action_mask")``, as `build_mappo`'s do, are unaffected."""
    pz = parallel_env(task_id, seed=seed, **overrides)
    with warnings.catch_warnings():
        # "PettingZoo in TorchRL is tested using version == 1.24.3": the
        # parallel API it uses is the same in 1.27.
        warnings.filterwarnings("ignore", message="PettingZoo in TorchRL", category=UserWarning)
        return PettingZooWrapper(
            pz,
            group_map=role_group_map(pz.possible_agents),
            use_mask=True,
            categorical_actions=True,
            seed=seed,
        )


def check_specs(env) -> None:
    """`torchrl.envs.utils.check_env_specs` (raises on any mismatch)."""
    check_env_specs(env)


@dataclass(frozen=True)
class MAPPOConfig:
    frames_per_batch: int = 400
    epochs: int = 4
    minibatch_size: int = 100
    lr: float = 3e-4
    gamma: float = 0.97
    lmbda: float = 0.95
    clip_epsilon: float = 0.2
    entropy_coeff: float = 0.01
    critic_coeff: float = 1.0
    max_grad_norm: float = 0.5
    hidden: int = 64
    depth: int = 2
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Every field checked on construction: a zero batch or minibatch used to
        end in a ZeroDivisionError or a bare range() error, and a NaN gamma in a
        RuntimeError from inside torch."""
        values: dict[str, Any] = {
            name: check_int(name, getattr(self, name))
            for name in ("frames_per_batch", "epochs", "minibatch_size", "hidden")
        }
        values["depth"] = check_int("depth", self.depth, minimum=0)
        for name in ("lr", "clip_epsilon", "max_grad_norm"):
            values[name] = check_number(name, getattr(self, name), positive=True)
        for name in ("gamma", "lmbda"):
            values[name] = check_number(name, getattr(self, name), minimum=0, maximum=1)
        for name in ("entropy_coeff", "critic_coeff"):
            values[name] = check_number(name, getattr(self, name), minimum=0)
        values["overrides"] = check_mapping("overrides", self.overrides, allow_none=False)
        for name, value in values.items():
            object.__setattr__(self, name, value)


@dataclass
class MAPPO:
    """The pieces of a MAPPO learner: the joint policy the collector runs (all
    groups' actors in sequence), and per group its actor, critic and loss."""

    policy: TensorDictSequential
    actors: dict[str, ProbabilisticActor]
    critics: dict[str, TensorDictModule]
    losses: dict[str, ClipPPOLoss]

    def parameters(self) -> list[nn.Parameter]:
        seen: dict[int, nn.Parameter] = {}
        for loss in self.losses.values():
            for p in loss.parameters():
                seen.setdefault(id(p), p)
        return list(seen.values())


def build_mappo(env, config: MAPPOConfig | None = None) -> MAPPO:
    """Actor, centralised critic and ClipPPOLoss + GAE for every group of ``env``."""
    config = config or MAPPOConfig()
    actors, critics, losses = {}, {}, {}
    for group in GROUPS:
        obs_dim = env.observation_spec[(group, *OBS)].shape[-1]
        n_agents = env.observation_spec[(group, *OBS)].shape[-2]
        n_actions = env.full_action_spec[group, "action"].space.n
        actor_net = MultiAgentMLP(
            n_agent_inputs=obs_dim,
            n_agent_outputs=n_actions,
            n_agents=n_agents,
            centralized=False,
            share_params=True,
            depth=config.depth,
            num_cells=config.hidden,
            activation_class=nn.Tanh,
        )
        actor = ProbabilisticActor(
            TensorDictModule(actor_net, in_keys=[(group, *OBS)], out_keys=[(group, "logits")]),
            in_keys={"logits": (group, "logits"), "mask": (group, "action_mask")},
            out_keys=[(group, "action")],
            distribution_class=MaskedCategorical,
            return_log_prob=True,
            log_prob_key=(group, "action_log_prob"),
        )
        critic_net = MultiAgentMLP(
            n_agent_inputs=obs_dim,
            n_agent_outputs=1,
            n_agents=n_agents,
            centralized=True,
            share_params=True,
            depth=config.depth,
            num_cells=config.hidden,
            activation_class=nn.Tanh,
        )
        critic = TensorDictModule(
            critic_net, in_keys=[(group, *OBS)], out_keys=[(group, "state_value")]
        )
        loss = ClipPPOLoss(
            actor_network=actor,
            critic_network=critic,
            clip_epsilon=config.clip_epsilon,
            entropy_coeff=config.entropy_coeff,
            critic_coeff=config.critic_coeff,
            normalize_advantage=True,
            # Advantages are (batch, agents, 1): normalise over batch and agents
            # together (the last, size-1 dim is the one "kept apart").
            normalize_advantage_exclude_dims=(-1,),
        )
        loss.set_keys(
            reward=(group, "reward"),
            action=(group, "action"),
            sample_log_prob=(group, "action_log_prob"),
            value=(group, "state_value"),
            advantage=(group, "advantage"),
            value_target=(group, "value_target"),
            done=(group, "done"),
            terminated=(group, "terminated"),
        )
        loss.make_value_estimator(ValueEstimators.GAE, gamma=config.gamma, lmbda=config.lmbda)
        actors[group], critics[group], losses[group] = actor, critic, loss
    policy = TensorDictSequential(*(actors[g] for g in GROUPS))
    return MAPPO(policy=policy, actors=actors, critics=critics, losses=losses)


def team_rewards(data, reward_mode: str = "team") -> torch.Tensor:
    """The per-step team reward of a collected batch, shape ``(T,)``: under
    ``reward_mode="team"`` every agent gets it (the desk's is taken), under
    ``"individual"`` it is the sum of every agent's reward."""
    if reward_mode == "team":
        return data["next", DESK, "reward"].reshape(data.shape[0], -1)[:, 0]
    per_agent = torch.cat(
        [data["next", g, "reward"].reshape(data.shape[0], -1) for g in GROUPS], dim=-1
    )
    return per_agent.sum(-1)


@dataclass
class IterationStats:
    iteration: int
    frames: int
    mean_reward: float  # mean per-step team reward over the batch
    episodes: int  # episodes that ended in the batch
    mean_return: float  # their mean team return (nan if none ended)
    # Mean over the iteration's minibatch updates, summed over the groups:
    loss_objective: float
    loss_critic: float
    loss_entropy: float
    seconds: float


def train_mappo(
    task_id: str = "hard",
    iterations: int = 5,
    config: MAPPOConfig | None = None,
    seed: int = 10_000,
    callback: Callable[[IterationStats], None] | None = None,
) -> tuple[MAPPO, list[IterationStats]]:
    """Run ``iterations`` MAPPO iterations (``frames_per_batch`` env steps each).

    ``iterations`` must be an int >= 1: the collector's frame budget is
    ``frames_per_batch * iterations``, so -1 never stopped, 0 returned an
    untrained learner and 1.5 ran 2 iterations."""
    iterations = check_int("iterations", iterations)
    if config is None:
        config = MAPPOConfig()
    elif not isinstance(config, MAPPOConfig):
        raise TypeError(f"config must be a MAPPOConfig or None, got {config!r}")
    seed = check_seed(seed)
    callback = check_callable("callback", callback)
    torch.manual_seed(seed)
    env = make_env(task_id, seed=seed, **config.overrides)
    mappo = build_mappo(env, config)
    collector = Collector(
        env,
        mappo.policy,
        frames_per_batch=config.frames_per_batch,
        total_frames=config.frames_per_batch * iterations,
        # The policy keeps no recurrent state: no InitTracker or primer needed.
        auto_register_policy_transforms=False,
    )
    optimizer = torch.optim.Adam(mappo.parameters(), lr=config.lr)
    history: list[IterationStats] = []
    running = 0.0  # the team return of the episode in progress
    start = time.perf_counter()
    try:
        for i, data in enumerate(collector):
            with torch.no_grad():
                for loss in mappo.losses.values():
                    loss.value_estimator(
                        data,
                        params=loss.critic_network_params,
                        target_params=loss.target_critic_network_params,
                    )
            flat = data.reshape(-1)
            sums = {"loss_objective": 0.0, "loss_critic": 0.0, "loss_entropy": 0.0}
            n_updates = 0
            for _ in range(config.epochs):
                order = torch.randperm(flat.shape[0])
                for begin in range(0, flat.shape[0], config.minibatch_size):
                    batch = flat[order[begin : begin + config.minibatch_size]]
                    total = 0.0
                    for loss in mappo.losses.values():
                        out = loss(batch)
                        for key in sums:
                            sums[key] += float(out[key].detach())
                            total = total + out[key]
                    optimizer.zero_grad()
                    total.backward()
                    torch.nn.utils.clip_grad_norm_(mappo.parameters(), config.max_grad_norm)
                    optimizer.step()
                    n_updates += 1
            collector.update_policy_weights_()
            team = team_rewards(data, config.overrides.get("reward_mode", "team"))
            returns = []
            for reward, done in zip(team.tolist(), data["next", "done"].reshape(-1).tolist()):
                running += reward
                if done:
                    returns.append(running)
                    running = 0.0
            stats = IterationStats(
                iteration=i,
                frames=int(flat.shape[0]),
                mean_reward=float(team.mean()),
                episodes=len(returns),
                mean_return=sum(returns) / len(returns) if returns else math.nan,
                **{key: value / max(n_updates, 1) for key, value in sums.items()},
                seconds=time.perf_counter() - start,
            )
            history.append(stats)
            if callback is not None:
                callback(stats)
    finally:
        collector.shutdown()
    return mappo, history
