"""The SB3 training path: the VecEnv adapter over the native core, a short
MaskablePPO run, and `PPOAgent` playing the saved policy in the single-agent
env exactly as the policy played in training."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sb3_contrib", reason="the [train] extra is not installed")

import torch

from adaptive_alert_triage.agents import RuleBasedAgent
from adaptive_alert_triage.agents.learned import PPOAgent
from adaptive_alert_triage.env import AdaptiveAlertTriageEnv
from adaptive_alert_triage.evaluation import evaluate, load_agent, play_episode
from adaptive_alert_triage.sim.config import ACTION_TYPES
from adaptive_alert_triage.sim.engine import ESCALATE, IGNORE, INVESTIGATE
from adaptive_alert_triage.train import codec
from adaptive_alert_triage.train.sb3 import check_vec_env, make_vec_env, validate

pytestmark = pytest.mark.train
torch.set_num_threads(1)


@pytest.mark.parametrize("action_mode", codec.ACTION_MODES)
def test_vec_env_meets_the_sb3_contract(task_id, action_mode):
    env = make_vec_env(task_id, n_envs=6, seed=10_000, action_mode=action_mode)
    check_vec_env(env, steps=80 if task_id == "easy" else 60)


def test_vec_env_rows_follow_lone_envs_and_grade_like_the_evaluator():
    """Env i of the adapter, seeded s + i, plays the episode the single-agent env
    plays for seed s + i under the same decisions, and reports its graded score."""
    task, seed = "medium", 10_000
    env = make_vec_env(task, n_envs=3, seed=seed)
    singles = [AdaptiveAlertTriageEnv(task) for _ in range(3)]
    rules = [RuleBasedAgent() for _ in range(3)]
    observations = [s.reset(seed=seed + i) for i, s in enumerate(singles)]
    for rule, single in zip(rules, singles):
        rule.bind(single)
    obs = env.reset()
    for _ in range(singles[0].config.max_steps):
        choices = np.zeros((3, singles[0].config.n_slots), dtype=np.int64)
        for i, (rule, single) in enumerate(zip(rules, singles)):
            assert np.array_equal(obs[i], codec.observation_vector(observations[i], single.config))
            slot_of = {a.id: k for k, a in enumerate(observations[i].alerts)}
            for a in rule.act(observations[i]):
                choices[i, slot_of[a.alert_id]] = 1 + ACTION_TYPES.index(a.action_type)
        rows = codec.slot_choices_to_members(choices, env.sim.slot_present(), env.config)
        obs, _, dones, infos = env.step(choices)
        for i, single in enumerate(singles):
            decisions = codec.member_row_to_decisions(rows[i])
            alerts = observations[i].alerts
            actions = [{"alert_id": alerts[s].id, "action_type": v} for s, v in decisions]
            observations[i], _, done, info = single.step(actions)
            assert done == dones[i]
            if done:
                assert infos[i]["task_score"] == pytest.approx(info["task_score"], abs=0)
        if dones.all():
            break
    assert dones.all()


def test_action_masks_reach_maskable_ppo():
    from sb3_contrib.common.maskable.utils import get_action_masks

    env = make_vec_env("hard", n_envs=4, seed=10_000)
    env.reset()
    masks = get_action_masks(env)
    assert masks.shape == (4, env.config.n_slots * codec.N_CHOICES)
    assert np.array_equal(masks, env.action_masks())
    by_slot = masks.reshape(4, env.config.n_slots, codec.N_CHOICES)
    present = env.sim.slot_present()
    assert by_slot[:, :, 0].all()  # no decision is always allowed
    assert not by_slot[~present][:, 1:].any()  # nothing else on an empty slot
    assert not by_slot[:, :, 1 + ESCALATE].any()  # ESCALATE off by default


def test_slot_codec_respects_the_team():
    config = AdaptiveAlertTriageEnv("hard").config
    n = config.n_slots
    present = np.ones((1, n), dtype=bool)
    everything_claimed = np.full((1, n), 1 + INVESTIGATE)
    row = codec.slot_choices_to_members(everything_claimed, present, config)[0]
    claims = [d for d in codec.member_row_to_decisions(row) if d[1] == "INVESTIGATE"]
    assert [s for s, _ in claims] == list(range(config.investigation_budget))  # oldest first
    ignore_all = np.full((1, n), 1 + IGNORE)
    row = codec.slot_choices_to_members(ignore_all, present, config)[0]
    assert (row > 0).sum() == config.n_agents  # one decision per member, no more
    codec.check_assignable(codec.member_row_to_decisions(row), config)


def test_train_save_reload_and_play(tmp_path):
    """A few hundred steps of MaskablePPO over the adapter; PPOAgent reloads the
    file, plays whole episodes of the single-agent env with legal decisions and
    scores exactly what the policy scored in the adapter on the same seeds."""
    from adaptive_alert_triage.train.run import train

    out = tmp_path / "ppo_easy.zip"
    result = train(
        "easy",
        out,
        timesteps=512,
        n_envs=8,
        n_steps=32,
        batch_size=128,
        n_epochs=1,
        eval_every=256,
        eval_episodes=4,
        verbose=0,
    )
    assert out.is_file() and result["timesteps"] >= 512
    curve = (tmp_path / "ppo_easy.csv").read_text().splitlines()
    assert curve[0].startswith("timesteps,episodes,train_score") and len(curve) >= 3

    agent = PPOAgent(out)
    env = AdaptiveAlertTriageEnv("easy")
    agent.bind(env)
    seeds = range(20_000, 20_004)
    scores = [play_episode(env, agent, seed)["score"] for seed in seeds]  # raises if illegal
    expected = validate(agent.model, "easy", episodes=4, seed=20_000)
    assert np.mean(scores) == pytest.approx(expected["mean_score"], abs=1e-12)


def test_builtin_ppo_agent_finds_the_policy_of_the_task(tmp_path, monkeypatch):
    from adaptive_alert_triage.train.run import train

    train(
        "easy",
        tmp_path / "ppo_easy.zip",
        timesteps=256,
        n_envs=8,
        n_steps=32,
        batch_size=128,
        n_epochs=1,
        eval_episodes=0,
        verbose=0,
    )
    monkeypatch.setenv("ALERT_TRIAGE_POLICIES", str(tmp_path))
    results = evaluate(["rule", "ppo"], ["easy"], episodes=2, seed=0)
    assert {row["agent"] for row in results["summary"]} == {"rule", "ppo"}
    agent = load_agent("ppo")
    with pytest.raises(ValueError, match="no trained policy for task 'hard'"):
        agent.bind(AdaptiveAlertTriageEnv("hard"))


def test_example_script_trains_and_prints_the_evaluate_command(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "train_sb3.py"
    spec = importlib.util.spec_from_file_location("train_sb3", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    out = tmp_path / "ppo_easy.zip"
    argv = ["--task", "easy", "--timesteps", "256", "--n-envs", "4", "--out", str(out), "--quiet"]
    assert example.main(argv) == 0
    printed = capsys.readouterr().out
    assert out.is_file() and out.with_suffix(".csv").is_file()
    assert "--agent-module adaptive_alert_triage.agents.learned:PPOAgent" in printed
    assert f"ALERT_TRIAGE_POLICIES={tmp_path}" in printed


def test_without_the_train_extra_the_error_names_it(monkeypatch):
    import importlib.util
    import subprocess
    import sys

    from adaptive_alert_triage.train import _deps

    code = (
        "import sys, adaptive_alert_triage.agents.learned, adaptive_alert_triage.evaluation; "
        "assert 'torch' not in sys.modules and 'stable_baselines3' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)  # the core never loads torch
    real = importlib.util.find_spec
    monkeypatch.setattr(
        _deps.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "sb3_contrib" else real(name, *a),
    )
    with pytest.raises(ImportError, match=r"\[train\] extra.*missing: sb3_contrib"):
        PPOAgent()
    with pytest.raises(ValueError, match=r"agent 'ppo': .*\[train\] extra"):
        load_agent("ppo")
