"""The Gymnasium faces: single env, native vector env, batched agents view."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

import adaptive_alert_triage  # noqa: F401 - registers the ids
from adaptive_alert_triage import multiagent
from adaptive_alert_triage.gym_env import (
    AlertTriageAgentVectorEnv,
    AlertTriageGymEnv,
    AlertTriageVectorEnv,
)


def masked_sample(masks: np.ndarray, n_actions: int, rng: np.random.Generator) -> np.ndarray:
    """A random legal action per member, from concatenated member masks."""
    masks = masks.reshape(*masks.shape[:-1], -1, n_actions)
    scores = rng.random(masks.shape) * masks
    return scores.argmax(axis=-1)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_gymnasium_check_env(task_id):
    env = gymnasium.make("AdaptiveAlertTriage-v0", task_id=task_id)
    check_env(env.unwrapped, skip_render_check=False)
    assert isinstance(env.unwrapped, AlertTriageGymEnv)


def test_info_carries_outcome_records_and_task_score(task_id):
    env = AlertTriageGymEnv(task_id=task_id)
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs) and info["task_score"] == 0.0
    rng = np.random.default_rng(0)
    n = env.sim.n_actions
    terminated = truncated = False
    while not (terminated or truncated):
        action = masked_sample(env.action_masks(), n, rng)
        obs, reward, terminated, truncated, info = env.step(action)
        assert env.observation_space.contains(obs)
        assert reward == pytest.approx(sum(info["reward_components"].values()))
        assert 0.0 <= info["task_score"] <= 1.0
        decided = int((action != 0).sum())
        assert len(info["processed_alerts"]) == decided
    assert info["task_score"] == env.grader.score


def test_action_masks_match_the_core():
    env = AlertTriageGymEnv(task_id="hard")
    env.reset(seed=0)
    masks = env.action_masks()
    assert masks.shape == (env.sim.A * env.sim.n_actions,) and masks.dtype == bool
    assert np.array_equal(masks.reshape(env.sim.A, -1), env.sim.legal[0] > 0)


def test_masked_actions_become_noops_or_raise():
    env = AlertTriageGymEnv(task_id="medium")
    env.reset(seed=1)
    desk_investigates = np.zeros(env.sim.A, dtype=np.int64)
    desk_investigates[-1] = 1  # slot 0, INVESTIGATE: not the desk's verb
    env.step(desk_investigates)
    assert env.sim.n_needing_reset == 0
    strict = AlertTriageGymEnv(task_id="medium", masked_action="raise")
    strict.reset(seed=1)
    with pytest.raises(ValueError, match="is masked"):
        strict.step(desk_investigates)
    with pytest.raises(ValueError, match="action must have shape"):
        strict.step(np.zeros(2, dtype=np.int64))


def test_make_vec_returns_the_native_vector_env():
    venv = gymnasium.make_vec(
        "AdaptiveAlertTriage-v0",
        num_envs=5,
        vectorization_mode="vector_entry_point",
        task_id="hard",
    )
    assert isinstance(venv, AlertTriageVectorEnv)
    assert venv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert venv.observation_space.shape == (5, *venv.single_observation_space.shape)
    assert venv.action_space.shape == (5, venv.sim.A)
    obs, _ = venv.reset(seed=0)
    assert venv.observation_space.contains(obs)


@pytest.mark.parametrize("batch", [1, 7, 64])
def test_vector_env_rows_follow_lone_envs_across_autoresets(batch):
    task = "hard"
    venv = AlertTriageVectorEnv(num_envs=batch, task_id=task)
    lone = [AlertTriageGymEnv(task_id=task) for _ in range(batch)]
    obs, _ = venv.reset(seed=100)
    lone_obs = [env.reset(seed=100 + i)[0] for i, env in enumerate(lone)]
    assert np.array_equal(obs, np.stack(lone_obs))
    rng = np.random.default_rng(batch)
    n = venv.sim.n_actions
    lone_done = np.zeros(batch, dtype=bool)
    resets = np.zeros(batch, dtype=int)
    steps = 2 * venv.config.max_steps + 5  # every env ends at least once
    for _ in range(steps):
        actions = masked_sample(venv.action_masks(), n, rng)
        obs, rewards, terminated, truncated, infos = venv.step(actions)
        for i, env in enumerate(lone):
            if lone_done[i]:  # NEXT_STEP: this call reset env i and ignored its action
                expected, _ = env.reset()
                assert rewards[i] == 0.0 and not terminated[i] and not truncated[i]
                assert not infos["_failures"][i]
                resets[i] += 1
                lone_done[i] = False
            else:
                expected, reward, term, trunc, info = env.step(actions[i])
                assert rewards[i] == reward
                assert (terminated[i], truncated[i]) == (term, trunc)
                assert infos["failures"][i] == info["failures_this_step"]
                lone_done[i] = term or trunc
            assert np.array_equal(obs[i], expected), (i, resets[i])
    assert (resets >= 1).all()


def test_vector_env_seeding_and_errors():
    venv = AlertTriageVectorEnv(num_envs=3, task_id="easy")
    a, _ = venv.reset(seed=[5, 6, 7])
    b, _ = venv.reset(seed=5)
    assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="got 2 seeds for 3 envs"):
        venv.reset(seed=[1, 2])
    with pytest.raises(ValueError, match="actions must have shape"):
        venv.step(np.zeros((2, venv.sim.A), dtype=np.int64))
    with pytest.raises(ValueError, match="num_envs must be a positive int"):
        AlertTriageVectorEnv(num_envs=0)
    with pytest.raises(ValueError, match="render_mode 'human' is not one of"):
        AlertTriageVectorEnv(num_envs=2, render_mode="human")
    frames = AlertTriageVectorEnv(num_envs=2, render_mode="ansi")
    frames.reset(seed=0)
    assert len(frames.render()) == 2 and "slot" in frames.render()[0]
    fresh = AlertTriageVectorEnv(num_envs=2)
    with pytest.raises(RuntimeError, match="before reset"):
        fresh.step(np.zeros((2, fresh.sim.A), dtype=np.int64))


def test_agent_rows_match_the_pettingzoo_env():
    """Row b*A + a of the agents view is agent a of a PettingZoo env seeded b."""
    batch = 3
    view = AlertTriageAgentVectorEnv(num_envs=batch, task_id="medium")
    obs, _ = view.reset(seed=[0, 1, 2])
    A = view.n_agents
    assert obs.shape == (batch * A, view.single_observation_space.shape[0])
    teams = [multiagent.parallel_env("medium") for _ in range(batch)]
    team_obs = [env.reset(seed=b)[0] for b, env in enumerate(teams)]
    rng = np.random.default_rng(0)
    for _ in range(teams[0].config.max_steps):
        masks = view.action_masks()
        actions = (rng.random(masks.shape) * masks).argmax(axis=1)
        for b, env in enumerate(teams):
            for a, agent in enumerate(env.possible_agents):
                row = b * A + a
                assert np.array_equal(obs[row], team_obs[b][agent]["observation"])
                assert np.array_equal(masks[row], team_obs[b][agent]["action_mask"] > 0)
        obs, rewards, terminated, truncated, _ = view.step(actions)
        for b, env in enumerate(teams):
            if not env.agents:
                team_obs[b], _ = env.reset()
                continue
            acts = {agent: int(actions[b * A + a]) for a, agent in enumerate(env.possible_agents)}
            team_obs[b], team_rewards, team_term, team_trunc, _ = env.step(acts)
            rows = slice(b * A, (b + 1) * A)
            assert (rewards[rows] == team_rewards["investigator_0"]).all()
            assert (terminated[rows] == team_term["investigator_0"]).all()
            assert (truncated[rows] == team_trunc["investigator_0"]).all()


def test_stable_baselines3_check_env(task_id):
    pytest.importorskip("stable_baselines3", reason="the [train] extra is not installed")
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SB3's warnings count as failures here
        sb3_check_env(AlertTriageGymEnv(task_id=task_id), warn=True)


def test_maskable_ppo_trains_and_respects_masks():
    pytest.importorskip("sb3_contrib", reason="the [train] extra is not installed")
    import torch
    from sb3_contrib import MaskablePPO

    torch.set_num_threads(1)
    env = AlertTriageGymEnv(task_id="easy", masked_action="raise")  # a masked action would raise
    model = MaskablePPO(
        "MlpPolicy",
        env,
        n_steps=64,
        batch_size=32,
        n_epochs=1,
        seed=0,
        policy_kwargs={"net_arch": [32]},
        verbose=0,
    )
    model.learn(total_timesteps=128)
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, action_masks=env.action_masks(), deterministic=True)
    env.step(action)  # legal under the mask, or this raises


# ---------------------------------------------------------------- seeds and call order
def _all_faces() -> list:
    return [
        AlertTriageGymEnv("easy"),
        AlertTriageVectorEnv(2, "easy"),
        AlertTriageAgentVectorEnv(2, "easy"),
        multiagent.parallel_env("easy"),
    ]


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (-1, ValueError),
        (1.5, TypeError),
        ("a", TypeError),
        (True, TypeError),
        (np.float64(2), TypeError),
    ],
)
def test_every_face_refuses_a_bad_seed_alike(bad, error):
    for face in _all_faces():
        with pytest.raises(error, match="seed must be"):
            face.reset(seed=bad)


def test_gym_env_takes_numpy_int_seeds_and_a_rejected_reset_changes_nothing():
    env, twin = AlertTriageGymEnv("easy"), AlertTriageGymEnv("easy")
    a, _ = env.reset(seed=np.int64(3))
    b, _ = twin.reset(seed=3)
    assert np.array_equal(a, b)
    assert env.np_random.bit_generator.state == twin.np_random.bit_generator.state
    assert np.array_equal(env.reset(seed=np.uint32(5))[0], twin.reset(seed=5)[0])
    state = env.np_random.bit_generator.state
    for bad in (-1, 1.5, "a"):
        with pytest.raises((ValueError, TypeError)):
            env.reset(seed=bad)
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(seed=9, options={"x": 1})
    assert env.np_random.bit_generator.state == state
    noop = np.zeros(env.sim.A, dtype=np.int64)
    assert np.array_equal(env.step(noop)[0], twin.step(noop)[0])


def test_action_masks_before_reset_are_an_error():
    """Before reset() there are no masks: an all-False one would mask NOOP too."""
    for face in _all_faces()[:3]:
        with pytest.raises(RuntimeError, match=r"action_masks\(\) called before reset"):
            face.action_masks()
        face.reset(seed=0)
        masks = face.action_masks().reshape(-1, face.sim.n_actions)
        assert masks[:, 0].all()  # NOOP, for every member or row


@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        (1.5, TypeError, "got 1.5 \\(float\\)"),
        ("abc", TypeError, "got 'abc' \\(str\\)"),
        (b"ab", TypeError, "got b'ab'"),
        ({1, 2}, TypeError, "got \\{1, 2\\}"),
        ([1.5, 2], TypeError, "got 1.5"),
        (["a", "b"], TypeError, "got 'a'"),
        ([1, -2], ValueError, "got -2"),
        ([1, 2, 3], ValueError, "got 3 seeds for 2 envs"),
        (np.zeros((2, 1), dtype=np.int64), ValueError, "shape \\(2, 1\\)"),
    ],
)
def test_vector_env_refuses_bad_seeds_and_a_rejected_reset_changes_nothing(bad, error, match):
    env, twin = AlertTriageVectorEnv(2, "easy"), AlertTriageVectorEnv(2, "easy")
    env.reset(seed=[4, 9])
    twin.reset(seed=[4, 9])
    with pytest.raises(error, match=f"seed must be .*{match}|{match}"):
        env.reset(seed=bad)
    noop = np.zeros((2, env.sim.A), dtype=np.int64)
    assert np.array_equal(env.step(noop)[0], twin.step(noop)[0])


def test_vector_env_takes_any_sequence_of_seeds():
    env = AlertTriageVectorEnv(2, "easy")
    first, _ = env.reset(seed=[4, 9])
    for same in ((4, 9), np.array([4, 9]), [np.int64(4), 9], range(4, 14, 5)):
        assert np.array_equal(env.reset(seed=same)[0], first)


def test_agent_view_takes_a_seed_per_row_or_per_env():
    """num_envs = B * A rows; an env's A rows share an episode, so a per-row
    list must give them one seed, and a per-env list of B seeds is the same."""
    view = AlertTriageAgentVectorEnv(2, "easy")
    A = view.n_agents
    assert view.num_envs == 2 * A
    per_row, _ = view.reset(seed=[7] * A + [9] * A)
    per_env, _ = AlertTriageAgentVectorEnv(2, "easy").reset(seed=[7, 9])
    assert np.array_equal(per_row, per_env)
    from_int, _ = AlertTriageAgentVectorEnv(2, "easy").reset(seed=7)
    alone, _ = multiagent.parallel_env("easy").reset(seed=8)
    assert np.array_equal(from_int[A:], [alone[a]["observation"] for a in alone])
    assert view.reset(seed=[None] * (2 * A))[0].shape == per_row.shape
    with pytest.raises(ValueError, match=r"seeds \[0, 1, 2\] of rows 0..2 disagree"):
        view.reset(seed=list(range(2 * A)))
    with pytest.raises(ValueError, match="got 3 seeds for 2 envs"):
        view.reset(seed=[1, 2, 3])


def test_vector_env_counts_the_budget_denials_its_agent_rows_report():
    """The team view's ``denied`` info is, env by env, the number of agent rows
    whose status is a budget denial in the agents view of the same envs, with
    the same seeds and actions; a random team on hard hits K often."""
    from adaptive_alert_triage.sim.engine import STATUS_DENIED_BUDGET

    batch = 16
    team = AlertTriageVectorEnv(num_envs=batch, task_id="hard")
    rows = AlertTriageAgentVectorEnv(num_envs=batch, task_id="hard")
    team.reset(seed=5)
    rows.reset(seed=5)
    rng = np.random.default_rng(2)
    total = 0
    for _ in range(40):
        actions = masked_sample(team.action_masks(), team.sim.n_actions, rng)
        *_, info = team.step(actions)
        *_, row_info = rows.step(actions.reshape(-1))
        status = row_info["status"].reshape(batch, team.sim.A)
        expected = (status == STATUS_DENIED_BUDGET).sum(axis=1)
        assert np.array_equal(info["denied"], expected)
        assert info["denied"].dtype == np.int64
        total += int(info["denied"].sum())
    assert total > 0
