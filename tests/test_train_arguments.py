"""Bad arguments to the training adapters are refused up front, nothing trained.

Every adapter (the SB3 VecEnv and `train`, SuperSuit parameter sharing,
TorchRL MAPPO, RLlib PPO), the codec helpers they share, and the example
scripts raise TypeError or ValueError naming the bad value before any work is
done and before anything is written: no NaN rewards, no bare KeyError or
IndexError from deep inside, no untrained model saved as trained. Nothing
here trains, so the tests are not marked ``train``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from adaptive_alert_triage.env import AdaptiveAlertTriageEnv
from adaptive_alert_triage.sim.config import get_task
from adaptive_alert_triage.train import codec

from .example_utils import run_example

NAN, INF = math.nan, math.inf


# ------------------------------------------------------------------ codec helpers
@pytest.mark.parametrize(
    ("present", "error", "says"),
    [
        (np.array([True, False]), ValueError, r"present must have shape \(n_envs, n_slots\)"),
        (np.ones((1, 12, 1), dtype=bool), ValueError, "present must have shape"),
        (np.ones((1, 12)), TypeError, "present must be a bool array, got dtype float64"),
    ],
)
def test_slot_masks_refuses_a_present_that_is_not_a_2d_bool_array(present, error, says):
    with pytest.raises(error, match=says):
        codec.slot_masks(present)


def test_slot_masks_refuses_a_non_bool_switch():
    with pytest.raises(TypeError, match="allow_escalate must be True or False, got 'no'"):
        codec.slot_masks(np.ones((1, 12), dtype=bool), allow_escalate="no")


@pytest.mark.parametrize(
    ("present_shape", "says"),
    [
        ((2, 12), r"present has shape \(2, 12\), the choices \(1, 12\)"),
        ((12,), r"present must have shape \(n_envs, n_slots\), got \(12,\)"),
        ((1, 8), r"present has shape \(1, 8\), the choices \(1, 12\)"),
    ],
)
def test_slot_choices_to_members_needs_one_present_row_per_choice_row(present_shape, says):
    config = get_task("hard")
    choices = np.ones((1, config.n_slots), dtype=np.int64)
    with pytest.raises(ValueError, match=says):
        codec.slot_choices_to_members(choices, np.ones(present_shape, dtype=bool), config)


def test_observation_vector_refuses_an_observation_of_another_task():
    hard = AdaptiveAlertTriageEnv("hard").reset(seed=0)
    with pytest.raises(ValueError, match="does not fit the config of task 'easy'") as info:
        codec.observation_vector(hard, get_task("easy"))
    message = str(info.value)
    assert "investigation_budget 3" in message and "max_steps 20" in message
    with pytest.raises(TypeError, match="observation must be an Observation, got dict"):
        codec.observation_vector({"alerts": []}, get_task("easy"))
    with pytest.raises(TypeError, match="config must be a TaskConfig, got str"):
        codec.observation_vector(hard, "hard")
    assert codec.observation_vector(hard, get_task("hard")).shape == (
        codec.base_dim(get_task("hard")),
    )


@pytest.mark.parametrize(
    ("row", "config", "error", "says"),
    [
        ([-5, 3], None, ValueError, r"member action -5 \(member 0\) is out of range"),
        ([2.7], None, TypeError, "member actions must be integers, got dtype float64"),
        ([10**6], None, ValueError, r"member action 1000000 .* allowed 0..1024"),
        ([0, 49], "hard", ValueError, r"member action 49 \(member 1\) .* allowed 0..48"),
        ([[1, 2]], None, ValueError, "a member row must be 1-D"),
        ([True], None, TypeError, "must be integers, got dtype bool"),
    ],
)
def test_member_row_to_decisions_refuses_codes_outside_the_action_space(row, config, error, says):
    with pytest.raises(error, match=says):
        codec.member_row_to_decisions(row, None if config is None else get_task(config))


def test_member_row_to_decisions_still_decodes_legal_rows():
    hard = get_task("hard")
    assert codec.member_row_to_decisions([0, 48, 1], hard) == [(0, "INVESTIGATE"), (11, "DELAY")]
    assert codec.member_row_to_decisions(np.zeros(5, dtype=np.int64)) == []
    assert codec.member_row_to_decisions([]) == []


# ------------------------------------------------------------------ SB3 VecEnv and train
BAD_VEC_ENV = [
    ({"env_coef": NAN}, ValueError, "env_coef must be a finite number, got nan"),
    ({"score_coef": NAN}, ValueError, "score_coef must be a finite number, got nan"),
    ({"score_coef": INF}, ValueError, "score_coef must be a finite number, got inf"),
    ({"failure_penalty": NAN}, ValueError, "failure_penalty must be a finite number >= 0"),
    ({"failure_penalty": -1.0}, ValueError, "failure_penalty must be a finite number >= 0"),
    ({"env_coef": "2"}, TypeError, "env_coef must be a finite number, got '2'"),
    ({"env_coef": True}, TypeError, "env_coef must be a finite number, got True"),
    ({"allow_escalate": "no"}, TypeError, "allow_escalate must be True or False, got 'no'"),
    ({"bootstrap_truncation": "no"}, TypeError, "bootstrap_truncation must be True or False"),
    ({"seed": True}, TypeError, "seed must be an int >= 0 or None, got True"),
    ({"seed": -1}, ValueError, "seed must be >= 0, got -1"),
    ({"n_envs": 0}, ValueError, "n_envs must be >= 1, got 0"),
    ({"action_mode": "both"}, ValueError, "action_mode 'both' is not one of"),
]


@pytest.mark.parametrize(("change", "error", "says"), BAD_VEC_ENV)
def test_sb3_vec_env_refuses_bad_arguments(change, error, says):
    pytest.importorskip("sb3_contrib")
    from adaptive_alert_triage.train.sb3 import TriageVecEnv

    with pytest.raises(error, match=says):
        TriageVecEnv(**{"task_id": "hard", "n_envs": 2, **change})


def test_sb3_vec_env_takes_numpy_values_and_gives_finite_rewards():
    pytest.importorskip("sb3_contrib")
    from adaptive_alert_triage.train.sb3 import TriageVecEnv

    env = TriageVecEnv(
        "hard",
        np.int64(2),
        seed=np.int64(10_000),
        allow_escalate=np.bool_(True),
        env_coef=np.float32(0.5),
        failure_penalty=1,
    )
    env.reset()
    assert env.env_coef == 0.5 and env.allow_escalate is True
    _, rewards, _, _ = env.step(np.zeros((2, env.config.n_slots), dtype=np.int64))
    assert np.isfinite(rewards).all()


BAD_TRAIN = [
    ({"n_steps": 0}, ValueError, "n_steps must be >= 1, got 0"),
    ({"n_epochs": 0}, ValueError, "n_epochs must be >= 1, got 0"),
    ({"batch_size": 0}, ValueError, "batch_size must be >= 2, got 0"),
    ({"batch_size": 1}, ValueError, "batch_size must be >= 2, got 1"),
    ({"n_steps": 4, "n_envs": 1, "batch_size": 3}, ValueError, "leaves a minibatch of 1"),
    ({"hidden": 0}, ValueError, "hidden must be >= 1, got 0"),
    ({"gamma": 5}, ValueError, r"gamma must be a number in \[0, 1\], got 5"),
    ({"gamma": NAN}, ValueError, "gamma must be a number in"),
    ({"gae_lambda": -0.1}, ValueError, "gae_lambda must be a number in"),
    ({"ent_coef": NAN}, ValueError, "ent_coef must be a finite number >= 0, got nan"),
    ({"failure_penalty": NAN}, ValueError, "failure_penalty must be a finite number >= 0"),
    ({"learning_rate": 0}, ValueError, "learning_rate must be a finite number > 0"),
    ({"clip_range": INF}, ValueError, "clip_range must be a finite number > 0"),
    ({"score_coef": INF}, ValueError, "score_coef must be a finite number, got inf"),
    ({"eval_every": 0}, ValueError, "eval_every must be >= 1, got 0"),
    ({"eval_episodes": -3}, ValueError, "eval_episodes must be >= 0, got -3"),
    ({"n_envs": True}, TypeError, "n_envs must be an int >= 1, got True"),
    ({"allow_escalate": "no"}, TypeError, "allow_escalate must be True or False"),
    ({"action_mode": "both"}, ValueError, "action_mode 'both' is not one of"),
    ({"overrides": {"n_slots": 0}}, ValueError, "n_slots=0 is out of range"),
    ({"overrides": None}, TypeError, "overrides must be a mapping"),
    ({"seed": True}, TypeError, "seed must be an int >= 0, got True"),
    ({"seed": -1}, ValueError, "seed must be >= 0, got -1"),
    ({"verbose": -1}, ValueError, "verbose must be >= 0, got -1"),
    ({"no_such_field": 1}, TypeError, r"unknown preset field\(s\) \['no_such_field'\]"),
]


@pytest.mark.parametrize(("change", "error", "says"), BAD_TRAIN)
def test_sb3_train_refuses_bad_arguments_before_writing(change, error, says, tmp_path):
    pytest.importorskip("sb3_contrib")
    from adaptive_alert_triage.train.run import train

    out = tmp_path / "new" / "p.zip"
    with pytest.raises(error, match=says):
        train("easy", out, **{"verbose": 0, "timesteps": 64, **change})
    assert not out.parent.exists()  # nothing written, not even the directory


@pytest.mark.parametrize(
    ("task", "error"), [("bogus", ValueError), (None, TypeError), ("Easy", ValueError)]
)
def test_sb3_train_names_the_tasks_it_knows(task, error, tmp_path):
    pytest.importorskip("sb3_contrib")
    from adaptive_alert_triage.train.run import train

    with pytest.raises(error, match=r"task .* is not one of \('easy', 'medium', 'hard'\)"):
        train(task, tmp_path / "p.zip", verbose=0)
    assert not list(tmp_path.iterdir())


def test_score_curve_callback_refuses_bad_counts(tmp_path):
    pytest.importorskip("sb3_contrib")
    from adaptive_alert_triage.train.sb3 import ScoreCurveCallback, validate

    with pytest.raises(ValueError, match="eval_every must be >= 1, got 0"):
        ScoreCurveCallback(tmp_path / "c.csv", "easy", {}, eval_every=0)
    with pytest.raises(ValueError, match="eval_episodes must be >= 0, got -3"):
        ScoreCurveCallback(tmp_path / "c.csv", "easy", {}, eval_episodes=-3)
    with pytest.raises(ValueError, match="episodes must be >= 1, got 0"):
        validate(None, "easy", episodes=0)
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------ SuperSuit sharing
BAD_SHARED = [
    ({"timesteps": 0}, ValueError, "timesteps must be >= 1, got 0"),
    ({"timesteps": -5}, ValueError, "timesteps must be >= 1, got -5"),
    ({"n_copies": 0}, ValueError, "n_copies must be >= 1, got 0"),
    ({"n_copies": True}, TypeError, "n_copies must be an int >= 1, got True"),
    ({"n_steps": 0}, ValueError, "n_steps must be >= 1, got 0"),
    ({"n_epochs": 0}, ValueError, "n_epochs must be >= 1, got 0"),
    ({"batch_size": 1}, ValueError, "batch_size must be >= 2, got 1"),
    ({"gamma": NAN}, ValueError, "gamma must be a number in"),
    ({"learning_rate": -1.0}, ValueError, "learning_rate must be a finite number > 0"),
    ({"ent_coef": NAN}, ValueError, "ent_coef must be a finite number >= 0"),
    ({"hidden": 0}, ValueError, "hidden must be >= 1, got 0"),
    ({"seed": True}, TypeError, "seed must be an int >= 0, got True"),
    ({"task_id": "bogus"}, ValueError, "unknown task_id 'bogus'"),
]


@pytest.mark.parametrize(("change", "error", "says"), BAD_SHARED)
def test_train_shared_refuses_bad_arguments_before_writing(change, error, says, tmp_path):
    pytest.importorskip("supersuit")
    from adaptive_alert_triage.train.shared import train_shared

    out = tmp_path / "new" / "shared.zip"
    with pytest.raises(error, match=says):
        train_shared(**{"task_id": "easy", "timesteps": 64, "out": out, **change})
    assert not out.parent.exists()


@pytest.mark.parametrize(
    ("n_copies", "error"), [(0, ValueError), (-1, ValueError), (True, TypeError), (1.0, TypeError)]
)
def test_make_shared_vec_env_needs_a_copy(n_copies, error):
    pytest.importorskip("supersuit")
    from adaptive_alert_triage.train.shared import make_shared_vec_env

    with pytest.raises(error, match=f"n_copies must be .*got {n_copies}"):
        make_shared_vec_env("easy", n_copies=n_copies)


@pytest.mark.parametrize("name", ["nope.zip", "nope"])
def test_play_shared_episode_names_the_missing_file_given(name, tmp_path):
    pytest.importorskip("supersuit")
    from adaptive_alert_triage.train.shared import play_shared_episode

    path = tmp_path / name
    with pytest.raises(ValueError, match=f"policy file '{path}' does not exist"):
        play_shared_episode(path)
    with pytest.raises(ValueError, match="does not exist"):
        play_shared_episode(str(tmp_path))  # a directory is no policy file either
    with pytest.raises(TypeError, match="model must be a MaskablePPO or a path, got 3"):
        play_shared_episode(3)


# ------------------------------------------------------------------ TorchRL MAPPO
BAD_MAPPO_CONFIG = [
    ({"frames_per_batch": 0}, ValueError, "frames_per_batch must be >= 1, got 0"),
    ({"minibatch_size": 0}, ValueError, "minibatch_size must be >= 1, got 0"),
    ({"epochs": -1}, ValueError, "epochs must be >= 1, got -1"),
    ({"epochs": 1.5}, TypeError, "epochs must be an int >= 1, got 1.5"),
    ({"hidden": True}, TypeError, "hidden must be an int >= 1, got True"),
    ({"gamma": NAN}, ValueError, "gamma must be a number in"),
    ({"lmbda": 2.0}, ValueError, "lmbda must be a number in"),
    ({"lr": 0.0}, ValueError, "lr must be a finite number > 0, got 0.0"),
    ({"entropy_coeff": INF}, ValueError, "entropy_coeff must be a finite number >= 0"),
    ({"overrides": None}, TypeError, "overrides must be a mapping"),
]


@pytest.mark.parametrize(("change", "error", "says"), BAD_MAPPO_CONFIG)
def test_mappo_config_refuses_bad_fields(change, error, says):
    pytest.importorskip("torchrl")
    from adaptive_alert_triage.train.torchrl import MAPPOConfig

    with pytest.raises(error, match=says):
        MAPPOConfig(**change)


@pytest.mark.parametrize(
    ("change", "error", "says"),
    [
        ({"iterations": -1}, ValueError, "iterations must be >= 1, got -1"),
        ({"iterations": 0}, ValueError, "iterations must be >= 1, got 0"),
        ({"iterations": 1.5}, TypeError, "iterations must be an int >= 1, got 1.5"),
        ({"iterations": True}, TypeError, "iterations must be an int >= 1, got True"),
        ({"seed": -1}, ValueError, "seed must be >= 0, got -1"),
        ({"config": {"lr": 1}}, TypeError, "config must be a MAPPOConfig or None"),
        ({"callback": "print"}, TypeError, "callback must be callable or None"),
    ],
)
def test_train_mappo_refuses_bad_arguments(change, error, says):
    pytest.importorskip("torchrl")
    from adaptive_alert_triage.train.torchrl import train_mappo

    with pytest.raises(error, match=says):
        train_mappo("easy", **change)


# ------------------------------------------------------------------ RLlib
BAD_RLLIB_CONFIG = [
    ({"envs_per_runner": 1.5}, TypeError, "envs_per_runner must be an int >= 1, got 1.5"),
    ({"envs_per_runner": True}, TypeError, "envs_per_runner must be an int >= 1, got True"),
    ({"envs_per_runner": 0}, ValueError, "envs_per_runner must be >= 1, got 0"),
    ({"num_env_runners": -1}, ValueError, "num_env_runners must be >= 0, got -1"),
    ({"seed": -1}, ValueError, "seed must be >= 0, got -1"),
    ({"train_batch_size": 0}, ValueError, "train_batch_size must be >= 1, got 0"),
    ({"minibatch_size": 5000}, ValueError, "minibatch_size=5000 exceeds train_batch_size"),
    ({"num_epochs": 0}, ValueError, "num_epochs must be >= 1, got 0"),
    ({"lr": NAN}, ValueError, "lr must be a finite number > 0, got nan"),
    ({"hidden": (64, 0)}, ValueError, r"hidden\[1\] must be >= 1, got 0"),
    ({"hidden": 64}, TypeError, "hidden must be a non-empty sequence"),
    ({"task": "bogus"}, ValueError, "unknown task_id 'bogus'"),
    ({"task": None}, TypeError, "task must be a str"),
    ({"env_overrides": {"no_such_field": 1}}, TypeError, "unknown task parameter"),
    ({"env_overrides": {"masked_action": "x"}}, ValueError, "masked_action 'x' is not one of"),
    ({"env_overrides": {"task": "hard"}}, ValueError, r"env_overrides may not set \['task'\]"),
    ({"env_overrides": [1]}, TypeError, "env_overrides must be a mapping"),
]


@pytest.mark.parametrize("mode", ["multiagent", "vector"])
@pytest.mark.parametrize(("change", "error", "says"), BAD_RLLIB_CONFIG)
def test_rllib_build_config_refuses_bad_arguments(mode, change, error, says):
    pytest.importorskip("ray")
    from adaptive_alert_triage.train import rllib

    with pytest.raises(error, match=says):
        rllib.build_config(mode, **{"task": "easy", **change})


@pytest.mark.parametrize(
    ("iterations", "error"),
    [(0, ValueError), (-3, ValueError), (1.5, TypeError), (True, TypeError)],
)
def test_rllib_train_refuses_to_train_nothing_and_writes_no_checkpoint(iterations, error, tmp_path):
    pytest.importorskip("ray")
    import ray

    from adaptive_alert_triage.train import rllib

    running = ray.is_initialized()
    config = rllib.build_config("multiagent", "easy")
    out = tmp_path / "ckpt"
    with pytest.raises(error, match=f"iterations must be .*got {iterations}"):
        rllib.train(config, iterations, out=out, log=None)
    assert not out.exists()
    with pytest.raises(TypeError, match="config must be a PPOConfig"):
        rllib.train({"lr": 1}, 1)
    assert ray.is_initialized() == running  # refused before any algorithm (or Ray) started


# ------------------------------------------------------------------ example scripts
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--frames-per-batch", "0"], "--frames-per-batch must be at least 1, got 0"),
        (["--minibatch-size", "0"], "--minibatch-size must be at least 1, got 0"),
        (["--epochs", "-1"], "--epochs must be at least 1, got -1"),
        (["--iterations", "0"], "--iterations must be at least 1, got 0"),
        (["--seed", "5"], "--seed below 100 would train on the seeds alert-triage evaluate"),
        (["--lr", "nan"], "--lr must be a finite number above 0, got nan"),
    ],
)
def test_train_torchrl_example_refuses_before_training(args, says, tmp_path):
    result = run_example("train_torchrl", "--task", "easy", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert says in result.stderr and "Traceback" not in result.stderr
    assert "iter" not in result.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--iterations", "0"], "--iterations must be at least 1, got 0"),
        (["--iterations", "-3"], "--iterations must be at least 1, got -3"),
        (["--num-env-runners", "-1"], "--num-env-runners must be at least 0, got -1"),
        (["--envs-per-runner", "0"], "--envs-per-runner must be at least 1, got 0"),
        (["--train-batch-size", "0"], "--train-batch-size must be at least 1, got 0"),
        (["--minibatch-size", "0"], "--minibatch-size must be at least 1, got 0"),
        (["--minibatch-size", "5000"], "--minibatch-size 5000 exceeds --train-batch-size 4000"),
        (["--num-epochs", "0"], "--num-epochs must be at least 1, got 0"),
        (["--num-cpus", "0"], "--num-cpus must be at least 1, got 0"),
        (["--lr", "nan"], "--lr must be a finite number above 0, got nan"),
        (["--seed", "5"], "--seed below 100 would train on the seeds alert-triage evaluate"),
    ],
)
def test_train_rllib_example_refuses_before_starting_ray(args, says, tmp_path):
    out = tmp_path / "ckpt"
    result = run_example("train_rllib", "--task", "easy", *args, "--out", str(out), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert says in result.stderr and "Traceback" not in result.stderr
    assert "RLlib PPO" not in result.stdout and not out.exists()
