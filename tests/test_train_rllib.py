"""The RLlib path (the [rllib] extra): one short PPO iteration per mode on one
shared local Ray, the masking module on its own, and the example script."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray", reason="the [rllib] extra is not installed")

import ray
import torch
from gymnasium import spaces
from ray.rllib.core.columns import Columns

from adaptive_alert_triage.gym_env import AlertTriageAgentVectorEnv
from adaptive_alert_triage.multiagent import parallel_env
from adaptive_alert_triage.train import rllib

pytestmark = pytest.mark.train
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "train_batch_size": 240,
    "minibatch_size": 80,
    "num_epochs": 1,
    "hidden": (32, 32),
}


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (starting one takes seconds)."""
    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield
    if started:
        ray.shutdown()


def _train_once(config):
    algo = config.build_algo()
    try:
        return algo, rllib.summarize(algo.train())
    except BaseException:
        algo.stop()
        raise


def test_multiagent_ppo_trains_one_module_per_role(local_ray):
    config = rllib.build_config("multiagent", "easy", num_env_runners=0, envs_per_runner=2, **TINY)
    algo, summary = _train_once(config)
    try:
        assert set(algo.env_runner.module.keys()) == {rllib.INVESTIGATOR, rllib.DESK}
        envs = algo.env_runner.env.envs
        assert len(envs) == 2
        # Masks are enforced: a masked action would have raised in the env.
        assert all(env.unwrapped.par_env.masked_action == "raise" for env in envs)
    finally:
        algo.stop()
    assert set(summary["losses"]) == {rllib.INVESTIGATOR, rllib.DESK}
    assert all(math.isfinite(loss) for loss in summary["losses"].values())
    assert summary["env_steps"] >= TINY["train_batch_size"]
    # easy episodes are 20 steps: several ended, each role played in them.
    assert summary["episodes"] > 0 and math.isfinite(summary["episode_return_mean"])
    assert set(summary["module_returns"]) == {rllib.INVESTIGATOR, rllib.DESK}


def test_vector_mode_steps_the_native_agents_vector_env(local_ray):
    config = rllib.build_config("vector", "easy", num_env_runners=0, envs_per_runner=4, **TINY)
    algo, summary = _train_once(config)
    try:
        env = algo.env_runner.env
        # RLlib called the vector entry point: the native env, not a SyncVectorEnv.
        assert isinstance(env.unwrapped, AlertTriageAgentVectorEnv)
        assert env.unwrapped.sim.B == 4
        assert env.num_envs == 4 * env.unwrapped.n_agents
    finally:
        algo.stop()
    assert list(summary["losses"]) == [rllib.SHARED]
    assert math.isfinite(summary["losses"][rllib.SHARED])
    assert summary["env_steps"] >= TINY["train_batch_size"]


def test_example_script_trains_and_saves_a_checkpoint(local_ray, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("train_rllib", ROOT / "examples/train_rllib.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    argv = ["--task", "easy", "--iterations", "1", "--train-batch-size", "120"]
    argv += ["--minibatch-size", "60", "--num-epochs", "1", "--out", str(tmp_path / "ckpt")]
    assert example.main(argv) == 0
    out = capsys.readouterr().out
    assert "iter   1" in out and "env_steps" in out
    assert (tmp_path / "ckpt" / "rllib_checkpoint.json").exists()
    assert ray.is_initialized()  # the example left the caller's Ray alone


def test_masked_module_never_picks_a_masked_action():
    env = parallel_env("easy", seed=3)
    obs, _ = env.reset()
    space = env.observation_space("investigator_0")
    module = rllib.MaskedPPOTorchRLModule(
        observation_space=space,
        action_space=env.action_space("investigator_0"),
        model_config={"fcnet_hiddens": [16], "vf_share_layers": False},
    )
    batch_obs = {
        key: torch.as_tensor(np.stack([o[key] for o in obs.values()])) for key in space.spaces
    }
    mask = batch_obs["action_mask"].bool()
    assert not mask.all()  # something is masked, or the test proves nothing
    logits = module.forward_exploration({Columns.OBS: dict(batch_obs)})[Columns.ACTION_DIST_INPUTS]
    assert (logits[~mask] == torch.finfo(torch.float32).min).all()
    dist = module.get_exploration_action_dist_cls().from_logits(logits)
    for _ in range(20):
        assert mask.gather(1, dist.sample()[:, None]).all()
    values = module.compute_values({Columns.OBS: dict(batch_obs)})
    assert values.shape == (len(obs),) and torch.isfinite(values).all()


def test_vector_creator_checks_rows_and_adds_masks():
    env = rllib.make_vector_env({"task": "easy", "num_envs": 6})  # easy: 3 agents
    assert env.num_envs == 6 and env.unwrapped.sim.B == 2
    assert isinstance(env.single_observation_space, spaces.Dict)
    obs, _ = env.reset(seed=10_000)
    assert obs["observation"].shape == (6, env.unwrapped.sim.obs_dim)
    assert np.array_equal(obs["action_mask"], env.unwrapped.action_masks())
    with pytest.raises(ValueError, match="multiple of the 3 agents"):
        rllib.make_vector_env({"task": "easy", "num_envs": 4})
