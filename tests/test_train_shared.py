"""One MaskablePPO policy shared by every agent, trained through SuperSuit:
the vec env's shape and masks, a short training run, save, reload, and an
episode of the multi-agent env played with legal actions only."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("sb3_contrib", reason="the [train] extra is not installed")
pytest.importorskip("supersuit", reason="supersuit is not installed")

import torch

from adaptive_alert_triage.multiagent import parallel_env
from adaptive_alert_triage.train.shared import (
    load_shared,
    make_shared_vec_env,
    play_shared_episode,
    shared_actions,
    train_shared,
)

pytestmark = pytest.mark.train
torch.set_num_threads(1)


def test_vec_env_has_a_row_per_agent_and_the_env_masks():
    env = parallel_env("hard")
    n_agents = len(env.possible_agents)
    venv = make_shared_vec_env("hard", n_copies=2, seed=123)
    assert venv.num_envs == 2 * n_agents
    obs = venv.reset()
    assert obs.shape == (
        2 * n_agents,
        env.observation_space("escalation_desk")["observation"].shape[0],
    )
    # Copy 0 plays seed 123: its rows are the lone env's observations and masks.
    lone, _ = env.reset(seed=123)
    masks = venv.action_masks()
    for i, agent in enumerate(env.possible_agents):
        assert np.array_equal(obs[i], lone[agent]["observation"])
        assert np.array_equal(masks[i], lone[agent]["action_mask"].astype(bool))
    # The role one-hot (last two features) tells the desk from the investigators.
    assert (obs[: n_agents - 1, -2:] == [1, 0]).all() and (obs[n_agents - 1, -2:] == [0, 1]).all()
    assert venv.has_attr("action_masks")
    assert len(venv.env_method("action_masks")) == venv.num_envs
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(60):  # random legal actions; the env raises on a masked one
        actions = np.array([rng.choice(np.flatnonzero(row)) for row in venv.action_masks()])
        obs, rewards, dones, infos = venv.step(actions)
        assert obs.dtype == np.float32 and rewards.shape == (venv.num_envs,)
        for done, info in zip(dones, infos):
            if done:
                ended += 1
                assert info["terminal_observation"].shape == obs.shape[1:]
    assert ended > 0
    venv.close()


def test_train_save_reload_and_play_an_episode_with_legal_actions(tmp_path):
    out = tmp_path / "shared_easy.zip"
    model = train_shared(
        "easy", timesteps=300, out=out, n_copies=1, n_steps=32, batch_size=64, n_epochs=2
    )
    assert out.exists() and model.num_timesteps >= 300
    loaded = load_shared(out)

    env = parallel_env("easy")  # masked_action="raise": an illegal action would raise
    observations, _ = env.reset(seed=4)
    for _ in range(5):
        a = shared_actions(model, observations)
        assert a == shared_actions(loaded, observations)  # same weights after reload
        for agent, action in a.items():
            assert observations[agent]["action_mask"][action] == 1
        observations, *_ = env.step(a)

    team_return = play_shared_episode(out, "easy", seed=4)
    assert math.isfinite(team_return)
    assert team_return == play_shared_episode(loaded, "easy", seed=4)  # deterministic


def test_example_trains_saves_and_plays(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "train_sb3_shared.py"
    spec = importlib.util.spec_from_file_location("train_sb3_shared_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    out = tmp_path / "shared.zip"
    argv = ["--task", "hard", "--timesteps", "200", "--n-copies", "1", "--episodes", "1"]
    assert example.main([*argv, "--out", str(out)]) == 0
    assert out.exists()
    assert "mean team return over 1 episodes" in capsys.readouterr().out
