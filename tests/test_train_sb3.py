"""The SB3 training path: the VecEnv adapter over the native core, a short
MaskablePPO run, and `PPOAgent` playing the saved policy in the single-agent
env exactly as the policy played in training."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

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


def _hard_all_present():
    config = AdaptiveAlertTriageEnv("hard").config
    return config, np.ones((1, config.n_slots), dtype=bool)


@pytest.mark.parametrize(
    ("slots", "error", "match"),
    [
        ({0: 5}, ValueError, r"slot choice 5 \(env 0, slot 0\) is out of range; allowed 0..4"),
        ({0: 1, 1: 1, 2: 5}, ValueError, r"slot choice 5 \(env 0, slot 2\)"),
        ({-1: 5}, ValueError, r"slot choice 5 \(env 0, slot 11\)"),
        ({3: -1}, ValueError, r"slot choice -1 \(env 0, slot 3\)"),
    ],
)
def test_slot_codec_refuses_choices_outside_0_to_4(slots, error, match):
    """A choice of 5 used to decode as the next slot's INVESTIGATE (a claim the
    policy never made, beyond K) or, on the last slot, native action 49."""
    config, present = _hard_all_present()
    choices = np.zeros((1, config.n_slots), dtype=np.int64)
    for slot, choice in slots.items():
        choices[0, slot] = choice
    with pytest.raises(error, match=match):
        codec.slot_choices_to_members(choices, present, config)


def test_slot_codec_refuses_non_integer_choices():
    config, present = _hard_all_present()
    with pytest.raises(TypeError, match="slot choices must be integers, got dtype float64"):
        codec.slot_choices_to_members(np.full((1, config.n_slots), 2.7), present, config)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_slot_codec_decodes_valid_choices_within_the_team_and_refuses_the_rest(data):
    config, _ = _hard_all_present()
    n = config.n_slots
    choices = data.draw(hnp.arrays(np.int64, (2, n), elements=st.integers(-2, 7)))
    present = data.draw(hnp.arrays(bool, (2, n)))
    bad = (choices < 0) | (choices >= codec.N_CHOICES)
    if bad.any():
        first = int(choices[bad][0])
        with pytest.raises(ValueError, match=f"slot choice {first} .* allowed 0..4"):
            codec.slot_choices_to_members(choices, present, config)
        return
    rows = codec.slot_choices_to_members(choices, present, config)
    n_actions = 1 + 4 * n
    assert ((rows >= 0) & (rows < n_actions)).all()
    for b in range(2):
        codes = rows[b][rows[b] > 0]
        slots, verbs = (codes - 1) // 4, (codes - 1) % 4
        assert len(set(slots.tolist())) == len(codes)  # one decision per alert
        assert present[b, slots].all() and (choices[b, slots] == 1 + verbs).all()
        assert np.isin(verbs, (INVESTIGATE, ESCALATE)).sum() <= config.investigation_budget


@pytest.mark.parametrize("action_mode", codec.ACTION_MODES)
def test_vec_env_refuses_actions_outside_its_space_and_changes_nothing(action_mode):
    env = make_vec_env("hard", n_envs=2, seed=10_000, action_mode=action_mode)
    twin = make_vec_env("hard", n_envs=2, seed=10_000, action_mode=action_mode)
    env.reset()
    twin.reset()
    nvec = env.action_space.nvec
    what, column = ("slot choice", "slot") if action_mode == "slot" else ("action", "member")
    good = np.zeros((2, len(nvec)), dtype=np.int64)
    first, last = good.copy(), good.copy()
    first[0, 0] = nvec[0]
    last[1, -1] = nvec[-1]
    with pytest.raises(ValueError, match=f"{what} {nvec[0]} \\(env 0, {column} 0\\)"):
        env.step(first)
    where = f"\\(env 1, {column} {len(nvec) - 1}\\)"
    with pytest.raises(ValueError, match=f"{what} {nvec[-1]} {where} .* allowed 0..{nvec[-1] - 1}"):
        env.step(last)
    with pytest.raises(TypeError, match="must be integers"):
        env.step(np.full((2, len(nvec)), 2.7))
    with pytest.raises(ValueError, match="must have shape"):
        env.step(np.zeros((3, len(nvec)), dtype=np.int64))
    obs, rewards, _, _ = env.step(good)
    twin_obs, twin_rewards, _, _ = twin.step(good)
    assert np.array_equal(obs, twin_obs) and np.array_equal(rewards, twin_rewards)


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
