"""MAPPO with TorchRL: the role-grouped PettingZooWrapper passes check_env_specs
and a couple of tiny MAPPO iterations run with finite losses."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("torchrl", reason="torchrl is not installed")

import torch

from adaptive_alert_triage.train.torchrl import (
    DESK,
    GROUPS,
    INVESTIGATORS,
    MAPPOConfig,
    build_mappo,
    check_specs,
    make_env,
    train_mappo,
)

pytestmark = pytest.mark.train
torch.set_num_threads(1)


@pytest.mark.parametrize("task_id", ["easy", "hard"])
def test_role_grouped_wrapper_passes_check_env_specs(task_id):
    env = make_env(task_id, seed=3)
    check_specs(env)
    td = env.reset()
    assert set(GROUPS) <= set(td.keys())
    n = len(env.group_map[INVESTIGATORS])
    assert env.group_map[DESK] == ["escalation_desk"]
    assert td[INVESTIGATORS, "action_mask"].shape[0] == n
    assert td[DESK, "action_mask"].shape[0] == 1
    assert td[INVESTIGATORS, "mask"].all() and td[DESK, "mask"].all()


def test_masked_policy_only_takes_legal_actions():
    env = make_env("hard", seed=5)
    mappo = build_mappo(env)
    rollout = env.rollout(30, mappo.policy)  # the env raises on a masked action
    for group in GROUPS:
        action = rollout[group, "action"]
        mask = rollout[group, "action_mask"]
        assert mask.gather(-1, action.unsqueeze(-1)).all()


def test_two_tiny_mappo_iterations_have_finite_losses():
    config = MAPPOConfig(frames_per_batch=120, epochs=2, minibatch_size=60, hidden=32)
    seen = []
    mappo, history = train_mappo("hard", iterations=2, config=config, callback=seen.append)
    assert [s.iteration for s in history] == [0, 1] and seen == history
    for s in history:
        assert s.frames == 120
        assert math.isfinite(s.mean_reward)
        for value in (s.loss_objective, s.loss_critic, s.loss_entropy):
            assert math.isfinite(value)
    assert set(mappo.losses) == set(GROUPS)


def test_example_runs_and_prints_each_iteration(capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "train_torchrl.py"
    spec = importlib.util.spec_from_file_location("train_torchrl_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    argv = ["--task", "easy", "--iterations", "2", "--frames-per-batch", "60", "--epochs", "1"]
    assert example.main([*argv, "--minibatch-size", "30"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("iter")]
    assert len(lines) == 2 and all("mean reward" in line for line in lines)
